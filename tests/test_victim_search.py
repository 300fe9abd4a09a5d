"""The victim search decides each rejected scenario with its restores deferred
(:meth:`Solver._move_victims` with ``defer=True``); the kept scenario is applied
exactly. Both must agree on every scenario: which victims stay evicted, which move
and where. Checked here on generated snapshots and on the benchmark's cluster."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given

from jupyter_runai.scheduler import schedule
from jupyter_runai.scheduler import victims as V
from jupyter_runai.scheduler.session import RELEASING

from test_properties import PROPS, regression_allocated_victims, regression_move_grows_quota, snapshots

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


def _outcome(solver, victims, restored):
    sess = solver.sess
    evicted = [(j.name, tuple(p.name for p in c if p.status is RELEASING and id(p) not in restored))
               for j, c in victims]
    pods = sorted((p.name, "running" if id(p) in restored else p.status.value,
                   p.node.name if p.node else None, p.devices) for _j, c in victims for p in c)
    ghosts = sorted((g.name, g.node.name) for g, _p in sess.ghosts if g.status is RELEASING)
    return evicted, pods, ghosts


def _install(monkeypatch) -> dict:
    """Run every simulation in both modes first; record any disagreement."""
    seen = {"scenarios": 0, "different": []}
    original = V.Solver._simulate

    def simulate(self, n, keep):
        sess = self.sess
        self._evict_prefix(n)
        mark = sess.checkpoint()
        victims = self.chunks[:n]
        outs = []
        for defer in (True, False):
            ok = self.place_job()
            restored = set()
            if ok and self.allow_moves:
                restored, _back = self._move_victims(victims, defer=defer)
            outs.append((ok, _outcome(self, victims, restored) if ok else None))
            sess.rollback(mark)
        seen["scenarios"] += 1
        if outs[0] != outs[1]:
            seen["different"].append((self.job.name, n))
        return original(self, n, keep)

    monkeypatch.setattr(V.Solver, "_simulate", simulate)
    return seen


@pytest.fixture
def compare_modes(monkeypatch):
    return _install(monkeypatch)


@PROPS
@given(snapshots)
def test_deferred_restores_decide_like_applied_ones(snap):
    mp = pytest.MonkeyPatch()
    try:
        seen = _install(mp)
        schedule(snap)
    finally:
        mp.undo()
    assert not seen["different"]


def test_deferred_restores_on_the_benchmark_cluster(compare_modes):
    import engine as bench

    snap = bench.full_cycle_snapshot(60, 1200, 7)[0]
    schedule(snap)
    schedule(bench.large_reclaim_snapshot(200, 8, 2024)[0])
    schedule(regression_allocated_victims())
    schedule(regression_move_grows_quota())
    assert compare_modes["scenarios"] > 50
    assert not compare_modes["different"]


# ------------------------------------------------ fractional victims free whole devices
from jupyter_runai.scheduler.types import (  # noqa: E402
    Job, Node, Pod, PodStatus, Queue, QueueResources, Snapshot)


def _frac_snapshot(action: str, victims: list[tuple[float | None, int]], need: int,
                   others: list[tuple[float | None, int, bool]] = ()) -> Snapshot:
    """One 4-GPU node. ``victims``: (fraction or None for a whole GPU, device) of
    low-priority preemptible one-pod jobs; ``others``: (fraction, device, preemptible)
    of non-victims (non-preemptible, or in the preemptor's project at its priority).
    For ``preempt`` everything is in project a; for ``reclaim`` the victims are in b
    (deserved 0) and the preemptor's project a deserves the whole node."""
    node = Node("n0", gpus=4, gpu_memory_mib=40000, cpu_millis=64000, memory_bytes=1e12)
    queues = [Queue("d"),
              Queue("a", parent="d", resources={"gpu": QueueResources(deserved=4 if action == "reclaim" else 0)}),
              Queue("b", parent="d", resources={"gpu": QueueResources(deserved=0)})]
    vq = "b" if action == "reclaim" else "a"

    def pod(name, frac, dev):
        if frac is None:
            return Pod(name, gpus=1, status=PodStatus.RUNNING, node="n0", devices=[dev])
        return Pod(name, gpu_fraction=frac, status=PodStatus.RUNNING, node="n0", devices=[dev])

    jobs = [Job(f"v{i}", vq, priority=50, created_order=i, pods=[pod(f"v{i}-0", f, d)])
            for i, (f, d) in enumerate(victims)]
    jobs += [Job(f"o{i}", "a", priority=100 if not pre else 75, preemptible=pre, created_order=20 + i,
                 pods=[pod(f"o{i}-0", f, d)]) for i, (f, d, pre) in enumerate(others)]
    jobs.append(Job("hi", "a", priority=75, preemptible=True, created_order=50,
                    pods=[Pod("hi-0", gpus=need)]))
    return Snapshot(nodes=[node], queues=queues, jobs=jobs)


@pytest.mark.parametrize("action", ["preempt", "reclaim"])
@pytest.mark.parametrize("frac", [None, 0.9, 0.5])
def test_fractional_victims_free_their_devices_for_whole_gpus(action, frac):
    # four low-priority pods, one per device: whole GPUs or fractions
    snap = _frac_snapshot(action, [(frac, d) for d in range(4)], need=3)
    res = schedule(snap)
    (bind,) = [b for b in res.binds if b.pod == "hi-0"]
    assert len(bind.devices) == 3 and bind.pipelined
    evicted = {e.pod for e in res.evictions if e.action == "evict"}
    # each device the job takes is freed by evicting everything on it (or moving it away)
    on = {d: f"v{d}-0" for d in range(4)}
    gone = evicted | {b.pod for b in res.binds if b.pod != "hi-0"}
    assert all(on[d] in gone for d in bind.devices)
    assert len(evicted) <= 3
    assert "hi" not in res.pending_reasons


@pytest.mark.parametrize("action", ["preempt", "reclaim"])
def test_fractions_sharing_a_device_are_evicted_together(action):
    # eight 0.5 pods, two per device: a 2-GPU job needs all four pods of two devices
    snap = _frac_snapshot(action, [(0.5, d // 2) for d in range(8)], need=2)
    res = schedule(snap)
    (bind,) = [b for b in res.binds if b.pod == "hi-0"]
    assert len(bind.devices) == 2
    holders = {f"v{i}-0": i // 2 for i in range(8)}
    evicted = {e.pod for e in res.evictions if e.action == "evict"}
    moved = {b.pod for b in res.binds if b.pod != "hi-0"}
    for d in bind.devices:
        assert {p for p, dev in holders.items() if dev == d} <= evicted | moved


@pytest.mark.parametrize("action", ["preempt", "reclaim"])
def test_fractional_victims_left_alone_when_evicting_them_cannot_free_enough(action):
    # devices 2 and 3 keep non-preemptible work (a whole GPU; a fraction beside a
    # victim): evicting every victim frees two whole devices, the job needs three
    snap = _frac_snapshot(action, [(0.9, 0), (0.9, 1), (0.5, 3)], need=3,
                          others=[(None, 2, False), (0.5, 3, False)])
    res = schedule(snap)
    assert not res.evictions
    assert not [b for b in res.binds if b.pod == "hi-0"]
    assert "hi" in res.pending_reasons


def test_fraction_on_a_device_shared_with_a_non_victim_is_not_evicted():
    # v0 shares device 0 with non-preemptible work: evicting it frees no whole device;
    # the job takes devices 1-3 (whole-GPU victims) instead
    snap = _frac_snapshot("preempt", [(0.3, 0), (None, 1), (None, 2), (None, 3)], need=3,
                          others=[(0.5, 0, False)])
    res = schedule(snap)
    (bind,) = [b for b in res.binds if b.pod == "hi-0"]
    assert sorted(bind.devices) == [1, 2, 3]
    assert {e.pod for e in res.evictions} == {"v1-0", "v2-0", "v3-0"}
