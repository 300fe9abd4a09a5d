"""REST handlers for monitoring: the GPU usage report (accounting), each workload's and device's GPU use
with its recent history, and the event listing."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..eventlog import MAX_EVENTS
from .base import RunaiHandler, api


class UsageReportHandler(RunaiHandler):
    @web.authenticated
    @authorized
    @api
    async def get(self) -> None:
        self.send(self.service.usage_report(self.user, first=self.get_argument("from", None),
                                            last=self.get_argument("to", None), by=self.get_argument("by", None),
                                            per=self.get_argument("per", None)))


class RecentEventsHandler(RunaiHandler):
    @web.authenticated
    @authorized
    @api
    async def get(self) -> None:
        events = self.service.recent_events(
            self.user, project=self.get_argument("project", None), workload=self.get_argument("workload", None),
            type=self.get_argument("type", None), limit=self.int_argument("limit", 100, minimum=1, maximum=MAX_EVENTS))
        self.send({"events": [e.model_dump(mode="json") for e in events]})


class WorkloadUsageHandler(RunaiHandler):
    @web.authenticated
    @authorized
    @api
    async def get(self) -> None:
        project = self.get_argument("project", None) or None
        if project is not None:
            self.service.project(project)  # an unknown project is a 404 naming it
        self.send(self.service.workload_usage_history(self.user, project))


class DeviceUsageHandler(RunaiHandler):
    @web.authenticated
    @authorized
    @api
    async def get(self) -> None:
        self.send(self.service.device_usage_history(self.user))


class ProjectUsageHandler(RunaiHandler):
    @web.authenticated
    @authorized
    @api
    async def get(self) -> None:
        self.send(self.service.project_usage_history(self.user))


__all__ = ["DeviceUsageHandler", "ProjectUsageHandler", "RecentEventsHandler", "UsageReportHandler", "WorkloadUsageHandler"]
