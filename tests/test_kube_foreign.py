"""Third-party workloads on Kubernetes, at the wire level: pods that others made (a Job's, a
Deployment's through its ReplicaSet) with our scheduler name and a queue label, grouped by their
top owner, scheduled by the real service and bound through ``pods/binding`` on the API server
stand-in (tests/kube_stand_in.py), with the real ``kubernetes`` client.

What a Job controller or the kubelet would do (make a pod again, run it) the test does to the
stand-in's objects.
"""

from __future__ import annotations

import pytest

from kube_stand_in import kube, kubelet_runs  # noqa: F401 (kube: a fixture)
from test_kubernetes_backend import cycle_until, deployed_role_allows, make_cluster, wait_for
from test_service import ME, make_service

from jupyter_runai.errors import Conflict

pytestmark = pytest.mark.timeout(60)

TEAM = "team-x"  # the namespace the third party works in (not one of ours)


def owner(kube, kind: str, name: str, api_version: str, parent: dict | None = None) -> dict:
    """An object that owns pods (a Job, a ReplicaSet...), as its controller would have made it."""
    meta = {"name": name, "namespace": TEAM}
    if parent is not None:
        meta["ownerReferences"] = [ref(parent)]
    plural = kind.lower() + "s"
    return kube.put(plural, {"apiVersion": api_version, "kind": kind, "metadata": meta})


def ref(obj: dict) -> dict:
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": obj["metadata"]["name"],
            "uid": obj["metadata"]["uid"], "controller": True}


def their_pod(kube, name: str, parent: dict | None, queue: str | None = "default", gpus: int = 1,
              annotations: dict | None = None) -> dict:
    """A pod their controller made: our scheduler name, a queue label, unbound."""
    meta = {"name": name, "namespace": TEAM, "labels": {"kai.scheduler/queue": queue} if queue else {},
            "annotations": annotations or {}}
    if parent is not None:
        meta["ownerReferences"] = [ref(parent)]
    return kube.put("pods", {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
                             "spec": {"schedulerName": "runai-scheduler", "containers": [{
                                 "name": "trainer", "image": "ghcr.io/them/train:3",
                                 "resources": {"requests": {"cpu": "2", "memory": "4Gi"},
                                               "limits": {"nvidia.com/gpu": str(gpus)}}}]},
                             "status": {"phase": "Pending"}})


@pytest.fixture
def setup(kube, tmp_path):
    cluster = make_cluster(kube, tmp_path)
    service = make_service(tmp_path, cluster, gpus=4)
    yield service, cluster
    cluster.close()
    service.store.close()


def external_workload(service, kind: str):
    def found():
        service.run_cycle()
        return next((w for w in service.workloads.values() if w.external and w.external.kind == kind), None)
    return wait_for(found, f"a workload for the {kind}")


def test_a_jobs_pods_are_one_gang_scheduled_bound_and_shown_but_not_stopped_through_us(kube, setup):
    service, cluster = setup
    job = owner(kube, "Job", "their-train", "batch/v1")
    for i in range(2):
        their_pod(kube, f"their-train-{i}abc", job, annotations={"kai.scheduler/batch-min-member": "2"})

    workload = external_workload(service, "Job")
    assert workload.external.name == "their-train" and workload.external.namespace == TEAM
    assert workload.external.uid == job["metadata"]["uid"]
    spec = workload.spec
    assert (spec.project, spec.name, spec.kind.value, spec.pod_count, spec.min_pods) == \
        ("default", "their-train", "distributed", 2, 2)
    assert spec.resources.gpu == 1 and spec.resources.cpu == 2000 and spec.resources.memory == 4 << 30

    # the engine placed both (a gang): each of their pods is bound through pods/binding, none is created
    wait_for(lambda: service.run_cycle() or all(kube.get("pods", TEAM, f"their-train-{i}abc")["spec"].get("nodeName")
                                                for i in range(2)), "both pods bound")
    assert cluster.drain()
    assert len(kube.requested("binding")) == 2
    assert {p["metadata"]["name"] for p in kube.objects("pods")} == {"their-train-0abc", "their-train-1abc"}
    for i in range(2):
        kubelet_runs(kube, TEAM, f"their-train-{i}abc")
    cycle_until(service, "their-train", "Running")

    # in every list, with its owner; a stop is refused and says how to do it
    view = next(w for w in service.list(project="default") if w.spec.name == "their-train")
    assert view.model_dump(mode="json")["external"]["kind"] == "Job"
    with pytest.raises(Conflict, match="kubectl delete job their-train -n team-x"):
        service.stop("default", "their-train", ME)
    with pytest.raises(Conflict):
        service.delete("default", "their-train", ME)

    for i in range(2):
        kube.patch("pods", TEAM, f"their-train-{i}abc", {"status": {"phase": "Succeeded", "containerStatuses": [
            {"name": "trainer", "state": {"terminated": {"exitCode": 0}}}]}})
    cycle_until(service, "their-train", "Succeeded")

    # the Job is deleted (its pods with it): the workload goes
    kube.delete("jobs", TEAM, "their-train")
    for i in range(2):
        kube.delete("pods", TEAM, f"their-train-{i}abc")
    wait_for(lambda: service.run_cycle() or not service.workloads, "the workload deleted")
    assert cluster.drain()
    assert kube.requested("eviction") == []  # their pods were never ours to delete


def test_a_deployments_pod_is_grouped_by_the_top_owner_through_its_replicaset(kube, setup):
    service, cluster = setup
    deployment = owner(kube, "Deployment", "serve", "apps/v1")
    replicaset = owner(kube, "ReplicaSet", "serve-5d9f", "apps/v1", parent=deployment)
    their_pod(kube, "serve-5d9f-x1", replicaset)
    workload = external_workload(service, "Deployment")
    assert workload.external.name == "serve" and workload.spec.kind.value == "training"
    assert workload.spec.priority_class.value == "inference"  # KAI's default for a Deployment
    wait_for(lambda: service.run_cycle() or kube.get("pods", TEAM, "serve-5d9f-x1")["spec"].get("nodeName"),
             "the pod bound")


def test_a_pod_whose_queue_is_no_project_waits_and_is_told_why(kube, setup):
    service, cluster = setup
    job = owner(kube, "Job", "lost", "batch/v1")
    their_pod(kube, "lost-0", job, queue="nobody")

    def told():
        service.run_cycle()
        cluster.drain()
        conditions = (kube.get("pods", TEAM, "lost-0").get("status") or {}).get("conditions") or []
        return next((c for c in conditions if c["type"] == "PodScheduled"), None)
    condition = wait_for(told, "the pod told why it waits")
    assert condition["status"] == "False" and condition["reason"] == "Unschedulable"
    assert "queue 'nobody' is not a project" in condition["message"] and "default" in condition["message"]
    assert not service.workloads
    assert not kube.get("pods", TEAM, "lost-0")["spec"].get("nodeName")


def test_the_requests_for_third_party_pods_are_allowed_by_the_deployed_role(kube, setup):
    service, cluster = setup
    deployment = owner(kube, "Deployment", "serve", "apps/v1")
    their_pod(kube, "serve-1", owner(kube, "ReplicaSet", "serve-1", "apps/v1", parent=deployment))
    their_pod(kube, "lost-0", owner(kube, "Job", "lost", "batch/v1"), queue="nobody")
    external_workload(service, "Deployment")
    wait_for(lambda: service.run_cycle() or (cluster.drain() and kube.get("pods", TEAM, "serve-1")["spec"].get(
        "nodeName") and kube.get("pods", TEAM, "lost-0")["status"].get("conditions")), "bound, and told")
    used = kube.verbs_used()
    assert {("get", "replicasets"), ("get", "deployments"), ("get", "jobs"), ("patch", "pods/status"),
            ("create", "pods/binding")} <= used
    assert used - deployed_role_allows() == set()


def test_a_third_party_pod_is_preempted_like_any_and_its_owners_new_pod_placed_again(kube, setup):
    service, cluster = setup
    job = owner(kube, "Job", "greedy", "batch/v1")
    their_pod(kube, "greedy-a", job, gpus=4)
    external_workload(service, "Job")
    wait_for(lambda: service.run_cycle() or kube.get("pods", TEAM, "greedy-a")["spec"].get("nodeName"), "bound")
    kubelet_runs(kube, TEAM, "greedy-a")
    cycle_until(service, "greedy", "Running")

    # a workspace (priority build, above train) in the same project preempts it: evicted through the API
    service.submit({"name": "nb", "kind": "workspace", "resources": {"gpu": 1}}, ME)
    wait_for(lambda: service.run_cycle() or (cluster.drain() and kube.get("pods", TEAM, "greedy-a") is None),
             "the third-party pod evicted")
    assert [r.name for r in kube.requested("eviction")] == ["greedy-a"]
    wait_for(lambda: service.run_cycle() or service.get("default", "greedy").status.pods[0].phase.value == "Pending",
             "back in the queue")

    # its Job makes a new pod; once the workspace ends, it is placed again
    their_pod(kube, "greedy-b", job, gpus=4)
    cycle_until(service, "nb", "Pending")
    service.delete("default", "nb", ME)
    wait_for(lambda: service.run_cycle() or (cluster.drain() and kube.get("pods", TEAM, "greedy-b")["spec"].get(
        "nodeName")), "the new pod bound")


def test_a_restarted_service_finds_its_third_party_pods_again_and_a_jobs_retry_is_queued(kube, tmp_path):
    cluster = make_cluster(kube, tmp_path)
    service = make_service(tmp_path, cluster, gpus=4)
    try:
        job = owner(kube, "Job", "retry", "batch/v1")
        their_pod(kube, "retry-a", job, gpus=2)
        external_workload(service, "Job")
        wait_for(lambda: service.run_cycle() or kube.get("pods", TEAM, "retry-a")["spec"].get("nodeName"), "bound")
        kubelet_runs(kube, TEAM, "retry-a")
        cycle_until(service, "retry", "Running")
        assert cluster.drain()
        cluster.close()
        service.store.close()

        # a restart: the same workload, its pod found again through the stored handle; nothing bound twice
        cluster = make_cluster(kube, tmp_path)
        service = make_service(tmp_path, cluster, gpus=4)
        workload = cycle_until(service, "retry", "Running")
        assert workload.external.kind == "Job" and len(service.workloads) == 1
        assert len(kube.requested("binding")) == 1
        nodes = {n.name: n for n in cluster.nodes()}
        assert len(nodes["gpu-a"].devices) == 4  # counted by the service, not taken off as someone else's

        # the pod fails; its Job makes another: the workload goes back to the queue and it is bound
        kube.patch("pods", TEAM, "retry-a", {"status": {"phase": "Failed", "containerStatuses": [
            {"name": "trainer", "state": {"terminated": {"exitCode": 3}}}]}})
        cycle_until(service, "retry", "Failed")
        their_pod(kube, "retry-b", job, gpus=2)
        wait_for(lambda: service.run_cycle() or (cluster.drain() and kube.get("pods", TEAM, "retry-b")["spec"].get(
            "nodeName")), "the Job's new pod bound")
        assert [e.type for e in service.store.events(workload="retry")].count("Resumed") == 1
        # its owner is the Job: no RunaiWorkload object is made for it, at a restart or a change
        assert cluster.drain() and kube.objects("runaiworkloads") == []
    finally:
        cluster.close()
        service.store.close()


def test_a_rule_stops_a_third_party_workload_and_its_owners_new_pod_is_told_why(kube, tmp_path):
    from test_rules import Clock, rules

    clock = Clock()
    cluster = make_cluster(kube, tmp_path)
    service = make_service(tmp_path, cluster, gpus=4, clock=clock)
    try:
        rules(service, training={"max_duration": "1h"})
        job = owner(kube, "Job", "long", "batch/v1")
        their_pod(kube, "long-a", job)
        external_workload(service, "Job")
        wait_for(lambda: service.run_cycle() or kube.get("pods", TEAM, "long-a")["spec"].get("nodeName"), "bound")
        kubelet_runs(kube, TEAM, "long-a")
        cycle_until(service, "long", "Running")
        clock.advance(hours=1)
        wait_for(lambda: service.run_cycle() or (cluster.drain() and kube.get("pods", TEAM, "long-a") is None),
                 "evicted by the rule")
        cycle_until(service, "long", "Stopped")

        their_pod(kube, "long-b", job)  # the Job makes another: it is not run, and says why

        def told():
            service.run_cycle()
            cluster.drain()
            conditions = (kube.get("pods", TEAM, "long-b").get("status") or {}).get("conditions") or []
            return next((c["message"] for c in conditions if c["type"] == "PodScheduled"), None)
        assert "was stopped (stopped by rule max_duration" in wait_for(told, "the new pod told why")
        assert service.get("default", "long").status.phase.value == "Stopped"
        assert not kube.get("pods", TEAM, "long-b")["spec"].get("nodeName")
    finally:
        cluster.close()
        service.store.close()


def test_a_workload_whose_pods_are_gone_waits_for_its_owner_and_goes_with_it(kube, setup, monkeypatch):
    import jupyter_runai.clusters.kube_foreign as kube_foreign

    monkeypatch.setattr(kube_foreign, "OWNER_RECHECK", 0.2)  # how often an owner without pods is read again
    service, cluster = setup
    job = owner(kube, "Job", "flaky", "batch/v1")
    their_pod(kube, "flaky-a", job)
    external_workload(service, "Job")
    wait_for(lambda: service.run_cycle() or kube.get("pods", TEAM, "flaky-a")["spec"].get("nodeName"), "bound")
    kubelet_runs(kube, TEAM, "flaky-a")
    cycle_until(service, "flaky", "Running")

    kube.delete("pods", TEAM, "flaky-a")  # kubectl delete pod: its Job still exists, so the workload waits
    reason = "waiting for Job team-x/flaky to make a pod"
    wait_for(lambda: service.run_cycle() or reason in (service.get("default", "flaky").status.pending_reason or ""),
             "back in the queue, saying why")
    for _ in range(10):  # read again and again: the Job is there; nothing is placed for it meanwhile
        service.run_cycle()
    workload = service.get("default", "flaky")
    assert workload.status.phase.value == "Pending" and workload.status.pods[0].phase.value == "Pending"

    kube.delete("jobs", TEAM, "flaky")  # now the owner is gone: so is the workload
    wait_for(lambda: service.run_cycle() or not service.workloads, "the workload deleted with its Job")


def test_a_third_party_workload_over_its_quota_is_reclaimed_by_a_project_below_its_own(kube, setup):
    service, cluster = setup
    service.create_project({"name": "guests", "deserved": {"gpu": 0}}, ME)  # may only borrow idle GPUs
    job = owner(kube, "Job", "borrow", "batch/v1")
    their_pod(kube, "borrow-a", job, queue="guests", gpus=4)
    workload = external_workload(service, "Job")
    assert workload.spec.project == "guests"
    wait_for(lambda: service.run_cycle() or kube.get("pods", TEAM, "borrow-a")["spec"].get("nodeName"), "bound")
    kubelet_runs(kube, TEAM, "borrow-a")
    cycle_until(service, "borrow", "Running", project="guests")

    # the default project deserves the 4 GPUs: it takes them back from the borrower, through the Eviction API
    service.submit({"name": "mine", "command": "x", "resources": {"gpu": 2}}, ME)
    wait_for(lambda: service.run_cycle() or (cluster.drain() and kube.get("pods", TEAM, "borrow-a") is None),
             "the borrower evicted")
    assert [r.name for r in kube.requested("eviction")] == ["borrow-a"]
    wait_for(lambda: service.run_cycle() or (cluster.drain() and kube.get("pods", "runai-default", "mine-0")
                                               and kube.get("pods", "runai-default", "mine-0")["spec"].get("nodeName")),
             "the project's own workload bound")
    events = [e.message for e in service.store.events(workload="borrow")]
    assert any("reclaim" in m.lower() for m in events), events


def test_an_owners_name_becomes_a_workload_name():
    from jupyter_runai.external_workloads import external_name
    from jupyter_runai.models.names import is_dns_label

    assert external_name("their-train", "u1") == "their-train"
    assert external_name("Web.Front_End", "u1") == "web-front-end"  # a DNS subdomain, made a label
    long = "a" * 200 + ".x"
    names = {external_name(long, "u1"), external_name(long + "y", "u1"), external_name(long, "u1", taken=True),
             external_name(long, "u2", taken=True)}
    assert len(names) == 4 and all(is_dns_label(n) for n in names)
    assert external_name("train", "u1", taken=True).startswith("train-")


def test_an_owner_the_role_may_not_read_is_the_top(kube, setup):
    service, cluster = setup
    top = owner(kube, "Experiment", "exp", "example.com/v1")
    trial = owner(kube, "Trial", "exp-t1", "example.com/v1", parent=top)
    kube.fail_next("fetch", "trials", 403, times=100)  # RBAC: our role may not read Trials
    their_pod(kube, "exp-t1-0", trial)
    workload = external_workload(service, "Trial")
    assert (workload.external.name, workload.external.api_version) == ("exp-t1", "example.com/v1")
