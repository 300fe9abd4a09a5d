"""Kill -9 durability: hundreds of workloads through a real server that dies at the dangerous
moments — right after a pod's launch returned (before its handle is saved), right before a
launch (its intent committed), and at an arbitrary moment — and restarts each time. In the end
nothing is lost (every workload succeeded), nothing ran twice (each pod's command appends one
line to a file: one per workload), and no device held more than it has (the pods' own
start/end times, per device, never add up to more than one GPU)."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from live_server import LiveServer
from jupyter_runai.service import CRASH_ENV

FRACTION = 0.5  # two pods share each of the two virtual GPUs


def crash_at(server: LiveServer, point: str, timeout: float = 120) -> None:
    """Start the server with the crash hook set and wait until it exits at that point."""
    server.env[CRASH_ENV] = point
    try:
        try:
            server.start()
        except RuntimeError:
            pass  # it died before it answered: fine, that is what it was told to do
        assert server.proc is not None
        server.proc.wait(timeout)
        assert server.proc.returncode == 137, f"it did not stop at {point}: {server.log_path.read_text()[-3000:]}"
    finally:
        server.env.pop(CRASH_ENV, None)
        server.proc = None


def check(server: LiveServer, runs, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        phases = Counter(w["status"]["phase"] for w in server.api("GET", "workloads")[1]["workloads"]
                         if w["spec"]["name"].startswith("w-"))
        if phases.get("Succeeded") == count or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert phases == {"Succeeded": count}, f"lost or stuck: {dict(phases)}"
    starts = Counter()
    intervals: dict[str, list[tuple[int, int]]] = {}
    began: dict[str, tuple[str, int]] = {}
    for line in runs.read_text().splitlines():
        name, what, device, at = line.split()
        if what == "start":
            starts[name] += 1
            began[name] = (device, int(at))
        else:
            device, start = began[name]
            intervals.setdefault(device, []).append((start, int(at)))
    twice = {name: n for name, n in starts.items() if n > 1}
    assert not twice, f"ran more than once: {twice}"
    assert len(starts) == count, f"never ran: {count - len(starts)}"
    for device, spans in intervals.items():
        edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans], key=lambda x: (x[0], x[1]))
        held = peak = 0
        for _, step in edges:
            held += step
            peak = max(peak, held)
        assert peak * FRACTION <= 1, f"device {device} held {peak * FRACTION:g} GPUs at once"


def durability(tmp_path, count: int, crashes: list[str], timeout: float) -> None:
    runs, gate = tmp_path / "runs.txt", tmp_path / "gate"
    only_runai = {"jupyter_runai": True, "jupyterlab": False, "jupyter_lsp": False, "notebook_shim": False,
                  "jupyter_server_terminals": False}  # a quicker start
    server = LiveServer(tmp_path, {"ServerApp": {"jpserver_extensions": only_runai},
                                   "LocalCluster": {"virtual_gpus": "2x24Gi", "watchdog_interval": 0},
                                   "RunaiApp": {"interval": 0.1, "poll_interval": 0.05}}).start()
    try:
        # two workloads hold both GPUs until the gate opens, so that the others wait their turn
        # and are launched only after the server was killed: by the servers that crash
        for i in range(2):
            server.api("POST", "workloads", {"name": f"hold-{i}", "resources": {"gpu": 1},
                                             "command": f"while [ ! -e {gate} ]; do sleep 0.05; done"})
            server.wait_phase(f"hold-{i}", "Running")
        line = f'echo "$RUNAI_WORKLOAD {{}} $CUDA_VISIBLE_DEVICES $(date +%s%N)" >> {runs}'
        command = f"{line.format('start')}; sleep 0.2; {line.format('end')}"
        for i in range(count):
            code, body = server.api("POST", "workloads", {"name": f"w-{i}", "command": command,
                                                          "resources": {"gpu": FRACTION}})
            assert code == 201, body
        server.kill()
        gate.touch()  # the holders end while no server runs
        for point in crashes:
            if point == "anywhere":
                server.start()
                time.sleep(1.0)
                server.kill()
            else:
                crash_at(server, point)
        server.start()
        check(server, runs, count, timeout)
    finally:
        if server.proc is None:
            server.start()
        server.end_workloads()
        server.stop()


def test_kill_9_at_the_dangerous_moments_loses_nothing_and_runs_nothing_twice(tmp_path):
    durability(tmp_path, 120, ["after-launch:3", "before-launch:2", "anywhere", "after-launch:1"], timeout=120)


@pytest.mark.slow
def test_kill_9_many_times_with_hundreds_of_workloads(tmp_path):
    crashes = [f"{where}:{n}" for n in (1, 4, 9, 2, 6) for where in ("after-launch", "before-launch")]
    durability(tmp_path, 500, [*crashes, "anywhere", "anywhere", "after-launch:1"], timeout=600)
