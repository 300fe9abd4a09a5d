"""The RBAC decision on its own (jupyter_runai.access): every role, every action, in scope and out,
and role bindings as models."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from jupyter_runai.access import (
    ACTIONS, ADMINISTER_CLUSTER, ADMINISTER_PROJECTS, EDIT_DATA, GRANT, MANAGE, MANAGE_ANY, MANAGE_OWN, SUBMIT,
    SUBMIT_INFERENCE, VIEW, VIEW_NODES, decide, grants_of,
)
from jupyter_runai.identity import User
from jupyter_runai.models import error_body
from jupyter_runai.models.access import RoleBinding

pytestmark = pytest.mark.timeout(30)

#: project -> department
DEPARTMENTS = {"cats": "vision", "dogs": "vision", "words": "language"}

# each role bound to the user "u" on: its narrowest scope that covers project cats
BINDINGS = {
    "admin": {"role": "admin"},
    "department-admin": {"role": "department-admin", "department": "vision"},
    "ml-engineer": {"role": "ml-engineer", "project": "cats"},
    "researcher": {"role": "researcher", "project": "cats"},
    "viewer": {"role": "viewer", "project": "cats"},
}

# what each role may do on project cats (in scope); out of scope (project words) only view-nodes
# stays, and administer-cluster needs the cluster scope
ALLOWED = {
    "admin": set(ACTIONS),
    "department-admin": {VIEW, SUBMIT, SUBMIT_INFERENCE, MANAGE_OWN, MANAGE_ANY, EDIT_DATA, VIEW_NODES,
                         ADMINISTER_PROJECTS, GRANT},
    "ml-engineer": {VIEW, SUBMIT_INFERENCE, MANAGE_OWN, EDIT_DATA, VIEW_NODES},
    "researcher": {VIEW, SUBMIT, MANAGE_OWN, EDIT_DATA},
    "viewer": {VIEW, VIEW_NODES},
}


def grants(role: str, user: User = User("u")):
    return grants_of(user, [RoleBinding.model_validate({**BINDINGS[role], "user": "u"})])


@pytest.mark.parametrize("role", list(BINDINGS))
@pytest.mark.parametrize("action", ACTIONS)
def test_each_role_allows_its_actions_in_scope_and_only_nodes_outside(role, action):
    held = grants(role)
    in_scope = decide(held, action, project="cats", department_of=DEPARTMENTS)
    expected = action in ALLOWED[role] and (action != ADMINISTER_CLUSTER or role == "admin")
    assert (in_scope is None) == expected, (role, action, in_scope)
    out_of_scope = decide(held, action, project="words", department_of=DEPARTMENTS)
    assert (out_of_scope is None) == (role == "admin" or (action == VIEW_NODES and action in ALLOWED[role]))
    if out_of_scope is not None:  # the denial names the caller, and a role on a scope that allows it
        assert out_of_scope.message.startswith("u may not ")
        assert out_of_scope.allowed and out_of_scope.allowed[-1] == "admin on the cluster"


def test_a_department_role_covers_the_departments_projects_only():
    held = grants_of(User("u"), [RoleBinding(role="researcher", user="u", department="vision")])
    assert decide(held, SUBMIT, project="dogs", department_of=DEPARTMENTS) is None
    assert decide(held, SUBMIT, project="cats", department_of=DEPARTMENTS) is None
    assert decide(held, SUBMIT, project="words", department_of=DEPARTMENTS) is not None
    # a project missing from the mapping is in the department "default"
    assert decide(held, VIEW, project="stray", department_of=DEPARTMENTS) is not None


def test_administer_cluster_is_held_on_the_cluster_only():
    dept = grants("department-admin")
    denial = decide(dept, ADMINISTER_CLUSTER)
    assert denial is not None and denial.allowed == ["admin on the cluster"]
    assert decide(dept, ADMINISTER_PROJECTS, department="vision") is None
    assert decide(dept, ADMINISTER_PROJECTS, department="language") is not None
    assert decide(grants("admin"), ADMINISTER_CLUSTER) is None


def test_groups_and_the_admin_flag_grant_roles():
    binding = RoleBinding(role="researcher", group="vision-team", project="cats")
    member = grants_of(User("bob", groups={"vision-team"}), [binding])
    stranger = grants_of(User("eve", groups={"other"}), [binding])
    assert decide(member, SUBMIT, project="cats", department_of=DEPARTMENTS) is None
    assert decide(stranger, VIEW, project="cats", department_of=DEPARTMENTS) is not None
    # a user named like the group is not its member
    assert decide(grants_of(User("vision-team"), [binding]), VIEW, project="cats") is not None
    assert decide(grants_of(User("root", admin=True), []), ADMINISTER_CLUSTER) is None
    assert member.roles() == [{"role": "researcher", "scope": "project", "name": "cats"}]


@pytest.mark.parametrize("role, owner, allowed", [
    ("researcher", "u", True),     # its own workload
    ("researcher", "x", False),    # another's
    ("ml-engineer", "u", True),
    ("ml-engineer", "x", False),
    ("viewer", "u", False),        # read only, even its own
    ("department-admin", "x", True),
    ("admin", "x", True),
])
def test_manage_a_workload_needs_ownership_or_manage_any(role, owner, allowed):
    denial = decide(grants(role), MANAGE, project="cats", department_of=DEPARTMENTS, owner=owner)
    assert (denial is None) == allowed


def test_a_denial_names_the_roles_on_scopes_that_would_allow_it():
    denial = decide(grants("viewer"), SUBMIT, project="cats", department_of=DEPARTMENTS)
    assert denial.message == ("u may not submit workloads (other than inference) to project cats; that takes "
                              "researcher on project cats, department-admin on department vision or admin on "
                              "the cluster")
    assert denial.allowed == ["researcher on project cats", "department-admin on department vision",
                              "admin on the cluster"]
    denial = decide(grants("researcher"), MANAGE, project="cats", department_of=DEPARTMENTS, owner="x")
    assert denial.allowed == ["department-admin on department vision", "admin on the cluster"]
    denial = decide(grants("researcher"), VIEW_NODES)
    assert denial.allowed[0] == "viewer on any project or department"


@pytest.mark.parametrize("body, field", [
    ({"role": "researcher", "project": "cats"}, "user"),                          # no subject
    ({"role": "researcher", "user": "a", "group": "g", "project": "cats"}, "user"),  # two subjects
    ({"role": "researcher", "user": "a", "department": "d", "project": "cats"}, "project"),
    ({"role": "admin", "user": "a", "project": "cats"}, "role"),                   # admin is cluster-wide
    ({"role": "department-admin", "user": "a", "project": "cats"}, "department"),
    ({"role": "owner", "user": "a"}, "role"),
    ({"role": "viewer", "user": "a b"}, "user"),
    ({"role": "viewer", "user": "a" * 257}, "user"),
    ({"role": "viewer", "user": "a", "project": "Not_A_Label"}, "project"),
    ({"role": "viewer", "user": "a", "scope": "cluster"}, "scope"),
])
def test_a_bad_binding_names_the_field(body, field):
    with pytest.raises(ValidationError) as caught:
        RoleBinding.model_validate(body)
    fields = [item["field"] for item in error_body(caught.value)["error"]["errors"]]
    assert field in fields, fields


def test_a_binding_reads_as_written():
    binding = RoleBinding.model_validate({"role": "viewer", "group": "all"})
    assert binding.scope == ("cluster", None) and binding.subject == ("group", "all")
    assert binding.describe() == "viewer for group all on the cluster"
