"""Requests that can never run (jupyter_runai.feasibility): the pure checks, then the service
refusing them at submission unless the submitter asks to queue anyway."""

from __future__ import annotations

import pytest

from jupyter_runai.clusters.simulated import GIB, SimulatedCluster, simulated_nodes
from jupyter_runai.errors import Invalid
from jupyter_runai.feasibility import never_runs
from jupyter_runai.models import Department, NodePool, Project, WorkloadSpec

from test_service import ME, make_service

# two nodes of 4 GPUs (40Gi each, 32 cores, 256Gi) labelled small, one of 8 GPUs (80Gi, 64 cores, 1Ti)
NODES = (simulated_nodes(2, gpus=4, gpu_memory=40 * GIB, cpu_millis=32_000, memory=256 * GIB, prefix="small",
                         labels={"size": "small"})
         + simulated_nodes(1, gpus=8, gpu_memory=80 * GIB, cpu_millis=64_000, memory=1024 * GIB, prefix="big",
                           labels={"size": "big"}))
POOLS = [NodePool(name="small", label_selector={"size": "small"}),
         NodePool(name="big", label_selector={"size": "big"})]
PROJECT = Project(name="team")
DEPARTMENT = Department(name="default")


def problems(project=PROJECT, department=DEPARTMENT, nodes=NODES, **spec):
    spec.setdefault("command", "run")
    found = never_runs(WorkloadSpec(name="w", project=project.name, **spec), nodes, POOLS, project, department)
    return {p.field: p.allowed for p in found}


@pytest.mark.parametrize("spec", [
    {"resources": {"gpu": 8}},
    {"resources": {"gpu": 4}, "node_pools": ["small"]},
    {"resources": {"gpu": 0.5, "gpu_devices": 8}},
    {"resources": {"gpu_memory": "80Gi"}},
    {"resources": {"gpu_memory": "40Gi", "gpu_devices": 4}, "node_pools": ["small", "big"]},
    {"resources": {"cpu": 64, "memory": "1Ti"}},
    {"kind": "distributed", "workers": 3, "resources": {"gpu": 8}},
    {"kind": "inference", "min_replicas": 2, "max_replicas": 5, "resources": {"gpu": 1}},
])
def test_what_one_node_holds_is_accepted(spec):
    assert problems(**spec) == {}


@pytest.mark.parametrize("spec, field, allowed", [
    ({"resources": {"gpu": 16}}, "resources.gpu", "at most 8 (the most on one node)"),
    ({"resources": {"gpu": 8}, "node_pools": ["small"]}, "resources.gpu",
     "at most 4 (the most on one node of node pool small)"),
    ({"resources": {"gpu": 0.5, "gpu_devices": 9}}, "resources.gpu_devices", "at most 8 (the most on one node)"),
    ({"resources": {"gpu_memory": "100Gi"}}, "resources.gpu_memory", "at most 80Gi (the largest device)"),
    ({"resources": {"gpu_memory": "60Gi"}, "node_pools": ["small"]}, "resources.gpu_memory",
     "at most 40Gi (the largest device)"),
    ({"resources": {"cpu": 65}}, "resources.cpu", "at most 64 (the most on one node)"),
    ({"resources": {"memory": "2Ti"}}, "resources.memory", "at most 1Ti (the most on one node)"),
    ({"kind": "distributed", "workers": 1, "master_resources": {"gpu": 12}, "resources": {"gpu": 1}},
     "master_resources.gpu", "at most 8 (the most on one node)"),
])
def test_a_pod_no_node_holds_is_refused_naming_the_field_and_the_most_there_is(spec, field, allowed):
    assert problems(**spec) == {field: allowed}


def test_a_machines_odd_memory_is_said_with_about_how_much_it_is():
    # a real machine's memory is no round number: the bound says it exactly and readably
    odd = simulated_nodes(1, gpus=1, memory=24683772 * 1024, prefix="m")
    (problem,) = never_runs(WorkloadSpec(name="w", project="team", command="run", resources={"memory": "1Ti"}),
                            odd, POOLS, PROJECT, DEPARTMENT)
    assert problem.allowed == "at most 24683772Ki, about 23.5Gi (the most on one node)"
    assert "the most on one node is 24683772Ki, about 23.5Gi" in problem.message


def test_parts_that_fit_apart_but_on_no_node_together_are_refused():
    # 8 GPUs only on "big", 40 cores only... nowhere above 32 but big's 64: fits; 8 GPUs and 300Gi: big has 1Ti
    assert problems(resources={"gpu": 8, "cpu": 40}) == {}
    # 4 devices of 60Gi: only big has devices that large, and it has 8 of them: fits
    assert problems(resources={"gpu_memory": "60Gi", "gpu_devices": 4}) == {}
    # 4 GPUs and 600Gi of memory restricted to the small pool: the memory is nowhere there
    assert set(problems(resources={"gpu": 4, "memory": "600Gi"}, node_pools=["small"])) == {"resources.memory"}
    small_and_odd = simulated_nodes(1, gpus=8, cpu_millis=4_000, prefix="g") + simulated_nodes(
        1, gpus=0, cpu_millis=64_000, prefix="c")
    assert problems(nodes=small_and_odd, resources={"gpu": 2, "cpu": 16}) == {
        "resources": "a request that one node holds whole: fewer GPUs, less CPU or less memory"}


def test_gpus_on_a_cluster_without_any_are_refused():
    cpu_only = simulated_nodes(1, gpus=0, prefix="c")
    assert set(problems(nodes=cpu_only, resources={"gpu": 0.5})) == {"resources.gpu"}
    assert problems(nodes=cpu_only, resources={"cpu": 2}) == {}


def test_a_cluster_without_nodes_judges_only_the_limits():
    assert problems(nodes=[], resources={"gpu": 64, "cpu": 1000}) == {}
    assert set(problems(nodes=[], project=Project(name="team", limit={"gpu": 2}), resources={"gpu": 4})) == {
        "resources.gpu"}


def test_a_pool_without_nodes_is_refused():
    pools_and_empty = POOLS + [NodePool(name="empty", label_selector={"size": "none"})]
    spec = WorkloadSpec(name="w", project="team", command="run", node_pools=["empty"])
    found = never_runs(spec, NODES, pools_and_empty, PROJECT, DEPARTMENT)
    assert [p.field for p in found] == ["node_pools"]


@pytest.mark.parametrize("project, department, spec, field, allowed", [
    (Project(name="team", limit={"gpu": 3}), DEPARTMENT, {"resources": {"gpu": 4}}, "resources.gpu",
     "at most 3 in all (project 'team' limit)"),
    (Project(name="team"), Department(name="default", limit={"gpu": 6}),
     {"kind": "distributed", "workers": 3, "resources": {"gpu": 2}}, "resources.gpu",
     "at most 6 in all (department 'default' limit)"),
    (Project(name="team", limit={"gpu": 10, "cpu": 8}), DEPARTMENT,
     {"kind": "inference", "min_replicas": 3, "resources": {"cpu": 4}}, "resources.cpu",
     "at most 8 in all (project 'team' limit)"),
    (Project(name="team", limit={"memory": "100Gi"}), DEPARTMENT, {"resources": {"memory": "200Gi"}},
     "resources.memory", "at most 100Gi in all (project 'team' limit)"),
    # a gpu_memory request counts as its share of the largest device it may land on
    (Project(name="team", limit={"gpu": 0.25}), DEPARTMENT, {"resources": {"gpu_memory": "40Gi"}},
     "resources.gpu", "at most 0.25 in all (project 'team' limit)"),
])
def test_above_the_project_s_or_department_s_limit_is_refused(project, department, spec, field, allowed):
    assert problems(project=project, department=department, **spec) == {field: allowed}


def test_limits_count_the_gang_minimum_and_the_widest_pool():
    limited = Project(name="team", limit={"gpu": 3})
    # elastic pods above min_available may wait; the minimum fits the limit
    assert problems(project=limited, kind="distributed", workers=5, min_available=3, resources={"gpu": 1}) == {}
    assert problems(project=limited, kind="inference", min_replicas=3, max_replicas=9, resources={"gpu": 1}) == {}
    # a pool with its own, wider limit lets the workload run there
    pooled = Project(name="team", limit={"gpu": 3}, node_pools={"big": {"limit": {"gpu": 8}}})
    assert problems(project=pooled, resources={"gpu": 6}) == {}
    assert set(problems(project=pooled, resources={"gpu": 6}, node_pools=["small", "big"])) == set()
    assert set(problems(project=pooled, resources={"gpu": 4}, node_pools=["small"])) == {"resources.gpu"}


def test_every_problem_is_listed():
    found = problems(project=Project(name="team", limit={"gpu": 2}), resources={"gpu": 16, "cpu": 100})
    assert set(found) == {"resources.gpu", "resources.cpu"}


# ------------------------------------------------------------------ the service's admission


@pytest.fixture
def service(tmp_path):
    svc = make_service(tmp_path, SimulatedCluster(simulated_nodes(3, gpus=4)), gpus=12)
    yield svc
    svc.store.close()


def test_the_service_refuses_what_never_runs_and_stores_nothing(service):
    with pytest.raises(Invalid) as refused:
        service.submit({"name": "huge", "command": "run", "resources": {"gpu": 16}}, ME)
    assert refused.value.field == "resources.gpu"
    assert refused.value.allowed == "at most 4 (the most on one node)"
    assert "queue_anyway" in refused.value.message
    assert service.list() == [] and service.store.workloads() == []
    assert service.store.events(workload="huge") == []


def test_queue_anyway_queues_it_with_its_reason_to_wait(service):
    service.submit({"name": "huge", "command": "run", "resources": {"gpu": 16}, "queue_anyway": True}, ME)
    service.run_cycle()
    waiting = service.get("default", "huge")
    assert waiting.status.phase.value == "Pending" and waiting.status.pending_reason
    assert waiting.spec.queue_anyway is True


def test_a_limit_lowered_after_submission_is_checked_at_the_next_submission(service):
    service.submit({"name": "fits", "command": "run", "resources": {"gpu": 4}}, ME)
    service.update_project("default", {"deserved": {"gpu": 0}, "limit": {"gpu": 3}}, ME)
    with pytest.raises(Invalid) as refused:
        service.submit({"name": "more", "command": "run", "resources": {"gpu": 4}}, ME)
    assert refused.value.field == "resources.gpu"
    assert refused.value.allowed == "at most 3 in all (project 'default' limit)"
