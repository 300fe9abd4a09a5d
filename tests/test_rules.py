"""Scheduling rules (max duration, idle GPU timeout) per project, department and workload kind,
run in the service's clock: simulated time on the simulated cluster, cycle by cycle."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from jupyter_runai.clusters.simulated import SimulatedCluster, simulated_nodes
from jupyter_runai.models import KindRules, Project
from jupyter_runai.rules import effective_rules, format_seconds
from jupyter_runai.service import RunaiService
from jupyter_runai.store import Store

from test_service import ME, make_service, phase, submit


class Clock:
    """Simulated time for the service: it moves only when the test says."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def cluster():
    return SimulatedCluster(simulated_nodes(1, gpus=2))


@pytest.fixture
def service(tmp_path, cluster, clock):
    svc = make_service(tmp_path, cluster, clock=clock)
    yield svc
    svc.store.close()


def rules(service, **by_kind) -> None:
    service.update_project("default", {"rules": by_kind}, ME)


def stopped_by_rule(service, name) -> str:
    """The workload is Stopped; returns its status message (the reason naming the rule)."""
    workload = service.get("default", name)
    assert workload.status.phase.value == "Stopped", workload.status
    events = service.store.events(workload=name)
    rule_events = [e for e in events if e.type == "RuleStopped"]
    assert [e.message for e in rule_events] == [workload.status.message]
    assert events[-1].type == "Stopped" and events[-1].message == workload.status.message
    return workload.status.message


def test_a_training_job_is_stopped_after_its_maximum_duration(service, cluster, clock):
    rules(service, training={"max_duration": "1h"})
    submit(service, "train", resources={"gpu": 1})
    submit(service, "space", kind="workspace", resources={"gpu": 1})
    service.run_cycle()
    assert phase(service, "train") == phase(service, "space") == "Running"
    clock.advance(minutes=59)
    service.run_cycle()
    assert phase(service, "train") == "Running"
    clock.advance(minutes=1)
    service.run_cycle()
    assert "default/train-0" not in cluster.running  # its pod was stopped
    service.run_cycle()
    message = stopped_by_rule(service, "train")
    assert message == ("stopped by rule max_duration of project 'default' for training workloads: ran 1h, "
                       "the most allowed is 1h")
    assert phase(service, "space") == "Running"  # a training rule: the workspace runs on
    # resumed, it runs anew for the whole duration
    service.resume("default", "train", ME)
    service.run_cycle()
    clock.advance(minutes=30)
    service.run_cycle()
    assert phase(service, "train") == "Running"


def test_the_shorter_of_the_project_s_and_the_department_s_rule_applies(service, clock):
    rules(service, workspace={"max_duration": "2h"})
    service.update_department("default", {"rules": {"workspace": {"max_duration": "90m"}}}, ME)
    submit(service, "space", kind="workspace", resources={"gpu": 1})
    service.run_cycle()
    clock.advance(minutes=89)
    service.run_cycle()
    assert phase(service, "space") == "Running"
    clock.advance(minutes=1)
    service.run_cycle()
    service.run_cycle()
    assert "rule max_duration of department 'default' for workspace workloads" in stopped_by_rule(service, "space")


def test_the_duration_survives_a_restart(tmp_path, cluster, clock):
    first = make_service(tmp_path, cluster, clock=clock)
    rules(first, training={"max_duration": "1h"})
    submit(first, "train", resources={"gpu": 1})
    first.run_cycle()
    first.store.close()
    clock.advance(hours=2)
    second = RunaiService(Store(tmp_path / "runai.db"), cluster, stop_grace_seconds=0, clock=clock)
    second.start()
    second.run_cycle()
    second.run_cycle()
    assert "ran 2h" in stopped_by_rule(second, "train")
    second.store.close()


def test_an_idle_workspace_is_stopped_after_the_idle_gpu_timeout(service, cluster, clock):
    rules(service, workspace={"idle_gpu_timeout": "30m"})
    submit(service, "space", kind="workspace", resources={"gpu": 1})
    service.run_cycle()
    device = ("sim-node-0", service.get("default", "space").status.pods[0].devices[0])
    # not measured (a virtual GPU): never idle
    clock.advance(hours=3)
    service.run_cycle()
    assert phase(service, "space") == "Running"
    # measured at 0%: idle from now on
    cluster.utilization[device] = 0
    service.run_cycle()
    clock.advance(minutes=29)
    service.run_cycle()
    assert phase(service, "space") == "Running"
    # used for a moment: the idle time starts over
    cluster.utilization[device] = 40
    service.run_cycle()
    cluster.utilization[device] = 0
    clock.advance(minutes=1)
    service.run_cycle()
    clock.advance(minutes=29)
    service.run_cycle()
    assert phase(service, "space") == "Running"
    clock.advance(minutes=1)
    service.run_cycle()
    service.run_cycle()
    assert stopped_by_rule(service, "space") == (
        "stopped by rule idle_gpu_timeout of project 'default' for workspace workloads: its GPUs showed no "
        "utilization for 30m, the most allowed is 30m")


def test_a_workload_sharing_a_busy_device_is_not_idle(service, cluster, clock):
    rules(service, workspace={"idle_gpu_timeout": "10m"})
    submit(service, "a", kind="workspace", resources={"gpu": 0.5})
    submit(service, "b", kind="workspace", resources={"gpu": 0.5})
    service.run_cycle()
    pods = [service.get("default", n).status.pods[0] for n in ("a", "b")]
    assert pods[0].devices == pods[1].devices  # packed on one device
    cluster.utilization[("sim-node-0", pods[0].devices[0])] = 80  # one of them uses it: the device is busy
    for _ in range(3):
        clock.advance(minutes=10)
        service.run_cycle()
    assert phase(service, "a") == phase(service, "b") == "Running"
    cluster.utilization[("sim-node-0", pods[0].devices[0])] = 0  # now neither uses it
    service.run_cycle()
    clock.advance(minutes=10)
    service.run_cycle()
    service.run_cycle()
    assert "idle_gpu_timeout" in stopped_by_rule(service, "a") and "idle_gpu_timeout" in stopped_by_rule(service, "b")


def test_an_idle_workspace_is_made_preemptible_where_the_rule_says_so_then_gives_its_gpu_back(
        service, cluster, clock):
    rules(service, workspace={"idle_gpu_timeout": "30m", "idle_gpu_action": "preemptible"})
    submit(service, "space", kind="workspace", resources={"gpu": 1})
    service.run_cycle()
    cluster.utilization[("sim-node-0", service.get("default", "space").status.pods[0].devices[0])] = 0
    service.run_cycle()
    # an inference endpoint that needs both GPUs waits: the workspace is not preemptible
    submit(service, "serve", kind="inference", resources={"gpu": 1}, min_replicas=2, max_replicas=2)
    clock.advance(minutes=29)
    service.run_cycle()
    assert phase(service, "space") == "Running" and phase(service, "serve") == "Pending"
    clock.advance(minutes=1)
    service.run_cycle()
    space = service.get("default", "space")
    message = ("made preemptible by rule idle_gpu_timeout of project 'default' for workspace workloads: its GPUs "
               "showed no utilization for 30m, the most allowed is 30m; it runs on, and its GPUs may be taken back")
    assert space.preemptible and space.status.made_preemptible_by == space.status.message == message
    assert space.spec.preemptible is False  # the spec keeps what was submitted
    assert events_of(service, "space", "RuleMadePreemptible") == [message]
    assert events_of(service, "space", "RuleStopped") == []
    assert service.store.workload("default", "space").status.made_preemptible_by == message  # stored so
    for _ in range(4):  # now the endpoint preempts it
        service.run_cycle()
    assert phase(service, "serve") == "Running" and phase(service, "space") == "Pending"
    # still preemptible while it waits; stopped and resumed, it runs as submitted again
    assert service.get("default", "space").preemptible
    service.stop("default", "space", ME)
    service.run_cycle()
    service.resume("default", "space", ME)
    space = service.get("default", "space")
    assert not space.preemptible and space.status.made_preemptible_by is None


def test_an_idle_preemptible_workload_is_stopped_even_where_the_rule_would_make_it_preemptible(
        service, cluster, clock):
    rules(service, training={"idle_gpu_timeout": "10m", "idle_gpu_action": "preemptible"},
          workspace={"idle_gpu_timeout": "10m", "idle_gpu_action": "preemptible"})
    cluster.utilization.update({("sim-node-0", 0): 0, ("sim-node-0", 1): 0})
    submit(service, "train", resources={"gpu": 1})  # preemptible already
    submit(service, "space", kind="workspace", resources={"gpu": 1})
    service.run_cycle()
    service.run_cycle()
    clock.advance(minutes=10)
    service.run_cycle()
    service.run_cycle()
    assert "stopped by rule idle_gpu_timeout" in stopped_by_rule(service, "train")
    assert phase(service, "space") == "Running" and service.get("default", "space").preemptible
    clock.advance(minutes=9)  # its idle time started over when it was made preemptible
    service.run_cycle()
    assert phase(service, "space") == "Running"
    clock.advance(minutes=1)
    service.run_cycle()
    service.run_cycle()
    assert "stopped by rule idle_gpu_timeout" in stopped_by_rule(service, "space")
    # the rule's action is validated, naming the field and the values allowed
    with pytest.raises(ValidationError) as bad:
        KindRules(idle_gpu_action="pause")
    assert "idle_gpu_action" in str(bad.value) and "'preemptible'" in str(bad.value)


def test_a_workload_without_gpus_is_never_idle(service, cluster, clock):
    rules(service, training={"idle_gpu_timeout": "1m"})
    cluster.utilization.update({("sim-node-0", 0): 0, ("sim-node-0", 1): 0})
    submit(service, "cpu", resources={"cpu": 1})
    submit(service, "gpu", resources={"gpu": 1})
    service.run_cycle()
    service.run_cycle()  # both run: the GPU one's device idle from now
    clock.advance(hours=1)
    service.run_cycle()
    service.run_cycle()
    assert phase(service, "cpu") == "Running"
    assert "idle_gpu_timeout" in stopped_by_rule(service, "gpu")


# ------------------------------------------------------------------ the fields


def test_rules_are_validated_naming_the_field():
    with pytest.raises(Exception) as bad:
        Project(name="p", rules={"batch": {"max_duration": "1h"}})
    assert "rules" in str(bad.value) and "workspace, training, distributed, inference" in str(bad.value)
    with pytest.raises(Exception) as bad:
        Project(name="p", rules={"training": {"max_duration": 0}})
    assert "max_duration" in str(bad.value) and "more than 0" in str(bad.value)
    with pytest.raises(Exception) as bad:
        Project(name="p", rules={"training": {"max_duration": "soon"}})
    assert "max_duration" in str(bad.value)
    project = Project(name="p", rules={"training": {"max_duration": "1h30m"}, "workspace": None})
    assert project.rules["training"].max_duration == 5400 and "workspace" not in project.rules


def test_effective_rules_take_the_shorter_and_say_whose():
    from jupyter_runai.models import Department
    project = Project(name="p", rules={"training": {"max_duration": "8h", "idle_gpu_timeout": "1h"}})
    department = Department(name="d", rules={"training": {"max_duration": "4h"}, "workspace": {"max_duration": "1d"}})
    assert effective_rules("training", project, department) == {
        "max_duration": (14400.0, "department 'd'"), "idle_gpu_timeout": (3600.0, "project 'p'")}
    assert effective_rules("workspace", project, None) == {}
    assert effective_rules("inference", project, department) == {}
    assert [format_seconds(s) for s in (90, 7200, 86400 + 60, 0.5)] == ["1m30s", "2h", "1d1m", "0.5s"]


def test_patch_changes_one_rule_and_keeps_the_others(service):
    rules(service, training={"max_duration": "8h", "idle_gpu_timeout": "1h"})
    service.update_project("default", {"rules": {"training": {"idle_gpu_timeout": None}}}, ME)
    assert service.project("default").rules["training"].model_dump(exclude_none=True) == {"max_duration": 28800}
    service.update_project("default", {"rules": {"workspace": {"max_duration": "1d"}}}, ME)
    assert set(service.project("default").rules) == {"training", "workspace"}
    service.update_project("default", {"rules": {"training": None}}, ME)
    assert set(service.project("default").rules) == {"workspace"}


def test_the_queue_file_sets_rules():
    from jupyter_runai.config import parse_queue_config
    config = parse_queue_config({
        "departments": [{"name": "research", "rules": {"training": {"max_duration": "2d"}}}],
        "projects": [{"name": "team-a", "department": "research",
                      "rules": {"workspace": {"max_duration": "1d", "idle_gpu_timeout": "30m"}}}],
    })
    assert config.departments[0].rules["training"].max_duration == 2 * 86400
    assert config.projects[0].rules["workspace"].idle_gpu_timeout == 1800


def events_of(service, name, type_):
    return [e.message for e in service.store.events(workload=name) if e.type == type_]


def test_a_preemptible_job_yields_to_a_waiting_one_after_its_maximum(service, clock):
    rules(service, training={"preemptible_max_duration": "1h"})
    submit(service, "long", resources={"gpu": 2})  # training: preemptible by default
    service.run_cycle()
    assert phase(service, "long") == "Running"
    clock.advance(hours=2)
    service.run_cycle()
    assert phase(service, "long") == "Running"  # nothing waits: it runs on past its maximum

    submit(service, "next", resources={"gpu": 2})
    for _ in range(4):
        service.run_cycle()
    assert phase(service, "next") == "Running"  # the GPUs went to the one that waited
    long = service.get("default", "long")
    assert long.status.phase.value == "Pending"
    message = ("yielded by rule preemptible_max_duration of project 'default' for training workloads: preemptible, "
               "ran 2h while others waited, the most allowed is 1h; back in the queue")
    assert events_of(service, "long", "RuleYielded") == [message]
    assert long.status.pending_reason is not None
    # it waits behind "next" and starts again (its clock starting over) once "next" ends
    service.cluster.finish("default/next-0", 0)
    for _ in range(3):
        service.run_cycle()
    assert phase(service, "long") == "Running" and events_of(service, "long", "RuleYielded") == [message]


def test_a_non_preemptible_workload_never_yields(service, clock):
    rules(service, training={"preemptible_max_duration": "1h"})
    submit(service, "steady", resources={"gpu": 2}, preemptible=False)
    service.run_cycle()
    submit(service, "next", resources={"gpu": 2})
    clock.advance(hours=3)
    for _ in range(3):
        service.run_cycle()
    assert phase(service, "steady") == "Running" and phase(service, "next") == "Pending"
    assert events_of(service, "steady", "RuleYielded") == []


def test_node_pool_rule_per_kind_at_admission_and_for_waiting_workloads(tmp_path, clock):
    from jupyter_runai.errors import Invalid

    cluster = SimulatedCluster([*simulated_nodes(1, gpus=2, prefix="big", labels={"gpu": "a100"}),
                                *simulated_nodes(1, gpus=2, prefix="small")])
    service = make_service(tmp_path, cluster, gpus=4, clock=clock)
    try:
        service.create_node_pool({"name": "a100", "label_selector": {"gpu": "a100"}}, ME)
        submit(service, "early", resources={"gpu": 1}, node_pools=["default"])  # before the rule
        rules(service, training={"node_pools": ["a100"]})
        # a submission naming none gets the pools its kind may use, and runs there
        made = submit(service, "pinned", resources={"gpu": 1})
        assert made.spec.node_pools == ["a100"]
        # one naming another pool is refused naming the rule; nothing is stored
        with pytest.raises(Invalid) as refused:
            submit(service, "elsewhere", resources={"gpu": 1}, node_pools=["default"])
        assert refused.value.field == "node_pools" and refused.value.allowed == ["a100"]
        assert refused.value.message.startswith("node_pools: rule node_pools of project 'default' for training "
                                                "workloads allows only a100; it asks for default")
        # another kind is not restricted
        assert submit(service, "space", kind="workspace", resources={"gpu": 1}).spec.node_pools == []
        service.run_cycle()
        assert service.get("default", "pinned").status.pods[0].node == "big-0"
        # the one submitted before the rule waits, its reason naming the rule, until the rule allows its pool
        early = service.get("default", "early")
        assert early.status.phase.value == "Pending"
        assert early.status.pending_reason == ("held: rule node_pools of project 'default' for training "
                                               "workloads allows only a100; it asks for default")
        assert events_of(service, "early", "Pending") == [early.status.pending_reason]
        rules(service, training={"node_pools": ["a100", "default"]})
        service.run_cycle()
        assert phase(service, "early") == "Running"
    finally:
        service.store.close()


def test_a_department_and_its_project_allow_only_the_pools_both_allow():
    from jupyter_runai.models import Department
    from jupyter_runai.rules import allowed_pools, pool_problem

    department = Department(name="research", rules={"training": {"node_pools": ["a100", "h100"]}})
    project = Project(name="vision", department="research", rules={"training": {"node_pools": ["h100", "t4"]}})
    allowed = allowed_pools("training", project, department)
    assert allowed == (["h100"], "department 'research' and project 'vision'")
    assert allowed_pools("workspace", project, department) is None
    assert pool_problem("training", ["h100"], allowed) is None
    assert pool_problem("training", [], allowed).endswith("allows only h100; it asks for any pool")


def test_only_a_waiting_workload_that_could_use_its_gpus_makes_a_preemptible_one_yield():
    from jupyter_runai.models import PodStatus, Workload, WorkloadSpec, WorkloadStatus
    from jupyter_runai.rules import contested

    def workload(name, phase="Running", node="big-0", **spec):
        pods = [PodStatus(name=f"{name}-0", index=0, phase="Running", node=node, devices=[0])] if phase == "Running" else []
        return Workload(spec=WorkloadSpec(name=name, command="x", **spec), submitted_by="me",
                        status=WorkloadStatus(phase=phase, submitted_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
                                              pods=pods))

    pools = {"big-0": "a100", "small-0": "default"}
    long = workload("long", resources={"gpu": 1})
    steady = workload("steady", resources={"gpu": 1}, preemptible=False)
    running = [long, steady]
    assert contested(running, [workload("elsewhere", "Pending", resources={"gpu": 1}, node_pools=["default"])],
                     pools) == set()  # waits for another pool
    assert contested(running, [workload("cpu", "Pending")], pools) == set()  # needs no GPU
    assert contested(running, [workload("huge", "Pending", resources={"gpu": 8}, queue_anyway=True)],
                     pools) == set()  # queued anyway: may never fit
    assert contested(running, [workload("here", "Pending", resources={"gpu": 1}, node_pools=["a100"])],
                     pools) == {long.uid}  # non-preemptible work never yields
    assert contested(running, [workload("any", "Pending", resources={"gpu": 0.5})], pools) == {long.uid}
