"""``/runai/proxy/<project>/<workload>/...``: workspaces and inference endpoints, under the
Jupyter server's own authentication.

* Inference: requests go to the ready replica with the fewest requests in flight
  (ties: round robin); the prefix is stripped, so the server sees ``/...``. The number of
  requests in flight is reported to the service, whose autoscaler adds or removes
  replicas (``target_concurrency`` per replica, between min and max replicas).
* Workspace: the one pod; the path is passed whole, because web apps like Jupyter are
  started with this prefix as their base URL (``RUNAI_PROXY_PATH``).

``/runai/proxy/<workload>/...`` (no project) also works when the name is unique among
live workloads. WebSocket upgrades are proxied too (a workspace's Jupyter kernels need them).

Security (docs/security.md):

* The Jupyter server's login cookie, XSRF cookie and ``Authorization`` header never reach the
  workload; every pod gets ``Authorization: token <its own token>`` instead
  (``RUNAI_PROXY_TOKEN`` in its environment, derived from a key in the state directory).
* Pods are reached on their Unix socket (``RUNAI_SOCKET``, in a directory only this account
  can enter) when they listen there, else on their loopback port.
* A cookie-authenticated request must come from this server's own pages: a foreign ``Origin``
  is refused, and one that changes something (not GET/HEAD/OPTIONS) must carry the server's
  XSRF token or a same-origin ``Origin``/``Referer``, as the server's own API requires.
* A workload's ``Set-Cookie`` is kept to its proxy path: its ``Path`` is rewritten under the
  prefix, ``Domain`` dropped, and cookies named like the server's own never pass.
"""

from __future__ import annotations

import itertools
import json
import socket
from http.cookies import CookieError, SimpleCookie
from typing import Any

from jupyter_server.base.handlers import JupyterHandler
from tornado import httpclient, netutil, simple_httpclient, web, websocket

from ..clusters.base import Endpoint

from ..errors import Forbidden, NotFound, ServiceError
from ..models import Workload, WorkloadKind
from .base import runai_user

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "content-length", "host", "content-encoding"}
PREFIX = "/runai/proxy/"


class _Balancer:
    """Requests in flight per pod and per workload, shared by all proxy handlers."""

    def __init__(self) -> None:
        self.per_pod: dict[str, int] = {}
        self.per_workload: dict[str, int] = {}
        self._turn = itertools.count()

    def pick(self, endpoints: list[tuple[str, Endpoint]]) -> tuple[str, Endpoint]:
        low = min(self.per_pod.get(key, 0) for key, _ in endpoints)
        candidates = [e for e in endpoints if self.per_pod.get(e[0], 0) == low]
        return candidates[next(self._turn) % len(candidates)]

    def begin(self, uid: str, key: str) -> int:
        self.per_pod[key] = self.per_pod.get(key, 0) + 1
        self.per_workload[uid] = self.per_workload.get(uid, 0) + 1
        return self.per_workload[uid]

    def end(self, uid: str, key: str) -> int:
        self.per_pod[key] = max(0, self.per_pod.get(key, 0) - 1)
        self.per_workload[uid] = max(0, self.per_workload.get(uid, 0) - 1)
        return self.per_workload[uid]


BALANCER = _Balancer()


class _SocketResolver(netutil.Resolver):
    """Resolves a host name to a pod's Unix socket (one resolver per request)."""

    def initialize(self, sockets: dict[str, str]) -> None:  # type: ignore[override]
        self.sockets = sockets

    async def resolve(self, host: str, port: int, family: socket.AddressFamily = socket.AF_UNSPEC):
        if host not in self.sockets:
            raise OSError(f"no pod socket for {host!r}")
        return [(socket.AF_UNIX, self.sockets[host])]


#: close codes a WebSocket endpoint may send on (the others only describe a connection that broke)
SENDABLE_CLOSE = set(range(1000, 1004)) | set(range(1007, 1015)) | set(range(3000, 5000))


def close_args(closed: Any) -> tuple[int | None, str | None]:
    """(code, reason) to close one side of a relayed WebSocket with, as the other side (a
    handler or a client connection, or None) was closed: its code when one may be sent on."""
    code = getattr(closed, "close_code", None)
    if code not in SENDABLE_CLOSE:
        return None, None
    return code, getattr(closed, "close_reason", None)


def upstream(endpoint: Endpoint, scheme: str = "http") -> tuple[str, netutil.Resolver | None]:
    """The base URL of a pod (``http://...`` or ``ws://...``) and the resolver that reaches it."""
    if endpoint.socket is not None:
        host = "localhost"  # what the pod's web server sees as Host: a local name, as on a loopback port
        return f"{scheme}://{host}", _SocketResolver(sockets={host: endpoint.socket})
    return f"{scheme}://{endpoint.host}:{endpoint.port}", None


def scoped_cookie(header: str, path: str, own: tuple[str, ...]) -> str | None:
    """A workload's ``Set-Cookie`` kept to its proxy ``path``: its Path is put under it, any
    Domain dropped; None for a cookie named like the server's own (``own`` prefixes) or unreadable."""
    parts = [p.strip() for p in header.split(";")]
    name = parts[0].split("=", 1)[0].strip()
    if not name or name.startswith(own):
        return None
    try:
        SimpleCookie(parts[0])
    except CookieError:
        return None
    kept = [parts[0]]
    cookie_path = ""
    for attribute in parts[1:]:
        key = attribute.split("=", 1)[0].strip().lower()
        if key == "path":
            cookie_path = attribute.split("=", 1)[1].strip() if "=" in attribute else ""
        elif key != "domain" and attribute:
            kept.append(attribute)
    # a path outside the prefix is taken as relative to the app's own root (an inference
    # server sees "/" where the browser sees the prefix)
    scoped = cookie_path if cookie_path.startswith(path) else path + cookie_path.lstrip("/")
    return "; ".join([*kept, f"Path={scoped}"])


def resolve(service, rest: str, user=None) -> tuple[Workload, str]:
    """``<project>/<name>/<sub>`` or ``<name>/<sub>`` to (workload, sub-path), among the workloads
    ``user`` may see (``service.endpoints`` then checks that it may reach this one)."""
    parts = rest.split("/")
    if len(parts) >= 2:
        try:
            return service.get(parts[0], parts[1], user), "/".join(parts[2:])
        except NotFound:
            pass
        except Forbidden:
            if not service.by_name(parts[0], user):
                raise
    matches = service.by_name(parts[0], user)
    if len(matches) == 1:
        return matches[0], "/".join(parts[1:])
    if len(matches) > 1:
        raise NotFound(f"several projects have a workload {parts[0]!r}; use /runai/proxy/<project>/{parts[0]}/",
                       field="name")
    raise NotFound(f"no workload at /runai/proxy/{rest}", field="name")


def upstream_headers(handler, workload: Workload) -> dict[str, str]:
    """The request's headers without hop-by-hop ones and without the Jupyter server's credentials."""
    headers = {}
    for name, value in handler.request.headers.get_all():
        low = name.lower()
        if low in HOP_BY_HOP or low == "authorization" or low.startswith("sec-websocket"):
            continue
        if low == "cookie":
            kept = "; ".join(c for c in value.split("; ") if not c.strip().startswith(("username-", "_xsrf=")))
            if not kept:
                continue
            value = kept
        headers[name] = value
    headers["Authorization"] = f"token {handler.service.proxy_token(workload.uid)}"
    return headers


class ProxyHandler(JupyterHandler, websocket.WebSocketHandler):
    """HTTP and WebSocket proxy to a workload's ready pods (see the module docstring)."""

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
    upstream: Any = None

    def check_xsrf_cookie(self) -> None:
        """The server's own rules, with one addition for the apps behind the proxy: their pages
        send their own XSRF token, not the server's, so a same-origin ``Origin`` or ``Referer``
        also proves that a request comes from this server's pages. Token-authenticated
        requests (scripts, the CLI) need neither, as on the server's API."""
        if not hasattr(self, "_jupyter_current_user"):
            return  # called again from prepare(), once the user is known
        if self.token_authenticated or self.settings.get("disable_check_xsrf", False):
            return
        if not self.check_origin():
            raise web.HTTPError(403, "the workload proxy refuses a request from another origin")
        try:
            web.RequestHandler.check_xsrf_cookie(self)
            return
        except web.HTTPError:
            pass
        origin = self.request.headers.get("Origin")
        if origin and origin.lower() != "null" and self.check_origin():
            return
        if not origin and self.check_referer():
            return
        raise web.HTTPError(403, "the workload proxy refuses a cross-site request: it has neither this "
                            "server's XSRF token nor a same-origin Origin or Referer")

    async def prepare(self, *args, **kwargs):  # type: ignore[override]
        await super().prepare(*args, **kwargs)
        if self.current_user and not self.token_authenticated and not self.check_origin():
            raise web.HTTPError(403, "the workload proxy refuses a request from another origin")

    @property
    def service(self):
        service = self.settings.get("runai_service")
        if service is None:  # the scheduler could not start: say why, as the REST API does
            raise web.HTTPError(503, reason="Service Unavailable", log_message=self.settings.get(
                "runai_load_error") or "the scheduler does not run in this Jupyter server")
        return service

    @property
    def runai_user(self):
        """Who is asking (as the REST handlers see it): the service checks what it may reach."""
        return runai_user(self.current_user)

    def _error(self, status: int, exc: ServiceError | None = None, message: str | None = None) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        body = exc.body() if exc else {"error": {"message": message, "field": None, "allowed": None}}
        self.finish(json.dumps(body))

    async def _proxy(self, rest: str) -> None:
        try:
            workload, sub = resolve(self.service, rest, self.runai_user)
            spec = workload.spec
            endpoints = self.service.endpoints(spec.project, spec.name, self.runai_user)
        except ServiceError as exc:
            return self._error(exc.status, exc)
        if not endpoints:
            return self._error(503, message=f"workload {spec.name!r} has no ready pod yet "
                               f"({workload.status.phase}); try again in a moment")
        key, endpoint = BALANCER.pick(endpoints)
        path = self.request.path if spec.kind == WorkloadKind.WORKSPACE else "/" + sub
        query = ("?" + self.request.query) if self.request.query else ""
        base, resolver = upstream(endpoint)
        url = f"{base}{path}{query}"
        headers = upstream_headers(self, workload)
        headers["X-Forwarded-Prefix"] = self.request.path[: len(self.request.path) - len(sub)] if sub else self.request.path
        body = self.request.body if self.request.method in ("POST", "PUT", "PATCH", "DELETE") else None
        if self.request.method in ("POST", "PUT", "PATCH") and body is None:
            body = b""
        self.service.report_load(workload.uid, BALANCER.begin(workload.uid, key))
        client = simple_httpclient.SimpleAsyncHTTPClient(force_instance=True, resolver=resolver) \
            if resolver is not None else httpclient.AsyncHTTPClient()
        try:
            response = await client.fetch(
                httpclient.HTTPRequest(url, method=self.request.method, headers=headers, body=body,
                                       follow_redirects=False, request_timeout=3600,
                                       allow_nonstandard_methods=True, decompress_response=False),
                raise_error=False,
            )
        finally:
            self.service.report_load(workload.uid, BALANCER.end(workload.uid, key))
            if resolver is not None:
                client.close()
        if response.code == 599:
            return self._error(502, message=f"pod {key} did not answer: {response.error}")
        self.set_status(response.code, response.reason)
        self._headers.pop("Content-Type", None)
        scope = self.service.proxy_path(workload)
        for name, value in response.headers.get_all():
            if name.lower() not in HOP_BY_HOP or name.lower() == "content-encoding":
                if name.lower() == "set-cookie":
                    cookie = scoped_cookie(value, scope, self._own_cookies())
                    if cookie is not None:
                        self.add_header(name, cookie)
                else:
                    self.set_header(name, value)
        self.set_header("X-Runai-Pod", key)
        if response.body and self.request.method != "HEAD":
            self.write(response.body)
        self.finish()

    @web.authenticated
    async def get(self, rest: str) -> None:
        if self.request.headers.get("Upgrade", "").lower() == "websocket":
            await self._open_websocket(rest)
        else:
            await self._proxy(rest)

    # ------------------------------------------------------------------ WebSocket

    async def _open_websocket(self, rest: str) -> None:
        try:
            workload, sub = resolve(self.service, rest, self.runai_user)
            endpoints = self.service.endpoints(workload.spec.project, workload.spec.name, self.runai_user)
        except ServiceError as exc:
            return self._error(exc.status, exc)
        if not endpoints:
            return self._error(503, message=f"workload {workload.spec.name!r} has no ready pod yet")
        key, endpoint = BALANCER.pick(endpoints)
        path = self.request.path if workload.spec.kind == WorkloadKind.WORKSPACE else "/" + sub
        query = ("?" + self.request.query) if self.request.query else ""
        headers = upstream_headers(self, workload)
        protocols = self.request.headers.get("Sec-WebSocket-Protocol")
        subprotocols = [p.strip() for p in protocols.split(",")] if protocols else None
        base, resolver = upstream(endpoint, "ws")
        try:
            self.upstream = await websocket.websocket_connect(
                httpclient.HTTPRequest(f"{base}{path}{query}", headers=headers),
                on_message_callback=self._from_upstream, subprotocols=subprotocols, resolver=resolver)
        except Exception as exc:
            return self._error(502, message=f"pod {key} refused the WebSocket: {exc}")
        await websocket.WebSocketHandler.get(self, rest)

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return self.upstream.selected_subprotocol if self.upstream is not None else None

    def _from_upstream(self, message: str | bytes | None) -> None:
        if message is None:  # the pod closed it: so does the browser's socket, with the pod's code and reason
            if self.ws_connection is not None:
                self.close(*close_args(self.upstream))
            return
        if self.ws_connection is None:
            return
        try:
            self.write_message(message, binary=isinstance(message, bytes))
        except websocket.WebSocketClosedError:
            pass

    def on_message(self, message: str | bytes) -> None:
        if self.upstream is not None:
            self.upstream.write_message(message, binary=isinstance(message, bytes))

    def on_close(self) -> None:
        if self.upstream is not None:
            self.upstream.close(*close_args(self))  # the browser's code and reason, passed on to the pod
            self.upstream = None

    def check_origin(self, origin: str | None = None) -> bool:  # type: ignore[override]
        return JupyterHandler.check_origin(self, origin or "")

    def _own_cookies(self) -> tuple[str, ...]:
        """Prefixes of the cookie names the Jupyter server itself sets (login, XSRF)."""
        names = ["_xsrf", "username-"]
        try:
            names.append(self.identity_provider.get_cookie_name(self))
        except Exception:  # noqa: BLE001 - an identity provider without cookies
            pass
        return tuple(names)

    @web.authenticated
    async def head(self, rest: str) -> None:
        await self._proxy(rest)

    @web.authenticated
    async def post(self, rest: str) -> None:
        await self._proxy(rest)

    @web.authenticated
    async def put(self, rest: str) -> None:
        await self._proxy(rest)

    @web.authenticated
    async def patch(self, rest: str) -> None:
        await self._proxy(rest)

    @web.authenticated
    async def delete(self, rest: str) -> None:
        await self._proxy(rest)

    @web.authenticated
    async def options(self, rest: str) -> None:
        await self._proxy(rest)


def proxy_routes() -> list[tuple[str, type]]:
    return [(PREFIX + r"(?P<rest>.*)", ProxyHandler)]
