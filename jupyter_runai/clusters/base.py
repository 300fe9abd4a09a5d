"""The cluster protocol: what the service needs from whatever runs pods.

The service (``jupyter_runai.service``) is the only caller. It decides *where* a
pod runs (the engine's bind: node, device indices, fraction) and hands the
cluster a :class:`PodLaunch` that says everything needed to start it. The cluster
starts, stops and watches pods and reports what happened as :class:`PodReport`
items from :meth:`Cluster.poll`; it never decides placement and never writes the
store.

Implementations: ``local`` (this machine, pods are process groups), ``simulated``
and ``kubernetes`` (``clusters/kubernetes.py``).

Pods are identified by their ``key``: ``<project>/<pod name>`` (pod names are
``<workload>-<index>``). A pod's ``handle`` is a small JSON-able dict the cluster
returns from :meth:`launch`; the service stores it and gives it back to
:meth:`adopt` after a restart, so the cluster can find the pod again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ..models import Node

__all__ = ["Cluster", "DeviceMetrics", "Endpoint", "ExternalGroup", "PodDeviceMetrics", "PodLaunch", "PodReport", "PodState", "FileToWrite", "Mount"]


class PodState(StrEnum):
    """What the cluster knows of a pod."""

    RUNNING = "Running"      # the process runs (for inference/workspace: and its port is open)
    SUCCEEDED = "Succeeded"  # ended with exit code 0
    FAILED = "Failed"        # ended with a non-zero exit code, or could not start
    STOPPED = "Stopped"      # ended because stop() was called (SIGTERM/SIGKILL by us)
    LOST = "Lost"            # adopt() found no trace of it (e.g. the machine rebooted)


@dataclass(slots=True)
class FileToWrite:
    """A file the pod finds in its working directory before it starts (credentials as files).

    ``path`` is relative to the pod's working directory; written with ``mode``
    (owner-only by default), never logged."""

    path: str
    content: bytes
    mode: int = 0o600


@dataclass(slots=True)
class Mount:
    """A data source made visible to the pod.

    ``kind`` is ``host_path`` (``source`` is a directory on the node, shown at
    ``target``, relative to the working directory, read-only unless
    ``read_only`` is false) or ``git`` (``source`` is a repository URL cloned at
    ``target`` before the command starts; ``revision`` optional)."""

    kind: str
    source: str
    target: str
    read_only: bool = True
    revision: str | None = None


@dataclass(slots=True)
class PodLaunch:
    """Everything needed to start one pod where the engine placed it."""

    key: str                       # <project>/<pod name>
    workload: str                  # workload name
    workload_uid: str
    project: str
    kind: str                      # workspace | training | distributed | inference
    index: int                     # pod index inside the workload (0 = master for distributed)
    pod_count: int                 # pods of the workload at full size (WORLD_SIZE for distributed)
    node: str
    devices: list[int]             # device indices on the node; empty for a CPU-only pod
    fraction: float | None         # share of each device; None for whole devices
    gpu_memory_limit: int | None   # bytes per device the pod may use (fraction x device memory, or the limit)
    gpu_fraction_limit: float | None  # dynamic fraction: the burst limit (gpu_limit); None otherwise
    command: str | list[str] | None   # None: the kind's default (see the cluster)
    environment: dict[str, str] = field(default_factory=dict)  # user env + RUNAI_* + credentials as env
    working_dir: str | None = None    # None: a directory of the pod's own under the state dir
    python_env: str | None = None     # a venv/conda prefix to run in; None: the server's
    files: list[FileToWrite] = field(default_factory=list)
    mounts: list[Mount] = field(default_factory=list)
    needs_port: bool = False        # workspace, inference: give the pod an address (RUNAI_SOCKET, PORT)
    master_key: str | None = None   # distributed: key of pod 0, whose address/port all ranks use
    launch_id: str | None = None    # names this launch in the intent the service recorded before it
    workload_model: Any = None      # the models.Workload itself: for backends that build a pod manifest from it
    data_sources: list[Any] = field(default_factory=list)  # its models.DataSource objects (the same, as objects)
    credentials: list[Any] = field(default_factory=list)   # its models.Credential objects, values included
    run_as: Any = None  # an accounts.SystemAccount to run as (a backend with ``runs_as_accounts``); None: its own


@dataclass(slots=True)
class PodReport:
    """A change the cluster saw in one pod, returned by :meth:`Cluster.poll` / :meth:`Cluster.adopt`."""

    key: str
    state: PodState
    exit_code: int | None = None
    message: str | None = None       # in words: "exited with code 3", "killed: GPU memory 9.1 GiB over its limit 8 GiB"
    handle: dict[str, Any] | None = None  # updated handle, when it changed (e.g. port known)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where the proxy reaches a ready pod: a Unix socket (``socket``, preferred: only the
    server's own account can connect to it) or a TCP ``host``:``port``."""

    host: str = "127.0.0.1"
    port: int | None = None
    socket: str | None = None

    def __post_init__(self) -> None:
        if self.socket is None and self.port is None:
            raise ValueError("an endpoint needs a socket or a port")


@dataclass(slots=True)
class DeviceMetrics:
    """What a device is doing now (NVML); None where not measured (virtual devices)."""

    node: str
    index: int
    used_memory: int | None = None   # bytes
    utilization: float | None = None  # percent


@dataclass(slots=True)
class PodDeviceMetrics:
    """What one pod does on one device it holds (NVML, per process): the GPU memory its processes use
    and their utilization; None where not measured. A backend that measures this offers
    ``pod_metrics() -> list[PodDeviceMetrics]`` (optional: the service looks for it)."""

    key: str  # the pod's key, <project>/<pod>
    node: str
    index: int
    used_memory: int | None = None  # bytes
    utilization: float | None = None  # percent of the device


@dataclass(slots=True)
class ExternalGroup:
    """Pods made outside the service (third-party: a Job's, a Deployment's...) that name our
    scheduler, grouped by their top owner into one workload. A backend that finds them offers
    ``external_groups() -> (version, list[ExternalGroup], settled)`` (optional: the service looks for
    it; ``version`` changes whenever a group does; ``settled`` is false while some pods' owners are
    still being read, so a group missing from the list may yet appear) and ``external_unschedulable(owner_uid, message)``
    (tell the owner's pods why they wait, where kubectl shows it)."""

    owner_api_version: str
    owner_kind: str
    owner_name: str
    namespace: str
    owner_uid: str
    queue: str | None             # from the pods' queue label; None: they carry none
    pods: int                     # its pods that have not ended (at most PODS_MAX); the group lasts while
                                  # any pod is on the cluster, ended or not
    waiting: int                  # of those, the ones not bound to a node yet
    min_member: int               # the gang minimum (1 unless an annotation says more)
    resources: dict[str, Any]     # one pod's request, as a workload spec's ``resources`` (the largest pod's)
    priority_class: str | None = None
    preemptible: bool | None = None
    image: str | None = None
    problem: str | None = None    # why it cannot be scheduled at all (in words), e.g. an unsupported request


@runtime_checkable
class Cluster(Protocol):
    """Runs pods where the service says. All methods are cheap and non-blocking
    unless documented; the service calls them from its event loop."""

    name: str  # "local", "simulated", "kubernetes"
    # capabilities: the service asks these, never the name
    read_only_mounts: bool  # True when a read-only data source really cannot be written by the pod
    runs_images: bool       # True when a workload's image is pulled and run (False: commands run as processes)
    gpu_fractions: bool     # True when a pod may get a fraction of a device
    # None, or (Kubernetes) the workloads' mirror as custom resources: the cluster is then the source
    # of truth the service reconciles its store with (kube_workloads.WorkloadObjects)
    workload_mirror: Any

    def nodes(self) -> list[Node]:
        """The nodes and their devices (virtual devices carry ``virtual=True``)."""
        ...

    def launch(self, launch: PodLaunch) -> dict[str, Any]:
        """Start the pod; return its handle (JSON-able) for the store. Raises on a
        failure to start (the service marks the pod Failed with the message)."""
        ...

    def stop(self, key: str, grace_seconds: float) -> None:
        """Ask the pod to end: SIGTERM now, SIGKILL after ``grace_seconds``. Returns at
        once; the end is reported by :meth:`poll` as ``STOPPED``."""
        ...

    def poll(self) -> list[PodReport]:
        """Changes since the last call: pods that became ready, ended, or were killed."""
        ...

    def adopt(self, key: str, handle: dict[str, Any]) -> PodReport:
        """After a restart: find the pod from its stored handle. ``RUNNING`` if it
        still runs (it is watched again from now on), else the truth of how it ended
        (``SUCCEEDED``/``FAILED`` with its exit code when known, ``LOST`` if no trace).

        ``handle`` may be a launch intent (``{"launching": True, "launch_id", "workload_uid",
        "index", "node", "devices", ...}``), written before :meth:`launch` was called: the
        cluster finds the pod that launch started, if it did (then the report carries
        the real handle), else answers ``LOST`` (it never started)."""
        ...

    def log_path(self, key: str, handle: dict[str, Any] | None = None) -> Path | None:
        """The pod's log file (stdout and stderr), or None if it has none."""
        ...

    def endpoint(self, key: str, handle: dict[str, Any]) -> Endpoint | None:
        """Where the proxy reaches a ready pod that serves (workspace, inference), or None
        while it does not answer yet."""
        ...

    def release(self, key: str, handle: dict[str, Any]) -> None:
        """The pod ended and its workload is deleted: remove what it left on the node (its
        directory, log, secret files). Idempotent; never raises for a pod already gone."""
        ...

    def metrics(self) -> list[DeviceMetrics]:
        """Per-device usage now (cheap; may return the last sample)."""
        ...

    def close(self) -> None:
        """Stop background work (watchdog threads); leaves pods running."""
        ...
