"""The pod template (jupyter_runai/clusters/podtemplate.py): one pod of a workload as the Pod
manifest a Kubernetes backend sends to the API server. Pure functions, so no cluster here:
each rule of docs/kubernetes.md ("The pod template") has a test, and every manifest of a
matrix of workloads is validated against the Kubernetes schemas (kubernetes-validate)."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest

from k8s_schemas import kubernetes_validate_or_skip

kubernetes_validate = kubernetes_validate_or_skip()

from jupyter_runai.clusters.podtemplate import (
    GPU_RESOURCE,
    Placement,
    TemplateOptions,
    credential_secret_name,
    master_service_name,
    pod_manifest,
    proxy_token_secret_name,
)
from jupyter_runai.models import Credential, DataSource, Workload, WorkloadSpec

K8S_VERSION = "1.37.0"
UUIDS = ("GPU-0aa", "GPU-1bb", "GPU-2cc", "GPU-3dd")


def workload(**spec) -> Workload:
    spec.setdefault("name", "job")
    spec.setdefault("project", "team-a")
    return Workload(spec=WorkloadSpec(**spec))


def cpu_only() -> Placement:
    return Placement(node="node-1")


def whole(n: int) -> Placement:
    return Placement(node="node-1", devices=tuple(range(n)))


def shared(fraction: float, n: int = 1, memory: int | None = 8 << 30, limit: float | None = None) -> Placement:
    return Placement(node="node-1", devices=tuple(range(n)), fraction=fraction, gpu_memory_limit=memory,
                     gpu_fraction_limit=limit, device_uuids=UUIDS[:n])


def main(manifest: dict) -> dict:
    (container,) = manifest["spec"]["containers"]
    return container


def env(manifest: dict) -> dict:
    """Name -> literal value, or the valueFrom dict for a reference."""
    items = main(manifest)["env"]
    names = [item["name"] for item in items]
    assert len(names) == len(set(names)), f"a variable is set twice: {names}"
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in items}


# what the API server checks beyond the schema (apimachinery's validation of names and labels)
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
QUALIFIED_NAME = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                            r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def dns_label(name: str) -> bool:
    return len(name) <= 63 and bool(DNS_LABEL.match(name))


def valid(manifest: dict) -> dict:
    """The Kubernetes schema (strict: no unknown field), then the name rules the schema leaves out."""
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)
    meta, spec = manifest["metadata"], manifest["spec"]
    # a pod's name is a DNS subdomain (up to 253 characters), its namespace a label
    assert len(meta["name"]) <= 253 and DNS_LABEL.match(meta["name"]) and dns_label(meta["namespace"]), meta
    for key, value in meta["labels"].items():
        assert QUALIFIED_NAME.match(key) and len(key.rpartition("/")[2]) <= 63, key
        assert LABEL_VALUE.match(value) and len(value) <= 63, (key, value)
    for key in meta.get("annotations", {}):
        assert QUALIFIED_NAME.match(key), key
    containers = spec["containers"] + spec.get("initContainers", [])
    names = [c["name"] for c in containers] + [v["name"] for v in spec.get("volumes", [])]
    assert all(dns_label(name) for name in names), names
    assert len({c["name"] for c in containers}) == len(containers)
    assert len({v["name"] for v in spec.get("volumes", [])}) == len(spec.get("volumes", []))
    for container in containers:
        mounted = [m["mountPath"] for m in container.get("volumeMounts", [])]
        assert len(set(mounted)) == len(mounted), mounted
        assert all(m["name"] in {v["name"] for v in spec["volumes"]} for m in container.get("volumeMounts", []))
    return manifest


# ------------------------------------------------------------------ metadata


def test_metadata_names_the_pod_its_namespace_workload_project_and_queue():
    w = workload(name="bert", project="nlp", kind="distributed", workers=2)
    m = pod_manifest(w, 2, cpu_only())
    assert m["apiVersion"] == "v1" and m["kind"] == "Pod"
    assert m["metadata"]["name"] == "bert-2"
    assert m["metadata"]["namespace"] == "runai-nlp"
    labels = m["metadata"]["labels"]
    assert labels["runai/workload"] == "bert"
    assert labels["runai/workload-uid"] == w.uid
    assert labels["runai/project"] == "nlp"
    assert labels["runai/pod-index"] == "2"
    assert labels["kai.scheduler/queue"] == "nlp"


@pytest.mark.parametrize("kind, extra, preemptible", [
    ("training", {}, "preemptible"),
    ("workspace", {}, "non-preemptible"),
    ("training", {"preemptible": False}, "non-preemptible"),
    ("workspace", {"priority_class": "build-preemptible"}, "preemptible"),
])
def test_preemptibility_label_follows_the_workload_not_only_its_class(kind, extra, preemptible):
    m = pod_manifest(workload(kind=kind, **extra), 0, cpu_only())
    assert m["metadata"]["labels"]["kai.scheduler/preemptibility"] == preemptible


def test_fraction_annotations_use_kai_names():
    m = pod_manifest(workload(resources={"gpu": 0.25}), 0, shared(0.25))
    assert m["metadata"]["annotations"] == {"runai/devices": "0", "gpu-fraction": "0.25"}


def test_gpu_memory_annotation_is_in_mib_rounded_up_and_multi_device_and_limit_are_stated():
    m = pod_manifest(workload(resources={"gpu_memory": "20Gi", "gpu_devices": 2}), 0, shared(0.25, n=2))
    notes = m["metadata"]["annotations"]
    assert notes["gpu-memory"] == str(20 * 1024)
    assert notes["gpu-fraction-num-devices"] == "2"
    assert "gpu-fraction" not in notes
    odd = pod_manifest(workload(resources={"gpu_memory": 1024 * 1024 + 1}), 0, shared(0.1))
    assert odd["metadata"]["annotations"]["gpu-memory"] == "2"  # never less than asked for
    dynamic = pod_manifest(workload(resources={"gpu": 0.25, "gpu_limit": 0.75}), 0, shared(0.25, limit=0.75))
    assert dynamic["metadata"]["annotations"]["gpu-fraction-limit"] == "0.75"


def test_whole_gpu_and_cpu_pods_carry_no_fraction_annotation():
    assert "gpu-fraction" not in pod_manifest(workload(resources={"gpu": 2}), 0, whole(2))["metadata"]["annotations"]
    assert "annotations" not in pod_manifest(workload(), 0, cpu_only())["metadata"]


def test_a_distributed_pod_states_its_gang_minimum():
    w = workload(kind="distributed", workers=3, min_available=2)
    assert pod_manifest(w, 1, cpu_only())["metadata"]["annotations"]["kai.scheduler/batch-min-member"] == "2"


# ------------------------------------------------------------------ spec


@pytest.mark.parametrize("kind, extra, klass", [
    ("training", {}, "train"), ("distributed", {"workers": 1}, "train"), ("workspace", {}, "build"),
    ("inference", {}, "inference"), ("training", {"priority_class": "build-preemptible"}, "build-preemptible"),
])
def test_scheduler_and_priority_class(kind, extra, klass):
    m = pod_manifest(workload(kind=kind, **extra), 0, cpu_only())
    assert m["spec"]["schedulerName"] == "runai-scheduler"
    assert m["spec"]["priorityClassName"] == klass
    other = pod_manifest(workload(kind=kind, **extra), 0, cpu_only(), options=TemplateOptions(scheduler_name="kai"))
    assert other["spec"]["schedulerName"] == "kai"


def test_bound_by_node_name_or_by_node_selector():
    m = pod_manifest(workload(), 0, Placement(node="gpu-7"))
    assert m["spec"]["nodeName"] == "gpu-7" and "nodeSelector" not in m["spec"]
    m = pod_manifest(workload(), 0, Placement(node="gpu-7"), options=TemplateOptions(bind="node_selector"))
    assert m["spec"]["nodeSelector"] == {"kubernetes.io/hostname": "gpu-7"} and "nodeName" not in m["spec"]
    with pytest.raises(ValueError, match="bind"):
        TemplateOptions(bind="anywhere")


def test_gpu_pods_tolerate_the_gpu_taint_and_cpu_pods_do_not():
    toleration = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
    assert pod_manifest(workload(resources={"gpu": 1}), 0, whole(1))["spec"]["tolerations"] == [toleration]
    assert pod_manifest(workload(resources={"gpu": 0.5}), 0, shared(0.5))["spec"]["tolerations"] == [toleration]
    assert "tolerations" not in pod_manifest(workload(), 0, cpu_only())["spec"]


def test_image_as_given_else_the_kinds_default():
    assert main(pod_manifest(workload(image="nvcr.io/nvidia/pytorch:24.05-py3"), 0, cpu_only()))["image"] == \
        "nvcr.io/nvidia/pytorch:24.05-py3"
    assert main(pod_manifest(workload(kind="workspace"), 0, cpu_only()))["image"] == \
        "quay.io/jupyter/base-notebook:latest"
    options = TemplateOptions(default_images={"training": "registry.local/py:3"})
    assert main(pod_manifest(workload(), 0, cpu_only(), options=options))["image"] == "registry.local/py:3"


def test_command_string_through_a_shell_list_as_is_none_the_images_own():
    assert main(pod_manifest(workload(command="python train.py --lr 0.1"), 0, cpu_only()))["command"] == \
        ["/bin/sh", "-c", "python train.py --lr 0.1"]
    assert main(pod_manifest(workload(command=["python", "train.py"]), 0, cpu_only()))["command"] == \
        ["python", "train.py"]
    container = main(pod_manifest(workload(), 0, cpu_only()))
    assert "command" not in container and "args" not in container


def test_a_workspace_without_command_serves_jupyter_behind_the_proxy_with_the_token_from_the_environment():
    command = main(pod_manifest(workload(kind="workspace"), 0, cpu_only()))["command"]
    assert command[:2] == ["/bin/sh", "-c"]
    assert "jupyter lab" in command[2] and '"$PORT"' in command[2] and "RUNAI_PROXY_PATH" in command[2]
    assert 'JUPYTER_TOKEN="$RUNAI_PROXY_TOKEN"' in command[2]


def test_environment_has_the_workloads_variables_and_the_runai_facts():
    w = workload(environment={"LR": "0.1", "RUNAI_POD_INDEX": "99"})
    e = env(pod_manifest(w, 0, cpu_only()))
    assert e["LR"] == "0.1"
    assert e["RUNAI_POD_INDEX"] == "0"  # a fact wins over a user's variable of the same name
    assert e["RUNAI_WORKLOAD"] == e["JOB_NAME"] == "job"
    assert e["RUNAI_WORKLOAD_UID"] == e["JOB_UUID"] == w.uid
    assert e["RUNAI_PROJECT"] == "team-a"
    assert e["RUNAI_WORKLOAD_KIND"] == "training"
    assert e["RUNAI_POD_NAME"] == "job-0"
    assert e["RUNAI_NUM_OF_GPUS"] == "0"
    node = {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert e["RUNAI_NODE"] == e["NODE_NAME"] == node


def test_a_users_variable_never_shadows_a_reference_the_template_sets():
    w = workload(kind="workspace", environment={"NODE_NAME": "fake", "RUNAI_PROXY_TOKEN": "guess"})
    e = env(pod_manifest(w, 0, cpu_only()))  # env() fails on a name set twice
    assert e["NODE_NAME"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert e["RUNAI_PROXY_TOKEN"]["secretKeyRef"]["name"] == proxy_token_secret_name("job")
    # a kind with no proxy keeps the user's own value
    assert env(pod_manifest(workload(environment={"RUNAI_PROXY_TOKEN": "mine"}), 0, cpu_only()))[
        "RUNAI_PROXY_TOKEN"] == "mine"


def test_nvidia_visible_devices_only_for_fractions():
    e = env(pod_manifest(workload(resources={"gpu": 0.5, "gpu_devices": 2}), 0, shared(0.5, n=2)))
    assert e["NVIDIA_VISIBLE_DEVICES"] == "GPU-0aa,GPU-1bb"
    assert e["RUNAI_GPU_FRACTION"] == e["GPU_PORTION"] == "0.5"
    assert e["RUNAI_GPU_MEMORY_LIMIT"] == str(8 << 30)
    assert e["RUNAI_NUM_OF_GPUS"] == "1"
    whole_env = env(pod_manifest(workload(resources={"gpu": 2}), 0, whole(2)))
    assert "NVIDIA_VISIBLE_DEVICES" not in whole_env  # the device plugin sets it
    assert whole_env["RUNAI_NUM_OF_GPUS"] == "2" and whole_env["RUNAI_GPU_FRACTION"] == "1"
    assert "NVIDIA_VISIBLE_DEVICES" not in env(pod_manifest(workload(), 0, cpu_only()))
    dynamic = env(pod_manifest(workload(resources={"gpu": 0.25, "gpu_limit": 0.75}), 0, shared(0.25, limit=0.75)))
    assert dynamic["RUNAI_GPU_FRACTION_LIMIT"] == "0.75"


def test_a_fraction_needs_the_uuids_of_its_devices():
    with pytest.raises(ValueError, match="UUID"):
        Placement(node="n", devices=(0,), fraction=0.5)


def test_resources_requests_and_limits():
    w = workload(resources={"cpu": "500m", "cpu_limit": 2, "memory": "1Gi", "memory_limit": "4Gi"})
    assert main(pod_manifest(w, 0, cpu_only()))["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}}
    assert "resources" not in main(pod_manifest(workload(), 0, cpu_only()))


def test_whole_gpus_as_nvidia_gpu_limits_fractions_without():
    assert main(pod_manifest(workload(resources={"gpu": 4}), 0, whole(4)))["resources"] == {
        "limits": {GPU_RESOURCE: "4"}}
    fraction = main(pod_manifest(workload(resources={"gpu": 0.5, "cpu": 1}), 0, shared(0.5)))["resources"]
    assert GPU_RESOURCE not in fraction.get("limits", {}) and GPU_RESOURCE not in fraction["requests"]
    # a memory request the engine gave a whole device to is a whole device
    full = pod_manifest(workload(resources={"gpu_memory": "80Gi"}), 0, whole(1))
    assert main(full)["resources"]["limits"][GPU_RESOURCE] == "1"
    assert "gpu-memory" not in full["metadata"]["annotations"]  # not shared: KAI must not read it as such


def test_distributed_master_rank_and_world_size():
    w = workload(name="ddp", kind="distributed", workers=3)
    e = env(pod_manifest(w, 2, cpu_only()))
    assert e["MASTER_ADDR"] == master_service_name("ddp") == "master-ddp"
    assert e["MASTER_PORT"] == "29500" and e["WORLD_SIZE"] == "4"
    assert e["RANK"] == e["NODE_RANK"] == "2"


@pytest.mark.parametrize("name", ["ddp", "1bert", "9" * 63])
def test_the_master_service_name_is_a_valid_service_name(name):
    # Services are DNS-1035 labels: a letter first, at most 63 characters
    service = master_service_name(name)
    assert re.match(r"^[a-z]([-a-z0-9]*[a-z0-9])?$", service) and len(service) <= 63
    assert master_service_name(name) != master_service_name(name[:-1] + "8")


def test_host_path_volume_honours_read_only():
    sources = [DataSource(name="ro", kind="host_path", path="/datasets/imagenet"),
               DataSource(name="rw", kind="host_path", path="/scratch", read_only=False, target="out")]
    m = pod_manifest(workload(data_sources=["ro", "rw"]), 0, cpu_only(), data_sources=sources)
    volumes = {v["name"]: v for v in m["spec"]["volumes"]}
    mounts = {v["name"]: v for v in main(m)["volumeMounts"]}
    assert volumes["data-ro"]["hostPath"] == {"path": "/datasets/imagenet", "type": "Directory"}
    assert mounts["data-ro"] == {"name": "data-ro", "mountPath": "/workspace/data/ro", "readOnly": True}
    assert volumes["data-rw"]["hostPath"]["path"] == "/scratch"
    assert mounts["data-rw"] == {"name": "data-rw", "mountPath": "/workspace/out", "readOnly": False}
    assert main(m)["workingDir"] == "/workspace"  # relative targets are where the command starts


def test_targets_follow_the_workloads_working_dir():
    sources = [DataSource(name="d", kind="host_path", path="/d")]
    m = pod_manifest(workload(data_sources=["d"], working_dir="/home/me/run"), 0, cpu_only(), data_sources=sources)
    assert main(m)["workingDir"] == "/home/me/run"
    assert main(m)["volumeMounts"][0]["mountPath"] == "/home/me/run/data/d"
    assert "workingDir" not in main(pod_manifest(workload(), 0, cpu_only()))  # the image's own


def test_git_source_is_an_empty_dir_filled_by_an_init_container():
    url = "https://example.com/org/$(id)`id`;true.git"
    sources = [DataSource(name="code", kind="git", url=url, revision="v1.2")]
    m = pod_manifest(workload(data_sources=["code"]), 0, cpu_only(), data_sources=sources)
    assert m["spec"]["volumes"] == [{"name": "data-code", "emptyDir": {}}]
    assert main(m)["volumeMounts"] == [{"name": "data-code", "mountPath": "/workspace/data/code"}]
    (init,) = m["spec"]["initContainers"]
    assert init["volumeMounts"][0]["name"] == "data-code"
    script = init["command"][2]
    assert "git clone --" in script
    # the URL and revision reach git as data (environment), never as shell text
    assert url not in json.dumps(init["command"]) and "v1.2" not in script
    init_env = {item["name"]: item["value"] for item in init["env"]}
    assert init_env["RUNAI_GIT_URL"] == url and init_env["RUNAI_GIT_REVISION"] == "v1.2"
    assert init_env["RUNAI_GIT_TARGET"] == init["volumeMounts"][0]["mountPath"]


def test_credentials_are_secret_references_never_values():
    env_cred = Credential(name="hf", inject_as="env", data={"HF_TOKEN": "hf_supersecret"})
    file_cred = Credential(name="ssh", inject_as="file", data={"id_rsa": "-----BEGIN key-----"}, mount_path="keys")
    m = pod_manifest(workload(credentials=["hf", "ssh"]), 0, cpu_only(),
                     credentials=[env_cred.describe(), file_cred.describe()])
    text = json.dumps(m)
    assert "hf_supersecret" not in text and "BEGIN key" not in text
    name = m["metadata"]["labels"]["runai/workload"]
    assert main(m)["envFrom"] == [{"secretRef": {"name": credential_secret_name(name, "hf")}}]
    (volume,) = m["spec"]["volumes"]
    assert volume["secret"]["secretName"] == credential_secret_name(name, "ssh")
    # each workload has its own copy: a pair of names never maps to another pair's Secret
    assert credential_secret_name("a-b", "c") != credential_secret_name("a", "b-c")
    assert volume["secret"]["defaultMode"] == 0o400
    assert main(m)["volumeMounts"] == [{"name": volume["name"], "mountPath": "/workspace/keys", "readOnly": True}]
    with pytest.raises(TypeError, match="describe"):
        pod_manifest(workload(credentials=["hf"]), 0, cpu_only(), credentials=[env_cred])


def test_two_volumes_at_one_path_are_refused_by_name():
    sources = [DataSource(name="a", kind="host_path", path="/a", target="shared"),
               DataSource(name="b", kind="git", url="https://e.com/r.git", target="shared")]
    with pytest.raises(ValueError, match="data source a and data source b would both appear at /workspace/shared"):
        pod_manifest(workload(data_sources=["a", "b"]), 0, cpu_only(), data_sources=sources)
    creds = [Credential(name="k", inject_as="file", data={"x": "y"}, mount_path="data/a").describe()]
    with pytest.raises(ValueError, match="data source a and credential k "):
        pod_manifest(workload(data_sources=["a"], credentials=["k"]), 0, cpu_only(),
                     data_sources=[DataSource(name="a", kind="host_path", path="/a")], credentials=creds)


def test_a_clash_of_long_names_is_reported_by_their_full_names():
    long = "x" * 63
    sources = [DataSource(name=long, kind="host_path", path="/a", target="t"),
               DataSource(name=long[:-1] + "y", kind="host_path", path="/b", target="t")]
    with pytest.raises(ValueError, match=f"data source {long} and data source {long[:-1]}y would"):
        pod_manifest(workload(data_sources=[s.name for s in sources]), 0, cpu_only(), data_sources=sources)


def test_a_workload_gets_no_kubernetes_api_token_and_no_service_variables():
    spec = pod_manifest(workload(), 0, cpu_only())["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False


def test_the_template_is_pure():
    # no I/O: it imports nothing that reaches a file, a process, the network or the clock
    import ast

    import jupyter_runai.clusters.podtemplate as module

    tree = ast.parse(Path(module.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module}
    assert imported <= {"__future__", "hashlib", "posixpath", "dataclasses", "typing"}, imported
    relative = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level}
    assert relative <= {"models", "models.names", "models.quantity"}, relative
    calls = {node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    assert not calls & {"open", "print", "input", "exec", "eval"}, calls


def test_only_the_workloads_own_sources_and_credentials():
    source = DataSource(name="d", kind="host_path", path="/d")
    with pytest.raises(ValueError, match="missing"):
        pod_manifest(workload(data_sources=["d"]), 0, cpu_only())
    with pytest.raises(ValueError, match="not attached"):
        pod_manifest(workload(), 0, cpu_only(), data_sources=[source])


def test_pod_ends_once_with_a_grace_period():
    m = pod_manifest(workload(), 0, cpu_only())
    assert m["spec"]["restartPolicy"] == "Never"
    assert m["spec"]["terminationGracePeriodSeconds"] == 30
    options = TemplateOptions(termination_grace_seconds=5)
    assert pod_manifest(workload(), 0, cpu_only(), options=options)["spec"]["terminationGracePeriodSeconds"] == 5


@pytest.mark.parametrize("kind", ["workspace", "inference"])
def test_served_kinds_get_a_port_the_proxy_path_and_the_token_by_reference(kind):
    m = pod_manifest(workload(name="nb", kind=kind), 0, cpu_only())
    assert main(m)["ports"] == [{"name": "http", "containerPort": 8888, "protocol": "TCP"}]
    e = env(m)
    assert e["PORT"] == "8888"
    assert e["RUNAI_PROXY_PATH"] == "/runai/proxy/team-a/nb/"
    assert e["RUNAI_PROXY_TOKEN"] == {"secretKeyRef": {"name": "runai-proxy-nb", "key": "token"}}


def test_training_has_no_port_and_no_proxy():
    m = pod_manifest(workload(), 0, cpu_only())
    assert "ports" not in main(m)
    assert not {"PORT", "RUNAI_PROXY_PATH", "RUNAI_PROXY_TOKEN"} & set(env(m))


def test_placement_must_match_the_request():
    with pytest.raises(ValueError, match="GPU"):
        pod_manifest(workload(resources={"gpu": 1}), 0, cpu_only())
    with pytest.raises(ValueError, match="GPU"):
        pod_manifest(workload(), 0, whole(1))
    with pytest.raises(ValueError, match="fraction"):
        pod_manifest(workload(resources={"gpu": 1}), 0, shared(0.5))
    with pytest.raises(ValueError, match="pods 0 to 0"):
        pod_manifest(workload(), 1, cpu_only())


def test_long_names_stay_within_kubernetes_limits():
    name = "d" * 63
    sources = [DataSource(name=name, kind="git", url="https://e.com/r.git"),
               DataSource(name=name[:-1] + "e", kind="host_path", path="/x")]
    creds = [Credential(name=name, inject_as="file", data={"k": "v"}).describe()]
    m = valid(pod_manifest(workload(name="w" * 63, kind="workspace", data_sources=[s.name for s in sources],
                                    credentials=[name]), 0, cpu_only(),
                           data_sources=sources, credentials=creds))
    volume_names = [v["name"] for v in m["spec"]["volumes"]]
    assert len(set(volume_names)) == 3 and all(len(v) <= 63 for v in volume_names)
    assert all(len(c["name"]) <= 63 for c in m["spec"]["initContainers"])


# ------------------------------------------------------------------ schema matrix

SOURCES = [DataSource(name="imagenet", kind="host_path", path="/datasets/imagenet"),
           DataSource(name="out", kind="host_path", path="/scratch/out", read_only=False),
           DataSource(name="code", kind="git", url="git@github.com:org/repo.git", revision="main")]
CREDENTIALS = [Credential(name="hf", inject_as="env", data={"HF_TOKEN": "x"}).describe(),
               Credential(name="keys", inject_as="file", data={"id": "x"}).describe()]

KINDS = {
    "training": {},
    "workspace": {},
    "inference": {"min_replicas": 1, "max_replicas": 2},
    "distributed": {"workers": 2, "master_resources": {"cpu": 1}},
}
GPUS = {  # resources -> placement
    "cpu": ({"cpu": "250m", "memory": "512Mi", "memory_limit": "1Gi"}, cpu_only()),
    "whole": ({"gpu": 2, "cpu": 4}, whole(2)),
    "fraction": ({"gpu": 0.5}, shared(0.5)),
    "memory": ({"gpu_memory": "10Gi"}, shared(0.125, memory=10 << 30)),
    "multi-device": ({"gpu": 0.25, "gpu_devices": 4}, shared(0.25, n=4)),
    "dynamic": ({"gpu": 0.25, "gpu_limit": 1}, shared(0.25, limit=1.0)),
}
ATTACH = {"none": ([], []), "data": (SOURCES, []), "credentials": ([], CREDENTIALS), "both": (SOURCES, CREDENTIALS)}


# every kind with every GPU form (everything attached, the two binds taking turns), then every
# attachment on its own: each field the template can write is met at least once
MATRIX = [(kind, gpu, "both", ("node_name", "node_selector")[n % 2])
          for n, (kind, gpu) in enumerate(itertools.product(KINDS, GPUS))]
MATRIX += [("training", "cpu", attach, "node_name") for attach in ATTACH if attach != "both"]


@pytest.mark.parametrize("kind, gpu, attach, bind", MATRIX)
def test_every_manifest_passes_the_kubernetes_schema(kind, gpu, attach, bind):
    resources, placement = GPUS[gpu]
    sources, creds = ATTACH[attach]
    w = workload(kind=kind, resources=resources, environment={"A": "1", "B.c-d": "2"},
                 command="python run.py" if kind != "workspace" else None,
                 data_sources=[s.name for s in sources], credentials=[c.name for c in creds], **KINDS[kind])
    for index in range(w.spec.pod_count):
        pod_placement = cpu_only() if w.spec.pod_resources(index) is not w.spec.resources else placement
        valid(pod_manifest(w, index, pod_placement, data_sources=sources, credentials=creds,
                           options=TemplateOptions(bind=bind)))


def test_the_schema_check_catches_a_bad_manifest():
    manifest = pod_manifest(workload(), 0, cpu_only())
    manifest["spec"]["terminationGracePeriodSeconds"] = "thirty"
    with pytest.raises(kubernetes_validate.ValidationError):
        valid(manifest)


@pytest.mark.parametrize("node", ["gpu-a", "n" * 250])
def test_a_reservation_pod_passes_the_schema_holds_one_gpu_and_reads_no_api(node):
    from jupyter_runai.clusters.kube_reservations import (
        reservation_device,
        reservation_manifest,
        uuid_from_log,
    )

    manifest = valid(reservation_manifest(node, 3, scheduler_name="runai-scheduler"))
    assert reservation_device(manifest) == (node, 3)
    spec = manifest["spec"]
    assert spec["nodeName"] == node and spec["automountServiceAccountToken"] is False
    assert spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    # what nvidia-smi prints for the one GPU it sees; anything else is no answer
    assert uuid_from_log("GPU-8f2c1a2b-1234-5678-9abc-def012345678\n") == "GPU-8f2c1a2b-1234-5678-9abc-def012345678"
    assert uuid_from_log("No devices were found\n") is None
