"""Administration at runtime through the real server (pytest-jupyter, local cluster with
virtual GPUs): departments, projects and node pools created, changed and deleted while the
scheduler runs; the audit log; who may do it."""

from __future__ import annotations

import pytest

from api_helpers import Api, server_config, wait_for
from jupyter_runai.errors import Forbidden
from jupyter_runai.service import User

pytest_plugins = ["pytest_jupyter.jupyter_server"]
pytestmark = pytest.mark.timeout(120)

QUEUES = """\
departments:
  - {name: research, deserved: {gpu: 2}}
projects:
  - {name: alpha, department: research, deserved: {gpu: 2}}
  - {name: beta, department: research, deserved: {gpu: 0}}
"""


@pytest.fixture
def jp_server_config(tmp_path):
    queues = tmp_path / "queues.yaml"
    queues.write_text(QUEUES)
    return server_config(tmp_path, queues_file=str(queues))


async def patch(api: Api, *path: str, body) -> tuple[int, dict]:
    return await api.call("PATCH", *path, body=body)


async def audit(api: Api, **params) -> list[dict]:
    code, body = await api.get("audit", params=params)
    assert code == 200, body
    return body["entries"]


async def test_create_change_and_delete_a_department_and_a_project_each_audited(api):
    code, made = await api.post("departments", body={"name": "vision", "deserved": {"gpu": 1}})
    assert code == 201 and made["name"] == "vision" and made["deserved"]["gpu"] == 1
    code, made = await api.post("projects", body={"name": "cats", "department": "vision",
                                                  "deserved": {"gpu": 1, "cpu": "2"}, "limit": {"gpu": 2}})
    assert code == 201 and made["department"] == "vision"
    code, body = await api.get("departments", "vision")
    assert code == 200 and body["projects"] == ["cats"]

    # a change names only what changes: the deserved CPU and the limit stay
    code, changed = await patch(api, "projects", "cats", body={"deserved": {"gpu": 0.5}, "over_quota_weight": 3,
                                                               "priority": 150})
    assert code == 200, changed
    assert changed["deserved"] == {"gpu": 0.5, "cpu": "2", "memory": "0"}
    assert changed["limit"]["gpu"] == 2 and changed["over_quota_weight"] == 3 and changed["priority"] == 150
    # a change to what it already is changes nothing, and records nothing
    code, same = await patch(api, "projects", "cats", body={"priority": 150, "deserved": {"gpu": 0.5}})
    assert code == 200 and same == changed
    code, view = await api.get("projects", "cats")
    assert code == 200 and view["deserved"]["gpu"] == 0.5 and view["department"] == "vision"
    assert view["allocated"] == {"gpu": 0} and view["workloads"] == 0
    # a workload can go there at once
    await api.submit(name="meow", project="cats", command="true", resources={"gpu": 0.5})
    await api.wait_phase("meow", "Succeeded", project="cats")
    code, _ = await api.delete("workloads", "cats", "meow")
    assert code == 202
    await wait_for(lambda: api.get("workloads", params={"project": "cats"}), lambda r: r[1]["workloads"] == [], 10,
                   "meow to be removed")

    code, _ = await api.delete("projects", "cats")
    assert code == 204
    code, body = await api.get("projects", "cats")
    assert code == 404 and body["error"]["field"] == "project"
    code, _ = await api.delete("departments", "vision")
    assert code == 204
    code, body = await api.get("departments")
    assert [d["name"] for d in body["departments"]] == ["research"]

    entries = await audit(api)
    assert [(e["action"], e["kind"], e["name"]) for e in entries] == [
        ("create", "department", "vision"), ("create", "project", "cats"), ("update", "project", "cats"),
        ("delete", "project", "cats"), ("delete", "department", "vision")]
    update = entries[2]
    assert update["user"] and update["at"]
    assert update["before"]["deserved"]["gpu"] == 1 and update["after"]["deserved"]["gpu"] == 0.5
    assert update["before"]["priority"] == 100 and update["after"]["priority"] == 150
    assert entries[0]["before"] is None and entries[3]["after"] is None and entries[3]["before"]["name"] == "cats"
    assert [e["name"] for e in await audit(api, kind="department")] == ["vision", "vision"]
    assert len(await audit(api, limit=2)) == 2


@pytest.mark.parametrize("method, path, body, status, field", [
    ("POST", ("projects",), {"name": "p", "department": "nope"}, 400, "department"),
    ("POST", ("projects",), {"name": "p", "department": "research", "deserved": {"gpu": -1}}, 400, "deserved.gpu"),
    ("POST", ("projects",), {"name": "p", "department": "research", "deserved": {"gpu": 2}, "limit": {"gpu": 1}},
     400, "limit.gpu"),
    ("POST", ("projects",), {"name": "p", "department": "research", "node_pools": {"a100": {}}}, 400,
     "node_pools.a100"),
    ("POST", ("projects",), {"name": "Not_A_Label", "department": "research"}, 400, "name"),
    ("POST", ("projects",), {"name": "alpha", "department": "research"}, 409, "name"),
    ("POST", ("departments",), {"name": "research"}, 409, "name"),
    ("POST", ("departments",), {"name": "d", "over_quota_weight": -1}, 400, "over_quota_weight"),
    ("PATCH", ("projects", "alpha"), {"name": "gamma"}, 400, "name"),
    ("PATCH", ("projects", "alpha"), {"department": "nope"}, 400, "department"),
    ("PATCH", ("projects", "alpha"), {"limit": {"gpu": 1}}, 400, "limit.gpu"),  # below deserved 2
    ("PATCH", ("projects", "alpha"), {"deserved": {"cpu": "lots"}}, 400, "deserved.cpu"),
    ("PATCH", ("projects", "alpha"), {"priority": -5}, 400, "priority"),
    ("PATCH", ("projects", "alpha"), {"rules": {"batch": {"max_duration": "1h"}}}, 400, "rules"),
    ("PATCH", ("projects", "alpha"), {"rules": {"training": {"max_duration": 0}}}, 400,
     "rules.training.max_duration"),
    ("PATCH", ("departments", "research"), {"rules": {"workspace": {"idle_gpu_timeout": "soon"}}}, 400,
     "rules.workspace.idle_gpu_timeout"),
    ("PATCH", ("projects", "alpha"), {"rules": {"workspace": {"idle_gpu_action": "pause"}}}, 400,
     "rules.workspace.idle_gpu_action"),
    ("PATCH", ("projects", "nope"), {"priority": 5}, 404, "project"),
    ("PATCH", ("departments", "nope"), {"priority": 5}, 404, "department"),
    ("DELETE", ("projects", "nope"), None, 404, "project"),
    ("DELETE", ("departments", "research"), None, 409, "department"),  # alpha and beta belong to it
    ("POST", ("node-pools",), {"name": "default"}, 400, "name"),
    ("POST", ("node-pools",), {"name": "p", "gpu_placement": "random"}, 400, "gpu_placement"),
    ("PATCH", ("node-pools", "nope"), {}, 404, "node_pool"),
    ("GET", ("audit",), None, 400, "kind"),
])
async def test_bad_changes_are_refused_naming_the_field_and_change_nothing(api, method, path, body, status, field):
    code, before = await api.get("projects")
    _, departments = await api.get("departments")
    code, answer = await api.call(method, *path, body=body, params={"kind": "workload"} if path == ("audit",) else None)
    assert code == status, answer
    assert answer["error"]["field"] == field, answer
    assert (await api.get("projects"))[1] == before and (await api.get("departments"))[1] == departments
    assert await audit(api) == []


async def test_rules_are_set_changed_and_removed_at_runtime_and_audited(api):
    code, body = await patch(api, "projects", "alpha",
                             body={"rules": {"training": {"max_duration": "8h", "idle_gpu_timeout": "30m"}}})
    assert code == 200, body
    unset = {"idle_gpu_action": None, "preemptible_max_duration": None, "node_pools": None}  # the kind's other rules
    assert body["rules"] == {"training": {"max_duration": 28800, "idle_gpu_timeout": 1800, **unset}}
    code, body = await patch(api, "projects", "alpha", body={"rules": {"training": {"idle_gpu_timeout": None},
                                                                       "workspace": {"max_duration": "1d"}}})
    assert code == 200, body
    assert body["rules"] == {"training": {"max_duration": 28800, "idle_gpu_timeout": None, **unset},
                             "workspace": {"max_duration": 86400, "idle_gpu_timeout": None, **unset}}
    code, body = await patch(api, "departments", "research", body={"rules": {"training": {"max_duration": "4h"}}})
    assert code == 200 and body["rules"]["training"]["max_duration"] == 14400, body
    code, body = await patch(api, "projects", "alpha", body={"rules": {"training": None}})
    assert code == 200 and list(body["rules"]) == ["workspace"], body
    assert (await api.get("projects", "alpha"))[1]["rules"] == body["rules"]
    assert [(e["kind"], e["name"]) for e in await audit(api)].count(("project", "alpha")) == 3


async def test_a_project_with_workloads_is_not_deleted_and_the_answer_names_them(api):
    await api.submit(name="busy", project="beta", command="sleep 60", resources={"gpu": 1})
    await api.submit(name="done", project="beta", command="true", resources={"gpu": 0})
    await api.wait_phase("done", "Succeeded", project="beta")
    code, body = await api.delete("projects", "beta")
    assert code == 409, body
    message = body["error"]["message"]
    assert "busy" in message and "done" in message and message.index("busy") < message.index("done")
    assert sorted(body["error"]["allowed"]) == ["busy", "done"]
    code, _ = await api.get("projects", "beta")
    assert code == 200  # still there, and nothing audited
    assert await audit(api) == []
    for name in ("busy", "done"):
        await api.delete("workloads", "beta", name)
    await wait_for(lambda: api.get("workloads", params={"project": "beta"}), lambda r: r[1]["workloads"] == [], 20,
                   "beta's workloads to be removed")
    code, _ = await api.delete("projects", "beta")
    assert code == 204
    assert [(e["action"], e["name"]) for e in await audit(api)] == [("delete", "beta")]


async def test_a_quota_cut_evicts_nothing_by_itself_and_reclaims_through_the_cycle(api, service):
    # alpha deserves both GPUs and uses them; a third alpha workload waits, so every cycle runs the engine
    for name in ("a-1", "a-2"):
        await api.submit(name=name, project="alpha", command="sleep 60", resources={"gpu": 1})
        await api.wait_phase(name, "Running", project="alpha")
    await api.submit(name="a-3", project="alpha", command="sleep 60", resources={"gpu": 1})
    # beta, with no quota, waits: alpha holds only what it deserves
    await api.submit(name="b-1", project="beta", command="sleep 60", resources={"gpu": 1})
    await wait_for(lambda: api.workload("b-1", "beta"), lambda w: w["status"]["pending_reason"], 10, "b-1 to wait")
    code, _ = await api.delete("workloads", "beta", "b-1")
    assert code == 202
    await wait_for(lambda: api.get("workloads", params={"project": "beta"}), lambda r: r[1]["workloads"] == [], 10,
                   "b-1 to be removed")

    # the cut: alpha deserves 1, beta 1; nobody in beta asks for anything
    code, body = await patch(api, "projects", "alpha", body={"deserved": {"gpu": 1}})
    assert code == 200, body
    code, body = await patch(api, "projects", "beta", body={"deserved": {"gpu": 1}})
    assert code == 200, body
    cycles = service.cycles
    await wait_for(lambda: _cycles(service), lambda n: n >= cycles + 10, 20, "ten scheduling cycles")
    for name in ("a-1", "a-2"):
        workload = await api.workload(name, "alpha")
        assert workload["status"]["phase"] == "Running"
        assert "Evicted" not in [e["type"] for e in workload["events"]]

    # beta asks for its quota: the cycle's reclaim takes one GPU back from alpha
    await api.submit(name="b-2", project="beta", command="sleep 60", resources={"gpu": 1})
    await api.wait_phase("b-2", "Running", project="beta")
    phases = sorted([(await api.workload(n, "alpha"))["status"]["phase"] for n in ("a-1", "a-2")])
    assert phases == ["Pending", "Running"]
    entries = await audit(api, kind="project")
    assert [(e["name"], e["before"]["deserved"]["gpu"], e["after"]["deserved"]["gpu"]) for e in entries] == [
        ("alpha", 2, 1), ("beta", 0, 1)]


async def _cycles(service) -> int:
    return service.cycles


class TestNodePools:
    @pytest.fixture
    def jp_server_config(self, tmp_path):
        queues = tmp_path / "queues.yaml"
        queues.write_text(QUEUES)
        return server_config(tmp_path, queues_file=str(queues), local={
            "local_node": False,
            "virtual_nodes": [
                {"name": "a100-node", "gpus": 1, "gpu_memory": "80Gi", "labels": {"gpu-type": "a100"}},
                {"name": "t4-node", "gpus": 1, "gpu_memory": "16Gi", "labels": {"gpu-type": "t4"}},
            ]})

    async def test_a_pool_created_at_runtime_takes_its_nodes_quotas_and_workloads(self, api):
        code, body = await api.post("workloads", body={"name": "w", "project": "alpha", "command": "sleep 60",
                                                       "resources": {"gpu": 1}, "node_pools": ["big"]})
        assert code == 400 and body["error"]["field"] == "node_pools.0"  # no such pool yet
        code, pool = await api.post("node-pools", body={"name": "big", "label_selector": {"gpu-type": "a100"},
                                                        "gpu_placement": "binpack"})
        assert code == 201, pool
        code, pools = await api.get("node-pools")
        assert pools["node_pools"] == [{**pool, "nodes": ["a100-node"]}]
        code, nodes = await api.get("nodes")
        assert {n["name"]: n["pool"] for n in nodes["nodes"]} == {"a100-node": "big", "t4-node": "default"}
        # a per-pool quota for it, and a workload that asks for it
        code, body = await patch(api, "projects", "alpha", body={"node_pools": {"big": {"deserved": {"gpu": 1}}}})
        assert code == 200 and body["node_pools"]["big"]["deserved"]["gpu"] == 1
        await api.submit(name="w", project="alpha", command="sleep 60", resources={"gpu": 1}, node_pools=["big"])
        running = await api.wait_phase("w", "Running", project="alpha")
        assert running["status"]["pods"][0]["node"] == "a100-node"
        # in use: not deleted, and the answer says by what
        code, body = await api.delete("node-pools", "big")
        assert code == 409 and "project alpha" in body["error"]["message"] and "alpha/w" in body["error"]["message"]
        # a changed selector moves nodes; the running pod stays where it is
        code, body = await patch(api, "node-pools", "big", body={"label_selector": {"gpu-type": "t4"}})
        assert code == 200 and body["gpu_placement"] == "binpack"
        code, nodes = await api.get("nodes")
        assert {n["name"]: n["pool"] for n in nodes["nodes"]} == {"a100-node": "default", "t4-node": "big"}
        assert (await api.workload("w", "alpha"))["status"]["phase"] == "Running"
        await api.delete("workloads", "alpha", "w")
        await wait_for(lambda: api.get("workloads"), lambda r: r[1]["workloads"] == [], 20, "w to be removed")
        code, body = await patch(api, "projects", "alpha", body={"node_pools": {"big": None}})
        assert code == 200 and body["node_pools"] == {}
        code, _ = await api.delete("node-pools", "big")
        assert code == 204
        assert (await api.get("node-pools"))[1] == {"node_pools": []}
        assert [(e["action"], e["kind"]) for e in await audit(api)] == [
            ("create", "node_pool"), ("update", "project"), ("update", "node_pool"), ("update", "project"),
            ("delete", "node_pool")]


class TestWithoutDepartments:
    """A queue file with projects only: they belong to the 'default' department, which the file
    need not define (they are queues of their own at the top); they can still be changed."""

    @pytest.fixture
    def jp_server_config(self, tmp_path):
        queues = tmp_path / "queues.yaml"
        queues.write_text("projects:\n  - {name: alpha, deserved: {gpu: 1}}\n")
        return server_config(tmp_path, queues_file=str(queues))

    async def test_projects_of_an_undefined_default_department_can_be_changed_and_created(self, api):
        assert (await api.get("departments"))[1] == {"departments": []}
        code, body = await patch(api, "projects", "alpha", body={"deserved": {"gpu": 2}})
        assert code == 200 and body["department"] == "default", body
        code, body = await api.post("projects", body={"name": "beta"})
        assert code == 201 and body["department"] == "default", body
        code, body = await api.post("projects", body={"name": "gamma", "department": "nope"})
        assert code == 400 and body["error"]["field"] == "department" and "default" in body["error"]["allowed"]


@pytest.mark.parametrize("call", [
    lambda s, u: s.create_department({"name": "d"}, u),
    lambda s, u: s.update_department("research", {"priority": 1}, u),
    lambda s, u: s.delete_department("research", u),
    lambda s, u: s.create_project({"name": "p", "department": "research"}, u),
    lambda s, u: s.update_project("alpha", {"priority": 1}, u),
    lambda s, u: s.delete_project("beta", u),
    lambda s, u: s.create_node_pool({"name": "p"}, u),
    lambda s, u: s.update_node_pool("p", {}, u),
    lambda s, u: s.delete_node_pool("p", u),
    lambda s, u: s.audit(u),
])
async def test_only_an_admin_may_administer(service, call):
    """Every administration method refuses a caller who is not an admin (403 naming the role
    that would allow it), before anything else, and changes nothing."""
    before = (service.store.projects(), service.store.departments(), service.store.node_pools())
    with pytest.raises(Forbidden) as refused:
        call(service, User("bob", admin=False))
    assert refused.value.status == 403 and refused.value.message.startswith("bob may not ")
    assert refused.value.allowed[-1] == "admin on the cluster"
    assert refused.value.message.endswith(refused.value.allowed[-1])
    assert (service.store.projects(), service.store.departments(), service.store.node_pools()) == before
    assert service.store.audit() == []


@pytest.mark.parametrize("schema, body, valid", [
    ("ProjectInput", {"name": "p", "department": "d", "deserved": {"gpu": 1.5, "cpu": "500m", "memory": "2Gi"}}, True),
    ("ProjectInput", {"deserved": {"gpu": 1}}, False),  # a new project needs its name
    ("ProjectChanges", {"deserved": {"gpu": 1}, "limit": {"gpu": None}}, True),
    ("ProjectChanges", {"quota": 1}, False),
    ("DepartmentChanges", {"node_pools": {"a100": {"deserved": {"cpu": 2}}}}, True),
    ("NodePoolInput", {"name": "a100", "label_selector": {"gpu-type": "a100"}, "gpu_placement": "spread"}, True),
    ("NodePoolChanges", {"gpu_placement": "random"}, False),
])
def test_the_openapi_document_describes_what_an_administrator_sends(schema, body, valid):
    jsonschema = pytest.importorskip("jsonschema")
    from jupyter_runai.server.routes import openapi_document

    document = openapi_document()
    validator = jsonschema.Draft202012Validator({"$ref": f"#/components/schemas/{schema}",
                                                 "components": document["components"]})
    assert validator.is_valid(body) == valid, [e.message for e in validator.iter_errors(body)]
    ops = document["paths"]["/runai/api/v1/projects/{project}"]
    assert set(ops) == {"get", "patch", "delete"} and "409" in ops["delete"]["responses"]


@pytest.mark.slow
def test_runtime_changes_survive_a_restart_and_the_queue_file_is_applied_again(tmp_path):
    """What was created at runtime (a department, a project, a node pool) and the audit log are in
    the store: a restarted server has them. The queue file is applied at every start, so a project it
    names gets the file's values back (docs/admin.md, "The queue file and runtime changes")."""
    from pathlib import Path

    from live_server import LiveServer

    queues = tmp_path / "queues.yaml"
    queues.write_text("projects:\n  - {name: alpha, deserved: {gpu: 1}}\n")
    live = LiveServer(tmp_path / "server", {"LocalCluster": {"virtual_gpus": "1x24Gi"},
                                            "RunaiApp": {"queues_file": str(queues)}})
    live.env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)  # this checkout's code
    live.start()
    try:
        for path, body in (("departments", {"name": "vision", "deserved": {"gpu": 1}}),
                           ("node-pools", {"name": "extra", "label_selector": {"x": "y"}}),
                           ("projects", {"name": "cats", "department": "vision",
                                         "node_pools": {"extra": {"deserved": {"gpu": 1}}}})):
            code, answer = live.api("POST", path, body)
            assert code == 201, answer
        code, answer = live.api("PATCH", "projects/alpha", {"deserved": {"gpu": 0.5}})
        assert code == 200, answer
        live.stop()
        live.start()
        code, projects = live.api("GET", "projects")
        by_name = {p["name"]: p for p in projects["projects"]}
        assert by_name["cats"]["department"] == "vision" and by_name["cats"]["node_pools"]["extra"]
        assert by_name["alpha"]["deserved"]["gpu"] == 1  # the file's value again
        assert [p["name"] for p in live.api("GET", "node-pools")[1]["node_pools"]] == ["extra"]
        assert [d["name"] for d in live.api("GET", "departments")[1]["departments"]] == ["default", "vision"]
        entries = live.api("GET", "audit")[1]["entries"]
        assert [(e["action"], e["name"]) for e in entries] == [
            ("create", "vision"), ("create", "extra"), ("create", "cats"), ("update", "alpha")]
    finally:
        live.stop()


async def test_the_default_project_offered_is_one_that_exists(api):
    """A queue file without a project named "default": /info offers the first project there is."""
    code, info = await api.get("info")
    assert code == 200 and "default" not in info["projects"]
    assert info["defaults"]["project"] == info["projects"][0] == info["form"]["defaults"]["project"]
