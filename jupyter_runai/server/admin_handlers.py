"""REST handlers for administration at runtime: departments, projects and node pools
(create, read, change, delete) and the audit log. Each calls one service method
(``jupyter_runai.admin``); the route table is in ``routes.py``."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..errors import NotFound
from .base import RunaiHandler, api


class DepartmentsHandler(RunaiHandler):
    @web.authenticated
    @authorized
    @api
    async def get(self) -> None:
        self.send({"departments": self.service.department_views(self.user)})

    @web.authenticated
    @authorized
    @api
    async def post(self) -> None:
        department = self.service.create_department(self.json_body(), self.user)
        self.set_header("Location", self.request.path.rstrip("/") + f"/{department.name}")
        self.send(department.model_dump(mode="json"), status=201)


class DepartmentHandler(RunaiHandler):
    @web.authenticated
    @authorized
    @api
    async def get(self, department: str) -> None:
        self.send(self.service.department_view(department, self.user))

    @web.authenticated
    @authorized
    @api
    async def patch(self, department: str) -> None:
        self.send(self.service.update_department(department, self.json_body(), self.user).model_dump(mode="json"))

    @web.authenticated
    @authorized
    @api
    async def delete(self, department: str) -> None:
        self.service.delete_department(department, self.user)
        self.set_status(204)
        self.finish()


class ProjectHandler(RunaiHandler):
    @web.authenticated
    @authorized
    @api
    async def get(self, project: str) -> None:
        self.send(self.service.project_view(project, self.user))

    @web.authenticated
    @authorized
    @api
    async def patch(self, project: str) -> None:
        self.send(self.service.update_project(project, self.json_body(), self.user).model_dump(mode="json"))

    @web.authenticated
    @authorized
    @api
    async def delete(self, project: str) -> None:
        self.service.delete_project(project, self.user)
        self.set_status(204)
        self.finish()


class NodePoolsHandler(RunaiHandler):
    @web.authenticated
    @authorized
    @api
    async def get(self) -> None:
        self.send({"node_pools": self.service.node_pool_views(self.user)})

    @web.authenticated
    @authorized
    @api
    async def post(self) -> None:
        pool = self.service.create_node_pool(self.json_body(), self.user)
        self.set_header("Location", self.request.path.rstrip("/") + f"/{pool.name}")
        self.send(pool.model_dump(mode="json"), status=201)


class NodePoolHandler(RunaiHandler):
    @web.authenticated
    @authorized
    @api
    async def get(self, node_pool: str) -> None:
        view = next((p for p in self.service.node_pool_views(self.user) if p["name"] == node_pool), None)
        if view is None:
            self.service.node_pool(node_pool)  # the NotFound that names the pools
            raise NotFound(f"no node pool {node_pool!r}", field="node_pool")
        self.send(view)

    @web.authenticated
    @authorized
    @api
    async def patch(self, node_pool: str) -> None:
        self.send(self.service.update_node_pool(node_pool, self.json_body(), self.user).model_dump(mode="json"))

    @web.authenticated
    @authorized
    @api
    async def delete(self, node_pool: str) -> None:
        self.service.delete_node_pool(node_pool, self.user)
        self.set_status(204)
        self.finish()


class AuditHandler(RunaiHandler):
    @web.authenticated
    @authorized
    @api
    async def get(self) -> None:
        entries = self.service.audit(self.user, kind=self.get_argument("kind", None) or None,
                                     name=self.get_argument("name", None) or None,
                                     limit=self.int_argument("limit", 100, minimum=1, maximum=10_000))
        self.send({"entries": entries})


__all__ = ["AuditHandler", "DepartmentHandler", "DepartmentsHandler", "NodePoolHandler", "NodePoolsHandler",
           "ProjectHandler"]
