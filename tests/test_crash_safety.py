"""Crash and fault safety: a full disk changes nothing that was answered with an error; a crash
around a pod's launch neither loses the pod nor runs it twice; one odd stored row (a clock that
stepped back) never stops the store, the service or the extension from loading."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from tornado.httpclient import HTTPClientError

from api_helpers import Api, fill_store, kill_pods, server_config, unfill_store
from jupyter_runai.clusters.local import LocalCluster
from jupyter_runai.clusters.simulated import SimulatedCluster, simulated_nodes
from jupyter_runai.config import default_queue_config
from jupyter_runai.models import Workload, WorkloadSpec, WorkloadStatus
from jupyter_runai.service import RunaiService, User
from jupyter_runai.store import Store, StoreFull, StoreWriteError

pytest_plugins = ["pytest_jupyter.jupyter_server"]

ME = User("me", admin=True)


def new_service(state: Path, cluster, gpus: int = 2, **options) -> RunaiService:
    """A started service on ``cluster`` with its store in ``state`` (a restart when it exists)."""
    store = Store(state / "runai.db")
    if not store.projects():
        queues = default_queue_config(gpus)
        for item in [*queues.departments]:
            store.put_department(item)
        for item in queues.projects:
            store.put_project(item)
    service = RunaiService(store, cluster, stop_grace_seconds=0, **options)
    service.start()
    return service


def names(service: RunaiService) -> list[str]:
    return [w.spec.name for w in service.list()]


# ---------------------------------------------------------------- a full disk


@pytest.fixture
def sim(tmp_path):
    cluster = SimulatedCluster(simulated_nodes(1, gpus=2))
    service = new_service(tmp_path, cluster)
    yield service, cluster
    service.store.close()


def test_a_submit_the_full_disk_refused_never_runs(sim, tmp_path):
    service, cluster = sim
    seen = service.subscribe()
    fill_store(service.store)
    with pytest.raises(StoreFull) as refused:
        service.submit({"name": "refused", "command": "run", "resources": {"gpu": 1}}, ME)
    assert refused.value.status == 507 and "full" in refused.value.message
    assert names(service) == [] and seen.empty(), "an error answer: nothing happened"
    service.run_cycle()
    assert cluster.launches == 0
    unfill_store(service.store)
    service.submit({"name": "refused", "command": "run", "resources": {"gpu": 1}}, ME)  # the name is free
    service.run_cycle()
    assert cluster.launches == 1 and names(service) == ["refused"]
    service.store.close()
    again = new_service(tmp_path, cluster)  # a restart finds the same
    assert names(again) == ["refused"]


def test_stop_delete_and_resume_the_full_disk_refused_change_nothing(sim):
    service, cluster = sim
    for name in ("a", "b", "c"):
        service.submit({"name": name, "command": "run", "resources": {"gpu": 1}}, ME)
    service.run_cycle()
    cluster.finish("default/a-0", 0)
    service.run_cycle()
    phases = {"a": "Succeeded", "b": "Running", "c": "Running"}
    service.submit({"name": "d", "command": "run", "resources": {"gpu": 1}}, ME)
    service.submit({"name": "e", "command": "run", "resources": {"gpu": 1}}, ME)
    phases.update(d="Pending", e="Pending")
    assert {w.spec.name: w.status.phase.value for w in service.list()} == phases
    seen = service.subscribe()
    fill_store(service.store)
    for action, name in ((service.stop, "d"), (service.delete, "e"), (service.resume, "a")):
        with pytest.raises(StoreFull):
            action("default", name, ME)
    assert {w.spec.name: w.status.phase.value for w in service.list()} == phases
    assert seen.empty()
    unfill_store(service.store)
    service.stop("default", "d", ME)
    assert service.get("default", "d").status.phase.value == "Stopped"


def test_a_stop_or_delete_that_could_not_be_saved_stops_no_pod(sim):
    service, cluster = sim
    for name in ("a", "b"):
        service.submit({"name": name, "command": "run", "resources": {"gpu": 1}}, ME)
    service.run_cycle()
    other = sqlite3.connect(service.store.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the database: writes fail
    service.store._db.execute("PRAGMA busy_timeout = 50")
    try:
        for action, name in ((service.stop, "a"), (service.delete, "b")):
            with pytest.raises(StoreWriteError) as refused:
                action("default", name, ME)
            assert refused.value.status == 503 and "nothing was changed" in refused.value.message
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert [w.status.phase.value for w in service.list()] == ["Running", "Running"]
    assert sorted(cluster.running) == ["default/a-0", "default/b-0"], "no pod was stopped"
    assert [p.phase.value for w in service.list() for p in w.status.pods] == ["Running", "Running"]
    service.stop("default", "a", ME)
    assert "default/a-0" not in cluster.running


def test_a_cycle_the_full_disk_refused_launches_nothing_and_the_next_one_catches_up(sim, tmp_path):
    service, cluster = sim
    service.submit({"name": "job", "command": "run", "resources": {"gpu": 1}}, ME)
    service.submit({"name": "short", "command": "run", "resources": {"gpu": 1}}, ME)
    service.run_cycle()
    cluster.finish("default/short-0", 0)  # its end is seen by the cycle that fails
    service.submit({"name": "next", "command": "run", "resources": {"gpu": 1}}, ME)
    fill_store(service.store)
    with pytest.raises(StoreFull):
        service.run_cycle()
    assert cluster.launches == 2, "no pod started by a cycle that was not saved"
    assert {w.spec.name: w.status.phase.value for w in service.list()} == {
        "job": "Running", "short": "Running", "next": "Pending"}, "memory is what the store holds"
    unfill_store(service.store)
    service.run_cycle()
    service.run_cycle()
    assert {w.spec.name: w.status.phase.value for w in service.list()} == {
        "job": "Running", "short": "Succeeded", "next": "Running"}
    assert cluster.launches == 3
    service.store.close()
    again = new_service(tmp_path, cluster)
    assert {w.spec.name: w.status.phase.value for w in again.list()} == {
        "job": "Running", "short": "Succeeded", "next": "Running"}


@pytest.fixture
def jp_server_config(tmp_path):
    return server_config(tmp_path)


async def test_the_rest_api_answers_507_and_lists_nothing_it_refused(jp_fetch, jp_serverapp):
    api = Api(jp_fetch)
    service = jp_serverapp.web_app.settings["runai_service"]
    try:
        fill_store(service.store)
        code, body = await api.post("workloads", body={"name": "refused", "command": "true"})
        assert code == 507, body
        assert "full" in body["error"]["message"] and "nothing was changed" in body["error"]["message"]
        code, body = await api.post("projects", "default", "data-sources",
                                    body={"name": "data", "kind": "host_path", "path": "/tmp"})
        assert code == 507, body
        unfill_store(service.store)
        assert (await api.get("workloads"))[1]["workloads"] == []
        assert (await api.get("projects", "default", "data-sources"))[1]["data_sources"] == []
    finally:
        kill_pods(service)


# ---------------------------------------------------------------- a crash around a launch


def local_cluster(state: Path) -> LocalCluster:
    return LocalCluster(state_dir=str(state), virtual_gpus="1x24Gi", watchdog_interval=0, node_name="here")


def run_until(service: RunaiService, done, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        service.run_cycle()
        if done():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out; workloads: {[(w.spec.name, w.status.phase.value) for w in service.list()]}")


class Crash(BaseException):
    """Stands for the server dying at that moment: nothing after it runs."""


def crash_around_launch(cluster: LocalCluster, after: bool) -> None:
    real = cluster.launch

    def launch(spec):
        if after:
            real(spec)
        raise Crash()

    cluster.launch = launch


@pytest.mark.parametrize("after", [False, True], ids=["before-the-launch", "after-the-launch"])
def test_a_crash_around_a_launch_neither_loses_the_pod_nor_runs_it_twice(tmp_path, after):
    state = tmp_path / "state"
    runs, flag = tmp_path / "runs.txt", tmp_path / "go"
    command = f"echo $$ >> {runs}; while [ ! -e {flag} ]; do sleep 0.05; done"
    first = new_service(state, local_cluster(state), gpus=1)
    first.submit({"name": "once", "command": command, "resources": {"gpu": 1}}, ME)
    crash_around_launch(first.cluster, after)
    with pytest.raises(Crash):
        first.run_cycle()
    first.store.close()  # the process is gone: what it committed is all there is

    second = new_service(state, local_cluster(state), gpus=1)  # the restart
    try:
        run_until(second, lambda: second.get("default", "once").status.phase.value == "Running"
                  and runs.exists())
        time.sleep(0.3)  # a second copy, if one were started, has written its line by now
        flag.touch()
        run_until(second, lambda: second.get("default", "once").status.phase.value == "Succeeded")
        assert len(runs.read_text().split()) == 1, "ran exactly once"
        assert not second.handles or all(not h.get("launching") for h in second.handles.values())
    finally:
        flag.touch()
        second.store.close()


def test_pods_nothing_accounts_for_are_ended_at_start(tmp_path):
    state = tmp_path / "state"
    service = new_service(state, local_cluster(state), gpus=1)
    service.submit({"name": "tracked", "command": "sleep 30", "resources": {"gpu": 0}}, ME)
    run_until(service, lambda: service.get("default", "tracked").status.phase.value == "Running")
    tracked = service.handles[(service.get("default", "tracked").uid, "tracked-0")]["pid"]
    # a pod the store knows nothing of: its intent and handle were never saved
    from jupyter_runai.clusters.base import PodLaunch

    stray = service.cluster.launch(PodLaunch(
        key="default/ghost-0", workload="ghost", workload_uid="f" * 32, project="default", kind="training",
        index=0, pod_count=1, node="here", devices=[0], fraction=None, gpu_memory_limit=None,
        gpu_fraction_limit=None, command="sleep 30"))["pid"]
    service.store.close()

    again = new_service(state, local_cluster(state), gpus=1)
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and alive(stray):
            time.sleep(0.05)
        assert not alive(stray), "the stray holds the GPU no one accounts for: ended"
        assert alive(tracked), "the adopted pod runs on"
        assert again.get("default", "tracked").status.phase.value == "Running"
    finally:
        again.delete("default", "tracked", ME)
        run_until(again, lambda: not again.list())
        again.store.close()


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    if state == "Z":
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        return False
    return True


# ---------------------------------------------------------------- odd rows, clocks


T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def stored_row(store: Store, workload: Workload, body: str) -> None:
    """Put a row as an older or broken writer left it (no validation on the way in)."""
    store.add_workload(workload)
    with store._lock:
        store._db.execute("UPDATE workloads SET body = ? WHERE uid = ?", (body, workload.uid))


def test_one_odd_row_never_stops_the_store_from_loading(tmp_path):
    store = Store(tmp_path / "runai.db")
    good = Workload(spec=WorkloadSpec(name="good", command="true"), status=WorkloadStatus(submitted_at=T0))
    stepped = Workload(spec=WorkloadSpec(name="stepped", command="true"),
                       status=WorkloadStatus(phase="Succeeded", submitted_at=T0, started_at=T0))
    body = json.loads(stepped.model_dump_json())
    body["status"]["finished_at"] = (T0 - timedelta(minutes=5)).isoformat()  # the clock stepped back
    stored_row(store, stepped, json.dumps(body))
    broken = Workload(spec=WorkloadSpec(name="broken", command="true"))
    stored_row(store, broken, '{"spec": {"name": "broken"}, "status": {"phase": "Bogus"')
    store.add_workload(good)
    store.close()

    store = Store(tmp_path / "runai.db")
    loaded = {w.spec.name: w for w in store.workloads()}
    assert sorted(loaded) == ["good", "stepped"]
    assert loaded["stepped"].status.finished_at == T0, "repaired: it did not end before it started"
    assert [(p["name"], p["action"]) for p in store.load_problems] == [("stepped", "repaired"),
                                                                       ("broken", "quarantined")]
    [kept] = store.quarantined_workloads()
    assert kept["name"] == "broken" and kept["body"].startswith('{"spec"'), "kept as it was, not lost"
    store.close()
    store = Store(tmp_path / "runai.db")  # repaired for good: nothing to say the next time
    assert sorted(w.spec.name for w in store.workloads()) == ["good", "stepped"] and not store.load_problems
    store.close()


def test_a_clock_that_steps_back_never_saves_an_end_before_its_start(tmp_path):
    now = {"t": T0}
    cluster = SimulatedCluster(simulated_nodes(1, gpus=1))
    service = new_service(tmp_path, cluster, gpus=1, clock=lambda: now["t"])
    service.submit({"name": "job", "command": "run", "resources": {"gpu": 1}}, ME)
    now["t"] = T0 + timedelta(minutes=10)
    service.run_cycle()
    now["t"] = T0 - timedelta(hours=1)  # NTP steps the clock back
    cluster.finish("default/job-0", 0)
    service.run_cycle()
    status = service.get("default", "job").status
    assert status.phase.value == "Succeeded"
    assert status.submitted_at <= status.started_at <= status.finished_at
    assert status.pods[0].started_at <= status.pods[0].finished_at
    service.store.close()
    # a restart with the clock still behind loads it
    again = new_service(tmp_path, cluster, gpus=1, clock=lambda: now["t"])
    assert [w.status.phase.value for w in again.list()] == ["Succeeded"] and not again.load_problems
    again.store.close()


@pytest.fixture
def broken_state(tmp_path):
    state = tmp_path / "state"
    store = Store(state / "runai.db")
    store.close()
    db = sqlite3.connect(state / "runai.db")
    db.execute("PRAGMA user_version = 999")  # a newer jupyter-runai's database
    db.commit()
    db.close()
    return state


@pytest.fixture
def jp_server_config_broken(tmp_path, broken_state):
    return server_config(tmp_path)


class TestAStoreThatCannotOpen:
    @pytest.fixture
    def jp_server_config(self, tmp_path, broken_state):
        return server_config(tmp_path)

    async def test_every_runai_route_says_why_instead_of_404(self, jp_fetch, jp_serverapp):
        api = Api(jp_fetch)
        for path in (("info",), ("workloads",), ("nodes",)):
            code, body = await api.get(*path)
            assert code == 503, (path, code, body)
            assert "could not start its scheduler" in body["error"]["message"]
            assert "newer" in body["error"]["message"], "the store's own reason"
        code, body = await api.post("workloads", body={"name": "x", "command": "true"})
        assert code == 503
        with pytest.raises(HTTPClientError) as proxied:  # the proxy too: no traceback, the same status
            await jp_fetch("runai", "proxy", "default", "x", "")
        assert proxied.value.code == 503


def test_the_service_reports_what_it_repaired_or_quarantined(tmp_path):
    store = Store(tmp_path / "runai.db")
    broken = Workload(spec=WorkloadSpec(name="broken", command="true"))
    stored_row(store, broken, "not json")
    store.close()
    cluster = SimulatedCluster(simulated_nodes(1, gpus=1))
    service = new_service(tmp_path, cluster, gpus=1)
    assert [p["action"] for p in service.load_problems] == ["quarantined"]
    [event] = [e for e in service.store.events(workload="broken")]
    assert event.type == "Warning" and "quarantined_workloads" in event.message
    # its name is free again
    service.submit({"name": "broken", "command": "run"}, ME)
    service.store.close()
