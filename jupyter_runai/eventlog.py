"""What events say and how they are looked up: eviction messages (reclaimed or preempted, and for which
workload) and the filters of the event listing (``GET /events/recent``, ``runai events``)."""

from __future__ import annotations

from .errors import Invalid
from .models.events import EventType

__all__ = ["MAX_EVENTS", "event_type", "eviction_text"]

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
            parts.append(f"preempted by {names} (higher priority in project {project})")
        else:
            parts.append(f"reclaimed by project {project} for {names}")
    return f"{reason}: {'; '.join(parts)}"


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
