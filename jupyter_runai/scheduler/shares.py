"""Every queue's fair share for a snapshot, without running a cycle's actions.

A cycle computes the fair shares first and keeps them fixed while its actions run
(``Session``), so the numbers here are the ones :func:`~.engine.schedule` would report for
the same snapshot. The service asks for them when it skips the engine because nothing
waits, so that views and metrics show the fair share of the work that runs now, not that of
the last cycle that scheduled something. Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import replace

from .pools import pool_queues, uses_pool_quotas
from .session import Session
from .types import Snapshot

__all__ = ["fair_shares"]


def _of_session(snapshot: Snapshot) -> dict[str, dict[str, float]]:
    sess = Session(snapshot)
    return {q.name: {"gpu": q.fair[0], "cpu": q.fair[1], "memory": q.fair[2]} for q in sess.queues.values()}


def fair_shares(snapshot: Snapshot) -> dict[str, dict[str, float]]:
    """``{queue: {"gpu", "cpu", "memory": fair share}}`` for every queue of ``snapshot``. With
    per-pool quotas, the sum over the node pools of each pool's division among the jobs that run
    there (as :func:`~.pools.schedule_by_pool` adds them up); a job that runs nowhere asks for
    nothing then."""
    if not uses_pool_quotas(snapshot):
        return _of_session(snapshot)
    pool_of = {n.name: n.pool for n in snapshot.nodes}
    home = {job.name: pool_of[p.node] for job in snapshot.jobs for p in reversed(job.pods)
            if p.node is not None and p.node in pool_of}
    total: dict[str, dict[str, float]] = {}
    for pool in dict.fromkeys(n.pool for n in snapshot.nodes):
        sub = replace(snapshot, nodes=[n for n in snapshot.nodes if n.pool == pool],
                      queues=pool_queues(snapshot.queues, pool),
                      jobs=[j for j in snapshot.jobs if home.get(j.name) == pool])
        for queue, share in _of_session(sub).items():
            into = total.setdefault(queue, {})
            for resource, value in share.items():
                into[resource] = into.get(resource, 0.0) + value
    return total
