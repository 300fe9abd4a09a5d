"""Client mode (docs/jupyterhub.md): a Jupyter server with ``c.RunaiApp.service_url`` runs no
scheduler and forwards /runai to the shared service with its own token (``JUPYTERHUB_API_TOKEN``),
streaming the answers back. Here the service is a real Jupyter server with the extension (its
token stands in for the user's hub token); tests/test_jupyterhub.py runs the whole thing under a hub."""

from __future__ import annotations

import asyncio
import json
import sys

import psutil
import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from api_helpers import Api, server_config, wait_for
from live_server import LiveServer, free_port

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One shared server for the module (each test's workloads have names of their own)."""
    server = LiveServer(tmp_path_factory.mktemp("shared"), {"LocalCluster": {"virtual_gpus": "1x24Gi"}}).start()
    yield server
    server.end_workloads()
    server.stop()


@pytest.fixture
def jp_server_config(tmp_path, shared, monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", shared.token)
    monkeypatch.setenv("RUNAI_SERVICE_NAME", "runai")
    return server_config(tmp_path, service_url=shared.url)


async def test_a_client_forwards_to_the_service_and_runs_no_scheduler(jp_serverapp, jp_fetch, shared):
    assert jp_serverapp.web_app.settings.get("runai_service") is None  # no scheduler of its own
    api = Api(jp_fetch)
    code, info = await api.get("info")
    assert code == 200, info
    assert info["mode"] == "client" and info["service"] == {"url": shared.url, "name": "runai"}
    assert info["gpus"] == 1  # the service's cluster

    one = await api.submit(name="fwd", command="echo one; sleep 0.3; echo two", resources={"gpu": 1})
    assert one["spec"]["name"] == "fwd"
    assert "fwd" in [w["spec"]["name"] for w in shared.api("GET", "workloads")[1]["workloads"]]
    await api.wait_phase("fwd", "Running", "Succeeded")
    assert (await api.logs("fwd", follow="true")).splitlines() == ["one", "two"]  # a followed log ends with the pod
    # errors pass through as the service answered them, refused means nothing happened
    code, body = await api.post("workloads", body={"name": "Bad Name", "command": "true"})
    assert code == 400 and body["error"]["field"] == "name", body
    assert (await api.get("workloads", "default", "nope"))[0] == 404
    assert "Bad Name" not in [w["spec"]["name"] for w in shared.api("GET", "workloads")[1]["workloads"]]
    assert (await api.call("DELETE", "workloads", "default", "fwd"))[0] == 202
    await wait_for(lambda: api.get("workloads"), lambda r: "fwd" not in [w["spec"]["name"] for w in r[1]["workloads"]],
                   15, "fwd deleted")


async def test_the_workload_proxy_is_forwarded_with_the_workloads_cookies_moved_here(jp_fetch, jp_base_url, shared,
                                                                                    tmp_path):
    from test_security import RECORDER, _reachable

    api = Api(jp_fetch)
    app = tmp_path / "recorder.py"
    app.write_text(RECORDER)
    await api.submit(name="rec", kind="workspace", command=[sys.executable, str(app)])
    await api.wait_phase("rec", "Running")
    answer = await _reachable(api, "rec", "x")
    seen = json.loads(answer.body)
    # the pod gets the service's token for it, never this server's credentials or the browser's cookies
    assert seen["auth"] and shared.token not in seen["auth"]
    answer = await jp_fetch("runai", "proxy", "default", "rec", "y", headers={"Cookie": "mine=1"})
    assert json.loads(answer.body)["cookie"] is None
    cookies = answer.headers.get_list("Set-Cookie")
    assert not any(c.startswith("_xsrf=") for c in cookies), cookies  # the server's own never pass
    app_cookie = [c for c in cookies if c.startswith("app=")][0]
    assert f"Path={jp_base_url}runai/proxy/default/rec/" in app_cookie and "Domain" not in app_cookie
    assert (await api.call("DELETE", "workloads", "default", "rec"))[0] == 202


# A web app that sends every request on to its page "next", under its proxy path (as web apps started
# with a base URL do)
REDIRECTOR = (
    "import http.server, os\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        self.send_response(302); self.send_header('Location', os.environ['RUNAI_PROXY_PATH'] + 'next')\n"
    "        self.send_header('Content-Length', '0'); self.end_headers()\n"
    "    def log_message(self, *a): pass\n"
    "http.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n"
)


async def test_a_workloads_redirect_points_at_this_server(jp_fetch, jp_base_url, tmp_path):
    api = Api(jp_fetch)
    app = tmp_path / "redirector.py"
    app.write_text(REDIRECTOR)
    await api.submit(name="redir", kind="workspace", command=[sys.executable, str(app)])
    await api.wait_phase("redir", "Running")
    answer = await wait_for(  # 503 until its pod listens
        lambda: jp_fetch("runai", "proxy", "default", "redir", "x", follow_redirects=False, raise_error=False),
        lambda r: r.code != 503, 60, "redir to answer")
    assert answer.code == 302
    assert answer.headers["Location"] == f"{jp_base_url}runai/proxy/default/redir/next"
    assert (await api.call("DELETE", "workloads", "default", "redir"))[0] == 202


async def test_the_event_stream_is_forwarded_as_it_happens(jp_fetch, jp_http_port, jp_base_url, jp_auth_header,
                                                            shared):
    api = Api(jp_fetch)
    chunks: list[bytes] = []
    connected = asyncio.Event()

    def on_chunk(chunk: bytes) -> None:
        chunks.append(chunk)
        connected.set()
        if b'"Succeeded"' in b"".join(chunks):
            raise EOFError("seen enough")  # ends the request: the stream itself never ends

    url = f"http://localhost:{jp_http_port}{jp_base_url}runai/api/v1/events"
    stream = AsyncHTTPClient().fetch(HTTPRequest(url, headers=jp_auth_header, streaming_callback=on_chunk,
                                                 request_timeout=20))
    await asyncio.wait_for(connected.wait(), 15)  # subscribed (": connected"): no event of ev is missed
    await api.submit(name="ev", command="true")
    with pytest.raises(Exception):  # the callback's exception closes the connection (or the timeout does)
        await stream
    text = b"".join(chunks).decode()
    # only a forward that passes events on while the stream is open shows them before the timeout
    assert '"Succeeded"' in text, text
    events = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]
    assert ["Submitted", "Scheduled"] == [e["type"] for e in events if e["workload"] == "ev"][:2]


async def test_a_client_asks_for_its_own_servers_token_first(jp_fetch, jp_http_port, jp_base_url, shared):
    response = await AsyncHTTPClient().fetch(
        f"http://localhost:{jp_http_port}{jp_base_url}runai/api/v1/workloads", method="POST",
        body=json.dumps({"name": "anon", "command": "true"}), raise_error=False)
    assert response.code in (401, 403)
    assert "anon" not in [w["spec"]["name"] for w in shared.api("GET", "workloads")[1]["workloads"]]


class TestBadURL:
    @pytest.fixture
    def jp_server_config(self, tmp_path, monkeypatch):
        monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "some-token")
        return server_config(tmp_path, service_url="ftp://example.org/runai/")

    async def test_a_service_url_that_is_no_http_url_is_refused_naming_the_setting(self, jp_fetch):
        code, body = await Api(jp_fetch).get("info")
        assert code == 503 and "c.RunaiApp.service_url" in body["error"]["message"]


class TestUnreachable:
    @pytest.fixture
    def jp_server_config(self, tmp_path, monkeypatch):
        monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "some-token")
        return server_config(tmp_path, service_url=f"http://127.0.0.1:{free_port()}/services/runai/")

    async def test_a_service_that_does_not_answer_is_named(self, jp_fetch):
        api = Api(jp_fetch)
        code, info = await api.get("info")
        assert code == 502 and info["mode"] == "client"
        assert info["service"]["url"] in info["error"]["message"]
        code, body = await api.get("workloads")
        assert code == 502 and "did not answer" in body["error"]["message"]


class TestNoToken:
    @pytest.fixture
    def jp_server_config(self, tmp_path, monkeypatch):
        monkeypatch.delenv("JUPYTERHUB_API_TOKEN", raising=False)
        return server_config(tmp_path, service_url="http://127.0.0.1:1/services/runai/")

    async def test_client_mode_without_a_hub_token_says_so(self, jp_fetch):
        code, body = await Api(jp_fetch).get("info")
        assert code == 503 and "JUPYTERHUB_API_TOKEN" in body["error"]["message"]


class TestRefusedToken:
    @pytest.fixture
    def jp_server_config(self, tmp_path, shared, monkeypatch):
        monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "not-the-service-token")
        monkeypatch.setenv("RUNAI_SERVICE_NAME", "runai")
        return server_config(tmp_path, service_url=shared.url)

    async def test_info_says_which_hub_setting_lets_a_server_call_the_service(self, jp_fetch):
        code, info = await Api(jp_fetch).get("info")
        assert code == 403 and info["mode"] == "client"
        assert "server_token_scopes" in info["error"]["message"]
        assert "access:services!service=runai" in info["error"]["message"]


async def _ws_connect(url: str, headers: dict, subprotocols: list[str] | None = None):
    """A WebSocket through this server, retried while the workload's pod does not listen yet (503)."""
    async def connect():
        try:
            return await websocket_connect(HTTPRequest(url, headers=headers), subprotocols=subprotocols)
        except HTTPClientError as exc:
            if exc.code == 503:
                return None
            raise

    return await wait_for(connect, lambda c: c is not None, 60, "the workspace's WebSocket to open")


async def test_a_workspaces_websocket_is_forwarded_both_ways_and_closes_with_either_side(
        jp_fetch, jp_http_port, jp_base_url, jp_auth_header, jp_serverapp, shared, tmp_path):
    from test_api import ECHO_SERVER
    from test_security import _login

    api = Api(jp_fetch)
    app, closes = tmp_path / "echo.py", tmp_path / "closes.log"
    app.write_text(ECHO_SERVER)
    await api.submit(name="wsfwd", kind="workspace", command=[sys.executable, str(app), str(closes)])
    await api.wait_phase("wsfwd", "Running")
    origin = f"http://localhost:{jp_http_port}"
    url = f"ws://localhost:{jp_http_port}{jp_base_url}runai/proxy/default/wsfwd/ws"

    conn = await _ws_connect(url, jp_auth_header, subprotocols=["v1.echo", "v0.echo"])
    assert conn.selected_subprotocol == "v1.echo"  # the workload's choice, passed back
    for word in ("hello", "again"):
        await conn.write_message(word)
        # the pod gets the service's token for it (neither this server's nor the hub token)
        assert await asyncio.wait_for(conn.read_message(), 10) == f"echo:{word} auth=token "
    conn.close()  # the browser leaves: the workload's socket is closed too
    await wait_for(lambda: _read(closes), lambda text: text.count("closed") == 1, 15, "the workload's side to close")

    conn = await _ws_connect(url, jp_auth_header)
    await conn.write_message("bye")  # the workload closes: so does the browser's socket, with its code
    assert await asyncio.wait_for(conn.read_message(), 10) is None
    assert (conn.close_code, conn.close_reason) == (4001, "bye")  # through both proxies

    # the same checks as this server's own proxy: a login, and this server's origin for a browser's cookies
    with pytest.raises(HTTPClientError) as refused:
        await websocket_connect(HTTPRequest(url))
    assert refused.value.code in (302, 403)
    login = await _login(origin, jp_base_url, jp_serverapp)
    jar = "; ".join(f"{k}={v}" for k, v in login.items())
    with pytest.raises(HTTPClientError) as refused:
        await websocket_connect(HTTPRequest(url, headers={"Cookie": jar, "Origin": "https://evil.example"}))
    assert refused.value.code == 403
    conn = await websocket_connect(HTTPRequest(url, headers={"Cookie": jar, "Origin": origin}))
    await conn.write_message("mine")
    assert await asyncio.wait_for(conn.read_message(), 10) == "echo:mine auth=token "
    conn.close()
    await wait_for(lambda: _read(closes), lambda text: text.count("closed") == 3, 15, "the last socket to close")
    # a workload that does not exist: the service's 404, passed back as it said it
    with pytest.raises(HTTPClientError) as missing:
        await websocket_connect(HTTPRequest(url.replace("wsfwd", "nowhere"), headers=jp_auth_header))
    assert missing.value.code == 404
    assert (await api.call("DELETE", "workloads", "default", "wsfwd"))[0] == 202


async def _read(path) -> str:
    return path.read_text() if path.exists() else ""


def _connections_to(port: int) -> set[int]:
    """The local ports of this process's open TCP connections to ``port`` (the test's client-mode
    server runs in this process)."""
    return {c.laddr.port for c in psutil.Process().net_connections(kind="tcp")
            if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED}


async def test_when_the_browser_leaves_an_event_stream_the_forward_to_the_service_ends_at_once(
        jp_fetch, jp_http_port, jp_base_url, jp_auth_header, shared):  # jp_fetch: this server listens
    before = _connections_to(shared.port)
    forward: set[int] = set()

    def on_chunk(chunk: bytes) -> None:  # the service's first words came through: the forward is open
        forward.update(_connections_to(shared.port) - before)
        raise EOFError("the browser leaves")  # closes its connection, with no event on the way

    url = f"http://localhost:{jp_http_port}{jp_base_url}runai/api/v1/events"
    with pytest.raises(Exception):
        await AsyncHTTPClient().fetch(HTTPRequest(url, headers=jp_auth_header, streaming_callback=on_chunk,
                                                  request_timeout=20))
    assert len(forward) == 1, forward  # this stream's own connection to the service

    async def still_open() -> set[int]:
        return _connections_to(shared.port) & forward

    # at once: not at the next event or heartbeat (15 s off)
    await wait_for(still_open, lambda ports: not ports, 5, "the forward's connection to the service to close")
