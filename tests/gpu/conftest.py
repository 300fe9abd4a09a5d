"""tests/gpu: checks that need a real NVIDIA GPU (NVML and the CUDA driver). Everything here is
skipped, with the reason, on a machine where NVML finds no GPU, so the suite passes in CI.
Run on a GPU machine with ``pytest tests/gpu`` or ``tests/gpu/run.sh`` (docs/local-cluster.md)."""

from __future__ import annotations

import ctypes.util
import os
import signal
import time
from pathlib import Path

import pytest

from jupyter_runai.clusters.local import LocalCluster
from jupyter_runai.clusters.nvml import PynvmlNvml

from gpu_helpers import DEVICES, NO_GPU
from test_service import make_service  # tests/conftest.py puts tests/ on the path

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config, items):
    if not NO_GPU:
        return
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.skip(reason=NO_GPU))


@pytest.fixture
def cuda_driver() -> None:
    """Skips a check that runs the small CUDA load where the CUDA driver library is missing."""
    if not ctypes.util.find_library("cuda"):
        pytest.skip("no CUDA driver library (libcuda) for the small CUDA load")


@pytest.fixture
def gpu_service(tmp_path):
    """The scheduler service on the local cluster of this machine, with its real GPUs (NVML), the
    memory watchdog checking every 0.2 s and a usage sample every second; every pod still alive at the
    end is ended."""
    cluster = LocalCluster(state_dir=str(tmp_path / "state"), nvml=PynvmlNvml(), watchdog_interval=0.2)
    service = make_service(tmp_path, cluster, gpus=len(DEVICES), usage_sample_interval=1.0)
    yield service
    for handle in list(service.handles.values()):
        pgid = handle.get("pgid")
        if pgid:
            try:
                os.killpg(int(pgid), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    time.sleep(0.2)
    cluster.poll()
    cluster.close()
    service.store.close()
