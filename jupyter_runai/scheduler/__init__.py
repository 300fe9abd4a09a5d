"""The pure scheduling engine: a snapshot of the cluster in, decisions out.

No I/O, no clock, no randomness: :func:`schedule` on the same snapshot always returns
the same decisions. See ``docs/semantics.md`` for the model.
"""

from .engine import ACTION_ORDER, schedule
from .session import SchedulingError, Session
from .types import (
    UNLIMITED,
    Bind,
    CycleResult,
    Evict,
    Job,
    Node,
    PlacementConfig,
    Pod,
    PodStatus,
    Queue,
    QueueResources,
    Snapshot,
)

__all__ = [
    "ACTION_ORDER", "UNLIMITED", "Bind", "CycleResult", "Evict", "Job", "Node", "PlacementConfig", "Pod",
    "PodStatus", "Queue", "QueueResources", "SchedulingError", "Session", "Snapshot", "schedule",
]
