"""The acceptance contract: KAI-Scheduler's scenarios, run through our engine and runner."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_runai.sim.scenarios import run_file, run_scenario

from scenario_check import check

# a copy of shared/scenarios/kai_examples.json, so that the contract runs wherever the repo does
EXAMPLES = Path(__file__).resolve().parent / "data" / "kai_examples.json"

SCENARIOS = json.loads(EXAMPLES.read_text())


@pytest.mark.parametrize("index", range(len(SCENARIOS)), ids=[f"{i}-{s['action']}" for i, s in enumerate(SCENARIOS)])
def test_kai_scenario(index):
    sc = SCENARIOS[index]
    out = run_scenario(sc)
    assert out["name"] == sc["name"]
    problems = check(sc, out)
    assert not problems, f"{sc['name']}:\n" + "\n".join(problems)


def test_full_cycle_reports_stable_rounds():
    sc = next(s for s in SCENARIOS if s["action"] == "full-cycle")
    out = run_scenario(sc)
    assert len(out["stable"]) == sc.get("stable_rounds", 5)


def test_single_action_has_no_stable_rounds():
    sc = next(s for s in SCENARIOS if s["action"] == "allocate")
    assert run_scenario(sc)["stable"] == []


def test_bad_scenario_reports_error_and_others_still_run(tmp_path):
    good = SCENARIOS[0]
    bad = dict(good, name="broken", queues=[])  # jobs name queues that do not exist
    unknown = dict(good, name="odd action", action="teleport")
    path = tmp_path / "s.json"
    path.write_text(json.dumps([bad, good, unknown, {"name": "not even a scenario"}]))
    out = run_file(str(path))
    assert [o["name"] for o in out] == ["broken", good["name"], "odd action", "not even a scenario"]
    assert "does not exist" in out[0]["error"] and out[0]["result"] is None
    assert out[1]["error"] is None and not check(good, out[1])
    assert "teleport" in out[2]["error"]
    assert out[3]["error"]


def test_command_line_prints_one_object_per_scenario(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps(SCENARIOS[:3]))
    proc = subprocess.run([sys.executable, "-m", "jupyter_runai.sim", "scenarios", str(path)],
                          capture_output=True, text=True, check=True)
    out = json.loads(proc.stdout)
    assert [o["name"] for o in out] == [s["name"] for s in SCENARIOS[:3]]
    for o in out:
        assert set(o) == {"name", "error", "result", "stable"}
        for task in o["result"]["tasks"].values():
            assert task["outcome"] in {"pending", "running", "placed", "pipelined", "evicted"}
        for node in o["result"]["nodes"].values():
            assert set(node) == {"idle_gpus", "releasing_gpus"}
