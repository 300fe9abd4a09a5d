"""Monitoring through the REST API of a real Jupyter server (pytest-jupyter), local cluster on virtual
GPUs: the usage report (accounting) in the service's clock, and the Prometheus endpoint."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from api_helpers import server_config, wait_for
from test_metrics import one, parse
from test_rules import Clock

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture
def jp_server_config(tmp_path):
    return server_config(tmp_path)


@pytest.fixture
def clock(service):
    """The service's clock, frozen at a day in the future and moved by the test."""
    clock = Clock()
    clock.now = datetime(2030, 6, 1, 10, 0, tzinfo=timezone.utc)
    service.clock = clock
    return clock


async def test_the_usage_report_counts_gpu_hours_of_a_deleted_workload(api, service, clock):
    await api.submit(name="train", command="sleep 60", resources={"gpu": 1})
    await api.submit(name="half", command="sleep 60", resources={"gpu": 0.5})
    await api.wait_phase("train", "Running")
    await api.wait_phase("half", "Running")
    clock.advance(hours=2)
    code, _ = await api.delete("workloads", "default", "train")
    assert code == 202
    await wait_for(lambda: api.get("workloads", "default", "train"), lambda got: got[0] == 404, 20, "train gone")
    clock.advance(hours=1)
    code, report = await api.get("reports/usage", params={"by": "workload", "from": "2030-06-01",
                                                          "to": "2030-06-01"})
    assert code == 200, report
    assert report["from"] == report["to"] == "2030-06-01" and report["by"] == "workload"
    got = {r["workload"]: (r["gpu_hours_allocated"], r["gpu_hours_used"], r["gpu_hours_measured"])
           for r in report["rows"]}
    # virtual GPUs: allocated, never measured (used is null, not 0)
    assert got == {"train": (2.0, None, 0.0), "half": (1.5, None, 0.0)}
    code, by_project = await api.get("reports/usage", params={"from": "2030-06-01", "to": "2030-06-01"})
    assert [(r["project"], r["gpu_hours_allocated"]) for r in by_project["rows"]] == [("default", 3.5)]


@pytest.mark.parametrize("params, field", [
    ({"by": "pod"}, "by"), ({"from": "June"}, "from"), ({"to": "2030-13-01"}, "to"),
    ({"from": "2030-06-02", "to": "2030-06-01"}, "from"),
])
async def test_a_bad_usage_report_request_is_a_400_naming_the_field(api, params, field):
    code, body = await api.get("reports/usage", params=params)
    assert code == 400, body
    assert body["error"]["field"] == field and body["error"]["allowed"]


async def test_the_prometheus_endpoint_serves_kai_and_runai_names_with_the_cycle_histogram(api):
    await api.submit(name="metered", command="sleep 30", resources={"gpu": 0.5})
    await api.wait_phase("metered", "Running")
    response = await api.fetch("runai", "metrics")
    m = parse(response.body.decode())
    assert one(m["kai_queue_allocated_gpus"], queue_name="default") == 0.5
    assert one(m["kai_queue_deserved_gpus"], queue_name="default") == 2.0
    assert one(m["runai_allocated_gpu_count_per_workload"], workload_name="metered") == 0.5
    assert one(m["runai_gpu_memory_total_mebibytes_per_gpu"], gpu="0") == 24 * 1024
    assert "runai_gpu_utilization_per_gpu" not in m  # virtual GPUs are not measured: no series, not a 0
    # the histogram counts every cycle of the same scrape
    assert m["runai_scheduling_cycle_duration_seconds_count"][()] == m["runai_scheduling_cycles_total"][()] > 0


async def test_workload_and_device_use_with_history_through_rest(api):
    await api.submit(name="half", command="sleep 30", resources={"gpu": 0.5})
    await api.wait_phase("half", "Running")
    code, body = await api.get("usage/workloads", params={"project": "default"})
    assert code == 200, body
    [half] = [w for w in body["workloads"] if w["name"] == "half"]
    assert half["allocated"] == 0.5 and half["requested"] == 0.5
    assert half["virtual"] is True and half["utilization"] is None and half["used_memory"] is None
    assert half["devices"][0]["share"] == 0.5 and body["every_seconds"] > 0
    code, body = await api.get("usage/devices")
    assert code == 200 and len(body["devices"]) == 2 and all(d["virtual"] for d in body["devices"])
    assert all(s["utilization"] is None for d in body["devices"] for s in d["samples"])
    code, body = await api.get("usage/projects")
    assert code == 200 and [p["name"] for p in body["projects"]] == ["default"]
    assert body["projects"][0]["samples"][-1]["deserved"] == 2.0
    code, body = await api.get("usage/workloads", params={"project": "nope"})
    assert code == 404 and body["error"]["field"]
