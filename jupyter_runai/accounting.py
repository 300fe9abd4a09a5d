"""GPU accounting: GPU-hours allocated (and used, where measured) per workload and UTC day, kept in
the store after the workload is deleted and across restarts; and the usage report built from it.

The service tells the :class:`Accountant` which workloads changed (:meth:`Accountant.observe`): a pod
that holds devices opens an interval, a pod that stopped holding them closes it. Every
``every_seconds`` of the service's clock (and before a report) :meth:`Accountant.accrue` adds what
the open and closed intervals held since the last time, split at UTC midnight, to the store, with
the time it is accounted up to. After a restart the pods still holding devices are accounted from
that time on, so nothing is counted twice.

Allocated GPU-seconds: the devices a pod holds times the share of each (1 for whole devices) times
the seconds it held them. Used GPU-seconds: per device, the utilization of the pod's own processes
(NVML per process), or the device's when the pod holds it whole, as sampled at accrual time, times
the seconds; only where every device of the pod is measured (a fraction of a device whose
processes are not measured is not), and counted apart (``measured``) so that a report can say how
much of the allocation was measured at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Callable, Iterable

from .errors import Invalid
from .models import Workload
from .snapshot import HOLDING

__all__ = ["Accountant", "GROUPS", "PERIODS", "report_group", "report_period", "report_range", "usage_report"]

GROUPS = ("project", "user", "department", "workload")
"""What a usage report groups by."""
PERIODS = ("day", "total")
"""A row per day, or one for the whole range."""
MAX_DAYS = 366
"""The longest span one report covers."""
MAX_ROWS = 10_000
"""The most rows one report returns (``truncated`` says when there were more)."""


@dataclass
class _Interval:
    start: datetime
    meta: dict[str, Any]  # workload_uid, project, department, user, workload, kind
    pod: str  # the pod's key, <project>/<pod>
    devices: list[tuple[str, int]]
    share: float  # of each device


def _day_slices(start: datetime, end: datetime) -> Iterable[tuple[str, float]]:
    """(UTC day, seconds) for the time from ``start`` to ``end``, split at midnight."""
    start, end = start.astimezone(timezone.utc), end.astimezone(timezone.utc)
    while start < end:
        midnight = datetime.combine(start.date() + timedelta(days=1), time(), tzinfo=timezone.utc)
        stop = min(end, midnight)
        yield start.date().isoformat(), (stop - start).total_seconds()
        start = stop


class Accountant:
    """Open intervals of the pods that hold devices, and what is to be added to the store."""

    def __init__(self, store, department_of: Callable[[str], str | None], every_seconds: float = 60.0,
                 keep_days: int = 400) -> None:
        self.store = store
        self.department_of = department_of
        self.every_seconds = every_seconds
        self.keep_days = keep_days
        self._open: dict[str, dict[str, _Interval]] = {}  # workload uid -> pod name -> interval
        self._pending: dict[tuple[str, str], dict[str, Any]] = {}  # (day, workload uid) -> row to add
        self._utilization: dict[tuple[str, int], float] = {}  # the last sample, (node, device) -> percent
        self._pod_utilization: dict[tuple[str, int], float] = {}  # the last sample, (pod key, device) -> percent
        self._since = store.accounted_until()  # what is in the store is accounted up to here

    def observe(self, workloads: Iterable[Workload], now: datetime) -> None:
        """Open an interval for each pod that holds devices now, close those of pods that no longer do
        (or hold other devices now: a new interval)."""
        departments: dict[str, str | None] = {}
        for workload in workloads:
            uid = workload.uid
            holding = {p.name: p for p in workload.status.pods if p.phase in HOLDING and p.devices and p.node}
            opened = self._open.get(uid, {})
            for name in [n for n, i in opened.items() if n not in holding or i.devices != self._devices(holding[n])
                         or i.share != (holding[n].fraction or 1.0)]:
                self._close(uid, name, now)
            for name, pod in holding.items():
                if name in self._open.get(uid, {}):
                    continue
                project = workload.spec.project
                if project not in departments:
                    departments[project] = self.department_of(project)
                # from its start, but never before what the store already accounts (a restart)
                start = max([t for t in (pod.started_at, self._since) if t is not None], default=now)
                meta = {"workload_uid": uid, "project": project, "department": departments[project],
                        "user": workload.submitted_by, "workload": workload.spec.name,
                        "kind": workload.spec.kind.value}
                self._open.setdefault(uid, {})[name] = _Interval(min(start, now), meta, f"{project}/{name}",
                                                                 self._devices(pod), pod.fraction or 1.0)

    @staticmethod
    def _devices(pod) -> list[tuple[str, int]]:
        return [(pod.node, d) for d in pod.devices]

    def removed(self, uid: str, now: datetime) -> None:
        """The workload is gone: whatever of it was still open ends now."""
        for name in list(self._open.get(uid, ())):
            self._close(uid, name, now)

    def _close(self, uid: str, name: str, now: datetime) -> None:
        pods = self._open[uid]
        interval = pods.pop(name)
        if not pods:
            del self._open[uid]
        self._add(interval, interval.start, now)

    def _add(self, interval: _Interval, start: datetime, end: datetime) -> None:
        gpus = interval.share * len(interval.devices)
        measured = []
        for node, index in interval.devices:
            own = self._pod_utilization.get((interval.pod, index))
            if own is None and interval.share >= 1:
                own = self._utilization.get((node, index))  # the device is the pod's alone
            measured.append(own)
        use = None if any(u is None for u in measured) else sum(min(100.0, max(0.0, u)) for u in measured) / 100.0
        for day, seconds in _day_slices(start, end):
            row = self._pending.setdefault((day, interval.meta["workload_uid"]), {
                "day": day, **interval.meta, "allocated_gpu_seconds": 0.0, "measured_gpu_seconds": 0.0,
                "used_gpu_seconds": 0.0})
            row["allocated_gpu_seconds"] += gpus * seconds
            if use is not None:
                row["measured_gpu_seconds"] += gpus * seconds
                row["used_gpu_seconds"] += use * seconds

    def due(self, now: datetime) -> bool:
        """Time to write what was held since the last accrual."""
        return self._since is None or (now - self._since).total_seconds() >= self.every_seconds

    def accrue(self, now: datetime, utilization: dict[tuple[str, int], float | None],
               pod_utilization: dict[tuple[str, int], float | None] | None = None) -> None:
        """Write to the store what the pods held up to ``now`` (``utilization``: each device's percent
        now by (node, index); ``pod_utilization``: each pod's processes' percent of a device by (pod
        key, index); None where not measured)."""
        self._utilization = {k: v for k, v in utilization.items() if v is not None}
        self._pod_utilization = {k: v for k, v in (pod_utilization or {}).items() if v is not None}
        for interval in (i for pods in self._open.values() for i in pods.values()):
            if interval.start < now:
                self._add(interval, interval.start, now)
                interval.start = now
        if self._since is not None and now < self._since:
            now = self._since
        self.store.add_usage(list(self._pending.values()), now, self.keep_days)
        self._pending.clear()
        self._since = now


def report_range(first: str | None, last: str | None, today: date) -> tuple[date, date]:
    """The days a report covers: ``first`` to ``last`` (ISO dates, both included; default the
    last 7 days up to ``today``); :class:`Invalid` naming the field otherwise."""
    def parse(field: str, value: str | None, default: date) -> date:
        if not value:
            return default
        try:
            if len(value) != 10:
                raise ValueError(value)
            return date.fromisoformat(value)
        except ValueError:
            raise Invalid(f"{field}={value[:40]!r} is not a date; allowed: YYYY-MM-DD", field=field,
                          allowed="YYYY-MM-DD") from None
    end = parse("to", last, today)
    start = parse("from", first, end - timedelta(days=6))
    if start > end:
        raise Invalid(f"the first day ({start}) is after the last ({end})", field="from",
                      allowed=f"a day up to {end}")
    if (end - start).days >= MAX_DAYS:
        raise Invalid(f"a report covers at most {MAX_DAYS} days; from {start} to {end} is {(end - start).days + 1}",
                      field="from", allowed=f"a day from {end - timedelta(days=MAX_DAYS - 1)}")
    return start, end


def report_group(by: str | None) -> str:
    """What a report groups by (default project); :class:`Invalid` naming ``by`` otherwise."""
    group = (by or "project").lower()
    if group not in GROUPS:
        raise Invalid(f"by={group[:40]!r} is not one of {', '.join(GROUPS)}", field="by", allowed=list(GROUPS))
    return group


def report_period(per: str | None) -> str:
    """A row per ``day`` (default) or one ``total`` for the range; :class:`Invalid` naming ``per`` otherwise."""
    period = (per or "day").lower()
    if period not in PERIODS:
        raise Invalid(f"per={period[:40]!r} is not one of {', '.join(PERIODS)}", field="per", allowed=list(PERIODS))
    return period


def usage_report(rows: list[dict[str, Any]], by: str | None, first: date, last: date,
                 per: str | None = None) -> dict[str, Any]:
    """The store's per-workload rows summed per day (``per="total"``: over the whole range) and per
    ``by`` (project, user, department or workload), GPU-hours rounded to 1/10000: ``gpu_hours_allocated``,
    ``gpu_hours_used`` (None when none of it was measured) and ``gpu_hours_measured`` (the allocation
    whose utilization was measured)."""
    by, per = report_group(by), report_period(per)
    keys = ("project", "workload") if by == "workload" else (by,)
    sums: dict[tuple, list[float]] = {}
    for row in rows:
        group = (row["day"] if per == "day" else None, *(row[k] for k in keys))
        total = sums.setdefault(group, [0.0, 0.0, 0.0])
        total[0] += row["allocated_gpu_seconds"]
        total[1] += row["measured_gpu_seconds"]
        total[2] += row["used_gpu_seconds"]
    out = []
    for group, (allocated, measured, used) in sorted(sums.items(), key=lambda item: tuple(str(v) for v in item[0])):
        entry = {**({"day": group[0]} if per == "day" else {}), **dict(zip(keys, group[1:]))}
        entry["gpu_hours_allocated"] = round(allocated / 3600, 4)
        entry["gpu_hours_used"] = round(used / 3600, 4) if measured > 0 else None
        entry["gpu_hours_measured"] = round(measured / 3600, 4)
        out.append(entry)
    return {"from": first.isoformat(), "to": last.isoformat(), "by": by, "per": per, "rows": out[:MAX_ROWS],
            "truncated": len(out) > MAX_ROWS}
