#!/usr/bin/env python3
"""Kueue's scheduler-perf baseline shape, through our service, in wall-clock time.

    python benchmarks/kueue.py                 # the full shape: 15,000 workloads (about 2 minutes)
    python benchmarks/kueue.py --scale 0.05    # 5 % of the workloads per queue (a quick run)
    python benchmarks/kueue.py --json

The shape (kubernetes-sigs/kueue ``test/performance/scheduler/configs/baseline/generator.yaml``):
5 cohorts of 6 ClusterQueues, nominal quota 20 each, borrowing limit 100, reclaimWithinCohort Any,
withinClusterQueue LowerPriority; per queue 350 small (request 1, 200 ms, priority 50, one every
100 ms), 100 medium (5, 500 ms, 100, every 500 ms) and 50 large (20, 1 s, 200, every 1.2 s), the
three series of every queue starting together.

Here: a cohort is a department (deserved 120 GPUs = 6 x 20, limit 120: cohorts do not lend to
each other), a ClusterQueue a project (deserved 20, limit 120 = nominal + borrowing limit), the
request is GPUs on a simulated cluster of 75 nodes x 8 GPUs (600 = the sum of nominal quotas).
small = a training workload of 1 GPU (priority class train, 50); medium = a distributed
workload of 5 one-GPU workers (build-preemptible, 75); large = 20 one-GPU workers (build, 100,
marked preemptible): the priorities keep Kueue's order; every workload is preemptible, as every
Kueue workload is; one-GPU pods make quota, not placement, the limit (Kueue admits by quota and
leaves placement to kube-scheduler). Each pod runs for its workload's run time (from its start,
``RUNAI_SIM_RUNTIME`` on ``SimulatedCluster``'s wall clock) and then succeeds.

Everything runs in this process, on one asyncio loop, in wall-clock time: a task submits each
workload at its time through ``RunaiService.submit`` (admission and the SQLite store), the
service's own loop (``RunaiService.start``: poll the cluster every 0.1 s, cycle on a submit or
a change) schedules, starts and ends pods. The store is on ``--store-dir`` (default /dev/shm where
there is one: a disk's fsync per submit is not what Kueue's figure measures either).

Figures, as Kueue's recorder computes them (``runner/recorder/recorder.go``):
* wall: first submission to the last workload finished (Kueue's 351 s is the runner's whole command);
* mean queue usage: GPU-seconds held by running pods / (wall x 600), in % (sampled every 50 ms);
* mean time to admission per class: first ``Started`` (all pods of the gang running) - submit;
* admissions per second: workloads admitted / wall, and the peak over one second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from jupyter_runai.clusters.simulated import RUNTIME_ENV, SimulatedCluster, simulated_nodes  # noqa: E402
from jupyter_runai.models import Department, Project  # noqa: E402
from jupyter_runai.service import RunaiService, User  # noqa: E402
from jupyter_runai.store import Store  # noqa: E402

COHORTS = 5
QUEUES_PER_COHORT = 6
NOMINAL = 20
BORROWING_LIMIT = 100
CLASSES = {  # count per queue, request, runtime (s), creation interval (s), priority class, kueue priority
    "small": {"count": 350, "request": 1, "runtime": 0.2, "interval": 0.1, "priority_class": "train", "priority": 50},
    "medium": {"count": 100, "request": 5, "runtime": 0.5, "interval": 0.5, "priority_class": "build-preemptible",
               "priority": 100},
    "large": {"count": 50, "request": 20, "runtime": 1.0, "interval": 1.2, "priority_class": "build", "priority": 200},
}
PUBLISHED = {  # kubernetes-sigs/kueue test/performance/scheduler/configs/baseline/rangespec.yaml (5-run means)
    "wall_s": 351.1, "usage_pct": 58.7,
    "admission_s": {"large": 6.666, "medium": 76.768, "small": 215.468},
    "limits": {"wall_s": 425, "usage_pct_min": 55, "admission_s": {"large": 11, "medium": 90, "small": 260}},
}
USER = User("kueue-bench", admin=True)


def plan(scale: float = 1.0) -> list[tuple[float, str, str, str]]:
    """(time, project, class, name) of every workload, in submission order."""
    out = []
    for c in range(COHORTS):
        for q in range(QUEUES_PER_COHORT):
            project = f"cq-{c}-{q}"
            for cls, spec in CLASSES.items():
                count = max(1, round(spec["count"] * scale))
                for k in range(count):
                    out.append((k * spec["interval"], project, cls, f"{cls}-{k}"))
    out.sort(key=lambda x: x[0])
    return out


def workload_spec(project: str, cls: str, name: str) -> dict:
    spec = CLASSES[cls]
    base = {"name": name, "project": project, "command": "sleep", "priority_class": spec["priority_class"],
            "preemptible": True, "environment": {RUNTIME_ENV: str(spec["runtime"])}}
    if spec["request"] == 1:
        return {**base, "kind": "training", "resources": {"gpu": 1}}
    return {**base, "kind": "distributed", "master": False, "workers": spec["request"], "resources": {"gpu": 1}}


def seed(store: Store) -> None:
    cohort_gpus = NOMINAL * QUEUES_PER_COHORT
    for c in range(COHORTS):
        store.put_department(Department(name=f"cohort-{c}", deserved={"gpu": cohort_gpus}, limit={"gpu": cohort_gpus}))
        for q in range(QUEUES_PER_COHORT):
            store.put_project(Project(name=f"cq-{c}-{q}", department=f"cohort-{c}", deserved={"gpu": NOMINAL},
                                      limit={"gpu": NOMINAL + BORROWING_LIMIT}))


async def _run(scale: float, store_dir: str | None, progress=None) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="runai-kueue-", dir=store_dir))
    try:
        gpus = COHORTS * QUEUES_PER_COHORT * NOMINAL
        cluster = SimulatedCluster(simulated_nodes(gpus // 8))
        store = Store(tmp / "runai.db")
        seed(store)
        service = RunaiService(store, cluster)
        events = service.subscribe(maxsize=10_000_000)
        service.start()  # inside the running loop: the scheduling loop starts
        todo = plan(scale)
        klass = {(p, n): c for _, p, c, n in todo}
        submitted: dict[tuple[str, str], float] = {}
        admitted: dict[tuple[str, str], float] = {}
        finished: dict[tuple[str, str], float] = {}
        evictions = 0
        usage_area = 0.0
        t0 = time.monotonic()
        wall_start = datetime.now().astimezone()

        async def submitter():
            for at, project, cls, name in todo:
                delay = t0 + at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                service.submit(workload_spec(project, cls, name), USER)

        async def sampler():
            nonlocal usage_area
            last = time.monotonic()
            while True:
                await asyncio.sleep(0.05)
                now = time.monotonic()
                held = sum(len(launch.devices) for launch in cluster.running.values())
                usage_area += held * (now - last)
                last = now

        sub = asyncio.create_task(submitter())
        samp = asyncio.create_task(sampler())
        last_report = time.monotonic()
        per_second: dict[int, int] = {}
        try:
            while len(finished) < len(todo):
                try:
                    event = await asyncio.wait_for(events.get(), 5.0)
                except asyncio.TimeoutError:
                    if time.monotonic() - t0 > 3600:
                        raise RuntimeError("the run took more than an hour") from None
                    continue
                key = (event.get("project"), event.get("workload"))
                at = datetime.fromisoformat(event["at"])
                rel = (at - wall_start).total_seconds()
                kind = event["type"]
                if kind == "Submitted":
                    submitted[key] = rel
                elif kind == "Started" and key not in admitted:
                    admitted[key] = rel
                    per_second[int(rel)] = per_second.get(int(rel), 0) + 1
                elif kind == "Succeeded" and event.get("pod") is None:
                    finished[key] = rel
                elif kind == "Evicted":
                    evictions += 1
                elif kind == "Failed":
                    raise RuntimeError(f"{key} failed: {event['message']}")
                if progress and time.monotonic() - last_report > 10:
                    last_report = time.monotonic()
                    progress(f"  {time.monotonic() - t0:.0f} s: {len(submitted):,} submitted, {len(admitted):,} "
                             f"admitted, {len(finished):,} finished, {service.cycles:,} cycles "
                             f"(last {service.last_cycle_seconds * 1000:.0f} ms)")
        finally:
            sub.cancel()
            samp.cancel()
            cycles = service.cycles
            await service.close()
            store.close()
        wall = max(finished.values()) - min(submitted.values())
        waits: dict[str, list[float]] = {c: [] for c in CLASSES}
        for key, t in admitted.items():
            waits[klass[key]].append(t - submitted[key])
        return {
            "scale": scale,
            "workloads": len(todo),
            "per_class": {c: len(v) for c, v in waits.items()},
            "gpus": gpus,
            "wall_s": round(wall, 1),
            "usage_pct": round(100 * usage_area / (wall * gpus), 1),
            "admission_s": {c: round(sum(v) / len(v), 2) if v else None for c, v in waits.items()},
            "admission_max_s": {c: round(max(v), 2) if v else None for c, v in waits.items()},
            "admissions_per_s": round(len(admitted) / wall, 1),
            "admissions_per_s_peak": max(per_second.values()) if per_second else 0,
            "evictions": evictions,
            "cycles": cycles,
            "submission_span_s": round(max(submitted.values()) - min(submitted.values()), 1),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(scale: float = 1.0, store_dir: str | None = None, progress=None) -> dict:
    return asyncio.run(_run(scale, store_dir, progress))


def default_store_dir() -> str | None:
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def format_report(f: dict) -> str:
    p = PUBLISHED
    a = f["admission_s"]
    rows = [
        f"Kueue baseline shape through RunaiService (scale {f['scale']:g}: {f['workloads']:,} workloads, "
        f"{f['gpus']} GPUs), wall-clock",
        f"{'figure':<32} {'ours':>10} {'Kueue (CI mean)':>16} {'Kueue CI limit':>15}",
        f"{'wall (s)':<32} {f['wall_s']:>10} {p['wall_s']:>16} {p['limits']['wall_s']:>15}",
        f"{'mean queue usage (%)':<32} {f['usage_pct']:>10} {p['usage_pct']:>16} {'>= 55':>15}",
    ]
    for c in ("large", "medium", "small"):
        rows.append(f"{'time to admission ' + c + ' (s)':<32} {a[c]!s:>10} {p['admission_s'][c]:>16} "
                    f"{p['limits']['admission_s'][c]:>15}")
    rows.append(f"{'admissions/s (mean, peak)':<32} {str(f['admissions_per_s']) + ', ' + str(f['admissions_per_s_peak']):>10}")
    rows.append(f"evictions {f['evictions']:,}, scheduling cycles {f['cycles']:,}, "
                f"submissions over {f['submission_span_s']} s")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0,
                        help="share of each queue's workloads (1 = 350/100/50 per queue; at least 1 each)")
    parser.add_argument("--store-dir", default=None, help="folder for the SQLite store (default /dev/shm)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    if not 0 < args.scale <= 1:
        parser.error("--scale must be in (0, 1]")
    progress = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    report = run(args.scale, args.store_dir or default_store_dir(), progress)
    print(json.dumps(report, indent=1) if args.json else format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
