"""One scheduler per state directory (docs/configuration.md, "State"): a second Jupyter
server started on the state of a running one does not schedule, says which server does,
and no request of either gets a 500; no device is ever booked twice."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from jupyter_runai.statelock import StateLock, StateLocked
from live_server import LiveServer


def test_a_state_directory_has_one_lock_holder_until_it_lets_go(tmp_path):
    first = StateLock(tmp_path)
    first.acquire(url="http://127.0.0.1:8888/")
    second = StateLock(tmp_path)
    with pytest.raises(StateLocked) as refused:
        second.acquire(url="http://127.0.0.1:9999/")
    assert refused.value.holder["url"] == "http://127.0.0.1:8888/"
    assert "http://127.0.0.1:8888/" in str(refused.value) and "c.RunaiApp.state_dir" in str(refused.value)
    first.release()
    second.acquire(url="http://127.0.0.1:9999/")  # free once the holder lets go (or dies)
    assert second.held
    second.release()


@pytest.fixture
def two_servers(tmp_path):
    first = LiveServer(tmp_path / "a", {"LocalCluster": {"virtual_gpus": "1x24Gi"}}).start()
    second = LiveServer(tmp_path / "b", {"LocalCluster": {"virtual_gpus": "1x24Gi"}})
    second.dirs["state"] = first.dirs["state"]  # the same state directory
    try:
        second.start(ready=503)
        yield first, second
    finally:
        first.end_workloads()
        second.stop()
        first.stop()


def test_a_second_server_on_the_same_state_never_schedules(two_servers, tmp_path):
    first, second = two_servers
    code, body = second.api("GET", "info")
    assert code == 503
    message = body["error"]["message"]
    assert first.url in message and "does not schedule" in message  # it names the server that does

    hold = "sleep 30"
    assert first.api("POST", "workloads", {"name": "one", "resources": {"gpu": 1}, "command": hold})[0] == 201
    code, body = second.api("POST", "workloads", {"name": "two", "resources": {"gpu": 1}, "command": hold})
    assert code == 503 and first.url in body["error"]["message"]  # refused: nothing happened
    for path in ("workloads", "nodes", "projects", "workloads/default/one", "workloads/default/one/logs"):
        assert second.api("GET", path)[0] == 503, path  # every request says why, none is a 500
    first.wait_phase("one", "Running")
    workloads = first.api("GET", "workloads")[1]["workloads"]
    assert [w["spec"]["name"] for w in workloads] == ["one"]
    held = [d for n in first.api("GET", "nodes")[1]["nodes"] for d in n["devices"] if d["pods"]]
    assert len(held) == 1 and [p["pod"] for p in held[0]["pods"]] == ["default/one-0"]  # never two on it

    log = Path(second.log_path).read_text()
    assert "does not schedule" in log and "Traceback" not in log


def test_the_state_is_free_again_once_its_server_is_gone(tmp_path):
    first = LiveServer(tmp_path / "a").start()
    first.kill()  # SIGKILL: the kernel releases the lock with the process
    again = LiveServer(tmp_path / "b")
    again.dirs["state"] = first.dirs["state"]
    again.start()  # schedules: /info answers 200
    try:
        assert again.api("GET", "info")[0] == 200
    finally:
        again.stop()
