"""%runai and %%runai in a real IPython shell, against a live Jupyter server."""

from __future__ import annotations

import time

import pytest
from IPython.testing import globalipapp

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


def test_line_magic_is_the_cli(ip, server, capsys):
    assert ip.run_line_magic("runai", "submit from-line -g 0.5 -- echo hello-from-the-line") is None
    server.wait_phase("from-line", "Succeeded")
    wait_logs(server, "from-line", "hello-from-the-line")
    capsys.readouterr()
    ip.run_line_magic("runai", "list")
    assert "from-line" in capsys.readouterr().out
    assert ip.run_line_magic("runai", "submit bad -g 1.5 -- true") == 2  # usage error, field named
    assert "resources.gpu" in capsys.readouterr().err


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
