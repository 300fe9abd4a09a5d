"""%runai and %%runai in a real IPython shell and in a real kernel (a notebook run by nbclient),
against a live Jupyter server."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.testing import globalipapp

from jupyter_runai.client import RunaiError, Workload, WorkloadList
from jupyter_runai.magics import RunaiMagicError, cell_command
from live_server import LiveServer


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = LiveServer(tmp_path_factory.mktemp("magics")).start()
    yield live
    for workload in live.api("GET", "workloads")[1]["workloads"]:
        live.api("DELETE", f"workloads/default/{workload['spec']['name']}")
    live.stop()


@pytest.fixture
def ip(server, monkeypatch):
    monkeypatch.setenv("RUNAI_URL", server.url)
    monkeypatch.setenv("RUNAI_TOKEN", server.token)
    globalipapp.start_ipython()  # once per process; then get_ipython() is the shell
    shell = globalipapp.get_ipython()
    shell.run_line_magic("load_ext", "jupyter_runai")
    return shell


def wait_logs(server, name, text, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code, body = server.api("GET", f"workloads/default/{name}/logs")
        if code == 200 and text in body:
            return body
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not in the log of {name}")


def test_line_magic_returns_the_objects_it_shows(ip, server, capsys):
    w = ip.run_line_magic("runai", "submit from-line -g 0.5 -- echo hello-from-the-line")
    assert isinstance(w, Workload) and (w.project, w.name, w.kind) == ("default", "from-line", "training")
    assert "from-line" in repr(w) and "from-line" in w._repr_html_()
    assert "Submitted" not in capsys.readouterr().out  # the object is the display, not a printed line too
    assert w.wait("Succeeded", timeout=30, show=False) is w and w.phase == "Succeeded"
    wait_logs(server, "from-line", "hello-from-the-line")
    assert "hello-from-the-line" in w.logs()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z hello-from-the-line\n", w.logs(timestamps=True))
    capsys.readouterr()
    ip.run_line_magic("runai", "logs from-line --timestamps --since 10m")
    assert re.fullmatch(r"\S+Z hello-from-the-line\n", capsys.readouterr().out)
    ws = ip.run_line_magic("runai", "list")
    assert isinstance(ws, WorkloadList) and "from-line" in [x.name for x in ws]
    assert "<table" in ws._repr_html_() and "from-line" in ws._repr_html_()
    described = ip.run_line_magic("runai", "describe from-line")
    assert described == w and described.phase == "Succeeded"
    documents = ip.run_line_magic("runai", "-o json list")  # -o json: the API's documents
    assert "from-line" in [d["spec"]["name"] for d in documents]
    assert ip.run_line_magic("runai", "--help") is None  # printing commands return nothing
    assert "submit" in capsys.readouterr().out
    deleted = ip.run_line_magic("runai", "delete from-line -y")
    assert isinstance(deleted, Workload) and deleted.phase in ("Deleting", "Succeeded")


@pytest.mark.parametrize("line, field, status", [
    ("submit bad -g 1.5 -- true", "resources.gpu", None),          # refused before sending (the CLI's parser)
    ("describe no-such-workload", "name", 404),                    # refused by the server
    ("list --phase Runing", "phase", 400),                          # a filter value the server does not have
])
def test_a_failed_magic_raises_with_the_servers_message(ip, server, line, field, status):
    with pytest.raises(RunaiMagicError) as caught:
        ip.run_line_magic("runai", line)
    error = caught.value
    assert isinstance(error, RunaiError) and isinstance(error, UsageError)
    assert error.field == field and error.status == status
    assert field in str(error)


def test_a_policy_refusal_names_every_rule_broken_and_what_each_allows(ip, server):
    code, body = server.api("PUT", "policies", {"scope": "cluster", "kind": "training",
                                                "rules": {"resources.gpu": {"max": 1}, "image": {"allowed": ["b:1"]}}})
    assert code == 200, body
    try:
        with pytest.raises(RunaiMagicError) as caught:
            ip.run_line_magic("runai", "submit too-much -g 2 -i mine:1 -- true")
        message = str(caught.value)
        assert "resources.gpu: 2 is above 1" in message and "(allowed: at most 1)" in message
        assert "image: mine:1 is not allowed" in message and "(allowed: b:1)" in message
        assert caught.value.status == 400 and caught.value.field == "resources.gpu"
    finally:
        assert server.api("DELETE", "policies?scope=cluster&kind=training")[0] == 204


def test_a_bare_magic_lists_the_commands(ip, capsys):
    assert ip.run_line_magic("runai", "") is None  # a bare %runai lists the commands
    assert "submit" in capsys.readouterr().out


def test_a_failed_magic_raises_on_bad_options(ip):
    with pytest.raises(RunaiMagicError, match="no-such-option"):
        ip.run_line_magic("runai", "submit x --no-such-option -- true")
    with pytest.raises(RunaiMagicError, match="unbalanced|quotation"):
        ip.run_line_magic("runai", "submit 'x")


def test_run_all_stops_at_a_failed_magic(server, tmp_path):
    """A notebook run top to bottom in a real kernel: the cell with the failed %runai is an error
    (RunaiMagicError, a UsageError; the field in the message), and the cells after it do not run."""
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in (
        "%load_ext jupyter_runai",
        "w = %runai submit nb-ok -- true\nprint(type(w).__name__, w.name)",
        "%runai submit nb-bad -g 1.5 -- true",
        "print('after the failure')",
    )]
    env = {**os.environ, "RUNAI_URL": server.url, "RUNAI_TOKEN": server.token,
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent.parent)] + [os.environ.get("PYTHONPATH", "")])}
    client = NotebookClient(nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    with pytest.raises(CellExecutionError) as caught:
        client.execute(env=env)
    assert caught.value.ename == "RunaiMagicError" and "resources.gpu" in caught.value.evalue
    assert "Workload nb-ok" in "".join(o.get("text", "") for o in nb.cells[1].outputs)
    assert nb.cells[3].outputs == [] and nb.cells[3].get("execution_count") is None  # not run


def test_cell_magic_submits_the_cell_as_a_script(ip, server):
    ip.run_cell_magic("runai", "submit from-cell -e GREETING=hi",
                      "import os\nprint(os.environ['GREETING'], 'from a cell', 6 * 7)\n")
    server.wait_phase("from-cell", "Succeeded")
    wait_logs(server, "from-cell", "hi from a cell 42")
    ip.run_cell_magic("runai", "submit shell-cell --shell", "echo $((40 + 2)) from sh\n")
    server.wait_phase("shell-cell", "Succeeded")
    wait_logs(server, "shell-cell", "42 from sh")


def test_cell_magic_errors():
    with pytest.raises(RunaiMagicError, match="only submits"):
        cell_command("list", "print(1)")
    with pytest.raises(RunaiMagicError, match="the cell is the command"):
        cell_command("submit x -- python", "print(1)")
    with pytest.raises(RunaiMagicError, match="empty"):
        cell_command("submit x", "  \n")
    assert cell_command("submit x -g 1", "print(1)") == ["submit", "x", "-g", "1", "--", "python", "-c", "print(1)"]


def test_submit_attach_prints_the_log_and_returns_the_finished_workload(ip, server, capsys):
    """`%runai submit --attach` (v1's flag): the log appears in the cell's output as it comes, and the
    magic returns the workload once it has ended; a failed one raises."""
    w = ip.run_line_magic("runai", "submit attached-cell --attach -- echo hello-attached")
    assert isinstance(w, Workload) and w.phase == "Succeeded"
    assert "hello-attached" in capsys.readouterr().out
    with pytest.raises(RunaiMagicError, match="'attached-fails' failed"):
        ip.run_line_magic("runai", "submit attached-fails --attach -- sh -c 'echo going; exit 4'")
    assert "going" in capsys.readouterr().out
def test_monitoring_commands_print_in_a_notebook(ip, server, capsys):
    w = ip.run_line_magic("runai", "submit metered -g 1 -- echo metered")
    assert w.wait("Succeeded", timeout=30, show=False).phase == "Succeeded"
    capsys.readouterr()
    assert ip.run_line_magic("runai", "report --by workload") is None
    report = capsys.readouterr().out
    assert "ALLOCATED (GPU-h)" in report and "metered" in report
    ip.run_line_magic("runai", "events --workload metered --type succeeded")
    assert "Succeeded   default/metered" in capsys.readouterr().out
    ip.run_line_magic("runai", "top --once")
    assert "GPU(s)" in capsys.readouterr().out
    with pytest.raises(RunaiMagicError, match=r"^from: the first day \(2026-02-01\) is after the last"):
        ip.run_line_magic("runai", "report --from 2026-02-01 --to 2026-01-01")
