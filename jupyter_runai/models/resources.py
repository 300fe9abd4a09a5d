"""What one pod asks for: GPUs (whole, fraction, memory, on N devices), CPU, memory.

GPU request forms (``gpu`` is in devices):

* none: ``gpu: 0`` (the default) and no ``gpu_memory``;
* whole devices: ``gpu: 2``;
* a fraction of one device: ``gpu: 0.5``;
* an amount of device memory: ``gpu_memory: "20Gi"`` (not together with ``gpu``);
* the same fraction (or memory) on each of N devices of one node:
  ``gpu: 0.5, gpu_devices: 4``;
* a dynamic fraction, guaranteed request and burst limit:
  ``gpu: 0.25, gpu_limit: 0.75``.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, PlainSerializer, ValidationInfo, WithJsonSchema, model_validator

from .base import RunaiModel
from .validation import Problems, invalid
from .quantity import Cpu, Memory

__all__ = ["GPU_AMOUNT_MAX", "GPU_RULE", "POD_DEVICES_MAX", "Gpu", "GpuAmount", "Resources"]

#: the most devices one pod may hold (whole ``gpu``, or ``gpu_devices`` with a fraction)
POD_DEVICES_MAX = 1024
#: the most GPUs a quota (deserved, limit) may state
GPU_AMOUNT_MAX = 1_000_000

GPU_RULE = (f"a whole number of devices (0, 1, 2, ... up to {POD_DEVICES_MAX}) or a fraction between 0 and 1 "
            "(exclusive)")


def _number(value: Any, info: ValidationInfo, rule: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise invalid(info.field_name, f"must be {rule}", allowed=rule, got=value)
    try:
        number = float(value)
    except (ValueError, OverflowError):  # float(10**400) overflows
        raise invalid(info.field_name, f"must be {rule}", allowed=rule, got=value) from None
    if not math.isfinite(number):
        raise invalid(info.field_name, f"must be {rule}", allowed=rule, got=value)
    return number


def _check_gpu(value: Any, info: ValidationInfo) -> float:
    number = _number(value, info, GPU_RULE)
    if number < 0 or (number >= 1 and not number.is_integer()) or number > POD_DEVICES_MAX:
        raise invalid(info.field_name, f"must be {GPU_RULE}", allowed=GPU_RULE, got=value)
    return number


def _check_gpu_amount(value: Any, info: ValidationInfo) -> float:
    rule = f"a number of devices, 0 to {GPU_AMOUNT_MAX} (fractions allowed, e.g. 2.5)"
    number = _number(value, info, rule)
    if not 0 <= number <= GPU_AMOUNT_MAX:
        raise invalid(info.field_name, f"must be {rule}", allowed=f"0 <= gpu <= {GPU_AMOUNT_MAX}", got=value)
    return number


def _check_gpu_limit(value: Any, info: ValidationInfo) -> float:
    rule = "a fraction of one device, more than 0 and at most 1"
    number = _number(value, info, rule)
    if not 0 < number <= 1:
        raise invalid(info.field_name, f"must be {rule}", allowed="0 < gpu_limit <= 1", got=value)
    return number


def _check_devices(value: Any, info: ValidationInfo) -> int:
    rule = f"a whole number of devices, 1 to {POD_DEVICES_MAX}"
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not 1 <= value <= POD_DEVICES_MAX
            or value != int(value)):  # the range first: int() of inf or nan raises
        raise invalid(info.field_name, f"must be {rule}", allowed=f"1 <= n <= {POD_DEVICES_MAX}", got=value)
    return int(value)


def compact_number(value: float) -> int | float:
    """Write whole numbers without a decimal point (``gpu: 2``, not ``2.0``)."""
    return int(value) if float(value).is_integer() else value


Compact = PlainSerializer(compact_number)

# the document states the rules the validators check, so that clients (and fuzzers) can see them
Gpu = Annotated[float, BeforeValidator(_check_gpu), Compact, WithJsonSchema({"anyOf": [
    {"type": "integer", "minimum": 0, "maximum": POD_DEVICES_MAX},
    {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}]})]
"""A GPU request: 0, whole devices (1, 2, ...) or a fraction of one device (0 < gpu < 1)."""

GpuAmount = Annotated[float, BeforeValidator(_check_gpu_amount), Compact]
"""A number of GPU devices for quotas: any number 0 or more (2.5 is fine)."""

GpuLimit = Annotated[float, BeforeValidator(_check_gpu_limit), Compact,
                     WithJsonSchema({"type": "number", "exclusiveMinimum": 0, "maximum": 1})]
DeviceCount = Annotated[int, BeforeValidator(_check_devices),
                        WithJsonSchema({"type": "integer", "minimum": 1, "maximum": POD_DEVICES_MAX})]


class Resources(RunaiModel):
    """Resources of one pod. Requests default to 0; an unset limit means unlimited."""

    gpu: Gpu = Field(
        default=0,
        description=(
            "GPU devices: 0 for none, a whole number (1, 2, ...) for whole devices, or a fraction "
            "0 < gpu < 1 of one device. With gpu_devices, the fraction on each of that many devices."
        ),
        examples=[1, 0.5],
    )
    gpu_memory: Memory | None = Field(
        default=None,
        description=(
            "GPU memory per device as a quantity ('20Gi'), instead of a fraction: the pod gets the "
            "share of one device that holds this much memory. Not together with gpu."
        ),
        examples=["20Gi"],
    )
    gpu_devices: DeviceCount | None = Field(
        default=None,
        description=(
            "Number of devices (of one node) that each get the fraction or gpu_memory. Only with a "
            "fractional gpu or gpu_memory; unset means 1. For whole devices use gpu: N."
        ),
        examples=[4],
    )
    gpu_limit: GpuLimit | None = Field(
        default=None,
        description=(
            "Dynamic fraction: the fraction of each device the pod may burst to when the device has "
            "room (gpu <= gpu_limit <= 1). Only with a fractional gpu; unset means the limit is the request."
        ),
        examples=[0.75],
    )
    cpu: Cpu = Field(default=0, description="CPU request: cores (2, '1.5') or millicores ('500m'). Default 0.")
    cpu_limit: Cpu | None = Field(
        default=None, description="CPU limit, same units as cpu, at least cpu. Unset means unlimited."
    )
    memory: Memory = Field(default=0, description="Memory request as a quantity ('8Gi', '512Mi'). Default 0.")
    memory_limit: Memory | None = Field(
        default=None, description="Memory limit, same units as memory, at least memory. Unset means unlimited."
    )

    @model_validator(mode="after")
    def _check_combinations(self) -> "Resources":
        problems = Problems("Resources")
        fractional_gpu = 0 < self.gpu < 1
        if self.gpu_memory is not None:
            if self.gpu_memory <= 0:
                problems.add("gpu_memory", "must be more than 0 (a quantity such as '20Gi')", allowed="> 0",
                             got=self.gpu_memory)
            if self.gpu > 0:
                problems.add(
                    "gpu_memory",
                    "cannot be combined with gpu: ask for a fraction (gpu: 0.5) or for memory "
                    "(gpu_memory: '20Gi'), not both",
                    allowed="unset when gpu > 0",
                    got=self.model_dump(include={"gpu", "gpu_memory"}),
                )
        if self.gpu_devices is not None and not (fractional_gpu or self.gpu_memory is not None):
            problems.add(
                "gpu_devices",
                "only with a fractional gpu (0 < gpu < 1) or gpu_memory; for whole devices use gpu: N",
                allowed="unset unless 0 < gpu < 1 or gpu_memory is set",
                got=self.gpu_devices,
            )
        if self.gpu_limit is not None:
            if not fractional_gpu:
                problems.add(
                    "gpu_limit",
                    "only with a fractional gpu (0 < gpu < 1): the limit of a dynamic fraction",
                    allowed="unset unless 0 < gpu < 1",
                    got=self.gpu_limit,
                )
            elif self.gpu_limit < self.gpu:
                problems.add(
                    "gpu_limit",
                    f"must be at least the request gpu ({self.gpu:g}) and at most 1",
                    allowed=f"{self.gpu:g} <= gpu_limit <= 1",
                    got=self.gpu_limit,
                )
        for request, limit in (("cpu", "cpu_limit"), ("memory", "memory_limit")):
            limit_value = getattr(self, limit)
            if limit_value is not None and limit_value < getattr(self, request):
                shown = self.model_dump(include={request})[request]
                problems.add(
                    limit,
                    f"must be at least the request {request} ({shown}), or unset for unlimited",
                    allowed=f">= {shown}",
                    got=self.model_dump(include={limit})[limit],
                )
        problems.raise_if_any()
        return self

    # ----------------------------------------------------------- helpers

    @property
    def requests_gpu(self) -> bool:
        """True when the pod asks for any GPU (devices, fraction or memory)."""
        return self.gpu > 0 or self.gpu_memory is not None

    @property
    def is_fractional(self) -> bool:
        """True when the pod shares devices: a fraction (0 < gpu < 1) or gpu_memory."""
        return 0 < self.gpu < 1 or self.gpu_memory is not None

    @property
    def is_dynamic(self) -> bool:
        """True for a dynamic fraction: a gpu_limit above the request."""
        return self.gpu_limit is not None and self.gpu_limit > self.gpu

    @property
    def device_count(self) -> int:
        """How many devices the pod touches: gpu for whole devices, gpu_devices (or 1) when fractional."""
        if self.is_fractional:
            return self.gpu_devices or 1
        return int(self.gpu)

    def fraction_of(self, device_memory: int | None = None) -> float:
        """The share of each touched device: 1.0 for whole devices, the fraction, or
        gpu_memory / device_memory (at most 1) for a memory request, which needs the
        device's memory in bytes."""
        if not self.requests_gpu:
            return 0.0
        if self.gpu_memory is not None:
            if not device_memory:
                raise ValueError("a gpu_memory request needs the device's memory (bytes) to become a fraction")
            return min(1.0, self.gpu_memory / device_memory)
        return self.gpu if self.gpu < 1 else 1.0

    def total_gpus(self, device_memory: int | None = None) -> float:
        """GPUs that count against quota: whole devices, or fraction x devices.

        A ``gpu_memory`` request counts as ``gpu_memory / device_memory`` per device,
        so it needs ``device_memory`` (bytes of the device it lands on).
        """
        if not self.requests_gpu:
            return 0.0
        if not self.is_fractional:
            return float(self.gpu)
        return self.fraction_of(device_memory) * self.device_count
