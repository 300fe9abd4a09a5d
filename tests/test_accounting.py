"""GPU accounting in the service's clock (simulated time): GPU-hours allocated and used per workload,
user, project and department, per UTC day; kept after the workload is deleted and across a restart."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from jupyter_runai.clusters.simulated import SimulatedCluster, simulated_nodes
from jupyter_runai.errors import Invalid
from jupyter_runai.identity import User
from jupyter_runai.service import RunaiService
from jupyter_runai.store import Store

from test_rules import Clock
from test_service import ME, make_service, submit

NODE = "sim-node-0"


@pytest.fixture
def clock():
    clock = Clock()
    clock.now = datetime(2026, 1, 1, 22, 0, tzinfo=timezone.utc)  # two hours before midnight
    return clock


@pytest.fixture
def cluster():
    return SimulatedCluster(simulated_nodes(1, gpus=2))


def rows(report, *keys):
    """{(day, *keys): (allocated, used)} of a report."""
    return {(r["day"], *(r[k] for k in keys)): (r["gpu_hours_allocated"], r["gpu_hours_used"])
            for r in report["rows"]}


def device_of(service, name):
    return service.get("default", name).status.pods[0].devices[0]


def test_gpu_hours_survive_deletion_and_restart_split_by_day(tmp_path, cluster, clock):
    first = make_service(tmp_path, cluster, clock=clock)
    submit(first, "train", resources={"gpu": 1})
    submit(first, "half", resources={"gpu": 0.5})
    first.run_cycle()
    cluster.utilization[(NODE, device_of(first, "train"))] = 50.0  # measured; the other device is not
    clock.advance(hours=1)
    first.run_cycle()
    first.delete("default", "train", ME)
    first.run_cycle()  # its pod ended: deleted, its hour stays accounted
    clock.advance(minutes=30)
    first.run_cycle()
    first.store.close()  # the server goes away without a word; "half" keeps running

    clock.advance(hours=1)  # 00:30 on the next day
    second = RunaiService(Store(tmp_path / "runai.db"), cluster, stop_grace_seconds=0, clock=clock)
    second.start()
    second.run_cycle()
    by_workload = rows(second.usage_report(ME, "2026-01-01", "2026-01-02", "workload"), "project", "workload")
    assert by_workload == {
        ("2026-01-01", "default", "train"): (1.0, 0.5),  # 1 GPU for 1 h at 50%
        ("2026-01-01", "default", "half"): (1.0, None),  # half a GPU for 2 h, not measured
        ("2026-01-02", "default", "half"): (0.25, None),  # and 30 min after midnight, across the restart
    }
    by_project = second.usage_report(ME, "2026-01-01", "2026-01-02", "project")
    assert rows(by_project, "project") == {("2026-01-01", "default"): (2.0, 0.5),
                                           ("2026-01-02", "default"): (0.25, None)}
    assert [r["gpu_hours_measured"] for r in by_project["rows"]] == [1.0, 0.0]
    assert rows(second.usage_report(ME, "2026-01-02", "2026-01-02", "department"), "department") == {
        ("2026-01-02", "default"): (0.25, None)}
    assert rows(second.usage_report(ME, "2026-01-01", "2026-01-01", "user"), "user") == {
        ("2026-01-01", "me"): (2.0, 0.5)}
    total = second.usage_report(ME, "2026-01-01", "2026-01-02", "workload", per="total")
    assert total["per"] == "total" and [(r["workload"], r["gpu_hours_allocated"], r["gpu_hours_used"])
                                        for r in total["rows"]] == [("half", 1.25, None), ("train", 1.0, 0.5)]
    assert all("day" not in r for r in total["rows"])
    second.store.close()


def test_a_user_who_is_not_admin_sees_only_their_own_workloads(tmp_path, cluster, clock):
    service = make_service(tmp_path, cluster, clock=clock)
    service.set_seed_bindings([{"role": "researcher", "user": "ann", "project": "default"}])
    ann = User("ann")
    submit(service, "mine", resources={"gpu": 1})
    service.submit({"name": "anns", "command": "run", "resources": {"gpu": 1}}, ann)
    service.run_cycle()
    clock.advance(hours=1)
    service.run_cycle()
    report = service.usage_report(ann, "2026-01-01", "2026-01-01", "workload")
    assert rows(report, "workload") == {("2026-01-01", "anns"): (1.0, None)}
    everyone = service.usage_report(ME, "2026-01-01", "2026-01-01", "user")
    assert rows(everyone, "user") == {("2026-01-01", "ann"): (1.0, None), ("2026-01-01", "me"): (1.0, None)}
    service.store.close()


@pytest.mark.parametrize("args, field", [
    (("2026-13-01", None, "project"), "from"),
    ((None, "yesterday", "project"), "to"),
    (("2026-01-02", "2026-01-01", "project"), "from"),
    (("2024-01-01", "2026-01-01", "project"), "from"),
    ((None, None, "pod"), "by"),
    ((None, None, "project", "week"), "per"),
])
def test_a_bad_report_request_names_the_field(tmp_path, cluster, clock, args, field):
    service = make_service(tmp_path, cluster, clock=clock)
    with pytest.raises(Invalid) as error:
        service.usage_report(ME, *args)
    assert error.value.field == field and error.value.allowed
    service.store.close()


def test_an_evicted_pod_is_not_accounted_while_it_waits(tmp_path, cluster, clock):
    from jupyter_runai.models import Project

    store = Store(tmp_path / "runai.db")
    for name in ("alpha", "beta"):
        store.put_project(Project(name=name, deserved={"gpu": 1}))
    service = RunaiService(store, cluster, stop_grace_seconds=0, clock=clock)
    service.start()
    submit(service, "a1", project="alpha", resources={"gpu": 1})
    submit(service, "a2", project="alpha", resources={"gpu": 1})  # over quota on the idle GPU
    service.run_cycle()
    clock.advance(hours=1)
    submit(service, "b1", project="beta", resources={"gpu": 1})
    service.run_cycle()  # reclaim: one of alpha's pods is told to stop
    service.run_cycle()  # it stopped; beta's pod starts
    evicted = next(n for n in ("a1", "a2") if service.get("alpha", n).status.phase.value == "Pending")
    clock.advance(hours=1)
    cluster.finish("beta/b1-0", 0)
    service.run_cycle()
    service.run_cycle()  # the evicted one runs again
    assert service.get("alpha", evicted).status.phase.value == "Running"
    clock.advance(hours=1)
    report = service.usage_report(ME, "2026-01-01", "2026-01-02", "workload")
    hours = {r["workload"]: 0.0 for r in report["rows"]}
    for r in report["rows"]:
        hours[r["workload"]] += r["gpu_hours_allocated"]
    kept = "a2" if evicted == "a1" else "a1"
    assert hours == {kept: 3.0, evicted: 2.0, "b1": 1.0}  # 2 GPUs for 3 hours, never counted twice
    store.close()


def test_the_command_line_offers_the_groupings_the_server_takes():
    from jupyter_runai.accounting import GROUPS, PERIODS
    from jupyter_runai.cli import build_parser

    parser = build_parser(["report"])
    report = parser._subparsers._group_actions[0].choices["report"]
    choices = {a.dest: tuple(a.choices) for a in report._actions if a.choices}
    assert choices["by"] == GROUPS and choices["per"] == PERIODS
