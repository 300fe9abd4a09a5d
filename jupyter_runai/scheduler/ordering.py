"""Which job comes next: fair order over the queue tree, and its reverse for victims.

Every action walks jobs through the queue tree: at each level the sibling queues are
compared by their best job, the winner's subtree is descended, and the leaf queue
gives up its best job. After each pop the popped queue and its ancestors are re-keyed,
so the most deprived queue is chosen again each time. The comparison (KAI-Scheduler's
proportion plugin order) is, in turn:

1. queues at or below their fair share before queues above it (in every resource);
2. queues that stay within deserved quota with the job ("starved") first;
3. higher queue priority;
4. queues that would use a resource whose allocatable share is zero last;
5. smaller dominant resource share with the job added;
6. smaller dominant resource share now;
7. smaller allocatable share (compared as GPU, CPU, memory);
8. older queue.

Inside a project: higher job priority, then gangs still below their minimum, then
those exactly at it, then elastic ones above it, then older jobs.

Victims are taken in the reverse order: the most over-served queue first and, in it,
the lowest-priority, newest job, each queue keyed with its victims so far removed.

The per-level heaps make a pop cost O(depth · log siblings), not a scan of all queues.
"""

from __future__ import annotations

import heapq
from typing import Callable

from .session import EPS, JobState, QueueState, Session
from .types import UNLIMITED

Vec = tuple[float, float, float]
NO_SHARE_PENALTY = 1000.0


def le(a: float, b: float) -> bool:
    """a <= b where -1 means unlimited (as KAI compares quantities)."""
    if a == UNLIMITED:
        return b == UNLIMITED
    if b == UNLIMITED:
        return True
    return a <= b + EPS


def vec_le(a, b) -> bool:
    return le(a[0], b[0]) and le(a[1], b[1]) and le(a[2], b[2])


def dominant_share(q: QueueState, alloc, totals) -> float:
    best = 0.0
    for r in range(3):
        a = q.allocatable(r)
        if a == UNLIMITED:
            a = totals[r]
        v = alloc[r] * NO_SHARE_PENALTY if a <= 0 else alloc[r] / a
        if v > best:
            best = v
    return best


def queue_key(q: QueueState, alloc, req, totals, reverse: bool = False) -> tuple:
    """The sort key of queue ``q`` with usage ``alloc`` and candidate request ``req``
    (negated, as :func:`negated` would, with ``reverse``)."""
    a0, a1, a2 = alloc
    f0, f1, f2 = q.fair
    # above fair share in every resource it counts in: one with a quota or a limit
    # that the queue uses or has a share of (a resource nobody manages, or one the
    # queue neither uses nor is given, never makes a queue "within" its fair share)
    over = False
    counted = 0
    d, lim = q.deserved, q.limit
    for f, a, r in ((f0, a0, 0), (f1, a1, 1), (f2, a2, 2)):
        if (d[r] == UNLIMITED and lim[r] == UNLIMITED) or (a <= 0 and f <= 0):
            continue
        if not f < a:
            counted = -1
            break
        counted += 1
    over = counted > 0
    w0 = a0 + req[0]
    w1 = a1 + req[1]
    w2 = a2 + req[2]
    d0, d1, d2 = q.deserved
    # within deserved with the job, as le() compares
    starved = (((d0 == UNLIMITED) if w0 == UNLIMITED else (d0 == UNLIMITED or w0 <= d0 + EPS))
               and ((d1 == UNLIMITED) if w1 == UNLIMITED else (d1 == UNLIMITED or w1 <= d1 + EPS))
               and ((d2 == UNLIMITED) if w2 == UNLIMITED else (d2 == UNLIMITED or w2 <= d2 + EPS)))
    share = q.share
    if share is None:
        share = (q.allocatable(0), q.allocatable(1), q.allocatable(2))
        den = tuple(totals[r] if share[r] == UNLIMITED else share[r] for r in range(3))
    else:
        den = q.den
    s0, s1, s2 = share
    violation = (s0 == 0 and w0 > 0) or (s1 == 0 and w1 > 0) or (s2 == 0 and w2 > 0)
    # dominant resource share, with the job and without (as dominant_share)
    n0, n1, n2 = den
    if n0 <= 0:
        v0, u0 = w0 * NO_SHARE_PENALTY, a0 * NO_SHARE_PENALTY
    else:
        v0, u0 = w0 / n0, a0 / n0
    if n1 <= 0:
        v1, u1 = w1 * NO_SHARE_PENALTY, a1 * NO_SHARE_PENALTY
    else:
        v1, u1 = w1 / n1, a1 / n1
    if n2 <= 0:
        v2, u2 = w2 * NO_SHARE_PENALTY, a2 * NO_SHARE_PENALTY
    else:
        v2, u2 = w2 / n2, a2 / n2
    dom_w = dom_a = 0.0
    if v0 > dom_w:
        dom_w = v0
    if v1 > dom_w:
        dom_w = v1
    if v2 > dom_w:
        dom_w = v2
    if u0 > dom_a:
        dom_a = u0
    if u1 > dom_a:
        dom_a = u1
    if u2 > dom_a:
        dom_a = u2
    if reverse:
        return (-over, -(not starved), q.priority, -violation, -dom_w, -dom_a, -s0, -s1, -s2, -q.created_order)
    return (over, not starved, -q.priority, violation, dom_w, dom_a, s0, s1, s2, q.created_order)


def job_key(job: JobState) -> tuple:
    return (-job.priority, job.elastic_rank(), job.created_order, job.seq)


def negated(key: tuple) -> tuple:
    """A key that sorts in the reverse order (keys are flat tuples of numbers)."""
    return tuple([-x for x in key])


class JobIterator:
    """Pops jobs in fair order over the queue tree (or victim order, ``reverse=True``).

    ``request(job)`` is the job's candidate resources for the queue comparison (for
    victims, negative: what taking it would free). ``usage(queue)`` is the queue's
    current usage vector (defaults to its allocation in the session).
    """

    def __init__(self, sess: Session, jobs: list[JobState], request: Callable[[JobState], Vec],
                 reverse: bool = False, usage: Callable[[QueueState], Vec] | None = None,
                 key: Callable[[JobState], tuple] = job_key, leaves: dict[str, list] | None = None,
                 skip: Callable[[JobState], bool] | None = None):
        self.sess = sess
        # ``skip(job)``, asked when the job's turn comes: True when the caller would pass
        # over it without changing anything (it never comes out of pop; ``stopped`` set
        # by skip ends the walk)
        self.skip = skip
        self.stopped = False
        self.job_key = key
        self.request = request
        self.reverse = reverse
        self.usage = usage  # None: the queue's allocation in the session
        self.totals = (sess.total(0), sess.total(1), sess.total(2))
        self.leaf: dict[str, list] = {}
        self.heaps: dict[str | None, list] = {}
        self.version: dict[str, int] = {}
        self._counter = 0
        self.in_tree: set[str] = set()
        touched: set[str] = set()
        if leaves:
            # prebuilt leaf heaps, entries (wrapped job key, unique tie-break, job)
            for name, heap in leaves.items():
                if heap:
                    self.leaf[name] = heap
                    touched.add(name)
        for job in jobs:
            self._push_leaf(job)
            touched.add(job.queue.name)
        # build keys bottom-up: deepest queues first
        for name in sorted(touched, key=lambda n: (-len(sess.queues[n].path), n)):
            self.refresh(sess.queues[name])

    def _wrap(self, k):
        return negated(k) if self.reverse else k

    def _push_leaf(self, job: JobState) -> None:
        self._counter += 1
        heapq.heappush(self.leaf.setdefault(job.queue.name, []), (self._wrap(self.job_key(job)), self._counter, job))

    def push(self, job: JobState) -> None:
        """Put a job back (for example an elastic job with more pods to place)."""
        self._push_leaf(job)
        self.refresh(job.queue)

    def best_job(self, q: QueueState) -> JobState | None:
        versions = self.version
        heaps = self.heaps
        while not q.is_leaf:
            h = heaps.get(q.name)
            while h:
                top = h[0]
                if versions.get(top[2]) != top[1]:
                    heapq.heappop(h)
                    continue
                break
            if not h:
                return None
            q = h[0][3]
        h = self.leaf.get(q.name)
        return h[0][2] if h else None

    def refresh(self, q: QueueState) -> None:
        """Re-key ``q`` and its ancestors after its jobs or usage changed."""
        versions = self.version
        heaps = self.heaps
        reverse = self.reverse
        usage = self.usage
        request = self.request
        totals = self.totals
        for node in q.path:
            name = node.name
            ver = versions.get(name, 0) + 1
            versions[name] = ver
            job = self.best_job(node)
            if job is None:
                continue  # stays out of the parent's heap (older entries are stale)
            key = queue_key(node, node.alloc if usage is None else usage(node), request(job), totals, reverse)
            parent = node.parent
            pname = parent.name if parent is not None else None
            h = heaps.get(pname)
            if h is None:
                h = heaps[pname] = []
            # entries (key, version, name, queue): the queue itself is never compared
            heapq.heappush(h, (key, ver, name, node))

    def pop(self, rekey: bool = True) -> JobState | None:
        """The next job. With ``rekey=False`` the caller re-keys the job's queue itself
        right after (:meth:`push` or :meth:`refresh`): the keys of the popped queue and
        its ancestors are only invalidated here, not computed twice."""
        versions = self.version
        skip = self.skip
        h = self.heaps.get(None)
        while True:
            if self.stopped:
                return None
            while h:
                top = h[0]
                if versions.get(top[2]) != top[1]:
                    heapq.heappop(h)
                    continue
                break
            if not h:
                return None
            q = h[0][3]
            if q.is_leaf:
                leaf = self.leaf[q.name]
                job = heapq.heappop(leaf)[2]
                if skip is not None and skip(job):
                    # Passed over without any change. When the queue's next job asks for
                    # the same resources, every key on the queue's path stays what it was
                    # and the same queue is chosen again: no re-keying. Otherwise re-key
                    # and choose again from the root, as a pop and refresh would.
                    while not self.stopped and leaf and self.request(leaf[0][2]) == self.request(job):
                        job = heapq.heappop(leaf)[2]
                        if not skip(job):
                            break
                    else:
                        self.refresh(q)
                        h = self.heaps.get(None)
                        continue
                if rekey:
                    self.refresh(q)
                else:
                    # as refresh() would, less the keys that the caller's refresh replaces
                    for node in q.path:
                        versions[node.name] = versions.get(node.name, 0) + 1
                return job
            h = self.heaps.get(q.name)

    def remaining(self) -> list[JobState]:
        """The jobs not popped yet, in no particular order (by job sequence)."""
        out = [e[2] for h in self.leaf.values() for e in h]
        out.sort(key=lambda j: j.seq)
        return out

    def __iter__(self):
        while True:
            job = self.pop()
            if job is None:
                return
            yield job
