"""Admission in the service: what a submitted workload goes through before it is stored.

:class:`Admission` is a part of :class:`~jupyter_runai.service.RunaiService` (a mixin). In
order: validation of the spec (``models``), the project exists, the caller may submit this kind
there (``rbac``), the admission hooks, the policies (``policy_admin``: defaults, then every rule
broken listed), the references (node pools, data sources, credentials), the system account the
workload would run as (``accounts``: on the local cluster under a root service, the submitter's), what
the cluster can run, a workload that could never run on these nodes (``feasibility``) and a name
already taken. Each refusal raises and names the field; nothing is stored then.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import Conflict, Invalid
from .feasibility import distinct_nodes, never_runs
from .accounts import RunAs, SystemAccount
from .identity import User
from .models import Node, Project, WorkloadKind, WorkloadSpec

__all__ = ["Admission", "AdmissionHook"]

AdmissionHook = Callable[[WorkloadSpec, User], WorkloadSpec | None]
"""Called on every submit after validation; may return a changed spec (defaults
from a policy) or raise a ``ServiceError`` (a policy or RBAC refusal)."""


class Admission:
    """The checks of a submit (see the module docstring)."""

    if TYPE_CHECKING:  # provided by RunaiService
        from .clusters.base import Cluster
        from .models import NodePool, Workload
        from .store import Store

        store: Store
        cluster: Cluster
        node_pools: list[NodePool]
        admission_hooks: list[AdmissionHook]
        run_as: RunAs | None
        workloads: dict[str, Workload]
        _names: dict[tuple[str, str], str]

        def project(self, name: str) -> Project: ...
        def require(self, user: User | None, action: str, **scope: Any) -> None: ...
        def submit_action(self, kind: WorkloadKind) -> str: ...
        def _apply_policies(self, spec: WorkloadSpec, project: Project) -> WorkloadSpec: ...

    def _admit(self, spec: WorkloadSpec | dict[str, Any], user: User) -> WorkloadSpec:
        """The spec to store, with its defaults; raises ``ValidationError`` (a field error) or a
        ``ServiceError`` naming the field (see the module docstring)."""
        if not isinstance(spec, WorkloadSpec):
            spec = WorkloadSpec.model_validate(spec)
        project = self.project(spec.project)  # NotFound names the field
        self.require(user, self.submit_action(spec.kind), project=spec.project)
        for hook in self.admission_hooks:
            changed = hook(spec, user)
            if changed is not None:
                spec = changed
        if spec.project != project.name:  # a hook moved it
            project = self.project(spec.project)
            self.require(user, self.submit_action(spec.kind), project=spec.project)
        spec = self._apply_policies(spec, project)  # defaults, then every rule broken listed (policy_admin)
        self._check_references(spec)
        self.account_of(user.name)  # the submitter's system account must exist: never run as root instead
        if spec.command is None and spec.kind != WorkloadKind.WORKSPACE and not self.cluster.runs_images:
            raise Invalid(f"required for a {spec.kind.value} on the {self.cluster.name} cluster: it runs this "
                          f"command in the server's Python environment and does not run images",
                          field="command", allowed="a command string or list")
        for part, res in (("resources", spec.resources), ("master_resources", spec.master_resources)):
            if res is not None and res.is_fractional and not self.cluster.gpu_fractions:
                raise Invalid(f"the {self.cluster.name} cluster gives whole GPUs only (fractions and GPU memory "
                              f"are not built for it yet)", field=f"{part}.gpu", allowed="a whole number of GPUs")
        if not spec.queue_anyway:
            self._refuse_never_runs(spec, project)
        existing = self._names.get((spec.project, spec.name))
        if existing is not None:
            raise Conflict(
                f"a workload named {spec.name!r} already exists in project {spec.project!r} "
                f"({self.workloads[existing].status.phase}); delete it first or choose another name",
                field="name",
            )
        return spec

    def account_of(self, username: str | None) -> SystemAccount | None:
        """The system account a workload of ``username`` runs as on this cluster: None for the
        service's own; raises ``Invalid`` (field ``submitted_by``) when that account does not exist."""
        if self.run_as is None or not getattr(self.cluster, "runs_as_accounts", False):
            return None
        return self.run_as.for_user(username)

    def runs_as(self, user: User) -> dict[str, str | None]:
        """What the caller's workloads run as, for views: ``{"account": name or None (the service's own),
        "error": why they cannot be submitted, or None}``."""
        try:
            account = self.account_of(user.name)
        except Invalid as refused:
            return {"account": None, "error": refused.message}
        return {"account": account.name if account is not None else None, "error": None}

    def _check_references(self, spec: WorkloadSpec) -> None:
        pools = [p.name for p in self.node_pools] + ["default"]
        for position, name in enumerate(spec.node_pools):
            if name not in pools:
                raise Invalid(f"no node pool {name!r}; node pools: {', '.join(pools)}",
                              field=f"node_pools.{position}", allowed=pools)
        for position, name in enumerate(spec.data_sources):
            if self.store.data_source(spec.project, name) is None:
                names = [d.name for d in self.store.data_sources(spec.project)]
                raise Invalid(f"project {spec.project!r} has no data source {name!r}",
                              field=f"data_sources.{position}", allowed=names)
        for position, name in enumerate(spec.credentials):
            if self.store.credential(spec.project, name) is None:
                names = [c.name for c in self.store.credentials(spec.project)]
                raise Invalid(f"project {spec.project!r} has no credential {name!r}",
                              field=f"credentials.{position}", allowed=names)

    def _node_shapes(self) -> list[Node]:
        """One node of each shape (``feasibility.distinct_nodes``), worked out again only when
        the nodes or the node pools change."""
        nodes = self.cluster.nodes()
        # the same node objects, in the same number: the clusters hand out the same Node objects
        # until their nodes change (a tuple of every id cost 0.2 ms a submit at 5,000 nodes)
        key = (len(nodes), id(nodes[0]) if nodes else None, id(nodes[-1]) if nodes else None,
               tuple(map(id, self.node_pools)))
        cached = getattr(self, "_shapes_cache", None)
        if cached is None or cached[0] != key:
            cached = (key, distinct_nodes(nodes, self.node_pools))
            self._shapes_cache = cached
        return cached[1]

    def _refuse_never_runs(self, spec: WorkloadSpec, project: Project) -> None:
        """Refuse a workload that could never start on these nodes within its project's and
        department's limits (see :mod:`jupyter_runai.feasibility`), listing every reason."""
        department = next((d for d in self.store.departments() if d.name == project.department), None)
        problems = never_runs(spec, self._node_shapes(), self.node_pools, project, department)
        if problems:
            items = [p.as_item() for p in problems]
            items[0]["message"] += " (to queue it all the same: queue_anyway: true, or runai submit --queue-anyway)"
            first = items[0]
            raise Invalid(first["message"], field=first["field"], allowed=first["allowed"], errors=items)
