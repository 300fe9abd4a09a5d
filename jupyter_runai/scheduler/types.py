"""The engine's input (a snapshot of the cluster) and output (decisions).

These are plain, slotted dataclasses rather than pydantic models: the engine builds
and walks tens of thousands of them per cycle, and validation already happened at the
boundary (``jupyter_runai.models``). Units are the engine's own, fixed everywhere:

* GPU: devices (a float below 1 is a fraction of one device);
* GPU memory: MiB, converted to a fraction against the memory of the device it lands on;
* CPU: millicores;
* memory: bytes.

In quota blocks ``UNLIMITED`` (-1) means "no quota / no limit" exactly as in
KAI-Scheduler's Queue resources; a ``limit`` of ``None`` is also "no limit".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

UNLIMITED = -1.0
RESOURCES = ("gpu", "cpu", "memory")


class PodStatus(str, Enum):
    """Where a pod stands. ``ALLOCATED`` is a bind decided in this cycle."""

    PENDING = "pending"
    RUNNING = "running"
    ALLOCATED = "allocated"
    PIPELINED = "pipelined"
    RELEASING = "releasing"


@dataclass(slots=True)
class Node:
    """A node and its GPU devices. All devices of a node are alike."""

    name: str
    gpus: int = 0
    gpu_memory_mib: float = 0.0
    cpu_millis: float = 0.0
    memory_bytes: float = 0.0
    labels: dict[str, str] = field(default_factory=dict)
    pool: str = "default"
    gpu_model: str = ""


@dataclass(slots=True)
class QueueResources:
    """Deserved (quota), limit and over-quota weight of one resource."""

    deserved: float = 0.0
    limit: float = UNLIMITED
    weight: float = 1.0


@dataclass(slots=True)
class Queue:
    """A department (parent queue) or project (leaf queue).

    ``resources`` maps ``gpu``/``cpu``/``memory`` to their quota block; a missing
    resource has unlimited deserved and no limit. ``pool_resources`` maps a node pool
    to the queue's blocks in that pool; when any queue has one, quotas are divided per
    pool (see ``pools.py``) and a queue without a block for a pool uses ``resources``.
    """

    name: str
    parent: str | None = None
    priority: int = 100
    created_order: int = 0
    resources: dict[str, QueueResources] = field(default_factory=dict)
    pool_resources: dict[str, dict[str, QueueResources]] = field(default_factory=dict)
    #: seconds a job of this queue runs before it may be reclaimed by another queue /
    #: preempted inside its own; ``None`` inherits the parent's, then the snapshot's
    reclaim_min_runtime: float | None = None
    preempt_min_runtime: float | None = None


@dataclass(slots=True)
class Pod:
    """One pod (task) of a job.

    GPU request: ``gpus`` whole devices, or ``gpu_fraction`` of each of ``gpu_devices``
    devices, or ``gpu_memory_mib`` on each of ``gpu_devices`` devices.
    ``devices`` lists the device indices a placed pod holds (``None`` lets the engine
    pick any that fit when building the session, for snapshots that do not say).
    ``shared_group`` names a shared device for placed fractional pods when indices are
    unknown: pods on the same node with the same group share one device.
    """

    name: str
    index: int = 0
    gpus: int = 0
    gpu_fraction: float | None = None
    gpu_memory_mib: float | None = None
    gpu_devices: int = 1
    cpu_millis: float = 0.0
    memory_bytes: float = 0.0
    status: PodStatus = PodStatus.PENDING
    node: str | None = None
    devices: list[int] | None = None
    shared_group: str | None = None
    task_priority: int = 0
    node_affinity: dict[str, list[str]] | None = None
    #: when the pod last started running, on the clock of ``Snapshot.now`` (seconds);
    #: ``None``: unknown (no minimum-runtime protection)
    started_at: float | None = None

    @property
    def is_fractional(self) -> bool:
        return self.gpu_fraction is not None or self.gpu_memory_mib is not None


@dataclass(slots=True)
class Job:
    """A workload: its pods are scheduled together (gang of ``min_available``)."""

    name: str
    queue: str
    priority: int = 50
    preemptible: bool | None = None
    min_available: int | None = None
    created_order: int = 0
    pods: list[Pod] = field(default_factory=list)
    node_pools: list[str] | None = None
    being_deleted: bool = False

    @property
    def is_preemptible(self) -> bool:
        if self.preemptible is not None:
            return self.preemptible
        return self.priority < 100

    @property
    def gang_min(self) -> int:
        if self.min_available is None:
            return len(self.pods)
        return max(0, min(self.min_available, len(self.pods)))


@dataclass(slots=True)
class PlacementConfig:
    """Placement strategy (per resource kind) and fraction placement inside a node."""

    gpu: str = "fragmentation-aware"  # or "binpack", "spread"
    cpu: str = "binpack"  # or "spread"
    device: str = "pack"  # or "spread"


@dataclass(slots=True)
class Snapshot:
    nodes: list[Node]
    queues: list[Queue]
    jobs: list[Job]
    config: PlacementConfig = field(default_factory=PlacementConfig)
    pool_config: dict[str, PlacementConfig] = field(default_factory=dict)
    now: float = 0.0
    actions: tuple[str, ...] = ("allocate", "consolidate", "reclaim", "preempt", "stale_gang")
    #: minimum runtimes (seconds) for queues that set none up their tree: a running job
    #: younger than this is no reclaim / preempt victim (elastic pods above the gang
    #: minimum excepted); 0 = no protection
    reclaim_min_runtime: float = 0.0
    preempt_min_runtime: float = 0.0
    #: the workloads submitted recently, in any state (finished ones included): the pod
    #: shapes the ``fragmentation-aware`` placement expects to keep arriving. Empty: it
    #: expects the shapes of the snapshot's own pending and running pods
    workload_mix: list[Job] = field(default_factory=list)


# ----------------------------------------------------------------------------- output


@dataclass(slots=True)
class Bind:
    """Place ``pod`` on ``node`` (devices and the fraction held on each).

    ``pipelined`` binds wait for resources that evicted pods are still releasing.
    """

    job: str
    pod: str
    node: str
    devices: list[int]
    fraction: float
    pipelined: bool
    action: str


@dataclass(slots=True)
class Evict:
    job: str
    pod: str
    node: str
    action: str
    reason: str


@dataclass(slots=True)
class CycleResult:
    binds: list[Bind] = field(default_factory=list)
    evictions: list[Evict] = field(default_factory=list)
    #: job name -> a sentence a person understands, for every job still waiting
    pending_reasons: dict[str, str] = field(default_factory=dict)
    #: queue name -> {resource: fair share} as computed for this cycle
    fair_share: dict[str, dict[str, float]] = field(default_factory=dict)
