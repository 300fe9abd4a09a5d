"""The scheduler service: the one owner of state and time.

``RunaiService`` takes requests (submit, stop, resume, delete), keeps every workload in the
store, runs the scheduling loop (on every event and on a short timer), applies the engine's
decisions to the cluster backend, and tells subscribers what happened. This module holds the
public methods and the loop that tie the service's parts together:

* admission (``admission.py``): validation, RBAC, the admission hooks, policies, references,
  workloads that could never run;
* the lifecycle (``lifecycle.py``): a pure state machine from pod reports and requests to
  phases and the events to record; the service builds a ``Step`` (``_step``) and applies it
  (``_apply``: save, events, stops, release);
* events (``events.py``): stored first, published to the subscribers once committed;
* scheduling rules applied in each cycle (``rule_enforcement.py``);
* the mixins that serve the REST API besides workloads: ``rbac.py``, ``admin.py``,
  ``policy_admin.py``, ``project_data.py``, ``monitoring.py``.

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
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

from pydantic import ValidationError

from .accounts import RunAs
from .clusters.base import Cluster, Endpoint, PodLaunch, PodReport, PodState
from .errors import Invalid, NotFound, Unavailable
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
from .scheduler import schedule
from .scheduler.types import Job
from .scheduler.types import PodStatus as EnginePodStatus
from . import allocation_views
from .eventlog import describe_request, eviction_kind, eviction_text
from .admission import Admission, AdmissionHook
from .cluster_truth import ClusterTruth
from .external_workloads import ExternalWorkloads, refuse_manage
from .kai_queue_sync import KaiQueueSync
from .rule_enforcement import RuleEnforcement
from .events import Events, Subscription
from .monitoring import Monitoring
from .admin import Administration
from .policy_admin import PolicyAdministration
from .project_data import ProjectData
from .rbac import AccessControl
from . import access
from .identity import User
from .autoscale import Autoscaler
from .idle_fair_share import IdleFairShare, Inputs
from .lifecycle import Step, check_resumable, fresh_pods
from .pod_inputs import credential_material, data_mounts
from .workload_json import WorkloadViews
from .snapshot import HOLDING, ActivePod, active_pods, build_snapshot, engine_job, pod_key
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
LIVE = (WorkloadPhase.PENDING, WorkloadPhase.RUNNING, WorkloadPhase.STOPPING, WorkloadPhase.DELETING)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class RunaiService(Admission, Events, RuleEnforcement, Administration, PolicyAdministration, ProjectData,
                   AccessControl, Monitoring, ClusterTruth, ExternalWorkloads, KaiQueueSync,
                   WorkloadViews):
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
        run_as: RunAs | None = None,
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
        self.run_as = run_as  # whose system account a workload runs as (accounts.py); None: the service's
        self.workloads: dict[str, Workload] = {}
        self._names: dict[tuple[str, str], str] = {}  # (project, name) -> uid
        self.seq: dict[str, int] = {}
        self.handles: dict[tuple[str, str], dict[str, Any]] = {}
        self.desired: dict[str, int] = {}
        # until a cycle ran, the fair share of the state when first read; then each cycle's (idle_fair_share)
        self.fair_share: Mapping[str, dict[str, float]] = IdleFairShare(self._division_inputs)
        self.cycles = 0
        self.last_cycle_seconds = 0.0
        self.autoscaler = Autoscaler(scale_down_delay)
        self._dirty: set[str] = set()
        # queue positions are marked again on a read after a change (a saved workload or an event)
        self._changes = 0
        self._positions_marked_at = -1
        self._versions: dict[str, int] = {}  # uid -> changes so far (see _save)
        self._jobs: dict[str, tuple[int, Job | None]] = {}  # uid -> (version, engine job) cache
        self._phase_applied: dict[str, tuple[int, str | None]] = {}  # uid -> (version, reason) at its last update
        self._reasons_told: dict[str, set[str]] = {}  # uid -> kinds of reason told while it waits
        self._init_rules()
        self._outcome: dict[str, WorkloadPhase] = {}  # what a stopping workload becomes once its pods end
        self._handles_dirty: set[tuple[str, str]] = set()  # handles to write with the transaction
        self._after_commit: list[Callable[[], None]] = []  # cluster actions once the transaction commits
        self._in_transaction = False
        self._unapplied: list[PodReport] = []  # reports of a cycle that did not commit: applied again
        self._recheck_intents = False  # after a rollback: find out what became of pods being launched
        self._last_time: datetime | None = None
        self._crash_points = _test_crash_points()
        self._launches = 0
        self._init_events(event_retention, event_buffer)
        self._init_cluster_truth()
        self._init_workload_views()  # each workload's JSON view, cached until it changes (workload_json.py)
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
        self._restore_from_cluster()  # cluster_truth.py: the workloads the cluster holds and the store lacks
        self._load()
        with self._transaction():
            self._report_load_problems()
            self._readopt()
            self._reconcile_after_load()
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

    def _division_inputs(self) -> Inputs:
        """What a fair-share division needs, read now (the views' fair share before the first cycle)."""
        jobs: list[Job] = []
        for uid, workload in list(self.workloads.items()):
            try:
                job = self._engine_job(uid, workload)
            except Exception:  # the cycle marks it Failed; here it simply asks for nothing
                continue
            if job is not None:
                jobs.append(job)
        return (self.cluster.nodes(), jobs, list(self.node_pools), (self.store.projects(), self.store.departments()),
                self._now().timestamp())

    def _now(self) -> datetime:
        """The clock, never going backwards inside this process (a clock stepped back waits)."""
        now = self.clock()
        if self._last_time is not None and now < self._last_time:
            now = self._last_time
        self._last_time = now
        return now

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
        request gets ``Unavailable`` (503). A second call does nothing (a server told to stop twice,
        by two signals, stops its extension twice: the store is closed by then)."""
        if self.closed:
            return
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
            allocation_views.mark_queue_positions(self.workloads, self.seq)
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

    def submit(self, spec: WorkloadSpec | dict[str, Any], user: User, *, admitted: Workload | None = None) -> Workload:
        """Admit a workload (``admission.py``: validate, RBAC, hooks, policies, references), store it,
        queue it. Raises ``ValidationError`` (a field error) or a ``ServiceError``. ``admitted``: a
        workload admitted already, whose custom resource exists (``cluster_truth.submit_confirmed``)."""
        if admitted is None:
            spec = self._admit(spec, user)  # admission.py
            self._check_not_submitting(spec)
            workload = self._new_workload(spec, user)
        else:
            workload, spec = admitted, admitted.spec
        with self._transaction(rollback=False):  # memory changes below, once it is committed
            seq = self.store.add_workload(workload)
            if admitted is None:
                self._mirror_created(workload)  # its custom resource, on Kubernetes (cluster_truth.py)
            else:  # its custom resource exists already: remembered with it, in the same transaction
                self.store.mark_cluster_objects([workload.uid])
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

    def _new_workload(self, spec: WorkloadSpec, user: User) -> Workload:
        return Workload(spec=spec, submitted_by=user.name,
                        status=WorkloadStatus(submitted_at=self._now(), pods=fresh_pods(spec)))

    def stop(self, project: str, name: str, user: User) -> Workload:
        """Stop a workload: its pods end (SIGTERM, then SIGKILL after the grace period)."""
        workload = self._to_manage(project, name, user)
        step = self._step(workload)
        step.stop_request(user.name)  # Conflict (nothing changed) when it is not running or pending
        if step.changed:  # not when it is stopping already
            with self._transaction():  # a failed commit loads memory again from the store
                self._apply(step)
        self.wake()
        return workload

    def resume(self, project: str, name: str, user: User) -> Workload:
        """Put a stopped (or finished) workload back in the queue, at its old place."""
        workload = self._to_manage(project, name, user)
        check_resumable(workload)  # Conflict when it is not finished
        self._check_policies_now(workload.spec)  # admitted again: the policies in force now (policy_admin)
        step = self._step(workload)
        step.resume_request(user.name)
        with self._transaction():
            if workload.spec.kind == WorkloadKind.INFERENCE:
                self.desired[workload.uid] = workload.spec.min_pods
            self._apply(step)
        self.wake()
        return workload

    def delete(self, project: str, name: str, user: User) -> Workload:
        """Stop the workload's pods and remove it (at once when nothing runs)."""
        workload = self._to_manage(project, name, user)
        step = self._step(workload)
        step.delete_request()
        with self._transaction():
            self._apply(step, by=user.name)
        self.wake()
        return workload

    def _to_manage(self, project: str, name: str, user: User) -> Workload:
        """The workload, when ``user`` may stop, resume or delete it (its own, or as a department admin)."""
        workload = self.get(project, name, user)
        self.require(user, access.MANAGE, project=project, owner=workload.submitted_by)
        refuse_manage(workload)  # a third-party workload: kubectl on its owner (409)
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
        self._admit_cluster_objects()  # cluster_truth.py: RunaiWorkload objects created with kubectl
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
                self._follow_cluster_objects()  # cluster_truth.py: objects deleted with kubectl
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
        self._sync_kai_queues()  # KAI's Queue objects as departments and projects (opt-in, kai_queue_sync)
        self._queues_read = None  # the queue tree, read at most once in this cycle (_queues)
        self._sync_external()  # third-party workloads found on the cluster (external_workloads)
        self._apply_rules()
        nodes = self.cluster.nodes()
        device_memory = {n.name: (n.devices[0].memory if n.devices else 0) for n in nodes}
        held = self._held_by_rules()  # uid -> why a rule keeps it out of this cycle (rules.py)
        held.update(self._external_holds())  # third-party workloads whose owner has no pod to place now
        jobs = [job for uid, workload in list(self.workloads.items())
                if uid not in held and (job := self._safe_engine_job(uid, workload))]
        if not any(p.status is EnginePodStatus.PENDING for job in jobs for p in job.pods):
            # nothing waits: no action of the engine would do anything; the fair share, when read
            now = self._now().timestamp()
            self.fair_share = IdleFairShare(lambda: (nodes, jobs, list(self.node_pools), self._queues(), now))
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
        step = self._step(workload)
        step.fail(reason[:1000])
        self._apply(step)

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
        step = self._step(workload)
        step.evict(pod, reason)
        self._apply(step)
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
                launch.run_as = self.account_of(workload.submitted_by)  # its account may be gone since
                handle = self.cluster.launch(launch)
            except Exception as exc:  # the cluster could not start it: say why
                log.warning("could not start %s: %s", launch.key, exc)
                self.handles.pop((uid, pod_name), None)
                self._handles_dirty.add((uid, pod_name))
                step = self._step(workload)
                step.pod_not_started(pod, str(exc))
                self._apply(step)
                continue
            self._crash_point("after-launch")
            self.handles[(uid, pod_name)] = handle
            self._handles_dirty.add((uid, pod_name))
            devices = launch.devices or []
            where = launch.node + (f" device{'s' if len(devices) > 1 else ''} {', '.join(map(str, devices))}"
                                   if devices else "")
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
        """Pending or Running, from its pods (``lifecycle.Step.update_phase``)."""
        step = self._step(workload)
        ready = sum(1 for p in workload.status.pods if self._ready(workload, p))
        url = self.proxy_path(workload) if workload.spec.kind in (WorkloadKind.WORKSPACE, WorkloadKind.INFERENCE) \
            else None
        step.update_phase(reason, ready, url)
        self._apply(step)

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
        step = self._step(workload)
        step.pod_ended(pod, report.state, report.message)
        self._apply(step)

    def _step(self, workload: Workload) -> Step:
        """A lifecycle step of ``workload`` with what the service knows of it (see ``lifecycle.Step``)."""
        uid = workload.uid
        unlaunched = {p.name for p in workload.status.pods if is_intent(self.handles.get((uid, p.name)))}
        return Step(workload, self._now(), desired=self._desired(workload), outcome=self._outcome.get(uid),
                    unlaunched=unlaunched, told=self._reasons_told.get(uid))

    def _apply(self, step: Step, by: str | None = None) -> None:
        """Do what a lifecycle step asks: drop the intents of pods never launched, stop pods (once the
        transaction commits), record the events, save the workload, remove it when it may go."""
        workload = step.workload
        uid = workload.uid
        for name in step.cancelled:
            self.handles.pop((uid, name), None)
            self._handles_dirty.add((uid, name))
        for name in step.stop:
            self._stop_pod(pod_key(workload.spec.project, name))
        if step.outcome is None:
            self._outcome.pop(uid, None)
        else:
            self._outcome[uid] = step.outcome
        if step.told is not None:
            self._reasons_told[uid] = step.told
        for event in step.events:
            self._event(event.type, workload, event.message, pod=event.pod)
        if step.changed:
            self._save(workload)
        if step.removable:
            self._remove(workload, by)

    def _remove(self, workload: Workload, user: str | None) -> None:
        """A deleted workload whose pods all ended leaves the store and memory."""
        self.store.delete_workload(workload.uid)
        self._dirty.discard(workload.uid)
        self.workloads.pop(workload.uid, None)
        self._phase_applied.pop(workload.uid, None)
        self._reasons_told.pop(workload.uid, None)
        self._outcome.pop(workload.uid, None)
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
        self._mirror_removed(workload)
        self._event("Deleted", workload, f"deleted{' by ' + user if user else ''}")

    def _release(self, key: str, handle: dict[str, Any]) -> None:
        try:
            self.cluster.release(key, handle)
        except Exception:  # noqa: BLE001 - what is left on disk must not keep the workload
            log.exception("could not remove what pod %s left on its node", key)

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
                    step = self._step(workload)
                    step.pod_gone_after_restart(pod, never_started=is_intent(handle))
                    self._apply(step)
                    continue
                self._apply_report(report)
            if workload.uid not in self.workloads:  # removed while its pods were looked at
                continue
            if workload.status.phase in (WorkloadPhase.PENDING, WorkloadPhase.RUNNING):
                self._update_phase(workload, None)  # below its minimum now: back in the queue
            if workload.status.phase in (WorkloadPhase.STOPPING, WorkloadPhase.DELETING):
                step = self._step(workload)
                step.settle()  # its pods all ended meanwhile: Stopped, or removed
                self._apply(step)

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
        step = self._step(workload)
        step.scale_down(want, f"{self.autoscaler.load(workload.uid):g} requests in flight")
        self._apply(step)

    # ------------------------------------------------------------------ helpers

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
            self._mirror_changed(changed)
        if self._handles_dirty:
            keys, self._handles_dirty = sorted(self._handles_dirty), set()
            for uid, name in keys:
                if uid in self.workloads:
                    self.store.set_pod_handle(uid, name, self.handles.get((uid, name)))

    # ------------------------------------------------------------------ views

    def project_views(self, user: User | None = None) -> list[dict[str, Any]]:
        """Each project ``user`` may see with deserved, limit, allocated (GPUs held now) and fair share."""
        visible = self.visible_projects(user)
        views = allocation_views.project_views(self.workloads.values(), self.store.projects(), self.fair_share)
        return [v for v in views if visible is None or v["name"] in visible]

    def node_views(self, user: User | None = None) -> list[dict[str, Any]]:
        """Each node with its devices and what is allocated on each (by pod)."""
        self.require(user, access.VIEW_NODES)
        return allocation_views.node_views(self.workloads.values(), self.cluster.nodes(), self.cluster.metrics(),
                                           self.node_pools)


def _filter_value(field: str, value: str | None, allowed: list[str]) -> str | None:
    """``value`` as one of ``allowed`` (any case), None for no filter; :class:`Invalid` otherwise."""
    if not value:
        return None
    for candidate in allowed:
        if candidate.lower() == value.lower():
            return candidate
    raise Invalid(f"{value!r} is not a {field}; allowed: {', '.join(allowed)}", field=field, allowed=allowed)
