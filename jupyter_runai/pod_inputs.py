"""What a pod gets besides its command: its credentials (environment variables and secret
files) and its data sources (mounts).

Helpers of the service: they read the project's definitions from the store and turn them into
the cluster protocol's ``FileToWrite`` and ``Mount`` items.
"""

from __future__ import annotations

from .clusters.base import FileToWrite, Mount
from .models import WorkloadSpec


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
