"""Reclaim does not swing back and forth: cycles applied one after the other (as the
service and the Philly replay apply them) settle instead of evicting every cycle.

The loop this guards against (found by the Philly replay, 1.4 preemptions per job): a
project below its fair share whose first job is too big to fit, and a project above its
fair share with small jobs. With quotas on GPUs only (CPU and memory unmanaged, the
default), KAI's "above fair share in every resource" never held, so allocate gave a freed
GPU to the project above its share, and reclaim took it back for the other one - every
cycle, a new victim.
"""

from __future__ import annotations

from jupyter_runai.scheduler import schedule
from jupyter_runai.scheduler.types import (UNLIMITED, Job, Node, Pod, PodStatus, Queue, QueueResources,
                                           Snapshot)

R = PodStatus.RUNNING


def _queue(name: str, deserved: float, parent: str | None = "d", order: int = 0) -> Queue:
    return Queue(name=name, parent=parent, created_order=order,
                 resources={"gpu": QueueResources(deserved=deserved, weight=1.0),
                            "cpu": QueueResources(deserved=UNLIMITED),
                            "memory": QueueResources(deserved=UNLIMITED)})


def _running(name: str, queue: str, node: str, dev: int, order: int) -> Job:
    return Job(name, queue, created_order=order,
               pods=[Pod(f"{name}-0", gpus=1, status=R, node=node, devices=[dev], started_at=0.0)])


def _world() -> Snapshot:
    """8 GPUs (2 nodes of 4). a and b deserve 2 each, the rest is shared 1:1 (fair
    share 4 each). a runs 2 one-GPU jobs and waits with a gang of 2 x 4 GPUs (its
    first job) and a 1-GPU job; b runs 5 and waits with 3 more: one GPU is idle."""
    nodes = [Node("n0", gpus=4), Node("n1", gpus=4)]
    queues = [Queue("d"), _queue("a", 2, order=1), _queue("b", 2, order=2)]
    jobs = [_running("a-run0", "a", "n0", 0, 0), _running("a-run1", "a", "n0", 1, 1)]
    slots = [("n0", 2), ("n0", 3), ("n1", 0), ("n1", 1), ("n1", 2)]
    jobs += [_running(f"b-run{i}", "b", n, d, 10 + i) for i, (n, d) in enumerate(slots)]
    jobs.append(Job("a-gang", "a", created_order=20, pods=[Pod(f"a-gang-{k}", index=k, gpus=4) for k in range(2)]))
    jobs.append(Job("a-small", "a", created_order=21, pods=[Pod("a-small-0", gpus=1)]))
    jobs += [Job(f"b-new{i}", "b", created_order=30 + i, pods=[Pod(f"b-new{i}-0", gpus=1)]) for i in range(3)]
    return Snapshot(nodes=nodes, queues=queues, jobs=jobs)


def _apply(snap: Snapshot, res, now: float) -> None:
    """Evicted pods stop at once (back to pending), non-pipelined binds start."""
    pods = {p.name: p for j in snap.jobs for p in j.pods}
    evicted_jobs = {e.job for e in res.evictions}
    for j in snap.jobs:
        if j.name in evicted_jobs:
            for p in j.pods:
                p.status, p.node, p.devices, p.started_at = PodStatus.PENDING, None, None, None
    for b in res.binds:
        if not b.pipelined:
            p = pods[b.pod]
            p.status, p.node, p.devices, p.started_at = R, b.node, list(b.devices), now


def test_the_project_below_its_fair_share_gets_the_idle_gpu_in_allocate():
    snap = _world()
    res = schedule(snap)
    assert not res.evictions
    assert [b.pod for b in res.binds] == ["a-small-0"]


def test_cycles_settle_without_evicting_again_and_again():
    snap = _world()
    evictions = 0
    for cycle in range(6):
        snap.now = 60.0 * (cycle + 1)
        res = schedule(snap)
        evictions += len(res.evictions)
        _apply(snap, res, snap.now)
    assert evictions == 0
    running = {j.name for j in snap.jobs if any(p.status is R for p in j.pods)}
    assert "a-small" in running and "a-gang" not in running
