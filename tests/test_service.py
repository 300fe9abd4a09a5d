"""The service's rules, cycle by cycle, on the simulated cluster (no processes, no HTTP):
what a workload's phase becomes after each thing that can happen to its pods."""

from __future__ import annotations

import pytest

from jupyter_runai.clusters.simulated import SimulatedCluster, simulated_nodes
from jupyter_runai.config import default_queue_config
from jupyter_runai.errors import Conflict, Forbidden, Invalid, NotFound
from jupyter_runai.models import Project, WorkloadSpec
from jupyter_runai.service import RunaiService, User
from jupyter_runai.store import Store

ME = User("me", admin=True)


@pytest.fixture
def cluster():
    return SimulatedCluster(simulated_nodes(1, gpus=2))


def make_service(tmp_path, cluster, gpus: int = 2, **options) -> RunaiService:
    """A started service on ``cluster`` whose 'default' project deserves ``gpus`` GPUs."""
    store = Store(tmp_path / "runai.db")
    queues = default_queue_config(gpus)
    for item in queues.departments:
        store.put_department(item)
    for item in queues.projects:
        store.put_project(item)
    svc = RunaiService(store, cluster, stop_grace_seconds=0, **options)
    svc.start()
    return svc


@pytest.fixture
def service(tmp_path, cluster):
    svc = make_service(tmp_path, cluster)
    yield svc
    svc.store.close()


def phase(service, name, project="default"):
    return service.get(project, name).status.phase.value


def submit(service, name, **spec):
    spec.setdefault("command", "run")
    return service.submit({"name": name, **spec}, ME)


def test_pending_then_running_then_succeeded(service, cluster):
    submit(service, "job", resources={"gpu": 1})
    assert phase(service, "job") == "Pending"
    service.run_cycle()
    assert phase(service, "job") == "Running"
    pod = service.get("default", "job").status.pods[0]
    assert pod.node == "sim-node-0" and pod.devices == [0]
    cluster.finish("default/job-0", 0)
    service.run_cycle()
    assert phase(service, "job") == "Succeeded"
    assert [e.type for e in service.store.events(workload="job")] == ["Submitted", "Scheduled", "Started",
                                                                      "Succeeded", "Succeeded"]


def test_backoff_restarts_then_fails_with_the_reason(service, cluster):
    submit(service, "flaky", backoff_limit=2)
    for attempt in range(3):
        service.run_cycle()
        assert phase(service, "flaky") == "Running", attempt
        cluster.finish("default/flaky-0", 3)
        service.run_cycle()
    w = service.get("default", "flaky")
    assert w.status.phase.value == "Failed" and w.status.restarts == 2
    assert "exited with code 3" in w.status.message


def test_a_failed_worker_stops_the_whole_distributed_job(service, cluster):
    submit(service, "ddp", kind="distributed", workers=1, resources={"gpu": 1})
    service.run_cycle()
    assert phase(service, "ddp") == "Running" and len(cluster.running) == 2
    cluster.finish("default/ddp-1", 1)
    service.run_cycle()
    assert not cluster.running, "the master was stopped"
    service.run_cycle()
    w = service.get("default", "ddp")
    assert w.status.phase.value == "Failed" and "ddp-1" in w.status.message
    # the master, stopped because its worker failed, says so: it ended, it does not wait for a node
    pods = {p.name: p for p in w.status.pods}
    assert pods["ddp-1"].phase.value == "Failed" and "exited with code 1" in pods["ddp-1"].message
    master = pods["ddp-0"]
    assert master.phase.value == "Failed", master
    assert master.message == "ended: another pod of the workload failed"
    assert master.finished_at is not None and master.node == "sim-node-0"


def test_stop_while_pending_is_immediate_and_resume_keeps_the_queue_place(service, cluster):
    submit(service, "first", resources={"gpu": 2})
    submit(service, "second", resources={"gpu": 2})
    service.run_cycle()
    assert phase(service, "second") == "Pending"
    service.stop("default", "second", ME)
    assert phase(service, "second") == "Stopped"
    submit(service, "third", resources={"gpu": 2})
    service.resume("default", "second", ME)
    cluster.finish("default/first-0", 0)
    service.run_cycle()
    service.run_cycle()
    assert phase(service, "second") == "Running", "submitted before third: it goes first"
    assert phase(service, "third") == "Pending"


def test_stop_and_delete_of_a_running_workload_wait_for_its_pods(service, cluster):
    submit(service, "a", resources={"gpu": 1})
    submit(service, "b", resources={"gpu": 1})
    service.run_cycle()
    service.stop("default", "a", ME)
    assert phase(service, "a") == "Stopping"
    service.delete("default", "b", ME)
    assert phase(service, "b") == "Deleting"
    service.run_cycle()
    assert phase(service, "a") == "Stopped"
    with pytest.raises(NotFound):
        service.get("default", "b")
    assert service.store.workload("default", "b") is None


def test_admission_errors_name_the_field(service):
    with pytest.raises(NotFound) as err:
        submit(service, "x", project="nowhere")
    assert err.value.field == "project" and err.value.allowed == ["default"]
    with pytest.raises(Invalid) as err:
        submit(service, "x", node_pools=["gpu-pool"])
    assert err.value.field == "node_pools.0" and err.value.allowed == ["default"]
    with pytest.raises(Invalid) as err:
        submit(service, "x", credentials=["missing"])
    assert err.value.field == "credentials.0"
    submit(service, "dup")
    with pytest.raises(Conflict) as err:
        submit(service, "dup")
    assert err.value.field == "name" and err.value.message.startswith("name: ")


def test_admission_hooks_can_change_or_refuse(service):
    def policy(spec: WorkloadSpec, user: User):
        if spec.resources.gpu > 1:
            raise Forbidden("at most 1 GPU per workload in this project", field="resources.gpu", allowed="<= 1")
        if not spec.environment:
            return spec.model_copy(update={"environment": {"POLICY": "default-env"}})
        return None

    service.admission_hooks.append(policy)
    with pytest.raises(Forbidden) as err:
        submit(service, "big", resources={"gpu": 2})
    assert err.value.status == 403 and err.value.field == "resources.gpu"
    assert service.store.workload("default", "big") is None
    w = submit(service, "small", resources={"gpu": 1})
    assert w.spec.environment == {"POLICY": "default-env"}


def test_eviction_sends_the_workload_back_to_the_queue_and_it_returns(tmp_path, cluster):
    store = Store(tmp_path / "runai.db")
    store.put_project(Project(name="alpha", deserved={"gpu": 1}))
    store.put_project(Project(name="beta", deserved={"gpu": 1}))
    service = RunaiService(store, cluster, stop_grace_seconds=0)
    service.start()
    submit(service, "a1", project="alpha", resources={"gpu": 1})
    submit(service, "a2", project="alpha", resources={"gpu": 1})
    service.run_cycle()
    assert {phase(service, n, "alpha") for n in ("a1", "a2")} == {"Running"}
    submit(service, "b1", project="beta", resources={"gpu": 1})
    service.run_cycle()  # reclaim: one of alpha's pods is told to stop
    service.run_cycle()  # it stopped; beta's pod starts
    assert phase(service, "b1", "beta") == "Running"
    phases = sorted(phase(service, n, "alpha") for n in ("a1", "a2"))
    assert phases == ["Pending", "Running"]
    evicted = next(n for n in ("a1", "a2") if phase(service, n, "alpha") == "Pending")
    assert "Evicted" in [e.type for e in store.events(workload=evicted)]
    cluster.finish("beta/b1-0", 0)
    service.run_cycle()
    service.run_cycle()
    assert phase(service, evicted, "alpha") == "Running"


def test_inference_scales_with_load_between_min_and_max(service, cluster):
    service.autoscaler.delay = 0
    w = submit(service, "llm", kind="inference", min_replicas=1, max_replicas=3, target_concurrency=2,
               resources={"gpu": 0.5})
    service.run_cycle()
    assert len(cluster.running) == 1
    service.report_load(w.uid, 5)  # 5 in flight / 2 per replica -> 3 replicas
    service.run_cycle()
    assert len(cluster.running) == 3
    service.report_load(w.uid, 50)  # never above max
    service.run_cycle()
    assert len(cluster.running) == 3
    service.report_load(w.uid, 0)
    service.run_cycle()  # scale down: the extra replicas are stopped
    service.run_cycle()
    assert sorted(cluster.running) == ["default/llm-0"]
    assert [p.name for p in service.get("default", "llm").status.pods] == ["llm-0"]
    cluster.finish("default/llm-0", 1)  # a replica that dies is started again
    service.run_cycle()
    service.run_cycle()
    assert sorted(cluster.running) == ["default/llm-0"] and phase(service, "llm") == "Running"


def test_restart_requeues_pods_whose_processes_are_gone(tmp_path, cluster):
    store = Store(tmp_path / "runai.db")
    for item in default_queue_config(2).projects + default_queue_config(2).departments:
        (store.put_project if isinstance(item, Project) else store.put_department)(item)
    first = RunaiService(store, cluster)
    first.start()
    submit(first, "survivor", resources={"gpu": 1})
    submit(first, "lost", resources={"gpu": 1})
    first.run_cycle()
    cluster.running.pop("default/lost-0")  # the machine lost that process while we were down
    second = RunaiService(store, cluster)  # a new service on the same store: a restart
    second.start()
    assert phase(second, "survivor") == "Running"
    lost = second.get("default", "lost")
    assert lost.status.phase.value == "Pending" and "gone after a restart" in lost.status.pods[0].message
    second.run_cycle()
    assert phase(second, "lost") == "Running"


@pytest.mark.asyncio
async def test_a_closed_service_refuses_to_restart_its_loop(service):
    from jupyter_runai.errors import Unavailable

    service.ensure_running()
    await service.close()
    with pytest.raises(Unavailable) as err:
        service.ensure_running()  # a request arriving while the server stops
    assert err.value.status == 503


@pytest.mark.asyncio
async def test_closing_twice_writes_nothing_to_a_closed_store(service, caplog):
    """A server told to stop by two signals stops its extension twice; the second close found the
    store closed and logged 'could not write the GPU accounting' with a traceback."""
    service.ensure_running()
    await service.close()
    service.store.close()
    await service.close()
    assert "could not write the GPU accounting" not in caplog.text


@pytest.mark.parametrize("history, node", [(1000, "small-0"), (0, "big-0"), (1, "big-0")])
def test_gpu_placement_expects_the_shapes_of_recent_workloads(tmp_path, history, node):
    # big-0 has 4 GPUs, small-0 has 2 (listed second). Recent workloads all asked 3 GPUs; they
    # ran and finished. A 1-GPU workload then goes where it spoils no room for another 3-GPU
    # one: on small-0 (big-0 keeps 4). Without that history (placement_history 0, or 1: the
    # new workload alone) nothing tells the nodes apart and the first listed wins.
    cluster = SimulatedCluster(simulated_nodes(1, gpus=4, prefix="big") + simulated_nodes(1, gpus=2, prefix="small"))
    service = make_service(tmp_path, cluster, gpus=6, placement_history=history)
    try:
        for i in range(4):
            submit(service, f"three-{i}", resources={"gpu": 3})
            service.run_cycle()
            assert service.get("default", f"three-{i}").status.pods[0].node == "big-0"
            cluster.finish(f"default/three-{i}-0", 0)
            service.run_cycle()
            assert phase(service, f"three-{i}") == "Succeeded"
        submit(service, "one", resources={"gpu": 1})
        service.run_cycle()
        assert service.get("default", "one").status.pods[0].node == node
    finally:
        service.store.close()


class _EndsDuringTheCycle(SimulatedCluster):
    """A simulated cluster on which the pod ``ends`` exits while the cycle that launches
    ``trigger`` is still running (what a real cluster does when a pod ends mid-cycle)."""

    def __init__(self, nodes, trigger: str, ends: str):
        super().__init__(nodes)
        self.trigger, self.ends = trigger, ends

    def launch(self, launch):
        handle = super().launch(launch)
        if launch.key == self.trigger:
            self.finish(self.ends, 0)
        return handle


@pytest.mark.asyncio
async def test_a_pod_that_ends_during_a_cycle_frees_its_gpu_without_waiting_for_the_poll(tmp_path):
    # one node, 2 GPUs. "first" runs; "second" and "third" are submitted together: second
    # takes the other GPU and, while that cycle runs, first ends. The loop looks at the
    # cluster again as soon as the cycle is over, so third starts right away, long before
    # the next poll (30 s) or the next timed cycle.
    import asyncio

    cluster = _EndsDuringTheCycle(simulated_nodes(1, gpus=2), trigger="default/second-0", ends="default/first-0")
    service = make_service(tmp_path, cluster, poll_interval=30, interval=30)
    try:
        submit(service, "first", resources={"gpu": 1})
        service.run_cycle()
        assert phase(service, "first") == "Running"
        service.ensure_running()
        submit(service, "second", resources={"gpu": 1})
        submit(service, "third", resources={"gpu": 1})
        for _ in range(100):
            await asyncio.sleep(0.02)
            if phase(service, "third") == "Running":
                break
        assert phase(service, "first") == "Succeeded"
        assert phase(service, "second") == "Running" and phase(service, "third") == "Running"
    finally:
        await service.close()
        service.store.close()


def test_a_deep_backlog_waits_in_order_with_its_reason(tmp_path):
    # 8 GPUs, project 'default' deserves 2 and is limited to 3: 40 one-GPU trainings wait. A cycle looks at
    # the first 4 of them only (3 could run, the 4th meets the limit); every one behind
    # shows the same reason, and as the running ones end the next ones start in order.
    cluster = SimulatedCluster(simulated_nodes(1, gpus=8))
    service = make_service(tmp_path, cluster, gpus=8)
    try:
        service.store.put_project(Project(name="default", department="default", deserved={"gpu": 2},
                                          limit={"gpu": 3}))
        for i in range(40):
            submit(service, f"t{i:02d}", resources={"gpu": 1})
        service.run_cycle()
        running = [w.spec.name for w in service.list(phase="Running")]
        assert running == ["t00", "t01", "t02"]
        reasons = {w.spec.name: w.status.pending_reason for w in service.list(phase="Pending")}
        assert len(reasons) == 37 and len(set(reasons.values())) == 1
        assert "project 'default' limit" in reasons["t39"]
        cluster.finish("default/t00-0", 0)
        cluster.finish("default/t01-0", 0)
        service.run_cycle()
        assert [w.spec.name for w in service.list(phase="Running")] == ["t02", "t03", "t04"]
    finally:
        service.store.close()


def test_each_waiting_workload_s_reason_names_its_own_pod(service, cluster):
    # alike workloads share one placement attempt per cycle (and the deep-backlog window
    # holds some back); the reason each one shows must still be about its own pod
    for i in range(7):
        submit(service, f"train-{i}", resources={"gpu": 1})
    service.run_cycle()
    waiting = [f"train-{i}" for i in range(7) if phase(service, f"train-{i}") == "Pending"]
    assert len(waiting) == 5
    for name in waiting:
        reason = service.get("default", name).status.pending_reason
        assert f"default/{name}-0" in reason, reason
        assert not any(f"default/{other}-0" in reason for other in waiting if other != name), reason


# ------------------------------------------------------------ one bad workload (issue 14)


def _store_raw(store, name: str, edit) -> None:
    """Rewrite a stored workload's JSON as an older version might have written it."""
    import json
    import sqlite3

    db = sqlite3.connect(store.path)
    (body,) = db.execute("SELECT body FROM workloads WHERE name = ?", (name,)).fetchone()
    data = json.loads(body)
    edit(data)
    db.execute("UPDATE workloads SET body = ? WHERE name = ?", (json.dumps(data), name))
    db.commit()
    db.close()


def test_a_stored_value_no_cycle_can_use_fails_that_workload_alone(tmp_path, cluster):
    """'1e309' bytes was accepted by older versions; then every cycle failed with
    OverflowError, across restarts. Now the store loads it, the first cycle marks that
    workload Failed with the reason, and the others are scheduled."""
    first = make_service(tmp_path, cluster)
    submit(first, "bad", resources={"memory": "1Gi"})
    submit(first, "too-many", kind="distributed", workers=2)
    _store_raw(first.store, "bad", lambda d: d["spec"]["resources"].update(memory="1" + "0" * 309))
    _store_raw(first.store, "too-many", lambda d: d["spec"].update(workers=100_000, min_available=100_001))
    first.store.close()

    second = make_service(tmp_path, cluster)  # a restart on the same store
    submit(second, "good", resources={"gpu": 1})
    second.run_cycle()
    assert phase(second, "good") == "Running"
    bad = second.get("default", "bad")
    assert bad.status.phase.value == "Failed"
    assert bad.status.message.startswith("cannot be scheduled: resources.memory: must be") and "1Pi" in bad.status.message
    assert any(e.type == "Failed" and "cannot be scheduled" in e.message for e in second.store.events(workload="bad"))
    # over a maximum that loading itself checks: set aside whole (nothing lost) and reported
    problems = {p["name"]: p for p in second.store.load_problems}
    assert problems["too-many"]["action"] == "quarantined" and "workers" in problems["too-many"]["message"]
    assert [q["name"] for q in second.store.quarantined_workloads()] == ["too-many"]
    second.run_cycle()  # and the next cycles go on
    second.delete("default", "bad", ME)
    second.run_cycle()
    assert phase(second, "good") == "Running"
    second.store.close()
