#!/usr/bin/env python3
"""Scheduling throughput on kube-scheduler's scheduler_perf shapes, for the engine and the service.

    python benchmarks/throughput.py                 # all shapes, both templates, engine and service
    python benchmarks/throughput.py --quick         # 50 nodes, pods pro rata (a smoke run, seconds)
    python benchmarks/throughput.py --only basic_10k --template gpu --target engine
    python benchmarks/throughput.py --json

The initial pods are placed (untimed) by spreading, as kube-scheduler's default scoring does.

The shapes (kubernetes/kubernetes ``test/integration/scheduler_perf``; the CI floor is the
``threshold:`` on average SchedulingThroughput):

=============  =======  ==========  ============  =====================================================
shape          nodes    init pods   measured      floor (pods/s)
=============  =======  ==========  ============  =====================================================
basic_10k      5,000    1,000       10,000        680  (misc/ SchedulingBasic 5000Nodes_10000Pods)
basic_50k      5,000    5,000       50,000        810  (misc/ SchedulingBasic 5000Nodes_50000Pods)
preemption     5,000    20,000 low  5,000         570  (default_preemption/ PreemptionAsync 5000Nodes:
                        priority                  high-priority preemptors created every 200 ms, each
                                                  must evict 3 of a node's 4 low-priority pods)
=============  =======  ==========  ============  =====================================================

Two pod templates:

``kube``
    scheduler_perf's own: nodes of 4 CPU and 32 GiB (no GPU), pods of 100m CPU and 500 MiB,
    low-priority pods of 900m (4 fill 3.6 of a node's 4 CPU), preemptors of 3 CPU.
``gpu``
    the same shapes in GPUs: nodes of 5 GPUs, pods of ``gpu: 0.1`` (a fraction of one device),
    low-priority pods of 1 GPU (4 fill 4 of a node's 5 devices), preemptors of 4 whole GPUs (each
    must evict 3 of a node's 4 low-priority pods; measured pods always fit on the fifth device).
    (Low-priority pods of ``gpu: 0.9`` on 4-GPU nodes, the literal reading of kube's shape, are
    not used: the engine's preempt does not free whole devices held by fractional pods.)

Targets:

``engine``
    ``schedule(snapshot)`` only (Session build, all actions, decisions); building the snapshot
    objects is not timed. All measured pods are pending in the first cycle; cycles repeat (with
    binds applied and evicted pods removed in between, untimed) until every measured pod is bound.
``service``
    ``RunaiService`` over ``SimulatedCluster`` (pods "start" at once, no process) with its SQLite
    store: **submit** (admission, the store write and its commit) is timed per workload;
    **cycles** is ``run_cycle()`` until every measured pod runs (cluster poll, snapshot from the
    service's models, the engine, applying binds, events, one SQLite transaction per cycle).
    ``end_to_end`` = measured pods / (submit + cycles) seconds. The store lives in ``--store-dir``
    (default: a temporary folder under /dev/shm where there is one, so that a disk's fsync per
    acknowledged submit, ``PRAGMA synchronous = FULL``, is not what is measured; ``--store-dir
    /tmp`` measures it).

Preemptors arrive at 5 per second of wall time while the measured pods are being scheduled (one
is already waiting when they are created, as scheduler_perf's churn starts first); the rate is
that of the measured pods, as in scheduler_perf.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from jupyter_runai.scheduler import (  # noqa: E402
    UNLIMITED,
    Job,
    Node,
    PlacementConfig,
    Pod,
    PodStatus,
    Queue,
    QueueResources,
    Snapshot,
    schedule,
)

GIB = 1024 ** 3
MIB = 1024 ** 2

SHAPES = {
    "basic_10k": {"nodes": 5000, "init": 1000, "measured": 10_000, "floor": 680,
                  "source": "misc/performance-config.yaml SchedulingBasic 5000Nodes_10000Pods"},
    "basic_50k": {"nodes": 5000, "init": 5000, "measured": 50_000, "floor": 810,
                  "source": "misc/performance-config.yaml SchedulingBasic 5000Nodes_50000Pods"},
    "preemption": {"nodes": 5000, "init": 20_000, "measured": 5000, "floor": 570, "preemptors_per_s": 5.0,
                   "source": "default_preemption/performance-config.yaml PreemptionAsync 5000Nodes"},
}

# per template: node shape and the three pod kinds (what each pod asks)
TEMPLATES = {
    "kube": {
        "node": {"gpus": 0, "cpu_millis": 4000, "memory": 32 * GIB},
        "default": {"gpu": 0, "cpu_millis": 100, "memory": 500 * MIB},
        "low": {"gpu": 0, "cpu_millis": 900, "memory": 500 * MIB},
        "preemptor": {"gpu": 0, "cpu_millis": 3000, "memory": 500 * MIB},
    },
    "gpu": {
        "node": {"gpus": 5, "cpu_millis": 128_000, "memory": 1024 * GIB},
        "default": {"gpu": 0.1, "cpu_millis": 100, "memory": 500 * MIB},
        "low": {"gpu": 1, "cpu_millis": 100, "memory": 500 * MIB},
        "preemptor": {"gpu": 4, "cpu_millis": 100, "memory": 500 * MIB},
    },
}
DEVICE_MIB = 81920.0
PRIORITY = {"default": 75, "low": 50, "preemptor": 100}  # build-preemptible, train, build
PREEMPTIBLE = {"default": True, "low": True, "preemptor": False}
PRIORITY_CLASS = {"default": "build-preemptible", "low": "train", "preemptor": "build"}


def scaled(shape: dict, quick: bool) -> dict:
    """The shape itself, or (``--quick``) 1 % of it: 50 nodes and pods pro rata."""
    out = dict(shape)
    if quick:
        out["nodes"] = 50
        out["init"] = max(1, shape["init"] // 100)
        out["measured"] = max(10, shape["measured"] // 100)
    return out


# ============================================================================ engine


class EngineDriver:
    """Cycles of ``schedule()`` over engine objects, applying decisions between cycles (untimed)."""

    def __init__(self, template: dict, nodes: int):
        node = template["node"]
        self.template = template
        self.nodes = [Node(name=f"node-{i:05d}", gpus=node["gpus"], gpu_memory_mib=DEVICE_MIB if node["gpus"] else 0.0,
                           cpu_millis=float(node["cpu_millis"]), memory_bytes=float(node["memory"]))
                      for i in range(nodes)]
        total_gpu = float(node["gpus"] * nodes)
        self.queues = [
            Queue(name="department/bench", resources={"gpu": QueueResources(deserved=total_gpu),
                                                      "cpu": QueueResources(deserved=UNLIMITED),
                                                      "memory": QueueResources(deserved=UNLIMITED)}),
            Queue(name="bench", parent="department/bench", created_order=1,
                  resources={"gpu": QueueResources(deserved=total_gpu), "cpu": QueueResources(deserved=UNLIMITED),
                             "memory": QueueResources(deserved=UNLIMITED)}),
        ]
        self.jobs: dict[str, Job] = {}
        self.kind: dict[str, str] = {}
        self.order = 0
        self.seconds = 0.0
        self.cycles = 0
        self.evictions = 0

    def add(self, kind: str, count: int) -> list[str]:
        spec = self.template[kind]
        names = []
        for _ in range(count):
            name = f"{kind}-{self.order:06d}"
            gpu = spec["gpu"]
            pod = Pod(name=f"{name}-0", gpus=int(gpu) if gpu >= 1 else 0,
                      gpu_fraction=gpu if 0 < gpu < 1 else None,
                      cpu_millis=float(spec["cpu_millis"]), memory_bytes=float(spec["memory"]))
            self.jobs[name] = Job(name=name, queue="bench", priority=PRIORITY[kind], preemptible=PREEMPTIBLE[kind],
                                  created_order=self.order, pods=[pod])
            self.kind[name] = kind
            self.order += 1
            names.append(name)
        return names

    def cycle(self, timed: bool = True, spread: bool = False) -> tuple[int, int]:
        """One cycle; returns (binds, evictions) applied. ``spread``: place by spreading (the initial pods,
        as kube-scheduler's default scoring spreads them: 4 low-priority pods on every node)."""
        config = PlacementConfig(gpu="spread", cpu="spread") if spread else PlacementConfig()
        snap = Snapshot(nodes=self.nodes, queues=self.queues, jobs=list(self.jobs.values()), config=config,
                        now=float(self.cycles))
        t0 = time.perf_counter()
        result = schedule(snap)
        if timed:
            self.seconds += time.perf_counter() - t0
            self.cycles += 1
        pods = {p.name: p for j in self.jobs.values() for p in j.pods}
        for ev in result.evictions:  # a simulated pod releases at once; an evicted 1-pod job is gone
            self.jobs.pop(ev.job, None)
            self.evictions += 1
        bound = 0
        for b in result.binds:
            pod = pods.get(b.pod)
            if pod is None or b.pipelined:
                continue  # pipelined: bound in the next cycle, once the victims are gone
            pod.status, pod.node, pod.devices = PodStatus.RUNNING, b.node, list(b.devices)
            bound += 1
        return bound, len(result.evictions)

    def running(self, names) -> int:
        return sum(1 for n in names if n in self.jobs and self.jobs[n].pods[0].status is PodStatus.RUNNING)


def engine_run(shape: dict, template: str) -> dict:
    drv = EngineDriver(TEMPLATES[template], shape["nodes"])
    init_kind = "low" if "preemptors_per_s" in shape else "default"
    drv.add(init_kind, shape["init"])
    while True:  # place the initial pods (untimed)
        bound, _ = drv.cycle(timed=False, spread=True)
        if not bound:
            break
    rate = shape.get("preemptors_per_s")
    preemptors: list[str] = drv.add("preemptor", 1) if rate else []
    measured = drv.add("default", shape["measured"])
    start = time.perf_counter()
    cycles_cap = 200
    while drv.running(measured) < len(measured) and drv.cycles < cycles_cap:
        if rate:  # preemptors that arrived (wall time) since the measurement began
            due = 1 + int((time.perf_counter() - start) * rate)
            if due > len(preemptors):
                preemptors += drv.add("preemptor", due - len(preemptors))
        drv.cycle()
    placed = drv.running(measured)
    out = {"nodes": shape["nodes"], "init": shape["init"], "measured": shape["measured"], "placed": placed,
           "cycles": drv.cycles, "engine_s": round(drv.seconds, 3),
           "pods_per_s": round(placed / drv.seconds) if drv.seconds else None}
    if rate:
        out["preemptors_arrived"] = len(preemptors)
        out["preemptors_placed"] = drv.running(preemptors)
        out["evictions"] = drv.evictions
    return out


# ============================================================================ service


def _spec(kind: str, name: str, template: dict) -> dict:
    spec = template[kind]
    resources = {"gpu": spec["gpu"], "cpu": f"{spec['cpu_millis']}m", "memory": f"{spec['memory'] // MIB}Mi"}
    return {"name": name, "command": "bench", "resources": resources, "priority_class": PRIORITY_CLASS[kind],
            "preemptible": PREEMPTIBLE[kind]}


def service_run(shape: dict, template: str, store_dir: str | None) -> dict:
    from jupyter_runai.clusters.simulated import SimulatedCluster, simulated_nodes
    from jupyter_runai.models import Department, NodePool, Project
    from jupyter_runai.service import RunaiService, User
    from jupyter_runai.store import Store

    tpl = TEMPLATES[template]
    node = tpl["node"]
    tmp = Path(tempfile.mkdtemp(prefix="runai-throughput-", dir=store_dir))
    user = User("bench", admin=True)
    try:
        nodes = simulated_nodes(shape["nodes"], gpus=node["gpus"], cpu_millis=node["cpu_millis"],
                                memory=node["memory"], labels={"bench": "yes"})
        cluster = SimulatedCluster(nodes)
        store = Store(tmp / "runai.db")
        total_gpu = node["gpus"] * shape["nodes"]
        store.put_department(Department(name="bench", deserved={"gpu": total_gpu}))
        store.put_project(Project(name="bench", department="bench", deserved={"gpu": total_gpu}))
        service = RunaiService(store, cluster)
        service.start()
        rate = shape.get("preemptors_per_s")
        init_kind = "low" if rate else "default"
        # the initial pods are spread (kube-scheduler's default scoring): a pool over every node that
        # spreads, for these cycles only; then the default pool (bin packing) again
        service.node_pools = [NodePool(name="spread", label_selector={"bench": "yes"}, gpu_placement="spread",
                                       cpu_placement="spread")]
        for i in range(shape["init"]):
            service.submit({**_spec(init_kind, f"init-{i}", tpl), "project": "bench"}, user)
        for _ in range(20):
            service.run_cycle()
            if cluster.launches >= shape["init"]:
                break
        service.node_pools = []
        preemptors = 0

        def submit_preemptor():
            nonlocal preemptors
            service.submit({**_spec("preemptor", f"preemptor-{preemptors}", tpl), "project": "bench"}, user)
            preemptors += 1

        if rate:
            submit_preemptor()
        t0 = time.perf_counter()
        for i in range(shape["measured"]):
            service.submit({**_spec("default", f"m-{i}", tpl), "project": "bench"}, user)
        submit_s = time.perf_counter() - t0
        names = [("bench", f"m-{i}") for i in range(shape["measured"])]

        def running() -> int:
            return sum(1 for key in names if service.workloads[service._names[key]].status.phase.value == "Running")

        cycle_s = 0.0
        cycles = 0
        start = time.perf_counter()
        placed = 0
        while cycles < 200:
            if rate:
                due = 1 + int((time.perf_counter() - start) * rate)
                while preemptors < due:
                    submit_preemptor()
            t1 = time.perf_counter()
            service.run_cycle()
            cycle_s += time.perf_counter() - t1
            cycles += 1
            placed = running()
            if placed >= len(names):
                break
        out = {"nodes": shape["nodes"], "init": shape["init"], "measured": shape["measured"], "placed": placed,
               "cycles": cycles, "submit_s": round(submit_s, 3), "cycle_s": round(cycle_s, 3),
               "submit_per_s": round(shape["measured"] / submit_s),
               "cycle_pods_per_s": round(placed / cycle_s) if cycle_s else None,
               "pods_per_s": round(placed / (submit_s + cycle_s)),
               "store": str(tmp)}
        if rate:
            placed_pre = sum(1 for w in service.workloads.values()
                             if w.spec.name.startswith("preemptor-") and w.status.phase.value == "Running")
            out["preemptors_arrived"] = preemptors
            out["preemptors_placed"] = placed_pre
            out["evictions"] = cluster.stops
        store.close()
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ============================================================================ main


def default_store_dir() -> str | None:
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def run(shapes: list[str], templates: list[str], targets: list[str], quick: bool, store_dir: str | None,
        progress=None) -> dict:
    out: dict = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
                 "store_dir": store_dir or tempfile.gettempdir(), "results": []}
    for shape_name in shapes:
        shape = scaled(SHAPES[shape_name], quick)
        for template in templates:
            for target in targets:
                if target == "engine":
                    fig = engine_run(shape, template)
                else:
                    fig = service_run(shape, template, store_dir)
                    fig.pop("store", None)
                fig.update(shape=shape_name, template=template, target=target, floor=SHAPES[shape_name]["floor"])
                fig["vs_floor"] = round(fig["pods_per_s"] / fig["floor"], 2) if fig.get("pods_per_s") else None
                out["results"].append(fig)
                if progress:
                    progress(format_row(fig))
    return out


def format_row(f: dict) -> str:
    extra = ""
    if f["target"] == "service":
        extra = (f"submit {f['submit_per_s']}/s ({f['submit_s']} s), cycles {f['cycle_pods_per_s']}/s "
                 f"({f['cycle_s']} s)")
    else:
        extra = f"engine {f['engine_s']} s"
    if "preemptors_arrived" in f:
        extra += (f"; preemptors {f['preemptors_placed']}/{f['preemptors_arrived']} placed, "
                  f"{f['evictions']} evictions")
    return (f"{f['shape']:<11} {f['template']:<5} {f['target']:<8} {f['pods_per_s'] or 0:>8,} pods/s "
            f"(floor {f['floor']}, x{f['vs_floor']})  {f['placed']:,}/{f['measured']:,} in {f['cycles']} cycle(s); "
            f"{extra}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="50 nodes, 1%% of the pods (a smoke run)")
    parser.add_argument("--only", default=",".join(SHAPES), help=f"shapes, comma-separated ({', '.join(SHAPES)})")
    parser.add_argument("--template", choices=["kube", "gpu", "both"], default="both")
    parser.add_argument("--target", choices=["engine", "service", "both"], default="both")
    parser.add_argument("--store-dir", default=None,
                        help="folder for the service's SQLite store (default /dev/shm where there is one)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    args = parser.parse_args(argv)
    shapes = [s.strip() for s in args.only.split(",") if s.strip()]
    bad = [s for s in shapes if s not in SHAPES]
    if bad:
        parser.error(f"unknown shape {bad[0]!r}; allowed: {', '.join(SHAPES)}")
    templates = ["kube", "gpu"] if args.template == "both" else [args.template]
    targets = ["engine", "service"] if args.target == "both" else [args.target]
    store_dir = args.store_dir or default_store_dir()
    report = run(shapes, templates, targets, args.quick, store_dir,
                 progress=None if args.json else (lambda line: print(line, flush=True)))
    if args.json:
        print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
