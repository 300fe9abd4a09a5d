"""Per-node-pool quotas: one scheduling pass per pool, a workload's pools tried in turn.

When any queue has a quota block of its own for a node pool (``Queue.pool_resources``),
quotas and fair share are divided **per pool**, as Run:ai does: each pool is its own
cluster with its own queue quotas (a queue without a block for a pool uses its
queue-wide block there). A cycle then runs in rounds:

* round 1: every pending job is offered to the first pool of its list (all pools, in
  node order, when it lists none) — one full cycle (allocate, consolidate, reclaim,
  preempt, stale-gang) per pool, with the jobs offered to it and the jobs already
  running there;
* round 2: the jobs still pending are offered to their second pool; and so on.

A job that runs (or is being placed) in a pool stays in that pool: its further pods
(elastic replicas) are placed there. Binds and evictions of all passes are merged; a
job still pending gets the reasons of every pool it was offered to. Without any
per-pool block the engine runs one pass over the whole cluster (``engine.schedule``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

from .types import Bind, CycleResult, Job, Pod, PodStatus, Queue, Snapshot

__all__ = ["pool_queues", "schedule_by_pool", "uses_pool_quotas"]


def uses_pool_quotas(snapshot: Snapshot) -> bool:
    """True when some queue has a quota block for a node pool."""
    return any(q.pool_resources for q in snapshot.queues)


def pool_queues(queues: list[Queue], pool: str) -> list[Queue]:
    return [replace(q, resources=q.pool_resources.get(pool, q.resources), pool_resources={}) for q in queues]


def _copy_job(job: Job) -> Job:
    return replace(job, pods=[replace(p, devices=list(p.devices) if p.devices is not None else None)
                              for p in job.pods])


def schedule_by_pool(snapshot: Snapshot, run: Callable[[Snapshot], CycleResult]) -> CycleResult:
    """One cycle with per-pool quotas; ``run`` is the single-pass cycle (``engine.schedule_once``)."""
    pool_of = {n.name: n.pool for n in snapshot.nodes}
    pools = list(dict.fromkeys(n.pool for n in snapshot.nodes))
    jobs = [_copy_job(j) for j in snapshot.jobs]
    pods = {p.name: p for j in jobs for p in j.pods}
    home: dict[str, str] = {}  # job -> the pool it runs in
    for job in jobs:
        for p in job.pods:
            if p.node is not None and p.node in pool_of:
                home[job.name] = pool_of[p.node]
                break
    offers = {j.name: [p for p in (j.node_pools or pools) if p in pools] for j in jobs}
    out = CycleResult()
    bound: set[str] = set()
    reasons: dict[str, dict[str, str]] = {}  # job -> pool -> why it waits there
    fair: dict[str, dict[str, float]] = {}
    rounds = max((len(o) for o in offers.values()), default=0)
    for turn in range(max(rounds, 1)):
        for pool in pools:
            here = []
            offered = []
            for job in jobs:
                if home.get(job.name) == pool:
                    here.append(job)
                elif job.name not in home and turn < len(offers[job.name]) and offers[job.name][turn] == pool:
                    here.append(job)
                    offered.append(job)
            if not any(p.status is PodStatus.PENDING for j in here for p in j.pods):
                continue
            sub = Snapshot(nodes=[n for n in snapshot.nodes if n.pool == pool],
                           queues=pool_queues(snapshot.queues, pool), jobs=here, config=snapshot.config,
                           pool_config=snapshot.pool_config, now=snapshot.now, actions=snapshot.actions,
                           reclaim_min_runtime=snapshot.reclaim_min_runtime,
                           preempt_min_runtime=snapshot.preempt_min_runtime,
                           workload_mix=[j for j in snapshot.workload_mix
                                         if not j.node_pools or pool in j.node_pools])
            result = run(sub)
            for b in result.binds:
                if b.pod in bound:
                    continue
                bound.add(b.pod)
                out.binds.append(b)
                _apply_bind(pods[b.pod], b)
                home.setdefault(b.job, pool)
            for e in result.evictions:
                out.evictions.append(e)
                pod = pods.get(e.pod)
                if pod is not None and pod.status is not PodStatus.PENDING:
                    pod.status = PodStatus.RELEASING
            for job in offered + [j for j in here if j not in offered]:
                if job.name in result.pending_reasons:
                    reasons.setdefault(job.name, {})[pool] = result.pending_reasons[job.name]
            for queue, share in result.fair_share.items():
                total = fair.setdefault(queue, {})
                for resource, value in share.items():
                    total[resource] = total.get(resource, 0.0) + value
    for job in jobs:
        if any(p.status is PodStatus.PENDING for p in job.pods) and job.name in reasons:
            out.pending_reasons[job.name] = "; ".join(f"node pool {pool}: {why}"
                                                      for pool, why in reasons[job.name].items())
    out.fair_share = fair
    return out


def _apply_bind(pod: Pod, bind: Bind) -> None:
    """The pod as later passes see it: placed in this cycle (never a victim), or pipelined."""
    pod.status = PodStatus.PIPELINED if bind.pipelined else PodStatus.ALLOCATED
    pod.node = bind.node
    pod.devices = list(bind.devices)
