"""A simulated cluster: declared nodes, pods that "run" without any process.

For benchmarks and trace replay (``benchmarks/``, ``jupyter_runai.sim``): ``launch``
marks a pod running at once, ``stop`` ends it at the next ``poll``, and ``finish``
lets the caller end a pod with an exit code (a replay decides when jobs complete).
Time is whatever the caller says it is; nothing here reads the clock.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..models import GpuDevice, Node
from .base import DeviceMetrics, PodLaunch, PodReport, PodState

__all__ = ["SimulatedCluster", "simulated_nodes"]

GIB = 1024 ** 3


def simulated_nodes(count: int, gpus: int = 8, gpu_memory: int = 80 * GIB, cpu_millis: int = 128_000,
                    memory: int = 1024 * GIB, prefix: str = "sim-node", labels: dict[str, str] | None = None,
                    model: str = "Simulated GPU") -> list[Node]:
    """``count`` alike nodes named ``<prefix>-<i>``, each with ``gpus`` virtual devices."""
    return [
        Node(name=f"{prefix}-{i}", labels=dict(labels or {}), cpu=cpu_millis, memory=memory,
             devices=[GpuDevice(index=d, uuid=f"VIRTUAL-GPU-{prefix}-{i}-{d}", model=model, memory=gpu_memory,
                                virtual=True) for d in range(gpus)])
        for i in range(count)
    ]


class SimulatedCluster:
    """The Cluster protocol over declared nodes; pods run instantly and forever until stopped or finished."""

    name = "simulated"

    def __init__(self, nodes: list[Node]) -> None:
        self._nodes = list(nodes)
        self.running: dict[str, PodLaunch] = {}
        self._reports: list[PodReport] = []
        self.launches = 0

    def nodes(self) -> list[Node]:
        return self._nodes

    def launch(self, launch: PodLaunch) -> dict[str, Any]:
        if launch.key in self.running:
            raise ValueError(f"pod {launch.key} is already running")
        self.running[launch.key] = launch
        self.launches += 1
        return {"node": launch.node, "devices": list(launch.devices), "simulated": True}

    def stop(self, key: str, grace_seconds: float | None = None) -> None:
        if self.running.pop(key, None) is not None:
            self._reports.append(PodReport(key, PodState.STOPPED, message="stopped"))

    def finish(self, key: str, exit_code: int = 0) -> None:
        """End a running pod as if its command exited with ``exit_code``."""
        if self.running.pop(key, None) is not None:
            state = PodState.SUCCEEDED if exit_code == 0 else PodState.FAILED
            self._reports.append(PodReport(key, state, exit_code, f"exited with code {exit_code}"))

    def poll(self) -> list[PodReport]:
        reports, self._reports = self._reports, []
        return reports

    def adopt(self, key: str, handle: dict[str, Any]) -> PodReport:
        return PodReport(key, PodState.RUNNING if key in self.running else PodState.LOST)

    def log_path(self, key: str, handle: dict[str, Any] | None = None) -> Path | None:
        return None

    def metrics(self) -> list[DeviceMetrics]:
        return []

    def close(self) -> None:
        pass
