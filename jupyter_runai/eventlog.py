"""What events say and how they are looked up: a submitted workload's request in words, eviction
messages (reclaimed or preempted, and for which workload) and the filters of the event listing
(``GET /events/recent``, ``runai events``)."""

from __future__ import annotations

from .errors import Invalid
from .models import WorkloadKind, WorkloadSpec
from .models.events import EventType

__all__ = ["EVICTION_KINDS", "MAX_EVENTS", "describe_request", "event_type", "eviction_kind", "eviction_text"]

GIB = 1024 ** 3

EVICTION_KINDS = ("reclaim", "preempt", "consolidate", "other")
"""What an eviction was: another project reclaimed the GPUs, a higher priority in the same project
preempted the pod, the pod was moved to make room (consolidate), or something else (a reservation
dropped, a gang that fell apart)."""
RECLAIMED, PREEMPTED = "reclaimed by project ", "preempted by "

MAX_EVENTS = 10_000
"""The most events one listing returns."""


def eviction_text(reason: str, victim_project: str | None, gainers: set[tuple[str, str]]) -> str:
    """The engine's ``reason`` for an eviction, and for whom: a workload of another project *reclaimed*
    the GPUs (its project was below its fair share), one of the same project *preempted* the pod (a
    higher priority). ``gainers``: (project, workload) placed on the devices the pod gives up."""
    if not gainers:
        return reason
    parts = []
    for project in sorted({p for p, _ in gainers}):
        names = ", ".join(f"{project}/{name}" for p, name in sorted(gainers) if p == project)
        if project == victim_project:
            parts.append(f"{PREEMPTED}{names} (higher priority in project {project})")
        else:
            parts.append(f"{RECLAIMED}{project} for {names}")
    return f"{reason}: {'; '.join(parts)}"


def eviction_kind(text: str) -> str:
    """Which of :data:`EVICTION_KINDS` an eviction whose message is ``text`` (:func:`eviction_text`) was;
    an eviction that made room for both counts as a reclaim."""
    if RECLAIMED in text:
        return "reclaim"
    if PREEMPTED in text:
        return "preempt"
    return "consolidate" if text.startswith("moved to") else "other"


def event_type(value: str | None) -> str | None:
    """An event type filter (any case) as stored, None for none; :class:`Invalid` naming ``type`` otherwise."""
    if not value:
        return None
    for known in EventType:
        if known.value.lower() == value.lower():
            return known.value
    allowed = [t.value for t in EventType]
    raise Invalid(f"{value[:40]!r} is not an event type; allowed: {', '.join(allowed)}", field="type",
                  allowed=allowed)


def describe_request(spec: WorkloadSpec) -> str:
    """``training, 0.5 of a GPU`` / ``distributed, 1 GPU, 3 pods`` / ``inference, ..., 1 to 3 replicas``."""
    res = spec.resources
    if res.gpu_memory is not None:
        gpu = f"{res.gpu_memory / GIB:g}Gi of GPU memory"
    elif res.is_fractional:
        gpu = f"{res.gpu:g} of a GPU"
    elif res.gpu:
        gpu = f"{int(res.gpu)} GPU{'s' if res.gpu != 1 else ''}"
    else:
        gpu = "no GPU"
    if res.is_fractional and (res.gpu_devices or 1) > 1:
        gpu += f" on each of {res.gpu_devices} devices"
    if spec.kind == WorkloadKind.INFERENCE:
        pods = f", {spec.min_replicas} to {spec.max_replicas} replicas"
    else:
        pods = f", {spec.pod_count} pods" if spec.pod_count > 1 else ""
    return f"{spec.kind.value}, {gpu}{pods}"
