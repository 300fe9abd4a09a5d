"""``/runai/metrics``: the scheduler's state for Prometheus, read at scrape time.

Metrics (all gauges unless said otherwise):

* ``runai_workloads{project, kind, phase}``: workloads by phase;
* ``runai_project_gpu_deserved{project}``, ``runai_project_gpu_limit{project}`` (absent when
  unlimited), ``runai_project_gpu_allocated{project}``, ``runai_project_gpu_fair_share{project}``;
* ``runai_device_allocated_fraction{node, device, virtual}``, ``runai_device_memory_used_bytes{node, device}``,
  ``runai_device_utilization_percent{node, device}`` (the last two only where NVML measures them);
* ``runai_scheduling_cycles_total`` (counter), ``runai_scheduling_cycle_seconds`` (the last cycle's duration).

Each scrape shows what its caller may see (RBAC): the series of its projects, and the device
series only when it may see nodes.
"""

from __future__ import annotations


from jupyter_server.auth.decorator import authorized
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from tornado import web

from .base import RunaiHandler, api


class ServiceCollector:
    """A prometheus_client collector over one service."""

    def __init__(self, service, user=None) -> None:
        self.service = service
        self.user = user  # the caller: its projects only, and the nodes where it may see them

    def collect(self):
        service = self.service
        workloads = GaugeMetricFamily("runai_workloads", "Workloads by project, kind and phase",
                                      labels=["project", "kind", "phase"])
        for labels, count in sorted(service.phase_counts(self.user).items()):
            workloads.add_metric(list(labels), count)
        yield workloads

        deserved = GaugeMetricFamily("runai_project_gpu_deserved", "GPUs a project deserves (its quota)",
                                     labels=["project"])
        limit = GaugeMetricFamily("runai_project_gpu_limit", "Most GPUs a project may hold (absent: unlimited)",
                                  labels=["project"])
        allocated = GaugeMetricFamily("runai_project_gpu_allocated", "GPUs a project's pods hold now",
                                      labels=["project"])
        fair = GaugeMetricFamily("runai_project_gpu_fair_share", "A project's fair share of GPUs in the last cycle",
                                 labels=["project"])
        for view in service.project_views(self.user):
            name = [view["name"]]
            deserved.add_metric(name, float(view["deserved"]["gpu"]))
            if view["limit"].get("gpu") is not None:
                limit.add_metric(name, float(view["limit"]["gpu"]))
            allocated.add_metric(name, float(view["allocated"]["gpu"]))
            if view.get("fair_share"):
                fair.add_metric(name, float(view["fair_share"]["gpu"]))
        yield from (deserved, limit, allocated, fair)

        fraction = GaugeMetricFamily("runai_device_allocated_fraction", "Share of a GPU allocated to pods (0-1)",
                                     labels=["node", "device", "virtual"])
        used = GaugeMetricFamily("runai_device_memory_used_bytes", "GPU memory in use (NVML)",
                                 labels=["node", "device"])
        util = GaugeMetricFamily("runai_device_utilization_percent", "GPU utilization (NVML)",
                                 labels=["node", "device"])
        for node in (service.node_views(self.user) if service.may(self.user, "view-nodes") else ()):
            for device in node["devices"]:
                labels = [node["name"], str(device["index"])]
                fraction.add_metric(labels + [str(bool(device.get("virtual"))).lower()], device["allocated_fraction"])
                if device.get("used_memory") is not None:
                    used.add_metric(labels, float(device["used_memory"]))
                if device.get("utilization") is not None:
                    util.add_metric(labels, float(device["utilization"]))
        yield from (fraction, used, util)

        cycles = CounterMetricFamily("runai_scheduling_cycles", "Scheduling cycles run since the server started")
        cycles.add_metric([], service.cycles)
        yield cycles
        last = GaugeMetricFamily("runai_scheduling_cycle_seconds", "Duration of the last scheduling cycle")
        last.add_metric([], service.last_cycle_seconds)
        yield last


class MetricsHandler(RunaiHandler):
    """Prometheus text format; under the Jupyter server's authentication like every route."""

    @web.authenticated
    @authorized
    @api
    async def get(self) -> None:
        registry = CollectorRegistry(auto_describe=False)  # per request: each caller sees its own projects
        registry.register(ServiceCollector(self.service, self.user))
        self.set_status(200)
        self.finish(generate_latest(registry), set_content_type=CONTENT_TYPE_LATEST)
