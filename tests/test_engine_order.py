"""Engine rules that the speed work relies on: placement ties and victim-search skips.

These are decisions, not timings (the benchmarks print timings; no test asserts one).
"""

from __future__ import annotations

import random

import pytest

from jupyter_runai.scheduler import schedule
from jupyter_runai.scheduler.actions import retarget_reason
from jupyter_runai.scheduler.engine import decisions, run_actions
from jupyter_runai.scheduler.session import Session
from jupyter_runai.scheduler.types import Job, Node, Pod, PodStatus, Queue, QueueResources, Snapshot
from jupyter_runai.scheduler.window import hold_back

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


# ----------------------------------------------------------------- deep backlogs
def _full_cycle(snap: Snapshot):
    """One cycle over every job of the snapshot (no job held back)."""
    sess = Session(snap)
    return decisions(sess, run_actions(sess, snap.actions))


def _outcome(res):
    return ([(b.job, b.pod, b.node, tuple(b.devices), b.fraction, b.pipelined) for b in res.binds],
            sorted((e.job, e.pod, e.action) for e in res.evictions), dict(sorted(res.pending_reasons.items())))


def _backlog(seed: int) -> Snapshot:
    """Two departments of three projects with limits, part of the cluster running work of
    mixed priority, and a backlog of a few kinds of alike jobs per project, deeper than
    the limits could ever admit in one cycle."""
    rng = random.Random(seed)
    nodes = [Node(name=f"n{i}", gpus=8) for i in range(6)]  # 48 GPUs
    queues = []
    for d in range(2):
        queues.append(Queue(name=f"d{d}", created_order=d,
                            resources={"gpu": QueueResources(deserved=24, limit=rng.choice([24, 30]))}))
        for p in range(3):
            queues.append(Queue(name=f"p{d}{p}", parent=f"d{d}", created_order=10 + 3 * d + p,
                                resources={"gpu": QueueResources(deserved=8, limit=rng.choice([8, 12, 20]))}))
    kinds = [(1, 1, 50), (2, 4, 75), (1, 8, 100), (1, 2, 50)]  # (GPUs per pod, pods, priority)
    jobs: list[Job] = []
    free = {n.name: n.gpus for n in nodes}
    order = 0
    for q in (q for q in queues if q.parent):
        for k in range(rng.randint(2, 5)):  # running one-GPU jobs of either priority
            node = rng.choice([n for n, g in free.items() if g > 0])
            free[node] -= 1
            jobs.append(Job(name=f"{q.name}-run{k}", queue=q.name, priority=rng.choice([50, 100]), preemptible=True,
                            created_order=order, pods=[Pod(name=f"{q.name}-run{k}-0", gpus=1, status=R, node=node)]))
            order += 1
    for i in range(400):
        q = rng.choice([q for q in queues if q.parent])
        gpus, pods, priority = rng.choice(kinds)
        name = f"{q.name}-w{i}"
        jobs.append(Job(name=name, queue=q.name, priority=priority, preemptible=True, created_order=order,
                        pods=[Pod(name=f"{name}-{j}", index=j, gpus=gpus) for j in range(pods)]))
        order += 1
    rng.shuffle(jobs)  # snapshot order is not the jobs' age
    return Snapshot(nodes=nodes, queues=queues, jobs=jobs)


@pytest.mark.parametrize("seed", range(6))
def test_a_deep_backlog_of_alike_jobs_gets_the_same_decisions_and_reasons(seed):
    # schedule() leaves out of the cycle the alike waiting jobs behind the first
    # floor(limit / request) + 1 of each project (window.py): binds, evictions and the
    # pending reasons of the jobs it looks at are those of a cycle over all of them; a
    # job held back gets the reason of the job of its kind it waits behind (the same
    # words about its own pods; the figures in them are those of that job's turn)
    snap = _backlog(seed)
    kept, held = hold_back(snap)
    assert held and len(kept) < len(snap.jobs)
    binds, evictions, reasons = _outcome(schedule(snap))
    full_binds, full_evictions, full_reasons = _outcome(_full_cycle(snap))
    assert (binds, evictions) == (full_binds, full_evictions)
    assert reasons.keys() == full_reasons.keys()
    assert {k: v for k, v in reasons.items() if k not in held} == {
        k: v for k, v in full_reasons.items() if k not in held}
    # the words of the job it waits behind, about its own pods
    pods = {j.name: [p.name for p in j.pods] for j in snap.jobs}
    for name, ahead in held.items():
        assert reasons[name] == retarget_reason(reasons[ahead], pods[ahead], pods[name])
        assert not any(p in reasons[name] for p in pods[ahead])
    strip = str.maketrans("", "", "0123456789")
    assert all(reasons[name].translate(strip) == full_reasons[name].translate(strip) for name in held)


def test_held_back_jobs_count_in_the_fair_share_and_wait_behind_their_kind():
    # p0 (limit 2) has 50 one-GPU jobs waiting; p1 has none. p0's demand is 50 GPUs,
    # not the 3 the cycle looks at: its fair share is what it would be with all of them.
    nodes = [Node(name="n0", gpus=8)]
    queues = [Queue(name="p0", created_order=0, resources={"gpu": QueueResources(deserved=1, limit=2)}),
              Queue(name="p1", created_order=1, resources={"gpu": QueueResources(deserved=1)})]
    jobs = [Job(name=f"j{i}", queue="p0", created_order=i, pods=[Pod(name=f"j{i}-0", gpus=1)]) for i in range(50)]
    snap = Snapshot(nodes=nodes, queues=queues, jobs=jobs)
    kept, held = hold_back(snap)
    assert [j.name for j in kept] == ["j0", "j1", "j2"] and held == {f"j{i}": "j2" for i in range(3, 50)}
    res = schedule(snap)
    full = _full_cycle(snap)
    assert res.fair_share == full.fair_share
    assert [b.job for b in res.binds] == ["j0", "j1"]
    assert res.pending_reasons["j49"] == res.pending_reasons["j2"] == full.pending_reasons["j49"]
    assert "limit" in res.pending_reasons["j49"]
