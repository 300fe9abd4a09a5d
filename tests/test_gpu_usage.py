"""Each workload's GPU use beside its allocation, and the history rings: on the local cluster with real
processes and a fake NVML with per-process data (the seam), and on virtual GPUs; in the service's clock."""

from __future__ import annotations

import pytest

from jupyter_runai.clusters.local import LocalCluster
from jupyter_runai.clusters.simulated import SimulatedCluster, simulated_nodes

from api_helpers import kill_pods
from test_local_cluster import GIB, FakeNvml
from test_metrics import one, scrape
from test_rules import Clock
from test_service import ME, make_service, submit


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def gpu_service(tmp_path, clock):
    """A service on the local cluster with one (fake-NVML) GPU of 16 GiB; pods are real processes."""
    nvml = FakeNvml(count=1, memory=16 * GIB)
    cluster = LocalCluster(state_dir=str(tmp_path / "state"), nvml=nvml, watchdog_interval=0)
    service = make_service(tmp_path, cluster, gpus=1, clock=clock, usage_history=3)
    yield service, nvml
    kill_pods(service)
    cluster.close()
    service.store.close()


def pid_of(service, name: str) -> int:
    workload = service.get("default", name)
    return int(service.handles[(workload.uid, f"{name}-0")]["pgid"])


def test_each_workload_s_use_is_measured_per_process_beside_its_allocation(gpu_service, clock):
    service, nvml = gpu_service
    for name in ("a", "b"):
        submit(service, name, command="sleep 60", resources={"gpu": 0.5})
    service.run_cycle()
    assert {w["name"]: w["allocated"] for w in service.workload_usage()} == {"a": 0.5, "b": 0.5}
    a, b = pid_of(service, "a"), pid_of(service, "b")
    nvml.memory = {0: {a: 3 * GIB, b: GIB, 999_999_999: 2 * GIB}}  # the last one is no pod's
    nvml.utilization = {0: {a: 60.0, 999_999_999: 25.0}}
    usage = {w["name"]: w for w in service.workload_usage()}
    assert (usage["a"]["utilization"], usage["a"]["used_memory"]) == (60.0, 3 * GIB)
    assert (usage["b"]["utilization"], usage["b"]["used_memory"]) == (0.0, GIB)  # measured idle, not unknown
    assert usage["a"]["virtual"] is False and usage["a"]["devices"] == [
        {"pod": "a-0", "node": service.cluster.node_name, "device": 0, "share": 0.5, "virtual": False,
         "utilization": 60.0, "used_memory": 3 * GIB}]
    m = scrape(service)
    assert one(m["runai_gpu_utilization_per_workload"], workload_name="a") == 60.0
    assert one(m["runai_gpu_memory_used_mebibytes_per_workload"], workload_name="b") == 1024
    assert one(m["runai_gpu_utilization_per_pod_per_gpu"], pod_name="a-0", gpu="0") == 60.0
    # a driver that does not measure processes: utilization unknown (None), memory still per process
    nvml.utilization = {0: None}
    assert {w["name"]: w["utilization"] for w in service.workload_usage()} == {"a": None, "b": None}


def test_history_rings_keep_the_last_samples_per_device_and_workload(gpu_service, clock):
    service, nvml = gpu_service
    submit(service, "a", command="sleep 60", resources={"gpu": 1})
    service.run_cycle()
    a = pid_of(service, "a")
    for percent in (10.0, 20.0, 30.0, 40.0):
        nvml.utilization = {0: {a: percent}}
        clock.advance(seconds=5)
        service.run_cycle()
    [workload] = service.workload_usage_history(ME)["workloads"]
    assert [s["utilization"] for s in workload["samples"]] == [20.0, 30.0, 40.0]  # the last 3 (usage_history=3)
    assert [s["at"][11:19] for s in workload["samples"]] == ["00:00:10", "00:00:15", "00:00:20"]
    [device] = service.device_usage_history(ME)["devices"]
    assert [s["allocated_fraction"] for s in device["samples"]] == [1.0, 1.0, 1.0]
    assert [s["utilization"] for s in device["samples"]] == [42.0] * 3  # the fake device's own figure
    [project] = service.project_usage_history(ME)["projects"]  # the project's use against its quota, over time
    assert [(s["allocated"], s["deserved"], s["utilization"]) for s in project["samples"]] == [
        (1.0, 1.0, 20.0), (1.0, 1.0, 30.0), (1.0, 1.0, 40.0)]
    clock.advance(seconds=1)  # not due yet: no sample
    service.run_cycle()
    assert len(service.workload_usage_history(ME)["workloads"][0]["samples"]) == 3
    assert service.workload_usage_history(ME)["workloads"][0]["samples"][-1]["at"].endswith("00:00:20+00:00")


def test_on_virtual_gpus_use_is_said_to_be_unmeasured(tmp_path, clock):
    service = make_service(tmp_path, SimulatedCluster(simulated_nodes(1, gpus=2)), clock=clock)
    submit(service, "train", resources={"gpu": 1})
    submit(service, "half", resources={"gpu": 0.5})
    service.run_cycle()
    usage = {w["name"]: w for w in service.workload_usage()}
    assert usage["half"]["virtual"] is True
    assert (usage["half"]["utilization"], usage["half"]["used_memory"]) == (None, None)
    # a simulated device that reports utilization: a pod holding the whole device is measured by it
    device = service.get("default", "train").status.pods[0].devices[0]
    service.cluster.utilization[("sim-node-0", device)] = 80.0
    assert {w["name"]: w["utilization"] for w in service.workload_usage()} == {"train": 80.0, "half": None}
    service.store.close()


def test_the_accounting_counts_each_pod_s_own_use_of_a_shared_device(gpu_service, clock):
    service, nvml = gpu_service
    for name in ("a", "b"):
        submit(service, name, command="sleep 60", resources={"gpu": 0.5})
    service.run_cycle()
    nvml.utilization = {0: {pid_of(service, "a"): 60.0}}  # b's processes: measured, idle
    clock.advance(hours=1)
    service.run_cycle()
    report = service.usage_report(ME, "2026-01-01", "2026-01-01", "workload")
    assert {r["workload"]: (r["gpu_hours_allocated"], r["gpu_hours_used"], r["gpu_hours_measured"])
            for r in report["rows"]} == {"a": (0.5, 0.6, 0.5), "b": (0.5, 0.0, 0.5)}
