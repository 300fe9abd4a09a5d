"""Client mode: a user's Jupyter server that forwards ``/runai`` to the shared scheduler service.

In a JupyterHub every user has a Jupyter server of their own, and the scheduler runs once, as a
hub service (``runai serve``). A user's server configured with ``c.RunaiApp.service_url`` (or
``RUNAI_SERVICE_URL`` in its environment) runs no scheduler: the sidebar, magics, CLI and
kernels keep talking to it, and it forwards the REST API, the event stream, logs, metrics and
the workload proxy to the service.

* This server's own authentication, XSRF and Origin checks stay in front: a request reaches the
  service only once this server has accepted it.
* The service is called with this user's own hub token (``JUPYTERHUB_API_TOKEN``), never with
  what the browser sent (its cookies and ``Authorization`` header stay here): the service learns
  who the user is from the hub.
* Responses are streamed back as they arrive (an event stream or a followed log never ends), at
  the browser's pace (the service is read no faster than the browser takes the answer: one chunk
  held per request), and the connection to the service is closed as soon as the browser leaves
  (each forwarded request has a connection of its own, so an event stream that the browser left
  does not wait for its next event or heartbeat to end upstream).
* The workload proxy, WebSockets included, is forwarded by ``forward_proxy.py``.
* ``/info`` adds ``mode: "client"`` and which service.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import httpclient, httputil, simple_httpclient, web
from tornado.iostream import IOStream, StreamClosedError
from tornado.tcpclient import TCPClient

from .base import AUTH_RESOURCE
from .proxy import HOP_BY_HOP

__all__ = ["Upstream", "forward_handlers", "unreachable"]

#: request headers that stay in this server: the browser's credentials and what names this server
KEPT_HERE = HOP_BY_HOP | {"cookie", "authorization", "x-xsrftoken", "x-csrftoken", "origin", "referer"}
#: the largest /info answer read whole (the rest of the answers stream)
INFO_MAX = 4 * 1024 * 1024
#: seconds to wait for the service to accept a connection
CONNECT_TIMEOUT = 10.0
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


@dataclass(frozen=True)
class Upstream:
    """Where the shared service is (``url``: its base URL, the hub service prefix included) and
    the token this user's server calls it with."""

    url: str
    token: str
    name: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", self.url.rstrip("/") + "/")

    @property
    def path(self) -> str:
        """The service's base path (``/services/runai/``)."""
        return httputil.urlparse(self.url).path or "/"

    def __repr__(self) -> str:  # never the token
        return f"Upstream({self.url!r}, name={self.name!r})"

    def target(self, rest: str, query: str) -> str:
        return self.url + rest.lstrip("/") + (f"?{query}" if query else "")

    def about(self) -> dict[str, Any]:
        """What ``/info`` says about this server's mode."""
        return {"mode": "client", "service": {"url": self.url, "name": self.name}}


def unreachable(upstream: Upstream, exc: BaseException) -> dict[str, Any]:
    message = (f"this Jupyter server forwards to the runai service at {upstream.url}, which did not answer "
               f"({type(exc).__name__}: {str(exc)[:200]}); ask your hub's administrator whether the service runs")
    return {"error": {"message": message, "field": None, "allowed": None}}


class _OwnConnections(TCPClient):
    """A TCP client that remembers the connections it opened, so that the request they carry
    can be ended from outside (tornado's HTTP client has no way to cancel a request)."""

    def __init__(self, resolver: Any = None) -> None:
        super().__init__(resolver=resolver)
        self.streams: list[IOStream] = []

    async def connect(self, *args: Any, **kwargs: Any) -> IOStream:  # type: ignore[override]
        stream = await super().connect(*args, **kwargs)
        self.streams.append(stream)
        return stream

    def close_streams(self) -> None:
        for stream in self.streams:
            stream.close()


class Forwarding:
    """What both forwarding handlers share: send this request to the service, stream the answer."""

    _gone = False
    _connections: _OwnConnections | None = None

    @property
    def upstream(self) -> Upstream:
        return self.settings["runai_upstream"]  # type: ignore[attr-defined]

    def on_connection_close(self) -> None:
        self._gone = True
        if self._connections is not None:  # the browser left: so does this server, at once
            self._connections.close_streams()
        super().on_connection_close()  # type: ignore[misc]

    def _rest(self) -> str:
        """The request's path below this server's base URL (``runai/api/v1/...``)."""
        base = self.base_url  # type: ignore[attr-defined]
        path = self.request.path  # type: ignore[attr-defined]
        return path[len(base):] if path.startswith(base) else path.lstrip("/")

    def _request_headers(self) -> dict[str, str]:
        headers = {k: v for k, v in self.request.headers.get_all()  # type: ignore[attr-defined]
                   if k.lower() not in KEPT_HERE}
        headers["Authorization"] = f"token {self.upstream.token}"
        return headers

    def _response_header(self, name: str, value: str) -> str | None:
        """A header of the service's answer as this server passes it on (None: dropped)."""
        lower = name.lower()
        if lower in HOP_BY_HOP:
            return None
        if lower == "location":  # the service's own address, absolute or a path, becomes this server's
            for prefix in (self.upstream.url, self.upstream.path):
                if value.startswith(prefix):
                    return self.base_url + value[len(prefix):]  # type: ignore[attr-defined]
            return value
        if lower == "set-cookie":
            return self._cookie(value)
        return value

    def _cookie(self, value: str) -> str | None:
        """Only a workload's cookies pass (scoped by the service to its proxy path, moved here
        to this server's): the service's own cookies are no business of this server."""
        proxy_path = self.upstream.path + "runai/proxy/"
        parts = [p.strip() for p in value.split(";")]
        out = []
        for part in parts:
            key, _, path = part.partition("=")
            if key.strip().lower() == "path":
                if not path.startswith(proxy_path):
                    return None
                part = "Path=" + self.base_url + path[len(self.upstream.path):]  # type: ignore[attr-defined]
            out.append(part)
        return "; ".join(out) if any(p.lower().startswith("path=") for p in out) else None

    async def forward(self) -> None:
        request = self.request  # type: ignore[attr-defined]
        method = request.method
        body = request.body if method in ("POST", "PUT", "PATCH", "DELETE") else None
        if method in ("POST", "PUT", "PATCH") and body is None:
            body = b""
        started = False
        status: list[Any] = []
        headers = httputil.HTTPHeaders()

        def on_header(line: str) -> None:
            nonlocal started
            if not status:
                start = httputil.parse_response_start_line(line.strip())
                status.extend([start.code, start.reason])
            elif line.strip():
                headers.parse_line(line)
            else:  # the end of the headers: pass them on at once (an event stream has no body yet)
                self.set_status(status[0], status[1] or None)  # type: ignore[attr-defined]
                self.clear_header("Content-Type")  # type: ignore[attr-defined]
                for name, value in headers.get_all():
                    kept = self._response_header(name, value)
                    if kept is not None:
                        self.add_header(name, kept)  # type: ignore[attr-defined]
                started = True
                if self._gone:
                    raise StreamClosedError()
                self.flush()  # type: ignore[attr-defined]

        def on_chunk(chunk: bytes):
            if self._gone:  # the browser left: end the upstream request too
                raise StreamClosedError()
            self.write(chunk)  # type: ignore[attr-defined]
            # Tornado waits for this before it reads on: a slow browser slows the upstream read,
            # so this server holds at most a chunk per request, never the whole stream
            return self.flush()  # type: ignore[attr-defined]

        # a client of its own per request: its connection can be closed when the browser leaves,
        # and no request waits behind the shared client's limit on requests in flight (each open
        # event stream or followed log holds one for as long as it is open)
        client = simple_httpclient.SimpleAsyncHTTPClient(force_instance=True)
        self._connections = client.tcp_client = _OwnConnections(resolver=client.resolver)
        try:
            await client.fetch(httpclient.HTTPRequest(
                self.upstream.target(self._rest(), request.query), method=method,
                headers=self._request_headers(), body=body, follow_redirects=False,
                header_callback=on_header, streaming_callback=on_chunk, connect_timeout=CONNECT_TIMEOUT,
                request_timeout=0, allow_nonstandard_methods=True), raise_error=False)
        except StreamClosedError:
            return
        except (OSError, httpclient.HTTPClientError) as exc:
            if self._gone:
                return
            if started:  # the service went away mid-answer: end ours, as it ended
                self.finish()  # type: ignore[attr-defined]
                return
            self.set_status(502)  # type: ignore[attr-defined]
            self.set_header("Content-Type", "application/json")  # type: ignore[attr-defined]
            self.finish(json.dumps(unreachable(self.upstream, exc)))  # type: ignore[attr-defined]
            return
        finally:
            client.close()
            self._connections.close_streams()
        if self._gone:
            return
        if not self._finished:  # type: ignore[attr-defined]
            self.finish()  # type: ignore[attr-defined]


class ForwardAPIHandler(Forwarding, APIHandler):
    """``/runai/api/v1/...`` and ``/runai/metrics``: this server's API checks, then the service."""

    auth_resource = AUTH_RESOURCE
    SUPPORTED_METHODS = METHODS

    @web.authenticated
    @authorized
    async def get(self, *args: str) -> None:
        await self.forward()

    head = post = put = patch = delete = get


class InfoForwardHandler(Forwarding, APIHandler):
    """``GET /runai/api/v1/info``: the service's answer, plus which mode and which service."""

    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    async def get(self) -> None:
        body = bytearray()

        def on_chunk(chunk: bytes) -> None:
            body.extend(chunk)
            if len(body) > INFO_MAX:
                raise ValueError(f"its /info answer is over {INFO_MAX} bytes")

        try:
            response = await httpclient.AsyncHTTPClient().fetch(httpclient.HTTPRequest(
                self.upstream.target(self._rest(), ""), headers=self._request_headers(),
                connect_timeout=CONNECT_TIMEOUT, request_timeout=60, streaming_callback=on_chunk),
                raise_error=False)
        except (OSError, ValueError, httpclient.HTTPClientError) as exc:
            self.set_status(502)
            self.finish(json.dumps({**unreachable(self.upstream, exc), **self.upstream.about()}))
            return
        try:
            document = json.loads(bytes(body) or b"null")
        except ValueError:
            document = None
        if not isinstance(document, dict):
            document = {"error": {"message": f"the runai service at {self.upstream.url} answered {response.code} "
                                  "without a JSON document", "field": None, "allowed": None}}
        if response.code in (401, 403):  # Jupyter's refusal ({"message"}) or the REST error document
            said = (document.get("error") or {}).get("message") if isinstance(document.get("error"), dict) else None
            said = said or document.get("message") or "refused"
            document = {"error": {"field": None, "allowed": None, "message": (
                f"{said}: the runai service at {self.upstream.url} refused this server's hub token. The hub must let "
                f"users' servers call it: c.Spawner.server_token_scopes with 'access:services!service="
                f"{self.upstream.name or '<service name>'}', and the users' role with the same scope "
                "(docs/jupyterhub.md)")}}
        self.set_status(response.code if response.code != 599 else 502)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({**document, **self.upstream.about()}))


def forward_handlers() -> list[tuple[str, type]]:
    """The routes of a server in client mode."""
    from .forward_proxy import ForwardProxyHandler

    return [
        ("/runai/api/v1/info", InfoForwardHandler),
        ("/runai/api/v1(/.*)?", ForwardAPIHandler),
        ("/runai/metrics", ForwardAPIHandler),
        ("/runai/proxy/(.*)", ForwardProxyHandler),
    ]
