"""Helpers of tests/gpu: the GPUs NVML finds here, the command of the small CUDA load, cycling the
service until something is seen, and a line of what a check saw."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Callable

from jupyter_runai.clusters.nvml import PynvmlNvml

from test_service import ME  # tests/conftest.py puts tests/ on the path

LOAD = Path(__file__).with_name("cuda_load.py")
MIB = 1 << 20


def _gpus() -> tuple[list, str]:
    nvml = PynvmlNvml()
    try:
        devices = nvml.devices()
    finally:
        nvml.close()
    if not devices:
        return [], "no GPU found by NVML (pynvml and an NVIDIA driver are needed): tests/gpu runs on a GPU machine"
    return devices, ""


DEVICES, NO_GPU = _gpus()


def saw(text: str) -> None:
    """One line of what the check saw (shown with -s; tests/gpu/run.sh shows them)."""
    print(f"[gpu] {text}", flush=True)


def load_command(mib: int, seconds: float, spin: bool = False) -> str:
    """The command of a workload that holds ``mib`` MiB of GPU memory (and keeps a kernel running)."""
    return f"{sys.executable} {LOAD} --mib {mib} --seconds {seconds:g}" + (" --spin" if spin else "")


def cycle_until(service, what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    """Run scheduling cycles until ``check()`` is truthy (its value is returned); fails naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        service.run_cycle()
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout:g} s: {what}")


def submit(service, name: str, command: str, **resources: Any):
    """Submit a training workload running ``command`` with these resources (as the admin)."""
    return service.submit({"name": name, "kind": "training", "command": command, "resources": resources}, ME)
