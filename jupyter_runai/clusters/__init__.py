"""Cluster backends: where pods really run. See ``base.Cluster`` for the protocol."""

from .base import Cluster, DeviceMetrics, FileToWrite, Mount, PodLaunch, PodReport, PodState

__all__ = ["Cluster", "DeviceMetrics", "FileToWrite", "Mount", "PodLaunch", "PodReport", "PodState"]
