"""Requests that can never run: the checks admission makes before a workload is queued.

Pure functions (no I/O, no clock): given a workload spec, the cluster's nodes, the
node pools and the workload's project and department, :func:`never_runs` lists why
the workload could not start even on an empty cluster:

* a pod asks for more whole GPUs, or a fraction on more devices, than any node
  (of the workload's node pools) has;
* a pod asks for more GPU memory than any device has;
* a pod asks for more CPU or memory than any node has;
* no node has all of a pod's request at once (each part fits somewhere, not together);
* the workload's gang minimum (all pods for training and workspaces, ``min_available``
  for distributed, ``min_replicas`` for inference) asks for more than its project's or
  department's limit, in every node pool it may use.

Each problem names the field at fault and what is allowed, in the REST error shape.
A cluster that has no node at all (starting, or scaled to zero) has no shape to judge
against: only the limits are checked then. The submitter may queue such a workload anyway (``queue_anyway: true``), e.g. when
nodes are about to join or a limit is about to be raised.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

from .models import Department, Node, NodePool, Project, Resources, WorkloadSpec
from .models.quantity import format_cpu, format_memory
from .snapshot import DEFAULT_POOL, node_pool_of

__all__ = ["Problem", "never_runs"]


@dataclass(frozen=True)
class Problem:
    """One reason a workload can never run: the field, the message, what is allowed."""

    field: str
    message: str
    allowed: str

    def as_item(self) -> dict[str, str]:
        return {"field": self.field, "message": f"{self.field}: {self.message}", "allowed": self.allowed}


def _memory_read(num_bytes: int) -> str:
    """A node's memory as a bound people read: exact, and where the exact quantity is a long
    number (a machine's 24683772Ki), with about how much that is: '24683772Ki, about 23.5Gi'."""
    exact = format_memory(num_bytes)
    if len(exact) <= 6:
        return exact
    for suffix, size in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if num_bytes >= size:
            return f"{exact}, about {num_bytes / size:.1f}{suffix}"
    return exact


def _gpus(value: float) -> str:
    return f"{value:g}"


def _where(pools: list[str]) -> str:
    if not pools:
        return "on one node"
    return f"on one node of node pool{'s' if len(pools) > 1 else ''} {', '.join(pools)}"


def _pod_problems(prefix: str, res: Resources, nodes: list[Node], where: str) -> list[Problem]:
    """Why a pod with ``res`` fits no node of ``nodes`` (an empty list when one node takes it)."""
    problems: list[Problem] = []
    most_devices = max((len(n.devices) for n in nodes), default=0)
    if res.requests_gpu:
        wanted = res.device_count
        field = f"{prefix}.gpu_devices" if res.is_fractional and res.gpu_devices else f"{prefix}.gpu"
        if res.gpu_memory is not None and not res.gpu_devices:
            field = f"{prefix}.gpu_memory"
        if most_devices == 0:
            scope = where.replace("on one node", "no node")
            problems.append(Problem(field, f"asks for GPUs, but {scope} has a GPU",
                                    f"no GPU request (gpu: 0): {scope} has a GPU"))
        elif wanted > most_devices:
            what = "whole GPUs" if not res.is_fractional else "devices with a share each"
            problems.append(Problem(field, f"asks for {wanted} {what}, but the most {where} is {most_devices}",
                                    f"at most {most_devices} (the most {where})"))
    if res.gpu_memory is not None and most_devices:
        largest = max(d.memory for n in nodes for d in n.devices)
        if res.gpu_memory > largest:
            problems.append(Problem(f"{prefix}.gpu_memory",
                                    f"asks for {format_memory(res.gpu_memory)} of one device, but the largest device "
                                    f"{where.replace('on one node', 'on any node')} has {format_memory(largest)}",
                                    f"at most {format_memory(largest)} (the largest device)"))
    for name, fmt in (("cpu", format_cpu), ("memory", _memory_read)):
        asked = getattr(res, name)
        most = max((getattr(n, name) for n in nodes), default=0)
        if asked > most:
            problems.append(Problem(f"{prefix}.{name}", f"asks for {fmt(asked)}, but the most {where} is {fmt(most)}",
                                    f"at most {fmt(most)} (the most {where})"))
    if problems or not nodes:
        return problems
    if not any(_fits(res, node) for node in nodes):
        problems.append(Problem(prefix, f"each part fits some node, but no node has all of it at once ({where})",
                                "a request that one node holds whole: fewer GPUs, less CPU or less memory"))
    return problems


def _fits(res: Resources, node: Node) -> bool:
    """Whether an empty ``node`` holds a pod with ``res``."""
    if res.cpu > node.cpu or res.memory > node.memory:
        return False
    if not res.requests_gpu:
        return True
    devices = node.devices
    if res.gpu_memory is not None:
        devices = [d for d in devices if d.memory >= res.gpu_memory]
    return len(devices) >= res.device_count


def _limit_problems(spec: WorkloadSpec, queues: list[Project | Department], pools: list[str],
                    device_memory: int | None) -> list[Problem]:
    """The gang minimum against the limits of the project and its department, in the pool whose
    limits are widest (a limit must be broken in every pool the workload may use)."""
    count = spec.min_pods
    if device_memory is None and any(spec.pod_resources(i).gpu_memory is not None for i in range(count)):
        return []  # no device to measure it by: the pod check has said so already
    total = {
        "gpu": sum(spec.pod_resources(i).total_gpus(device_memory) for i in range(count)),
        "cpu": sum(spec.pod_resources(i).cpu for i in range(count)),
        "memory": sum(spec.pod_resources(i).memory for i in range(count)),
    }
    fmt = {"gpu": _gpus, "cpu": format_cpu, "memory": format_memory}
    problems: list[Problem] = []
    for resource, asked in total.items():
        if asked <= 0:
            continue
        best: Optional[tuple[float, str]] = None  # the widest limit among the pools: (limit, whose)
        for pool in pools or [DEFAULT_POOL]:
            tightest: Optional[tuple[float, str]] = None
            for queue in queues:
                own = queue.node_pools.get(pool)  # quota_in's rule, without building a QueueQuota
                limit = getattr((own if own is not None else queue).limit, resource)
                if limit is not None and (tightest is None or limit < tightest[0]):
                    kind = "project" if isinstance(queue, Project) else "department"
                    tightest = (limit, f"{kind} {queue.name!r}")
            if tightest is None:  # no limit in this pool: it can run there
                best = None
                break
            if best is None or tightest[0] > best[0]:
                best = tightest
        if best is None or asked <= best[0] + 1e-9:
            continue
        limit, whose = best
        pods = f"its {count} pods together" if count > 1 else "it"
        problems.append(Problem(
            f"resources.{resource}",
            f"{pods} ask for {fmt[resource](asked)} {'GPUs' if resource == 'gpu' else resource}, above the limit "
            f"of {whose} ({fmt[resource](limit)}): it could never start",
            f"at most {fmt[resource](limit)} in all ({whose} limit)"))
    return problems


def distinct_nodes(nodes: Iterable[Node], pools: Iterable[NodePool]) -> list[Node]:
    """One node of each shape (its node pool, CPU, memory and device memories): what
    :func:`never_runs` judges is the same for every node of a shape, and a cluster of
    hundreds of nodes has a handful of shapes."""
    pools = list(pools)
    seen: dict[tuple, Node] = {}
    for node in nodes:
        key = (node_pool_of(node, pools), node.cpu, node.memory, tuple(sorted(d.memory for d in node.devices)))
        seen.setdefault(key, node)
    return list(seen.values())


def never_runs(spec: WorkloadSpec, nodes: Iterable[Node], pools: Iterable[NodePool], project: Project,
               department: Department | None) -> list[Problem]:
    """Every reason ``spec`` could never start on these nodes within these limits; empty when it may."""
    pools = list(pools)
    nodes = list(nodes)
    allowed = list(spec.node_pools)
    pool_of = {node.name: node_pool_of(node, pools) for node in nodes}
    if allowed:
        candidates = [n for n in nodes if pool_of[n.name] in allowed]
    else:
        candidates = nodes
    where = _where(allowed)
    problems: list[Problem] = []
    if nodes and not candidates:
        problems.append(Problem("node_pools", f"no node belongs to node pool{'s' if len(allowed) > 1 else ''} "
                                f"{', '.join(allowed)}",
                                f"node pools with nodes: {', '.join(sorted(set(pool_of.values())))}"))
        return problems
    shapes = {"resources": spec.resources}
    if spec.is_master(0) and spec.master_resources is not None:
        shapes = {"master_resources": spec.master_resources, **({"resources": spec.resources}
                                                                 if spec.pod_count > 1 else {})}
    if nodes:  # no node known at all (a cluster that is starting, or scaled to zero): no shape is judged
        for prefix, res in shapes.items():
            problems += _pod_problems(prefix, res, candidates, where)
    memories = [d.memory for n in candidates for d in n.devices]
    queues: list[Project | Department] = [project] + ([department] if department is not None else [])
    candidate_pools = sorted({pool_of[n.name] for n in candidates}) or allowed
    problems += _limit_problems(spec, queues, candidate_pools, max(memories) if memories else None)
    return problems
