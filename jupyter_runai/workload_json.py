"""Workloads as JSON, fast: each workload's view cached until it changes, and lists in pages.

The view of a workload is the document ``GET /workloads/{project}/{name}`` answers
(without its ``events``); lists and the objects carried by events are made of it. Turning
a pydantic model into JSON is what a list of thousands of workloads spends its time on, so
each workload's JSON is kept, keyed by its version (the service counts every change it
saves, ``RunaiService._save``) and its queue position (which moves when *other*
workloads change), and made again only when either moved.

Pages follow the queue order (the order of submission, ``RunaiService.seq``): a page
ends with a ``continue`` token, the place of its last workload in that order, and the
next page starts after it. A cursor rather than an offset: workloads that end or are
deleted between two pages neither shift a workload into the page already read nor
repeat one, and a new submission lands on the last page.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from typing import TYPE_CHECKING, Any, Mapping

from pydantic import TypeAdapter

from .errors import Invalid
from .models import Workload


WORKLOAD = TypeAdapter(Workload)

#: the most workloads one page holds (and what a list without ``limit`` returns at most)
MAX_PAGE = 10_000
#: where an event waiting to be published keeps its workload (taken off before it is published)
WORKLOAD_KEY = "_workload"
#: cached views kept for workloads that are gone, before they are swept
STALE_SLACK = 1_000


class WorkloadJSON:
    """Each workload's JSON view, made once per change."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[tuple[int, int | None], bytes]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, workload: Workload, version: int) -> bytes:
        key = (version, workload.status.queue_position)
        entry = self._entries.get(workload.uid)
        if entry is not None and entry[0] == key:
            return entry[1]
        data = WORKLOAD.dump_json(workload)
        self._entries[workload.uid] = (key, data)
        return data

    def sweep(self, live: dict[str, Any]) -> None:
        """Forget the views of workloads no longer in ``live`` once enough of them piled up."""
        if len(self._entries) > len(live) + STALE_SLACK:
            self._entries = {uid: entry for uid, entry in self._entries.items() if uid in live}


def parse_continue(token: str | None) -> int | None:
    """A ``continue`` token as the place it stands for; a clear 400 for anything else."""
    if token is None or token == "":
        return None
    if len(token) <= 20 and token.isascii() and token.isdigit():  # "²" is a digit to isdigit, not to int
        return int(token)
    raise Invalid(f"continue must be the token a previous page returned (a whole number), got {token[:40]!r}",
                  field="continue", allowed="the continue token of the previous page")


def page(seq: Mapping[str, int], workloads: list[Workload], limit: int | None,
         after: int | None) -> tuple[list[Workload], str | None]:
    """The workloads (in queue order, ``seq``) after the place ``after``, at most ``limit`` (default and
    at most ``MAX_PAGE``), and the token of the next page (None on the last)."""
    limit = MAX_PAGE if limit is None else min(limit, MAX_PAGE)
    if after is not None:
        places = [seq.get(w.uid, 0) for w in workloads]
        workloads = workloads[bisect_right(places, after):]
    if len(workloads) <= limit:
        return workloads, None
    chosen = workloads[:limit]
    return chosen, str(seq.get(chosen[-1].uid, 0))


class WorkloadViews:
    """The service's workload views (a part of :class:`~jupyter_runai.service.RunaiService`, a mixin):
    the service owns the cache; handlers and events ask these methods."""

    if TYPE_CHECKING:  # provided by RunaiService
        from .identity import User

        workloads: Mapping[str, Workload]
        seq: Mapping[str, int]
        _versions: Mapping[str, int]

        def list(self, project: str | None = None, phase: str | None = None, kind: str | None = None,
                 user: User | None = None) -> list[Workload]: ...

    def _init_workload_views(self) -> None:
        self._workload_views = WorkloadJSON()

    def workload_json(self, workload: Workload) -> bytes:
        """The workload's view as JSON bytes (queue positions must be marked already)."""
        self._workload_views.sweep(self.workloads)
        return self._workload_views.get(workload, self._versions.get(workload.uid, 0))

    def workload_view(self, workload: Workload) -> dict[str, Any]:
        """The workload's view as a JSON-able dict."""
        return json.loads(self.workload_json(workload))

    def list_json(self, project: str | None = None, phase: str | None = None, kind: str | None = None,
                  user: "User | None" = None, limit: int | None = None, continue_token: str | None = None) -> bytes:
        """``GET /workloads``: ``{"workloads": [...], "continue": token}`` as JSON bytes, a page of the
        workloads :meth:`list` gives (cached views: a list of thousands is a join)."""
        after = parse_continue(continue_token)
        chosen, token = page(self.seq, self.list(project=project, phase=phase, kind=kind, user=user), limit, after)
        body = b",".join(self.workload_json(w) for w in chosen)
        return b'{"workloads": [' + body + b'], "continue": ' + json.dumps(token).encode() + b"}"
