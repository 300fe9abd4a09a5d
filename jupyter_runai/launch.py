"""What a pod gets besides its command: credentials, data sources, and how a request reads.

Pure helpers of the service: they read the project's definitions from the store and
turn them into the cluster protocol's ``FileToWrite`` and ``Mount`` items.
"""

from __future__ import annotations

from .clusters.base import FileToWrite, Mount
from .models import WorkloadKind, WorkloadSpec

GIB = 1024 ** 3


def credential_material(store, spec: WorkloadSpec) -> tuple[dict[str, str], list[FileToWrite]]:
    """The workload's credentials: environment variables, and files (mode 0600) under their mount path."""
    env: dict[str, str] = {}
    files: list[FileToWrite] = []
    for name in spec.credentials:
        cred = store.credential(spec.project, name)
        if cred is None:
            continue
        for key, secret in cred.data.items():
            value = secret.get_secret_value()
            if cred.inject_as == "env":
                env[key] = value
            else:
                files.append(FileToWrite(f"{cred.mount_path}/{key}", value.encode()))
    return env, files


def data_mounts(store, spec: WorkloadSpec) -> list[Mount]:
    """The workload's data sources as mounts: host paths and git repositories."""
    out = []
    for name in spec.data_sources:
        ds = store.data_source(spec.project, name)
        if ds is None:
            continue
        if ds.kind == "git":
            out.append(Mount("git", ds.url, ds.target, True, ds.revision))
        else:
            out.append(Mount("host_path", ds.path, ds.target, ds.read_only))
    return out


def describe_request(spec: WorkloadSpec) -> str:
    """``training, 0.5 of a GPU`` / ``distributed, 1 GPU, 3 pods`` / ``inference, ..., 1 to 3 replicas``."""
    res = spec.resources
    if res.gpu_memory is not None:
        gpu = f"{res.gpu_memory / GIB:g}Gi of GPU memory"
    elif res.is_fractional:
        gpu = f"{res.gpu:g} of a GPU"
    elif res.gpu:
        gpu = f"{int(res.gpu)} GPU{'s' if res.gpu != 1 else ''}"
    else:
        gpu = "no GPU"
    if res.is_fractional and (res.gpu_devices or 1) > 1:
        gpu += f" on each of {res.gpu_devices} devices"
    if spec.kind == WorkloadKind.INFERENCE:
        pods = f", {spec.min_replicas} to {spec.max_replicas} replicas"
    else:
        pods = f", {spec.pod_count} pods" if spec.pod_count > 1 else ""
    return f"{spec.kind.value}, {gpu}{pods}"
