"""Workload policies: the pure merge and checks (jupyter_runai.policies), then admission and
administration in the service (simulated cluster, SQLite on disk)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from jupyter_runai.errors import Forbidden, Invalid, NotFound
from jupyter_runai.identity import User
from jupyter_runai.models.policy import Policy
from jupyter_runai.policies import effective_view, given_fields, loosening, merge, violations, with_defaults

from test_service import ME, make_service, submit

pytestmark = pytest.mark.timeout(60)


def policy(scope="cluster", name=None, kind="training", **body) -> Policy:
    return Policy.model_validate({"scope": scope, "name": name, "kind": kind, **body})


# ------------------------------------------------------------------ pure functions


def test_a_narrower_default_wins_and_rules_only_tighten():
    effective = merge([
        policy(defaults={"resources.gpu": 1, "image": "base:1"},
               rules={"resources.gpu": {"max": 4, "step": 0.5}, "image": {"allowed": ["base:1", "base:2", "x:1"]}}),
        policy("department", "research", rules={"resources.gpu": {"max": 2, "min": 0.5},
                                                "image": {"allowed": ["base:1", "base:2"]}}),
        policy("project", "vision", defaults={"resources.gpu": 0.5},
               rules={"resources.gpu": {"max": 3}, "resources.memory": {"max": "16Gi", "required": True}}),
    ])
    view = effective_view(effective)
    # a value is refused naming the scope that leaves it out
    assert [i["message"] for i in violations({"image": "x:1"}, {"image"}, effective, "training")
            if i["field"] == "image"] == [
        "image: x:1 is not allowed by the department 'research' policy (for training workloads)"]
    # the cluster tightened after the department's policy was set: the cluster is named
    later = merge([policy(rules={"image": {"allowed": ["base:1"]}}),
                   policy("department", "research", rules={"image": {"allowed": ["base:1", "base:2"]}})])
    assert violations({"image": "base:2"}, {"image"}, later, "training")[0]["message"] == (
        "image: base:2 is not allowed by the cluster policy (for training workloads)")
    assert view["defaults"] == {"resources.gpu": 0.5, "image": "base:1"}
    assert view["default_from"] == {"resources.gpu": "project 'vision'", "image": "cluster"}
    gpu = view["rules"]["resources.gpu"]
    assert (gpu["min"], gpu["max"], gpu["step"]) == (0.5, 2, 0.5)  # the project's looser max 3 is not in force
    assert view["rules"]["image"]["allowed"] == ["base:1", "base:2"]
    assert view["rules"]["resources.memory"] == {"max": "16Gi", "required": True, "from": ["project 'vision'"]}


def test_defaults_fill_only_what_the_submission_left_out():
    effective = merge([policy(defaults={"resources.gpu": 1, "resources.cpu": "2", "image": "base:1"},
                              rules={"node_pools": {"allowed": ["a100", "default"]}})])
    given = {"name": "j", "resources": {"cpu": "500m"}}
    filled = with_defaults(given, effective)
    assert filled == {"name": "j", "resources": {"cpu": "500m", "gpu": 1}, "image": "base:1",
                      "node_pools": ["a100", "default"]}  # no default pools: the allowed ones, not "any"
    assert given == {"name": "j", "resources": {"cpu": "500m"}}  # the input is not changed
    # a GPU-memory request gets no GPU-count default (the two cannot be combined)
    assert "gpu" not in with_defaults({"name": "j", "resources": {"gpu_memory": "8Gi"}}, effective)["resources"]
    assert given_fields(given) == {"resources.cpu"}


def test_every_broken_rule_is_listed_with_what_is_allowed():
    effective = merge([policy(defaults={"image": "base:1"},
                              rules={"resources.gpu": {"max": 2, "step": 0.5}, "image": {"can_edit": False},
                                     "resources.memory": {"required": True},
                                     "node_pools": {"allowed": ["a100"]}, "priority_class": {"allowed": ["train"]}})])
    spec = {"resources": {"gpu": 2.75, "memory": "0"}, "image": "mine:2", "node_pools": ["h100", "a100"],
            "priority_class": "build"}
    items = violations(spec, {"resources.gpu", "image", "node_pools", "priority_class"}, effective, "training")
    by_field = {}
    for item in items:
        by_field.setdefault(item["field"], []).append(item)
    assert set(by_field) == {"resources.gpu", "image", "resources.memory", "node_pools", "priority_class"}
    assert [i["message"] for i in by_field["resources.gpu"]] == [
        "resources.gpu: 2.75 is above 2, the most the cluster policy allows (for training workloads)",
        "resources.gpu: 2.75 is not a multiple of 0.5, the step the cluster policy sets (for training workloads)"]
    assert by_field["resources.gpu"][0]["allowed"] == "at most 2, a multiple of 0.5"
    assert by_field["image"][0]["allowed"] == ["base:1"]
    assert "cannot be changed" in by_field["image"][0]["message"]
    assert by_field["resources.memory"][0]["message"].startswith("resources.memory: is required by the cluster")
    assert by_field["node_pools"][0]["message"].startswith("node_pools: h100 is not allowed")
    assert by_field["node_pools"][0]["allowed"] == ["a100"]
    assert by_field["priority_class"][0]["allowed"] == ["train"]
    # the same spec within the rules breaks none
    good = {"resources": {"gpu": 1.5, "memory": "1Gi"}, "image": "base:1", "node_pools": ["a100"],
            "priority_class": "train"}
    assert violations(good, {"resources.gpu"}, effective, "training") == []


def test_a_field_fixed_without_a_default_cannot_be_given():
    effective = merge([policy(rules={"priority_class": {"can_edit": False}})])
    assert violations({"priority_class": "train"}, set(), effective, "training") == []  # the kind's own default
    items = violations({"priority_class": "build"}, {"priority_class"}, effective, "training")
    assert [i["message"] for i in items] == [
        "priority_class: cannot be set: the cluster policy leaves it to the server (for training workloads)"]


def test_quantities_compare_as_numbers():
    effective = merge([policy(rules={"resources.memory": {"min": "512Mi", "max": "16Gi"},
                                     "resources.cpu": {"max": 2}})])
    ok = {"resources": {"memory": "1Gi", "cpu": "1500m"}}
    assert violations(ok, set(), effective, "training") == []
    bad = {"resources": {"memory": "17Gi", "cpu": "2500m"}}
    assert [i["field"] for i in violations(bad, set(), effective, "training")] == ["resources.memory", "resources.cpu"]


def test_a_narrower_scope_may_not_loosen_and_its_defaults_must_fit():
    wider = merge([policy(defaults={"image": "base:1"},
                          rules={"resources.gpu": {"min": 0.5, "max": 2, "step": 0.5}, "image": {"allowed": ["base:1"]},
                                 "resources.memory": {"required": True}, "preemptible": {"can_edit": False}})])
    looser = policy("project", "vision", defaults={"resources.gpu": 4},
                    rules={"resources.gpu": {"min": 0.25, "max": 3, "step": 0.25}, "image": {"allowed": ["x:1"]},
                           "resources.memory": {"required": False}, "preemptible": {"can_edit": True}})
    fields = [item["field"] for item in loosening(looser, wider)]
    assert fields == ["rules.resources.gpu.min", "rules.resources.gpu.max", "rules.resources.gpu.step",
                      "rules.image.allowed", "rules.resources.memory.required", "rules.preemptible.can_edit",
                      "defaults.image", "defaults.resources.gpu"]
    # the image default of the cluster breaks the project's narrower allowed list: named as a default problem
    items = loosening(looser, wider)
    assert items[-1]["message"] == ("defaults.resources.gpu: the default 4 is above 2, the most the cluster policy "
                                    "allows")
    assert items[-2]["message"] == "defaults.image: the default base:1 is not allowed by the project 'vision' policy"
    tighter = policy("project", "vision", defaults={"resources.gpu": 1},
                     rules={"resources.gpu": {"min": 1, "max": 1, "step": 1}, "resources.memory": {"required": True}})
    assert loosening(tighter, wider) == []


@pytest.mark.parametrize("body, field", [
    ({"scope": "cluster", "kind": "training", "defaults": {"gpus": 1}}, "defaults.gpus"),
    ({"scope": "project", "kind": "training"}, "name"),
    ({"scope": "cluster", "kind": "training", "defaults": {"workers": 2}}, "defaults.workers"),
    ({"scope": "cluster", "kind": "training", "rules": {"image": {"max": 3}}}, "rules.image.max"),
    ({"scope": "cluster", "kind": "training", "rules": {"resources.gpu": {"min": 2, "max": 1}}}, "rules.resources.gpu.max"),
    ({"scope": "cluster", "kind": "training", "rules": {"resources.memory": {"max": "lots"}}},
     "rules.resources.memory.max"),
    ({"scope": "cluster", "kind": "training", "defaults": {"priority_class": "urgent"}}, "defaults.priority_class"),
    ({"scope": "galaxy", "kind": "training"}, "scope"),
    ({"scope": "cluster", "kind": "training", "rules": {"resources.gpu": {"step": 1e-320}}}, "rules.resources.gpu.step"),
    ({"scope": "cluster", "kind": "training", "rules": {"workers": {"step": 0.5}}}, "rules.workers.step"),
])
def test_a_malformed_policy_is_refused_naming_the_field(body, field):
    from jupyter_runai.models import format_validation_error

    with pytest.raises(ValidationError) as refused:
        Policy.model_validate(body)
    assert field in [item["field"] for item in format_validation_error(refused.value)]


# ------------------------------------------------------------------ in the service


@pytest.fixture
def service(tmp_path):
    from jupyter_runai.clusters.simulated import SimulatedCluster, simulated_nodes

    svc = make_service(tmp_path, SimulatedCluster(simulated_nodes(1, gpus=4)), gpus=4)
    yield svc
    svc.store.close()


def test_admission_fills_the_defaults_then_refuses_listing_every_rule(service):
    service.set_policy({"scope": "cluster", "kind": "training", "defaults": {"resources.gpu": 1, "image": "base:1"},
                        "rules": {"resources.gpu": {"max": 2}, "image": {"allowed": ["base:1", "base:2"]}}}, ME)
    made = submit(service, "plain")
    assert made.spec.resources.gpu == 1 and made.spec.image == "base:1"
    assert submit(service, "fraction", resources={"gpu": 0.5}).spec.resources.gpu == 0.5
    with pytest.raises(Invalid) as refused:
        submit(service, "big", resources={"gpu": 3}, image="mine:1")
    assert refused.value.status == 400
    assert [e["field"] for e in refused.value.errors] == ["resources.gpu", "image"]
    assert refused.value.body()["error"]["allowed"] == "at most 2"
    assert refused.value.errors[1]["allowed"] == ["base:1", "base:2"]
    assert [w.spec.name for w in service.list()] == ["plain", "fraction"]  # the refused one left nothing
    # another kind is not governed by the training policy
    assert submit(service, "space", kind="workspace", resources={"gpu": 3}).spec.image is None


def test_policies_are_set_per_scope_audited_and_deleted(service):
    service.create_department({"name": "research"}, ME)
    service.create_project({"name": "vision", "department": "research"}, ME)
    service.set_policy({"scope": "cluster", "kind": "training", "rules": {"resources.gpu": {"max": 2}}}, ME)
    with pytest.raises(Invalid) as refused:
        service.set_policy({"scope": "department", "name": "research", "kind": "training",
                            "rules": {"resources.gpu": {"max": 3}}}, ME)
    assert refused.value.field == "rules.resources.gpu.max" and refused.value.allowed == "<= 2"
    assert "may only tighten" in refused.value.message
    service.set_policy({"scope": "department", "name": "research", "kind": "training",
                        "defaults": {"resources.gpu": 0.5}, "rules": {"resources.gpu": {"max": 1}}}, ME)
    with pytest.raises(Invalid):  # the project may not loosen its department either
        service.set_policy({"scope": "project", "name": "vision", "kind": "training",
                            "rules": {"resources.gpu": {"max": 2}}}, ME)
    effective = service.effective_policy("vision", "training")
    assert effective["policies"] == ["cluster", "department 'research'"]
    assert effective["defaults"] == {"resources.gpu": 0.5} and effective["rules"]["resources.gpu"]["max"] == 1
    assert service.effective_policy("default", "training")["rules"]["resources.gpu"]["max"] == 2
    with pytest.raises(NotFound):
        service.effective_policy("nope", "training")
    with pytest.raises(Invalid) as bad_kind:
        service.effective_policy("vision", "batch")
    assert bad_kind.value.field == "kind"

    for scope, name in (("department", None), ("cluster", "research")):
        with pytest.raises(Invalid) as unnamed:
            service.delete_policy(scope, name, "training", ME)
        assert unnamed.value.field == "name"
    with pytest.raises(Invalid) as bad_scope:
        service.delete_policy("galaxy", None, "training", ME)
    assert bad_scope.value.field == "scope"
    service.delete_policy("department", "research", "training", ME)
    assert service.effective_policy("vision", "training")["defaults"] == {}
    entries = service.audit(ME, kind="policy")
    assert [(e["action"], e["name"]) for e in entries] == [
        ("create", "cluster/training"), ("create", "department/research/training"),
        ("delete", "department/research/training")]
    assert entries[1]["after"]["defaults"] == {"resources.gpu": 0.5} and entries[2]["after"] is None

    # a project's policies go with it (and a project made again with its name starts without them)
    service.set_policy({"scope": "project", "name": "vision", "kind": "workspace", "rules": {"image": {"required": True}}}, ME)
    assert service.effective_policy("vision", "workspace")["rules"]["image"]["required"] is True
    service.set_policy({"scope": "department", "name": "research", "kind": "workspace",
                        "rules": {"image": {"required": True}}}, ME)
    service.delete_project("vision", ME)
    service.create_project({"name": "vision", "department": "research"}, ME)
    assert service.effective_policy("vision", "workspace")["rules"] == {
        "image": {"required": True, "from": ["department 'research'"]}}
    service.delete_project("vision", ME)
    service.delete_department("research", ME)
    assert [p.scope.value for p in service.policy_list()] == ["cluster"]
    # each policy that went with its project or department has its own audit entry, before the scope's own
    entries = service.audit(ME)
    gone = [(e["kind"], e["action"], e["name"]) for e in entries[-6:]]
    assert gone == [("policy", "delete", "project/vision/workspace"), ("project", "delete", "vision"),
                    ("project", "create", "vision"), ("project", "delete", "vision"),
                    ("policy", "delete", "department/research/workspace"), ("department", "delete", "research")], gone
    assert entries[-6]["before"]["rules"]["image"]["required"] is True and entries[-6]["after"] is None


def test_resume_admits_the_workload_again_under_the_policies_in_force_now(service):
    """A policy tightened after a workload ran applies when it is resumed: refused with every rule it now
    breaks (nothing changes), resumed as soon as the policy allows it again."""
    service.set_policy({"scope": "cluster", "kind": "training", "defaults": {"image": "base:1"}}, ME)
    submit(service, "old", resources={"gpu": 3})
    service.run_cycle()
    service.stop("default", "old", ME)
    service.run_cycle()
    assert service.get("default", "old").status.phase.value == "Stopped"
    service.set_policy({"scope": "cluster", "kind": "training",
                        "defaults": {"image": "base:2"}, "rules": {"resources.gpu": {"max": 2},
                                                                   "image": {"can_edit": False}}}, ME)
    service.update_project("default", {"rules": {"training": {"node_pools": ["a100"]}}}, ME)
    with pytest.raises(Invalid) as refused:
        service.resume("default", "old", ME)
    assert [e["field"] for e in refused.value.errors] == ["image", "resources.gpu", "node_pools"]
    assert refused.value.allowed == ["base:2"] and refused.value.errors[1]["allowed"] == "at most 2"
    assert "runai policy effective training -p default" in refused.value.message
    assert service.get("default", "old").status.phase.value == "Stopped"  # refused: nothing happened
    assert [e.type for e in service.store.events(workload="old")].count("Resumed") == 0
    service.update_project("default", {"rules": {"training": {"node_pools": None}}}, ME)
    service.set_policy({"scope": "cluster", "kind": "training", "defaults": {"image": "base:1"},
                        "rules": {"resources.gpu": {"max": 3}}}, ME)
    assert service.resume("default", "old", ME).status.phase.value == "Pending"


@pytest.mark.parametrize("call", [
    lambda s, u: s.set_policy({"scope": "cluster", "kind": "training"}, u),
    lambda s, u: s.delete_policy("cluster", None, "training", u),
])
def test_only_an_admin_may_set_policies(service, call):
    with pytest.raises(Forbidden):
        call(service, User("bob", admin=False))
    assert service.store.policies() == [] and service.store.audit() == []


def test_the_submit_form_takes_the_policy_defaults_and_narrower_bounds():
    from jupyter_runai.clusters.simulated import simulated_nodes
    from jupyter_runai.server.form import form_info, narrow_form

    form = form_info(simulated_nodes(1, gpus=4, memory=64 * 2**30), [], ["vision"])
    effective = {"project": "vision", "kind": "training",
                 **effective_view(merge([policy(defaults={"resources.gpu": 0.5, "resources.cpu": "500m", "image": "b:1"},
                                                rules={"resources.gpu": {"max": 2, "step": 0.5},
                                                       "resources.memory": {"max": "8Gi"}, "resources.cpu": {"max": 512},
                                                       "node_pools": {"allowed": ["a100"]},
                                                       "priority_class": {"allowed": ["train"]}})]))}
    narrowed = narrow_form(form, effective)
    assert narrowed["defaults"] | {"commands": None} == form["defaults"] | {
        "commands": None, "gpu_mode": "fraction", "fraction": 0.5, "cpu": "500m", "image": "b:1", "project": "vision"}
    assert narrowed["bounds"]["gpu"]["max"] == 2 and form["bounds"]["gpu"]["max"] == 4  # the form is not changed
    assert narrowed["bounds"]["gpu"]["by"] == "the cluster policy" and "by" not in narrowed["bounds"]["cpu"]
    assert narrowed["bounds"]["fraction"]["steps"] == [0.5]  # 0.25 and 0.75 are not multiples of the step
    assert narrowed["bounds"]["memory"] == {"max": "8Gi", "by": "the cluster policy"}
    assert narrowed["bounds"]["cpu"]["max"] == form["bounds"]["cpu"]["max"]  # more than a node has: the node's bound
    assert narrowed["node_pools"] == [] and narrowed["priority_classes"] == ["train"]
    assert narrow_form(form, {"defaults": {}, "rules": {}})["bounds"] == form["bounds"]


def test_policies_survive_a_restart(tmp_path):
    from jupyter_runai.clusters.simulated import SimulatedCluster, simulated_nodes

    first = make_service(tmp_path, SimulatedCluster(simulated_nodes(1, gpus=4)), gpus=4)
    first.set_policy({"scope": "cluster", "kind": "training", "defaults": {"image": "base:1"},
                      "rules": {"resources.gpu": {"max": 1}}}, ME)
    first.store.close()
    again = make_service(tmp_path, SimulatedCluster(simulated_nodes(1, gpus=4)), gpus=4)
    try:
        assert submit(again, "after").spec.image == "base:1"
        with pytest.raises(Invalid):
            submit(again, "big", resources={"gpu": 2})
        assert [e["action"] for e in again.audit(ME, kind="policy")] == ["create"]
    finally:
        again.store.close()


def test_the_cli_options_make_the_policy_and_update_changes_only_what_it_names():
    from jupyter_runai import cli
    from jupyter_runai.cli_admin import AdminUsage
    from jupyter_runai.cli_policy import policy_body, updated_policy

    def parse(*argv):
        return cli.build_parser(list(argv)).parse_args(list(argv))

    ns = parse("policy", "set", "project", "vision", "--kind", "training", "--default", "resources.gpu=0.5",
               "--default", "node_pools=a100,default", "--default", "preemptible=false",
               "--rule", "image.allowed=base:1,base:2", "--rule", "resources.memory.max=16Gi",
               "--rule", "resources.gpu.step=0.5")
    body = policy_body(ns)
    assert body == {"scope": "project", "name": "vision", "kind": "training",
                    "defaults": {"resources.gpu": 0.5, "node_pools": ["a100", "default"], "preemptible": False},
                    "rules": {"image": {"allowed": ["base:1", "base:2"]}, "resources.memory": {"max": "16Gi"},
                              "resources.gpu": {"step": 0.5}}}
    Policy.model_validate(body)  # what the server takes
    ns = parse("policy", "update", "project", "vision", "--kind", "training", "--rule", "resources.gpu.max=2",
               "--remove", "resources.gpu.step", "--remove", "image")
    changed = updated_policy(body, ns)
    assert changed["rules"] == {"resources.memory": {"max": "16Gi"}, "resources.gpu": {"max": 2}}
    assert changed["defaults"] == body["defaults"]
    for argv in (("policy", "set", "cluster", "x", "--kind", "training"),  # the cluster has no name
                 ("policy", "set", "cluster", "--kind", "training", "--rule", "resources.gpu.most=2"),
                 ("policy", "set", "cluster", "--kind", "training", "--default", "gpus=2")):
        with pytest.raises(AdminUsage):
            policy_body(parse(*argv))
