"""Workload policies in the service: set and deleted by admins at runtime (audited), read by
everyone as the effective policy of a project and kind, and applied at admission.

:class:`PolicyAdministration` is a part of :class:`~jupyter_runai.service.RunaiService` (a
mixin beside :class:`~jupyter_runai.admin.Administration`, whose admin check and audit log it
uses). The merging and checking are the pure functions of :mod:`jupyter_runai.policies`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import access
from .admin import DEFAULT_DEPARTMENT
from .errors import Invalid, NotFound
from .models import Project, WorkloadKind, WorkloadSpec
from .models.policy import Policy, PolicyScope
from .policies import effective_view, given_fields, loosening, merge, violations, with_defaults
from .rules import allowed_pools, pool_problem

if TYPE_CHECKING:
    from .identity import User

__all__ = ["PolicyAdministration", "policy_key"]

KINDS = [k.value for k in WorkloadKind]
SCOPES = [s.value for s in PolicyScope]


def policy_key(scope: str, name: str | None, kind: str) -> str:
    """The audit log's name of a policy: ``cluster/training``, ``project/vision/workspace``."""
    return "/".join(part for part in (scope, name, kind) if part)


def _refuse(items: list[dict[str, Any]], note: str = "") -> None:
    if items:
        first = items[0]
        raise Invalid(first["message"] + note, field=first["field"], allowed=first["allowed"],
                      errors=[{**first, "message": first["message"] + note}, *items[1:]])


class PolicyAdministration:
    """The policy methods of the service (see the module's docstring)."""

    if TYPE_CHECKING:  # provided by RunaiService and Administration
        from .store import Store

        store: Store

        def _transaction(self, rollback: bool = True) -> Any: ...
        def require(self, user: "User | None", action: str, *, project: str | None = None,
                    department: str | None = None, owner: str | None = None) -> None: ...
        def _audit(self, user: "User", action: str, kind: str, name: str, before: Any, after: Any) -> None: ...
        def project(self, name: str) -> Project: ...
        def department(self, name: str) -> Any: ...

    # ------------------------------------------------------------ reading

    def policy_list(self, scope: str | None = None, name: str | None = None,
                    kind: str | None = None) -> list[Policy]:
        """The stored policies, optionally of one scope, name and kind."""
        if scope is not None and scope not in SCOPES:
            raise Invalid(f"unknown scope {scope[:40]!r}", field="scope", allowed=SCOPES)
        if kind is not None and kind not in KINDS:
            raise Invalid(f"unknown kind {kind[:40]!r}", field="kind", allowed=KINDS)
        return [p for p in self._stored_policies()
                if (scope is None or p.scope.value == scope) and (name is None or p.name == name)
                and (kind is None or p.kind.value == kind)]

    def _stored_policies(self) -> list[Policy]:
        """Every stored policy, read once and kept (only this service writes them; each change
        drops the copy), so that a submission costs no read of the store."""
        cached = getattr(self, "_policy_cache", None)
        if cached is None:
            cached = self._policy_cache = self.store.policies()
        return cached

    def _policies_for(self, department: str | None, project: str | None, kind: str) -> list[Policy]:
        """The policies for a kind that apply to a department or project, widest first."""
        wanted = [("cluster", None), ("department", department), ("project", project)]
        found = {(p.scope.value, p.name): p for p in self._stored_policies() if p.kind.value == kind}
        return [found[key] for key in wanted if key in found and (key[0] == "cluster" or key[1] is not None)]

    def effective_policy(self, project: str, kind: str, user: "User | None" = None) -> dict[str, Any]:
        """What a submission of ``kind`` to ``project`` gets: defaults and rules in force, with whose each is
        (for a caller who may see the project)."""
        self.require(user, access.VIEW, project=project)
        if kind not in KINDS:
            raise Invalid(f"unknown kind {kind[:40]!r}", field="kind", allowed=KINDS)
        found = self.project(project)  # NotFound names the projects
        policies = self._policies_for(found.department, found.name, kind)
        return {"project": found.name, "kind": kind, "policies": [p.scope_text for p in policies],
                **effective_view(merge(policies))}

    # ------------------------------------------------------------ admission

    def _check_policies_now(self, spec: WorkloadSpec) -> None:
        """Refuse (:class:`Invalid`, every rule listed, as at submission) a stored workload that the
        policies and node_pools rule in force now do not allow: a resumed workload is admitted again.
        Its fields are kept as they are (no new defaults): what it asks for is what was admitted."""
        problems = self._policy_problems(spec, self.project(spec.project))
        _refuse(problems, f" (the policy in force: runai policy effective {spec.kind.value} -p {spec.project}; "
                          f"submit it anew with values it allows)")

    def _policy_problems(self, spec: WorkloadSpec, project: Project) -> list[dict[str, Any]]:
        """Every rule of the policies and node_pools rule in force that ``spec`` (defaults filled) breaks."""
        kind = spec.kind.value
        policies = self._policies_for(project.department, project.name, kind)
        department = next((d for d in self.store.departments() if d.name == project.department), None)
        pools = allowed_pools(kind, project, department)
        if not policies and pools is None:
            return []
        effective = merge(policies)
        # who set each field is not stored: a field a policy fixes must hold its default, one it leaves to
        # the server holds what the server set
        fixed = {name for name, item in effective.items() if item.has_default}
        problems = violations(spec.model_dump(mode="json"), fixed, effective, kind)
        pool_text = pool_problem(kind, spec.node_pools, pools)
        if pool_text is not None:
            problems.append({"field": "node_pools", "message": f"node_pools: {pool_text}", "allowed": pools[0]})
        return problems

    def _apply_policies(self, spec: WorkloadSpec, project: Project) -> WorkloadSpec:
        """The submission with the policies' defaults filled in, and the node pools its kind may use
        (the node_pools scheduling rule) where it names none; :class:`Invalid` listing every rule it
        breaks (the field, what is wrong, what is allowed) when it breaks any."""
        kind = spec.kind.value
        policies = self._policies_for(project.department, project.name, kind)
        department = next((d for d in self.store.departments() if d.name == project.department), None)
        pools = allowed_pools(kind, project, department)
        if not policies and pools is None:
            return spec
        effective = merge(policies)
        given = spec.model_dump(mode="json", exclude_unset=True)
        filled_doc = with_defaults(given, effective)
        if pools is not None and not filled_doc.get("node_pools"):
            filled_doc["node_pools"] = list(pools[0])
        filled = WorkloadSpec.model_validate(filled_doc)
        problems = violations(filled.model_dump(mode="json"), given_fields(given), effective, kind)
        pool_text = pool_problem(kind, filled.node_pools, pools)
        if pool_text is not None:
            problems.append({"field": "node_pools", "message": f"node_pools: {pool_text}", "allowed": pools[0]})
        _refuse(problems, f" (the policy in force: runai policy effective {kind} -p {project.name})")
        return filled

    # ------------------------------------------------------------ changing

    def _require_policy_admin(self, user: "User", scope: str, name: str | None) -> None:
        """The cluster's policies are set by cluster admins; a department's or a project's also by the
        admins of that department (role ``department-admin``), as for the projects themselves."""
        if scope == "department" and name:
            self.require(user, access.ADMINISTER_PROJECTS, department=name)
        elif scope == "project" and name:
            self.require(user, access.ADMINISTER_PROJECTS, project=name)
        else:
            self.require(user, access.ADMINISTER_CLUSTER)

    def _wider_policies(self, scope: PolicyScope, name: str | None, kind: str) -> list[Policy]:
        """The policies of the scopes wider than ``scope`` ``name`` for ``kind``, widest first (NotFound
        for a department or project that is not there)."""
        if scope == PolicyScope.CLUSTER:
            return []
        if scope == PolicyScope.DEPARTMENT:
            department = name if name == DEFAULT_DEPARTMENT else self.department(name or "").name
        else:
            department = self.project(name or "").department
        wider = self._policies_for(department, None, kind)
        if scope == PolicyScope.DEPARTMENT:
            wider = [p for p in wider if p.scope == PolicyScope.CLUSTER]
        return wider

    def inherited_policy(self, scope: str, name: str | None, kind: str, user: "User") -> dict[str, Any]:
        """What the scopes wider than ``scope`` ``name`` say of ``kind`` (the effective policy a policy of
        that scope may only tighten), for whoever may set that scope's policy."""
        if scope not in SCOPES:
            raise Invalid(f"unknown scope {scope[:40]!r}", field="scope", allowed=SCOPES)
        if kind not in KINDS:
            raise Invalid(f"unknown kind {kind[:40]!r}", field="kind", allowed=KINDS)
        if (scope == "cluster") != (not name):
            raise Invalid("must be unset for the cluster" if name else f"required: the {scope}'s name", field="name",
                          allowed=None if name else f"a {scope} name")
        self._require_policy_admin(user, scope, name)
        wider = self._wider_policies(PolicyScope(scope), name, kind)
        return {"scope": scope, "name": name, "kind": kind, "policies": [p.scope_text for p in wider],
                **effective_view(merge(wider))}

    def set_policy(self, body: dict[str, Any], user: "User") -> Policy:
        """Create or replace the policy of one scope and kind. Refused (400, every problem listed) where it
        would loosen what a wider scope's policy allows, or its defaults break the rules in force."""
        policy = Policy.model_validate(body)
        self._require_policy_admin(user, policy.scope.value, policy.name)
        wider_scopes = self._wider_policies(policy.scope, policy.name, policy.kind.value)
        _refuse(loosening(policy, merge(wider_scopes)))
        before = next(iter(self.policy_list(policy.scope.value, policy.name, policy.kind.value)), None)
        if before == policy:
            return policy
        try:
            with self._transaction():
                self.store.put_policy(policy)
                self._audit(user, "create" if before is None else "update", "policy",
                            policy_key(policy.scope.value, policy.name, policy.kind.value), before, policy)
        finally:
            self._policy_cache = None  # read again: what the store holds, committed or not
        return policy

    def _audit_policies_gone(self, scope: str, name: str, user: "User") -> None:
        """Audit, as deletions by ``user``, the policies of a department or project being deleted (the store
        deletes them with it); called inside the deletion's transaction."""
        for policy in self.policy_list(scope, name):
            self._audit(user, "delete", "policy", policy_key(scope, name, policy.kind.value), policy, None)

    def delete_policy(self, scope: str, name: str | None, kind: str, user: "User") -> Policy:
        """Delete the policy of one scope and kind (the wider scopes' policies then apply)."""
        if scope in SCOPES and scope != "cluster" and name:
            self._require_policy_admin(user, scope, name)
        else:
            self._require_policy_admin(user, "cluster", None)
        if scope in SCOPES and (scope == "cluster") != (not name):
            raise Invalid("must be unset for the cluster's policy" if name else f"required: the {scope}'s name",
                          field="name", allowed=None if name else f"a {scope} name")
        before = next(iter(self.policy_list(scope, name or None, kind)), None)
        if before is None:
            have = [policy_key(p.scope.value, p.name, p.kind.value) for p in self._stored_policies()]
            raise NotFound(f"no {kind} policy for {policy_key(scope, name, '')}; policies: {', '.join(have) or 'none'}",
                           field="policy", allowed=have)
        try:
            with self._transaction():
                self.store.delete_policy(scope, name, kind)
                self._audit(user, "delete", "policy", policy_key(scope, name, kind), before, None)
        finally:
            self._policy_cache = None
        return before
