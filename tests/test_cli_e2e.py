"""End to end: a real Jupyter server with the extension (local cluster, virtual GPUs), driven by `runai`.

The server runs as a subprocess with HOME, the Jupyter directories and the
runai state in a temporary directory; `runai` runs as a subprocess (finding the
server from the runtime directory, as a user's shell would) and in process
(``cli.main``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from jupyter_runai import cli
from jupyter_runai.client import RunaiClient, RunaiError
from live_server import TOKEN, LiveServer

pytestmark = pytest.mark.timeout(300)

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A running Jupyter server with jupyter_runai; yields a dict of its URL, token, dirs and env."""
    live = LiveServer(tmp_path_factory.mktemp("e2e"), {
        "LocalCluster": {"virtual_gpus": "2x24Gi", "stop_grace_seconds": 3},
        "RunaiApp": {"stop_grace_seconds": 3, "interval": 0.2},
    }).start()
    try:
        yield {"url": live.url, "token": live.token, "env": live.env, "proc": live.proc, "log": live.log_path,
               **live.dirs}
    finally:
        live.stop()


def runai(server, *argv: str, cwd: Path | None = None, stdin=subprocess.DEVNULL, timeout: float = 90,
          raw: bool = False):
    """Run `runai ARGV` as a user would: no --url, the server found from the runtime dir. ``raw``:
    stdout and stderr as printed, each \r kept (text mode would turn it into a newline)."""
    done = subprocess.run(
        [sys.executable, "-m", "jupyter_runai.cli", *argv],
        env=server["env"], cwd=cwd or server["root"], stdin=stdin, capture_output=True, text=not raw, timeout=timeout,
    )
    if raw:
        done.stdout, done.stderr = done.stdout.decode(), done.stderr.decode()
    return done


def client(server) -> RunaiClient:
    return RunaiClient(server["url"], server["token"])


def wait_for(predicate, timeout: float = 45, interval: float = 0.3, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def phase(server, name: str) -> str | None:
    try:
        return client(server).get(name)["status"]["phase"]
    except RunaiError as error:
        if error.status == 404:
            return None
        raise


def test_runai_finds_the_server_from_the_runtime_dir(server):
    done = runai(server, "-o", "json", "list")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"workloads": []} or "workloads" in json.loads(done.stdout)
    info = client(server).info()
    assert isinstance(info, dict)
    # the same from a subdirectory of the server's root, with `runai` in process
    sub = server["root"] / "project"
    sub.mkdir(exist_ok=True)
    env_before = dict(os.environ)
    cwd_before = os.getcwd()
    try:
        os.environ.update(JUPYTER_RUNTIME_DIR=str(server["runtime"]))
        for key in ("RUNAI_URL", "RUNAI_TOKEN", "JUPYTERHUB_SERVICE_URL", "JUPYTERHUB_SERVICE_PREFIX"):
            os.environ.pop(key, None)
        os.chdir(sub)
        assert cli.main(["projects"]) == 0
    finally:
        os.chdir(cwd_before)
        os.environ.clear()
        os.environ.update(env_before)


# What a command may import: the heavy packages (seconds of start-up) only where a command needs them.
HEAVY = ("jupyter_server", "jupyter_server.serverapp", "kubernetes", "pydantic", "jupyter_runai.models", "tornado",
         "shtab")
IMPORTS_PROBE = """
import json, sys
from jupyter_runai import cli
code = cli.main(sys.argv[1:])
sys.stdout.flush()
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def imports_of(server, *argv: str) -> tuple[int, set[str], str]:
    """Run `runai ARGV` in a fresh interpreter (the server found from the runtime dir) and return its exit
    code, the modules it had imported when it finished, and its output."""
    done = subprocess.run([sys.executable, "-c", IMPORTS_PROBE, *argv], env=server["env"], cwd=server["root"],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=90)
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return report["code"], set(report["modules"]), done.stdout


def test_list_finds_the_server_without_importing_heavy_packages(server):
    code, modules, out = imports_of(server, "list")
    assert code == 0, out
    assert "No workloads" in out or "NAME" in out
    assert not [name for name in HEAVY if name in modules], "runai list imported heavy packages"
    # -o json prints the API's document without drawing anything
    code, modules, out = imports_of(server, "-o", "json", "list")
    assert code == 0 and "workloads" in json.loads(out)
    assert not [name for name in (*HEAVY, "rich") if name in modules]
    # submit validates with the models before sending: they are imported there, and it works
    code, modules, out = imports_of(server, "-o", "json", "submit", "imports-probe", "--", sys.executable, "-c", "pass")
    assert code == 0, out
    assert "jupyter_runai.models" in modules and "jupyter_server.serverapp" not in modules
    assert runai(server, "delete", "imports-probe", "-y").returncode == 0


def test_submit_list_logs_stop_resume_delete(server):
    name = "e2e-job"
    program = ("import os, time\n"
               "print(os.environ['GREETING'], 'from runai', flush=True)\n"
               "time.sleep(300)\n")
    done = runai(server, "submit", name, "-g", "0.5", "-e", "GREETING=hello", "--wait", "--wait-timeout", "60",
                 "--", sys.executable, "-c", program)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Running" in done.stdout

    # list: one line, the GPU request as people say it
    listed = runai(server, "list")
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.startswith(name))
    assert "default" in row and "training" in row and "0.5 GPU" in row and "Running" in row

    # -o json is the API's document, unchanged
    api = requests.get(server["url"] + "runai/api/v1/workloads",
                       headers={"Authorization": f"token {TOKEN}"}, timeout=10).json()
    as_json = json.loads(runai(server, "-o", "json", "list").stdout)
    assert [w["spec"]["name"] for w in as_json["workloads"]] == [w["spec"]["name"] for w in api["workloads"]]
    assert as_json["workloads"][0]["spec"] == api["workloads"][0]["spec"]

    # logs: what the command printed, with the environment variable from -e
    wait_for(lambda: "hello from runai" in runai(server, "logs", name).stdout, what="the log line")
    tail = runai(server, "logs", name, "--tail", "1")
    assert tail.returncode == 0 and tail.stdout.strip().endswith("hello from runai")
    stamped = runai(server, "logs", name, "--timestamps", "--since", "1h")
    assert re.search(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z hello from runai$", stamped.stdout, re.M), stamped

    # describe and nodes show where it runs
    described = runai(server, "describe", name)
    assert described.returncode == 0, described.stderr
    assert f"{name}-0" in described.stdout and "Running" in described.stdout and "0.5" in described.stdout
    assert "GREETING=hello" in described.stdout and "Events" in described.stdout
    nodes = runai(server, "nodes")
    assert nodes.returncode == 0 and "(virtual)" in nodes.stdout and f"default/{name}-0 (0.5)" in nodes.stdout
    projects = runai(server, "projects")
    assert projects.returncode == 0 and "default" in projects.stdout

    # a second live workload with the same name: a server error (exit 1) on stderr
    again = runai(server, "submit", name, "-g", "0.5", "--", sys.executable, "-c", "pass")
    assert again.returncode == 1
    assert "error:" in again.stderr and name in again.stderr

    # stop: it stays, Stopped; resume puts it back
    stopped = runai(server, "stop", name)
    assert stopped.returncode == 0, stopped.stderr
    wait_for(lambda: phase(server, name) == "Stopped", what="Stopped")
    resumed = runai(server, "resume", name)
    assert resumed.returncode == 0, resumed.stderr
    wait_for(lambda: phase(server, name) in ("Pending", "Running"), what="back in the queue")

    # delete asks; without a terminal it needs -y
    refused = runai(server, "delete", name)
    assert refused.returncode == 2 and "-y" in refused.stderr
    deleted = runai(server, "-o", "json", "delete", name, "-y")
    assert deleted.returncode == 0, deleted.stderr
    assert json.loads(deleted.stdout)["spec"]["name"] == name
    wait_for(lambda: phase(server, name) is None, what="the workload to be removed")
    gone = runai(server, "describe", name)
    assert gone.returncode == 1 and name in gone.stderr


def test_logs_follow_until_the_pod_ends(server):
    name = "e2e-follow"
    program = "import time\nfor i in range(3):\n    print('line', i, flush=True)\n    time.sleep(0.5)\n"
    done = runai(server, "submit", name, "--wait", "--wait-timeout", "60", "--", sys.executable, "-c", program)
    assert done.returncode == 0, done.stdout + done.stderr
    followed = runai(server, "logs", name, "-f", timeout=60)
    assert followed.returncode == 0, followed.stderr
    assert all(f"line {i}" in followed.stdout for i in range(3))
    wait_for(lambda: phase(server, name) == "Succeeded", what="Succeeded")
    assert runai(server, "delete", name, "-y").returncode == 0


def test_logs_with_timestamps_keep_a_progress_bars_time_after_each_carriage_return(server):
    # in a terminal or a notebook a \r goes back over the line's time: the CLI repeats it there
    name = "e2e-bar"
    program = ("import sys, time\nfor i in (10, 50, 100):\n    sys.stdout.write(f'\\r{i:3d}%'); sys.stdout.flush()\n"
               "    time.sleep(0.2)\nprint()\nprint('done')\n")
    done = runai(server, "submit", name, "--wait", "--wait-timeout", "60", "--", sys.executable, "-c", program)
    assert done.returncode == 0, done.stdout + done.stderr
    wait_for(lambda: phase(server, name) == "Succeeded", what="Succeeded")
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z "
    for argv in (("--timestamps",), ("--timestamps", "-f")):
        out = runai(server, "logs", name, *argv, raw=True).stdout
        bar, last = out.split("\n")[:2]
        first = bar[:31]
        assert re.fullmatch(stamp, first), out
        assert bar == f"{first}\r{first} 10%\r{first} 50%\r{first}100%", out
        assert re.fullmatch(stamp + "done", last), out
    # without times the log is as the pod wrote it
    assert runai(server, "logs", name, raw=True).stdout == "\r 10%\r 50%\r100%\ndone\n"
    assert runai(server, "delete", name, "-y").returncode == 0


def test_attach_follows_the_log_until_the_workload_ends(server):
    """v1's `runai submit --attach`: waits until it runs, prints its log as it comes, then its
    final phase; the exit code says whether it succeeded."""
    program = "import time\nfor i in range(3):\n    print('attached', i, flush=True)\n    time.sleep(0.3)\n"
    done = runai(server, "submit", "e2e-attach", "--attach", "--", sys.executable, "-c", program)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert [line for line in lines if line.startswith("attached")] == ["attached 0", "attached 1", "attached 2"]
    assert lines[-1] == "e2e-attach: Succeeded" and phase(server, "e2e-attach") == "Succeeded"
    failed = runai(server, "training", "submit", "e2e-attach-fails", "--attach", "--", "sh", "-c", "echo bye; exit 3")
    assert failed.returncode == 1 and "bye" in failed.stdout
    assert "e2e-attach-fails: Failed" in failed.stdout and "exited with code 3" in failed.stdout
    # a document for scripts and a log do not mix: refused, and nothing is submitted
    refused = runai(server, "-o", "json", "submit", "e2e-attach-json", "--attach", "--", "true")
    assert refused.returncode == 2 and "--attach" in refused.stderr and phase(server, "e2e-attach-json") is None
    for name in ("e2e-attach", "e2e-attach-fails"):
        assert runai(server, "delete", name, "-y").returncode == 0


def test_ctrl_c_detaches_and_leaves_the_workload_running(server):
    import signal

    program = "import time\nprint('started', flush=True)\ntime.sleep(120)\n"
    proc = subprocess.Popen([sys.executable, "-m", "jupyter_runai.cli", "submit", "e2e-detach", "--attach", "--",
                             sys.executable, "-c", program], env=server["env"], cwd=server["root"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        seen = []
        while "started\n" not in seen:  # its log reached us: it is attached
            line = proc.stdout.readline()
            assert line, f"runai ended before the log came: {seen} {proc.stderr.read()}"
            seen.append(line)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 130 and "runai logs e2e-detach -p default -f" in err
    assert phase(server, "e2e-detach") == "Running"
    assert runai(server, "delete", "e2e-detach", "-y").returncode == 0


def test_server_errors_and_auth(server):
    bad = runai(server, "--url", server["url"], "--token", "wrong", "list")
    assert bad.returncode == 1 and "--token" in bad.stderr
    missing = runai(server, "describe", "no-such-workload")
    assert missing.returncode == 1 and "no-such-workload" in missing.stderr
    # a local usage error never reaches the server
    usage = runai(server, "submit", "x", "--gpu", "1.5")
    assert usage.returncode == 2 and "resources.gpu" in usage.stderr
    # and the client's exception carries the server's fields
    with pytest.raises(RunaiError) as err:
        client(server).submit({"name": "x", "resources": {"gpu": 1.5}, "command": "true"})
    assert err.value.status == 400 and err.value.field == "resources.gpu"


@pytest.mark.timeout(60)
def test_events_stream(server):
    name = "e2e-events"
    c = client(server)
    stream = c.events(workload=name)
    c.submit({"name": name, "command": [sys.executable, "-c", "pass"]})
    seen = []
    for event in stream:
        seen.append(event)
        if event.get("type") in ("Succeeded", "Failed"):
            break
    assert seen[0]["type"] == "Submitted" and seen[0]["workload"] == name
    assert all("id" in event for event in seen)
    c.delete(name)


def test_shell_command_string(server):
    name = "e2e-shell"
    done = runai(server, "submit", name, "--wait", "--", "echo shell-$((40 + 2))")
    assert done.returncode == 0, done.stdout + done.stderr
    wait_for(lambda: "shell-42" in runai(server, "logs", name, "-f").stdout, what="the shell's output")
    assert runai(server, "delete", name, "-y").returncode == 0


def test_data_sources_and_credentials(server, tmp_path):
    data = tmp_path / "data[set]"  # brackets: shown as they are, not read as rich markup
    data.mkdir()
    (data / "labels.txt").write_text("cat\ndog\n")
    done = runai(server, "data-source", "add", "labels", "--host-path", str(data))
    assert done.returncode == 0, done.stderr
    listed = runai(server, "data-source", "list")
    assert "labels" in listed.stdout and "read-only" in listed.stdout and "data/labels" in listed.stdout
    assert "data[set]" in listed.stdout

    env = {**server["env"], "API_KEY": "very-secret-key"}
    added = subprocess.run([sys.executable, "-m", "jupyter_runai.cli", "credential", "add", "api", "--env", "API_KEY"],
                           env=env, cwd=server["root"], capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL)
    assert added.returncode == 0, added.stderr
    assert "very-secret-key" not in added.stdout
    shown = runai(server, "-o", "json", "credential", "list")
    assert json.loads(shown.stdout)["credentials"][0]["keys"] == ["API_KEY"]
    assert "very-secret-key" not in shown.stdout
    missing = runai(server, "credential", "add", "other", "--env", "NOT_SET_ANYWHERE")
    assert missing.returncode == 2 and "NOT_SET_ANYWHERE" in missing.stderr

    done = runai(server, "submit", "reads-data", "--data-source", "labels", "--credential", "api", "--wait",
                 "--wait-timeout", "60", "--", "sh", "-c", "cat data/labels/labels.txt; echo key-length=${#API_KEY}")
    assert done.returncode == 0, done.stdout + done.stderr
    wait_for(lambda: phase(server, "reads-data") == "Succeeded", what="reads-data to succeed")
    text = runai(server, "logs", "reads-data").stdout
    assert "cat\ndog" in text and "key-length=15" in text

    unknown = runai(server, "submit", "x", "--data-source", "nope", "--", "true")
    assert unknown.returncode == 1 and "data_sources.0" in unknown.stderr
    assert runai(server, "data-source", "delete", "labels").returncode == 0
    assert runai(server, "credential", "delete", "api").returncode == 0
    assert "no data sources" in runai(server, "data-source", "list").stdout


def test_administration_and_the_audit_log(server):
    """`runai departments|projects|nodepools create|update|delete|list` and `runai audit` against the
    running server: each change shows at once, and the audit log says who did what."""
    def ok(*argv: str) -> str:
        done = runai(server, *argv)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    assert "Department cli-dept created" in ok("departments", "create", "cli-dept", "--gpu", "1")
    ok("nodepools", "create", "cli-pool", "--label", "cli/pool=yes", "--gpu-placement", "spread")
    ok("projects", "create", "cli-proj", "--department", "cli-dept", "--gpu", "1", "--limit-gpu", "2")
    assert "Project cli-proj updated" in ok("projects", "update", "cli-proj", "--weight", "3",
                                            "--set", "node_pools.cli-pool.deserved.gpu=0.5")
    listed = ok("projects").splitlines()
    row = next(i for i, line in enumerate(listed) if line.startswith("cli-proj"))
    assert listed[row].split()[:2] == ["cli-proj", "cli-dept"] and listed[row].split()[-2:] == ["2", "3"]
    assert listed[row + 1].split()[:3] == ["pool", "cli-pool", "0.5"]
    assert any(line.split()[:2] == ["cli-dept", "cli-proj"] for line in ok("departments").splitlines())
    pools = ok("nodepools")
    assert "cli-pool" in pools and "cli/pool=yes" in pools and "spread" in pools
    as_json = json.loads(ok("-o", "json", "projects"))
    mine = next(p for p in as_json["projects"] if p["name"] == "cli-proj")
    assert mine["over_quota_weight"] == 3 and mine["limit"]["gpu"] == 2

    # refused, with the field and exit 1: the department has a project; the pool has a quota
    refused = runai(server, "departments", "delete", "cli-dept", "-y")
    assert refused.returncode == 1 and "cli-proj" in refused.stderr
    refused = runai(server, "projects", "update", "cli-proj", "--limit-gpu", "0.5")
    assert refused.returncode == 1 and "limit.gpu" in refused.stderr
    refused = runai(server, "nodepools", "delete", "cli-pool", "-y")
    assert refused.returncode == 1 and "project cli-proj" in refused.stderr

    ok("projects", "delete", "cli-proj", "-y")
    ok("departments", "delete", "cli-dept", "-y")
    ok("nodepools", "delete", "cli-pool", "-y")
    assert "cli-proj" not in ok("projects")

    log = ok("audit").splitlines()
    mine = [line for line in log if "cli-" in line and line[:4].isdigit()]  # rows, not wrapped lines
    assert [line.split()[3:5] for line in mine] == [
        ["create", "department"], ["create", "node"], ["create", "project"], ["update", "project"],
        ["delete", "project"], ["delete", "department"], ["delete", "node"]]
    assert "over_quota_weight 1 -> 3" in mine[3] and "node_pools.cli-pool added" in mine[3]
    entries = json.loads(ok("-o", "json", "audit", "--kind", "project", "--name", "cli-proj"))["entries"]
    assert [e["action"] for e in entries] == ["create", "update", "delete"]
    assert entries[1]["before"]["over_quota_weight"] == 1 and entries[1]["after"]["over_quota_weight"] == 3

def test_policy_set_effective_refusal_and_delete(server):
    """`runai policy set|effective|list|delete` against the running server: a submission breaking the
    policy is refused with every rule and what it allows (exit 1); the changes are in the audit log."""
    def ok(*argv: str) -> str:
        done = runai(server, *argv)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    assert "set" in ok("policy", "set", "cluster", "--kind", "training", "--default", "resources.cpu=250m",
                       "--rule", "resources.gpu.max=1", "--rule", "image.allowed=base:1,base:2")
    looser = runai(server, "policy", "set", "project", "default", "--kind", "training", "--rule", "resources.gpu.max=2")
    assert looser.returncode == 1 and "rules.resources.gpu.max" in looser.stderr and "may only tighten" in looser.stderr
    shown = ok("policy", "effective", "training")
    assert "resources.gpu" in shown and "max 1" in shown and "one of base:1, base:2" in shown and "250m" in shown
    effective = json.loads(ok("-o", "json", "policy", "effective", "training"))
    assert effective["defaults"] == {"resources.cpu": "250m"} and effective["form"]["bounds"]["gpu"]["max"] == 1
    try:
        refused = runai(server, "submit", "too-big", "-g", "2", "-i", "mine:1", "--", "python", "-c", "pass")
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "resources.gpu: 2 is above 1" in refused.stderr and "image: mine:1 is not allowed" in refused.stderr
        assert "allowed: base:1, base:2" in refused.stderr  # the second rule broken says what it allows too
        made = json.loads(ok("-o", "json", "submit", "fits", "-g", "1", "-i", "base:1", "--", "python", "-c", "pass"))
        assert made["spec"]["resources"]["cpu"] == "250m"  # the policy's default
        assert "cluster" in ok("policy") and "resources.gpu" in ok("policy", "list", "--kind", "training")
        ok("delete", "fits", "-y")
    finally:
        ok("policy", "delete", "cluster", "--kind", "training", "-y")
    assert "No policies" in ok("policy")
    entries = json.loads(ok("-o", "json", "audit", "--kind", "policy"))["entries"]
    assert [(e["action"], e["name"]) for e in entries] == [("create", "cluster/training"),
                                                           ("delete", "cluster/training")]


def test_runai_v2_command_tree_end_to_end(server):
    """A Run:ai user's habitual commands, against the real server."""
    sleeper = [sys.executable, "-c", "import time; time.sleep(300)"]
    done = runai(server, "workspace", "submit", "v2-nb", "--gpu-portion-request", "0.5", "-i", "jupyter/base",
                 "--cpu-core-request", "0.1", "--", *sleeper)
    assert done.returncode == 0, done.stdout + done.stderr
    done = runai(server, "training", "submit", "v2-train", "--gpu-devices-request", "1", "--", *sleeper)
    assert done.returncode == 0, done.stdout + done.stderr
    spec = client(server).get("v2-nb")["spec"]
    assert (spec["kind"], spec["resources"]["gpu"], spec["image"]) == ("workspace", 0.5, "jupyter/base")
    assert client(server).get("v2-train")["spec"]["resources"]["gpu"] == 1

    names = lambda *argv: {w["spec"]["name"] for w in json.loads(runai(server, *argv, "-o", "json").stdout)["workloads"]}  # noqa: E731
    assert {"v2-nb"} <= names("workspace", "list") and "v2-train" not in names("workspace", "list")
    assert {"v2-train"} <= names("training", "list") and "v2-nb" not in names("training", "list")
    assert {"v2-nb", "v2-train"} <= names("workload", "list")

    assert runai(server, "workspace", "suspend", "v2-nb").returncode == 0
    wait_for(lambda: phase(server, "v2-nb") == "Stopped", what="Stopped")
    assert runai(server, "workspace", "resume", "v2-nb").returncode == 0
    wait_for(lambda: phase(server, "v2-nb") in ("Pending", "Running"), what="back in the queue")
    described = runai(server, "workspace", "describe", "v2-nb")
    assert described.returncode == 0 and "workspace" in described.stdout
    for group, name in (("workspace", "v2-nb"), ("training", "v2-train")):
        assert runai(server, group, "delete", name, "-y").returncode == 0
    wait_for(lambda: phase(server, "v2-nb") is None and phase(server, "v2-train") is None, what="removed")


def test_list_refuses_a_filter_typo_naming_the_allowed_values(server):
    for argv, allowed in ((("list", "--phase", "Runing"), "Running"), (("workload", "list", "--type", "trainig"),
                                                                          "training")):
        done = runai(server, *argv)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "No workloads" not in done.stdout
        assert "error:" in done.stderr and allowed in done.stderr, done.stderr
    assert runai(server, "list", "--phase", "running").returncode == 0


def test_every_output_format_of_every_listing_command(server):
    import yaml

    done = runai(server, "submit", "fmt-job", "-g", "0.5", "--priority-class", "train", "--",
                 sys.executable, "-c", "import time; time.sleep(300)")
    assert done.returncode == 0, done.stderr
    wait_for(lambda: phase(server, "fmt-job") == "Running", what="Running")
    try:
        for argv in (("list",), ("workload", "list"), ("describe", "fmt-job"), ("nodes",), ("projects",),
                     ("data-source", "list"), ("credential", "list")):
            as_json = runai(server, *argv, "-o", "json")
            as_yaml = runai(server, *argv, "-o", "yaml")
            assert as_json.returncode == 0 and as_yaml.returncode == 0, (argv, as_json.stderr, as_yaml.stderr)
            document = json.loads(as_json.stdout)
            if argv[0] != "describe":  # describe carries the latest events, which may have grown meanwhile
                assert yaml.safe_load(as_yaml.stdout) == document, argv
            else:
                assert yaml.safe_load(as_yaml.stdout)["spec"] == document["spec"]
            for table in ("table", "wide"):
                drawn = runai(server, *argv, "-o", table)
                assert drawn.returncode == 0 and drawn.stdout.strip(), (argv, table, drawn.stderr)
        table = runai(server, "list", "-o", "table").stdout
        wide = runai(server, "list", "-o", "wide").stdout
        assert "PRIORITY" not in table and "NODES" not in table
        header = next(line for line in wide.splitlines() if line.startswith("NAME"))
        assert all(column in header for column in ("PODS", "NODES", "PRIORITY", "PREEMPTIBLE", "SUBMITTED BY"))
        row = next(line for line in wide.splitlines() if line.startswith("fmt-job"))
        assert "1/1" in row and "train" in row and "yes" in row
        assert runai(server, "list", "-o", "xml").returncode == 2
    finally:
        runai(server, "delete", "fmt-job", "-y")
        wait_for(lambda: phase(server, "fmt-job") is None, what="removed")


def test_config_project_saves_only_a_project_the_server_has(server):
    saved = server["config"] / "runai_cli.json"
    refused = runai(server, "config", "project", "no-such-team")
    assert refused.returncode == 1 and "no-such-team" in refused.stderr and "default" in refused.stderr
    assert not saved.exists()  # refused: nothing saved
    try:
        done = runai(server, "config", "project", "default")
        assert done.returncode == 0, done.stderr
        assert json.loads(saved.read_text()) == {"project": "default"}
        shown = runai(server, "config", "project")
        assert shown.returncode == 0 and shown.stdout.startswith("default (from ") and str(saved) in shown.stdout
        assert json.loads(runai(server, "config", "project", "-o", "json").stdout)["project"] == "default"
    finally:
        assert runai(server, "config", "project", "--unset").returncode == 0
    assert json.loads(saved.read_text()) == {}



def test_submit_from_a_file_round_trips_describe(server, tmp_path):
    spec_file = tmp_path / "job.yaml"
    spec_file.write_text(f"name: file-job\nresources:\n  gpu: 0.25\nenvironment:\n  GREETING: hi\n"
                         f"command: [{json.dumps(sys.executable)}, -c, 'import time; time.sleep(300)']\n")
    done = runai(server, "submit", "-f", str(spec_file))
    assert done.returncode == 0, done.stdout + done.stderr
    described = runai(server, "describe", "file-job", "-o", "yaml")
    assert described.returncode == 0
    first = client(server).get("file-job")["spec"]
    assert first["resources"]["gpu"] == 0.25 and first["environment"] == {"GREETING": "hi"}
    # what describe prints is a file submit takes back: the same spec under another name
    (tmp_path / "again.yaml").write_text(described.stdout)
    again = runai(server, "submit", "file-job-2", "-f", str(tmp_path / "again.yaml"))
    assert again.returncode == 0, again.stdout + again.stderr
    second = client(server).get("file-job-2")["spec"]
    assert {**second, "name": "file-job"} == first
    for name in ("file-job", "file-job-2"):
        assert runai(server, "delete", name, "-y").returncode == 0
    wait_for(lambda: phase(server, "file-job") is None and phase(server, "file-job-2") is None, what="removed")


def test_wait_follows_the_event_stream_and_keeps_its_deadline(server):
    """`runai submit --wait` (RunaiClient.wait) sees the change when its event comes: with polling
    turned out of reach (one poll an hour) it still returns once the workload runs."""
    c = client(server)
    c.submit({"name": "waited", "command": [sys.executable, "-c", "import time; time.sleep(300)"],
              "resources": {"gpu": 0.25}})
    seen = []
    try:
        workload = c.wait("waited", until=lambda w: w["status"]["phase"] == "Running", interval=3600,
                          on_update=lambda w: seen.append(w["status"]["phase"]))
        assert workload["status"]["phase"] == "Running" and seen[-1] == "Running"
        # a condition never met: TimeoutError at the deadline, although no event comes and the
        # server's keep-alives are further apart than the deadline
        with pytest.raises(TimeoutError, match="waited"):
            c.wait("waited", until=lambda w: False, timeout=1, interval=3600)
    finally:
        c.delete("waited")
        wait_for(lambda: phase(server, "waited") is None, what="removed")


def test_report_shows_gpu_hours_as_csv_json_and_table(server):
    import csv
    import io

    done = runai(server, "submit", "acct-job", "-g", "1", "--wait", "--wait-timeout", "60", "--",
                 sys.executable, "-c", "pass")
    assert done.returncode == 0, done.stderr
    as_csv = runai(server, "report", "--by", "workload", "-o", "csv")
    assert as_csv.returncode == 0, as_csv.stderr
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert list(rows[0]) == ["day", "project", "workload", "gpu_hours_allocated", "gpu_hours_used",
                             "gpu_hours_measured"]
    mine = [r for r in rows if r["workload"] == "acct-job"]
    assert len(mine) == 1 and mine[0]["project"] == "default"
    assert mine[0]["gpu_hours_used"] == ""  # virtual GPUs: not measured, an empty cell rather than 0
    as_json = json.loads(runai(server, "report", "--by", "workload", "-o", "json").stdout)
    assert as_json["by"] == "workload" and any(r["workload"] == "acct-job" for r in as_json["rows"])
    table = runai(server, "report", "--by", "workload")
    assert table.returncode == 0 and "acct-job" in table.stdout and "ALLOCATED" in table.stdout
    total = list(csv.DictReader(io.StringIO(runai(server, "report", "--by", "workload", "--per", "total",
                                                   "-o", "csv").stdout)))
    assert "day" not in total[0] and any(r["workload"] == "acct-job" for r in total)
    bad = runai(server, "report", "--from", "June")
    assert bad.returncode == 1 and "from" in bad.stderr and "YYYY-MM-DD" in bad.stderr
    assert runai(server, "report", "--by", "pod").returncode == 2
    assert runai(server, "list", "-o", "csv").returncode == 2  # csv is the report's
    runai(server, "delete", "acct-job", "-y")


def test_events_lists_filters_and_follows(server):
    done = runai(server, "submit", "ev-job", "-g", "1", "--wait", "--wait-timeout", "60", "--",
                 sys.executable, "-c", "pass")
    assert done.returncode == 0, done.stderr
    wait_for(lambda: phase(server, "ev-job") == "Succeeded", what="Succeeded")
    listed = runai(server, "events", "--workload", "ev-job")
    assert listed.returncode == 0, listed.stderr
    types = [line.split()[2] for line in listed.stdout.splitlines()]
    assert types[:2] == ["Submitted", "Scheduled"] and "Succeeded" in types
    only = json.loads(runai(server, "events", "--workload", "ev-job", "--type", "scheduled", "-o", "json").stdout)
    assert [e["type"] for e in only["events"]] == ["Scheduled"] and "started on" in only["events"][0]["message"]
    bad = runai(server, "events", "--type", "exploded")
    assert bad.returncode == 1 and "Evicted" in bad.stderr  # the error lists the types
    # --follow: the events of a workload submitted after it started, as they happen, one JSON per line
    follower = subprocess.Popen([sys.executable, "-m", "jupyter_runai.cli", "events", "--workload", "ev-live",
                                 "-f", "-o", "json"], env=server["env"], cwd=server["root"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # submitted whether or not it has connected yet: what came before is listed, the rest followed
        assert runai(server, "submit", "ev-live", "--", sys.executable, "-c", "pass").returncode == 0
        seen: list[str] = []
        deadline = time.monotonic() + 60
        while "Succeeded" not in seen and time.monotonic() < deadline:
            line = follower.stdout.readline()
            if not line:
                break
            seen.append(json.loads(line)["type"])
        assert seen[:1] == ["Submitted"] and "Succeeded" in seen, (seen, follower.stderr.read() if not line else "")
    finally:
        follower.kill()
        follower.wait(10)
    runai(server, "delete", "ev-job", "-y")
    runai(server, "delete", "ev-live", "-y")


def test_top_shows_devices_and_live_workloads(server):
    done = runai(server, "submit", "top-job", "-g", "0.5", "--", sys.executable, "-c", "import time; time.sleep(120)")
    assert done.returncode == 0, done.stderr
    wait_for(lambda: phase(server, "top-job") == "Running", what="Running")
    try:
        once = runai(server, "top", "--once")
        assert once.returncode == 0, once.stderr
        assert "2 GPU(s) (2 virtual); allocated 0.50 of 2" in once.stdout
        assert "utilization not measured" in once.stdout and "not measured" in once.stdout
        assert "top-job" in once.stdout and "default/top-job-0 (0.5)" in once.stdout
        usage = next(line for line in once.stdout.splitlines() if line.startswith("default/top-job "))
        assert "0.5" in usage and usage.count("not measured (virtual GPU)") == 2  # util and memory, in words
        twice = runai(server, "top", "-n", "2", "--interval", "0.5")
        assert twice.returncode == 0 and twice.stdout.count("node(s)") == 2, twice.stdout
        assert runai(server, "top", "--interval", "0").returncode == 2  # bounded
    finally:
        runai(server, "delete", "top-job", "-y")


def test_submit_help_ends_with_the_policy_in_force_for_the_project_and_kind(server, tmp_path):
    """`runai submit --help` reads the effective policy of its project (-p, else the saved or the
    server's first) and kind (--kind, or the group's); without a server it says how to see it, exit 0."""
    def ok(*argv: str, env: dict | None = None) -> str:
        done = subprocess.run([sys.executable, "-m", "jupyter_runai.cli", *argv], env=env or server["env"],
                              cwd=server["root"], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    assert "set" in ok("policy", "set", "project", "default", "--kind", "training", "--default", "resources.gpu=1",
                       "--rule", "resources.gpu.max=2", "--rule", "image.allowed=base:1,base:2")
    try:
        shown = ok("submit", "--help")
        assert "Policy in force for training workloads in project default" in shown
        assert "  resources.gpu (--gpu): default 1, max 2 (project 'default')" in shown
        assert "  image (--image): one of base:1, base:2 (project 'default')" in shown
        assert "resources.gpu (--gpu): default 1, max 2" in ok("-p", "default", "training", "standard", "submit", "-h")
        # another kind has no policy: said so, not the training one
        workspace = ok("workspace", "submit", "--help")
        assert "Policy in force for workspace workloads in project default: none" in workspace
        assert "max 2" not in workspace and "max 2" not in ok("submit", "--kind", "inference", "-h")
        # a project that is not there: the server's answer, and how to see the policy; still help, exit 0
        missing = ok("submit", "-p", "nope", "--help")
        assert "was not read (" in missing and "runai policy effective training -p nope" in missing
    finally:
        ok("policy", "delete", "project", "default", "--kind", "training", "-y")
    # no server at all (another runtime dir, no URL): help, with how to see the policy later
    alone = {**server["env"], "JUPYTER_RUNTIME_DIR": str(tmp_path)}
    lonely = ok("submit", "--help", env=alone)
    assert "--gpu" in lonely and "no running Jupyter server found" in lonely
    assert "See it with: runai policy effective training" in lonely
    closed = ok("--url", "http://127.0.0.1:9/", "submit", "-h", env=alone)
    assert "cannot reach the server" in closed and "runai policy effective training" in closed
