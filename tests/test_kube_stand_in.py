"""The API server stand-in (tests/kube_stand_in.py) answers as an API server does where the
Kubernetes backend's tests rely on it; kmock alone does not (201, server-set metadata,
selectors, 409, 410, binding): if the stand-in drifts, those tests would prove nothing."""

from __future__ import annotations

import json

import pytest
from kubernetes.client import ApiClient, Configuration, CoreV1Api
from kubernetes.client.exceptions import ApiException

from kube_stand_in import kube  # noqa: F401 (a fixture)

pytestmark = pytest.mark.timeout(60)

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"team": "a"}},
       "spec": {"containers": [{"name": "main", "image": "busybox"}]}}


def test_the_stand_in_answers_as_an_api_server_does(kube):
    v1 = CoreV1Api(ApiClient(Configuration(host=kube.host)))
    created = v1.create_namespaced_pod("ns", POD, _preload_content=False)
    assert created.status == 201
    meta = json.loads(created.data)["metadata"]
    assert meta["namespace"] == "ns" and meta["uid"] and meta["creationTimestamp"] and meta["resourceVersion"]
    with pytest.raises(ApiException) as conflict:
        v1.create_namespaced_pod("ns", POD)
    assert conflict.value.status == 409

    assert [p.metadata.name for p in v1.list_namespaced_pod("ns", label_selector="team=a").items] == ["p"]
    assert v1.list_namespaced_pod("ns", label_selector="team!=a").items == []
    assert v1.list_pod_for_all_namespaces(field_selector="spec.nodeName=").items[0].metadata.name == "p"

    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"}, "target": {"kind": "Node", "name": "n"}}
    assert v1.create_namespaced_pod_binding("p", "ns", binding, _preload_content=False).status == 201
    assert v1.read_namespaced_pod("p", "ns").spec.node_name == "n"
    with pytest.raises(ApiException) as bound:
        v1.create_namespaced_pod_binding("p", "ns", binding, _preload_content=False)
    assert bound.value.status == 409
    assert int(v1.read_namespaced_pod("p", "ns").metadata.resource_version) > int(meta["resourceVersion"])

    kube.expire()
    watch = v1.list_namespaced_pod("ns", watch=True, resource_version=meta["resourceVersion"], timeout_seconds=5,
                                   _preload_content=False)
    (event,) = [json.loads(line) for line in watch.read().splitlines() if line.strip()]
    assert event["type"] == "ERROR" and event["object"]["code"] == 410
