"""A KAI-Scheduler installation's ``Queue`` objects (``scheduling.run.ai/v2``, cluster-scoped)
read as our departments and projects, so that its queues carry over (opt-in:
``c.KubernetesCluster.kai_queues = True``).

KAI's tree has any depth; ours has two levels. The mapping:

* a **leaf** queue (no queue names it as parent) is a **project**, in the department of its
  parent queue; a leaf with no parent is a project in a department of its own name, with the
  same quotas;
* a queue that is some leaf's parent is a **department**. Queues higher up are not read: their
  quotas do not apply (said in a problem line);
* per resource (``gpu``, ``cpu``, ``memory``): ``quota`` is ``deserved``, ``limit`` is ``limit``
  and the GPU's ``overQuotaWeight`` is ``over_quota_weight``. KAI's units are kept: GPUs in
  devices, CPU in millicores, memory in MB (10^6 bytes). A ``limit`` of ``-1`` is no limit;
  ``0`` or unset (KAI: nothing beyond quota) is a limit equal to the quota. A ``quota`` of ``-1``
  (unlimited) has no equal here: it is read as 0 and said in a problem line;
* ``priority``, ``preemptMinRuntime`` and ``reclaimMinRuntime`` carry over.

A queue that cannot be read (a name that is not a DNS label, a value out of range) is left out,
with the reason in a problem line. :func:`queue_config` is pure; :class:`KaiQueues` keeps the
objects with a list+watch cache.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from pydantic import ValidationError

from ..models import Department, Project, format_validation_error
from ..models.queues import QUEUE_PRIORITY_MAX
from .kube_informer import Informer

__all__ = ["GROUP", "KaiQueueConfig", "KaiQueues", "PLURAL", "VERSION", "queue_config"]

GROUP, VERSION, PLURAL = "scheduling.run.ai", "v2", "queues"
RESOURCES = ("gpu", "cpu", "memory")
MAX_QUEUES = 10_000  # queues read at most (every count is bounded)


@dataclass(slots=True)
class KaiQueueConfig:
    departments: list[Department] = field(default_factory=list)
    projects: list[Project] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # what was left out or read differently, in words


def _amount(resource: str, value: Any) -> Any:
    """A KAI amount in our units: GPUs as is, CPU millicores as ``<n>m``, memory MB as ``<n>M``."""
    if resource == "gpu":
        return float(value)
    return f"{int(value)}m" if resource == "cpu" else f"{int(value)}M"


def _quotas(name: str, spec: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    resources = spec.get("resources") or {}
    deserved: dict[str, Any] = {}
    limit: dict[str, Any] = {}
    weights = set()
    for resource in RESOURCES:
        given = resources.get(resource) or {}
        quota, cap = given.get("quota"), given.get("limit")
        if quota is not None and float(quota) < 0:
            problems.append(f"queue {name}: {resource} quota -1 (unlimited) has no equal in jupyter-runai; "
                            "read as 0 deserved: give it a number")
            quota = None
        if quota is not None and float(quota) > 0:
            deserved[resource] = _amount(resource, quota)
        if cap is not None and float(cap) < 0:
            pass  # -1: no limit
        elif cap is None or float(cap) == 0:
            limit[resource] = deserved.get(resource, 0)  # KAI: nothing beyond the quota
        else:
            limit[resource] = _amount(resource, max(float(cap), float(quota or 0)))
        if "overQuotaWeight" in given:
            weights.add(float(given["overQuotaWeight"]))
    gpu_weight = ((resources.get("gpu") or {}).get("overQuotaWeight"))
    if len(weights) > 1:
        problems.append(f"queue {name}: one over-quota weight per queue here; the GPU's ({gpu_weight}) is used")
    out: dict[str, Any] = {"deserved": deserved, "limit": limit}
    weight = gpu_weight if gpu_weight is not None else (next(iter(weights)) if weights else None)
    if weight is not None:
        out["over_quota_weight"] = max(0.0, float(weight))
    if spec.get("priority") is not None:
        out["priority"] = max(0, min(QUEUE_PRIORITY_MAX, int(spec["priority"])))
    for ours, theirs in (("preempt_min_runtime", "preemptMinRuntime"), ("reclaim_min_runtime", "reclaimMinRuntime")):
        if spec.get(theirs):
            out[ours] = spec[theirs]
    return out


def queue_config(queues: list[dict[str, Any]]) -> KaiQueueConfig:
    """Departments and projects from KAI ``Queue`` objects (as the API server gives them)."""
    config = KaiQueueConfig()
    problems = config.problems
    if len(queues) > MAX_QUEUES:
        problems.append(f"{len(queues)} queues: only the first {MAX_QUEUES} by name are read")
    by_name = {q["metadata"]["name"]: q for q in sorted(queues, key=lambda q: q["metadata"]["name"])[:MAX_QUEUES]}
    parent = {name: (q.get("spec") or {}).get("parentQueue") or None for name, q in by_name.items()}
    has_children = {p for p in parent.values() if p}
    leaves = [name for name in by_name if name not in has_children]
    departments: dict[str, dict] = {}
    for name in leaves:
        up = parent[name]
        if up is not None and up not in by_name:
            problems.append(f"queue {name}: its parent queue {up} does not exist; left out")
            continue
        department = up or name
        if up is not None and parent.get(up):
            problems.append(f"queue {up}: its parent {parent[up]} is above the two levels jupyter-runai reads "
                            "(department, project); its quotas do not apply")
        departments.setdefault(department, by_name[department])
        try:
            config.projects.append(Project.model_validate(
                {"name": name, "department": department, **_quotas(name, by_name[name].get("spec") or {}, problems)}))
        except (ValidationError, ValueError, TypeError) as exc:
            problems.append(f"queue {name} left out: {_why(exc)}")
    for name, queue in departments.items():
        try:
            config.departments.append(Department.model_validate(
                {"name": name, **_quotas(name, queue.get("spec") or {}, problems)}))
        except (ValidationError, ValueError, TypeError) as exc:
            problems.append(f"queue {name} (a department) left out: {_why(exc)}")
            config.projects = [p for p in config.projects if p.department != name]
    config.problems = list(dict.fromkeys(problems))
    return config


def _why(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return format_validation_error(exc)[0]["message"]
    return str(exc)


class KaiQueues:
    """The cluster's KAI ``Queue`` objects, kept by a list+watch cache; :meth:`config` converts
    them once per change."""

    def __init__(self, list_fn: Callable[[], tuple[list[dict], str]], watch_fn: Callable[[str, int], Any], *,
                 watch_seconds: int) -> None:
        self._lock = threading.Lock()
        self.version = 0
        self._config: tuple[int, KaiQueueConfig] | None = None
        self.informer = Informer("queues", list_fn, watch_fn, self._changed, watch_seconds=watch_seconds)

    def _changed(self, kind: str, old: dict | None, new: dict | None) -> None:
        with self._lock:
            self.version += 1

    def config(self) -> tuple[int, KaiQueueConfig] | None:
        """(a version that changes with the objects, what they mean), or None until first listed."""
        if not self.informer.synced.is_set():
            return None
        with self._lock:
            version = self.version
        if self._config is None or self._config[0] != version:
            self._config = (version, queue_config(self.informer.items()))
        return self._config
