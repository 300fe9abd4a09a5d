"""Reading Kubernetes objects: pure functions from the API server's JSON (plain dicts, as a
list or a watch returns them) to what the service understands.

No I/O and no ``kubernetes`` import: the backend (``clusters/kubernetes.py``) feeds these
from its caches, and tests feed them dicts.

* :func:`node_from` turns a Node and the usage of pods that are not ours on it into a
  :class:`~jupyter_runai.models.Node`: GPUs from ``nvidia.com/gpu`` allocatable, their model
  and memory from the GPU feature discovery labels, CPU and memory allocatable, less what
  other pods hold; cordoned, NotReady and tainted nodes take no new pods.
* :func:`pod_outcome` says what a pod's status means for the service, in plain words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..models import GpuDevice, Node
from ..models.quantity import parse_cpu, parse_memory
from .base import PodState

__all__ = [
    "LABEL_GPU_MEMORY",
    "LABEL_GPU_PRODUCT",
    "Outcome",
    "Usage",
    "is_ours",
    "node_blocked",
    "node_from",
    "pod_outcome",
    "pod_ready",
    "pod_usage",
]

GPU_RESOURCE = "nvidia.com/gpu"
LABEL_GPU_PRODUCT = "nvidia.com/gpu.product"  # GPU feature discovery: the product name
LABEL_GPU_MEMORY = "nvidia.com/gpu.memory"    # GPU feature discovery: MiB per device
LABEL_WORKLOAD_UID = "runai/workload-uid"
MIB = 1024 * 1024

#: container waiting reasons that mean the image will not come
IMAGE_PULL_FAILURES = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
                       "RegistryUnavailable"}
#: waiting reasons that mean the container cannot be created as given
START_FAILURES = {"CreateContainerConfigError", "CreateContainerError", "RunContainerError"}
#: taints GPU pods tolerate (the pod template says so): they do not close a GPU node
TOLERATED_TAINTS = {GPU_RESOURCE}


@dataclass(slots=True)
class Usage:
    """Resources held on a node: CPU in millicores, memory in bytes, whole GPUs."""

    cpu: int = 0
    memory: int = 0
    gpus: int = 0

    def add(self, other: "Usage") -> None:
        self.cpu += other.cpu
        self.memory += other.memory
        self.gpus += other.gpus


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("metadata") or {}


def is_ours(pod: dict[str, Any], scheduler_name: str) -> bool:
    """A pod this scheduler created: our scheduler name and a workload uid label."""
    return (pod.get("spec") or {}).get("schedulerName") == scheduler_name and \
        LABEL_WORKLOAD_UID in (_meta(pod).get("labels") or {})


def holds_resources(pod: dict[str, Any]) -> bool:
    """Bound to a node and not ended: what it requests is taken there."""
    phase = (pod.get("status") or {}).get("phase")
    return bool((pod.get("spec") or {}).get("nodeName")) and phase not in ("Succeeded", "Failed")


def pod_usage(pod: dict[str, Any]) -> Usage:
    """What a pod holds on its node: its containers' requests (the larger of the sum of the
    containers and any one init container, as the kubelet counts), GPUs from limits."""
    spec = pod.get("spec") or {}

    def one(container: dict[str, Any]) -> Usage:
        resources = container.get("resources") or {}
        requests = resources.get("requests") or {}
        limits = resources.get("limits") or {}
        gpus = requests.get(GPU_RESOURCE, limits.get(GPU_RESOURCE, 0))
        return Usage(
            cpu=parse_cpu(requests.get("cpu", limits.get("cpu", 0)), bounded=False),
            memory=parse_memory(requests.get("memory", limits.get("memory", 0)), bounded=False),
            gpus=int(gpus),
        )

    total = Usage()
    for container in spec.get("containers") or []:
        total.add(one(container))
    for container in spec.get("initContainers") or []:
        init = one(container)
        total = Usage(max(total.cpu, init.cpu), max(total.memory, init.memory), max(total.gpus, init.gpus))
    return total


def node_blocked(node: dict[str, Any]) -> str | None:
    """Why no new pod may go to this node (cordoned, not Ready, tainted), or None."""
    spec = node.get("spec") or {}
    if spec.get("unschedulable"):
        return "cordoned"
    conditions = (node.get("status") or {}).get("conditions") or []
    ready = next((c for c in conditions if c.get("type") == "Ready"), None)
    if ready is not None and ready.get("status") != "True":
        return "not Ready"
    for taint in spec.get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and taint.get("key") not in TOLERATED_TAINTS:
            return f"tainted {taint.get('key')}:{taint.get('effect')}"
    return None


def node_from(node: dict[str, Any], others: Usage | None = None, *, gpu_memory_fallback: int,
              gpu_model_fallback: str = "NVIDIA GPU") -> Node:
    """The node as the engine sees it: allocatable less what ``others`` (pods that are not
    ours) hold. A node reports as many devices as it has GPUs no other pod holds."""
    others = others or Usage()
    meta = _meta(node)
    name = meta["name"]
    labels = dict(meta.get("labels") or {})
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    gpus = max(0, int(allocatable.get(GPU_RESOURCE, 0) or 0) - others.gpus)
    try:
        memory = int(labels[LABEL_GPU_MEMORY]) * MIB
    except (KeyError, ValueError):
        memory = gpu_memory_fallback
    model = labels.get(LABEL_GPU_PRODUCT) or gpu_model_fallback
    devices = [GpuDevice(index=i, uuid=f"{name}/gpu-{i}", model=model, memory=memory) for i in range(gpus)]
    cpu = max(0, parse_cpu(allocatable.get("cpu", 0), bounded=False) - others.cpu)
    mem = max(0, parse_memory(allocatable.get("memory", 0), bounded=False) - others.memory)
    return Node(name=name, labels=labels, cpu=f"{cpu}m", memory=mem, devices=devices,
                schedulable=node_blocked(node) is None)


def pod_ready(pod: dict[str, Any]) -> bool:
    """The pod's Ready condition is True (its containers run and pass their probes)."""
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a pod's status means: ``state`` None while it is still starting."""

    state: PodState | None
    message: str | None = None
    exit_code: int | None = None


def _main_status(pod: dict[str, Any]) -> dict[str, Any]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return next((s for s in statuses if s.get("name") == "main"), statuses[0] if statuses else {})


def pod_outcome(pod: dict[str, Any]) -> Outcome:
    """Running, ended (and how, in words) or still starting (``state`` None)."""
    status = pod.get("status") or {}
    phase = status.get("phase")
    main = _main_status(pod)
    terminated = (main.get("state") or {}).get("terminated") or {}
    code = terminated.get("exitCode")
    if phase == "Succeeded":
        return Outcome(PodState.SUCCEEDED, "completed", 0 if code is None else code)
    if phase == "Failed":
        if status.get("reason") == "Evicted":
            return Outcome(PodState.FAILED, f"evicted by its node: {status.get('message') or 'no reason given'}", code)
        if terminated.get("reason") == "OOMKilled":
            return Outcome(PodState.FAILED, "killed: out of memory (over its memory limit)", code)
        if code is not None:
            return Outcome(PodState.FAILED, f"exited with code {code}", code)
        return Outcome(PodState.FAILED, status.get("message") or status.get("reason") or "failed", code)
    for container in [*(status.get("initContainerStatuses") or []), main]:
        waiting = (container.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        detail = waiting.get("message")
        if reason in IMAGE_PULL_FAILURES:
            image = container.get("image") or "its image"
            return Outcome(PodState.FAILED, f"image {image} cannot be pulled ({reason})"
                           + (f": {detail}" if detail else ""))
        if reason in START_FAILURES:
            return Outcome(PodState.FAILED, f"cannot start ({reason})" + (f": {detail}" if detail else ""))
        if reason == "CrashLoopBackOff":
            last = ((container.get("lastState") or {}).get("terminated") or {}).get("exitCode")
            return Outcome(PodState.FAILED, f"crash loop: restarted {container.get('restartCount', 0)} times"
                           + (f", last exit code {last}" if last is not None else ""), last)
    if phase == "Running":
        return Outcome(PodState.RUNNING)
    return Outcome(None)
