"""GPU fractions on Kubernetes, as KAI-Scheduler shares a GPU: a **reservation pod** per shared
device. Pure functions from and to the API server's JSON; no I/O, no ``kubernetes`` import.

The device plugin hands out whole GPUs only. So, for each device that fractional pods share
(a node and a device index of the engine's), the backend creates one reservation pod in the
namespace ``runai-reservation``. It asks for ``nvidia.com/gpu: 1`` on that node, so the device
plugin and other schedulers see the whole GPU taken. It prints the UUID of the GPU the device
plugin gave it (``nvidia-smi``) and sleeps; the backend reads that line from its log
(``pods/log``, which it may read already), so the reservation pod needs no API access and
mounts no service account token. The fractional pods ask for no ``nvidia.com/gpu``. They get
that UUID in ``NVIDIA_VISIBLE_DEVICES``, and their memory limit in the environment
(``RUNAI_GPU_MEMORY_LIMIT``, as the pod template writes it). When the device's last
fractional pod ends, the backend deletes the reservation pod.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

__all__ = [
    "LABEL_RESERVATION",
    "RESERVATION_NAMESPACE",
    "is_reservation",
    "reservation_device",
    "reservation_manifest",
    "reservation_name",
    "uuid_from_log",
]

RESERVATION_NAMESPACE = "runai-reservation"
LABEL_RESERVATION = "runai/gpu-reservation"   # "true" on every reservation pod
LABEL_GPU_INDEX = "runai/gpu-index"           # the engine's device index on the node
ANNOTATION_NODE = "runai/node"                # the node (a label value holds 63 characters; a node name more)
GPU_RESOURCE = "nvidia.com/gpu"
DEFAULT_IMAGE = "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04"  # any image where the toolkit mounts nvidia-smi
_UUID = re.compile(r"\b(GPU-[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12})\b")


def reservation_name(node: str, index: int) -> str:
    """``gpu-reservation-<node>-<index>``; a name over 253 characters is cut and made unique by a hash."""
    name = f"gpu-reservation-{node}-{index}"
    if len(name) <= 253:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{name[:230]}-{digest}-{index}"


def reservation_manifest(node: str, index: int, *, image: str = DEFAULT_IMAGE,
                         scheduler_name: str) -> dict[str, Any]:
    """The pod that holds device ``index`` of ``node`` for the fractional pods that share it. It is
    created on its node (``nodeName``), asks for one GPU and tiny CPU and memory, prints its GPU's
    UUID and sleeps."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": reservation_name(node, index),
            "namespace": RESERVATION_NAMESPACE,
            "labels": {LABEL_RESERVATION: "true", LABEL_GPU_INDEX: str(index), "runai/managed": "true"},
            "annotations": {ANNOTATION_NODE: node},
        },
        "spec": {
            "nodeName": node,
            "schedulerName": scheduler_name,
            "automountServiceAccountToken": False,
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 0,
            "tolerations": [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}],
            "securityContext": {"runAsNonRoot": True, "runAsUser": 1000,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "reserve",
                "image": image,
                "command": ["sh", "-c", "nvidia-smi --query-gpu=uuid --format=csv,noheader && exec sleep infinity"],
                "env": [{"name": "NVIDIA_DRIVER_CAPABILITIES", "value": "utility"}],
                "resources": {"requests": {"cpu": "10m", "memory": "64Mi"},
                              "limits": {"memory": "128Mi", GPU_RESOURCE: "1"}},
                "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]}},
            }],
        },
    }


def is_reservation(pod: dict[str, Any]) -> bool:
    meta = pod.get("metadata") or {}
    return meta.get("namespace") == RESERVATION_NAMESPACE and \
        (meta.get("labels") or {}).get(LABEL_RESERVATION) == "true"


def reservation_device(pod: dict[str, Any]) -> tuple[str, int] | None:
    """(node, device index) that a reservation pod holds, or None for any other pod."""
    if not is_reservation(pod):
        return None
    meta = pod["metadata"]
    node = (meta.get("annotations") or {}).get(ANNOTATION_NODE) or (pod.get("spec") or {}).get("nodeName")
    try:
        return node, int((meta.get("labels") or {})[LABEL_GPU_INDEX])
    except (KeyError, ValueError):
        return None


def uuid_from_log(text: str) -> str | None:
    """The GPU UUID a reservation pod printed (one device: the one line of ``nvidia-smi``), else None."""
    found = set(_UUID.findall(text))
    return found.pop() if len(found) == 1 else None
