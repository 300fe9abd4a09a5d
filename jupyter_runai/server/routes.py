"""The route table, and the OpenAPI document built from it (so the two cannot disagree).

Each route is written once as an OpenAPI path template (``/workloads/{project}/{name}``);
the Tornado pattern is made from the template, and the OpenAPI document from the
same entries plus the pydantic models' JSON schemas.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from .. import __version__
from ..models import Credential, DataSource, Department, NodePool, Project, Workload, WorkloadSpec
from ..models.access import RoleBinding
from ..models.data import CredentialView
from ..models.events import Event, EventType
from ..models.policy import Policy
from .base import RunaiHandler, api
from .handlers import (
    ACTIONS,
    CredentialHandler,
    CredentialsHandler,
    DataSourceHandler,
    DataSourcesHandler,
    InfoHandler,
    NodesHandler,
    ProjectsHandler,
    UnknownRouteHandler,
    WorkloadActionHandler,
    WorkloadHandler,
    WorkloadsHandler,
)
from .admin_handlers import (
    AuditHandler,
    DepartmentHandler,
    DepartmentsHandler,
    NodePoolHandler,
    NodePoolsHandler,
    ProjectHandler,
)
from .access_handlers import BindingHandler, BindingsHandler, MeHandler
from .metrics import MetricsHandler
from .ready import ReadyHandler
from .monitor_handlers import (DeviceUsageHandler, ProjectUsageHandler, RecentEventsHandler, UsageReportHandler,
                               WorkloadUsageHandler)
from .policy_handlers import EffectivePolicyHandler, InheritedPolicyHandler, PoliciesHandler
from .proxy import ProxyHandler, proxy_routes
from .stream import EventsHandler, LogsHandler

API = "/runai/api/v1"

#: path parameters that only take some values (the document lists them; the handler refuses the
#: rest with a 400 that names them)
PARAM_VALUES = {"action": ACTIONS}


@dataclass
class Op:
    summary: str
    request: type | str | None = None  # a model, or the name of a schema in the document
    response: str | None = None  # a schema name, or "text" / "event-stream"
    status: int = 200
    query: dict[str, str] = field(default_factory=dict)


@dataclass
class Route:
    template: str
    handler: type
    ops: dict[str, Op]


ROUTES: list[Route] = [
    Route("/info", InfoHandler, {"get": Op("Server version, backend, current user and form defaults", response="Info")}),
    Route("/workloads", WorkloadsHandler, {
        "get": Op("List workloads in queue order", response="WorkloadList",
                  query={"project": "only this project (another name is a 400 naming the projects)",
                         "phase": "only this phase, any case: Pending, Running, Stopping, Stopped, Succeeded, "
                                  "Failed, Deleting (another value is a 400 naming them)",
                         "kind": "only this kind, any case: workspace, training, distributed, inference "
                                 "(another value is a 400 naming them)",
                         "limit": "at most this many workloads (1 to 10000, the default); a longer list ends with "
                                  "a 'continue' token",
                         "continue": "the 'continue' token of the previous page: the next page starts after it "
                                     "(a cursor in queue order, not an offset: workloads that end or are deleted "
                                     "meanwhile shift nothing)"}),
        "post": Op("Submit a workload (on Kubernetes, answered once its RunaiWorkload object exists on the "
                   "cluster; a 503, with nothing stored, when the cluster refuses that object)",
                   request=WorkloadSpec, response="Workload", status=201),
    }),
    Route("/workloads/{project}/{name}", WorkloadHandler, {
        "get": Op("One workload with its latest events", response="WorkloadWithEvents",
                  query={"events": "how many of its latest events to include (default 50)"}),
        "delete": Op("Stop the workload's pods and remove it (409 for a third-party workload, one with "
                     "'external' set: delete its owner with kubectl)", response="Workload", status=202),
    }),
    Route("/workloads/{project}/{name}/{action}", WorkloadActionHandler, {
        "post": Op("stop: end its pods and keep it; resume: put a stopped or finished workload back in the queue, "
                   "admitted again under the policies in force now (400 listing every rule it breaks, nothing "
                   "changed); 409 for a third-party workload (one with 'external' set): it is managed with "
                   "kubectl on its owner", response="Workload"),
    }),
    Route("/workloads/{project}/{name}/logs", LogsHandler, {
        "get": Op("A pod's output (stdout and stderr)", response="text",
                  query={"pod": "pod index or name (default 0)", "follow": "stream until the pod ends",
                         "tail": "only the last N lines (0 to 100000)",
                         "timestamps": "true: each line after the time it arrived, RFC 3339 in UTC with nanoseconds "
                                       "and a space, as kubectl logs --timestamps ('- ' where no time was "
                                       "recorded); with follow too",
                         "since_seconds": "only the lines that arrived in the last N seconds (1 to 315360000); "
                                          "with tail, the last N of those; a log with no recorded times is "
                                          "served whole"}),
    }),
    Route("/events", EventsHandler, {
        "get": Op("Server-sent events; resumes after the Last-Event-ID header with every event since, or an "
                  "'event: reset' when some were pruned (reload the state); a client that falls behind gets "
                  "'event: overflow' and the stream ends (reconnect with Last-Event-ID)", response="event-stream",
                  query={"project": "only this project", "workload": "only this workload",
                         "since": "replay events after this id"}),
    }),
    Route("/events/recent", RecentEventsHandler, {
        "get": Op("The newest stored events, oldest first (the event stream follows them live)", response="EventList",
                  query={"project": "only this project", "workload": "only this workload",
                         "type": "only this type, any case: " + ", ".join(t.value for t in EventType)
                                 + " (another value is a 400 naming them)",
                         "limit": "the newest N events (1 to 10000, default 100)"}),
    }),
    Route("/nodes", NodesHandler, {"get": Op("Nodes, their devices and what is allocated on each",
                                             response="NodeList")}),
    Route("/projects", ProjectsHandler, {
        "get": Op("Projects with deserved, limit, allocated and fair share", response="ProjectList"),
        "post": Op("Create a project (admin); it takes part from the next scheduling cycle",
                   request="ProjectInput", response="Project", status=201),
    }),
    Route("/projects/{project}", ProjectHandler, {
        "get": Op("One project with deserved, limit, allocated and fair share", response="ProjectView"),
        "patch": Op("Change a project (admin): the fields given replace the current ones (deserved, limit and "
                    "node_pools are merged key by key; a node pool set to null loses its own quota); from the "
                    "next cycle, evicting nothing by itself", request="ProjectChanges", response="Project"),
        "delete": Op("Delete a project (admin) with its data sources and credentials; refused (409) while it "
                     "has workloads", status=204),
    }),
    Route("/departments", DepartmentsHandler, {
        "get": Op("Departments with their projects", response="DepartmentList"),
        "post": Op("Create a department (admin)", request="DepartmentInput", response="Department", status=201),
    }),
    Route("/departments/{department}", DepartmentHandler, {
        "get": Op("One department with its projects", response="DepartmentView"),
        "patch": Op("Change a department (admin), merged as for projects", request="DepartmentChanges",
                    response="Department"),
        "delete": Op("Delete a department (admin); refused (409) while projects belong to it", status=204),
    }),
    Route("/node-pools", NodePoolsHandler, {
        "get": Op("Node pools in matching order, with the nodes each holds now", response="NodePoolList"),
        "post": Op("Create a node pool (admin): nodes whose labels match, not taken by an earlier pool, join it",
                   request="NodePoolInput", response="NodePool", status=201),
    }),
    Route("/node-pools/{node_pool}", NodePoolHandler, {
        "get": Op("One node pool with its nodes", response="NodePoolView"),
        "patch": Op("Change a node pool's label selector or placement (admin); running pods stay where they are",
                    request="NodePoolChanges", response="NodePool"),
        "delete": Op("Delete a node pool (admin); refused (409) while a queue has a quota for it or a live "
                     "workload asks for it", status=204),
    }),
    Route("/audit", AuditHandler, {
        "get": Op("The audit log (admin): who changed which department, project, node pool, role binding or "
                  "policy, when, before and after; oldest first", response="AuditLog",
                  query={"kind": "only this kind: department, project, node_pool, role_binding or policy",
                         "name": "only this object",
                         "limit": "the newest N entries (1 to 10000, default 100)"}),
    }),
    Route("/access/me", MeHandler, {
        "get": Op("The caller: its groups, its roles on scopes, and the projects it may see and submit to",
                  response="AccessMe"),
    }),
    Route("/access/bindings", BindingsHandler, {
        "get": Op("Role bindings: all for an admin; for others, those it may revoke and its own. Bindings from "
                  "the configuration have source 'config' and no id", response="RoleBindingList"),
        "post": Op("Grant a role (admin; a department admin grants ml-engineer, researcher and viewer inside its "
                   "departments); recorded in the audit log", request=RoleBinding, response="RoleBindingView",
                   status=201),
    }),
    Route("/access/bindings/{binding}", BindingHandler, {
        "delete": Op("Revoke a stored role binding by its id (as for granting it); recorded in the audit log",
                     response="RoleBindingView"),
    }),
    Route("/reports/usage", UsageReportHandler, {
        "get": Op("GPU-hours allocated and used (where measured) per UTC day and per project, user, department or "
                  "workload, deleted workloads included; an admin sees everyone's, anyone else their own "
                  "workloads'", response="UsageReport",
                  query={"from": "first day, YYYY-MM-DD (default: 6 days before 'to')",
                         "to": "last day, YYYY-MM-DD, included (default: today, UTC); at most 366 days in all",
                         "by": "project (default), user, department or workload",
                         "per": "day (default: a row per day) or total (a row for the whole range)"}),
    }),
    Route("/usage/workloads", WorkloadUsageHandler, {
        "get": Op("Each live workload's GPUs allocated beside its measured utilization and memory (per pod and "
                  "device; virtual GPUs say so), with its recent samples", response="WorkloadUsageList",
                  query={"project": "only this project (an unknown one is a 404)"}),
    }),
    Route("/usage/projects", ProjectUsageHandler, {
        "get": Op("Each project's recent samples: GPUs allocated against its deserved quota and fair share, and "
                  "its workloads' mean utilization (null unless all are measured)", response="ProjectUsageList"),
    }),
    Route("/usage/devices", DeviceUsageHandler, {
        "get": Op("Each device's recent samples: allocated fraction, utilization and used memory (null where "
                  "not measured)", response="DeviceUsageList"),
    }),
    Route("/policies", PoliciesHandler, {
        "get": Op("Workload policies (defaults and rules per scope and kind)", response="PolicyList",
                  query={"scope": "only this scope: cluster, department or project", "name": "only this department "
                         "or project", "kind": "only this kind: workspace, training, distributed or inference"}),
        "put": Op("Set a scope's policy for a kind (admin), replacing the one there; refused (400, every problem "
                  "listed) where it loosens a wider scope's policy or its defaults break the rules in force",
                  request="Policy", response="Policy"),
        "delete": Op("Delete a scope's policy for a kind (admin); the wider scopes' policies apply", status=204,
                     query={"scope": "cluster, department or project (required)", "name": "the department or "
                            "project (unless cluster)", "kind": "the workload kind (required)"}),
    }),
    Route("/policies/inherited", InheritedPolicyHandler, {
        "get": Op("What the scopes wider than one scope say of a kind (admins of that scope): the effective "
                  "policy a policy of that scope may only tighten, with the scope that set each rule (the Admin "
                  "view's policy form shows it beside each field)", response="InheritedPolicy",
                  query={"scope": "cluster, department or project (required)", "name": "the department or project "
                         "(unless cluster)", "kind": "the workload kind (required)"}),
    }),
    Route("/policies/effective", EffectivePolicyHandler, {
        "get": Op("The effective policy of a project and kind: the defaults a submission gets and the rules in "
                  "force, with the scope that set each", response="EffectivePolicy",
                  query={"project": "the project (required)", "kind": "the workload kind (required)"}),
    }),
    Route("/projects/{project}/data-sources", DataSourcesHandler, {
        "get": Op("The project's data sources", response="DataSourceList"),
        "post": Op("Define a data source", request=DataSource, response="DataSource", status=201),
    }),
    Route("/projects/{project}/data-sources/{name}", DataSourceHandler, {
        "get": Op("One data source", response="DataSource"),
        "delete": Op("Remove a data source", status=204),
    }),
    Route("/projects/{project}/credentials", CredentialsHandler, {
        "get": Op("The project's credentials (keys only, never values)", response="CredentialList"),
        "post": Op("Store a credential (values are write-only)", request=Credential, response="CredentialView",
                   status=201),
    }),
    Route("/projects/{project}/credentials/{name}", CredentialHandler, {
        "get": Op("One credential (keys only)", response="CredentialView"),
        "delete": Op("Remove a credential", status=204),
    }),
]


def tornado_pattern(template: str) -> str:
    def param(match: re.Match) -> str:
        name = match.group(1)
        return f"(?P<{name}>[^/]+)"

    return API + re.sub(r"\{(\w+)\}", param, template) + "/?"


class OpenAPIHandler(RunaiHandler):
    @web.authenticated
    @authorized
    @api
    async def get(self) -> None:
        self.send(openapi_document())


def default_handlers() -> list[tuple[str, type]]:
    """Every route of the extension, for ``RunaiApp.initialize_handlers``."""
    # the literal /logs must win over the {action} route: more specific first
    ordered = sorted(ROUTES, key=lambda r: ("{action}" in r.template, r.template))
    out: list[tuple[str, type]] = [(tornado_pattern(r.template), r.handler) for r in ordered]
    out.append((API + "/openapi.json", OpenAPIHandler))
    out.append((API + "(?:/.*)?", UnknownRouteHandler))  # last: a JSON 404, not the HTML page
    out.append(("/runai/metrics", MetricsHandler))
    out.append(("/runai/ready", ReadyHandler))  # a readiness probe's: no authentication, one bit
    out.extend(proxy_routes())
    return out


# ----------------------------------------------------------------------------- OpenAPI


def _schemas() -> dict[str, Any]:
    models = {"WorkloadSpec": WorkloadSpec, "Workload": Workload, "Project": Project, "DataSource": DataSource,
              "Credential": Credential, "CredentialView": CredentialView, "Event": Event, "RoleBinding": RoleBinding}
    out: dict[str, Any] = {}
    for name, model in models.items():
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}",
                                         mode="validation" if name in ("WorkloadSpec", "Credential") else "serialization")
        for sub, body in schema.pop("$defs", {}).items():
            out.setdefault(sub, body)
        out[name] = schema

    def ref(name: str) -> dict[str, str]:
        return {"$ref": f"#/components/schemas/{name}"}

    def listing(key: str, item: str) -> dict[str, Any]:
        return {"type": "object", "properties": {key: {"type": "array", "items": ref(item)}}, "required": [key]}

    out["WorkloadList"] = listing("workloads", "Workload")
    out["WorkloadList"]["properties"]["continue"] = {
        "type": ["string", "null"],
        "description": "null on the last page; else pass it as ?continue= (same filters) for the next page"}
    def extended(name: str, title: str, extra: dict[str, Any]) -> dict[str, Any]:
        # a model's schema forbids unknown fields, so "allOf" cannot add any: copy and extend it
        schema = {**out[name], "title": title}
        schema["properties"] = {**out[name].get("properties", {}), **extra}
        return schema

    out["WorkloadWithEvents"] = extended("Workload", "WorkloadWithEvents", {
        "events": {"type": "array", "items": ref("Event")}})
    out["DataSourceList"] = listing("data_sources", "DataSource")
    out["EventList"] = listing("events", "Event")
    out["StreamEvent"] = extended("Event", "StreamEvent", {"object": {
        "anyOf": [ref("Workload"), {"type": "null"}],
        "description": "live events of a workload only: the workload as GET shows it (without events) once "
                       "the event was stored; null on Deleted. Absent on replayed events and events of no "
                       "workload: read the workload (or the list) again for those"}})
    out["CredentialList"] = listing("credentials", "CredentialView")
    out["ProjectView"] = extended("Project", "ProjectView", {
        "allocated": {"type": "object", "description": "GPUs its pods hold now"},
        "fair_share": {"type": ["object", "null"], "description": "its fair share in the last cycle"},
        "workloads": {"type": "integer"}})
    out["ProjectList"] = listing("projects", "ProjectView")
    # what an administrator sends: the validation schemas (numbers or quantity texts), their
    # sub-schemas kept apart from the response schemas ("...Input"); a change is the same
    # object with every field optional
    for name, model in {"Department": Department, "Project": Project, "NodePool": NodePool}.items():
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}Input", mode="validation")
        for sub, body in schema.pop("$defs", {}).items():
            out.setdefault(f"{sub}Input", body)
        out[f"{name}Input"] = schema
        out[f"{name}Changes"] = {**{k: v for k, v in schema.items() if k != "required"},
                                 "title": f"{name}Changes"}
    for name, model in {"Department": Department, "NodePool": NodePool}.items():
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode="serialization")
        for sub, body in schema.pop("$defs", {}).items():
            out.setdefault(sub, body)
        out[name] = schema
    out["DepartmentView"] = extended("Department", "DepartmentView", {
        "projects": {"type": "array", "items": {"type": "string"}, "description": "its projects' names"}})
    out["DepartmentList"] = listing("departments", "DepartmentView")
    out["NodePoolView"] = extended("NodePool", "NodePoolView", {
        "nodes": {"type": "array", "items": {"type": "string"}, "description": "the nodes it holds now"}})
    out["NodePoolList"] = listing("node_pools", "NodePoolView")
    entry = {"type": ["object", "null"], "description": "the object's document (null where it did not exist)"}
    out["AuditEntry"] = {"type": "object", "properties": {
        "id": {"type": "integer"}, "at": {"type": "string", "format": "date-time"},
        "user": {"type": "string"}, "action": {"type": "string", "enum": ["create", "update", "delete"]},
        "kind": {"type": "string", "enum": ["department", "project", "node_pool", "role_binding", "policy"]},
        "name": {"type": "string"},
        "before": entry, "after": entry}, "required": ["id", "at", "user", "action", "kind", "name"]}
    out["AuditLog"] = listing("entries", "AuditEntry")
    out["RoleBindingView"] = extended("RoleBinding", "RoleBindingView", {
        "id": {"type": ["integer", "null"], "description": "what revoking names; null for a binding of the "
               "configuration"},
        "source": {"type": "string", "enum": ["config", "store"]}})
    out["RoleBindingList"] = listing("bindings", "RoleBindingView")
    names = {"type": "array", "items": {"type": "string"}}
    out["AccessMe"] = {"type": "object", "properties": {
        "user": {"type": "string"}, "groups": names, "admin": {"type": "boolean"},
        "roles": {"type": "array", "items": {"type": "object", "properties": {
            "role": {"type": "string"}, "scope": {"type": "string", "enum": ["cluster", "department", "project"]},
            "name": {"type": ["string", "null"]}}}},
        "submit_projects": names, "inference_projects": names, "view_projects": names,
        "view_nodes": {"type": "boolean"}, "runs_as": {"$ref": "#/components/schemas/RunsAs"}}}
    out["RunsAs"] = {
        "type": "object", "properties": {"account": {"type": ["string", "null"]}, "error": {"type": ["string", "null"]}},
        "description": "The system account the caller's workloads run as on this cluster: account null is the "
        "service's own (no root, c.RunaiApp.run_as = 'service', or the service's own user); error says why the "
        "caller's submissions are refused (no such account) (docs/jupyterhub.md)"}
    schema = Policy.model_json_schema(ref_template="#/components/schemas/{model}", mode="validation")
    for sub, body in schema.pop("$defs", {}).items():
        out.setdefault(sub, body)
    out["Policy"] = schema
    out["PolicyList"] = listing("policies", "Policy")
    out["PolicyList"]["properties"]["fields"] = {
        "type": "array", "description": "each field a policy may govern, for a form that edits policies",
        "items": {"type": "object", "properties": {
            "field": {"type": "string", "description": "its path in the workload spec"},
            "sort": {"type": "string", "enum": ["number", "int", "cpu", "memory", "text", "choice", "bool", "names"]},
            "kinds": {"type": ["array", "null"], "items": {"type": "string"}, "description": "the kinds that have "
                      "it; null: every kind"},
            "choices": {"type": ["array", "null"], "items": {"type": "string"}, "description": "its fixed values"},
            "rules": {"type": "array", "items": {"type": "string"}, "description": "the rule attributes that apply"}}}}
    out["EffectivePolicy"] = {"type": "object", "required": ["project", "kind", "policies", "defaults", "rules"],
                              "properties": {
        "project": {"type": "string"}, "kind": {"type": "string"},
        "policies": {"type": "array", "items": {"type": "string"}, "description": "the scopes whose policies "
                     "apply, widest first"},
        "defaults": {"type": "object", "description": "field path -> the value a submission gets when it leaves "
                     "the field out"},
        "default_from": {"type": "object", "description": "field path -> the scope whose default it is"},
        "form": {"type": "object", "description": "the submit form's defaults and bounds (as in Info's form) with "
                 "this policy applied: what the sidebar and the widgets' forms show"},
        "rules": {"type": "object", "description": "field path -> the rule in force: required, min, max, step, "
                  "allowed, can_edit, and from (the scopes that set it)", "additionalProperties": {
                      "type": "object", "properties": {"required": {"type": "boolean"}, "min": {}, "max": {},
                                                       "step": {}, "allowed": {"type": "array"},
                                                       "can_edit": {"type": "boolean"},
                                                       "from": {"type": "array", "items": {"type": "string"}}}}}}}
    out["InheritedPolicy"] = {
        "type": "object", "required": ["scope", "kind", "policies", "defaults", "rules"],
        "description": "What the scopes wider than one scope say of a kind (as EffectivePolicy, without form)",
        "properties": {"scope": {"type": "string"}, "name": {"type": ["string", "null"]}, "kind": {"type": "string"},
                       **{k: out["EffectivePolicy"]["properties"][k] for k in ("policies", "defaults", "default_from",
                                                                             "rules")}}}
    out["NodeList"] = {"type": "object", "properties": {"nodes": {"type": "array", "items": {
        "type": "object", "description": "A node (see Node) whose devices carry allocated_fraction, "
        "allocated_memory, used_memory, utilization and pods"}}}}
    out["Info"] = {"type": "object", "properties": {k: {} for k in (
        "version", "backend", "user", "projects", "kinds", "gpus", "virtual_gpus", "defaults", "form")}}
    out["Info"]["properties"]["groups"] = {"type": "array", "items": {"type": "string"},
                                           "description": "The caller's groups, as JupyterHub says"}
    out["Info"]["properties"]["admin"] = {"type": "boolean",
                                          "description": "Whether the caller administers the whole cluster"}
    out["Info"]["properties"]["mode"] = {
        "type": "string", "enum": ["embedded", "service", "client"],
        "description": "embedded: the scheduler runs in this Jupyter server; service: this is the shared "
        "JupyterHub service (`runai serve`); client: this server forwards /runai to that service"}
    out["Info"]["properties"]["service"] = {
        "type": "object", "properties": {"url": {"type": "string"}, "name": {"type": ["string", "null"]}},
        "description": "The shared service (modes service and client)"}
    out["Info"]["properties"]["runs_as"] = {"$ref": "#/components/schemas/RunsAs"}
    out["Info"]["properties"]["store_problems"] = {
        "type": "array", "description": "Stored workloads that did not load as they were: repaired (times out "
        "of order) or quarantined (kept aside in the store's quarantined_workloads table)",
        "items": {"type": "object", "properties": {k: {"type": "string"} for k in (
            "uid", "project", "name", "action", "message")}}}
    hours = {"type": "number", "description": "GPU-hours (a device held for an hour is 1; half of one, 0.5)"}
    out["UsageReport"] = {"type": "object", "properties": {
        "from": {"type": "string", "format": "date"}, "to": {"type": "string", "format": "date"},
        "by": {"type": "string", "enum": ["project", "user", "department", "workload"]},
        "per": {"type": "string", "enum": ["day", "total"]},
        "rows": {"type": "array", "items": {"type": "object", "properties": {
            "day": {"type": "string", "format": "date"}, "project": {"type": "string"},
            "user": {"type": ["string", "null"]}, "department": {"type": ["string", "null"]},
            "workload": {"type": "string"},
            "gpu_hours_allocated": hours,
            "gpu_hours_used": {"type": ["number", "null"], "description": "allocation weighted by measured "
                               "utilization; null when none of the group's devices were measured (virtual GPUs)"},
            "gpu_hours_measured": {**hours, "description": "the part of the allocation whose utilization was "
                                   "measured"}},
            "required": ["gpu_hours_allocated", "gpu_hours_used", "gpu_hours_measured"]}},
        "truncated": {"type": "boolean", "description": "more than 10,000 rows: the first 10,000 are given"}},
        "required": ["from", "to", "by", "per", "rows", "truncated"]}
    nullable = {"type": ["number", "null"]}
    sample = {"type": "object", "properties": {"at": {"type": "string", "format": "date-time"},
                                               "allocated": {"type": "number"}, "allocated_fraction": {"type": "number"},
                                               "utilization": nullable, "used_memory": nullable}}
    out["WorkloadUsageList"] = {"type": "object", "properties": {
        "every_seconds": {"type": "number", "description": "seconds between samples"},
        "workloads": {"type": "array", "items": {"type": "object", "properties": {
            "uid": {"type": "string"}, "project": {"type": "string"}, "name": {"type": "string"},
            "kind": {"type": "string"}, "user": {"type": ["string", "null"]}, "phase": {"type": "string"},
            "requested": {**nullable, "description": "GPUs asked for (null for a gpu_memory request until placed)"},
            "allocated": {"type": "number", "description": "GPUs its pods hold"},
            "utilization": {**nullable, "description": "mean percent over its pods' devices; null unless all are "
                            "measured"},
            "used_memory": {**nullable, "description": "bytes its processes use on its devices"},
            "virtual": {"type": "boolean", "description": "it holds virtual GPUs: nothing to measure"},
            "devices": {"type": "array", "items": {"type": "object", "properties": {
                "pod": {"type": "string"}, "node": {"type": "string"}, "device": {"type": "integer"},
                "share": {"type": "number"}, "virtual": {"type": "boolean"}, "utilization": nullable,
                "used_memory": nullable}}},
            "samples": {"type": "array", "items": sample}}}}}}
    out["ProjectUsageList"] = {"type": "object", "properties": {
        "every_seconds": {"type": "number"},
        "projects": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string"}, "samples": {"type": "array", "items": {"type": "object", "properties": {
                "at": {"type": "string", "format": "date-time"}, "allocated": {"type": "number"},
                "deserved": {"type": "number"}, "fair_share": nullable, "utilization": nullable}}}}}}}}
    out["DeviceUsageList"] = {"type": "object", "properties": {
        "every_seconds": {"type": "number"},
        "devices": {"type": "array", "items": {"type": "object", "properties": {
            "node": {"type": "string"}, "index": {"type": "integer"}, "virtual": {"type": "boolean"},
            "memory": {"type": "integer"}, "samples": {"type": "array", "items": sample}}}}}}
    out["Error"] = {"type": "object", "properties": {"error": {"type": "object", "properties": {
        "message": {"type": "string"}, "field": {"type": ["string", "null"]}, "allowed": {},
        "errors": {"type": "array"}}, "required": ["message"]}}, "required": ["error"]}
    return out


def _request_name(request: type | str) -> str:
    return request if isinstance(request, str) else request.__name__


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the REST API (served at ``/runai/api/v1/openapi.json``)."""
    paths: dict[str, Any] = {}
    error = {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    # Jupyter's own answer when the token or login is missing; the error document when a role is missing
    # (its message and "allowed" name the roles on scopes that would allow the request)
    refused = {"description": "not authenticated, or the caller's roles do not allow it (the error names the "
               "role on the scope that would)", "content": {"application/json": {"schema": {"type": "object"}}}}
    for route in ROUTES:
        item: dict[str, Any] = {}
        params = re.findall(r"\{(\w+)\}", route.template)
        for method, op in route.ops.items():
            parameters = [
                {"name": p, "in": "path", "required": True,
                 "schema": {"type": "string", **({"enum": list(PARAM_VALUES[p])} if p in PARAM_VALUES else {})}}
                for p in params
            ] + [{"name": q, "in": "query", "required": False, "description": d, "schema": {"type": "string"}}
                 for q, d in op.query.items()]
            responses: dict[str, Any] = {}
            if op.response == "text":
                responses[str(op.status)] = {"description": op.summary, "content": {"text/plain": {"schema": {"type": "string"}}}}
            elif op.response == "event-stream":
                responses[str(op.status)] = {
                    "description": "events, each 'id:', 'event:' (the type) and 'data:' (a StreamEvent)",
                    "content": {"text/event-stream": {"schema": {"$ref": "#/components/schemas/StreamEvent"}}}}
            elif op.response:
                responses[str(op.status)] = {"description": op.summary, "content": {"application/json": {
                    "schema": {"$ref": f"#/components/schemas/{op.response}"}}}}
            else:
                responses[str(op.status)] = {"description": op.summary}
            responses["400"] = error
            responses["403"] = refused
            responses["404"] = error
            if method in ("post", "patch", "delete"):
                responses["409"] = error
            responses["503"] = {**error, "description": "the scheduler is not running, or a change could not "
                                "be saved (nothing was changed; try again)"}
            if method in ("post", "put", "patch", "delete"):
                responses["507"] = {**error, "description": "the disk holding the scheduler's state is full: "
                                    "nothing was changed"}
            entry: dict[str, Any] = {"summary": op.summary, "parameters": parameters, "responses": responses,
                                     "operationId": f"{method}_{re.sub(r'[^a-z]+', '_', route.template.lower()).strip('_')}"}
            if op.request is not None:
                entry["requestBody"] = {"required": True, "content": {"application/json": {
                    "schema": {"$ref": f"#/components/schemas/{_request_name(op.request)}"}}}}
            item[method] = entry
        paths[API + route.template] = item
    paths[API + "/openapi.json"] = {"get": {"summary": "This document", "operationId": "get_openapi",
                                            "responses": {"200": {"description": "OpenAPI 3.1"}}}}
    paths["/runai/ready"] = {"get": {
        "summary": "Whether this server schedules (a readiness probe; no authentication, nothing else said)",
        "operationId": "get_ready", "security": [],
        "responses": {"200": {"description": "it schedules: {\"scheduling\": true}"},
                      "503": {"description": "a standby replica, or a scheduler that did not start: "
                                             "{\"scheduling\": false}"}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "jupyter-runai", "version": __version__,
                 "description": "GPU workload scheduling for Jupyter. Authentication: the Jupyter server's "
                 "(token header 'Authorization: token <TOKEN>' or the login cookie with XSRF)."},
        "paths": paths,
        "components": {"schemas": _schemas()},
    }


__all__ = ["API", "ROUTES", "default_handlers", "openapi_document", "ProxyHandler"]
