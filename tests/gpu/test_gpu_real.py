"""On a real GPU (skipped elsewhere, see conftest.py): NVML discovery, each process's GPU memory
mapped to the right workload, the dynamic-fraction watchdog stopping a process over its limit, and
utilization sampled while a small CUDA load runs. Each prints what it saw (``[gpu] ...``)."""

from __future__ import annotations

import shutil
import subprocess

from jupyter_runai.clusters.local import LocalCluster
from jupyter_runai.clusters.nvml import PynvmlNvml

from gpu_helpers import DEVICES, MIB, cycle_until, load_command, saw, submit


def _phase(service, name: str) -> str:
    return service.get("default", name).status.phase.value


def _usage(service, name: str) -> dict | None:
    return next((w for w in service.workload_usage() if w["name"] == name), None)


def test_nvml_discovers_the_gpus_the_driver_reports(tmp_path):
    cluster = LocalCluster(state_dir=str(tmp_path / "state"), nvml=PynvmlNvml(), watchdog_interval=0)
    try:
        [node] = cluster.nodes()
        for device in node.devices:
            saw(f"device {device.index}: {device.model} {device.uuid} {device.memory / 2**30:.1f} GiB "
                f"virtual={device.virtual}")
        assert len(node.devices) == len(DEVICES) > 0
        assert not any(d.virtual for d in node.devices)
        assert [d.uuid for d in node.devices] == [d.uuid for d in DEVICES]
        assert all(d.uuid.startswith("GPU-") and d.memory > 0 for d in node.devices)
        smi = shutil.which("nvidia-smi")
        if smi:
            out = subprocess.run([smi, "--query-gpu=index,uuid", "--format=csv,noheader"], capture_output=True,
                                 text=True, timeout=30).stdout
            saw(f"nvidia-smi: {out.strip()}")
            assert [line.split(", ")[1] for line in out.strip().splitlines()] == [d.uuid for d in node.devices]
        used, utilization = cluster._nvml().usage(0)
        saw(f"device 0 now: {used} bytes used, {utilization}% utilization")
        assert used is not None and utilization is not None
    finally:
        cluster.close()


def test_each_process_s_memory_is_mapped_to_its_workload(gpu_service, cuda_driver):
    """Two workloads share device 0 as fractions; each one's GPU memory is its own process's."""
    service = gpu_service
    submit(service, "big", load_command(1536, 120), gpu=0.1)
    submit(service, "small", load_command(256, 120), gpu=0.1)
    cycle_until(service, "both Running", lambda: _phase(service, "big") == _phase(service, "small") == "Running")

    def measured():
        big, small = _usage(service, "big"), _usage(service, "small")
        return (big, small) if big and small and big["used_memory"] and small["used_memory"] \
            and big["used_memory"] >= 1536 * MIB and small["used_memory"] >= 256 * MIB else None

    big, small = cycle_until(service, "each workload's GPU memory measured", measured)
    saw(f"big: {big['used_memory'] / MIB:.0f} MiB on {big['devices']}; small: {small['used_memory'] / MIB:.0f} MiB")
    pods = {(m.key, m.index): m.used_memory for m in service.cluster.pod_metrics()}
    saw(f"per pod: {pods}")
    assert set(pods) == {("default/big-0", 0), ("default/small-0", 0)}
    # the same CUDA context in each: what differs is what each allocated (1280 MiB), nothing swapped
    difference = (big["used_memory"] - small["used_memory"]) / MIB
    assert 1280 - 256 <= difference <= 1280 + 256, difference
    assert not big["virtual"] and big["allocated"] == 0.1


def test_the_watchdog_stops_a_dynamic_fraction_over_its_limit(gpu_service, cuda_driver):
    """gpu 0.01 guaranteed, limit 0.02 of the device: a process holding more than the limit is killed, the
    workload Failed with the reason; one within its limit runs on."""
    service = gpu_service
    total = DEVICES[0].memory_total
    over = int(0.02 * total / MIB) + 1024  # past the limit whatever the context itself takes
    submit(service, "greedy", load_command(over, 120), gpu=0.01, gpu_limit=0.02)
    submit(service, "modest", load_command(64, 120), gpu=0.01, gpu_limit=0.02)
    cycle_until(service, "greedy stopped by the watchdog", lambda: _phase(service, "greedy") == "Failed", timeout=90)
    message = service.get("default", "greedy").status.message or ""
    saw(f"greedy ({over} MiB, limit {0.02 * total / 2**30:.2f} GiB): {message}")
    assert "GPU memory" in message and "over its limit" in message
    assert _phase(service, "modest") == "Running"
    saw(f"modest: {_phase(service, 'modest')}")


def test_utilization_is_sampled_while_a_cuda_load_runs(gpu_service, cuda_driver):
    service = gpu_service
    submit(service, "spin", load_command(64, 60, spin=True), gpu=1)
    cycle_until(service, "spin Running", lambda: _phase(service, "spin") == "Running")
    device = service.get("default", "spin").status.pods[0].devices[0]

    def busy():
        found = {(m.node, m.index): m.utilization for m in service.cluster.metrics()}
        value = found.get((service.cluster.node_name, device))
        return value if value else None

    utilization = cycle_until(service, f"utilization above 0 on device {device}", busy, timeout=45)
    usage = _usage(service, "spin")
    per_pod = {(m.key, m.index): m.utilization for m in service.cluster.pod_metrics()}
    saw(f"device {device}: {utilization}% busy; workload spin: {usage['utilization']}%; per process: {per_pod}")
    assert usage["utilization"] is not None and usage["utilization"] > 0  # a whole GPU: its device's

    def sampled():  # the history ring (one sample a second here) holds a busy sample of it
        [mine] = [w for w in service.workload_usage_history(None)["workloads"] if w["name"] == "spin"]
        return [s for s in mine["samples"] if s["utilization"]]

    samples = cycle_until(service, "a busy sample in the workload's history", sampled, timeout=30)
    saw(f"history samples with utilization: {[s['utilization'] for s in samples]}")
