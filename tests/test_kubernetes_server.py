"""``c.RunaiApp.backend = "kubernetes"`` end to end: a real Jupyter server with the extension,
its REST API, and the Kubernetes backend talking to the API server stand-in over HTTP."""

from __future__ import annotations

import asyncio

import pytest

from api_helpers import server_config, wait_for
from kube_stand_in import gpu_node, kube, kubelet_runs  # noqa: F401 (kube: a fixture)

pytest_plugins = ["pytest_jupyter.jupyter_server"]
pytestmark = pytest.mark.timeout(90)

NS = "runai-default"


@pytest.fixture
def jp_server_config(tmp_path, kube):
    config = server_config(tmp_path, backend="kubernetes")
    config["KubernetesCluster"] = {"host": kube.host, "write_retry_seconds": 10}
    return config


async def until(check, what: str, timeout: float = 20):
    async def get():
        return await asyncio.to_thread(check)
    return await wait_for(get, bool, timeout, what)


async def test_a_user_runs_a_training_on_the_cluster_through_the_rest_api(api, kube):
    code, info = await api.get("info")
    assert code == 200 and info["backend"] == "kubernetes"
    assert info["gpus"] == 4 and info["virtual_gpus"] == 0

    # no command: the image's own entrypoint runs (on the local cluster a command is required)
    await api.submit(name="train", image="ghcr.io/acme/train:1.2", resources={"gpu": 1})
    pod = await until(lambda: (p := kube.get("pods", NS, "train-0")) and p["spec"].get("nodeName") and p,
                      "the pod bound")
    assert pod["spec"]["nodeName"] == "gpu-a" and pod["spec"]["containers"][0]["image"] == "ghcr.io/acme/train:1.2"
    assert "command" not in pod["spec"]["containers"][0]
    await asyncio.to_thread(kubelet_runs, kube, NS, "train-0")
    await api.wait_phase("train", "Running")

    code, _ = await api.post("workloads", "default", "train", "stop")
    assert code == 200
    await api.wait_phase("train", "Stopped")
    assert [r.name for r in await asyncio.to_thread(kube.requested, "eviction")] == ["train-0"]
    assert await asyncio.to_thread(kube.get, "pods", NS, "train-0") is None

    # a fraction, as on one machine: the device is held by a reservation pod, the UUID reaches the pod
    await api.submit(name="half", command="python eval.py", resources={"gpu": 0.5})
    reservations = await until(lambda: kube.objects("pods") and
                               [p for p in kube.objects("pods") if p["metadata"]["namespace"] == "runai-reservation"],
                               "the reservation pod created")
    name = reservations[0]["metadata"]["name"]
    kube.logs[("runai-reservation", name)] = "GPU-11111111-2222-3333-4444-555555555555\n"
    await asyncio.to_thread(kubelet_runs, kube, "runai-reservation", name)
    pod = await until(lambda: (p := kube.get("pods", NS, "half-0")) and p["spec"].get("nodeName") and p,
                      "the fraction bound")
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert env["NVIDIA_VISIBLE_DEVICES"] == "GPU-11111111-2222-3333-4444-555555555555"
    await asyncio.to_thread(kubelet_runs, kube, NS, "half-0")
    await api.wait_phase("half", "Running")


async def test_a_submit_answers_once_its_runaiworkload_object_exists_and_a_refused_one_stores_nothing(api, kube):
    # the cluster refuses the object (an admission webhook, a missing CRD): a 503, nothing submitted
    await asyncio.to_thread(kube.fail_next, "create", "runaiworkloads", 403)
    code, body = await api.post("workloads", body={"name": "train", "command": "python train.py",
                                                   "resources": {"gpu": 1}})
    assert code == 503 and "RunaiWorkload" in body["error"]["message"], body
    code, listed = await api.get("workloads")
    assert code == 200 and listed["workloads"] == []
    assert await asyncio.to_thread(kube.objects, "runaiworkloads") == []
    # accepted: the object is on the cluster when the 201 comes, before any pod
    created = await api.submit(name="train", command="python train.py", resources={"gpu": 1})
    obj = await asyncio.to_thread(kube.get, "runaiworkloads", NS, "train")
    assert obj is not None and obj["metadata"]["labels"]["runai/workload-uid"] == created["uid"]
    await until(lambda: kube.get("pods", NS, "train-0"), "the pod created")
    status = await until(lambda: (kube.get("runaiworkloads", NS, "train") or {}).get("status", {}).get("pods", [{}])[0]
                         .get("node"), "the object's status following the workload")
    assert status == "gpu-a"
async def test_a_third_party_job_is_listed_with_its_owner_and_a_stop_says_to_use_kubectl(api, kube):
    from test_kube_foreign import TEAM, owner, their_pod

    job = await asyncio.to_thread(owner, kube, "Job", "their-train", "batch/v1")
    await asyncio.to_thread(their_pod, kube, "their-train-x7", job)
    await until(lambda: kube.get("pods", TEAM, "their-train-x7")["spec"].get("nodeName"), "their pod bound")
    code, listing = await api.get("workloads")
    assert code == 200
    (theirs,) = [w for w in listing["workloads"] if w.get("external")]
    assert theirs["external"]["kind"] == "Job" and theirs["external"]["namespace"] == TEAM
    assert theirs["spec"]["name"] == "their-train" and theirs["spec"]["project"] == "default"

    code, body = await api.post("workloads", "default", "their-train", "stop")
    assert code == 409
    assert "kubectl delete job their-train -n team-x" in body["error"]["message"]
    assert body["error"]["field"] == "name"
