"""KAI-Scheduler's queues as the service's departments and projects (opt-in on Kubernetes:
``c.KubernetesCluster.kai_queues``; ``clusters/kube_queues.py`` reads and converts them). A mixin
of :class:`~jupyter_runai.service.RunaiService`: at each change of the Queue objects, the
departments and projects they make are written to the store, so every view, the admission and
the engine see them as any other; the store remembers which ones came from KAI
(``kai_queues`` table), so that a later change updates or removes those, and only those.

* The queue file's and the API's own departments and projects keep working. A KAI queue whose
  name is one of theirs is left out, with a log line naming both (a conflict).
* A KAI queue that is gone takes its project or department with it, unless workloads (or, for
  a department, projects that are not KAI's) still use it: it stays, with a log line, and is
  removed once they are gone (tried again every 30 s).
* What KAI's objects say wins over edits through the API at the next change of the objects.
"""

from __future__ import annotations

import logging

from .store import InUse, NotFound

__all__ = ["KaiQueueSync"]

log = logging.getLogger(__name__)

RETRY_SECONDS = 30.0  # a gone queue still in use: its removal is tried again this often


class KaiQueueSync:
    """Mixin of the service: KAI's Queue objects kept in the store as departments and projects."""

    _kai_version: int | None = None
    _kai_retry_at: float | None = None  # while a gone queue is in use: when its removal is tried again

    def _sync_kai_queues(self) -> None:
        read = getattr(self.cluster, "kai_queue_config", None)
        found = read() if callable(read) else None
        if found is None:
            return
        now = self._now().timestamp()
        if found[0] == self._kai_version and (self._kai_retry_at is None or now < self._kai_retry_at):
            return
        version, config = found
        store = self.store
        ours = store.kai_queue_names()
        departments = {d.name for d in store.departments()}
        projects = {p.name for p in store.projects()}
        for problem in config.problems:
            log.warning("KAI queues: %s", problem)
        wanted = {"department": set(), "project": set()}
        for kind, items, existing, put in (("department", config.departments, departments, store.put_department),
                                           ("project", config.projects, projects, store.put_project)):
            for item in items:
                if item.name in existing and item.name not in ours[kind]:
                    log.warning("KAI queue %s left out: %s %s is defined by the queue file or the API, which win "
                                "(rename one of them)", item.name, kind, item.name)
                    continue
                put(item)
                store.mark_kai_queue(kind, item.name, True)
                wanted[kind].add(item.name)
        left = False
        for kind, remove in (("project", store.delete_project), ("department", store.delete_department)):
            for name in sorted(ours[kind] - wanted[kind]):
                try:
                    remove(name)
                except NotFound:
                    pass
                except InUse as exc:
                    log.warning("KAI queue %s is gone, but %s %s stays while it is in use: %s", name, kind, name, exc)
                    left = True
                    continue
                store.mark_kai_queue(kind, name, False)
        self._queues_read = None  # the cycle reads the new tree
        self._kai_version = version
        self._kai_retry_at = now + RETRY_SECONDS if left else None
