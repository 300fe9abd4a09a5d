"""Which waiting jobs one cycle needs to look at.

A project with a deep backlog of alike workloads (hundreds of one-GPU training jobs, say)
cannot start all of them in one cycle: its limit (and its department's, and the
cluster's size) bounds how many of them can hold resources at once. Every action of a
cycle tries the alike waiting jobs of a project in their order and stops trying that kind
at its first failure (a shape that does not fit, a limit, a victim search that failed),
so a cycle never gets past the first ``floor(capacity / request) + 1`` of them, where
``capacity`` is the smallest limit on the project's path (or the cluster's size) in the
resource that binds first.

:func:`hold_back` leaves the jobs behind that bound out of the cycle's snapshot: they
keep their place in the queue, still count in their project's demand for the fair share
(the same shares as with every job in), and get the reason their kind's last job in the
cycle got. Alike means everything the engine looks at when it orders and places a
waiting job: project, priority, preemptibility, gang minimum, node pools and each pod's
request and constraints; only jobs that have no pod placed yet are counted.

What may differ from a cycle over every job (docs/semantics.md, "A deep backlog"): the
walk orders projects by their next job, and a held-back job is never that job; and an
admission that fails for a project's job in reclaim may pass for a later one when other
projects reclaimed from that project meanwhile. Wherever compared (tests/test_engine_order.py,
snapshots of Kueue's baseline shape) the decisions were the same.
"""

from __future__ import annotations

import math

from .types import UNLIMITED, Job, PodStatus, Snapshot

__all__ = ["hold_back"]

_RES_KEYS = ("gpu", "cpu", "memory")


def _pod_kind(p) -> tuple:
    return (p.gpus, p.gpu_fraction, p.gpu_memory_mib, p.gpu_devices, p.cpu_millis, p.memory_bytes,
            p.shared_group, p.task_priority,
            tuple(sorted((k, tuple(v)) for k, v in p.node_affinity.items())) if p.node_affinity else None)


def _kind(job: Job) -> tuple | None:
    """What makes two waiting jobs alike for the engine; None: a job that is not only waiting."""
    if job.being_deleted:
        return None
    pending = PodStatus.PENDING
    for p in job.pods:
        if p.status is not pending or p.node is not None:
            return None
    pods = job.pods
    if len(pods) == 1:
        shapes: tuple = (_pod_kind(pods[0]),)
    else:
        shapes = tuple(_pod_kind(p) for p in pods)
    return (job.queue, job.priority, job.is_preemptible, job.min_available, len(pods),
            tuple(job.node_pools) if job.node_pools else None, shapes)


def _request(job: Job) -> tuple[float | None, float, float]:
    """The job's request against quota (GPUs: None when given as GPU memory, which the
    engine converts against the smallest device)."""
    g: float | None = 0.0
    c = m = 0.0
    for p in job.pods:
        if p.gpu_fraction is not None:
            g = None if g is None else g + p.gpu_fraction * max(1, int(p.gpu_devices or 1))
        elif p.gpu_memory_mib is not None:
            g = None
        elif g is not None:
            g += float(p.gpus or 0)
        c += float(p.cpu_millis or 0.0)
        m += float(p.memory_bytes or 0.0)
    return g, c, m


def hold_back(snapshot: Snapshot) -> tuple[list[Job], dict[str, str]]:
    """The jobs the cycle looks at (in snapshot order) and, for every job left out, the
    last job of its kind that the cycle looks at (what it waits behind)."""
    queues = {q.name: q for q in snapshot.queues}
    totals = (float(sum(n.gpus for n in snapshot.nodes)), float(sum(n.cpu_millis for n in snapshot.nodes)),
              float(sum(n.memory_bytes for n in snapshot.nodes)))
    caps: dict[str, tuple[float, float, float]] = {}

    def capacity(name: str) -> tuple[float, float, float]:
        hit = caps.get(name)
        if hit is None:
            cap = list(totals)
            seen: set[str] = set()
            q = queues.get(name)
            while q is not None and q.name not in seen:
                seen.add(q.name)
                for r, key in enumerate(_RES_KEYS):
                    block = q.resources.get(key)
                    if block is not None and block.limit is not None and block.limit != UNLIMITED:
                        cap[r] = min(cap[r], float(block.limit))
                q = queues.get(q.parent) if q.parent is not None else None
            hit = caps[name] = (cap[0], cap[1], cap[2])
        return hit

    bound: dict[tuple, int] = {}  # kind -> how many of it the cycle looks at
    seen_count: dict[tuple, int] = {}
    last: dict[tuple, str] = {}
    kept: list[Job] = []
    held: dict[str, str] = {}
    # the engine's order inside a project: created_order, then snapshot order
    jobs = snapshot.jobs
    order: range | list[int] = range(len(jobs))
    if any(jobs[i].created_order > jobs[i + 1].created_order for i in range(len(jobs) - 1)):
        order = sorted(order, key=lambda i: (jobs[i].created_order, i))
    keep = [True] * len(jobs)
    for i in order:
        job = jobs[i]
        kind = _kind(job)
        if kind is None:
            continue
        n = bound.get(kind)
        if n is None:
            req = _request(job)
            cap = capacity(job.queue)
            n = math.inf
            for r in range(3):
                if req[r] is not None and req[r] > 0:
                    n = min(n, math.floor(cap[r] / req[r] + 1e-9) + 1)
            bound[kind] = n
        k = seen_count.get(kind, 0)
        if k < n:
            seen_count[kind] = k + 1
            last[kind] = job.name
        else:
            keep[i] = False
            held[job.name] = last[kind]
    if not held:
        return list(snapshot.jobs), {}
    kept = [job for i, job in enumerate(snapshot.jobs) if keep[i]]
    return kept, held
