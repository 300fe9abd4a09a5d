"""The queue file: departments, projects and node pools for the service (YAML or JSON).

Example (``runai-queues.yaml``; JSON with the same keys works too)::

    departments:
      - name: research
        deserved: {gpu: 8}
    projects:
      - name: vision
        department: research
        deserved: {gpu: 4}
        limit: {gpu: 6}
      - name: nlp
        department: research
        deserved: {gpu: 4}
        over_quota_weight: 2
    node_pools:
      - name: a100
        label_selector: {gpu-type: a100}

Every entry is validated by the models (``Department``, ``Project``, ``NodePool``);
an error names the file, the entry and the field. With no file, the service
creates one ``default`` department and one ``default`` project that deserve all
the cluster's GPUs, so a first-time user can submit at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .models import Department, NodePool, Project, format_validation_error

__all__ = ["QueueConfig", "QueueConfigError", "default_queue_config", "load_queue_config"]


class QueueConfigError(ValueError):
    """The queue file cannot be used; the message names the file, the entry and the field."""


@dataclass
class QueueConfig:
    departments: list[Department] = field(default_factory=list)
    projects: list[Project] = field(default_factory=list)
    node_pools: list[NodePool] = field(default_factory=list)


SECTIONS = {"departments": Department, "projects": Project, "node_pools": NodePool}


def parse_queue_config(data: Any, source: str = "the queue file") -> QueueConfig:
    """Validate a loaded document (a dict with the three optional sections)."""
    if data is None:
        return QueueConfig()
    if not isinstance(data, dict):
        raise QueueConfigError(f"{source}: must be a mapping with 'departments', 'projects' and 'node_pools'")
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise QueueConfigError(f"{source}: unknown section {unknown[0]!r}; allowed: {', '.join(SECTIONS)}")
    out = QueueConfig()
    for section, model in SECTIONS.items():
        items = data.get(section) or []
        if not isinstance(items, list):
            raise QueueConfigError(f"{source}: {section} must be a list")
        seen: set[str] = set()
        for position, item in enumerate(items):
            try:
                obj = model.model_validate(item)
            except ValidationError as exc:
                first = format_validation_error(exc)[0]
                raise QueueConfigError(f"{source}: {section}[{position}].{first['message']}") from None
            if obj.name in seen:
                raise QueueConfigError(f"{source}: {section}[{position}].name: {obj.name!r} appears twice")
            seen.add(obj.name)
            getattr(out, section).append(obj)
    departments = {d.name for d in out.departments} | {"default"}
    for position, project in enumerate(out.projects):
        if project.department not in departments:
            raise QueueConfigError(
                f"{source}: projects[{position}].department: no department {project.department!r}; "
                f"allowed: {', '.join(sorted(departments))}")
    return out


def load_queue_config(path: str | Path) -> QueueConfig:
    """Read and validate a YAML or JSON queue file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise QueueConfigError(f"cannot read the queue file {str(path)!r}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise QueueConfigError(f"{path}: not valid YAML or JSON: {exc}") from None
    return parse_queue_config(data, str(path))


def default_queue_config(total_gpus: float) -> QueueConfig:
    """One ``default`` department and project deserving every GPU of the cluster."""
    return QueueConfig(
        departments=[Department(name="default", deserved={"gpu": total_gpus})],
        projects=[Project(name="default", department="default", deserved={"gpu": total_gpus})],
    )
