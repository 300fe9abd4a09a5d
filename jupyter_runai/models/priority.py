"""Priority classes, with the numbers of KAI-Scheduler.

=====================  ========  ==========================================
class                  priority  preemptible by default
=====================  ========  ==========================================
``train``              50        yes (training, distributed training)
``build-preemptible``  75        yes (preemptible workspaces)
``build``              100       no (workspaces)
``inference``          125       no (inference)
=====================  ========  ==========================================

A higher priority is scheduled first and, inside one project, may preempt
lower-priority preemptible work. Priority below 100 means preemptible unless
the workload says otherwise.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "PREEMPTIBLE_BELOW",
    "PRIORITY_VALUES",
    "PriorityClass",
    "is_preemptible_by_default",
    "priority_value",
]


class PriorityClass(StrEnum):
    """The named priority classes a workload may ask for."""

    TRAIN = "train"
    BUILD_PREEMPTIBLE = "build-preemptible"
    BUILD = "build"
    INFERENCE = "inference"

    @property
    def priority(self) -> int:
        """The class's number (higher goes first)."""
        return PRIORITY_VALUES[self]


PRIORITY_VALUES: dict[PriorityClass, int] = {
    PriorityClass.TRAIN: 50,
    PriorityClass.BUILD_PREEMPTIBLE: 75,
    PriorityClass.BUILD: 100,
    PriorityClass.INFERENCE: 125,
}

PREEMPTIBLE_BELOW = 100
"""Workloads with a priority below this are preemptible unless they say otherwise."""


def priority_value(name: PriorityClass | str) -> int:
    """The number of a priority class given by member or name (``"train"`` -> 50)."""
    return PRIORITY_VALUES[PriorityClass(name)]


def is_preemptible_by_default(priority: int) -> bool:
    """True when work of this priority may be preempted unless it says otherwise."""
    return priority < PREEMPTIBLE_BELOW
