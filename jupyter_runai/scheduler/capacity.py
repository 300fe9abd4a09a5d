"""Queue capacity rules: limits, the non-preemptible quota, and when reclaim is fair.

* **Limit** — at every level of the tree, usage plus the job's request stays within
  the queue's limit, for every resource that has one.
* **Non-preemptible quota** — a non-preemptible job (workspace, inference, build)
  only runs inside deserved quota: at every level, the non-preemptible usage plus the
  job stays within deserved.
* **May reclaim** — a job may take resources back from other queues only while its
  project stays within its fair share with the job (and, non-preemptible, within
  deserved).
* **Reclaimable** — a set of victims may be taken when, for each victim chunk in
  turn, the victim's side (the two queues compared are the siblings under the lowest
  common ancestor) is still above its allocatable share (*maintain fair share*), or
  the reclaimer's side stays within deserved while the victim's is above deserved
  (*guarantee deserved quota*); and, walking up the reclaimer's ancestry, a reclaimer
  above its fair share never ends up relatively richer than a sibling it takes from.
"""

from __future__ import annotations

from .ordering import le, vec_le
from .session import QueueState, Session
from .types import UNLIMITED

RES_NAMES = ("GPU", "CPU", "memory")


def _fmt(r: int, v: float) -> str:
    if r == 0:
        return f"{v:g} GPU{'s' if v != 1 else ''}"
    if r == 1:
        return f"{v / 1000:g} CPU cores"
    return f"{v / 1e9:.3g} GB of memory"


def over_limit(queue: QueueState, req) -> str | None:
    """The reason the request would break a limit somewhere up the tree, else None."""
    for q in queue.path:
        for r in range(3):
            lim = q.limit[r]
            if lim == UNLIMITED or req[r] <= 0:
                continue
            if q.alloc[r] + req[r] > lim + 1e-9:
                kind = "project" if q.is_leaf else "department"
                return (f"{kind} {q.name!r} limit: {_fmt(r, q.alloc[r])} in use + {_fmt(r, req[r])} requested "
                        f"> limit of {_fmt(r, lim)}")
    return None


def nonpreemptible_over_quota(queue: QueueState, req) -> str | None:
    for q in queue.path:
        for r in range(3):
            des = q.deserved[r]
            if des == UNLIMITED or req[r] <= 0:
                continue
            if q.alloc_np[r] + req[r] > des + 1e-9:
                kind = "project" if q.is_leaf else "department"
                return (f"non-preemptible workloads run only within deserved quota: {kind} {q.name!r} has "
                        f"{_fmt(r, q.alloc_np[r])} of non-preemptible work + {_fmt(r, req[r])} requested "
                        f"> deserved {_fmt(r, des)}")
    return None


def admission_reason(queue: QueueState, req, preemptible: bool) -> str | None:
    reason = over_limit(queue, req)
    if reason is None and not preemptible:
        reason = nonpreemptible_over_quota(queue, req)
    return reason


def may_reclaim(queue: QueueState, req, preemptible: bool) -> str | None:
    """None when the job may reclaim; else why not."""
    with_job = [queue.alloc[r] + req[r] for r in range(3)]
    if not vec_le(with_job, queue.fair):
        for r in range(3):
            if not le(with_job[r], queue.fair[r]):
                return (f"project {queue.name!r} would be above its fair share of {_fmt(r, queue.fair[r])} "
                        f"({_fmt(r, with_job[r])} with this workload), so it cannot take resources back from other projects")
    if not preemptible:
        with_np = [queue.alloc_np[r] + req[r] for r in range(3)]
        if not vec_le(with_np, queue.deserved):
            return f"project {queue.name!r} would be above its deserved quota with this non-preemptible workload"
    return None


def _leveled(a: QueueState, b: QueueState) -> tuple[QueueState, QueueState]:
    pa, pb = a.path[::-1], b.path[::-1]
    ra, rb = pa[0], pb[0]
    for i in range(min(len(pa), len(pb))):
        ra, rb = pa[i], pb[i]
        if ra is not rb:
            break
    return ra, rb


def _sat(alloc: float, fair: float) -> float:
    if fair == 0:
        return float("inf") if alloc > 0 else 0.0
    if fair == UNLIMITED:
        return 0.0
    return alloc / fair


def reclaimable(sess: Session, queue: QueueState, req, preemptible: bool,
                chunks_by_queue: dict[QueueState, list[tuple[float, float, float]]],
                multiplier: float = 1.0) -> bool:
    """KAI's reclaim validation for taking ``chunks_by_queue`` for a job of ``queue``."""
    remaining: dict[QueueState, list[float]] = {}
    involved: dict[QueueState, set[int]] = {}
    for vq, chunks in chunks_by_queue.items():
        rq_l, vq_l = _leveled(queue, vq)
        inv = {r for c in chunks for r in range(3) if c[r] > 0}
        involved.setdefault(vq, set()).update(inv)
        rem = remaining.setdefault(vq_l, list(vq_l.alloc))
        for chunk in chunks:
            maintain = not vec_le(rem, [vq_l.allocatable(r) for r in range(3)])
            if not maintain:
                with_job = [rq_l.alloc[r] + req[r] for r in range(3)]
                guarantee = vec_le(with_job, rq_l.deserved) and not vec_le(rem, vq_l.deserved)
                if not guarantee:
                    return False
            for q in vq.path:
                qr = remaining.setdefault(q, list(q.alloc))
                for r in range(3):
                    qr[r] -= chunk[r]
                involved.setdefault(q, set()).update(inv)
    reclaimer_inv = {r for r in range(3) if req[r] > 0}
    for rq in queue.path:
        base = remaining.get(rq, rq.alloc)
        rem_r = [base[r] + req[r] for r in range(3)]
        for sib, sib_rem in remaining.items():
            if sib.parent is not rq.parent or sib is rq:
                continue
            for r in involved.get(sib, set()) | reclaimer_inv:
                ratio_r = _sat(rem_r[r], rq.fair[r])
                ratio_s = _sat(sib_rem[r], sib.fair[r])
                if ratio_r > 1 and sib.fair[r] > 0 and ratio_r * multiplier >= ratio_s:
                    return False
        if not preemptible:
            with_np = [rq.alloc_np[r] + req[r] for r in range(3)]
            if not vec_le(with_np, rq.deserved):
                return False
    return True
