"""The ipywidgets (jupyter_runai.widgets) against a real Jupyter server with the extension
(tests/live_server.py): their state is read through each widget's model (``get_state()``, what
the front end is sent), and the live ones follow the server's event stream."""

from __future__ import annotations

import time

import pytest

from jupyter_runai.client import Client
from jupyter_runai.widgets import GpuView, QuotaView, SubmitForm, WorkloadMonitor
from live_server import LiveServer


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = LiveServer(tmp_path_factory.mktemp("widgets")).start()
    yield live
    live.end_workloads()
    live.stop()


@pytest.fixture
def runai(server):
    with Client(server.url, server.token) as client:
        yield client
    server.end_workloads()


def state(widget, key="value"):
    """A widget's value as its model holds it (what the notebook front end shows); a selection's
    model holds the index of the chosen label, and this gives that label."""
    model = widget.get_state()
    if key == "value" and "value" not in model and "index" in model:
        return model["_options_labels"][model["index"]]
    return model[key]


def eventually(check, timeout=30.0):
    """Wait (bounded) until ``check()`` is true: the live widgets change when events arrive."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("the widget did not change")
        time.sleep(0.05)


def test_submit_form_has_the_servers_defaults_and_bounds(runai, server):
    form = SubmitForm(runai)
    info = server.api("GET", "info")[1]["form"]
    labels = {kind["name"]: kind["label"] for kind in info["kinds"]}
    assert state(form.kind) == labels[info["defaults"]["kind"]] and state(form.project) == info["defaults"]["project"]
    assert (state(form.gpu, "min"), state(form.gpu, "max")) == (info["bounds"]["gpu"]["min"], 2)
    assert state(form.fraction, "max") == info["bounds"]["fraction"]["max"]
    assert state(form.command) == info["defaults"]["commands"]["training"]
    assert state(form.priority_class) == "(by kind)" and "priority_class" not in form.spec()  # shown, not blank
    # the fields of each kind: workers only for distributed training
    assert form.workers.layout.get_state()["display"] == "none"
    form.kind.value = "distributed"
    assert form.workers.layout.get_state()["display"] == ""
    assert state(form.command) == info["defaults"]["commands"]["distributed"]
    form.kind.value = "training"
    # a fraction of one GPU, submitted with the button
    form.name.value, form.gpu_mode.value, form.fraction.value = "from-form", "fraction", 0.5
    form.command.value = "echo from-the-form"
    form.button.click()
    assert form.workload is not None and form.workload.name == "from-form"
    assert "from-form" in state(form.message)
    assert server.workload("from-form")["spec"]["resources"]["gpu"] == 0.5
    # refused: the server's message names the field; nothing is created
    form.name.value = "Not A Name"
    assert form.submit() is None
    assert "name" in state(form.message) and server.api("GET", "workloads/default/Not A Name")[0] == 404


def test_the_monitors_log_reads_as_in_a_terminal_with_times_on_demand(runai, server):
    # a progress bar redrawn with \r and coloured words: the log area shows what a terminal shows
    script = (r"printf '\033[32mepoch 1\033[0m\n 10%%|#   |\r 50%%|##  |\r100%%|####|\ndone\n'; sleep 60")
    runai.submit(script, name="bars", gpu=0.5)
    monitor = WorkloadMonitor(runai, live=False)
    assert monitor.timestamps.layout.display == "none"  # no log shown yet
    eventually(lambda: monitor.refresh() or monitor.act("logs", "bars") or "done" in state(monitor.logs))
    assert state(monitor.logs).splitlines() == ["epoch 1", "100%|####|", "done"]
    assert monitor.timestamps.layout.display == ""  # offered once a log is shown
    monitor.timestamps.value = True  # read again, each line after its time (UTC)
    lines = state(monitor.logs).splitlines()
    assert len(lines) == 3 and all(len(line.split(" ", 1)[0]) == 30 and line.split(" ", 1)[0].endswith("Z")
                                   for line in lines), lines
    assert [line.split(" ", 1)[1] for line in lines] == ["epoch 1", "100%|####|", "done"]
    monitor.close()
    runai.get("bars").delete()


def test_workload_monitor_is_live_and_acts(runai, server):
    monitor = WorkloadMonitor(runai)
    assert monitor.listening and state(monitor.message) == "<i>No workloads.</i>"
    runai.submit("echo monitored-output; sleep 60", name="watched", gpu=0.5)
    eventually(lambda: "default/watched" in monitor.rows
               and state(monitor.rows["default/watched"]["phase"]) == "Running")
    row = monitor.rows["default/watched"]
    assert state(row["request"]) == "0.5 GPU" and state(row["resume"], "disabled") is True
    eventually(lambda: row["logs"].click() or "monitored-output" in state(monitor.logs))
    assert monitor.logs.layout.get_state()["display"] == "" and "watched" in state(monitor.logs_title)
    row["stop"].click()
    eventually(lambda: state(row["phase"]) == "Stopped")
    assert server.workload("watched")["status"]["phase"] == "Stopped"
    assert state(row["resume"], "disabled") is False and state(row["stop"], "disabled") is True
    row["delete"].click()
    eventually(lambda: "default/watched" not in monitor.rows)
    monitor.close()
    assert not monitor.listening  # closed: it no longer follows the event stream


def test_quota_and_gpu_views_follow_allocations(runai, server):
    quota, gpus = QuotaView(runai), GpuView(runai)
    assert len(gpus.bars) == 2 and all(state(bar, "max") == 1 for bar in gpus.bars.values())
    assert state(quota.bars["default"]) == 0 and state(quota.bars["default"], "max") == 2
    assert "deserved 2 GPU" in state(quota.labels["default"])
    w = runai.submit("sleep 60", name="quota-user", gpu=0.5)
    w.wait(timeout=30, show=False)
    eventually(lambda: state(quota.bars["default"]) == 0.5)
    eventually(lambda: sorted(state(bar) for bar in gpus.bars.values()) == [0, 0.5])
    assert any("quota-user" in state(label) for label in gpus.labels.values())
    assert all("virtual: utilization and memory use not measured" in state(label) for label in gpus.labels.values())
    w.delete()
    eventually(lambda: state(quota.bars["default"]) == 0)
    for view in (quota, gpus):
        view.close()
        assert not view.listening


def test_submit_form_follows_the_effective_policy_of_its_project_and_kind(runai, server):
    code, body = server.api("PUT", "policies", {"scope": "project", "name": "default", "kind": "training",
                                                "defaults": {"resources.cpu": "250m", "image": "base:1"},
                                                "rules": {"resources.gpu": {"max": 1}}})
    assert code == 200, body
    try:
        form = SubmitForm(runai)
        assert state(form.cpu) == "250m" and state(form.image) == "base:1" and state(form.gpu, "max") == 1
        form.memory.value = "2Gi"  # typed by the user: stays through a change of kind
        form.kind.value = "distributed"  # no policy for it: the server's own defaults and bounds again
        info = server.api("GET", "info")[1]["form"]
        assert state(form.cpu) == info["defaults"]["cpu"] and state(form.gpu, "max") == 2
        assert state(form.memory) == "2Gi"
        form.kind.value = "training"
        assert state(form.cpu) == "250m" and state(form.gpu, "max") == 1
    finally:
        assert server.api("DELETE", "policies?scope=project&name=default&kind=training")[0] == 204
