"""What the submit forms (the sidebar's "New workload" form) need to know: per-field defaults
and bounds, derived from the cluster and the configured node pools.

Served in ``GET /runai/api/v1/info`` under ``form``. When policies exist they narrow these
(defaults, min/max, allowed values); front ends only read this block and never hard-code a bound.
"""

from __future__ import annotations

from typing import Any, Iterable

from ..models import Node, NodePool, WorkloadKind
from ..models.priority import PriorityClass
from ..models.quantity import QuantityError, format_cpu, format_memory, parse_cpu, parse_memory

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


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _smaller_quantity(current: str | None, limit: Any, parse) -> str | None:
    """The smaller of the form's bound and a policy's max (quantity texts); either may be missing."""
    if limit is None:
        return current
    try:
        if current is None or parse(limit) < parse(current):
            return limit if isinstance(limit, str) else str(limit)
    except (ValueError, QuantityError):
        return current
    return current


def _by(rule: dict[str, Any]) -> str:
    """Whose bound it is, for the form's messages: "the project 'vision' policy"."""
    return f"the {' and '.join(rule.get('from') or ['workload'])} policy"


def narrow_form(form: dict[str, Any], effective: dict[str, Any]) -> dict[str, Any]:
    """The form's defaults and bounds with an effective policy (``policy_admin.effective_policy``)
    applied: its defaults replace the form's, its rules narrow the bounds (never widen them: a policy
    max above what a node has leaves the node's bound). ``form`` is not changed."""
    defaults = {**form["defaults"], "project": effective.get("project", form["defaults"].get("project")),
                "kind": effective.get("kind", form["defaults"].get("kind"))}
    bounds = {key: dict(value) for key, value in form["bounds"].items()}
    given, rules = effective.get("defaults") or {}, effective.get("rules") or {}
    gpu = _number(given.get("resources.gpu"))
    if gpu == 0:
        defaults["gpu_mode"] = "none"
    elif gpu is not None and gpu >= 1:
        defaults.update(gpu_mode="whole", gpu=int(gpu))
    elif gpu is not None:
        defaults.update(gpu_mode="fraction", fraction=gpu)
    if isinstance(given.get("resources.gpu_memory"), str):
        defaults.update(gpu_mode="memory", gpu_memory=given["resources.gpu_memory"])
    for path, key in (("resources.cpu", "cpu"), ("resources.memory", "memory"), ("image", "image")):
        if given.get(path) is not None:
            defaults[key] = str(given[path])
    for key in ("workers", "min_replicas", "max_replicas", "backoff_limit"):
        if _number(given.get(key)) is not None:
            defaults[key] = int(given[key])

    rule = rules.get("resources.gpu") or {}
    most, least, step = _number(rule.get("max")), _number(rule.get("min")), _number(rule.get("step"))
    fraction = bounds["fraction"]
    if most is not None:
        if int(most) < bounds["gpu"]["max"]:
            bounds["gpu"]["by"] = _by(rule)
        bounds["gpu"]["max"] = min(bounds["gpu"]["max"], int(most))
        fraction["max"] = min(fraction["max"], most)
    if least is not None:
        bounds["gpu"]["min"] = max(bounds["gpu"]["min"], least)
        fraction["min"] = max(fraction["min"], least)
    steps = [v for v in fraction["steps"] if fraction["min"] <= v <= fraction["max"]
             and (step is None or abs(v / step - round(v / step)) < 1e-9)]
    if isinstance(rule.get("allowed"), list):
        steps = [v for v in steps if v in rule["allowed"]]
    fraction["steps"] = steps
    for path, key, parse in (("resources.gpu_memory", "gpu_memory", parse_memory), ("resources.cpu", "cpu", parse_cpu),
                             ("resources.memory", "memory", parse_memory)):
        before = bounds[key].get("max")
        bounds[key]["max"] = _smaller_quantity(before, (rules.get(path) or {}).get("max"), parse)
        if bounds[key]["max"] != before:
            bounds[key]["by"] = _by(rules[path])
    for path, key in (("workers", "workers"), ("max_replicas", "replicas"), ("backoff_limit", "backoff_limit")):
        rule = rules.get(path) or {}
        if _number(rule.get("max")) is not None:
            bounds[key]["max"] = min(bounds[key]["max"], int(rule["max"]))
        if _number(rule.get("min")) is not None:
            bounds[key]["min"] = max(bounds[key]["min"], int(rule["min"]))
    out = {**form, "defaults": defaults, "bounds": bounds}
    for path, key in (("node_pools", "node_pools"), ("priority_class", "priority_classes")):
        allowed = (rules.get(path) or {}).get("allowed")
        if isinstance(allowed, list) and key in form:
            out[key] = [v for v in form[key] if v in allowed]
    return out
