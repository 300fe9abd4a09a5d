"""Who may do what: roles on scopes (RBAC), decided without I/O.

Roles (``models.access.Role``) are held on a scope through a binding
(``models.access.RoleBinding``): the cluster, a department (and so its projects) or a project.
A caller holds the roles bound to its name and to each of its groups; ``User.admin`` (the
server's own user on one machine, JupyterHub's admins) holds ``admin`` on the cluster.

Each role allows a set of actions (``ROLE_ACTIONS``) inside the scope it is held on:

========================  =====  ================  ===========  ==========  ======
action                    admin  department-admin  ml-engineer  researcher  viewer
========================  =====  ================  ===========  ==========  ======
view (workloads, data)      x           x               x            x         x
submit (not inference)      x           x                            x
submit-inference            x           x               x
manage-own (stop, resume,   x           x               x            x
delete what one submitted)
manage-any                  x           x
edit-data (data sources,    x           x               x            x
credentials)
view-nodes                  x           x               x                      x
administer-projects         x           x
grant (role bindings)       x           x
administer-cluster          x
========================  =====  ================  ===========  ==========  ======

``view-nodes`` is not tied to a scope: nodes and node pools serve every project, so a role that
allows it allows it wherever it is held. ``administer-cluster`` (departments, node pools, the audit
log) is only on the cluster scope. A department admin grants roles other than admin and
department-admin, inside its department.

:func:`decide` answers one question (may this caller do this action on this project, department or
the cluster?) and, when the answer is no, says which role on which scope would allow it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from .identity import User
from .models.access import Role, RoleBinding, scope_text

__all__ = [
    "ACTIONS", "ADMINISTER_CLUSTER", "ADMINISTER_PROJECTS", "EDIT_DATA", "GRANT", "Grants", "MANAGE",
    "MANAGE_ANY", "MANAGE_OWN", "ROLE_ACTIONS", "SUBMIT", "SUBMIT_INFERENCE", "VIEW", "VIEW_NODES", "Denial",
    "decide", "grants_of",
]

VIEW = "view"
SUBMIT = "submit"
SUBMIT_INFERENCE = "submit-inference"
MANAGE_OWN = "manage-own"
MANAGE_ANY = "manage-any"
EDIT_DATA = "edit-data"
VIEW_NODES = "view-nodes"
ADMINISTER_PROJECTS = "administer-projects"
GRANT = "grant"
ADMINISTER_CLUSTER = "administer-cluster"
#: stop, resume or delete one workload: ``manage-any``, or ``manage-own`` for the one who submitted it
MANAGE = "manage"

ACTIONS = (VIEW, SUBMIT, SUBMIT_INFERENCE, MANAGE_OWN, MANAGE_ANY, EDIT_DATA, VIEW_NODES, ADMINISTER_PROJECTS,
           GRANT, ADMINISTER_CLUSTER)

ROLE_ACTIONS: dict[Role, frozenset[str]] = {
    Role.ADMIN: frozenset(ACTIONS),
    Role.DEPARTMENT_ADMIN: frozenset({VIEW, SUBMIT, SUBMIT_INFERENCE, MANAGE_OWN, MANAGE_ANY, EDIT_DATA, VIEW_NODES,
                                      ADMINISTER_PROJECTS, GRANT}),
    Role.ML_ENGINEER: frozenset({VIEW, SUBMIT_INFERENCE, MANAGE_OWN, EDIT_DATA, VIEW_NODES}),
    Role.RESEARCHER: frozenset({VIEW, SUBMIT, MANAGE_OWN, EDIT_DATA}),
    Role.VIEWER: frozenset({VIEW, VIEW_NODES}),
}

#: what each action reads as in a denial: "alice may not <words> project p"
ACTION_WORDS = {
    VIEW: "see the workloads and data of",
    SUBMIT: "submit workloads (other than inference) to",
    SUBMIT_INFERENCE: "submit inference workloads to",
    MANAGE_OWN: "stop, resume or delete its own workloads in",
    MANAGE_ANY: "stop, resume or delete others' workloads in",
    EDIT_DATA: "add or delete data sources and credentials of",
    VIEW_NODES: "see the nodes and node pools of",
    ADMINISTER_PROJECTS: "create, change or delete projects of",
    GRANT: "grant or revoke roles on",
    ADMINISTER_CLUSTER: "administer departments, node pools and the audit log of",
}

#: actions whose scope does not matter (a role that allows them allows them wherever it is held)
ANYWHERE = frozenset({VIEW_NODES})
#: actions only held on the cluster scope
CLUSTER_ONLY = frozenset({ADMINISTER_CLUSTER})
#: the department a project is in when the mapping does not say
DEFAULT_DEPARTMENT = "default"


@dataclass(frozen=True)
class Denial:
    """Why a request is refused: ``message`` in words, ``allowed`` the role bindings that would allow it
    (``["researcher on project p", "department-admin on department d", "admin on the cluster"]``)."""

    message: str
    allowed: list[str]


@dataclass(frozen=True)
class Grants:
    """The roles one caller holds: (role, scope kind, scope name) for each binding that names it."""

    user: User
    held: tuple[tuple[Role, str, str | None], ...]

    def roles(self) -> list[dict[str, str | None]]:
        """``[{"role": ..., "scope": "project", "name": ...}]``, as ``/access/me`` shows them."""
        return [{"role": role.value, "scope": kind, "name": name} for role, kind, name in self.held]

    def allows(self, action: str, project: str | None = None, department: str | None = None,
               department_of: Mapping[str, str] | None = None) -> bool:
        """True when a role held covers ``action`` on the project (in its department), the
        department, or (neither given) the cluster."""
        if project is not None and department is None:
            department = (department_of or {}).get(project, DEFAULT_DEPARTMENT)
        for role, kind, name in self.held:
            if action not in ROLE_ACTIONS[role]:
                continue
            if action in ANYWHERE or kind == "cluster":
                return True
            if action in CLUSTER_ONLY:
                continue
            if kind == "department" and department is not None and name == department:
                return True
            if kind == "project" and project is not None and name == project:
                return True
        return False


def grants_of(user: User, bindings: Iterable[RoleBinding]) -> Grants:
    """What ``user`` holds: its own bindings, its groups' bindings, and admin on the cluster
    when ``user.admin``."""
    held: list[tuple[Role, str, str | None]] = [(Role.ADMIN, "cluster", None)] if user.admin else []
    for binding in bindings:
        kind, name = binding.subject
        if (kind == "user" and name == user.name) or (kind == "group" and name in user.groups):
            item = (binding.role, *binding.scope)
            if item not in held:
                held.append(item)
    return Grants(user, tuple(held))


def decide(grants: Grants, action: str, *, project: str | None = None, department: str | None = None,
           department_of: Mapping[str, str] | None = None, owner: str | None = None) -> Denial | None:
    """None when the caller may do ``action`` on the project (or department, or the cluster when
    neither is given); else the :class:`Denial` naming the roles on scopes that would allow it.

    ``MANAGE`` (stop, resume or delete one workload) takes ``owner``, who submitted it: the owner
    needs ``manage-own``, anyone else ``manage-any``."""
    if action not in (*ACTIONS, MANAGE):
        raise ValueError(f"unknown action {action!r}")
    if project is not None and department is None:
        department = (department_of or {}).get(project, DEFAULT_DEPARTMENT)
    if action == MANAGE:
        action = MANAGE_OWN if owner is not None and owner == grants.user.name else MANAGE_ANY
    if grants.allows(action, project=project, department=department):
        return None
    where = (f"project {project}" if project is not None else
             f"department {department}" if department is not None else "the cluster")
    allowed = would_allow(action, project, department)
    words = ACTION_WORDS[action]
    if action == MANAGE_ANY and project is not None:
        words = "stop, resume or delete workloads others submitted in"
    message = (f"{grants.user.name} may not {words} {'the cluster' if action in ANYWHERE else where}; "
               f"that takes {_or(allowed)}")
    return Denial(message, allowed)


def would_allow(action: str, project: str | None, department: str | None) -> list[str]:
    """The narrowest binding of each role that would allow ``action`` on the target, widest role last."""
    out: list[str] = []
    for role in reversed(list(Role)):  # viewer first: the least a caller needs
        if action not in ROLE_ACTIONS[role]:
            continue
        if role == Role.ADMIN or action in CLUSTER_ONLY:
            kind, name = "cluster", None
        elif action in ANYWHERE:
            out.append(f"{role.value} on any project or department")
            continue
        elif role == Role.DEPARTMENT_ADMIN:
            if department is None:
                continue
            kind, name = "department", department
        elif project is not None:
            kind, name = "project", project
        elif department is not None:
            kind, name = "department", department
        else:
            kind, name = "cluster", None
        out.append(f"{role.value} on {scope_text(kind, name)}")
    return out


def _or(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]
