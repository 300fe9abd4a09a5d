"""The lifecycle of a workload and its pods, as a pure state machine.

Input: one workload (its spec and status), what happened to it (a pod report from the
cluster, a stop, delete or resume request, an eviction, a failure of its own) and the time,
passed in. Output: the workload's status moved on, in place, and a :class:`Step` that says
what the caller must do about it: the events to record, the pods whose processes to stop,
the launch intents to drop (pods placed but never launched), what a stopping workload
becomes once its pods end, and whether a deleted workload can be removed now.

Nothing here reads the clock, the store or the cluster; the service
(:class:`~jupyter_runai.service.RunaiService`) builds a :class:`Step` for a workload, calls
one of its transitions and applies the result (save, events, stops, release).

Phases: Pending -> Running -> Succeeded | Failed; any live phase -> Stopping -> Stopped (or
the outcome kept in ``outcome``: Failed when a pod failed and the others are being ended);
any phase -> Deleting -> removed. A training or distributed workload restarts (back to
Pending, all its pods ended) up to ``backoff_limit`` times; an inference replica that ends
is placed again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from .clusters.base import PodState
from .errors import Conflict
from .models import PodPhase, PodStatus, Workload, WorkloadKind, WorkloadPhase, WorkloadSpec, WorkloadStatus
from .scheduler.reasons import reason_kind
from .snapshot import HOLDING

__all__ = ["STARTING_REASON", "Event", "Step", "check_resumable", "fresh_pods", "reset_pod"]

STARTING_REASON = "starting: waiting for the server to answer"
"""The pending reason of a workload whose pods run but do not answer yet (see ``Step.update_phase``)."""


@dataclass(frozen=True, slots=True)
class Event:
    """An event to record about the workload: its type, the text, and the pod it is about."""

    type: str
    message: str
    pod: str | None = None


def reset_pod(pod: PodStatus) -> None:
    """The pod waits to be placed (again): it holds nothing."""
    pod.phase = PodPhase.PENDING
    pod.node = None
    pod.devices = []
    pod.fraction = None
    pod.gpu_memory = None


def fresh_pods(spec: WorkloadSpec) -> list[PodStatus]:
    """The pods a workload starts with: its minimum for an inference workload, else all of them."""
    count = spec.min_pods if spec.kind == WorkloadKind.INFERENCE else spec.pod_count
    return [PodStatus(name=spec.pod_name(i), index=i) for i in range(count)]


def check_resumable(workload: Workload) -> None:
    """Only a Stopped, Succeeded or Failed workload can be resumed: ``Conflict`` otherwise."""
    status = workload.status
    if not status.phase.is_finished:
        raise Conflict(f"workload {workload.spec.name!r} is {status.phase}; only a Stopped, Succeeded or "
                       f"Failed workload can be resumed", field="name")


@dataclass
class Step:
    """One transition of one workload. Build it with the service's state of the workload, call
    one transition method, then apply the fields below.

    In: ``now`` (the service's clock), ``desired`` (the pods it should have now; an inference
    workload's replicas), ``outcome`` (what a stopping workload becomes once its pods end, None
    for Stopped), ``unlaunched`` (pods placed whose launch intent is committed but that were not
    launched yet), ``told`` (the kinds of pending reason already told while it waits).
    Out: ``events``, ``stop`` (pod names whose processes to stop), ``cancelled`` (pod names whose
    launch intent to drop: they never start), ``outcome`` and ``told`` (the new values),
    ``removable`` (a deleted workload whose pods all ended), ``changed`` (save it)."""

    workload: Workload
    now: datetime
    desired: int | None = None
    outcome: WorkloadPhase | None = None
    unlaunched: set[str] = field(default_factory=set)
    told: set[str] | None = None
    events: list[Event] = field(default_factory=list)
    stop: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    removable: bool = False
    changed: bool = False

    # ------------------------------------------------------------------ helpers

    def _event(self, type_: str, message: str, pod: str | None = None) -> None:
        self.events.append(Event(type_, message, pod))

    def _now_after(self, *times: datetime | None) -> datetime:
        """Now, but not before any of ``times`` (an end is never before its start)."""
        return max([self.now, *(t for t in times if t is not None)])

    def _desired(self) -> int:
        if self.desired is not None:
            return self.desired
        spec = self.workload.spec
        return spec.min_pods if spec.kind == WorkloadKind.INFERENCE else spec.pod_count

    # ------------------------------------------------------------------ requests

    def stop_request(self, by: str) -> None:
        """A user stops the workload: its pods end; Stopped at once when none holds devices."""
        status, name = self.workload.status, self.workload.spec.name
        if status.phase in (WorkloadPhase.STOPPED, WorkloadPhase.SUCCEEDED, WorkloadPhase.FAILED):
            raise Conflict(f"workload {name!r} is {status.phase}, not running or pending", field="name")
        if status.phase == WorkloadPhase.DELETING:
            raise Conflict(f"workload {name!r} is being deleted", field="name")
        if status.phase == WorkloadPhase.STOPPING:
            return  # already on its way
        self.stop_workload(f"stopped by {by}", "stopped by a user")

    def stop_workload(self, message: str, why: str, event: str | None = None) -> None:
        """Stop the workload, saying ``message`` (and recording it as an ``event`` of that type,
        when given); its pods end saying ``why``."""
        status = self.workload.status
        status.phase = WorkloadPhase.STOPPING
        status.pending_reason = None
        status.message = message
        if event:
            self._event(event, message)
        self.end_pods(why)
        self.settle()
        self.changed = True

    def delete_request(self) -> None:
        """The workload is to be removed: its pods end; removable at once when none holds devices."""
        status = self.workload.status
        status.phase = WorkloadPhase.DELETING
        status.pending_reason = None
        self.end_pods("deleted by a user")
        self.changed = True
        self.settle()

    def resume_request(self, by: str) -> None:
        """A stopped or finished workload goes back to the queue with fresh pods."""
        check_resumable(self.workload)
        status = self.workload.status
        self.workload.status = WorkloadStatus(
            phase=WorkloadPhase.PENDING,
            submitted_at=status.submitted_at,
            started_at=status.started_at,
            pods=fresh_pods(self.workload.spec),
        )
        self._event("Resumed", f"resumed by {by}")
        self.changed = True

    def fail(self, reason: str) -> None:
        """An error that concerns this workload alone: its pods end, it fails saying ``reason``."""
        self.end_pods(reason)
        self.finish(WorkloadPhase.FAILED, reason)
        self.changed = True

    def evict(self, pod: PodStatus, reason: str) -> None:
        """The engine takes a running pod's devices back: it is stopped, and placed again once it ended."""
        if pod.phase != PodPhase.RUNNING:
            return
        pod.phase = PodPhase.TERMINATING
        pod.message = reason if reason.startswith("evicted") else f"evicted: {reason}"
        self.stop.append(pod.name)
        self._event("Evicted", f"pod {pod.name} on {pod.node}: {reason}", pod=pod.name)
        self.changed = True

    def scale_down(self, want: int, why: str) -> None:
        """An inference workload keeps ``want`` replicas: the others are stopped and dropped."""
        status = self.workload.status
        for pod in status.pods:
            if pod.index >= want and pod.phase == PodPhase.RUNNING:
                pod.phase = PodPhase.TERMINATING
                pod.message = "scaled down"
                self.stop.append(pod.name)
        status.pods = [p for p in status.pods if p.index < want or p.phase in HOLDING]
        self._event("Scaled", f"scaling down to {want} replicas ({why})")
        self.changed = True

    # ------------------------------------------------------------------ what the cluster saw

    def pod_ended(self, pod: PodStatus, state: PodState, message: str | None) -> None:
        """The cluster reports that ``pod`` ended (any state but Running)."""
        workload = self.workload
        self.changed = True
        was, why = pod.phase, pod.message
        pod.finished_at = self._now_after(pod.started_at)
        pod.message = message
        stopping = workload.status.phase in (WorkloadPhase.STOPPING, WorkloadPhase.DELETING)
        ended = state == PodState.STOPPED or (was == PodPhase.TERMINATING and state != PodState.SUCCEEDED)
        if ended and stopping and self.outcome == WorkloadPhase.FAILED:
            # stopped because another pod of its workload failed: it ended (and says why), it waits for nothing
            pod.phase = PodPhase.FAILED
            pod.message = f"ended: {why or 'another pod of the workload failed'}"
            self.finish_stopping()
            return
        if ended:
            reset_pod(pod)
            pod.message = message
            if stopping:
                self.settle()
            elif pod.index >= self._desired():  # a replica scaled down: gone
                workload.status.pods = [p for p in workload.status.pods if p is not pod]
            else:  # evicted: back to the queue, saying why
                evicted = why if why and why.startswith("evicted") else "evicted"
                pod.message = f"{evicted}; waiting to be placed again"
            return
        if state == PodState.SUCCEEDED:
            pod.phase = PodPhase.SUCCEEDED
            self._event("Succeeded", f"pod {pod.name} {message or 'exited with code 0'}", pod=pod.name)
            self._pod_succeeded()
        else:
            pod.phase = PodPhase.FAILED
            lost = state == PodState.LOST
            text = message or ("the process was lost" if lost else "failed")
            self._event("Failed", f"pod {pod.name}: {text}", pod=pod.name)
            if stopping:
                self.settle()
            else:
                self._pod_failed(pod)

    def pod_gone_after_restart(self, pod: PodStatus, never_started: bool) -> None:
        """After a restart, a running pod of a live workload has no process (``never_started``: its
        launch was recorded but not confirmed): it waits to be placed again, and a warning says so."""
        reset_pod(pod)
        pod.message = ("it had not started when the server stopped; waiting to be placed again" if never_started
                       else "the process was gone after a restart; waiting to be placed again")
        self._event("Warning", f"pod {pod.name}: {pod.message}", pod=pod.name)
        self.changed = True

    def pod_not_started(self, pod: PodStatus, error: str) -> None:
        """The cluster could not launch ``pod``: it failed (and so may its workload)."""
        pod.phase = PodPhase.FAILED
        pod.message = f"could not start: {error}"
        pod.finished_at = self._now_after(pod.started_at)
        self._event("Failed", f"pod {pod.name} could not start: {error}", pod=pod.name)
        self._pod_failed(pod)
        self.changed = True

    def _pod_succeeded(self) -> None:
        status = self.workload.status
        if self.workload.spec.kind == WorkloadKind.INFERENCE:  # a replica that ends is started again
            for pod in status.pods:
                if pod.phase == PodPhase.SUCCEEDED:
                    reset_pod(pod)
            return
        if status.phase in (WorkloadPhase.STOPPING, WorkloadPhase.DELETING):
            self.settle()
            return
        if all(p.phase == PodPhase.SUCCEEDED for p in status.pods) and len(status.pods) >= self.workload.spec.min_pods:
            self.finish(WorkloadPhase.SUCCEEDED, None)

    def _pod_failed(self, pod: PodStatus) -> None:
        spec, status = self.workload.spec, self.workload.status
        if spec.kind == WorkloadKind.INFERENCE:
            reset_pod(pod)
            return
        restartable = spec.kind in (WorkloadKind.TRAINING, WorkloadKind.DISTRIBUTED)
        if restartable and status.restarts < (spec.backoff_limit or 0):
            status.restarts += 1
            self.end_pods("restarting after a failure")
            for p in status.pods:
                if p.phase not in HOLDING:
                    reset_pod(p)
            status.phase = WorkloadPhase.PENDING
            self._event("Pending", f"restart {status.restarts} of {spec.backoff_limit} after: "
                        f"{pod.message or 'a pod failed'}")
            return
        message = f"pod {pod.name}: {pod.message or 'failed'}"
        self.end_pods("another pod of the workload failed")
        self.finish(WorkloadPhase.FAILED, message)

    # ------------------------------------------------------------------ endings

    def end_pods(self, why: str) -> None:
        """Stop every pod that holds devices; drop the pending ones and those never launched."""
        keep = []
        for pod in self.workload.status.pods:
            if pod.phase == PodPhase.RUNNING and pod.name in self.unlaunched:
                # placed but not launched yet: it never starts
                self.unlaunched.discard(pod.name)
                self.cancelled.append(pod.name)
            elif pod.phase == PodPhase.RUNNING:
                pod.phase = PodPhase.TERMINATING
                pod.message = why
                self.stop.append(pod.name)
                keep.append(pod)
            elif pod.phase == PodPhase.TERMINATING or pod.phase in (PodPhase.SUCCEEDED, PodPhase.FAILED):
                keep.append(pod)
        self.workload.status.pods = keep

    def finish(self, phase: WorkloadPhase, message: str | None) -> None:
        """The workload ends as ``phase``; while some pods still end, it is Stopping and gets
        ``phase`` (kept in ``outcome``) once they are gone."""
        status = self.workload.status
        if any(p.phase in HOLDING for p in status.pods):
            status.phase = WorkloadPhase.STOPPING
            status.message = message
            self.outcome = phase
            return
        status.phase = phase
        status.message = message
        status.pending_reason = None
        status.url = None
        status.finished_at = self._now_after(status.submitted_at, status.started_at)
        self._event(phase.value, message or phase.value.lower())

    def finish_stopping(self) -> bool:
        """A stopping workload whose pods all ended becomes Stopped (or its ``outcome``: Failed if a
        pod failed on its own). True when it did."""
        status = self.workload.status
        if status.phase != WorkloadPhase.STOPPING or any(p.phase in HOLDING for p in status.pods):
            return False
        outcome = self.outcome or WorkloadPhase.STOPPED
        self.outcome = None
        status.phase = outcome
        if outcome == WorkloadPhase.STOPPED:
            status.pods = []
        status.url = None
        status.finished_at = self._now_after(status.submitted_at, status.started_at)
        self._event(status.phase.value, status.message or "stopped")
        self.changed = True
        return True

    def settle(self) -> None:
        """A stopping workload with no pod left holding devices ends; a deleted one becomes removable."""
        if self.finish_stopping():
            return
        status = self.workload.status
        if status.phase == WorkloadPhase.DELETING and not any(p.phase in HOLDING for p in status.pods):
            self.removable = True

    # ------------------------------------------------------------------ pending and running

    def update_phase(self, reason: str | None, ready: int, url: str | None) -> None:
        """Pending or Running from how many pods run (and ``ready`` of them answer), with the engine's
        ``reason`` when it waits; ``url`` is where it is reached once Running (None: nowhere)."""
        workload = self.workload
        status = workload.status
        min_pods = workload.spec.min_pods
        running = sum(1 for p in status.pods if p.phase == PodPhase.RUNNING)
        if running >= min_pods and ready < min_pods and status.phase != WorkloadPhase.RUNNING:
            # placed and started, not answering yet: Running means reachable (the proxy would say 503)
            if status.pending_reason != STARTING_REASON:
                status.pending_reason = STARTING_REASON
                self._event("Pending", STARTING_REASON)
                self.changed = True
            return
        if running >= min_pods:
            if status.phase != WorkloadPhase.RUNNING:
                status.phase = WorkloadPhase.RUNNING
                status.started_at = self._now_after(status.submitted_at)
                status.pending_reason = None
                status.message = None
                self._event("Started", f"running: {running} of {workload.spec.pod_count} pods")
                self.changed = True
            if url is not None and status.url != url:
                status.url = url
                self.changed = True
            return
        if status.phase == WorkloadPhase.RUNNING:
            status.phase = WorkloadPhase.PENDING
            status.url = None
            self._event("Pending", "back in the queue: fewer pods run than its minimum")
            self.changed = True
        terminating = any(p.phase == PodPhase.TERMINATING for p in status.pods)
        text = reason or ("waiting for evicted pods to release their devices" if terminating else None)
        if text and text != status.pending_reason:
            if status.pending_reason is None or self.told is None:  # it starts waiting (again)
                self.told = set()
            kind = reason_kind(text)
            if kind in self.told:
                # a reason it has waited for already, with this cycle's figures: shown at
                # once, but neither an event nor a write (saved with its next change)
                status.pending_reason = text
                return
            self.told.add(kind)
            status.pending_reason = text
            self._event("Pending", text)
            self.changed = True
