"""Client mode's workload proxy: ``/runai/proxy/<project>/<workload>/...`` on a user's own server,
forwarded to the shared service's proxy (docs/jupyterhub.md, "The workload proxy").

* This server's own proxy checks come first (its login; a browser's cookies only from its own
  pages: a foreign ``Origin`` is refused; XSRF as its own proxy), then the request goes to the
  service's proxy with this user's hub token (``forward.py``).
* WebSockets (a workspace's kernels and terminals): this server accepts the browser's socket only
  once the service's proxy has accepted its own, so a refusal (403, 404, 503 while the pod starts)
  comes back as the service said it; messages are relayed both ways at the pace of the slower
  side (the next one is read once the other side took this one), the subprotocol is the
  workload's choice, and either side's close closes the other.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from jupyter_server.base.handlers import JupyterHandler
from tornado import httpclient, web, websocket
from tornado.iostream import StreamClosedError

from .forward import CONNECT_TIMEOUT, INFO_MAX, METHODS, Forwarding, unreachable
from .proxy import ProxyHandler, close_args

__all__ = ["ForwardProxyHandler"]

#: the largest WebSocket message relayed either way (as tornado's own default)
WS_MAX_MESSAGE = 10 * 1024 * 1024
#: the largest refusal document of the service passed back as it is
REFUSAL_MAX = INFO_MAX


class ForwardProxyHandler(Forwarding, JupyterHandler, websocket.WebSocketHandler):
    """``/runai/proxy/...``: this server's proxy checks (the same as the service's own proxy), then
    the service's proxy, for plain requests and WebSockets alike."""

    SUPPORTED_METHODS = METHODS
    check_xsrf_cookie = ProxyHandler.check_xsrf_cookie
    check_origin = ProxyHandler.check_origin
    _peer: websocket.WebSocketClientConnection | None = None

    async def prepare(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        await super().prepare(*args, **kwargs)
        if self.current_user and not self.token_authenticated and not self.check_origin():
            raise web.HTTPError(403, "the workload proxy refuses a request from another origin")

    @web.authenticated
    async def get(self, *args: str) -> None:
        if self.request.headers.get("Upgrade", "").lower() == "websocket":
            await self._open_websocket(*args)
            return
        await self.forward()

    head = post = put = patch = delete = options = get

    # ------------------------------------------------------------------ WebSocket

    def _ws_target(self) -> str:
        target = self.upstream.target(self._rest(), self.request.query)
        return "ws" + target[len("http"):]  # http -> ws, https -> wss

    def _error(self, status: int, message: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": {"message": message, "field": None, "allowed": None}}))

    async def _open_websocket(self, *args: str) -> None:
        """Open the service's side first: the browser's socket is accepted only once the service
        accepted its own, and its refusal (401, 403, 404, 503...) is passed back as it said it."""
        headers = {k: v for k, v in self._request_headers().items() if not k.lower().startswith("sec-websocket")}
        offered = self.request.headers.get("Sec-WebSocket-Protocol")
        subprotocols = [p.strip() for p in offered.split(",") if p.strip()] if offered else None
        try:
            self._peer = await websocket.websocket_connect(
                httpclient.HTTPRequest(self._ws_target(), headers=headers, connect_timeout=CONNECT_TIMEOUT),
                subprotocols=subprotocols, max_message_size=WS_MAX_MESSAGE)
        except httpclient.HTTPClientError as exc:
            if exc.code != 599 and exc.response is not None:
                self.set_status(exc.code)
                content_type = exc.response.headers.get("Content-Type", "")
                if content_type.startswith("application/json") and len(exc.response.body or b"") <= REFUSAL_MAX:
                    self.set_header("Content-Type", content_type)
                    self.finish(exc.response.body)
                else:
                    self._error(exc.code, f"the runai service refused the WebSocket ({exc.code} {exc.message})")
                return
            self._error(502, unreachable(self.upstream, exc)["error"]["message"])
            return
        except (OSError, websocket.WebSocketError) as exc:
            self._error(502, unreachable(self.upstream, exc)["error"]["message"])
            return
        if self._gone:
            self._peer.close()
            return
        await websocket.WebSocketHandler.get(self, *args)

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return self._peer.selected_subprotocol if self._peer is not None else None

    def open(self, *args: str) -> None:
        asyncio.ensure_future(self._relay_from_service())

    async def _relay_from_service(self) -> None:
        """The service's messages to the browser, one at a time (the next is read once the
        browser's socket took this one); the service's close closes the browser's socket."""
        peer = self._peer
        while peer is not None:
            message = await peer.read_message()
            if message is None:
                break
            try:
                await self.write_message(message, binary=isinstance(message, bytes))
            except (websocket.WebSocketClosedError, StreamClosedError):
                peer.close()
                return
        if peer is not None and self.ws_connection is not None and not self.ws_connection.is_closing():
            self.close(*close_args(peer))

    async def on_message(self, message: str | bytes) -> None:  # type: ignore[override]
        # awaited: tornado reads the browser's next message once the service's socket took this one
        if self._peer is None:
            return
        try:
            await self._peer.write_message(message, binary=isinstance(message, bytes))
        except (websocket.WebSocketClosedError, StreamClosedError):
            self.close()

    def on_close(self) -> None:
        peer, self._peer = self._peer, None
        if peer is not None:
            peer.close(*close_args(self))
