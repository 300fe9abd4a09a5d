"""The service's monitoring: GPU accounting, each workload's GPU use and its history, the cycle-time
histogram and the eviction counts (docs/monitoring.md). A mixin of
:class:`~jupyter_runai.service.RunaiService`, which calls :meth:`Monitoring._init_monitoring` once,
:meth:`Monitoring._after_cycle` after each cycle and :meth:`Monitoring._count_eviction` per eviction;
the accounting itself is fed where workloads are saved or removed."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from prometheus_client import Histogram

from . import access, allocation_views
from .accounting import Accountant, report_group, report_period, report_range, usage_report
from .gpu_usage import UsageHistory, workload_usage

if TYPE_CHECKING:
    from .identity import User

log = logging.getLogger(__name__)

__all__ = ["CYCLE_BUCKETS", "Monitoring"]

CYCLE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Buckets (seconds) of the scheduling cycle's duration histogram (``/runai/metrics``)."""


class Monitoring:
    """Accounting, GPU use and the scheduler's own figures, over the service's store, cluster and clock."""

    def _init_monitoring(self, accounting_interval: float, usage_sample_interval: float, usage_history: int) -> None:
        store = self.store
        self.accounting = Accountant(store, lambda name: getattr(store.project(name), "department", None),
                                     every_seconds=accounting_interval)
        self.usage_history = UsageHistory(usage_sample_interval, usage_history)
        self.evictions: dict[tuple[str, str], int] = {}  # (project, eviction kind) -> evictions since start
        self.cycle_histogram = Histogram("runai_scheduling_cycle_duration_seconds", "Duration of scheduling cycles",
                                         registry=None, buckets=CYCLE_BUCKETS)

    def _after_cycle(self, seconds: float) -> None:
        """A cycle took ``seconds``: into the histogram; then the accounting and the GPU-use sample when due."""
        self.cycle_histogram.observe(seconds)
        self._account()
        self._sample_usage()

    def _count_eviction(self, project: str, kind: str) -> None:
        self.evictions[(project, kind)] = self.evictions.get((project, kind), 0) + 1

    def _account(self, force: bool = False) -> None:
        """Write the GPU accounting up to now, when it is due (``accounting_interval``) or forced;
        a failure is logged and retried next time (what is pending stays pending)."""
        now = self._now()
        if not (force or self.accounting.due(now)):
            return
        try:
            utilization = {(m.node, m.index): m.utilization for m in self.cluster.metrics()}
            pod_metrics = getattr(self.cluster, "pod_metrics", None)
            by_pod = {(m.key, m.index): m.utilization for m in pod_metrics()} if callable(pod_metrics) else None
            self.accounting.accrue(now, utilization, by_pod)
        except Exception:
            log.exception("could not write the GPU accounting")

    def _sample_usage(self) -> None:
        """Add a sample to the history rings of devices and workloads when one is due."""
        now = self._now()
        if not self.usage_history.due(now):
            return
        try:
            self.usage_history.sample(now, self.node_views(), self.workload_usage(), self.project_views())
        except Exception:
            log.exception("could not sample the GPUs' use")

    def workload_gpu_views(self) -> list[dict[str, Any]]:
        """Each live workload with the GPUs it asks for and holds, by pod."""
        return allocation_views.workload_gpu_views(self.workloads.values())

    def workload_usage(self, user: "User | None" = None, project: str | None = None) -> list[dict[str, Any]]:
        """Each live workload ``user`` may see (RBAC; ``None``: the service itself) with its GPU
        allocation beside its measured utilization and memory
        (:func:`jupyter_runai.gpu_usage.workload_usage`), optionally of one project."""
        if project is not None:
            self.require(user, access.VIEW, project=project)  # type: ignore[attr-defined]
        visible = self.visible_projects(user)  # type: ignore[attr-defined]
        live = [v for v in self.workload_gpu_views() if (project is None or v["project"] == project)
                and (visible is None or v["project"] in visible)]
        pod_metrics = getattr(self.cluster, "pod_metrics", None)
        return workload_usage(live, self.cluster.nodes(), self.cluster.metrics(),
                              pod_metrics() if callable(pod_metrics) and live else None)

    def workload_usage_history(self, user: "User | None", project: str | None = None) -> dict[str, Any]:
        """:meth:`workload_usage`, each with its recent ``samples`` (oldest first), and the sampling
        interval: ``{"every_seconds", "workloads"}``."""
        rings = self.usage_history.workloads
        return {"every_seconds": self.usage_history.every_seconds,
                "workloads": [{**w, "samples": list(rings.get(w["uid"], ()))}
                              for w in self.workload_usage(user, project)]}

    def device_usage_history(self, user: "User | None") -> dict[str, Any]:
        """Each device with its recent ``samples`` (allocated fraction, utilization, used memory), for
        a caller who may see nodes: ``{"every_seconds", "devices"}``."""
        self.require(user, access.VIEW_NODES)  # type: ignore[attr-defined]
        rings = self.usage_history.devices
        return {"every_seconds": self.usage_history.every_seconds,
                "devices": [{"node": n.name, "index": d.index, "virtual": d.virtual, "memory": d.memory,
                             "samples": list(rings.get((n.name, d.index), ()))}
                            for n in self.cluster.nodes() for d in n.devices]}

    def project_usage_history(self, user: "User | None") -> dict[str, Any]:
        """Each project ``user`` may see with its recent ``samples``: GPUs allocated, deserved and fair
        share, and the mean utilization of its workloads holding GPUs (None unless all are measured):
        ``{"every_seconds", "projects"}``."""
        rings = self.usage_history.projects
        visible = self.visible_projects(user)  # type: ignore[attr-defined]
        return {"every_seconds": self.usage_history.every_seconds,
                "projects": [{"name": p.name, "samples": list(rings.get(p.name, ()))} for p in self.store.projects()
                             if visible is None or p.name in visible]}

    def usage_report(self, user: "User", first: str | None = None, last: str | None = None,
                     by: str | None = None, per: str | None = None) -> dict[str, Any]:
        """GPU-hours allocated and used per day (or in total) and per project, user, department or
        workload, deleted workloads included (:mod:`jupyter_runai.accounting`). An admin sees
        everyone's (a role held on the whole cluster); anyone else their own workloads'."""
        start, end = report_range(first, last, self._now().date())
        by, per = report_group(by), report_period(per)  # refused before anything is written
        self._account(force=True)
        everyone = self.visible_projects(user) is None  # type: ignore[attr-defined]
        rows = self.store.usage(start.isoformat(), end.isoformat(), None if everyone else user.name)
        return usage_report(rows, by, start, end, per)
