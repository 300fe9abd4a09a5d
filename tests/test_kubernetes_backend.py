"""The Kubernetes backend at the wire level: the real ``kubernetes`` client over HTTP to the API
server stand-in (tests/kube_stand_in.py), driven by the real service and store.

What a kubelet or a controller would do (a pod starts, its image cannot be pulled, a node
is cordoned) the test does to the stand-in's objects, as they would through the API.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import pytest

from kube_stand_in import gpu_node, kube, kubelet_runs, other_pod  # noqa: F401 (kube: a fixture)
from test_service import ME, make_service

from jupyter_runai.clusters.kubernetes import KubernetesCluster
from jupyter_runai.clusters.logtimes import Stamper

pytestmark = pytest.mark.timeout(60)

NS = "runai-default"


def wait_for(condition, what: str, timeout: float = 15.0):
    """Poll ``condition`` until it is truthy (the caches follow the API server in threads)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.02)


def make_cluster(kube, tmp_path, **options) -> KubernetesCluster:
    options.setdefault("write_retry_seconds", 10)
    return KubernetesCluster(host=kube.host, state_dir=str(tmp_path), **options)


@pytest.fixture
def cluster(kube, tmp_path):
    cluster = make_cluster(kube, tmp_path)
    yield cluster
    cluster.close()


@pytest.fixture
def service(tmp_path, cluster):
    svc = make_service(tmp_path, cluster, gpus=4)
    yield svc
    svc.store.close()


def our_pod(kube, name: str) -> dict | None:
    return kube.get("pods", NS, name)


def cycle_until(service, name: str, phase: str, project: str = "default"):
    def reached():
        service.run_cycle()
        return service.get(project, name).status.phase.value == phase
    wait_for(reached, f"{name} {phase}")
    return service.get(project, name)


# ---------------------------------------------------------------- nodes


def test_nodes_come_from_gpu_allocatable_and_feature_discovery_labels(kube, tmp_path):
    kube.put("nodes", gpu_node("gpu-b", gpus=8, labels={"runai/node-pool": "h100"}))
    kube.put("nodes", gpu_node("cordoned", unschedulable=True))
    not_ready = gpu_node("not-ready")
    not_ready["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
    kube.put("nodes", not_ready)
    kube.put("nodes", gpu_node("tainted", taints=[{"key": "maintenance", "effect": "NoSchedule"}]))
    kube.put("nodes", gpu_node("gpu-tainted", taints=[{"key": "nvidia.com/gpu", "effect": "NoSchedule"}]))
    kube.put("pods", other_pod("theirs", "gpu-b", gpus=3, cpu="4"))
    kube.put("pods", other_pod("done", "gpu-b", gpus=2, phase="Succeeded"))
    cluster = make_cluster(kube, tmp_path)
    try:
        nodes = {n.name: n for n in cluster.nodes()}
        b = nodes["gpu-b"]
        assert len(b.devices) == 5  # 8 allocatable, 3 held by a pod of another scheduler; the ended one holds none
        assert {d.model for d in b.devices} == {"NVIDIA-H100-80GB-HBM3"}
        assert b.devices[0].memory == 81559 * 1024 * 1024
        assert b.cpu == 28_000 and b.memory == 255 * 1024 ** 3
        assert len(nodes["gpu-a"].devices) == 4 and nodes["gpu-a"].schedulable
        assert not nodes["cordoned"].schedulable
        assert not nodes["not-ready"].schedulable
        assert not nodes["tainted"].schedulable
        assert nodes["gpu-tainted"].schedulable  # GPU pods tolerate the GPU taint
        assert [(p.name, p.label_selector) for p in cluster.node_pools()] == [("h100", {"runai/node-pool": "h100"})]

        # the other scheduler's pod ends: its GPUs come back, through the watch
        kube.patch("pods", "team-x", "theirs", {"status": {"phase": "Succeeded"}})
        wait_for(lambda: len({n.name: n for n in cluster.nodes()}["gpu-b"].devices) == 8, "the GPUs freed")
        kube.patch("nodes", None, "cordoned", {"spec": {"unschedulable": None}})
        wait_for(lambda: {n.name: n for n in cluster.nodes()}["cordoned"].schedulable, "the node uncordoned")
    finally:
        cluster.close()


def test_the_cluster_is_found_from_a_kubeconfig_with_its_credentials(kube, tmp_path):
    config = tmp_path / "kubeconfig"
    config.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "lab",
        "clusters": [{"name": "lab", "cluster": {"server": kube.host}}],
        "users": [{"name": "runai", "user": {"token": "t0ken"}}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "runai"}}]}))
    cluster = KubernetesCluster(kubeconfig=str(config), state_dir=str(tmp_path))
    try:
        assert [n.name for n in cluster.nodes()] == ["gpu-a"]
        seen = kube.call(lambda: {r.headers.get("Authorization") for r in kube._requests})
        assert seen == {"Bearer t0ken"}
    finally:
        cluster.close()


# ---------------------------------------------------------------- submit -> pods


def test_submit_creates_pods_bound_to_the_engines_node(kube, service, cluster):
    kube.put("nodes", gpu_node("gpu-b", gpus=1))
    service.submit({"name": "train", "image": "ghcr.io/acme/train:1.2", "command": ["python", "train.py"],
                    "environment": {"EPOCHS": "3"},
                    "resources": {"gpu": 2, "cpu": "1500m", "memory": "2Gi"}}, ME)
    service.run_cycle()
    pod_view = service.get("default", "train").status.pods[0]
    assert pod_view.node == "gpu-a"  # the only node with two free GPUs
    assert cluster.drain()
    pod = wait_for(lambda: our_pod(kube, "train-0"), "the pod created")
    meta, spec = pod["metadata"], pod["spec"]
    assert meta["labels"]["runai/workload"] == "train" and meta["labels"]["runai/project"] == "default"
    assert meta["labels"]["kai.scheduler/queue"] == "default"
    assert spec["schedulerName"] == "runai-scheduler"
    container = spec["containers"][0]
    assert container["image"] == "ghcr.io/acme/train:1.2"
    assert container["command"] == ["python", "train.py"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["EPOCHS"] == "3" and env["RUNAI_WORKLOAD"] == "train" and env["RUNAI_NUM_OF_GPUS"] == "2"
    assert container["resources"] == {"requests": {"cpu": "1500m", "memory": "2Gi"},
                                      "limits": {"nvidia.com/gpu": "2"}}
    # created unbound, then bound through pods/binding to the node the engine chose
    assert spec["nodeSelector"] == {"kubernetes.io/hostname": "gpu-a"}
    assert spec["nodeName"] == "gpu-a"
    assert kube.get("namespaces", None, NS) is not None

    kubelet_runs(kube, NS, "train-0")
    workload = cycle_until(service, "train", "Running")
    assert workload.status.pods[0].node == "gpu-a"
    # our own pods are not "someone else's": the node still shows its four devices to the engine
    assert len({n.name: n for n in cluster.nodes()}["gpu-a"].devices) == 4
    # a pod of ours that the service does not know (a state directory lost) holds its GPUs all the same
    stray = copy.deepcopy(our_pod(kube, "train-0"))
    stray["metadata"].update(name="old-0", labels={**stray["metadata"]["labels"], "runai/workload-uid": "lost"})
    kube.put("pods", stray)
    wait_for(lambda: len({n.name: n for n in cluster.nodes()}["gpu-a"].devices) == 2, "the stray's GPUs taken off")
    kube.delete("pods", NS, "old-0")

    kube.logs[(NS, "train-0")] = "epoch 1\nepoch 2\n"
    path = service.log_path("default", "train")
    wait_for(lambda: path.exists() and path.read_text() == "epoch 1\nepoch 2\n", "the log copied while it runs")
    kube.logs[(NS, "train-0")] = "epoch 1\nepoch 2\nepoch 3\ndone\n"
    kube.patch("pods", NS, "train-0", {"status": {"phase": "Succeeded", "containerStatuses": [
        {"name": "main", "state": {"terminated": {"exitCode": 0}}}]}})
    cycle_until(service, "train", "Succeeded")
    wait_for(lambda: path.read_text().endswith("epoch 3\ndone\n"), "the whole log, once it ended")
    # read with the kubelet's times, kept beside the copy: ?timestamps=true as on the local cluster
    assert Stamper(path).stamp(path.read_bytes()) == (
        b"2026-01-02T03:04:00.123450000Z epoch 1\n2026-01-02T03:04:01.123450000Z epoch 2\n"
        b"2026-01-02T03:04:02.123450000Z epoch 3\n2026-01-02T03:04:03.123450000Z done\n")


def test_data_sources_are_volumes_and_credentials_are_secrets_the_pod_names(kube, service, cluster):
    service.add_data_source("default", {"name": "imagenet", "kind": "host_path", "path": "/datasets/imagenet"})
    service.add_data_source("default", {"name": "code", "kind": "git", "url": "https://example.com/r.git"})
    service.add_credential("default", {"name": "hf", "inject_as": "env", "data": {"HF_TOKEN": "hf_supersecret"}})
    service.add_credential("default", {"name": "ssh", "inject_as": "file", "data": {"id_rsa": "BEGIN key"}})
    service.submit({"name": "train", "command": "python train.py", "data_sources": ["imagenet", "code"],
                    "credentials": ["hf", "ssh"], "resources": {"gpu": 1}}, ME)
    service.run_cycle()
    assert cluster.drain()
    pod = wait_for(lambda: our_pod(kube, "train-0"), "the pod created")
    assert "hf_supersecret" not in json.dumps(pod) and "BEGIN key" not in json.dumps(pod)
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["data-imagenet"]["hostPath"]["path"] == "/datasets/imagenet"
    assert [c["name"] for c in pod["spec"]["initContainers"]] == ["git-code"]
    assert volumes["credential-ssh"]["secret"]["secretName"] == "runai-credential-train.ssh"
    assert pod["spec"]["containers"][0]["envFrom"] == [{"secretRef": {"name": "runai-credential-train.hf"}}]
    assert kube.get("secrets", NS, "runai-credential-train.hf")["stringData"] == {"HF_TOKEN": "hf_supersecret"}
    assert kube.get("secrets", NS, "runai-credential-train.ssh")["stringData"] == {"id_rsa": "BEGIN key"}
    events = [e.type for e in service.store.events(workload="train")]
    assert "Warning" not in events  # read-only data sources are mounted read-only here


def test_credential_secrets_are_deleted_with_their_workload_and_no_other(kube, tmp_path):
    cluster = make_cluster(kube, tmp_path)
    service = make_service(tmp_path, cluster, gpus=4)
    try:
        service.add_credential("default", {"name": "hf", "inject_as": "env", "data": {"HF_TOKEN": "hf_x"}})
        for name in ("a", "b"):
            service.submit({"name": name, "command": "x", "credentials": ["hf"], "resources": {"gpu": 1}}, ME)
        service.run_cycle()
        assert cluster.drain()
        for name in ("a", "b"):
            wait_for(lambda: our_pod(kube, f"{name}-0"), "the pods created")
            kubelet_runs(kube, NS, f"{name}-0")
        assert {s["metadata"]["name"] for s in kube.objects("secrets")} == {"runai-credential-a.hf",
                                                                             "runai-credential-b.hf"}
        service.delete("default", "a", ME)
        wait_for(lambda: service.run_cycle() or ("default", "a") not in service._names, "a deleted")
        assert cluster.drain()
        assert kube.get("secrets", NS, "runai-credential-a.hf") is None
        assert kube.get("secrets", NS, "runai-credential-b.hf")["stringData"] == {"HF_TOKEN": "hf_x"}
        cluster.close()
        service.store.close()

        # after a restart, the names come back with the pods' handles: b's Secret still goes with it
        cluster = make_cluster(kube, tmp_path)
        service = make_service(tmp_path, cluster, gpus=4)
        service.delete("default", "b", ME)
        wait_for(lambda: service.run_cycle() or not service.workloads, "b deleted")
        assert cluster.drain()
        assert kube.objects("secrets") == []
    finally:
        cluster.close()
        service.store.close()


def test_stop_evicts_through_the_eviction_api(kube, service, cluster):
    service.submit({"name": "nb", "kind": "workspace", "resources": {"gpu": 1}}, ME)
    service.run_cycle()
    assert cluster.drain()
    pod = wait_for(lambda: our_pod(kube, "nb-0"), "the pod created")
    # a workspace's token reaches it through a Secret, never as a literal
    token_env = [e for e in pod["spec"]["containers"][0]["env"] if e["name"] == "RUNAI_PROXY_TOKEN"]
    assert token_env == [{"name": "RUNAI_PROXY_TOKEN",
                          "valueFrom": {"secretKeyRef": {"name": "runai-proxy-nb", "key": "token"}}}]
    assert kube.get("secrets", NS, "runai-proxy-nb")["stringData"]["token"] == service.proxy_token(
        service.get("default", "nb").uid)
    kubelet_runs(kube, NS, "nb-0", ready=False)
    service.run_cycle()
    assert service.get("default", "nb").status.phase.value == "Pending"  # runs, not answering yet
    kubelet_runs(kube, NS, "nb-0", ready=True)
    cycle_until(service, "nb", "Running")
    (key, endpoint), = service.endpoints("default", "nb")
    assert (endpoint.host, endpoint.port) == ("10.1.2.3", 8888)

    service.stop("default", "nb", ME)
    assert cluster.drain()
    wait_for(lambda: our_pod(kube, "nb-0") is None, "the pod evicted")
    cycle_until(service, "nb", "Stopped")
    evictions = kube.requested("eviction")
    assert len(evictions) == 1 and evictions[0].name == "nb-0"


# ---------------------------------------------------------------- the caches and the API's errors


def test_watch_expiry_lists_again_and_misses_no_change(kube, cluster):
    assert cluster.pod_informer.lists == 1
    kube.put("pods", other_pod("theirs", "gpu-a", gpus=1))
    wait_for(lambda: len(cluster.nodes()[0].devices) == 3, "the other pod seen")
    kube.expire()  # etcd compacted: open watches end with 410, their versions are gone
    kube.put("pods", other_pod("theirs-2", "gpu-a", gpus=1))
    wait_for(lambda: cluster.pod_informer.lists >= 2 and cluster.node_informer.lists >= 2, "a re-list")
    wait_for(lambda: len(cluster.nodes()[0].devices) == 2, "the change made while it re-listed")
    kube.patch("pods", "team-x", "theirs", {"status": {"phase": "Failed"}})
    wait_for(lambda: len(cluster.nodes()[0].devices) == 3, "a change after the re-list, through the new watch")


def test_a_watch_the_api_server_refuses_is_retried_with_backoff(kube, cluster):
    kube.fail_next("watch", "pods", 503, times=3)  # the API server restarting
    kube.fail_next("list", "pods", 500)
    kube.expire()  # the open watch ends: list again (refused once), then watch (refused three times)
    wait_for(lambda: kube.faults_left() == 0, "every refused request tried again")
    kube.put("pods", other_pod("theirs", "gpu-a", gpus=1))
    wait_for(lambda: len(cluster.nodes()[0].devices) == 3, "a change seen through the watch that came back")
    assert cluster.pod_informer.errors >= 4


def test_bookmarks_move_the_watch_on(kube, cluster):
    version = cluster.pod_informer.resource_version
    kube.put("nodes", gpu_node("gpu-b"))  # a change of another kind moves the cluster's version on
    wait_for(lambda: int(cluster.pod_informer.resource_version) > int(version), "a bookmark")
    assert cluster.pod_informer.lists == 1


def test_api_errors_are_retried_and_nothing_is_lost(kube, service, cluster):
    kube.fail_next("create", "namespaces", 503)
    kube.fail_next("create", "pods", 500, times=2, subresource=None)
    kube.fail_next("create", "pods", 429, subresource="binding")
    kube.fail_next("list", "pods", 500)  # the next re-list
    service.submit({"name": "train", "command": "python train.py", "resources": {"gpu": 1}}, ME)
    service.run_cycle()
    assert cluster.drain()
    pod = wait_for(lambda: our_pod(kube, "train-0"), "the pod created")
    assert pod["spec"]["nodeName"] == "gpu-a"
    assert kube.faults_left() == 1  # the list's: no list happened yet
    kube.expire()
    wait_for(lambda: cluster.pod_informer.lists >= 2, "a re-list after the failed one")
    assert kube.faults_left() == 0
    kubelet_runs(kube, NS, "train-0")
    cycle_until(service, "train", "Running")
    assert len(kube.objects("pods")) == 1  # one pod: no retry made a second


def test_writes_that_time_out_but_happened_are_not_done_twice(kube, tmp_path):
    cluster = make_cluster(kube, tmp_path, request_timeout=0.5)
    service = make_service(tmp_path, cluster, gpus=4)
    try:
        kube.answer_late("create", "pods", 1.5, subresource="")  # the pod is created; the client times out
        kube.answer_late("create", "pods", 1.5, subresource="binding")  # bound; the client times out
        service.submit({"name": "train", "command": "python train.py", "resources": {"gpu": 1}}, ME)
        service.run_cycle()
        assert cluster.drain()
        pod = wait_for(lambda: our_pod(kube, "train-0"), "the pod created")
        assert pod["spec"]["nodeName"] == "gpu-a"
        assert kube.faults_left() == 0
        kubelet_runs(kube, NS, "train-0")
        cycle_until(service, "train", "Running")
        # the retried create met its own pod (409, then read) and the retried bind its own binding
        assert [p["metadata"]["uid"] for p in kube.objects("pods")] == [pod["metadata"]["uid"]]
        assert len(kube.requested("binding")) == 2
    finally:
        service.store.close()
        cluster.close()


def test_a_write_refused_for_good_fails_the_pod_with_the_reason(kube, service, cluster):
    kube.fail_next("create", "pods", 403, subresource=None)
    service.submit({"name": "train", "command": "python train.py", "resources": {"gpu": 1}}, ME)
    service.run_cycle()
    assert cluster.drain()
    workload = cycle_until(service, "train", "Failed")
    assert "could not start" in workload.status.message and "403" in workload.status.message


# ---------------------------------------------------------------- what the user sees


def test_an_image_that_cannot_be_pulled_reaches_the_user_as_a_reason(kube, service, cluster):
    service.submit({"name": "train", "image": "ghcr.io/acme/nope:9", "command": "python train.py",
                    "resources": {"gpu": 1}}, ME)
    service.run_cycle()
    assert cluster.drain()
    wait_for(lambda: our_pod(kube, "train-0"), "the pod created")
    kube.patch("pods", NS, "train-0", {"status": {"phase": "Pending", "containerStatuses": [{
        "name": "main", "image": "ghcr.io/acme/nope:9", "ready": False, "state": {"waiting": {
            "reason": "ImagePullBackOff", "message": 'Back-off pulling image "ghcr.io/acme/nope:9"'}}}]}})
    workload = cycle_until(service, "train", "Failed")
    assert "image ghcr.io/acme/nope:9 cannot be pulled (ImagePullBackOff)" in workload.status.message
    assert cluster.drain()
    wait_for(lambda: our_pod(kube, "train-0") is None, "the pod that never starts removed from its node")


RESERVED = "runai-reservation"
UUID = "GPU-8f2c1a2b-1234-5678-9abc-def012345678"


def env_of(pod: dict) -> dict:
    return {e["name"]: e.get("value") for e in pod["spec"]["containers"][0].get("env", [])}


def reservation_runs(kube, name: str, uuid: str = UUID) -> None:
    """What the reservation pod does on its node: it starts and prints its GPU's UUID."""
    kube.logs[(RESERVED, name)] = f"{uuid}\n"
    kubelet_runs(kube, RESERVED, name)


def test_fractions_share_a_device_held_by_one_reservation_pod_that_goes_with_the_last(kube, service, cluster):
    service.submit({"name": "a", "command": "x", "resources": {"gpu": 0.5}}, ME)
    service.submit({"name": "b", "command": "x", "resources": {"gpu": 0.5}}, ME)
    service.run_cycle()
    devices = {service.get("default", n).status.pods[0].devices[0] for n in ("a", "b")}
    assert len(devices) == 1  # both halves on one device
    name = f"gpu-reservation-gpu-a-{devices.pop()}"
    reservation = wait_for(lambda: kube.get("pods", RESERVED, name), "the reservation pod created")
    assert [p["metadata"]["name"] for p in kube.objects("pods")] == [name]  # one for both; none of theirs yet
    assert reservation["spec"]["nodeName"] == "gpu-a"
    assert reservation["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert reservation["spec"]["automountServiceAccountToken"] is False

    reservation_runs(kube, name)
    for pod_name in ("a-0", "b-0"):
        pod = wait_for(lambda: (p := our_pod(kube, pod_name)) and p["spec"].get("nodeName") and p, "bound")
        env = env_of(pod)
        assert env["NVIDIA_VISIBLE_DEVICES"] == UUID and env["GPU_PORTION"] == "0.5"
        assert env["RUNAI_GPU_MEMORY_LIMIT"] == str(81559 * 1024 * 1024 // 2)
        assert "nvidia.com/gpu" not in str(pod["spec"]["containers"][0].get("resources"))
        kubelet_runs(kube, NS, pod_name)
    cycle_until(service, "a", "Running")
    cycle_until(service, "b", "Running")
    assert len({n.name: n for n in cluster.nodes()}["gpu-a"].devices) == 4  # the engine counts the halves

    service.stop("default", "a", ME)
    cycle_until(service, "a", "Stopped")
    assert cluster.drain() and kube.get("pods", RESERVED, name) is not None  # b still uses the device
    service.stop("default", "b", ME)
    cycle_until(service, "b", "Stopped")
    assert cluster.drain()
    wait_for(lambda: kube.get("pods", RESERVED, name) is None, "the reservation pod deleted with the last fraction")


def test_a_reservation_pod_that_cannot_start_fails_its_fractions_with_the_reason(kube, service, cluster):
    service.submit({"name": "half", "command": "x", "resources": {"gpu": 0.5}}, ME)
    service.run_cycle()
    name = f"gpu-reservation-gpu-a-{service.get('default', 'half').status.pods[0].devices[0]}"
    wait_for(lambda: kube.get("pods", RESERVED, name), "the reservation pod created")
    kube.patch("pods", RESERVED, name, {"status": {"containerStatuses": [{"name": "reserve", "image": "cuda",
               "state": {"waiting": {"reason": "ImagePullBackOff", "message": "not found"}}}]}})
    workload = cycle_until(service, "half", "Failed")
    assert "reserving its GPU" in workload.status.message and "cannot be pulled" in workload.status.message
    assert our_pod(kube, "half-0") is None


def deployed_role_allows() -> set[tuple[str, str]]:
    """Every (verb, resource) that deploy/'s ClusterRole grants (API groups aside)."""
    import yaml

    rbac = Path(__file__).resolve().parents[1] / "deploy" / "rbac.yaml"
    role = next(doc for doc in yaml.safe_load_all(rbac.read_text()) if doc["kind"] == "ClusterRole")
    return {(verb, resource) for rule in role["rules"] for verb in rule["verbs"] for resource in rule["resources"]}


def test_every_request_the_backend_makes_is_allowed_by_the_deployed_role(kube, service, cluster):
    allowed = deployed_role_allows()
    service.submit({"name": "nb", "kind": "workspace", "resources": {"gpu": 1}}, ME)
    service.submit({"name": "ddp", "kind": "distributed", "workers": 1, "command": "x", "resources": {"gpu": 1}}, ME)
    service.run_cycle()
    assert cluster.drain()
    for name in ("nb-0", "ddp-0", "ddp-1"):
        wait_for(lambda: our_pod(kube, name), "the pods created")
        kubelet_runs(kube, NS, name)
    cycle_until(service, "nb", "Running")
    kube.logs[(NS, "nb-0")] = "serving\n"
    path = service.log_path("default", "nb")
    wait_for(lambda: path.exists(), "the log read")
    service.stop("default", "ddp", ME)
    service.delete("default", "nb", ME)
    assert cluster.drain()
    cycle_until(service, "ddp", "Stopped")
    used = kube.verbs_used()
    assert {("create", "pods/binding"), ("create", "pods/eviction"), ("get", "pods/log"), ("create", "secrets"),
            ("create", "services"), ("create", "namespaces"), ("watch", "pods"), ("list", "nodes")} <= used
    assert used - allowed == set()


def test_a_restart_after_a_failure_replaces_the_ended_pod_of_that_name(kube, service, cluster):
    service.submit({"name": "flaky", "command": "python train.py", "backoff_limit": 1, "resources": {"gpu": 1}}, ME)
    service.run_cycle()
    assert cluster.drain()
    first = wait_for(lambda: our_pod(kube, "flaky-0"), "the pod created")
    kube.patch("pods", NS, "flaky-0", {"status": {"phase": "Failed", "containerStatuses": [
        {"name": "main", "state": {"terminated": {"exitCode": 3}}}]}})

    def replaced():
        service.run_cycle()
        cluster.drain()
        pod = our_pod(kube, "flaky-0")
        return pod if pod and pod["metadata"]["uid"] != first["metadata"]["uid"] else None
    second = wait_for(replaced, "the pod started again")  # the name was taken by the failed pod: it went first
    assert second["spec"]["nodeName"] == "gpu-a" and second["status"]["phase"] == "Pending"
    assert second["metadata"]["annotations"]["runai/launch-id"] != first["metadata"]["annotations"]["runai/launch-id"]
    assert service.get("default", "flaky").status.restarts == 1


def test_a_pod_created_but_never_bound_is_bound_when_adopted(kube, cluster):
    from jupyter_runai.clusters.podtemplate import Placement, TemplateOptions, pod_manifest
    from jupyter_runai.models import Workload, WorkloadSpec

    workload = Workload(spec=WorkloadSpec(name="train", command="x", resources={"gpu": 1}), submitted_by="me")
    pod = pod_manifest(workload, 0, Placement(node="gpu-a", devices=(0,)),
                       options=TemplateOptions(bind="node_selector"))
    pod["metadata"]["annotations"]["runai/launch-id"] = "l1"
    kube.put("pods", pod)  # the scheduler stopped between the create and the binding
    wait_for(lambda: cluster.pod_informer.get(NS, "train-0"), "the pod in the cache")
    report = cluster.adopt("default/train-0", {"launching": True, "launch_id": "l1", "workload_uid": workload.uid,
                                               "index": 0, "node": "gpu-a", "devices": [0]})
    assert report.state.value == "Running" and report.handle["launch_id"] == "l1"
    assert cluster.drain()
    assert our_pod(kube, "train-0")["spec"]["nodeName"] == "gpu-a"
    other = cluster.adopt("default/train-0", {"launch_id": "l2", "workload_uid": workload.uid, "node": "gpu-a"})
    assert other.state.value == "Lost"  # another launch's pod of that name is not this one


# ---------------------------------------------------------------- restarts


def test_a_restarted_service_rederives_its_pods_from_the_cluster(kube, tmp_path):
    cluster = make_cluster(kube, tmp_path)
    service = make_service(tmp_path, cluster, gpus=4)
    service.submit({"name": "train", "command": "python train.py", "resources": {"gpu": 1}}, ME)
    service.submit({"name": "gone", "command": "python train.py", "resources": {"gpu": 1}}, ME)
    service.run_cycle()
    assert cluster.drain()
    for name in ("train-0", "gone-0"):
        wait_for(lambda: our_pod(kube, name), "the pods created")
        kubelet_runs(kube, NS, name)
    cycle_until(service, "train", "Running")
    cycle_until(service, "gone", "Running")
    service.store.close()
    cluster.close()

    kube.delete("pods", NS, "gone-0")  # deleted while no scheduler ran
    cluster = make_cluster(kube, tmp_path)
    try:
        again = make_service(tmp_path, cluster, gpus=4)
        train = again.get("default", "train")
        assert train.status.phase.value == "Running" and train.status.pods[0].node == "gpu-a"
        assert cluster.pods() == ["default/train-0"]
        gone = again.get("default", "gone")
        assert gone.status.pods[0].phase.value != "Running"  # not found on the cluster: not running
        # the adopted pod is watched again: its end reaches the service
        kube.patch("pods", NS, "train-0", {"status": {"phase": "Failed", "containerStatuses": [
            {"name": "main", "state": {"terminated": {"exitCode": 3}}}]}})
        workload = cycle_until(again, "train", "Failed")
        assert "exited with code 3" in workload.status.message
        again.store.close()
    finally:
        cluster.close()


def test_after_a_restart_a_new_fraction_shares_the_device_its_reservation_pod_still_holds(kube, tmp_path):
    cluster = make_cluster(kube, tmp_path)
    service = make_service(tmp_path, cluster, gpus=4)
    service.submit({"name": "a", "command": "x", "resources": {"gpu": 0.5}}, ME)
    service.run_cycle()
    name = f"gpu-reservation-gpu-a-{service.get('default', 'a').status.pods[0].devices[0]}"
    wait_for(lambda: kube.get("pods", RESERVED, name), "the reservation pod created")
    reservation_runs(kube, name)
    wait_for(lambda: our_pod(kube, "a-0"), "the fraction created")
    kubelet_runs(kube, NS, "a-0")
    cycle_until(service, "a", "Running")
    service.store.close()
    cluster.close()

    cluster = make_cluster(kube, tmp_path)
    again = make_service(tmp_path, cluster, gpus=4)
    try:
        assert again.get("default", "a").status.pods[0].fraction == 0.5
        again.submit({"name": "b", "command": "x", "resources": {"gpu": 0.5}}, ME)
        again.run_cycle()
        pod = wait_for(lambda: our_pod(kube, "b-0"), "the second half created, with the UUID read again")
        assert env_of(pod)["NVIDIA_VISIBLE_DEVICES"] == UUID
        assert [p["metadata"]["name"] for p in kube.objects("pods") if p["metadata"]["namespace"] == RESERVED] == [name]
        # the adopted half still counts: the reservation goes only with the last of the two
        again.stop("default", "a", ME)
        cycle_until(again, "a", "Stopped")
        assert cluster.drain() and kube.get("pods", RESERVED, name) is not None
        again.stop("default", "b", ME)
        cycle_until(again, "b", "Stopped")
        assert cluster.drain()
        wait_for(lambda: kube.get("pods", RESERVED, name) is None, "the reservation pod deleted")
    finally:
        again.store.close()
        cluster.close()


def test_a_reservation_pod_whose_fractions_ended_while_no_scheduler_ran_goes_at_the_restart(kube, tmp_path):
    cluster = make_cluster(kube, tmp_path)
    service = make_service(tmp_path, cluster, gpus=4)
    service.submit({"name": "a", "command": "x", "resources": {"gpu": 0.5}}, ME)
    service.run_cycle()
    name = f"gpu-reservation-gpu-a-{service.get('default', 'a').status.pods[0].devices[0]}"
    wait_for(lambda: kube.get("pods", RESERVED, name), "the reservation pod created")
    reservation_runs(kube, name)
    wait_for(lambda: our_pod(kube, "a-0"), "the fraction created")
    kubelet_runs(kube, NS, "a-0")
    cycle_until(service, "a", "Running")
    service.store.close()
    cluster.close()

    kube.delete("pods", NS, "a-0")  # gone while no scheduler ran: nothing uses the device any more
    cluster = make_cluster(kube, tmp_path)
    again = make_service(tmp_path, cluster, gpus=4)  # start(): re-adopt, then end what nothing accounts for
    try:
        assert cluster.drain()
        wait_for(lambda: kube.get("pods", RESERVED, name) is None, "the stale reservation pod deleted")
        wait_for(lambda: len({n.name: n for n in cluster.nodes()}["gpu-a"].devices) == 4, "its GPU back")
    finally:
        again.store.close()
        cluster.close()


def test_an_inference_endpoint_gets_a_service_and_its_objects_go_with_the_workload(kube, service, cluster):
    service.submit({"name": "llm", "kind": "inference", "image": "ghcr.io/acme/serve:1", "min_replicas": 2,
                    "max_replicas": 2, "resources": {"gpu": 1}}, ME)
    service.submit({"name": "ddp", "kind": "distributed", "workers": 1, "command": "x", "resources": {"gpu": 1}}, ME)
    service.run_cycle()
    assert cluster.drain()
    uid = service.get("default", "llm").uid
    front = kube.get("services", NS, "inference-llm")
    assert front["spec"]["selector"] == {"runai/workload-uid": uid}
    assert front["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    assert kube.get("services", NS, "master-ddp")["spec"]["clusterIP"] == "None"
    assert kube.get("secrets", NS, "runai-proxy-llm") is not None

    # the proxy reaches the ready replicas only
    kubelet_runs(kube, NS, "llm-0", ip="10.1.0.1")
    kubelet_runs(kube, NS, "llm-1", ready=False, ip="10.1.0.2")
    service.run_cycle()
    wait_for(lambda: [e.host for _, e in service.endpoints("default", "llm", ME)] == ["10.1.0.1"], "one ready")
    kubelet_runs(kube, NS, "llm-1", ip="10.1.0.2")
    wait_for(lambda: sorted(e.host for _, e in service.endpoints("default", "llm", ME)) == ["10.1.0.1", "10.1.0.2"],
             "both ready")

    for name in ("llm", "ddp"):
        service.delete("default", name, ME)
    for _ in range(50):  # stopped, then released once ended
        service.run_cycle()
        if not service.workloads:
            break
        time.sleep(0.05)
    assert service.workloads == {}
    assert cluster.drain()
    assert kube.objects("pods") == []
    assert kube.objects("services") == [] and kube.get("secrets", NS, "runai-proxy-llm") is None
