"""Fair-share division of cluster resources among a tree of queues.

This module decides, for every queue and every resource (GPU devices, CPU
millicores, memory bytes, ...), how much of the cluster the queue is *entitled*
to right now: its **fair share**.  The scheduling engine runs it once per
cycle and then orders and reclaims work by comparing what queues use against
these numbers.  It follows the resource division of KAI-Scheduler's
proportion plugin, number for number (plain float64 arithmetic, the same order
of operations), as written down in ``shared/scenarios/FAIRSHARE.md`` §4-§6.

How one level of sibling queues divides an amount of one resource
-----------------------------------------------------------------

*Requestable* means ``min(limit, request)``, or just ``request`` when the limit
is ``-1`` (none).  Every queue starts from its current ``fair_share`` and only
ever gains.

1. **Deserved phase.**  Every sibling receives ``min(deserved, requestable)``;
   a deserved of ``-1`` (unlimited) stands for the whole amount divided at this
   level.  The amount is *not* a cap here: quotas that add up to more than the
   amount are all honoured, and fair shares may then add up to more than the
   capacity.  What is left is ``amount - (sum of what was given)``; when that is
   zero or negative the division stops and reports 0 left.

2. **Over-quota phase.**  What is left is spread among queues that still want
   more, by priority and weight:

   a. Siblings are grouped by ``priority``; the groups (buckets) are served
      highest priority first, each one dividing whatever the previous buckets
      did not hand out -- including the fractions they rounded away.

   b. Inside a bucket the division runs in *rounds*.  A round looks at the
      queues that still want more (request above fair share, and limit, if
      any, above fair share).  Their over-quota weights are normalised twice:
      first each weight is divided by the total weight ``W`` of those queues,
      then these fractions are divided again by their own sum (the second step
      is where KAI's optional time-based term would enter; with it switched
      off it only matters for the last bits of the float result).  Each queue
      with a non-zero weight is offered ``portion = round amount x its
      normalised weight``:

      * if what it still wants fits in the portion, it gets exactly that
        (fractions included) and is done;
      * otherwise it gets the *whole units* of its portion (``floor``) and the
        fractional part is remembered as its leftover claim, replacing any
        claim it had from an earlier round.

      Another round is run only when some queue needed less than its portion
      and something is still left, so that the unused part flows to the
      queues that are still hungry.  Weight 0 means never anything above the
      deserved amount, however idle the cluster.

   c. Finally the rounding leftovers are handed out: bucket by bucket, highest
      priority first, the remembered claims are sorted by size (largest first),
      then age (older queue first), then uid; each claimant receives one unit,
      or the last fraction if less than one unit is left, while anything is
      left.  This hand-out is not capped by the queue's request or limit.

   Whatever no queue can take stays undivided and is returned to the caller.

3. A whole tree is divided top-down: the top-level queues divide the cluster
   totals, then the children of every queue divide *that queue's* fair share
   (each resource independently), and so on down to the leaves.  A child may
   end up with more than its parent (deserved phase is not capped).

Missing resources
-----------------
A resource absent from one of a queue's dicts takes the value of a queue that
does not care about that resource: ``deserved`` 0, ``limit`` -1 (no limit),
``weight`` 0 and ``request`` 0 -- so the queue receives nothing of it -- and a
missing ``fair_share`` starts from 0.  (KAI's Go zero value has limit 0 instead
of -1; with a request of 0 both give the same result.)  After a division the
queue's ``fair_share`` holds an entry for every divided resource.

Iteration order
---------------
KAI iterates Go maps, that is, in random order.  Here siblings are always
visited oldest first (``created_order``, then ``uid``), so results are
deterministic; the order can only move the last bit of a float sum.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import floor

__all__ = [
    "UNLIMITED",
    "ShareQueue",
    "set_resource_share",
    "divide_over_quota",
    "set_resources_share",
    "set_fair_share_tree",
]

UNLIMITED = -1.0
"""Marks an unlimited ``deserved`` (the level's whole amount) or no ``limit``."""


@dataclass(slots=True)
class ShareQueue:
    """One queue as the fair-share division sees it.

    All per-resource dicts are keyed by resource name (``"gpu"``,
    ``"cpu_millis"``, ``"memory_bytes"`` or anything else, used consistently).
    See the module docstring for what a missing key means.
    """

    name: str
    parent: str | None
    priority: int  # higher is served first over quota
    created_order: int  # age rank, 0 = oldest (a strict order)
    deserved: dict[str, float]  # -1 = unlimited
    limit: dict[str, float]  # -1 = no limit; 0 is a real limit of zero
    weight: dict[str, float]  # over-quota weight; 0 = nothing over quota
    request: dict[str, float]  # as given, parents included
    fair_share: dict[str, float] = field(default_factory=dict)  # updated in place
    uid: str = ""  # last tie-break; defaults to name

    def __post_init__(self) -> None:
        if not self.uid:
            self.uid = self.name


def _age_key(q: ShareQueue) -> tuple[int, str]:
    return (q.created_order, q.uid or q.name)


def _requestable(request: float, limit: float) -> float:
    if limit == UNLIMITED:
        return request
    return limit if limit < request else request


def set_resource_share(amount: float, queues: list[ShareQueue], resource: str) -> float:
    """Divide ``amount`` of ``resource`` among the sibling ``queues``.

    Runs the deserved phase and then, if anything is left, the over-quota
    phase.  Each queue's ``fair_share[resource]`` is increased in place.
    Returns the amount left undivided, never below 0 (the deserved phase may
    hand out more than ``amount``).
    """
    amount = float(amount)
    ordered = sorted(queues, key=_age_key) if len(queues) > 1 else queues
    remaining = amount
    for q in ordered:
        deserved = q.deserved.get(resource, 0.0)
        if deserved == UNLIMITED:
            deserved = amount
        requestable = _requestable(q.request.get(resource, 0.0), q.limit.get(resource, UNLIMITED))
        give = deserved if deserved < requestable else requestable
        q.fair_share[resource] = float(q.fair_share.get(resource, 0.0) + give)
        remaining -= give
    if remaining > 0:
        return _over_quota(remaining, ordered, resource)
    return 0.0


def divide_over_quota(amount: float, queues: list[ShareQueue], resource: str) -> float:
    """Run only the over-quota phase: divide ``amount`` above current fair shares.

    Each queue starts from its current ``fair_share[resource]`` (normally its
    deserved share).  Returns what no queue could take.
    """
    ordered = sorted(queues, key=_age_key) if len(queues) > 1 else queues
    return _over_quota(float(amount), ordered, resource)


def _over_quota(amount: float, ordered: list[ShareQueue], resource: str) -> float:
    """Over-quota phase on queues already sorted oldest first."""
    # Group by priority, keeping the age order inside each bucket.
    buckets: dict[int, list[ShareQueue]] = {}
    for q in ordered:
        bucket = buckets.get(q.priority)
        if bucket is None:
            buckets[q.priority] = [q]
        else:
            bucket.append(q)
    priorities = sorted(buckets, reverse=True) if len(buckets) > 1 else list(buckets)

    remaining = amount
    claims_by_bucket: list[tuple[list[ShareQueue], dict[int, float], list[float]]] = []
    for prio in priorities:
        bucket = buckets[prio]
        remaining, claims, shares = _divide_bucket(remaining, bucket, resource)
        claims_by_bucket.append((bucket, claims, shares))

    # Hand the rounding leftovers out, highest bucket first, one unit each.
    for bucket, claims, shares in claims_by_bucket:
        if remaining <= 0:
            break
        if not claims:
            continue
        # Largest leftover first, then older queue, then uid (bucket is age-ordered,
        # so the index already encodes age and uid).
        for i in sorted(claims, key=lambda i: (-claims[i], i)):
            if remaining == 0:
                break
            give = 1.0 if remaining > 1.0 else remaining
            shares[i] += give
            remaining -= give

    for bucket, _claims, shares in claims_by_bucket:
        for q, share in zip(bucket, shares):
            q.fair_share[resource] = float(share)
    return remaining


def _divide_bucket(
    amount: float, bucket: list[ShareQueue], resource: str
) -> tuple[float, dict[int, float], list[float]]:
    """Weighted rounds inside one priority bucket.

    Returns what is left, the leftover claims (bucket index -> fractional part
    not given) and the bucket's new fair shares (same order as ``bucket``).
    """
    n = len(bucket)
    shares = [q.fair_share.get(resource, 0.0) for q in bucket]
    requests = [q.request.get(resource, 0.0) for q in bucket]
    limits = [q.limit.get(resource, UNLIMITED) for q in bucket]
    weights = [q.weight.get(resource, 0.0) for q in bucket]
    requestables = [_requestable(requests[i], limits[i]) for i in range(n)]
    claims: dict[int, float] = {}
    norm = [0.0] * n
    remaining = amount

    while True:
        round_amount = remaining

        # Total weight of the queues that can still take something.
        total_weight = 0.0
        for i in range(n):
            if requestables[i] - shares[i] > 0:
                total_weight += weights[i]
        if total_weight == 0:
            break

        # Normalise (w / W), then renormalise by the sum of those fractions.
        norm_sum = 0.0
        for i in range(n):
            fs = shares[i]
            if requests[i] <= fs or (limits[i] != UNLIMITED and limits[i] <= fs):
                norm[i] = 0.0
                continue
            nw = weights[i] / total_weight
            if nw < 0:
                nw = 0.0
            norm[i] = nw
            norm_sum += nw
        if norm_sum == 0:
            break

        another_round = False
        for i in range(n):
            if remaining == 0:
                break
            fs = shares[i]
            if requests[i] <= fs or (limits[i] != UNLIMITED and limits[i] <= fs):
                continue  # satisfied
            if weights[i] == 0:
                continue
            want = requestables[i] - fs
            if want < 0:
                want = 0.0
            portion = round_amount * (norm[i] / norm_sum)
            if want <= portion:
                give = want
                claims.pop(i, None)
            else:
                whole = floor(portion)
                give = float(whole) if whole > 0 else 0.0
                if portion - give > 0:
                    claims[i] = portion - give
            if give == 0:
                continue
            shares[i] = fs + give
            remaining -= give
            if want < portion:
                another_round = True

        # A round that sets another_round gave some queue everything it could
        # take, so the set of hungry queues shrinks and the loop terminates.
        if not another_round or remaining == 0:
            break

    return remaining, claims, shares


def set_resources_share(totals: dict[str, float], queues: list[ShareQueue]) -> None:
    """Divide every resource in ``totals`` among one level of siblings.

    Resources are divided independently of each other; a ``None`` total is
    skipped (that resource is not divided).
    """
    if len(queues) > 1:
        queues = sorted(queues, key=_age_key)
    for resource, amount in totals.items():
        if amount is None:
            continue
        set_resource_share(amount, queues, resource)


def set_fair_share_tree(
    totals: dict[str, float], queues: list[ShareQueue]
) -> dict[str, dict[str, float]]:
    """Divide ``totals`` over the whole queue tree, top-down.

    Top-level queues (``parent`` is ``None`` or empty) divide ``totals``; then
    the children of each queue divide that queue's resulting fair share, for
    every resource in ``totals``.  Queues whose parent is not among ``queues``
    are never reached and keep their current fair share.

    Returns ``{queue name: {resource: fair share}}`` for every queue and every
    divided resource (a ``None`` total is not divided).
    """
    resources = [r for r, v in totals.items() if v is not None]
    children: dict[str | None, list[ShareQueue]] = {}
    for q in queues:
        key = q.parent or None
        lst = children.get(key)
        if lst is None:
            children[key] = [q]
        else:
            lst.append(q)

    # Explicit stack instead of recursion: deep trees cannot overflow it, and
    # sibling groups are independent, so the visiting order does not matter.
    pending: list[tuple[dict[str, float], list[ShareQueue]]] = []
    top = children.get(None)
    if top:
        pending.append(({r: totals[r] for r in resources}, top))
    expanded: set[str] = set()
    while pending:
        level_totals, level = pending.pop()
        set_resources_share(level_totals, level)
        for q in level:
            if q.name in expanded:  # defensive: each child group is divided once
                continue
            expanded.add(q.name)
            kids = children.get(q.name)
            if kids:
                fs = q.fair_share
                pending.append(({r: fs.get(r, 0.0) for r in resources}, kids))

    return {q.name: {r: q.fair_share.get(r, 0.0) for r in resources} for q in queues}
