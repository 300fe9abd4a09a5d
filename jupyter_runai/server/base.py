"""What every REST handler shares: the service, the user, JSON in and out, errors as JSON."""

from __future__ import annotations

import functools
import getpass
import json
import re
from http.client import responses
from typing import Any

from jupyter_server.base.handlers import APIHandler
from pydantic import ValidationError
from tornado import web

from ..errors import Invalid, ServiceError, Unavailable
from ..models import error_body
from ..identity import User
from ..service import RunaiService

AUTH_RESOURCE = "runai"
ANONYMOUS = re.compile(r"[0-9a-f]{32}")


def runai_user(current: Any) -> User:
    """The :class:`User` behind a Jupyter identity (see ``RunaiHandler.user``)."""
    identity = getattr(current, "runai_identity", None)
    if isinstance(identity, User):
        return identity
    name = getattr(current, "username", None) or getattr(current, "name", None) or ""
    if not name or ANONYMOUS.fullmatch(name):
        # jupyter_server names token-authenticated users with a random id: on one machine
        # the person behind the token is the server's own user
        name = getpass.getuser()
    return User(name, admin=True)


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
        if self._finished:
            return
        if self.settings.get("runai_service") is None:  # the extension could not start its scheduler
            error = Unavailable(self.settings.get("runai_load_error") or "the scheduler is not running")
            self.set_status(error.status)
            self.finish(json.dumps(error.body()))
            return
        try:
            self.settings["runai_service"].ensure_running()
        except ServiceError as exc:  # the server is stopping
            self.set_status(exc.status)
            self.finish(json.dumps(exc.body()))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Every error these handlers answer is the REST error document, whatever raised it
        (Tornado's 400 and 405, a 500): ``{"error": {"message", "field", "allowed"}}``. Refused
        authentication (401, 403 from Jupyter's own checks) keeps Jupyter's answer, which clients
        recognize as "pass the token"."""
        if status_code in (401, 403):
            super().write_error(status_code, **kwargs)
            return
        exc = (kwargs.get("exc_info") or (None, None, None))[1]
        message = responses.get(status_code, "error")
        if isinstance(exc, web.HTTPError) and exc.log_message:
            message = exc.log_message % exc.args if exc.args else exc.log_message
        elif status_code >= 500:
            message = "the server failed on this request; its log says why"
        allowed = None
        if status_code == 405:
            allowed = [m for m in self.SUPPORTED_METHODS if m not in ("HEAD", "OPTIONS")
                       and getattr(type(self), m.lower()) is not getattr(web.RequestHandler, m.lower())]
            message = f"{self.request.method} is not allowed here; allowed: {', '.join(allowed)}"
        item = {"field": None, "message": message, "allowed": allowed}
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": {**item, "errors": [item]}}))

    @property
    def service(self) -> RunaiService:
        return self.settings["runai_service"]

    @property
    def user(self) -> User:
        """Who is asking. An identity provider that knows the caller's groups and admin flag (the
        JupyterHub service's) attaches a :class:`~jupyter_runai.identity.User` to the Jupyter identity
        as ``runai_identity``. Otherwise the caller is the Jupyter server's own user, who on one
        machine administers everything; roles on scopes (RBAC) are applied by the service."""
        return runai_user(self.current_user)

    def json_body(self) -> dict[str, Any]:
        """The request body as a JSON object, or a 400 that says what is wrong with it."""
        return parse_json_body(self.request.body or b"")

    def send(self, document: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(document))

    def flag(self, name: str) -> bool:
        """A boolean query argument: true, 1, yes (any case) are true."""
        return self.get_argument(name, "false").lower() in ("1", "true", "yes", "")

    def int_argument(self, name: str, default: int | None = None, minimum: int = 0,
                     maximum: int = 1_000_000) -> int | None:
        value = self.get_argument(name, None)
        if value is None:
            return default
        allowed = f"{minimum} to {maximum}"
        try:
            if len(value) > 20:  # int() of a long text is slow, and Python refuses over 4300 digits
                raise ValueError(value)
            number = int(value)
        except ValueError:
            raise Invalid(f"{name} must be a whole number from {allowed}, got {value[:40]!r}", field=name,
                          allowed=allowed) from None
        if not minimum <= number <= maximum:
            raise Invalid(f"{name} must be from {allowed}, got {number}", field=name, allowed=allowed)
        return number


#: the largest request body read as JSON (bytes); a credential's values fit well inside
BODY_MAX = 4 * 1024 * 1024
#: the deepest nesting of arrays and objects in a request body (a workload needs 4)
DEPTH_MAX = 32


def parse_json_body(raw: bytes) -> dict[str, Any]:
    """A request body as a JSON object, or ``Invalid`` (400) saying what is wrong: not JSON,
    not an object, too large, nested too deep, a number too long for Python, ``NaN`` or
    ``Infinity``, or a string that is not Unicode text (a lone surrogate such as ``\\ud800``,
    which nothing can store or print)."""
    if len(raw) > BODY_MAX:
        raise Invalid(f"the request body is {len(raw)} bytes; at most {BODY_MAX} are read",
                      allowed=f"a JSON object of at most {BODY_MAX} bytes")
    if not raw.strip():
        raise Invalid("the request body is empty; send a JSON object", allowed="a JSON object")

    def no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON number")

    try:
        data = json.loads(raw, parse_constant=no_constant)
    except RecursionError:
        raise Invalid(f"the request body is nested too deep; at most {DEPTH_MAX} levels",
                      allowed=f"a JSON object nested at most {DEPTH_MAX} levels") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, Python's int digit limit, NaN
        raise Invalid(f"the request body is not valid JSON: {str(exc)[:200]}", allowed="a JSON object") from None
    if not isinstance(data, dict):
        raise Invalid("the request body must be a JSON object", allowed="a JSON object")
    _check_json(data)
    return data


def _check_json(data: Any) -> None:
    """Depth and text of a parsed body, without recursion (a deep body is what it looks for)."""
    todo: list[tuple[Any, int, str]] = [(data, 1, "")]
    while todo:
        value, depth, where = todo.pop()
        if isinstance(value, (dict, list)):
            if depth > DEPTH_MAX:
                raise Invalid(f"the request body is nested too deep at {where or 'the top'}; at most "
                              f"{DEPTH_MAX} levels", field=where or None,
                              allowed=f"a JSON object nested at most {DEPTH_MAX} levels")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                path = f"{where}[{key}]" if isinstance(key, int) else (f"{where}.{key}" if where else str(key))
                if isinstance(key, str):
                    _check_text(key, where or None)
                todo.append((item, depth + 1, path))
        elif isinstance(value, str):
            _check_text(value, where or None)


def _check_text(text: str, field: str | None) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid(f"{field or 'the request body'}: text must be valid Unicode (no lone surrogate such as "
                      "\\ud800)", field=field, allowed="valid Unicode text") from None
