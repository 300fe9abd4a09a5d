"""The cluster contract: what every backend behind ``clusters/base.py`` promises the service.

One fixture yields each backend ready to use (``local``: real processes on virtual GPUs;
``simulated``: the in-memory cluster; ``kubernetes``: the real ``kubernetes`` client against the
API server stand-in), with a small driver for what only the outside world does (the kubelet
starting a pod, a pod's command exiting). Every test runs on all three; a test that needs a
capability skips, with the reason, where the backend declares it lacks it, never by name.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from kube_stand_in import kube, kubelet_runs  # noqa: F401 (kube: a fixture)
from test_kubernetes_backend import RESERVED, make_cluster, reservation_runs, wait_for
from test_local_cluster import FakeNvml

from jupyter_runai.clusters import Cluster, PodLaunch, PodReport, PodState
from jupyter_runai.clusters.local import LocalCluster
from jupyter_runai.clusters.simulated import SimulatedCluster, simulated_nodes
from jupyter_runai.models import Workload, WorkloadSpec

pytestmark = pytest.mark.timeout(30)

PROJECT = "default"
GREETING = "hello from the contract"

# A pod's command on a backend that runs commands: it notes that it started, greets, then waits
# for its driver to name its exit code in a file (as long as a test may take, no longer), and
# exits with it.
POD_PROGRAM = (
    "import os, sys, time\n"
    "with open(os.environ['CONTRACT_START_FILE'], 'a') as out: out.write('started\\n')\n"
    f"print({GREETING!r}, flush=True)\n"
    "path = os.environ['CONTRACT_EXIT_FILE']\n"
    "deadline = time.monotonic() + 30\n"
    "while not os.path.exists(path) and time.monotonic() < deadline:\n"
    "    time.sleep(0.02)\n"
    "sys.exit(int(open(path).read()) if os.path.exists(path) else 0)\n"
)


class Driver:
    """A backend, ready to use, and what the outside world does to its pods."""

    def __init__(self, cluster: Any, node: str, tmp_path: Path) -> None:
        self.cluster = cluster
        self.node = node
        self.tmp_path = tmp_path
        self.opened = [cluster]

    def launch_of(self, name: str, devices: list[int], fraction: float | None = None) -> PodLaunch:
        """A training pod's launch as the service makes it (the workload included, for backends that
        build a manifest from it), placed on this world's node and ``devices``."""
        command = [sys.executable, "-c", POD_PROGRAM]
        environment = {"CONTRACT_EXIT_FILE": str(self.tmp_path / f"exit-{name}"),
                       "CONTRACT_START_FILE": str(self.tmp_path / f"started-{name}")}
        gpus = fraction if fraction is not None else len(devices)
        spec = WorkloadSpec(name=name, project=PROJECT, kind="training", command=command,
                            environment=environment, resources={"gpu": gpus} if gpus else {})
        workload = Workload(spec=spec)
        memory = int(fraction * min(d.memory for n in self.cluster.nodes() if n.name == self.node
                                    for d in n.devices)) if fraction is not None else None
        return PodLaunch(key=f"{PROJECT}/{name}-0", workload=name, workload_uid=workload.uid, project=PROJECT,
                         kind="training", index=0, pod_count=1, node=self.node, devices=list(devices),
                         fraction=fraction, gpu_memory_limit=memory, gpu_fraction_limit=None, command=command,
                         environment=environment, launch_id=f"{name}-launch", workload_model=workload)

    # what the world does -------------------------------------------------------------------

    def runs(self, key: str) -> None:
        """The pod's container starts (a kubelet's doing; a process just runs)."""

    def writes(self, key: str, text: str) -> None:
        """What the pod's command writes to its output (the program greets by itself)."""

    def exits(self, key: str, code: int) -> None:
        """The pod's command ends with ``code``."""
        name = key.split("/", 1)[1].rsplit("-", 1)[0]
        (self.tmp_path / f"exit-{name}").write_text(str(code))

    def started(self) -> int:
        """How many pods were started in this world, of those still running at least (to see that
        nothing starts twice)."""
        raise NotImplementedError

    def reopen(self) -> Any:
        """A new backend instance on the same state, as after the service restarts."""
        raise NotImplementedError

    def close(self) -> None:
        for cluster in self.opened:
            cluster.close()


class LocalDriver(Driver):
    def __init__(self, tmp_path: Path) -> None:
        self.state = tmp_path / "state"
        super().__init__(self._open(), "", tmp_path)
        self.node = self.cluster.node_name

    def _open(self) -> LocalCluster:
        return LocalCluster(state_dir=str(self.state), nvml=FakeNvml(count=0), watchdog_interval=0,
                            virtual_gpus={"count": 4, "memory": "24Gi"})

    def runs(self, key: str) -> None:  # the process just runs: once its command has started
        name = key.split("/", 1)[1].rsplit("-", 1)[0]
        wait_for(lambda: (self.tmp_path / f"started-{name}").exists(), f"{key}'s command started")

    def started(self) -> int:  # each start of a pod's command notes it
        return sum(len(path.read_text().splitlines()) for path in self.tmp_path.glob("started-*"))

    def reopen(self) -> LocalCluster:
        cluster = self._open()
        self.opened.append(cluster)
        return cluster

    def close(self) -> None:
        for cluster in self.opened:
            for key in list(cluster._pods):
                cluster.stop(key, 0)
        deadline = time.monotonic() + 5
        while any(c._pods for c in self.opened) and time.monotonic() < deadline:
            for cluster in self.opened:
                cluster.poll()
            time.sleep(0.02)
        super().close()


class SimulatedDriver(Driver):
    """The simulated cluster keeps its pods in the object itself: that object is the world a
    restarted service finds again, so a "new instance on the same state" is the same object."""

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(SimulatedCluster(simulated_nodes(1, gpus=4)), "sim-node-0", tmp_path)

    def exits(self, key: str, code: int) -> None:
        self.cluster.finish(key, code)

    def started(self) -> int:
        return self.cluster.launches

    def reopen(self) -> SimulatedCluster:
        return self.cluster


class KubernetesDriver(Driver):
    namespace = f"runai-{PROJECT}"

    def __init__(self, kube, tmp_path: Path) -> None:
        self.kube = kube
        super().__init__(make_cluster(kube, tmp_path), "gpu-a", tmp_path)

    def _name(self, key: str) -> str:
        return key.split("/", 1)[1]

    def runs(self, key: str) -> None:
        def created():
            for pod in self.kube.objects("pods"):  # a shared device's reservation pod starts first
                if pod["metadata"]["namespace"] == RESERVED and (pod.get("status") or {}).get("phase") != "Running":
                    reservation_runs(self.kube, pod["metadata"]["name"])
            return self.kube.get("pods", self.namespace, self._name(key))
        wait_for(created, f"{key} created")
        kubelet_runs(self.kube, self.namespace, self._name(key))

    def writes(self, key: str, text: str) -> None:
        self.kube.logs[(self.namespace, self._name(key))] = text

    def exits(self, key: str, code: int) -> None:
        self.kube.patch("pods", self.namespace, self._name(key), {"status": {
            "phase": "Succeeded" if code == 0 else "Failed",
            "containerStatuses": [{"name": "main", "state": {"terminated": {"exitCode": code}}}]}})

    def started(self) -> int:
        return len([r for r in self.kube.requested(None) if r.method.value.upper() == "POST"
                    and r.namespace == self.namespace and r.resource is not None and r.resource.plural == "pods"])

    def reopen(self) -> Any:
        cluster = make_cluster(self.kube, self.tmp_path)
        self.opened.append(cluster)
        return cluster


@pytest.fixture(params=["local", "simulated", "kubernetes"])
def world(request, tmp_path):
    if request.param == "local":
        driver: Driver = LocalDriver(tmp_path)
    elif request.param == "simulated":
        driver = SimulatedDriver(tmp_path)
    else:
        driver = KubernetesDriver(request.getfixturevalue("kube"), tmp_path)
    yield driver
    driver.close()


def end_of(cluster, key: str, timeout: float = 10.0) -> PodReport:
    """The report that ``key`` ended (poll() hands each change out once; reports that it runs or
    became ready are passed over)."""
    ended: list[PodReport] = []

    def reported():
        ended.extend(r for r in cluster.poll() if r.key == key and r.state != PodState.RUNNING)
        return ended
    wait_for(reported, f"{key} ended", timeout)
    return ended[0]


def running(world: Driver, name: str, devices: list[int], fraction: float | None = None) -> tuple[PodLaunch, dict]:
    """A pod launched and started."""
    launch = world.launch_of(name, devices, fraction)
    handle = world.cluster.launch(launch)
    world.runs(launch.key)
    return launch, json.loads(json.dumps(handle))  # as the store keeps it


def assert_running(cluster, launch: PodLaunch, handle: dict) -> None:
    def adopted():
        report = cluster.adopt(launch.key, handle)
        return report if report.state == PodState.RUNNING else None
    wait_for(adopted, f"{launch.key} running")
    assert not [r for r in cluster.poll() if r.key == launch.key and r.state != PodState.RUNNING]


# ---------------------------------------------------------------- declarations and nodes


def test_capabilities_are_declared_as_attributes(world):
    cluster = world.cluster
    assert isinstance(cluster, Cluster)
    for capability in ("read_only_mounts", "runs_images", "gpu_fractions"):
        assert isinstance(getattr(type(cluster), capability, None), bool) or \
            isinstance(getattr(cluster, capability), bool), capability
    assert hasattr(cluster, "workload_mirror")
    assert isinstance(cluster.name, str) and cluster.name


def test_nodes_list_their_devices_with_the_fields_the_service_reads(world):
    nodes = {node.name: node for node in world.cluster.nodes()}
    node = nodes[world.node]
    assert node.schedulable
    assert node.cpu > 0 and node.memory > 0
    assert [d.index for d in node.devices] == [0, 1, 2, 3]
    assert all(d.model and d.memory > 0 and d.uuid for d in node.devices)
    assert len({d.uuid for n in nodes.values() for d in n.devices}) == sum(len(n.devices) for n in nodes.values())


# ---------------------------------------------------------------- a pod's life


def test_a_launched_pod_runs_on_the_node_and_devices_asked_for(world):
    launch, handle = running(world, "placed", [1, 2])
    assert (handle["node"], handle["devices"]) == (world.node, [1, 2])
    assert_running(world.cluster, launch, handle)
    assert world.started() == 1


def test_a_pod_on_a_fraction_of_a_device_runs_and_stops(world):
    if not world.cluster.gpu_fractions:
        pytest.skip(f"{world.cluster.name} declares no GPU fractions")
    launch, handle = running(world, "half", [1], fraction=0.5)
    assert (handle["node"], handle["devices"]) == (world.node, [1])
    assert_running(world.cluster, launch, handle)
    world.cluster.stop(launch.key, 1)
    assert end_of(world.cluster, launch.key).state == PodState.STOPPED


def test_stop_ends_the_pod_and_reports_the_end(world):
    launch, handle = running(world, "stopme", [0])
    assert_running(world.cluster, launch, handle)
    world.cluster.stop(launch.key, 1)
    report = end_of(world.cluster, launch.key)
    assert report.state == PodState.STOPPED
    assert report.message and report.message.startswith("stopped")
    world.cluster.stop(launch.key, 1)  # again: nothing more to say
    time.sleep(0.1)
    assert [r for r in world.cluster.poll() if r.key == launch.key] == []


@pytest.mark.parametrize("code", [0, 3])
def test_a_pod_that_exits_reports_its_exit_code_and_reason(world, code):
    launch, handle = running(world, f"exits{code}", [])
    assert_running(world.cluster, launch, handle)
    world.exits(launch.key, code)
    report = end_of(world.cluster, launch.key)
    if code == 0:
        assert (report.state, report.exit_code) == (PodState.SUCCEEDED, 0)
    else:
        assert (report.state, report.exit_code, report.message) == (PodState.FAILED, 3, "exited with code 3")


def greeted_log(cluster, key: str, handle: dict) -> Path | None:
    """The pod's log once it holds the pod's greeting; None where the backend keeps no logs."""
    def logged():
        path = cluster.log_path(key, handle)
        if path is None:
            return ("none",)
        return path.exists() and GREETING in path.read_text() and (path,)
    found = wait_for(logged, f"the log of {key}")[0]
    return None if found == "none" else found


def test_logs_of_a_pod(world):
    launch, handle = running(world, "chatty", [])
    world.writes(launch.key, GREETING + "\n")
    if greeted_log(world.cluster, launch.key, handle) is None:
        pytest.skip(f"{world.cluster.name} keeps no pod logs (log_path answers None)")


# ---------------------------------------------------------------- restart adoption


def test_a_new_backend_on_the_same_state_adopts_running_pods_without_starting_them_again(world):
    launch, handle = running(world, "survivor", [3])
    assert_running(world.cluster, launch, handle)
    started = world.started()
    assert started == 1
    second = world.reopen()
    report = second.adopt(launch.key, handle)
    assert report.state == PodState.RUNNING
    assert world.started() == started
    # it is the same pod: its end reaches the new instance
    world.exits(launch.key, 3)
    report = end_of(second, launch.key)
    assert (report.state, report.exit_code) == (PodState.FAILED, 3)


def test_a_launch_intent_finds_the_pod_that_launch_started(world):
    launch, handle = running(world, "intended", [2])
    assert_running(world.cluster, launch, handle)
    intent = {"launching": True, "launch_id": launch.launch_id, "workload_uid": launch.workload_uid,
              "index": 0, "node": launch.node, "devices": list(launch.devices), "fraction": None}
    second = world.reopen()
    report = second.adopt(launch.key, intent)
    assert report.state == PodState.RUNNING
    assert report.handle is not None, "the report carries the real handle (clusters/base.py, adopt)"
    assert (report.handle["node"], report.handle["devices"]) == (launch.node, [2])
    assert world.started() == 1


def test_unknown_and_ended_pods_are_not_reported_running(world):
    cluster = world.cluster
    never = {"launching": True, "launch_id": "never", "workload_uid": "never-uid", "index": 0,
             "node": world.node, "devices": [0], "fraction": None}
    assert cluster.adopt(f"{PROJECT}/never-0", never).state == PodState.LOST
    cluster.stop(f"{PROJECT}/never-0", 0)  # stopping what is not there says nothing and raises nothing

    launch, handle = running(world, "ended", [])
    assert_running(cluster, launch, handle)
    world.exits(launch.key, 3)
    assert end_of(cluster, launch.key).state == PodState.FAILED
    report = world.reopen().adopt(launch.key, handle)
    assert report.state != PodState.RUNNING
    assert [r for r in cluster.poll() if r.state == PodState.RUNNING] == []


def test_release_removes_what_an_ended_pod_left_and_never_raises(world):
    cluster = world.cluster
    launch, handle = running(world, "leaves", [])
    world.writes(launch.key, GREETING + "\n")
    world.exits(launch.key, 0)
    assert end_of(cluster, launch.key).state == PodState.SUCCEEDED
    log = greeted_log(cluster, launch.key, handle)
    cluster.release(launch.key, handle)
    cluster.release(launch.key, handle)  # again: idempotent
    cluster.release(f"{PROJECT}/never-0", {"node": world.node, "devices": []})  # a pod never seen
    if log is not None:  # where the backend keeps logs, the released pod's goes
        assert not log.exists()
    assert [r for r in cluster.poll() if r.state == PodState.RUNNING] == []
