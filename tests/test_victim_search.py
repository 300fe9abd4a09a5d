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
