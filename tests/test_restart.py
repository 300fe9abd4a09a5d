"""A killed server loses nothing: after a restart every workload is there, running pods are
re-adopted, pods that ended meanwhile are marked with the truth, pending ones keep their place."""

from __future__ import annotations

import os
import time

import pytest

from live_server import LiveServer


@pytest.fixture
def server(tmp_path):
    live = LiveServer(tmp_path, {"LocalCluster": {"virtual_gpus": "1x24Gi"}}).start()
    yield live
    for workload in live.api("GET", "workloads")[1]["workloads"]:
        live.api("DELETE", f"workloads/default/{workload['spec']['name']}")
    time.sleep(0.5)
    live.stop()


def pid_of(server: LiveServer, name: str) -> int:
    """The pod's process id, from its log header (the pod prints its own pid first)."""
    for _ in range(100):
        text = server.api("GET", f"workloads/default/{name}/logs")[1]
        found = [line for line in text.splitlines() if line.startswith("pid=")]
        if found:
            return int(found[0][4:])
        time.sleep(0.05)
    raise AssertionError(f"no pid in the log of {name}: {text!r}")


def test_kill_and_restart_loses_nothing(server: LiveServer, tmp_path):
    flag = tmp_path / "finish-now"
    # holds the only GPU until the flag file appears, then exits with code 7
    server.api("POST", "workloads", {"name": "long", "resources": {"gpu": 1},
                                     "command": f"echo pid=$$; while [ ! -e {flag} ]; do sleep 0.1; done; exit 7"})
    server.api("POST", "workloads", {"name": "keeps-running", "resources": {"gpu": 0},
                                     "command": "echo pid=$$; sleep 60"})
    server.wait_phase("long", "Running")
    server.wait_phase("keeps-running", "Running")
    for name in ("queued-1", "queued-2"):
        code, body = server.api("POST", "workloads", {"name": name, "resources": {"gpu": 1}, "command": "echo done"})
        assert code == 201, body
    assert server.wait_phase("queued-1", "Pending")["status"]["phase"] == "Pending"
    running_pid = pid_of(server, "keeps-running")

    server.kill()
    flag.touch()  # "long" ends with code 7 while nobody watches
    time.sleep(1.0)
    server.start()

    code, listing = server.api("GET", "workloads")
    assert [w["spec"]["name"] for w in listing["workloads"]] == ["long", "keeps-running", "queued-1", "queued-2"]
    again = server.workload("keeps-running")
    assert again["status"]["phase"] == "Running", "re-adopted, not restarted"
    assert pid_of(server, "keeps-running") == running_pid
    os.kill(running_pid, 0)  # the same process still runs
    long = server.wait_phase("long", "Failed")
    assert "code 7" in long["status"]["message"], "the exit code recorded while the server was down"
    # the GPU is free again: the queue goes on in its order
    server.wait_phase("queued-1", "Succeeded")
    server.wait_phase("queued-2", "Succeeded")
    code, body = server.api("POST", "workloads/default/keeps-running/stop")
    assert code == 200
    server.wait_phase("keeps-running", "Stopped")
