"""The shared service under a real JupyterHub (docs/jupyterhub.md): two users and an admin, each
through their own Jupyter server in client mode, share one scheduler (`runai serve`) that learns
who they are from the hub."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from hub_helpers import Hub, find_chp

pytest.importorskip("jupyterhub", reason="jupyterhub is in the test extra (make install-test)")
pytestmark = [pytest.mark.hub, pytest.mark.timeout(300)]

HOLD = "echo hello from $RUNAI_WORKLOAD; sleep 60"
# one project for the team, held to one of the two GPUs
QUEUES = """
departments:
  - name: research
    deserved: {gpu: 2}
projects:
  - name: team
    department: research
    deserved: {gpu: 1}
    limit: {gpu: 1}
  - name: private
    department: research
    deserved: {gpu: 1}
"""
# the service's own settings: the hub group "team" researches in project team (docs/jupyterhub.md)
# the hub's users have no system accounts here: their workloads run as the service's (tests/test_run_as.py)
SERVICE_CONFIG = {"RunaiApp": {"role_bindings": [{"role": "researcher", "group": "team", "project": "team"}],
                               "run_as": "service"}}


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    chp = find_chp()
    if chp is None:
        pytest.skip("configurable-http-proxy is not installed (make install-test puts it in .venv/chp)")
    hub = Hub(tmp_path_factory.mktemp("hub"), chp, QUEUES, gpus="2x24Gi", service_config=SERVICE_CONFIG)
    try:
        yield hub.start(["alice", "bob", "admin"])
    finally:
        try:
            if hub.tokens.get("admin"):
                for w in hub.user_api("admin", "GET", "workloads")[1].get("workloads", []):
                    hub.user_api("admin", "DELETE", f"workloads/{w['spec']['project']}/{w['spec']['name']}")
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline and hub.user_api("admin", "GET", "workloads")[1].get("workloads"):
                    time.sleep(0.3)
        finally:
            hub.stop()


def wait_for(check, what: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"no {what} after {timeout}s")


def test_each_users_server_forwards_to_one_service_that_knows_them_from_the_hub(hub):
    code, info = hub.user_api("alice", "GET", "info")
    assert code == 200, info
    assert info["mode"] == "client" and info["service"] == {"url": hub.service_url, "name": "runai"}
    assert (info["user"], info["groups"], info["admin"]) == ("alice", ["team"], False)
    code, info = hub.user_api("admin", "GET", "info")
    assert code == 200 and (info["user"], info["groups"], info["admin"]) == ("admin", [], True), info

    # a workload submitted through alice's server is submitted as alice
    code, one = hub.user_api("alice", "POST", "workloads", {"name": "alice-one", "project": "team",
                                                           "resources": {"gpu": 1}, "command": HOLD})
    assert code == 201, one
    assert one["submitted_by"] == "alice"
    # bob's server reaches the same scheduler: it sees alice's workload, and the team's quota holds
    # across their servers (limit 1 GPU: bob's waits although a GPU is idle)
    code, two = hub.user_api("bob", "POST", "workloads", {"name": "bob-two", "project": "team",
                                                         "resources": {"gpu": 1}, "command": HOLD})
    assert code == 201 and two["submitted_by"] == "bob", two
    wait_for(lambda: hub.user_api("bob", "GET", "workloads/team/alice-one")[1]["status"]["phase"] == "Running",
             "alice-one running")
    listed = {w["spec"]["name"]: w for w in hub.user_api("bob", "GET", "workloads")[1]["workloads"]}
    assert set(listed) == {"alice-one", "bob-two"}
    assert listed["bob-two"]["status"]["phase"] == "Pending"
    assert "limit" in (listed["bob-two"]["status"]["pending_reason"] or ""), listed["bob-two"]["status"]
    # (a researcher does not view nodes: the admin looks)
    held = [d for n in hub.user_api("admin", "GET", "nodes")[1]["nodes"] for d in n["devices"] if d["pods"]]
    assert len(held) == 1 and [p["pod"] for p in held[0]["pods"]] == ["team/alice-one-0"], held

    # logs stream through alice's server
    text = wait_for(lambda: (lambda r: r[1] if r[0] == 200 and "hello from alice-one" in r[1] else None)(
        hub.user_api("alice", "GET", "workloads/team/alice-one/logs")), "alice-one's output")
    assert "hello from alice-one" in text

    # the event stream never ends: it arrives event by event, not buffered until the end
    with requests.get(f"{hub.url}user/bob/runai/api/v1/events", params={"since": "0"}, stream=True, timeout=20,
                      headers={"Authorization": f"token {hub.tokens['bob']}"}) as stream:
        assert stream.status_code == 200 and stream.headers["Content-Type"].startswith("text/event-stream")
        seen = ""
        for chunk in stream.iter_content(chunk_size=None):
            seen += chunk.decode()
            if "alice-one" in seen and "bob-two" in seen:
                break
    assert "submitted by alice" in seen and "submitted by bob" in seen

    # the CLI in bob's server (a terminal, a kernel) finds bob's server from the hub's variables
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "RUNAI_"))}
    env.update(JUPYTERHUB_SERVICE_URL=f"{hub.url}user/bob/", JUPYTERHUB_API_TOKEN=hub.tokens["bob"],
               HOME=str(hub.base / "home"))
    listed = subprocess.run([sys.executable, "-m", "jupyter_runai.cli", "list", "-o", "json"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert {w["spec"]["name"] for w in json.loads(listed.stdout)["workloads"]} == {"alice-one", "bob-two"}


def test_each_user_sees_and_touches_only_what_their_roles_allow(hub):
    """Two researchers of project team and the hub's admin, each through their own server: the
    admin's workload in project private is invisible to the researchers (lists, describe, logs, the
    event stream, the proxy) and they cannot stop it; a researcher cannot stop the other's workload;
    the admin sees and manages everything."""
    code, secret = hub.user_api("admin", "POST", "workloads", {
        "name": "admin-secret", "project": "private", "kind": "training",
        "command": "echo secret-output; sleep 600"})
    assert code == 201, secret
    code, mine = hub.user_api("alice", "POST", "workloads", {"name": "alice-cpu", "project": "team",
                                                            "command": "sleep 600"})
    assert code == 201, mine
    wait_for(lambda: hub.user_api("admin", "GET", "workloads/private/admin-secret")[1]["status"]["phase"]
             == "Running", "admin-secret running")
    for user in ("alice", "bob"):
        names = {w["spec"]["name"] for w in hub.user_api(user, "GET", "workloads")[1]["workloads"]}
        assert "admin-secret" not in names and "alice-cpu" in names, (user, names)
        for method, path in (("GET", "workloads/private/admin-secret"),
                             ("GET", "workloads/private/admin-secret/logs"),
                             ("POST", "workloads/private/admin-secret/stop"),
                             ("DELETE", "workloads/private/admin-secret"),
                             ("GET", "workloads?project=private")):
            code, answer = hub.user_api(user, method, path)
            assert code == 403, (user, method, path, answer)
            assert "researcher on project private" in answer["error"]["message"] or \
                "admin on the cluster" in str(answer["error"].get("allowed")), answer
        proxied = requests.get(f"{hub.url}user/{user}/runai/proxy/private/admin-secret/", timeout=20,
                               headers={"Authorization": f"token {hub.tokens[user]}"})
        assert proxied.status_code == 403, (user, proxied.status_code, proxied.text[:300])
        with requests.get(f"{hub.url}user/{user}/runai/api/v1/events", params={"since": "0"}, stream=True,
                          timeout=20, headers={"Authorization": f"token {hub.tokens[user]}"}) as stream:
            seen = ""
            for chunk in stream.iter_content(chunk_size=None):
                seen += chunk.decode()
                if "alice-cpu" in seen:
                    break
        assert "admin-secret" not in seen, user
    # a researcher manages its own workloads, not the other researcher's
    assert hub.user_api("bob", "POST", "workloads/team/alice-cpu/stop")[0] == 403
    assert hub.user_api("alice", "POST", "workloads/team/alice-cpu/stop")[0] == 200
    # the admin sees everything and manages it
    names = {w["spec"]["name"] for w in hub.user_api("admin", "GET", "workloads")[1]["workloads"]}
    assert {"admin-secret", "alice-cpu"} <= names
    assert "secret-output" in wait_for(lambda: (lambda r: r[1] if r[0] == 200 and "secret-output" in r[1] else None)(
        hub.user_api("admin", "GET", "workloads/private/admin-secret/logs")), "admin-secret's output")
    assert hub.user_api("admin", "DELETE", "workloads/private/admin-secret")[0] in (200, 202)


def test_no_request_reaches_the_service_without_a_hub_identity(hub):
    api = hub.service_url + "runai/api/v1/"
    for headers in ({}, {"Authorization": "token not-a-hub-token"},
                    {"Authorization": f"token {hub.ci_token}"}):  # a hub service's token is no user
        assert requests.get(api + "workloads", headers=headers, timeout=10).status_code in (401, 403), headers
        code = requests.post(api + "workloads", json={"name": "sneaky", "command": "true"}, headers=headers,
                             timeout=10).status_code
        assert code in (401, 403), headers
    # through the hub's proxy too, and a user's server without the user's token
    assert requests.get(f"{hub.url}services/runai/runai/api/v1/workloads", timeout=10).status_code in (401, 403)
    assert hub.user_api("alice", "GET", "workloads", token="")[0] in (401, 403)
    assert hub.user_api("alice", "GET", "workloads", token=hub.tokens["bob"])[0] in (401, 403)  # not bob's server
    # the service offers the scheduler only: no files, no kernels of its (possibly root) account
    alice = {"Authorization": f"token {hub.tokens['alice']}"}
    assert requests.get(hub.service_url + "api/contents", headers=alice, timeout=10).status_code == 404
    assert requests.get(hub.service_url + "api/kernels", headers=alice, timeout=10).status_code == 404
    names = [w["spec"]["name"] for w in hub.user_api("admin", "GET", "workloads")[1]["workloads"]]
    assert "sneaky" not in names  # refused means nothing happened


def test_a_browser_logged_in_to_the_hub_reaches_the_service_by_its_oauth_cookie(hub):
    browser = requests.Session()
    page = browser.get(hub.url + "hub/login", timeout=10)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
    assert xsrf, page.text[:500]
    login = browser.post(hub.url + "hub/login", data={"username": "alice", "password": "any", "_xsrf": xsrf[1]},
                         allow_redirects=False, timeout=10)
    assert login.status_code == 302, login.text[:500]
    # a page of the service sends the browser through the hub's OAuth and back with a cookie
    page = browser.get(hub.url + "services/runai/runai/proxy/team/nothing-here/", timeout=30)
    assert page.url.startswith(hub.url + "services/runai/runai/proxy/"), page.url
    assert page.status_code == 404 and "nothing-here" in page.json()["error"]["message"]
    info = browser.get(hub.url + "services/runai/runai/api/v1/info", timeout=10)
    assert info.status_code == 200 and info.json()["user"] == "alice" and info.json()["mode"] == "service"
    # the cookie alone changes nothing: no XSRF token, no change
    refused = browser.post(hub.url + "services/runai/runai/api/v1/workloads", timeout=10,
                           json={"name": "by-cookie", "command": "true"})
    assert refused.status_code == 403
    names = [w["spec"]["name"] for w in hub.user_api("admin", "GET", "workloads")[1]["workloads"]]
    assert "by-cookie" not in names


def test_a_workspace_websocket_and_a_runai_kernel_open_through_the_users_own_server(hub, tmp_path):
    """Client mode for what a notebook user opens: a workspace's WebSocket through alice's server
    (the hub's proxy, her server, the service's proxy), and a runai kernel started in her server,
    whose workload the service takes as hers (docs/jupyterhub.md, "Kernels")."""
    from test_api import ECHO_SERVER
    from tornado.httpclient import HTTPClientError, HTTPRequest
    from tornado.websocket import websocket_connect

    for w in hub.user_api("admin", "GET", "workloads?project=team")[1]["workloads"]:  # the team's GPU, free
        hub.user_api("admin", "DELETE", f"workloads/team/{w['spec']['name']}")
    wait_for(lambda: not hub.user_api("admin", "GET", "workloads?project=team")[1]["workloads"], "team's GPU free")
    app = tmp_path / "echo.py"
    app.write_text(ECHO_SERVER)
    code, body = hub.user_api("alice", "POST", "workloads", {"name": "alice-echo", "project": "team",
                                                            "kind": "workspace", "command": [sys.executable, str(app)]})
    assert code == 201, body
    alice = {"Authorization": f"token {hub.tokens['alice']}"}
    url = hub.url.replace("http", "ws", 1) + "user/alice/runai/proxy/team/alice-echo/ws"

    async def talk() -> str:
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = await websocket_connect(HTTPRequest(url, headers=alice))
                break
            except HTTPClientError as exc:  # 503 until its pod listens
                if exc.code != 503 or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        await conn.write_message("hello")
        answer = await asyncio.wait_for(conn.read_message(), 10)
        conn.close()
        return answer

    assert asyncio.run(talk()) == "echo:hello auth=token "
    assert hub.user_api("alice", "DELETE", "workloads/team/alice-echo")[0] in (200, 202)
    wait_for(lambda: hub.user_api("alice", "GET", "workloads/team/alice-echo")[0] == 404, "alice-echo gone")

    # a runai kernel in alice's server: its workload reaches the service as alice, in her project
    # (the first she may submit to). The repo's kernel spec, in her own Jupyter data directory under
    # a name of its own (a copy installed with an older version of the package may come first)
    kernels = hub.base / "home" / "alice" / ".local" / "share" / "jupyter" / "kernels"
    shutil.copytree(Path(__file__).resolve().parent.parent / "kernels" / "runai-python-gpu-0.5",
                    kernels / "runai-test-gpu-0.5", dirs_exist_ok=True)
    started = requests.post(f"{hub.url}user/alice/api/kernels", json={"name": "runai-test-gpu-0.5"},
                            headers=alice, timeout=120)
    assert started.status_code == 201, started.text[:1000]
    kernel = started.json()["id"]
    name = f"kernel-{kernel[:8]}"
    code, workload = hub.user_api("admin", "GET", f"workloads/team/{name}")
    assert code == 200, workload
    assert workload["submitted_by"] == "alice" and workload["spec"]["kind"] == "workspace"
    assert workload["status"]["phase"] == "Running" and workload["status"]["pods"][0]["fraction"] == 0.5
    assert requests.delete(f"{hub.url}user/alice/api/kernels/{kernel}", headers=alice, timeout=60).status_code == 204
    wait_for(lambda: hub.user_api("admin", "GET", f"workloads/team/{name}")[0] == 404, "the kernel's workload gone")


def test_runai_serve_outside_a_hub_says_what_it_needs(monkeypatch, capsys):
    from jupyter_runai.cli import run

    for name in ("JUPYTERHUB_API_TOKEN", "JUPYTERHUB_SERVICE_URL", "JUPYTERHUB_SERVICE_PREFIX"):
        monkeypatch.delenv(name, raising=False)
    assert run(["serve"])[0] == 2
    said = capsys.readouterr().err
    assert "JUPYTERHUB_SERVICE_URL" in said and "c.JupyterHub.services" in said
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "t")
    monkeypatch.setenv("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10101")
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/services/runai/")
    assert run(["serve", "--no-such-option"])[0] == 2  # refused before anything starts
    assert "unknown argument '--no-such-option'" in capsys.readouterr().err
    assert run(["serve", "--help"])[0] == 0 and "c.JupyterHub.services" in capsys.readouterr().out
