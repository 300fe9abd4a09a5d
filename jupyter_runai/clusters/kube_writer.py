"""The Kubernetes backend's writes: one daemon thread that runs them in order, each request
retried with a backoff on 429, 5xx, timeouts and lost connections.

Order matters and one thread keeps it: a pod's namespace, Secrets and creation come before
its binding, and all of them before its eviction. A write refused for good (403, 422...), or
refused for longer than ``retry_seconds``, raises :class:`WriteFailed` with the API server's
message, for the backend to tell the service why. ``may_write`` is asked before every
attempt: a replica that does not hold the leader's Lease (``kube_lease``) writes nothing.

Needs a ``CoreV1Api`` (given; this module imports nothing from ``kubernetes``). Every
request asks for the raw answer (``_preload_content=False``): plain JSON, no models.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from typing import Any, Callable

from .podtemplate import (
    LABEL_POD_INDEX,
    LABEL_WORKLOAD_UID,
    TemplateOptions,
    inference_service_name,
    master_service_name,
    proxy_token_secret_name,
)

__all__ = ["ANNOTATION_LAUNCH_ID", "KubeWriter", "WriteFailed"]

log = logging.getLogger(__name__)

ANNOTATION_LAUNCH_ID = "runai/launch-id"  # which launch made this pod (a name is reused after a restart)
RETRYABLE = {429, 500, 502, 503, 504}
MANAGED = {"runai/managed": "true"}  # on what we create besides pods (namespaces, Secrets, Services)


class WriteFailed(Exception):
    """A write the API server refused for good, or kept refusing for ``retry_seconds``."""


def _status_of(exc: BaseException) -> int | None:
    return getattr(exc, "status", None)


def reason_of(exc: BaseException) -> str:
    """An API error's message in words (the Status body's message), else the exception."""
    body = getattr(exc, "body", None)
    if body:
        try:
            message = json.loads(body).get("message")
            if message:
                return f"{message} (HTTP {_status_of(exc)})"
        except (ValueError, AttributeError):
            pass
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


class KubeWriter:
    """Queued, ordered, retried writes to the API server."""

    def __init__(self, core: Any, *, request_timeout: float, retry_seconds: float, closed: threading.Event,
                 may_write: Callable[[], bool] = lambda: True) -> None:
        self.core = core
        self.may_write = may_write  # False on a replica that does not hold the Lease: nothing is written
        self.request_timeout = request_timeout
        self.retry_seconds = retry_seconds
        self._closed = closed
        self._writes: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._namespaces: set[str] = set()
        self._thread = threading.Thread(target=self._loop, name="kube-writer", daemon=True)
        self._thread.start()

    def queue(self, write: Callable[[], None]) -> None:
        """Run ``write`` after every write queued before it."""
        self._writes.put(write)

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every write queued so far is done (tests, and a clean shutdown)."""
        done = threading.Event()
        self._writes.put(done.set)
        return done.wait(timeout)

    def close(self) -> None:
        """End after the writes already queued (each retried no more once ``closed`` is set)."""
        self._writes.put(None)
        self._thread.join(self.request_timeout)

    def _loop(self) -> None:
        while True:
            write = self._writes.get()
            if write is None:
                return
            try:
                write()
            except Exception:
                log.exception("a Kubernetes write failed")

    def retry(self, what: str, call: Callable[[], Any], ok: tuple[int, ...] = ()) -> Any:
        """``call`` until it answers, retrying 429, 5xx, timeouts and lost connections with a backoff
        for ``retry_seconds``; a status in ``ok`` counts as done (returns None)."""
        deadline = time.monotonic() + self.retry_seconds
        backoff = 0.05
        while True:
            if not self.may_write():
                raise WriteFailed(f"{what}: not done, this replica is not the leader (it does not hold the Lease)")
            try:
                return call()
            except Exception as exc:
                status = _status_of(exc)
                if status in ok:
                    return None
                retryable = status in RETRYABLE or (status is None and not isinstance(exc, (ValueError, TypeError)))
                if not retryable or time.monotonic() + backoff > deadline or self._closed.is_set():
                    raise WriteFailed(f"{what}: {reason_of(exc)}") from exc
                log.info("%s: %s; again in %.2fs", what, reason_of(exc), backoff)
                time.sleep(backoff)
                backoff = min(5.0, backoff * 2)

    # ------------------------------------------------------------ the objects

    def ensure_namespace(self, namespace: str) -> None:
        if namespace in self._namespaces:
            return
        self.retry(f"create namespace {namespace}", lambda: self.core.create_namespace(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": MANAGED}},
            _preload_content=False, _request_timeout=self.request_timeout), ok=(409,))
        self._namespaces.add(namespace)

    def put_secret(self, namespace: str, name: str, data: dict[str, str], workload_uid: str | None) -> None:
        """Create the Secret, or make an existing one hold ``data`` (a credential changed since)."""
        labels = {**MANAGED, **({LABEL_WORKLOAD_UID: workload_uid} if workload_uid else {})}
        body = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": name, "namespace": namespace, "labels": labels},
                "stringData": data}
        created = self.retry(f"create secret {namespace}/{name}", lambda: self.core.create_namespaced_secret(
            namespace, body, _preload_content=False, _request_timeout=self.request_timeout), ok=(409,))
        if created is None:  # there already: make it say what this launch says (and nothing else)
            self.retry(f"update secret {namespace}/{name}", lambda: self.core.patch_namespaced_secret(
                name, namespace, {"data": None, "stringData": data}, _preload_content=False,
                _request_timeout=self.request_timeout))

    def put_master_service(self, namespace: str, workload: str, workload_uid: str) -> None:
        """The headless Service that names a distributed workload's pod 0 (MASTER_ADDR)."""
        name = master_service_name(workload)
        body = {"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "namespace": namespace,
                             "labels": {**MANAGED, LABEL_WORKLOAD_UID: workload_uid}},
                "spec": {"clusterIP": "None", "selector": {LABEL_WORKLOAD_UID: workload_uid, LABEL_POD_INDEX: "0"},
                         "ports": [{"name": "master", "port": TemplateOptions().master_port}]}}
        self.retry(f"create service {namespace}/{name}", lambda: self.core.create_namespaced_service(
            namespace, body, _preload_content=False, _request_timeout=self.request_timeout), ok=(409,))

    def put_inference_service(self, namespace: str, workload: str, workload_uid: str) -> None:
        """The Service in front of an inference workload's replicas: port 80 to their ``http`` port.
        Kubernetes sends its traffic to the Ready ones only."""
        name = inference_service_name(workload)
        body = {"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "namespace": namespace,
                             "labels": {**MANAGED, LABEL_WORKLOAD_UID: workload_uid}},
                "spec": {"type": "ClusterIP", "selector": {LABEL_WORKLOAD_UID: workload_uid},
                         "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}}
        self.retry(f"create service {namespace}/{name}", lambda: self.core.create_namespaced_service(
            namespace, body, _preload_content=False, _request_timeout=self.request_timeout), ok=(409,))

    def delete_workload_objects(self, namespace: str, workload: str, secrets: list[str] = ()) -> None:
        """What the backend made for a workload besides its pods: its proxy token Secret, its
        credentials' Secrets (``secrets``, the names its pods' handles keep), its master and
        inference Services. Gone already is done; a failure is logged. (A Secret's delete answers
        the Secret: the answer is never read.)"""
        deletes = [(f"secret {secret}", self.core.delete_namespaced_secret, secret)
                   for secret in (proxy_token_secret_name(workload), *secrets)]
        for service in (master_service_name(workload), inference_service_name(workload)):
            deletes.append((f"service {service}", self.core.delete_namespaced_service, service))
        for what, call, name in deletes:
            try:
                self.retry(f"delete {what} in {namespace}", lambda call=call, name=name: call(
                    name, namespace, _preload_content=False, _request_timeout=self.request_timeout), ok=(404,))
            except WriteFailed as exc:
                log.warning("%s", exc)

    def create_pod(self, namespace: str, manifest: dict, launch_id: str | None) -> None:
        name = manifest["metadata"]["name"]
        for _ in range(3):
            created = self.retry(f"create pod {namespace}/{name}", lambda: self.core.create_namespaced_pod(
                namespace, manifest, _preload_content=False, _request_timeout=self.request_timeout), ok=(409,))
            if created is not None:
                return
            # the name is taken: by this launch (a retried create that had gone through), or by an
            # earlier pod of the name that ended (the service starts a pod again only after it ended)
            existing = self.retry(f"read pod {namespace}/{name}", lambda: self.core.read_namespaced_pod(
                name, namespace, _preload_content=False, _request_timeout=self.request_timeout), ok=(404,))
            if existing is None:
                continue
            annotations = json.loads(existing.data).get("metadata", {}).get("annotations") or {}
            if annotations.get(ANNOTATION_LAUNCH_ID) == launch_id:
                return
            self.delete_pod(namespace, name)
        raise WriteFailed(f"create pod {namespace}/{name}: the name stays taken by an earlier pod")

    def bind(self, namespace: str, name: str, node: str) -> None:
        """Bind the pod to ``node`` through ``pods/binding`` (done already, to that node, counts as done)."""
        body = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name, "namespace": namespace},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
        done = self.retry(f"bind pod {namespace}/{name} to {node}", lambda: self.core.create_namespaced_pod_binding(
            name, namespace, body, _preload_content=False, _request_timeout=self.request_timeout), ok=(409,))
        if done is None:  # 409: bound already; to this node (a retried bind that had gone through)?
            existing = self.retry(f"read pod {namespace}/{name}", lambda: self.core.read_namespaced_pod(
                name, namespace, _preload_content=False, _request_timeout=self.request_timeout))
            bound = json.loads(existing.data).get("spec", {}).get("nodeName")
            if bound != node:
                raise WriteFailed(f"bind pod {namespace}/{name}: bound to {bound}, not {node}")

    def pod_unschedulable(self, namespace: str, name: str, message: str) -> None:
        """Say on a pod that we do not place (a third-party pod's) why it waits: its ``PodScheduled``
        condition, as a scheduler does (``kubectl describe pod`` shows it). A failure is logged."""
        body = {"status": {"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                           "message": message[:1024]}]}}
        try:
            self.retry(f"patch pod status {namespace}/{name}", lambda: self.core.patch_namespaced_pod_status(
                name, namespace, body, _preload_content=False, _request_timeout=self.request_timeout), ok=(404,))
        except WriteFailed as exc:
            log.warning("%s", exc)

    def evict(self, namespace: str, name: str, grace_seconds: float) -> None:
        """Evict through the Eviction API (a PodDisruptionBudget's 429 is retried); gone already is done."""
        body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": namespace},
                "deleteOptions": {"gracePeriodSeconds": int(grace_seconds)}}
        self.retry(f"evict {namespace}/{name}", lambda: self.core.create_namespaced_pod_eviction(
            name, namespace, body, _preload_content=False, _request_timeout=self.request_timeout), ok=(404,))

    def delete_pod(self, namespace: str, name: str) -> None:
        """Delete the pod; a failure is logged (what is left is taken off its node's capacity)."""
        try:
            self.retry(f"delete pod {namespace}/{name}", lambda: self.core.delete_namespaced_pod(
                name, namespace, _preload_content=False, _request_timeout=self.request_timeout), ok=(404,))
        except WriteFailed as exc:
            log.warning("%s", exc)
