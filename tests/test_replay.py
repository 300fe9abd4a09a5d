"""The Philly replay (``python -m jupyter_runai.sim replay``) on tiny synthetic traces: invariants only."""

from __future__ import annotations

import json

import pytest

from jupyter_runai.sim import replay as R
from jupyter_runai.sim.__main__ import main

HEADER = "timestamp,duration,num_gpus,gpu_time,cluster\n"


def write_trace(path, rows):
    """rows: (seconds after 2017-10-01 00:00:00, duration, gpus, vc)."""
    lines = [HEADER]
    for t, d, g, vc in rows:
        h, rest = divmod(int(t), 3600)
        m, s = divmod(rest, 60)
        day, h = divmod(h, 24)
        lines.append(f"2017-10-{1 + day:02d} {h:02d}:{m:02d}:{s:02d},{d},{g},{d * g},{vc}\n")
    path.write_text("".join(lines))
    return path


@pytest.fixture
def mixed(tmp_path):
    rows = []
    for k in range(60):  # a busy mix: two VCs, 1-16 GPU jobs, some long
        vc = "aaa" if k % 3 else "bbb"
        gpus = (1, 1, 2, 4, 8, 16)[k % 6]
        rows.append((k * 97, 200 + (k * 731) % 9000, gpus, vc))
    return write_trace(tmp_path / "mixed.csv", rows)


def test_load_trace_sorts_by_submit_and_cuts(tmp_path):
    path = write_trace(tmp_path / "t.csv", [(50, 10, 1, "x"), (10, 20, 2, "y"), (30, 30, 1, "x")])
    cut = R.load_trace(path, 2)
    assert [j.duration for j in cut] == [20, 30]
    assert cut[0].submit == 0 and cut[1].submit == 20


def test_gang_shape():
    assert R.gang_shape(1, 8) == (1, 1)
    assert R.gang_shape(8, 8) == (1, 8)
    assert R.gang_shape(12, 8) == (2, 6)
    assert R.gang_shape(24, 8) == (3, 8)
    assert R.gang_shape(128, 8) == (16, 8)


def test_jain():
    assert R.jain([2.0, 2.0, 2.0]) == pytest.approx(1.0)
    assert R.jain([1.0, 0.0, 0.0, 0.0]) == pytest.approx(0.25)


@pytest.mark.parametrize("policy", R.POLICIES)
def test_invariants(mixed, policy):
    cut = R.load_trace(mixed, None)
    f = R.replay(cut, policy, gpus=32, gpus_per_node=8, checkpoint=600, check=True, details=True, period=0)
    jobs = f["per_job"]
    assert f["jobs"] == len(cut) == 60
    for j in jobs:
        if j["finish"] is None:
            continue
        assert j["first_start"] >= j["submit"]
        assert j["finish"] - j["submit"] >= j["duration"] - 1e-6  # never faster than the trace
        assert j["lost_gpu_s"] <= j["preemptions"] * 600 * j["gpus"] + 1e-6  # at most one checkpoint lost each
    # GPU-seconds allocated = the work done plus the work lost to preemptions
    work = sum(j["duration"] * j["gpus"] for j in jobs if j["finish"] is not None)
    lost = sum(j["lost_gpu_s"] for j in jobs)
    assert f["gpu_seconds_allocated"] == pytest.approx(work + lost, rel=1e-6)
    assert 0 < f["utilization_mean_pct"] <= 100
    assert all(0 <= u <= 100 + 1e-9 for u in f["utilization_hourly_pct"])
    assert 0 < f["fairness_jain_mean_slowdown"] <= 1
    if policy == "fifo":
        assert f["preemptions"] == 0 and f["finished"] == 60
        # arrival order: a job never starts before an earlier one that fits the same free GPUs... at least
        # the first job starts at once
        assert jobs[0]["first_start"] == jobs[0]["submit"]
    if policy == "ours":
        assert f["finished"] == 60
    if policy == "ours-no-overquota":
        deserved = f["deserved_by_project"]
        too_big = sum(1 for j in jobs if j["gpus"] > deserved[j["project"]])
        assert f["never_ran"] == too_big
        assert f["finished"] == 60 - too_big


def test_reclaim_gives_a_late_project_its_quota(tmp_path):
    # project aaa fills the cluster with long jobs; bbb (half of the GPU-time) arrives later
    rows = [(0, 20_000, 8, "aaa") for _ in range(4)] + [(100, 20_000, 8, "bbb") for _ in range(2)]
    rows += [(5_000, 20_000, 8, "aaa")]
    cut = R.load_trace(write_trace(tmp_path / "r.csv", rows), None)
    ours = R.replay(cut, "ours", gpus=32, gpus_per_node=8, checkpoint=1800, check=True, details=True, period=0)
    fifo = R.replay(cut, "fifo", gpus=32, gpus_per_node=8, checkpoint=1800, check=True, details=True, period=0)
    bbb_ours = [j for j in ours["per_job"] if j["project"] == "bbb"]
    bbb_fifo = [j for j in fifo["per_job"] if j["project"] == "bbb"]
    assert ours["preemptions"] > 0
    # bbb deserves 9 of the 32 GPUs (2/7 of the GPU-time): one 8-GPU job reclaims at once
    assert min(j["first_start"] for j in bbb_ours) == 100
    assert min(j["first_start"] for j in bbb_fifo) == 20_000
    for j in ours["per_job"]:  # progress before the preemption was checkpointed at 0 (100 s < 1800 s)
        assert j["lost_gpu_s"] <= j["preemptions"] * 1800 * j["gpus"]


def test_period_coalesces_cycles(mixed):
    cut = R.load_trace(mixed, None)
    every = R.replay(cut, "ours", gpus=32, period=0)
    coarse = R.replay(cut, "ours", gpus=32, period=600)
    assert coarse["cycles"] < every["cycles"]
    assert coarse["finished"] == every["finished"] == 60


def test_cli_json(mixed, capsys):
    assert main(["replay", "--trace", str(mixed), "--jobs", "30", "--gpus", "32", "--json", "--quiet",
                 "--policy", "fifo", "--policy", "ours"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"fifo", "ours"}
    for f in report.values():
        assert f["jobs"] == 30
        for key in ("mean", "p50", "p99"):
            assert f["jct_s"][key] is not None and f["queueing_delay_s"][key] is not None


def test_cli_table(mixed, capsys):
    assert main(["replay", "--trace", str(mixed), "--jobs", "20", "--gpus", "16", "--quiet"]) == 0
    out = capsys.readouterr().out
    for policy in R.POLICIES:
        assert policy in out
