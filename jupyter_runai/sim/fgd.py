"""The FGD protocol ("Beware of Fragmentation", USENIX ATC 2023) on the Alibaba openb trace.

``python -m jupyter_runai.sim fgd [--trace default] [--seeds 10] [--policy NAME] [--json]``

Protocol (as the paper's simulator runs it, ``hkust-adsl/kubernetes-scheduler-simulator``):

* cluster: every node of ``openb_node_list_gpu_node.csv`` (1,213 nodes, 6,212 GPUs);
* pods: all pods of ``openb_pod_list_<trace>.csv`` sorted by name and shuffled with the
  seed, then extended with copies of trace pods drawn at random (with replacement) until
  the requested GPU would pass 130 % of the cluster's GPU;
* each pod is placed once, in that order, with no departures; a pod that fits nowhere
  fails and stays failed;
* filters: CPU and memory fit; a fraction (``num_gpu == 1``, ``gpu_milli < 1000``) fits on
  one device's free share; ``num_gpu`` whole devices must be fully free on one node;
  ``gpu_spec`` (``A|B``) restricts the GPU model; CPU-only pods go on any node;
* after each pod: arrived % = requested milli-GPU so far / capacity, allocated % =
  allocated milli-GPU / capacity; the curve's value at k % is the mean allocated % of
  the records whose arrived % rounds to k (the authors' ``merge_alloc_discrete.py``);
  unallocated % = 100 - allocated %.

Policies: ``random``, ``bestfit``, ``packing``, ``fgd`` re-implement the paper's baselines
(see ``benchmarks/README.md`` for the details and the choices about ties); ``default`` is
the engine itself with its default GPU placement (``fragmentation-aware``, which learns the
workload distribution from the snapshot's ``workload_mix``: here the trace's pod list, as the
service passes its recent workloads); ``fgd_plus`` is the same rule
(:func:`jupyter_runai.scheduler.fragmentation.best_on_node`) run by this module's loop with
the same distribution, kept as a cross-check (the two place every pod alike).

Speed: a pod's score on a node depends only on the node's state and the pod's shape,
and a placement changes one node; so scores are cached per pod class and only the
nodes changed since the class was last seen are scored again.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import csv
import math
import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..scheduler.fragmentation import MILLI, Shape, WorkloadDistribution, best_on_node

POLICIES = ("random", "bestfit", "packing", "fgd", "fgd_plus", "default")
"""``default`` is the engine itself (its allocate action over the whole arrival order, with
the engine's default placement); the others are re-implementations for comparison, and
``fgd_plus`` the engine's rule run by the benchmark loop with the trace's distribution."""
TRACE_NAME = "alibaba-gpu-v2023"
NODE_FILE = "openb_node_list_gpu_node.csv"
MAX_SPEC_CPU = 128_000  # the simulator's BestFit normalization (CPU milli, GPU milli)
MAX_SPEC_GPU = 8_000
NEG = float("-inf")


# ------------------------------------------------------------------ data
@dataclass(frozen=True, slots=True)
class NodeRow:
    name: str
    cpu: int
    mem: int
    gpus: int
    model: str


@dataclass(frozen=True, slots=True)
class PodRow:
    name: str
    cpu: int
    mem: int
    gpus: int
    milli: int  # per device
    models: frozenset[str] | None

    @property
    def total_milli(self) -> int:
        return self.gpus * self.milli

    @property
    def shape(self) -> Shape:
        return Shape(cpu=self.cpu, gpu_milli=self.milli, gpus=self.gpus, models=self.models)


def trace_dir(explicit: str | os.PathLike | None = None) -> Path:
    """Where the openb CSVs are: ``explicit``, ``$RUNAI_FGD_TRACE_DIR``, or a ``shared/traces``
    folder in or next to the repository."""
    cands = []
    if explicit:
        cands.append(Path(explicit))
    if os.environ.get("RUNAI_FGD_TRACE_DIR"):
        cands.append(Path(os.environ["RUNAI_FGD_TRACE_DIR"]))
    root = Path(__file__).resolve().parents[2]
    cands += [root / "shared" / "traces" / TRACE_NAME, root.parent / "shared" / "traces" / TRACE_NAME]
    for c in cands:
        if (c / NODE_FILE).is_file():
            return c
    raise FileNotFoundError(f"{NODE_FILE} not found in any of: " + ", ".join(str(c) for c in cands))


def load_nodes(path: str | os.PathLike) -> list[NodeRow]:
    with open(path, newline="") as f:
        return [NodeRow(r["sn"], int(r["cpu_milli"]), int(r["memory_mib"]), int(r["gpu"]), r["model"])
                for r in csv.DictReader(f)]


def load_pods(path: str | os.PathLike) -> list[PodRow]:
    out = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            gpus = int(r["num_gpu"])
            milli = int(r["gpu_milli"]) if gpus else 0
            spec = (r.get("gpu_spec") or "").strip()
            models = frozenset(m for m in spec.split("|") if m) if spec else None
            out.append(PodRow(r["name"], int(r["cpu_milli"]), int(r["memory_mib"]), gpus, milli, models or None))
    return out


def arrivals(pods: Sequence[PodRow], capacity_milli: int, rng: random.Random, ratio: float = 1.3) -> list[PodRow]:
    """All pods sorted by name and shuffled, then random copies until GPU asked ~ ratio x capacity
    (or, for a pod list that asks more than that, random pods removed until it does not).

    As the authors' ``TunePodsByNodeTotalResource``: a copy is drawn, and appended unless
    the total plus its per-device milli would pass the target (then the list ends).
    """
    order = sorted(pods, key=lambda p: p.name)
    rng.shuffle(order)
    total = sum(p.total_milli for p in order)
    target = ratio * capacity_milli
    if total >= target:  # asks more already: random pods leave until it does not (tuneDownPods)
        while total > target and order:
            total -= order.pop(rng.randrange(len(order))).total_milli
        return order
    by_name = sorted(pods, key=lambda p: p.name)
    while True:
        p = by_name[rng.randrange(len(by_name))]
        if total + p.milli > target:
            break
        total += p.total_milli
        order.append(p)
    return order


# ------------------------------------------------------------------ cluster state
class Cluster:
    def __init__(self, nodes: Sequence[NodeRow]):
        self.nodes = list(nodes)
        self.cpu = [n.cpu for n in nodes]
        self.mem = [n.mem for n in nodes]
        self.free = [[MILLI] * n.gpus for n in nodes]
        self.model = [n.model for n in nodes]
        self.capacity_milli = MILLI * sum(n.gpus for n in nodes)

    def fits(self, i: int, p: PodRow) -> bool:
        """The filters: CPU, memory, GPU model, devices (does not choose the devices)."""
        if self.cpu[i] < p.cpu or self.mem[i] < p.mem:
            return False
        if p.gpus == 0:
            return True
        if p.models is not None and self.model[i] not in p.models:
            return False
        free = self.free[i]
        if p.milli < MILLI:
            return max(free, default=0) >= p.milli
        return sum(1 for x in free if x >= MILLI) >= p.gpus

    def place(self, i: int, p: PodRow, devices: Sequence[int]) -> None:
        self.cpu[i] -= p.cpu
        self.mem[i] -= p.mem
        free = self.free[i]
        for d in devices:
            free[d] -= p.milli


# ------------------------------------------------------------------ policies
class Policy(ABC):
    """Scores one node for one pod: ``(score, devices)``, higher is better; score NEG = no.

    ``devices`` None means "choose at placement" (Random draws them then). Ties between
    nodes are the run's business (see :func:`run`).
    """

    name = ""
    draws = False  # True: the node is always drawn among the best (Random), whatever ``ties`` says
    none = NEG  # the score of a node that does not fit

    def __init__(self, cluster: Cluster, pods: Sequence[PodRow], rng: random.Random):
        self.c = cluster
        self.rng = rng

    @abstractmethod
    def evaluate(self, i: int, p: PodRow):
        """``(score, devices)`` of pod ``p`` on node ``i``; ``(self.none, None)`` when it does not fit."""

    def devices_at_placement(self, i: int, p: PodRow) -> tuple[int, ...]:
        """The devices for ``p`` on node ``i`` when :meth:`evaluate` left them to placement time
        (a policy that always chooses them in ``evaluate`` is never asked)."""
        raise RuntimeError(f"policy {self.name!r} chose no devices for pod {p.name!r} on node {i}")


def _exclusive(free: Sequence[int], n: int) -> tuple[int, ...]:
    """The first ``n`` fully free devices by index (the simulator's AllocateExclusiveGpuId)."""
    out = []
    for d, x in enumerate(free):
        if len(out) == n:
            break
        if x >= MILLI:
            out.append(d)
    return tuple(out)


def _best_fit_device(free: Sequence[int], milli: int) -> tuple[int, ...]:
    """The device with the least free share that fits, first by index on ties."""
    best = -1
    for d, x in enumerate(free):
        if x >= milli and (best < 0 or x < free[best]):
            best = d
    return (best,)


def _devices_best(free: Sequence[int], p: PodRow) -> tuple[int, ...]:
    if p.gpus == 0:
        return ()
    if p.milli < MILLI:
        return _best_fit_device(free, p.milli)
    return _exclusive(free, p.gpus)


class RandomPolicy(Policy):
    """Random fit: a node drawn uniformly among those that pass the filters; a fraction on a
    device drawn uniformly among those it fits on."""

    name = "random"
    draws = True

    def evaluate(self, i, p):
        return (0.0, None) if self.c.fits(i, p) else (NEG, None)

    def devices_at_placement(self, i, p):
        free = self.c.free[i]
        if p.gpus == 0:
            return ()
        if p.milli < MILLI:
            return (self.rng.choice([d for d, x in enumerate(free) if x >= p.milli]),)
        return _exclusive(free, p.gpus)


class BestFitPolicy(Policy):
    """Best fit: minimize 0.5 * CPU left / 128 cores + 0.5 * GPU left / 8 GPUs after the pod,
    scored as the simulator does, int((1 - that) * 100) (so nodes within 1 % tie)."""

    name = "bestfit"

    def evaluate(self, i, p):
        if not self.c.fits(i, p):
            return NEG, None
        c = self.c
        left = 0.5 * (c.cpu[i] - p.cpu) / MAX_SPEC_CPU + 0.5 * (sum(c.free[i]) - p.total_milli) / MAX_SPEC_GPU
        return float(int((1.0 - left) * 100)), _devices_best(c.free[i], p)


class PackingPolicy(Policy):
    """GPU packing (the simulator's GpuPacking): prefer devices already shared
    (100 - their free share in %/10, at least 50), then a used node (50 - whole devices
    opened, at least 33), then an empty node (33 - its devices); CPU-only pods: any node."""

    name = "packing"

    def evaluate(self, i, p):
        if not self.c.fits(i, p):
            return NEG, None
        free = self.c.free[i]
        if p.gpus == 0:
            return 0.0, ()
        n = len(free)
        idle = sum(1 for x in free if x == MILLI)
        if idle == n:
            return float(max(100 // 3 - idle, idle)), _devices_best(free, p)
        order = sorted(range(n), key=lambda d: free[d])  # stable: least free first
        need = p.gpus
        opened = 0
        used = []
        for d in order:
            if need == 0:
                break
            if p.milli <= free[d]:
                need -= 1
                used.append(d)
                if free[d] == MILLI:
                    opened += 1
        if opened:
            return float(max(100 // 2 - opened, 100 // 3)), _devices_best(free, p)
        ratio = sum(free[d] * 100 // MILLI for d in used)
        return float(max(100 - ratio // 10, 100 // 2)), _devices_best(free, p)


def _typical(pods: Sequence[PodRow]) -> WorkloadDistribution:
    return WorkloadDistribution.from_requests((p.shape for p in pods), coverage=0.95)


class FGDPolicy(Policy):
    """FGD: the node and device whose fragmentation grows least, scored as the simulator
    does: int(sigmoid((F_before - F_after) / 1000) * 100); a fraction takes the first device
    with the node's best score; whole devices the first free ones; ties between nodes random.
    The workload distribution is the trace's pod shapes that make 95 % of its pods."""

    name = "fgd"

    def __init__(self, cluster, pods, rng):
        super().__init__(cluster, pods, rng)
        self.dist = _typical(pods)

    def _score(self, before: float, free, cpu, model) -> int:
        after = self.dist.fragmentation(free, cpu, model)
        x = (before - after) / 1000.0
        return int(100.0 / (1.0 + math.exp(-x)))

    def evaluate(self, i, p):
        c = self.c
        if not c.fits(i, p):
            return NEG, None
        free, cpu, model = c.free[i], c.cpu[i], c.model[i]
        before = self.dist.fragmentation(free, cpu, model)
        if p.gpus == 1 and p.milli < MILLI:
            best, dev, by_value = -1, -1, {}
            for d, x in enumerate(free):
                if x >= p.milli:
                    s = by_value.get(x)
                    if s is None:
                        new = list(free)
                        new[d] -= p.milli
                        s = by_value[x] = self._score(before, new, cpu - p.cpu, model)
                    if s > best:
                        best, dev = s, d
            return float(best), (dev,)
        devices = _exclusive(free, p.gpus) if p.gpus else ()
        new = list(free)
        for d in devices:
            new[d] -= p.milli
        return float(self._score(before, new, cpu - p.cpu, model)), devices


class FgdPlusPolicy(Policy):
    """The engine's ``fragmentation-aware`` rule run by this loop, as a reference:
    :func:`jupyter_runai.scheduler.fragmentation.best_on_node` (the FGD rule, a fraction
    keeps whole devices whole while the workload has whole-device pods, CPU-only pods
    where the GPUs are taken), ties to the first node listed, with the trace's pod list as
    its workload distribution: what ``default`` computes through the engine, kept as a
    cross-check of the two (they place every pod alike)."""

    name = "fgd_plus"
    none = (NEG,)

    def __init__(self, cluster, pods, rng):
        super().__init__(cluster, pods, rng)
        self.dist = _typical(pods)
        self.shapes: dict[PodRow, Shape] = {}

    def evaluate(self, i, p):
        c = self.c
        if c.mem[i] < p.mem:
            return self.none, None
        shape = self.shapes.get(p)
        if shape is None:
            shape = self.shapes[p] = p.shape
        found = best_on_node(c.free[i], c.cpu[i], c.model[i], shape, self.dist)
        if found is None:
            return self.none, None
        key, devices = found
        return tuple(-k for k in key), devices


POLICY_CLASSES = {cls.name: cls for cls in (RandomPolicy, BestFitPolicy, PackingPolicy, FGDPolicy, FgdPlusPolicy)}


# ------------------------------------------------------------------ one run
@dataclass
class RunResult:
    policy: str
    seed: int
    curve: list[float | None]  # allocated % at arrived % = 0..130 (None: no record there)
    pods: int
    placed: int
    failed: int
    seconds: float
    log: list[tuple[int, int, tuple[int, ...]]] | None = None  # (pod index, node, devices); -1 = failed
    order: list[PodRow] = field(default_factory=list)  # the pods in arrival order (with keep_log)
    nodes: list[NodeRow] = field(default_factory=list)  # the nodes in the run's order (with keep_log)

    def unallocated_at(self, k: int) -> float | None:
        v = self.curve[k] if k < len(self.curve) else None
        return None if v is None else 100.0 - v


def _curve(records: list[tuple[float, float]], top: int = 130) -> list[float | None]:
    sums: dict[int, list[float]] = {}
    for arrived, alloc in records:
        sums.setdefault(round(arrived), []).append(alloc)
    out: list[float | None] = []
    for k in range(top + 1):
        vals = sums.get(k)
        if not vals:
            vals = [v for j in (k - 1, k, k + 1) for v in sums.get(j, ())]
        out.append(round(sum(vals) / len(vals), 4) if vals else None)
    return out


def run(nodes: Sequence[NodeRow], pods: Sequence[PodRow], policy: str, seed: int, ratio: float = 1.3,
        keep_log: bool = False, ties: str = "first") -> RunResult:
    """One run of the protocol. The node list is put in a random order drawn from the seed
    (as the authors' simulator prefixes node names with a random permutation); ``ties``
    between equally scored nodes go to the ``first`` of them in that order, or to a
    ``random`` one drawn for each pod."""
    t0 = time.perf_counter()
    rng = random.Random(seed)
    cap = MILLI * sum(n.gpus for n in nodes)
    order = arrivals(pods, cap, rng, ratio)
    nodes = list(nodes)
    rng.shuffle(nodes)
    if policy == "default":
        return _run_engine(nodes, order, pods, seed, ratio, cap, t0, keep_log)
    cluster = Cluster(nodes)
    pol = POLICY_CLASSES[policy](cluster, pods, rng)
    random_ties = ties == "random" or pol.draws
    n_nodes = len(nodes)

    classes: dict[PodRow, int] = {}
    cache: list[list] = []  # per class: [scores, devices, position in changelog]
    changelog: list[int] = []
    arrived = used = 0
    placed = failed = 0
    records: list[tuple[float, float]] = []
    log: list[tuple[int, int, tuple[int, ...]]] | None = [] if keep_log else None
    for k, p in enumerate(order):
        arrived += p.total_milli
        key = PodRow("", p.cpu, p.mem, p.gpus, p.milli, p.models)
        ci = classes.get(key)
        if ci is None:
            ci = classes[key] = len(cache)
            scores = [pol.none] * n_nodes
            devs: list = [None] * n_nodes
            cache.append([scores, devs, 0])
            todo = range(n_nodes)
        else:
            scores, devs, pos = cache[ci]
            todo = set(changelog[pos:])
        for i in todo:
            scores[i], devs[i] = pol.evaluate(i, key)
        cache[ci][2] = len(changelog)

        best = max(scores)
        if best == pol.none:
            failed += 1
            if log is not None:
                log.append((k, -1, ()))
        else:
            if random_ties:
                tied = [i for i, s in enumerate(scores) if s == best]
                i = tied[0] if len(tied) == 1 else tied[rng.randrange(len(tied))]
            else:
                i = scores.index(best)
            d = devs[i]
            if d is None:
                d = pol.devices_at_placement(i, key)
            cluster.place(i, p, d)
            changelog.append(i)
            used += p.total_milli
            placed += 1
            if log is not None:
                log.append((k, i, tuple(d)))
        records.append((100.0 * arrived / cap, 100.0 * used / cap))
    return RunResult(policy, seed, _curve(records, top=int(round(ratio * 100))), len(order), placed, failed,
                     time.perf_counter() - t0, log, list(order) if keep_log else [], nodes if keep_log else [])


def _run_engine(nodes: list[NodeRow], order: list[PodRow], trace: Sequence[PodRow], seed: int, ratio: float,
                cap: int, t0: float, keep_log: bool) -> RunResult:
    """The protocol through the engine itself: every arrival a one-pod job of one unlimited
    queue, in arrival order, one allocate pass (each job tried once, in order; a failed job
    stays failed). The GPU model restriction is a node affinity on the model label. The
    placement is the engine's default (``fragmentation-aware``); the snapshot's
    ``workload_mix`` is the trace's pod list (the workload this cluster has seen: what the
    service passes from its recent submissions, and the distribution FGD is given)."""
    from ..scheduler import Job, Node, Pod, Queue, QueueResources, Snapshot
    from ..scheduler.engine import decisions, run_actions
    from ..scheduler.session import Session

    enodes = [Node(name=f"n{i}", gpus=n.gpus, gpu_memory_mib=1.0, cpu_millis=n.cpu, memory_bytes=n.mem,
                   labels={"gpu-model": n.model}, gpu_model=n.model) for i, n in enumerate(nodes)]

    def job(k: int, p: PodRow, prefix: str = "") -> Job:
        gpu = {"gpu_fraction": p.milli / MILLI} if p.gpus and p.milli < MILLI else {"gpus": p.gpus}
        affinity = {"gpu-model": sorted(p.models)} if p.models else None
        return Job(name=f"{prefix}j{k}", queue="q", created_order=k, priority=50, pods=[
            Pod(name=f"{prefix}p{k}", cpu_millis=p.cpu, memory_bytes=p.mem, node_affinity=affinity, **gpu)])

    jobs = [job(k, p) for k, p in enumerate(order)]
    mix = [job(k, p, "seen-") for k, p in enumerate(trace)]
    snapshot = Snapshot(nodes=enodes, queues=[Queue(name="q", resources={"gpu": QueueResources(-1, -1, 1)})],
                        jobs=jobs, actions=("allocate",), workload_mix=mix)
    session = Session(snapshot)
    result = decisions(session, run_actions(session, ("allocate",)))
    where = {b.job: (int(b.node[1:]), tuple(b.devices)) for b in result.binds}
    arrived = used = placed = 0
    records: list[tuple[float, float]] = []
    log: list[tuple[int, int, tuple[int, ...]]] | None = [] if keep_log else None
    for k, p in enumerate(order):
        arrived += p.total_milli
        found = where.get(f"j{k}")
        if found is not None:
            used += p.total_milli
            placed += 1
        if log is not None:
            log.append((k, found[0], found[1]) if found else (k, -1, ()))
        records.append((100.0 * arrived / cap, 100.0 * used / cap))
    return RunResult("default", seed, _curve(records, top=int(round(ratio * 100))), len(order), placed,
                     len(order) - placed, time.perf_counter() - t0, log, list(order) if keep_log else [],
                     nodes if keep_log else [])


# ------------------------------------------------------------------ benchmark
PUBLISHED = {  # unallocated GPU % at 100 % / 130 % arrived, mean of 10 seeds, from fgd_expected_results
    "default": {"random": (13.70, 12.53), "bestfit": (7.14, 6.92), "packing": (8.22, 8.00), "fgd": (4.77, 4.61)},
    "gpushare100": {"random": (21.10, 20.56), "bestfit": (15.38, 14.99), "packing": (17.87, 17.43),
                    "fgd": (13.36, 13.10)},
}
PAPER_POLICY = {"random": "01-Random", "bestfit": "05-BestFit", "packing": "04-GpuPacking", "fgd": "06-FGD"}


def cut(nodes: list[NodeRow], pods: list[PodRow], limit: int | None) -> tuple[list[NodeRow], list[PodRow]]:
    """A smaller instance: every ``len(nodes)/limit``-th node and the same share of the pods."""
    if not limit or limit >= len(nodes):
        return nodes, pods
    step = len(nodes) / limit
    small = [nodes[int(j * step)] for j in range(limit)]
    share = limit / len(nodes)
    keep = max(1, int(len(pods) * share))
    pstep = len(pods) / keep
    return small, [pods[int(j * pstep)] for j in range(keep)]


def authors_curves(directory: Path, trace: str) -> dict[str, list[float | None]]:
    """Mean over seeds of the authors' allocation curves, per policy of ours."""
    path = directory / "fgd_expected_results" / "analysis_allo_discrete.csv"
    out: dict[str, list[float | None]] = {}
    if not path.is_file():
        return out
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["workload"] == f"openb_pod_list_{trace}"]
    for ours, theirs in PAPER_POLICY.items():
        sel = [r for r in rows if r["sc_policy"] == theirs]
        if not sel:
            continue
        curve = []
        for k in range(131):
            vals = [float(r[str(k)]) for r in sel if r.get(str(k))]
            curve.append(sum(vals) / len(vals) if vals else None)
        out[ours] = curve
    return out


def benchmark(trace: str = "default", seeds: int = 10, policies: Sequence[str] = POLICIES, limit: int | None = None,
              directory: str | os.PathLike | None = None, first_seed: int = 42, progress=None,
              ties: str = "first") -> dict:
    d = trace_dir(directory)
    nodes = load_nodes(d / NODE_FILE)
    pods = load_pods(d / f"openb_pod_list_{trace}.csv")
    nodes, pods = cut(nodes, pods, limit)
    report: dict = {}
    for pol in policies:
        runs = []
        for s in range(first_seed, first_seed + seeds):
            r = run(nodes, pods, pol, s, ties=ties)
            runs.append(r)
            if progress:
                progress(f"{trace} {pol} seed {s}: unallocated@100 {r.unallocated_at(100)} "
                         f"({r.placed} placed, {r.failed} failed, {r.seconds:.1f} s)")
        curve = []
        for k in range(131):
            vals = [r.curve[k] for r in runs if k < len(r.curve) and r.curve[k] is not None]
            curve.append(round(sum(vals) / len(vals), 4) if vals else None)
        u100 = [r.unallocated_at(100) for r in runs if r.unallocated_at(100) is not None]
        u130 = [r.unallocated_at(130) for r in runs if r.unallocated_at(130) is not None]
        entry = {
            "unallocated_at_100": round(sum(u100) / len(u100), 3) if u100 else None,
            "unallocated_at_130": round(sum(u130) / len(u130), 3) if u130 else None,
            "unallocated_at_100_per_seed": [round(x, 3) for x in u100],
            "seeds": [r.seed for r in runs],
            "pods": runs[0].pods if runs else 0,
            "failed_mean": round(sum(r.failed for r in runs) / len(runs), 1) if runs else 0,
            "seconds": round(sum(r.seconds for r in runs), 2),
            "curve": curve,
        }
        pub = PUBLISHED.get(trace, {}).get(pol)
        if pub and not limit:
            entry["published_unallocated_at_100"], entry["published_unallocated_at_130"] = pub
        report[pol] = entry
    return report


def plot(report: dict, trace: str, out: str | os.PathLike, directory: str | os.PathLike | None = None) -> bool:
    """Allocated % vs arrived % per policy, with the authors' curves dashed. False when
    matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    theirs = authors_curves(trace_dir(directory), trace)
    colors = {"random": "tab:gray", "bestfit": "tab:blue", "packing": "tab:green", "fgd": "tab:orange",
              "fgd_plus": "tab:purple", "default": "tab:red"}
    fig, (ax, zoom) = plt.subplots(1, 2, figsize=(12, 4.8))
    for a in (ax, zoom):
        for pol, entry in report.items():
            xs = [k for k, v in enumerate(entry["curve"]) if v is not None]
            a.plot(xs, [entry["curve"][k] for k in xs], color=colors.get(pol), lw=1.6,
                   label=f"{pol} (ours: {entry['unallocated_at_100']:.2f} % unalloc. @100)")
        for pol, curve in theirs.items():
            xs = [k for k, v in enumerate(curve) if v is not None]
            a.plot(xs, [curve[k] for k in xs], color=colors.get(pol), lw=1.0, ls="--",
                   label=f"{pol} (authors: {100 - curve[100]:.2f} %)" if curve[100] is not None else pol)
        a.plot([0, 130], [0, 130], color="black", lw=0.5, ls=":")
        a.set_xlabel("arrived workload (% of GPU capacity)")
        a.set_ylabel("allocated GPU (% of capacity)")
        a.grid(alpha=0.3)
    ax.set_xlim(0, 130)
    ax.set_ylim(0, 100)
    zoom.set_xlim(80, 130)
    zoom.set_ylim(75, 100)
    zoom.axvline(100, color="black", lw=0.5)
    zoom.set_title("zoom")
    ax.set_title(f"FGD protocol, openb {trace} trace, 1,213 nodes / 6,212 GPUs, mean of seeds")
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8)
    fig.tight_layout(rect=(0, 0.16, 1, 1))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return True


def format_table(trace: str, report: dict) -> str:
    lines = [f"FGD protocol, trace {trace}: unallocated GPU % (lower is better), mean over seeds",
             f"{'policy':<10}{'@100 %':>9}{'@130 %':>9}{'published @100':>16}{'@130':>8}{'failed':>8}{'time s':>8}"]
    for pol, e in report.items():
        pub100 = e.get("published_unallocated_at_100")
        pub130 = e.get("published_unallocated_at_130")
        lines.append(f"{pol:<10}{_fmt(e['unallocated_at_100']):>9}{_fmt(e['unallocated_at_130']):>9}"
                     f"{_fmt(pub100):>16}{_fmt(pub130):>8}{e['failed_mean']:>8}{e['seconds']:>8.1f}")
    return "\n".join(lines)


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.2f}"
