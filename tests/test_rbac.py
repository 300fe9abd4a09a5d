"""RBAC through a real Jupyter server with several identities: every role x every action x in
scope (project cats, department vision) and out of scope (project words, department language).

One server for the module (a ``jupyter server`` process with the extension and a test identity
provider, ``rbac_identity.py``, that maps each token to a caller); roles come from the
configuration (``c.RunaiApp.role_bindings``) and from a grant at runtime. Workloads of the fixture
ask for more GPUs than there are (``queue_anyway``): they stay pending and start no process."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import pytest
import requests

from live_server import LiveServer

pytestmark = pytest.mark.timeout(120)

QUEUES = """\
departments:
  - {name: vision, deserved: {gpu: 1}}
  - {name: language, deserved: {gpu: 1}}
projects:
  - {name: cats, department: vision, deserved: {gpu: 1}}
  - {name: dogs, department: vision, deserved: {gpu: 0}}
  - {name: words, department: language, deserved: {gpu: 1}}
"""

SEEDS = [
    {"role": "department-admin", "user": "dan", "department": "vision"},
    {"role": "ml-engineer", "user": "mel", "project": "cats"},
    {"role": "researcher", "group": "cat-people", "project": "cats"},
]

#: role -> its caller's token (rbac_identity.CALLERS); "none" holds no role
TOKENS = {"admin": "tok-ada", "department-admin": "tok-dan", "ml-engineer": "tok-mel", "researcher": "tok-rae",
          "viewer": "tok-vic", "none": "tok-nob"}
ADMIN = "tok-ada"
IN, OUT = "cats", "words"
#: a workload that never starts: more GPUs than the two virtual ones, queued anyway
PENDING = {"resources": {"gpu": 8}, "queue_anyway": True, "command": "sleep 1"}


class RbacServer(LiveServer):
    def extra_env(self) -> dict[str, str]:
        tests = str(Path(__file__).parent)
        return {"PYTHONPATH": os.pathsep.join(p for p in (tests, os.environ.get("PYTHONPATH", "")) if p)}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    base = tmp_path_factory.mktemp("rbac")
    queues = base / "queues.yaml"
    queues.write_text(QUEUES)
    server = RbacServer(base, {
        "ServerApp": {"identity_provider_class": "rbac_identity.TokenIdentityProvider"},
        # the callers have no system accounts: their workloads run as the server's (tests/test_run_as.py has them)
        "RunaiApp": {"queues_file": str(queues), "role_bindings": SEEDS, "run_as": "service"},
    })
    server.start()
    try:
        code, body = server.api("POST", "access/bindings", {"role": "viewer", "user": "vic", "project": IN},
                                token=ADMIN)
        assert code == 201, body
        for project in (IN, OUT):
            for name, kind in (("others-train", "training"), ("others-ws", "workspace"), ("others-inf", "inference")):
                code, body = server.api("POST", "workloads", {"name": name, "project": project, "kind": kind,
                                                              **PENDING}, token=ADMIN)
                assert code == 201, body
            code, body = server.api("POST", f"projects/{project}/data-sources",
                                    {"name": "ds", "kind": "host_path", "path": str(base)}, token=ADMIN)
            assert code == 201, body
            code, body = server.api("POST", f"projects/{project}/credentials",
                                    {"name": "cred", "inject_as": "env", "data": {"KEY": "secret"}}, token=ADMIN)
            assert code == 201, body
        yield server
    finally:
        server.end_workloads()
        server.stop()


def http(srv: LiveServer, token: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """A request to any path of the server (the API's, the proxy's, the metrics'), as ``token``'s caller."""
    response = requests.request(method, srv.url + path, json=body, timeout=10, stream=path.startswith(
        "runai/api/v1/events"), headers={"Authorization": f"token {token}"})
    try:
        if response.headers.get("Content-Type", "").startswith("application/json"):
            return response.status_code, response.json()
        return response.status_code, None
    finally:
        response.close()


def api(srv: LiveServer, token: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    return http(srv, token, method, "runai/api/v1/" + path, body)


def target(srv: LiveServer, project: str, label: str, kind: str = "training") -> str:
    """A fresh workload of the admin's in ``project`` for an action that changes it."""
    name = label[:50].lower()
    code, body = api(srv, ADMIN, "POST", "workloads", {"name": name, "project": project, "kind": kind, **PENDING})
    assert code == 201, body
    return name


# each action: (what it does, as the caller, in project p; the status when allowed)
Action = Callable[[LiveServer, str, str, str], tuple[int, Any]]
ACTIONS: dict[str, tuple[Action, int]] = {
    "list": (lambda s, t, p, k: api(s, t, "GET", f"workloads?project={p}"), 200),
    "describe": (lambda s, t, p, k: api(s, t, "GET", f"workloads/{p}/others-train"), 200),
    "logs": (lambda s, t, p, k: api(s, t, "GET", f"workloads/{p}/others-train/logs"), 200),
    "events": (lambda s, t, p, k: api(s, t, "GET", f"events?project={p}"), 200),
    "project": (lambda s, t, p, k: api(s, t, "GET", f"projects/{p}"), 200),
    "recent-events": (lambda s, t, p, k: api(s, t, "GET", f"events/recent?project={p}"), 200),
    "workload-usage": (lambda s, t, p, k: api(s, t, "GET", f"usage/workloads?project={p}"), 200),
    "data-sources": (lambda s, t, p, k: api(s, t, "GET", f"projects/{p}/data-sources"), 200),
    "credentials": (lambda s, t, p, k: api(s, t, "GET", f"projects/{p}/credentials/cred"), 200),
    "proxy-inference": (lambda s, t, p, k: http(s, t, "GET", f"runai/proxy/{p}/others-inf/"), 503),
    "submit-training": (lambda s, t, p, k: api(s, t, "POST", "workloads", {
        "name": f"s-{k}", "project": p, "kind": "training", **PENDING}), 201),
    "submit-inference": (lambda s, t, p, k: api(s, t, "POST", "workloads", {
        "name": f"s-{k}", "project": p, "kind": "inference", **PENDING}), 201),
    "stop-others": (lambda s, t, p, k: api(s, t, "POST", f"workloads/{p}/{target(s, p, k)}/stop"), 200),
    "delete-others": (lambda s, t, p, k: api(s, t, "DELETE", f"workloads/{p}/{target(s, p, k)}"), 202),
    "proxy-others-workspace": (lambda s, t, p, k: http(s, t, "GET", f"runai/proxy/{p}/others-ws/"), 503),
    "add-data-source": (lambda s, t, p, k: api(s, t, "POST", f"projects/{p}/data-sources", {
        "name": f"d-{k}"[:63], "kind": "host_path", "path": "/tmp"}), 201),
    "add-credential": (lambda s, t, p, k: api(s, t, "POST", f"projects/{p}/credentials", {
        "name": f"c-{k}"[:63], "inject_as": "env", "data": {"K": "v"}}), 201),
    "change-project": (lambda s, t, p, k: api(s, t, "PATCH", f"projects/{p}", {"over_quota_weight": 2}), 200),
    "grant": (lambda s, t, p, k: api(s, t, "POST", "access/bindings", {
        "role": "viewer", "user": f"zed-{k}", "project": p}), 201),
    # not tied to a project: the same answer in and out of scope
    "nodes": (lambda s, t, p, k: api(s, t, "GET", "nodes"), 200),
    "node-pools": (lambda s, t, p, k: api(s, t, "GET", "node-pools"), 200),
    "device-usage": (lambda s, t, p, k: api(s, t, "GET", "usage/devices"), 200),
    "create-department": (lambda s, t, p, k: api(s, t, "POST", "departments", {"name": f"d-{k}"[:63]}), 201),
    "audit": (lambda s, t, p, k: api(s, t, "GET", "audit"), 200),
}

VIEWERS = {"admin", "department-admin", "ml-engineer", "researcher", "viewer"}
#: who may do each action in scope; out of scope only the admin may, except for the unscoped ones
ALLOWED = {
    **{a: VIEWERS for a in ("list", "describe", "logs", "events", "project", "data-sources", "credentials",
                            "proxy-inference", "recent-events", "workload-usage")},
    "submit-training": {"admin", "department-admin", "researcher"},
    "submit-inference": {"admin", "department-admin", "ml-engineer"},
    "stop-others": {"admin", "department-admin"},
    "delete-others": {"admin", "department-admin"},
    "proxy-others-workspace": {"admin", "department-admin"},
    "add-data-source": {"admin", "department-admin", "ml-engineer", "researcher"},
    "add-credential": {"admin", "department-admin", "ml-engineer", "researcher"},
    "change-project": {"admin", "department-admin"},
    "grant": {"admin", "department-admin"},
    "nodes": {"admin", "department-admin", "ml-engineer", "viewer"},
    "node-pools": {"admin", "department-admin", "ml-engineer", "viewer"},
    "device-usage": {"admin", "department-admin", "ml-engineer", "viewer"},
    "create-department": {"admin"},
    "audit": {"admin"},
}
UNSCOPED = {"nodes", "node-pools", "device-usage", "create-department", "audit"}


@pytest.mark.parametrize("scope", ["in", "out"])
@pytest.mark.parametrize("action", list(ACTIONS))
@pytest.mark.parametrize("role", list(TOKENS))
def test_rbac_matrix(srv, role, action, scope):
    project = IN if scope == "in" else OUT
    allowed = role in ALLOWED[action] and (scope == "in" or role == "admin" or action in UNSCOPED)
    do, status = ACTIONS[action]
    key = f"{role}-{action}-{scope}"
    code, body = do(srv, TOKENS[role], project, key)
    if allowed:
        assert code == status, (code, body)
        return
    assert code == 403, (code, body)
    error = body["error"]
    assert error["message"].startswith(f"{TOKENS[role][4:]} may not "), error  # the caller, then why
    assert error["allowed"] and error["allowed"][-1] == "admin on the cluster", error
    assert error["message"].endswith(error["allowed"][-1])
    if action not in UNSCOPED and action not in ("grant",):
        assert any(project in item or "department" in item for item in error["allowed"]), error
    # a refused change changed nothing
    if action.startswith("submit"):
        assert api(srv, ADMIN, "GET", f"workloads/{project}/s-{key}")[0] == 404
    if action in ("stop-others", "delete-others"):
        code, workload = api(srv, ADMIN, "GET", f"workloads/{project}/{key}")
        assert code == 200 and workload["status"]["phase"] == "Pending"


@pytest.mark.parametrize("role, kind", [("researcher", "training"), ("ml-engineer", "inference"),
                                        ("department-admin", "training")])
def test_own_workloads_are_stopped_resumed_and_deleted_by_their_owner(srv, role, kind):
    token, name = TOKENS[role], f"own-{role}"
    code, body = api(srv, token, "POST", "workloads", {"name": name, "project": IN, "kind": kind, **PENDING})
    assert code == 201 and body["submitted_by"] == token[4:], body
    # a researcher may not stop the ML engineer's workload, nor the reverse
    other = "tok-mel" if role == "researcher" else "tok-rae"
    assert api(srv, other, "POST", f"workloads/{IN}/{name}/stop")[0] == 403
    assert api(srv, token, "POST", f"workloads/{IN}/{name}/stop")[0] == 200
    assert api(srv, token, "POST", f"workloads/{IN}/{name}/resume")[0] == 200
    assert api(srv, token, "DELETE", f"workloads/{IN}/{name}")[0] == 202


def test_lists_show_only_what_the_caller_may_see(srv):
    def projects_of(token: str, path: str, key: str, field: Callable[[dict], str]) -> set[str]:
        code, body = api(srv, token, "GET", path)
        assert code == 200, body
        return {field(item) for item in body[key]}

    in_workload = lambda w: w["spec"]["project"]  # noqa: E731
    assert projects_of(ADMIN, "workloads", "workloads", in_workload) >= {IN, OUT}
    assert projects_of("tok-rae", "workloads", "workloads", in_workload) == {IN}
    assert projects_of("tok-nob", "workloads", "workloads", in_workload) == set()
    assert projects_of("tok-dan", "projects", "projects", lambda p: p["name"]) == {"cats", "dogs"}
    assert projects_of("tok-vic", "projects", "projects", lambda p: p["name"]) == {IN}
    code, departments = api(srv, "tok-mel", "GET", "departments")
    assert code == 200 and departments["departments"] == [{**departments["departments"][0], "projects": [IN]}]
    assert departments["departments"][0]["name"] == "vision"
    # a caller's own roles, and where it may submit; /info's default project is the first of them
    code, me = api(srv, "tok-rae", "GET", "access/me")
    assert code == 200 and me["roles"] == [{"role": "researcher", "scope": "project", "name": IN}]
    assert me["submit_projects"] == [IN] and me["inference_projects"] == [] and me["groups"] == ["cat-people"]
    code, info = api(srv, "tok-mel", "GET", "info")
    assert code == 200 and info["defaults"]["project"] == IN and info["projects"] == [IN]
    assert api(srv, "tok-nob", "GET", "info")[1]["defaults"]["project"] is None
    # role bindings: an admin sees all, the seeded ones without an id; others their own
    code, bindings = api(srv, ADMIN, "GET", "access/bindings")
    seeded = [b for b in bindings["bindings"] if b["source"] == "config"]
    assert len(seeded) == len(SEEDS) and all(b["id"] is None for b in seeded)
    code, bindings = api(srv, "tok-vic", "GET", "access/bindings")
    assert [(b["role"], b["user"], b["project"]) for b in bindings["bindings"]] == [("viewer", "vic", IN)]


def test_metrics_show_only_the_callers_projects(srv):
    response = requests.get(srv.url + "runai/metrics", headers={"Authorization": "token tok-rae"}, timeout=10)
    assert response.status_code == 200
    assert 'project="cats"' in response.text and 'project="words"' not in response.text
    assert "runai_device_allocated_fraction{" not in response.text  # a researcher does not see the nodes
    admin = requests.get(srv.url + "runai/metrics", headers={"Authorization": f"token {ADMIN}"}, timeout=10)
    assert 'project="words"' in admin.text and "runai_device_allocated_fraction{" in admin.text


def test_the_event_stream_replays_only_events_of_visible_projects(srv):
    def replayed(token: str) -> set[str]:
        projects: set[str] = set()
        with requests.get(srv.url + "runai/api/v1/events?since=0", stream=True, timeout=10,
                          headers={"Authorization": f"token {token}"}) as response:
            assert response.status_code == 200
            for line in response.iter_lines(decode_unicode=True):
                if line.startswith(": connected"):
                    break  # the replay is over; live events follow
                if line.startswith("data: "):
                    projects.add(json.loads(line[6:]).get("project"))
        return projects

    assert replayed("tok-rae") == {IN}
    assert replayed(ADMIN) >= {IN, OUT}
    assert replayed("tok-nob") == set()


def test_live_events_and_the_workloads_they_carry_reach_only_who_may_see_them(srv):
    """Each live event carries its workload's view; a researcher's stream gets those of its project
    only. The workload out of scope is submitted first: had its events reached the researcher, they
    would have come before the one in scope that ends the read."""
    import threading

    got: dict[str, list[dict]] = {ADMIN: [], "tok-rae": []}
    connected = {token: threading.Event() for token in got}

    def follow(token: str) -> None:
        with requests.get(srv.url + "runai/api/v1/events", stream=True, timeout=30,
                          headers={"Authorization": f"token {token}"}) as response:
            for line in response.iter_lines(decode_unicode=True):
                if line.startswith(": connected"):
                    connected[token].set()
                if line.startswith("data: "):
                    got[token].append(json.loads(line[6:]))
                    if got[token][-1].get("workload") == "live-in":
                        return

    threads = [threading.Thread(target=follow, args=(token,), daemon=True) for token in got]
    for thread in threads:
        thread.start()
    assert all(event.wait(20) for event in connected.values())
    for name, project in (("live-out", OUT), ("live-in", IN)):
        code, body = api(srv, ADMIN, "POST", "workloads", {"name": name, "project": project, **PENDING})
        assert code == 201, body
    for thread in threads:
        thread.join(30)
    mine = [e for e in got["tok-rae"] if e.get("workload") in ("live-in", "live-out")]
    assert [(e["workload"], e["object"]["spec"]["project"]) for e in mine] == [("live-in", IN)]
    assert {e["object"]["spec"]["name"] for e in got[ADMIN] if e.get("object")} >= {"live-in", "live-out"}
    for name, project in (("live-out", OUT), ("live-in", IN)):
        assert api(srv, ADMIN, "DELETE", f"workloads/{project}/{name}")[0] == 202


def test_a_grant_and_a_revoke_are_audited_and_a_department_admin_grants_only_inside(srv):
    code, made = api(srv, "tok-dan", "POST", "access/bindings", {"role": "researcher", "user": "amy",
                                                                  "department": "vision"})
    assert code == 201 and made["source"] == "store"
    # not admin roles, not outside its departments
    assert api(srv, "tok-dan", "POST", "access/bindings", {"role": "department-admin", "user": "amy",
                                                           "department": "vision"})[0] == 403
    assert api(srv, "tok-dan", "POST", "access/bindings", {"role": "viewer", "user": "amy"})[0] == 403
    # the same again is a conflict; a seeded one cannot be granted or revoked at runtime
    assert api(srv, "tok-dan", "POST", "access/bindings", {"role": "researcher", "user": "amy",
                                                           "department": "vision"})[0] == 409
    assert api(srv, ADMIN, "POST", "access/bindings", SEEDS[0])[0] == 409
    code, body = api(srv, ADMIN, "POST", "access/bindings", {"role": "viewer", "user": "amy", "project": "nope"})
    assert code == 404 and body["error"]["field"] == "project"
    code, body = api(srv, ADMIN, "POST", "access/bindings", {"role": "admin", "user": "amy", "project": IN})
    assert code == 400 and body["error"]["field"] == "role"
    assert api(srv, "tok-rae", "DELETE", f"access/bindings/{made['id']}")[0] == 403
    assert api(srv, "tok-dan", "DELETE", f"access/bindings/{made['id']}")[0] == 200
    assert api(srv, "tok-dan", "DELETE", f"access/bindings/{made['id']}")[0] == 404
    code, audit = api(srv, ADMIN, "GET", "audit?kind=role_binding")
    entries = [(e["user"], e["action"], e["name"]) for e in audit["entries"]]
    assert ("dan", "create", "researcher for user amy on department vision") in entries
    assert ("dan", "delete", "researcher for user amy on department vision") in entries


def test_runai_access_grants_lists_and_revokes(srv, capsys):
    from jupyter_runai.cli import run

    def runai(token: str, *args: str) -> tuple[int, str, str]:
        code, _ = run([*args, "--url", srv.url, "--token", token])
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = runai(ADMIN, "access", "grant", "viewer", "--user", "cli-user", "-p", IN)
    assert code == 0 and "viewer to user cli-user on project cats" in out
    code, out, _ = runai(ADMIN, "-o", "json", "access", "list")
    mine = [b for b in json.loads(out)["bindings"] if b.get("user") == "cli-user"]
    assert code == 0 and [(b["role"], b["project"], b["source"]) for b in mine] == [("viewer", IN, "store")]
    # a researcher may not grant: the server's 403 is shown, exit 1
    code, _, err = runai("tok-rae", "access", "grant", "viewer", "--user", "cli-user", "--department", "vision")
    assert code == 1 and "department-admin on department vision" in err
    code, out, _ = runai("tok-rae", "access")
    assert code == 0 and "researcher on project cats" in out and "may submit to: cats" in out
    # revoked as it was granted; a seeded binding cannot be
    code, out, _ = runai(ADMIN, "access", "revoke", "viewer", "--user", "cli-user", "-p", IN)
    assert code == 0 and f"Revoked (id {mine[0]['id']})" in out
    code, _, err = runai(ADMIN, "access", "revoke", "researcher", "--group", "cat-people", "-p", IN)
    assert code == 2 and "in the configuration" in err
    code, _, err = runai(ADMIN, "access", "grant", "viewer", "--user", "x", "--department", "vision", "-p", IN)
    assert code == 2 and "not both" in err


def test_a_binding_id_that_is_not_an_ascii_number_is_a_400_naming_the_field(srv):
    """"³" passes str.isdigit() but is no number int() reads: it once answered 500 (the API fuzz found it)."""
    for text in ("%C2%B3", "x", "1" * 19):
        code, body = api(srv, ADMIN, "DELETE", f"access/bindings/{text}")
        assert code == 400 and body["error"]["field"] == "id", (text, code, body)


def test_node_views_degrade_for_a_researcher_who_may_not_see_nodes(srv, capsys):
    """A researcher (no view-nodes role) gets `runai top` without the devices, `runai nodes` and the GPU
    widget each saying which roles would show them; an ML engineer still sees the nodes."""
    from jupyter_runai.cli import run
    from jupyter_runai.client import Client
    from jupyter_runai.widgets import GpuView

    def runai(token: str, *args: str) -> tuple[int, str, str]:
        code, _ = run([*args, "--url", srv.url, "--token", token])
        out, err = capsys.readouterr()
        return code, " ".join(out.split()), " ".join(err.split())  # rich wraps long lines

    needs = "Node views (nodes and GPU devices) need the ML engineer, viewer or admin role"
    code, out, _ = runai("tok-rae", "-o", "json", "top", "-A")
    document = json.loads(out)
    assert code == 0 and document["nodes"] is None and needs in document["nodes_refused"]
    assert {w["spec"]["project"] for w in document["workloads"]} == {IN}  # the researcher's project only
    phases = [w["status"]["phase"] for w in document["workloads"]]
    code, out, err = runai("tok-rae", "top", "--once", "-A")
    assert code == 0, err
    assert needs in out and "ml-engineer on any project or department" in out and "admin on the cluster" in out
    assert "others-train" in out  # a colleague's workload in the same project
    assert f"workloads: {phases.count('Running')} running, {phases.count('Pending')} pending" in out
    assert "node(s)" not in out
    code, out, err = runai("tok-rae", "nodes")
    assert code == 1 and needs in err and out == ""
    code, out, _ = runai("tok-mel", "nodes")
    assert code == 0 and "virtual" in out
    code, out, _ = runai("tok-mel", "top", "--once", "-A")
    assert code == 0 and "2 GPU(s) (2 virtual)" in out and needs not in out

    with Client(srv.url, "tok-rae") as client:
        view = GpuView(client, live=False)
        try:
            assert needs in view.message.value and view.table.children == ()
        finally:
            view.close()
    with Client(srv.url, "tok-mel") as client:
        view = GpuView(client, live=False)
        try:
            assert len(view.table.children) == 2 and needs not in view.message.value
        finally:
            view.close()
