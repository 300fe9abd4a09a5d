"""The backend-neutral pod template: one pod of a workload as a Kubernetes Pod manifest.

Pure functions, no I/O and no cluster: given what the service knows about one pod
(the workload, the pod's index, where the engine placed it, the project's data
sources and the *names* of its credentials), :func:`pod_manifest` returns the Pod
as a plain dict, the way ``kubectl`` reads it (``apiVersion``, ``kind``,
``metadata``, ``spec``). Secret values never pass through here: credentials and the
proxy's token are references to Secrets the backend creates (see
:func:`credential_secret_name` and :func:`proxy_token_secret_name`).

Names follow KAI-Scheduler where it has one (the queue label, the ``gpu-fraction``
and ``gpu-memory`` annotations, the preemptibility label); the rest is ours under
``runai/``. docs/kubernetes.md describes the result field by field.
"""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ..models import CredentialView, DataSource, Workload, WorkloadKind
from ..models.names import namespace_for
from ..models.quantity import format_cpu, format_memory

__all__ = [
    "ANNOTATION_DEVICES",
    "ANNOTATION_GPU_FRACTION",
    "ANNOTATION_GPU_FRACTION_LIMIT",
    "ANNOTATION_GPU_FRACTION_NUM_DEVICES",
    "ANNOTATION_GPU_MEMORY",
    "ANNOTATION_MIN_MEMBER",
    "GPU_RESOURCE",
    "LABEL_POD_INDEX",
    "LABEL_PREEMPTIBILITY",
    "LABEL_PROJECT",
    "LABEL_QUEUE",
    "LABEL_WORKLOAD",
    "LABEL_WORKLOAD_UID",
    "MIB",
    "Placement",
    "TemplateOptions",
    "credential_secret_name",
    "master_service_name",
    "pod_manifest",
    "proxy_token_secret_name",
]

# labels
LABEL_WORKLOAD = "runai/workload"
LABEL_WORKLOAD_UID = "runai/workload-uid"
LABEL_PROJECT = "runai/project"
LABEL_POD_INDEX = "runai/pod-index"
LABEL_QUEUE = "kai.scheduler/queue"  # KAI-Scheduler's DefaultQueueLabel
LABEL_PREEMPTIBILITY = "kai.scheduler/preemptibility"  # KAI: preemptible | non-preemptible

# annotations (KAI-Scheduler's names for GPU sharing; runai/ for what KAI has no name for)
ANNOTATION_GPU_FRACTION = "gpu-fraction"
ANNOTATION_GPU_MEMORY = "gpu-memory"  # MiB, as KAI reads it
ANNOTATION_GPU_FRACTION_NUM_DEVICES = "gpu-fraction-num-devices"
ANNOTATION_GPU_FRACTION_LIMIT = "gpu-fraction-limit"  # Run:ai's dynamic fraction
ANNOTATION_MIN_MEMBER = "kai.scheduler/batch-min-member"  # the gang minimum (PodGroup minMember)
ANNOTATION_DEVICES = "runai/devices"  # device indices the engine chose on the node

GPU_RESOURCE = "nvidia.com/gpu"
MIB = 1024 * 1024

#: the name of the main container (KAI applies a fraction to container 0; ours is the only one)
CONTAINER = "main"
#: where the init container sees a git data source's volume
_GIT_CHECKOUT = "/runai/checkout"

# A workspace with no command serves Jupyter behind the proxy: on PORT, under the proxy's
# path, with the token the proxy adds read from the environment (never the command line).
_WORKSPACE_COMMAND = (
    'export JUPYTER_TOKEN="$RUNAI_PROXY_TOKEN"; '
    'exec jupyter lab --no-browser --ip=0.0.0.0 --port="$PORT" '
    '--ServerApp.base_url="${RUNAI_PROXY_PATH:-/}" --ServerApp.root_dir="$PWD" '
    "--ServerApp.allow_origin='*' --ServerApp.open_browser=False"
)

# Clone with the values in the environment, never spliced into the shell text: a URL or
# revision is data, not code. `--` ends git's options, so nothing is read as one.
# A revision (branch, tag or commit) is fetched by name and checked out detached.
_GIT_SCRIPT = (
    'git clone -- "$RUNAI_GIT_URL" "$RUNAI_GIT_TARGET" && '
    'if [ -n "$RUNAI_GIT_REVISION" ]; then '
    'git -C "$RUNAI_GIT_TARGET" fetch -- origin "$RUNAI_GIT_REVISION" && '
    'git -C "$RUNAI_GIT_TARGET" checkout --detach FETCH_HEAD; fi'
)


@dataclass(frozen=True, slots=True)
class Placement:
    """Where the engine put one pod: the bind decision, as the backend hands it over.

    ``devices`` are indices of the node's devices; ``fraction`` is the share of each
    (None: whole devices); ``gpu_memory_limit`` the bytes per device the pod may use;
    ``gpu_fraction_limit`` the burst limit of a dynamic fraction; ``device_uuids`` the
    UUIDs of the shared devices (learned by their reservation pods), required for a
    fraction so the pod sees exactly those devices."""

    node: str
    devices: tuple[int, ...] = ()
    fraction: float | None = None
    gpu_memory_limit: int | None = None
    gpu_fraction_limit: float | None = None
    device_uuids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.node:
            raise ValueError("a placement needs a node")
        if self.fraction is not None:
            if not self.devices:
                raise ValueError("a fraction needs the devices it is a share of")
            if not 0 < self.fraction < 1:
                raise ValueError(f"a fraction is between 0 and 1 (exclusive), not {self.fraction}")
            if len(self.device_uuids) != len(self.devices):
                raise ValueError("a fractional pod needs the UUID of each of its devices "
                                 "(from their reservation pods) for NVIDIA_VISIBLE_DEVICES")


@dataclass(frozen=True, slots=True)
class TemplateOptions:
    """What a backend's configuration decides for every pod (the defaults are the documented ones)."""

    scheduler_name: str = "runai-scheduler"
    #: ``node_name``: the pod is created already bound (``spec.nodeName``); ``node_selector``:
    #: it carries ``kubernetes.io/hostname`` and is bound later through ``pods/binding``
    bind: str = "node_name"
    default_images: Mapping[str, str] = field(default_factory=lambda: {
        WorkloadKind.WORKSPACE.value: "quay.io/jupyter/base-notebook:latest",
        WorkloadKind.TRAINING.value: "python:3.12-slim",
        WorkloadKind.DISTRIBUTED.value: "python:3.12-slim",
        WorkloadKind.INFERENCE.value: "python:3.12-slim",
    })
    git_image: str = "alpine/git:latest"
    #: where relative data source targets and credential mount paths land when the workload
    #: names no absolute working_dir
    working_dir: str = "/workspace"
    port: int = 8888          # workspace and inference: the port the pod serves on
    master_port: int = 29500  # distributed: MASTER_PORT
    termination_grace_seconds: int = 30
    proxy_prefix: str = "/runai/proxy/"

    def __post_init__(self) -> None:
        if self.bind not in ("node_name", "node_selector"):
            raise ValueError(f"bind must be 'node_name' or 'node_selector', not {self.bind!r}")
        if not self.working_dir.startswith("/"):
            raise ValueError(f"working_dir must be an absolute path, not {self.working_dir!r}")


# ------------------------------------------------------------------ names


def _bounded(prefix: str, name: str, limit: int = 63) -> str:
    """``<prefix><name>``, shortened with a hash of ``name`` if it would pass ``limit`` characters
    (so two long names never meet)."""
    full = f"{prefix}{name}"
    if len(full) <= limit:
        return full
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{full[:limit - 9].rstrip('-')}-{digest}"


def credential_secret_name(workload: str, credential: str) -> str:
    """The Secret (in the project's namespace) that holds a credential's keys for one workload:
    each workload has its own copy, deleted with it (so a delete never pulls a Secret from under
    another workload). The dot cannot appear in either name (DNS labels), so two pairs never meet."""
    return _bounded("runai-credential-", f"{workload}.{credential}", 253)


def proxy_token_secret_name(workload: str) -> str:
    """The Secret (in the project's namespace, key ``token``) with the token the proxy adds
    to every request to a workspace or inference endpoint."""
    return _bounded("runai-proxy-", workload, 253)


def master_service_name(workload: str) -> str:
    """The headless Service that names a distributed workload's master (MASTER_ADDR).

    A Service name is a DNS-1035 label: it must start with a letter, which a workload
    name need not (``1bert``), hence the prefix."""
    return _bounded("master-", workload)


def inference_service_name(workload: str) -> str:
    """The Service in front of an inference workload's ready replicas
    (``inference-<workload>.runai-<project>.svc``, port 80), for clients inside the cluster."""
    return _bounded("inference-", workload)


def _volume_name(prefix: str, name: str) -> str:
    return _bounded(prefix, name)


# ---------------------------------------------------------------- pieces


def _number(value: float) -> str:
    return f"{value:g}"


def _under(base: str, relative: str) -> str:
    return posixpath.normpath(posixpath.join(base, relative))


def _labels(workload: Workload, index: int) -> dict[str, str]:
    spec = workload.spec
    return {
        LABEL_WORKLOAD: spec.name,
        LABEL_WORKLOAD_UID: workload.uid,
        LABEL_PROJECT: spec.project,
        LABEL_POD_INDEX: str(index),
        LABEL_QUEUE: spec.project,
        LABEL_PREEMPTIBILITY: "preemptible" if workload.preemptible else "non-preemptible",
    }


def _annotations(workload: Workload, index: int, placement: Placement) -> dict[str, str]:
    spec = workload.spec
    res = spec.pod_resources(index)
    out: dict[str, str] = {}
    if placement.devices:
        out[ANNOTATION_DEVICES] = ",".join(str(d) for d in placement.devices)
    if res.is_fractional and placement.fraction is not None:  # not when the engine gave whole devices
        if res.gpu_memory is not None:
            out[ANNOTATION_GPU_MEMORY] = str(-(-int(res.gpu_memory) // MIB))  # MiB, rounded up
        else:
            out[ANNOTATION_GPU_FRACTION] = _number(res.gpu)
        if res.device_count > 1:
            out[ANNOTATION_GPU_FRACTION_NUM_DEVICES] = str(res.device_count)
        if res.is_dynamic:
            out[ANNOTATION_GPU_FRACTION_LIMIT] = _number(res.gpu_limit)
    if spec.kind == WorkloadKind.DISTRIBUTED:
        out[ANNOTATION_MIN_MEMBER] = str(spec.min_pods)
    return out


def _resources(workload: Workload, index: int, placement: Placement) -> dict[str, Any]:
    res = workload.spec.pod_resources(index)
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    if res.cpu:
        requests["cpu"] = format_cpu(res.cpu)
    if res.memory:
        requests["memory"] = format_memory(res.memory)
    if res.cpu_limit is not None:
        limits["cpu"] = format_cpu(res.cpu_limit)
    if res.memory_limit is not None:
        limits["memory"] = format_memory(res.memory_limit)
    if placement.devices and placement.fraction is None:
        # whole devices (also a gpu_memory request that takes a device whole): the device
        # plugin hands them out; an extended resource is a limit (its request defaults to it)
        limits[GPU_RESOURCE] = str(len(placement.devices))
    out: dict[str, Any] = {}
    if requests:
        out["requests"] = requests
    if limits:
        out["limits"] = limits
    return out


#: variables whose value comes from the API server or a Secret: a user's own of the same name gives way
_REFERENCED = ("RUNAI_NODE", "NODE_NAME", "RUNAI_PROXY_TOKEN")


def _env(workload: Workload, index: int, placement: Placement, options: TemplateOptions) -> list[dict[str, Any]]:
    spec = workload.spec
    values: dict[str, str] = dict(spec.environment)
    gpus = len(placement.devices) * (placement.fraction if placement.fraction is not None else 1.0)
    facts: dict[str, str] = {
        "RUNAI_WORKLOAD": spec.name,
        "RUNAI_WORKLOAD_UID": workload.uid,
        "RUNAI_PROJECT": spec.project,
        "RUNAI_WORKLOAD_KIND": spec.kind.value,
        "RUNAI_POD_INDEX": str(index),
        "RUNAI_POD_NAME": spec.pod_name(index),
        "RUNAI_NUM_OF_GPUS": _number(gpus),
        # Run:ai's own names for the same facts
        "JOB_NAME": spec.name,
        "JOB_UUID": workload.uid,
        "POD_INDEX": str(index),
    }
    if placement.devices:
        fraction = placement.fraction if placement.fraction is not None else 1.0
        facts["RUNAI_GPU_FRACTION"] = facts["GPU_PORTION"] = _number(fraction)
        if placement.gpu_memory_limit is not None:
            facts["RUNAI_GPU_MEMORY_LIMIT"] = str(int(placement.gpu_memory_limit))
        if placement.gpu_fraction_limit is not None:
            facts["RUNAI_GPU_FRACTION_LIMIT"] = _number(placement.gpu_fraction_limit)
    if placement.fraction is not None:
        # no nvidia.com/gpu limit, so the device plugin gives this container nothing: it sees
        # the shared devices that the reservation pods hold, by UUID (as KAI does)
        facts["NVIDIA_VISIBLE_DEVICES"] = ",".join(placement.device_uuids)
    if spec.kind in (WorkloadKind.WORKSPACE, WorkloadKind.INFERENCE):
        facts["PORT"] = str(options.port)
        facts["RUNAI_PROXY_PATH"] = f"{options.proxy_prefix}{spec.project}/{spec.name}/"
    if spec.kind == WorkloadKind.DISTRIBUTED:
        facts.update({
            "MASTER_ADDR": master_service_name(spec.name),
            "MASTER_PORT": str(options.master_port),
            "WORLD_SIZE": str(spec.pod_count),
            "RANK": str(index),
            "NODE_RANK": str(index),
        })
    values.update(facts)  # the facts win over a user's variable of the same name, as on the local cluster
    serves = spec.kind in (WorkloadKind.WORKSPACE, WorkloadKind.INFERENCE)
    for name in _REFERENCED if serves else _REFERENCED[:2]:
        values.pop(name, None)
    env: list[dict[str, Any]] = [{"name": name, "value": value} for name, value in values.items()]
    # where the pod runs, from the API server (true however it was bound)
    for name in ("RUNAI_NODE", "NODE_NAME"):
        env.append({"name": name, "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}})
    if serves:
        env.append({"name": "RUNAI_PROXY_TOKEN", "valueFrom": {"secretKeyRef": {
            "name": proxy_token_secret_name(spec.name), "key": "token"}}})
    return env


def _command(workload: Workload) -> dict[str, list[str]]:
    command = workload.spec.command
    if command is None and workload.spec.kind == WorkloadKind.WORKSPACE:
        command = _WORKSPACE_COMMAND
    if command is None:
        return {}  # the image's own entrypoint and command
    if isinstance(command, str):
        return {"command": ["/bin/sh", "-c", command]}
    return {"command": list(command)}


def _working_dir(workload: Workload, options: TemplateOptions) -> str:
    given = workload.spec.working_dir
    if given and given.startswith("/"):
        return posixpath.normpath(given)
    return _under(options.working_dir, given) if given else options.working_dir


# ---------------------------------------------------------------- the pod


def pod_manifest(
    workload: Workload,
    index: int,
    placement: Placement,
    *,
    data_sources: Sequence[DataSource] = (),
    credentials: Sequence[CredentialView] = (),
    options: TemplateOptions | None = None,
) -> dict[str, Any]:
    """The Pod for pod ``index`` of ``workload``, placed as ``placement`` says.

    ``data_sources`` and ``credentials`` are the project's objects the workload attaches
    (by name, in the workload's order; the caller looks them up). Credentials come as
    their public views: only names and keys reach the manifest, as Secret references.
    Raises ``ValueError`` for an index the workload does not have or a data source or
    credential it does not attach."""
    options = options or TemplateOptions()
    spec = workload.spec
    if not 0 <= index < spec.pod_count:
        raise ValueError(f"workload {spec.name} has pods 0 to {spec.pod_count - 1}, not {index}")
    res = spec.pod_resources(index)
    if res.requests_gpu != bool(placement.devices):
        raise ValueError(f"pod {spec.pod_name(index)} asks for {'a' if res.requests_gpu else 'no'} GPU but its "
                         f"placement holds {len(placement.devices)} devices")
    if not res.is_fractional and placement.fraction is not None:
        raise ValueError(f"pod {spec.pod_name(index)} asks for whole devices but its placement is a fraction")
    for cred in credentials:
        if not isinstance(cred, CredentialView):
            # a Credential carries its values: the template must never hold one
            raise TypeError(f"credentials are passed as their public views (Credential.describe()), "
                            f"not {type(cred).__name__}")
    sources = {ds.name: ds for ds in data_sources}
    creds = {cred.name: cred for cred in credentials}
    for wanted, given, what in ((spec.data_sources, sources, "data source"), (spec.credentials, creds, "credential")):
        missing = [name for name in wanted if name not in given]
        extra = [name for name in given if name not in wanted]
        if missing or extra:
            raise ValueError(f"the {what}s given must be the workload's own: missing {missing}, not attached {extra}")

    workdir = _working_dir(workload, options)
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": spec.image or options.default_images[spec.kind.value],
        **_command(workload),
        "env": _env(workload, index, placement, options),
    }
    resources = _resources(workload, index, placement)
    if resources:
        container["resources"] = resources
    if spec.kind in (WorkloadKind.WORKSPACE, WorkloadKind.INFERENCE):
        container["ports"] = [{"name": "http", "containerPort": options.port, "protocol": "TCP"}]

    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    init: list[dict[str, Any]] = []
    what: dict[str, str] = {}  # volume name -> what it is, in words (for errors)
    for name in spec.data_sources:
        ds = sources[name]
        volume = _volume_name("data-", ds.name)
        target = _under(workdir, ds.target)
        what[volume] = f"data source {ds.name}"
        if ds.kind == "host_path":
            volumes.append({"name": volume, "hostPath": {"path": ds.path, "type": "Directory"}})
            mounts.append({"name": volume, "mountPath": target, "readOnly": bool(ds.read_only)})
        else:
            volumes.append({"name": volume, "emptyDir": {}})
            mounts.append({"name": volume, "mountPath": target})
            git_env = [{"name": "RUNAI_GIT_URL", "value": ds.url},
                       {"name": "RUNAI_GIT_TARGET", "value": _GIT_CHECKOUT}]
            if ds.revision:
                git_env.append({"name": "RUNAI_GIT_REVISION", "value": ds.revision})
            init.append({
                "name": _volume_name("git-", ds.name),
                "image": options.git_image,
                "command": ["/bin/sh", "-c", _GIT_SCRIPT],
                "env": git_env,
                "volumeMounts": [{"name": volume, "mountPath": _GIT_CHECKOUT}],
            })
    env_from: list[dict[str, Any]] = []
    for name in spec.credentials:
        cred = creds[name]
        secret = credential_secret_name(spec.name, cred.name)
        if cred.inject_as == "env":
            env_from.append({"secretRef": {"name": secret}})
        else:
            volume = _volume_name("credential-", cred.name)
            what[volume] = f"credential {cred.name}"
            volumes.append({"name": volume, "secret": {"secretName": secret, "defaultMode": 0o400}})
            mounts.append({"name": volume, "mountPath": _under(workdir, cred.mount_path or f".credentials/{cred.name}"),
                           "readOnly": True})
    paths: dict[str, str] = {}
    for mount in mounts:
        other = paths.setdefault(mount["mountPath"], mount["name"])
        if other != mount["name"]:
            # the API server refuses a pod with two volumes at one path; say which two
            raise ValueError(f"{what[other]} and {what[mount['name']]} would both appear at "
                             f"{mount['mountPath']}: give one of them another target or mount_path")
    if env_from:
        container["envFrom"] = env_from
    if mounts:
        container["volumeMounts"] = mounts
    if spec.working_dir or mounts:
        # relative targets are relative to where the command starts: start it there
        container["workingDir"] = workdir

    pod_spec: dict[str, Any] = {
        "schedulerName": options.scheduler_name,
        "priorityClassName": spec.priority_class.value,
        "restartPolicy": "Never",
        # a workload gets no token for the Kubernetes API (nothing it runs needs one)
        "automountServiceAccountToken": False,
        # no <SERVICE>_PORT variables for every Service of the namespace: they clash with the
        # workload's own (PORT-style settings of inference servers) and leak what else runs there
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": options.termination_grace_seconds,
        "containers": [container],
    }
    if options.bind == "node_name":
        pod_spec["nodeName"] = placement.node
    else:
        pod_spec["nodeSelector"] = {"kubernetes.io/hostname": placement.node}
    if placement.devices:
        # GPU nodes are commonly tainted so that only GPU pods land there
        pod_spec["tolerations"] = [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]
    if init:
        pod_spec["initContainers"] = init
    if volumes:
        pod_spec["volumes"] = volumes

    metadata: dict[str, Any] = {
        "name": spec.pod_name(index),
        "namespace": namespace_for(spec.project),
        "labels": _labels(workload, index),
    }
    annotations = _annotations(workload, index, placement)
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": pod_spec}
