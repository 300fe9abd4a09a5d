"""Engine rules that the speed work relies on: placement ties and victim-search skips.

These are decisions, not timings (the benchmarks print timings; no test asserts one).
"""

from __future__ import annotations

from jupyter_runai.scheduler import schedule
from jupyter_runai.scheduler.types import Job, Node, Pod, PodStatus, Queue, QueueResources, Snapshot

R = PodStatus.RUNNING


def _queue(name: str, gpus: float, parent: str | None = None, order: int = 0) -> Queue:
    return Queue(name=name, parent=parent, created_order=order,
                 resources={"gpu": QueueResources(deserved=gpus)})


def test_ties_go_to_the_node_listed_first_whatever_was_placed_before():
    # n1's running pod is placed first when the session is built (index 0), then
    # n0's: both nodes end with one idle GPU. A new 1-GPU pod binpacks onto a node
    # with one idle GPU; the tie goes to n0, the node listed first.
    nodes = [Node(name="n0", gpus=2), Node(name="n1", gpus=2), Node(name="n2", gpus=2)]
    jobs = [
        Job(name="run-a", queue="p", pods=[Pod(name="run-a-0", index=0, gpus=1, status=R, node="n1")]),
        Job(name="run-b", queue="p", pods=[Pod(name="run-b-0", index=1, gpus=1, status=R, node="n0")]),
        Job(name="new", queue="p", pods=[Pod(name="new-0", gpus=1)]),
    ]
    snap = Snapshot(nodes=nodes, queues=[_queue("p", 6)], jobs=jobs)
    binds = {b.pod: b.node for b in schedule(snap).binds}
    assert binds == {"new-0": "n0"}


def test_consolidation_still_runs_when_idle_gpus_cover_a_job_exactly():
    # consolidate is skipped as a whole only when no pending job's GPUs are covered by
    # the idle ones; here 2 idle GPUs (one per node) cover the 2-GPU job exactly, and
    # moving one running pod lets it bind.
    nodes = [Node(name="n0", gpus=2), Node(name="n1", gpus=2)]
    jobs = [
        Job(name="run-a", queue="p", pods=[Pod(name="run-a-0", gpus=1, status=R, node="n0")]),
        Job(name="run-b", queue="p", pods=[Pod(name="run-b-0", gpus=1, status=R, node="n1")]),
        Job(name="new", queue="p", pods=[Pod(name="new-0", gpus=2)]),
    ]
    snap = Snapshot(nodes=nodes, queues=[_queue("p", 4)], jobs=jobs)
    res = schedule(snap)
    binds = {b.pod: (b.node, b.pipelined) for b in res.binds}
    assert binds == {"new-0": ("n1", True), "run-b-0": ("n0", True)}  # the newer job moves
    assert [(e.pod, e.action) for e in res.evictions] == [("run-b-0", "consolidate")]
    assert "new" not in res.pending_reasons
