"""REST handlers for workload policies: list, set (admin), delete (admin) and the effective
policy of a project and kind. Each calls one service method (``jupyter_runai.policy_admin``);
the route table is in ``routes.py``."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..errors import Invalid
from ..models.policy import field_catalog
from .base import RunaiHandler, api
from .form import form_info, narrow_form


class PoliciesHandler(RunaiHandler):
    def _query(self, name: str) -> str | None:
        return self.get_argument(name, None) or None

    @web.authenticated
    @authorized
    @api
    async def get(self) -> None:
        policies = self.service.policy_list(self._query("scope"), self._query("name"), self._query("kind"))
        self.send({"policies": [p.model_dump(mode="json") for p in policies], "fields": field_catalog()})

    @web.authenticated
    @authorized
    @api
    async def put(self) -> None:
        self.send(self.service.set_policy(self.json_body(), self.user).model_dump(mode="json"))

    @web.authenticated
    @authorized
    @api
    async def delete(self) -> None:
        scope, kind = self._query("scope"), self._query("kind")
        for field, value in (("scope", scope), ("kind", kind)):
            if value is None:
                raise Invalid("required: which policy to delete (scope, name unless cluster, kind)", field=field)
        self.service.delete_policy(scope, self._query("name"), kind, self.user)
        self.set_status(204)
        self.finish()


class EffectivePolicyHandler(RunaiHandler):
    @web.authenticated
    @authorized
    @api
    async def get(self) -> None:
        project, kind = self.get_argument("project", None), self.get_argument("kind", None)
        if not project:
            names = [p.name for p in self.service.projects(self.user)]
            raise Invalid("required: the project to submit to", field="project", allowed=names)
        if not kind:
            raise Invalid("required: the workload kind", field="kind",
                          allowed=["workspace", "training", "distributed", "inference"])
        effective = self.service.effective_policy(project, kind, self.user)
        service = self.service
        form = form_info(service.nodes(), service.node_pools, [p.name for p in service.projects(self.user)],
                         runs_images=service.backend != "local")
        self.send({**effective, "form": narrow_form(form, effective)})


class InheritedPolicyHandler(RunaiHandler):
    @web.authenticated
    @authorized
    @api
    async def get(self) -> None:
        scope, kind = self.get_argument("scope", None), self.get_argument("kind", None)
        for field, value in (("scope", scope), ("kind", kind)):
            if not value:
                raise Invalid("required: the policy's scope and kind (and name unless cluster)", field=field,
                              allowed=["cluster", "department", "project"] if field == "scope" else
                              ["workspace", "training", "distributed", "inference"])
        self.send(self.service.inherited_policy(scope, self.get_argument("name", None) or None, kind, self.user))


__all__ = ["EffectivePolicyHandler", "InheritedPolicyHandler", "PoliciesHandler"]
