"""Run fair-share division cases (the form of ``shared/scenarios/fairshare_examples.json``).

Each case names the KAI function it exercises (``kai_function``); the case is
built into :class:`~jupyter_runai.scheduler.fairshare.ShareQueue` objects and
the matching function of :mod:`jupyter_runai.scheduler.fairshare` is run:

=================================  ==============================================
``setResourceShare``               :func:`set_resource_share` per divided resource
``divideOverQuotaResource``        :func:`divide_over_quota` per divided resource
``SetResourcesShare``              :func:`set_resources_share` (one level)
``proportionPlugin.setFairShare``  :func:`set_fair_share_tree` (whole tree)
=================================  ==============================================

Every case yields ``{"name", "error", "fair_share", "remaining"}``.  A case
that cannot be run (bad data) yields an ``error`` string and ``None`` results
instead of raising, so one bad case never stops a file.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..scheduler.fairshare import (
    ShareQueue,
    divide_over_quota,
    set_fair_share_tree,
    set_resource_share,
    set_resources_share,
)

__all__ = ["run_file", "run_case", "CaseError"]

KNOWN_RESOURCES = ("gpu", "cpu_millis", "memory_bytes")
FUNCTIONS = (
    "setResourceShare",
    "divideOverQuotaResource",
    "SetResourcesShare",
    "proportionPlugin.setFairShare",
)
_WITH_REMAINING = ("setResourceShare", "divideOverQuotaResource")


class CaseError(ValueError):
    """The case's data cannot be run."""


def run_file(path: str | Path) -> list[dict]:
    """Run every case of a JSON file, in file order.

    The file holds a list of cases (a single case object is accepted too).
    """
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    if isinstance(data, dict):
        data = data["cases"] if isinstance(data.get("cases"), list) else [data]
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of fair-share cases")
    return [run_case(case) for case in data]


def run_case(case: dict) -> dict:
    """Run one case; never raises for bad case data."""
    name = case.get("name") if isinstance(case, dict) else None
    try:
        fair_share, remaining = _run(case)
    except (CaseError, KeyError, TypeError, ValueError, AttributeError) as exc:
        reason = str(exc) if isinstance(exc, CaseError) else f"{type(exc).__name__}: {exc}"
        return {"name": name, "error": reason, "fair_share": None, "remaining": None}
    except RecursionError as exc:  # pathological input; still not a crash
        return {"name": name, "error": f"RecursionError: {exc}", "fair_share": None, "remaining": None}
    return {"name": name, "error": None, "fair_share": fair_share, "remaining": remaining}


# --------------------------------------------------------------------------- helpers


def _num(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CaseError(f"{what} must be a number, got {value!r}")
    f = float(value)
    if not math.isfinite(f):
        raise CaseError(f"{what} must be finite, got {value!r}")
    return f


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CaseError(f"{what} must be an integer, got {value!r}")
    if isinstance(value, float):
        if not value.is_integer():
            raise CaseError(f"{what} must be an integer, got {value!r}")
        value = int(value)
    return value


def _out(x: float) -> int | float:
    """Integral values print as JSON integers, like the case files."""
    if x.is_integer() and abs(x) < 2**53:
        return int(x)
    return x


def _resources(case: dict) -> list[str]:
    total = case.get("total")
    if not isinstance(total, dict):
        raise CaseError("'total' must be an object of per-resource amounts")
    listed = case.get("resources")
    if listed is None:
        resources = [r for r, v in total.items() if v is not None]
    else:
        if not isinstance(listed, list) or not all(isinstance(r, str) for r in listed):
            raise CaseError("'resources' must be a list of resource names")
        resources = list(dict.fromkeys(listed))
    if not resources:
        raise CaseError("the case divides no resource")
    for r in resources:
        if total.get(r) is None:
            raise CaseError(f"resource {r!r} is divided but has no total")
    return resources


def _build_queues(case: dict, resources: list[str]) -> list[ShareQueue]:
    raw = case.get("queues")
    if not isinstance(raw, list) or not raw:
        raise CaseError("'queues' must be a non-empty list")
    queues: list[ShareQueue] = []
    names: set[str] = set()
    for idx, rq in enumerate(raw):
        if not isinstance(rq, dict):
            raise CaseError(f"queue #{idx} is not an object")
        name = rq.get("name")
        if not isinstance(name, str) or not name:
            raise CaseError(f"queue #{idx} has no name")
        if name in names:
            raise CaseError(f"duplicate queue name {name!r}")
        names.add(name)
        uid = rq.get("uid") or name
        if not isinstance(uid, str):
            raise CaseError(f"queue {name!r}: uid must be a string")
        parent = rq.get("parent")
        if parent is not None and not isinstance(parent, str):
            raise CaseError(f"queue {name!r}: parent must be a string or null")
        priority = _int(rq.get("priority", 0), f"queue {name!r}: priority")
        created = _int(rq.get("created_order", idx), f"queue {name!r}: created_order")
        q = ShareQueue(
            name=name,
            parent=parent or None,
            priority=priority,
            created_order=created,
            deserved={},
            limit={},
            weight={},
            request={},
            fair_share={},
            uid=uid,
        )
        for r in resources:
            block = rq.get(r)
            if block is None:
                # Not given for a divided resource: the queue does not take part
                # in it (the defaults of ShareQueue; fair share starts at 0).
                q.fair_share[r] = 0.0
                continue
            if not isinstance(block, dict):
                raise CaseError(f"queue {name!r}: {r} must be an object or null")
            where = f"queue {name!r} {r}"
            q.deserved[r] = _num(block.get("deserved", 0), f"{where} deserved")
            q.limit[r] = _num(block.get("limit", -1), f"{where} limit")
            q.weight[r] = _num(block.get("over_quota_weight", 0), f"{where} over_quota_weight")
            q.request[r] = _num(block.get("request", 0), f"{where} request")
            q.fair_share[r] = _num(block.get("initial_fair_share", 0), f"{where} initial_fair_share")
        queues.append(q)
    return queues


def _check_tree(queues: list[ShareQueue]) -> None:
    by_name = {q.name: q for q in queues}
    if not any(q.parent is None for q in queues):
        raise CaseError("the tree has no top-level queue (parent null)")
    for q in queues:
        if q.parent is not None and q.parent not in by_name:
            raise CaseError(f"queue {q.name!r}: unknown parent {q.parent!r}")
    for q in queues:  # every chain of parents must reach a top-level queue
        seen = {q.name}
        p = q.parent
        while p is not None:
            if p in seen:
                raise CaseError(f"queue {q.name!r}: cycle in parents")
            seen.add(p)
            p = by_name[p].parent


def _run(case: Any) -> tuple[dict, dict | None]:
    if not isinstance(case, dict):
        raise CaseError("a case must be a JSON object")
    func = case.get("kai_function")
    if func not in FUNCTIONS:
        raise CaseError(f"unknown kai_function {func!r}")
    k = case.get("k_value", 0)
    if k is not None and _num(k, "k_value") != 0:
        raise CaseError("k_value != 0 (time-based fair share) is not supported")
    resources = _resources(case)
    totals = {r: _num(case["total"][r], f"total {r}") for r in resources}
    queues = _build_queues(case, resources)

    remaining: dict[str, Any] | None = None
    if func == "setResourceShare":
        remaining = {r: _out(set_resource_share(totals[r], queues, r)) for r in resources}
    elif func == "divideOverQuotaResource":
        remaining = {r: _out(divide_over_quota(totals[r], queues, r)) for r in resources}
    elif func == "SetResourcesShare":
        set_resources_share(totals, queues)
    else:
        _check_tree(queues)
        set_fair_share_tree(totals, queues)

    fair_share = {q.name: {r: _out(q.fair_share.get(r, 0.0)) for r in resources} for q in queues}
    return fair_share, remaining
