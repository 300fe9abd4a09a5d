"""Third-party workloads on Kubernetes: pods that others made (a Job, a Deployment, a
StatefulSet, a PyTorchJob... created with kubectl) which name our ``schedulerName`` and a
queue. They are grouped by their top owner into one workload that the service schedules like
its own, in the queue's project; their pods are bound through ``pods/binding`` and evicted
through the Eviction API, as ours are. We never create, change or delete them otherwise.

* **Which pods**: our scheduler name, no ``runai/workload-uid`` label (ours carry it), not a
  reservation pod. The queue is the first of the labels :data:`QUEUE_LABELS` the pod carries.
* **The top owner**: found by ``kube_owners`` (the controller references followed up, only
  reads, in a thread of its own, cached). A pod with no owner is its own workload (kind ``Pod``).
* **The gang minimum**: the annotation :data:`MIN_MEMBER_ANNOTATION` on the pods (KAI's
  override of a PodGroup's ``minMember``), else 1; never more than the pods there are.
* **What a pod asks for**: its requests (GPUs from ``nvidia.com/gpu``). GPU fractions (KAI's
  ``gpu-fraction`` / ``gpu-memory`` annotations) are not supported for these pods: the group
  is refused with a reason, since we cannot give an existing pod its device's UUID.

:class:`ForeignPods` keeps the groups and the pods the service placed (their keys are
``<project>/<workload>-<index>``, mapped to a real pod when it is bound). Every method that
the backend calls runs with the backend's lock held, except where it says otherwise.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from ..models.workload import PODS_MAX
from .base import ExternalGroup, PodReport, PodState
from .kube_objects import pod_outcome, pod_usage
from .kube_owners import OWNER_CACHE, Owner, OwnerResolver
from .kube_reservations import is_reservation
from .podtemplate import LABEL_WORKLOAD_UID

__all__ = ["ForeignPods", "MIN_MEMBER_ANNOTATION", "QUEUE_LABELS", "is_foreign", "queue_of"]

log = logging.getLogger(__name__)

#: the labels that name a third-party pod's queue, in the order they are read: KAI-Scheduler's,
#: then Run:ai's names
QUEUE_LABELS = ("kai.scheduler/queue", "runai/queue", "runai/project")
#: KAI-Scheduler's annotation for a PodGroup's minMember (its pod-grouper reads it from the pods)
MIN_MEMBER_ANNOTATION = "kai.scheduler/batch-min-member"
FRACTION_ANNOTATIONS = ("gpu-fraction", "gpu-memory")
POD_WAIT_SECONDS = 60.0  # a placed key waits this long for a pod of its owner to bind
OWNER_RECHECK = 10.0    # seconds between two reads of an owner that has no pod left (is it gone?)
ENDED = (PodState.SUCCEEDED, PodState.FAILED, PodState.STOPPED, PodState.LOST)


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("metadata") or {}


def is_foreign(pod: dict[str, Any], scheduler_name: str) -> bool:
    """A pod someone else made that names our scheduler."""
    return (pod.get("spec") or {}).get("schedulerName") == scheduler_name and \
        LABEL_WORKLOAD_UID not in (_meta(pod).get("labels") or {}) and not is_reservation(pod)


def queue_of(pod: dict[str, Any]) -> str | None:
    labels = _meta(pod).get("labels") or {}
    return next((labels[label] for label in QUEUE_LABELS if labels.get(label)), None)


@dataclass(slots=True)
class _Placed:
    """A key of an external workload that the service placed: the pod bound for it, once one is."""

    owner_uid: str
    workload_uid: str
    node: str
    devices: list[int]
    launch_id: str | None
    namespace: str = ""
    pod: str = ""           # the real pod's name, once one is bound for this key
    pod_uid: str = ""
    told: PodState | None = None
    stopping: bool = False
    deadline: float = 0.0   # while no pod is bound: when the key stops waiting for one


class ForeignPods:
    """The third-party pods the backend sees, their groups and the keys bound to them."""

    def __init__(self, *, lock: threading.RLock, resolver_read: Callable[[str, str, str, str], dict],
                 writer: Any, report: Callable[[PodReport], None], closed: threading.Event,
                 pod_wait_seconds: float = POD_WAIT_SECONDS) -> None:
        self.lock = lock  # the backend's: held around every call from another thread
        self.writer = writer
        self._report = report  # to the backend's reports, which its poll() hands to the service
        self.pod_wait_seconds = pod_wait_seconds
        self._pods: dict[str, dict] = {}  # pod uid -> the pod, for every foreign pod that has not gone
        self._placed: dict[str, _Placed] = {}  # key -> what the service placed
        self._told: dict[str, str] = {}  # pod uid -> the reason it was told it waits (while it exists)
        self.version = 0
        self._groups: tuple[int, list[ExternalGroup], bool] | None = None
        self._owners: dict[str, tuple[Owner, float]] = {}  # owner uid -> (owner, when last checked if empty)
        self._recheck_at = float("inf")  # when an owner without pods is next read again
        self.resolver = OwnerResolver(resolver_read, self._resolved, closed)
        self.resolver.on_gone = self._gone

    def _gone(self, owner_uid: str) -> None:
        """An owner without pods is gone from the API server (the resolver's thread): its group ends."""
        with self.lock:
            if self._owners.pop(owner_uid, None) is not None:
                self.version += 1

    def _resolved(self) -> None:
        """An owner became known (the resolver's thread): its group appears, its pods may be bound."""
        with self.lock:
            self.version += 1
            self._bind_waiting()

    # ------------------------------------------------------------ what the watch sees

    def observe(self, pod: dict[str, Any], deleted: bool) -> None:
        uid = _meta(pod).get("uid") or ""
        if deleted:
            self._pods.pop(uid, None)
            self._told.pop(uid, None)
        else:
            self._pods[uid] = pod
        self.version += 1
        for key, placed in self._placed.items():
            if placed.pod_uid == uid:
                self._observe_placed(key, placed, pod, deleted)
        if not deleted and not (pod.get("spec") or {}).get("nodeName"):
            self._bind_waiting()

    def _observe_placed(self, key: str, placed: _Placed, pod: dict, deleted: bool) -> None:
        if placed.told in ENDED:
            return
        if deleted:
            # evicted by us, or deleted by its owner or kubectl: either way it waits to be placed again
            # (its owner makes a new pod) unless the owner is gone (then the service deletes the workload)
            why = "stopped" if placed.stopping else "deleted from the cluster, not by the scheduler"
            self._tell(key, placed, PodState.STOPPED, message=why)
            return
        outcome = pod_outcome(pod)
        if outcome.state is None:
            return
        if outcome.state == PodState.RUNNING:
            if placed.told != PodState.RUNNING:
                placed.told = PodState.RUNNING
                self._report(PodReport(key, PodState.RUNNING, handle=self._handle(key, placed)))
            return
        self._tell(key, placed, outcome.state, outcome.exit_code, outcome.message)

    def _tell(self, key: str, placed: _Placed, state: PodState, exit_code: int | None = None,
              message: str | None = None) -> None:
        placed.told = state
        self._report(PodReport(key, state, exit_code=exit_code, message=message))

    # ------------------------------------------------------------ the groups

    def groups(self) -> tuple[int, list[ExternalGroup], bool]:
        """Every owner's group of pods (only those whose top owner is known); a group lasts while
        any of its pods is on the cluster, ended or not (a completed Job keeps its pods). The last item
        says whether every pod's owner is known: until then a group missing may be one not read yet."""
        version = self.version
        now = time.monotonic()
        if self._groups is not None and self._groups[0] == version and now < self._recheck_at:
            return self._groups
        members: dict[str, tuple[Owner, list[dict]]] = {}
        settled = True
        for pod in self._pods.values():
            owner = self.resolver.top(pod)
            if owner is None:
                settled = False
                continue  # asked for: the group appears once it is known
            members.setdefault(owner.uid, (owner, []))[1].append(pod)
        groups = [self._group(owner, sorted(pods, key=lambda p: _meta(p).get("name") or ""))
                  for owner, pods in members.values()]
        # an owner whose pods are all gone (evicted, deleted) may make new ones: its group stays, with
        # no pod, until the API server says the owner itself is gone (read again every OWNER_RECHECK)
        self._recheck_at = float("inf")
        for uid, (owner, checked) in list(self._owners.items()):
            if uid in members:
                self._owners[uid] = (owner, 0.0)
            elif owner.kind == "Pod":
                del self._owners[uid]
            else:
                if now - checked > OWNER_RECHECK:
                    self._owners[uid] = (owner, now)
                    self.resolver.check(owner)
                    checked = now
                self._recheck_at = min(self._recheck_at, checked + OWNER_RECHECK)
                groups.append(ExternalGroup(
                    owner_api_version=owner.api_version, owner_kind=owner.kind, owner_name=owner.name,
                    namespace=owner.namespace, owner_uid=owner.uid, queue=None, pods=0, waiting=0, min_member=1,
                    resources={}))
        for uid, (owner, _) in members.items():
            self._owners.setdefault(uid, (owner, 0.0))
        while len(self._owners) > OWNER_CACHE:
            self._owners.pop(next(iter(self._owners)))
        groups.sort(key=lambda g: (g.namespace, g.owner_kind, g.owner_name))
        self._groups = (version, groups, settled)
        return self._groups

    def _group(self, owner: Owner, every: list[dict]) -> ExternalGroup:
        pods = [p for p in every if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
        first = (pods or every)[0]
        meta = _meta(first)
        problem = None
        count = len(pods)
        if count > PODS_MAX:
            problem = f"{count} pods: at most {PODS_MAX} pods of one owner can be scheduled"
            count = PODS_MAX
        cpu = memory = gpus = 0
        for pod in pods or every:
            usage = pod_usage(pod)
            cpu, memory, gpus = max(cpu, usage.cpu), max(memory, usage.memory), max(gpus, usage.gpus)
            annotations = _meta(pod).get("annotations") or {}
            if any(a in annotations for a in FRACTION_ANNOTATIONS) and problem is None:
                problem = ("it asks for a GPU fraction (annotation gpu-fraction or gpu-memory): fractions are "
                           "supported for workloads submitted through jupyter-runai only")
        try:
            min_member = int((meta.get("annotations") or {}).get(MIN_MEMBER_ANNOTATION) or 1)
        except ValueError:
            min_member = 1
            problem = problem or (f"annotation {MIN_MEMBER_ANNOTATION} must be a whole number, not "
                                  f"{meta['annotations'][MIN_MEMBER_ANNOTATION]!r}")
        resources: dict[str, Any] = {"gpu": gpus}
        if cpu:
            resources["cpu"] = f"{cpu}m"
        if memory:
            resources["memory"] = str(memory)
        labels = meta.get("labels") or {}
        preemptibility = labels.get("kai.scheduler/preemptibility")
        containers = (first.get("spec") or {}).get("containers") or [{}]
        return ExternalGroup(
            owner_api_version=owner.api_version, owner_kind=owner.kind, owner_name=owner.name,
            namespace=owner.namespace, owner_uid=owner.uid, queue=queue_of(first), pods=count,
            waiting=sum(1 for p in pods if not (p.get("spec") or {}).get("nodeName")
                        and not _meta(p).get("deletionTimestamp")),
            min_member=max(1, min(min_member, max(count, 1))), resources=resources,
            priority_class=(first.get("spec") or {}).get("priorityClassName"),
            preemptible={"preemptible": True, "non-preemptible": False}.get(preemptibility or ""),
            image=containers[0].get("image"), problem=problem)

    def unschedulable(self, owner_uid: str, message: str) -> None:
        """Tell the owner's unbound pods why they wait, as a ``PodScheduled`` condition (what
        ``kubectl describe pod`` shows), once per pod and reason."""
        targets = []
        for uid, pod in self._pods.items():
            owner = self.resolver.top(pod)
            if owner is None or owner.uid != owner_uid or (pod.get("spec") or {}).get("nodeName"):
                continue
            if self._told.get(uid) != message:
                self._told[uid] = message
                targets.append((_meta(pod).get("namespace") or "", _meta(pod).get("name") or ""))
        if not targets:
            return
        log.warning("third-party pods %s wait: %s", ", ".join(f"{ns}/{n}" for ns, n in targets[:10]), message)
        for namespace, name in targets:
            self.writer.queue(lambda ns=namespace, n=name: self.writer.pod_unschedulable(ns, n, message))

    # ------------------------------------------------------------ the service's decisions

    def owns(self, key: str) -> bool:
        return key in self._placed

    def held(self) -> set[str]:
        """The uids of the pods the service counts: each bound for one of its placed keys that runs."""
        return {p.pod_uid for p in self._placed.values() if p.pod_uid and p.told not in ENDED}

    def launch(self, key: str, owner_uid: str, workload_uid: str, node: str, devices: list[int],
               launch_id: str | None) -> dict[str, Any]:
        """Bind a waiting pod of the owner for ``key`` (at once if one waits, else when one appears)."""
        self._placed[key] = _Placed(owner_uid=owner_uid, workload_uid=workload_uid, node=node, devices=list(devices),
                                    launch_id=launch_id, deadline=time.monotonic() + self.pod_wait_seconds)
        self._bind_waiting()
        return self._handle(key, self._placed[key])

    def _bind_waiting(self) -> None:
        """Give each placed key without a pod one of its owner's unbound pods, and bind it."""
        taken = {p.pod_uid for p in self._placed.values() if p.pod_uid}
        now = time.monotonic()
        for key, placed in self._placed.items():
            if placed.pod_uid or placed.told in ENDED:
                continue
            if placed.stopping:
                self._tell(key, placed, PodState.STOPPED, message="stopped before a pod was bound")
                continue
            pod = next((p for _, p in sorted((_meta(p).get("name") or "", p) for p in self._pods.values()
                                             if self._free_for(p, placed.owner_uid, taken))), None)
            if pod is None:
                if now > placed.deadline:
                    self._tell(key, placed, PodState.STOPPED, message=(
                        f"no pod of its owner waited to be placed within {self.pod_wait_seconds:g}s"))
                continue
            meta = _meta(pod)
            placed.namespace, placed.pod, placed.pod_uid = meta.get("namespace") or "", meta["name"], meta.get("uid")
            taken.add(placed.pod_uid)
            self._bind(key, placed)
            # the handle names the pod now: a restart finds it (the pod stays Running for the service)
            self._report(PodReport(key, PodState.RUNNING, handle=self._handle(key, placed)))

    def _free_for(self, pod: dict, owner_uid: str, taken: set[str]) -> bool:
        meta = _meta(pod)
        if meta.get("uid") in taken or meta.get("deletionTimestamp") or (pod.get("spec") or {}).get("nodeName"):
            return False
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return False
        owner = self.resolver.top(pod)
        return owner is not None and owner.uid == owner_uid

    def _bind(self, key: str, placed: _Placed) -> None:
        namespace, name, node = placed.namespace, placed.pod, placed.node

        def bind() -> None:
            try:
                self.writer.bind(namespace, name, node)
            except Exception as exc:
                log.warning("could not bind %s/%s for %s: %s", namespace, name, key, exc)
                with self.lock:
                    if placed.told not in ENDED:
                        self._tell(key, placed, PodState.FAILED, message=f"could not bind: {exc}")
        self.writer.queue(bind)

    def stop(self, key: str, grace_seconds: float) -> None:
        placed = self._placed.get(key)
        if placed is None or placed.told in ENDED:
            return
        placed.stopping = True
        if not placed.pod_uid:
            self._bind_waiting()  # tells it Stopped
            return
        namespace, name = placed.namespace, placed.pod

        def evict() -> None:
            try:
                self.writer.evict(namespace, name, grace_seconds)
            except Exception as exc:
                log.warning("could not evict %s/%s: %s", namespace, name, exc)
        self.writer.queue(evict)

    def poll(self) -> None:
        """Keys that waited too long for a pod are told so."""
        if any(not p.pod_uid and p.told not in ENDED for p in self._placed.values()):
            self._bind_waiting()

    def adopt(self, key: str, handle: dict[str, Any]) -> PodReport:
        namespace, name, uid = handle.get("namespace") or "", handle.get("pod") or "", handle.get("pod_uid") or ""
        placed = _Placed(owner_uid=handle.get("owner_uid") or "", workload_uid=handle.get("workload_uid") or "",
                         node=handle.get("node") or "", devices=list(handle.get("devices") or []),
                         launch_id=handle.get("launch_id"), namespace=namespace, pod=name, pod_uid=uid)
        pod = self._pods.get(uid) if uid else None
        if pod is None:
            # an intent (bound or not when the scheduler stopped), or a pod gone since
            placed.told = PodState.LOST
            return PodReport(key, PodState.LOST, message="its pod is not on the cluster")
        self._placed[key] = placed
        if not (pod.get("spec") or {}).get("nodeName") and placed.node:
            self._bind(key, placed)  # placed, but the bind never went out
        outcome = pod_outcome(pod)
        if outcome.state in ENDED:
            placed.told = outcome.state
            return PodReport(key, outcome.state, exit_code=outcome.exit_code, message=outcome.message,
                             handle=self._handle(key, placed))
        placed.told = PodState.RUNNING
        return PodReport(key, PodState.RUNNING, handle=self._handle(key, placed))

    def release(self, key: str) -> None:
        """The workload is deleted: forget the key (the pod is its owner's, never deleted by us)."""
        self._placed.pop(key, None)

    def where(self, key: str) -> tuple[str, str] | None:
        placed = self._placed.get(key)
        return (placed.namespace, placed.pod) if placed is not None and placed.pod else None

    @staticmethod
    def _handle(key: str, placed: _Placed) -> dict[str, Any]:
        return {"external": True, "owner_uid": placed.owner_uid, "workload_uid": placed.workload_uid,
                "launch_id": placed.launch_id, "node": placed.node, "devices": list(placed.devices),
                "namespace": placed.namespace, "pod": placed.pod, "pod_uid": placed.pod_uid}
