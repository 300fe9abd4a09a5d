"""Workload policies combined and applied: pure functions, no I/O.

* :func:`merge` combines the policies that apply to one project and kind (the cluster's, its
  department's, its own, widest first) into the effective policy: a narrower scope's default
  replaces a wider one's; rules only tighten (the largest min, the smallest max, every step,
  the values every scope allows, required if any scope requires it, locked if any locks it).
* :func:`loosening` lists what a policy would loosen of the wider scopes' effective policy
  (an admin setting it is refused with these), and the defaults that break the rules.
* :func:`with_defaults` fills the fields a submission left out; :func:`violations` lists every
  rule a submission breaks, each as a REST error item naming the field and what is allowed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field as dc_field
from typing import Any, Iterable, Optional

from .models.policy import POLICY_FIELDS, FieldRule, Policy, field_number
from .models.quantity import QuantityError

__all__ = ["Bound", "EffectiveField", "effective_view", "loosening", "merge", "violations", "with_defaults"]

_NOT_SET: Any = object()
_EPSILON = 1e-9


@dataclass(frozen=True)
class Bound:
    """A min, max or step: the value as the policy wrote it, as a number, and whose it is."""

    value: Any
    number: float
    source: str


@dataclass
class EffectiveField:
    """What the policies together say of one field."""

    default: Any = _NOT_SET
    default_from: str = ""
    required_from: Optional[str] = None  # the scope that requires it, None when none does
    min: Optional[Bound] = None
    max: Optional[Bound] = None
    steps: list[Bound] = dc_field(default_factory=list)
    allowed: Optional[list[Any]] = None
    allowed_from: str = ""  # the scopes that list allowed values, "cluster and project 'x'"
    allowed_lists: list[tuple[str, list[Any]]] = dc_field(default_factory=list)  # (scope, its allowed values)

    def excluded_by(self, value: Any) -> str:
        """The scope whose allowed list leaves ``value`` out (the widest such one)."""
        return next((scope for scope, values in self.allowed_lists if value not in values), self.allowed_from)
    locked_from: Optional[str] = None  # the scope that forbids changing the default

    @property
    def has_default(self) -> bool:
        return self.default is not _NOT_SET


def merge(policies: Iterable[Policy]) -> dict[str, EffectiveField]:
    """The effective policy of the given policies, widest scope first."""
    out: dict[str, EffectiveField] = {}
    for policy in policies:
        _merge_into(out, policy)
    return out


def _merge_into(out: dict[str, EffectiveField], policy: Policy) -> None:
    """One policy's defaults (a narrower scope's replace a wider's) and rules (tightening) into ``out``."""
    source = policy.scope_text
    for name, value in policy.defaults.items():
        item = out.setdefault(name, EffectiveField())
        item.default, item.default_from = value, source
    for name, rule in policy.rules.items():
        _tighten(out.setdefault(name, EffectiveField()), name, rule, source)


def _tighten(item: EffectiveField, name: str, rule: FieldRule, source: str) -> None:
    if rule.required and item.required_from is None:
        item.required_from = source
    if rule.can_edit is False and item.locked_from is None:
        item.locked_from = source
    if rule.min is not None:
        bound = Bound(rule.min, field_number(name, rule.min), source)
        if item.min is None or bound.number > item.min.number:
            item.min = bound
    if rule.max is not None:
        bound = Bound(rule.max, field_number(name, rule.max), source)
        if item.max is None or bound.number < item.max.number:
            item.max = bound
    if rule.step is not None:
        item.steps.append(Bound(rule.step, field_number(name, rule.step), source))
    if rule.allowed is not None:
        if item.allowed is None:
            item.allowed = list(rule.allowed)
        else:
            item.allowed = [v for v in rule.allowed if v in item.allowed]
        item.allowed_lists.append((source, list(rule.allowed)))
        item.allowed_from = " and ".join(scope for scope, _ in item.allowed_lists)


def _multiple(number: float, step: float) -> bool:
    ratio = number / step  # a step is at least models.policy.STEP_MIN: the ratio stays finite
    if not math.isfinite(ratio):
        return False
    return math.isclose(ratio, round(ratio), rel_tol=0, abs_tol=_EPSILON * max(1.0, abs(ratio)))


def range_text(item: EffectiveField) -> Any:
    """What a field allows, for an error's ``allowed``: a list of values, or a range in words."""
    if item.allowed is not None:
        return list(item.allowed)
    parts = []
    if item.min is not None and item.max is not None:
        parts.append(f"{item.min.value} to {item.max.value}")
    elif item.min is not None:
        parts.append(f"at least {item.min.value}")
    elif item.max is not None:
        parts.append(f"at most {item.max.value}")
    for step in item.steps:
        parts.append(f"a multiple of {step.value}")
    if item.locked_from is not None and item.has_default:
        return [item.default]
    return ", ".join(parts) or None


# ------------------------------------------------------------------ admins setting a policy


def loosening(policy: Policy, wider: dict[str, EffectiveField]) -> list[dict[str, Any]]:
    """What ``policy`` would loosen of ``wider`` (the effective policy of the scopes above it), and
    the defaults that would break the rules once it is merged: REST error items, empty when none."""
    items: list[dict[str, Any]] = []
    above = lambda item, attr: getattr(item, attr).source  # noqa: E731

    def add(path: str, message: str, allowed: Any) -> None:
        items.append({"field": path, "message": f"{path}: {message}", "allowed": allowed})

    for name, rule in policy.rules.items():
        item = wider.get(name)
        if item is None:
            continue
        where = f"rules.{name}"
        if rule.min is not None and item.min is not None and field_number(name, rule.min) < item.min.number:
            add(f"{where}.min", f"{rule.min} is below the min {item.min.value} that the {above(item, 'min')} policy "
                "sets; a narrower scope may only tighten", f">= {item.min.value}")
        if rule.max is not None and item.max is not None and field_number(name, rule.max) > item.max.number:
            add(f"{where}.max", f"{rule.max} is above the max {item.max.value} that the {above(item, 'max')} policy "
                "sets; a narrower scope may only tighten", f"<= {item.max.value}")
        if rule.step is not None:
            step = field_number(name, rule.step)
            for wide in item.steps:
                if not _multiple(step, wide.number):
                    add(f"{where}.step", f"{rule.step} is not a multiple of the step {wide.value} that the "
                        f"{wide.source} policy sets", f"a multiple of {wide.value}")
        if rule.allowed is not None and item.allowed is not None:
            extra = [v for v in rule.allowed if v not in item.allowed]
            if extra:
                add(f"{where}.allowed", f"{', '.join(map(str, extra))} not allowed by the {item.excluded_by(extra[0])} "
                    "policy; a narrower scope may only allow fewer values", list(item.allowed))
        if rule.required is False and item.required_from is not None:
            add(f"{where}.required", f"the {item.required_from} policy requires {name}; a narrower scope cannot "
                "make it optional", [True])
        if rule.can_edit is True and item.locked_from is not None:
            add(f"{where}.can_edit", f"the {item.locked_from} policy does not let users change {name}", [False])
    for name, value in policy.defaults.items():
        item = wider.get(name)
        if item is not None and item.locked_from is not None and item.has_default and value != item.default:
            add(f"defaults.{name}", f"the {item.locked_from} policy fixes it at {item.default!r}", [item.default])
    merged = merge_onto(wider, policy)
    for name, item in merged.items():
        if item.has_default:
            for problem in _field_problems(name, item.default, item, given=False):
                add(f"defaults.{name}", f"the default {problem[0]}", problem[1])
    return _unique(items)


def merge_onto(wider: dict[str, EffectiveField], policy: Policy) -> dict[str, EffectiveField]:
    """``wider`` with ``policy`` merged in, as :func:`merge` would (``wider`` is not changed)."""
    out = {name: EffectiveField(**{**vars(item), "steps": list(item.steps), "allowed_lists": list(item.allowed_lists),
                                   "allowed": None if item.allowed is None else list(item.allowed)})
           for name, item in wider.items()}
    _merge_into(out, policy)
    return out


def _unique(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen, out = set(), []
    for item in items:
        if item["message"] not in seen:
            seen.add(item["message"])
            out.append(item)
    return out


# ------------------------------------------------------------------ submissions


def _get(document: dict[str, Any], path: str) -> Any:
    node: Any = document
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return _NOT_SET
        node = node[key]
    return node


def _put(document: dict[str, Any], path: str, value: Any) -> None:
    keys = path.split(".")
    node = document
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value


#: a default is not filled in when the submission gave the other field of the pair
EXCLUSIVE = {"resources.gpu": "resources.gpu_memory", "resources.gpu_memory": "resources.gpu"}


def given_fields(given: dict[str, Any]) -> set[str]:
    """The policy fields a submission gave (``given``: the spec as the user sent it)."""
    return {name for name in POLICY_FIELDS if _get(given, name) is not _NOT_SET}


def with_defaults(given: dict[str, Any], effective: dict[str, EffectiveField]) -> dict[str, Any]:
    """``given`` (the spec as the user sent it) with the policy's defaults for the fields it left
    out. A list of names with allowed values and no default gets the allowed names (node pools: the
    pools the policy allows, in its order), so that leaving it out cannot mean "any"."""
    out = {**given, "resources": dict(given.get("resources") or {})}
    present = given_fields(given)
    for name, item in effective.items():
        if name in present:
            continue
        other = EXCLUSIVE.get(name)
        if other is not None and (other in present or _get(out, other) not in (_NOT_SET, None, 0)):
            continue
        if item.has_default:
            _put(out, name, item.default)
        elif item.allowed is not None and POLICY_FIELDS[name] == "names":
            _put(out, name, list(item.allowed))
    if not out["resources"]:
        del out["resources"]
    return out


def _field_problems(name: str, value: Any, item: EffectiveField, given: bool) -> list[tuple[str, Any]]:
    """(what is wrong, what is allowed) for one value."""
    problems: list[tuple[str, Any]] = []
    empty = value is _NOT_SET or value is None or value == [] or value == ""
    if POLICY_FIELDS[name] in ("cpu", "memory") and not empty:
        empty = value in (0, "0")  # no request: what the spec holds when the field is left out
    if empty:
        if item.required_from is not None:
            problems.append((f"is required by the {item.required_from} policy", range_text(item)))
        return problems
    if item.locked_from is not None and given and not item.has_default:
        problems.append((f"cannot be set: the {item.locked_from} policy leaves it to the server", None))
    elif item.locked_from is not None and item.has_default and given and value != item.default:
        problems.append((f"{value!r} cannot be changed: the {item.locked_from} policy sets it to {item.default!r}",
                         [item.default]))
    if POLICY_FIELDS[name] in ("number", "int", "cpu", "memory"):
        try:
            number = field_number(name, value)
        except (ValueError, QuantityError):
            return problems
        if item.min is not None and number < item.min.number - _EPSILON:
            problems.append((f"{value} is below {item.min.value}, the least the {item.min.source} policy allows",
                             range_text(item)))
        if item.max is not None and number > item.max.number + _EPSILON:
            problems.append((f"{value} is above {item.max.value}, the most the {item.max.source} policy allows",
                             range_text(item)))
        for step in item.steps:
            if not _multiple(number, step.number):
                problems.append((f"{value} is not a multiple of {step.value}, the step the {step.source} policy "
                                 "sets", range_text(item)))
    if item.allowed is not None:
        values = value if isinstance(value, list) else [value]
        outside = [v for v in values if v not in item.allowed]
        by_scope: dict[str, list[Any]] = {}
        for v in outside:
            by_scope.setdefault(item.excluded_by(v), []).append(v)
        for scope, these in by_scope.items():
            verb = "is" if len(these) == 1 else "are"
            problems.append((f"{', '.join(map(str, these))} {verb} not allowed by the {scope} policy",
                             list(item.allowed)))
    return problems


def violations(spec: dict[str, Any], given: set[str], effective: dict[str, EffectiveField],
               kind: str) -> list[dict[str, Any]]:
    """Every rule the submission ``spec`` (its JSON document, defaults filled in) breaks, one REST
    error item each: ``{"field", "message", "allowed"}``. ``given``: the fields the user gave."""
    items = []
    for name, item in effective.items():
        for problem, allowed in _field_problems(name, _get(spec, name), item, given=name in given):
            items.append({"field": name, "message": f"{name}: {problem} (for {kind} workloads)",
                          "allowed": allowed})
    return items


def effective_view(effective: dict[str, EffectiveField]) -> dict[str, Any]:
    """The effective policy as JSON: ``{"defaults": {field: value}, "rules": {field: {...}}}``, each
    rule with the bounds in force and the scope that set each."""
    defaults = {name: item.default for name, item in effective.items() if item.has_default}
    rules: dict[str, Any] = {}
    for name, item in effective.items():
        rule: dict[str, Any] = {}
        if item.required_from:
            rule["required"] = True
        for attr in ("min", "max"):
            bound = getattr(item, attr)
            if bound is not None:
                rule[attr] = bound.value
        if item.steps:
            rule["step"] = item.steps[-1].value
        if item.allowed is not None:
            rule["allowed"] = item.allowed
        if item.locked_from:
            rule["can_edit"] = False
        if rule:
            rule["from"] = sorted({s for s in (item.required_from, item.locked_from,
                                               *(scope for scope, _ in item.allowed_lists),
                                               *(b.source for b in (item.min, item.max, *item.steps) if b)) if s})
            rules[name] = rule
    sources = {name: item.default_from for name, item in effective.items() if item.has_default}
    return {"defaults": defaults, "default_from": sources, "rules": rules}
