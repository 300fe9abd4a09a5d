"""What every REST handler shares: the service, the user, JSON in and out, errors as JSON."""

from __future__ import annotations

import functools
import getpass
import json
import re
from typing import Any

from jupyter_server.base.handlers import APIHandler
from pydantic import ValidationError

from ..errors import Invalid, ServiceError
from ..models import error_body
from ..service import RunaiService, User

AUTH_RESOURCE = "runai"
ANONYMOUS = re.compile(r"[0-9a-f]{32}")


def api(method):
    """Turn service and validation errors into the REST error document with the right status."""

    @functools.wraps(method)
    async def wrapper(self: "RunaiHandler", *args, **kwargs):
        try:
            return await method(self, *args, **kwargs)
        except ValidationError as exc:
            self.set_status(400)
            self.finish(json.dumps(error_body(exc)))
        except ServiceError as exc:
            self.set_status(exc.status)
            self.finish(json.dumps(exc.body()))

    return wrapper


class RunaiHandler(APIHandler):
    """Base of the REST handlers: ``self.service``, ``self.user``, ``self.json_body()``, ``self.send()``."""

    auth_resource = AUTH_RESOURCE

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        try:
            self.settings["runai_service"].ensure_running()
        except ServiceError as exc:  # the server is stopping
            self.set_status(exc.status)
            self.finish(json.dumps(exc.body()))

    @property
    def service(self) -> RunaiService:
        return self.settings["runai_service"]

    @property
    def user(self) -> User:
        """The Jupyter identity. On one machine the server's own user administers everything;
        RBAC (roles per scope) plugs in at the service's admission hooks."""
        current = self.current_user
        name = getattr(current, "username", None) or getattr(current, "name", None) or ""
        if not name or ANONYMOUS.fullmatch(name):
            # jupyter_server names token-authenticated users with a random id: on one machine
            # the person behind the token is the server's own user
            name = getpass.getuser()
        return User(name, admin=True)

    def json_body(self) -> dict[str, Any]:
        """The request body as a JSON object, or a 400 that says what is wrong with it."""
        raw = self.request.body or b""
        if not raw.strip():
            raise Invalid("the request body is empty; send a JSON object", allowed="a JSON object")
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise Invalid(f"the request body is not valid JSON: {exc}", allowed="a JSON object") from None
        if not isinstance(data, dict):
            raise Invalid("the request body must be a JSON object", allowed="a JSON object")
        return data

    def send(self, document: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(document))

    def flag(self, name: str) -> bool:
        """A boolean query argument: true, 1, yes (any case) are true."""
        return self.get_argument(name, "false").lower() in ("1", "true", "yes", "")

    def int_argument(self, name: str, default: int | None = None, minimum: int = 0,
                     maximum: int | None = None) -> int | None:
        value = self.get_argument(name, None)
        if value is None:
            return default
        allowed = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
        try:
            number = int(value)
        except ValueError:
            raise Invalid(f"{name} must be a whole number, got {value[:40]!r}", field=name,
                          allowed=allowed) from None
        if number < minimum:
            raise Invalid(f"{name} must be at least {minimum}, got {value[:40]}", field=name, allowed=allowed)
        if maximum is not None and number > maximum:
            raise Invalid(f"{name} must be at most {maximum}, got {value[:40]}", field=name, allowed=allowed)
        return number
