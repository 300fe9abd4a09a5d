"""One active scheduler on a cluster: two replicas elect a leader with a coordination.k8s.io
Lease on the API server stand-in (docs/kubernetes.md, "Two replicas"). The standby writes
nothing; when the leader stops renewing, the standby takes over from the shared store and
the cluster, and no pod is lost or created twice."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import requests
import yaml

from kube_stand_in import gpu_node, kube, kubelet_runs  # noqa: F401 (kube: a fixture)
from live_server import LiveServer
from test_kubernetes_backend import NS, cycle_until, make_cluster, wait_for
from test_service import make_service, submit

from jupyter_runai.clusters.kube_writer import WriteFailed

pytestmark = pytest.mark.timeout(90)

LEASE = ("runai-system", "runai-scheduler")


def replica(kube, state, lease_seconds: float = 1.5):
    return make_cluster(kube, state, leader_election=True, lease_namespace=LEASE[0], lease_seconds=lease_seconds)


def holder(kube) -> str | None:
    return (kube.get("leases", *LEASE) or {}).get("spec", {}).get("holderIdentity")


def test_a_standby_takes_over_from_a_leader_that_stops_renewing_and_nothing_is_lost_or_done_twice(kube, tmp_path):
    a = replica(kube, tmp_path)
    assert a.elector.wait_leading(10)
    b = replica(kube, tmp_path)
    try:
        wait_for(lambda: b.elector.tried.is_set(), "the standby read the Lease")
        assert not b.leading and b.elector.holder == a.elector.identity == holder(kube)
        # the standby writes nothing, whatever asks it to
        with pytest.raises(WriteFailed, match="not the leader"):
            b.writer.ensure_namespace("runai-standby")
        assert kube.get("namespaces", None, "runai-standby") is None

        first = make_service(tmp_path, a, gpus=4)
        submit(first, "train", image="ghcr.io/acme/train:1", resources={"gpu": 2})
        first.run_cycle()
        wait_for(lambda: (kube.get("pods", NS, "train-0") or {}).get("spec", {}).get("nodeName"), "bound")
        kubelet_runs(kube, NS, "train-0")
        cycle_until(first, "train", "Running")
        first.store.close()

        a.elector.stop()  # the leader's process hangs or its node goes away: it renews no more
        wait_for(lambda: b.leading, "the standby took over", timeout=20)
        assert holder(kube) == b.elector.identity
        assert kube.get("leases", *LEASE)["spec"]["leaseTransitions"] == 1
        assert not a.leading  # fenced: past its renew deadline, the old leader writes nothing
        with pytest.raises(WriteFailed, match="not the leader"):
            a.writer.ensure_namespace("runai-old-leader")

        second = make_service(tmp_path, b, gpus=4)  # the same store: the workload re-adopted from the cluster
        try:
            assert second.get("default", "train").status.phase.value == "Running"
            submit(second, "next", image="ghcr.io/acme/train:1", resources={"gpu": 2})
            second.run_cycle()
            wait_for(lambda: (kube.get("pods", NS, "next-0") or {}).get("spec", {}).get("nodeName"), "bound")
            pods = sorted(p["metadata"]["name"] for p in kube.objects("pods"))
            assert pods == ["next-0", "train-0"]  # nothing lost, nothing created twice
            assert sorted(r.name for r in kube.requested("binding")) == ["next-0", "train-0"]
            assert kube.get("namespaces", None, "runai-old-leader") is None
        finally:
            second.store.close()
    finally:
        a.close()
        b.close()


def test_a_leader_that_shuts_down_hands_the_lease_over_without_waiting_for_it_to_expire(kube, tmp_path):
    a = replica(kube, tmp_path, lease_seconds=3)
    assert a.elector.wait_leading(10)
    b = replica(kube, tmp_path, lease_seconds=3)
    try:
        a.close()  # a clean shutdown (a rolling update): the Lease is released
        assert b.elector.wait_leading(10)
        lease = kube.get("leases", *LEASE)["spec"]
        assert lease["holderIdentity"] == b.elector.identity and lease["leaseTransitions"] == 1
    finally:
        b.close()
    # every request on the Lease is allowed by deploy/'s Role (read, create, renew, hand over)
    rbac = Path(__file__).resolve().parents[1] / "deploy" / "rbac.yaml"
    role = next(doc for doc in yaml.safe_load_all(rbac.read_text()) if doc["kind"] == "Role")
    allowed = {(verb, resource) for rule in role["rules"] for verb in rule["verbs"] for resource in rule["resources"]}
    used = {(verb, resource) for verb, resource in kube.verbs_used() if resource == "leases"}
    assert used == {("get", "leases"), ("create", "leases"), ("update", "leases")} and used <= allowed


def test_of_two_standbys_racing_for_an_expired_lease_exactly_one_wins(kube, tmp_path):
    """The holder is gone; both standbys see the Lease expire and write it at about the same
    time. The Lease's resourceVersion lets only one write through (the other gets 409)."""
    kube.put("leases", {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                        "metadata": {"name": LEASE[1], "namespace": LEASE[0]},
                        "spec": {"holderIdentity": "gone", "leaseDurationSeconds": 1,
                                 "renewTime": "2026-01-01T00:00:00.000000Z", "leaseTransitions": 4}})
    replicas = [replica(kube, tmp_path / str(n)) for n in range(2)]
    try:
        wait_for(lambda: any(r.leading for r in replicas), "one took over")
        for _ in range(3):  # and it stays so, renewal after renewal
            assert [r.leading for r in replicas].count(True) == 1
            lease = kube.get("leases", *LEASE)["spec"]
            assert lease["holderIdentity"] in {r.elector.identity for r in replicas if r.leading}
            assert lease["leaseTransitions"] == 5
            wait_for(lambda: kube.get("leases", *LEASE)["spec"]["renewTime"] != lease["renewTime"], "renewed")
    finally:
        for r in replicas:
            r.close()


def test_a_leader_whose_lease_was_taken_stops_writing_and_says_so(kube, tmp_path):
    a = replica(kube, tmp_path)
    assert a.elector.wait_leading(10)
    lost = threading.Event()
    a.elector.on_stopped = lost.set  # the server stops on this, to restart as a standby
    try:
        lease = kube.get("leases", *LEASE)
        lease["spec"].update(holderIdentity="someone-else", leaseTransitions=lease["spec"]["leaseTransitions"] + 1)
        kube.put("leases", lease)  # another replica took it (after a partition, say)
        assert lost.wait(10)
        assert not a.leading
        with pytest.raises(WriteFailed, match="not the leader"):
            a.writer.ensure_namespace("runai-after-the-loss")
        assert holder(kube) == "someone-else"  # and it did not take the Lease back
    finally:
        a.close()


def test_leader_election_settings_must_leave_room_to_renew(kube, tmp_path):
    with pytest.raises(ValueError, match="retry_seconds < renew_deadline < lease_seconds"):
        from jupyter_runai.clusters.kube_lease import LeaseElector
        LeaseElector(None, "ns", "name", "me", lease_seconds=1, renew_deadline=2, retry_seconds=0.5)


def ready(server: LiveServer) -> tuple[int, dict]:
    response = requests.get(server.url + "runai/ready", timeout=10)
    return response.status_code, response.json()


def test_two_servers_one_schedules_the_other_answers_503_until_it_takes_over(kube, tmp_path):
    """The path a cluster admin deploys: two Jupyter servers (the Deployment's two replicas) on
    one state directory (a shared volume) and one API server."""
    config = {"RunaiApp": {"backend": "kubernetes", "interval": 0.2},
              "KubernetesCluster": {"host": kube.host, "leader_election": True, "lease_namespace": LEASE[0],
                                    "lease_seconds": 2, "write_retry_seconds": 5}}
    first = LiveServer(tmp_path / "a", config).start()
    second = LiveServer(tmp_path / "b", config)
    second.dirs["state"] = first.dirs["state"]
    try:
        second.start(ready=503)
        code, body = second.api("GET", "info")
        assert code == 503 and "standby" in body["error"]["message"] and "Lease" in body["error"]["message"]
        # the readiness probe (no token): the Service sends requests to the leader only
        assert ready(first) == (200, {"scheduling": True})
        assert ready(second) == (503, {"scheduling": False})

        code, body = first.api("POST", "workloads", {"name": "train", "image": "ghcr.io/acme/train:1",
                                                     "resources": {"gpu": 1}})
        assert code in (200, 201), body
        wait_for(lambda: (kube.get("pods", NS, "train-0") or {}).get("spec", {}).get("nodeName"), "bound")
        kubelet_runs(kube, NS, "train-0")
        first.wait_phase("train", "Running")

        first.kill()  # SIGKILL: no release, the Lease expires
        wait_for(lambda: second.api("GET", "info")[0] == 200, "the standby took over", timeout=30)
        assert second.wait_phase("train", "Running")["status"]["phase"] == "Running"
        assert ready(second) == (200, {"scheduling": True})
        assert [p["metadata"]["name"] for p in kube.objects("pods")] == ["train-0"]
        assert [r.name for r in kube.requested("binding")] == ["train-0"]
    finally:
        second.stop()
        first.stop()
