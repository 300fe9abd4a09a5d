"""The client side without a server: submit options -> spec, server discovery, rendering, errors.

End-to-end runs against a real Jupyter server are in test_cli_e2e.py.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests
from rich.console import Console

from jupyter_runai import cli
from jupyter_runai.client import (
    RunaiClient,
    RunaiConnectionError,
    RunaiError,
    ServerNotFoundError,
    find_server,
    parse_sse,
)
from jupyter_runai.models import WorkloadSpec
from jupyter_runai.submit_args import (
    SubmitArgsError,
    build_submit_parser,
    parse_submit,
    spec_from_args,
    split_command,
    suggest_name,
)

DISCOVERY_VARS = (
    "RUNAI_URL", "RUNAI_TOKEN", "RUNAI_PROJECT", "JUPYTERHUB_SERVICE_URL", "JUPYTERHUB_SERVICE_PREFIX",
    "JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN", "JPY_PARENT_PID",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    """No discovery variable leaks in from the machine; an empty runtime dir."""
    for name in DISCOVERY_VARS:
        monkeypatch.delenv(name, raising=False)
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    # `runai config project` saves here, never in the machine's ~/.jupyter
    monkeypatch.setenv("RUNAI_CONFIG", str(tmp_path / "runai_cli.json"))
    return runtime


def submit_spec(*argv: str) -> dict:
    """Parse `runai submit ARGV` with the CLI's own parser."""
    options, command = split_command(["submit", *argv])
    ns = cli.build_parser().parse_args(options)
    return spec_from_args(ns, command)


# =========================================================================== submit options


def test_every_submit_option_lands_in_the_spec():
    spec = submit_spec(
        "bert", "--kind", "distributed", "-g", "0.5", "--gpu-limit", "0.75", "--gpu-devices", "2",
        "--cpu", "500m", "--cpu-limit", "2", "--memory", "20Gi", "--memory-limit", "32Gi",
        "-p", "team-a", "-e", "EPOCHS=3", "--environment", "LR=0.1", "-e", "EMPTY=", "-e", "EQ=a=b",
        "--workers", "3", "--min-available", "2", "--node-pools", "a100,default", "--preemptible",
        "--priority-class", "build-preemptible", "--image", "pytorch/pytorch:2.5", "--working-dir", "/work",
        "--python-env", "/opt/env", "--data-source", "imagenet", "--data-source", "cifar,coco",
        "--credential", "hf-token", "--", "torchrun", "train.py", "--lr", "0.1",
    )
    assert spec == {
        "name": "bert",
        "project": "team-a",
        "kind": "distributed",
        "resources": {"gpu": 0.5, "gpu_limit": 0.75, "gpu_devices": 2, "cpu": "500m", "cpu_limit": "2",
                      "memory": "20Gi", "memory_limit": "32Gi"},
        "workers": 3,
        "min_available": 2,
        "node_pools": ["a100", "default"],
        "preemptible": True,
        "priority_class": "build-preemptible",
        "image": "pytorch/pytorch:2.5",
        "working_dir": "/work",
        "python_env": "/opt/env",
        "environment": {"EPOCHS": "3", "LR": "0.1", "EMPTY": "", "EQ": "a=b"},
        "data_sources": ["imagenet", "cifar", "coco"],
        "credentials": ["hf-token"],
        "command": ["torchrun", "train.py", "--lr", "0.1"],
    }
    # and the model agrees with it
    validated = WorkloadSpec.model_validate(spec)
    assert validated.total_gpus() == 4.0  # (master + 3 workers) x 0.5 x 2 devices


def test_inference_options_and_non_preemptible():
    spec = submit_spec("llm", "--kind", "inference", "--gpu", "1", "--min-replicas", "1", "--max-replicas", "4",
                       "--non-preemptible")
    assert spec["kind"] == "inference"
    assert spec["resources"] == {"gpu": 1}
    assert (spec["min_replicas"], spec["max_replicas"]) == (1, 4)
    assert spec["preemptible"] is False


def test_gpu_memory_and_whole_gpus():
    assert submit_spec("nb", "--kind", "workspace", "--gpu-memory", "20Gi")["resources"] == {"gpu_memory": "20Gi"}
    assert submit_spec("big", "-g", "2")["resources"] == {"gpu": 2}
    assert isinstance(submit_spec("big", "-g", "2")["resources"]["gpu"], int)


def test_queue_anyway_is_sent_only_when_asked():
    assert submit_spec("huge", "-g", "16", "--queue-anyway")["queue_anyway"] is True
    assert "queue_anyway" not in submit_spec("huge", "-g", "16")
    assert "--queue-anyway" in build_submit_parser().format_help()


def test_only_what_was_set_is_sent():
    spec = submit_spec("plain")
    assert spec == {"name": "plain"}  # no project named: the client asks the server for its first


def test_project_from_env_and_global_option(monkeypatch):
    monkeypatch.setenv("RUNAI_PROJECT", "team-b")
    assert submit_spec("x")["project"] == "team-b"
    assert submit_spec("x", "-p", "team-c")["project"] == "team-c"
    options, command = split_command(["-p", "team-d", "submit", "x"])
    assert spec_from_args(cli.build_parser().parse_args(options), command)["project"] == "team-d"


def test_name_is_suggested_when_absent():
    assert re.fullmatch(r"training-[a-z0-9]{4}", submit_spec("-g", "1")["name"])
    assert re.fullmatch(r"workspace-[a-z0-9]{4}", submit_spec("--kind", "workspace")["name"])
    names = {suggest_name("inference") for _ in range(20)}
    assert len(names) > 1 and all(n.startswith("inference-") for n in names)


def test_command_after_double_dash():
    # several words: run as they are (options after -- belong to the command)
    assert submit_spec("a", "--", "python", "train.py", "-g", "3")["command"] == ["python", "train.py", "-g", "3"]
    # one word: a shell command line
    assert submit_spec("a", "--", "python train.py > out.txt")["command"] == "python train.py > out.txt"
    assert "command" not in submit_spec("a")
    with pytest.raises(SubmitArgsError) as err:
        submit_spec("a", "--")
    assert err.value.field == "command"


def test_standalone_parser_for_the_magics():
    spec = parse_submit(["nb", "-g", "0.5", "-p", "team-a", "--", "python", "x.py"])
    assert spec == {"name": "nb", "project": "team-a", "resources": {"gpu": 0.5}, "command": ["python", "x.py"]}
    help_text = build_submit_parser().format_help()
    for option in ("--gpu", "--gpu-memory", "--gpu-limit", "--gpu-devices", "--cpu", "--memory", "--project",
                   "--environment", "--workers", "--min-replicas", "--max-replicas", "--node-pools",
                   "--preemptible", "--non-preemptible", "--priority-class", "--image", "--working-dir",
                   "--data-source", "--credential", "examples:"):
        assert option in help_text


@pytest.mark.parametrize(
    "argv, field, words",
    [
        (["-g", "1.5"], "resources.gpu", ["--gpu", "fraction between 0 and 1"]),
        (["-g", "half"], "resources.gpu", ["--gpu"]),
        (["-e", "NOEQUALS"], "environment", ["KEY=VALUE", "NOEQUALS"]),
        (["-e", "=value"], "environment", ["KEY=VALUE"]),
        (["-e", "1BAD=x"], "environment.1BAD", ["--environment"]),
        (["--kind", "wrong"], "kind", ["--kind", "workspace", "inference"]),
        (["--gpu-limit", "0.5"], "resources.gpu_limit", ["--gpu-limit"]),
        (["-g", "0.5", "--gpu-limit", "0.25"], "resources.gpu_limit", ["at least the request"]),
        (["-g", "1", "--gpu-memory", "20Gi"], "resources.gpu_memory", ["not both"]),
        (["-g", "1", "--gpu-devices", "2"], "resources.gpu_devices", ["--gpu-devices"]),
        (["--memory", "12q"], "resources.memory", ["--memory"]),
        (["--cpu", "lots"], "resources.cpu", ["--cpu"]),
        (["--workers", "2"], "workers", ["only for kind 'distributed'"]),
        (["--kind", "distributed"], "workers", ["required"]),
        (["--kind", "inference", "--min-replicas", "3", "--max-replicas", "2"], "max_replicas", ["--max-replicas"]),
        (["--priority-class", "urgent"], "priority_class", ["--priority-class", "train"]),
        (["--node-pools", "a,a"], "node_pools", ["same item twice"]),
        (["--data-source", "Bad_Name"], "data_sources[0]", ["--data-source"]),
    ],
)
def test_bad_values_name_the_field_and_option(argv, field, words):
    with pytest.raises(SubmitArgsError) as err:
        submit_spec("job", *argv)
    fields = [e["field"] for e in err.value.errors]
    assert field in fields
    text = str(err.value)
    assert field in text
    for word in words:
        assert word in text


def test_bad_name_names_the_field():
    with pytest.raises(SubmitArgsError) as err:
        submit_spec("Bad_Name")
    assert err.value.field == "name" and "DNS-1123" in str(err.value)


def test_cli_usage_errors_exit_2_before_any_network_call(capsys):
    # no server anywhere: these never get as far as looking for one
    assert cli.main(["submit", "job", "--gpu", "1.5"]) == 2
    err = capsys.readouterr().err
    assert "resources.gpu" in err and "--gpu" in err and "allowed" in err
    assert cli.main(["submit", "job", "-e", "NOEQUALS"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    assert cli.main(["submit", "--kind", "wrong"]) == 2
    assert "kind" in capsys.readouterr().err
    assert cli.main(["list", "--no-such-option"]) == 2
    assert cli.main(["logs", "x", "--", "echo"]) == 2
    # delete asks; a pipe cannot answer
    assert cli.main(["delete", "job"]) == 2
    assert "-y" in capsys.readouterr().err


def test_main_help_lists_every_subcommand(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("submit", "list", "describe", "logs", "stop", "resume", "delete", "nodes", "projects"):
        assert re.search(rf"^\s+{command}\s+\S", out, re.M), command
    assert cli.main([]) == 2
    assert cli.main(["submit", "--help"]) == 0
    out = capsys.readouterr().out
    assert "-- COMMAND" in out
    assert "runai policy effective" in out  # where the defaults and bounds in force are (issue 12)


def test_every_project_option_says_the_default_comes_from_the_server(capsys):
    """No project is assumed to exist: without -p the server's first project the caller may submit
    to is taken, and `runai --help`, `runai submit --help` and `%runai submit --help` say so."""
    assert cli.main(["--help"]) == 0
    texts = [capsys.readouterr().out]
    assert cli.main(["list", "--help"]) == 0
    texts.append(capsys.readouterr().out)
    texts.append(build_submit_parser().format_help())
    for text in texts:
        flat = " ".join(text.split())
        assert "first project you may submit to" in flat
        assert "'default'" not in flat
    # a workspace's command must serve: said where the kinds are (one that does not stays "starting")
    submit_help = " ".join(build_submit_parser().format_help().split())
    assert "its command serves on $PORT and it is Running once that answers" in submit_help


def test_no_server_found_exits_1_with_how_to_fix(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["list"]) == 1
    err = capsys.readouterr().err
    assert "no running Jupyter server" in err and "jupyter lab" in err and "--url" in err


# =========================================================================== server discovery


def write_server_file(runtime, pid, root_dir, port, token="", base_url="/", age=0.0):
    info = {
        "url": f"http://localhost:{port}{base_url}",
        "hostname": "localhost",
        "port": port,
        "sock": "",
        "secure": False,
        "base_url": base_url,
        "token": token,
        "root_dir": str(root_dir),
        "password": False,
        "pid": pid,
        "version": "2.14.0",
    }
    path = runtime / f"jpserver-{pid}.json"
    path.write_text(json.dumps(info, indent=2))
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))
    return path


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_explicit_arguments_win(monkeypatch):
    monkeypatch.setenv("RUNAI_URL", "http://elsewhere:1/")
    monkeypatch.setenv("RUNAI_TOKEN", "env-token")
    found = find_server("localhost:9999/base", "arg-token")
    assert (found.url, found.token, found.source) == ("http://localhost:9999/base/", "arg-token", "--url")
    assert found.api_url == "http://localhost:9999/base/runai/api/v1/"
    # a URL without a token takes RUNAI_TOKEN
    assert find_server("http://localhost:9999/").token == "env-token"


def test_env_vars(monkeypatch):
    monkeypatch.setenv("RUNAI_URL", "http://gpu-box:8888")
    monkeypatch.setenv("RUNAI_TOKEN", "secret")
    found = find_server()
    assert (found.url, found.token, found.source) == ("http://gpu-box:8888/", "secret", "RUNAI_URL")
    client = RunaiClient()
    assert client.server == found
    assert client._headers("GET")["Authorization"] == "token secret"


def test_jupyterhub_single_user_variables(monkeypatch):
    # what a JupyterHub spawner puts in the single-user server's (and so its kernels') environment
    monkeypatch.setenv("JUPYTERHUB_SERVICE_URL", "http://:8888/user/alice/")
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/alice/")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "hub-token")
    found = find_server()
    assert found.url == "http://127.0.0.1:8888/user/alice/"
    assert found.token == "hub-token"
    assert found.api_url == "http://127.0.0.1:8888/user/alice/runai/api/v1/"
    # --token still wins over the hub's
    assert find_server(token="mine").token == "mine"


def test_jupyterhub_prefix_only_matches_a_running_server(monkeypatch, clean_env, tmp_path):
    write_server_file(clean_env, os.getpid(), tmp_path, 8123, token="t1", base_url="/user/bob/")
    write_server_file(clean_env, os.getppid(), tmp_path / "deeper", 8124, token="t2", age=-5)
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/bob/")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "hub-token")
    found = find_server(cwd=str(tmp_path))
    assert found.url == "http://localhost:8123/user/bob/"
    assert found.token == "hub-token"


def test_running_server_list_picks_the_root_holding_cwd(clean_env, tmp_path):
    project = tmp_path / "home" / "me" / "project"
    (project / "sub").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # this process and its parent are alive; the third server's process is gone
    write_server_file(clean_env, os.getpid(), tmp_path / "home", 8001, token="home-token", age=100)
    write_server_file(clean_env, os.getppid(), elsewhere, 8002, token="newest-token", age=10)
    gone = write_server_file(clean_env, dead_pid(), project, 8003, token="dead-token", age=0)

    found = find_server(cwd=str(project / "sub"))
    assert (found.url, found.token) == ("http://localhost:8001/", "home-token")
    assert "jpserver-" in found.source
    assert not gone.exists()  # jupyter_server's list removes a dead server's file

    # no root holds the directory: the newest server
    outside = tmp_path / "outside"
    outside.mkdir()
    assert find_server(cwd=str(outside)).token == "newest-token"

    # the deepest root wins over a shallower one
    write_server_file(clean_env, os.getpid(), project, 8001, token="home-token", age=100)
    write_server_file(clean_env, os.getppid(), tmp_path, 8002, token="shallow-token", age=0)
    assert find_server(cwd=str(project)).token == "home-token"


def test_a_kernel_finds_the_server_that_started_it(monkeypatch, clean_env, tmp_path):
    """In a kernel (jupyter_client sets JPY_PARENT_PID to the server's pid) the client talks to
    that server, even where another, newer server's root holds the working directory."""
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    write_server_file(clean_env, os.getppid(), tmp_path / "elsewhere", 8701, token="kernel-server", age=100)
    write_server_file(clean_env, os.getpid(), notebooks, 8702, token="other-server", age=0)
    monkeypatch.setenv("JPY_PARENT_PID", str(os.getppid()))
    found = find_server(cwd=str(notebooks))
    assert (found.url, found.token) == ("http://localhost:8701/", "kernel-server")
    assert "JPY_PARENT_PID" in found.source
    # a server that is not this process's parent (the variable inherited further down, e.g. by a
    # Jupyter server started from a notebook): the usual choice, not the outer server
    outer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        write_server_file(clean_env, outer.pid, tmp_path / "elsewhere2", 8703, token="not-my-parent", age=200)
        monkeypatch.setenv("JPY_PARENT_PID", str(outer.pid))
        assert find_server(cwd=str(notebooks)).token == "other-server"
    finally:
        outer.kill()
        outer.wait()
    # a parent that is no running server (a kernel started by something else): the usual choice
    monkeypatch.setenv("JPY_PARENT_PID", "1")
    assert find_server(cwd=str(notebooks)).token == "other-server"
    # the hub's variables and RUNAI_URL still come first
    monkeypatch.setenv("JPY_PARENT_PID", str(os.getppid()))
    monkeypatch.setenv("RUNAI_URL", "http://127.0.0.1:8702/")
    assert find_server(cwd=str(notebooks)).url == "http://127.0.0.1:8702/"


def test_url_without_token_takes_the_running_servers_token(clean_env, tmp_path):
    write_server_file(clean_env, os.getpid(), tmp_path, 8555, token="from-file")
    assert find_server("http://127.0.0.1:8555").token == "from-file"
    assert find_server("http://127.0.0.1:8556").token is None


def test_no_server_explains_how_to_fix(tmp_path, clean_env):
    write_server_file(clean_env, dead_pid(), tmp_path, 8003)
    with pytest.raises(ServerNotFoundError) as err:
        find_server(cwd=str(tmp_path))
    message = str(err.value)
    assert "jupyter lab" in message and "--url" in message and "--token" in message
    assert err.value.status is None


def test_unreachable_server_is_explained():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = RunaiClient(f"http://127.0.0.1:{port}/", "t")
    with pytest.raises(RunaiConnectionError) as err:
        client.info()
    message = str(err.value)
    assert f"127.0.0.1:{port}" in message and "cannot reach" in message and "jupyter lab" in message


# =========================================================================== errors and streams


def make_response(status: int, body) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.reason = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 409: "Conflict"}.get(status, "")
    response.url = "http://localhost:8888/runai/api/v1/workloads"
    response._content = (json.dumps(body) if not isinstance(body, str) else body).encode()
    return response


def test_runai_error_from_the_servers_error_body():
    body = {"error": {"message": "resources.gpu: must be ...; got 1.5", "field": "resources.gpu",
                      "allowed": "0 < gpu < 1 or whole", "errors": [{"field": "resources.gpu"}]}}
    error = RunaiError.from_response(make_response(400, body))
    assert (error.status, error.field, error.allowed) == (400, "resources.gpu", "0 < gpu < 1 or whole")
    assert str(error) == "resources.gpu: must be ...; got 1.5"
    assert error.errors == [{"field": "resources.gpu"}]
    # Jupyter's own refusal (no token) says what to do
    refused = RunaiError.from_response(make_response(403, {"message": "Forbidden", "reason": None}))
    assert refused.status == 403 and "--token" in str(refused)
    missing = RunaiError.from_response(make_response(404, "<html>404: Not Found</html>"))
    assert "runai extension" in str(missing)


def test_server_error_is_printed_with_its_field(capsys):
    console = Console(record=True, width=200, file=open(os.devnull, "w"))
    error = RunaiError(409, "name: a live workload 'bert' exists in project 'default'", "name", "a new name")
    cli._print_error(error, console)
    text = console.export_text()
    assert "error: name: a live workload" in text and "allowed: a new name" in text


def test_sse_parser_handles_split_chunks_comments_and_ids():
    stream = (
        ": keep-alive\n\n"
        'id: 7\nevent: Scheduled\ndata: {"id": 7, "type": "Scheduled", "workload": "bert", "message": "on node-1"}\n\n'
        'id: 8\ndata: {"type": "Started",\ndata:  "workload": "bert"}\n\n'
    )
    chunks = [stream[i:i + 5] for i in range(0, len(stream), 5)]
    events = list(parse_sse(iter(chunks)))
    assert events == [
        {"id": 7, "type": "Scheduled", "workload": "bert", "message": "on node-1"},
        {"id": "8", "type": "Started", "workload": "bert"},
    ]


# =========================================================================== rendering

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


def ago(**delta) -> str:
    return (NOW - timedelta(**delta)).isoformat()


def workload(name, kind="training", phase="Running", resources=None, project="default", **extra):
    spec = {"name": name, "project": project, "kind": kind, "resources": resources or {}}
    status = {"phase": phase, "submitted_at": ago(minutes=5), "pods": []}
    for key in ("pending_reason", "message", "pods", "url", "started_at"):
        if key in extra:
            status[key] = extra.pop(key)
    spec.update(extra)
    return {"uid": f"uid-{name}", "spec": spec, "status": status, "submitted_by": "alice"}


def render(renderable) -> str:
    console = Console(record=True, width=220, file=open(os.devnull, "w"))
    console.print(renderable)
    return console.export_text()


def test_gpu_request_as_people_say_it():
    text = cli.gpu_request_text
    assert text({"gpu": 1}) == "1 GPU"
    assert text({"gpu": 2}) == "2 GPUs"
    assert text({"gpu": 0.5}) == "0.5 GPU"
    assert text({"gpu_memory": "20Gi"}) == "20Gi GPU memory"
    assert text({"gpu": 0.5, "gpu_devices": 4}) == "0.5 x 4 GPUs"
    assert text({"gpu": 0.25, "gpu_limit": 0.75}) == "0.25 GPU (burst to 0.75)"
    assert text({}) == "-" and text({"gpu": 0}) == "-"
    assert cli.workload_request_text({"kind": "distributed", "workers": 3, "resources": {"gpu": 1}}) == \
        "1 GPU x 4 pods"
    assert cli.workload_request_text({"kind": "inference", "min_replicas": 1, "max_replicas": 3,
                                      "resources": {"gpu": 0.5}}) == "0.5 GPU x 1-3 replicas"


def test_age_text():
    assert cli.age_text(ago(seconds=42), NOW) == "42s"
    assert cli.age_text(ago(minutes=3, seconds=5), NOW) == "3m"
    assert cli.age_text(ago(hours=2, minutes=5), NOW) == "2h5m"
    assert cli.age_text(ago(days=4, hours=1), NOW) == "4d"
    assert cli.age_text(None, NOW) == "-"
    assert cli.age_text("2025-01-01T11:59:00Z", NOW) == "1m"


def test_render_list():
    text = render(cli.render_workloads([
        workload("whole", resources={"gpu": 1}),
        workload("half", resources={"gpu": 0.5}, project="team-a"),
        workload("mem", kind="workspace", resources={"gpu_memory": "20Gi"}),
        workload("multi", resources={"gpu": 0.5, "gpu_devices": 4}, phase="Pending",
                 pending_reason="project team-a is at its limit of 2 GPUs"),
        workload("broke", phase="Failed", message="pod broke-0 exited with code 1"),
    ], now=NOW))
    lines = text.splitlines()
    assert lines[0].split() == ["NAME", "PROJECT", "KIND", "GPU", "STATUS", "AGE", "REASON"]
    row = {line.split()[0]: line for line in lines[1:]}
    assert "1 GPU" in row["whole"] and "Running" in row["whole"] and "5m" in row["whole"]
    assert "team-a" in row["half"] and "0.5 GPU" in row["half"]
    assert "workspace" in row["mem"] and "20Gi GPU memory" in row["mem"]
    assert "0.5 x 4 GPUs" in row["multi"] and "Pending" in row["multi"]
    assert "project team-a is at its limit of 2 GPUs" in row["multi"]
    assert "exited with code 1" in row["broke"]
    assert "No workloads" in render(cli.render_workloads([]))


def test_a_third_party_workload_shows_its_owner():
    theirs = workload("their-train", kind="distributed", workers=2, master=False, resources={"gpu": 1})
    theirs["external"] = {"api_version": "batch/v1", "kind": "Job", "name": "their-train", "namespace": "team-x",
                          "uid": "u1"}
    row = render(cli.render_workloads([theirs], now=NOW)).splitlines()[1]
    assert "Job (external)" in row
    described = render(cli.render_describe(theirs, now=NOW))
    assert "Made by:" in described and "Job team-x/their-train (outside jupyter-runai" in described


def test_render_describe_running_distributed():
    doc = workload(
        "ddp", kind="distributed", workers=1, master=True, min_available=2, priority_class="train",
        preemptible=True, resources={"gpu": 0.5, "gpu_devices": 2, "cpu": "2", "memory": "8Gi"},
        node_pools=["a100"], command=["torchrun", "train.py"], environment={"EPOCHS": "3"},
        data_sources=["imagenet"], credentials=["hf-token"], started_at=ago(minutes=4),
        pods=[
            {"name": "ddp-0", "index": 0, "phase": "Running", "node": "gpu-node-1", "devices": [0, 1],
             "fraction": 0.5, "started_at": ago(minutes=4)},
            {"name": "ddp-1", "index": 1, "phase": "Running", "node": "gpu-node-2", "devices": [3],
             "fraction": None, "started_at": ago(minutes=4)},
        ],
    )
    doc["events"] = [
        {"id": 1, "at": ago(minutes=5), "type": "Submitted", "project": "default", "workload": "ddp",
         "pod": None, "message": "submitted by alice"},
        {"id": 2, "at": ago(minutes=4), "type": "Scheduled", "project": "default", "workload": "ddp",
         "pod": "ddp-0", "message": "bound to gpu-node-1 devices 0,1 at 0.5"},
    ]
    text = render(cli.render_describe(doc, now=NOW))
    for expected in ("Name:", "ddp", "distributed", "Running", "0.5 x 2 GPUs, CPU 2, memory 8Gi per pod",
                     "train, preemptible", "2 (a master and 1 worker), all start together", "a100",
                     "torchrun train.py", "EPOCHS=3", "imagenet", "hf-token", "by alice"):
        assert expected in text, expected
    pod_lines = [line for line in text.splitlines() if line.strip().startswith("ddp-")]
    assert "gpu-node-1" in pod_lines[0] and "0,1" in pod_lines[0] and "0.5" in pod_lines[0]
    assert "gpu-node-2" in pod_lines[1] and "whole" in pod_lines[1]
    assert "Events" in text and "Scheduled" in text and "bound to gpu-node-1" in text
    assert "Pending reason" not in text


def test_render_describe_says_a_command_and_a_gang_as_people_write_them():
    doc = workload("ddp", kind="distributed", workers=3, master=True, min_available=2, resources={"gpu": 1},
                   command=["python", "-c", "import os; print('rank', os.environ['RANK'])", "it's $HOME"])
    text = " ".join(render(cli.render_describe(doc, now=NOW)).split())
    # double quotes around a program with single quotes; single quotes where a shell would expand
    assert """python -c "import os; print('rank', os.environ['RANK'])" 'it'"'"'s $HOME'""" in text
    assert "4 (a master and 3 workers), at least 2 start together" in text


def test_render_describe_pending_shows_the_reason():
    doc = workload("waits", phase="Pending", resources={"gpu": 2},
                   pending_reason="needs 2 GPUs on one node; the most free on a node is 1")
    doc["status"]["queue_position"] = 2
    text = render(cli.render_describe(doc, now=NOW))
    assert "Pending reason:" in text and "the most free on a node is 1" in text
    assert "Queue position: 2 of the pending workloads in project default" in " ".join(text.split())
    assert "none placed yet" in text and "Events: none" in text


def test_render_nodes_marks_virtual_devices():
    nodes = [
        {"name": "box", "cpu": "16", "memory": "128Gi", "schedulable": True, "pool": "default", "devices": [
            {"index": 0, "uuid": "GPU-a", "model": "NVIDIA H200", "memory": "141Gi", "virtual": False,
             "allocated_fraction": 0.75, "allocated_memory": 113527144448, "used_memory": None,
             "utilization": 37.0,
             "pods": [{"pod": "default/a-0", "fraction": 0.5}, {"pod": "team-a/b-0", "fraction": 0.25}]},
            {"index": 1, "uuid": "GPU-b", "model": "Virtual GPU", "memory": "24Gi", "virtual": True,
             "allocated_fraction": 0, "allocated_memory": 0, "used_memory": None, "utilization": None,
             "pods": []},
        ]},
        {"name": "cpu-only", "cpu": "8", "memory": "32Gi", "devices": [], "schedulable": False},
    ]
    text = render(cli.render_nodes(nodes))
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["NODE", "GPU", "MODEL"]
    first = next(line for line in lines if "NVIDIA H200" in line)
    assert "box" in first and "141Gi" in first and "0.75" in first and "37%" in first
    assert "default/a-0 (0.5)" in first and "team-a/b-0 (0.25)" in first and "105.7Gi" in first
    assert "(virtual)" not in first
    virtual = next(line for line in lines if "Virtual GPU" in line)
    assert "(virtual)" in virtual and "0.00" in virtual and "24Gi" in virtual
    assert virtual.count("not measured") == 2 and "not measured" not in first  # USED and UTIL, said plainly
    assert "cpu-only (cordoned)" in text and "no GPU" in text


def test_render_projects():
    projects = [
        {"name": "default", "department": "default", "deserved": {"gpu": 2, "cpu": 0, "memory": 0},
         "limit": {"gpu": None, "cpu": None, "memory": None}, "over_quota_weight": 1,
         "allocated": {"gpu": 2.5}, "fair_share": {"gpu": 3.25}},
        {"name": "team-a", "department": "research", "deserved": {"gpu": 1}, "limit": {"gpu": 4},
         "over_quota_weight": 0, "allocated": {"gpu": 0}, "fair_share": None},
    ]
    text = render(cli.render_projects(projects))
    header = text.splitlines()[0]
    for column in ("PROJECT", "DEPARTMENT", "DESERVED", "ALLOCATED", "FAIR SHARE", "LIMIT"):
        assert column in header
    default = next(line for line in text.splitlines() if line.startswith("default"))
    assert default.split()[:6] == ["default", "default", "2", "2.5", "3.25", "unlimited"]
    team = next(line for line in text.splitlines() if line.startswith("team-a"))
    assert team.split()[:7] == ["team-a", "research", "1", "0", "-", "4", "0"]


def test_user_text_in_brackets_is_shown_literally(monkeypatch, capsys):
    """rich reads `[a100]` or `[bold]` in a plain string as markup and drops it: every renderer and every
    line the CLI prints shows text from the server as it is (pool names, reasons, commands, errors)."""
    nodes = [{"name": "box", "pool": "a100", "devices": [
        {"index": 0, "model": "NVIDIA [A100]", "memory": "80Gi", "allocated_fraction": 0,
         "pods": [{"pod": "default/[x]-0", "fraction": 0.5}]}]},
        {"name": "cpu", "pool": "cpu[/]", "devices": []}]
    text = render(cli.render_nodes(nodes))
    assert "box [a100]" in text and "NVIDIA [A100]" in text and "default/[x]-0 (0.5)" in text
    assert "cpu [cpu[/]]" in text
    waits = workload("waits", phase="Pending", pending_reason="needs pool [a100]; [bold]none[/bold] free",
                     command=["python", "-c", "print([1])"], environment={"TAGS": "[red]"},
                     node_pools=["[a100]"])
    waits["events"] = [{"at": ago(minutes=1), "type": "Pending", "pod": None, "message": "pool [a100] is full"}]
    assert "needs pool [a100]; [bold]none[/bold] free" in render(cli.render_workloads([waits], now=NOW))
    described = render(cli.render_describe(waits, now=NOW))
    for literal in ("needs pool [a100]; [bold]none[/bold] free", "print([1])", "TAGS=[red]", "pool [a100] is full"):
        assert literal in described, literal
    projects = render(cli.render_projects([{"name": "p", "department": "[dept]", "deserved": {"gpu": 1}}]))
    assert "[dept]" in projects
    # the CLI's own consoles print errors and messages literally too (and without stray backslashes)
    error = RunaiError(400, "node_pools: unknown pool [a100]", "node_pools", "[default]")
    cli._print_error(error, cli._stderr())
    err = capsys.readouterr().err
    assert "error: node_pools: unknown pool [a100]" in err and "allowed: [default]" in err and "\\" not in err



# =========================================================================== administration


def admin_ns(*argv: str):
    return cli.build_parser().parse_args(list(argv))


def test_admin_options_become_the_body_the_api_takes():
    from jupyter_runai.cli_admin import pool_changes, queue_changes

    ns = admin_ns("projects", "create", "vision", "--department", "research", "--gpu", "4", "--cpu", "500m",
                  "--limit-gpu", "6", "--weight", "2", "--priority", "150",
                  "--set", "node_pools.a100.deserved.gpu=2", "--set", "reclaim_min_runtime=10m")
    assert ns.subcommand == "projects" and ns.action == "create" and ns.name == "vision"
    assert queue_changes(ns) == {
        "department": "research", "deserved": {"gpu": 4, "cpu": "500m"}, "limit": {"gpu": 6},
        "over_quota_weight": 2, "priority": 150, "node_pools": {"a100": {"deserved": {"gpu": 2}}},
        "reclaim_min_runtime": "10m"}
    # update sends only what is given; 'unlimited' and null remove a limit or a pool's quota
    ns = admin_ns("projects", "update", "vision", "--limit-gpu", "unlimited", "--set", "node_pools.a100=null")
    assert queue_changes(ns) == {"limit": {"gpu": None}, "node_pools": {"a100": None}}
    ns = admin_ns("departments", "update", "research", "--gpu", "8")
    assert queue_changes(ns) == {"deserved": {"gpu": 8}}
    ns = admin_ns("nodepools", "create", "a100", "--label", "gpu-type=a100", "--label", "zone=x",
                  "--gpu-placement", "binpack")
    assert pool_changes(ns) == {"label_selector": {"gpu-type": "a100", "zone": "x"}, "gpu_placement": "binpack"}
    assert admin_ns("projects").action is None  # plain `runai projects` lists


def test_admin_usage_errors_exit_2_before_any_request(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no server to find: a request would exit 1
    assert cli.main(["projects", "update", "vision"]) == 2
    assert "nothing to change" in capsys.readouterr().err
    assert cli.main(["projects", "update", "vision", "--set", "gpu"]) == 2
    assert "PATH=VALUE" in capsys.readouterr().err
    assert cli.main(["nodepools", "create", "a100", "--label", "novalue"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    assert cli.main(["projects", "delete", "vision"]) == 2  # a pipe cannot confirm
    assert "-y" in capsys.readouterr().err
    assert cli.main(["nodepools", "create", "a100", "--gpu-placement", "random"]) == 2
    assert cli.main(["audit", "--kind", "workload"]) == 2


def test_main_help_lists_the_administration_commands(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("projects", "departments", "nodepools", "audit"):
        assert re.search(rf"^\s+{command}\s+\S", out, re.M), command
    assert cli.main(["projects", "create", "--help"]) == 0
    assert "--limit-gpu" in capsys.readouterr().out


def test_render_projects_shows_per_pool_quotas_under_the_project():
    projects = [{"name": "vision", "department": "research", "deserved": {"gpu": 4}, "limit": {"gpu": None},
                 "over_quota_weight": 1, "allocated": {"gpu": 1}, "fair_share": {"gpu": 4},
                 "node_pools": {"a100": {"deserved": {"gpu": 2}, "limit": {"gpu": 3}, "over_quota_weight": 2}}}]
    lines = render(cli.render_projects(projects)).splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith("vision"))
    assert lines[row].split()[:2] == ["vision", "research"]
    assert lines[row + 1].split() == ["pool", "a100", "2", "3", "2"]


def test_render_departments_node_pools_and_the_audit_log():
    from jupyter_runai.cli_admin import diff_text, render_audit, render_departments, render_node_pools

    text = render(render_departments([{"name": "research", "projects": ["nlp", "vision"], "deserved": {"gpu": 8},
                                       "limit": {"gpu": None}, "over_quota_weight": 1, "priority": 100}]))
    assert "DEPARTMENT" in text.splitlines()[0]
    assert next(line for line in text.splitlines() if line.startswith("research")).split() == [
        "research", "nlp,", "vision", "8", "unlimited", "1", "100"]
    pools = render(render_node_pools([{"name": "[a100]", "label_selector": {"gpu-type": "a100"},
                                       "gpu_placement": "binpack", "cpu_placement": "binpack",
                                       "device_placement": "pack", "nodes": ["n1", "n2"]}]))
    assert "[a100]" in pools and "gpu-type=a100" in pools and "n1, n2" in pools
    assert "runai nodepools create" in render(render_node_pools([]))
    before = {"name": "vision", "deserved": {"gpu": 2, "cpu": "0"}, "priority": 100}
    after = {"name": "vision", "deserved": {"gpu": 1, "cpu": "0"}, "priority": 150}
    assert diff_text(before, after) == "deserved.gpu 2 -> 1; priority 100 -> 150"
    assert diff_text(None, after) == "created" and diff_text(before, None) == "deleted"
    assert diff_text({"node_pools": {"a": {"deserved": {"gpu": 1}}}, "limit": {"gpu": None}},
                     {"node_pools": {"b": {"deserved": {"gpu": 1}}}, "limit": {"gpu": 2}}) == \
        "node_pools.a removed; node_pools.b added; limit.gpu - -> 2"
    log = render(render_audit([{"id": 1, "at": "2026-01-02T03:04:05+00:00", "user": "ann", "action": "update",
                                "kind": "node_pool", "name": "a100", "before": before, "after": after}]))
    row = log.splitlines()[1]
    assert row.startswith("2026-01-02 03:04:05") and "ann" in row and "node pool" in row
    assert "deserved.gpu 2 -> 1" in row
    assert "No changes recorded." in render(render_audit([]))

def test_help_and_usage_errors_import_no_heavy_package():
    """`runai --help` (and a bad option) answer before importing rich, requests, pydantic, kubernetes or
    jupyter_server: each costs start-up time that a user waits through on every command. `runai submit
    --help` asks the server for the policy in force (cli_submit_help): the REST client and requests only."""
    heavy = ("'rich', 'requests', 'pydantic', 'kubernetes', 'jupyter_server', 'jupyter_runai.models', "
             "'jupyter_runai.client', 'shtab'")
    for argvs, expected in (("['--help'], ['list', '--nope']", "[0, 2] []"),
                            ("['submit', '--help'],", "[0] ['requests', 'jupyter_runai.client']")):
        probe = ("import sys\nfrom jupyter_runai import cli\n"
                 f"codes = [cli.main(argv) for argv in ({argvs})]\n"
                 f"heavy = [m for m in ({heavy}) if m in sys.modules]\n"
                 "print(codes, heavy, file=sys.stderr)\n")
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                              env={**os.environ, "RUNAI_URL": "http://127.0.0.1:9/"})
        assert done.stderr.strip().splitlines()[-1] == expected, done.stderr
        assert "usage: runai" in done.stdout


def test_finding_the_server_does_not_import_jupyter_server(clean_env, tmp_path):
    """The running servers are read from the runtime directory's files, not through jupyter_server.serverapp
    (whose import alone took seconds)."""
    write_server_file(clean_env, os.getpid(), tmp_path, 8777, token="t")
    probe = ("import sys\nfrom jupyter_runai.client import find_server\n"
             f"found = find_server(cwd={str(tmp_path)!r})\n"
             "print(found.url, found.token, 'jupyter_server' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "JUPYTER_RUNTIME_DIR": str(clean_env)})
    assert done.stdout.split() == ["http://localhost:8777/", "t", "False"], done.stderr


# =========================================================================== Run:ai's command tree and flag names


def cli_spec(*argv: str) -> dict:
    """Parse a whole `runai ARGV` command line (any submit command of the tree) into its spec."""
    options, command = split_command(list(argv))
    ns = cli.build_parser().parse_args(options)
    assert ns.run_action == "submit"
    return spec_from_args(ns, command)


@pytest.mark.parametrize("runai_form, ours", [
    # the v2 tree: the group is the kind
    ("workspace submit nb -p team-a -i jupyter/scipy-notebook --gpu-portion-request 0.5",
     "submit nb --kind workspace -p team-a --image jupyter/scipy-notebook -g 0.5"),
    ("training submit bert --gpu-devices-request 2 -- python train.py",
     "submit bert --kind training -g 2 -- python train.py"),
    ("training standard submit bert --gpu-devices-request 1", "submit bert --kind training -g 1"),
    ("training pytorch submit ddp --workers 3 --gpu-devices-request 1 -- torchrun train.py",
     "submit ddp --kind distributed --workers 3 -g 1 -- torchrun train.py"),
    ("inference submit llm --gpu-memory-request 20Gi --min-replicas 1 --max-replicas 4",
     "submit llm --kind inference --gpu-memory 20Gi --min-replicas 1 --max-replicas 4"),
    # v2 flag names on our own submit
    ("submit f --gpu-portion-request 0.5 --gpu-devices-request 4", "submit f -g 0.5 --gpu-devices 4"),
    ("submit f --gpu-memory-request 10Gi --gpu-devices-request 2", "submit f --gpu-memory 10Gi --gpu-devices 2"),
    ("submit f --gpu-portion-request 0.25 --gpu-portion-limit 0.75", "submit f -g 0.25 --gpu-limit 0.75"),
    ("submit f --cpu-core-request 2 --cpu-core-limit 4 --cpu-memory-request 8Gi --cpu-memory-limit 16Gi",
     "submit f --cpu 2 --cpu-limit 4 --memory 8Gi --memory-limit 16Gi"),
    ("submit f --project team-b --priority build-preemptible --preemptibility non-preemptible",
     "submit f -p team-b --priority-class build-preemptible --non-preemptible"),
    # v1 flags
    ("submit nb --interactive -g 1", "submit nb --kind workspace -g 1"),
    ("training submit t --backoff-limit 3 -g 1", "submit t --kind training --backoff-limit 3 -g 1"),
])
def test_runai_commands_and_flags_parse_to_the_same_spec_as_ours(runai_form, ours):
    assert cli_spec(*runai_form.split()) == cli_spec(*ours.split())


@pytest.mark.parametrize("argv", ["submit a --attach -g 1", "workspace submit a --attach",
                                  "training pytorch submit a --workers 1 --attach", "inference submit a --attach"])
def test_attach_is_taken_by_every_submit_and_is_no_field_of_the_spec(argv):
    """v1's --attach: what `runai submit` does after submitting (follow the log), not part of the workload."""
    words = argv.split()
    assert cli.build_parser(words).parse_args(words).attach is True
    without = [w for w in words if w != "--attach"]
    assert cli.build_parser(without).parse_args(without).attach is False
    assert {k: v for k, v in cli_spec(*words).items() if k != "name"} == \
        {k: v for k, v in cli_spec(*without).items() if k != "name"}
    assert "attach" not in cli_spec(*words)


def test_the_magics_take_the_runai_flag_names_too():
    """One submit parser: `%runai submit` understands Run:ai's names as `runai submit` does."""
    assert parse_submit(["nb", "--gpu-portion-request", "0.5", "-i", "img", "--interactive"]) == \
        parse_submit(["nb", "-g", "0.5", "--image", "img", "--kind", "workspace"])


def test_gpu_devices_request_with_whole_gpus_is_refused_naming_the_field():
    with pytest.raises(SubmitArgsError) as err:
        cli_spec("submit", "f", "-g", "2", "--gpu-devices-request", "2")
    assert err.value.field == "resources.gpu"
    with pytest.raises(SubmitArgsError) as err:
        cli_spec("submit", "f", "-g", "0.5", "--gpu-devices", "2", "--gpu-devices-request", "3")
    assert err.value.field == "resources.gpu_devices"


def test_a_group_fixes_its_kind():
    # `runai workspace submit` has no --kind to contradict it
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["workspace", "submit", "nb", "--kind", "training"])
    assert cli_spec("workspace", "submit", "nb")["kind"] == "workspace"


@pytest.mark.parametrize("argv, action, kind", [
    ("workspace list", "list", "workspace"),
    ("training list", "list", "training"),
    ("training pytorch list", "list", "distributed"),
    ("inference list", "list", "inference"),
    ("workload list", "list", None),
    ("workload list --type inference", "list", "inference"),
    ("list --kind training", "list", "training"),
    ("workspace describe nb", "describe", None),
    ("training pytorch logs ddp --pod 1", "logs", None),
    ("workspace suspend nb", "stop", None),
    ("training stop bert", "stop", None),
    ("suspend bert", "stop", None),
    ("inference resume llm", "resume", None),
    ("training pytorch delete ddp -y", "delete", None),
])
def test_the_v2_verbs_map_to_ours(argv, action, kind):
    ns = cli.build_parser().parse_args(argv.split())
    assert ns.run_action == action
    if action == "list":
        assert ns.kind == kind
    # `runai` builds only the named command's parser: it must read the line the same way
    assert vars(cli.build_parser(argv.split()).parse_args(argv.split())) == vars(ns)


@pytest.mark.parametrize("argv", [
    "-o json list -A", "-p team-a workspace submit nb -g 0.5", "--url http://x:1/ training pytorch submit d -g 1",
    "config project team-a", "data-source add d --host-path /data", "credential list -o yaml", "nodes -o wide",
])
def test_the_command_line_parses_the_same_with_only_its_command_built(argv):
    words = argv.split()
    assert vars(cli.build_parser(words).parse_args(words)) == vars(cli.build_parser().parse_args(words))


# =========================================================================== runai config project


def test_a_saved_project_is_the_default_of_every_command(monkeypatch, tmp_path, capsys):
    from jupyter_runai.client import default_project, save_settings

    assert default_project() is None                                    # nothing named: the server's choice
    assert "project" not in submit_spec("t")
    path = save_settings({"project": "team-a"})
    assert path == tmp_path / "runai_cli.json" and json.loads(path.read_text()) == {"project": "team-a"}
    assert default_project() == "team-a"
    assert submit_spec("t")["project"] == "team-a"                     # runai submit
    assert parse_submit(["t"])["project"] == "team-a"                  # %runai submit
    assert RunaiClient().project == "team-a"                           # the Python client
    assert submit_spec("t", "-p", "team-b")["project"] == "team-b"     # -p wins
    monkeypatch.setenv("RUNAI_PROJECT", "team-c")                      # and so does $RUNAI_PROJECT
    assert submit_spec("t")["project"] == "team-c"
    monkeypatch.delenv("RUNAI_PROJECT")

    assert cli.main(["config", "project"]) == 0
    assert capsys.readouterr().out.startswith("team-a (from ")
    assert cli.main(["config", "project", "--unset"]) == 0
    assert default_project() is None and json.loads(path.read_text()) == {}
    assert cli.main(["config", "project", "x", "--unset"]) == 2


def test_an_unreadable_saved_file_is_no_saved_project(tmp_path):
    from jupyter_runai.client import default_project

    (tmp_path / "runai_cli.json").write_text("{not json")
    assert default_project() is None



# =========================================================================== runai submit -f FILE


def test_submit_from_a_yaml_or_json_file_with_options_laid_over(tmp_path):
    spec_file = tmp_path / "train.yaml"
    spec_file.write_text("name: from-file\nkind: training\nresources:\n  gpu: 0.5\n  memory: 8Gi\n"
                         "environment:\n  EPOCHS: '3'\ncommand: [python, train.py]\n")
    assert submit_spec("-f", str(spec_file)) == {
        "name": "from-file", "kind": "training",
        "resources": {"gpu": 0.5, "memory": "8Gi"}, "environment": {"EPOCHS": "3"}, "command": ["python", "train.py"],
    }
    # options win, key by key inside resources and environment; -- COMMAND replaces the file's
    spec = submit_spec("other", "-f", str(spec_file), "-g", "1", "-e", "LR=0.1", "-p", "team-a", "--",
                       "python", "eval.py")
    assert spec["name"] == "other" and spec["project"] == "team-a"
    assert spec["resources"] == {"gpu": 1, "memory": "8Gi"}
    assert spec["environment"] == {"EPOCHS": "3", "LR": "0.1"}
    assert spec["command"] == ["python", "eval.py"]
    # JSON, and a whole workload document (what `runai describe NAME -o json|yaml` prints)
    doc = tmp_path / "w.json"
    doc.write_text(json.dumps({"spec": {"name": "w", "project": "p", "kind": "workspace"},
                               "status": {"phase": "Running"}, "events": []}))
    assert submit_spec("-f", str(doc)) == {"name": "w", "project": "p", "kind": "workspace"}
    # the Run:ai tree and the magics read files the same way
    assert cli_spec("workspace", "submit", "-f", str(doc)) == {"name": "w", "project": "p", "kind": "workspace"}
    assert parse_submit(["-f", str(spec_file)])["resources"] == {"gpu": 0.5, "memory": "8Gi"}


@pytest.mark.parametrize("content, field", [
    ("name: [unclosed", "file"),
    ("- a\n- list\n", "file"),
    ("name: x\nresources:\n  gpu: -1\n", "resources.gpu"),
    ("name: x\nno_such_field: 1\n", "no_such_field"),
])
def test_a_bad_spec_file_is_refused_naming_the_field(tmp_path, content, field):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(SubmitArgsError) as err:
        submit_spec("-f", str(path))
    assert err.value.field == field, err.value.errors


def test_a_missing_spec_file_is_refused_naming_it(tmp_path):
    with pytest.raises(SubmitArgsError) as err:
        submit_spec("-f", str(tmp_path / "nope.yaml"))
    assert err.value.field == "file" and "nope.yaml" in str(err.value)


def test_jupyter_runai_is_the_runai_command_so_jupyter_runai_serve_runs_the_hub_service(tmp_path):
    """`jupyter runai serve` (docs/jupyterhub.md): the package installs `jupyter-runai`, the script
    Jupyter's own command runs for `jupyter runai`. Installed here as pip would from pyproject."""
    import tomllib
    from pathlib import Path

    scripts = tomllib.loads((Path(cli.__file__).parents[1] / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["jupyter-runai"] == scripts["runai"]
    module, function = scripts["jupyter-runai"].split(":")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "jupyter-runai"
    script.write_text(f"#!{sys.executable}\nimport sys\nfrom {module} import {function}\nsys.exit({function}())\n")
    script.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTERHUB_", "RUNAI_"))}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"

    def jupyter(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "jupyter_core", *args], env=env, capture_output=True,
                              text=True, timeout=60)

    helped = jupyter("runai", "serve", "--help")
    assert helped.returncode == 0, helped.stderr
    assert "jupyter runai serve" in helped.stdout and "c.JupyterHub.services" in helped.stdout
    outside = jupyter("runai", "serve")  # not started by a hub: says so, exits 2, starts nothing
    assert outside.returncode == 2 and "JUPYTERHUB_SERVICE_URL" in outside.stderr, outside.stderr
