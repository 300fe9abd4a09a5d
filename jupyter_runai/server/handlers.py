"""REST handlers under ``/runai/api/v1/``: parse, authorize, call the service, serialize.

Each handler is a few lines; behaviour lives in ``jupyter_runai.service``. The route
table and the OpenAPI document are in ``routes.py``.
"""

from __future__ import annotations

from typing import Any

from tornado import web

from jupyter_server.auth.decorator import authorized

from .. import __version__
from ..errors import Invalid, NotFound
from ..models import Workload, WorkloadKind
from ..workload_json import MAX_PAGE
from .base import RunaiHandler, api
from .form import form_info


def workload_document(workload: Workload, events: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    doc = workload.model_dump(mode="json")
    if events is not None:
        doc["events"] = events
    return doc


class InfoHandler(RunaiHandler):
    @web.authenticated
    @authorized
    @api
    async def get(self) -> None:
        service = self.service
        nodes = service.nodes()
        projects = [p.name for p in service.projects(self.user)]
        submittable = service.submittable_projects(self.user)
        self.send({
            "version": __version__,
            "backend": service.backend,
            "user": self.user.name,
            "groups": sorted(self.user.groups),  # as the hub says (JupyterHub), else none
            "admin": self.user.admin,
            # embedded (the scheduler runs in this server) or service (`runai serve` for a hub)
            **self.settings.get("runai_mode", {"mode": "embedded"}),
            "projects": projects,
            "kinds": [k.value for k in WorkloadKind],
            "gpus": sum(len(n.devices) for n in nodes),
            "virtual_gpus": any(d.virtual for n in nodes for d in n.devices),
            # the first project the caller may submit to (a queue file may leave none named "default")
            "defaults": {"project": submittable[0] if submittable else None, "kind": "training", "gpu": 1},
            "form": form_info(nodes, service.node_pools, projects, runs_images=service.backend != "local"),
            "runs_as": service.runs_as(self.user),  # whose system account the caller's workloads are
            # stored workloads that did not load as they were (repaired or quarantined)
            "store_problems": service.load_problems,
        })


class WorkloadsHandler(RunaiHandler):
    def compute_etag(self) -> None:
        """No ETag: tornado's is a SHA-1 of the whole answer (megabytes for thousands of workloads),
        and the list changes with every scheduling cycle."""
        return None

    @web.authenticated
    @authorized
    @api
    async def get(self) -> None:
        document = self.service.list_json(
            project=self.get_argument("project", None),
            phase=self.get_argument("phase", None),
            kind=self.get_argument("kind", None),
            user=self.user,
            limit=self.int_argument("limit", None, minimum=1, maximum=MAX_PAGE),
            continue_token=self.get_argument("continue", None),
        )
        self.set_header("Content-Type", "application/json")
        self.finish(document)

    @web.authenticated
    @authorized
    @api
    async def post(self) -> None:
        # on Kubernetes its RunaiWorkload object exists before the answer (cluster_truth.py)
        workload = await self.service.submit_confirmed(self.json_body(), self.user)
        self.set_header("Location", self.request.path.rstrip("/") + f"/{workload.spec.project}/{workload.spec.name}")
        self.send(workload_document(workload), status=201)


class WorkloadHandler(RunaiHandler):
    @web.authenticated
    @authorized
    @api
    async def get(self, project: str, name: str) -> None:
        workload = self.service.get(project, name, self.user)
        limit = self.int_argument("events", 50)
        events = self.service.workload_events(project, name, limit, self.user)
        self.send(workload_document(workload, [e.model_dump(mode="json") for e in events]))

    @web.authenticated
    @authorized
    @api
    async def delete(self, project: str, name: str) -> None:
        workload = self.service.delete(project, name, self.user)
        self.send(workload_document(workload), status=202)


#: what POST /workloads/{project}/{name}/{action} does
ACTIONS = ("stop", "resume")


class WorkloadActionHandler(RunaiHandler):
    @web.authenticated
    @authorized
    @api
    async def post(self, project: str, name: str, action: str) -> None:
        if action not in ACTIONS:
            raise Invalid(f"unknown action {action[:40]!r}; one of {', '.join(ACTIONS)}", field="action",
                          allowed=list(ACTIONS))
        if action == "stop":
            workload = self.service.stop(project, name, self.user)
        else:
            workload = self.service.resume(project, name, self.user)
        self.send(workload_document(workload))


class UnknownRouteHandler(RunaiHandler):
    """Whatever else is asked under the API's prefix: a JSON 404 naming the document of the routes."""

    async def _unknown(self, *args: Any) -> None:
        raise NotFound(f"no route {self.request.method} {self.request.path}; the routes are in "
                       "/runai/api/v1/openapi.json")

    @web.authenticated
    @authorized
    @api
    async def get(self, *args: Any) -> None:
        await self._unknown()

    post = put = patch = delete = get


class NodesHandler(RunaiHandler):
    @web.authenticated
    @authorized
    @api
    async def get(self) -> None:
        self.send({"nodes": self.service.node_views(self.user)})


class ProjectsHandler(RunaiHandler):
    @web.authenticated
    @authorized
    @api
    async def get(self) -> None:
        self.send({"projects": self.service.project_views(self.user)})

    @web.authenticated
    @authorized
    @api
    async def post(self) -> None:
        project = self.service.create_project(self.json_body(), self.user)
        self.set_header("Location", self.request.path.rstrip("/") + f"/{project.name}")
        self.send(project.model_dump(mode="json"), status=201)


class DataSourcesHandler(RunaiHandler):
    @web.authenticated
    @authorized
    @api
    async def get(self, project: str) -> None:
        items = self.service.data_sources(project, self.user)
        self.send({"data_sources": [d.model_dump(mode="json") for d in items]})

    @web.authenticated
    @authorized
    @api
    async def post(self, project: str) -> None:
        source = self.service.add_data_source(project, self.json_body(), self.user)
        self.send(source.model_dump(mode="json"), status=201)


class DataSourceHandler(RunaiHandler):
    @web.authenticated
    @authorized
    @api
    async def get(self, project: str, name: str) -> None:
        self.send(self.service.data_source(project, name, self.user).model_dump(mode="json"))

    @web.authenticated
    @authorized
    @api
    async def delete(self, project: str, name: str) -> None:
        self.service.delete_data_source(project, name, self.user)
        self.set_status(204)
        self.finish()


class CredentialsHandler(RunaiHandler):
    @web.authenticated
    @authorized
    @api
    async def get(self, project: str) -> None:
        views = self.service.credentials(project, self.user)
        self.send({"credentials": [v.model_dump(mode="json") for v in views]})

    @web.authenticated
    @authorized
    @api
    async def post(self, project: str) -> None:
        view = self.service.add_credential(project, self.json_body(), self.user)
        self.send(view.model_dump(mode="json"), status=201)


class CredentialHandler(RunaiHandler):
    @web.authenticated
    @authorized
    @api
    async def get(self, project: str, name: str) -> None:
        self.send(self.service.credential(project, name, self.user).model_dump(mode="json"))

    @web.authenticated
    @authorized
    @api
    async def delete(self, project: str, name: str) -> None:
        self.service.delete_credential(project, name, self.user)
        self.set_status(204)
        self.finish()


__all__ = [
    "CredentialHandler",
    "CredentialsHandler",
    "DataSourceHandler",
    "DataSourcesHandler",
    "InfoHandler",
    "NodesHandler",
    "UnknownRouteHandler",
    "ProjectsHandler",
    "WorkloadActionHandler",
    "WorkloadHandler",
    "WorkloadsHandler",
]
