"""Workload policies through the real server (pytest-jupyter, local cluster with virtual GPUs):
set and deleted over REST (audited), the effective policy, and a submission refused with every
rule it breaks; and `runai policy` in process against the same server."""

from __future__ import annotations

import pytest

from api_helpers import Api, server_config
from jupyter_runai.service import User

pytest_plugins = ["pytest_jupyter.jupyter_server"]
pytestmark = pytest.mark.timeout(120)

QUEUES = """\
departments:
  - {name: research, deserved: {gpu: 2}}
projects:
  - {name: vision, department: research, deserved: {gpu: 2}}
"""


@pytest.fixture
def jp_server_config(tmp_path):
    queues = tmp_path / "queues.yaml"
    queues.write_text(QUEUES)
    return server_config(tmp_path, queues_file=str(queues))


async def put(api: Api, body) -> tuple[int, dict]:
    return await api.call("PUT", "policies", body=body)


async def test_policies_over_rest_refuse_what_breaks_them_and_are_audited(api):
    code, made = await put(api, {"scope": "cluster", "kind": "training",
                                 "defaults": {"resources.gpu": 1, "resources.cpu": "500m"},
                                 "rules": {"resources.gpu": {"max": 2, "step": 0.5}}})
    assert code == 200, made
    # looser than the cluster: refused, naming the rule and what the cluster allows; nothing stored
    code, refused = await put(api, {"scope": "project", "name": "vision", "kind": "training",
                                    "rules": {"resources.gpu": {"max": 4, "step": 0.25}}})
    assert code == 400
    assert [e["field"] for e in refused["error"]["errors"]] == ["rules.resources.gpu.max", "rules.resources.gpu.step"]
    assert refused["error"]["allowed"] == "<= 2"
    code, made = await put(api, {"scope": "project", "name": "vision", "kind": "training",
                                 "defaults": {"image": "base:1"},
                                 "rules": {"resources.gpu": {"max": 1}, "image": {"allowed": ["base:1", "base:2"]}}})
    assert code == 200, made

    code, effective = await api.get("policies", "effective", params={"project": "vision", "kind": "training"})
    assert code == 200, effective
    assert effective["policies"] == ["cluster", "project 'vision'"]
    assert effective["defaults"] == {"resources.gpu": 1, "resources.cpu": "500m", "image": "base:1"}
    assert effective["rules"]["resources.gpu"] == {"max": 1, "step": 0.5, "from": ["cluster", "project 'vision'"]}
    # the submit forms' defaults and bounds, narrowed by it
    assert effective["form"]["bounds"]["gpu"]["max"] == 1 and effective["form"]["bounds"]["fraction"]["steps"] == [0.5]
    assert effective["form"]["defaults"]["image"] == "base:1" and effective["form"]["defaults"]["cpu"] == "500m"
    code, missing = await api.get("policies", "effective", params={"project": "vision"})
    assert code == 400 and missing["error"]["field"] == "kind"

    # a submission that leaves fields out gets the defaults
    command = "python -c pass"
    made = await api.submit(name="plain", project="vision", command=command)
    assert made["spec"]["resources"]["gpu"] == 1 and made["spec"]["resources"]["cpu"] == "500m"
    assert made["spec"]["image"] == "base:1"
    # one that breaks rules is refused with every rule it breaks, and leaves nothing behind
    code, refused = await api.post("workloads", body={"name": "big", "project": "vision", "command": command,
                                                      "resources": {"gpu": 2}, "image": "mine:1"})
    assert code == 400
    errors = refused["error"]["errors"]
    assert [e["field"] for e in errors] == ["resources.gpu", "image"]
    assert errors[0]["message"] == ("resources.gpu: 2 is above 1, the most the project 'vision' policy allows "
                                    "(for training workloads) (the policy in force: runai policy effective training "
                                    "-p vision)")
    assert errors[0]["allowed"] == "at most 1, a multiple of 0.5" and errors[1]["allowed"] == ["base:1", "base:2"]
    code, listed = await api.get("workloads", params={"project": "vision"})
    assert [w["spec"]["name"] for w in listed["workloads"]] == ["plain"]

    code, listed = await api.get("policies")
    assert code == 200 and [(p["scope"], p["name"]) for p in listed["policies"]] == [("cluster", None),
                                                                                     ("project", "vision")]
    code, _ = await api.delete("policies", params={"scope": "project", "name": "vision", "kind": "training"})
    assert code == 204
    code, gone = await api.delete("policies", params={"scope": "project", "name": "vision", "kind": "training"})
    assert code == 404 and gone["error"]["allowed"] == ["cluster/training"]
    code, log = await api.get("audit", params={"kind": "policy"})
    assert [(e["action"], e["name"]) for e in log["entries"]] == [
        ("create", "cluster/training"), ("create", "project/vision/training"), ("delete", "project/vision/training")]


async def test_only_an_admin_may_set_or_delete_a_policy_and_anyone_may_read(service):
    bob = User("bob", admin=False)
    from jupyter_runai.errors import Forbidden

    with pytest.raises(Forbidden):
        service.set_policy({"scope": "cluster", "kind": "training"}, bob)
    assert service.policy_list() == [] and service.effective_policy("vision", "training")["rules"] == {}


def test_the_openapi_document_describes_policies():
    jsonschema = pytest.importorskip("jsonschema")
    from jupyter_runai.server.routes import openapi_document

    document = openapi_document()
    assert set(document["paths"]["/runai/api/v1/policies"]) == {"get", "put", "delete"}
    assert "get" in document["paths"]["/runai/api/v1/policies/effective"]
    validator = jsonschema.Draft202012Validator({"$ref": "#/components/schemas/Policy",
                                                 "components": document["components"]})
    assert validator.is_valid({"scope": "project", "name": "vision", "kind": "training",
                               "rules": {"resources.gpu": {"max": 2}}})
    assert not validator.is_valid({"scope": "project", "kind": "training", "rule": {}})


async def test_resume_over_rest_is_refused_by_a_policy_tightened_since(api):
    await api.submit(name="wide", project="vision", command="true", resources={"gpu": 2})
    await api.wait_phase("wide", "Succeeded", project="vision")
    code, made = await put(api, {"scope": "project", "name": "vision", "kind": "training",
                                 "rules": {"resources.gpu": {"max": 1}}})
    assert code == 200, made
    code, refused = await api.post("workloads", "vision", "wide", "resume")
    assert code == 400, refused
    assert refused["error"]["field"] == "resources.gpu" and refused["error"]["allowed"] == "at most 1"
    assert "runai policy effective training -p vision" in refused["error"]["message"]
    assert (await api.workload("wide", "vision"))["status"]["phase"] == "Succeeded"  # nothing happened


async def test_the_inherited_policy_and_the_field_catalog_feed_the_admin_form(api):
    """What a scope may only tighten (the wider scopes' effective policy, with whose each rule is), and
    the fields a policy governs with their sorts, kinds and choices: what the Admin view's form shows."""
    code, made = await put(api, {"scope": "cluster", "kind": "training", "defaults": {"resources.gpu": 1},
                                 "rules": {"resources.gpu": {"max": 4}}})
    assert code == 200, made
    code, made = await put(api, {"scope": "department", "name": "research", "kind": "training",
                                 "rules": {"resources.gpu": {"max": 2}, "image": {"allowed": ["a:1", "b:1"]}}})
    assert code == 200, made
    code, wider = await api.get("policies", "inherited", params={"scope": "project", "name": "vision",
                                                                 "kind": "training"})
    assert code == 200, wider
    assert wider["policies"] == ["cluster", "department 'research'"] and wider["defaults"] == {"resources.gpu": 1}
    assert wider["rules"]["resources.gpu"] == {"max": 2, "from": ["department 'research'"]}  # the tighter max
    assert wider["rules"]["image"]["allowed"] == ["a:1", "b:1"]
    code, wider = await api.get("policies", "inherited", params={"scope": "department", "name": "research",
                                                                 "kind": "training"})
    assert code == 200 and wider["policies"] == ["cluster"] and wider["rules"]["resources.gpu"]["max"] == 4
    code, wider = await api.get("policies", "inherited", params={"scope": "cluster", "kind": "training"})
    assert code == 200 and wider["policies"] == [] and wider["rules"] == {}
    for params, field in (({"scope": "project", "kind": "training"}, "name"),
                          ({"scope": "project", "name": "nope", "kind": "training"}, None),
                          ({"scope": "galaxy", "kind": "training"}, "scope"),
                          ({"scope": "cluster", "kind": "batch"}, "kind"), ({"kind": "training"}, "scope")):
        code, refused = await api.get("policies", "inherited", params=params)
        assert code in (400, 404) and (field is None or refused["error"]["field"] == field), (params, refused)
    code, listed = await api.get("policies")
    fields = {f["field"]: f for f in listed["fields"]}
    assert fields["resources.gpu"]["sort"] == "number" and "max" in fields["resources.gpu"]["rules"]
    assert fields["workers"]["kinds"] == ["distributed"] and fields["image"]["kinds"] is None
    assert "build" in fields["priority_class"]["choices"] and "max" not in fields["preemptible"]["rules"]
    assert "allowed" not in fields["preemptible"]["rules"]


async def test_only_the_admins_of_a_scope_read_what_it_inherits(service):
    from jupyter_runai.errors import Forbidden

    with pytest.raises(Forbidden):
        service.inherited_policy("project", "vision", "training", User("bob", admin=False))
    assert service.inherited_policy("project", "vision", "training", User("ada", admin=True))["rules"] == {}
