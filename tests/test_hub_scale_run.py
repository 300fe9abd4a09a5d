"""The hub-scale benchmark runs (a real server, several users with open event streams) and
reports every figure; what it checks on the way: no request failed, every live event carried
its workload, and no user got an event of a project it may not see. Never how fast."""

import json
import subprocess
import sys
from numbers import Number
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIGURES = ("requests", "requests_per_s", "latency_p50_ms", "latency_p99_ms", "steady_p99_ms", "events_delivered",
           "events_per_s",
           "memory_start_mib", "memory_peak_mib")


@pytest.mark.timeout(240)
def test_hub_scale_quick_reports_every_figure_and_events_stay_in_scope():
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "hub_scale.py"), "--quick", "--json"],
                          capture_output=True, text=True, timeout=220, cwd=REPO)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert set(figures["phases"]) == {"refetch", "apply"} and set(figures["ratios"]) >= {"latency_p99"}
    for phase in figures["phases"].values():
        for key in FIGURES:
            assert isinstance(phase[key], Number), f"{key} missing in {phase}"
        assert phase["request_errors"] == 0
        assert phase["events_delivered"] > 0 and phase["foreign_events"] == 0
        # every live event of this run is a workload's, and carries it (a Deleted one carries null)
        deleted = phase["events_delivered"] - phase["events_with_object"]
        assert 0 <= deleted < phase["events_delivered"]
