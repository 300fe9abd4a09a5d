"""What the REST API, the CLI and the sidebar show of allocation: per project (allocated, fair
share), per node and device (which pods hold what), per workload (GPUs asked for and held), and
each pending workload's place in its project's queue.

Pure functions of the state they are given (the service passes its workloads, projects, nodes
and metrics): they read nothing else and change nothing but ``status.queue_position``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .clusters.base import DeviceMetrics
from .models import Node, NodePool, Project, Workload
from .snapshot import HOLDING, node_pool_of


def mark_queue_positions(workloads: Mapping[str, Workload], seq: Mapping[str, int]) -> None:
    """Set each queued workload's ``status.queue_position``: its place among its project's pending
    workloads that hold no device yet, by priority (higher first), then by submission; None for
    every other workload (a workspace or endpoint placed and waiting for its server is not queued)."""
    queues: dict[str, list[tuple[int, int, Any]]] = {}
    for uid, workload in workloads.items():
        placed = any(pod.phase in HOLDING for pod in workload.status.pods)
        if workload.status.phase == "Pending" and not placed:
            queues.setdefault(workload.spec.project, []).append(
                (-workload.spec.priority, seq.get(uid, 0), workload))
        else:
            workload.status.queue_position = None
    for entries in queues.values():
        entries.sort(key=lambda entry: entry[:2])
        for position, (_, _, workload) in enumerate(entries, 1):
            workload.status.queue_position = position


def project_views(workloads: Iterable[Workload], projects: Iterable[Project],
                  fair_share: Mapping[str, Mapping[str, float]]) -> list[dict[str, Any]]:
    """Each project with deserved, limit, allocated (GPUs its pods hold now), fair share
    (from the last cycle) and its number of workloads."""
    allocated: dict[str, float] = {}
    counts: dict[str, int] = {}
    for workload in workloads:
        project = workload.spec.project
        held = sum(p.gpus for p in workload.status.pods if p.phase in HOLDING)
        allocated[project] = allocated.get(project, 0.0) + held
        counts[project] = counts.get(project, 0) + 1
    out = []
    for project in projects:
        view = project.model_dump(mode="json")
        view["allocated"] = {"gpu": round(allocated.get(project.name, 0.0), 4)}
        fair = fair_share.get(project.name)
        view["fair_share"] = {"gpu": round(fair["gpu"], 4)} if fair else None
        view["workloads"] = counts.get(project.name, 0)
        out.append(view)
    return out


def node_views(workloads: Iterable[Workload], nodes: Iterable[Node], metrics: Iterable[DeviceMetrics],
               node_pools: list[NodePool]) -> list[dict[str, Any]]:
    """Each node with its pool and devices; each device with what is allocated on it (by pod)
    and, where NVML measures it, its memory use and utilization."""
    held: dict[tuple[str, int], list[tuple[str, float, int | None]]] = {}
    for workload in workloads:
        for pod in workload.status.pods:
            if pod.phase in HOLDING and pod.node:
                for device in pod.devices:
                    held.setdefault((pod.node, device), []).append(
                        (f"{workload.spec.project}/{pod.name}", pod.fraction or 1.0, pod.gpu_memory))
    by_device = {(m.node, m.index): m for m in metrics}
    out = []
    for node in nodes:
        view = node.model_dump(mode="json")
        devices = []
        for device in node.devices:
            pods = held.get((node.name, device.index), [])
            m = by_device.get((node.name, device.index))
            d = device.model_dump(mode="json")
            d.update(
                allocated_fraction=round(min(1.0, sum(f for _, f, _ in pods)), 4),
                allocated_memory=int(sum(mem if mem else f * device.memory for _, f, mem in pods)),
                used_memory=m.used_memory if m else None,
                utilization=m.utilization if m else None,
                pods=[{"pod": name, "fraction": f} for name, f, _ in pods],
            )
            devices.append(d)
        view["devices"] = devices
        view["pool"] = node_pool_of(node, node_pools)
        out.append(view)
    return out


def workload_gpu_views(workloads: Iterable[Workload]) -> list[dict[str, Any]]:
    """Each live (not finished) workload with the GPUs it asks for (``requested``: None for a
    gpu_memory request, which becomes GPUs only once placed), the GPUs its pods hold
    (``allocated``) and each pod that holds devices (name, node, devices, gpus)."""
    out = []
    for workload in workloads:
        if workload.status.phase.is_finished:
            continue
        spec = workload.spec
        try:
            requested: float | None = round(sum(spec.pod_resources(i).total_gpus() for i in range(spec.pod_count)), 4)
        except ValueError:
            requested = None
        pods = [{"name": p.name, "node": p.node, "devices": list(p.devices), "gpus": round(p.gpus, 4)}
                for p in workload.status.pods if p.phase in HOLDING and p.node]
        out.append({"uid": workload.uid, "name": spec.name, "kind": spec.kind.value, "project": spec.project,
                    "user": workload.submitted_by, "phase": workload.status.phase.value, "requested": requested,
                    "allocated": round(sum(p["gpus"] for p in pods), 4), "pods": pods})
    return out
