"""The Python client's objects (``jupyter_runai.Client``, ``Workload``) against a real Jupyter
server with the extension (tests/live_server.py), its pods real processes."""

from __future__ import annotations

import pytest

from jupyter_runai import Client, RunaiError, Workload
from jupyter_runai.client import Node, Project, WorkloadList
from live_server import LiveServer


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = LiveServer(tmp_path_factory.mktemp("client-objects")).start()
    yield live
    live.end_workloads()
    live.stop()


@pytest.fixture
def runai(server):
    with Client(server.url, server.token) as client:
        yield client


def test_submit_returns_a_workload_to_watch_and_manage(runai, server, capsys):
    w = runai.submit("echo hello-objects; sleep 30", name="obj-a", gpu=0.5, environment={"X": "1"})
    assert isinstance(w, Workload) and (w.name, w.project, w.kind) == ("obj-a", "default", "training")
    assert w.spec["resources"]["gpu"] == 0.5 and w.spec["environment"] == {"X": "1"}
    assert w.wait(timeout=30, show=False) is w and w.phase == "Running"
    assert w.status == "Running" and w.url is None  # a training job has no URL
    assert "obj-a" in repr(w) and "Running" in w._repr_html_()
    assert "(0.5 GPU)" in repr(w)
    assert runai.get("obj-a") == w
    listed = runai.workloads()
    assert isinstance(listed, WorkloadList) and "obj-a" in [x.name for x in listed]
    assert w.stop() is w and w.phase in ("Stopping", "Stopped")
    w.wait("Stopped", timeout=30, show=False)
    assert server.workload("obj-a")["status"]["phase"] == "Stopped"
    w.resume()
    assert w.wait(timeout=30, show=False).phase == "Running"
    assert w.delete().phase == "Deleting"


def test_logs_and_follow(runai, server, capsys):
    w = runai.submit("echo first-line; sleep 1; echo second-line", name="obj-logs")
    assert w.logs(follow=True) is None  # printed as it came, until the pod ended
    out = capsys.readouterr().out
    assert "first-line" in out and "second-line" in out
    assert w.wait("finished", timeout=30, show=False).phase == "Succeeded"
    assert "second-line" in w.logs()
    w.delete()


def test_wait_shows_why_it_is_pending(runai, server, capsys):
    blocker = runai.submit("sleep 4", name="obj-blocker", gpu=2)  # both virtual GPUs
    blocker.wait(timeout=30, show=False)
    waiting = runai.submit("echo got-a-gpu", name="obj-waiting", gpu=1)
    assert waiting.wait(timeout=60).phase in ("Running", "Succeeded")  # after the blocker ended
    out = capsys.readouterr().out
    assert "obj-waiting: Pending - " in out  # the pending reason, shown while it waited
    for w in (blocker, waiting):
        w.delete()


def test_a_refused_submit_raises_and_creates_nothing(runai, server):
    with pytest.raises(RunaiError) as caught:
        runai.submit("true", name="obj-bad", gpu=1.5)
    assert caught.value.status == 400 and caught.value.field == "resources.gpu"
    assert "obj-bad" not in [w.name for w in runai.workloads(all_projects=True)]


def test_projects_and_nodes_are_objects(runai):
    projects = runai.projects()
    assert [p.name for p in projects] == ["default"] and isinstance(projects[0], Project)
    assert "deserved" in projects[0].data and "<table" in projects._repr_html_()
    nodes = runai.nodes()
    assert nodes and isinstance(nodes[0], Node) and len(nodes[0].devices) == 2
    with pytest.raises(AttributeError, match="no field"):
        projects[0].no_such_field


def test_client_in_a_kernel_finds_the_server_that_runs_it(server):
    """A kernel started by the Jupyter server (as JupyterLab starts one) makes Client() with no
    arguments, no RUNAI_URL: it talks to that server, found as the kernel's parent."""
    import requests
    from jupyter_client import BlockingKernelClient

    headers = {"Authorization": f"token {server.token}"}
    started = requests.post(server.url + "api/kernels", json={"name": "python3"}, headers=headers, timeout=30)
    assert started.status_code == 201, started.text
    kernel_id = started.json()["id"]
    kc = BlockingKernelClient(connection_file=str(server.dirs["runtime"] / f"kernel-{kernel_id}.json"))
    kc.load_connection_file()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        code = ("from jupyter_runai import Client\nc = Client()\n"
                "print(c.api.server.url, c.api.server.source, [p.name for p in c.projects()])")
        out: list[str] = []
        reply = kc.execute_interactive(code, timeout=60, output_hook=lambda msg: out.append(
            msg["content"].get("text", "") if msg["msg_type"] == "stream" else str(msg["content"].get("evalue", ""))))
        assert reply["content"]["status"] == "ok", out
        text = "".join(out)
        assert server.url in text and "JPY_PARENT_PID" in text and "['default']" in text
    finally:
        kc.stop_channels()
        requests.delete(server.url + f"api/kernels/{kernel_id}", headers=headers, timeout=30)


def test_with_no_project_named_the_client_and_cli_use_the_servers_first_project(tmp_path, monkeypatch, capsys):
    """Nothing assumes a project named ``default`` exists: on a server whose queue file has only
    ``team-a``, a client and ``runai submit`` that name no project (no -p, no RUNAI_PROJECT, nothing
    saved) submit to the first project the caller may submit to, which ``/info`` offers."""
    from pathlib import Path

    from jupyter_runai import cli

    queues = tmp_path / "queues.yaml"
    queues.write_text("projects:\n  - {name: team-a, deserved: {gpu: 1}}\n")
    live = LiveServer(tmp_path / "server", {"RunaiApp": {"queues_file": str(queues)}})
    live.env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)  # this checkout's code
    live.start()
    monkeypatch.delenv("RUNAI_PROJECT", raising=False)
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path / "cli-config"))  # nothing saved
    try:
        with Client(live.url, live.token) as runai:
            assert runai.project == "team-a"
            w = runai.submit("true", name="no-project-named")
            assert w.project == "team-a"
        assert cli.main(["--url", live.url, "--token", live.token, "submit", "cli-no-project", "--", "true"]) == 0
        assert live.workload("cli-no-project", "team-a")["spec"]["project"] == "team-a"
        assert cli.main(["--url", live.url, "--token", live.token, "describe", "cli-no-project", "-o", "json"]) == 0
        assert '"team-a"' in capsys.readouterr().out
    finally:
        live.end_workloads()
        live.stop()


def test_a_third_party_workload_shows_its_owner_in_tables_and_reprs():
    doc = {"spec": {"name": "their-train", "project": "default", "kind": "training", "resources": {"gpu": 1}},
           "status": {"phase": "Running"},
           "external": {"api_version": "batch/v1", "kind": "Job", "name": "their-train", "namespace": "team-x",
                        "uid": "u1"}}
    w = Workload(None, doc)
    assert w.kind == "training" and w.external["namespace"] == "team-x"
    assert w._row()[2] == "Job (external)" and "Job (external)" in repr(w) and "Job (external)" in w._repr_html_()
    assert Workload(None, {**doc, "external": None})._row()[2] == "training"


def test_a_workloads_request_reads_as_in_the_cli(runai):
    """Magics and widgets show the CLI's words: '2 GPUs' (not '2 GPU'), the pods of a distributed job."""
    whole = runai.submit("sleep 30", name="obj-two", gpu=2, queue_anyway=True)
    gang = runai.submit("sleep 30", name="obj-gang", kind="distributed", workers=2, gpu=1, queue_anyway=True)
    cpu = runai.submit("true", name="obj-cpu")
    try:
        assert "(2 GPUs)" in repr(whole) and "2 GPUs" in whole._repr_html_()
        assert "(1 GPU x 3 pods)" in repr(gang)
        assert "(no GPU)" in repr(cpu)
    finally:
        for w in (whole, gang, cpu):
            w.delete()
