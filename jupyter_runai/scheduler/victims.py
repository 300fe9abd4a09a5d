"""Victim search for reclaim, preempt and consolidation: bounded and best-first.

Victims come in *chunks*, taken in victim order (:mod:`.ordering`, reversed): an
elastic job gives up its pods above the gang minimum one at a time first, and its
core pods (the gang) only all together. A scenario is a prefix of that sequence.

For a prefix, the engine evicts it in the session, places the pending job (pods may be
pipelined onto what the victims release), then tries to *move* each victim job
elsewhere instead of evicting it (whole gangs, or elastic pods one by one), and asks
the action's validator. The smallest working prefix wins.

Two things keep this fast at thousands of running pods:

* a cheap necessary condition is checked before any simulation: the idle plus freed
  GPUs must cover the job, and for whole-GPU pods some node must have enough idle plus
  freed devices for the largest pod (a device is freed when every pod holding it is a
  victim: a whole-GPU pod, or all the fractions sharing it);
* prefixes are probed by galloping (n, n+1, n+2, n+4, ...) and then bisected, so a
  job costs O(log victims) simulations, not one per victim.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Callable

from .capacity import over_limit
from .ordering import JobIterator, negated
from .placement import place
from .session import HOLDS_QUOTA, RELEASING, RUNNING, P, JobState, PodState, QueueState, Session, _task_order

# pods bound in this same cycle are not victims: evicting what was just placed is churn
ACTIVE_VICTIM = (P.RUNNING,)


class MinRuntime:
    """Minimum runtime protection for one kind of victim search (``reclaim`` or
    ``preempt``): a running job younger than its project's minimum is no victim,
    except for its elastic pods above the gang minimum (it keeps its gang).

    A project's minimum is its own ``<kind>_min_runtime``, else the nearest ancestor's,
    else the snapshot's. A job's age is ``now`` minus the time its gang minimum was
    reached: the ``min``-th earliest start among its running pods (pods without a start
    time do not count; without enough of them the job is not protected).
    """

    def __init__(self, sess: Session, kind: str):
        attr = f"{kind}_min_runtime"
        default = float(getattr(sess.snapshot, attr, 0.0) or 0.0)
        self.now = sess.now
        self.limit: dict[str, float] = {}
        for q in sess.queues.values():
            value = default
            for a in q.path:
                v = getattr(a.spec, attr, None)
                if v is not None:
                    value = float(v)
                    break
            self.limit[q.name] = value
        self.active = any(v > 0 for v in self.limit.values())
        self._cache: dict[JobState, bool] = {}

    def started(self, job: JobState) -> float | None:
        """When the job's gang minimum started running (None: unknown)."""
        times = sorted(p.spec.started_at for p in job.pods
                       if p.orig_status is P.RUNNING and p.spec.started_at is not None)
        k = max(1, job.min)
        return times[k - 1] if len(times) >= k else None

    def protected(self, job: JobState) -> bool:
        hit = self._cache.get(job)
        if hit is None:
            hit = False
            limit = self.limit.get(job.queue.name, 0.0)
            if limit > 0:
                start = self.started(job)
                hit = start is not None and self.now < start + limit
            self._cache[job] = hit
        return hit

    def keep(self, job: JobState) -> bool:
        """Whether ``job`` has anything to give: not protected, or elastic pods above
        its gang minimum."""
        return job.n_active > job.min or not self.protected(job)


def victim_key(job: JobState, active_left: int) -> tuple:
    """A job's key inside its project for victim order (taken reversed): priority, then
    gangs below their minimum, at it, above it (elastic), then age."""
    rank = 0 if active_left < job.min else (1 if active_left == job.min else 2)
    return (-job.priority, rank, job.created_order, job.seq)


class VictimIndex:
    """The running preemptible jobs of each project, in victim order, for one cycle.

    Every victim search starts from these per-project lists; a project's list is
    rebuilt only after a pod of one of its jobs changed (``QueueState.version``), so
    the searches of one action share the work of finding and ordering the candidates.
    """

    def __init__(self, sess: Session):
        self.sess = sess
        # a pod runs in this cycle only if it ran at the start (moves re-bind pipelined)
        self.jobs: dict[str, list[JobState]] = {}
        for j in sess.jobs:
            if j.preemptible and any(p.orig_status is P.RUNNING and p.orig_node for p in j.pods):
                self.jobs.setdefault(j.queue.name, []).append(j)
        self._sorted: dict[str, tuple[int, list, list]] = {}  # queue -> (version, counts, entries)

    def entries(self, q: QueueState) -> list:
        """Sorted (so heap-ordered) leaf entries of ``q``'s running preemptible jobs:
        (negated victim key, tie-break, job). Shared: copy before popping.

        They depend on each job's active and running pod counts only: after a pod of
        the project changed, the list is rebuilt only if those differ (a scenario that
        was rolled back changed nothing)."""
        hit = self._sorted.get(q.name)
        if hit is not None and hit[0] == q.version:
            return hit[2]
        jobs = self.jobs.get(q.name, ())
        counts = [(j.n_active, j.n_running) for j in jobs]
        if hit is not None and hit[1] == counts:
            self._sorted[q.name] = (q.version, counts, hit[2])
            return hit[2]
        out = [(negated(victim_key(j, j.n_active)), j.seq, j) for j in jobs if j.n_running]
        out.sort()
        self._sorted[q.name] = (q.version, counts, out)
        return out

    def leaves(self, queues, keep: Callable[[JobState], bool] | None = None,
               below: int | None = None) -> dict[str, list]:
        """Candidate leaf heaps for a victim search over ``queues`` (jobs passing
        ``keep``; with ``below``, only jobs of a lower priority)."""
        out: dict[str, list] = {}
        for q in queues:
            if q.name not in self.jobs:
                continue
            e = self.entries(q)
            if below is not None:
                # entries sort by priority first: the lower ones are a prefix
                e = e[:bisect_left(e, ((below,),))]
            e = list(e) if keep is None else [x for x in e if keep(x[2])]
            if e:
                out[q.name] = e
        return out


def victim_chunks(sess: Session, leaves: dict[str, list],
                  protected: Callable[[JobState], bool] | None = None):
    """Yield (job, [pods]) chunks in victim order, from :meth:`VictimIndex.leaves`.
    A job for which ``protected`` is true gives up only its pods above its gang
    minimum (see :class:`MinRuntime`)."""
    taken: dict[str, list[float]] = {}
    remaining: dict[JobState, list[PodState]] = {}
    # pods each job still runs once the chunks taken so far are gone
    active_left: dict[JobState, int] = {}

    def pods_of(job: JobState) -> list[PodState]:
        pods = remaining.get(job)
        if pods is None:
            pods = [p for p in job.pods if p.status in ACTIVE_VICTIM]
            pods.sort(key=_task_order)
            remaining[job] = pods
        return pods

    def next_chunk(job: JobState) -> list[PodState]:
        pods = pods_of(job)
        # pods beyond the gang minimum go one by one, the last in task order first
        if active_left.get(job, job.n_active) > job.min:
            return [pods[-1]]
        return list(pods)

    def chunk_vec(chunk):
        g = c = m = 0
        for p in chunk:
            g += p.gpu_quota
            c += p.cpu
            m += p.mem
        return (g, c, m)

    asks: dict[JobState, tuple] = {}  # what taking the job's next chunk frees, negated

    def request(job: JobState):
        r = asks.get(job)
        if r is None:
            c = chunk_vec(next_chunk(job))
            r = asks[job] = (-c[0], -c[1], -c[2])
        return r

    # usage before the search: the solver keeps victims evicted between simulations
    base = {q.name: tuple(q.alloc) for q in sess.queues.values()}

    def usage(q: QueueState):
        a = base[q.name]
        t = taken.get(q.name)
        if t is None:
            return a
        return (a[0] - t[0], a[1] - t[1], a[2] - t[2])

    def key(job: JobState):
        return victim_key(job, active_left.get(job, job.n_active))

    it = JobIterator(sess, [], request, reverse=True, usage=usage, key=key, leaves=leaves)
    while True:
        job = it.pop(rekey=False)  # re-keyed below, once the chunk is taken
        if job is None:
            return
        pods = pods_of(job)
        if protected is not None and active_left.get(job, job.n_active) <= job.min and protected(job):
            # down to its gang: a protected job gives no more
            asks.pop(job, None)
            it.refresh(job.queue)
            continue
        chunk = next_chunk(job)
        asks.pop(job, None)
        del pods[len(pods) - len(chunk):]
        active_left[job] = active_left.get(job, job.n_active) - len(chunk)
        vec = chunk_vec(chunk)
        for q in job.queue.path:
            t = taken.setdefault(q.name, [0.0, 0.0, 0.0])
            t[0] += vec[0]
            t[1] += vec[1]
            t[2] += vec[2]
        yield job, chunk
        if pods:
            it.push(job)
        else:
            it.refresh(job.queue)


class Solver:
    """Find the smallest prefix of victim chunks that lets ``job`` run.

    ``place_job()`` places the job's tasks (returns True on success);
    ``validate(evicted_chunks)`` gets the chunks that stay evicted after moves.
    """

    def __init__(self, sess: Session, job: JobState, tasks: list[PodState], leaves: dict[str, list],
                 place_job: Callable[[], bool],
                 validate: Callable[[list[tuple[JobState, list[PodState]]]], bool],
                 allow_moves: bool = True, max_victims: int | None = None,
                 protected: Callable[[JobState], bool] | None = None):
        self.sess = sess
        self.job = job
        self.tasks = tasks
        self.gen = victim_chunks(sess, leaves, protected)
        self.chunks: list[tuple[JobState, list[PodState]]] = []
        self.place_job = place_job
        self.validate = validate
        self.allow_moves = allow_moves
        self.max_victims = max_victims
        self.simulations = 0
        # necessary-condition bookkeeping
        self.need_gpu = sum(sess.pod_request(p)[0] for p in tasks)
        self.max_whole = max((p.whole for p in tasks if not p.fractional), default=0)
        pools = job.pools
        self.node_ok = (lambda n: n.pool in pools) if pools else (lambda n: True)
        self.free_gpu, self.best_node_whole = sess.free_gpu_view(self.node_ok, all_nodes=not pools)
        self.freed_gpu = 0.0
        self.freed_dev: dict[int, int] = {}  # devices the chunks so far free whole, per node
        self.node_free: dict[int, int] = {}  # idle + releasing devices before the search
        # per node seen, per device: holders (active or pipelined) not yet among the chunks
        self.holders: dict[int, list[int]] = {}
        self.pref_ok: list[bool] = []
        self.pref_count: list[int] = [0]  # prefixes passing it among the first i
        self.first: dict[JobState, int] = {}  # each victim job's first chunk
        self.multi: dict[JobState, list[int]] = {}  # jobs of several chunks: their chunks
        # victims stay evicted between simulations: chunks[:applied], each evicted after
        # the log position in marks; queue usage before the search, for validation
        self.applied = 0
        self.marks: list[int] = []
        self.base_usage = [(q, list(q.alloc), list(q.alloc_np)) for q in sess.queues.values()]

    def _extend(self) -> bool:
        if self.max_victims is not None and len(self.chunks) >= self.max_victims:
            return False
        nxt = next(self.gen, None)
        if nxt is None:
            return False
        i = len(self.chunks)
        self.chunks.append(nxt)
        job = nxt[0]
        first = self.first.get(job)
        if first is None:
            self.first[job] = i
        else:
            self.multi.setdefault(job, [first]).append(i)
        for p in nxt[1]:
            n = p.node
            if n is None or not self.node_ok(n):
                continue
            self.freed_gpu += p.gpu_quota
            if not self.max_whole:
                continue
            left = self.holders.get(n.idx)
            if left is None:
                # first seen before any victim on it is evicted (chunks are evicted
                # in order): its idle-or-releasing devices and each device's holders
                self.node_free[n.idx] = n.idle_count + n.releasing_gpus()
                left = self.holders[n.idx] = [a + b for a, b in zip(n.d_nact, n.d_npip)]
            # a device is free for a whole GPU once every holder of it is a victim:
            # one whole-GPU victim, or all the fractions that share it
            freed = 0
            for d in p.devices:
                left[d] -= 1
                if left[d] == 0:
                    freed += 1
            if freed:
                c = self.freed_dev.get(n.idx, 0) + freed
                self.freed_dev[n.idx] = c
                self.best_node_whole = max(self.best_node_whole, self.node_free[n.idx] + c)
        ok = self._necessary()
        self.pref_ok.append(ok)
        self.pref_count.append(self.pref_count[-1] + ok)
        return True

    def _necessary(self) -> bool:
        if self.free_gpu + self.freed_gpu + 1e-9 < self.need_gpu:
            return False
        if self.max_whole and self.best_node_whole < self.max_whole:
            return False
        return True

    def _evict_prefix(self, n: int) -> None:
        """Leave exactly chunks[:n] evicted (releasing)."""
        sess = self.sess
        if self.applied > n:
            sess.rollback(self.marks[n])
            del self.marks[n:]
            self.applied = n
        for _job, chunk in self.chunks[self.applied:n]:
            self.marks.append(sess.checkpoint())
            for p in chunk:
                sess.set_pod(p, P.RELEASING, p.node, p.devices, p.frac)
        self.applied = n

    def _validate(self, evicted) -> bool:
        """Validation sees the usage before the search (quota rules are stated
        against current usage), not the usage with the victims evicted."""
        now = [(q.alloc, q.alloc_np) for q, _a, _np in self.base_usage]
        for q, a, anp in self.base_usage:
            q.alloc, q.alloc_np = a, anp
        try:
            return self.validate(evicted)
        finally:
            for (q, _a, _np), (a, anp) in zip(self.base_usage, now):
                q.alloc, q.alloc_np = a, anp

    def _simulate(self, n: int, keep: bool) -> bool:
        """Try prefix ``n``: evict it, place the job, move what can move, validate.
        A kept scenario stays applied; otherwise only the evictions stay (they are
        shared with the next prefix tried)."""
        sess = self.sess
        self.simulations += 1
        self._evict_prefix(n)
        mark = sess.checkpoint()
        victims = self.chunks[:n]
        ok = self.place_job()
        restored: set[int] = set()
        back: set[JobState] = set()
        if ok and self.allow_moves:
            # a scenario that is kept is applied exactly; the others only decide
            restored, back = self._move_victims(victims, defer=not keep)
        if ok:
            evicted = []
            for job, chunk in victims:
                if job in back:
                    continue
                still = [p for p in chunk if p.status is RELEASING and id(p) not in restored]
                if still:
                    evicted.append((job, still))
            ok = self._validate(evicted)
        if not (ok and keep):
            sess.rollback(mark)
        return ok

    def _move_victims(self, victims, defer: bool = False) -> tuple[set[int], set[JobState]]:
        """Restore each victim whose place the job left free, or move it if it fits
        elsewhere (gangs whole, elastic pods singly), in victim order.

        With ``defer``, restores are only decided, not applied: each is checked
        against the session plus the restores decided before it on the same node,
        and whole-GPU moves are placed as if those restores had happened (see
        :func:`.placement.place`). Only a move of another kind applies the restores
        decided so far (in order). The outcome is the same as applying every restore
        at once - the session then differs only in the restored pods still being
        releasing, which the caller rolls back. Returns the ids of those pods, and
        the one-chunk jobs among them (all of whose pods run again).
        """
        sess = self.sess
        n = len(victims)
        multi = self.multi
        deferred: list[PodState] = []
        # what the deferred restores take back, per node (see placement.place)
        held: dict[int, list] = {}
        back: set[JobState] = set()  # one-chunk jobs restored (deferred)
        done: set[JobState] = set()  # jobs of several chunks, handled at their first
        for job, chunk in victims:
            idx = multi.get(job)
            if idx is not None:
                # a job with several chunks: all of its pods in the prefix, at its first
                if job in done:
                    continue
                done.add(job)
                pods = [p for k in idx if k < n for p in victims[k][1]]
                pods.sort(key=_task_order)
            elif len(chunk) == 1:
                pods = chunk
                if defer:
                    # the common case, inline: one pod whose own place is still free
                    p = chunk[0]
                    node = p.node
                    h = held.get(node.idx)
                    if h is None and not p.fractional:
                        free = (node.cpu_act + node.cpu_pip + p.cpu <= node.cpu_cap + 1e-9
                                and node.mem_act + node.mem_pip + p.mem <= node.mem_cap + 1e-9)
                        if free:
                            d_nact, d_npip = node.d_nact, node.d_npip
                            for d in p.devices:
                                if d_nact[d] or d_npip[d]:
                                    free = False
                                    break
                    else:
                        free = _can_restore(p, h)
                    if free:
                        if not 0 < job.n_active + 1 < job.min:
                            deferred.append(p)
                            back.add(job)
                            if h is None:
                                held[node.idx] = [p]
                            else:
                                h.append(p)
                        continue
            else:
                pods = sorted(chunk, key=_task_order)
            if defer and self._move_job_deferred(job, pods, deferred, held):
                continue
            if deferred:
                # apply what was decided before this job, then handle it exactly
                _apply_restores(sess, deferred)
                deferred = []
                held = {}
                back = set()
            _move_job(sess, job, pods)
        return {id(p) for p in deferred}, back

    def _move_job_deferred(self, job: JobState, pods: list[PodState], deferred: list[PodState],
                           held: dict[int, list]) -> bool:
        """:meth:`_move_victims` for one job with its restores deferred; False (and
        nothing changed) when it needs a move that placement cannot overlay."""
        sess = self.sess
        mark = sess.checkpoint()
        start = len(deferred)
        moved = 0
        for p in pods:
            if _can_restore(p, held.get(p.node.idx)):
                deferred.append(p)
                _hold(held, p)
                moved += 1
                continue
            if p.fractional or not p.whole:
                sess.rollback(mark)
                _unhold(deferred, start, held)
                return False
            found = place(sess, p, held=held)
            if found is None or not _move_keeps_limits(p, found):
                break
            node, devs, frac, _pipelined = found
            sess.move(p, node, devs, frac)
            moved += 1
        if moved and 0 < job.n_active + (len(deferred) - start) < job.min:
            sess.rollback(mark)
            _unhold(deferred, start, held)
        return True

    def solve(self) -> bool:
        """Run the search; on success the winning scenario stays applied, otherwise
        nothing changed."""
        mark = self.sess.checkpoint()
        ok = self._search()
        if not ok:
            self.sess.rollback(mark)
        return ok

    def _try(self, lo: int, n: int) -> tuple[bool, bool]:
        """Simulate prefix ``n`` where every prefix up to ``lo`` fails: (works, kept).
        When no prefix between them could be tried (none passes the necessary
        condition), ``n`` is the answer if it works, so it is kept at once instead of
        being simulated a second time at the end."""
        pref = self.pref_count
        final = pref[n - 1] == pref[lo]
        ok = self._simulate(n, keep=final)
        return ok, ok and final

    def _search(self) -> bool:
        n_fail = 0  # largest prefix known to fail
        step = 1
        n = 0
        # find the first prefix that passes the necessary condition
        while True:
            if not self._extend():
                return False
            if self.pref_ok[-1]:
                n = len(self.chunks)
                break
        hi = None
        while hi is None:
            ok, kept = self._try(n_fail, n)
            if kept:
                return True
            if ok:
                hi = n
                break
            n_fail = n
            target = n + step
            step *= 2
            while len(self.chunks) < target:
                if not self._extend():
                    break
            if len(self.chunks) <= n_fail:
                return False
            n = min(target, len(self.chunks))
        lo = n_fail  # fails (or untested below the first candidate)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if not self.pref_ok[mid - 1]:
                lo = mid
                continue
            ok, kept = self._try(lo, mid)
            if kept:
                return True
            if ok:
                hi = mid
            else:
                lo = mid
        return self._simulate(hi, keep=True)


def _move_job(sess: Session, job: JobState, pods: list[PodState]) -> None:
    """Restore or move the evicted ``pods`` of one victim job; a gang that would end
    below its minimum is left evicted whole."""
    mark = sess.checkpoint()
    moved = 0
    for p in pods:
        if _can_restore(p, None):
            # the job did not need this pod's place: it keeps running there
            sess.set_pod(p, RUNNING, p.node, p.devices, p.frac)
            moved += 1
            continue
        found = place(sess, p)
        if found is None or not _move_keeps_limits(p, found):
            break
        node, devs, frac, _pipelined = found
        sess.move(p, node, devs, frac)
        moved += 1
    if moved and 0 < job.n_active < job.min:
        sess.rollback(mark)


def _move_keeps_limits(p: PodState, found) -> bool:
    """A moved GPU-memory pod counts against quota by the devices it lands on; where
    they are smaller it counts more, and that growth must stay within the limits."""
    _node, devs, frac, _pipelined = found
    quota = frac * len(devs) if p.fractional else float(len(devs))
    # the evicted pod counts nothing now: all of its new quota must fit
    return quota <= p.gpu_quota + 1e-9 or over_limit(p.job.queue, (quota, 0.0, 0.0)) is None


def _can_restore(p: PodState, held: list | None) -> bool:
    """Whether an evicted pod's own place is still free of new claims; ``held`` are
    the pods on its node whose restores are deferred (see :meth:`Solver._move_victims`)."""
    node = p.node
    if not held:
        if node.cpu_act + node.cpu_pip + p.cpu > node.cpu_cap + 1e-9:
            return False
        if node.mem_act + node.mem_pip + p.mem > node.mem_cap + 1e-9:
            return False
        for d in p.devices:
            if p.fractional:
                if node.d_act[d] + node.d_pip[d] + p.frac > 1.0 + 1e-9:
                    return False
            elif node.d_nact[d] or node.d_npip[d]:
                return False
        return True
    cpu = mem = 0.0
    for q in held:
        cpu += q.cpu
        mem += q.mem
    if node.cpu_act + cpu + node.cpu_pip + p.cpu > node.cpu_cap + 1e-9:
        return False
    if node.mem_act + mem + node.mem_pip + p.mem > node.mem_cap + 1e-9:
        return False
    for d in p.devices:
        if p.fractional:
            frac = 0.0
            for q in held:
                if d in q.devices:
                    frac += q.frac
            if node.d_act[d] + frac + node.d_pip[d] + p.frac > 1.0 + 1e-9:
                return False
        elif node.d_nact[d] or node.d_npip[d] or any(d in q.devices for q in held):
            return False
    return True


def _hold(held: dict[int, list], p: PodState) -> None:
    """Note a deferred restore of ``p`` in ``held`` (the pods per node)."""
    h = held.get(p.node.idx)
    if h is None:
        held[p.node.idx] = [p]
    else:
        h.append(p)


def _unhold(deferred: list[PodState], start: int, held: dict[int, list]) -> None:
    """Drop the deferred restores from ``start`` on."""
    del deferred[start:]
    held.clear()
    for p in deferred:
        _hold(held, p)


def _apply_restores(sess: Session, pods: list[PodState]) -> None:
    """Apply deferred restores, in the order they were decided."""
    for p in pods:
        sess.set_pod(p, RUNNING, p.node, p.devices, p.frac)


def evicted_queue_chunks(evicted) -> dict[QueueState, list[tuple[float, float, float]]]:
    out: dict[QueueState, list[tuple[float, float, float]]] = {}
    for job, pods in evicted:
        vec = (sum(p.gpu_quota for p in pods), sum(p.cpu for p in pods), sum(p.mem for p in pods))
        out.setdefault(job.queue, []).append(vec)
    return out


__all__ = ["MinRuntime", "Solver", "VictimIndex", "victim_chunks", "victim_key", "evicted_queue_chunks", "HOLDS_QUOTA"]
