"""Administration at runtime: departments, projects and node pools created, changed and
deleted while the service runs, each change recorded in the audit log.

:class:`Administration` is a part of :class:`~jupyter_runai.service.RunaiService` (a mixin):
the REST handlers call these methods, never the store. Every method checks that the
caller may administer (``rbac.AccessControl.require``: departments, node pools and the audit
log take admin on the cluster; a project, department-admin on its department),
validates through the models (``Department``, ``Project``, ``NodePool``), writes the change
and its audit entry in one transaction, and wakes the loop. A change takes effect in the
next scheduling cycle, which reads the queue tree and the pools afresh; it never stops or
evicts a pod by itself (a smaller quota is reclaimed by the cycle's reclaim action, only
when another queue waits for what it deserves).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from . import access
from .errors import Conflict, Invalid, NotFound
from .models import Department, NodePool, Project
from .snapshot import DEFAULT_POOL, node_pool_of

if TYPE_CHECKING:
    from .identity import User

__all__ = ["AUDIT_KINDS", "Administration", "merge_changes"]

#: what the audit log records changes of (its ``kind`` column)
AUDIT_KINDS = ("department", "project", "node_pool", "role_binding", "policy")
#: the department a project belongs to unless it says otherwise; allowed even where it is not defined
DEFAULT_DEPARTMENT = "default"
#: the most audit entries one read returns
AUDIT_LIMIT_MAX = 10_000


def merge_changes(current: dict[str, Any], changes: dict[str, Any], *, deep: tuple[str, ...]) -> dict[str, Any]:
    """``current`` with ``changes`` applied: a key given replaces the current value, except the
    blocks named in ``deep`` (``deserved``, ``limit``, ``node_pools``...), whose keys are merged one
    level down, so that ``{"deserved": {"gpu": 4}}`` keeps the deserved CPU and memory. Inside
    ``node_pools`` a pool set to null loses its own quota block."""
    out = dict(current)
    for key, value in changes.items():
        if key in deep and isinstance(value, dict) and isinstance(out.get(key), dict):
            block = dict(out[key])
            for sub, item in value.items():
                if key == "node_pools" and item is None:
                    block.pop(sub, None)
                elif (key == "node_pools" and isinstance(item, dict) and isinstance(block.get(sub), dict)):
                    block[sub] = merge_changes(block[sub], item, deep=("deserved", "limit"))
                elif key == "rules" and item is None:
                    block.pop(sub, None)  # the kind loses all its rules
                elif key == "rules" and isinstance(item, dict) and isinstance(block.get(sub), dict):
                    block[sub] = {**block[sub], **item}  # one rule changed, the kind's others kept
                else:
                    block[sub] = item
            out[key] = block
        else:
            out[key] = value
    return out


QUEUE_BLOCKS = ("deserved", "limit", "node_pools", "rules")


class Administration:
    """The administration methods of the service (see the module's docstring)."""

    if TYPE_CHECKING:  # provided by RunaiService
        from .store import Store

        store: Store
        node_pools: list[NodePool]
        workloads: dict
        cluster: Any

        def _transaction(self, rollback: bool = True) -> Any: ...
        def _now(self) -> Any: ...
        def wake(self) -> None: ...
        def require(self, user: "User | None", action: str, **where: Any) -> None: ...
        def visible_projects(self, user: "User | None", action: str = ...) -> set[str] | None: ...
        def grants(self, user: "User") -> Any: ...
        def access_changed(self) -> None: ...
        def _audit_policies_gone(self, scope: str, name: str, user: "User") -> None: ...  # policy_admin

    # ------------------------------------------------------------ who may

    def _require_cluster_admin(self, user: "User | None") -> None:
        """Refuse (403) a change by a caller who does not hold admin on the cluster."""
        self.require(user, access.ADMINISTER_CLUSTER)

    def _require_project_admin(self, user: "User | None", department: str) -> None:
        """Refuse (403) a change to a project of ``department`` by a caller who is not its department admin."""
        self.require(user, access.ADMINISTER_PROJECTS, department=department)

    # ------------------------------------------------------------ reading

    def department(self, name: str) -> Department:
        for department in self.store.departments():
            if department.name == name:
                return department
        names = [d.name for d in self.store.departments()]
        raise NotFound(f"no department {name!r}; departments: {', '.join(names) or 'none'}", field="department",
                       allowed=names)

    def node_pool(self, name: str) -> NodePool:
        for pool in self.node_pools:
            if pool.name == name:
                return pool
        names = [p.name for p in self.node_pools]
        raise NotFound(f"no node pool {name!r}; node pools: {', '.join(names) or 'none'}", field="node_pool",
                       allowed=names)

    def department_views(self, user: "User | None" = None) -> list[dict[str, Any]]:
        """Each department ``user`` may see (it holds a role on it or on one of its projects) with
        the names of the projects it may see."""
        views = department_views(self)
        visible = self.visible_projects(user)
        if visible is None:
            return views
        held = {name for _, kind, name in self.grants(user).held if kind == "department"}
        return [{**v, "projects": [p for p in v["projects"] if p in visible]} for v in views
                if v["name"] in held or any(p in visible for p in v["projects"])]

    def department_view(self, name: str, user: "User | None" = None) -> dict[str, Any]:
        """One department as :meth:`department_views` shows it; 403 when ``user`` may see none of it."""
        self.department(name)  # NotFound names the field
        view = next((d for d in self.department_views(user) if d["name"] == name), None)
        if view is None:
            self.require(user, access.VIEW, department=name)  # raises: the 403 naming the role
        return view  # type: ignore[return-value]

    def project_view(self, name: str, user: "User | None" = None) -> dict[str, Any]:
        """One project as ``project_views`` shows it (checked before it is looked up)."""
        self.require(user, access.VIEW, project=name)
        self.project(name)  # type: ignore[attr-defined]  # NotFound names the field
        return next(p for p in self.project_views(user) if p["name"] == name)  # type: ignore[attr-defined]

    def node_pool_views(self, user: "User | None" = None) -> list[dict[str, Any]]:
        """Each node pool with the nodes it holds now."""
        self.require(user, access.VIEW_NODES)
        return node_pool_views(self)

    def audit(self, user: "User", kind: str | None = None, name: str | None = None,
              limit: int = 100) -> list[dict[str, Any]]:
        """The newest ``limit`` changes (oldest first): who, when, what, before and after."""
        self._require_cluster_admin(user)
        if kind is not None and kind not in AUDIT_KINDS:
            raise Invalid(f"unknown kind {kind[:40]!r}; one of {', '.join(AUDIT_KINDS)}", field="kind",
                          allowed=list(AUDIT_KINDS))
        if not 1 <= limit <= AUDIT_LIMIT_MAX:
            raise Invalid(f"must be from 1 to {AUDIT_LIMIT_MAX}", field="limit", allowed=f"1 to {AUDIT_LIMIT_MAX}")
        return self.store.audit(kind=kind, name=name, limit=limit)

    # ------------------------------------------------------------ departments

    def create_department(self, body: dict[str, Any], user: "User") -> Department:
        self._require_cluster_admin(user)
        department = Department.model_validate(body)
        if department.name in {d.name for d in self.store.departments()}:
            raise Conflict(f"a department named {department.name!r} exists already", field="name")
        self._check_pool_quotas(department)
        with self._transaction():
            self.store.put_department(department)
            self._audit(user, "create", "department", department.name, None, department)
        self.wake()
        return department

    def update_department(self, name: str, changes: dict[str, Any], user: "User") -> Department:
        self._require_cluster_admin(user)
        before = self.department(name)
        after = Department.model_validate(self._merged(before, name, changes))
        self._check_pool_quotas(after)
        if after == before:
            return before  # nothing changes: nothing written, nothing recorded
        with self._transaction():
            self.store.put_department(after)
            self._audit(user, "update", "department", name, before, after)
        self.wake()
        return after

    def delete_department(self, name: str, user: "User") -> Department:
        self._require_cluster_admin(user)
        before = self.department(name)
        members = [p.name for p in self.store.projects() if p.department == name]
        if members:
            raise Conflict(f"department {name!r} still has project(s) {', '.join(members)}; move or delete them "
                           "first", field="department", allowed=members)
        with self._transaction():
            self._audit_policies_gone("department", name, user)
            self.store.delete_department(name)
            self._audit(user, "delete", "department", name, before, None)
        self._policy_cache = None  # its workload policies went with it (store.delete_department)
        self.wake()
        return before

    # ------------------------------------------------------------ projects

    def create_project(self, body: dict[str, Any], user: "User") -> Project:
        project = Project.model_validate(body)
        self._require_project_admin(user, project.department)
        if self.store.project(project.name) is not None:
            raise Conflict(f"a project named {project.name!r} exists already", field="name")
        self._check_project(project)
        with self._transaction():
            self.store.put_project(project)
            self._audit(user, "create", "project", project.name, None, project)
        self.wake()
        return project

    def update_project(self, name: str, changes: dict[str, Any], user: "User") -> Project:
        before = self.project(name)
        self._require_project_admin(user, before.department)
        after = Project.model_validate(self._merged(before, name, changes))
        self._require_project_admin(user, after.department)  # moved: to a department it administers too
        self._check_project(after)
        if after == before:
            return before
        with self._transaction():
            self.store.put_project(after)
            self._audit(user, "update", "project", name, before, after)
        self.wake()
        return after

    def delete_project(self, name: str, user: "User") -> Project:
        """Delete a project with its data sources and credentials. Refused (409) while any
        workload of it is stored: the message names them, live ones first."""
        before = self.project(name)
        self._require_project_admin(user, before.department)
        mine = [w for w in self.workloads.values() if w.spec.project == name]
        if mine:
            mine.sort(key=lambda w: w.status.phase.is_finished)
            live = [w.spec.name for w in mine if not w.status.phase.is_finished]
            done = [w.spec.name for w in mine if w.status.phase.is_finished]
            parts = [f"{len(names)} {which} workload(s): {', '.join(names[:20])}" + (" ..." if len(names) > 20 else "")
                     for which, names in (("live", live), ("finished", done)) if names]
            raise Conflict(f"project {name!r} still has {' and '.join(parts)}; delete them first", field="project",
                           allowed=[w.spec.name for w in mine])
        with self._transaction():
            self._audit_policies_gone("project", name, user)
            self.store.delete_project(name)
            self._audit(user, "delete", "project", name, before, None)
        self._policy_cache = None  # its workload policies went with it (store.delete_project)
        self.wake()
        return before

    # ------------------------------------------------------------ node pools

    def create_node_pool(self, body: dict[str, Any], user: "User") -> NodePool:
        self._require_cluster_admin(user)
        pool = NodePool.model_validate(body)
        if pool.name == DEFAULT_POOL:
            raise Invalid(f"{DEFAULT_POOL!r} is the pool of the nodes no other pool takes; choose another name",
                          field="name", allowed="a DNS-1123 label other than 'default'")
        if pool.name in {p.name for p in self.node_pools}:
            raise Conflict(f"a node pool named {pool.name!r} exists already", field="name")
        with self._transaction():
            self.store.put_node_pool(pool)
            self._audit(user, "create", "node_pool", pool.name, None, pool)
        self.node_pools = [*self.node_pools, pool]
        self.wake()
        return pool

    def update_node_pool(self, name: str, changes: dict[str, Any], user: "User") -> NodePool:
        """Change a pool's label selector or placement. Nodes that no longer match move to the
        next pool that takes them; pods already running stay where they are."""
        self._require_cluster_admin(user)
        before = self.node_pool(name)
        after = NodePool.model_validate(self._merged(before, name, changes, deep=()))
        if after == before:
            return before
        with self._transaction():
            self.store.put_node_pool(after)
            self._audit(user, "update", "node_pool", name, before, after)
        self.node_pools = [after if p.name == name else p for p in self.node_pools]
        self.wake()
        return after

    def delete_node_pool(self, name: str, user: "User") -> NodePool:
        """Delete a pool; its nodes go to the next pool that takes them (or ``default``).
        Refused (409) while a queue has a quota block for it or a live workload asks for it."""
        self._require_cluster_admin(user)
        before = self.node_pool(name)
        users = [f"department {d.name}" for d in self.store.departments() if name in d.node_pools]
        users += [f"project {p.name}" for p in self.store.projects() if name in p.node_pools]
        users += [f"workload {w.spec.project}/{w.spec.name}" for w in self.workloads.values()
                  if name in w.spec.node_pools and not w.status.phase.is_finished]
        if users:
            raise Conflict(f"node pool {name!r} is still used by {', '.join(users[:20])}"
                           + (" ..." if len(users) > 20 else "") + "; remove those uses first",
                           field="node_pool", allowed=users)
        with self._transaction():
            self.store.delete_node_pool(name)
            self._audit(user, "delete", "node_pool", name, before, None)
        self.node_pools = [p for p in self.node_pools if p.name != name]
        self.wake()
        return before

    # ------------------------------------------------------------ helpers

    @staticmethod
    def _merged(current: BaseModel, name: str, changes: dict[str, Any],
                deep: tuple[str, ...] = QUEUE_BLOCKS) -> dict[str, Any]:
        """The object's document with ``changes`` applied; its name cannot change."""
        if "name" in changes and changes["name"] != name:
            raise Invalid(f"cannot be changed (it is {name!r}); create a new one instead", field="name",
                          allowed=[name])
        return merge_changes(current.model_dump(mode="json"), changes, deep=deep)

    def _check_project(self, project: Project) -> None:
        # as in the queue file, "default" is always allowed: a project whose department is not
        # defined is a queue of its own at the top of the tree (snapshot.build_snapshot)
        departments = [d.name for d in self.store.departments()]
        departments += [] if DEFAULT_DEPARTMENT in departments else [DEFAULT_DEPARTMENT]
        if project.department not in departments:
            raise Invalid(f"no department {project.department!r}; departments: {', '.join(departments) or 'none'}",
                          field="department", allowed=departments)
        self._check_pool_quotas(project)

    def _check_pool_quotas(self, queue: Department | Project) -> None:
        pools = [p.name for p in self.node_pools] + [DEFAULT_POOL]
        for pool in queue.node_pools:
            if pool not in pools:
                raise Invalid(f"no node pool {pool!r}; node pools: {', '.join(pools)}", field=f"node_pools.{pool}",
                              allowed=pools)

    def _audit(self, user: "User", action: str, kind: str, name: str, before: BaseModel | None,
               after: BaseModel | None) -> None:
        self.access_changed()  # the project tree or the bindings change: who sees what is read again
        self.store.add_audit(at=self._now(), user=user.name, action=action, kind=kind, name=name,
                             before=None if before is None else before.model_dump(mode="json"),
                             after=None if after is None else after.model_dump(mode="json"))


def department_views(service: Any) -> list[dict[str, Any]]:
    """Each department with the names of its projects."""
    members: dict[str, list[str]] = {}
    for project in service.store.projects():
        members.setdefault(project.department, []).append(project.name)
    return [{**d.model_dump(mode="json"), "projects": members.get(d.name, [])} for d in service.store.departments()]


def node_pool_views(service: Any) -> list[dict[str, Any]]:
    """Each node pool with the names of the nodes it holds now (a node belongs to the first pool
    whose selector it matches)."""
    held: dict[str, list[str]] = {}
    for node in service.cluster.nodes():
        held.setdefault(node_pool_of(node, service.node_pools), []).append(node.name)
    return [{**p.model_dump(mode="json"), "nodes": held.get(p.name, [])} for p in service.node_pools]
