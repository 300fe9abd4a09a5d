"""The scheduler service: the one owner of state and time.

``RunaiService`` takes requests (submit, stop, resume, delete), admits them
(validation and the hooks where policies and RBAC plug in), keeps every workload
in the store, runs the scheduling loop (on every event and on a short timer),
applies the engine's decisions to the cluster backend, and tells subscribers what
happened (the event stream).

A cycle:

1. read what the cluster saw (pods that became ready, ended, were stopped);
2. build the engine's snapshot from the live workloads (``snapshot.py``);
3. run the engine (``scheduler.schedule``);
4. stop evicted pods, start bound ones (pipelined binds wait for the next cycle,
   when the evicted pods have released their devices), write pending reasons;
5. save every changed workload in one transaction and publish the events.

Restart-safe: every acknowledged request is in the store before the call returns;
:meth:`RunaiService.start` reloads the store, re-adopts running pods through the
cluster (or records how they ended meanwhile) and goes on.
"""

from __future__ import annotations

import asyncio
import functools
import contextlib
import hashlib
import hmac
import itertools
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from typing import Any

from pydantic import ValidationError

from .clusters.base import Cluster, Endpoint, PodLaunch, PodReport, PodState
from .errors import Conflict, Invalid, NotFound, Unavailable
from .models import (
    Department,
    Node,
    NodePool,
    PodPhase,
    PodStatus,
    Project,
    Workload,
    WorkloadKind,
    WorkloadPhase,
    WorkloadSpec,
    WorkloadStatus,
    format_validation_error,
)
from . import workload_json
from .scheduler import schedule
from .scheduler.reasons import reason_kind
from .scheduler.types import Job
from .scheduler.types import PodStatus as EnginePodStatus
from . import views
from .eventlog import eviction_kind, eviction_text
from .monitoring import Monitoring
from .admin import Administration
from .policy_admin import PolicyAdministration
from .project_data import ProjectData
from .rbac import AccessControl
from . import access
from .identity import User
from .autoscale import Autoscaler
from .feasibility import distinct_nodes, never_runs
from .rules import breaches, contested, effective_rules, idle_workloads, pool_holds
from .launch import credential_material, data_mounts, describe_request
from .snapshot import HOLDING, ActivePod, active_pods, build_snapshot, engine_job, node_pool_of, pod_key
from .store import Store, StoreWriteError

log = logging.getLogger(__name__)

CRASH_ENV = "RUNAI_TEST_CRASH_AT"
"""Test hook for the crash-safety tests, inert unless set: ``after-launch:N`` makes the
server process exit at once (``os._exit``, as abrupt as a kill -9) right after the
cluster's launch of the Nth pod of this process returned, before its handle is saved;
``before-launch:N`` right before that launch (its intent committed). Never set it in
production."""


def _test_crash_points() -> dict[str, int]:
    value = os.environ.get(CRASH_ENV, "").strip()
    points: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        where, _, number = item.partition(":")
        if where in ("before-launch", "after-launch") and number.isdigit():
            points[where] = int(number)
        else:
            log.warning("%s=%r: ignored %r (expected after-launch:N or before-launch:N)", CRASH_ENV, value, item)
    if points:
        log.warning("%s=%r: this server will exit on purpose (a test hook)", CRASH_ENV, value)
    return points


def is_intent(handle: dict[str, Any] | None) -> bool:
    """True for a launch intent: the record written before the cluster launches a pod."""
    return bool(handle and handle.get("launching"))

__all__ = ["AdmissionHook", "RunaiService", "Subscription", "User"]

KERNEL_ID_ENV = "RUNAI_KERNEL_ID"  # set by the kernel provisioner (kernels/provisioner.py)
STARTING_REASON = "starting: waiting for the server to answer"
"""The pending reason of a workload whose pods run but do not answer yet (see ``_update_phase``)."""
LIVE = (WorkloadPhase.PENDING, WorkloadPhase.RUNNING, WorkloadPhase.STOPPING, WorkloadPhase.DELETING)


class Subscription(asyncio.Queue):
    """The events a subscriber has yet to take, in order. A subscriber that falls
    ``maxsize`` events behind gets no more: ``overflowed`` is set, and it should take what
    is queued and then resume from the store after the last event it took."""

    def __init__(self, maxsize: int, user: User | None = None) -> None:
        super().__init__(maxsize=maxsize)
        self.overflowed = asyncio.Event()
        self.user = user  # None: every event; else those of the projects it may see
        self.seen: tuple[int, set[str] | None] | None = None  # (access version, projects it may see)


AdmissionHook = Callable[[WorkloadSpec, User], WorkloadSpec | None]
"""Called on every submit after validation; may return a changed spec (defaults
from a policy) or raise a ``ServiceError`` (a policy or RBAC refusal)."""


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class RunaiService(Administration, PolicyAdministration, ProjectData, AccessControl, Monitoring):
    """Owns the store, the cluster and the scheduling loop. Call :meth:`start` once.
    Departments, projects and node pools are administered through the methods of
    :class:`~jupyter_runai.admin.Administration`."""

    def __init__(
        self,
        store: Store,
        cluster: Cluster,
        *,
        node_pools: Iterable[NodePool] = (),
        interval: float = 1.0,
        poll_interval: float = 0.1,
        stop_grace_seconds: float = 10.0,
        scale_down_delay: float = 30.0,
        placement_history: int = 1000,
        event_retention: int | None = None,
        event_buffer: int = 1000,
        proxy_prefix: str = "/runai/proxy/",
        proxy_secret: bytes | None = None,
        clock: Callable[[], datetime] = utcnow,
        accounting_interval: float = 60.0,
        usage_sample_interval: float = 5.0,
        usage_history: int = 120,
    ) -> None:
        self.store = store
        self.cluster = cluster
        self.node_pools = list(node_pools)
        self.interval = interval
        self.poll_interval = poll_interval
        self.stop_grace_seconds = stop_grace_seconds
        self.clock = clock
        self.placement_history = placement_history
        self._mix_jobs: dict[str, Job] = {}  # uid -> the workload's pods, for the workload mix
        self.proxy_prefix = proxy_prefix
        self._proxy_secret = proxy_secret or secrets.token_bytes(32)
        self.admission_hooks: list[AdmissionHook] = []
        self.workloads: dict[str, Workload] = {}
        self._names: dict[tuple[str, str], str] = {}  # (project, name) -> uid
        self.seq: dict[str, int] = {}
        self.handles: dict[tuple[str, str], dict[str, Any]] = {}
        self.desired: dict[str, int] = {}
        self.fair_share: dict[str, dict[str, float]] = {}
        self.cycles = 0
        self.last_cycle_seconds = 0.0
        self.autoscaler = Autoscaler(scale_down_delay)
        self._dirty: set[str] = set()
        self._outbox: list[dict[str, Any]] = []  # events to publish once committed
        # queue positions are marked again on a read after a change (a saved workload or an event)
        self._changes = 0
        self._positions_marked_at = -1
        self._versions: dict[str, int] = {}  # uid -> changes so far (see _save)
        self._jobs: dict[str, tuple[int, Job | None]] = {}  # uid -> (version, engine job) cache
        self._phase_applied: dict[str, tuple[int, str | None]] = {}  # uid -> (version, reason) at its last update
        self._reasons_told: dict[str, set[str]] = {}  # uid -> kinds of reason told while it waits
        self._idle_since: dict[str, datetime] = {}  # uid -> since when all its GPUs showed no use (rules)
        self._yielded: dict[str, str] = {}  # uid -> why: yielded by a rule, sits out one pass once its pods end
        self._queues_read: tuple[list[Project], list[Department]] | None = None  # this cycle's (_queues)
        self._outcome: dict[str, WorkloadPhase] = {}  # what a stopping workload becomes once its pods end
        self._subscribers: set[Subscription] = set()
        self._handles_dirty: set[tuple[str, str]] = set()  # handles to write with the transaction
        self._after_commit: list[Callable[[], None]] = []  # cluster actions once the transaction commits
        self._in_transaction = False
        self._unapplied: list[PodReport] = []  # reports of a cycle that did not commit: applied again
        self._recheck_intents = False  # after a rollback: find out what became of pods being launched
        self._last_time: datetime | None = None
        self._crash_points = _test_crash_points()
        self._launches = 0
        self.event_retention = event_retention  # events kept in the store while running (None: all)
        self.event_buffer = event_buffer  # events a subscriber may fall behind before it overflows
        self._unpruned = 0  # events added since the store was last pruned
        store.on_rollback(self._forget_unstored_events)
        self._init_monitoring(accounting_interval, usage_sample_interval, usage_history)
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._started = False
        self.closed = False

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Load the store, re-adopt pods, and (inside a running event loop) start the loop;
        :meth:`ensure_running` starts the loop later when there was none yet."""
        if self._started:
            self.ensure_running()
            return
        self._started = True
        self._load()
        with self._transaction():
            self._report_load_problems()
            self._readopt()
        self.accounting.observe(self.workloads.values(), self._now())  # what still holds devices
        end_strays = getattr(self.cluster, "end_strays", None)
        if callable(end_strays):  # pods running that no stored workload (or intent) accounts for
            for text in end_strays():
                log.warning("ended a stray pod: %s", text)
        self.ensure_running()

    def _load(self) -> None:
        """Memory from the store: the workloads in queue order and the pod handles."""
        self.workloads.clear()
        self._names.clear()
        self.seq.clear()
        self.handles = dict(self.store.pod_handles())
        for workload in self.store.workloads():
            self.workloads[workload.uid] = workload
            self._names[(workload.spec.project, workload.spec.name)] = workload.uid
            self.seq[workload.uid] = self.store.workload_seq(workload.uid)
            if workload.spec.kind == WorkloadKind.INFERENCE and workload.uid not in self.desired:
                running = sum(1 for p in workload.status.pods if p.phase in HOLDING)
                self.desired[workload.uid] = max(workload.spec.min_pods, running)
        for uid in [uid for uid in self.desired if uid not in self.workloads]:
            del self.desired[uid]

    @property
    def load_problems(self) -> list[dict[str, Any]]:
        """Stored workloads that did not load as they were: repaired (times out of order) or
        quarantined (kept aside in the store), each {uid, project, name, action, message}."""
        return list(self.store.load_problems)

    def _report_load_problems(self) -> None:
        for problem in self.store.load_problems:
            if problem["action"] == "repaired":
                text = (f"its stored times were out of order (did the clock step back?) and were repaired: "
                        f"{problem['message']}")
            else:
                text = f"this workload {problem['message']}"
            log.warning("workload %s/%s: %s", problem["project"], problem["name"], text)
            event = self.store.add_event("Warning", text, at=self._now(), project=problem["project"],
                                         workload=problem["name"])
            self._outbox.append(event.model_dump(mode="json"))
        self._changes += 1

    @contextlib.contextmanager
    def _transaction(self, rollback: bool = True) -> Iterator[None]:
        """One request or one step of a cycle: its changes to memory, its writes and its events
        are committed together. Afterwards the cluster actions it asked for run (stopping pods)
        and the events are published. If anything fails, nothing of it happened: the store
        rolls back, memory is loaded again from the store (``rollback``; a caller that changes
        memory only after the commit passes False), no event is published, no pod is stopped."""
        if self._in_transaction:  # inside another one: part of it
            yield
            return
        self._in_transaction = True
        try:
            with self.store.batch():
                yield
                self._flush()
        except BaseException:
            self._outbox.clear()
            self._after_commit.clear()
            self._dirty.clear()
            self._handles_dirty.clear()
            if rollback:
                try:
                    self._rollback()
                except Exception:  # the store cannot even be read: say so, keep the first error
                    log.exception("could not reload the scheduler's state after a failed write")
            raise
        finally:
            self._in_transaction = False
        actions, self._after_commit = self._after_commit, []
        for action in actions:
            try:
                action()
            except Exception:
                log.exception("a cluster action after a commit failed")
        self._publish()

    def _rollback(self) -> None:
        """Memory back to what the store holds, after a transaction that did not commit."""
        before = self.handles
        self._load()
        for key, handle in before.items():
            stored = self.handles.get(key)
            if is_intent(stored) and handle is not None and not is_intent(handle):
                # launched, but its handle was not saved: keep it (the stored intent finds it too)
                self.handles[key] = handle
                self._handles_dirty.add(key)
        self._jobs.clear()
        self._phase_applied.clear()
        self._mix_jobs.clear()
        for uid in list(self._outcome):
            workload = self.workloads.get(uid)
            if workload is None or workload.status.phase != WorkloadPhase.STOPPING:
                del self._outcome[uid]
        self._recheck_intents = True

    def _stop_pod(self, key: str) -> None:
        """Stop a pod once the current transaction commits (at once outside one)."""
        if self._in_transaction:
            self._after_commit.append(lambda: self.cluster.stop(key, self.stop_grace_seconds))
        else:
            self.cluster.stop(key, self.stop_grace_seconds)

    def _now(self) -> datetime:
        """The clock, never going backwards inside this process (a clock stepped back waits)."""
        now = self.clock()
        if self._last_time is not None and now < self._last_time:
            now = self._last_time
        self._last_time = now
        return now

    def _now_after(self, *times: datetime | None) -> datetime:
        """Now, but not before any of ``times`` (an end is never before its start, even after
        the clock stepped back across a restart)."""
        return max([self._now(), *(t for t in times if t is not None)])

    def ensure_running(self) -> None:
        """Start the scheduling loop if an event loop runs and the loop is not running yet."""
        if self.closed:
            raise Unavailable("the scheduler is stopping with the Jupyter server; try again when it is back")
        if self._task is not None and not self._task.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._wake = asyncio.Event()
        self._task = loop.create_task(self._run())

    async def close(self) -> None:
        """Stop the loop (pods keep running: a restart re-adopts them). Afterwards every
        request gets ``Unavailable`` (503)."""
        self.closed = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        self._account(force=True)
        self.cluster.close()

    def wake(self) -> None:
        """Run a cycle soon (after a request or an event)."""
        if self._wake is not None:
            self._wake.set()

    async def _run(self) -> None:
        """Cycle on every request (``wake``), on every change the cluster reports (looked for
        every ``poll_interval``, and at once after a cycle: what ended while it ran frees
        its devices in the next cycle without waiting for the poll) and at least every
        ``interval`` seconds."""
        assert self._wake is not None
        last = 0.0
        reports: list[PodReport] = []
        while True:
            if reports:
                await asyncio.sleep(0)  # let requests and subscribers in first
            else:
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=min(self.poll_interval, self.interval))
                except asyncio.TimeoutError:
                    pass
            woken = self._wake.is_set()
            self._wake.clear()
            try:
                reports = [*reports, *self.cluster.poll()]
                if woken or reports or time.monotonic() - last >= self.interval:
                    last = time.monotonic()
                    cycle_reports, reports = reports, []
                    self.run_cycle(cycle_reports)
                    reports = self.cluster.poll()  # what the cluster saw while the cycle ran
            except Exception:  # keep scheduling whatever one cycle did
                reports = []
                log.exception("scheduling cycle failed")

    # ------------------------------------------------------------------ reading

    def get(self, project: str, name: str, user: User | None = None) -> Workload:
        self.require(user, access.VIEW, project=project)  # before it is looked up: a 403 tells nothing
        uid = self._names.get((project, name))
        if uid is not None:
            self._mark_queue_positions()
            return self.workloads[uid]
        raise NotFound(f"no workload {name!r} in project {project!r}", field="name")

    def _mark_queue_positions(self) -> None:
        """Each pending workload's place in its project's queue, marked again only when something
        happened since the last time (a read of 5,000 workloads stays cheap)."""
        if self._positions_marked_at != self._changes:
            views.mark_queue_positions(self)
            self._positions_marked_at = self._changes

    def list(self, project: str | None = None, phase: str | None = None, kind: str | None = None,
             user: User | None = None) -> list[Workload]:
        """Workloads in queue order, filtered; of the projects ``user`` may see.

        A filter value that names nothing (a phase or kind that does not exist, a project that is not
        there) is an :class:`Invalid` naming the field and the allowed values, not an empty list: a typo
        (``phase=Runing``) must not read as "no workloads". Phase and kind match without regard to case."""
        phase_value = _filter_value("phase", phase, [p.value for p in WorkloadPhase])
        kind_value = _filter_value("kind", kind, [k.value for k in WorkloadKind])
        self._mark_queue_positions()
        items = self.workloads.items()
        if project:
            self.require(user, access.VIEW, project=project)
        elif (visible := self.visible_projects(user)) is not None:  # before sorting: a caller may see few
            items = [(uid, w) for uid, w in items if w.spec.project in visible]
        out = [w for uid, w in sorted(items, key=lambda item: self.seq.get(item[0], 0))]
        if project:
            out = [w for w in out if w.spec.project == project]
            if not out and self.store.project(project) is None:
                names = [p.name for p in self.store.projects()]
                raise Invalid(f"no project {project!r}", field="project", allowed=names)
        if phase_value:
            out = [w for w in out if w.status.phase == phase_value]
        if kind_value:
            out = [w for w in out if w.spec.kind == kind_value]
        return out

    def projects(self, user: User | None = None) -> list[Project]:
        """The projects ``user`` may see."""
        visible = self.visible_projects(user)
        return [p for p in self.store.projects() if visible is None or p.name in visible]

    @property
    def backend(self) -> str:
        """The cluster backend's name (``local``, ``simulated``...)."""
        return self.cluster.name

    def nodes(self) -> list[Node]:
        """The cluster's nodes and their devices."""
        return self.cluster.nodes()

    def departments(self) -> list[Department]:
        return self.store.departments()

    def project(self, name: str) -> Project:
        project = self.store.project(name)
        if project is None:
            names = [p.name for p in self.store.projects()]
            raise NotFound(f"no project {name!r}; projects: {', '.join(names) or 'none'}", field="project",
                           allowed=names)
        return project

    def endpoints(self, project: str, name: str, user: User | None = None) -> list[tuple[str, Endpoint]]:
        """Ready replicas of a workspace or inference workload: (pod key, where the proxy reaches it).
        An inference endpoint is reached by whoever may see its project; a workspace (a shell on its
        pod, in effect) by whoever may stop it: the one who submitted it, or a department admin."""
        workload = self.get(project, name, user)
        if workload.spec.kind != WorkloadKind.INFERENCE:
            self.require(user, access.MANAGE, project=project, owner=workload.submitted_by)
        out = []
        for pod in workload.status.pods:
            handle = self.handles.get((workload.uid, pod.name))
            if pod.phase != PodPhase.RUNNING or not handle:
                continue
            key = pod_key(project, pod.name)
            endpoint = self.cluster.endpoint(key, handle)
            if endpoint is not None:
                out.append((key, endpoint))
        return out

    def log_path(self, project: str, name: str, pod: int | str | None = None, user: User | None = None):
        """The log file of one pod (default: pod 0, or the only pod there is)."""
        workload = self.get(project, name, user)
        index = 0
        if pod is not None:
            try:
                index = int(str(pod).rsplit("-", 1)[-1])
            except ValueError:
                raise Invalid(f"pod must be a pod index or name, got {pod!r}", field="pod",
                              allowed="an index 0.. or <workload>-<index>") from None
        if index >= max(workload.spec.pod_count, len(workload.status.pods)):
            raise Invalid(f"pod {index} does not exist; the workload has {workload.spec.pod_count} pods",
                          field="pod", allowed=f"0..{workload.spec.pod_count - 1}")
        pod_name = workload.spec.pod_name(index)
        handle = self.handles.get((workload.uid, pod_name))
        return self.cluster.log_path(pod_key(project, pod_name), handle)

    def pod_finished(self, project: str, name: str, pod: int | None = None) -> bool:
        """True when the pod does not run (for log following)."""
        try:
            workload = self.get(project, name)
        except NotFound:
            return True
        index = pod or 0
        for p in workload.status.pods:
            if p.index == index:
                return p.phase not in HOLDING
        return workload.status.phase.is_finished

    # ------------------------------------------------------------------ requests

    def submit(self, spec: WorkloadSpec | dict[str, Any], user: User) -> Workload:
        """Admit a workload: validate, apply the hooks, store, queue. Raises ``ValidationError``
        (a field error) or a ``ServiceError``."""
        if not isinstance(spec, WorkloadSpec):
            spec = WorkloadSpec.model_validate(spec)
        project = self.project(spec.project)  # NotFound names the field
        self.require(user, self.submit_action(spec.kind), project=spec.project)
        for hook in self.admission_hooks:
            changed = hook(spec, user)
            if changed is not None:
                spec = changed
        if spec.project != project.name:  # a hook moved it
            project = self.project(spec.project)
            self.require(user, self.submit_action(spec.kind), project=spec.project)
        spec = self._apply_policies(spec, project)  # defaults, then every rule broken listed (policy_admin)
        self._check_references(spec)
        if spec.command is None and spec.kind != WorkloadKind.WORKSPACE and not self.cluster.runs_images:
            raise Invalid(f"required for a {spec.kind.value} on the {self.cluster.name} cluster: it runs this "
                          f"command in the server's Python environment and does not run images",
                          field="command", allowed="a command string or list")
        for part, res in (("resources", spec.resources), ("master_resources", spec.master_resources)):
            if res is not None and res.is_fractional and not self.cluster.gpu_fractions:
                raise Invalid(f"the {self.cluster.name} cluster gives whole GPUs only (fractions and GPU memory "
                              f"are not built for it yet)", field=f"{part}.gpu", allowed="a whole number of GPUs")
        if not spec.queue_anyway:
            self._refuse_never_runs(spec, project)
        existing = self._names.get((spec.project, spec.name))
        if existing is not None:
            raise Conflict(
                f"a workload named {spec.name!r} already exists in project {spec.project!r} "
                f"({self.workloads[existing].status.phase}); delete it first or choose another name",
                field="name",
            )
        now = self._now()
        workload = Workload(spec=spec, submitted_by=user.name,
                            status=WorkloadStatus(submitted_at=now, pods=self._fresh_pods(spec)))
        with self._transaction(rollback=False):  # memory changes below, once it is committed
            seq = self.store.add_workload(workload)
            self._event("Submitted", workload, f"submitted by {user.name}: {describe_request(spec)}")
            if spec.image and not self.cluster.runs_images:
                self._event("Warning", workload, f"the local cluster runs commands without containers; "
                            f"image {spec.image!r} is recorded, not pulled")
            if not self.cluster.read_only_mounts:
                for name in spec.data_sources:
                    source = self.store.data_source(spec.project, name)
                    if source is not None and source.read_only:
                        self._event("Warning", workload, f"data source {name!r} is marked read-only, but the "
                                    f"{self.cluster.name} cluster cannot enforce it: the workload can write to "
                                    f"{source.path}")
        self.workloads[workload.uid] = workload
        self._names[(spec.project, spec.name)] = workload.uid
        self.seq[workload.uid] = seq
        if spec.kind == WorkloadKind.INFERENCE:
            self.desired[workload.uid] = spec.min_pods
        self.wake()
        return workload

    def stop(self, project: str, name: str, user: User) -> Workload:
        """Stop a workload: its pods end (SIGTERM, then SIGKILL after the grace period)."""
        workload = self._to_manage(project, name, user)
        if workload.status.phase in (WorkloadPhase.STOPPED, WorkloadPhase.SUCCEEDED, WorkloadPhase.FAILED):
            raise Conflict(f"workload {name!r} is {workload.status.phase}, not running or pending", field="name")
        if workload.status.phase == WorkloadPhase.DELETING:
            raise Conflict(f"workload {name!r} is being deleted", field="name")
        if workload.status.phase != WorkloadPhase.STOPPING:
            with self._transaction():
                workload.status.phase = WorkloadPhase.STOPPING
                workload.status.pending_reason = None
                workload.status.message = f"stopped by {user.name}"
                self._end_pods(workload, "stopped by a user")
                self._maybe_finish_stop(workload)  # at once when nothing runs; else when its pods end
                self._save(workload)
        self.wake()
        return workload

    def resume(self, project: str, name: str, user: User) -> Workload:
        """Put a stopped (or finished) workload back in the queue, at its old place."""
        workload = self._to_manage(project, name, user)
        if not workload.status.phase.is_finished:
            raise Conflict(f"workload {name!r} is {workload.status.phase}; only a Stopped, Succeeded or "
                           f"Failed workload can be resumed", field="name")
        with self._transaction():
            workload.status = WorkloadStatus(
                phase=WorkloadPhase.PENDING,
                submitted_at=workload.status.submitted_at,
                started_at=workload.status.started_at,
                pods=self._fresh_pods(workload.spec),
            )
            if workload.spec.kind == WorkloadKind.INFERENCE:
                self.desired[workload.uid] = workload.spec.min_pods
            self._event("Resumed", workload, f"resumed by {user.name}")
            self._save(workload)
        self.wake()
        return workload

    def delete(self, project: str, name: str, user: User) -> Workload:
        """Stop the workload's pods and remove it (at once when nothing runs)."""
        workload = self._to_manage(project, name, user)
        with self._transaction():
            workload.status.phase = WorkloadPhase.DELETING
            workload.status.pending_reason = None
            self._end_pods(workload, "deleted by a user")
            self._save(workload)
            self._maybe_remove(workload, user.name)
        self.wake()
        return workload

    def _to_manage(self, project: str, name: str, user: User) -> Workload:
        """The workload, when ``user`` may stop, resume or delete it (its own, or as a department admin)."""
        workload = self.get(project, name, user)
        self.require(user, access.MANAGE, project=project, owner=workload.submitted_by)
        return workload

    def proxy_token(self, uid: str) -> str:
        """The token a workspace's web server expects; only the proxy sends it (derived, never stored)."""
        return hmac.new(self._proxy_secret, uid.encode(), hashlib.sha256).hexdigest()

    def proxy_path(self, workload: Workload) -> str:
        """The path a workspace or inference endpoint is reached at, under the Jupyter server."""
        return f"{self.proxy_prefix}{workload.spec.project}/{workload.spec.name}/"

    def report_load(self, uid: str, in_flight: int) -> None:
        """The proxy says how many requests an inference workload has in flight now."""
        self.autoscaler.observe(uid, in_flight)

    # ------------------------------------------------------------------ the cycle

    def run_cycle(self, reports: list[PodReport] | None = None) -> None:
        """One pass: observe (``reports`` already taken from the cluster, then its new ones),
        schedule, apply, save, publish."""
        started = time.perf_counter()
        reports = [*self._unapplied, *(reports or []), *self.cluster.poll()]
        self._unapplied = []
        plan = None
        try:
            # One transaction (one disk sync) per cycle; a cycle that starts pods commits
            # their launch intents first, and launches them in a second one.
            with self._transaction():
                if self._recheck_intents:
                    self._recheck_intents = False
                    self._readopt(intents_only=True)
                plan = self._cycle(reports)
                if plan is not None and not plan[0]:
                    self._update_phases(plan[1])
        except BaseException:
            self._unapplied = reports  # memory is the store's again: what the cluster saw still counts
            raise
        if plan is not None and plan[0]:
            with self._transaction():
                self._launch(plan[0])
                self._update_phases(plan[1])
        self.cycles += 1
        self.last_cycle_seconds = time.perf_counter() - started
        self._after_cycle(self.last_cycle_seconds)

    def _cycle(self, reports: list[PodReport]) -> tuple[list[tuple[str, str, PodLaunch]], dict[str, str]] | None:
        """Observe and schedule: apply the reports, stop evicted pods, record the intents of the
        pods to start. Returns (the launches, the pending reasons), or None when nothing waits."""
        for report in reports:
            self._apply_report(report)
        self._autoscale()
        self._queues_read = None  # the queue tree, read at most once in this cycle (_queues)
        self._apply_rules()
        nodes = self.cluster.nodes()
        device_memory = {n.name: (n.devices[0].memory if n.devices else 0) for n in nodes}
        held = self._held_by_rules()  # uid -> why a rule keeps it out of this cycle (rules.py)
        jobs = [job for uid, workload in list(self.workloads.items())
                if uid not in held and (job := self._safe_engine_job(uid, workload))]
        if not any(p.status is EnginePodStatus.PENDING for job in jobs for p in job.pods):
            # nothing waits: no action of the engine would do anything
            return ([], held) if held else None
        projects, departments = self._queues()
        snap = build_snapshot(nodes=nodes, pools=self.node_pools, departments=departments,
                              projects=projects, jobs=jobs, now=self._now().timestamp(),
                              workload_mix=self._workload_mix())
        result = schedule(snap)
        self.fair_share = result.fair_share
        for evict in result.evictions:
            self._evict(evict.job, evict.pod, self._eviction_reason(evict, result.binds))
        binds_by_job: dict[str, list] = {}
        for bind in result.binds:
            if not bind.pipelined:
                binds_by_job.setdefault(bind.job, []).append(bind)
        launches: list[tuple[str, str, PodLaunch]] = []
        for uid, binds in binds_by_job.items():
            try:
                launches += self._start_pods(uid, sorted(binds, key=lambda b: b.pod), device_memory)
            except Exception as exc:  # one workload's failure is its own, not the cycle's
                self._fail_unschedulable(uid, "could not start its pods", exc)
        return launches, {**result.pending_reasons, **held}

    def _held_by_rules(self) -> dict[str, str]:
        """The waiting workloads (no pod holding devices) that a rule keeps out of this cycle, with the
        reason: a workload that yielded (preemptible_max_duration) sits out one pass, so that the
        workloads that waited are placed first; one whose node pools a node_pools rule does not allow."""
        held: dict[str, str] = {}
        for uid in list(self._yielded):
            workload = self.workloads.get(uid)
            if workload is None or workload.status.phase not in (WorkloadPhase.PENDING, WorkloadPhase.RUNNING):
                self._yielded.pop(uid, None)  # stopped or deleted meanwhile
            elif not any(p.phase in HOLDING for p in workload.status.pods):
                held[uid] = self._yielded.pop(uid)  # out of this pass only
        if not any(w.status.phase == WorkloadPhase.PENDING for w in self.workloads.values()):
            return held
        projects, departments = self._queues()  # read anyway for the snapshot when work is pending
        if not any(r.node_pools is not None for q in [*projects, *departments] for r in q.rules.values()):
            return held
        waiting = [w for uid, w in self.workloads.items() if w.status.phase == WorkloadPhase.PENDING
                   and uid not in held and not any(p.phase in HOLDING for p in w.status.pods)]
        held.update(pool_holds(waiting, {p.name: p for p in projects}, {d.name: d for d in departments}))
        return held

    def _queues(self) -> tuple[list[Project], list[Department]]:
        """The projects and departments, read from the store once per cycle (nothing changes them
        while a cycle runs)."""
        if self._queues_read is None:
            self._queues_read = (self.store.projects(), self.store.departments())
        return self._queues_read

    def _apply_rules(self) -> None:
        """Stop the running workloads that a scheduling rule of their project or department says
        are done (max duration, idle GPU timeout; :mod:`jupyter_runai.rules`), in the service's clock."""
        running = [w for w in self.workloads.values() if w.status.phase == WorkloadPhase.RUNNING]
        if not running:
            self._idle_since.clear()
            return
        projects = {p.name: p for p in self._queues()[0]}
        departments = {d.name: d for d in self._queues()[1]}
        if not any(q.rules for q in [*projects.values(), *departments.values()]):
            self._idle_since.clear()
            return
        now = self._now()
        watched = [w for w in running if "idle_gpu_timeout" in effective_rules(
            w.spec.kind.value, projects.get(w.spec.project),
            departments.get(projects[w.spec.project].department) if w.spec.project in projects else None)]
        idle: set[str] = set()
        if watched:
            utilization = {(m.node, m.index): m.utilization for m in self.cluster.metrics()}
            idle = idle_workloads(watched, utilization)
        for uid in [uid for uid in self._idle_since if uid not in idle]:
            del self._idle_since[uid]  # used again (or no longer watched): the idle time starts over
        for uid in idle:
            self._idle_since.setdefault(uid, now)
        waiting: set[str] = set()
        if any(r.preemptible_max_duration for q in [*projects.values(), *departments.values()]
               for r in q.rules.values()):
            pending = [w for uid, w in self.workloads.items()
                       if w.status.phase == WorkloadPhase.PENDING and uid not in self._yielded]
            if pending:
                pools = {n.name: node_pool_of(n, self.node_pools) for n in self.cluster.nodes()}
                waiting = contested(running, pending, pools)
        for breach in breaches(running, projects, departments, now, self._idle_since, waiting):
            workload = self.workloads[breach.uid]
            if breach.action == "yield":
                self._yield(workload, breach.message)
                continue
            workload.status.phase = WorkloadPhase.STOPPING
            workload.status.pending_reason = None
            workload.status.message = breach.message
            self._event("RuleStopped", workload, breach.message)
            self._end_pods(workload, breach.message)
            self._maybe_finish_stop(workload)
            self._save(workload)
            self._idle_since.pop(breach.uid, None)

    def _yield(self, workload: Workload, message: str) -> None:
        """A preemptible workload gives its GPUs back to the queue (rule preemptible_max_duration):
        its pods are evicted; once they have ended it sits out one scheduling pass (``_held_by_rules``)."""
        self._event("RuleYielded", workload, message)
        for pod in workload.status.pods:
            if pod.phase == PodPhase.RUNNING:
                self._evict(workload.uid, pod_key(workload.spec.project, pod.name), message)
        workload.status.message = message
        self._yielded[workload.uid] = message
        self._idle_since.pop(workload.uid, None)
        self._save(workload)

    def _update_phases(self, reasons: dict[str, str]) -> None:
        applied = self._phase_applied
        for uid, workload in list(self.workloads.items()):
            if workload.status.phase in (WorkloadPhase.PENDING, WorkloadPhase.RUNNING):
                reason = reasons.get(uid)
                if applied.get(uid) == (self._versions.get(uid, 0), reason):
                    continue  # unchanged since it was last brought up to date with this reason
                try:
                    self._update_phase(workload, reason)
                except Exception as exc:
                    self._fail_unschedulable(uid, "could not update its status", exc)
                    continue
                applied[uid] = (self._versions.get(uid, 0), reason)

    def _safe_engine_job(self, uid: str, workload: Workload) -> Job | None:
        """:meth:`_engine_job`, except that a workload the engine cannot take (a value stored by
        an older version that no arithmetic survives, say) is marked Failed instead of failing
        the cycle of every other workload."""
        try:
            return self._engine_job(uid, workload)
        except Exception as exc:
            self._fail_unschedulable(uid, "cannot be scheduled", exc)
            self._jobs[uid] = (self._versions.get(uid, 0), None)  # not tried again until it changes
            return None

    def _fail_unschedulable(self, uid: str, what: str, exc: BaseException) -> None:
        """Mark one workload Failed, with the reason in its message and a Failed event, after
        an error that concerns it alone; its pods are stopped. The cycle goes on."""
        log.error("workload %s %s", uid, what, exc_info=exc)
        workload = self.workloads.get(uid)
        if workload is None or workload.status.phase.is_finished:
            return
        reason = f"{what}: {type(exc).__name__}: {exc}"
        try:  # a spec from an older version: today's validation says best what is wrong
            WorkloadSpec.model_validate(workload.spec.model_dump(mode="json"))
        except ValidationError as invalid_spec:
            reason = f"{what}: {format_validation_error(invalid_spec)[0]['message']}"
        except Exception:
            pass
        reason = reason[:1000]
        try:
            self._end_pods(workload, reason)
        except Exception:  # its pods may be what is broken: still fail the workload
            log.exception("could not stop the pods of workload %s", uid)
        self._finish(workload, WorkloadPhase.FAILED, reason)
        self._save(workload)

    def _workload_mix(self) -> list[Job]:
        """The ``placement_history`` most recently submitted workloads (finished ones included)
        as engine jobs of all their pods: the shapes the GPU placement expects to keep arriving."""
        if self.placement_history <= 0:
            return []
        cached = self._mix_jobs
        mix: dict[str, Job] = {}
        for workload in itertools.islice(reversed(self.workloads.values()), self.placement_history):
            job = cached.get(workload.uid)
            if job is None:
                pods = [ActivePod(i, EnginePodStatus.PENDING) for i in range(workload.spec.pod_count)]
                try:
                    job = engine_job(workload, 0, pods)
                except Exception:  # its shape is not one to expect (and the cycle fails it)
                    continue
            mix[workload.uid] = job
        self._mix_jobs = mix
        return list(mix.values())

    def _engine_job(self, uid: str, workload: Workload) -> Job | None:
        """The workload as the engine sees it, rebuilt only when the workload changed."""
        version = self._versions.get(uid, 0)
        cached = self._jobs.get(uid)
        if cached is not None and cached[0] == version:
            return cached[1]
        phase = workload.status.phase
        job = None
        if phase in (WorkloadPhase.PENDING, WorkloadPhase.RUNNING):
            pods = active_pods(workload, self._desired(workload))
        elif phase in (WorkloadPhase.STOPPING, WorkloadPhase.DELETING):
            pods = active_pods(workload, 0)
        else:
            pods = []
        if pods:
            job = engine_job(workload, self.seq.get(uid, 0), pods,
                             being_deleted=phase not in (WorkloadPhase.PENDING, WorkloadPhase.RUNNING))
        self._jobs[uid] = (version, job)
        return job

    def _desired(self, workload: Workload) -> int:
        if workload.spec.kind == WorkloadKind.INFERENCE:
            return self.desired.get(workload.uid, workload.spec.min_pods)
        return workload.spec.pod_count

    def _eviction_reason(self, evict, binds: list) -> str:
        """The engine's reason for an eviction, with the workloads placed in this cycle on the
        devices the pod gives up (what it makes room for), when there are any."""
        if evict.action != "evict":
            return evict.reason
        victim = self.workloads.get(evict.job)
        pod = self._pod_by_key(victim, evict.pod) if victim is not None else None
        devices = set(pod.devices) if pod is not None else set()
        gainers = {(w.spec.project, w.spec.name) for b in binds
                   if b.job != evict.job and b.node == evict.node
                   and (not devices or devices & set(b.devices))
                   and (w := self.workloads.get(b.job)) is not None}
        return eviction_text(evict.reason, victim.spec.project if victim is not None else None, gainers)

    def _evict(self, uid: str, key: str, reason: str) -> None:
        workload = self.workloads.get(uid)
        if workload is None:
            return
        pod = self._pod_by_key(workload, key)
        if pod is None or pod.phase != PodPhase.RUNNING:
            return
        pod.phase = PodPhase.TERMINATING
        pod.message = reason if reason.startswith("evicted") else f"evicted: {reason}"
        self._stop_pod(key)
        self._event("Evicted", workload, f"pod {pod.name} on {pod.node}: {reason}", pod=pod.name)
        self._save(workload)
        self._count_eviction(workload.spec.project, eviction_kind(reason))

    def _start_pods(self, uid: str, binds: list, device_memory: dict[str, int]) -> list[tuple[str, str, PodLaunch]]:
        """Place the bound pods (Running on their node and devices) and record each one's launch
        intent; :meth:`_launch` starts them once that is committed. A crash in between leaves
        the intents, through which the restarted service finds the pods (or learns they never
        started): no pod is lost, none runs twice."""
        workload = self.workloads.get(uid)
        if workload is None or workload.status.phase not in (WorkloadPhase.PENDING, WorkloadPhase.RUNNING):
            return []
        spec = workload.spec
        master_key = pod_key(spec.project, spec.pod_name(0)) if spec.kind == WorkloadKind.DISTRIBUTED else None
        material = credential_material(self.store, spec)
        mounts = data_mounts(self.store, spec)
        sources = [ds for n in spec.data_sources if (ds := self.store.data_source(spec.project, n)) is not None]
        credentials = [c for n in spec.credentials if (c := self.store.credential(spec.project, n)) is not None]
        now = self._now()
        planned: list[tuple[str, str, PodLaunch]] = []
        for bind in binds:
            pod = self._pod_by_key(workload, bind.pod)
            if pod is None:
                index = int(bind.pod.rsplit("-", 1)[-1])
                pod = PodStatus(name=spec.pod_name(index), index=index)
                workload.status.pods.append(pod)
                workload.status.pods.sort(key=lambda p: p.index)
            res = spec.pod_resources(pod.index)
            mem = device_memory.get(bind.node, 0)
            fraction = bind.fraction if bind.devices and bind.fraction < 1 else None
            memory_limit = None
            if fraction is not None and mem:
                memory_limit = int(res.gpu_memory) if res.gpu_memory is not None else int(fraction * mem)
            env, files = material
            if spec.kind in (WorkloadKind.WORKSPACE, WorkloadKind.INFERENCE):
                # the proxy's path, and the token it adds to every request it passes on
                env = {**env, "RUNAI_PROXY_PATH": self.proxy_path(workload),
                       "RUNAI_PROXY_TOKEN": self.proxy_token(uid)}
            launch = PodLaunch(
                key=bind.pod, workload=spec.name, workload_uid=uid, project=spec.project, kind=spec.kind.value,
                index=pod.index, pod_count=spec.pod_count, node=bind.node, devices=list(bind.devices),
                fraction=fraction, gpu_memory_limit=memory_limit,
                gpu_fraction_limit=res.gpu_limit if res.is_dynamic else None,
                command=spec.command, environment={**env, **spec.environment},
                working_dir=spec.working_dir, python_env=spec.python_env, files=list(files),
                mounts=list(mounts),
                needs_port=spec.kind in (WorkloadKind.WORKSPACE, WorkloadKind.INFERENCE),
                master_key=master_key,
                launch_id=secrets.token_hex(8),
                workload_model=workload, data_sources=sources, credentials=credentials,
            )
            pod.node = bind.node
            pod.devices = list(bind.devices)
            pod.fraction = fraction
            pod.gpu_memory = memory_limit
            pod.phase = PodPhase.RUNNING  # holds its devices from now on, launched or not
            pod.started_at = now
            pod.finished_at = None
            pod.message = None
            self.handles[(uid, pod.name)] = {
                "launching": True, "launch_id": launch.launch_id, "workload_uid": uid, "index": pod.index,
                "node": bind.node, "devices": list(bind.devices), "fraction": fraction,
            }
            self._handles_dirty.add((uid, pod.name))
            planned.append((uid, pod.name, launch))
        self._save(workload)
        return planned

    def _launch(self, planned: list[tuple[str, str, PodLaunch]]) -> None:
        """Start the pods whose intents are committed; save their handles (with this transaction)."""
        for uid, pod_name, launch in planned:
            workload = self.workloads.get(uid)
            pod = self._pod_by_key(workload, launch.key) if workload is not None else None
            if pod is None or pod.phase != PodPhase.RUNNING or not is_intent(self.handles.get((uid, pod_name))):
                continue  # another pod of its workload failed to start meanwhile
            self._launches += 1
            self._crash_point("before-launch")
            try:
                handle = self.cluster.launch(launch)
            except Exception as exc:  # the cluster could not start it: say why
                log.warning("could not start %s: %s", launch.key, exc)
                self.handles.pop((uid, pod_name), None)
                self._handles_dirty.add((uid, pod_name))
                pod.phase = PodPhase.FAILED
                pod.message = f"could not start: {exc}"
                pod.finished_at = self._now_after(pod.started_at)
                self._event("Failed", workload, f"pod {pod.name} could not start: {exc}", pod=pod.name)
                self._pod_failed(workload, pod)
                self._save(workload)
                continue
            self._crash_point("after-launch")
            self.handles[(uid, pod_name)] = handle
            self._handles_dirty.add((uid, pod_name))
            where = f"{launch.node}" + (f" devices {','.join(map(str, launch.devices))}" if launch.devices else "")
            share = (f" ({launch.fraction:g} of {'each' if len(launch.devices) > 1 else 'the device'})"
                     if launch.fraction is not None else "")
            self._event("Scheduled", workload, f"pod {pod.name} started on {where}{share}", pod=pod.name)
            self._save(workload)

    def _crash_point(self, where: str) -> None:
        """The crash-safety tests' hook (see ``CRASH_ENV``); does nothing unless it is set."""
        if self._crash_points.get(where) == self._launches:
            log.warning("%s: exiting %s pod launch %d, as the test asked", CRASH_ENV,
                        where.replace("-", " ").replace("launch", "").strip(), self._launches)
            logging.shutdown()
            os._exit(137)

    @staticmethod
    def _serves(spec: WorkloadSpec) -> bool:
        """Workloads reached through the proxy (workspaces, inference): Running only once their pods
        answer. A kernel's workload (the kernel provisioner's, marked by ``RUNAI_KERNEL_ID``) serves no
        HTTP: the kernel client waits for the kernel's own ports, so it is Running when its process runs."""
        return spec.kind in (WorkloadKind.WORKSPACE, WorkloadKind.INFERENCE) and KERNEL_ID_ENV not in spec.environment

    def _ready(self, workload: Workload, pod: PodStatus) -> bool:
        """A running pod that can be reached: the cluster says so (``handle["ready"]``), or it need not be."""
        if pod.phase != PodPhase.RUNNING:
            return False
        if not self._serves(workload.spec):
            return True
        return (self.handles.get((workload.uid, pod.name)) or {}).get("ready") is not False

    def _update_phase(self, workload: Workload, reason: str | None) -> None:
        status = workload.status
        running = sum(1 for p in status.pods if p.phase == PodPhase.RUNNING)
        ready = sum(1 for p in status.pods if self._ready(workload, p))
        if running >= workload.spec.min_pods and ready < workload.spec.min_pods \
                and status.phase != WorkloadPhase.RUNNING:
            # placed and started, not answering yet: Running means reachable (the proxy would say 503)
            if status.pending_reason != STARTING_REASON:
                status.pending_reason = STARTING_REASON
                self._event("Pending", workload, STARTING_REASON)
                self._save(workload)
            return
        if running >= workload.spec.min_pods:
            if status.phase != WorkloadPhase.RUNNING:
                status.phase = WorkloadPhase.RUNNING
                status.started_at = self._now_after(status.submitted_at)
                status.pending_reason = None
                status.message = None
                self._event("Started", workload, f"running: {running} of {workload.spec.pod_count} pods")
                self._save(workload)
            if workload.spec.kind in (WorkloadKind.WORKSPACE, WorkloadKind.INFERENCE):
                url = self.proxy_path(workload)
                if status.url != url:
                    status.url = url
                    self._save(workload)
            return
        if status.phase == WorkloadPhase.RUNNING:
            status.phase = WorkloadPhase.PENDING
            status.url = None
            self._event("Pending", workload, "back in the queue: fewer pods run than its minimum")
            self._save(workload)
        terminating = any(p.phase == PodPhase.TERMINATING for p in status.pods)
        text = reason or ("waiting for evicted pods to release their devices" if terminating else None)
        if text and text != status.pending_reason:
            if status.pending_reason is None:  # it starts waiting (again)
                self._reasons_told.pop(workload.uid, None)
            told = self._reasons_told.setdefault(workload.uid, set())
            kind = reason_kind(text)
            if kind in told:
                # a reason it has waited for already, with this cycle's figures: shown at
                # once, but neither an event nor a write (saved with its next change)
                status.pending_reason = text
                return
            told.add(kind)
            status.pending_reason = text
            self._event("Pending", workload, text)
            self._save(workload)

    # ------------------------------------------------------------------ what the cluster saw

    def _apply_report(self, report: PodReport) -> None:
        found = self._find_pod(report.key)
        if found is None:
            return
        workload, pod = found
        if report.handle is not None:
            was_ready = (self.handles.get((workload.uid, pod.name)) or {}).get("ready")
            self.handles[(workload.uid, pod.name)] = report.handle
            self._handles_dirty.add((workload.uid, pod.name))
            if report.handle.get("ready") and not was_ready and workload.status.phase == WorkloadPhase.PENDING:
                self._update_phase(workload, None)  # it answers now: Running (when enough of its pods do)
        if report.state == PodState.RUNNING:
            return
        was, why = pod.phase, pod.message
        pod.finished_at = self._now_after(pod.started_at)
        pod.message = report.message
        stopping = workload.status.phase in (WorkloadPhase.STOPPING, WorkloadPhase.DELETING)
        ended = report.state == PodState.STOPPED or (was == PodPhase.TERMINATING and report.state != PodState.SUCCEEDED)
        if ended and stopping and self._outcome.get(workload.uid) == WorkloadPhase.FAILED:
            # stopped because another pod of its workload failed: it ended (and says why), it waits for nothing
            pod.phase = PodPhase.FAILED
            pod.message = f"ended: {why or 'another pod of the workload failed'}"
            self._maybe_finish_stop(workload)
            self._save(workload)
            return
        if ended:
            self._reset_pod(pod)
            pod.message = report.message
            if stopping:
                self._maybe_finish_stop(workload) or self._maybe_remove(workload, None)
            elif pod.index >= self._desired(workload):  # a replica scaled down: gone
                workload.status.pods = [p for p in workload.status.pods if p is not pod]
            else:  # evicted: back to the queue, saying why
                evicted = why if why and why.startswith("evicted") else "evicted"
                pod.message = f"{evicted}; waiting to be placed again"
            self._save(workload)
            return
        if report.state == PodState.SUCCEEDED:
            pod.phase = PodPhase.SUCCEEDED
            self._event("Succeeded", workload, f"pod {pod.name} {report.message or 'exited with code 0'}",
                        pod=pod.name)
            self._pod_succeeded(workload)
        else:
            pod.phase = PodPhase.FAILED
            lost = report.state == PodState.LOST
            text = report.message or ("the process was lost" if lost else "failed")
            self._event("Failed", workload, f"pod {pod.name}: {text}", pod=pod.name)
            if stopping:
                self._maybe_finish_stop(workload) or self._maybe_remove(workload, None)
            else:
                self._pod_failed(workload, pod)
        self._save(workload)


    def _pod_succeeded(self, workload: Workload) -> None:
        status = workload.status
        kind = workload.spec.kind
        if kind == WorkloadKind.INFERENCE:  # a replica that ends is started again
            for pod in status.pods:
                if pod.phase == PodPhase.SUCCEEDED:
                    self._reset_pod(pod)
            return
        if status.phase in (WorkloadPhase.STOPPING, WorkloadPhase.DELETING):
            self._maybe_finish_stop(workload) or self._maybe_remove(workload, None)
            return
        if all(p.phase == PodPhase.SUCCEEDED for p in status.pods) and len(status.pods) >= workload.spec.min_pods:
            self._finish(workload, WorkloadPhase.SUCCEEDED, None)

    def _pod_failed(self, workload: Workload, pod: PodStatus) -> None:
        spec, status = workload.spec, workload.status
        if spec.kind == WorkloadKind.INFERENCE:
            self._reset_pod(pod)
            return
        if spec.kind in (WorkloadKind.TRAINING, WorkloadKind.DISTRIBUTED) and status.restarts < (spec.backoff_limit or 0):
            status.restarts += 1
            self._end_pods(workload, "restarting after a failure")
            for p in status.pods:
                if p.phase not in HOLDING:
                    self._reset_pod(p)
            status.phase = WorkloadPhase.PENDING
            self._event("Pending", workload, f"restart {status.restarts} of {spec.backoff_limit} after: "
                        f"{pod.message or 'a pod failed'}")
            return
        message = f"pod {pod.name}: {pod.message or 'failed'}"
        self._end_pods(workload, "another pod of the workload failed")
        self._finish(workload, WorkloadPhase.FAILED, message)

    def _finish(self, workload: Workload, phase: WorkloadPhase, message: str | None) -> None:
        status = workload.status
        if any(p.phase in HOLDING for p in status.pods):
            # some pods are still ending: the workload gets its outcome when they are gone
            status.phase = WorkloadPhase.STOPPING
            status.message = message
            self._outcome[workload.uid] = phase
            return
        status.phase = phase
        status.message = message
        status.pending_reason = None
        status.url = None
        status.finished_at = self._now_after(status.submitted_at, status.started_at)
        self._event(phase.value, workload, message or phase.value.lower())

    def _maybe_finish_stop(self, workload: Workload) -> bool:
        """A stopping workload whose pods all ended becomes Stopped (or Failed if a pod failed
        on its own). True when it did."""
        status = workload.status
        if status.phase != WorkloadPhase.STOPPING or any(p.phase in HOLDING for p in status.pods):
            return False
        outcome = self._outcome.pop(workload.uid, WorkloadPhase.STOPPED)
        status.phase = outcome
        if outcome == WorkloadPhase.STOPPED:
            status.pods = []
        status.url = None
        status.finished_at = self._now_after(status.submitted_at, status.started_at)
        self._event(status.phase.value, workload, status.message or "stopped")
        return True

    def _maybe_remove(self, workload: Workload, user: str | None) -> bool:
        if workload.status.phase != WorkloadPhase.DELETING or any(p.phase in HOLDING for p in workload.status.pods):
            return False
        self.store.delete_workload(workload.uid)
        self._dirty.discard(workload.uid)
        self.workloads.pop(workload.uid, None)
        self._phase_applied.pop(workload.uid, None)
        self._reasons_told.pop(workload.uid, None)
        self._names.pop((workload.spec.project, workload.spec.name), None)
        self.seq.pop(workload.uid, None)
        self.desired.pop(workload.uid, None)
        self._jobs.pop(workload.uid, None)
        self._versions.pop(workload.uid, None)
        self.autoscaler.forget(workload.uid)
        self.accounting.removed(workload.uid, self._now())
        for key in [k for k in self.handles if k[0] == workload.uid]:
            handle = self.handles.pop(key)
            self._handles_dirty.discard(key)
            if not is_intent(handle):  # its directory, log and secret files go with it, once committed
                self._after_commit.append(functools.partial(self._release, pod_key(workload.spec.project, key[1]),
                                                            handle))
        self._event("Deleted", workload, f"deleted{' by ' + user if user else ''}")
        return True

    def _release(self, key: str, handle: dict[str, Any]) -> None:
        try:
            self.cluster.release(key, handle)
        except Exception:  # noqa: BLE001 - what is left on disk must not keep the workload
            log.exception("could not remove what pod %s left on its node", key)

    def _end_pods(self, workload: Workload, why: str) -> None:
        """Stop every pod that holds devices; drop the pending ones."""
        keep = []
        for pod in workload.status.pods:
            if pod.phase == PodPhase.RUNNING and is_intent(self.handles.get((workload.uid, pod.name))):
                # placed in this cycle but not launched yet: it never starts
                self.handles.pop((workload.uid, pod.name))
                self._handles_dirty.add((workload.uid, pod.name))
            elif pod.phase == PodPhase.RUNNING:
                pod.phase = PodPhase.TERMINATING
                pod.message = why
                self._stop_pod(pod_key(workload.spec.project, pod.name))
                keep.append(pod)
            elif pod.phase == PodPhase.TERMINATING or pod.phase in (PodPhase.SUCCEEDED, PodPhase.FAILED):
                keep.append(pod)
        workload.status.pods = keep

    @staticmethod
    def _reset_pod(pod: PodStatus) -> None:
        pod.phase = PodPhase.PENDING
        pod.node = None
        pod.devices = []
        pod.fraction = None
        pod.gpu_memory = None

    # ------------------------------------------------------------------ restart

    def _readopt(self, intents_only: bool = False) -> None:
        """Find every pod that holds devices again through the cluster (after a restart), or
        only those whose launch was not confirmed (``intents_only``: after a rollback). A pod
        whose launch intent finds no process never started: it goes back to the queue."""
        for workload in list(self.workloads.values()):
            for pod in list(workload.status.pods):
                if pod.phase not in HOLDING:
                    continue
                key = pod_key(workload.spec.project, pod.name)
                handle = self.handles.get((workload.uid, pod.name))
                if intents_only and not is_intent(handle):
                    continue
                if handle is None:
                    report = PodReport(key, PodState.LOST, message="no record of the process after a restart")
                else:
                    report = self.cluster.adopt(key, handle)
                if report.state == PodState.RUNNING:
                    if report.handle is not None and report.handle != handle:
                        self.handles[(workload.uid, pod.name)] = report.handle
                        self._handles_dirty.add((workload.uid, pod.name))
                    if pod.phase == PodPhase.TERMINATING:  # it was being stopped: stop it again
                        self._stop_pod(key)
                    continue
                if report.state == PodState.LOST and is_intent(handle):
                    self.handles.pop((workload.uid, pod.name), None)  # it never started
                    self._handles_dirty.add((workload.uid, pod.name))
                if report.state == PodState.LOST and pod.phase == PodPhase.RUNNING \
                        and workload.status.phase in (WorkloadPhase.RUNNING, WorkloadPhase.PENDING):
                    self._reset_pod(pod)
                    pod.message = ("it had not started when the server stopped; waiting to be placed again"
                                   if is_intent(handle) else
                                   "the process was gone after a restart; waiting to be placed again")
                    self._event("Warning", workload, f"pod {pod.name}: {pod.message}", pod=pod.name)
                    self._save(workload)
                    continue
                self._apply_report(report)
            if workload.uid not in self.workloads:  # removed while its pods were looked at
                continue
            if workload.status.phase in (WorkloadPhase.PENDING, WorkloadPhase.RUNNING):
                self._update_phase(workload, None)  # below its minimum now: back in the queue
            if workload.status.phase == WorkloadPhase.DELETING:
                self._maybe_remove(workload, None)
            elif workload.status.phase == WorkloadPhase.STOPPING:
                self._maybe_finish_stop(workload)

    # ------------------------------------------------------------------ inference autoscaling

    def _autoscale(self) -> None:
        for uid in list(self.desired):  # every inference workload has an entry (and only they)
            workload = self.workloads.get(uid)
            if workload is None or workload.spec.kind != WorkloadKind.INFERENCE or workload.status.phase not in (
                    WorkloadPhase.PENDING, WorkloadPhase.RUNNING):
                continue
            current = self.desired.get(uid, workload.spec.min_pods)
            want = self.autoscaler.replicas(uid, workload.spec, current, time.monotonic())
            if want > current:
                self.desired[uid] = want
                self._save(workload)
                self._event("Scaled", workload, f"scaling up to {want} replicas "
                            f"({self.autoscaler.load(uid):g} requests in flight)")
            elif want < current:
                self.desired[uid] = want
                self._scale_down(workload, want)

    def _scale_down(self, workload: Workload, want: int) -> None:
        extra = [p for p in workload.status.pods if p.index >= want]
        for pod in extra:
            if pod.phase == PodPhase.RUNNING:
                pod.phase = PodPhase.TERMINATING
                pod.message = "scaled down"
                self._stop_pod(pod_key(workload.spec.project, pod.name))
        workload.status.pods = [p for p in workload.status.pods if p.index < want or p.phase in HOLDING]
        self._event("Scaled", workload, f"scaling down to {want} replicas "
                    f"({self.autoscaler.load(workload.uid):g} requests in flight)")
        self._save(workload)

    # ------------------------------------------------------------------ helpers

    def _fresh_pods(self, spec: WorkloadSpec) -> list[PodStatus]:
        count = spec.min_pods if spec.kind == WorkloadKind.INFERENCE else spec.pod_count
        return [PodStatus(name=spec.pod_name(i), index=i) for i in range(count)]

    def _pod_by_key(self, workload: Workload, key: str) -> PodStatus | None:
        name = key.split("/", 1)[1]
        for pod in workload.status.pods:
            if pod.name == name:
                return pod
        return None

    def _find_pod(self, key: str) -> tuple[Workload, PodStatus] | None:
        project, name = key.split("/", 1)
        uid = self._names.get((project, name.rsplit("-", 1)[0]))
        workload = self.workloads.get(uid) if uid else None
        pod = self._pod_by_key(workload, key) if workload else None
        return (workload, pod) if pod is not None else None

    def _check_references(self, spec: WorkloadSpec) -> None:
        pools = [p.name for p in self.node_pools] + ["default"]
        for position, name in enumerate(spec.node_pools):
            if name not in pools:
                raise Invalid(f"no node pool {name!r}; node pools: {', '.join(pools)}",
                              field=f"node_pools.{position}", allowed=pools)
        for position, name in enumerate(spec.data_sources):
            if self.store.data_source(spec.project, name) is None:
                names = [d.name for d in self.store.data_sources(spec.project)]
                raise Invalid(f"project {spec.project!r} has no data source {name!r}",
                              field=f"data_sources.{position}", allowed=names)
        for position, name in enumerate(spec.credentials):
            if self.store.credential(spec.project, name) is None:
                names = [c.name for c in self.store.credentials(spec.project)]
                raise Invalid(f"project {spec.project!r} has no credential {name!r}",
                              field=f"credentials.{position}", allowed=names)

    def _node_shapes(self) -> list[Node]:
        """One node of each shape (``feasibility.distinct_nodes``), worked out again only when
        the nodes or the node pools change."""
        nodes = self.cluster.nodes()
        # the same node objects, in the same number: the clusters hand out the same Node objects
        # until their nodes change (a tuple of every id cost 0.2 ms a submit at 5,000 nodes)
        key = (len(nodes), id(nodes[0]) if nodes else None, id(nodes[-1]) if nodes else None,
               tuple(map(id, self.node_pools)))
        cached = getattr(self, "_shapes_cache", None)
        if cached is None or cached[0] != key:
            cached = (key, distinct_nodes(nodes, self.node_pools))
            self._shapes_cache = cached
        return cached[1]

    def _refuse_never_runs(self, spec: WorkloadSpec, project: Project) -> None:
        """Refuse a workload that could never start on these nodes within its project's and
        department's limits (see :mod:`jupyter_runai.feasibility`), listing every reason."""
        department = next((d for d in self.store.departments() if d.name == project.department), None)
        problems = never_runs(spec, self._node_shapes(), self.node_pools, project, department)
        if problems:
            items = [p.as_item() for p in problems]
            items[0]["message"] += " (to queue it all the same: queue_anyway: true, or runai submit --queue-anyway)"
            first = items[0]
            raise Invalid(first["message"], field=first["field"], allowed=first["allowed"], errors=items)

    def _save(self, workload: Workload) -> None:
        """The workload changed: write it at the end of the request or cycle, and let the
        engine see it anew."""
        self._versions[workload.uid] = self._versions.get(workload.uid, 0) + 1
        self._changes += 1
        if workload.uid in self.workloads:
            self._dirty.add(workload.uid)

    def _flush(self) -> None:
        if self._dirty:
            changed = [self.workloads[uid] for uid in self._dirty if uid in self.workloads]
            self._dirty.clear()
            self.store.save_workloads(changed)
            self.accounting.observe(changed, self._now())
        if self._handles_dirty:
            keys, self._handles_dirty = sorted(self._handles_dirty), set()
            for uid, name in keys:
                if uid in self.workloads:
                    self.store.set_pod_handle(uid, name, self.handles.get((uid, name)))

    # ------------------------------------------------------------------ events

    def _event(self, type_: str, workload: Workload, message: str, pod: str | None = None) -> None:
        event = self.store.add_event(type_, message, at=self._now(), project=workload.spec.project,
                                     workload=workload.spec.name, pod=pod)
        data = event.model_dump(mode="json")
        data[workload_json.WORKLOAD_KEY] = workload  # taken off in _publish, which adds the workload's view
        self._outbox.append(data)

    def _publish(self) -> None:
        """Hand the events written so far to the subscribers (after their transaction
        committed); prune the store once enough events came since it was last pruned.

        An event of a workload carries its ``object``: the workload's view as it is now, after
        the transaction (the document a GET of it answers, without events); a ``Deleted`` event
        carries None. Each view is made once however many events and subscribers share it."""
        outbox, self._outbox = self._outbox, []
        objects: dict[str, dict[str, Any] | None] = {}
        if self._subscribers and any(workload_json.WORKLOAD_KEY in data for data in outbox):
            self._mark_queue_positions()
        for data in outbox:
            workload = data.pop(workload_json.WORKLOAD_KEY, None)
            if workload is not None and self._subscribers:
                if data["type"] == "Deleted":
                    objects[workload.uid] = None
                elif workload.uid not in objects:
                    objects[workload.uid] = workload_json.workload_view(self, workload)
                data["object"] = objects[workload.uid]
            for queue in list(self._subscribers):
                if queue.user is not None and not self._sees_event(queue, data):
                    continue
                try:
                    queue.put_nowait(data)
                except asyncio.QueueFull:  # it fell behind: it is told, and resumes from the store
                    queue.overflowed.set()
                    self._subscribers.discard(queue)
        self._unpruned += len(outbox)
        if self.event_retention is not None and self._unpruned >= max(1, min(1000, self.event_retention // 10)):
            self._unpruned = 0
            try:
                self.store.prune_events(keep=self.event_retention)
            except Exception:  # pruning is housekeeping: the next batch of events tries again
                log.exception("could not prune the event store")

    def _forget_unstored_events(self) -> None:
        """A transaction was rolled back: the events it recorded are not stored, and their
        ids will be given to other events; they must never reach a subscriber."""
        if self._outbox:
            newest = self.store.event_ids()[1]
            self._outbox = [data for data in self._outbox if data["id"] <= newest]

    def subscribe(self, maxsize: int | None = None, user: User | None = None,
                  project: str | None = None) -> Subscription:
        """A queue that receives every event from now on (as JSON-able dicts) of the projects
        ``user`` may see, until it falls ``maxsize`` (default ``event_buffer``) events behind
        (see ``Subscription``). Naming a ``project`` the user may not see is a 403."""
        if project is not None:
            self.require(user, access.VIEW, project=project)
        queue = Subscription(self.event_buffer if maxsize is None else maxsize, user)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        self._subscribers.discard(queue)

    def _sees_event(self, queue: Subscription, data: dict[str, Any]) -> bool:
        """Whether the subscriber may see the event: one of a project it may see (an event of no
        project: only who sees every project). Its projects are read again when access changes."""
        if queue.seen is None or queue.seen[0] != self.access_version:
            queue.seen = (self.access_version, self.visible_projects(queue.user))
        visible = queue.seen[1]
        return visible is None or data.get("project") in visible

    # ------------------------------------------------------------------ views

    def project_views(self, user: User | None = None) -> list[dict[str, Any]]:
        """Each project ``user`` may see with deserved, limit, allocated (GPUs held now) and fair share."""
        visible = self.visible_projects(user)
        return [v for v in views.project_views(self) if visible is None or v["name"] in visible]

    def node_views(self, user: User | None = None) -> list[dict[str, Any]]:
        """Each node with its devices and what is allocated on each (by pod)."""
        self.require(user, access.VIEW_NODES)
        return views.node_views(self)


def _filter_value(field: str, value: str | None, allowed: list[str]) -> str | None:
    """``value`` as one of ``allowed`` (any case), None for no filter; :class:`Invalid` otherwise."""
    if not value:
        return None
    for candidate in allowed:
        if candidate.lower() == value.lower():
            return candidate
    raise Invalid(f"{value!r} is not a {field}; allowed: {', '.join(allowed)}", field=field, allowed=allowed)
