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

The Jupyter server's login cookie and ``Authorization`` header never reach the workload;
a workspace gets ``Authorization: token <its own token>`` instead (``RUNAI_PROXY_TOKEN``
in its environment, derived from a key in the state directory).
"""

from __future__ import annotations

import itertools
import json
from typing import Any
from jupyter_server.base.handlers import JupyterHandler
from tornado import httpclient, web, websocket

from ..errors import NotFound, ServiceError
from ..models import Workload, WorkloadKind

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "content-length", "host", "content-encoding"}
PREFIX = "/runai/proxy/"


class _Balancer:
    """Requests in flight per pod and per workload, shared by all proxy handlers."""

    def __init__(self) -> None:
        self.per_pod: dict[str, int] = {}
        self.per_workload: dict[str, int] = {}
        self._turn = itertools.count()

    def pick(self, endpoints: list[tuple[str, int]]) -> tuple[str, int]:
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


def resolve(service, rest: str) -> tuple[Workload, str]:
    """``<project>/<name>/<sub>`` or ``<name>/<sub>`` to (workload, sub-path)."""
    parts = rest.split("/")
    if len(parts) >= 2:
        for workload in service.workloads.values():
            if workload.spec.project == parts[0] and workload.spec.name == parts[1]:
                return workload, "/".join(parts[2:])
    matches = [w for w in service.workloads.values() if w.spec.name == parts[0]]
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
    if workload.spec.kind == WorkloadKind.WORKSPACE:
        headers["Authorization"] = f"token {handler.service.proxy_token(workload.uid)}"
    return headers


class ProxyHandler(JupyterHandler, websocket.WebSocketHandler):
    """HTTP and WebSocket proxy to a workload's ready pods (see the module docstring)."""

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
    upstream: Any = None

    def check_xsrf_cookie(self) -> None:
        """The proxied app does its own XSRF checks; the login is still required."""

    @property
    def service(self):
        return self.settings["runai_service"]

    def _error(self, status: int, exc: ServiceError | None = None, message: str | None = None) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        body = exc.body() if exc else {"error": {"message": message, "field": None, "allowed": None}}
        self.finish(json.dumps(body))

    async def _proxy(self, rest: str) -> None:
        try:
            workload, sub = resolve(self.service, rest)
        except ServiceError as exc:
            return self._error(exc.status, exc)
        spec = workload.spec
        endpoints = self.service.endpoints(spec.project, spec.name)
        if not endpoints:
            return self._error(503, message=f"workload {spec.name!r} has no ready pod yet "
                               f"({workload.status.phase}); try again in a moment")
        key, port = BALANCER.pick(endpoints)
        path = self.request.path if spec.kind == WorkloadKind.WORKSPACE else "/" + sub
        query = ("?" + self.request.query) if self.request.query else ""
        url = f"http://127.0.0.1:{port}{path}{query}"
        headers = upstream_headers(self, workload)
        headers["X-Forwarded-Prefix"] = self.request.path[: len(self.request.path) - len(sub)] if sub else self.request.path
        body = self.request.body if self.request.method in ("POST", "PUT", "PATCH", "DELETE") else None
        if self.request.method in ("POST", "PUT", "PATCH") and body is None:
            body = b""
        self.service.report_load(workload.uid, BALANCER.begin(workload.uid, key))
        try:
            response = await httpclient.AsyncHTTPClient().fetch(
                httpclient.HTTPRequest(url, method=self.request.method, headers=headers, body=body,
                                       follow_redirects=False, request_timeout=3600,
                                       allow_nonstandard_methods=True, decompress_response=False),
                raise_error=False,
            )
        finally:
            self.service.report_load(workload.uid, BALANCER.end(workload.uid, key))
        if response.code == 599:
            return self._error(502, message=f"pod {key} did not answer: {response.error}")
        self.set_status(response.code, response.reason)
        self._headers.pop("Content-Type", None)
        for name, value in response.headers.get_all():
            if name.lower() not in HOP_BY_HOP or name.lower() == "content-encoding":
                if name.lower() == "set-cookie":
                    self.add_header(name, value)
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
            workload, sub = resolve(self.service, rest)
        except ServiceError as exc:
            return self._error(exc.status, exc)
        endpoints = self.service.endpoints(workload.spec.project, workload.spec.name)
        if not endpoints:
            return self._error(503, message=f"workload {workload.spec.name!r} has no ready pod yet")
        key, port = BALANCER.pick(endpoints)
        path = self.request.path if workload.spec.kind == WorkloadKind.WORKSPACE else "/" + sub
        query = ("?" + self.request.query) if self.request.query else ""
        headers = upstream_headers(self, workload)
        protocols = self.request.headers.get("Sec-WebSocket-Protocol")
        subprotocols = [p.strip() for p in protocols.split(",")] if protocols else None
        try:
            self.upstream = await websocket.websocket_connect(
                httpclient.HTTPRequest(f"ws://127.0.0.1:{port}{path}{query}", headers=headers),
                on_message_callback=self._from_upstream, subprotocols=subprotocols)
        except Exception as exc:
            return self._error(502, message=f"pod {key} refused the WebSocket: {exc}")
        await websocket.WebSocketHandler.get(self, rest)

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return self.upstream.selected_subprotocol if self.upstream is not None else None

    def _from_upstream(self, message: str | bytes | None) -> None:
        if message is None:  # the pod closed it
            if self.ws_connection is not None:
                self.close()
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
            self.upstream.close()
            self.upstream = None

    def check_origin(self, origin: str | None = None) -> bool:  # type: ignore[override]
        return JupyterHandler.check_origin(self, origin or "")

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
