"""Events: what happened to a workload, in order.

Every event has an ``id`` that only grows (the store assigns it), so a
server-sent event stream can resume from ``Last-Event-ID``. ``project``,
``workload`` and ``pod`` say what the event is about; a cluster-wide event
(a node went away) leaves them unset.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Optional

from pydantic import AwareDatetime, Field

from .base import RunaiModel, one_of
from .names import DnsLabel, ProjectName

__all__ = ["Event", "EventType"]


class EventType(StrEnum):
    """What sort of thing happened."""

    SUBMITTED = "Submitted"  # accepted into the queue
    SCHEDULED = "Scheduled"  # pods bound to nodes and devices
    STARTED = "Started"  # its pods run
    PENDING = "Pending"  # waits; the message says why
    EVICTED = "Evicted"  # a pod was stopped to make room (reclaim, preempt)
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    STOPPED = "Stopped"  # by a user or a rule
    RULE_STOPPED = "RuleStopped"  # a scheduling rule stopped it (max duration, idle GPU timeout); says which
    RULE_YIELDED = "RuleYielded"  # a preemptible workload gave its GPUs back to the queue (preemptible_max_duration)
    RULE_MADE_PREEMPTIBLE = "RuleMadePreemptible"  # idle GPUs: made preemptible instead of stopped (idle_gpu_timeout)
    RESUMED = "Resumed"  # back in the queue after a stop
    DELETED = "Deleted"
    SCALED = "Scaled"  # an inference endpoint's replicas were added or removed
    WARNING = "Warning"  # something a user should know (e.g. an image that is not pulled)


EventTypeName = one_of(EventType)


class Event(RunaiModel):
    """One thing that happened, as the store keeps it and the event stream sends it."""

    id: int = Field(ge=1, description="Increasing identifier, assigned by the store; the SSE `id:`.")
    at: AwareDatetime = Field(description="When it happened (with a time zone).")
    type: EventTypeName = Field(description="What happened: " + ", ".join(t.value for t in EventType) + ".")
    project: Optional[ProjectName] = Field(default=None, description="Project it concerns, if any.")
    workload: Optional[DnsLabel] = Field(default=None, description="Workload it concerns, if any.")
    pod: Optional[str] = Field(default=None, description="Pod it concerns (<workload>-<index>), if any.")
    message: str = Field(default="", description="What happened, in words.")
