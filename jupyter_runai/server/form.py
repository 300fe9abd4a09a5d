"""What the submit forms (the sidebar's "New workload" form) need to know: per-field defaults
and bounds, derived from the cluster and the configured node pools.

Served in ``GET /runai/api/v1/info`` under ``form``. When policies exist they narrow these
(defaults, min/max, allowed values); front ends only read this block and never hard-code a bound.
"""

from __future__ import annotations

from typing import Any, Iterable

from ..models import Node, NodePool, WorkloadKind
from ..models.priority import PriorityClass
from ..models.quantity import format_cpu, format_memory

#: the fraction slider's steps (also the fractions a user most often asks for)
FRACTION_STEPS = [0.25, 0.5, 0.75]

#: fields each kind has beyond the common ones
KIND_FIELDS: dict[str, list[str]] = {
    "workspace": [],
    "training": ["backoff_limit"],
    "distributed": ["workers"],
    "inference": ["min_replicas", "max_replicas"],
}

KIND_LABELS = {
    "workspace": "Workspace (interactive JupyterLab)",
    "training": "Training",
    "distributed": "Distributed training (master + workers)",
    "inference": "Inference endpoint",
}

#: a command that shows something on the local cluster when the user leaves it as is
DEFAULT_COMMANDS = {
    "training": "python -c \"import os; print('hello from', os.environ['RUNAI_WORKLOAD'])\"",
    "distributed": "python -c \"import os; print('rank', os.environ['RANK'], 'of', os.environ['WORLD_SIZE'])\"",
    "inference": "python -m http.server $PORT",
    "workspace": "",
}


def form_info(nodes: Iterable[Node], pools: Iterable[NodePool], projects: list[str],
              runs_images: bool = True) -> dict[str, Any]:
    """Defaults and bounds of every field of the submit form, from what the cluster has.

    ``runs_images``: the cluster runs a workload's image. The local cluster does not (it runs
    the command in the server's environment): there the image is empty by default, so a form
    left as it is records no image that nothing runs."""
    nodes = list(nodes)
    devices_per_node = max((len(n.devices) for n in nodes), default=0)
    total_devices = sum(len(n.devices) for n in nodes)
    device_memory = max((d.memory for n in nodes for d in n.devices), default=0)
    max_cpu = max((n.cpu for n in nodes), default=0)
    max_memory = max((n.memory for n in nodes), default=0)
    pool_names = [p.name for p in pools]
    if "default" not in pool_names:
        pool_names.append("default")
    return {
        "kinds": [{"name": k.value, "label": KIND_LABELS[k.value], "fields": KIND_FIELDS[k.value]}
                  for k in WorkloadKind],
        "defaults": {
            "kind": "training",
            "project": projects[0] if projects else "default",
            "gpu_mode": "whole",
            "gpu": 1 if total_devices else 0,
            "fraction": 0.5,
            "gpu_memory": format_memory(device_memory // 2) if device_memory else None,
            "gpu_devices": 1,
            "cpu": "100m",  # as Run:ai: a tenth of a core, so a small machine runs many workloads
            "memory": "128Mi",
            "image": "python:3.11" if runs_images else "",
            "commands": DEFAULT_COMMANDS,
            "workers": 1,
            "min_replicas": 1,
            "max_replicas": 1,
            "backoff_limit": 0,
        },
        "bounds": {
            "gpu": {"min": 0, "max": devices_per_node, "step": 1},
            "fraction": {"min": FRACTION_STEPS[0], "max": FRACTION_STEPS[-1], "steps": FRACTION_STEPS},
            "gpu_limit": {"min": FRACTION_STEPS[0], "max": 1},
            "gpu_memory": {"max": format_memory(device_memory) if device_memory else None},
            "gpu_devices": {"min": 1, "max": max(devices_per_node, 1)},
            "cpu": {"max": format_cpu(max_cpu) if max_cpu else None},
            "memory": {"max": format_memory(max_memory) if max_memory else None},
            "workers": {"min": 1, "max": max(total_devices * 4, 8)},
            "replicas": {"min": 1, "max": max(total_devices * 4, 8)},
            "backoff_limit": {"min": 0, "max": 10},
        },
        "node_pools": pool_names,
        # the named priority classes, lowest first (unset: by kind)
        "priority_classes": [c.value for c in PriorityClass],
        "name_pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        "name_max": 63,
    }
