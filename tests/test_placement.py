"""Placement: the fragmentation-aware GPU strategy on small hand-made cases, and the lazy
indexes (CPU-only index, per-shape fragmentation caches) against brute-force scans on
random sessions, through binds, evictions and rollbacks."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jupyter_runai.scheduler import placement, schedule
from jupyter_runai.scheduler.placement import FRAGMENTATION
from jupyter_runai.scheduler.session import EPS, Session
from jupyter_runai.scheduler.types import Job, Node, PlacementConfig, Pod, PodStatus, Queue, QueueResources, Snapshot

R = PodStatus.RUNNING
GIB = float(1 << 30)


def _queue() -> Queue:
    return Queue(name="p", resources={"gpu": QueueResources(deserved=-1, limit=-1)})


def _binds(snap: Snapshot) -> dict[str, tuple[str, list[int]]]:
    return {b.pod: (b.node, list(b.devices)) for b in schedule(snap).binds}


# ------------------------------------------------------------------ hand-made cases
def test_default_gpu_placement_is_fragmentation_aware():
    assert PlacementConfig().gpu == FRAGMENTATION


def test_a_fraction_fills_a_device_rather_than_open_one_while_whole_gpu_pods_wait():
    # n0: device 0 has 0.25 free, device 1 idle; n1: one device with 0.5 free.
    # binpack puts the 0.25 fraction on n1 (the node with the fewest idle devices), so
    # the 0.5 fraction must open n0's idle device and the 1-GPU pod finds none.
    # Fragmentation-aware fills n0's device exactly, the 0.5 takes n1's and the
    # 1-GPU pod gets n0's idle device.
    nodes = [Node(name="n0", gpus=2), Node(name="n1", gpus=1)]
    jobs = [
        Job(name="r0", queue="p", pods=[Pod(name="r0-0", gpu_fraction=0.75, status=R, node="n0", devices=[0])]),
        Job(name="r1", queue="p", pods=[Pod(name="r1-0", gpu_fraction=0.5, status=R, node="n1", devices=[0])]),
        Job(name="quarter", queue="p", created_order=1, pods=[Pod(name="quarter-0", gpu_fraction=0.25)]),
        Job(name="half", queue="p", created_order=2, pods=[Pod(name="half-0", gpu_fraction=0.5)]),
        Job(name="whole", queue="p", created_order=3, pods=[Pod(name="whole-0", gpus=1)]),
    ]
    snap = Snapshot(nodes=nodes, queues=[_queue()], jobs=jobs, actions=("allocate",))
    assert _binds(snap) == {"quarter-0": ("n0", [0]), "half-0": ("n1", [0]), "whole-0": ("n0", [1])}
    snap.config = PlacementConfig(gpu="binpack")
    assert _binds(snap) == {"quarter-0": ("n1", [0]), "half-0": ("n0", [1])}


def test_a_fraction_does_not_open_an_idle_device_when_a_shared_one_takes_it():
    nodes = [Node(name="n0", gpus=1), Node(name="n1", gpus=4)]
    jobs = [
        Job(name="r", queue="p", pods=[Pod(name="r-0", gpu_fraction=0.5, status=R, node="n1", devices=[2])]),
        Job(name="big", queue="p", pods=[Pod(name="big-0", gpus=3)]),
        Job(name="f", queue="p", created_order=1, pods=[Pod(name="f-0", gpu_fraction=0.5)]),
    ]
    snap = Snapshot(nodes=nodes, queues=[_queue()], jobs=jobs, actions=("allocate",))
    binds = _binds(snap)
    assert binds["f-0"] == ("n1", [2])
    assert binds["big-0"] == ("n1", [0, 1, 3])


def test_a_cpu_heavy_pod_does_not_strand_gpus():
    # n1's GPUs are all taken and it has the most free CPU; n0's four GPUs are idle.
    # binpack sends the CPU-only pod to n0 (the least free CPU that fits), after which
    # the 4-GPU pod no longer finds the CPU it needs there.
    nodes = [Node(name="n0", gpus=4, cpu_millis=64_000, memory_bytes=512 * GIB),
             Node(name="n1", gpus=4, cpu_millis=128_000, memory_bytes=512 * GIB)]
    jobs = [
        Job(name="r", queue="p", pods=[Pod(name="r-0", gpus=4, cpu_millis=28_000, status=R, node="n1")]),
        Job(name="cpu", queue="p", created_order=1, pods=[Pod(name="cpu-0", cpu_millis=40_000, memory_bytes=GIB)]),
        Job(name="gpu4", queue="p", created_order=2,
            pods=[Pod(name="gpu4-0", gpus=4, cpu_millis=32_000, memory_bytes=GIB)]),
    ]
    snap = Snapshot(nodes=nodes, queues=[_queue()], jobs=jobs, actions=("allocate",))
    assert _binds(snap) == {"cpu-0": ("n1", []), "gpu4-0": ("n0", [0, 1, 2, 3])}
    snap.config = PlacementConfig(gpu="binpack")
    assert _binds(snap) == {"cpu-0": ("n0", [])}


def test_a_gpu_pod_goes_where_its_cpu_strands_no_gpu():
    # Both nodes have 2 idle GPUs; n0 has 40 cores, n1 64. Two 1-GPU pods of 30 cores
    # wait, then a 2-GPU pod of 40 cores. binpack puts the first 1-GPU pod on n0 (the
    # node listed first), whose other GPU is then stranded (10 cores left): the second
    # goes to n1 and the 2-GPU pod finds no node. Fragmentation-aware keeps n0 whole.
    nodes = [Node(name="n0", gpus=2, cpu_millis=40_000, memory_bytes=512 * GIB),
             Node(name="n1", gpus=2, cpu_millis=64_000, memory_bytes=512 * GIB)]
    jobs = [Job(name=f"j{k}", queue="p", created_order=k,
                pods=[Pod(name=f"j{k}-0", gpus=1, cpu_millis=30_000, memory_bytes=GIB)]) for k in range(2)]
    jobs.append(Job(name="two", queue="p", created_order=2,
                    pods=[Pod(name="two-0", gpus=2, cpu_millis=40_000, memory_bytes=GIB)]))
    snap = Snapshot(nodes=nodes, queues=[_queue()], jobs=jobs, actions=("allocate",))
    assert _binds(snap) == {"j0-0": ("n1", [0]), "j1-0": ("n1", [1]), "two-0": ("n0", [0, 1])}
    snap.config = PlacementConfig(gpu="binpack")
    assert _binds(snap) == {"j0-0": ("n0", [0]), "j1-0": ("n1", [0])}


# ------------------------------------------------------------------ random sessions
def _reference_cpu_only(sess, pod, pool_set, allow_pipeline, spread):
    """The scan over every node that the CPU index replaces (binpack/spread GPU strategy)."""
    affinity = pod.spec.node_affinity
    best, best_key = None, None
    for node in sess.nodes:
        if node.pool not in pool_set or (affinity and not placement._affinity_ok(node, affinity)):
            continue
        now = node.cpu_free_now() + EPS >= pod.cpu and node.mem_free_now() + EPS >= pod.mem
        if not now:
            if not allow_pipeline:
                continue
            if node.cpu_free_future() + EPS < pod.cpu or node.mem_free_future() + EPS < pod.mem:
                continue
        free = node.cpu_free_now()
        key = (not now, node.ndev > 0, -free if spread else free, node.idx)
        if best_key is None or key < best_key:
            best, best_key = (node, (), 0.0, not now), key
    return best


def _reference_fragmentation(sess, pod, pools, cpu_only, spread_devs):
    """The best key over every node, each evaluated afresh (no cached view, no memo)."""
    frag = placement._fragmentation(sess)
    affinity = pod.spec.node_affinity
    best = None
    for node in sess.nodes:
        if node.pool not in pools or (affinity and not placement._affinity_ok(node, affinity)):
            continue
        if cpu_only and node.ndev == 0:
            continue
        node.gpu_view = None
        r = frag._evaluate(node, pod, cpu_only, spread_devs, {})
        if r is not None and (best is None or (r[0], r[1], node.idx) < best[0]):
            best = ((r[0], r[1], node.idx), r[2])
    return best


CPU = st.sampled_from([0, 500, 1000, 2000, 4000])
MEM = st.sampled_from([0.0, GIB, 2 * GIB])
AFFINITY = st.sampled_from([None, None, {"zone": ["x"]}, {"zone": ["y", "x"]}])


@st.composite
def _sessions(draw):
    n_nodes = draw(st.integers(2, 9))
    nodes = []
    for i in range(n_nodes):
        nodes.append(Node(name=f"n{i}", gpus=draw(st.sampled_from([0, 2, 4])), gpu_memory_mib=1000.0,
                          cpu_millis=draw(st.sampled_from([4000, 8000, 16000])),
                          memory_bytes=draw(st.sampled_from([4 * GIB, 8 * GIB])),
                          labels={"zone": draw(st.sampled_from(["x", "y"]))},
                          pool=draw(st.sampled_from(["a", "a", "b"]))))
    jobs = []
    used = {i: [0.0] * n.gpus for i, n in enumerate(nodes)}
    for k in range(draw(st.integers(0, 12))):
        i = draw(st.integers(0, n_nodes - 1))
        status = draw(st.sampled_from([R, R, PodStatus.RELEASING]))
        kind = draw(st.sampled_from(["cpu", "frac", "whole"]))
        gpu: dict = {}
        if kind == "frac" and used[i]:
            f = draw(st.sampled_from([0.25, 0.5]))
            d = next((d for d, u in enumerate(used[i]) if u + f <= 1.0), None)
            if d is None:
                continue
            used[i][d] += f
            gpu = {"gpu_fraction": f, "devices": [d]}
        elif kind == "whole" and used[i]:
            d = next((d for d, u in enumerate(used[i]) if u == 0.0), None)
            if d is None:
                continue
            used[i][d] = 1.0
            gpu = {"gpus": 1, "devices": [d]}
        jobs.append(Job(name=f"r{k}", queue="p", pods=[Pod(
            name=f"r{k}-0", cpu_millis=draw(CPU), memory_bytes=draw(MEM), status=status, node=f"n{i}", **gpu)]))
    for k in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["cpu", "cpu", "frac", "whole"]))
        gpu = {}
        if kind == "frac":
            gpu = {"gpu_fraction": draw(st.sampled_from([0.25, 0.5, 0.75]))}
        elif kind == "whole":
            gpu = {"gpus": draw(st.sampled_from([1, 2]))}
        jobs.append(Job(name=f"q{k}", queue="p", created_order=k + 1,
                        node_pools=draw(st.sampled_from([None, None, ["a"], ["b", "a"]])),
                        pods=[Pod(name=f"q{k}-0", cpu_millis=draw(CPU), memory_bytes=draw(MEM),
                                  node_affinity=draw(AFFINITY), **gpu)]))
    config = PlacementConfig(gpu=draw(st.sampled_from([FRAGMENTATION, "binpack", "spread"])),
                             cpu=draw(st.sampled_from(["binpack", "spread"])),
                             device=draw(st.sampled_from(["pack", "spread"])))
    ops = draw(st.lists(st.tuples(st.sampled_from(["place", "place", "evict", "mark", "rollback"]),
                                  st.integers(0, 50), st.booleans()), min_size=1, max_size=25))
    return Snapshot(nodes=nodes, queues=[_queue()], jobs=jobs, config=config), ops


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_sessions())
def test_lazy_indexes_agree_with_a_scan_of_every_node(case):
    snap, ops = case
    sess = Session(snap)
    cfg = sess.config
    marks = []
    pending = [p for p in sess.pods if p.status is PodStatus.PENDING]

    def check(pod, allow):
        for group in placement._pools(sess, pod):
            cpu_only = not (pod.fractional or pod.whole > 0)
            if cpu_only and cfg.gpu != FRAGMENTATION:
                got = placement._place_cpu_only(sess, pod, group, allow)
                want = _reference_cpu_only(sess, pod, set(group), allow, cfg.cpu == "spread")
                assert (got and (got[0].idx, got[3])) == (want and (want[0].idx, want[3]))
            if cfg.gpu == FRAGMENTATION:
                index = placement._cpu_index(sess)  # nodes without GPUs, by the CPU strategy
                want_cpu = _reference_cpu_only(sess, pod, set(group), False, cfg.cpu == "spread")
                if cpu_only:
                    got_cpu = index.find(group, False, pod, pod.spec.node_affinity, cfg.cpu == "spread")
                    if want_cpu is not None and want_cpu[0].ndev == 0:
                        assert got_cpu is want_cpu[0]
                        continue
                    assert got_cpu is None
                got = placement._fragmentation(sess).place_now(pod, group)
                want = _reference_fragmentation(sess, pod, group, cpu_only, cfg.device == "spread")
                assert (got and (got[0].idx, tuple(got[1]))) == (want and (want[0][2], tuple(want[1])))

    for op, k, flag in ops:
        if op == "place" and pending:
            pod = pending[k % len(pending)]
            if pod.status is not PodStatus.PENDING:
                continue
            check(pod, flag)
            found = placement.place(sess, pod, allow_pipeline=flag)
            if found is not None:
                node, devs, frac, pipelined = found
                sess.set_pod(pod, PodStatus.PIPELINED if pipelined else PodStatus.ALLOCATED, node, devs, frac)
        elif op == "evict":
            running = [p for p in sess.pods if p.status in (R, PodStatus.ALLOCATED)]
            if running:
                p = running[k % len(running)]
                sess.set_pod(p, PodStatus.RELEASING, p.node, p.devices, p.frac)
        elif op == "mark":
            marks.append(sess.checkpoint())
        elif op == "rollback" and marks:
            sess.rollback(marks.pop(k % len(marks)))
            del marks[k % (len(marks) + 1):]
    for pod in pending:
        if pod.status is PodStatus.PENDING:
            check(pod, True)


def test_workload_mix_is_the_distribution_the_placement_expects():
    # n0 has 3 of 4 GPUs free, n1 2 of 2. Against the snapshot's own pods (all 1-GPU) the nodes
    # tie and n0, listed first, wins; a mix of recent 3-GPU workloads sends the 1-GPU pod to n1,
    # so that n0 keeps room for a 3-GPU pod; a mix of 2-GPU workloads keeps n1 whole instead.
    def snap(mix_gpus: int | None) -> Snapshot:
        nodes = [Node(name="n0", gpus=4), Node(name="n1", gpus=2)]
        jobs = [Job(name="r", queue="p", pods=[Pod(name="r-0", gpus=1, status=R, node="n0", devices=[0])]),
                Job(name="j", queue="p", created_order=1, pods=[Pod(name="j-0", gpus=1)])]
        mix = [] if mix_gpus is None else [Job(name=f"h{i}", queue="p", pods=[Pod(name=f"h{i}-0", gpus=mix_gpus)])
                                           for i in range(10)]
        return Snapshot(nodes=nodes, queues=[_queue()], jobs=jobs, workload_mix=mix)

    assert _binds(snap(None))["j-0"][0] == "n0"
    assert _binds(snap(3))["j-0"][0] == "n1"
    assert _binds(snap(2))["j-0"][0] == "n0"


def test_gpu_memory_larger_than_any_device_says_so():
    """Not "the largest free fraction is 1.00": no device could ever hold it."""
    from jupyter_runai.scheduler import Job, Node, Pod, Queue, QueueResources, Snapshot, schedule

    node = Node(name="n", gpus=2, gpu_memory_mib=24576, cpu_millis=64000, memory_bytes=512e9)
    queue = Queue(name="q", resources={"gpu": QueueResources(2, -1.0, 1.0)})
    big = Job(name="big", queue="q", priority=50, pods=[Pod(name="big-0", index=0, gpu_memory_mib=40960)])
    reason = schedule(Snapshot(nodes=[node], queues=[queue], jobs=[big])).pending_reasons["big"]
    assert "the largest GPU has 24576 MiB of memory" in reason and "fraction" not in reason, reason


def test_a_move_inside_one_node_is_not_called_a_move_to_another_node():
    from jupyter_runai.scheduler import Job, Node, Pod, PodStatus, Queue, QueueResources, Snapshot, schedule

    node = Node(name="n", gpus=2, gpu_memory_mib=24576, cpu_millis=64000, memory_bytes=512e9)
    queue = Queue(name="q", resources={"gpu": QueueResources(2, -1.0, 1.0)})
    halves = [Job(name=name, queue="q", priority=50, created_order=i,
                  pods=[Pod(name=f"{name}-0", index=0, gpu_fraction=0.5, status=PodStatus.RUNNING, node="n",
                            devices=[i])]) for i, name in enumerate(("a", "b"))]
    whole = Job(name="c", queue="q", priority=50, created_order=2, pods=[Pod(name="c-0", index=0, gpus=1)])
    result = schedule(Snapshot(nodes=[node], queues=[queue], jobs=[*halves, whole]))
    assert [e.reason for e in result.evictions] == ["moved to other devices of the same node to make room"]


@pytest.mark.parametrize("victims, priority", [("b", 50), ("a", 75)], ids=["reclaim", "preempt"])
def test_reclaim_and_preempt_on_one_node_never_say_another_node(victims, priority):
    """On a one-node cluster a victim that a reclaim or a preemption moves goes to other
    devices of the same node, and says so; one that is stopped says it was evicted."""
    node = Node(name="n", gpus=3, gpu_memory_mib=24576, cpu_millis=64000, memory_bytes=512e9)
    queues = [Queue(name="a", created_order=0, resources={"gpu": QueueResources(3, -1.0, 1.0)}),
              Queue(name="b", created_order=1, resources={"gpu": QueueResources(0, -1.0, 1.0)})]
    running = [Job(name=name, queue=victims, priority=50, created_order=i,
                   pods=[Pod(name=f"{name}-0", gpu_fraction=0.5, status=PodStatus.RUNNING, node="n", devices=[i])])
               for i, name in enumerate(("h0", "h1"))]
    running.append(Job(name="w", queue=victims, priority=50, created_order=2,
                       pods=[Pod(name="w-0", gpus=1, status=PodStatus.RUNNING, node="n", devices=[2])]))
    new = Job(name="new", queue="a", priority=priority, created_order=5, pods=[Pod(name="new-0", gpus=2)])
    result = schedule(Snapshot(nodes=[node], queues=queues, jobs=[*running, new],
                               config=PlacementConfig(gpu="binpack")))
    assert {b.pod for b in result.binds} == {"h1-0", "new-0"}
    assert sorted((e.pod, e.reason) for e in result.evictions) == [
        ("h1-0", "moved to other devices of the same node to make room"),
        ("w-0", "evicted to make room for other work")]
