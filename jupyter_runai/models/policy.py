"""Workload policies: per scope (the cluster, a department, a project) and per workload kind,
the defaults a submission gets for the fields it leaves out and the rules each field must meet.

A policy names fields by their path in the workload spec (``resources.gpu``, ``image``,
``node_pools``); :data:`POLICY_FIELDS` lists those a policy may govern and what sort of value
each takes. Quantities (CPU, memory) are given as the spec takes them (``"500m"``, ``"16Gi"``)
and compared as numbers. How policies of several scopes combine, and how a submission is
checked against them, is in :mod:`jupyter_runai.policies` (pure functions).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Optional

from pydantic import Field, model_validator

from .base import RunaiModel, one_of
from .validation import Problems
from .names import DnsLabel
from .priority import PriorityClass
from .quantity import QuantityError, parse_cpu, parse_memory
from .workload import NAMES_MAX, PATH_MAX, WorkloadKind

__all__ = ["ALLOWED_MAX", "FIELD_KINDS", "POLICY_FIELDS", "FieldRule", "Policy", "PolicyScope", "field_catalog",
           "field_number", "normalize_value"]

#: the most values an ``allowed`` list holds
ALLOWED_MAX = 256


class PolicyScope(StrEnum):
    """Where a policy applies, widest first."""

    CLUSTER = "cluster"
    DEPARTMENT = "department"
    PROJECT = "project"


#: field path -> the sort of value: "number" (GPUs), "int", "cpu", "memory" (quantities),
#: "text", "choice" (one of a fixed set), "bool", "names" (a list of names)
POLICY_FIELDS: dict[str, str] = {
    "image": "text",
    "resources.gpu": "number",
    "resources.gpu_memory": "memory",
    "resources.cpu": "cpu",
    "resources.cpu_limit": "cpu",
    "resources.memory": "memory",
    "resources.memory_limit": "memory",
    "priority_class": "choice",
    "preemptible": "bool",
    "node_pools": "names",
    "data_sources": "names",
    "working_dir": "text",
    "workers": "int",
    "min_replicas": "int",
    "max_replicas": "int",
    "backoff_limit": "int",
}

#: fields only some kinds have (a policy of another kind may not name them)
FIELD_KINDS: dict[str, tuple[str, ...]] = {
    "workers": ("distributed",),
    "min_replicas": ("inference",),
    "max_replicas": ("inference",),
    "backoff_limit": ("training", "distributed"),
}

ORDERED = ("number", "int", "cpu", "memory")  # the sorts min, max and step apply to
#: the smallest step of each sort (GPUs in hundredths, CPU in millicores, memory in bytes)
STEP_MIN = {"number": 0.01, "int": 1, "cpu": 1, "memory": 1}


def rule_number_text(sort: str, value: float) -> str:
    """A step bound in words: ``0.01``, ``1m`` (CPU), ``1`` byte."""
    return {"cpu": f"{value:g}m", "memory": f"{value:g} byte"}.get(sort, f"{value:g}")
CHOICES = {"priority_class": [c.value for c in PriorityClass]}


def field_catalog() -> list[dict[str, Any]]:
    """Each field a policy may govern, for a form that edits policies: its path, its sort (see
    :data:`POLICY_FIELDS`), the kinds that have it (None: every kind), its fixed choices (None: any
    value), and the rule attributes that apply to it."""
    out = []
    for field, sort in POLICY_FIELDS.items():
        rules = ["required", "can_edit"]
        if sort in ORDERED:
            rules += ["min", "max", "step"]
        if sort != "bool":
            rules.append("allowed")
        out.append({"field": field, "sort": sort, "kinds": list(FIELD_KINDS[field]) if field in FIELD_KINDS else None,
                    "choices": CHOICES.get(field), "rules": rules})
    return out


def field_number(field: str, value: Any) -> float:
    """A value of an ordered field as a number (CPU in millicores, memory in bytes); ValueError if it is not one."""
    sort = POLICY_FIELDS[field]
    if sort == "cpu":
        return float(parse_cpu(value))
    if sort == "memory":
        return float(parse_memory(value))
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("must be a number")
    if sort == "int" and not float(value).is_integer():
        raise ValueError("must be a whole number")
    return float(value)


def normalize_value(field: str, value: Any) -> Any:
    """A default or an allowed value checked for its field's sort; ValueError says what is wrong."""
    sort = POLICY_FIELDS[field]
    if sort in ORDERED:
        field_number(field, value)
        return value
    if sort == "bool":
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    if sort == "names":
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value) or len(value) > NAMES_MAX:
            raise ValueError(f"must be a list of at most {NAMES_MAX} names")
        return value
    if not isinstance(value, str) or not value or len(value) > PATH_MAX:
        raise ValueError(f"must be a non-empty text of at most {PATH_MAX} characters")
    if field in CHOICES and value not in CHOICES[field]:
        raise ValueError(f"must be one of {', '.join(CHOICES[field])}")
    return value


class FieldRule(RunaiModel):
    """What one field must be. Unset attributes say nothing (a wider scope's rule still applies)."""

    required: Optional[bool] = Field(default=None, description="The submission must have a value (given or "
                                     "from a default).")
    min: Optional[int | float | str] = Field(default=None, description="Smallest value (numbers and quantities).")
    max: Optional[int | float | str] = Field(default=None, description="Largest value (numbers and quantities).")
    step: Optional[int | float | str] = Field(default=None, description="The value must be a multiple of this "
                                        "(numbers and quantities), e.g. 0.25 GPUs.")
    allowed: Optional[list[Any]] = Field(default=None, max_length=ALLOWED_MAX, description="The values allowed "
                                         "(for a list of names, every name must be one of them).")
    can_edit: Optional[bool] = Field(default=None, description="false: the user may not change the default "
                                     "(a submission may only give the default's value). Unset: may.")


class Policy(RunaiModel):
    """The policy of one scope for one workload kind."""

    scope: one_of(PolicyScope) = Field(description="cluster, department or project")  # type: ignore[valid-type]
    name: Optional[DnsLabel] = Field(default=None, description="The department's or project's name; unset for "
                                     "the cluster.")
    kind: one_of(WorkloadKind) = Field(description="The workload kind it governs.")  # type: ignore[valid-type]
    defaults: dict[str, Any] = Field(default_factory=dict, max_length=len(POLICY_FIELDS),
                                     description="Field path -> the value a submission gets when it leaves "
                                     "the field out.", examples=[{"resources.gpu": 1, "image": "python:3.11"}])
    rules: dict[str, FieldRule] = Field(default_factory=dict, max_length=len(POLICY_FIELDS),
                                        description="Field path -> what the field must be.",
                                        examples=[{"resources.gpu": {"max": 2, "step": 0.5}}])

    @model_validator(mode="after")
    def _check_fields(self) -> "Policy":
        problems = Problems("Policy")
        fields = list(POLICY_FIELDS)
        if self.scope == PolicyScope.CLUSTER and self.name is not None:
            problems.add("name", "must be unset for the cluster's policy", allowed=None, got=self.name)
        if self.scope != PolicyScope.CLUSTER and self.name is None:
            problems.add("name", f"required: the {self.scope.value}'s name", allowed=f"a {self.scope.value} name")
        for block in ("defaults", "rules"):
            for field in getattr(self, block):
                if field not in POLICY_FIELDS:
                    problems.add((block, field), "is not a field a policy governs", allowed=fields, got=field)
                elif self.kind.value not in FIELD_KINDS.get(field, (self.kind.value,)):
                    problems.add((block, field), f"only for kinds {', '.join(FIELD_KINDS[field])}; this policy is "
                                 f"for {self.kind.value!r}", allowed=list(FIELD_KINDS[field]), got=field)
        for field, value in self.defaults.items():
            if field in POLICY_FIELDS:
                try:
                    normalize_value(field, value)
                except (ValueError, QuantityError) as exc:
                    problems.add(("defaults", field), str(exc), allowed=_sort_text(field), got=value)
        for field, rule in self.rules.items():
            if field in POLICY_FIELDS:
                _check_rule(problems, field, rule)
        problems.raise_if_any()
        return self

    @property
    def scope_text(self) -> str:
        """``cluster``, ``department 'research'``, ``project 'vision'``."""
        return "cluster" if self.scope == PolicyScope.CLUSTER else f"{self.scope.value} {self.name!r}"


def _sort_text(field: str) -> str:
    return {"number": "a number", "int": "a whole number", "cpu": "a CPU quantity ('500m', 2)",
            "memory": "a memory quantity ('16Gi')", "text": "a text", "choice": f"one of {CHOICES.get(field)}",
            "bool": "true or false", "names": "a list of names"}[POLICY_FIELDS[field]]


def _check_rule(problems: Problems, field: str, rule: FieldRule) -> None:
    sort = POLICY_FIELDS[field]
    where = ("rules", field)
    numbers: dict[str, float] = {}
    for attr in ("min", "max", "step"):
        value = getattr(rule, attr)
        if value is None:
            continue
        if sort not in ORDERED:
            problems.add((*where, attr), f"applies only to numbers and quantities; {field} is {_sort_text(field)}",
                         allowed=None, got=value)
            continue
        try:
            numbers[attr] = field_number(field, value)
        except (ValueError, QuantityError) as exc:
            problems.add((*where, attr), str(exc), allowed=_sort_text(field), got=value)
    least = STEP_MIN[sort] if sort in STEP_MIN else 0
    if "step" in numbers and (numbers["step"] <= 0 or numbers["step"] < least):
        problems.add((*where, "step"), f"must be at least {rule_number_text(sort, least)}",
                     allowed=f">= {rule_number_text(sort, least)}", got=rule.step)
    if "min" in numbers and "max" in numbers and numbers["min"] > numbers["max"]:
        problems.add((*where, "max"), f"must be at least min ({rule.min})", allowed=f">= {rule.min}", got=rule.max)
    if rule.allowed is not None:
        if sort == "bool":
            problems.add((*where, "allowed"), "does not apply to true/false fields; use can_edit with a default",
                         allowed=None, got=rule.allowed)
            return
        if not rule.allowed:
            problems.add((*where, "allowed"), "must list at least one value", allowed="a non-empty list")
        item_field = field if sort != "names" else None
        for value in rule.allowed:
            try:
                if item_field is not None:
                    normalize_value(item_field, value)
                elif not isinstance(value, str) or not value or len(value) > 253:
                    raise ValueError("must be names of at most 253 characters")
            except (ValueError, QuantityError) as exc:
                problems.add((*where, "allowed"), str(exc), allowed=_sort_text(field), got=value)
                break

