"""Service benchmarks: what a user waits for, and how much the service loop can schedule.

    python benchmarks/service.py            # all three sections
    python benchmarks/service.py --quick    # small sizes, for a smoke run
    python benchmarks/service.py --json     # figures as JSON

Sections:

* ``latency``: submit -> Running on the local cluster (real processes, virtual GPUs),
  one workload at a time on an idle cluster (each is deleted, and gone, before the
  next), p50 and p99 over ``--submissions`` (default 200). Measured
  from the ``Submitted`` to the ``Started`` event of each workload (both stamped by the
  service), so it includes admission, the store write, a scheduling cycle, starting
  the process and saving its state.
* ``list``: ``GET /runai/api/v1/workloads`` on a real Jupyter server subprocess with
  ``--stored`` (default 5,000) workloads in its store; p50 and p99 over 30 requests,
  all of them and one project's.
* ``throughput``: the service loop end to end on a simulated cluster (5,000 nodes x 8
  GPUs): ``--pods`` (default 10,000) one-GPU training workloads submitted, then cycles
  until every one runs; placements per second including snapshot building, the
  engine, applying binds and the SQLite writes. Simulated binds: no process starts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import time
from datetime import datetime
from pathlib import Path

import requests

from jupyter_runai.clusters.local import LocalCluster
from jupyter_runai.clusters.simulated import SimulatedCluster, simulated_nodes
from jupyter_runai.config import default_queue_config
from jupyter_runai.models import Workload, WorkloadPhase, WorkloadSpec, WorkloadStatus
from jupyter_runai.service import RunaiService, User
from jupyter_runai.store import Store
from server_proc import start_server, stop_server

USER = User("bench", admin=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def seeded_store(path: Path, gpus: int) -> Store:
    store = Store(path)
    queues = default_queue_config(gpus)
    for dept in queues.departments:
        store.put_department(dept)
    for project in queues.projects:
        store.put_project(project)
    return store


# ----------------------------------------------------------------------------- latency


async def _latency(tmp: Path, submissions: int) -> dict:
    store = seeded_store(tmp / "runai.db", 2)
    cluster = LocalCluster(state_dir=str(tmp), virtual_gpus="2x24Gi")
    service = RunaiService(store, cluster, stop_grace_seconds=2)  # the server's defaults
    service.start()
    events = service.subscribe(maxsize=100_000)
    waits = []
    try:
        for i in range(submissions):
            name = f"lat-{i}"
            service.submit({"name": name, "command": "sleep 30", "resources": {"gpu": 0.5}}, USER)
            submitted = started = None
            while started is None:
                event = await asyncio.wait_for(events.get(), 30)
                if event["workload"] != name:
                    continue
                if event["type"] == "Submitted":
                    submitted = event["at"]
                elif event["type"] == "Started":
                    started = event["at"]
                elif event["type"] == "Failed":
                    raise RuntimeError(f"{name} failed: {event['message']}")
            waits.append((datetime.fromisoformat(started) - datetime.fromisoformat(submitted)).total_seconds())
            service.delete("default", name, USER)
            while True:  # the next one starts on an idle cluster
                event = await asyncio.wait_for(events.get(), 30)
                if event["workload"] == name and event["type"] == "Deleted":
                    break
    finally:
        for w in list(service.workloads.values()):
            service.delete(w.spec.project, w.spec.name, USER)
        for _ in range(100):
            if not service.workloads:
                break
            await asyncio.sleep(0.05)
        await service.close()
        store.close()
    return {"submissions": submissions, "p50_ms": round(percentile(waits, 50) * 1000, 1),
            "p99_ms": round(percentile(waits, 99) * 1000, 1), "max_ms": round(max(waits) * 1000, 1)}


def bench_latency(submissions: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="runai-bench-"))
    try:
        return asyncio.run(_latency(tmp, submissions))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ----------------------------------------------------------------------------- REST list


def bench_list(stored: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="runai-bench-"))
    proc = None
    try:
        store = seeded_store(tmp / "state" / "runai.db", 2)
        from jupyter_runai.models import Project
        store.put_project(Project(name="small", department="default"))
        done = []
        for i in range(stored):
            project = "small" if i % 50 == 0 else "default"
            spec = WorkloadSpec(name=f"w-{i}", project=project, command="true", resources={"gpu": 1})
            done.append(Workload(spec=spec, submitted_by="bench", status=WorkloadStatus(phase=WorkloadPhase.SUCCEEDED)))
        for w in done:
            store.add_workload(w)
        store.close()
        proc, base = start_server(tmp, {"RunaiApp": {"state_dir": str(tmp / "state")},
                                        "LocalCluster": {"virtual_gpus": "2x24Gi"}}, "bench")
        url = base + "runai/api/v1/workloads"
        headers = {"Authorization": "token bench"}
        session = requests.Session()
        out = {"stored": stored}
        for label, params in (("all", {}), ("one_project", {"project": "small"})):
            times = []
            count = 0
            for _ in range(30):
                t0 = time.perf_counter()
                response = session.get(url, headers=headers, params=params, timeout=60)
                times.append(time.perf_counter() - t0)
                count = len(response.json()["workloads"])
            out[label] = {"returned": count, "p50_ms": round(percentile(times, 50) * 1000, 1),
                          "p99_ms": round(percentile(times, 99) * 1000, 1)}
        return out
    finally:
        stop_server(proc)
        shutil.rmtree(tmp, ignore_errors=True)


# ----------------------------------------------------------------------------- throughput


def bench_throughput(pods: int, nodes: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="runai-bench-"))
    try:
        cluster = SimulatedCluster(simulated_nodes(nodes))
        store = seeded_store(tmp / "runai.db", nodes * 8)
        service = RunaiService(store, cluster)
        service.start()
        t0 = time.perf_counter()
        for i in range(pods):
            service.submit({"name": f"t-{i}", "command": "train", "resources": {"gpu": 1}}, USER)
        submit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        cycles = 0
        while cluster.launches < pods and cycles < 50:
            service.run_cycle()
            cycles += 1
        cycle_s = time.perf_counter() - t0
        placed = cluster.launches
        store.close()
        return {"nodes": nodes, "pods": pods, "placed": placed, "cycles": cycles,
                "submit_per_s": round(pods / submit_s), "placements_per_s": round(placed / cycle_s),
                "end_to_end_per_s": round(placed / (submit_s + cycle_s))}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--only", choices=["latency", "list", "throughput"], help="run one section")
    parser.add_argument("--submissions", type=int, default=200)
    parser.add_argument("--stored", type=int, default=5000)
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.submissions, args.stored, args.pods, args.nodes = 10, 200, 300, 50
    figures = {}
    if args.only in (None, "latency"):
        figures["latency"] = bench_latency(args.submissions)
        if not args.json:
            f = figures["latency"]
            print(f"submit -> Running (local cluster, {f['submissions']} workloads): "
                  f"p50 {f['p50_ms']} ms, p99 {f['p99_ms']} ms, max {f['max_ms']} ms")
    if args.only in (None, "list"):
        figures["list"] = bench_list(args.stored)
        if not args.json:
            f = figures["list"]
            print(f"GET /workloads with {f['stored']} stored: all ({f['all']['returned']}) p50 "
                  f"{f['all']['p50_ms']} ms p99 {f['all']['p99_ms']} ms; one project ({f['one_project']['returned']}) "
                  f"p50 {f['one_project']['p50_ms']} ms p99 {f['one_project']['p99_ms']} ms")
    if args.only in (None, "throughput"):
        figures["throughput"] = bench_throughput(args.pods, args.nodes)
        if not args.json:
            f = figures["throughput"]
            print(f"service loop, simulated cluster {f['nodes']} nodes x 8 GPUs, {f['pods']} one-GPU workloads: "
                  f"{f['placements_per_s']} placements/s in {f['cycles']} cycle(s) ({f['placed']} placed); "
                  f"submit {f['submit_per_s']}/s; end to end {f['end_to_end_per_s']}/s")
    if args.json:
        print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
