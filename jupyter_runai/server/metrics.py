"""``/runai/metrics``: the scheduler's state for Prometheus, read at scrape time (docs/monitoring.md).

Three families of names (all gauges unless said otherwise):

* our own, since the first version: ``runai_workloads{project, kind, phase}``,
  ``runai_project_gpu_deserved|limit|allocated|fair_share{project}``,
  ``runai_device_allocated_fraction{node, device, virtual}``, ``runai_device_memory_used_bytes`` and
  ``runai_device_utilization_percent{node, device}`` (measured devices only),
  ``runai_scheduling_cycles_total`` (counter), ``runai_scheduling_cycle_seconds`` (the last cycle) and
  ``runai_scheduling_cycle_duration_seconds`` (histogram of every cycle), ``runai_evictions_total{project, action}``
  (counter: reclaim, preempt, consolidate, other);
* Run:ai's names, with Run:ai's labels where we have them: per device ``runai_gpu_utilization_per_gpu``,
  ``runai_gpu_memory_used_mebibytes_per_gpu`` (measured devices only), ``runai_gpu_memory_total_mebibytes_per_gpu``;
  per node ``runai_gpu_count_per_node``, ``runai_allocated_gpu_count_per_node``; per pod
  ``runai_allocated_gpu_count_per_pod``, ``runai_gpu_utilization_per_pod_per_gpu``,
  ``runai_gpu_memory_used_mebibytes_per_pod_per_gpu``; per workload ``runai_allocated_gpu_count_per_workload``,
  ``runai_requested_gpus_per_workload``, ``runai_gpu_utilization_per_workload``,
  ``runai_gpu_memory_used_mebibytes_per_workload`` (the measured ones only where NVML measures); per project ``runai_allocated_gpu_count_per_project``,
  ``runai_project_guaranteed_gpus`` and ``runai_project_info``;
* KAI-Scheduler's queue names (a project is a queue, ``queue_name``): ``kai_queue_deserved_gpus``,
  ``kai_queue_allocated_gpus``, ``kai_queue_fair_share_gpu`` and ``kai_e2e_scheduling_latency_milliseconds``.

Each scrape shows what its caller may see (RBAC): the project and workload series of its projects,
and the device and node series only when it may see nodes.
"""

from __future__ import annotations


from jupyter_server.auth.decorator import authorized
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from tornado import web

from ..models.quantity import parse_memory
from .base import RunaiHandler, api

MIB = 1024 * 1024


def _gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


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
        yield from self._projects(service.project_views(self.user))
        yield from self._devices(service.node_views(self.user) if service.may(self.user, "view-nodes") else ())
        yield from self._workloads(service.workload_usage(self.user))
        yield from self._cycles(service, service.visible_projects(self.user))

    @staticmethod
    def _projects(views):
        deserved = _gauge("runai_project_gpu_deserved", "GPUs a project deserves (its quota)", ["project"])
        limit = _gauge("runai_project_gpu_limit", "Most GPUs a project may hold (absent: unlimited)", ["project"])
        allocated = _gauge("runai_project_gpu_allocated", "GPUs a project's pods hold now", ["project"])
        fair = _gauge("runai_project_gpu_fair_share", "A project's fair share of GPUs in the last cycle", ["project"])
        # Run:ai's names
        runai_allocated = _gauge("runai_allocated_gpu_count_per_project", "GPUs allocated to a project's pods",
                                 ["project"])
        guaranteed = _gauge("runai_project_guaranteed_gpus", "A project's guaranteed GPUs (deserved quota)",
                            ["project"])
        info = _gauge("runai_project_info", "A project and its department and GPU quota (always 1)",
                      ["project", "department", "gpu_guaranteed_quota"])
        # KAI-Scheduler's names: a project is a queue
        kai_deserved = _gauge("kai_queue_deserved_gpus", "Queue deserved GPUs", ["queue_name"])
        kai_allocated = _gauge("kai_queue_allocated_gpus", "Queue allocated GPUs", ["queue_name"])
        kai_fair = _gauge("kai_queue_fair_share_gpu", "Queue fair share of GPUs in the last cycle", ["queue_name"])
        for view in views:
            name = [view["name"]]
            gpu_deserved = float(view["deserved"]["gpu"])
            gpu_allocated = float(view["allocated"]["gpu"])
            for family, value in ((deserved, gpu_deserved), (allocated, gpu_allocated),
                                  (runai_allocated, gpu_allocated), (guaranteed, gpu_deserved),
                                  (kai_deserved, gpu_deserved), (kai_allocated, gpu_allocated)):
                family.add_metric(name, value)
            info.add_metric([view["name"], view.get("department") or "", f"{gpu_deserved:g}"], 1)
            if view["limit"].get("gpu") is not None:
                limit.add_metric(name, float(view["limit"]["gpu"]))
            if view.get("fair_share"):
                fair.add_metric(name, float(view["fair_share"]["gpu"]))
                kai_fair.add_metric(name, float(view["fair_share"]["gpu"]))
        yield from (deserved, limit, allocated, fair, runai_allocated, guaranteed, info, kai_deserved, kai_allocated,
                    kai_fair)

    @staticmethod
    def _devices(nodes):
        fraction = _gauge("runai_device_allocated_fraction", "Share of a GPU allocated to pods (0-1)",
                          ["node", "device", "virtual"])
        used = _gauge("runai_device_memory_used_bytes", "GPU memory in use (NVML)", ["node", "device"])
        util = _gauge("runai_device_utilization_percent", "GPU utilization (NVML)", ["node", "device"])
        # Run:ai's names (label gpu: the device index)
        runai_util = _gauge("runai_gpu_utilization_per_gpu", "GPU utilization per GPU (NVML)", ["node", "gpu"])
        runai_used = _gauge("runai_gpu_memory_used_mebibytes_per_gpu", "Used GPU memory per GPU (NVML)",
                            ["node", "gpu"])
        runai_total = _gauge("runai_gpu_memory_total_mebibytes_per_gpu", "Total GPU memory per GPU", ["node", "gpu"])
        count = _gauge("runai_gpu_count_per_node", "GPUs per node", ["node", "modelName", "virtual"])
        per_node = _gauge("runai_allocated_gpu_count_per_node", "GPUs allocated to pods per node", ["node"])
        for node in nodes:
            models = sorted({d.get("model") or "" for d in node["devices"]}) or [""]
            virtual = str(any(d.get("virtual") for d in node["devices"])).lower()
            count.add_metric([node["name"], ",".join(models), virtual], len(node["devices"]))
            per_node.add_metric([node["name"]], round(sum(d["allocated_fraction"] for d in node["devices"]), 4))
            for device in node["devices"]:
                labels = [node["name"], str(device["index"])]
                fraction.add_metric(labels + [str(bool(device.get("virtual"))).lower()], device["allocated_fraction"])
                runai_total.add_metric(labels, parse_memory(device["memory"]) / MIB)
                if device.get("used_memory") is not None:
                    used.add_metric(labels, float(device["used_memory"]))
                    runai_used.add_metric(labels, float(device["used_memory"]) / MIB)
                if device.get("utilization") is not None:
                    util.add_metric(labels, float(device["utilization"]))
                    runai_util.add_metric(labels, float(device["utilization"]))
        yield from (fraction, used, util, runai_util, runai_used, runai_total, count, per_node)

    @staticmethod
    def _workloads(usage):
        labels = ["workload_id", "workload_name", "workload_type", "project", "user"]
        allocated = _gauge("runai_allocated_gpu_count_per_workload", "GPUs allocated to a workload's pods", labels)
        requested = _gauge("runai_requested_gpus_per_workload", "GPUs a workload asks for (all its pods)", labels)
        utilization = _gauge("runai_gpu_utilization_per_workload", "Mean GPU utilization of a workload's devices "
                             "(NVML; absent unless all are measured)", labels)
        memory = _gauge("runai_gpu_memory_used_mebibytes_per_workload", "GPU memory a workload's processes use "
                        "(NVML)", labels)
        pod_labels = ["pod_name", "pod_namespace", "node", "workload_name"]
        per_pod = _gauge("runai_allocated_gpu_count_per_pod", "GPUs allocated to a pod", pod_labels)
        pod_util = _gauge("runai_gpu_utilization_per_pod_per_gpu", "GPU utilization of a pod's processes on one "
                          "device (NVML)", pod_labels + ["gpu"])
        pod_memory = _gauge("runai_gpu_memory_used_mebibytes_per_pod_per_gpu", "GPU memory a pod's processes use "
                            "on one device (NVML)", pod_labels + ["gpu"])
        for view in usage:
            values = [view["uid"], view["name"], view["kind"], view["project"], view["user"] or ""]
            allocated.add_metric(values, view["allocated"])
            if view["requested"] is not None:
                requested.add_metric(values, view["requested"])
            if view["utilization"] is not None:
                utilization.add_metric(values, view["utilization"])
            if view["used_memory"] is not None:
                memory.add_metric(values, view["used_memory"] / MIB)
            pods: dict[tuple[str, str], float] = {}
            for entry in view["devices"]:
                base = [entry["pod"], view["project"], entry["node"], view["name"]]
                pods[(entry["pod"], entry["node"])] = pods.get((entry["pod"], entry["node"]), 0.0) + entry["share"]
                if entry["utilization"] is not None:
                    pod_util.add_metric(base + [str(entry["device"])], entry["utilization"])
                if entry["used_memory"] is not None:
                    pod_memory.add_metric(base + [str(entry["device"])], entry["used_memory"] / MIB)
            for (pod, node), gpus in pods.items():
                per_pod.add_metric([pod, view["project"], node, view["name"]], round(gpus, 4))
        yield from (allocated, requested, utilization, memory, per_pod, pod_util, pod_memory)

    @staticmethod
    def _cycles(service, visible):
        cycles = CounterMetricFamily("runai_scheduling_cycles", "Scheduling cycles run since the server started")
        cycles.add_metric([], service.cycles)
        yield cycles
        last = GaugeMetricFamily("runai_scheduling_cycle_seconds", "Duration of the last scheduling cycle")
        last.add_metric([], service.last_cycle_seconds)
        yield last
        kai = GaugeMetricFamily("kai_e2e_scheduling_latency_milliseconds",
                                "Duration of the last scheduling cycle in milliseconds (KAI-Scheduler's name)")
        kai.add_metric([], service.last_cycle_seconds * 1000)
        yield kai
        evictions = CounterMetricFamily("runai_evictions", "Pods evicted since the server started, by project "
                                        "and kind: reclaim, preempt, consolidate, other", labels=["project", "action"])
        for (project, action), count in sorted(service.evictions.items()):
            if visible is not None and project not in visible:
                continue
            evictions.add_metric([project, action], count)
        yield evictions
        yield from service.cycle_histogram.collect()


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
