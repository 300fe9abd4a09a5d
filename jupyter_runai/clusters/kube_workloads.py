"""Workloads as ``RunaiWorkload`` objects on the cluster (``kube_crd``): the Kubernetes backend's
mirror of the service's workloads, so that the cluster holds what a restarted scheduler, or a
standby that becomes leader, needs to re-derive them.

* :func:`workload_object`, :func:`status_body` and :func:`workload_from_object` are pure: a
  workload as an object and back. The object's ``spec`` is the workload's spec as the REST API
  writes it; its ``status`` the workload's status plus ``submitted_by``, ``allocated_gpus`` and
  ``conditions``. The label ``runai/workload-uid`` is our bookkeeping: an object without it
  was not made by the scheduler.
* :class:`WorkloadObjects` writes them through the backend's ordered writer (``kube_writer``):
  created at admission, before any of the workload's pods; its status patched after a change
  (coalesced: only the latest status of a workload is written, never blocking the service);
  deleted with the workload. Its list+watch cache tells the service about objects deleted by
  someone else (``kubectl delete``): :meth:`WorkloadObjects.take_removed`, and about objects
  created by someone else (``kubectl apply``, without our label): :meth:`take_foreign`. The
  service admits those as REST would: :meth:`adopt` labels an admitted one as ours (and
  writes the spec it was admitted with), :meth:`refuse` writes why one was not into its
  ``conditions``.

No ``kubernetes`` import: the backend hands in its ``CustomObjectsApi``.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
from concurrent.futures import Future
from typing import Any, Callable

from ..models import Workload, WorkloadSpec, WorkloadStatus
from ..models.names import namespace_for
from .kube_crd import API_VERSION, GROUP, KIND, PLURAL, VERSION
from .kube_informer import Informer
from .kube_objects import pod_ready
from .kube_writer import MANAGED, KubeWriter, WriteFailed
from .podtemplate import ANNOTATION_DEVICES, ANNOTATION_GPU_FRACTION, LABEL_PROJECT, LABEL_WORKLOAD_UID

__all__ = ["WorkloadObjects", "handle_of_pod", "status_body", "workload_from_object", "workload_object",
           "workload_uid_of"]

log = logging.getLogger(__name__)

HOLDING = ("Running", "Terminating")
_EXTRA = ("submitted_by", "allocated_gpus", "conditions")


def workload_uid_of(obj: dict) -> str | None:
    """The workload uid of an object the scheduler made; None for one made by someone else."""
    return ((obj.get("metadata") or {}).get("labels") or {}).get(LABEL_WORKLOAD_UID)


def workload_object(workload: Workload) -> dict[str, Any]:
    """The object of a workload, without its status (written through the status subresource)."""
    spec = workload.spec
    return {
        "apiVersion": API_VERSION, "kind": KIND,
        "metadata": {"name": spec.name, "namespace": namespace_for(spec.project),
                     "labels": {**MANAGED, LABEL_PROJECT: spec.project, LABEL_WORKLOAD_UID: workload.uid}},
        "spec": spec.model_dump(mode="json", exclude_none=True),
    }


def allocated_gpus(workload: Workload) -> float:
    """GPUs its pods hold now: whole devices count 1, a fraction its share of each device."""
    total = 0.0
    for pod in workload.status.pods:
        if pod.phase.value in HOLDING:
            total += len(pod.devices) * (pod.fraction if pod.fraction is not None else 1.0)
    return round(total, 4)


def _conditions(workload: Workload) -> list[dict[str, Any]]:
    status = workload.status
    submitted = status.submitted_at.isoformat() if status.submitted_at else None
    running = status.phase.value == "Running"
    since = status.started_at if running and status.started_at else (status.finished_at or status.submitted_at)
    out = [{"type": "Admitted", "status": "True", "reason": "Submitted",
            "message": f"admitted for {workload.submitted_by or 'an unknown user'}"},
           {"type": "Running", "status": "True" if running else "False", "reason": status.phase.value,
            "message": (status.pending_reason or status.message or status.phase.value)[:4096]}]
    if submitted:
        out[0]["lastTransitionTime"] = submitted
    if since:
        out[1]["lastTransitionTime"] = since.isoformat()
    return out


def status_body(workload: Workload) -> dict[str, Any]:
    """The object's status: every key present (None removes it in a merge patch)."""
    body = workload.status.model_dump(mode="json", exclude={"queue_position"})
    body["submitted_by"] = workload.submitted_by
    body["allocated_gpus"] = allocated_gpus(workload)
    body["conditions"] = _conditions(workload)
    return body


def workload_from_object(obj: dict) -> Workload:
    """The workload an object of ours describes (spec, submitter, status); raises ValueError
    (pydantic's ValidationError) when it does not hold one."""
    uid = workload_uid_of(obj)
    if not uid:
        raise ValueError("not made by the scheduler: no runai/workload-uid label")
    status = dict(obj.get("status") or {})
    submitted_by = status.get("submitted_by")
    for key in _EXTRA:
        status.pop(key, None)
    return Workload(uid=uid, spec=WorkloadSpec.model_validate(obj.get("spec") or {}),
                    status=WorkloadStatus.model_validate({k: v for k, v in status.items() if v is not None}),
                    submitted_by=submitted_by)


def handle_of_pod(pod: dict, launch_id_annotation: str) -> dict[str, Any]:
    """The handle the backend would have given for this pod of ours (to adopt it when the store
    lacks its workload): its node, devices and fraction from the pod and its annotations."""
    meta = pod.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    spec = pod.get("spec") or {}
    node = spec.get("nodeName") or (spec.get("nodeSelector") or {}).get("kubernetes.io/hostname") or ""
    devices = [int(d) for d in (annotations.get(ANNOTATION_DEVICES) or "").split(",") if d.strip().isdigit()]
    handle: dict[str, Any] = {"namespace": meta.get("namespace"), "pod": meta["name"],
                              "launch_id": annotations.get(launch_id_annotation),
                              "workload_uid": (meta.get("labels") or {}).get(LABEL_WORKLOAD_UID),
                              "node": node, "devices": devices}
    if any(port.get("name") == "http" for c in spec.get("containers") or [] for port in c.get("ports") or []):
        handle["ready"] = pod_ready(pod)
    if annotations.get(ANNOTATION_GPU_FRACTION):
        try:
            handle["fraction"] = float(annotations[ANNOTATION_GPU_FRACTION])
        except ValueError:
            pass
    return handle


class WorkloadObjects:
    """The service's workloads mirrored as objects, written in order through ``writer``."""

    def __init__(self, api: Any, writer: KubeWriter, make_informer: Callable[..., Informer], *,
                 request_timeout: float, submitter: str = "") -> None:
        self.api = api  # a kubernetes CustomObjectsApi
        self.submitter = submitter  # whom objects created by others are admitted as; "": refused
        self._foreign: list[dict] = []  # objects without our label, new or with a changed spec
        self.writer = writer
        self.request_timeout = request_timeout
        self._lock = threading.Lock()
        self._statuses: dict[str, tuple[str, str, dict]] = {}  # uid -> (namespace, name, status) to write
        self._deleting: set[str] = set()  # uids whose objects the scheduler deletes
        self._removed: list[tuple[str, str, str]] = []  # (uid, namespace, name) deleted by someone else
        self._seen: list[str] = []  # uids whose object was seen on the cluster since take_seen()
        self._written: dict[str, dict] = {}  # uid -> the status last queued (an unchanged one is not written)
        self.informer = make_informer(
            PLURAL, self._call(self.api.list_cluster_custom_object), self._changed)

    def _call(self, method):
        def call(**kwargs):
            return method(GROUP, VERSION, PLURAL, **kwargs)
        return call

    # ------------------------------------------------------------ the cache

    def _changed(self, kind: str, old: dict | None, new: dict | None) -> None:
        obj = new if new is not None else old
        uid = workload_uid_of(obj or {})
        if uid is None:  # someone else's: to admit when it is new or its spec changed
            if new is not None and (old is None or old.get("spec") != new.get("spec")):
                with self._lock:
                    self._foreign.append(copy.deepcopy(new))
            return
        if new is not None:
            if old is None or workload_uid_of(old) != uid:
                with self._lock:
                    self._seen.append(uid)
            return
        with self._lock:
            if uid in self._deleting:
                self._deleting.discard(uid)
                return
            meta = obj["metadata"]
            self._removed.append((uid, meta.get("namespace") or "", meta["name"]))

    def objects(self) -> list[dict]:
        """The objects of ours on the cluster (from the cache)."""
        return [obj for obj in self.informer.items() if workload_uid_of(obj)]

    def take_seen(self) -> list[str]:
        """Uids of the objects of ours that appeared on the cluster since the last call."""
        with self._lock:
            seen, self._seen = self._seen, []
        return seen

    def take_foreign(self) -> list[dict]:
        """Objects created by someone else (no ``runai/workload-uid`` label) since the last call,
        new or with a changed spec: for the service to admit or refuse."""
        with self._lock:
            foreign, self._foreign = self._foreign, []
        return foreign

    def take_removed(self) -> list[tuple[str, str, str]]:
        """Objects of ours deleted by someone else since the last call: (uid, namespace, name)."""
        with self._lock:
            removed, self._removed = self._removed, []
        return removed

    # ------------------------------------------------------------ writes (queued, in order)

    def create(self, workload: Workload) -> Future:
        """Create the workload's object, then write its status (queued before any of its pods).
        The future is done once the object exists, or fails with the reason it was not created."""
        body = workload_object(workload)
        namespace, name, uid = body["metadata"]["namespace"], body["metadata"]["name"], workload.uid
        with self._lock:  # its status, written once the object exists (a later update replaces it)
            self._statuses[uid] = (namespace, name, status_body(workload))
            self._written[uid] = self._statuses[uid][2]

        done: Future = Future()

        def write() -> None:
            try:
                self.writer.ensure_namespace(namespace)
                self._create(namespace, name, uid, body)
            except Exception as exc:
                log.warning("the object of workload %s/%s was not created: %s", namespace, name, exc)
                done.set_exception(exc)
                return
            done.set_result(None)
        self.writer.queue(write)
        self.writer.queue(lambda: self._write_status(uid))
        return done

    def _create(self, namespace: str, name: str, uid: str, body: dict) -> None:
        for _ in range(3):
            made = self.writer.retry(f"create {PLURAL} {namespace}/{name}", lambda: (
                self.api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body,
                                                         _preload_content=False,
                                                         _request_timeout=self.request_timeout)), ok=(409,))
            if made is not None:
                return
            existing = self.writer.retry(f"read {PLURAL} {namespace}/{name}", lambda: (
                self.api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, _preload_content=False,
                                                      _request_timeout=self.request_timeout)), ok=(404,))
            if existing is None:
                continue
            other = workload_uid_of(json.loads(existing.data))
            if other == uid:
                return  # a retried create that had gone through
            with self._lock:
                ours_to_delete = other in self._deleting
            if not ours_to_delete:  # someone else's, or a live workload's: never replaced
                raise WriteFailed(f"create {PLURAL} {namespace}/{name}: the name is taken by another object "
                                  f"(workload uid {other or 'none: not made by the scheduler'})")
            # an earlier workload's object of that name, whose delete did not go through: it goes first
            self._delete(namespace, name, other)
        raise WriteFailed(f"create {PLURAL} {namespace}/{name}: the name stays taken by another object")

    def adopt(self, obj: dict, workload: Workload) -> Future:
        """An object created by someone else was admitted as ``workload``: label it as ours and
        write the spec it was admitted with (defaults and policies applied), then its status. The
        future is done once it is ours; it fails when the object changed or went meanwhile."""
        meta = obj["metadata"]
        namespace, name, uid = meta["namespace"], meta["name"], workload.uid
        ours = workload_object(workload)
        patch = {"metadata": {"labels": ours["metadata"]["labels"]}, "spec": ours["spec"]}
        if meta.get("resourceVersion"):
            patch["metadata"]["resourceVersion"] = meta["resourceVersion"]
        done: Future = Future()
        with self._lock:
            self._statuses[uid] = (namespace, name, status_body(workload))
            self._written[uid] = self._statuses[uid][2]

        def write() -> None:
            try:  # the resourceVersion makes it conditional: a 409 when the object changed since
                self.writer.retry(f"label {PLURAL} {namespace}/{name} as admitted", lambda: (
                    self.api.patch_namespaced_custom_object(
                        GROUP, VERSION, namespace, PLURAL, name, patch, _content_type="application/merge-patch+json",
                        _preload_content=False, _request_timeout=self.request_timeout)))
            except Exception as exc:
                with self._lock:
                    self._statuses.pop(uid, None)
                done.set_exception(exc)
                return
            done.set_result(None)
        self.writer.queue(write)
        self.writer.queue(lambda: self._write_status(uid))
        return done

    def refuse(self, obj: dict, message: str) -> None:
        """Write into an object created by someone else why it was not admitted (its condition
        ``Admitted`` is False, reason ``Refused``); nothing runs for it."""
        meta = obj["metadata"]
        namespace, name = meta.get("namespace") or "", meta["name"]
        body = {"status": {"message": message[:4096], "conditions": [
            {"type": "Admitted", "status": "False", "reason": "Refused", "message": message[:4096]}]}}

        def write() -> None:
            try:
                self.writer.retry(f"write why {PLURAL} {namespace}/{name} was refused", lambda: (
                    self.api.patch_namespaced_custom_object_status(
                        GROUP, VERSION, namespace, PLURAL, name, body, _content_type="application/merge-patch+json",
                        _preload_content=False, _request_timeout=self.request_timeout)), ok=(404,))
            except WriteFailed as exc:
                log.warning("%s", exc)
        self.writer.queue(write)

    def update(self, workload: Workload) -> None:
        """Write the workload's status (the latest one, once, however many changes come first)."""
        body = status_body(workload)
        namespace, name = namespace_for(workload.spec.project), workload.spec.name
        with self._lock:
            if self._written.get(workload.uid) == body or workload.uid in self._deleting:
                return
            self._written[workload.uid] = body
            queued = workload.uid in self._statuses
            self._statuses[workload.uid] = (namespace, name, body)
        if not queued:
            self.writer.queue(lambda: self._write_status(workload.uid))

    def _write_status(self, uid: str) -> None:
        with self._lock:
            pending = self._statuses.pop(uid, None)
            if pending is None or uid in self._deleting:
                return
        namespace, name, body = pending
        try:
            done = self.writer.retry(f"write the status of {PLURAL} {namespace}/{name}",
                                     lambda: self.api.patch_namespaced_custom_object_status(
                                         GROUP, VERSION, namespace, PLURAL, name, {"status": body},
                                         _content_type="application/merge-patch+json", _preload_content=False,
                                         _request_timeout=self.request_timeout), ok=(404,))
        except WriteFailed as exc:
            log.warning("%s", exc)
            with self._lock:  # written again with the next change, even an unchanged status
                if self._written.get(uid) is body:
                    self._written.pop(uid, None)
            return
        if done is None:  # gone: deleted by someone else (the service hears of it from the cache)
            log.info("%s %s/%s is gone: its status is not written", PLURAL, namespace, name)

    def delete(self, workload: Workload) -> None:
        """Delete the workload's object (the workload is deleted)."""
        uid = workload.uid
        namespace, name = namespace_for(workload.spec.project), workload.spec.name
        with self._lock:
            self._deleting.add(uid)
            self._statuses.pop(uid, None)
            self._written.pop(uid, None)
        self.writer.queue(lambda: self._delete(namespace, name, uid))

    def _delete(self, namespace: str, name: str, uid: str | None = None) -> None:
        try:
            self.writer.retry(f"delete {PLURAL} {namespace}/{name}", lambda: self.api.delete_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, _preload_content=False,
                _request_timeout=self.request_timeout), ok=(404,))
        except WriteFailed as exc:
            log.warning("%s", exc)  # kept in _deleting: a later create of the name may delete it then
            return
        with self._lock:  # gone: a DELETED event still to come names a uid the service no longer has
            self._deleting.discard(uid)
