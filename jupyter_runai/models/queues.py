"""The queue tree and node pools: departments, projects, their quotas; node pools.

A quota block states, per resource (gpu, cpu, memory):

* ``deserved``: what the queue is guaranteed (its quota). Default 0.
* ``limit``: the most it may ever hold. Unset (``None``) means unlimited; ``-1``
  (KAI's spelling) is read as unset. ``0`` is a real limit: none at all.

and one ``over_quota_weight`` for all resources: how idle capacity beyond the
deserved quotas is shared among sibling queues (default 1; 0 means no share of
it: the queue's fair share is its deserved quota, so what it holds above that is reclaimed
first; a cap is ``limit``).

Departments and projects may also set ``reclaim_min_runtime`` and
``preempt_min_runtime``: how long a workload of theirs runs before another project
may reclaim its GPUs, or a higher-priority workload of the same project preempt it
(seconds, or a duration such as ``"10m"``). Unset: the department's value, then the
service's default (:data:`DEFAULT_RECLAIM_MIN_RUNTIME`, :data:`DEFAULT_PREEMPT_MIN_RUNTIME`).
"""

from __future__ import annotations

from enum import StrEnum
import math
from typing import TYPE_CHECKING, Annotated, Any, Optional

from pydantic import BeforeValidator, Field, ValidationError, ValidationInfo, model_validator

from .base import RunaiModel, one_of
from .validation import Problems, invalid
from .names import DnsLabel, LabelKey, LabelValue, ProjectName
from .quantity import Cpu, Memory
from .resources import Compact, GpuAmount

__all__ = [
    "DEFAULT_PREEMPT_MIN_RUNTIME",
    "DEFAULT_QUEUE_PRIORITY",
    "DEFAULT_RECLAIM_MIN_RUNTIME",
    "parse_duration",
    "Department",
    "DevicePlacement",
    "KindRules",
    "NodePool",
    "GpuPlacementStrategy",
    "PlacementStrategy",
    "Project",
    "QueueQuota",
    "ResourceAmounts",
    "ResourceLimits",
]

DEFAULT_QUEUE_PRIORITY = 100
QUEUE_PRIORITY_MAX = 1_000_000
#: the longest minimum runtime (seconds): 10 years
DURATION_MAX = 10 * 365 * 86400.0
#: the largest over-quota weight
WEIGHT_MAX = 1_000_000
#: seconds a workload runs before another project may reclaim its GPUs, where neither
#: its project nor its department says (see docs/semantics.md, "Minimum runtime")
DEFAULT_RECLAIM_MIN_RUNTIME = 0.0
#: seconds a workload runs before a higher-priority workload of its project may preempt it
DEFAULT_PREEMPT_MIN_RUNTIME = 0.0


class ResourceAmounts(RunaiModel):
    """An amount of each resource, e.g. what a queue deserves. Unset means 0."""

    gpu: GpuAmount = Field(default=0, description="GPU devices (fractions allowed, e.g. 2.5). Default 0.")
    cpu: Cpu = Field(default=0, description="CPU as cores or millicores ('500m'). Default 0.")
    memory: Memory = Field(default=0, description="Memory as a quantity ('256Gi'). Default 0.")


class ResourceLimits(RunaiModel):
    """The most of each resource a queue may hold. Unset (or -1) means unlimited."""

    gpu: Optional[GpuAmount] = Field(default=None, description="GPU devices. Unset: unlimited.")
    cpu: Optional[Cpu] = Field(default=None, description="CPU as cores or millicores. Unset: unlimited.")
    memory: Optional[Memory] = Field(default=None, description="Memory as a quantity. Unset: unlimited.")

    @model_validator(mode="before")
    @classmethod
    def _minus_one_is_unlimited(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {key: None if value in (-1, "-1") and not isinstance(value, bool) else value
                    for key, value in data.items()}
        return data


RESOURCES = ("gpu", "cpu", "memory")


def _check_weight(value: Any, info: ValidationInfo) -> Any:
    rule = f"a number 0 to {WEIGHT_MAX} (1 is the default; 0 means no share above deserved)"
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            or not 0 <= value <= WEIGHT_MAX):
        raise invalid(info.field_name, f"must be {rule}", allowed=f"0 <= weight <= {WEIGHT_MAX}", got=value)
    return value


Weight = Annotated[float, BeforeValidator(_check_weight), Compact]

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any) -> float:
    """Seconds from a number or a duration text: ``90``, ``"90"``, ``"30s"``, ``"10m"``,
    ``"1h30m"``, ``"2d"``. ValueError when it is neither, or negative."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip().lower()
        try:
            seconds = float(text)
        except ValueError:
            seconds, number = 0.0, ""
            for ch in text:
                if ch in "0123456789.":
                    number += ch
                elif ch in _UNITS and number:
                    seconds += float(number) * _UNITS[ch]
                    number = ""
                else:
                    raise ValueError(value) from None
            if number or not text:
                raise ValueError(value) from None
    if not math.isfinite(seconds) or not 0 <= seconds <= DURATION_MAX:
        raise ValueError(value)
    return seconds


def _check_duration(value: Any, info: ValidationInfo) -> Any:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except (ValueError, OverflowError):  # float(10**400) overflows
        raise invalid(info.field_name, "must be a duration from 0 to 10 years: seconds, or a text such as "
                      "'30s', '10m', '1h30m', '2d'", allowed=f"0 to {DURATION_MAX:.0f} seconds",
                      got=value) from None


Duration = Annotated[Optional[Annotated[float, Compact]], BeforeValidator(_check_duration)]


class IdleGpuAction(StrEnum):
    """What rule ``idle_gpu_timeout`` does to a workload whose GPUs sat idle that long."""

    STOP = "stop"
    PREEMPTIBLE = "preemptible"  # made preemptible (it runs on; its GPUs may be taken back); stopped if it is already


class KindRules(RunaiModel):
    """The scheduling rules of one workload kind in a project or department (see docs/rules.md).
    Unset: no such rule at this level."""

    max_duration: Duration = Field(
        default=None,
        description="Longest a workload of this kind may run (seconds, or '8h', '2d'): it is stopped once "
        "it has run this long since it last started. Unset: no limit.",
        examples=["8h"],
    )
    idle_gpu_timeout: Duration = Field(
        default=None,
        description="A workload of this kind whose GPUs all showed no utilization for this long is stopped "
        "(seconds, or '30m'). Only GPUs that are measured count: a virtual GPU is never idle. Unset: never.",
        examples=["30m"],
    )
    idle_gpu_action: Annotated[Optional[IdleGpuAction], one_of(IdleGpuAction)] = Field(
        default=None,
        description="What idle_gpu_timeout does: 'stop' (unset: the same) stops the workload; 'preemptible' makes a "
        "non-preemptible workload preemptible instead (it runs on, and its GPUs may be reclaimed or preempted "
        "by work that waits); a workload already preemptible is stopped.",
        examples=["preemptible"],
    )

    preemptible_max_duration: Duration = Field(
        default=None,
        description="Longest a preemptible workload of this kind may hold its GPUs while other workloads wait "
        "(seconds, or '4h'): it then yields, back to the queue behind them. Unset: no limit.",
        examples=["4h"],
    )
    node_pools: Optional[list[DnsLabel]] = Field(
        default=None,
        max_length=64,
        description="The node pools a workload of this kind may use: a submission naming another is refused, one "
        "naming none gets these. Unset: any pool.",
        examples=[["a100"]],
    )

    @model_validator(mode="after")
    def _positive(self) -> "KindRules":
        problems = Problems("KindRules")
        if self.node_pools is not None and not self.node_pools:
            problems.add("node_pools", "must name at least one pool, or be unset for any pool",
                         allowed="a non-empty list of node pool names, or null", got=[])
        for field in ("max_duration", "idle_gpu_timeout", "preemptible_max_duration"):
            if getattr(self, field) == 0:
                problems.add(field, "must be more than 0, or unset for no rule", allowed="> 0 seconds, or null",
                             got=0)
        problems.raise_if_any()
        return self


RULE_KINDS = ("workspace", "training", "distributed", "inference")


def _check_rule_kinds(value: Any, info: ValidationInfo) -> Any:
    if isinstance(value, dict):
        for key in value:
            if key not in RULE_KINDS:
                raise invalid(info.field_name, f"keys must be workload kinds: {', '.join(RULE_KINDS)}",
                              allowed=list(RULE_KINDS), got=key)
        return {key: item for key, item in value.items() if item is not None}
    return value


Rules = Annotated[dict[str, KindRules], BeforeValidator(_check_rule_kinds)]


def _rules_field() -> Any:
    return Field(
        default_factory=dict,
        description="Scheduling rules per workload kind: {kind: {max_duration, idle_gpu_timeout, "
        "preemptible_max_duration, node_pools}}. A project's rule and its department's both apply (the shorter "
        "duration wins; only the pools both allow).",
        examples=[{"training": {"max_duration": "8h"}, "workspace": {"idle_gpu_timeout": "30m"}}],
    )


def _min_runtime_field(kind: str) -> Any:
    what = ("another project may reclaim its resources" if kind == "reclaim"
            else "a higher-priority workload of the same project may preempt it")
    return Field(
        default=None,
        description=f"How long a workload of this queue runs before {what} (seconds, or '10m', '1h'). "
        "Unset: the department's value, then the service's default.",
    )


def _deserved_field() -> Any:
    return Field(
        default_factory=ResourceAmounts,
        description="Guaranteed amount of each resource (the quota). Unset resources: 0.",
    )


def _limit_field() -> Any:
    return Field(
        default_factory=ResourceLimits,
        description="Most of each resource the queue may hold, at least deserved. Unset resources: unlimited.",
    )


def _weight_field() -> Any:
    return Field(
        default=1,
        description="Share of idle capacity beyond deserved quotas, relative to sibling queues. "
        "Default 1; 0 means no share above deserved (idle GPUs may still be used, and are the first "
        "reclaimed); to cap a queue at its quota set limit = deserved.",
    )


def _check_limit_covers_deserved(problems: Problems, deserved: "ResourceAmounts", limit: "ResourceLimits") -> None:
    wanted, limits = deserved.model_dump(), limit.model_dump()
    for resource in RESOURCES:
        most = getattr(limit, resource)
        if most is not None and most < getattr(deserved, resource):
            problems.add(
                ("limit", resource),
                f"must be at least deserved.{resource} ({wanted[resource]}), or unset for unlimited",
                allowed=f">= {wanted[resource]}",
                got=limits[resource],
            )


class _QuotaChecks(RunaiModel):
    """The checks and helpers of anything with deserved, limit and over_quota_weight (no fields)."""

    if TYPE_CHECKING:  # declared by each subclass, in its own field order
        deserved: ResourceAmounts
        limit: ResourceLimits
        over_quota_weight: float
        node_pools: dict[str, QueueQuota]

    @model_validator(mode="after")
    def _limit_covers_deserved(self) -> Any:
        problems = Problems(type(self).__name__)
        _check_limit_covers_deserved(problems, self.deserved, self.limit)
        problems.raise_if_any()
        return self

    @model_validator(mode="wrap")
    @classmethod
    def _all_errors_at_once(cls, data: Any, handler: Any) -> Any:
        """A wrong field elsewhere (a name, a weight) skips the check above: run it anyway on
        deserved and limit when both are valid alone, so that every error comes in one answer
        (not the limit's only after the rest is fixed)."""
        try:
            return handler(data)
        except ValidationError as exc:
            if not isinstance(data, dict) or any(e["loc"][:1] in (("limit",), ("deserved",)) for e in exc.errors()):
                raise
            try:
                deserved = ResourceAmounts.model_validate(data.get("deserved") or {})
                limit = ResourceLimits.model_validate(data.get("limit") or {})
            except ValidationError:
                raise exc from None
            problems = Problems(cls.__name__)
            problems.extend(exc)
            _check_limit_covers_deserved(problems, deserved, limit)
            problems.raise_if_any()
            raise

    @property
    def is_over_quota_allowed(self) -> bool:
        """False when the weight is 0: the queue gets no fair share above deserved."""
        return self.over_quota_weight > 0


class QueueQuota(_QuotaChecks):
    """A quota block: deserved, limit and over-quota weight. Used for a whole queue and per node pool."""

    deserved: ResourceAmounts = _deserved_field()
    limit: ResourceLimits = _limit_field()
    over_quota_weight: Weight = _weight_field()


def _priority_field() -> Any:
    return Field(
        default=DEFAULT_QUEUE_PRIORITY,
        ge=0,
        le=QUEUE_PRIORITY_MAX,
        description=f"Queue priority among siblings: higher gets idle capacity first (0 to "
        f"{QUEUE_PRIORITY_MAX}). Default 100.",
    )


def _node_pools_field() -> Any:
    return Field(
        default_factory=dict,
        description="Quota blocks per node pool name. A pool not listed has no pool-specific quota: "
        "it is served from the queue-wide block.",
    )


class _Queue(_QuotaChecks):
    def quota_in(self, pool: str) -> QueueQuota:
        """The quota block that applies in ``pool``: its own if listed, else the queue-wide one."""
        own = self.node_pools.get(pool)
        if own is not None:
            return own
        return QueueQuota(deserved=self.deserved, limit=self.limit, over_quota_weight=self.over_quota_weight)


class Department(_Queue):
    """A group of projects: the top level of the queue tree."""

    name: DnsLabel = Field(description="Department name: a DNS-1123 label.", examples=["research"])
    priority: int = _priority_field()
    deserved: ResourceAmounts = _deserved_field()
    limit: ResourceLimits = _limit_field()
    over_quota_weight: Weight = _weight_field()
    node_pools: dict[DnsLabel, QueueQuota] = _node_pools_field()
    reclaim_min_runtime: Duration = _min_runtime_field("reclaim")
    preempt_min_runtime: Duration = _min_runtime_field("preempt")
    rules: Rules = _rules_field()


class Project(_Queue):
    """A queue that workloads are submitted to, inside a department."""

    name: ProjectName = Field(
        description="Project name: a DNS-1123 label of at most 57 characters (its Kubernetes namespace "
        "is runai-<name>).",
        examples=["team-a"],
    )
    department: DnsLabel = Field(default="default", description="Parent department. Default: 'default'.")
    priority: int = _priority_field()
    deserved: ResourceAmounts = _deserved_field()
    limit: ResourceLimits = _limit_field()
    over_quota_weight: Weight = _weight_field()
    node_pools: dict[DnsLabel, QueueQuota] = _node_pools_field()
    reclaim_min_runtime: Duration = _min_runtime_field("reclaim")
    preempt_min_runtime: Duration = _min_runtime_field("preempt")
    rules: Rules = _rules_field()


class PlacementStrategy(StrEnum):
    """How to choose among nodes that fit."""

    BINPACK = "binpack"  # the fullest node that fits: keeps whole nodes free
    SPREAD = "spread"  # the emptiest node: spreads load


class GpuPlacementStrategy(StrEnum):
    """How to choose among nodes that fit, for pods that ask GPUs."""

    # the node and devices that leave the most free GPU usable by the pods the cluster
    # runs and waits for (fragmentation gradient descent, see docs/semantics.md)
    FRAGMENTATION_AWARE = "fragmentation-aware"
    BINPACK = "binpack"  # the node with the fewest idle devices that fits: keeps whole nodes free
    SPREAD = "spread"  # the node with the most idle devices: spreads load


class DevicePlacement(StrEnum):
    """How to choose a device for a fraction, among the node's devices."""

    PACK = "pack"  # fill partly used devices first: keeps whole devices free
    SPREAD = "spread"  # the least used device first


Placement = one_of(PlacementStrategy)
GpuPlacement = one_of(GpuPlacementStrategy)
DevicePlacementName = one_of(DevicePlacement)


class NodePool(RunaiModel):
    """A named group of nodes chosen by labels, with its own placement strategy."""

    name: DnsLabel = Field(description="Node pool name: a DNS-1123 label.", examples=["a100"])
    label_selector: dict[LabelKey, LabelValue] = Field(
        default_factory=dict,
        description="Labels a node must carry (all of them) to belong to the pool. Empty: every node.",
        examples=[{"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}],
    )
    gpu_placement: GpuPlacement = Field(
        default=GpuPlacementStrategy.FRAGMENTATION_AWARE,
        description="Node choice for GPU pods: fragmentation-aware (default), binpack or spread.",
    )
    cpu_placement: Placement = Field(
        default=PlacementStrategy.BINPACK, description="Node choice for CPU-only pods: binpack (default) or spread."
    )
    device_placement: DevicePlacementName = Field(
        default=DevicePlacement.PACK,
        description="Device choice for fractions on a node: pack (default) or spread.",
    )

    def matches(self, labels: dict[str, str]) -> bool:
        """True when a node with these labels belongs to the pool."""
        return all(labels.get(key) == value for key, value in self.label_selector.items())
