"""Minimum runtime: a running job younger than its project's reclaim / preempt minimum
is no victim (its elastic pods above the gang minimum excepted); older ones are."""

from __future__ import annotations

import pytest

from jupyter_runai.scheduler import schedule
from jupyter_runai.scheduler.types import Job, Node, Pod, PodStatus, Queue, QueueResources, Snapshot

NOW = 10_000.0


def _running(name: str, queue: str, started: float | None, gpus: int = 1, pods: int = 1, first_dev: int = 0,
             min_available: int | None = None, priority: int = 50, order: int = 0, node: str = "n0") -> Job:
    return Job(name, queue, priority=priority, created_order=order, min_available=min_available,
               pods=[Pod(f"{name}-{k}", index=k, gpus=gpus, status=PodStatus.RUNNING, node=node,
                         devices=list(range(first_dev + k * gpus, first_dev + (k + 1) * gpus)),
                         started_at=started)
                     for k in range(pods)])


def _snapshot(victims: list[Job], pending: Job, *, reclaim: float = 0.0, preempt: float = 0.0,
              queue_reclaim: dict[str, float] | None = None, dept_reclaim: float | None = None,
              queue_preempt: dict[str, float] | None = None) -> Snapshot:
    """One node of 4 GPUs; project a deserves them all, b nothing (b runs over quota)."""
    qr = queue_reclaim or {}
    qp = queue_preempt or {}
    queues = [Queue("d", reclaim_min_runtime=dept_reclaim),
              Queue("a", parent="d", created_order=1, resources={"gpu": QueueResources(deserved=4)},
                    reclaim_min_runtime=qr.get("a"), preempt_min_runtime=qp.get("a")),
              Queue("b", parent="d", created_order=2, resources={"gpu": QueueResources(deserved=0)},
                    reclaim_min_runtime=qr.get("b"), preempt_min_runtime=qp.get("b"))]
    node = Node("n0", gpus=4, gpu_memory_mib=40000, cpu_millis=64000, memory_bytes=1e12)
    return Snapshot(nodes=[node], queues=queues, jobs=victims + [pending], now=NOW,
                    reclaim_min_runtime=reclaim, preempt_min_runtime=preempt)


def _pending(queue: str = "a", gpus: int = 4, priority: int = 50) -> Job:
    return Job("new", queue, priority=priority, created_order=99, pods=[Pod("new-0", gpus=gpus)])


def _evicted(res) -> set[str]:
    return {e.job for e in res.evictions}


@pytest.mark.parametrize("age, reclaimed", [(100.0, False), (599.0, False), (600.0, True), (5000.0, True)])
def test_reclaim_respects_the_minimum_runtime(age, reclaimed):
    snap = _snapshot([_running("old", "b", NOW - age, gpus=4)], _pending(), reclaim=600.0)
    res = schedule(snap)
    assert (_evicted(res) == {"old"}) is reclaimed
    assert ("new" in res.pending_reasons) is not reclaimed


def test_no_minimum_and_unknown_start_times_protect_nothing():
    # default 0: KAI's behaviour
    assert _evicted(schedule(_snapshot([_running("v", "b", NOW - 1, gpus=4)], _pending()))) == {"v"}
    # a pod without a start time is not protected
    assert _evicted(schedule(_snapshot([_running("v", "b", None, gpus=4)], _pending(), reclaim=600.0))) == {"v"}


def test_only_the_young_job_is_protected():
    # two 2-GPU jobs of b: the young one keeps running, the old one makes room for a 2-GPU job of a
    victims = [_running("young", "b", NOW - 60, gpus=2, first_dev=0, order=1),
               _running("old", "b", NOW - 7200, gpus=2, first_dev=2, order=0)]
    res = schedule(_snapshot(victims, _pending(gpus=2), reclaim=600.0))
    assert _evicted(res) == {"old"}
    # the young one is newer, so it would be the first victim without protection
    res = schedule(_snapshot(victims, _pending(gpus=2)))
    assert _evicted(res) == {"young"}


def test_minimum_is_per_project_and_inherited():
    victims = [_running("v", "b", NOW - 300, gpus=4)]
    # the victim's project sets it
    assert not _evicted(schedule(_snapshot(victims, _pending(), queue_reclaim={"b": 600.0})))
    # the reclaimer's own setting does not protect others
    assert _evicted(schedule(_snapshot(victims, _pending(), queue_reclaim={"a": 600.0}))) == {"v"}
    # inherited from the department, overriding the snapshot's default
    assert not _evicted(schedule(_snapshot(victims, _pending(), dept_reclaim=600.0)))
    # the project's own value wins over the department's and the default
    assert _evicted(schedule(_snapshot(victims, _pending(), reclaim=3600.0, dept_reclaim=3600.0,
                                       queue_reclaim={"b": 0.0}))) == {"v"}


def test_preempt_respects_its_own_minimum():
    victims = [_running("low", "a", NOW - 300, gpus=4)]
    hi = _pending("a", priority=75)
    assert _evicted(schedule(_snapshot(victims, hi))) == {"low"}
    assert not _evicted(schedule(_snapshot(victims, hi, preempt=600.0)))
    assert not _evicted(schedule(_snapshot(victims, hi, queue_preempt={"a": 600.0})))
    # the reclaim minimum does not apply to preemption inside the project
    assert _evicted(schedule(_snapshot(victims, hi, reclaim=600.0))) == {"low"}
    assert _evicted(schedule(_snapshot([_running("low", "a", NOW - 900, gpus=4)], hi, preempt=600.0))) == {"low"}


def test_protected_elastic_job_gives_up_only_pods_above_its_minimum():
    # b runs an elastic job of 4 one-GPU pods, gang minimum 2, started just now
    victims = [_running("el", "b", NOW - 60, gpus=1, pods=4, min_available=2)]
    res = schedule(_snapshot(victims, _pending(gpus=2), reclaim=600.0))
    evicted_pods = {e.pod for e in res.evictions}
    assert evicted_pods == {"el-2", "el-3"}  # the pods above the minimum, never the gang
    (bind,) = [b for b in res.binds if b.pod == "new-0"]
    assert len(bind.devices) == 2
    # a job needing more than the elastic pods free gets nothing
    res = schedule(_snapshot(victims, _pending(gpus=3), reclaim=600.0))
    assert not res.evictions and "new" in res.pending_reasons


# ------------------------------------------------------------------ pending reasons
def test_the_reason_names_the_gpus_the_minimum_runtime_protects_and_until_when():
    # NOW is 02:46:40 UTC on the epoch's day: the victim started 100 s ago, 600 s minimum
    victims = [_running("old", "b", NOW - 100, gpus=4)]
    res = schedule(_snapshot(victims, _pending(), reclaim=600.0))
    reason = res.pending_reasons["new"]
    assert reason.startswith("pod new-0 needs 4 whole GPUs on one node; no GPU is idle")
    assert reason.endswith("4 GPUs it could take back from project 'b' are held by pods protected by their "
                           "minimum runtime until 02:55:00 UTC")
    # the same words a few cycles later (a reason that counted down would be a new event each cycle)
    later = _snapshot(victims, _pending(), reclaim=600.0)
    later.now = NOW + 30
    assert schedule(later).pending_reasons["new"] == reason
    # preemption inside the project says so too
    res = schedule(_snapshot([_running("low", "a", NOW - 100, gpus=4)], _pending("a", priority=75), preempt=600.0))
    assert res.pending_reasons["new"].endswith(
        "4 GPUs of lower-priority work it could preempt are held by pods protected by their minimum runtime "
        "until 02:55:00 UTC")
    # a date when the protection ends on another day
    res = schedule(_snapshot([_running("old", "b", NOW - 100, gpus=4)], _pending(), reclaim=86400.0))
    assert res.pending_reasons["new"].endswith("until 1970-01-02 02:45:00 UTC")


def test_the_reason_speaks_of_the_minimum_runtime_only_when_it_is_what_blocks():
    # elastic victim of 4 pods, gang minimum 2, started 60 s ago: its two pods above the
    # minimum are not protected, its gang is. A 3-GPU job would need both extras and the
    # gang: the note counts the gang's 2 GPUs only
    victims = [_running("el", "b", NOW - 60, gpus=1, pods=4, min_available=2)]
    res = schedule(_snapshot(victims, _pending(gpus=3), reclaim=600.0))
    assert res.pending_reasons["new"].endswith(
        "2 GPUs it could take back from project 'b' are held by pods protected by their minimum runtime "
        "until 02:55:40 UTC")
    # nothing protected: the reclaim fails for another reason (a's limit), and the reason
    # says nothing of a minimum runtime
    snap = _snapshot([_running("old", "b", NOW - 7200, gpus=4)], _pending(), reclaim=600.0)
    snap.queues[1].resources["gpu"].limit = 2
    assert "minimum runtime" not in schedule(snap).pending_reasons["new"]
    # protected but of no use (the job could not run even with them): no note either
    snap = _snapshot([_running("old", "b", NOW - 100, gpus=2)], _pending(gpus=5), reclaim=600.0)
    assert "minimum runtime" not in schedule(snap).pending_reasons["new"]


def test_alike_waiting_jobs_get_the_note_too():
    # the second job of the same shape is passed over in reclaim (its kind failed): it still
    # learns why
    victims = [_running("old", "b", NOW - 100, gpus=4)]
    snap = _snapshot(victims, _pending(), reclaim=600.0)
    snap.jobs.append(Job("new2", "a", created_order=100, pods=[Pod("new2-0", gpus=4)]))
    reasons = schedule(snap).pending_reasons
    for name in ("new", "new2"):
        assert reasons[name].endswith("minimum runtime until 02:55:00 UTC"), reasons[name]


# ------------------------------------------------------------- through the service
def test_service_passes_start_times_and_project_minimum(tmp_path):
    """A project's reclaim_min_runtime reaches the engine with the pods' start times:
    beta's workload waits until alpha's borrowed GPU has run for 10 minutes."""
    from datetime import datetime, timedelta, timezone

    from jupyter_runai.clusters.simulated import SimulatedCluster, simulated_nodes
    from jupyter_runai.models import Project
    from jupyter_runai.service import RunaiService, User
    from jupyter_runai.store import Store

    clock = {"now": datetime(2025, 1, 1, tzinfo=timezone.utc)}
    store = Store(tmp_path / "runai.db")
    store.put_project(Project(name="alpha", deserved={"gpu": 1}, reclaim_min_runtime="10m"))
    store.put_project(Project(name="beta", deserved={"gpu": 1}))
    cluster = SimulatedCluster(simulated_nodes(1, gpus=2))
    service = RunaiService(store, cluster, stop_grace_seconds=0, clock=lambda: clock["now"])
    service.start()
    me = User("me", admin=True)

    def phase(name, project):
        return service.get(project, name).status.phase.value

    for name in ("a1", "a2"):
        service.submit({"name": name, "project": "alpha", "command": "run", "resources": {"gpu": 1}}, me)
    service.run_cycle()
    assert {phase(n, "alpha") for n in ("a1", "a2")} == {"Running"}
    service.submit({"name": "b1", "project": "beta", "command": "run", "resources": {"gpu": 1}}, me)
    clock["now"] += timedelta(minutes=9)
    service.run_cycle()
    service.run_cycle()
    assert phase("b1", "beta") == "Pending"  # alpha's workloads are 9 minutes old
    # and it says so (not only that no GPU is idle)
    assert service.get("beta", "b1").status.pending_reason.endswith(
        "1 GPU it could take back from project 'alpha' is held by pods protected by their minimum runtime "
        "until 00:10:00 UTC")
    clock["now"] += timedelta(minutes=2)
    service.run_cycle()  # reclaim: one of alpha's pods is told to stop
    service.run_cycle()  # it stopped; beta's pod starts
    assert phase("b1", "beta") == "Running"
    assert sorted(phase(n, "alpha") for n in ("a1", "a2")) == ["Pending", "Running"]


def test_snapshot_carries_minimum_runtimes():
    from jupyter_runai.models import Department, Project
    from jupyter_runai.snapshot import build_snapshot

    snap = build_snapshot(nodes=[], pools=[], departments=[Department(name="research", reclaim_min_runtime=300)],
                          projects=[Project(name="a", department="research", preempt_min_runtime="1h"),
                                    Project(name="b", department="research")],
                          jobs=[], now=123.0, reclaim_min_runtime=60.0)
    by = {q.name: q for q in snap.queues}
    assert by["department/research"].reclaim_min_runtime == 300
    assert by["a"].preempt_min_runtime == 3600 and by["a"].reclaim_min_runtime is None
    assert by["b"].reclaim_min_runtime is None and by["b"].preempt_min_runtime is None
    assert snap.reclaim_min_runtime == 60.0 and snap.now == 123.0
