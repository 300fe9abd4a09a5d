"""A list+watch cache of one kind of Kubernetes object, kept in a daemon thread.

The backend gives it two callables (so this module needs no ``kubernetes`` import):
``list_fn()`` returns ``(items, resource_version)`` and ``watch_fn(resource_version,
timeout_seconds)`` yields watch events as dicts (``{"type", "object"}``) and ends when the
server ends the watch. The informer lists, then watches from the list's version; a watch
that ends is resumed from the last version seen (``BOOKMARK`` events move it on without a
change); one the server answers with 410 Gone (the history was compacted) lists again.
Any other error (a timeout, the API server restarting, a 5xx) waits with a backoff that
doubles up to ``max_backoff`` and tries again; nothing the cache held is dropped meanwhile.

Every change reaches ``on_change(kind, old, new)`` on the informer's thread (``kind`` is
``ADDED``, ``MODIFIED`` or ``DELETED``); a re-list reports what changed while the watch was
away, as events, so the callback never misses a deletion.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Iterable

__all__ = ["Gone", "Informer"]

log = logging.getLogger(__name__)

Key = tuple[str | None, str]  # (namespace, name)


class Gone(Exception):
    """The watch's resource version is too old (HTTP 410): list again."""


def key_of(obj: dict[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return meta.get("namespace"), meta["name"]


class Informer:
    """One kind's cache: :meth:`get` and :meth:`items` read it from any thread."""

    def __init__(self, kind: str, list_fn: Callable[[], tuple[list[dict], str]],
                 watch_fn: Callable[[str, int], Iterable[dict]],
                 on_change: Callable[[str, dict | None, dict | None], None] | None = None, *,
                 watch_seconds: int = 300, min_backoff: float = 0.05, max_backoff: float = 5.0) -> None:
        self.kind = kind
        self._list = list_fn
        self._watch = watch_fn
        self._on_change = on_change or (lambda kind, old, new: None)
        self.watch_seconds = watch_seconds
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self._items: dict[Key, dict] = {}
        self._lock = threading.Lock()
        self.synced = threading.Event()  # set after the first list
        self._stop = threading.Event()
        self.resource_version = ""
        self.lists = 0      # how many times it listed (1 + re-lists): tests and /metrics read it
        self.errors = 0     # errors it recovered from
        self._thread = threading.Thread(target=self._run, name=f"kube-informer-{kind}", daemon=True)

    def start(self) -> "Informer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def get(self, namespace: str | None, name: str) -> dict | None:
        with self._lock:
            return self._items.get((namespace, name))

    def items(self) -> list[dict]:
        with self._lock:
            return list(self._items.values())

    # ------------------------------------------------------------ the thread

    def _run(self) -> None:
        backoff = self.min_backoff
        need_list = True
        while not self._stop.is_set():
            try:
                if need_list:
                    self._relist()
                    need_list = False
                for event in self._watch(self.resource_version, self.watch_seconds):
                    if self._stop.is_set():
                        return
                    self._apply(event)
                    backoff = self.min_backoff
                # the server ended the watch (its timeout): resume from the last version seen
            except Gone:
                log.info("%s watch: resource version %s expired; listing again", self.kind, self.resource_version)
                need_list = True
            except Exception as exc:  # timeouts, the API server away, 5xx: wait, then go on
                self.errors += 1
                if getattr(exc, "status", None) == 410:
                    need_list = True
                    continue
                log.warning("%s %s failed (%s); again in %.2fs", self.kind, "list" if need_list else "watch",
                            exc, backoff)
                if self._stop.wait(backoff):
                    return
                backoff = min(self.max_backoff, backoff * 2)

    def _relist(self) -> None:
        items, version = self._list()
        fresh = {key_of(obj): obj for obj in items}
        with self._lock:
            old = self._items
            self._items = fresh
            self.resource_version = version
            self.lists += 1
        for key, obj in fresh.items():
            before = old.get(key)
            if before is None:
                self._on_change("ADDED", None, obj)
            elif (before.get("metadata") or {}).get("resourceVersion") != (obj.get("metadata") or {}).get("resourceVersion"):
                self._on_change("MODIFIED", before, obj)
        for key, obj in old.items():
            if key not in fresh:
                self._on_change("DELETED", obj, None)
        self.synced.set()

    def _apply(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Gone(obj.get("message"))
            raise RuntimeError(f"watch error: {obj.get('message') or obj}")
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if kind == "BOOKMARK":
            if version:
                self.resource_version = version
            return
        if kind not in ("ADDED", "MODIFIED", "DELETED"):
            return
        key = key_of(obj)
        with self._lock:
            before = self._items.get(key)
            if kind == "DELETED":
                self._items.pop(key, None)
            else:
                self._items[key] = obj
            if version:
                self.resource_version = version
        self._on_change(kind, before, None if kind == "DELETED" else obj)
