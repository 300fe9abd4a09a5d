"""A workload's GPU request in words, as people say it ('1 GPU', '2 GPUs', '0.5 x 4 GPUs',
'1 GPU x 4 pods'): one wording for the CLI's tables and the Python client's objects (magics,
widgets). Pure functions; no import beyond the standard library."""

from __future__ import annotations

from typing import Any

__all__ = ["gpu_request_text", "workload_request_text"]


def _num(value: Any) -> str:
    """2 -> '2', 0.5 -> '0.5', 0.30000000000000004 -> '0.3'."""
    if value is None:
        return "-"
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return str(value)


def _gpus(value: float) -> str:
    return f"{_num(value)} GPU" + ("" if float(value) <= 1 else "s")


def gpu_request_text(resources: dict[str, Any] | None) -> str:
    """A pod's GPU request as people say it: '1 GPU', '2 GPUs', '0.5 GPU', '20Gi GPU memory',
    '0.5 x 4 GPUs', '0.25 GPU (burst to 0.75)'; '-' for none."""
    resources = resources or {}
    gpu = float(resources.get("gpu") or 0)
    memory = resources.get("gpu_memory")
    devices = resources.get("gpu_devices")
    limit = resources.get("gpu_limit")
    if memory:
        text = f"{memory} GPU memory"
        if devices and int(devices) > 1:
            text = f"{memory} x {int(devices)} GPUs memory"
        return text
    if gpu <= 0:
        return "-"
    if gpu >= 1:
        return _gpus(gpu)
    text = f"{_num(gpu)} x {int(devices)} GPUs" if devices and int(devices) > 1 else f"{_num(gpu)} GPU"
    if limit is not None and float(limit) > gpu:
        text += f" (burst to {_num(limit)})"
    return text


def workload_request_text(spec: dict[str, Any]) -> str:
    """The GPU request of a whole workload: the per-pod request and the pods, when there are several."""
    text = gpu_request_text(spec.get("resources"))
    kind = spec.get("kind")
    if kind == "distributed":
        pods = int(spec.get("workers") or 0) + (0 if spec.get("master") is False else 1)
        if text != "-" and pods > 1:
            text += f" x {pods} pods"
    elif kind == "inference":
        low = spec.get("min_replicas") or 1
        high = spec.get("max_replicas") or low
        replicas = f"{low}" if low == high else f"{low}-{high}"
        if text != "-" and (low != 1 or high != 1):
            text += f" x {replicas} replicas"
    return text
