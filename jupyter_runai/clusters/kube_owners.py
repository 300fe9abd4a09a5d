"""The top owner of a pod: its controller reference followed up (Pod -> ReplicaSet ->
Deployment, Pod -> Job -> CronJob, Pod -> PyTorchJob) by reading each owner through the API.
Only reads, in one thread of its own (:class:`OwnerResolver`), never on the caller's thread.
What is learned is cached, at most :data:`OWNER_CACHE` entries. An owner that cannot be read
(gone: 404, or a kind the scheduler's role may not read: 403) ends the chain: the last one
read is the top. Used by ``kube_foreign`` to group third-party pods into workloads.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["OWNER_CACHE", "Owner", "OwnerResolver", "controller_of", "plural"]

log = logging.getLogger(__name__)

OWNER_CACHE = 4096  # owner references whose top owner is remembered
OWNER_DEPTH = 8     # owners followed up from a pod, at most


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("metadata") or {}


def controller_of(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The owner reference that controls ``obj`` (else its first one), or None."""
    refs = [r for r in _meta(obj).get("ownerReferences") or [] if r.get("kind") and r.get("name")]
    return next((r for r in refs if r.get("controller")), refs[0] if refs else None)


def plural(kind: str) -> str:
    """The resource name of a kind, as the API server's convention makes it (Job -> jobs)."""
    lower = kind.lower()
    if lower.endswith(("s", "x", "ch", "sh")):
        return lower + "es"
    if lower.endswith("y") and lower[-2:-1] not in "aeiou":
        return lower[:-1] + "ies"
    return lower + "s"


@dataclass(frozen=True, slots=True)
class Owner:
    api_version: str
    kind: str
    name: str
    namespace: str
    uid: str


def _owner_of_ref(ref: dict[str, Any], namespace: str) -> Owner:
    return Owner(ref.get("apiVersion") or "v1", ref["kind"], ref["name"], namespace, ref.get("uid") or "")


def _owner_of_pod(pod: dict[str, Any]) -> Owner:
    meta = _meta(pod)
    return Owner("v1", "Pod", meta.get("name") or "", meta.get("namespace") or "", meta.get("uid") or "")


class OwnerResolver:
    """A pod's top owner: cached, else read in this resolver's thread (``read(api_version, plural,
    namespace, name)`` answers the object, or raises with a ``status``); ``on_resolved`` is called
    (without any lock) when an answer is new."""

    def __init__(self, read: Callable[[str, str, str, str], dict], on_resolved: Callable[[], None],
                 closed: threading.Event, cache_size: int = OWNER_CACHE) -> None:
        self._read = read
        self._on_resolved = on_resolved
        self._closed = closed
        self._cache_size = cache_size
        self._cache: OrderedDict[str, Owner] = OrderedDict()  # owner reference uid -> top owner
        self._asked: set[str] = set()
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[dict, str] | None] = queue.Queue()
        self.on_gone: Callable[[str], None] = lambda uid: None  # an owner checked (check()) is gone
        self._thread = threading.Thread(target=self._loop, name="kube-owners", daemon=True)
        self._thread.start()

    def top(self, pod: dict[str, Any]) -> Owner | None:
        """The pod's top owner if known (asked for, else: None until it is)."""
        ref = controller_of(pod)
        if ref is None:
            return _owner_of_pod(pod)
        key = ref.get("uid") or f"{ref['kind']}/{ref['name']}"
        namespace = _meta(pod).get("namespace") or ""
        with self._lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
                return found
            if key not in self._asked:
                self._asked.add(key)
                self._queue.put((ref, namespace))
        return None

    def check(self, owner: Owner) -> None:
        """Read ``owner`` again (in the thread): ``on_gone(uid)`` when the API server says it is gone."""
        self._queue.put(({"apiVersion": owner.api_version, "kind": owner.kind, "name": owner.name,
                          "uid": owner.uid, "check": True}, owner.namespace))

    def close(self) -> None:
        self._queue.put(None)

    def _loop(self) -> None:
        while not self._closed.is_set():
            item = self._queue.get()
            if item is None:
                return
            ref, namespace = item
            key = ref.get("uid") or f"{ref['kind']}/{ref['name']}"
            if ref.get("check"):
                try:
                    self._read(ref["apiVersion"], plural(ref["kind"]), namespace, ref["name"])
                except Exception as exc:
                    if getattr(exc, "status", None) == 404:
                        self.on_gone(ref["uid"])
                continue
            try:
                top = self._walk(ref, namespace)
            except Exception as exc:  # the API server away: asked again later
                log.info("the owner of %s %s/%s not read yet: %s", ref.get("kind"), namespace, ref.get("name"), exc)
                if self._closed.wait(1.0):
                    return
                self._queue.put(item)
                continue
            with self._lock:
                self._asked.discard(key)
                self._cache[key] = top
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
            self._on_resolved()

    def _walk(self, ref: dict[str, Any], namespace: str) -> Owner:
        top = _owner_of_ref(ref, namespace)
        for _ in range(OWNER_DEPTH):
            try:
                obj = self._read(top.api_version, plural(top.kind), namespace, top.name)
            except Exception as exc:
                if getattr(exc, "status", None) in (403, 404):  # gone, or not ours to read: the top
                    return top
                raise
            up = controller_of(obj)
            if up is None:
                return top
            top = _owner_of_ref(up, namespace)
        return top
