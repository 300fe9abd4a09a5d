"""REST handlers for monitoring: the GPU usage report (accounting)."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from .base import RunaiHandler, api


class UsageReportHandler(RunaiHandler):
    @web.authenticated
    @authorized
    @api
    async def get(self) -> None:
        self.send(self.service.usage_report(self.user, first=self.get_argument("from", None),
                                            last=self.get_argument("to", None), by=self.get_argument("by", None)))


__all__ = ["UsageReportHandler"]
