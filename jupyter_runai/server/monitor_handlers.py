"""REST handlers for monitoring: the GPU usage report (accounting) and the event listing."""

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
                                            last=self.get_argument("to", None), by=self.get_argument("by", None)))


class RecentEventsHandler(RunaiHandler):
    @web.authenticated
    @authorized
    @api
    async def get(self) -> None:
        events = self.service.recent_events(
            project=self.get_argument("project", None), workload=self.get_argument("workload", None),
            type=self.get_argument("type", None), limit=self.int_argument("limit", 100, minimum=1, maximum=MAX_EVENTS))
        self.send({"events": [e.model_dump(mode="json") for e in events]})


__all__ = ["RecentEventsHandler", "UsageReportHandler"]
