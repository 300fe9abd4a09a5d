"""The fair share that views and metrics show when no cycle divided it.

When nothing waits, the service skips the scheduling engine (no action would do anything), and
with it the fair-share division. The shares still change as work ends, starts or moves and as
quotas change, so such a cycle leaves an :class:`IdleFairShare` in ``service.fair_share``: it
divides the cluster among the jobs of that cycle (:func:`jupyter_runai.scheduler.shares.fair_shares`,
pure) the first time a view or a scrape reads it, and keeps the result until the next cycle.
Before the first cycle, :func:`before_first_cycle` does the same with the service's state then.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping

from .models import Department, NodePool, Project
from .models.cluster import Node
from .scheduler import Job
from .scheduler.shares import fair_shares
from .snapshot import build_snapshot

__all__ = ["IdleFairShare", "Inputs"]

log = logging.getLogger(__name__)

#: what a division needs: nodes, jobs, node pools, (projects, departments), the time
Inputs = tuple[list[Node], list[Job], list[NodePool], tuple[list[Project], list[Department]], float]


class IdleFairShare(Mapping[str, dict[str, float]]):
    """``{project or department: {"gpu", "cpu", "memory": fair share}}``, divided when first read
    from what ``inputs()`` returns then."""

    def __init__(self, inputs: Callable[[], Inputs]) -> None:
        self._inputs: Callable[[], Inputs] | None = inputs
        self._shares: dict[str, dict[str, float]] | None = None

    def _computed(self) -> dict[str, dict[str, float]]:
        if self._shares is None:
            try:
                nodes, jobs, pools, (projects, departments), now = self._inputs()  # type: ignore[misc]
                known = {p.name for p in projects}  # read now: a project deleted since that cycle is gone
                self._shares = fair_shares(build_snapshot(
                    nodes=nodes, pools=pools, departments=departments, projects=projects,
                    jobs=[j for j in jobs if j.queue in known], now=now))
            except Exception:  # a view must not fail for it: no fair share shown until the next cycle
                log.exception("could not divide the fair share of an idle cycle")
                self._shares = {}
            self._inputs = None  # nothing held once divided
        return self._shares

    def __getitem__(self, name: str) -> dict[str, float]:
        return self._computed()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._computed())

    def __len__(self) -> int:
        return len(self._computed())
