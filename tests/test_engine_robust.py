"""The engine never raises, whatever the snapshot (issue 14).

:mod:`test_properties` draws realistic clusters; this file draws the corners a real
service meets and a hand-written test forgets: no node at all, nodes without devices
or without device memory, pools that no node belongs to (named by jobs, or given a
placement config), fractional pods running on shared devices whose indices the
snapshot leaves out (``shared_group``), odd fractions (1/3, 0.001, 0.999), CPU-only
pods, GPU-memory requests larger than any device, per-pool quota blocks. Every action
runs (``schedule``); the properties are: no exception, no device or node
over-committed, gangs all or nothing, and every decision names a pod, node and devices
that exist.

``ROBUST_EXAMPLES`` (default 60) sets the examples; the ``slow`` test runs 1500.
"""

from __future__ import annotations

import copy
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jupyter_runai.scheduler.engine import schedule
from jupyter_runai.scheduler.types import (
    UNLIMITED,
    Job,
    Node,
    PlacementConfig,
    Pod,
    PodStatus,
    Queue,
    QueueResources,
    Snapshot,
)
from test_properties import check_no_overcommit, result_state, run_session

P = PodStatus
EXAMPLES = int(os.environ.get("ROBUST_EXAMPLES", "60"))
POOLS = ["default", "a100", "empty"]  # "empty": named by jobs and configs, no node in it
FRACTIONS = [1 / 3, 0.001, 0.999, 0.25, 0.5, 0.7, 2 / 3]


def _settings(examples: int):
    return settings(max_examples=examples, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def _node(draw, i: int) -> Node:
    gpus = draw(st.sampled_from([0, 0, 1, 2, 4, 8]))
    return Node(
        name=f"n{i}",
        gpus=gpus,
        gpu_memory_mib=draw(st.sampled_from([0.0, 16000.0, 80000.0] if gpus else [0.0])),
        cpu_millis=draw(st.sampled_from([0.0, 2000.0, 64000.0])),
        memory_bytes=draw(st.sampled_from([0.0, 8e9, 256e9])),
        labels={"kai.scheduler/type": f"n{i}"},
        pool=draw(st.sampled_from(POOLS[:2])),
    )


@st.composite
def _pod(draw, name: str, index: int) -> Pod:
    kind = draw(st.sampled_from(["cpu", "none", "whole", "fraction", "gpu_mem"]))
    pod = Pod(name=name, index=index, cpu_millis=draw(st.sampled_from([0.0, 100.0, 4000.0])),
              memory_bytes=draw(st.sampled_from([0.0, 1e9, 1e12])))
    if kind == "whole":
        pod.gpus = draw(st.sampled_from([1, 2, 3, 16]))
    elif kind == "fraction":
        pod.gpu_fraction = draw(st.sampled_from(FRACTIONS))
        pod.gpu_devices = draw(st.sampled_from([1, 1, 2, 3]))
    elif kind == "gpu_mem":
        pod.gpu_memory_mib = draw(st.sampled_from([1.0, 10000.0, 79999.0, 1e6]))
        pod.gpu_devices = draw(st.sampled_from([1, 1, 2]))
    return pod


def _block(draw) -> QueueResources:
    deserved = draw(st.sampled_from([0.0, 0.5, 1.0, 4.0, UNLIMITED]))
    limit = draw(st.sampled_from([UNLIMITED, UNLIMITED, deserved if deserved != UNLIMITED else 1.0]))
    return QueueResources(deserved=deserved, limit=limit, weight=draw(st.sampled_from([0.0, 1.0, 2.0])))


@st.composite
def arbitrary_snapshots(draw) -> Snapshot:
    nodes = [draw(_node(i)) for i in range(draw(st.integers(0, 4)))]
    queues = [Queue("d0", resources={"gpu": _block(draw)})]
    for i in range(draw(st.integers(1, 3))):
        pool_resources = {}
        if draw(st.integers(0, 3)) == 0:
            pool_resources = {pool: {"gpu": _block(draw)} for pool in draw(st.sets(st.sampled_from(POOLS)))}
        queues.append(Queue(f"p{i}", parent="d0", created_order=i, priority=draw(st.sampled_from([50, 100])),
                            resources={"gpu": _block(draw), "cpu": _block(draw)}, pool_resources=pool_resources))
    jobs = []
    for j in range(draw(st.integers(0, 8))):
        n = draw(st.integers(1, 4))
        pods = [draw(_pod(f"j{j}-{k}", k)) for k in range(n)]
        if draw(st.booleans()):  # most jobs are alike pods
            pods = [Pod(**{**{f: getattr(pods[0], f) for f in pods[0].__slots__}, "name": f"j{j}-{k}", "index": k})
                    for k in range(n)]
        jobs.append(Job(
            name=f"j{j}", queue=f"p{draw(st.integers(0, len(queues) - 2))}",
            priority=draw(st.sampled_from([50, 75, 100, 125])), preemptible=draw(st.sampled_from([None, True, False])),
            min_available=draw(st.one_of(st.none(), st.integers(1, n))), created_order=j, pods=pods,
            node_pools=draw(st.one_of(st.none(), st.lists(st.sampled_from(POOLS), unique=True, max_size=2))),
        ))
    config = PlacementConfig(gpu=draw(st.sampled_from(["fragmentation-aware", "binpack", "spread"])),
                             device=draw(st.sampled_from(["pack", "spread"])))
    pool_config = {pool: PlacementConfig(gpu=draw(st.sampled_from(["binpack", "spread"])))
                   for pool in draw(st.sets(st.sampled_from(POOLS)))}
    snap = Snapshot(nodes=nodes, queues=queues, jobs=jobs, config=config, pool_config=pool_config,
                    now=1000.0, reclaim_min_runtime=draw(st.sampled_from([0.0, 600.0])))

    # some jobs already run: placed by the engine itself on the empty cluster, so that
    # the input is consistent; some of their pods then release or forget their device
    # indices (a shared group stands for them)
    first = [j for j in jobs if draw(st.booleans())]
    if first:
        placed = schedule(Snapshot(nodes=copy.deepcopy(nodes), queues=copy.deepcopy(queues),
                                   jobs=copy.deepcopy(first), config=config, pool_config=pool_config,
                                   actions=("allocate",)))
        pods = {(j.name, p.name): p for j in first for p in j.pods}
        for bind in placed.binds:
            pod = pods[(bind.job, bind.pod)]
            pod.status, pod.node, pod.devices = P.RUNNING, bind.node, list(bind.devices)
            pod.started_at = draw(st.sampled_from([None, 0.0, 990.0]))
            fate = draw(st.sampled_from(["run", "run", "release", "group"]))
            if fate == "release":
                pod.status = P.RELEASING
            elif fate == "group" and pod.is_fractional and len(bind.devices) == 1:
                pod.devices, pod.shared_group = None, f"{bind.node}/{bind.devices[0]}"
    return snap


def check_decisions(snap: Snapshot, res) -> None:
    """Every decision names what exists, and gangs end all or nothing."""
    nodes = {n.name: n for n in snap.nodes}
    pods = {(j.name, p.name): p for j in snap.jobs for p in j.pods}
    for bind in res.binds:
        assert (bind.job, bind.pod) in pods, bind
        assert bind.node in nodes, bind
        assert all(0 <= d < nodes[bind.node].gpus for d in bind.devices), bind
        assert len(set(bind.devices)) == len(bind.devices), bind
        assert 0 <= bind.fraction <= 1, bind
    bound = {(b.job, b.pod): b.node for b in res.binds}
    for evict in res.evictions:
        assert (evict.job, evict.pod) in pods, evict
        # a move says where to, truly: never "another node" for a move inside one node
        # (nor on a one-node cluster); a pod said to be evicted is not bound again
        if evict.reason.startswith("moved to"):
            new_node = bound.get((evict.job, evict.pod))
            assert new_node is not None, evict
            elsewhere = "other devices of the same node" if new_node == evict.node else "another node"
            assert evict.reason == f"moved to {elsewhere} to make room", (evict, new_node)
        else:
            assert (evict.job, evict.pod) not in bound, evict
            assert "node" not in evict.reason, evict
    state = result_state(snap, res)
    for j in snap.jobs:
        held = [p.name for p in j.pods if state[(j.name, p.name)]]
        # pods already ending (releasing) in the input still count for their gang until they are
        # gone: the engine did not shrink the gang, and stale-gang eviction acts once they ended
        ending = sum(1 for p in j.pods if p.status is P.RELEASING)
        assert not held or len(held) + ending >= j.gang_min, \
            f"{j.name} ends with {held} ({ending} ending), gang minimum {j.gang_min}"


def check(snap: Snapshot) -> None:
    res = schedule(copy.deepcopy(snap))  # must not raise
    check_decisions(snap, res)
    sess, _ctx, _before = run_session(copy.deepcopy(snap))
    check_no_overcommit(sess)


@_settings(EXAMPLES)
@given(arbitrary_snapshots())
def test_the_engine_never_raises_and_keeps_its_invariants(snap):
    check(snap)


@pytest.mark.slow
@_settings(1500)
@given(arbitrary_snapshots())
def test_the_engine_never_raises_deeper(snap):
    check(snap)


@pytest.mark.parametrize("pod", [
    Pod("a-0", cpu_millis=500),
    Pod("a-0", gpus=1),
    Pod("a-0", gpu_fraction=0.5),
    Pod("a-0", gpu_memory_mib=100, gpu_devices=2),
])
@pytest.mark.parametrize("pools", [None, ["a100"]])
def test_no_node_at_all(pod, pools):
    """With no node configured every cycle failed with IndexError; now the job waits."""
    snap = Snapshot(nodes=[], queues=[Queue("p")], jobs=[Job("a", "p", pods=[pod], node_pools=pools)])
    res = schedule(snap)
    assert not res.binds and "a" in res.pending_reasons


def test_a_shared_group_joins_a_device_other_fractions_hold():
    """A running fraction named only by its shared group, on a node whose every device
    already has fractional holders given by index, shares the device with the most room
    (the deeper run found this input: the cycle raised 'no free device')."""
    node = Node("n0", gpus=2, gpu_memory_mib=80000.0)
    held = [Pod("a-0", gpu_fraction=0.5, status=P.RUNNING, node="n0", devices=[0]),
            Pod("b-0", gpu_fraction=0.25, status=P.RUNNING, node="n0", devices=[1])]
    grouped = Pod("c-0", gpu_fraction=0.5, status=P.RUNNING, node="n0", shared_group="n0/1")
    waiting = Pod("d-0", gpu_fraction=0.5)
    jobs = [Job("a", "p", pods=[held[0]]), Job("b", "p", pods=[held[1]]),
            Job("c", "p", pods=[grouped]), Job("d", "p", pods=[waiting], created_order=1)]
    snap = Snapshot(nodes=[node], queues=[Queue("p")], jobs=jobs)
    res = schedule(copy.deepcopy(snap))
    check_decisions(snap, res)
    # c took device 1 (0.75 room before it), so device 0 is the one with room for d
    assert [(b.job, b.devices) for b in res.binds] == [("d", [0])]
    sess, _ctx, _before = run_session(copy.deepcopy(snap))
    check_no_overcommit(sess)


def test_a_shared_group_with_no_room_anywhere_is_an_inconsistent_snapshot():
    from jupyter_runai.scheduler.session import SchedulingError
    node = Node("n0", gpus=1, gpu_memory_mib=80000.0)
    jobs = [Job("a", "p", pods=[Pod("a-0", gpu_fraction=0.75, status=P.RUNNING, node="n0", devices=[0])]),
            Job("c", "p", pods=[Pod("c-0", gpu_fraction=0.5, status=P.RUNNING, node="n0", shared_group="g")])]
    with pytest.raises(SchedulingError, match="no device on node 'n0' has room for shared group 'g'"):
        schedule(Snapshot(nodes=[node], queues=[Queue("p")], jobs=jobs))
