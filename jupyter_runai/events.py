"""Events in the service: each one stored first, then published to the subscribers once the
transaction that recorded it committed (the event stream, ``server/stream.py``).

:class:`Events` is a part of :class:`~jupyter_runai.service.RunaiService` (a mixin). A
subscriber (:class:`Subscription`) receives the events of the projects its user may see, until
it falls too far behind; then it resumes from the store. The store keeps ``event_retention``
events while the service runs (None: all), pruned now and then as events come.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from . import access, workload_json

if TYPE_CHECKING:
    from datetime import datetime

    from .identity import User
    from .models import Workload

log = logging.getLogger("jupyter_runai.service")

__all__ = ["Events", "Subscription"]


class Subscription(asyncio.Queue):
    """The events a subscriber has yet to take, in order. A subscriber that falls
    ``maxsize`` events behind gets no more: ``overflowed`` is set, and it should take what
    is queued and then resume from the store after the last event it took."""

    def __init__(self, maxsize: int, user: User | None = None) -> None:
        super().__init__(maxsize=maxsize)
        self.overflowed = asyncio.Event()
        self.user = user  # None: every event; else those of the projects it may see
        self.seen: tuple[int, set[str] | None] | None = None  # (access version, projects it may see)


class Events:
    """Recording events, publishing them after their commit, and the subscriptions (see the module
    docstring)."""

    if TYPE_CHECKING:  # provided by RunaiService
        from .store import Store

        store: Store
        access_version: int
        workloads: dict[str, Workload]
        seq: dict[str, int]
        _versions: dict[str, int]
        _changes: int

        def _mark_queue_positions(self) -> None: ...
        def workload_view(self, workload: Workload) -> dict[str, Any]: ...

        def _now(self) -> datetime: ...
        def require(self, user: User | None, action: str, **scope: Any) -> None: ...
        def visible_projects(self, user: User | None) -> set[str] | None: ...

    def _init_events(self, event_retention: int | None, event_buffer: int) -> None:
        self._outbox: list[dict[str, Any]] = []  # events to publish once committed
        self._subscribers: set[Subscription] = set()
        self.event_retention = event_retention  # events kept in the store while running (None: all)
        self.event_buffer = event_buffer  # events a subscriber may fall behind before it overflows
        self._unpruned = 0  # events added since the store was last pruned
        self.store.on_rollback(self._forget_unstored_events)

    def _event(self, type_: str, workload: Workload, message: str, pod: str | None = None) -> None:
        event = self.store.add_event(type_, message, at=self._now(), project=workload.spec.project,
                                     workload=workload.spec.name, pod=pod)
        data = event.model_dump(mode="json")
        data[workload_json.WORKLOAD_KEY] = workload  # taken off in _publish, which adds the workload's view
        self._outbox.append(data)
        self._changes += 1  # queue positions are marked again on the next read

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
                    objects[workload.uid] = self.workload_view(workload)
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
