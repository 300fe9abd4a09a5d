"""``/runai/metrics`` read with Prometheus' own text parser and checked against the numbers the state
implies: per device, per workload and per project, under our, Run:ai's and KAI-Scheduler's names."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from jupyter_runai.clusters.simulated import SimulatedCluster, simulated_nodes
from jupyter_runai.server.metrics import ServiceCollector

from test_service import ME, make_service, submit

NODE = "sim-node-0"


def scrape(service) -> dict[str, dict[tuple, float]]:
    """One scrape of the service's collector, parsed (see ``parse``)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServiceCollector(service))
    return parse(generate_latest(registry).decode())


def parse(text: str) -> dict[str, dict[tuple, float]]:
    """{sample name: {sorted labels: value}} of a scrape, parsed as Prometheus parses it."""
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def one(samples: dict[tuple, float], **labels: str) -> float:
    """The value of the one sample whose labels include ``labels``."""
    found = [v for k, v in samples.items() if set(labels.items()) <= set(k)]
    assert len(found) == 1, (labels, samples)
    return found[0]


@pytest.fixture
def service(tmp_path):
    svc = make_service(tmp_path, SimulatedCluster(simulated_nodes(1, gpus=2)))
    yield svc
    svc.store.close()


def test_device_workload_and_project_series_carry_the_right_numbers(service):
    submit(service, "train", resources={"gpu": 1})
    submit(service, "half", resources={"gpu": 0.5})
    submit(service, "big", resources={"gpu": 2})  # cannot fit beside them: waits
    for _ in range(3):
        service.run_cycle()
    train_device = service.get("default", "train").status.pods[0].devices[0]
    other = 1 - train_device
    service.cluster.utilization[(NODE, train_device)] = 75.0  # measured; the other device is not
    m = scrape(service)

    # projects: KAI-Scheduler's queue names and Run:ai's
    assert one(m["kai_queue_deserved_gpus"], queue_name="default") == 2.0
    assert one(m["kai_queue_allocated_gpus"], queue_name="default") == 1.5
    assert one(m["kai_queue_fair_share_gpu"], queue_name="default") == 2.0  # asks 3.5, deserves 2, 2 GPUs in all
    assert one(m["runai_allocated_gpu_count_per_project"], project="default") == 1.5
    assert one(m["runai_project_guaranteed_gpus"], project="default") == 2.0
    assert one(m["runai_project_info"], project="default", department="default", gpu_guaranteed_quota="2") == 1
    # workloads and pods
    allocated = m["runai_allocated_gpu_count_per_workload"]
    assert {dict(k)["workload_name"]: v for k, v in allocated.items()} == {"train": 1.0, "half": 0.5, "big": 0.0}
    assert one(allocated, workload_name="train", workload_type="training", project="default", user="me") == 1.0
    assert {dict(k)["workload_name"]: v for k, v in m["runai_requested_gpus_per_workload"].items()} == {
        "train": 1.0, "half": 0.5, "big": 2.0}
    assert one(m["runai_allocated_gpu_count_per_pod"], pod_name="half-0", node=NODE) == 0.5
    # devices: utilization only where measured, never a made-up 0
    assert m["runai_gpu_utilization_per_gpu"] == {(("gpu", str(train_device)), ("node", NODE)): 75.0}
    assert one(m["runai_device_utilization_percent"], device=str(train_device)) == 75.0
    assert one(m["runai_gpu_memory_total_mebibytes_per_gpu"], gpu=str(other)) == 80 * 1024
    assert one(m["runai_device_allocated_fraction"], device=str(other), virtual="true") == 0.5
    assert one(m["runai_allocated_gpu_count_per_node"], node=NODE) == 1.5
    assert one(m["runai_gpu_count_per_node"], node=NODE, virtual="true") == 2


def test_the_fair_share_is_served_and_current_also_when_nothing_waits(service):
    service.create_project({"name": "other", "department": "default", "deserved": {"gpu": 0}}, ME)
    assert service.cycles == 0  # before any cycle: divided from the state as it is
    assert one(scrape(service)["kai_queue_fair_share_gpu"], queue_name="other") == 0.0
    service.run_cycle()  # nothing was ever submitted: the engine never ran
    m = scrape(service)
    assert one(m["kai_queue_fair_share_gpu"], queue_name="default") == 0.0  # asks nothing
    assert one(m["kai_queue_fair_share_gpu"], queue_name="other") == 0.0
    submit(service, "big", resources={"gpu": 2})
    service.run_cycle()
    service.run_cycle()
    assert service.get("default", "big").status.phase.value == "Running"
    assert one(scrape(service)["runai_project_gpu_fair_share"], project="default") == 2.0
    submit(service, "late", project="other", resources={"gpu": 1}, preemptible=True)
    service.run_cycle()  # it waits: default holds both GPUs within its deserved 2
    assert one(scrape(service)["kai_queue_fair_share_gpu"], queue_name="other") == 0.0
    service.cluster.finish("default/big-0", 0)  # big ends; "late" starts on the GPU it left
    for _ in range(3):
        service.run_cycle()
    assert service.get("other", "late").status.phase.value == "Running"
    m = scrape(service)  # nothing waits now: the shares of the work that runs, not of the last division
    assert one(m["kai_queue_fair_share_gpu"], queue_name="default") == 0.0
    assert one(m["kai_queue_fair_share_gpu"], queue_name="other") == 1.0
    assert [p["fair_share"] for p in service.project_views() if p["name"] == "other"] == [{"gpu": 1.0}]
    service.cluster.finish("other/late-0", 0)  # nothing runs, nothing waits: no one is entitled to anything
    for _ in range(2):
        service.run_cycle()
    assert one(scrape(service)["kai_queue_fair_share_gpu"], queue_name="other") == 0.0


def test_the_cycle_time_is_a_histogram_of_every_cycle(service):
    for _ in range(5):
        service.run_cycle()
    m = scrape(service)
    count = m["runai_scheduling_cycle_duration_seconds_count"][()]
    assert count == service.cycles == 5 == m["runai_scheduling_cycles_total"][()]
    buckets = sorted(((float(dict(k)["le"]), v) for k, v in m["runai_scheduling_cycle_duration_seconds_bucket"].items()))
    assert buckets[-1] == (float("inf"), 5)
    assert [v for _, v in buckets] == sorted(v for _, v in buckets)  # cumulative
    assert 0 < m["runai_scheduling_cycle_duration_seconds_sum"][()] < 5 * 10
    assert m["kai_e2e_scheduling_latency_milliseconds"][()] == pytest.approx(service.last_cycle_seconds * 1000)


def test_every_series_the_grafana_dashboard_queries_is_served(service):
    import json
    import re
    from pathlib import Path

    dashboard = json.loads((Path(__file__).parent.parent / "docs" / "grafana-dashboard.json").read_text())
    queries = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    queries += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    wanted = {name for q in queries for name in re.findall(r"\b(?:runai|kai)_[a-z_]+", q)}
    submit(service, "train", resources={"gpu": 1})
    service.run_cycle()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServiceCollector(service))
    families = list(text_string_to_metric_families(generate_latest(registry).decode()))
    # a family declared even while it has no sample (nothing measured yet) counts
    served = {f.name for f in families} | {s.name for f in families for s in f.samples}
    served |= {f"{f.name}_total" for f in families if f.type == "counter"}  # a counter with no sample yet
    assert wanted and not wanted - served, sorted(wanted - served)


def test_evictions_are_counted_by_project_and_kind(tmp_path):
    from jupyter_runai.models import Project
    from jupyter_runai.service import RunaiService
    from jupyter_runai.store import Store

    from test_service import ME

    cluster = SimulatedCluster(simulated_nodes(1, gpus=2))
    store = Store(tmp_path / "runai.db")
    for name in ("alpha", "beta"):
        store.put_project(Project(name=name, deserved={"gpu": 1}))
    service = RunaiService(store, cluster, stop_grace_seconds=0)
    service.start()
    for name in ("a1", "a2"):
        service.submit({"name": name, "project": "alpha", "command": "run", "resources": {"gpu": 1}}, ME)
    service.run_cycle()
    service.submit({"name": "b1", "project": "beta", "command": "run", "resources": {"gpu": 1}}, ME)
    service.run_cycle()
    service.run_cycle()
    # inside beta, a higher priority preempts b1
    service.submit({"name": "b2", "project": "beta", "command": "run", "resources": {"gpu": 1},
                    "priority_class": "build-preemptible"}, ME)
    service.run_cycle()
    service.run_cycle()
    m = scrape(service)["runai_evictions_total"]
    assert m == {(("action", "reclaim"), ("project", "alpha")): 1, (("action", "preempt"), ("project", "beta")): 1}
    store.close()
