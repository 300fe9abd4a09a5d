"""The engine benchmark runs and reports every figure (timings are never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from numbers import Number
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "engine.py"

FIGURES = {
    "fill_whole": ("placements_per_s", "cycle_s", "session_build_s", "placed", "pods_to_fill"),
    "fill_fraction": ("placements_per_s", "cycle_s", "session_build_s", "placed", "pods_to_fill"),
    "full_cycle": ("cycle_s", "session_build_s", "decisions", "binds", "evictions", "moves",
                   "pending_workloads", "running_jobs"),
    "gang_no_fit": ("cycle_s", "session_build_s", "decisions", "running_jobs"),
    "reclaim_one": ("cycle_s", "session_build_s", "evictions", "running_jobs"),
    "large_reclaim": ("cycle_s", "session_build_s", "evictions", "evicted_gpus", "needed_gpus", "moves",
                      "running_jobs"),
}


@pytest.fixture(scope="module")
def quick_run():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def report(quick_run):
    return json.loads(quick_run.stdout)


def test_reports_the_machine_and_targets(report):
    assert report["quick"] is True
    assert report["machine"]["cpus"]
    assert set(report["targets"]) == {"fill_rate", "full_cycle_s", "gang_no_fit_s", "reclaim_one_s",
                                      "large_reclaim_s"}


@pytest.mark.parametrize("section", sorted(FIGURES))
def test_every_figure_is_printed(report, section):
    rows = report[section]
    assert rows, f"section {section} is missing"
    for row in rows:
        assert "error" not in row, row
        assert row["capped"] is False, f"{section} was capped in quick mode: {row}"
        for key in FIGURES[section]:
            assert isinstance(row.get(key), Number), f"{section}: figure {key!r} missing in {row}"


def test_checked_scenarios_decide_what_they_must(report):
    (gang,) = report["gang_no_fit"]
    assert gang["correct"] and gang["decisions"] == 0
    (one,) = report["reclaim_one"]
    assert one["correct"] and one["evictions"] == 1
    (large,) = report["large_reclaim"]
    assert large["gang_bound"] and large["evicted_gpus"] >= large["needed_gpus"]


def test_table_output_names_every_section():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--only", "reclaim_one,gang_no_fit"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "reclaim 1 GPU" in proc.stdout and "gang no fit" in proc.stdout
    assert "fill 1-GPU" not in proc.stdout


def test_the_kubernetes_benchmark_reports_binds_and_cache_memory():
    """benchmarks/kube_binds.py runs against the stand-in and prints every figure (none asserted)."""
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "kube_binds.py"), "--quick", "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["nodes"] == 100 and report["binds"] == 200 and report["cached_pods"] == 200
    for key in ("binds_per_s", "creates_per_s", "cache_mib_per_1000_pods", "node_cache_mib_per_1000_nodes"):
        assert isinstance(report[key], Number) and report[key] > 0, key
