"""Workloads: what a user submits (spec), what it is doing (status), and both together.

Kinds and their pods:

* ``workspace``: one interactive pod, priority class ``build`` (not preemptible);
* ``training``: one pod, priority class ``train`` (preemptible);
* ``distributed``: a master (unless ``master: false``) and ``workers`` workers,
  scheduled as a gang of at least ``min_available`` pods (default: all of them);
  pod 0 is the master, then the workers;
* ``inference``: ``min_replicas`` to ``max_replicas`` replicas behind one URL,
  priority class ``inference``.

Pods are named ``<workload>-<index>``, the index counting from 0.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Optional

from pydantic import AwareDatetime, BeforeValidator, Field, ValidationInfo, field_validator, model_validator

from .base import RunaiModel, one_of
from .validation import Problems, invalid
from .names import DnsLabel, EnvName, NodeName, ProjectName, keys_by_pattern, pod_name
from .quantity import Memory
from .priority import PriorityClass, is_preemptible_by_default
from .resources import Resources

__all__ = [
    "COMMAND_MAX",
    "DEFAULT_PRIORITY_CLASS",
    "ENV_ENTRIES_MAX",
    "ENV_VALUE_MAX",
    "ExternalOwner",
    "NAMES_MAX",
    "PATH_MAX",
    "PODS_MAX",
    "PodPhase",
    "PodStatus",
    "Workload",
    "WorkloadKind",
    "WorkloadPhase",
    "WorkloadSpec",
    "WorkloadStatus",
]


class WorkloadKind(StrEnum):
    """What sort of work a workload is; decides its defaults and allowed fields."""

    WORKSPACE = "workspace"
    TRAINING = "training"
    DISTRIBUTED = "distributed"
    INFERENCE = "inference"


class WorkloadPhase(StrEnum):
    """Where a workload is in its life."""

    PENDING = "Pending"  # waiting to be scheduled (see pending_reason)
    RUNNING = "Running"  # its minimum of pods runs
    STOPPING = "Stopping"  # stop asked, pods ending
    STOPPED = "Stopped"  # stopped by a user or a rule; may be run again
    SUCCEEDED = "Succeeded"  # finished, exit code 0
    FAILED = "Failed"  # finished with an error (see message)
    DELETING = "Deleting"  # delete asked, pods ending

    @property
    def is_finished(self) -> bool:
        """True when no pod runs and none will until a user acts."""
        return self in (WorkloadPhase.STOPPED, WorkloadPhase.SUCCEEDED, WorkloadPhase.FAILED)


class PodPhase(StrEnum):
    """Where one pod is: Kubernetes' pod phases plus Terminating (still holding its devices)."""

    PENDING = "Pending"
    RUNNING = "Running"
    TERMINATING = "Terminating"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    UNKNOWN = "Unknown"


DEFAULT_PRIORITY_CLASS: dict[WorkloadKind, PriorityClass] = {
    WorkloadKind.WORKSPACE: PriorityClass.BUILD,
    WorkloadKind.TRAINING: PriorityClass.TRAIN,
    WorkloadKind.DISTRIBUTED: PriorityClass.TRAIN,
    WorkloadKind.INFERENCE: PriorityClass.INFERENCE,
}
"""The priority class of a workload that does not name one, by kind."""


# The most a workload may ask for; each is far above real use and keeps one request
# from costing the service seconds or megabytes (docs/models.md, "Limits").
#: worker pods of a distributed workload, replicas of an inference workload
PODS_MAX = 1000
#: characters of a command: the string, or all parts of a list together (Linux refuses
#: a single argument over 128 KiB anyway)
COMMAND_MAX = 100_000
#: parts of a command given as a list
COMMAND_PARTS_MAX = 4096
#: environment variables of a workload, and characters of each value
ENV_ENTRIES_MAX = 1000
ENV_VALUE_MAX = 100_000
#: characters of a path (working_dir, python_env) and of an image reference
PATH_MAX = 4096
#: names in node_pools, data_sources and credentials (each list)
NAMES_MAX = 64

NO_NUL = "text without NUL bytes (a process's command line and environment cannot hold one)"


def _refuse_nul(field: str, text: str) -> None:
    """A NUL byte cannot reach a process (argv and environ are NUL-terminated): refuse it here, by field,
    rather than let the launch fail later."""
    if "\x00" in text:
        raise invalid(field, f"must be {NO_NUL}", allowed=NO_NUL, got=text)


def _check_command(value: Any, info: ValidationInfo) -> Any:
    rule = (f"a non-empty string (run by a shell) or a non-empty list of at most {COMMAND_PARTS_MAX} strings "
            f"(run as is), at most {COMMAND_MAX} characters in all")
    if value is None:
        return None
    if isinstance(value, str):
        if not value.strip() or len(value) > COMMAND_MAX:
            raise invalid(info.field_name, f"must be {rule}", allowed=rule, got=value)
        _refuse_nul(info.field_name, value)
        return value
    if (isinstance(value, (list, tuple)) and 0 < len(value) <= COMMAND_PARTS_MAX
            and all(isinstance(part, str) for part in value) and sum(map(len, value)) <= COMMAND_MAX):
        for part in value:
            _refuse_nul(info.field_name, part)
        return list(value)
    raise invalid(info.field_name, f"must be {rule}", allowed=rule, got=value)


def _env_value(value: Any, info: ValidationInfo) -> Any:
    """YAML turns ``DEBUG: 1`` into a number; environment values are strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if not isinstance(value, str):
        raise invalid("environment", "values must be strings (numbers and booleans are converted)",
                      allowed="a string", got=value)
    if len(value) > ENV_VALUE_MAX:
        raise invalid("environment", f"values must be at most {ENV_VALUE_MAX} characters",
                      allowed=f"at most {ENV_VALUE_MAX} characters", got=value)
    _refuse_nul("environment", value)
    return value


Kind = one_of(WorkloadKind)
PriorityClassName = one_of(PriorityClass)
WorkloadPhaseName = one_of(WorkloadPhase)
PodPhaseName = one_of(PodPhase)
Command = Annotated[Optional[str | list[str]], BeforeValidator(_check_command)]
EnvValue = Annotated[str, BeforeValidator(_env_value)]


def _unique(values: list[str], info: ValidationInfo) -> list[str]:
    seen = set()
    for value in values:
        if value in seen:
            raise invalid(info.field_name, "must not name the same item twice", allowed="distinct names", got=value)
        seen.add(value)
    return values


class WorkloadSpec(RunaiModel):
    """What a user submits. Fields that depend on the kind are filled in after validation:
    ``priority_class``, ``preemptible`` and, by kind, ``master``, ``min_available``,
    ``min_replicas`` and ``max_replicas``, so a validated spec states every default."""

    name: DnsLabel = Field(
        description="Workload name: a DNS-1123 label (lowercase letters, digits, '-'), at most 63 "
        "characters, unique inside its project. Pods are named <name>-<index>.",
        examples=["bert-finetune"],
    )
    project: ProjectName = Field(
        default="default", description="Project (queue) the workload runs in and is counted against."
    )
    kind: Kind = Field(
        default=WorkloadKind.TRAINING,
        description="workspace (interactive), training (one pod), distributed (master + workers, gang) "
        "or inference (replicas behind one URL). Default training.",
    )
    priority_class: Optional[PriorityClassName] = Field(
        default=None,
        description="train (50), build-preemptible (75), build (100) or inference (125). Unset: by kind "
        "(workspace: build; training, distributed: train; inference: inference).",
    )
    preemptible: Optional[bool] = Field(
        default=None,
        description="Whether the scheduler may stop the workload to make room. Unset: true when the "
        "priority is below 100. Non-preemptible work runs only inside its project's deserved quota.",
    )
    resources: Resources = Field(
        default_factory=Resources,
        description="Resources of each pod (each worker, for distributed; each replica, for inference).",
    )
    node_pools: list[DnsLabel] = Field(
        default_factory=list,
        max_length=NAMES_MAX,
        description=f"Node pools to run in, most preferred first (at most {NAMES_MAX}). Empty: any pool.",
        examples=[["a100", "default"]],
    )
    image: Optional[str] = Field(
        default=None,
        max_length=PATH_MAX,
        description="Container image. Used as given on Kubernetes; recorded and shown on the local "
        "cluster, which runs commands in a Python environment instead.",
    )
    command: Command = Field(
        default=None,
        description="What to run: a string is run by a shell ('python train.py --lr 0.1'), a list is "
        "run as is (['python', 'train.py']). Unset: the image's own command (Kubernetes) or the "
        "kind's default (local cluster; a Jupyter kernel or server for workspaces).",
    )
    working_dir: Optional[str] = Field(
        default=None, max_length=PATH_MAX, description="Directory the command starts in. Unset: the image's or the server's."
    )
    python_env: Optional[str] = Field(
        default=None,
        max_length=PATH_MAX,
        description="Local cluster only: the Python environment (a venv or conda prefix) the command "
        "runs in. Unset: the Jupyter server's own environment.",
    )
    environment: dict[EnvName, EnvValue] = Field(
        default_factory=dict,
        max_length=ENV_ENTRIES_MAX,
        description=f"Environment variables of every pod, name to value (at most {ENV_ENTRIES_MAX}, each "
        f"value at most {ENV_VALUE_MAX} characters).",
        json_schema_extra=keys_by_pattern,
    )
    data_sources: list[DnsLabel] = Field(
        default_factory=list, max_length=NAMES_MAX,
        description=f"Names of the project's data sources to attach (at most {NAMES_MAX})."
    )
    credentials: list[DnsLabel] = Field(
        default_factory=list, max_length=NAMES_MAX,
        description=f"Names of the project's credentials to inject (at most {NAMES_MAX})."
    )
    workers: Optional[int] = Field(
        default=None, ge=1, le=PODS_MAX,
        description=f"distributed only, required there: number of worker pods (1 to {PODS_MAX})."
    )
    master: Optional[bool] = Field(
        default=None, description="distributed only: whether there is a master pod (pod 0). Default true."
    )
    master_resources: Optional[Resources] = Field(
        default=None, description="distributed only: resources of the master pod. Unset: the same as resources."
    )
    min_available: Optional[int] = Field(
        default=None,
        ge=1,
        le=PODS_MAX + 1,
        description="distributed only: the gang minimum, the number of pods that must start together. "
        "Default: all pods (master and workers). Pods above it are elastic: started when there is "
        "room, the first to go on reclaim.",
    )
    min_replicas: Optional[int] = Field(
        default=None, ge=1, le=PODS_MAX,
        description=f"inference only: replicas to keep running (1 to {PODS_MAX}). Default 1."
    )
    max_replicas: Optional[int] = Field(
        default=None,
        ge=1,
        le=PODS_MAX,
        description=f"inference only: replicas to grow to under load, at least min_replicas and at most "
        f"{PODS_MAX}. Default: min_replicas.",
    )

    backoff_limit: Optional[int] = Field(
        default=None,
        ge=0,
        le=100,
        description="training and distributed only: how many times a failed run is started again "
        "before the workload is marked Failed. Default 0 (a failure is final).",
    )
    target_concurrency: Optional[float] = Field(
        default=None,
        gt=0,
        le=1_000_000,
        description="inference only: requests in flight per replica that the autoscaler aims for; "
        "more load adds replicas (up to max_replicas), less removes them (down to min_replicas). Default 4.",
    )

    queue_anyway: bool = Field(
        default=False,
        description="Queue the workload even when it could never run as the cluster and its limits are now "
        "(more GPUs, GPU memory, CPU or memory per pod than any node has, or more than the project's or "
        "department's limit). Default false: such a workload is refused at submission, with the reason.",
    )

    @field_validator("node_pools", "data_sources", "credentials")
    @classmethod
    def _no_repeats(cls, values: list[str], info: ValidationInfo) -> list[str]:
        return _unique(values, info)

    @field_validator("working_dir", "python_env", "image")
    @classmethod
    def _no_nul(cls, value: Optional[str], info: ValidationInfo) -> Optional[str]:
        # a path the pod starts in or runs from, an image a runtime pulls: a NUL byte reaches no process
        if value is not None:
            _refuse_nul(info.field_name, value)
        return value

    @model_validator(mode="after")
    def _check_kind_and_fill_defaults(self) -> "WorkloadSpec":
        given = set(self.model_fields_set)  # what the user gave (policies fill in the rest: see below)
        problems = Problems("WorkloadSpec")
        only_for = {
            WorkloadKind.DISTRIBUTED: ("workers", "master", "master_resources", "min_available"),
            WorkloadKind.INFERENCE: ("min_replicas", "max_replicas", "target_concurrency"),
        }
        if self.backoff_limit is not None and self.kind not in (WorkloadKind.TRAINING, WorkloadKind.DISTRIBUTED):
            problems.add("backoff_limit", f"only for kinds 'training' and 'distributed'; this workload is "
                         f"{self.kind.value!r}", allowed="unset unless kind is 'training' or 'distributed'",
                         got=self.backoff_limit)
        for kind, fields in only_for.items():
            if self.kind == kind:
                continue
            for field in fields:
                if getattr(self, field) is not None:
                    problems.add(
                        field,
                        f"only for kind {kind.value!r}; this workload is {self.kind.value!r}",
                        allowed=f"unset unless kind is {kind.value!r}",
                        got=getattr(self, field) if field != "master_resources" else "{...}",
                    )
        if self.kind == WorkloadKind.DISTRIBUTED:
            if self.workers is None:
                problems.add("workers", "required for kind 'distributed': a whole number of worker pods, 1 or more",
                             allowed=">= 1")
            else:
                total = self.workers + (0 if self.master is False else 1)
                if self.min_available is not None and self.min_available > total:
                    problems.add(
                        "min_available",
                        f"must be between 1 and the number of pods ({total}: "
                        f"{'a master and ' if self.master is not False else ''}{self.workers} workers)",
                        allowed=f"1 <= min_available <= {total}",
                        got=self.min_available,
                    )
        if self.kind == WorkloadKind.INFERENCE:
            low, high = self.min_replicas, self.max_replicas
            if low is not None and high is not None and low > high:
                problems.add("max_replicas", f"must be at least min_replicas ({low})", allowed=f">= {low}", got=high)
        problems.raise_if_any()

        # Every default stated explicitly.
        if self.priority_class is None:
            self.priority_class = DEFAULT_PRIORITY_CLASS[self.kind]
        if self.preemptible is None:
            self.preemptible = is_preemptible_by_default(self.priority)
        if self.kind == WorkloadKind.DISTRIBUTED:
            if self.master is None:
                self.master = True
            if self.min_available is None:
                self.min_available = self.pod_count
        if self.kind == WorkloadKind.INFERENCE:
            if self.min_replicas is None:
                self.min_replicas = 1
            if self.max_replicas is None:
                self.max_replicas = max(self.min_replicas, 1)
            if self.target_concurrency is None:
                self.target_concurrency = 4
        if self.kind in (WorkloadKind.TRAINING, WorkloadKind.DISTRIBUTED) and self.backoff_limit is None:
            self.backoff_limit = 0
        # the defaults stated above are not the user's: model_fields_set (and exclude_unset) keep
        # naming only what was given, so that admission can tell a policy's default may apply
        self.__pydantic_fields_set__ = given
        return self

    # ----------------------------------------------------------- helpers

    @property
    def priority(self) -> int:
        """The number of the priority class (higher goes first)."""
        return (self.priority_class or DEFAULT_PRIORITY_CLASS[self.kind]).priority

    @property
    def pod_count(self) -> int:
        """Pods at full size: master + workers, max_replicas, or 1."""
        if self.kind == WorkloadKind.DISTRIBUTED:
            return (self.workers or 0) + (0 if self.master is False else 1)
        if self.kind == WorkloadKind.INFERENCE:
            return self.max_replicas or self.min_replicas or 1
        return 1

    @property
    def min_pods(self) -> int:
        """Pods the workload needs to run at all: the gang minimum, min_replicas, or 1."""
        if self.kind == WorkloadKind.DISTRIBUTED:
            return self.min_available or self.pod_count
        if self.kind == WorkloadKind.INFERENCE:
            return self.min_replicas or 1
        return 1

    @property
    def is_gang(self) -> bool:
        """True when several pods must start together (distributed with a minimum above 1)."""
        return self.kind == WorkloadKind.DISTRIBUTED and self.min_pods > 1

    def is_master(self, index: int) -> bool:
        """True for the master pod of a distributed workload (index 0)."""
        return self.kind == WorkloadKind.DISTRIBUTED and self.master is not False and index == 0

    def pod_resources(self, index: int) -> Resources:
        """Resources of pod ``index``: master_resources for the master, else resources."""
        if self.is_master(index) and self.master_resources is not None:
            return self.master_resources
        return self.resources

    def pod_name(self, index: int) -> str:
        """``<name>-<index>``."""
        return pod_name(self.name, index)

    def total_gpus(self, device_memory: int | None = None) -> float:
        """GPUs the workload counts against quota when all its pods run (see Resources.total_gpus)."""
        return sum(self.pod_resources(i).total_gpus(device_memory) for i in range(self.pod_count))


class PodStatus(RunaiModel):
    """One pod of a workload: where it runs and what it holds."""

    name: str = Field(description="Pod name: <workload>-<index>.", examples=["bert-finetune-0"])
    index: int = Field(ge=0, description="Pod index inside the workload, from 0 (the master is 0).")
    phase: PodPhaseName = Field(default=PodPhase.PENDING, description="Pod phase.")
    node: Optional[NodeName] = Field(default=None, description="Node the pod is bound to; unset while pending.")
    devices: list[int] = Field(
        default_factory=list, description="Indices of the node's GPU devices the pod holds; empty for none."
    )
    fraction: Optional[float] = Field(
        default=None,
        gt=0,
        le=1,
        description="Share of each held device (0 < fraction <= 1). Unset: whole devices.",
    )
    gpu_memory: Optional[Memory] = Field(
        default=None, description="Device memory reserved for the pod on each held device (a quantity; bytes)."
    )
    started_at: Optional[AwareDatetime] = Field(default=None, description="When the pod started running.")
    finished_at: Optional[AwareDatetime] = Field(default=None, description="When the pod ended.")
    message: Optional[str] = Field(default=None, description="Last notable event (exit code, eviction reason).")

    @model_validator(mode="after")
    def _check_placement(self) -> "PodStatus":
        problems = Problems("PodStatus")
        if len(set(self.devices)) != len(self.devices) or any(d < 0 for d in self.devices):
            problems.add("devices", "must be distinct device indices, 0 or more", allowed="distinct integers >= 0",
                         got=self.devices)
        if self.devices and self.node is None:
            problems.add("node", "required when the pod holds devices", allowed="a node name")
        if self.fraction is not None and not self.devices:
            problems.add("fraction", "only when the pod holds devices", allowed="unset when devices is empty",
                         got=self.fraction)
        problems.raise_if_any()
        return self

    @property
    def gpus(self) -> float:
        """GPUs the pod holds: devices x fraction (or x 1 for whole devices)."""
        return len(self.devices) * (self.fraction if self.fraction is not None else 1.0)


class WorkloadStatus(RunaiModel):
    """What a workload is doing. Written by the service, shown by every view."""

    phase: WorkloadPhaseName = Field(default=WorkloadPhase.PENDING, description="Workload phase.")
    pending_reason: Optional[str] = Field(
        default=None, description="Why the workload waits, in words; set while Pending."
    )
    message: Optional[str] = Field(default=None, description="Why it failed or stopped, in words.")
    made_preemptible_by: Optional[str] = Field(
        default=None,
        description="Set when a scheduling rule (idle_gpu_timeout with idle_gpu_action: preemptible) made this "
        "workload preemptible, in the rule's words: its GPUs may be taken back while it is on. spec.preemptible "
        "keeps what was submitted; a resume starts without it.",
    )
    pods: list[PodStatus] = Field(default_factory=list, description="Its pods, by index.")
    url: Optional[str] = Field(
        default=None,
        description="Where a running workspace or inference endpoint is reached "
        "(/runai/proxy/<project>/<name>/, under the Jupyter server's address).",
    )
    restarts: int = Field(default=0, ge=0, description="Times a failed run was started again (backoff_limit).")
    queue_position: Optional[int] = Field(
        default=None, ge=1,
        description="While Pending: its place among its project's pending workloads (1: the first), by priority, "
        "then by submission, as the scheduler takes them inside a project; null otherwise. Projects are served by "
        "fair share, and a later workload that fits where an earlier one does not may start first.",
    )
    submitted_at: Optional[AwareDatetime] = Field(default=None, description="When it was submitted.")
    started_at: Optional[AwareDatetime] = Field(
        default=None, description="When it last started running (its minimum of pods placed)."
    )
    finished_at: Optional[AwareDatetime] = Field(
        default=None, description="When it last stopped, succeeded or failed."
    )

    @model_validator(mode="after")
    def _check_pods_and_times(self) -> "WorkloadStatus":
        problems = Problems("WorkloadStatus")
        indices = [pod.index for pod in self.pods]
        if len(set(indices)) != len(indices):
            problems.add("pods", "must have distinct indices", allowed="distinct pod indices", got=indices)
        order: list[tuple[str, datetime | None]] = [
            ("submitted_at", self.submitted_at),
            ("started_at", self.started_at),
            ("finished_at", self.finished_at),
        ]
        known = [(name, value) for name, value in order if value is not None]
        for (before, early), (after, late) in zip(known, known[1:]):
            if late < early:
                problems.add(after, f"must not be before {before} ({early.isoformat()})",
                             allowed=f">= {early.isoformat()}", got=late.isoformat())
        problems.raise_if_any()
        return self

    @property
    def allocated_gpus(self) -> float:
        """GPUs its pods hold now."""
        return sum(pod.gpus for pod in self.pods)


class ExternalOwner(RunaiModel):
    """The top owner of a workload made outside jupyter-runai: pods created by others (a Job, a
    Deployment, a PyTorchJob... made with kubectl) that name our scheduler and a queue.
    Manage it with kubectl on this object: it cannot be stopped, resumed or deleted here."""

    api_version: str = Field(max_length=253, description="The owner's apiVersion (batch/v1, apps/v1...).")
    kind: str = Field(max_length=63, description="The owner's kind (Job, Deployment, PyTorchJob; Pod for a bare "
                      "pod).", examples=["Job"])
    name: str = Field(max_length=253, description="The owner's name.")
    namespace: str = Field(max_length=63, description="The owner's namespace.")
    uid: str = Field(max_length=64, description="The owner's uid: the workload is this object's.")

    def describe(self) -> str:
        """``Job team-x/train``"""
        return f"{self.kind} {self.namespace}/{self.name}"


class Workload(RunaiModel):
    """A submitted workload: its spec, its status and who submitted it."""

    uid: str = Field(
        default_factory=lambda: uuid.uuid4().hex,
        min_length=1,
        description="Identifier that stays unique when a name is reused after a delete.",
    )
    spec: WorkloadSpec = Field(description="What was submitted.")
    status: WorkloadStatus = Field(default_factory=WorkloadStatus, description="What it is doing.")
    submitted_by: Optional[str] = Field(default=None, description="User who submitted it.")
    external: Optional[ExternalOwner] = Field(
        default=None, description="Set for a workload made outside jupyter-runai (third-party pods with our "
        "scheduler name and a queue label, on Kubernetes): the object that owns its pods. It is scheduled and "
        "shown like any other, and may be preempted, but is stopped or deleted only with kubectl on its owner.")

    @model_validator(mode="after")
    def _check_pod_names(self) -> "Workload":
        problems = Problems("Workload")
        for position, pod in enumerate(self.status.pods):
            expected = self.spec.pod_name(pod.index)
            if pod.name != expected:
                problems.add(("status", "pods", position, "name"), f"must be <workload>-<index>, here {expected!r}",
                             allowed=expected, got=pod.name)
        problems.raise_if_any()
        return self

    @property
    def preemptible(self) -> bool:
        """Whether the engine may take its GPUs back: as submitted, or made so by a rule until resumed."""
        return bool(self.spec.preemptible) or self.status.made_preemptible_by is not None

    @property
    def key(self) -> str:
        """``<project>/<name>``: unique among live workloads."""
        return f"{self.spec.project}/{self.spec.name}"
