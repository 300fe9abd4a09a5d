"""A root service runs each workload as its submitter's system account (docs/jupyterhub.md, "What runs
where, and as whom"; docs/security.md). Through a real Jupyter server (the pytest-jupyter fixtures) whose
callers are named by their tokens (``rbac_identity.TokenIdentityProvider``), with throwaway system users
made by ``useradd`` and removed at the end. Needs root (as CI runs): skipped otherwise."""

from __future__ import annotations

import json
import os
import pwd
import re
import secrets
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import rbac_identity
from api_helpers import Api, server_config, wait_for
from jupyter_runai.accounts import RunAs
from jupyter_runai.errors import Invalid
from jupyter_runai.identity import User

pytest_plugins = ["pytest_jupyter.jupyter_server"]
pytestmark = pytest.mark.timeout(60)
NEEDS_ROOT = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: only root can run a workload as another account"),
    pytest.mark.skipif(shutil.which("useradd") is None or shutil.which("userdel") is None,
                       reason="needs useradd and userdel to make throwaway system users"),
]


def needs_root(test):
    for mark in NEEDS_ROOT:
        test = mark(test)
    return test

ADMIN = "tok-ada"  # an admin of the hub (rbac_identity.CALLERS): creates credentials, submits nothing


def _throwaway_user(request) -> pwd.struct_passwd:
    """A system user of a unique name with a home of its own (mode 0700), removed when the test ends."""
    name = f"runai-t{secrets.token_hex(4)}"
    home = tempfile.mkdtemp(prefix=f"{name}-home-")
    subprocess.run(["useradd", "-M", "-U", "-d", home, "-s", "/bin/sh", name], check=True, capture_output=True)

    def remove() -> None:
        subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True)
        subprocess.run(["userdel", name], capture_output=True)
        shutil.rmtree(home, ignore_errors=True)

    request.addfinalizer(remove)
    entry = pwd.getpwnam(name)
    os.chown(home, entry.pw_uid, entry.pw_gid)
    os.chmod(home, 0o700)
    return entry


@pytest.fixture
def users(request):
    return _throwaway_user(request), _throwaway_user(request)


@pytest.fixture
def missing() -> str:
    """A hub user without a system account."""
    return f"nobody-{secrets.token_hex(4)}"


@pytest.fixture
def jp_server_config(tmp_path, users, missing, monkeypatch):
    for name in [u.pw_name for u in users] + [missing]:
        monkeypatch.setitem(rbac_identity.CALLERS, f"tok-{name}", User(name))
    config = server_config(tmp_path, role_bindings=[
        {"role": "researcher", "user": name, "project": "default"} for name in [u.pw_name for u in users] + [missing]
    ] + [{"role": "ml-engineer", "user": users[0].pw_name, "project": "default"}])  # alice serves endpoints too
    config["ServerApp"]["identity_provider_class"] = "rbac_identity.TokenIdentityProvider"
    return config


def _as(jp_fetch, token: str) -> Api:
    return Api(lambda *parts, **kw: jp_fetch(*parts, headers={"Authorization": f"token {token}"}, **kw))


def _handle(service, name: str) -> dict:
    uid = service.get("default", name).uid
    return next(h for (u, _), h in service.handles.items() if u == uid)


async def _until(check, what: str, timeout: float = 10):
    """``check()``'s first true value, looked at every 50 ms."""
    async def look():
        return check()

    return await wait_for(look, bool, timeout, what)


def _uids(pid: int) -> list[int]:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return [int(x) for x in line.split()[1:]]
    raise AssertionError(f"no Uid line for pid {pid}")


def _command_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _group(pgid: int) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if int(Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[2]) == pgid:
                    found.append(int(name))
            except (OSError, IndexError):
                pass
    return found


@needs_root
async def test_a_workload_runs_as_its_submitters_account_and_reaches_nothing_of_others(
        jp_fetch, api, service, users, tmp_path, monkeypatch):
    monkeypatch.setenv("RUNAI_TEST_ROOTS_OWN", "not for users")  # the service's environment stays root's
    alice, bob = users
    admin = _as(jp_fetch, ADMIN)
    as_alice, as_bob = _as(jp_fetch, f"tok-{alice.pw_name}"), _as(jp_fetch, f"tok-{bob.pw_name}")
    code, body = await admin.post("projects", "default", "credentials",
                                  body={"name": "key", "inject_as": "file", "data": {"TOKEN": "s3cret"}})
    assert code == 201, body

    code, me = await as_alice.get("access", "me")
    assert code == 200 and me["runs_as"] == {"account": alice.pw_name, "error": None}
    await as_alice.submit(name="holder", command="sleep 30", credentials=["key"])
    await as_alice.wait_phase("holder", "Running")
    held = _handle(service, "holder")
    secret = Path(held["workdir"]) / ".credentials" / "key" / "TOKEN"
    # the pod writes it, as alice, then starts the command: wait for the command's process
    sleeping = await _until(lambda: [pid for pid in _group(int(held["pgid"])) if _command_of(pid) == "sleep"],
                            "the command's process")
    assert all(_uids(pid) == [alice.pw_uid] * 4 for pid in sleeping)  # real, effective, saved, fs
    assert _uids(int(held["pid"]))[0] == 0  # the runner stays root (it records the exit code among root's files)
    meta = Path(held["pod_dir"]) / ".runai"
    assert not (meta / "inputs.json").exists()  # the pod's environment and files: read by the runner, removed
    assert "s3cret" not in (meta / "spec.json").read_text()
    info = secret.stat()
    assert (info.st_uid, stat.S_IMODE(info.st_mode), secret.read_text()) == (alice.pw_uid, 0o600, "s3cret")
    assert Path(held["workdir"]).is_relative_to(alice.pw_dir) and Path(held["workdir"]).stat().st_uid == alice.pw_uid

    state = tmp_path / "state"
    probe = (f'echo "leaked=${{RUNAI_TEST_ROOTS_OWN:-nothing}}"; '
             f'echo "uid=$(id -u) gid=$(id -g) groups=$(id -G) home=$HOME user=$USER logname=$LOGNAME pwd=$PWD"; '
             f'for f in {state}/runai.db {state}/proxy-secret {held["log"]} {secret}; do '
             f'cat "$f" >/dev/null 2>&1 && echo "read $f" || echo "denied $f"; done; '
             f'ls {state} >/dev/null 2>&1 && echo "listed state" || echo "denied state"')
    await as_bob.submit(name="probe", command=probe)
    done = await as_bob.wait_phase("probe", "Succeeded", "Failed")
    log = await as_bob.logs("probe")
    assert done["status"]["phase"] == "Succeeded", (done, log)
    ran = _handle(service, "probe")
    assert f"uid={bob.pw_uid} gid={bob.pw_gid} groups={bob.pw_gid} home={bob.pw_dir} user={bob.pw_name} " \
           f"logname={bob.pw_name} pwd={ran['workdir']}" in log, log
    assert Path(ran["workdir"]).is_relative_to(bob.pw_dir) and Path(ran["workdir"]).stat().st_uid == bob.pw_uid
    assert "leaked=nothing" in log, log
    for path in (state / "runai.db", state / "proxy-secret", held["log"], secret):
        assert f"denied {path}" in log, log
    assert "denied state" in log, log
    # the root runner stamps each line as it arrives, for the account's process too
    stamped = (await as_bob.logs("probe", timestamps="true")).splitlines()
    assert stamped and all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z ", line) for line in stamped), stamped
    assert Path(ran["log"]).stat().st_uid == 0 and stat.S_IMODE(Path(ran["log"]).stat().st_mode) == 0o600

    code, body = await as_alice.post("workloads", "default", "holder", "stop")
    assert code in (200, 202), body
    await as_alice.wait_phase("holder", "Stopped")
    await _until(lambda: not secret.exists(), "the credential file to go")  # removed when the pod ended, as alice


@needs_root
async def test_a_submitter_without_a_system_account_gets_a_400_and_nothing_is_stored(
        jp_fetch, api, service, missing):
    nobody = _as(jp_fetch, f"tok-{missing}")
    code, body = await nobody.post("workloads", body={"name": "never", "command": "id"})
    assert code == 400, body
    assert body["error"]["field"] == "submitted_by" and missing in body["error"]["message"]
    for path in ("info", "access/me"):  # said before anyone tries (runai access me shows it)
        code, answer = await nobody.get(*path.split("/"))
        assert code == 200 and answer["runs_as"]["account"] is None and missing in answer["runs_as"]["error"]
    code, listing = await _as(jp_fetch, ADMIN).get("workloads")
    assert code == 200 and listing["workloads"] == []


@needs_root
@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
async def test_data_sources_resolve_as_the_account_sees_them(jp_fetch, api, service, users):
    alice, _ = users
    hidden = Path(tempfile.mkdtemp(prefix="runai-root-only-"))  # mode 0700, root's
    try:
        repo = Path(alice.pw_dir) / "repo"  # alice's own repository: cloned by alice, into her directory
        git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"]
        subprocess.run([*git, "init", "-q", str(repo)], check=True)
        (repo / "README").write_text("hers\n")
        subprocess.run([*git, "-C", str(repo), "add", "README"], check=True)
        subprocess.run([*git, "-C", str(repo), "commit", "-qm", "one"], check=True)
        subprocess.run(["chown", "-R", f"{alice.pw_uid}:{alice.pw_gid}", str(repo)], check=True)
        admin = _as(jp_fetch, ADMIN)
        code, body = await admin.post("projects", "default", "data-sources",
                                      body={"name": "code", "kind": "git", "url": f"file://{repo}", "target": "code"})
        assert code == 201, body
        code, body = await admin.post(
            "projects", "default", "data-sources", body={"name": "hidden", "kind": "host_path", "path": str(hidden)})
        assert code == 201, body
        as_alice = _as(jp_fetch, f"tok-{alice.pw_name}")
        await as_alice.submit(name="cloner", command="cat code/README", data_sources=["code"])
        done = await as_alice.wait_phase("cloner", "Failed", "Succeeded")
        assert done["status"]["phase"] == "Succeeded", (done["status"], await as_alice.logs("cloner"))
        assert "hers" in await as_alice.logs("cloner")
        clone = Path(_handle(service, "cloner")["workdir"]) / "code" / "README"
        assert clone.stat().st_uid == alice.pw_uid

        # a host path she cannot read: the pod fails, saying so, instead of reading it with root's rights
        await as_alice.submit(name="reader", command=f"ls {hidden}", data_sources=["hidden"])
        done = await as_alice.wait_phase("reader", "Failed", "Succeeded")
        assert done["status"]["phase"] == "Failed"
        assert "permission denied" in done["status"]["message"], done["status"]
    finally:
        shutil.rmtree(hidden, ignore_errors=True)


#: an inference endpoint on $PORT, in the system's Python (the service's may not be the test users' to run)
PORT_SERVER = """
import http.server, json, os
class Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"uid": os.getuid(), "home": os.environ["HOME"],
                           "token": self.headers.get("Authorization") == "token " + os.environ["RUNAI_PROXY_TOKEN"]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Answer).serve_forever()
"""


@needs_root
@pytest.mark.skipif(not os.access("/usr/bin/python3", os.X_OK), reason="needs the system's python3")
async def test_an_endpoint_of_another_account_is_reached_through_the_proxy_on_its_port(jp_fetch, api, service, users):
    alice, _ = users
    as_alice = _as(jp_fetch, f"tok-{alice.pw_name}")
    await as_alice.submit(name="llm", kind="inference", command=["/usr/bin/python3", "-c", PORT_SERVER],
                          min_replicas=1, max_replicas=1)
    await as_alice.wait_phase("llm", "Running")
    handle = _handle(service, "llm")
    assert handle["socket"] is None and handle["via"] == "port"  # no socket in a directory alice could write
    answer = await as_alice.fetch("runai", "proxy", "default", "llm", "predict")
    assert json.loads(answer.body) == {"uid": alice.pw_uid, "home": alice.pw_dir, "token": True}



@needs_root
def test_a_restarted_service_finds_an_accounts_pod_again_and_removes_its_files_as_the_account(users, tmp_path):
    from test_local_cluster import FakeNvml, make_launch, wait_file

    from jupyter_runai.accounts import SystemAccount
    from jupyter_runai.clusters.base import FileToWrite, PodState
    from jupyter_runai.clusters.local import LocalCluster, _alive

    alice, _ = users
    account = SystemAccount.lookup(alice.pw_name)
    state = str(tmp_path / "state")
    first = LocalCluster(state_dir=state, nvml=FakeNvml(count=0))
    ended = make_launch(first, "quick", "exit 3", run_as=account, files=[FileToWrite(".secret/key", b"k")])
    handle = json.loads(json.dumps(first.launch(ended)))  # as the store keeps it
    wait_file(Path(handle["exit_file"]))
    secret = Path(handle["user_files"][0])
    assert secret.stat().st_uid == alice.pw_uid
    del first  # the service "crashes": no poll(), so nothing removed the file yet
    deadline = time.monotonic() + 5  # the runner exits right after writing the record
    while _alive(handle["pid"], handle["start_time"]) and time.monotonic() < deadline:
        time.sleep(0.02)

    second = LocalCluster(state_dir=state, nvml=FakeNvml(count=0))
    report = second.adopt(ended.key, handle)
    assert (report.state, report.exit_code) == (PodState.FAILED, 3)
    assert not secret.exists()  # removed when the restarted service learnt that the pod ended, as alice
    second.close()


# ------------------------------------------------------------------ the mapping on its own (no root needed)

NOBODY = pwd.getpwnam("nobody")


def test_the_mapping_takes_a_format_string_or_a_callable_and_finds_the_accounts_groups():
    by_template = RunAs("submitter", "no{username}", is_root=True).for_user("body")
    by_callable = RunAs("submitter", lambda name: name[::-1], is_root=True).for_user("ydobon")
    assert by_template == by_callable
    assert (by_template.name, by_template.uid, by_template.gid, by_template.home) == \
           ("nobody", NOBODY.pw_uid, NOBODY.pw_gid, NOBODY.pw_dir)
    assert NOBODY.pw_gid in by_template.groups


def test_auto_runs_the_services_own_user_and_everyone_without_root_as_the_service():
    me = pwd.getpwuid(os.geteuid()).pw_name
    assert RunAs("auto", is_root=True).for_user(me) is None  # one machine, no hub: nothing changes
    assert RunAs("auto", is_root=False).for_user("nobody") is None  # without root: the service's account
    assert RunAs("service", is_root=True).for_user("nobody") is None
    assert RunAs("auto", is_root=True).for_user("nobody").uid == NOBODY.pw_uid


def test_an_account_that_cannot_be_used_is_refused_naming_submitted_by():
    for run_as, user in ((RunAs("auto", "{username}-no-such-account", is_root=True), "eve"),
                         (RunAs("auto", lambda name: "root", is_root=True), "eve"),  # another user as root: never
                         (RunAs("auto", lambda name: 1 / 0, is_root=True), "eve")):
        with pytest.raises(Invalid) as refused:
            run_as.for_user(user)
        assert refused.value.field == "submitted_by" and "'eve'" in str(refused.value)


def test_forcing_it_without_root_or_a_bad_template_is_a_configuration_error():
    with pytest.raises(ValueError, match="needs the service to run as root"):
        RunAs("submitter", is_root=False)
    with pytest.raises(ValueError, match="format string"):
        RunAs("auto", "jupyter-{user}")
    with pytest.raises(ValueError, match="run_as must be one of"):
        RunAs("sometimes")


def test_runai_access_me_says_which_account_the_workloads_run_as():
    from jupyter_runai.cli_access import render_me

    def said(runs_as):
        return str(render_me({"user": "alice", "runs_as": runs_as})).splitlines()[-1]

    assert said({"account": "jupyter-alice", "error": None}) == "workloads run as: the system account jupyter-alice"
    assert said({"account": None, "error": None}) == "workloads run as: the service's own account"
    assert said({"account": None, "error": "no account"}) == "workloads run as: none: no account"
