"""A simulated cluster: declared nodes, pods that "run" without any process.

For benchmarks and trace replay (``benchmarks/``, ``jupyter_runai.sim``): ``launch``
marks a pod running at once, ``stop`` ends it at the next ``poll``, and ``finish``
lets the caller end a pod with an exit code (a replay decides when jobs complete).

Pods with a run time: a pod whose environment has ``RUNAI_SIM_RUNTIME`` (seconds, a
float) succeeds on the first ``poll`` at or after ``launch time + runtime`` as read
from ``clock`` (``time.monotonic`` unless the caller passes another, e.g. a simulated
clock); :meth:`SimulatedCluster.next_end` says when the next one ends, for drivers that
advance simulated time. Without that variable a pod runs until stopped or finished,
and the clock is never read.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..models import GpuDevice, Node
from .base import DeviceMetrics, Endpoint, PodLaunch, PodReport, PodState

__all__ = ["RUNTIME_ENV", "SimulatedCluster", "simulated_nodes"]

GIB = 1024 ** 3
RUNTIME_ENV = "RUNAI_SIM_RUNTIME"


def simulated_nodes(count: int, gpus: int = 8, gpu_memory: int = 80 * GIB, cpu_millis: int = 128_000,
                    memory: int = 1024 * GIB, prefix: str = "sim-node", labels: dict[str, str] | None = None,
                    model: str = "Simulated GPU") -> list[Node]:
    """``count`` alike nodes named ``<prefix>-<i>``, each with ``gpus`` virtual devices."""
    return [
        Node(name=f"{prefix}-{i}", labels=dict(labels or {}), cpu=f"{int(cpu_millis)}m", memory=memory,
             devices=[GpuDevice(index=d, uuid=f"VIRTUAL-GPU-{prefix}-{i}-{d}", model=model, memory=gpu_memory,
                                virtual=True) for d in range(gpus)])
        for i in range(count)
    ]


class SimulatedCluster:
    """The Cluster protocol over declared nodes; pods start at once and run until stopped, finished,
    or (with ``RUNAI_SIM_RUNTIME`` in their environment) their run time has passed on ``clock``."""

    name = "simulated"
    read_only_mounts = True  # nothing runs, nothing writes
    runs_images = True  # it pretends to, as a cluster would: an image and its own command are accepted
    gpu_fractions = True
    workload_mirror = None  # workloads live in the store only (no custom resources)

    def __init__(self, nodes: list[Node], clock: Callable[[], float] = time.monotonic) -> None:
        self._nodes = list(nodes)
        self.clock = clock
        self.running: dict[str, PodLaunch] = {}
        self._reports: list[PodReport] = []
        self._ends: list[tuple[float, int, str]] = []  # (end time, launch number, key), a heap
        self._launch_no: dict[str, int] = {}  # key -> number of its current launch
        self.launches = 0
        self.stops = 0  # stop() calls that ended a running pod
        # what the simulated devices measure: (node, device index) -> utilization percent; a device
        # not listed is not measured (like a virtual GPU)
        self.utilization: dict[tuple[str, int], float] = {}

    def nodes(self) -> list[Node]:
        return self._nodes

    def launch(self, launch: PodLaunch) -> dict[str, Any]:
        if launch.key in self.running:
            raise ValueError(f"pod {launch.key} is already running")
        self.running[launch.key] = launch
        self.launches += 1
        runtime = launch.environment.get(RUNTIME_ENV)
        if runtime is not None:
            self._launch_no[launch.key] = self.launches
            heapq.heappush(self._ends, (self.clock() + float(runtime), self.launches, launch.key))
        return self._handle(launch)

    @staticmethod
    def _handle(launch: PodLaunch) -> dict[str, Any]:
        return {"node": launch.node, "devices": list(launch.devices), "simulated": True}

    def stop(self, key: str, grace_seconds: float | None = None) -> None:
        self._launch_no.pop(key, None)
        if self.running.pop(key, None) is not None:
            self.stops += 1
            self._reports.append(PodReport(key, PodState.STOPPED, message="stopped"))

    def finish(self, key: str, exit_code: int = 0) -> None:
        """End a running pod as if its command exited with ``exit_code``."""
        self._launch_no.pop(key, None)
        if self.running.pop(key, None) is not None:
            state = PodState.SUCCEEDED if exit_code == 0 else PodState.FAILED
            self._reports.append(PodReport(key, state, exit_code, f"exited with code {exit_code}"))

    def next_end(self) -> float | None:
        """When the next pod with a run time ends (on ``clock``), or None."""
        while self._ends and self._launch_no.get(self._ends[0][2]) != self._ends[0][1]:
            heapq.heappop(self._ends)  # stopped or finished before its time
        return self._ends[0][0] if self._ends else None

    def poll(self) -> list[PodReport]:
        if self._ends:
            now = self.clock()
            while self._ends and self._ends[0][0] <= now:
                _, number, key = heapq.heappop(self._ends)
                if self._launch_no.get(key) == number:
                    self.finish(key, 0)
        reports, self._reports = self._reports, []
        return reports

    def adopt(self, key: str, handle: dict[str, Any]) -> PodReport:
        launch = self.running.get(key)
        if launch is None:
            return PodReport(key, PodState.LOST)
        return PodReport(key, PodState.RUNNING, handle=self._handle(launch))  # the real handle, even from an intent

    def log_path(self, key: str, handle: dict[str, Any] | None = None) -> Path | None:
        return None

    def endpoint(self, key: str, handle: dict[str, Any]) -> Endpoint | None:
        return None  # simulated pods serve nothing

    def release(self, key: str, handle: dict[str, Any]) -> None:
        pass  # nothing on disk

    def metrics(self) -> list[DeviceMetrics]:
        return [DeviceMetrics(node, index, utilization=percent)
                for (node, index), percent in sorted(self.utilization.items())]

    def close(self) -> None:
        pass
