"""Kernels that are workloads: the ``runai-provisioner`` kernel provisioner (see docs/kernels.md)."""

from .provisioner import KernelStartError, RunaiProvisioner, workload_name

__all__ = ["KernelStartError", "RunaiProvisioner", "workload_name"]
