"""Property-based tests of the scheduling engine (hypothesis).

A strategy draws a small *recipe* — nodes, a queue tree of departments and projects,
jobs with their pod shapes and what happened to them before this cycle — and
:func:`build` turns it into a :class:`Snapshot` whose running state is consistent by
construction: pods that run were placed by the engine itself (``allocate`` only, on an
all-pending snapshot), some of them were then marked releasing or lost, and a second
``allocate`` pass pipelines further jobs onto the releasing capacity. The first passes
may use a *relaxed* copy of the queue tree (no limits, unlimited quotas), so the input
of the real cycle can already be over limits and quotas.

The properties are checked on the session after :func:`run_actions` (accounting) and
on the :class:`CycleResult` of :func:`schedule` (decisions).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from jupyter_runai.scheduler.engine import decisions, run_actions, schedule
from jupyter_runai.scheduler.session import HOLDS_QUOTA, PodStatus, Session
from jupyter_runai.scheduler.types import (
    UNLIMITED,
    Job,
    Node,
    PlacementConfig,
    Pod,
    Queue,
    QueueResources,
    Snapshot,
)

P = PodStatus
ACTIVE = (P.RUNNING, P.ALLOCATED)
EPS = 1e-9
TYPE_LABEL = "kai.scheduler/type"

#: examples per property; raise it (PROPERTY_EXAMPLES=2000) for a deeper search
EXAMPLES = int(os.environ.get("PROPERTY_EXAMPLES", "150"))

PROPS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# ============================================================================ recipes
@dataclass(frozen=True)
class NodeR:
    gpus: int
    devmem: float
    cpu: float
    mem: float


@dataclass(frozen=True)
class Block:
    deserved: float
    limit: float  # UNLIMITED = none
    weight: float


@dataclass(frozen=True)
class QueueR:
    parent: int | None  # department index for projects, None for departments
    priority: int
    gpu: Block
    cpu: Block | None
    mem: Block | None


@dataclass(frozen=True)
class PodR:
    gpus: int = 0
    fraction: float | None = None
    gpu_mem: float | None = None
    devices: int = 1
    cpu: float = 0.0
    mem: float = 0.0


@dataclass(frozen=True)
class JobR:
    project: int
    priority: int
    preemptible: bool | None
    min_available: int | None
    pods: tuple[PodR, ...]
    phase: int  # 0 pending; 1 placed before the cycle; 2 placed (maybe pipelined) in a second pass
    fates: tuple[str, ...]  # per pod placed in phase 1: "run", "release" or "lost"
    affinity: tuple[int, ...] | None  # node indices the pods may go to


@dataclass(frozen=True)
class Recipe:
    nodes: tuple[NodeR, ...]
    departments: tuple[QueueR, ...]
    projects: tuple[QueueR, ...]
    jobs: tuple[JobR, ...]
    relaxed: bool
    gpu_strategy: str
    device_strategy: str


WEIGHTS = st.sampled_from([0.0, 1.0, 1.0, 2.0, 3.0])


def _gpu_block(draw, department: bool) -> Block:
    if department and draw(st.integers(0, 3)) == 0:
        deserved = UNLIMITED
    else:
        deserved = draw(st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]))
    limit = UNLIMITED
    if draw(st.integers(0, 3)) == 0:
        if deserved == UNLIMITED:
            limit = draw(st.sampled_from([2.0, 4.0, 8.0, 16.0]))
        else:
            limit = deserved + draw(st.sampled_from([0.0, 0.5, 1.0, 2.0, 4.0]))
    return Block(deserved, limit, draw(WEIGHTS))


def _other_block(draw, unit: float) -> Block | None:
    if draw(st.integers(0, 4)) != 0:
        return None  # unlimited deserved, no limit
    deserved = draw(st.sampled_from([UNLIMITED, 0.0, 2.0, 8.0]))
    if deserved != UNLIMITED:
        deserved *= unit
    limit = UNLIMITED
    if draw(st.integers(0, 2)) == 0:
        base = 0.0 if deserved == UNLIMITED else deserved
        limit = base + unit * draw(st.sampled_from([0.0, 4.0, 16.0] if deserved != UNLIMITED else [4.0, 16.0]))
    return Block(deserved, limit, draw(WEIGHTS))


def _queue(draw, parent: int | None) -> QueueR:
    return QueueR(
        parent=parent,
        priority=draw(st.sampled_from([100, 100, 50, 150])),
        gpu=_gpu_block(draw, department=parent is None),
        cpu=_other_block(draw, 1000.0),
        mem=_other_block(draw, 1e9),
    )


def _pod_shape(draw) -> PodR:
    kind = draw(st.sampled_from(["whole", "whole", "fraction", "gpu_mem", "cpu"]))
    cpu = draw(st.sampled_from([0.0, 500.0, 1000.0, 4000.0]))
    mem = draw(st.sampled_from([0.0, 1e9, 4e9]))
    if kind == "whole":
        return PodR(gpus=draw(st.integers(1, 4)), cpu=cpu, mem=mem)
    if kind == "fraction":
        return PodR(fraction=draw(st.sampled_from([0.1, 0.2, 0.25, 0.3, 0.5, 0.6, 0.7, 0.9])),
                    devices=draw(st.sampled_from([1, 1, 1, 2])), cpu=cpu, mem=mem)
    if kind == "gpu_mem":
        return PodR(gpu_mem=draw(st.sampled_from([10.0, 30.0, 50.0, 70.0, 20000.0, 40000.0, 60000.0])),
                    devices=draw(st.sampled_from([1, 1, 1, 2])), cpu=cpu, mem=mem)
    return PodR(cpu=max(cpu, 500.0), mem=mem)


def _fates(draw, n_pods: int) -> tuple[str, ...]:
    mode = draw(st.sampled_from(["run"] * 7 + ["release"] * 2 + ["mixed"]))
    if mode != "mixed":
        return (mode,) * n_pods
    return tuple(draw(st.sampled_from(["run", "run", "release", "lost"])) for _ in range(n_pods))


@st.composite
def recipes(draw) -> Recipe:
    n_nodes = draw(st.integers(1, 6))
    nodes = tuple(
        NodeR(
            gpus=draw(st.integers(0, 8)),
            devmem=draw(st.sampled_from([100.0, 80000.0])),
            cpu=draw(st.sampled_from([4000.0, 16000.0, 64000.0, 20_000_000.0])),
            mem=draw(st.sampled_from([8e9, 20e9, 32e9, 256e9])),
        )
        for _ in range(n_nodes)
    )
    n_dep = draw(st.integers(1, 2))
    departments = tuple(_queue(draw, None) for _ in range(n_dep))
    n_proj = draw(st.integers(1, 4))
    projects = tuple(_queue(draw, draw(st.integers(0, n_dep - 1))) for _ in range(n_proj))
    jobs = []
    for _ in range(draw(st.integers(1, 10))):
        n_pods = draw(st.integers(1, 4))
        shape = _pod_shape(draw)
        if draw(st.integers(0, 4)) == 0:  # heterogeneous job
            pods = tuple(_pod_shape(draw) for _ in range(n_pods))
        else:
            pods = (shape,) * n_pods
        affinity = None
        if draw(st.integers(0, 5)) == 0:
            affinity = tuple(sorted(draw(st.sets(st.integers(0, n_nodes - 1), min_size=1))))
        phase = draw(st.sampled_from([0, 0, 1, 1, 1, 1, 2]))
        # running work leans to low priorities and waiting work to high ones, for contention
        prios = [50, 50, 75, 100, 125] if phase else [50, 75, 75, 100, 125, 125]
        jobs.append(JobR(
            project=draw(st.integers(0, n_proj - 1)),
            priority=draw(st.sampled_from(prios)),
            preemptible=draw(st.sampled_from([None, None, None, True, False])),
            min_available=draw(st.one_of(st.none(), st.integers(1, n_pods))),
            pods=pods,
            phase=phase,
            fates=_fates(draw, n_pods),
            affinity=affinity,
        ))
    return Recipe(
        nodes=nodes,
        departments=departments,
        projects=projects,
        jobs=tuple(jobs),
        relaxed=draw(st.booleans()),
        gpu_strategy=draw(st.sampled_from(["fragmentation-aware", "fragmentation-aware", "binpack", "binpack", "spread"])),
        device_strategy=draw(st.sampled_from(["pack", "pack", "spread"])),
    )


# ============================================================================ building
def _resources(q: QueueR, relaxed: bool) -> dict[str, QueueResources]:
    out = {}
    for key, block in (("gpu", q.gpu), ("cpu", q.cpu), ("memory", q.mem)):
        if block is None:
            continue
        if relaxed:
            out[key] = QueueResources(deserved=UNLIMITED, limit=UNLIMITED, weight=block.weight)
        else:
            out[key] = QueueResources(deserved=block.deserved, limit=block.limit, weight=block.weight)
    return out


def _queues(r: Recipe, relaxed: bool) -> list[Queue]:
    out = []
    for i, d in enumerate(r.departments):
        out.append(Queue(name=f"d{i}", parent=None, priority=d.priority, created_order=i,
                         resources=_resources(d, relaxed)))
    for i, p in enumerate(r.projects):
        out.append(Queue(name=f"p{i}", parent=f"d{p.parent}", priority=p.priority, created_order=i,
                         resources=_resources(p, relaxed)))
    return out


def _nodes(r: Recipe) -> list[Node]:
    return [Node(name=f"n{i}", gpus=n.gpus, gpu_memory_mib=n.devmem, cpu_millis=n.cpu, memory_bytes=n.mem,
                 labels={TYPE_LABEL: f"n{i}"}) for i, n in enumerate(r.nodes)]


def _job(r: Recipe, i: int) -> Job:
    j = r.jobs[i]
    name = f"j{i}"
    affinity = None if j.affinity is None else {TYPE_LABEL: [f"n{k}" for k in j.affinity]}
    pods = [Pod(name=f"{name}-{k}", index=k, gpus=p.gpus, gpu_fraction=p.fraction, gpu_memory_mib=p.gpu_mem,
                gpu_devices=p.devices, cpu_millis=p.cpu, memory_bytes=p.mem,
                node_affinity=copy.deepcopy(affinity))
            for k, p in enumerate(j.pods)]
    return Job(name=name, queue=f"p{j.project}", priority=j.priority, preemptible=j.preemptible,
               min_available=j.min_available, created_order=i, pods=pods)


def _apply_binds(jobs: list[Job], binds, only: set[str] | None = None) -> list[Pod]:
    pods = {(j.name, p.name): p for j in jobs for p in j.pods}
    placed = []
    for b in binds:
        if only is not None and b.job not in only:
            continue
        pod = pods[(b.job, b.pod)]
        pod.status = P.PIPELINED if b.pipelined else P.RUNNING
        pod.node = b.node
        pod.devices = list(b.devices)
        placed.append(pod)
    return placed


def build(r: Recipe) -> Snapshot:
    """The snapshot a recipe describes; the same recipe always gives an equal snapshot."""
    config = PlacementConfig(gpu=r.gpu_strategy, device=r.device_strategy)
    pre_queues = _queues(r, r.relaxed)
    jobs = [_job(r, i) for i in range(len(r.jobs))]

    # phase 1: the engine places these jobs on an empty cluster
    phase1 = [j for j, jr in zip(jobs, r.jobs) if jr.phase == 1]
    if phase1:
        res = schedule(Snapshot(nodes=_nodes(r), queues=copy.deepcopy(pre_queues), jobs=copy.deepcopy(phase1),
                                config=config, actions=("allocate",)))
        for pod in _apply_binds(phase1, res.binds):
            assert pod.status is P.RUNNING  # nothing to wait for on an empty cluster
        for j, jr in zip(jobs, r.jobs):
            if jr.phase != 1:
                continue
            for pod, fate in zip(j.pods, jr.fates):
                if pod.status is not P.RUNNING:
                    continue
                if fate == "release":
                    pod.status = P.RELEASING
                elif fate == "lost":  # the pod died: it is pending again
                    pod.status, pod.node, pod.devices = P.PENDING, None, None

    # phase 2: more jobs, pipelined where they wait for releasing capacity
    phase2 = [j for j, jr in zip(jobs, r.jobs) if jr.phase == 2]
    if phase2:
        both = [j for j, jr in zip(jobs, r.jobs) if jr.phase in (1, 2)]
        res = schedule(Snapshot(nodes=_nodes(r), queues=copy.deepcopy(pre_queues), jobs=copy.deepcopy(both),
                                config=config, actions=("allocate",)))
        _apply_binds(phase2, res.binds, only={j.name for j in phase2})

    return Snapshot(nodes=_nodes(r), queues=_queues(r, False), jobs=jobs, config=config)


snapshots = recipes().map(build)


# ============================================================================ helpers
def run_session(snap: Snapshot):
    """(session, context, usage before the actions) for ``snap``."""
    sess = Session(snap)
    before = {q.name: (list(q.alloc), list(q.alloc_np)) for q in sess.queues.values()}
    ctx = run_actions(sess, snap.actions)
    return sess, ctx, before


def pod_gpu(pod, node_devmem: float, n_devices: int) -> float:
    """GPUs a placed pod holds against quota, computed from its spec."""
    if pod.gpu_fraction is not None:
        return pod.gpu_fraction * n_devices
    if pod.gpu_memory_mib is not None:
        return pod.gpu_memory_mib / node_devmem * n_devices
    return float(n_devices)


def holding_pods(sess):
    """Pods (ghosts of moved pods included) that occupy a node, with their status."""
    out = [p for p in sess.pods if p.status is not P.PENDING]
    out += [g for g, _ in sess.ghosts if g.status is not P.PENDING]
    return out


def recomputed_usage(sess):
    """Queue usage {name: ([g, c, m], [g, c, m] non-preemptible)} recomputed from the pods."""
    use = {q: ([0.0] * 3, [0.0] * 3) for q in sess.queues}
    for p in sess.pods:
        if p.status not in HOLDS_QUOTA:
            continue
        g = pod_gpu(p.spec, p.node.devmem, len(p.devices))
        for q in p.job.queue.path:
            vecs = [use[q.name][0]] + ([use[q.name][1]] if not p.job.preemptible else [])
            for v in vecs:
                v[0] += g
                v[1] += p.spec.cpu_millis
                v[2] += p.spec.memory_bytes
    return use


def tol(*values: float) -> float:
    return 1e-9 * max([1.0] + [abs(v) for v in values])


def result_state(snap: Snapshot, res):
    """{(job, pod): holds resources after the cycle?} from the input and the decisions."""
    bound = {(b.job, b.pod) for b in res.binds}
    evicted = {(e.job, e.pod) for e in res.evictions}
    out = {}
    for j in snap.jobs:
        for p in j.pods:
            key = (j.name, p.name)
            if key in bound:
                out[key] = True
            elif key in evicted:
                out[key] = False
            else:
                out[key] = p.status in (P.RUNNING, P.PIPELINED, P.ALLOCATED)
    return out


def input_holding(job: Job) -> int:
    return sum(1 for p in job.pods if p.status in (P.RUNNING, P.PIPELINED, P.ALLOCATED) and p.node)


# ============================================================================ known cases
def regression_allocated_victims() -> Snapshot:
    """One node of 3 GPUs, device placement ``spread``: allocate binds the gang ``frac``
    (2 x 0.5 GPU) on devices 0 and 1 and ``w0`` on device 2; ``w1`` finds no idle GPU.
    Consolidation used to take the pods bound in this very cycle as victims: it "restored"
    frac-1 and w0-0 as RUNNING (no Bind, gang frac left with 1 of 2 pods, w0 waiting with no
    reason) and reported an eviction of frac-0, which ran nowhere (fixed in a1c26a7)."""
    return Snapshot(
        nodes=[Node("n0", gpus=3, gpu_memory_mib=100, cpu_millis=4000, memory_bytes=8e9,
                    labels={TYPE_LABEL: "n0"})],
        queues=[Queue("d0"), Queue("p0", parent="d0")],
        jobs=[Job("frac", "p0", priority=50, pods=[Pod("frac-0", index=0, gpu_fraction=0.5),
                                                   Pod("frac-1", index=1, gpu_fraction=0.5)]),
              Job("w0", "p0", priority=50, created_order=1, pods=[Pod("w0-0", gpus=1)]),
              Job("w1", "p0", priority=50, created_order=2, pods=[Pod("w1-0", gpus=1)])],
        config=PlacementConfig(device="spread"),
    )


def regression_preempt_over_limit() -> Snapshot:
    """Project p0 has a GPU limit of 0; a higher-priority preemptible job asks for 1 GPU
    while a lower-priority CPU-only job of p0 runs. Preempt used to place it (fixed in bd7329d)."""
    return Snapshot(
        nodes=[Node("n0", gpus=1, gpu_memory_mib=100, cpu_millis=4000, memory_bytes=8e9,
                    labels={TYPE_LABEL: "n0"})],
        queues=[Queue("d0", resources={"gpu": QueueResources(deserved=UNLIMITED, limit=UNLIMITED, weight=1)}),
                Queue("p0", parent="d0", resources={"gpu": QueueResources(deserved=0, limit=0, weight=1)})],
        jobs=[Job("low", "p0", priority=50, pods=[Pod("low-0", cpu_millis=500, status=P.RUNNING, node="n0")]),
              Job("high", "p0", priority=75, created_order=1, pods=[Pod("high-0", gpus=1, cpu_millis=500)])],
    )


def regression_move_grows_quota() -> Snapshot:
    """Project p0 (GPU limit 0.6) runs a 40,000 MiB GPU-memory pod on an 80 GB device
    (0.5 GPU); a 0.8-GPU job of p1 reclaims that device. Moved to a 60 GB device the pod would
    count 0.67 GPU: above p0's limit. Moves used to ignore limits."""
    return Snapshot(
        nodes=[Node("big", gpus=1, gpu_memory_mib=80000, cpu_millis=4000, memory_bytes=8e9,
                    labels={TYPE_LABEL: "big"}),
               Node("small", gpus=1, gpu_memory_mib=60000, cpu_millis=4000, memory_bytes=8e9,
                    labels={TYPE_LABEL: "small"})],
        queues=[Queue("d0", resources={"gpu": QueueResources(deserved=UNLIMITED, limit=UNLIMITED, weight=1)}),
                Queue("p0", parent="d0", resources={"gpu": QueueResources(deserved=0, limit=0.6, weight=0)}),
                Queue("p1", parent="d0", created_order=1,
                      resources={"gpu": QueueResources(deserved=2, limit=UNLIMITED, weight=1)})],
        jobs=[Job("v", "p0", priority=50, pods=[Pod("v-0", gpu_memory_mib=40000, status=P.RUNNING, node="big")]),
              Job("s", "p1", priority=50, created_order=1,
                  pods=[Pod("s-0", gpu_fraction=0.25, status=P.RUNNING, node="small")]),
              Job("want", "p1", priority=50, created_order=2, pods=[Pod("want-0", gpu_fraction=0.8)])],
    )


# ============================================================================ sanity
@PROPS
@given(recipes())
def test_recipes_build_consistent_snapshots(recipe):
    """The generator itself: a recipe builds the same snapshot twice, and the session
    accounting at the start agrees with a recomputation from the pods."""
    snap = build(recipe)
    assert snap == build(recipe)
    sess = Session(snap)
    use = recomputed_usage(sess)
    for q in sess.queues.values():
        for r in range(3):
            assert abs(q.alloc[r] - use[q.name][0][r]) <= tol(q.alloc[r])
            assert abs(q.alloc_np[r] - use[q.name][1][r]) <= tol(q.alloc_np[r])


# ============================================================================ 1. devices
@PROPS
@given(snapshots)
def test_no_device_or_node_overcommitted(snap):
    sess, _ctx, _before = run_session(snap)
    check_no_overcommit(sess)


def check_no_overcommit(sess) -> None:
    """The session after a cycle: no device, CPU or memory of a node over-committed, and the
    session's own accounting matches its pods (also used by test_engine_robust)."""
    pods = holding_pods(sess)
    for node in sess.nodes:
        on = [p for p in pods if p.node is node]
        act = [0.0] * node.ndev
        pip = [0.0] * node.ndev
        rel = [0.0] * node.ndev
        holders: list[list] = [[] for _ in range(node.ndev)]
        cpu = {"act": 0.0, "pip": 0.0, "rel": 0.0}
        mem = {"act": 0.0, "pip": 0.0, "rel": 0.0}
        for p in on:
            kind = "act" if p.status in ACTIVE else ("pip" if p.status is P.PIPELINED else "rel")
            cpu[kind] += p.spec.cpu_millis
            mem[kind] += p.spec.memory_bytes
            assert len(set(p.devices)) == len(p.devices), f"{p.name} holds a device twice: {p.devices}"
            if p.fractional:
                assert len(p.devices) == p.ndev
                expected = p.spec.gpu_fraction if p.spec.gpu_fraction is not None \
                    else p.spec.gpu_memory_mib / node.devmem
                assert abs(p.frac - expected) <= EPS, f"{p.name} holds {p.frac}, asked {expected}"
            else:
                assert len(p.devices) == p.whole
                if p.whole:
                    assert p.frac == 1.0
            if p.spec.node_affinity and p.status is not P.RELEASING:
                assert node.labels.get(TYPE_LABEL) in p.spec.node_affinity[TYPE_LABEL]
            for d in p.devices:
                assert 0 <= d < node.ndev
                holders[d].append(p)
                {"act": act, "pip": pip, "rel": rel}[kind][d] += p.frac
        for d in range(node.ndev):
            # the session's own accounting matches the pods
            assert abs(node.d_act[d] - act[d]) <= 1e-7
            assert abs(node.d_pip[d] - pip[d]) <= 1e-7
            assert abs(node.d_rel[d] - rel[d]) <= 1e-7
            assert act[d] + pip[d] <= 1.0 + EPS, f"{node.name}/{d}: active {act[d]} + pipelined {pip[d]} > 1"
            assert act[d] + rel[d] <= 1.0 + EPS, f"{node.name}/{d}: active {act[d]} + releasing {rel[d]} > 1"
            for p in holders[d]:
                if p.status is P.ALLOCATED:
                    # a bind never lands on capacity that was already being released
                    waiting = [o.name for o in holders[d] if o.orig_status is P.RELEASING and o is not p
                               and o.status is P.RELEASING]
                    assert not waiting, f"{p.name} bound on {node.name}/{d} beside releasing {waiting}"
                if p.fractional:
                    continue
                others = [o for o in holders[d] if o is not p]
                if p.status is P.ALLOCATED:
                    # bound onto an idle device: nothing else, not even releasing work
                    assert not others, f"{p.name} bound on {node.name}/{d} beside {[o.name for o in others]}"
                elif p.status in HOLDS_QUOTA:
                    live = [o.name for o in others if o.status in HOLDS_QUOTA]
                    assert not live, f"whole-GPU {p.name} shares {node.name}/{d} with {live}"
        assert abs(node.cpu_act - cpu["act"]) <= 1e-6 and abs(node.cpu_pip - cpu["pip"]) <= 1e-6
        assert abs(node.mem_act - mem["act"]) <= 1e-3 and abs(node.mem_pip - mem["pip"]) <= 1e-3
        cap_c, cap_m = node.cpu_cap, node.mem_cap
        assert cpu["act"] + cpu["pip"] <= cap_c + tol(cap_c), f"{node.name}: CPU over-committed"
        assert cpu["act"] + cpu["rel"] <= cap_c + tol(cap_c), f"{node.name}: CPU over-committed"
        assert mem["act"] + mem["pip"] <= cap_m + tol(cap_m), f"{node.name}: memory over-committed"
        assert mem["act"] + mem["rel"] <= cap_m + tol(cap_m), f"{node.name}: memory over-committed"


# ============================================================================ 2. limits
@PROPS
@given(snapshots)
@example(regression_preempt_over_limit())
@example(regression_move_grows_quota())
def test_no_queue_grows_over_its_limit(snap):
    sess, _ctx, before = run_session(snap)
    use = recomputed_usage(sess)
    for q in sess.queues.values():
        for r in range(3):
            assert abs(q.alloc[r] - use[q.name][0][r]) <= tol(q.alloc[r])
            lim = q.limit[r]
            if lim == UNLIMITED:
                continue
            was, now = before[q.name][0][r], use[q.name][0][r]
            bound = max(was, lim)
            assert now <= bound + tol(bound), (
                f"queue {q.name} resource {r}: {was} -> {now}, limit {lim}")


# ============================================================================ 3. gangs
@PROPS
@given(snapshots)
def test_gangs_all_or_nothing(snap):
    """In the session after the cycle, a job holds 0 pods or at least its gang minimum."""
    sess, _ctx, _before = run_session(snap)
    for job in sess.jobs:
        held = sum(1 for p in job.pods if p.status in HOLDS_QUOTA)
        assert held == job.n_active
        assert held == 0 or held >= job.min, f"{job.name} holds {held} pods, gang minimum {job.min}"


@PROPS
@given(snapshots)
@example(regression_allocated_victims())
def test_gangs_all_or_nothing_in_decisions(snap):
    """The same, for the state the decisions produce (input + binds - evictions)."""
    res = schedule(copy.deepcopy(snap))
    state = result_state(snap, res)
    for j in snap.jobs:
        held = [p.name for p in j.pods if state[(j.name, p.name)]]
        assert not held or len(held) >= j.gang_min, f"{j.name} ends with {held}, gang minimum {j.gang_min}"


@PROPS
@given(snapshots)
@example(regression_allocated_victims())
def test_decisions_match_the_session(snap):
    """A pod holds resources in the session after the cycle exactly when the input plus
    the decisions say it does (nothing decided in the session is lost on the way out)."""
    sess, ctx, _before = run_session(snap)
    state = result_state(snap, decisions(sess, ctx))
    wrong = [(p.name, p.status.value, state[(job.name, p.name)])
             for job in sess.jobs for p in job.pods
             if state[(job.name, p.name)] != (p.status in HOLDS_QUOTA)]
    assert not wrong, f"session status vs. decisions (holds?): {wrong}"


# ============================================================================ decisions
@PROPS
@given(snapshots)
@example(regression_allocated_victims())
def test_decisions_refer_to_the_input(snap):
    """Binds are for pods that wait (or running pods being moved); evictions are for pods
    that hold resources in the input, on the node they hold them on."""
    res = schedule(copy.deepcopy(snap))
    pods = {(j.name, p.name): p for j in snap.jobs for p in j.pods}
    moved = {(e.job, e.pod) for e in res.evictions if e.action == "consolidate"}
    seen = set()
    for b in res.binds:
        key = (b.job, b.pod)
        assert key not in seen, f"{b.pod} bound twice"
        seen.add(key)
        p = pods[key]
        assert p.status is P.PENDING or (key in moved and p.status is P.RUNNING), (
            f"bind of {b.pod}, which is {p.status.value} in the input")
        if key in moved:
            assert b.pipelined, f"moved pod {b.pod} is not pipelined"
    seen = set()
    for e in res.evictions:
        key = (e.job, e.pod)
        assert key not in seen, f"{e.pod} evicted twice"
        seen.add(key)
        p = pods[key]
        assert p.status in (P.RUNNING, P.PIPELINED), f"eviction of {e.pod}, which is {p.status.value} in the input"
        assert e.node == p.node, f"eviction of {e.pod} on {e.node}, but it is on {p.node}"
        if e.action == "consolidate":
            assert key in {(b.job, b.pod) for b in res.binds}, f"{e.pod} moved but not re-placed"


# ============================================================================ 4. non-preemptible
@PROPS
@given(snapshots)
def test_non_preemptible_never_reclaimed_or_preempted(snap):
    res = schedule(copy.deepcopy(snap))
    jobs = {j.name: j for j in snap.jobs}
    for e in res.evictions:
        job = jobs[e.job]
        if job.is_preemptible:
            continue
        assert e.action != "consolidate", f"non-preemptible {e.pod} moved"
        held = input_holding(job)
        assert 0 < held < job.gang_min, (
            f"non-preemptible {e.pod} evicted ({e.reason}) though its job held {held}/{job.gang_min}")
    # in the session: no non-preemptible pod placed or running becomes releasing, except a stale gang
    sess, _ctx, _before = run_session(snap)
    for job in sess.jobs:
        if job.preemptible:
            continue
        gone = [p.name for p in job.pods if p.status is P.RELEASING and p.orig_status is not P.RELEASING]
        if gone:
            held = input_holding(job.spec)
            assert 0 < held < job.min, f"non-preemptible {gone} evicted; job held {held}/{job.min}"
    assert not [g for g, p in sess.ghosts if g.status is P.RELEASING and not p.job.preemptible]


# ============================================================================ 5. np quota
@PROPS
@given(snapshots)
def test_non_preemptible_within_deserved(snap):
    sess, _ctx, before = run_session(snap)
    use = recomputed_usage(sess)
    for q in sess.queues.values():
        for r in range(3):
            assert abs(q.alloc_np[r] - use[q.name][1][r]) <= tol(q.alloc_np[r])
            des = q.deserved[r]
            if des == UNLIMITED:
                continue
            was, now = before[q.name][1][r], use[q.name][1][r]
            bound = max(was, des)
            assert now <= bound + tol(bound), (
                f"queue {q.name} resource {r}: non-preemptible {was} -> {now}, deserved {des}")


# ============================================================================ 6. fair share
def _requests(snap: Snapshot) -> dict[str, list[float]]:
    """What every queue requests (subtree), recomputed from the snapshot."""
    devmem = {n.name: n.gpu_memory_mib for n in snap.nodes}
    min_devmem = min((n.gpu_memory_mib for n in snap.nodes if n.gpus and n.gpu_memory_mib > 0), default=0.0)
    parent = {q.name: q.parent for q in snap.queues}
    req = {q.name: [0.0, 0.0, 0.0] for q in snap.queues}
    for j in snap.jobs:
        for p in j.pods:
            if p.status is P.RELEASING:
                continue
            ndev = max(1, p.gpu_devices) if p.is_fractional else p.gpus
            if p.status is P.PENDING or p.node is None:
                if p.gpu_memory_mib is not None:
                    g = p.gpu_memory_mib / min_devmem * ndev if min_devmem > 0 else 0.0
                else:
                    g = pod_gpu(p, 1.0, ndev)
            else:
                g = pod_gpu(p, devmem[p.node], ndev)
            q = j.queue
            while q is not None:
                v = req[q]
                v[0] += g
                v[1] += p.cpu_millis
                v[2] += p.memory_bytes
                q = parent[q]
    return req


@PROPS
@given(snapshots)
def test_fair_share_over_quota_bounded_by_capacity(snap):
    res = schedule(copy.deepcopy(snap))
    sess = Session(copy.deepcopy(snap))
    req = _requests(snap)
    for q in sess.queues.values():
        for r in range(3):
            assert abs(q.request[r] - req[q.name][r]) <= tol(q.request[r]), (q.name, r)
    keys = ("gpu", "cpu", "memory")
    totals = [sess.total(r) for r in range(3)]
    levels: dict[str | None, list] = {}
    for q in sess.queues.values():
        levels.setdefault(q.parent.name if q.parent else None, []).append(q)
    for parent, sibs in levels.items():
        for r, key in enumerate(keys):
            amount = totals[r] if parent is None else res.fair_share[parent][key]
            deserved_part = 0.0
            for q in sibs:
                des = amount if q.deserved[r] == UNLIMITED else q.deserved[r]
                requestable = req[q.name][r] if q.limit[r] == UNLIMITED else min(q.limit[r], req[q.name][r])
                base = min(des, requestable)
                deserved_part += base
                fair = res.fair_share[q.name][key]
                assert fair >= base - tol(base), f"{q.name} {key}: fair {fair} below its deserved part {base}"
                if q.weight[r] == 0:
                    assert abs(fair - base) <= tol(base), f"{q.name} {key}: weight 0 but fair {fair} > {base}"
                assert fair == sess.queues[q.name].fair[r]
            total_fair = sum(res.fair_share[q.name][key] for q in sibs)
            bound = max(amount, deserved_part)
            assert total_fair <= bound + tol(bound, total_fair), (
                f"children of {parent} {key}: fair shares {total_fair} > max({amount}, {deserved_part})")


# ============================================================================ 7. determinism
def _decisions(res):
    return (res.binds, res.evictions, res.pending_reasons, res.fair_share)


@PROPS
@given(recipes())
def test_deterministic(recipe):
    snap = build(recipe)
    pristine = copy.deepcopy(snap)
    first = schedule(copy.deepcopy(snap))
    second = schedule(copy.deepcopy(snap))
    assert _decisions(first) == _decisions(second)
    # a snapshot built again from the same recipe (same node and job order) gives the same output
    third = schedule(build(recipe))
    assert _decisions(first) == _decisions(third)
    # scheduling does not change its input
    again = schedule(snap)
    assert _decisions(first) == _decisions(again)
    assert snap == pristine


# ============================================================================ 8. reasons
@PROPS
@given(snapshots)
@example(regression_allocated_victims())
def test_every_waiting_job_has_a_reason(snap):
    res = schedule(copy.deepcopy(snap))
    bound = {(b.job, b.pod) for b in res.binds}
    evicted = {(e.job, e.pod) for e in res.evictions}
    for j in snap.jobs:
        waiting = [p.name for p in j.pods
                   if (p.status is P.PENDING and (j.name, p.name) not in bound)
                   or (p.status is P.PIPELINED and (j.name, p.name) in evicted
                       and (j.name, p.name) not in bound)]
        if waiting:
            reason = res.pending_reasons.get(j.name)
            assert isinstance(reason, str) and reason.strip(), f"{j.name} waits ({waiting}) with no reason"
