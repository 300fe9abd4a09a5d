"""What the security model promises (docs/security.md), on a real Jupyter server whose local
cluster runs real processes: no secret on a command line, pods reachable only through the
authenticated proxy, the proxy refuses cross-site requests and keeps a workload's cookies
to its own path, pods keep their own Jupyter directories, secrets and pod files do not
outlive what they belong to, and another local account can read none of it."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlencode

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from api_helpers import server_config, wait_for

pytest_plugins = ["pytest_jupyter.jupyter_server"]

PY = sys.executable

# A workspace app that says what it received and tries to set cookies on the whole origin.
RECORDER = (
    "import http.server, json, os\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def answer(self):\n"
    "        size = int(self.headers.get('Content-Length') or 0); self.rfile.read(size)\n"
    "        with open('requests.log', 'a') as f: f.write(self.command + ' ' + self.path + '\\n')\n"
    "        body = json.dumps({'method': self.command, 'auth': self.headers.get('Authorization'),\n"
    "                           'cookie': self.headers.get('Cookie')}).encode()\n"
    "        self.send_response(200)\n"
    "        self.send_header('Set-Cookie', '_xsrf=planted; Path=/')\n"
    "        self.send_header('Set-Cookie', 'app=1; Path=/; Domain=example.com; HttpOnly')\n"
    "        self.send_header('Set-Cookie', 'deep=2; Path=' + os.environ['RUNAI_PROXY_PATH'] + 'sub')\n"
    "        self.send_header('Content-Type', 'application/json')\n"
    "        self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)\n"
    "    do_GET = do_POST = do_PUT = do_DELETE = answer\n"
    "    def log_message(self, *a): pass\n"
    "http.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n"
)

# An inference server on the pod's Unix socket that reports the token it was sent and its own.
SOCKET_SERVER = (
    "import http.server, json, os, socketserver\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        body = json.dumps({'sent': self.headers.get('Authorization'),\n"
    "                           'mine': os.environ['RUNAI_PROXY_TOKEN']}).encode()\n"
    "        self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers()\n"
    "        self.wfile.write(body)\n"
    "    def log_message(self, *a): pass\n"
    "class S(socketserver.UnixStreamServer):\n"
    "    def get_request(self):\n"
    "        conn, _ = super().get_request(); return conn, ('local', 0)\n"
    "S(os.environ['RUNAI_SOCKET'], H).serve_forever()\n"
)


@pytest.fixture
def jp_server_config(tmp_path):
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    os.chmod(state, 0o755)  # a state directory that already existed, readable by everyone
    return server_config(tmp_path)


@pytest.fixture
def origin(jp_http_port):
    return f"http://localhost:{jp_http_port}"


async def _login(origin, jp_base_url, jp_serverapp) -> dict[str, str]:
    """Log in as a browser does (the login form with the server's token): the cookies it gets."""
    client = AsyncHTTPClient()
    page = await client.fetch(f"{origin}{jp_base_url}login")
    xsrf = _cookies(page.headers.get_list("Set-Cookie"))["_xsrf"]
    body = urlencode({"_xsrf": xsrf, "password": jp_serverapp.identity_provider.token})
    with pytest.raises(HTTPClientError) as redirected:
        await client.fetch(HTTPRequest(f"{origin}{jp_base_url}login", method="POST", body=body,
                                       headers={"Cookie": f"_xsrf={xsrf}"}, follow_redirects=False))
    assert redirected.value.code == 302
    cookies = _cookies(redirected.value.response.headers.get_list("Set-Cookie"))
    cookies["_xsrf"] = xsrf
    assert any(name.startswith("username-") for name in cookies), cookies
    return cookies


def _cookies(headers: list[str]) -> dict[str, str]:
    out = {}
    for header in headers:
        name, _, rest = header.partition("=")
        out[name.strip()] = rest.split(";", 1)[0]
    return out


async def _browser(url: str, cookies: dict[str, str], method: str = "GET", headers: dict | None = None,
                   body: bytes | None = None):
    """A request carrying only the login cookies, as a browser sends it; never raises."""
    jar = "; ".join(f"{k}={v}" for k, v in cookies.items())
    if body is None and method in ("POST", "PUT", "PATCH"):
        body = b"{}"
    request = HTTPRequest(url, method=method, headers={"Cookie": jar, **(headers or {})}, body=body,
                          follow_redirects=False)
    try:
        return await AsyncHTTPClient().fetch(request)
    except HTTPClientError as exc:
        assert exc.response is not None, exc
        return exc.response


def _pod_handle(service, name: str, index: int = 0) -> dict:
    workload = service.get("default", name)
    return service.handles[(workload.uid, f"{name}-{index}")]


def _group(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid:
                pids.append(int(entry.name))
    return pids


async def _reachable(api, *path: str, timeout: float = 60):
    async def answer():
        try:
            return await api.fetch("runai", "proxy", "default", *path)
        except Exception:  # 503 while it starts
            return None

    return await wait_for(answer, lambda r: r is not None, timeout, f"{'/'.join(path)} to answer")


# ------------------------------------------------------------------ secrets and sockets


async def test_a_workspace_token_is_on_no_command_line_and_its_server_only_on_a_private_socket(api, service):
    await api.submit(name="lab", kind="workspace")
    await api.wait_phase("lab", "Running")
    status = json.loads((await _reachable(api, "lab", "api", "status")).body)
    assert "started" in status  # the workspace's Jupyter, through the proxy with its token
    workload = service.get("default", "lab")
    token = service.proxy_token(workload.uid)
    handle = _pod_handle(service, "lab")
    assert handle["via"] == "socket"
    pids = _group(int(handle["pgid"]))
    assert len(pids) >= 2  # the runner and the workspace's server
    for pid in pids:
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes()
        assert token.encode() not in command_line, command_line
    sock = Path(handle["socket"])
    assert stat.S_ISSOCK(sock.stat().st_mode)
    assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700  # no other account can reach it
    # the server listens on no TCP port: the one it was offered stays closed
    import socket

    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", int(handle["port"])), timeout=1):
        pass


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("python3"), reason="needs root to act as another account")
async def test_another_local_account_reaches_no_pod_and_reads_no_pod_file(api, service):
    await api.submit(name="lab", kind="workspace")
    await api.wait_phase("lab", "Running")
    await _reachable(api, "lab", "api", "status")
    handle = _pod_handle(service, "lab")
    probe = (
        "import json, socket, sys\n"
        "out = {}\n"
        "def attempt(name, action):\n"
        "    try: action(); out[name] = 'allowed'\n"
        "    except OSError as e: out[name] = type(e).__name__\n"
        "def connect():\n"
        "    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n"
        "attempt('socket', connect)\n"
        "attempt('log', lambda: open(sys.argv[2]).read())\n"
        "attempt('environ', lambda: open('/proc/%s/environ' % sys.argv[3]).read())\n"
        "attempt('pod_dir', lambda: __import__('os').listdir(sys.argv[4]))\n"
        "print(json.dumps(out))\n"
    )
    result = subprocess.run(["python3", "-c", probe, handle["socket"], handle["log"], str(handle["pid"]),
                             handle["pod_dir"]], user="nobody", group="nogroup", capture_output=True,
                            text=True, timeout=30, cwd="/")
    seen = json.loads(result.stdout)
    assert seen == {"socket": "PermissionError", "log": "PermissionError", "environ": "PermissionError",
                    "pod_dir": "PermissionError"}, (seen, result.stderr)


async def test_pod_files_are_private_even_when_the_state_directory_was_not(api, service, tmp_path):
    state = tmp_path / "state"
    assert stat.S_IMODE(state.stat().st_mode) == 0o700  # tightened at start
    await api.submit(name="quiet", command="echo done")
    await api.wait_phase("quiet", "Succeeded")
    handle = _pod_handle(service, "quiet")
    assert stat.S_IMODE(Path(handle["log"]).stat().st_mode) == 0o600
    assert stat.S_IMODE((state / "pods").stat().st_mode) == 0o700


async def test_inference_is_reached_on_its_socket_with_the_proxy_token(api, service, tmp_path):
    server = tmp_path / "serve.py"
    server.write_text(SOCKET_SERVER)
    await api.submit(name="llm", kind="inference", command=[PY, str(server)], min_replicas=1, max_replicas=1)
    await api.wait_phase("llm", "Running")
    answer = json.loads((await _reachable(api, "llm", "predict")).body)
    assert answer["sent"] == f"token {answer['mine']}"  # the endpoint can tell the proxy from anyone else
    assert _pod_handle(service, "llm")["via"] == "socket"


async def test_pods_get_their_own_jupyter_directories_and_a_workspace_its_own_root(api, service, origin,
                                                                                   jp_base_url, jp_serverapp,
                                                                                   jp_root_dir):
    login = await _login(origin, jp_base_url, jp_serverapp)
    await api.submit(name="dirs", command='echo "config=$JUPYTER_CONFIG_DIR runtime=$JUPYTER_RUNTIME_DIR"')
    await api.wait_phase("dirs", "Succeeded")
    pod_dir = _pod_handle(service, "dirs")["pod_dir"]
    line = [x for x in (await api.logs("dirs")).splitlines() if x.startswith("config=")][0]
    config, runtime = (part.split("=", 1)[1] for part in line.split())
    assert config.startswith(pod_dir) and runtime.startswith(pod_dir)
    assert config != os.environ.get("JUPYTER_CONFIG_DIR") and runtime != os.environ.get("JUPYTER_RUNTIME_DIR")

    await api.submit(name="lab", kind="workspace")
    await api.wait_phase("lab", "Running")
    await _reachable(api, "lab", "api", "status")
    url = f"{origin}{jp_base_url}runai/proxy/default/lab/api/contents/made-in-the-workspace.txt"
    made = await _browser(url, login, "PUT", headers={"Origin": origin, "Content-Type": "application/json"},
                          body=json.dumps({"type": "file", "format": "text", "content": "hi"}).encode())
    assert made.code == 201, made.body
    lab_dir = Path(_pod_handle(service, "lab")["pod_dir"])
    assert (lab_dir / "made-in-the-workspace.txt").read_text() == "hi"
    assert not (Path(jp_root_dir) / "made-in-the-workspace.txt").exists()


# ------------------------------------------------------------------ the proxy


async def test_the_proxy_refuses_cross_site_requests_and_scopes_workload_cookies(api, service, tmp_path, origin,
                                                                               jp_base_url, jp_serverapp):
    login = await _login(origin, jp_base_url, jp_serverapp)
    app = tmp_path / "recorder.py"
    app.write_text(RECORDER)
    await api.submit(name="rec", kind="workspace", command=[PY, str(app)])
    await api.wait_phase("rec", "Running")
    await _reachable(api, "rec", "x")
    url = f"{origin}{jp_base_url}runai/proxy/default/rec/"
    log = Path(_pod_handle(service, "rec")["pod_dir"]) / "requests.log"
    before = log.read_text()

    # a page on another origin, with only the user's login cookie: refused, nothing reaches the app
    for method in ("POST", "PUT", "DELETE"):
        refused = await _browser(url + "kernels", login, method, headers={"Origin": "https://evil.example"})
        assert refused.code == 403, (method, refused.code)
    forged = {k: v for k, v in login.items() if k != "_xsrf"}
    refused = await _browser(url + "kernels", forged, "POST")  # no Origin, no Referer, no XSRF token
    assert refused.code == 403
    refused = await _browser(url + "kernels", login, "POST", headers={"Referer": "https://evil.example/x"})
    assert refused.code == 403
    refused = await _browser(url + "data", login, "GET", headers={"Origin": "https://evil.example"})
    assert refused.code == 403
    assert log.read_text() == before

    # this server's own pages: a same-origin Origin, or the server's XSRF token, or a Referer
    for headers in ({"Origin": origin}, {"X-XSRFToken": login["_xsrf"]}, {"Referer": url}):
        passed = await _browser(url + "kernels", login, "POST", headers=headers)
        assert passed.code == 200, (headers, passed.code, passed.body)
        seen = json.loads(passed.body)
        assert seen["auth"] == f"token {service.proxy_token(service.get('default', 'rec').uid)}"
        assert "username-" not in (seen["cookie"] or "") and "_xsrf" not in (seen["cookie"] or "")
    # scripts with the server's token need neither (as on the server's API)
    assert json.loads((await api.fetch("runai", "proxy", "default", "rec", "k", method="POST", body=b"")).body)[
        "method"] == "POST"

    # the workload's cookies stay under its proxy path; it cannot set the server's own
    cookies = passed.headers.get_list("Set-Cookie")
    assert not any(c.startswith("_xsrf=") for c in cookies), cookies
    path = service.proxy_path(service.get("default", "rec"))
    app_cookie = [c for c in cookies if c.startswith("app=")][0]
    assert f"Path={path}" in app_cookie and "Domain" not in app_cookie and "HttpOnly" in app_cookie
    assert [c for c in cookies if c.startswith("deep=")][0].endswith(f"Path={path}sub")


# ------------------------------------------------------------------ what pods leave behind


async def test_secret_files_go_when_the_pod_ends_and_pod_directories_when_the_workload_is_deleted(api, service):
    code, _ = await api.post("projects", "default", "credentials",
                             body={"name": "keys", "inject_as": "file", "mount_path": "secrets",
                                   "data": {"api_key": "s3cr3t"}})
    assert code == 201
    await api.submit(name="reader", command="cat secrets/api_key | rev", credentials=["keys"])
    await api.wait_phase("reader", "Succeeded")
    assert "t3rc3s" in await api.logs("reader")
    handle = _pod_handle(service, "reader")
    pod_dir = Path(handle["pod_dir"])
    assert handle["secret_files"] and all(p.startswith(str(pod_dir)) for p in handle["secret_files"])
    await wait_for(_async(lambda: [p for p in handle["secret_files"] if Path(p).exists()]), lambda left: not left,
                   10, "the secret files to be removed")
    assert (pod_dir / "pod.log").exists()  # the log stays while the workload does

    code, _ = await api.delete("workloads", "default", "reader")
    assert code in (200, 202)
    await wait_for(_async(pod_dir.exists), lambda there: not there, 10, "the pod directory to be removed")
    assert not pod_dir.parent.exists()  # <workload>-<uid8> too


def _async(function):
    async def call():
        return function()

    return call


# ------------------------------------------------------------------ data sources


@pytest.mark.parametrize("url", [
    "ssh://-oProxyCommand=touch%20/tmp/pwned/x",
    "ssh://git@-oProxyCommand=x/repo.git",
    "ssh://host:-p22/repo.git",
    "git@host:-u/repo.git",
    "x@-oProxyCommand=y:repo",
    "https://example.com/-upload-pack=x",
])
async def test_option_like_git_urls_are_refused(api, url):
    code, body = await api.post("projects", "default", "data-sources",
                                body={"name": "repo", "kind": "git", "url": url})
    assert code == 400, body
    assert body["error"]["field"] == "url" and "'-'" in body["error"]["allowed"]


async def test_a_read_only_data_source_says_the_local_cluster_cannot_enforce_it(api, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    code, body = await api.post("projects", "default", "data-sources",
                                body={"name": "ro", "kind": "host_path", "path": str(shared)})
    assert code == 201 and body["read_only"] is True
    await api.submit(name="writer", command="echo x > data/ro/new.txt", data_sources=["ro"])
    done = await api.wait_phase("writer", "Succeeded", "Failed")
    warnings = [e["message"] for e in done["events"] if e["type"] == "Warning"]
    assert any("read-only" in w and "cannot enforce" in w for w in warnings), warnings
