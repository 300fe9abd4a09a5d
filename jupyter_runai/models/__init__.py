"""Domain models: every object that crosses a boundary (REST, store, CLI).

Validation lives here, once. Each error names its field and what the field
accepts; :func:`format_validation_error` turns a pydantic ``ValidationError``
into ``{"field", "message", "allowed"}`` items for the REST API.

Modules: ``quantity`` (CPU and memory units), ``names`` (DNS-1123 and label
rules), ``priority`` (priority classes), ``resources`` (what a pod asks for),
``workload`` (spec, status), ``queues`` (department, project, node pool),
``cluster`` (node, GPU device), ``data`` (data sources, credentials),
``events``, ``errors``. See docs/models.md.
"""

from .base import RunaiModel
from .cluster import DeviceAllocation, GpuDevice, Node
from .data import Credential, CredentialInjection, CredentialView, DataSource, DataSourceKind
from .validation import error_body, format_validation_error
from .events import Event, EventType
from .names import DnsLabel, NodeName, ProjectName, is_dns_label, namespace_for, pod_name
from .priority import (
    PREEMPTIBLE_BELOW,
    PRIORITY_VALUES,
    PriorityClass,
    is_preemptible_by_default,
    priority_value,
)
from .quantity import Cpu, Memory, QuantityError, format_cpu, format_memory, parse_cpu, parse_memory
from .queues import (
    DEFAULT_QUEUE_PRIORITY,
    Department,
    DevicePlacement,
    KindRules,
    GpuPlacementStrategy,
    NodePool,
    PlacementStrategy,
    Project,
    QueueQuota,
    ResourceAmounts,
    ResourceLimits,
)
from .resources import Gpu, GpuAmount, Resources
from .workload import (
    DEFAULT_PRIORITY_CLASS,
    ExternalOwner,
    PodPhase,
    PodStatus,
    Workload,
    WorkloadKind,
    WorkloadPhase,
    WorkloadSpec,
    WorkloadStatus,
)

__all__ = [
    "DEFAULT_PRIORITY_CLASS",
    "DEFAULT_QUEUE_PRIORITY",
    "ExternalOwner",
    "PREEMPTIBLE_BELOW",
    "PRIORITY_VALUES",
    "Cpu",
    "Credential",
    "CredentialInjection",
    "CredentialView",
    "DataSource",
    "DataSourceKind",
    "Department",
    "DeviceAllocation",
    "DevicePlacement",
    "GpuPlacementStrategy",
    "KindRules",
    "DnsLabel",
    "Event",
    "EventType",
    "Gpu",
    "GpuAmount",
    "GpuDevice",
    "Memory",
    "Node",
    "NodeName",
    "NodePool",
    "PlacementStrategy",
    "PodPhase",
    "PodStatus",
    "PriorityClass",
    "Project",
    "ProjectName",
    "QuantityError",
    "QueueQuota",
    "ResourceAmounts",
    "ResourceLimits",
    "Resources",
    "RunaiModel",
    "Workload",
    "WorkloadKind",
    "WorkloadPhase",
    "WorkloadSpec",
    "WorkloadStatus",
    "error_body",
    "format_cpu",
    "format_memory",
    "format_validation_error",
    "is_dns_label",
    "is_preemptible_by_default",
    "namespace_for",
    "parse_cpu",
    "parse_memory",
    "pod_name",
    "priority_value",
]
