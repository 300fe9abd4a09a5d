"""The one seam between the local cluster and the GPU driver (NVML).

Everything the local cluster needs from NVML goes through the small
:class:`Nvml` interface below: the devices, the GPU memory each process uses,
each device's memory use and utilization, and (optional: an NVML without it, or a
stand-in that lacks the method, measures no process) each process's utilization. :class:`PynvmlNvml` implements it
on ``pynvml`` (package ``nvidia-ml-py``) and degrades to "no GPUs" when the
library or the driver is missing. Nothing is initialised at import time: NVML is
loaded on the first call.

Tests replace it with a small in-test class that has the same methods.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["Nvml", "NvmlDevice", "NoNvml", "PynvmlNvml"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NvmlDevice:
    """One GPU as NVML sees it."""

    index: int          # NVML index (PCI bus order; CUDA uses it with CUDA_DEVICE_ORDER=PCI_BUS_ID)
    uuid: str           # "GPU-..."
    name: str           # product name, e.g. "NVIDIA H200"
    memory_total: int   # bytes


@runtime_checkable
class Nvml(Protocol):
    """What the local cluster reads from the GPU driver."""

    def devices(self) -> list[NvmlDevice]:
        """The GPUs of this machine; empty when there are none (or no driver)."""
        ...

    def process_memory(self, index: int) -> dict[int, int]:
        """GPU memory in bytes used on device ``index``, by process id (host pid namespace)."""
        ...

    def usage(self, index: int) -> tuple[int | None, float | None]:
        """Device ``index`` now: (used memory in bytes, compute utilization in percent); None if unknown."""
        ...

    def process_utilization(self, index: int) -> dict[int, float] | None:
        """Utilization of device ``index`` by process id (percent of the device, over NVML's last
        sampling window); a process absent from it did not use the device. None if unknown."""
        ...

    def close(self) -> None:
        """Release the library (nvmlShutdown); harmless when never loaded."""
        ...


class NoNvml:
    """A machine without GPUs."""

    def devices(self) -> list[NvmlDevice]:
        return []

    def process_memory(self, index: int) -> dict[int, int]:
        return {}

    def usage(self, index: int) -> tuple[int | None, float | None]:
        return None, None

    def process_utilization(self, index: int) -> dict[int, float] | None:
        return None

    def close(self) -> None:
        pass


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class PynvmlNvml:
    """NVML through ``pynvml``; "no GPUs" when the library or the driver is missing.

    Initialised lazily on the first call, once; every later failure of a single
    query is logged at debug level and answered as "unknown" (empty / None)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pynvml = None
        self._tried = False
        self._devices: list[NvmlDevice] = []
        self.process_window_seconds = 5.0  # per-process utilization: the mean over this many seconds

    def _load(self):
        with self._lock:
            if self._tried:
                return self._pynvml
            self._tried = True
            try:
                import pynvml  # noqa: PLC0415  (lazy on purpose: nothing at import time)

                pynvml.nvmlInit()
            except Exception as error:  # ImportError, NVMLError_LibraryNotFound, driver not loaded ...
                log.info("NVML not available (%s): no real GPUs on this machine", error)
                return None
            self._pynvml = pynvml
            try:
                for index in range(pynvml.nvmlDeviceGetCount()):
                    handle = pynvml.nvmlDeviceGetHandleByIndex(index)
                    self._devices.append(
                        NvmlDevice(
                            index=index,
                            uuid=_text(pynvml.nvmlDeviceGetUUID(handle)),
                            name=_text(pynvml.nvmlDeviceGetName(handle)),
                            memory_total=int(pynvml.nvmlDeviceGetMemoryInfo(handle).total),
                        )
                    )
            except Exception as error:
                log.warning("NVML could not list the GPUs (%s): treating this machine as having none", error)
                self._devices = []
            return pynvml

    def _handle(self, index: int):
        pynvml = self._load()
        if pynvml is None:
            return None, None
        try:
            return pynvml, pynvml.nvmlDeviceGetHandleByIndex(index)
        except Exception as error:
            log.debug("NVML: no handle for device %s (%s)", index, error)
            return None, None

    def devices(self) -> list[NvmlDevice]:
        self._load()
        return list(self._devices)

    def process_memory(self, index: int) -> dict[int, int]:
        pynvml, handle = self._handle(index)
        if handle is None:
            return {}
        used: dict[int, int] = {}
        for query in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
            try:
                processes = getattr(pynvml, query)(handle)
            except Exception as error:
                log.debug("NVML %s(%s) failed: %s", query, index, error)
                continue
            for process in processes:
                memory = getattr(process, "usedGpuMemory", None)
                if memory is None:  # not available (e.g. Windows WDDM): unknown, not zero
                    continue
                used[int(process.pid)] = max(used.get(int(process.pid), 0), int(memory))
        return used

    def usage(self, index: int) -> tuple[int | None, float | None]:
        pynvml, handle = self._handle(index)
        if handle is None:
            return None, None
        memory = utilization = None
        try:
            memory = int(pynvml.nvmlDeviceGetMemoryInfo(handle).used)
        except Exception as error:
            log.debug("NVML memory info of device %s failed: %s", index, error)
        try:
            utilization = float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
        except Exception as error:
            log.debug("NVML utilization of device %s failed: %s", index, error)
        return memory, utilization

    def process_utilization(self, index: int) -> dict[int, float] | None:
        pynvml, handle = self._handle(index)
        if handle is None:
            return None
        # NVML's timestamps are microseconds of the wall clock: the samples of the last few seconds, the
        # same window whoever asks (the accounting, the history, a scrape), so no reader empties another's
        since = int((time.time() - self.process_window_seconds) * 1_000_000)
        try:
            samples = pynvml.nvmlDeviceGetProcessUtilization(handle, since)
        except Exception as error:
            if "not found" in str(error).lower():
                return {}  # NVML_ERROR_NOT_FOUND: no process used the device in the window
            log.debug("NVML process utilization of device %s failed: %s", index, error)
            return None  # not supported: unknown
        totals: dict[int, list[float]] = {}
        for sample in samples:
            totals.setdefault(int(sample.pid), []).append(float(sample.smUtil))
        return {pid: sum(values) / len(values) for pid, values in totals.items()}  # the mean over the window

    def close(self) -> None:
        with self._lock:
            if self._pynvml is not None:
                try:
                    self._pynvml.nvmlShutdown()
                except Exception:
                    pass
            self._pynvml = None
            self._tried = False
            self._devices = []
