"""One scheduling cycle: a snapshot in, decisions out.

>>> from jupyter_runai.scheduler import schedule
>>> result = schedule(snapshot)          # doctest: +SKIP
>>> result.binds, result.evictions, result.pending_reasons   # doctest: +SKIP

The engine is pure: no I/O, no clock (the service passes ``now`` in the snapshot), no
randomness. The same snapshot always gives the same decisions.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from .actions import ACTIONS, Context, retarget_reason
from .pools import schedule_by_pool, uses_pool_quotas
from .session import HOLDS_QUOTA, P, Session
from .types import Bind, CycleResult, Evict, PodStatus, Snapshot
from .window import hold_back

ACTION_ORDER = ("allocate", "consolidate", "reclaim", "preempt", "stale_gang")


def run_actions(sess: Session, actions=ACTION_ORDER) -> Context:
    ctx = Context(sess)
    for name in actions:
        try:
            fn = ACTIONS[name]
        except KeyError:
            raise ValueError(f"unknown action {name!r}; known: {', '.join(ACTION_ORDER)}") from None
        fn(ctx)
    return ctx


def decisions(sess: Session, ctx: Context) -> CycleResult:
    """Turn the final session state into binds, evictions and pending reasons."""
    out = CycleResult()
    moved = {id(p) for g, p in sess.ghosts if g.status is P.RELEASING and p.status is P.PIPELINED}
    for ghost, p in sess.ghosts:
        if ghost.status is P.RELEASING:
            if p.status is P.PIPELINED:
                same = p.node is not None and p.node.name == ghost.node.name
                elsewhere = "other devices of the same node" if same else "another node"
                out.evictions.append(Evict(p.job.name, p.name, ghost.node.name, "consolidate",
                                           f"moved to {elsewhere} to make room"))
            else:  # moved, then stopped later in the cycle (a gang that fell apart)
                out.evictions.append(Evict(p.job.name, p.name, ghost.node.name, "evict",
                                           "evicted to make room for other work"))
    for p in sess.pods:
        orig = p.orig_status
        if p.status is P.ALLOCATED or (p.status is P.PIPELINED and (orig is not P.PIPELINED or id(p) in moved)):
            out.binds.append(Bind(p.job.name, p.name, p.node.name, list(p.devices), p.frac,
                                  p.status is P.PIPELINED, "allocate"))
        elif p.status is P.RELEASING and orig in (P.RUNNING, P.ALLOCATED):
            out.evictions.append(Evict(p.job.name, p.name, p.node.name, "evict",
                                       "evicted to make room for other work"))
        elif p.status is P.PENDING and orig is P.PIPELINED:
            out.evictions.append(Evict(p.job.name, p.name, p.orig_node or "", "evict",
                                       "reservation dropped"))
    for job in sess.jobs:
        if job.being_deleted:
            continue
        if any(p.status is P.PENDING for p in job.pods) and job.n_active < len(job.pods):
            reason = ctx.reasons.get(job.name)
            if reason is None:
                if job.n_active >= job.min:
                    reason = "running with its gang minimum; more pods start when capacity is free"
                else:
                    reason = "waiting for its turn in the queue"
            out.pending_reasons[job.name] = reason
    for q in sess.queues.values():
        out.fair_share[q.name] = {"gpu": q.fair[0], "cpu": q.fair[1], "memory": q.fair[2]}
    return out


def schedule_once(snapshot: Snapshot) -> CycleResult:
    """One full cycle over the whole snapshot, quotas cluster-wide (the waiting jobs that
    no action could reach left out: :mod:`.window`)."""
    jobs, held = hold_back(snapshot)
    if not held:
        sess = Session(snapshot)
    else:
        changes: dict = {"jobs": jobs}
        if not snapshot.workload_mix:
            # the placement learns the shapes to expect from every job, as without the window
            changes["workload_mix"] = [
                replace(j, pods=[p for p in j.pods if p.status is not PodStatus.RELEASING])
                for j in snapshot.jobs if not j.being_deleted]
        sess = Session(replace(snapshot, **changes), dict(Counter(held.values())))
    ctx = run_actions(sess, snapshot.actions)
    result = decisions(sess, ctx)
    reasons = result.pending_reasons
    if held:
        pods = {j.name: [p.name for p in j.pods] for j in snapshot.jobs if j.name in held or j.name in reasons}
        for name, ahead in held.items():
            reason = reasons.get(ahead)
            reasons[name] = (retarget_reason(reason, pods.get(ahead, []), pods.get(name, [])) if reason
                             else "waiting for its turn in the queue")
    return result


def schedule(snapshot: Snapshot) -> CycleResult:
    """Run one full cycle on ``snapshot`` and return the decisions. With per-pool quota
    blocks the cycle runs one pass per node pool (``pools.schedule_by_pool``)."""
    if uses_pool_quotas(snapshot):
        return schedule_by_pool(snapshot, schedule_once)
    return schedule_once(snapshot)


__all__ = ["schedule", "schedule_once", "run_actions", "decisions", "ACTION_ORDER", "HOLDS_QUOTA"]
