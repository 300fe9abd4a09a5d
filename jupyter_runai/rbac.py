"""Role bindings in the service: the ones seeded from configuration and the ones granted at
runtime, and the checks every service method makes with them.

:class:`AccessControl` is a part of :class:`~jupyter_runai.service.RunaiService` (a mixin).
The decision itself (which role allows what, on which scope) is ``jupyter_runai.access``; this
module holds the bindings and asks it. A method given ``user=None`` is called from inside the
service (the loop, tests of the engine): it is not checked. Every REST handler passes its caller.

Bindings come from two places, and a caller holds the union of both:

* ``c.RunaiApp.role_bindings`` (configuration): read at start, listed with ``"source": "config"``
  and no id; they cannot be revoked at runtime (change the configuration and restart);
* the store: granted and revoked at runtime through REST and ``runai access``, each change
  written to the audit log (kind ``role_binding``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

from . import access
from .access import MANAGE_ANY, Grants, decide, grants_of
from .errors import Conflict, Forbidden, Invalid, NotFound
from .models import WorkloadKind
from .models.access import Role, RoleBinding

if TYPE_CHECKING:
    from .identity import User

__all__ = ["AccessControl", "BINDINGS_MAX"]

#: the most role bindings the store holds (each request reads them all)
BINDINGS_MAX = 10_000


class AccessControl:
    """Role bindings and the checks (see the module docstring)."""

    if TYPE_CHECKING:  # provided by RunaiService
        from .store import Store

        store: Store

        def _transaction(self, rollback: bool = True) -> Any: ...
        def _now(self) -> Any: ...
        def _audit(self, user: "User", action: str, kind: str, name: str, before: Any, after: Any) -> None: ...
        def runs_as(self, user: "User") -> dict[str, Any]: ...

    seed_bindings: tuple[RoleBinding, ...] = ()
    _stored_bindings: list[tuple[int, RoleBinding]] | None = None
    #: changes each time a binding or the project tree changes (cached grants are then read again)
    access_version: int = 0

    def set_seed_bindings(self, bindings: Iterable[RoleBinding | dict[str, Any]]) -> None:
        """The bindings of the configuration (validated here: a bad one names its field)."""
        bindings = list(bindings)
        if len(bindings) > BINDINGS_MAX:
            raise ValueError(f"role_bindings: {len(bindings)} given; at most {BINDINGS_MAX} (bind groups instead "
                             "of users)")
        self.seed_bindings = tuple(b if isinstance(b, RoleBinding) else RoleBinding.model_validate(b)
                                   for b in bindings)
        self.access_changed()

    def access_changed(self) -> None:
        """Bindings or projects changed: read them afresh."""
        self._stored_bindings = None
        self.access_version += 1

    def _bindings(self) -> list[tuple[int | None, RoleBinding]]:
        if self._stored_bindings is None:
            self._stored_bindings = self.store.role_bindings()
        return [*((None, b) for b in self.seed_bindings), *self._stored_bindings]

    # ------------------------------------------------------------ checks

    def grants(self, user: "User") -> Grants:
        """What ``user`` holds now."""
        return grants_of(user, (b for _, b in self._bindings()))

    def departments_of_projects(self) -> dict[str, str]:
        return self.store.project_departments()

    def require(self, user: "User | None", action: str, *, project: str | None = None,
                department: str | None = None, owner: str | None = None) -> None:
        """Raise :class:`Forbidden` (403, naming the role on the scope that would allow it) unless
        ``user`` may do ``action`` there; ``user=None`` (the service itself) always may."""
        if user is None:
            return
        grants = self.grants(user)
        if grants.allows(MANAGE_ANY if action == access.MANAGE else action):
            return  # held on the whole cluster: no need to read the project tree
        mapping = self.departments_of_projects() if project is not None and department is None else None
        denial = decide(grants, action, project=project, department=department, department_of=mapping, owner=owner)
        if denial is not None:
            raise Forbidden(denial.message, allowed=denial.allowed)

    def may(self, user: "User | None", action: str, **where: Any) -> bool:
        try:
            self.require(user, action, **where)
        except Forbidden:
            return False
        return True

    def visible_projects(self, user: "User | None", action: str = access.VIEW) -> set[str] | None:
        """The projects ``user`` may ``action`` (None: all of them, the caller holds it on the cluster)."""
        if user is None:
            return None
        grants = self.grants(user)
        if grants.allows(action):
            return None
        mapping = self.departments_of_projects()
        return {name for name, department in mapping.items()
                if grants.allows(action, project=name, department=department)}

    def submit_action(self, kind: WorkloadKind | str) -> str:
        return access.SUBMIT_INFERENCE if WorkloadKind(kind) == WorkloadKind.INFERENCE else access.SUBMIT

    def submittable_projects(self, user: "User | None") -> list[str]:
        """The projects, in order, to which ``user`` may submit a workload of some kind."""
        mapping = self.departments_of_projects()
        names = list(mapping)
        if user is None:
            return names
        grants = self.grants(user)
        return [name for name in names
                if any(grants.allows(a, project=name, department=mapping.get(name))
                       for a in (access.SUBMIT, access.SUBMIT_INFERENCE))]

    # ------------------------------------------------------------ the caller's own view

    def access_of(self, user: "User") -> dict[str, Any]:
        """``GET /access/me``: who the caller is, its roles, and where it may submit."""
        grants, mapping = self.grants(user), self.departments_of_projects()
        names = list(mapping)
        return {
            "user": user.name,
            "groups": sorted(user.groups),
            "admin": grants.allows(access.ADMINISTER_CLUSTER),
            "roles": grants.roles(),
            "submit_projects": [n for n in names if grants.allows(access.SUBMIT, project=n, department=mapping[n])],
            "inference_projects": [n for n in names
                                   if grants.allows(access.SUBMIT_INFERENCE, project=n, department=mapping[n])],
            "view_projects": [n for n in names if grants.allows(access.VIEW, project=n, department=mapping[n])],
            "view_nodes": grants.allows(access.VIEW_NODES),
            "runs_as": self.runs_as(user),  # admission.py: whose system account its workloads run as
        }

    # ------------------------------------------------------------ managing bindings

    def role_bindings(self, user: "User | None") -> list[dict[str, Any]]:
        """The bindings ``user`` may see: those it could revoke, and its own."""
        out = []
        grants = None if user is None else self.grants(user)
        mapping = self.departments_of_projects()
        for id_, binding in self._bindings():
            if grants is not None and not self._mine(grants.user, binding) and \
                    _grant_denial(grants, binding, mapping) is not None:
                continue
            out.append({"id": id_, "source": "config" if id_ is None else "store",
                        **binding.model_dump(mode="json", exclude_none=True)})
        return out

    def grant(self, body: dict[str, Any] | RoleBinding, user: "User") -> dict[str, Any]:
        """Store a new binding (201); 409 when the same binding exists already (stored or seeded)."""
        binding = body if isinstance(body, RoleBinding) else RoleBinding.model_validate(body)
        self._require_grant(user, binding)
        kind, name = binding.scope
        if kind == "project":
            self.project(name)  # type: ignore[attr-defined]  # NotFound names the field
        elif kind == "department" and name not in {d.name for d in self.store.departments()}:
            names = [d.name for d in self.store.departments()]
            raise NotFound(f"no department {name!r}; departments: {', '.join(names) or 'none'}",
                           field="department", allowed=names)
        if binding in self.seed_bindings:
            raise Conflict(f"{binding.describe()} is in the configuration already", field="role")
        if len(self._bindings()) >= BINDINGS_MAX + len(self.seed_bindings):
            raise Invalid(f"the store holds {BINDINGS_MAX} role bindings, the most it keeps; revoke some, or "
                          "bind groups instead of users", field="role", allowed=f"at most {BINDINGS_MAX}")
        with self._transaction():
            id_ = self.store.add_role_binding(binding)
            if id_ is None:
                raise Conflict(f"{binding.describe()} exists already", field="role")
            self._audit(user, "create", "role_binding", binding.describe(), None, binding)
        self.access_changed()
        return {"id": id_, "source": "store", **binding.model_dump(mode="json", exclude_none=True)}

    def revoke(self, id_: int, user: "User") -> dict[str, Any]:
        """Delete a stored binding by its id."""
        found = next((b for i, b in self._bindings() if i == id_), None)
        if found is None:
            raise NotFound(f"no stored role binding {id_}; `runai access list` shows them (bindings from the "
                           "configuration have no id and change only with it)", field="id")
        self._require_grant(user, found)
        with self._transaction():
            self.store.delete_role_binding(id_)
            self._audit(user, "delete", "role_binding", found.describe(), found, None)
        self.access_changed()
        return {"id": id_, "source": "store", **found.model_dump(mode="json", exclude_none=True)}

    def _require_grant(self, user: "User", binding: RoleBinding) -> None:
        denial = _grant_denial(self.grants(user), binding, self.departments_of_projects())
        if denial is not None:
            raise Forbidden(denial.message, allowed=denial.allowed)

    @staticmethod
    def _mine(user: "User", binding: RoleBinding) -> bool:
        kind, name = binding.subject
        return (kind == "user" and name == user.name) or (kind == "group" and name in user.groups)


def _grant_denial(grants: Grants, binding: RoleBinding, department_of: dict[str, str]) -> access.Denial | None:
    """Why the caller may not grant or revoke ``binding`` (None: it may). A cluster admin grants
    anything; a department admin any role but admin and department-admin on its departments and
    their projects."""
    kind, name = binding.scope
    if binding.role in (Role.ADMIN, Role.DEPARTMENT_ADMIN) or kind == "cluster":
        return decide(grants, access.ADMINISTER_CLUSTER)
    if kind == "department":
        return decide(grants, access.GRANT, department=name)
    return decide(grants, access.GRANT, project=name, department_of=department_of)
