"""Nodes and their GPU devices, and the per-device view used for monitoring."""

from __future__ import annotations

from typing import Optional

from pydantic import Field, model_validator

from .base import RunaiModel
from .validation import Problems
from .names import LabelKey, LabelValue, NodeName
from .quantity import Cpu, Memory

__all__ = ["DeviceAllocation", "GpuDevice", "Node"]


class GpuDevice(RunaiModel):
    """One GPU of a node, real (found by NVML) or virtual (declared, for machines without one)."""

    index: int = Field(ge=0, description="Device index on its node, from 0 (as in CUDA_VISIBLE_DEVICES).")
    uuid: str = Field(min_length=1, description="Device UUID ('GPU-...'), unique in the cluster.")
    model: str = Field(min_length=1, description="Product name, e.g. 'NVIDIA H200'.", examples=["NVIDIA H200"])
    memory: Memory = Field(description="Device memory as a quantity ('141Gi'); stored in bytes.")
    virtual: bool = Field(
        default=False,
        description="True for a declared GPU without hardware: scheduled like a real one, shown as virtual.",
    )

    @model_validator(mode="after")
    def _has_memory(self) -> "GpuDevice":
        if self.memory <= 0:
            problems = Problems("GpuDevice")
            problems.add("memory", "must be more than 0 (a quantity such as '80Gi')", allowed="> 0", got=self.memory)
            problems.raise_if_any()
        return self


class Node(RunaiModel):
    """A machine that runs pods: its labels, allocatable CPU and memory, and GPU devices."""

    name: NodeName = Field(description="Node name (its host name).", examples=["gpu-node-1"])
    labels: dict[LabelKey, LabelValue] = Field(
        default_factory=dict, description="Node labels; node pools select nodes by them."
    )
    cpu: Cpu = Field(description="Allocatable CPU: cores or millicores ('500m'); stored in millicores.")
    memory: Memory = Field(description="Allocatable memory as a quantity ('512Gi'); stored in bytes.")
    devices: list[GpuDevice] = Field(default_factory=list, description="The node's GPU devices.")
    schedulable: bool = Field(default=True, description="False when cordoned: no new pods are placed.")
    gpu_memory_swap: Memory = Field(
        default=0,
        description="Host memory set aside to swap out the GPU memory of idle fractions, letting "
        "fractions over-commit device memory up to this much. Default 0: swap off.",
    )

    @model_validator(mode="after")
    def _distinct_devices(self) -> "Node":
        problems = Problems("Node")
        seen_index: set[int] = set()
        seen_uuid: set[str] = set()
        for position, device in enumerate(self.devices):
            if device.index in seen_index:
                problems.add(("devices", position, "index"), "must be distinct on a node",
                             allowed="distinct indices", got=device.index)
            if device.uuid in seen_uuid:
                problems.add(("devices", position, "uuid"), "must be distinct on a node",
                             allowed="distinct UUIDs", got=device.uuid)
            seen_index.add(device.index)
            seen_uuid.add(device.uuid)
        problems.raise_if_any()
        return self

    @property
    def gpu_count(self) -> int:
        """Number of GPU devices."""
        return len(self.devices)

    def device(self, index: int) -> GpuDevice:
        """The device with this index (KeyError if none)."""
        for device in self.devices:
            if device.index == index:
                return device
        raise KeyError(f"node {self.name!r} has no device {index}")


class DeviceAllocation(GpuDevice):
    """One device as monitoring shows it: what is allocated on it and what is used."""

    node: NodeName = Field(description="Node the device belongs to.")
    allocated_fraction: float = Field(
        default=0, ge=0, le=1, description="Share of the device allocated to pods (0 to 1; never over-committed)."
    )
    allocated_memory: Memory = Field(
        default=0, description="Device memory reserved for pods; may exceed the device's with swap on."
    )
    used_memory: Optional[Memory] = Field(
        default=None, description="Device memory in use (NVML). Unset: not measured (e.g. virtual)."
    )
    utilization: Optional[float] = Field(
        default=None, ge=0, le=100, description="Compute utilization, percent 0-100 (NVML). Unset: not measured."
    )
    pods: list[str] = Field(default_factory=list, description="Pods holding the device, as <project>/<pod>.")

    @property
    def free_fraction(self) -> float:
        """Share of the device not allocated."""
        return max(0.0, 1.0 - self.allocated_fraction)
