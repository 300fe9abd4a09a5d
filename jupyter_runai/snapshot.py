"""From the service's models to the engine's snapshot (and nothing else).

The service owns workloads, projects and nodes as pydantic models; the engine
(``jupyter_runai.scheduler``) takes plain dataclasses in its own units. This module
is the one translation between the two. It is pure: no store, no cluster, no clock
(``now`` comes in as an argument).

Names in the snapshot: a job is named by the workload's ``uid`` (unique even when a
name is reused), a pod by its key ``<project>/<workload>-<index>``, a project queue by
the project's name and a department queue by ``department/<name>`` (departments and
projects are separate namespaces: a ``default`` of each is the usual start).

CPU and memory quotas: a project or department whose ``deserved`` CPU (or memory)
is 0 and whose limit is unset does not manage that resource (the engine sees it as
unlimited), so that a first-time user's workloads are never held back by a CPU quota
nobody set. GPU quotas are always managed: a deserved of 0 GPUs means "only over
quota".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from .models import Department, Node, NodePool, PodPhase, Project, Workload
from .models.queues import DEFAULT_PREEMPT_MIN_RUNTIME, DEFAULT_RECLAIM_MIN_RUNTIME
from .models.resources import Resources
from .scheduler.types import UNLIMITED, Job, PlacementConfig, Pod, PodStatus, Queue, QueueResources, Snapshot
from .scheduler.types import Node as EngineNode

MIB = 1024 * 1024
DEFAULT_POOL = "default"
HOLDING = (PodPhase.RUNNING, PodPhase.TERMINATING)
"""Pod phases that hold devices (a terminating pod holds them until its process ends)."""

__all__ = ["ActivePod", "DEFAULT_POOL", "HOLDING", "build_snapshot", "engine_node", "node_pool_of", "pod_key"]


def pod_key(project: str, pod_name: str) -> str:
    """``<project>/<pod name>``: how the service and the cluster name a pod."""
    return f"{project}/{pod_name}"


def department_queue(name: str) -> str:
    """The engine's name for a department's queue."""
    return f"department/{name}"


def node_pool_of(node: Node, pools: list[NodePool]) -> str:
    """The first pool (in configuration order) whose selector the node matches; else ``default``."""
    for pool in pools:
        if pool.label_selector and pool.matches(node.labels):
            return pool.name
    return DEFAULT_POOL


def engine_node(node: Node, pools: list[NodePool]) -> EngineNode:
    """One node in the engine's units. All devices of a node are alike; the first one speaks for them."""
    first = node.devices[0] if node.devices else None
    return EngineNode(
        name=node.name,
        gpus=len(node.devices) if node.schedulable else 0,
        gpu_memory_mib=(first.memory / MIB) if first else 0.0,
        cpu_millis=float(node.cpu) if node.schedulable else 0.0,
        memory_bytes=float(node.memory) if node.schedulable else 0.0,
        labels=dict(node.labels),
        pool=node_pool_of(node, pools),
        gpu_model=first.model if first else "",
    )


def _block(deserved: float, limit: float | None, weight: float, managed: bool) -> QueueResources:
    if not managed:
        return QueueResources(deserved=UNLIMITED, limit=UNLIMITED, weight=weight)
    return QueueResources(deserved=float(deserved), limit=UNLIMITED if limit is None else float(limit), weight=weight)


def _blocks(quota) -> dict[str, QueueResources]:
    d, lim, w = quota.deserved, quota.limit, float(quota.over_quota_weight)
    return {
        "gpu": _block(d.gpu, lim.gpu, w, True),
        "cpu": _block(d.cpu, lim.cpu, w, d.cpu > 0 or lim.cpu is not None),
        "memory": _block(d.memory, lim.memory, w, d.memory > 0 or lim.memory is not None),
    }


def engine_queue(queue: Department | Project, parent: str | None, order: int) -> Queue:
    """A department (no parent) or project as an engine queue, with its per-pool quota blocks."""
    return Queue(
        name=queue.name,
        parent=parent,
        priority=queue.priority,
        created_order=order,
        resources=_blocks(queue),
        pool_resources={pool: _blocks(quota) for pool, quota in queue.node_pools.items()},
        reclaim_min_runtime=queue.reclaim_min_runtime,
        preempt_min_runtime=queue.preempt_min_runtime,
    )


@dataclass(slots=True)
class ActivePod:
    """A pod the engine should know about, and where it stands."""

    index: int
    status: PodStatus  # PENDING, RUNNING or RELEASING
    node: str | None = None
    devices: list[int] | None = None
    started_at: float | None = None  # when it started running (epoch seconds), for minimum runtimes


def _engine_pod(key: str, index: int, res: Resources, active: ActivePod) -> Pod:
    gpus = 0
    fraction = None
    memory_mib = None
    devices_count = 1
    if res.is_fractional:
        devices_count = res.gpu_devices or 1
        if res.gpu_memory is not None:
            memory_mib = res.gpu_memory / MIB
        else:
            fraction = float(res.gpu)
    elif res.gpu:
        gpus = int(res.gpu)
    return Pod(
        name=key,
        index=index,
        gpus=gpus,
        gpu_fraction=fraction,
        gpu_memory_mib=memory_mib,
        gpu_devices=devices_count,
        cpu_millis=float(res.cpu),
        memory_bytes=float(res.memory),
        status=active.status,
        node=active.node,
        devices=list(active.devices) if active.devices is not None else None,
        started_at=active.started_at,
    )


def engine_job(workload: Workload, seq: int, pods: Iterable[ActivePod], being_deleted: bool = False) -> Job:
    """A workload as an engine job with the given pods (pending and placed ones)."""
    spec = workload.spec
    return Job(
        name=workload.uid,
        queue=spec.project,
        priority=spec.priority,
        preemptible=workload.preemptible,
        min_available=spec.min_pods,
        created_order=seq,
        pods=[_engine_pod(pod_key(spec.project, spec.pod_name(p.index)), p.index, spec.pod_resources(p.index), p)
              for p in pods],
        node_pools=list(spec.node_pools) or None,
        being_deleted=being_deleted,
    )


def active_pods(workload: Workload, desired: int) -> list[ActivePod]:
    """The pods the engine sees for a live workload: every pod that holds devices
    (running or terminating), and the pending pods among the first ``desired``."""
    out: list[ActivePod] = []
    phases = {pod.index: pod for pod in workload.status.pods}
    for index in range(max(desired, max(phases, default=-1) + 1)):
        pod = phases.get(index)
        if pod is not None and pod.node and pod.phase == PodPhase.RUNNING:
            started = pod.started_at.timestamp() if pod.started_at is not None else None
            out.append(ActivePod(index, PodStatus.RUNNING, pod.node, list(pod.devices), started))
        elif pod is not None and pod.node and pod.phase == PodPhase.TERMINATING:
            out.append(ActivePod(index, PodStatus.RELEASING, pod.node, list(pod.devices)))
        elif index < desired and (pod is None or pod.phase == PodPhase.PENDING):
            out.append(ActivePod(index, PodStatus.PENDING))
    return out


def build_snapshot(
    *,
    nodes: list[Node],
    pools: list[NodePool],
    departments: list[Department],
    projects: list[Project],
    jobs: list[Job],
    now: float,
    reclaim_min_runtime: float = DEFAULT_RECLAIM_MIN_RUNTIME,
    preempt_min_runtime: float = DEFAULT_PREEMPT_MIN_RUNTIME,
    workload_mix: list[Job] | None = None,
) -> Snapshot:
    """The engine's view of everything: nodes, the queue tree and the jobs. ``now`` is
    on the clock of the pods' start times (epoch seconds); the minimum runtimes are the
    defaults for queues that set none; ``workload_mix``: recent workloads whose pod shapes
    the fragmentation-aware placement expects."""
    queues: list[Queue] = []
    for order, dept in enumerate(departments):
        queue = engine_queue(dept, None, order)
        queue.name = department_queue(dept.name)
        queues.append(queue)
    known = {d.name for d in departments}
    for order, project in enumerate(projects):
        parent = department_queue(project.department) if project.department in known else None
        queues.append(engine_queue(project, parent, order))
    pool_config = {
        pool.name: PlacementConfig(gpu=pool.gpu_placement.value, cpu=pool.cpu_placement.value,
                                   device=pool.device_placement.value)
        for pool in pools
    }
    return Snapshot(
        nodes=[engine_node(n, pools) for n in nodes],
        queues=queues,
        jobs=jobs,
        pool_config=pool_config,
        now=now,
        reclaim_min_runtime=reclaim_min_runtime,
        preempt_min_runtime=preempt_min_runtime,
        workload_mix=workload_mix or [],
    )
