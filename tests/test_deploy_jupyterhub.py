"""deploy/jupyterhub/: the Zero to JupyterHub values and the Component that runs the scheduler as
the hub's service. No chart can be fetched here, so the values are parsed and checked for the
keys z2jh reads; the Component is rendered with `kubectl kustomize` from a kustomization outside
deploy/ (as docs/kubernetes.md tells an admin to), validated against the Kubernetes schemas, and
the two are checked to agree: the URL the hub proxies is the scheduler's Service, the prefix and
service name match, the environment is one `runai serve` accepts."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from k8s_schemas import kubectl_or_skip, kubernetes_validate_or_skip

from jupyter_runai.serve import hub_settings

kubernetes_validate = kubernetes_validate_or_skip()
KUBECTL = kubectl_or_skip()
DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
HUB = DEPLOY / "jupyterhub"

pytestmark = pytest.mark.timeout(60)

# the z2jh (chart 4.x) keys these values use, from the chart's values schema: a misspelt key
# would be ignored by the chart without a word, so it is caught here
Z2JH_KEYS = {
    "hub": {"services", "loadRoles", "config", "networkPolicy"},
    "hub.services.*": {"url", "oauth_no_confirm", "display", "apiToken", "admin", "name", "oauth_redirect_uri"},
    "hub.loadRoles.*": {"scopes", "users", "services", "groups", "description", "name"},
    "hub.networkPolicy": {"enabled", "ingress", "egress", "egressAllowRules", "interNamespaceAccessLabels",
                          "allowedIngressPorts"},
    "proxy": {"chp"},
    "proxy.chp": {"networkPolicy"},
    "proxy.chp.networkPolicy": {"enabled", "ingress", "egress", "egressAllowRules", "interNamespaceAccessLabels",
                                "allowedIngressPorts"},
    "singleuser": {"extraEnv", "networkPolicy"},
    "singleuser.networkPolicy": {"enabled", "ingress", "egress", "egressAllowRules", "interNamespaceAccessLabels",
                                 "allowedIngressPorts"},
}


@pytest.fixture(scope="module")
def values() -> dict:
    return yaml.safe_load((HUB / "values.yaml").read_text())


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[tuple[str, str], dict]:
    """deploy/ with the Component, from a kustomization of one's own (kustomize takes only relative paths)."""
    mine = tmp_path_factory.mktemp("my-runai")
    (mine / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [os.path.relpath(DEPLOY, mine)], "components": [os.path.relpath(HUB / "scheduler", mine)]}))
    out = subprocess.run([KUBECTL, "kustomize", str(mine)], capture_output=True, text=True, timeout=30, check=True)
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc in yaml.safe_load_all(out.stdout) if doc}


def test_the_values_use_only_keys_z2jh_reads(values):
    def check(path: str, node: dict) -> None:
        allowed = Z2JH_KEYS.get(path)
        if allowed is not None:
            assert set(node) <= allowed, f"{path}: {set(node) - allowed} are not z2jh values"
        for key, value in node.items():
            if isinstance(value, dict):
                wildcard = f"{path}.*" if f"{path}.*" in Z2JH_KEYS else None
                check(wildcard if wildcard else f"{path}.{key}" if path else key, value)
    assert set(values) <= {"hub", "proxy", "singleuser"}
    check("", values)


def test_users_may_reach_the_service_and_their_servers_are_its_clients(values):
    hub = values["hub"]
    (name,) = hub["services"]
    assert {"self", f"access:services!service={name}"} <= set(hub["loadRoles"]["user"]["scopes"])
    assert set(hub["config"]["KubeSpawner"]["server_token_scopes"]) == {
        "users:activity!user", "access:servers!server", f"access:services!service={name}"}
    env = values["singleuser"]["extraEnv"]
    assert env["RUNAI_SERVICE_NAME"] == name
    assert env["RUNAI_SERVICE_URL"] == hub["services"][name]["url"] + f"/services/{name}/"
    assert "apiToken" not in hub["services"][name]  # a token never sits in a committed file


def test_the_component_runs_runai_serve_where_the_hub_proxies(values, rendered):
    for (kind, name), doc in rendered.items():
        try:
            kubernetes_validate.validate(doc, "1.37.0", strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{kind} {name}: {exc}")
    (name,) = values["hub"]["services"]
    deployment = rendered[("Deployment", "runai-scheduler")]
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert container["command"][:2] == ["runai", "serve"]
    env = {e["name"]: e for e in container["env"]}
    assert "JUPYTER_TOKEN" not in env and "secretKeyRef" in env["JUPYTERHUB_API_TOKEN"]["valueFrom"]
    assert env["JUPYTERHUB_SERVICE_NAME"]["value"] == name
    assert env["JUPYTERHUB_CLIENT_ID"]["value"] == f"service-{name}"
    settings = hub_settings({k: e.get("value", "from-a-secret") for k, e in env.items()})
    assert settings["base_url"] == f"/services/{name}/"
    assert container["readinessProbe"]["httpGet"]["path"] == f"{settings['base_url']}runai/ready"
    assert {"name": "http", "containerPort": settings["port"]} in container["ports"]

    # the hub proxies the scheduler's Service, at its port
    url = urlparse(values["hub"]["services"][name]["url"])
    service = rendered[("Service", "runai-scheduler")]
    assert url.hostname == f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc.cluster.local"
    assert url.port == service["spec"]["ports"][0]["port"]

    # z2jh's network policies let the scheduler reach the hub, and the proxy and users' servers reach it
    labels = pod["metadata"]["labels"]
    namespace = deployment["metadata"]["namespace"]
    rules = [(values["hub"]["networkPolicy"]["ingress"], "from", 8081),
             (values["proxy"]["chp"]["networkPolicy"]["egress"], "to", settings["port"]),
             (values["singleuser"]["networkPolicy"]["egress"], "to", settings["port"])]
    for (rule,), side, port in rules:
        (peer,) = rule[side]
        assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": namespace}
        assert peer["podSelector"]["matchLabels"].items() <= labels.items()
        assert rule["ports"] == [{"port": port}]
