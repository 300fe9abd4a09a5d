"""Behaviour of the domain models: units, defaults, validation messages, round trips."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from pydantic import BaseModel, ValidationError

import jupyter_runai.models as models
from jupyter_runai.models import (
    Department,
    DeviceAllocation,
    GpuDevice,
    Node,
    NodePool,
    PodStatus,
    PriorityClass,
    Project,
    QuantityError,
    QueueQuota,
    Resources,
    Workload,
    WorkloadKind,
    WorkloadPhase,
    WorkloadSpec,
    WorkloadStatus,
    error_body,
    format_cpu,
    format_memory,
    format_validation_error,
    is_preemptible_by_default,
    parse_cpu,
    parse_memory,
)

GI = 2**30
MI = 2**20


def errors_of(model: type[BaseModel], data: dict) -> list[dict]:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    return format_validation_error(info.value)


def error_for(model: type[BaseModel], data: dict, field: str) -> dict:
    items = errors_of(model, data)
    matches = [item for item in items if item["field"] == field]
    assert matches, f"no error for {field!r}; got {items}"
    return matches[0]


# --------------------------------------------------------------- quantities


@pytest.mark.parametrize(
    ("value", "millicores"),
    [("500m", 500), (2, 2000), ("2", 2000), ("1.5", 1500), (0.25, 250), (0.1, 100), ("0", 0), ("1k", 1_000_000)],
)
def test_cpu_accepts_cores_and_millicores(value, millicores):
    assert parse_cpu(value) == millicores


@pytest.mark.parametrize(
    ("value", "num_bytes"),
    [("20Gi", 20 * GI), ("512Mi", 512 * MI), ("1G", 10**9), ("1.5Gi", 1536 * MI), (1024, 1024), ("1e3", 1000)],
)
def test_memory_accepts_quantities(value, num_bytes):
    assert parse_memory(value) == num_bytes


@pytest.mark.parametrize("value", ["abc", "", "-1", -2, True, "0.5m", "inf", float("nan"), [1], None])
def test_cpu_rejects_what_is_not_a_cpu_quantity(value):
    with pytest.raises(QuantityError):
        parse_cpu(value)


def test_memory_in_millis_is_caught_with_a_hint():
    with pytest.raises(QuantityError, match="did you mean '100Mi'"):
        parse_memory("100m")


@pytest.mark.parametrize(("millicores", "text"), [(500, "500m"), (2000, "2"), (0, "0"), (1500, "1500m")])
def test_cpu_formats_canonically(millicores, text):
    assert format_cpu(millicores) == text


@pytest.mark.parametrize(
    ("num_bytes", "text"), [(20 * GI, "20Gi"), (10**9, "1G"), (1536 * MI, "1536Mi"), (1000, "1k"), (7, "7"), (0, "0")]
)
def test_memory_formats_to_the_shortest_exact_quantity(num_bytes, text):
    assert format_memory(num_bytes) == text


@pytest.mark.parametrize("num_bytes", [1, 999, 1023, 1024, 10**9 + 1, 3 * 2**40, 10**15, 2**50 - 1, 2**50])
def test_memory_format_reads_back_exactly(num_bytes):
    assert parse_memory(format_memory(num_bytes)) == num_bytes


@pytest.mark.parametrize("millicores", [1, 999, 1000, 1001, 64000])
def test_cpu_format_reads_back_exactly(millicores):
    assert parse_cpu(format_cpu(millicores)) == millicores


def test_models_store_normalized_and_write_human_forms():
    resources = Resources(cpu="500m", memory="20Gi", cpu_limit=2, memory_limit="32Gi")
    assert (resources.cpu, resources.memory, resources.cpu_limit) == (500, 20 * GI, 2000)
    assert resources.model_dump(mode="json")["cpu"] == "500m"
    assert resources.model_dump(mode="json")["memory"] == "20Gi"
    assert resources.model_dump(mode="json")["cpu_limit"] == "2"


# ---------------------------------------------------------------- resources


def test_resource_defaults_request_nothing_and_limit_nothing():
    resources = Resources()
    assert resources.gpu == 0 and resources.cpu == 0 and resources.memory == 0
    assert resources.cpu_limit is None and resources.memory_limit is None  # unset limit = unlimited
    assert resources.gpu_limit is None and resources.gpu_devices is None and resources.gpu_memory is None
    assert not resources.requests_gpu and resources.total_gpus() == 0


@pytest.mark.parametrize(
    ("spec", "total", "fractional", "devices"),
    [
        ({"gpu": 2}, 2.0, False, 2),
        ({"gpu": 1}, 1.0, False, 1),
        ({"gpu": 0.5}, 0.5, True, 1),
        ({"gpu": 0.5, "gpu_devices": 4}, 2.0, True, 4),
        ({"gpu": 0.25, "gpu_limit": 0.75}, 0.25, True, 1),  # quota counts the request
        ({"gpu": 0.25, "gpu_devices": 2, "gpu_limit": 1}, 0.5, True, 2),
    ],
)
def test_total_gpus_counts_what_quota_sees(spec, total, fractional, devices):
    resources = Resources(**spec)
    assert resources.total_gpus() == pytest.approx(total)
    assert resources.is_fractional is fractional
    assert resources.device_count == devices


def test_gpu_memory_becomes_a_fraction_of_the_device_it_lands_on():
    resources = Resources(gpu_memory="20Gi", gpu_devices=2)
    assert resources.is_fractional and resources.requests_gpu
    assert resources.total_gpus(device_memory=80 * GI) == pytest.approx(0.5)
    assert resources.fraction_of(80 * GI) == pytest.approx(0.25)
    assert Resources(gpu_memory="200Gi").fraction_of(80 * GI) == 1.0  # never more than the device
    with pytest.raises(ValueError, match="device's memory"):
        resources.total_gpus()


def test_dynamic_fraction():
    assert Resources(gpu=0.25, gpu_limit=0.75).is_dynamic
    assert not Resources(gpu=0.5, gpu_limit=0.5).is_dynamic
    assert not Resources(gpu=0.5).is_dynamic


def test_gpu_error_names_field_and_allowed_values():
    item = error_for(WorkloadSpec, {"name": "a", "resources": {"gpu": 1.5}}, "resources.gpu")
    assert item["message"] == (
        "resources.gpu: must be a whole number of devices (0, 1, 2, ... up to 1024) or a fraction between 0 and 1 "
        "(exclusive); got 1.5"
    )
    assert "whole number of devices" in item["allowed"]


@pytest.mark.parametrize("gpu", [-1, "half", True, float("inf"), 2.5])
def test_gpu_rejects_nonsense(gpu):
    assert error_for(Resources, {"gpu": gpu}, "gpu")["message"].startswith("gpu: must be a whole number")


def test_gpu_memory_and_gpu_are_mutually_exclusive():
    for gpu in (0.5, 1):
        item = error_for(Resources, {"gpu": gpu, "gpu_memory": "20Gi"}, "gpu_memory")
        assert "cannot be combined with gpu" in item["message"]


def test_gpu_devices_only_with_a_fraction_or_memory():
    item = error_for(Resources, {"gpu": 2, "gpu_devices": 2}, "gpu_devices")
    assert "only with a fractional gpu" in item["message"] and "gpu: N" in item["message"]
    error_for(Resources, {"gpu_devices": 2}, "gpu_devices")
    assert error_for(Resources, {"gpu": 0.5, "gpu_devices": 0}, "gpu_devices")["allowed"] == "1 <= n <= 1024"


def test_gpu_limit_only_with_a_fraction_and_between_request_and_one():
    assert "only with a fractional gpu" in error_for(Resources, {"gpu": 1, "gpu_limit": 1}, "gpu_limit")["message"]
    assert "only with a fractional gpu" in error_for(Resources, {"gpu_memory": "1Gi", "gpu_limit": 1}, "gpu_limit")[
        "message"
    ]
    low = error_for(Resources, {"gpu": 0.5, "gpu_limit": 0.25}, "gpu_limit")
    assert low["allowed"] == "0.5 <= gpu_limit <= 1"
    high = error_for(Resources, {"gpu": 0.5, "gpu_limit": 1.5}, "gpu_limit")
    assert "at most 1" in high["message"]


def test_limits_must_cover_requests():
    item = error_for(Resources, {"cpu": 2, "cpu_limit": "1"}, "cpu_limit")
    assert item["message"] == "cpu_limit: must be at least the request cpu (2), or unset for unlimited; got '1'"
    assert item["allowed"] == ">= 2"
    assert error_for(Resources, {"memory": "2Gi", "memory_limit": "1Gi"}, "memory_limit")["allowed"] == ">= 2Gi"


def test_quantity_errors_name_the_field():
    item = error_for(Resources, {"cpu": "lots"}, "cpu")
    assert item["message"].startswith("cpu: must be a CPU quantity") and "'500m'" in item["allowed"]
    item = error_for(Resources, {"memory": "10 gigs"}, "memory")
    assert item["message"].startswith("memory: must be a memory quantity") and "'20Gi'" in item["allowed"]


# ---------------------------------------------------------------- workloads


@pytest.mark.parametrize(
    ("kind", "extra", "priority_class", "priority", "preemptible"),
    [
        ("workspace", {}, "build", 100, False),
        ("training", {}, "train", 50, True),
        ("distributed", {"workers": 2}, "train", 50, True),
        ("inference", {}, "inference", 125, False),
    ],
)
def test_priority_class_and_preemptible_by_kind(kind, extra, priority_class, priority, preemptible):
    spec = WorkloadSpec(name="w", kind=kind, **extra)
    assert spec.priority_class == priority_class
    assert spec.priority == priority
    assert spec.preemptible is preemptible


def test_preemptible_follows_the_priority_class_and_yields_to_an_explicit_value():
    assert WorkloadSpec(name="w", kind="workspace", priority_class="build-preemptible").preemptible is True
    assert WorkloadSpec(name="w", kind="training", priority_class="inference").preemptible is False
    assert WorkloadSpec(name="w", kind="training", preemptible=False).preemptible is False
    assert WorkloadSpec(name="w", kind="workspace", preemptible=True).preemptible is True


def test_spec_defaults_are_explicit():
    spec = WorkloadSpec(name="w")
    assert spec.kind == WorkloadKind.TRAINING and spec.project == "default"
    assert spec.node_pools == [] and spec.environment == {} and spec.data_sources == [] and spec.credentials == []
    assert spec.command is None and spec.image is None
    assert spec.workers is None and spec.min_replicas is None
    assert spec.pod_count == 1 and spec.min_pods == 1 and not spec.is_gang


def test_distributed_defaults_gang_to_all_pods():
    spec = WorkloadSpec(name="ddp", kind="distributed", workers=3, resources={"gpu": 2})
    assert spec.master is True and spec.pod_count == 4 and spec.min_available == 4 and spec.is_gang
    assert spec.total_gpus() == 8
    no_master = WorkloadSpec(name="ddp", kind="distributed", workers=3, master=False)
    assert no_master.pod_count == 3 and no_master.min_available == 3


def test_distributed_master_resources_and_elastic_minimum():
    spec = WorkloadSpec(
        name="ddp",
        kind="distributed",
        workers=4,
        min_available=2,
        resources={"gpu": 1},
        master_resources={"cpu": 4},
    )
    assert spec.min_pods == 2 and spec.pod_count == 5
    assert spec.pod_resources(0).cpu == 4000 and spec.pod_resources(0).gpu == 0
    assert spec.pod_resources(1).gpu == 1
    assert spec.total_gpus() == 4
    assert spec.pod_name(3) == "ddp-3"


def test_distributed_needs_workers_and_a_reachable_minimum():
    assert error_for(WorkloadSpec, {"name": "d", "kind": "distributed"}, "workers")["message"].startswith(
        "workers: required for kind 'distributed'"
    )
    data = {"name": "d", "kind": "distributed", "workers": 2, "min_available": 4}
    item = error_for(WorkloadSpec, data, "min_available")
    assert item["allowed"] == "1 <= min_available <= 3"


@pytest.mark.parametrize("field", ["workers", "master", "min_available"])
def test_gang_fields_only_for_distributed(field):
    value = True if field == "master" else 2
    item = error_for(WorkloadSpec, {"name": "w", "kind": "training", field: value}, field)
    assert item["message"] == f"{field}: only for kind 'distributed'; this workload is 'training'; got {value!r}"


@pytest.mark.parametrize("field", ["min_replicas", "max_replicas"])
def test_replicas_only_for_inference(field):
    item = error_for(WorkloadSpec, {"name": "w", "kind": "distributed", "workers": 1, field: 2}, field)
    assert "only for kind 'inference'" in item["message"]


def test_inference_replicas():
    spec = WorkloadSpec(name="serve", kind="inference")
    assert (spec.min_replicas, spec.max_replicas) == (1, 1)
    spec = WorkloadSpec(name="serve", kind="inference", min_replicas=2)
    assert (spec.min_replicas, spec.max_replicas, spec.min_pods, spec.pod_count) == (2, 2, 2, 2)
    spec = WorkloadSpec(name="serve", kind="inference", max_replicas=5, resources={"gpu": 0.5})
    assert (spec.min_replicas, spec.max_replicas) == (1, 5) and spec.total_gpus() == 2.5
    data = {"name": "s", "kind": "inference", "min_replicas": 3, "max_replicas": 2}
    item = error_for(WorkloadSpec, data, "max_replicas")
    assert item["allowed"] == ">= 3"


@pytest.mark.parametrize("name", ["a", "bert-finetune", "0job", "x" * 63, "a-1-b"])
def test_dns_label_names_are_accepted(name):
    assert WorkloadSpec(name=name).name == name


@pytest.mark.parametrize("name", ["", "My_Job", "Job", "-job", "job-", "x" * 64, "job.1", "job 1", 12])
def test_names_must_be_dns_labels(name):
    item = error_for(WorkloadSpec, {"name": name}, "name")
    assert item["message"].startswith("name: must be")
    assert "DNS-1123 label" in item["message"] and "63" in item["allowed"]


def test_project_names_leave_room_for_the_namespace_prefix():
    assert WorkloadSpec(name="w", project="p" * 57).project == "p" * 57
    item = error_for(WorkloadSpec, {"name": "w", "project": "p" * 58}, "project")
    assert "at most 57 characters" in item["message"] and "runai-" in item["message"]
    assert models.namespace_for("team-a") == "runai-team-a"


def test_unknown_fields_are_named_with_a_suggestion():
    items = errors_of(WorkloadSpec, {"name": "w", "resources": {"gpus": 1, "cpu": "x"}, "priorty_class": "train"})
    by_field = {item["field"]: item for item in items}
    assert "did you mean 'gpu'?" in by_field["resources.gpus"]["message"]
    assert "gpu" in by_field["resources.gpus"]["allowed"]
    assert "did you mean 'priority_class'?" in by_field["priorty_class"]["message"]
    assert "resources.cpu" in by_field  # the rest of the object is still checked


def test_enum_errors_list_the_allowed_values():
    item = error_for(WorkloadSpec, {"name": "w", "kind": "notebook"}, "kind")
    assert item["allowed"] == ["workspace", "training", "distributed", "inference"]
    assert "'workspace'" in item["message"] and item["message"].endswith("got 'notebook'")
    item = error_for(WorkloadSpec, {"name": "w", "priority_class": "high"}, "priority_class")
    assert item["allowed"] == ["train", "build-preemptible", "build", "inference"]


def test_command_is_a_string_or_a_list_of_strings():
    assert WorkloadSpec(name="w", command="python train.py --lr 0.1").command == "python train.py --lr 0.1"
    assert WorkloadSpec(name="w", command=("python", "train.py")).command == ["python", "train.py"]
    for bad in ([], "  ", ["python", 3], 42):
        assert error_for(WorkloadSpec, {"name": "w", "command": bad}, "command")["message"].startswith(
            "command: must be a non-empty string"
        )


def test_environment_values_become_strings_and_names_are_checked():
    spec = WorkloadSpec(name="w", environment={"EPOCHS": 3, "DEBUG": True, "LR": 0.5, "NAME": "x"})
    assert spec.environment == {"EPOCHS": "3", "DEBUG": "true", "LR": "0.5", "NAME": "x"}
    item = error_for(WorkloadSpec, {"name": "w", "environment": {"1BAD": "x"}}, "environment.1BAD")
    assert "environment variable name" in item["allowed"]


def test_named_lists_must_not_repeat():
    item = error_for(WorkloadSpec, {"name": "w", "node_pools": ["a100", "a100"]}, "node_pools")
    assert item["message"] == "node_pools: must not name the same item twice; got 'a100'"
    error_for(WorkloadSpec, {"name": "w", "credentials": ["Bad_Name"]}, "credentials[0]")


# ------------------------------------------------------------------ status


NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)


def test_status_defaults_and_allocated_gpus():
    status = WorkloadStatus()
    assert status.phase == WorkloadPhase.PENDING and status.pods == [] and status.allocated_gpus == 0
    status = WorkloadStatus(
        phase="Running",
        pods=[
            {"name": "w-0", "index": 0, "node": "n1", "devices": [0, 1], "phase": "Running"},
            {"name": "w-1", "index": 1, "node": "n1", "devices": [2, 3], "fraction": 0.5},
        ],
    )
    assert status.allocated_gpus == 3.0


def test_workload_phase_finished():
    assert {p for p in WorkloadPhase if p.is_finished} == {
        WorkloadPhase.STOPPED,
        WorkloadPhase.SUCCEEDED,
        WorkloadPhase.FAILED,
    }


def test_pod_placement_is_consistent():
    assert error_for(PodStatus, {"name": "w-0", "index": 0, "devices": [0]}, "node")["message"] == (
        "node: required when the pod holds devices"
    )
    error_for(PodStatus, {"name": "w-0", "index": 0, "fraction": 0.5}, "fraction")
    error_for(PodStatus, {"name": "w-0", "index": 0, "node": "n", "devices": [1, 1]}, "devices")
    assert error_for(PodStatus, {"name": "w-0", "index": 0, "node": "n", "devices": [0], "fraction": 1.5}, "fraction")[
        "allowed"
    ] == "<= 1"


def test_pod_names_follow_the_workload():
    spec = {"name": "job", "kind": "distributed", "workers": 1}
    Workload(spec=spec, status={"pods": [{"name": "job-0", "index": 0}, {"name": "job-1", "index": 1}]})
    item = error_for(Workload, {"spec": spec, "status": {"pods": [{"name": "other-0", "index": 0}]}},
                     "status.pods[0].name")
    assert item["allowed"] == "job-0"


def test_timestamps_need_a_time_zone_and_an_order():
    item = error_for(WorkloadStatus, {"submitted_at": "2026-01-01T00:00:00"}, "submitted_at")
    assert item["message"].startswith("submitted_at: input should have timezone info")
    item = error_for(WorkloadStatus, {"submitted_at": NOW, "started_at": NOW - timedelta(seconds=1)}, "started_at")
    assert "must not be before submitted_at" in item["message"]


# ------------------------------------------------------------------- queues


def test_project_defaults():
    project = Project(name="team-a")
    assert project.department == "default" and project.priority == 100 and project.over_quota_weight == 1
    assert project.deserved.gpu == 0 and project.deserved.cpu == 0 and project.deserved.memory == 0
    assert project.limit.gpu is None and project.limit.cpu is None and project.limit.memory is None
    assert project.node_pools == {} and project.is_over_quota_allowed


def test_project_quota_in_human_units():
    project = Project(
        name="team-a",
        department="research",
        deserved={"gpu": 2.5, "cpu": "32", "memory": "256Gi"},
        limit={"gpu": 8, "cpu": -1, "memory": "-1"},
        over_quota_weight=0,
    )
    assert project.deserved.cpu == 32000 and project.deserved.memory == 256 * GI
    assert project.limit.gpu == 8 and project.limit.cpu is None and project.limit.memory is None  # -1 = unlimited
    assert not project.is_over_quota_allowed


def test_limit_must_cover_deserved():
    item = error_for(Project, {"name": "p", "deserved": {"gpu": 4}, "limit": {"gpu": 2}}, "limit.gpu")
    assert item["message"] == "limit.gpu: must be at least deserved.gpu (4), or unset for unlimited; got 2"
    assert item["allowed"] == ">= 4"
    item = error_for(
        Project, {"name": "p", "node_pools": {"a100": {"deserved": {"memory": "2Gi"}, "limit": {"memory": "1Gi"}}}},
        "node_pools.a100.limit.memory",
    )
    assert item["allowed"] == ">= 2Gi"
    assert Project(name="p", deserved={"gpu": 2}, limit={"gpu": 0.0 + 2}).limit.gpu == 2
    error_for(Project, {"name": "p", "deserved": {"gpu": 1}, "limit": {"gpu": 0}}, "limit.gpu")  # 0 is a real limit


@pytest.mark.parametrize("model", [Project, Department])
def test_limit_below_deserved_comes_with_the_other_errors(model):
    """Every error in one answer: a bad name or weight no longer hides the limit's (the Admin
    view showed it only after the rest was fixed); in a node pool's block too."""
    fields = {item["field"] for item in errors_of(model, {
        "name": "Team_A", "over_quota_weight": -1, "deserved": {"gpu": 4}, "limit": {"gpu": 2},
        "node_pools": {"a100": {"deserved": {"cpu": 8}, "limit": {"cpu": 4}, "over_quota_weight": -2}}})}
    assert fields == {"name", "over_quota_weight", "limit.gpu",
                      "node_pools.a100.over_quota_weight", "node_pools.a100.limit.cpu"}


def test_a_bad_deserved_is_reported_once_without_a_limit_error():
    items = errors_of(Project, {"name": "p", "deserved": {"gpu": "lots"}, "limit": {"gpu": 2}})
    assert [item["field"] for item in items] == ["deserved.gpu"]


def test_negative_weights_and_deserved_are_rejected():
    item = error_for(Project, {"name": "p", "over_quota_weight": -1}, "over_quota_weight")
    assert "0 means no share above deserved" in item["message"] and item["allowed"] == "0 <= weight <= 1000000"
    assert error_for(Project, {"name": "p", "deserved": {"gpu": -1}}, "deserved.gpu")["allowed"] == "0 <= gpu <= 1000000"
    error_for(Department, {"name": "d", "node_pools": {"a100": {"over_quota_weight": -2}}},
              "node_pools.a100.over_quota_weight")


def test_per_pool_quotas():
    project = Project(name="p", deserved={"gpu": 4}, node_pools={"a100": {"deserved": {"gpu": 1}, "limit": {"gpu": 2}}})
    assert project.quota_in("a100").limit.gpu == 2
    assert project.quota_in("t4").deserved.gpu == 4  # not listed: the queue-wide block
    assert isinstance(project.quota_in("t4"), QueueQuota)
    error_for(Project, {"name": "p", "node_pools": {"A100": {}}}, "node_pools.A100")


def test_department_defaults():
    department = Department(name="research")
    assert department.priority == 100 and department.over_quota_weight == 1 and department.limit.gpu is None


def test_node_pool_defaults_and_matching():
    pool = NodePool(name="a100", label_selector={"nvidia.com/gpu.product": "A100", "zone": "eu"})
    assert (pool.gpu_placement, pool.cpu_placement, pool.device_placement) == ("fragmentation-aware", "binpack", "pack")
    assert pool.matches({"nvidia.com/gpu.product": "A100", "zone": "eu", "x": "y"})
    assert not pool.matches({"nvidia.com/gpu.product": "A100"})
    assert NodePool(name="default").matches({})
    item = error_for(NodePool, {"name": "p", "gpu_placement": "pack"}, "gpu_placement")
    assert item["allowed"] == ["fragmentation-aware", "binpack", "spread"]
    assert error_for(NodePool, {"name": "p", "cpu_placement": "fragmentation-aware"}, "cpu_placement")["allowed"] == [
        "binpack",
        "spread",
    ]
    assert error_for(NodePool, {"name": "p", "device_placement": "binpack"}, "device_placement")["allowed"] == [
        "pack",
        "spread",
    ]
    error_for(NodePool, {"name": "p", "label_selector": {"bad key!": "x"}}, "label_selector.bad key!")


# ------------------------------------------------------------------ cluster


def test_node_with_devices():
    node = Node(
        name="gpu-node-1",
        labels={"nvidia.com/gpu.product": "NVIDIA-H200"},
        cpu=64,
        memory="512Gi",
        devices=[
            {"index": 0, "uuid": "GPU-a", "model": "NVIDIA H200", "memory": "141Gi"},
            {"index": 1, "uuid": "GPU-b", "model": "NVIDIA H200", "memory": "141Gi", "virtual": True},
        ],
    )
    assert node.cpu == 64000 and node.memory == 512 * GI and node.gpu_count == 2
    assert node.device(1).virtual and not node.device(0).virtual
    assert node.device(0).memory == 141 * GI and node.gpu_memory_swap == 0 and node.schedulable
    with pytest.raises(KeyError):
        node.device(5)


def test_node_devices_must_be_distinct():
    device = {"index": 0, "uuid": "GPU-a", "model": "m", "memory": "1Gi"}
    items = errors_of(Node, {"name": "n", "cpu": 1, "memory": "1Gi", "devices": [device, device]})
    assert {item["field"] for item in items} == {"devices[1].index", "devices[1].uuid"}


def test_device_needs_memory():
    assert error_for(GpuDevice, {"index": 0, "uuid": "u", "model": "m", "memory": 0}, "memory")["allowed"] == "> 0"


def test_device_allocation_view():
    view = DeviceAllocation(
        node="n1", index=0, uuid="GPU-a", model="virtual", memory="80Gi", virtual=True,
        allocated_fraction=0.75, allocated_memory="60Gi", pods=["team-a/w-0"],
    )
    assert view.free_fraction == pytest.approx(0.25) and view.used_memory is None and view.utilization is None
    error_for(DeviceAllocation, {"node": "n", "index": 0, "uuid": "u", "model": "m", "memory": "1Gi",
                                 "allocated_fraction": 1.5}, "allocated_fraction")
    error_for(DeviceAllocation, {"node": "n", "index": 0, "uuid": "u", "model": "m", "memory": "1Gi",
                                 "utilization": 101}, "utilization")


# ----------------------------------------------------------------- priority


def test_priority_table_matches_kai():
    assert {c.value: c.priority for c in PriorityClass} == {
        "train": 50,
        "build-preemptible": 75,
        "build": 100,
        "inference": 125,
    }
    assert models.priority_value("build") == 100
    assert is_preemptible_by_default(50) and is_preemptible_by_default(99)
    assert not is_preemptible_by_default(100) and not is_preemptible_by_default(125)


# ------------------------------------------------------------------- errors


def test_format_validation_error_paths_and_rest_body():
    exc = None
    try:
        Workload.model_validate(
            {"spec": {"name": "w", "resources": {"gpu": 0.5, "gpu_limit": 2}}, "status": {"pods": [{"index": -1}]}}
        )
    except ValidationError as caught:
        exc = caught
    assert exc is not None
    items = format_validation_error(exc)
    fields = {item["field"] for item in items}
    assert {"spec.resources.gpu_limit", "status.pods[0].name", "status.pods[0].index"} <= fields
    for item in items:
        assert set(item) == {"field", "message", "allowed"}
        assert item["message"].startswith(item["field"] + ": ")
    missing = next(item for item in items if item["field"] == "status.pods[0].name")
    assert missing["message"] == "status.pods[0].name: required"
    body = error_body(exc)
    assert body["error"]["field"] == items[0]["field"] and body["error"]["errors"] == items
    json.dumps(body)  # the REST API sends it as is
    json.loads(exc.json())  # and pydantic's own JSON form still works


def test_error_at_the_root():
    items = errors_of(WorkloadSpec, "not an object")  # type: ignore[arg-type]
    assert items[0]["field"] is None and items[0]["allowed"] == "an object"


@pytest.mark.parametrize(
    ("model", "data"),
    [
        (Resources, {"gpu": 3.3}),
        (Resources, {"gpu": 0.5, "gpu_devices": "four"}),
        (WorkloadSpec, {"name": "w", "workers": 0, "kind": "distributed"}),
        (WorkloadSpec, {"name": "w", "preemptible": "maybe"}),
        (WorkloadSpec, {"name": "w", "kind": "inference", "min_replicas": 0}),
        (Project, {"name": "p", "priority": -5}),
        (Project, {"name": "p", "deserved": {"cpu": "-1"}}),
        (Node, {"name": "bad name", "cpu": 1, "memory": 1}),
        (Node, {"name": "n", "cpu": 1}),
    ],
)
def test_every_error_names_its_field_and_what_it_accepts(model, data):
    for item in errors_of(model, data):
        assert item["field"] and item["message"].startswith(item["field"] + ": ")
        if not item["message"].endswith(": required"):
            assert item["allowed"], item


# --------------------------------------------------------------- round trips


def _examples() -> list[BaseModel]:
    spec = WorkloadSpec(
        name="bert-finetune",
        project="team-a",
        kind="distributed",
        workers=2,
        resources={"gpu": 0.5, "gpu_devices": 2, "gpu_limit": 0.75, "cpu": "500m", "memory": "20Gi"},
        master_resources={"cpu": 2, "memory": "4Gi"},
        node_pools=["a100", "default"],
        image="pytorch/pytorch:2.5",
        command=["torchrun", "train.py"],
        environment={"EPOCHS": "3"},
        data_sources=["imagenet"],
        credentials=["hf-token"],
    )
    status = WorkloadStatus(
        phase="Running",
        submitted_at=NOW,
        started_at=NOW + timedelta(seconds=5),
        pods=[PodStatus(name="bert-finetune-0", index=0, node="n1", devices=[0, 1], fraction=0.5, gpu_memory="40Gi",
                        phase="Running", started_at=NOW + timedelta(seconds=5))],
    )
    return [
        spec,
        WorkloadSpec(name="serve", kind="inference", min_replicas=1, max_replicas=3, resources={"gpu_memory": "10Gi"}),
        WorkloadSpec(name="ws", kind="workspace", command="jupyter lab", resources={"gpu": 1}),
        Workload(spec=spec, status=status, submitted_by="alice"),
        Project(name="team-a", department="research", deserved={"gpu": 4, "memory": "1Ti"}, limit={"gpu": 8},
                over_quota_weight=2, node_pools={"a100": {"deserved": {"gpu": 2}}}),
        Department(name="research", deserved={"gpu": 16}),
        NodePool(name="a100", label_selector={"gpu": "a100"}, gpu_placement="spread"),
        Node(name="n1", cpu="63500m", memory="1Ti", devices=[{"index": 0, "uuid": "GPU-1", "model": "H200",
                                                             "memory": "141Gi"}]),
        DeviceAllocation(node="n1", index=0, uuid="GPU-1", model="H200", memory="141Gi", allocated_fraction=0.5,
                         used_memory="30Gi", utilization=42.5),
    ]


@pytest.mark.parametrize("obj", _examples(), ids=lambda obj: type(obj).__name__)
def test_round_trip_through_json_and_python(obj):
    cls = type(obj)
    text = obj.model_dump_json()
    assert cls.model_validate_json(text) == obj
    assert cls.model_validate(json.loads(text)) == obj
    assert cls.model_validate(obj.model_dump()) == obj
    assert cls.model_validate_json(cls.model_validate_json(text).model_dump_json()).model_dump_json() == text


def test_json_form_reads_like_the_input():
    data = json.loads(_examples()[0].model_dump_json())
    assert data["resources"] == {
        "gpu": 0.5,
        "gpu_memory": None,
        "gpu_devices": 2,
        "gpu_limit": 0.75,
        "cpu": "500m",
        "cpu_limit": None,
        "memory": "20Gi",
        "memory_limit": None,
    }
    assert data["kind"] == "distributed" and data["priority_class"] == "train" and data["min_available"] == 3
    assert json.loads(Resources(gpu=2).model_dump_json())["gpu"] == 2  # not 2.0


# ------------------------------------------------------------- JSON schema


def _exported_models() -> list[type[BaseModel]]:
    return [
        obj
        for name in models.__all__
        if isinstance(obj := getattr(models, name), type)
        and issubclass(obj, BaseModel)
        and obj is not models.RunaiModel
    ]


@pytest.mark.parametrize("cls", _exported_models(), ids=lambda cls: cls.__name__)
def test_json_schema_is_complete(cls):
    for mode in ("validation", "serialization"):
        schema = cls.model_json_schema(mode=mode)
        assert schema["additionalProperties"] is False
        json.dumps(schema)
    missing = [name for name, field in cls.model_fields.items() if not field.description]
    assert not missing, f"{cls.__name__} fields without a description: {missing}"


def test_json_schema_accepts_human_units_and_documents_output():
    validation = Resources.model_json_schema(mode="validation")["properties"]["memory"]
    assert {"string", "number"} == {choice["type"] for choice in validation["anyOf"]}
    assert Resources.model_json_schema(mode="serialization")["properties"]["memory"]["type"] == "string"


# --------------------------------------------------------------- limits (issue 14)
# Every quantity and count has a maximum, checked before any costly conversion: one
# request must not cost the service seconds ("1e1000000" bytes), nor store a value the
# scheduler cannot compute with ("1e309" overflows a float in every cycle).

DIST = {"name": "a", "kind": "distributed", "workers": 1}
INF = {"name": "a", "kind": "inference"}
OVER_LIMIT = [
    (WorkloadSpec, {"name": "a", "resources": {"memory": "1e309"}}, "resources.memory", "1Pi"),
    (WorkloadSpec, {"name": "a", "resources": {"memory": "1e40000"}}, "resources.memory", "1Pi"),
    (WorkloadSpec, {"name": "a", "resources": {"memory": "1025Ti"}}, "resources.memory", "1Pi"),
    (WorkloadSpec, {"name": "a", "resources": {"memory": 2**50 + 1}}, "resources.memory", "1Pi"),
    (WorkloadSpec, {"name": "a", "resources": {"memory": 1e300}}, "resources.memory", "1Pi"),
    (WorkloadSpec, {"name": "a", "resources": {"memory": "1" * 65}}, "resources.memory", "64 characters"),
    (WorkloadSpec, {"name": "a", "resources": {"memory_limit": "1e309"}}, "resources.memory_limit", "1Pi"),
    (WorkloadSpec, {"name": "a", "resources": {"gpu_memory": "1e309"}}, "resources.gpu_memory", "1Pi"),
    (WorkloadSpec, {"name": "a", "resources": {"cpu": "1e309"}}, "resources.cpu", "1000000 cores"),
    (WorkloadSpec, {"name": "a", "resources": {"cpu": 10**7}}, "resources.cpu", "1000000 cores"),
    (WorkloadSpec, {"name": "a", "resources": {"gpu": 2048}}, "resources.gpu", "1024"),
    (WorkloadSpec, {"name": "a", "resources": {"gpu": 10**400}}, "resources.gpu", "1024"),
    (WorkloadSpec, {"name": "a", "resources": {"gpu": 0.5, "gpu_devices": 2000}}, "resources.gpu_devices", "1024"),
    (WorkloadSpec, {"name": "a", "resources": {"gpu": 0.5, "gpu_devices": float("inf")}},
     "resources.gpu_devices", "1024"),
    (WorkloadSpec, {**DIST, "workers": 100_000}, "workers", "1000"),
    (WorkloadSpec, {**DIST, "master_resources": {"memory": "1e309"}}, "master_resources.memory", "1Pi"),
    (WorkloadSpec, {**INF, "min_replicas": 100_000}, "min_replicas", "1000"),
    (WorkloadSpec, {**INF, "max_replicas": 100_000}, "max_replicas", "1000"),
    (WorkloadSpec, {**INF, "target_concurrency": float("inf")}, "target_concurrency", "1000000"),
    (WorkloadSpec, {"name": "a", "environment": {f"V{i}": "x" for i in range(1001)}}, "environment", "1000"),
    (WorkloadSpec, {"name": "a", "environment": {"V": "x" * 100_001}}, "environment.V", "100000"),
    (WorkloadSpec, {"name": "a", "command": "x" * 100_001}, "command", "100000"),
    (WorkloadSpec, {"name": "a", "command": ["x"] * 5000}, "command", "4096"),
    (WorkloadSpec, {"name": "a", "command": ["x" * 60_000, "y" * 60_000]}, "command", "100000"),
    (WorkloadSpec, {"name": "a", "image": "x" * 5000}, "image", "4096"),
    (WorkloadSpec, {"name": "a", "working_dir": "/" * 5000}, "working_dir", "4096"),
    (WorkloadSpec, {"name": "a", "node_pools": [f"p{i}" for i in range(65)]}, "node_pools", "64"),
    (WorkloadSpec, {"name": "a", "credentials": [f"c{i}" for i in range(65)]}, "credentials", "64"),
    (Project, {"name": "p", "priority": 10**7}, "priority", "1000000"),
    (Project, {"name": "p", "over_quota_weight": 1e7}, "over_quota_weight", "1000000"),
    (Project, {"name": "p", "reclaim_min_runtime": 10**400}, "reclaim_min_runtime", "seconds"),
    (Project, {"name": "p", "preempt_min_runtime": "99999999d"}, "preempt_min_runtime", "seconds"),
    (Project, {"name": "p", "deserved": {"gpu": 1e7}}, "deserved.gpu", "1000000"),
    (Project, {"name": "p", "deserved": {"memory": "1e309"}}, "deserved.memory", "1Pi"),
    (Department, {"name": "d", "limit": {"cpu": "1e309"}}, "limit.cpu", "1000000 cores"),
    (Node, {"name": "n", "cpu": 4, "memory": "1e309"}, "memory", "1Pi"),
    (models.Credential, {"name": "c", "inject_as": "env", "data": {f"K{i}": "v" for i in range(257)}},
     "data", "256"),
    (models.DataSource, {"name": "d", "kind": "host_path", "path": "/" + "a" * 5000}, "path", "4096"),
]


@pytest.mark.parametrize(("model", "data", "field", "bound"), OVER_LIMIT,
                         ids=[f"{case[0].__name__}-{case[2]}-{i}" for i, case in enumerate(OVER_LIMIT)])
def test_every_quantity_and_count_has_a_maximum(model, data, field, bound):
    item = error_for(model, data, field)
    assert item["field"] == field
    assert bound in f"{item['message']} {item['allowed']}", item


@pytest.mark.parametrize(("model", "data"), [
    (Resources, {"memory": "1Pi", "gpu_memory": 2**50, "cpu": "1000000", "gpu_devices": 1024}),
    (Resources, {"gpu": 1024}),
    (WorkloadSpec, {**DIST, "workers": 1000, "min_available": 1001}),
    (WorkloadSpec, {**INF, "min_replicas": 1000, "max_replicas": 1000, "target_concurrency": 1_000_000}),
    (WorkloadSpec, {"name": "a", "command": "x" * 100_000, "environment": {"V": "x" * 100_000}}),
    (Project, {"name": "p", "priority": 1_000_000, "over_quota_weight": 1_000_000, "reclaim_min_runtime": "3650d",
               "deserved": {"gpu": 1_000_000, "memory": "1Pi", "cpu": 10**6}}),
])
def test_the_maxima_themselves_are_accepted(model, data):
    model.model_validate(data)


def test_a_huge_exponent_is_refused_before_it_becomes_an_integer():
    """Python turns Decimal('1e1000000') into an int in about half a minute; the bound is
    checked on the Decimal first (this test would hang without it)."""
    for text in ("1e1000000", "1e999999999", "9" * 64):
        with pytest.raises(QuantityError, match="at most"):
            parse_memory(text)
        with pytest.raises(QuantityError, match="at most"):
            parse_cpu(text)


# ------------------------------------------------ the OpenAPI document states the rules

DOCUMENTED_RULES = [  # (a spec, whether the models take it): the document must say the same
    ({"resources": {"gpu": 0.5}}, True),
    ({"resources": {"gpu": 2}}, True),
    ({"resources": {"gpu": 1.5}}, False),
    ({"resources": {"gpu": -1}}, False),
    ({"resources": {"gpu": 2000}}, False),
    ({"resources": {"gpu": 0.25, "gpu_limit": 0.75}}, True),
    ({"resources": {"gpu": 0.25, "gpu_limit": 0}}, False),
    ({"resources": {"gpu": 0.25, "gpu_limit": 1.5}}, False),
    ({"resources": {"gpu": 0.5, "gpu_devices": 2}}, True),
    ({"resources": {"gpu": 0.5, "gpu_devices": 0}}, False),
    ({"resources": {"gpu": 0.5, "gpu_devices": 5000}}, False),
    ({"environment": {"OK_NAME": "x"}}, True),
    ({"environment": {"1BAD": "x"}}, False),
    ({"environment": {"has space": "x"}}, False),
]


@pytest.mark.parametrize("extra, valid", DOCUMENTED_RULES, ids=[json.dumps(e) for e, _ in DOCUMENTED_RULES])
def test_the_openapi_document_states_the_field_rules(extra, valid):
    """Issue 14 (fuzzing): the document said any number for gpu, gpu_limit and gpu_devices and
    any key for environment; clients and fuzzers could not tell what the server refuses."""
    jsonschema = pytest.importorskip("jsonschema")
    from jupyter_runai.server.routes import openapi_document

    document = openapi_document()
    validator = jsonschema.Draft202012Validator(
        {"$ref": "#/components/schemas/WorkloadSpec", "components": document["components"]})
    spec = {"name": "w", "command": "true", **extra}
    try:
        WorkloadSpec.model_validate(spec)
        taken = True
    except ValidationError:
        taken = False
    assert taken == valid, spec
    assert validator.is_valid(spec) == valid, (spec, [e.message for e in validator.iter_errors(spec)])
