"""Role bindings: who (a user or a group) holds which role on which scope (the cluster, a
department, a project). What each role allows is decided in ``jupyter_runai.access``.

A binding reads as it is written: ``{"role": "researcher", "user": "alice", "project": "vision"}``,
``{"role": "department-admin", "group": "leads", "department": "research"}``,
``{"role": "admin", "user": "carol"}`` (no department or project: the whole cluster).
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, ValidationInfo, model_validator

from .base import RunaiModel, one_of
from .validation import Problems, invalid
from .names import DnsLabel

__all__ = ["Role", "RoleBinding", "SUBJECT_NAME_MAX"]

#: the longest user or group name a binding may name
SUBJECT_NAME_MAX = 256
_SUBJECT_NAME = re.compile(r"^[^\s\x00-\x1f\x7f]+$")
_SUBJECT_RULE = f"1 to {SUBJECT_NAME_MAX} characters, no spaces or control characters"


class Role(str, Enum):
    """The roles, widest first (as Run:ai has them)."""

    ADMIN = "admin"
    DEPARTMENT_ADMIN = "department-admin"
    ML_ENGINEER = "ml-engineer"
    RESEARCHER = "researcher"
    VIEWER = "viewer"

    def __str__(self) -> str:
        return self.value


def _subject_name(value: Any, info: ValidationInfo) -> Any:
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= SUBJECT_NAME_MAX or not _SUBJECT_NAME.match(value):
        raise invalid(info.field_name, f"must be a name of {_SUBJECT_RULE}", allowed=_SUBJECT_RULE, got=value)
    return value


SubjectName = Annotated[str | None, BeforeValidator(_subject_name)]


class RoleBinding(RunaiModel):
    """One role held by one user or group on one scope. Exactly one of ``user`` and ``group``;
    at most one of ``department`` and ``project`` (neither: the cluster). ``admin`` is held on
    the cluster only, ``department-admin`` on a department."""

    role: one_of(Role) = Field(description="admin, department-admin, ml-engineer, researcher or viewer.")  # type: ignore[valid-type]
    user: SubjectName = Field(None, description="The user who holds the role (or give group).",
                              examples=["alice"])
    group: SubjectName = Field(None, description="The group whose members hold the role (JupyterHub's groups).",
                               examples=["vision-team"])
    department: DnsLabel | None = Field(None, description="The department the role applies to (and its projects).")
    project: DnsLabel | None = Field(None, description="The project the role applies to.")

    @model_validator(mode="after")
    def _one_subject_one_scope(self) -> "RoleBinding":
        problems = Problems("RoleBinding")
        if (self.user is None) == (self.group is None):
            problems.add("user", "give exactly one of user and group", allowed=["user", "group"])
        if self.department is not None and self.project is not None:
            problems.add("project", "give at most one of department and project (neither: the whole cluster)",
                         allowed=["department", "project"])
        if self.role == Role.ADMIN and (self.department or self.project):
            problems.add("role", "admin is held on the whole cluster: give no department or project; "
                         "department-admin administers one department",
                         allowed=[r.value for r in Role if r != Role.ADMIN])
        if self.role == Role.DEPARTMENT_ADMIN and self.department is None:
            problems.add("department", "department-admin is held on a department: name it", allowed="a department")
        problems.raise_if_any()
        return self

    @property
    def subject(self) -> tuple[str, str]:
        """("user" or "group", the name)."""
        return ("user", self.user) if self.user is not None else ("group", self.group or "")

    @property
    def scope(self) -> tuple[str, str | None]:
        """("cluster", None), ("department", name) or ("project", name)."""
        if self.project is not None:
            return "project", self.project
        if self.department is not None:
            return "department", self.department
        return "cluster", None

    def describe(self) -> str:
        """``researcher for user alice on project vision``."""
        kind, name = self.subject
        return f"{self.role.value} for {kind} {name} on {scope_text(*self.scope)}"


def scope_text(kind: str, name: str | None) -> str:
    """``project vision``, ``department research``, ``the cluster``."""
    return "the cluster" if kind == "cluster" else f"{kind} {name}"
