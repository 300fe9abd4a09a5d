"""The actions of one cycle, run in this order: allocate, consolidate, reclaim, preempt,
stale-gang eviction.

* **allocate** places pending jobs in fair order onto idle capacity (or pipelines them
  onto capacity being released). Gangs go all or nothing; elastic pods above the gang
  minimum go one at a time, after every gang's minimum (the job order sees to that),
  and not while a job ahead of them in their project waits for capacity on nodes they
  could use (:mod:`.extras`; every action passes such pods over).
* **consolidate** moves running preemptible pods to other nodes when that lets a
  pending preemptible job run; every moved pod must be re-placed in the same step.
* **reclaim** takes resources back from other projects for a job whose project is
  within its fair share, by the rules of :mod:`.capacity`.
* **preempt** evicts strictly lower-priority preemptible work of the same project.
* **stale gang** evicts gangs that run below their minimum, so they can start again
  whole instead of holding GPUs that do nothing.
"""

from __future__ import annotations

from datetime import datetime, timezone

from .capacity import admission_reason, may_reclaim, over_limit, reclaimable
from .extras import ExtrasHold
from .placement import explain_no_fit, place
from .session import HOLDS_QUOTA, P, JobState, PodState, Session
from .victims import ACTIVE_VICTIM, MinRuntime, Solver, VictimIndex, evicted_queue_chunks
from .ordering import JobIterator


class Context:
    """What the actions share during a cycle: the session and the reasons jobs wait."""

    def __init__(self, sess: Session):
        self.sess = sess
        self.reasons: dict[str, str] = {}
        self.simulations = 0
        self._victims: VictimIndex | None = None
        self._min_runtime: dict[str, MinRuntime] = {}
        self._requests: dict[JobState, tuple[int, tuple[float, float, float]]] = {}
        #: jobs below their gang minimum waiting for capacity, which hold back the
        #: elastic pods of later jobs of their project (:mod:`.extras`)
        self.extras = ExtrasHold(sess)

    def held_extra(self, job: JobState) -> bool:
        """Whether ``job``'s next pod is an elastic one that waits for a job ahead of it
        in its project (the reason recorded); every action passes such a job over."""
        other = self.extras.holder(job)
        if other is None:
            return False
        self.reasons[job.name] = self.extras.reason(job, other)
        return True

    def tasks_request(self, tasks: list[PodState]):
        g = c = m = 0.0
        for p in tasks:
            pg, pc, pm = self.sess.pod_request(p)
            g += pg
            c += pc
            m += pm
        return (g, c, m)

    def job_request(self, job: JobState):
        """What the job's next allocation attempt asks for (cached until one of its
        pods changes)."""
        version = job.version
        hit = self._requests.get(job)
        if hit is not None and hit[0] == version:
            return hit[1]
        req = self.tasks_request(job.tasks_to_allocate())
        self._requests[job] = (version, req)
        return req

    def min_runtime(self, kind: str) -> MinRuntime | None:
        """The minimum-runtime protection of ``kind`` (reclaim, preempt); None when no
        project has one."""
        mr = self._min_runtime.get(kind)
        if mr is None:
            mr = self._min_runtime[kind] = MinRuntime(self.sess, kind)
        return mr if mr.active else None

    def pending_jobs(self) -> list[JobState]:
        return [j for j in self.sess.jobs if not j.being_deleted and j.tasks_to_allocate()]

    def place_tasks(self, job: JobState, tasks: list[PodState]) -> str | None:
        """Place ``tasks`` together (all or none). None on success, else the reason."""
        sess = self.sess
        mark = sess.checkpoint()
        any_pipelined = False
        for i, p in enumerate(tasks):
            found = place(sess, p)
            if found is None:
                reason = explain_no_fit(sess, p)
                sess.rollback(mark)
                if len(tasks) > 1:
                    return f"{gang_words(len(tasks), i)}; pod {p.name} {reason}"
                return f"pod {p.name} {reason}"
            node, devs, frac, pipelined = found
            sess.set_pod(p, P.PIPELINED if pipelined else P.ALLOCATED, node, devs, frac)
            any_pipelined |= pipelined
        if any_pipelined:
            # a job partly waiting for released capacity waits as a whole
            for p in tasks:
                if p.status is P.ALLOCATED:
                    sess.set_pod(p, P.PIPELINED, p.node, p.devices, p.frac)
        return None


def gang_words(total: int, fit: int) -> str:
    """Why a gang waits, plainly: ``all 4 pods must start together and only 2 fit now``."""
    now = "none of them fits now" if fit == 0 else "only 1 fits now" if fit == 1 else f"only {fit} fit now"
    return f"all {total} pods must start together and {now}"


def _pod_shape(p: PodState) -> tuple:
    shape = p.shape
    if shape is None:
        affinity = p.spec.node_affinity
        shape = p.shape = (p.whole, p.frac_req or 0.0, p.mem_mib or 0.0, p.ndev, p.cpu, p.mem,
                           repr(sorted(affinity.items())) if affinity else "[]")
    return shape


def _shape(job: JobState, tasks: list[PodState]) -> tuple:
    """What placement depends on: the pods' requests, affinities and the job's pools."""
    hit = job.shape
    if hit is not None and hit[0] is tasks:
        return hit[1]
    sig = _shape_of(job, tasks)
    job.shape = (tasks, sig)  # tasks lists are cached per job version (shared)
    return sig


def _shape_of(job: JobState, tasks: list[PodState]) -> tuple:
    if len(tasks) == 1:
        shapes = (_pod_shape(tasks[0]),)
    else:
        shapes = tuple(sorted(_pod_shape(p) for p in tasks))
    return (tuple(job.pools or ()), shapes)


def _signature(job: JobState, tasks: list[PodState]) -> tuple:
    """What a victim search depends on besides the cluster: queue, priority, shape."""
    return (job.queue.name, job.priority, job.preemptible) + _shape(job, tasks)


def retarget_reason(reason: str, source: list[str], target: list[str]) -> str:
    """A pending reason worked out for another job of the same shape (pods ``source``),
    naming this job's pods (``target``, the same positions) instead."""
    for a, b in zip(source, target):
        if a == b:
            continue
        i = reason.find(a)
        while i >= 0:
            end = i + len(a)
            if end == len(reason) or not (reason[end].isalnum() or reason[end] in "_.-"):
                reason = reason[:i] + b + reason[end:]
                end = i + len(b)
            i = reason.find(a, end)
    return reason


def _cached_failure(hit: tuple[str, list[str]], tasks: list[PodState]) -> str:
    return retarget_reason(hit[0], hit[1], [p.name for p in tasks])


# ------------------------------------------------------------------------ allocate
def allocate(ctx: Context) -> None:
    sess = ctx.sess
    jobs = ctx.pending_jobs()
    failed: dict[tuple, tuple[str, list[str]]] = {}  # shape -> (reason, pods it names)
    # Allocation only consumes capacity and quota, so a shape that did not fit never
    # will; once every job still waiting has such a shape, none of them can change
    # anything, the order no longer matters and the walk ends (each job still gets
    # the reason it would have got in its turn). Jobs still waiting, by shape, and
    # how many of them have a shape that has not failed:
    waiting: dict[tuple, int] = {}
    for job in jobs:
        sig = _shape(job, job.tasks_to_allocate())
        waiting[sig] = waiting.get(sig, 0) + 1
    live = len(jobs)
    # Admission depends only on the allocations, which change only when a job is
    # placed: its answer is kept per (project, request, preemptible) until then.
    admitted: dict[tuple, str | None] = {}

    def admission(job: JobState) -> str | None:
        req = ctx.job_request(job)
        key = (job.queue.name, req, job.preemptible)
        if key in admitted:
            return admitted[key]
        why = admitted[key] = admission_reason(job.queue, req, job.preemptible)
        return why

    def skip(job: JobState) -> bool:
        """A job that waits without a placement attempt (over a limit, or a shape that
        already failed) is passed over in its turn, without re-keying the walk."""
        nonlocal live
        tasks = job.tasks_to_allocate()
        if not tasks:
            return False
        sig = _shape(job, tasks)
        if ctx.held_extra(job):
            reason = None  # recorded by held_extra
        else:
            reason = admission(job)
            if reason is None:
                hit = failed.get(sig)
                if hit is None:
                    return False
                reason = _cached_failure(hit, tasks)
                ctx.extras.waits_for_capacity(job, tasks, sig)
        waiting[sig] -= 1
        if sig not in failed:
            live -= 1
            if live == 0:
                it.stopped = True
        if reason is not None:
            ctx.reasons.setdefault(job.name, reason)
        return True

    it = JobIterator(sess, jobs, ctx.job_request, skip=skip)
    for job in it:
        tasks = job.tasks_to_allocate()
        sig = _shape(job, tasks)
        waiting[sig] -= 1
        if sig not in failed:
            live -= 1
        if tasks:
            ok, new_failure = _allocate_one(ctx, job, tasks, sig, failed, admission(job))
            if new_failure:
                live -= waiting[sig]
            if ok:
                admitted.clear()
                more = job.tasks_to_allocate()
                if more:
                    sig = _shape(job, more)
                    waiting[sig] = waiting.get(sig, 0) + 1
                    if sig not in failed:
                        live += 1
                    it.push(job)
                else:
                    it.refresh(job.queue)
        if live == 0:
            break
    for job in it.remaining():
        tasks = job.tasks_to_allocate()
        if tasks:
            _allocate_one(ctx, job, tasks, _shape(job, tasks), failed, admission(job))


def _allocate_one(ctx: Context, job: JobState, tasks: list[PodState], sig: tuple,
                  failed: dict[tuple, tuple[str, list[str]]], reason: str | None) -> tuple[bool, bool]:
    """Place one job's tasks (``reason``: why its project cannot admit it, or None), or
    record why it waits. (placed, its shape failed just now)"""
    new_failure = False
    if reason is None:
        if ctx.held_extra(job):
            return False, False
        hit = failed.get(sig)
        if hit is not None:
            reason = _cached_failure(hit, tasks)
        else:
            reason = ctx.place_tasks(job, tasks)
            if reason is not None:
                failed[sig] = (reason, [p.name for p in tasks])
                new_failure = True
        if reason is not None:
            ctx.extras.waits_for_capacity(job, tasks, sig)
    if reason is not None:
        ctx.reasons.setdefault(job.name, reason)
        return False, new_failure
    ctx.reasons.pop(job.name, None)
    return True, False


# ------------------------------------------------------------------ victim actions
def _victim_action(ctx: Context, jobs: list[JobState], admit, signature, victims, validator,
                   allow_moves: bool = True, protection: MinRuntime | None = None,
                   unprotected=None, kind: str = "") -> None:
    """The loop that consolidate, reclaim and preempt share.

    For each pending job in fair order: ``admit(job, req)`` says whether the action
    may try it at all; a job whose ``signature(job, tasks)`` already failed in this
    action is skipped; ``victims(job, req)`` gives the candidate leaf heaps (None when
    the job certainly cannot succeed); the :class:`Solver` finds victims, asks
    ``validator(job, req)`` (a function of the evicted chunks) and keeps the winning
    scenario applied, or rolls everything back. With ``protection``, jobs within
    their minimum runtime give up only their pods above the gang minimum; when that is
    what made a job fail (``unprotected(job, req)``: the candidates without it, with
    which the search would succeed), its reason says which GPUs are protected and until
    when (:func:`_protected_note`).
    """
    sess = ctx.sess
    failed: set[tuple] = set()
    notes: dict[tuple, str] = {}  # failed signature -> what the minimum runtime protects

    def note(job: JobState, sig: tuple) -> None:
        text = notes.get(sig)
        if text:
            reason = ctx.reasons.get(job.name)
            if reason is None:
                ctx.reasons[job.name] = text
            elif text not in reason:
                ctx.reasons[job.name] = f"{reason}; {text}"

    def skip(job: JobState) -> bool:
        # a job this action passes over in its turn (nothing changes)
        tasks = job.tasks_to_allocate()
        if not tasks or ctx.held_extra(job) or not admit(job, ctx.job_request(job)):
            return True
        sig = signature(job, tasks)
        if sig in failed:
            note(job, sig)
            return True
        return False

    it = JobIterator(sess, jobs, ctx.job_request, skip=skip)
    for job in it:
        tasks = job.tasks_to_allocate()
        req = ctx.job_request(job)
        sig = signature(job, tasks)
        leaves = victims(job, req)
        ok = False
        if leaves:
            solver = Solver(sess, job, tasks, leaves,
                            place_job=lambda job=job, tasks=tasks: ctx.place_tasks(job, tasks) is None,
                            validate=validator(job, req), allow_moves=allow_moves,
                            protected=protection.protected if protection is not None else None)
            ok = solver.solve()
            ctx.simulations += solver.simulations
        if ok:
            ctx.reasons.pop(job.name, None)
            it.refresh(job.queue)
        else:
            failed.add(sig)
            if protection is not None and unprotected is not None:
                text = _protected_note(ctx, job, tasks, unprotected(job, req), validator(job, req),
                                       allow_moves, protection, kind)
                if text:
                    notes[sig] = text
                    note(job, sig)


def _protected_note(ctx: Context, job: JobState, tasks: list[PodState], leaves, validate, allow_moves: bool,
                    protection: MinRuntime, kind: str) -> str | None:
    """When the victim search for ``job`` failed with the minimum-runtime protection
    and would succeed without it: which GPUs the protection holds and until when (the
    latest end of protection among the victims of that search), else None. Nothing
    changes in the session."""
    sess = ctx.sess
    if not leaves or not any(protection.protected(e[2]) for h in leaves.values() for e in h):
        return None  # the protection kept no candidate out: the search would fail again
    before = {j: j.n_active for h in leaves.values() for _k, _t, j in h}
    mark = sess.checkpoint()
    solver = Solver(sess, job, tasks, leaves,
                    place_job=lambda: ctx.place_tasks(job, tasks) is None,
                    validate=validate, allow_moves=allow_moves)
    ok = solver.solve()
    ctx.simulations += solver.simulations
    gpus = 0.0
    until = None
    projects: list[str] = []
    if ok:
        evicted: dict[JobState, list[PodState]] = {}
        for vjob, chunk in solver.chunks[:solver.applied]:
            evicted.setdefault(vjob, []).extend(p for p in chunk if p.status is P.RELEASING)
        for vjob, pods in evicted.items():
            if not pods or not protection.protected(vjob):
                continue
            extras = max(0, before.get(vjob, 0) - vjob.min)  # given up first, never protected
            held = pods[extras:]
            if not held:
                continue
            gpus += sum(len(p.devices) * p.frac for p in held)
            end = protection.started(vjob) + protection.limit.get(vjob.queue.name, 0.0)
            until = end if until is None else max(until, end)
            if vjob.queue.name not in projects:
                projects.append(vjob.queue.name)
    sess.rollback(mark)
    if until is None:
        return None
    what = f"{gpus:g} GPU{'' if abs(gpus - 1) < 1e-9 else 's'}" if gpus > 1e-9 else "the resources"
    if kind == "reclaim":
        names = ", ".join(f"'{q}'" for q in projects)
        whom = f"it could take back from project{'s' if len(projects) > 1 else ''} {names}"
    else:
        whom = "of lower-priority work it could preempt"
    return (f"{what} {whom} {'is' if what == '1 GPU' else 'are'} held by pods protected by their minimum "
            f"runtime until {_clock(until, sess.now)}")


def _clock(t: float, now: float) -> str:
    """A moment of the snapshot's clock (seconds since the epoch) in UTC: the time of
    day, with the date when it is not today's. The same words every cycle."""
    try:
        when = datetime.fromtimestamp(t, tz=timezone.utc)
        if when.date() == datetime.fromtimestamp(now, tz=timezone.utc).date():
            return when.strftime("%H:%M:%S UTC")
        return when.strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):  # a clock no calendar holds (the engine never raises)
        return f"{t:g} on the scheduler's clock"


def _victim_index(ctx: Context) -> VictimIndex:
    if ctx._victims is None:
        ctx._victims = VictimIndex(ctx.sess)
    return ctx._victims


def consolidate(ctx: Context) -> None:
    sess = ctx.sess
    index = _victim_index(ctx)

    def admit(job, req):
        return admission_reason(job.queue, req, job.preemptible) is None

    def victims(job, req):
        if sess.idle_gpus_total() + 1e-9 < req[0]:
            return None  # moving pods frees nothing: the idle GPUs must already suffice
        return index.leaves(sess.queues.values(), keep=lambda j: j is not job)

    def validator(job, req):
        return lambda evicted: not evicted  # every victim must have been moved, none evicted

    jobs = [j for j in ctx.pending_jobs() if j.preemptible]
    # Nothing changes until a job succeeds, and a job whose GPUs the idle ones cannot
    # cover fails (see victims()): when that holds for every job, the loop is a no-op.
    idle = sess.idle_gpus_total()
    if all(idle + 1e-9 < ctx.job_request(j)[0] for j in jobs):
        return
    _victim_action(ctx, jobs, admit, lambda job, tasks: _shape(job, tasks), victims, validator)


def _takeable_queues(sess: Session, reclaimer):
    """A cheap necessary condition on victims' projects: reclaim only ever takes from a
    side of the tree (the sibling under the lowest common ancestor) that uses more than
    its deserved quota or its allocatable share in some resource."""
    from .capacity import _leveled

    cache: dict[str, bool] = {}

    def takeable(q) -> bool:
        hit = cache.get(q.name)
        if hit is None:
            _r, side = _leveled(reclaimer, q)
            hit = False
            for r in range(3):
                floor = side.deserved[r]
                alloc = side.alloc[r]
                if floor == -1:
                    floor = side.allocatable(r)
                if floor == -1:
                    continue
                if alloc > min(floor, side.allocatable(r) if side.allocatable(r) != -1 else floor) + 1e-9:
                    hit = True
                    break
            cache[q.name] = hit
        return hit

    return takeable


def reclaim(ctx: Context) -> None:
    sess = ctx.sess
    index = _victim_index(ctx)

    def admit(job, req):
        why = may_reclaim(job.queue, req, job.preemptible)
        if why is None:
            why = admission_reason(job.queue, req, job.preemptible)
        if why is not None and job.name in ctx.reasons and "fair share" in why:
            ctx.reasons[job.name] += f"; {why}"
        return why is None

    protection = ctx.min_runtime("reclaim")
    keep = protection.keep if protection is not None else None

    def victims(job, req, keep=keep):
        queue = job.queue
        takeable = _takeable_queues(sess, queue)
        return index.leaves((q for q in sess.queues.values() if q.is_leaf and q is not queue and takeable(q)),
                            keep=keep)

    def validator(job, req):
        return lambda evicted: reclaimable(sess, job.queue, req, job.preemptible, evicted_queue_chunks(evicted))

    _victim_action(ctx, ctx.pending_jobs(), admit, _signature, victims, validator, protection=protection,
                   unprotected=lambda job, req: victims(job, req, keep=None), kind="reclaim")


def preempt(ctx: Context) -> None:
    index = _victim_index(ctx)

    def admit(job, req):
        return job.preemptible or admission_reason(job.queue, req, False) is None

    protection = ctx.min_runtime("preempt")
    keep = protection.keep if protection is not None else None

    def victims(job, req, keep=keep):
        return index.leaves((job.queue,), below=job.priority, keep=keep)

    def validator(job, req):
        def validate(evicted):
            # once the victims (all of this project) leave, the job fits the limits
            freed = [0.0, 0.0, 0.0]
            for _vjob, pods in evicted:
                for p in pods:
                    freed[0] += p.gpu_quota
                    freed[1] += p.cpu
                    freed[2] += p.mem
            net = tuple(req[r] - freed[r] for r in range(3))
            return over_limit(job.queue, net) is None
        return validate

    _victim_action(ctx, ctx.pending_jobs(), admit, _signature, victims, validator, protection=protection,
                   unprotected=lambda job, req: victims(job, req, keep=None), kind="preempt")


def stale_gang(ctx: Context) -> None:
    sess = ctx.sess
    for job in sess.jobs:
        if 0 < job.n_active < job.min:
            for p in job.pods:
                if p.status in ACTIVE_VICTIM:
                    sess.set_pod(p, P.RELEASING, p.node, p.devices, p.frac)
                elif p.status in (P.PIPELINED, P.ALLOCATED):
                    sess.set_pod(p, P.PENDING, None)
            ctx.reasons[job.name] = (f"gang ran below its minimum of {job.min} pods and was stopped "
                                     "so that it can start again whole")


ACTIONS = {
    "allocate": allocate,
    "consolidate": consolidate,
    "reclaim": reclaim,
    "preempt": preempt,
    "stale_gang": stale_gang,
}

__all__ = ["ACTIONS", "Context", "HOLDS_QUOTA"]
