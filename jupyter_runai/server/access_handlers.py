"""REST handlers for role bindings (RBAC): ``/access/bindings`` (list, grant, revoke) and
``/access/me`` (the caller's roles). Each calls one service method (``jupyter_runai.rbac``);
the route table is in ``routes.py``."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..errors import Invalid
from .base import RunaiHandler, api


class BindingsHandler(RunaiHandler):
    @web.authenticated
    @authorized
    @api
    async def get(self) -> None:
        self.send({"bindings": self.service.role_bindings(self.user)})

    @web.authenticated
    @authorized
    @api
    async def post(self) -> None:
        binding = self.service.grant(self.json_body(), self.user)
        self.set_header("Location", self.request.path.rstrip("/") + f"/{binding['id']}")
        self.send(binding, status=201)


class BindingHandler(RunaiHandler):
    @web.authenticated
    @authorized
    @api
    async def delete(self, binding: str) -> None:
        if not (binding.isascii() and binding.isdigit()) or len(binding) > 18:  # "³".isdigit() too
            raise Invalid(f"a binding id is a whole number, got {binding[:40]!r}", field="id",
                          allowed="the id `GET /access/bindings` shows")
        self.send(self.service.revoke(int(binding), self.user))


class MeHandler(RunaiHandler):
    @web.authenticated
    @authorized
    @api
    async def get(self) -> None:
        self.send(self.service.access_of(self.user))


__all__ = ["BindingHandler", "BindingsHandler", "MeHandler"]
