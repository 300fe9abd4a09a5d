"""The local cluster with real processes (short commands), and a fake NVML behind the seam."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from traitlets.config import Config

from jupyter_runai.clusters import Cluster, FileToWrite, Mount, PodLaunch, PodReport, PodState
from jupyter_runai.clusters.local import LocalCluster, _alive, parse_virtual_gpus
from jupyter_runai.clusters.nvml import NvmlDevice, PynvmlNvml

GIB = 1024**3


class FakeNvml:
    """The NVML stand-in: devices as given, per-process memory and utilization as the test sets them
    (``utilization[index]`` None: the driver does not measure processes)."""

    def __init__(self, count: int = 2, memory: int = 16 * GIB) -> None:
        self._devices = [NvmlDevice(i, f"GPU-fake-{i}", "Fake H200", memory) for i in range(count)]
        self.memory: dict[int, dict[int, int]] = {}
        self.utilization: dict[int, dict[int, float] | None] = {}
        self.closed = False

    def process_utilization(self, index: int) -> dict[int, float] | None:
        found = self.utilization.get(index, {})
        return None if found is None else dict(found)

    def devices(self) -> list[NvmlDevice]:
        return list(self._devices)

    def process_memory(self, index: int) -> dict[int, int]:
        return dict(self.memory.get(index, {}))

    def usage(self, index: int) -> tuple[int | None, float | None]:
        return sum(self.memory.get(index, {}).values()), 42.0

    def close(self) -> None:
        self.closed = True


def make_launch(cluster: LocalCluster, name: str, command, *, index: int = 0, node: str | None = None,
                uid: str | None = None, **kwargs) -> PodLaunch:
    kwargs.setdefault("kind", "training")
    kwargs.setdefault("pod_count", 1)
    kwargs.setdefault("devices", [])
    kwargs.setdefault("fraction", None)
    kwargs.setdefault("gpu_memory_limit", None)
    kwargs.setdefault("gpu_fraction_limit", None)
    return PodLaunch(
        key=f"default/{name}-{index}", workload=name, workload_uid=uid or f"{name}-uid-0123456789", project="default",
        index=index, node=node or cluster.node_name, command=command, **kwargs,
    )


def wait_report(cluster: LocalCluster, key: str, timeout: float = 10.0, state: PodState | None = None) -> PodReport:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for report in cluster.poll():
            if report.key == key and (state is None or report.state == state):
                return report
        time.sleep(0.02)
    raise AssertionError(f"no report for {key} within {timeout} s")


def wait_reports(cluster: LocalCluster, keys, timeout: float = 10.0) -> dict[str, PodReport]:
    """The first report of each key (poll() hands each change out once)."""
    found: dict[str, PodReport] = {}
    deadline = time.monotonic() + timeout
    while set(keys) - set(found) and time.monotonic() < deadline:
        for report in cluster.poll():
            found.setdefault(report.key, report)
        time.sleep(0.02)
    assert set(keys) <= set(found), f"no report for {sorted(set(keys) - set(found))} within {timeout} s"
    return found


def wait_file(path: Path, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text()
        time.sleep(0.02)
    raise AssertionError(f"{path} not written within {timeout} s")


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def group_gone(pgid: int, timeout: float = 3.0) -> bool:
    """True once no process of the group is left (killed orphans are reaped by init a moment later)."""
    deadline = time.monotonic() + timeout
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not group_alive(pgid)


def zombie_children() -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                fields = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if fields[0] == "Z" and int(fields[1]) == os.getpid():
                found.append(int(name))
    return found


@pytest.fixture
def cluster(tmp_path):
    cluster = LocalCluster(state_dir=str(tmp_path / "state"), nvml=FakeNvml(count=0), watchdog_interval=0)
    yield cluster
    for key in list(cluster._pods):
        cluster.stop(key, 0)
    time.sleep(0.05)
    cluster.poll()
    cluster.close()


ENV_DUMP = (
    "import json, os; print('ENV=' + json.dumps({k: v for k, v in os.environ.items() "
    "if k.startswith(('RUNAI_', 'CUDA_', 'NVIDIA_', 'GPU_', 'MASTER_', 'PORT', 'WORLD_', 'RANK', "
    "'LOCAL_RANK', 'NODE_RANK', 'JOB_', 'POD_', 'MY_', 'PATH'))}))"
)


def env_from_log(cluster: LocalCluster, key: str, handle) -> dict[str, str]:
    text = cluster.log_path(key, handle).read_text()
    line = next(line for line in text.splitlines() if line.startswith("ENV="))
    return json.loads(line[4:])


# ------------------------------------------------------------------ config and nodes


def test_protocol_and_default_virtual_gpus(cluster):
    assert isinstance(cluster, Cluster)
    (node,) = cluster.nodes()
    assert node.name == cluster.node_name
    assert [(d.index, d.uuid, d.virtual, d.memory) for d in node.devices] == [
        (0, f"VIRTUAL-GPU-{node.name}-0", True, 24 * GIB), (1, f"VIRTUAL-GPU-{node.name}-1", True, 24 * GIB)]
    assert node.cpu == (os.cpu_count() or 1) * 1000 and node.memory > 0
    assert [m.used_memory for m in cluster.metrics()] == [None, None]


def test_virtual_gpus_parsing_and_real_devices(tmp_path):
    assert parse_virtual_gpus("2x24Gi") == {"count": 2, "memory": 24 * GIB}
    assert parse_virtual_gpus({"count": 3, "memory": "8Gi"}) == {"count": 3, "memory": 8 * GIB}
    assert parse_virtual_gpus(0)["count"] == 0
    with pytest.raises(ValueError):
        parse_virtual_gpus("two GPUs")
    real = LocalCluster(state_dir=str(tmp_path), nvml=FakeNvml(count=2))
    assert [(d.uuid, d.virtual) for d in real.nodes()[0].devices] == [("GPU-fake-0", False), ("GPU-fake-1", False)]
    assert real.nodes()[0].labels["nvidia.com/gpu.product"] == "Fake-H200"
    assert [m.utilization for m in real.metrics()] == [42.0, 42.0]
    mixed = LocalCluster(state_dir=str(tmp_path), nvml=FakeNvml(count=1), virtual_gpus="1x8Gi")
    assert [(d.index, d.virtual) for d in mixed.nodes()[0].devices] == [(0, False), (1, True)]


def test_traitlets_config_and_virtual_nodes(tmp_path):
    config = Config()
    config.LocalCluster.virtual_gpus = {"count": 0}
    config.LocalCluster.stop_grace_seconds = 3.0
    config.LocalCluster.virtual_nodes = [
        {"name": "node-a", "gpus": 4, "gpu_memory": "80Gi", "cpu": 32, "memory": "256Gi",
         "labels": {"runai/node-pool": "a100"}},
        {"name": "node-b", "gpus": 2, "labels": {"runai/node-pool": "t4"}},
    ]
    cluster = LocalCluster(config=config, state_dir=str(tmp_path), nvml=FakeNvml(count=0))
    assert cluster.stop_grace_seconds == 3.0
    local, a, b = cluster.nodes()
    assert local.devices == []
    assert a.labels == {"runai/node-pool": "a100"} and a.cpu == 32000 and a.memory == 256 * GIB
    assert [d.uuid for d in a.devices] == [f"VIRTUAL-GPU-node-a-{i}" for i in range(4)]
    assert all(d.virtual and d.memory == 80 * GIB for d in a.devices)
    assert b.labels == {"runai/node-pool": "t4"} and b.gpu_count == 2
    with pytest.raises(Exception, match="virtual_nodes"):
        LocalCluster(virtual_nodes=[{"name": "x", "gpuz": 1}])


def test_pynvml_degrades_without_driver():
    nvml = PynvmlNvml()  # nothing happens at construction
    devices = nvml.devices()
    assert isinstance(devices, list)
    if not devices:
        assert nvml.process_memory(0) == {} and nvml.usage(0) == (None, None)
        assert nvml.process_utilization(0) is None  # unknown, not idle
    nvml.close()


def test_pynvml_process_utilization_is_the_mean_over_the_last_seconds(monkeypatch):
    """NVML itself cannot run here: a stand-in for the pynvml module answers with samples, as a driver
    would (several per process over its window, then NVML_ERROR_NOT_FOUND when none are newer)."""
    from types import SimpleNamespace

    class NotFound(Exception):
        def __str__(self) -> str:
            return "Not Found"

    asked: list[int] = []
    windows = [[SimpleNamespace(pid=7, smUtil=40, timeStamp=100), SimpleNamespace(pid=7, smUtil=60, timeStamp=200),
                SimpleNamespace(pid=8, smUtil=10, timeStamp=150)], NotFound(), RuntimeError("Not Supported")]

    def utilization(handle, since):
        asked.append(since)
        answer = windows.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    fake = SimpleNamespace(nvmlInit=lambda: None, nvmlShutdown=lambda: None, nvmlDeviceGetCount=lambda: 1,
                           nvmlDeviceGetHandleByIndex=lambda i: f"h{i}", nvmlDeviceGetUUID=lambda h: "GPU-x",
                           nvmlDeviceGetName=lambda h: "Fake", nvmlDeviceGetProcessUtilization=utilization,
                           nvmlDeviceGetMemoryInfo=lambda h: SimpleNamespace(total=GIB, used=0))
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    nvml = PynvmlNvml()
    before = time.time()
    assert nvml.process_utilization(0) == {7: 50.0, 8: 10.0}
    assert nvml.process_utilization(0) == {}  # no sample in the window: no process used it
    assert nvml.process_utilization(0) is None  # the driver cannot say
    # each time the last 5 seconds (NVML's microseconds of the wall clock), whoever asked before
    assert all(abs(since / 1e6 - (before - 5)) < 60 for since in asked) and len(asked) == 3
    nvml.close()


# ------------------------------------------------------------------ launch, environment, exit codes


def test_environment_and_success(cluster):
    launch = make_launch(cluster, "envjob", [sys.executable, "-c", ENV_DUMP], devices=[1], fraction=0.5,
                         gpu_memory_limit=12 * GIB, gpu_fraction_limit=0.75, environment={"MY_VAR": "hello"})
    handle = cluster.launch(launch)
    json.dumps(handle)  # JSON-able
    assert Path(handle["workdir"]) == Path(cluster.state_dir) / "pods/default/envjob-envjob-u/0"
    report = wait_report(cluster, launch.key)
    assert (report.state, report.exit_code, report.message) == (PodState.SUCCEEDED, 0, "exited with code 0")
    env = env_from_log(cluster, launch.key, handle)
    node = cluster.node_name
    assert env["CUDA_VISIBLE_DEVICES"] == "1"
    assert env["NVIDIA_VISIBLE_DEVICES"] == f"VIRTUAL-GPU-{node}-1"
    assert env["RUNAI_GPU_FRACTION"] == env["GPU_PORTION"] == "0.5"
    assert env["RUNAI_NUM_OF_GPUS"] == "0.5"
    assert env["RUNAI_GPU_MEMORY_LIMIT"] == str(12 * GIB)
    assert env["RUNAI_GPU_FRACTION_LIMIT"] == "0.75"
    assert (env["RUNAI_WORKLOAD"], env["RUNAI_PROJECT"], env["RUNAI_POD_INDEX"], env["RUNAI_POD_NAME"]) == (
        "envjob", "default", "0", "envjob-0")
    assert env["MY_VAR"] == "hello"
    assert env["PATH"].split(os.pathsep)[0] == os.path.dirname(sys.executable)
    assert "PORT" not in env and "MASTER_PORT" not in env


def test_cpu_only_pod_sees_no_gpu_and_python_env(cluster, tmp_path):
    venv = tmp_path / "env"
    (venv / "bin").mkdir(parents=True)
    launch = make_launch(cluster, "cpu", f"{sys.executable} -c \"{ENV_DUMP}\"", python_env=str(venv))
    handle = cluster.launch(launch)
    assert wait_report(cluster, launch.key).state == PodState.SUCCEEDED
    env = env_from_log(cluster, launch.key, handle)
    assert env["CUDA_VISIBLE_DEVICES"] == "" and env["NVIDIA_VISIBLE_DEVICES"] == "none"
    assert env["RUNAI_NUM_OF_GPUS"] == "0" and "RUNAI_GPU_FRACTION" not in env
    assert env["PATH"].split(os.pathsep)[0] == str(venv / "bin")


@pytest.mark.parametrize(
    "command, state, code, message",
    [
        ("echo out; echo err >&2; exit 3", PodState.FAILED, 3, "exited with code 3"),
        ("kill -KILL $$", PodState.FAILED, 137, "killed by signal SIGKILL"),
        (["no-such-command-runai"], PodState.FAILED, 127, "could not start: command not found: no-such-command-runai"),
    ],
)
def test_exit_codes_in_words(cluster, command, state, code, message):
    launch = make_launch(cluster, "exits", command)
    handle = cluster.launch(launch)
    report = wait_report(cluster, launch.key)
    assert (report.state, report.exit_code, report.message) == (state, code, message)
    if isinstance(command, str) and "echo" in command:
        log = Path(handle["log"]).read_text()
        assert "out\n" in log and "err\n" in log


def test_launch_failures_raise(cluster):
    with pytest.raises(ValueError, match="no node"):
        cluster.launch(make_launch(cluster, "bad", "true", node="nowhere"))
    with pytest.raises(ValueError, match="has no device 7"):
        cluster.launch(make_launch(cluster, "bad", "true", devices=[7]))
    with pytest.raises(ValueError, match="command is required"):
        cluster.launch(make_launch(cluster, "bad", None))
    with pytest.raises(ValueError, match="no such path"):
        cluster.launch(make_launch(cluster, "bad", "true", mounts=[Mount("host_path", "/no/such/dir", "data")]))
    with pytest.raises(ValueError, match="outside"):
        cluster.launch(make_launch(cluster, "bad", "true", files=[FileToWrite("../escape", b"x")]))


# ------------------------------------------------------------------ stop, zombies


def test_stop_sigterm_then_sigkill_after_grace(cluster, tmp_path):
    stubborn = make_launch(cluster, "stubborn", "trap '' TERM; echo started > started; sleep 30")
    polite = make_launch(cluster, "polite", "echo started > started; exec sleep 30")
    h1, h2 = cluster.launch(stubborn), cluster.launch(polite)
    wait_file(Path(h1["workdir"]) / "started")
    wait_file(Path(h2["workdir"]) / "started")
    start = time.monotonic()
    cluster.stop(stubborn.key, 0.5)
    cluster.stop(polite.key, 0.5)
    cluster.stop(polite.key, 0.5)  # idempotent
    reports = wait_reports(cluster, [stubborn.key, polite.key])
    assert reports[polite.key].state == PodState.STOPPED
    assert reports[polite.key].message == "stopped (killed by signal SIGTERM)"
    assert reports[stubborn.key].state == PodState.STOPPED
    assert reports[stubborn.key].exit_code == 137
    assert "SIGKILL after the 0.5 s grace period" in reports[stubborn.key].message
    assert time.monotonic() - start >= 0.5
    assert group_gone(h1["pgid"]) and group_gone(h2["pgid"])
    cluster.stop(stubborn.key, 1)  # after the end: nothing to do
    assert cluster.poll() == []
    assert zombie_children() == []


def test_stop_right_after_launch_is_recorded(cluster):
    launch = make_launch(cluster, "early", ["sleep", "30"])
    handle = cluster.launch(launch)
    cluster.stop(launch.key, 5)  # the runner may not even have set its signal handler yet
    report = wait_report(cluster, launch.key)
    assert report.state == PodState.STOPPED and report.exit_code == 143
    assert report.message in ("stopped (ended before the command started)", "stopped (killed by signal SIGTERM)")
    assert group_gone(handle["pgid"])


def test_no_zombies_after_many_pods(cluster):
    launches = [make_launch(cluster, f"many{i}", "exit 0") for i in range(4)]
    for launch in launches:
        cluster.launch(launch)
    reports = wait_reports(cluster, [launch.key for launch in launches])
    assert {r.state for r in reports.values()} == {PodState.SUCCEEDED}
    assert zombie_children() == []


def test_leftover_processes_of_a_command_are_ended(cluster):
    launch = make_launch(cluster, "leftover", "sleep 30 & echo $! > bg.pid; exit 0")
    handle = cluster.launch(launch)
    assert wait_report(cluster, launch.key).state == PodState.SUCCEEDED
    assert group_gone(handle["pgid"])


# ------------------------------------------------------------------ adopt after a restart


def test_adopt_running_and_finished_pods(tmp_path):
    state = str(tmp_path / "state")
    first = LocalCluster(state_dir=state, nvml=FakeNvml(count=0))
    running = make_launch(first, "longrun", ["sleep", "30"])
    finished = make_launch(first, "quick", "exit 7")
    succeeded = make_launch(first, "fine", "true")
    handles = {launch.key: first.launch(launch) for launch in (running, finished, succeeded)}
    stored = json.loads(json.dumps(handles))  # as the store keeps them
    for key in (finished.key, succeeded.key):
        wait_file(Path(stored[key]["exit_file"]))
    del first  # the server "crashes": no close(), no poll()

    for key in (finished.key, succeeded.key):  # their runners exit right after writing the record
        deadline = time.monotonic() + 5
        while _alive(stored[key]["pid"], stored[key]["start_time"]) and time.monotonic() < deadline:
            time.sleep(0.02)

    second = LocalCluster(state_dir=state, nvml=FakeNvml(count=0))
    reports = {key: second.adopt(key, stored[key]) for key in (finished.key, succeeded.key)}
    assert (reports[finished.key].state, reports[finished.key].exit_code) == (PodState.FAILED, 7)
    assert reports[finished.key].message == "exited with code 7"
    assert (reports[succeeded.key].state, reports[succeeded.key].exit_code) == (PodState.SUCCEEDED, 0)

    report = second.adopt(running.key, stored[running.key])
    assert report.state == PodState.RUNNING
    second.stop(running.key, 1)
    report = wait_report(second, running.key)
    assert report.state == PodState.STOPPED
    assert group_gone(stored[running.key]["pgid"])
    assert zombie_children() == []

    # Nothing recorded and nothing running: lost. A reused pid with another start time: not ours.
    gone = dict(stored[finished.key], exit_file=str(tmp_path / "missing.json"))
    assert second.adopt("default/gone-0", gone).state == PodState.LOST
    impostor = dict(stored[running.key], pid=os.getpid(), exit_file=str(tmp_path / "missing.json"))
    assert second.adopt("default/impostor-0", impostor).state == PodState.LOST
    second.close()


# ------------------------------------------------------------------ files, mounts, git


def test_credentials_files_and_host_path_mount(cluster, tmp_path):
    data = tmp_path / "dataset"
    data.mkdir()
    (data / "rows.csv").write_text("a,b\n")
    launch = make_launch(
        cluster, "creds", "cat secrets/token && cat data/rows.csv",
        files=[FileToWrite("secrets/token", b"s3cr3t\n")],
        mounts=[Mount("host_path", str(data), "data")],
    )
    handle = cluster.launch(launch)
    token = Path(handle["workdir"]) / "secrets" / "token"
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    assert (Path(handle["workdir"]) / "data").is_symlink()
    assert wait_report(cluster, launch.key).state == PodState.SUCCEEDED
    log = Path(handle["log"]).read_text()
    assert "s3cr3t" in log and "a,b" in log


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main", *args],
        cwd=cwd, check=True, capture_output=True, text=True,
    ).stdout.strip()


def test_git_data_source_cloned_at_revision(cluster, tmp_path):
    work = tmp_path / "src"
    work.mkdir()
    _git("init", cwd=work)
    (work / "version.txt").write_text("first\n")
    _git("add", "version.txt", cwd=work)
    _git("commit", "-m", "first", cwd=work)
    first = _git("rev-parse", "HEAD", cwd=work)
    (work / "version.txt").write_text("second\n")
    _git("commit", "-am", "second", cwd=work)
    _git("clone", "--bare", str(work), str(tmp_path / "repo.git"), cwd=tmp_path)

    launch = make_launch(cluster, "gitjob", "cat code/version.txt",
                         mounts=[Mount("git", str(tmp_path / "repo.git"), "code", revision=first)])
    handle = cluster.launch(launch)
    assert wait_report(cluster, launch.key).state == PodState.SUCCEEDED
    log = Path(handle["log"]).read_text()
    assert "$ git clone" in log and "first\n" in log and "second" not in log

    bad = make_launch(cluster, "gitbad", "true", mounts=[Mount("git", str(tmp_path / "nope.git"), "code")])
    cluster.launch(bad)
    report = wait_report(cluster, bad.key)
    assert report.state == PodState.FAILED and "git clone failed" in report.message


# ------------------------------------------------------------------ ports, distributed, virtual nodes


def test_needs_port_reports_ready(cluster):
    serve = ("import os, socket, time; s = socket.socket(); s.bind(('127.0.0.1', int(os.environ['PORT']))); "
             "time.sleep(0.2); s.listen(); time.sleep(30)")
    launch = make_launch(cluster, "serve", [sys.executable, "-c", serve], kind="inference", needs_port=True)
    handle = cluster.launch(launch)
    assert handle["port"] and handle["ready"] is False
    report = wait_report(cluster, launch.key)
    assert report.state == PodState.RUNNING and report.handle["ready"] is True
    assert report.handle["port"] == handle["port"]
    cluster.stop(launch.key, 1)
    assert wait_report(cluster, launch.key).state == PodState.STOPPED


def test_distributed_environment_on_virtual_nodes(tmp_path):
    cluster = LocalCluster(
        state_dir=str(tmp_path), nvml=FakeNvml(count=0), local_node=False,
        virtual_nodes=[{"name": "node-a", "gpus": 2}, {"name": "node-b", "gpus": 2}],
    )
    placement = [("node-a", [0]), ("node-a", [1]), ("node-b", [1])]
    launches = [
        make_launch(cluster, "ddp", [sys.executable, "-c", ENV_DUMP], index=i, node=node, devices=devices,
                    kind="distributed", pod_count=3, master_key="default/ddp-0")
        for i, (node, devices) in enumerate(placement)
    ]
    handles = [cluster.launch(launch) for launch in launches]
    reports = wait_reports(cluster, [launch.key for launch in launches])
    assert {r.state for r in reports.values()} == {PodState.SUCCEEDED}
    envs = [env_from_log(cluster, launch.key, handle) for launch, handle in zip(launches, handles)]
    assert len({env["MASTER_PORT"] for env in envs}) == 1
    assert handles[0]["master_port"] == int(envs[0]["MASTER_PORT"])
    assert [env["MASTER_ADDR"] for env in envs] == ["127.0.0.1"] * 3
    assert [env["WORLD_SIZE"] for env in envs] == ["3"] * 3
    assert [env["RANK"] for env in envs] == ["0", "1", "2"]
    assert [env["LOCAL_RANK"] for env in envs] == ["0", "1", "0"]
    assert envs[2]["NVIDIA_VISIBLE_DEVICES"] == "VIRTUAL-GPU-node-b-1" and envs[2]["CUDA_VISIBLE_DEVICES"] == "1"
    cluster.close()


# ------------------------------------------------------------------ watchdog


def _child_pid(handle) -> int:
    return int(wait_file(Path(handle["workdir"]) / "child.pid"))


@pytest.fixture
def gpu_cluster(tmp_path):
    nvml = FakeNvml(count=2, memory=16 * GIB)
    cluster = LocalCluster(state_dir=str(tmp_path / "state"), nvml=nvml, watchdog_interval=0.01)
    yield cluster, nvml
    for key in list(cluster._pods):
        cluster.stop(key, 0)
    time.sleep(0.05)
    cluster.poll()
    cluster.close()
    assert nvml.closed


SLEEPER = "sleep 30 & echo $! > child.pid; wait"


def test_watchdog_stops_pod_over_its_memory_limit(gpu_cluster):
    cluster, nvml = gpu_cluster
    greedy = make_launch(cluster, "greedy", SLEEPER, devices=[0], fraction=0.5, gpu_memory_limit=8 * GIB)
    modest = make_launch(cluster, "modest", SLEEPER, devices=[0], fraction=0.5, gpu_memory_limit=8 * GIB)
    g, m = cluster.launch(greedy), cluster.launch(modest)
    nvml.memory[0] = {_child_pid(g): int(9.1 * GIB), _child_pid(m): 4 * GIB, 999_999_999: GIB}
    report = wait_report(cluster, greedy.key)
    assert report.state == PodState.FAILED
    assert report.message == "stopped: used 9.1 GiB of GPU memory on device 0, over its limit of 8.0 GiB"
    assert report.exit_code == 137
    assert group_gone(g["pgid"])
    assert group_alive(m["pgid"])
    time.sleep(0.05)
    assert all(r.key != modest.key for r in cluster.poll())


def test_watchdog_dynamic_fraction_bursts_until_a_guarantee_is_at_stake(gpu_cluster):
    cluster, nvml = gpu_cluster
    burst = make_launch(cluster, "burst", SLEEPER, devices=[1], fraction=0.25, gpu_memory_limit=4 * GIB,
                        gpu_fraction_limit=0.75)
    steady = make_launch(cluster, "steady", SLEEPER, devices=[1], fraction=0.5, gpu_memory_limit=8 * GIB)
    b, s = cluster.launch(burst), cluster.launch(steady)
    bpid, spid = _child_pid(b), _child_pid(s)
    # 7 GiB burst (guaranteed 4, limit 12) fits beside the other's guaranteed 8 GiB of 16.
    nvml.memory[1] = {bpid: 7 * GIB, spid: 2 * GIB}
    time.sleep(0.05)
    assert cluster.poll() == []
    assert group_alive(b["pgid"])
    # 10 GiB does not: the bursting pod is stopped, the other keeps running.
    nvml.memory[1] = {bpid: 10 * GIB, spid: 2 * GIB}
    report = wait_report(cluster, burst.key)
    assert report.state == PodState.FAILED
    assert report.message == ("stopped: used 10.0 GiB of GPU memory on device 1, above its guaranteed 4.0 GiB, "
                              "leaving pod default/steady-0 less than its guaranteed 8.0 GiB")
    assert group_gone(b["pgid"]) and group_alive(s["pgid"])


def test_pod_metrics_map_each_process_to_its_pod(gpu_cluster):
    """The per-process sampler behind the NVML seam: memory and utilization of the processes of each
    pod (its child processes included), per device it holds; other processes count for no pod."""
    cluster, nvml = gpu_cluster
    a = cluster.launch(make_launch(cluster, "a", SLEEPER, devices=[0], fraction=0.5, gpu_memory_limit=8 * GIB))
    b = cluster.launch(make_launch(cluster, "b", SLEEPER, devices=[0, 1], fraction=0.5, gpu_memory_limit=8 * GIB))
    nvml.memory = {0: {_child_pid(a): 3 * GIB, _child_pid(b): GIB, 999_999_999: 5 * GIB}, 1: {_child_pid(b): 2 * GIB}}
    nvml.utilization = {0: {_child_pid(a): 60.0, 999_999_999: 30.0}, 1: None}
    got = {(m.key, m.index): (m.used_memory, m.utilization) for m in cluster.pod_metrics()}
    assert got == {
        ("default/a-0", 0): (3 * GIB, 60.0),
        ("default/b-0", 0): (GIB, 0.0),  # measured, and idle in the window
        ("default/b-0", 1): (2 * GIB, None),  # this device does not measure processes
    }
    assert {m.node for m in cluster.pod_metrics()} == {cluster.node_name}
