"""Workloads as RunaiWorkload custom resources: the CRD (generated from the models, structural,
bounded), the objects the Kubernetes backend writes (at the wire, against the API server
stand-in), and the cluster as the source of truth: a service on an EMPTY state restores every
workload from the objects, and deleting an object deletes its workload."""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import pytest
import yaml

from k8s_schemas import crd_json_schema
from kube_stand_in import kube, kubelet_runs  # noqa: F401 (kube: a fixture)
from test_kubernetes_backend import NS, cycle_until, make_cluster, our_pod, wait_for
from test_service import ME, make_service

from jupyter_runai.clusters.kube_crd import crd_manifest
from jupyter_runai.clusters.kube_workloads import status_body, workload_from_object, workload_object
from jupyter_runai.errors import NotFound
from jupyter_runai.models import Workload, WorkloadSpec, WorkloadStatus

pytestmark = pytest.mark.timeout(60)

CRD = Path(__file__).resolve().parents[1] / "deploy" / "crd.yaml"
SPECS = [
    {"name": "train", "command": "python train.py", "resources": {"gpu": 2, "cpu": "500m", "memory": "8Gi"}},
    {"name": "half", "kind": "workspace", "resources": {"gpu": 0.5, "gpu_limit": 0.75},
     "environment": {"MODE": "fast"}, "image": "quay.io/jupyter/pytorch-notebook"},
    {"name": "ddp", "kind": "distributed", "workers": 3, "command": ["torchrun", "train.py"],
     "resources": {"gpu": 1, "gpu_memory": None}, "master_resources": {"cpu": 2}},
    {"name": "serve", "kind": "inference", "min_replicas": 1, "max_replicas": 4, "command": "serve",
     "resources": {"gpu_memory": "20Gi", "gpu_devices": 2}},
]


def crd_schema() -> dict:
    return crd_manifest()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def an_object(spec: dict) -> dict:
    workload = Workload(spec=WorkloadSpec.model_validate(spec), submitted_by="ada")
    workload.status = WorkloadStatus(submitted_at="2026-01-02T03:04:05Z",
                                     pods=[{"name": f"{workload.spec.name}-0", "index": 0, "phase": "Running",
                                            "node": "gpu-a", "devices": [0, 1], "fraction": None}])
    obj = workload_object(workload)
    obj["status"] = {k: v for k, v in status_body(workload).items() if v is not None}  # as a merge patch leaves it
    return workload, obj


# ---------------------------------------------------------------- the CRD


def test_the_deployed_crd_is_the_one_generated_from_the_models():
    assert yaml.safe_load(CRD.read_text()) == crd_manifest(), \
        "deploy/crd.yaml is stale: python -m jupyter_runai.clusters.kube_crd > deploy/crd.yaml"


def test_the_crd_schema_is_structural_and_bounded():
    def walk(node: dict, path: str) -> None:
        assert not {"$ref", "anyOf", "oneOf", "allOf", "not", "default"} & set(node), path
        if node.get("x-kubernetes-preserve-unknown-fields") and "type" not in node:
            return
        kind = node.get("type")
        assert kind in ("object", "array", "string", "number", "integer", "boolean"), f"{path}: no type"
        if kind == "string":
            assert "maxLength" in node or "enum" in node or "format" in node, f"{path}: unbounded string"
        if kind == "array":
            assert "maxItems" in node, f"{path}: unbounded list"
            walk(node["items"], path + "[]")
        if kind == "object" and path:
            assert ("properties" in node) != ("additionalProperties" in node), f"{path}: both or neither"
            if "additionalProperties" in node:
                assert "maxProperties" in node, f"{path}: unbounded map"
                walk(node["additionalProperties"], path + "{}")
        for name, sub in (node.get("properties") or {}).items():
            walk(sub, f"{path}.{name}")
    schema = crd_schema()
    assert set(schema["properties"]) == {"apiVersion", "kind", "metadata", "spec", "status"}
    for part in ("spec", "status"):  # apiVersion, kind and metadata are the API server's own
        walk(schema["properties"][part], "." + part)


def test_the_printer_columns_show_fields_the_schema_has():
    version = crd_manifest()["spec"]["versions"][0]
    names = [c["name"] for c in version["additionalPrinterColumns"]]
    assert names[:4] == ["Project", "Kind", "GPUs", "Phase"] and names[-1] == "Age"
    schema = crd_schema()
    for column in version["additionalPrinterColumns"]:
        if column["jsonPath"].startswith(".metadata."):
            assert column["type"] == "date"  # the API server's own creationTimestamp
            continue
        node = schema
        for part in column["jsonPath"].lstrip(".").split("."):
            node = node["properties"][part]
        assert node["type"] == column["type"], column


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s["name"])
def test_a_workloads_object_passes_the_crd_schema_and_gives_the_workload_back(spec):
    workload, obj = an_object(spec)
    jsonschema.validate(obj, crd_json_schema(crd_schema()))
    again = workload_from_object(copy.deepcopy(obj))
    assert again == workload
    assert obj["status"]["allocated_gpus"] == 2 and obj["status"]["submitted_by"] == "ada"


def test_the_crd_schema_refuses_what_the_models_refuse():
    _, obj = an_object(SPECS[0])
    schema = crd_json_schema(crd_schema())
    for path, bad in ((("spec", "resources", "gpu"), 2000), (("spec", "kind"), "batch"),
                      (("spec", "name"), "Not_A_Label"), (("spec", "environment"), {"A": 1}),
                      (("status", "phase"), "Sleeping")):
        broken = copy.deepcopy(obj)
        node = broken
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = bad
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema)


def test_an_object_made_by_someone_else_is_not_taken_for_one_of_ours():
    _, obj = an_object(SPECS[0])
    del obj["metadata"]["labels"]["runai/workload-uid"]
    with pytest.raises(ValueError, match="runai/workload-uid"):
        workload_from_object(obj)


# ---------------------------------------------------------------- at the wire


def pod_creates(kube) -> list[str]:
    """The pods created so far (POSTs to pods, not to their subresources), by name."""
    return kube.call(lambda: [r.data["metadata"]["name"] for r in kube._requests
                              if r.method.value.upper() == "POST" and r.resource is not None
                              and r.resource.plural == "pods" and not r.subresource])


def the_object(kube, name: str) -> dict | None:
    return kube.get("runaiworkloads", NS, name)


def test_each_workload_is_an_object_created_before_its_pods_whose_status_follows_it(kube, tmp_path):
    cluster = make_cluster(kube, tmp_path)
    service = make_service(tmp_path, cluster, gpus=4)
    try:
        service.submit({"name": "train", "command": "python train.py", "resources": {"gpu": 1}}, ME)
        assert cluster.drain()
        obj = the_object(kube, "train")
        assert obj["spec"]["command"] == "python train.py" and obj["spec"]["resources"]["gpu"] == 1
        assert obj["metadata"]["labels"]["runai/workload-uid"] == service.get("default", "train").uid
        assert obj["status"]["phase"] == "Pending" and obj["status"]["submitted_by"] == ME.name
        service.run_cycle()
        assert cluster.drain()
        pod = wait_for(lambda: our_pod(kube, "train-0"), "the pod created")
        assert int(obj["metadata"]["resourceVersion"]) < int(pod["metadata"]["resourceVersion"])
        running = wait_for(lambda: (the_object(kube, "train")["status"]["phase"] == "Running"
                                    and the_object(kube, "train")), "its status written")
        assert running["status"]["allocated_gpus"] == 1
        assert running["status"]["pods"][0]["node"] == "gpu-a"
        kube.patch("pods", NS, "train-0", {"status": {"phase": "Succeeded", "containerStatuses": [
            {"name": "main", "state": {"terminated": {"exitCode": 0}}}]}})
        cycle_until(service, "train", "Succeeded")
        assert cluster.drain()
        done = the_object(kube, "train")["status"]
        assert done["phase"] == "Succeeded" and done["allocated_gpus"] == 0
        assert {"type": "Running", "status": "False", "reason": "Succeeded"}.items() <= \
            done["conditions"][1].items()
        service.delete("default", "train", ME)
        assert cluster.drain()
        assert the_object(kube, "train") is None
        service.store.close()
    finally:
        cluster.close()


def test_a_service_on_an_empty_state_restores_every_workload_from_the_cluster(kube, tmp_path):
    cluster = make_cluster(kube, tmp_path / "one")
    service = make_service(tmp_path / "one", cluster, gpus=4)
    service.submit({"name": "train", "command": "python train.py", "resources": {"gpu": 2}}, ME)
    service.submit({"name": "nb", "kind": "workspace", "resources": {"gpu": 1}}, ME)
    service.submit({"name": "big", "command": "python big.py", "resources": {"gpu": 4}}, ME)
    service.run_cycle()
    assert cluster.drain()
    for name in ("train-0", "nb-0"):
        wait_for(lambda: our_pod(kube, name), "the pods created")
        kubelet_runs(kube, NS, name)
    cycle_until(service, "nb", "Running")
    assert service.get("default", "big").status.phase.value == "Pending"
    before = {name: our_pod(kube, f"{name}-0")["metadata"]["uid"] for name in ("train", "nb")}
    uids = {w.spec.name: w.uid for w in service.list()}
    assert cluster.drain()
    service.store.close()
    cluster.close()

    # a new replica with a new, empty state volume, on the same cluster
    created = len(pod_creates(kube))
    cluster = make_cluster(kube, tmp_path / "two")
    try:
        again = make_service(tmp_path / "two", cluster, gpus=4)
        assert {w.spec.name: w.uid for w in again.list()} == uids
        train, nb, big = (again.get("default", name) for name in ("train", "nb", "big"))
        assert train.status.phase.value == "Running" and train.status.pods[0].node == "gpu-a"
        assert len(train.status.pods[0].devices) == 2 and train.submitted_by == ME.name
        assert nb.status.phase.value == "Running" and nb.status.url
        assert big.status.phase.value == "Pending"
        for _ in range(3):
            again.run_cycle()
        assert cluster.drain()
        assert big.status.phase.value == "Pending"  # still queued: train and nb hold 3 of the 4 GPUs
        assert len(pod_creates(kube)) == created  # no pod created twice
        assert {name: our_pod(kube, f"{name}-0")["metadata"]["uid"] for name in ("train", "nb")} == before
        assert any("restored from its RunaiWorkload object" in e.message
                   for e in again.workload_events("default", "train", 10))
        # the adopted pods are watched: when train ends, big gets its GPUs
        kube.patch("pods", NS, "train-0", {"status": {"phase": "Succeeded", "containerStatuses": [
            {"name": "main", "state": {"terminated": {"exitCode": 0}}}]}})
        cycle_until(again, "train", "Succeeded")
        again.stop("default", "nb", ME)
        cycle_until(again, "nb", "Stopped")
        cycle_until(again, "big", "Running")
        again.store.close()
    finally:
        cluster.close()


def test_deleting_the_object_deletes_its_workload(kube, tmp_path):
    cluster = make_cluster(kube, tmp_path)
    service = make_service(tmp_path, cluster, gpus=4)
    try:
        service.submit({"name": "train", "command": "python train.py", "resources": {"gpu": 1}}, ME)
        service.run_cycle()
        assert cluster.drain()
        wait_for(lambda: our_pod(kube, "train-0"), "the pod created")
        kubelet_runs(kube, NS, "train-0")
        kube.delete("runaiworkloads", NS, "train")  # kubectl delete runaiworkload train -n runai-default

        def gone():
            service.run_cycle()
            cluster.drain()
            try:
                service.get("default", "train")
            except NotFound:
                return True
            return False
        wait_for(gone, "the workload deleted")
        assert our_pod(kube, "train-0") is None  # its pod was stopped (evicted) first
        events = [(e.type, e.message) for e in service.store.events() if e.workload == "train"]
        assert any(t == "Warning" and "RunaiWorkload object was deleted" in m for t, m in events)
        assert events[-1][0] == "Deleted"  # as after a REST delete
        assert the_object(kube, "train") is None  # not written again
        service.store.close()
    finally:
        cluster.close()


def test_an_object_deleted_while_no_scheduler_ran_deletes_its_workload_at_the_restart(kube, tmp_path):
    cluster = make_cluster(kube, tmp_path)
    service = make_service(tmp_path, cluster, gpus=4)
    service.submit({"name": "keep", "command": "python a.py", "resources": {"gpu": 1}}, ME)
    service.submit({"name": "drop", "command": "python b.py", "resources": {"gpu": 1}}, ME)
    service.run_cycle()
    assert cluster.drain()
    wait_for(lambda: all(the_object(kube, n) for n in ("keep", "drop")), "the objects")
    service.run_cycle()  # the service sees its objects on the cluster (and remembers it)
    service.store.close()
    cluster.close()

    kube.delete("runaiworkloads", NS, "drop")
    cluster = make_cluster(kube, tmp_path)
    try:
        again = make_service(tmp_path, cluster, gpus=4)
        assert again.get("default", "keep").status.phase.value == "Running"

        def gone():
            again.run_cycle()
            cluster.drain()
            return "drop" not in {w.spec.name for w in again.list()}
        wait_for(gone, "drop deleted")
        assert our_pod(kube, "drop-0") is None and our_pod(kube, "keep-0") is not None
        again.store.close()
    finally:
        cluster.close()


def test_a_stored_workload_whose_object_was_never_written_gets_it_at_the_start(kube, tmp_path):
    cluster = make_cluster(kube, tmp_path, workload_objects=False)
    service = make_service(tmp_path, cluster, gpus=4)
    service.submit({"name": "old", "command": "python a.py", "resources": {"gpu": 1}}, ME)
    service.run_cycle()
    assert cluster.drain()
    assert the_object(kube, "old") is None  # mirroring off: nothing but pods
    service.store.close()
    cluster.close()

    cluster = make_cluster(kube, tmp_path)
    try:
        again = make_service(tmp_path, cluster, gpus=4)
        assert cluster.drain()
        obj = wait_for(lambda: the_object(kube, "old"), "its object written")
        assert obj["status"]["phase"] == "Running"
        assert again.get("default", "old").status.phase.value == "Running"  # not taken for deleted
        again.store.close()
    finally:
        cluster.close()


# ---------------------------------------------------------------- objects created by others (kubectl apply)


def applied(name: str, namespace: str = NS, **spec) -> dict:
    """A RunaiWorkload as a user would `kubectl apply` it: no label of ours, no status."""
    return {"apiVersion": "jupyter-runai.io/v1alpha1", "kind": "RunaiWorkload",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def refusal(kube, name: str, namespace: str = NS) -> str | None:
    conditions = ((kube.get("runaiworkloads", namespace, name) or {}).get("status") or {}).get("conditions") or []
    return next((c["message"] for c in conditions if c["type"] == "Admitted" and c["status"] == "False"), None)


def test_an_object_applied_with_kubectl_is_refused_with_the_reason_unless_a_submitter_is_configured(kube, tmp_path):
    cluster = make_cluster(kube, tmp_path)
    service = make_service(tmp_path, cluster, gpus=4)
    try:
        kube.put("runaiworkloads", applied("sneaky", command="python x.py", resources={"gpu": 1}))

        def refused():
            service.run_cycle()
            cluster.drain()
            return refusal(kube, "sneaky")
        assert "object_submitter is not set" in wait_for(refused, "the refusal written")
        assert service.list() == [] and our_pod(kube, "sneaky-0") is None
        service.store.close()
    finally:
        cluster.close()


def test_an_object_applied_with_kubectl_goes_through_the_same_admission_as_rest(kube, tmp_path):
    from jupyter_runai.identity import User

    cluster = make_cluster(kube, tmp_path, object_submitter="ci-bot")
    service = make_service(tmp_path, cluster, gpus=4)
    try:
        # RBAC: the configured identity holds no role yet, so it may submit nowhere
        kube.put("runaiworkloads", applied("early", command="python x.py", resources={"gpu": 1}))
        wait_for(lambda: service.run_cycle() or cluster.drain() and refusal(kube, "early"), "refused for RBAC")
        service.grant({"role": "researcher", "user": "ci-bot", "project": "default"}, ME)
        # a bad spec and a foreign namespace are refused, naming the field
        kube.put("runaiworkloads", applied("bad", command="python x.py", resources={"gpu": 5000}))
        kube.put("runaiworkloads", applied("elsewhere", namespace="team-x", command="x", resources={"gpu": 1}))
        kube.put("runaiworkloads", applied("train", command="python train.py", resources={"gpu": 1}))

        def admitted():
            service.run_cycle()
            cluster.drain()
            return any(w.spec.name == "train" for w in service.list()) and refusal(kube, "bad") \
                and refusal(kube, "elsewhere", "team-x")
        wait_for(admitted, "train admitted, the others refused")
        assert "resources.gpu" in refusal(kube, "bad")
        assert "metadata.namespace" in refusal(kube, "elsewhere", "team-x")
        train = service.get("default", "train")
        assert train.submitted_by == "ci-bot" and train.spec.priority_class.value == "train"  # defaults applied
        obj = the_object(kube, "train")
        assert obj["metadata"]["labels"]["runai/workload-uid"] == train.uid  # ours now
        assert obj["spec"]["priority_class"] == "train"  # the spec it was admitted with
        cycle_until(service, "train", "Running")
        assert wait_for(lambda: our_pod(kube, "train-0"), "its pod")["spec"]["schedulerName"] == "runai-scheduler"
        assert {n for n in ("bad", "elsewhere", "early") if any(w.spec.name == n for w in service.list())} == set()
        # it is a workload like any other: the submitter's RBAC, a REST delete removes its object
        service.delete("default", "train", User("ci-bot"))
        kube.delete("pods", NS, "train-0")
        wait_for(lambda: service.run_cycle() or cluster.drain() and the_object(kube, "train") is None,
                 "its object deleted with it")
        service.store.close()
    finally:
        cluster.close()


def test_a_cluster_without_the_crd_says_so_at_start(kube, tmp_path):
    kube.fail_next("list", "runaiworkloads", 404, times=1000)  # what an API server answers for an unknown resource
    with pytest.raises(RuntimeError, match=r"runaiworkloads .*deploy/crd\.yaml installed.*workload_objects = False"):
        make_cluster(kube, tmp_path, sync_timeout=1)
    cluster = make_cluster(kube, tmp_path, workload_objects=False, sync_timeout=5)  # the way out it names
    try:
        assert cluster.workload_mirror is None
    finally:
        cluster.close()


def test_a_standby_without_the_state_volume_takes_over_with_every_workload(kube, tmp_path):
    from test_kube_leader import replica

    a = replica(kube, tmp_path / "a")
    assert a.elector.wait_leading(10)
    b = replica(kube, tmp_path / "b")  # its own, empty state: no shared volume
    try:
        first = make_service(tmp_path / "a", a, gpus=4)
        first.submit({"name": "train", "command": "python train.py", "resources": {"gpu": 2}}, ME)
        first.run_cycle()
        assert a.drain()
        wait_for(lambda: our_pod(kube, "train-0"), "the pod created")
        kubelet_runs(kube, NS, "train-0")
        cycle_until(first, "train", "Running")
        created = len(pod_creates(kube))
        first.store.close()
        a.close()  # a clean shutdown hands the Lease over

        wait_for(lambda: b.leading, "the standby took over")
        second = make_service(tmp_path / "b", b, gpus=4)
        train = second.get("default", "train")
        assert train.status.phase.value == "Running" and train.submitted_by == ME.name
        second.run_cycle()
        assert b.drain()
        assert len(pod_creates(kube)) == created  # adopted, not started again
        second.store.close()
    finally:
        a.close()
        b.close()
