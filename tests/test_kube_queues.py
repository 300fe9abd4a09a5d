"""KAI-Scheduler's Queue objects as departments and projects: the conversion on its own, then at
the wire level (the real client over HTTP to the API server stand-in, tests/kube_stand_in.py)
with the real service and store: read, kept in step by the watch, conflicts left out."""

from __future__ import annotations

import logging

import pytest

from kube_stand_in import kube  # noqa: F401 (a fixture)
from test_kubernetes_backend import deployed_role_allows, make_cluster, wait_for
from test_service import ME, make_service

from jupyter_runai.clusters.kube_queues import queue_config

pytestmark = pytest.mark.timeout(60)


def kai_queue(name: str, parent: str | None = None, gpu: dict | None = None, **spec) -> dict:
    body = {"resources": {"gpu": gpu or {"quota": 1, "limit": -1, "overQuotaWeight": 1},
                          "cpu": {"quota": -1, "limit": -1, "overQuotaWeight": 1},
                          "memory": {"quota": -1, "limit": -1, "overQuotaWeight": 1}}, **spec}
    if parent:
        body["parentQueue"] = parent
    return {"apiVersion": "scheduling.run.ai/v2", "kind": "Queue", "metadata": {"name": name}, "spec": body}


def test_parent_queues_are_departments_and_leaves_projects_in_kai_units():
    config = queue_config([
        kai_queue("org"),
        kai_queue("research", parent="org", gpu={"quota": 8, "limit": 12, "overQuotaWeight": 2}, priority=150),
        kai_queue("team-a", parent="research", gpu={"quota": 2, "limit": 0, "overQuotaWeight": 3},
                  preemptMinRuntime="10m"),
        {**kai_queue("team-b", parent="research"), "spec": {"parentQueue": "research", "resources": {
            "gpu": {"quota": 1.5, "limit": -1}, "cpu": {"quota": 2000, "limit": 4000},
            "memory": {"quota": 4096, "limit": -1}}}},
        kai_queue("solo", gpu={"quota": 4, "limit": 6, "overQuotaWeight": 1}),
        kai_queue("Bad_Name", parent="research"),
        kai_queue("orphan", parent="nowhere"),
    ])
    departments = {d.name: d for d in config.departments}
    projects = {p.name: p for p in config.projects}
    assert set(departments) == {"research", "solo"} and set(projects) == {"team-a", "team-b", "solo"}
    research = departments["research"]
    assert (research.deserved.gpu, research.limit.gpu, research.over_quota_weight, research.priority) == (8, 12, 2, 150)
    a, b = projects["team-a"], projects["team-b"]
    assert a.department == "research" and b.department == "research"
    assert (a.deserved.gpu, a.limit.gpu, a.over_quota_weight) == (2, 2, 3)  # limit 0: nothing beyond the quota
    assert a.preempt_min_runtime == 600
    assert (b.deserved.gpu, b.limit.gpu) == (1.5, None)  # -1: no limit
    assert (b.deserved.cpu, b.limit.cpu, b.deserved.memory) == (2000, 4000, 4096 * 10 ** 6)  # millicores, MB
    assert projects["solo"].department == "solo" and departments["solo"].deserved.gpu == 4
    said = "\n".join(config.problems)
    assert "queue org: its parent" not in said and "its parent org is above the two levels" in said
    assert "Bad_Name left out" in said and "orphan: its parent queue nowhere does not exist" in said
    assert "cpu quota -1 (unlimited)" in said


def test_kai_queues_become_projects_kept_in_step_and_conflicts_are_left_out(kube, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="jupyter_runai.kai_queue_sync")
    kube.put("queues", kai_queue("research", gpu={"quota": 4, "limit": -1, "overQuotaWeight": 1}))
    kube.put("queues", kai_queue("team-a", parent="research"))
    kube.put("queues", kai_queue("team-b", parent="research"))
    kube.put("queues", kai_queue("default"))  # the service's own project: a conflict
    cluster = make_cluster(kube, tmp_path, kai_queues=True)
    service = make_service(tmp_path, cluster, gpus=4)
    try:
        def projects():
            service.run_cycle()
            return {p.name: p for p in service.store.projects()}
        wait_for(lambda: {"team-a", "team-b"} <= set(projects()), "the KAI queues read")
        assert projects()["team-a"].department == "research"
        assert {d.name for d in service.store.departments()} == {"default", "research"}
        assert projects()["default"].department == "default"  # the store's own, untouched
        assert "KAI queue default left out: project default is defined by the queue file or the API" in caplog.text

        # a workload in a KAI queue's project runs in its namespace
        service.submit({"name": "train", "project": "team-a", "command": "x", "resources": {"gpu": 1}}, ME)
        service.run_cycle()
        assert cluster.drain()
        wait_for(lambda: kube.get("pods", "runai-team-a", "train-0"), "the pod created")

        # the watch keeps them in step: a quota changes, a queue goes, one in use stays
        kube.patch("queues", None, "team-b", {"spec": {"resources": {"gpu": {"quota": 2}}}})
        wait_for(lambda: projects()["team-b"].deserved.gpu == 2, "the new quota")
        kube.delete("queues", None, "team-b")
        kube.delete("queues", None, "team-a")
        wait_for(lambda: "team-b" not in projects(), "team-b removed")
        assert "team-a" in projects() and "project team-a stays while it is in use" in caplog.text
        assert service.get("team-a", "train", ME).status.phase.value in ("Pending", "Running")

        used = kube.verbs_used()
        assert {("list", "queues"), ("watch", "queues")} <= used and used - deployed_role_allows() == set()
    finally:
        cluster.close()
        service.store.close()
