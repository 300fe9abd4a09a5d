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
import hashlib
import hmac
import itertools
import logging
import secrets
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

from .clusters.base import Cluster, PodLaunch, PodReport, PodState
from .errors import Conflict, Invalid, NotFound, Unavailable
from .models import (
    Department,
    NodePool,
    PodPhase,
    PodStatus,
    Project,
    Workload,
    WorkloadKind,
    WorkloadPhase,
    WorkloadSpec,
    WorkloadStatus,
)
from .scheduler import schedule
from .scheduler.reasons import reason_kind
from .scheduler.types import Job
from .scheduler.types import PodStatus as EnginePodStatus
from . import views
from .autoscale import Autoscaler
from .launch import credential_material, data_mounts, describe_request
from .snapshot import HOLDING, ActivePod, active_pods, build_snapshot, engine_job, pod_key
from .store import Store

log = logging.getLogger(__name__)

__all__ = ["AdmissionHook", "RunaiService", "Subscription", "User"]

LIVE = (WorkloadPhase.PENDING, WorkloadPhase.RUNNING, WorkloadPhase.STOPPING, WorkloadPhase.DELETING)


class User:
    """Who is asking: a name and whether they administer everything."""

    def __init__(self, name: str, admin: bool = True) -> None:
        self.name = name
        self.admin = admin

    def __repr__(self) -> str:
        return f"User({self.name!r})"


class Subscription(asyncio.Queue):
    """The events a subscriber has yet to take, in order. A subscriber that falls
    ``maxsize`` events behind gets no more: ``overflowed`` is set, and it should take what
    is queued and then resume from the store after the last event it took."""

    def __init__(self, maxsize: int) -> None:
        super().__init__(maxsize=maxsize)
        self.overflowed = asyncio.Event()


AdmissionHook = Callable[[WorkloadSpec, User], WorkloadSpec | None]
"""Called on every submit after validation; may return a changed spec (defaults
from a policy) or raise a ``ServiceError`` (a policy or RBAC refusal)."""


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class RunaiService:
    """Owns the store, the cluster and the scheduling loop. Call :meth:`start` once."""

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
        self._versions: dict[str, int] = {}  # uid -> changes so far (see _save)
        self._jobs: dict[str, tuple[int, Job | None]] = {}  # uid -> (version, engine job) cache
        self._phase_applied: dict[str, tuple[int, str | None]] = {}  # uid -> (version, reason) at its last update
        self._reasons_told: dict[str, set[str]] = {}  # uid -> kinds of reason told while it waits
        self._outcome: dict[str, WorkloadPhase] = {}  # what a stopping workload becomes once its pods end
        self._subscribers: set[Subscription] = set()
        self.event_retention = event_retention  # events kept in the store while running (None: all)
        self.event_buffer = event_buffer  # events a subscriber may fall behind before it overflows
        self._unpruned = 0  # events added since the store was last pruned
        store.on_rollback(self._forget_unstored_events)
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
        self.handles = dict(self.store.pod_handles())
        for workload in self.store.workloads():
            self.workloads[workload.uid] = workload
            self._names[(workload.spec.project, workload.spec.name)] = workload.uid
            self.seq[workload.uid] = self.store.workload_seq(workload.uid)
            if workload.spec.kind == WorkloadKind.INFERENCE:
                running = sum(1 for p in workload.status.pods if p.phase in HOLDING)
                self.desired[workload.uid] = max(workload.spec.min_pods, running)
        with self.store.batch():
            self._readopt()
            self._flush()
        self._publish()
        self.ensure_running()

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

    def get(self, project: str, name: str) -> Workload:
        uid = self._names.get((project, name))
        if uid is not None:
            return self.workloads[uid]
        raise NotFound(f"no workload {name!r} in project {project!r}", field="name")

    def list(self, project: str | None = None, phase: str | None = None, kind: str | None = None) -> list[Workload]:
        """Workloads in queue order, filtered."""
        out = [w for uid, w in sorted(self.workloads.items(), key=lambda item: self.seq.get(item[0], 0))]
        if project:
            out = [w for w in out if w.spec.project == project]
        if phase:
            out = [w for w in out if w.status.phase.lower() == phase.lower()]
        if kind:
            out = [w for w in out if w.spec.kind == kind]
        return out

    def projects(self) -> list[Project]:
        return self.store.projects()

    def departments(self) -> list[Department]:
        return self.store.departments()

    def project(self, name: str) -> Project:
        project = self.store.project(name)
        if project is None:
            names = [p.name for p in self.store.projects()]
            raise NotFound(f"no project {name!r}; projects: {', '.join(names) or 'none'}", field="project",
                           allowed=names)
        return project

    def endpoints(self, project: str, name: str) -> list[tuple[str, int]]:
        """Ready replicas of a workspace or inference workload: (pod key, port)."""
        workload = self.get(project, name)
        out = []
        for pod in workload.status.pods:
            handle = self.handles.get((workload.uid, pod.name)) or {}
            if pod.phase == PodPhase.RUNNING and handle.get("ready") and handle.get("port"):
                out.append((pod_key(project, pod.name), int(handle["port"])))
        return out

    def log_path(self, project: str, name: str, pod: int | str | None = None):
        """The log file of one pod (default: pod 0, or the only pod there is)."""
        workload = self.get(project, name)
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
        self.project(spec.project)  # NotFound names the field
        for hook in self.admission_hooks:
            changed = hook(spec, user)
            if changed is not None:
                spec = changed
        self._check_references(spec)
        if spec.command is None and spec.kind != WorkloadKind.WORKSPACE and self.cluster.name == "local":
            raise Invalid("command is required on the local cluster for this kind (there is no image to run)",
                          field="command", allowed="a command string or list")
        existing = self._names.get((spec.project, spec.name))
        if existing is not None:
            raise Conflict(
                f"a workload named {spec.name!r} already exists in project {spec.project!r} "
                f"({self.workloads[existing].status.phase}); delete it first or choose another name",
                field="name",
            )
        now = self.clock()
        workload = Workload(spec=spec, submitted_by=user.name,
                            status=WorkloadStatus(submitted_at=now, pods=self._fresh_pods(spec)))
        with self.store.batch():
            seq = self.store.add_workload(workload)
            self.workloads[workload.uid] = workload
            self._names[(spec.project, spec.name)] = workload.uid
            self.seq[workload.uid] = seq
            if spec.kind == WorkloadKind.INFERENCE:
                self.desired[workload.uid] = spec.min_pods
            self._event("Submitted", workload, f"submitted by {user.name}: {describe_request(spec)}")
            if spec.image and self.cluster.name == "local":
                self._event("Warning", workload, f"the local cluster runs commands without containers; "
                            f"image {spec.image!r} is recorded, not pulled")
        self._publish()
        self.wake()
        return workload

    def stop(self, project: str, name: str, user: User) -> Workload:
        """Stop a workload: its pods end (SIGTERM, then SIGKILL after the grace period)."""
        workload = self.get(project, name)
        if workload.status.phase in (WorkloadPhase.STOPPED, WorkloadPhase.SUCCEEDED, WorkloadPhase.FAILED):
            raise Conflict(f"workload {name!r} is {workload.status.phase}, not running or pending", field="name")
        if workload.status.phase == WorkloadPhase.DELETING:
            raise Conflict(f"workload {name!r} is being deleted", field="name")
        if workload.status.phase != WorkloadPhase.STOPPING:
            workload.status.phase = WorkloadPhase.STOPPING
            workload.status.pending_reason = None
            workload.status.message = f"stopped by {user.name}"
            self._end_pods(workload, "stopped by a user")
            self._maybe_finish_stop(workload)  # at once when nothing runs; else when its pods end
            self._save(workload)
            self._flush()
            self._publish()
        self.wake()
        return workload

    def resume(self, project: str, name: str, user: User) -> Workload:
        """Put a stopped (or finished) workload back in the queue, at its old place."""
        workload = self.get(project, name)
        if not workload.status.phase.is_finished:
            raise Conflict(f"workload {name!r} is {workload.status.phase}; only a Stopped, Succeeded or "
                           f"Failed workload can be resumed", field="name")
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
        self._flush()
        self._publish()
        self.wake()
        return workload

    def delete(self, project: str, name: str, user: User) -> Workload:
        """Stop the workload's pods and remove it (at once when nothing runs)."""
        workload = self.get(project, name)
        workload.status.phase = WorkloadPhase.DELETING
        workload.status.pending_reason = None
        self._end_pods(workload, "deleted by a user")
        self._save(workload)
        self._maybe_remove(workload, user.name)
        self._flush()
        self._publish()
        self.wake()
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
        try:
            with self.store.batch():  # one transaction (one disk sync) per cycle
                self._cycle(reports or [])
        finally:
            self._publish()
        self.cycles += 1
        self.last_cycle_seconds = time.perf_counter() - started

    def _cycle(self, reports: list[PodReport]) -> None:
        for report in [*reports, *self.cluster.poll()]:
            self._apply_report(report)
        self._autoscale()
        nodes = self.cluster.nodes()
        device_memory = {n.name: (n.devices[0].memory if n.devices else 0) for n in nodes}
        jobs = [job for uid, workload in self.workloads.items() if (job := self._engine_job(uid, workload))]
        if not any(p.status is EnginePodStatus.PENDING for job in jobs for p in job.pods):
            # nothing waits: no action of the engine would do anything
            self._flush()
            return
        snap = build_snapshot(nodes=nodes, pools=self.node_pools, departments=self.store.departments(),
                              projects=self.store.projects(), jobs=jobs, now=self.clock().timestamp(),
                              workload_mix=self._workload_mix())
        result = schedule(snap)
        self.fair_share = result.fair_share
        for evict in result.evictions:
            self._evict(evict.job, evict.pod, evict.reason)
        binds_by_job: dict[str, list] = {}
        for bind in result.binds:
            if not bind.pipelined:
                binds_by_job.setdefault(bind.job, []).append(bind)
        for uid, binds in binds_by_job.items():
            self._start_pods(uid, sorted(binds, key=lambda b: b.pod), device_memory)
        reasons = result.pending_reasons
        applied = self._phase_applied
        for uid, workload in self.workloads.items():
            if workload.status.phase in (WorkloadPhase.PENDING, WorkloadPhase.RUNNING):
                reason = reasons.get(uid)
                if applied.get(uid) == (self._versions.get(uid, 0), reason):
                    continue  # unchanged since it was last brought up to date with this reason
                self._update_phase(workload, reason)
                applied[uid] = (self._versions.get(uid, 0), reason)
        self._flush()

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
                job = engine_job(workload, 0, pods)
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

    def _evict(self, uid: str, key: str, reason: str) -> None:
        workload = self.workloads.get(uid)
        if workload is None:
            return
        pod = self._pod_by_key(workload, key)
        if pod is None or pod.phase != PodPhase.RUNNING:
            return
        pod.phase = PodPhase.TERMINATING
        pod.message = f"evicted: {reason}"
        self.cluster.stop(key, self.stop_grace_seconds)
        self._event("Evicted", workload, f"pod {pod.name} on {pod.node}: {reason}", pod=pod.name)
        self._save(workload)

    def _start_pods(self, uid: str, binds: list, device_memory: dict[str, int]) -> None:
        workload = self.workloads.get(uid)
        if workload is None or workload.status.phase not in (WorkloadPhase.PENDING, WorkloadPhase.RUNNING):
            return
        spec = workload.spec
        master_key = pod_key(spec.project, spec.pod_name(0)) if spec.kind == WorkloadKind.DISTRIBUTED else None
        material = credential_material(self.store, spec)
        mounts = data_mounts(self.store, spec)
        now = self.clock()
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
                env = {**env, "RUNAI_PROXY_PATH": self.proxy_path(workload)}
            if spec.kind == WorkloadKind.WORKSPACE:
                env["RUNAI_PROXY_TOKEN"] = self.proxy_token(uid)
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
            )
            pod.node = bind.node
            pod.devices = list(bind.devices)
            pod.fraction = fraction
            pod.gpu_memory = memory_limit
            try:
                handle = self.cluster.launch(launch)
            except Exception as exc:  # the cluster could not start it: say why
                log.warning("could not start %s: %s", bind.pod, exc)
                pod.phase = PodPhase.FAILED
                pod.message = f"could not start: {exc}"
                pod.finished_at = now
                self._event("Failed", workload, f"pod {pod.name} could not start: {exc}", pod=pod.name)
                self._pod_failed(workload, pod)
                continue
            pod.phase = PodPhase.RUNNING
            pod.started_at = now
            pod.finished_at = None
            pod.message = None
            self.handles[(uid, pod.name)] = handle
            self.store.set_pod_handle(uid, pod.name, handle)
            where = f"{bind.node}" + (f" devices {','.join(map(str, bind.devices))}" if bind.devices else "")
            share = (f" ({fraction:g} of {'each' if len(bind.devices) > 1 else 'the device'})"
                     if fraction is not None else "")
            self._event("Scheduled", workload, f"pod {pod.name} started on {where}{share}", pod=pod.name)
        self._save(workload)

    def _update_phase(self, workload: Workload, reason: str | None) -> None:
        status = workload.status
        running = sum(1 for p in status.pods if p.phase == PodPhase.RUNNING)
        if running >= workload.spec.min_pods:
            if status.phase != WorkloadPhase.RUNNING:
                status.phase = WorkloadPhase.RUNNING
                status.started_at = self.clock()
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
            self.handles[(workload.uid, pod.name)] = report.handle
            self.store.set_pod_handle(workload.uid, pod.name, report.handle)
        if report.state == PodState.RUNNING:
            return
        was = pod.phase
        pod.finished_at = self.clock()
        pod.message = report.message
        stopping = workload.status.phase in (WorkloadPhase.STOPPING, WorkloadPhase.DELETING)
        if report.state == PodState.STOPPED or (was == PodPhase.TERMINATING and report.state != PodState.SUCCEEDED):
            self._reset_pod(pod)
            pod.message = report.message
            if stopping:
                self._maybe_finish_stop(workload) or self._maybe_remove(workload, None)
            elif pod.index >= self._desired(workload):  # a replica scaled down: gone
                workload.status.pods = [p for p in workload.status.pods if p is not pod]
            else:  # evicted: back to the queue
                pod.message = "evicted; waiting to be placed again"
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
        status.finished_at = self.clock()
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
        status.finished_at = self.clock()
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
        for key in [k for k in self.handles if k[0] == workload.uid]:
            self.handles.pop(key)
        self._event("Deleted", workload, f"deleted{' by ' + user if user else ''}")
        return True

    def _end_pods(self, workload: Workload, why: str) -> None:
        """Stop every pod that holds devices; drop the pending ones."""
        keep = []
        for pod in workload.status.pods:
            if pod.phase == PodPhase.RUNNING:
                pod.phase = PodPhase.TERMINATING
                pod.message = why
                self.cluster.stop(pod_key(workload.spec.project, pod.name), self.stop_grace_seconds)
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

    def _readopt(self) -> None:
        for workload in list(self.workloads.values()):
            for pod in list(workload.status.pods):
                if pod.phase not in HOLDING:
                    continue
                key = pod_key(workload.spec.project, pod.name)
                handle = self.handles.get((workload.uid, pod.name))
                if handle is None:
                    report = PodReport(key, PodState.LOST, message="no record of the process after a restart")
                else:
                    report = self.cluster.adopt(key, handle)
                if report.state == PodState.RUNNING:
                    if pod.phase == PodPhase.TERMINATING:  # it was being stopped: stop it again
                        self.cluster.stop(key, self.stop_grace_seconds)
                    continue
                if report.state == PodState.LOST and pod.phase == PodPhase.RUNNING \
                        and workload.status.phase in (WorkloadPhase.RUNNING, WorkloadPhase.PENDING):
                    self._reset_pod(pod)
                    pod.message = "the process was gone after a restart; waiting to be placed again"
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
                self.cluster.stop(pod_key(workload.spec.project, pod.name), self.stop_grace_seconds)
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

    def _save(self, workload: Workload) -> None:
        """The workload changed: write it at the end of the request or cycle, and let the
        engine see it anew."""
        self._versions[workload.uid] = self._versions.get(workload.uid, 0) + 1
        if workload.uid in self.workloads:
            self._dirty.add(workload.uid)

    def _flush(self) -> None:
        if not self._dirty:
            return
        changed = [self.workloads[uid] for uid in self._dirty if uid in self.workloads]
        self._dirty.clear()
        self.store.save_workloads(changed)

    # ------------------------------------------------------------------ events

    def _event(self, type_: str, workload: Workload, message: str, pod: str | None = None) -> None:
        event = self.store.add_event(type_, message, at=self.clock(), project=workload.spec.project,
                                     workload=workload.spec.name, pod=pod)
        self._outbox.append(event.model_dump(mode="json"))

    def _publish(self) -> None:
        """Hand the events written so far to the subscribers (after their transaction
        committed); prune the store once enough events came since it was last pruned."""
        outbox, self._outbox = self._outbox, []
        for data in outbox:
            for queue in list(self._subscribers):
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

    def subscribe(self, maxsize: int | None = None) -> Subscription:
        """A queue that receives every event from now on (as JSON-able dicts), until it
        falls ``maxsize`` (default ``event_buffer``) events behind (see ``Subscription``)."""
        queue = Subscription(self.event_buffer if maxsize is None else maxsize)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        self._subscribers.discard(queue)

    # ------------------------------------------------------------------ views

    def project_views(self) -> list[dict[str, Any]]:
        """Each project with deserved, limit, allocated (GPUs held now) and fair share."""
        return views.project_views(self)

    def node_views(self) -> list[dict[str, Any]]:
        """Each node with its devices and what is allocated on each (by pod)."""
        return views.node_views(self)
