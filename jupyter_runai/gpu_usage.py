"""What each workload does with the GPUs it holds, and a short history per device and per workload.

:func:`workload_usage` puts each live workload's allocation beside what NVML measures: per pod and
device, the utilization and memory of the pod's own processes (the cluster's ``pod_metrics``) or,
for a pod that holds a whole device, the device's; on a virtual GPU nothing is measured and
``virtual`` says so. :class:`UsageHistory` keeps the last ``length`` samples of each device and each
live workload, and of each project's allocation against its deserved quota and fair share, taken
every ``every_seconds`` of the service's clock, for charts. No I/O here: the
service passes what the cluster measured.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime
from typing import Any, Iterable

__all__ = ["UsageHistory", "workload_usage"]


def workload_usage(workloads: Iterable[dict[str, Any]], nodes: Iterable[Any], device_metrics: Iterable[Any],
                   pod_metrics: Iterable[Any] | None) -> list[dict[str, Any]]:
    """Each workload of ``workloads`` (:func:`jupyter_runai.allocation_views.workload_gpu_views`) with
    ``utilization`` (mean percent over its pods' devices, None unless every one is measured),
    ``used_memory`` (bytes, None when nothing is measured), ``virtual`` (a device it holds is a
    virtual GPU) and ``devices``: one entry per pod and device."""
    virtual = {(n.name, d.index): d.virtual for n in nodes for d in n.devices}
    device = {(m.node, m.index): m for m in device_metrics}
    by_pod = {(m.key, m.index): m for m in (pod_metrics or [])}
    out = []
    for view in workloads:
        entries = []
        for pod in view["pods"]:
            share = pod["gpus"] / len(pod["devices"]) if pod["devices"] else 0.0
            for index in pod["devices"]:
                mine = by_pod.get((f"{view['project']}/{pod['name']}", index))
                whole = device.get((pod["node"], index)) if share >= 1 else None
                utilization = mine.utilization if mine is not None else None
                memory = mine.used_memory if mine is not None else None
                if utilization is None and whole is not None:
                    utilization = whole.utilization  # the device is the pod's alone
                if memory is None and whole is not None:
                    memory = whole.used_memory
                entries.append({"pod": pod["name"], "node": pod["node"], "device": index, "share": round(share, 4),
                                "virtual": bool(virtual.get((pod["node"], index))),
                                "utilization": utilization, "used_memory": memory})
        known = [e["utilization"] for e in entries if e["utilization"] is not None]
        memories = [e["used_memory"] for e in entries if e["used_memory"] is not None]
        out.append({**{k: view[k] for k in ("uid", "project", "name", "kind", "user", "phase", "requested",
                                            "allocated")},
                    "utilization": round(sum(known) / len(known), 2) if entries and len(known) == len(entries)
                    else None,
                    "used_memory": sum(memories) if memories else None,
                    "virtual": any(e["virtual"] for e in entries), "devices": entries})
    return out


class UsageHistory:
    """The last ``length`` samples per device and per live workload, one every ``every_seconds``."""

    def __init__(self, every_seconds: float = 5.0, length: int = 120) -> None:
        self.every_seconds = every_seconds
        self.length = max(1, min(length, 10_000))
        self.devices: dict[tuple[str, int], deque] = {}
        self.workloads: dict[str, deque] = {}
        self.projects: dict[str, deque] = {}
        self._last: datetime | None = None

    def due(self, now: datetime) -> bool:
        return self._last is None or (now - self._last).total_seconds() >= self.every_seconds

    def sample(self, now: datetime, node_views: Iterable[dict[str, Any]], usage: Iterable[dict[str, Any]],
               project_views: Iterable[dict[str, Any]] = ()) -> None:
        """Add one sample of each device (from the nodes' views), each live workload (from
        :func:`workload_usage`) and each project (from the projects' views: allocated, deserved, fair
        share, and the GPU memory and mean utilization its workloads were measured at); the rings of
        what is gone are dropped."""
        self._last = now
        at = now.isoformat()
        seen_devices = set()
        for node in node_views:
            for d in node["devices"]:
                key = (node["name"], d["index"])
                seen_devices.add(key)
                self.devices.setdefault(key, deque(maxlen=self.length)).append({
                    "at": at, "allocated_fraction": d["allocated_fraction"], "utilization": d.get("utilization"),
                    "used_memory": d.get("used_memory")})
        for key in [k for k in self.devices if k not in seen_devices]:
            del self.devices[key]
        live = set()
        for workload in usage:
            live.add(workload["uid"])
            self.workloads.setdefault(workload["uid"], deque(maxlen=self.length)).append({
                "at": at, "allocated": workload["allocated"], "utilization": workload["utilization"],
                "used_memory": workload["used_memory"]})
        for uid in [u for u in self.workloads if u not in live]:
            del self.workloads[uid]
        usage = list(usage)
        seen_projects = set()
        for project in project_views:
            name = project["name"]
            seen_projects.add(name)
            mine = [w for w in usage if w["project"] == name and w["allocated"]]
            measured = [w["utilization"] for w in mine if w["utilization"] is not None]
            self.projects.setdefault(name, deque(maxlen=self.length)).append({
                "at": at, "allocated": project["allocated"]["gpu"], "deserved": project["deserved"]["gpu"],
                "fair_share": (project.get("fair_share") or {}).get("gpu"),
                "utilization": round(sum(measured) / len(measured), 2) if mine and len(measured) == len(mine)
                else None})
        for name in [n for n in self.projects if n not in seen_projects]:
            del self.projects[name]
