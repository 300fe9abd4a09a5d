"""deploy/: the kustomize base renders with `kubectl kustomize`, every manifest passes the
Kubernetes schemas (strict), and the parts fit together (the account the Deployment runs as
is the one bound to the role; the priority classes are the ones our pods name; no secret on
a command line)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from k8s_schemas import kubectl_or_skip, kubernetes_validate_or_skip

from jupyter_runai.models.priority import PRIORITY_VALUES

kubernetes_validate = kubernetes_validate_or_skip()
KUBECTL = kubectl_or_skip()
DEPLOY = Path(__file__).resolve().parents[1] / "deploy"

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def manifests() -> dict[tuple[str, str], dict]:
    out = subprocess.run([KUBECTL, "kustomize", str(DEPLOY)], capture_output=True, text=True, timeout=30, check=True)
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc in yaml.safe_load_all(out.stdout) if doc}


def test_every_manifest_passes_the_kubernetes_schemas(manifests):
    assert {kind for kind, _ in manifests} == {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding",
                                               "Role", "RoleBinding", "PriorityClass", "ConfigMap",
                                               "PersistentVolumeClaim", "Deployment", "Service",
                                               "CustomResourceDefinition"}
    for (kind, name), doc in manifests.items():
        try:
            kubernetes_validate.validate(doc, "1.37.0", strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{kind} {name}: {exc}")


def test_the_scheduler_runs_as_the_account_bound_to_its_role(manifests):
    deployment = manifests[("Deployment", "runai-scheduler")]
    pod = deployment["spec"]["template"]["spec"]
    binding = manifests[("ClusterRoleBinding", "runai-scheduler")]
    assert binding["roleRef"]["name"] in {name for kind, name in manifests if kind == "ClusterRole"}
    assert {"kind": "ServiceAccount", "name": pod["serviceAccountName"], "namespace": "runai-system"} in \
        binding["subjects"]
    assert deployment["metadata"]["namespace"] == "runai-system"
    # two replicas elect a leader with a Lease, in their own namespace, as the same account
    assert deployment["spec"]["replicas"] == 2
    assert "c.KubernetesCluster.leader_election = True" in \
        manifests[("ConfigMap", "runai-scheduler-config")]["data"]["jupyter_server_config.py"]
    leader = manifests[("RoleBinding", "runai-scheduler-leader")]
    assert leader["metadata"]["namespace"] == "runai-system" and leader["roleRef"]["kind"] == "Role"
    assert {"kind": "ServiceAccount", "name": pod["serviceAccountName"], "namespace": "runai-system"} in \
        leader["subjects"]
    # only the leader is ready, so the Service reaches it alone; both replicas see one store
    probe = pod["containers"][0]["readinessProbe"]["httpGet"]
    assert probe["path"] == "/runai/ready"
    state = next(v for v in pod["volumes"] if v["name"] == "state")
    claim = manifests[("PersistentVolumeClaim", state["persistentVolumeClaim"]["claimName"])]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    service = manifests[("Service", "runai-scheduler")]
    assert service["spec"]["selector"].items() <= pod_labels(deployment).items()


def pod_labels(deployment: dict) -> dict:
    return deployment["spec"]["template"]["metadata"]["labels"]


def test_no_secret_on_a_command_line_and_no_rights_to_read_secrets(manifests):
    container = manifests[("Deployment", "runai-scheduler")]["spec"]["template"]["spec"]["containers"][0]
    assert not any("token" in arg.lower() for arg in container.get("command", []) + container.get("args", []))
    token = next(e for e in container["env"] if e["name"] == "JUPYTER_TOKEN")
    assert "secretKeyRef" in token["valueFrom"]
    for rule in manifests[("ClusterRole", "runai-scheduler")]["rules"]:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"]
        if "secrets" in rule["resources"]:
            assert not {"get", "list", "watch"} & set(rule["verbs"])


def test_the_priority_classes_are_the_ones_our_pods_name(manifests):
    deployed = {name: doc["value"] for (kind, name), doc in manifests.items() if kind == "PriorityClass"}
    assert deployed == {cls.value: value for cls, value in PRIORITY_VALUES.items()}


def test_the_workloads_crd_is_installed_and_the_scheduler_may_do_what_it_needs_with_it(manifests):
    crd = manifests[("CustomResourceDefinition", "runaiworkloads.jupyter-runai.io")]
    assert "namespace" not in crd["metadata"]  # cluster-scoped; its objects live in the projects' namespaces
    assert crd["spec"]["scope"] == "Namespaced" and crd["spec"]["versions"][0]["subresources"] == {"status": {}}
    rules = manifests[("ClusterRole", "runai-scheduler")]["rules"]
    allowed = {(verb, resource) for rule in rules if crd["spec"]["group"] in rule["apiGroups"]
               for verb in rule["verbs"] for resource in rule["resources"]}
    assert allowed == {("get", "runaiworkloads"), ("list", "runaiworkloads"), ("watch", "runaiworkloads"),
                       ("create", "runaiworkloads"), ("patch", "runaiworkloads"), ("delete", "runaiworkloads"),
                       ("patch", "runaiworkloads/status")}  # least privilege: no update, no deletecollection
