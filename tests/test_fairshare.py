"""Tests of the fair-share division (jupyter_runai.scheduler.fairshare).

* every case of shared/scenarios/fairshare_examples.json (KAI's own numbers, exact float equality);
* focused tests of the subtle rules of FAIRSHARE.md §5-§6, built here;
* the case runner and the ``python -m jupyter_runai.sim fairshare`` entry point;
* a few properties checked on random inputs.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_runai.scheduler.fairshare import (
    UNLIMITED,
    ShareQueue,
    divide_over_quota,
    set_fair_share_tree,
    set_resource_share,
    set_resources_share,
)
from jupyter_runai.sim.fairshare_cases import run_case, run_file

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "tests" / "data" / "fairshare_examples.json"  # a copy of shared/scenarios/

GPU = "gpu"


def _load_examples() -> list[dict]:
    return json.loads(EXAMPLES.read_text(encoding="utf-8"))


_EXAMPLES = _load_examples()


def q(
    name: str,
    order: int,
    *,
    deserved: float = 0.0,
    weight: float = 1.0,
    request: float = 100.0,
    limit: float = UNLIMITED,
    priority: int = 0,
    fair_share: float | None = None,
    parent: str | None = None,
    uid: str = "",
) -> ShareQueue:
    """A single-resource (GPU) queue."""
    return ShareQueue(
        name=name,
        parent=parent,
        priority=priority,
        created_order=order,
        deserved={GPU: deserved},
        limit={GPU: limit},
        weight={GPU: weight},
        request={GPU: request},
        fair_share={} if fair_share is None else {GPU: fair_share},
        uid=uid,
    )


def shares(queues: list[ShareQueue]) -> list[float]:
    return [x.fair_share[GPU] for x in queues]


# --------------------------------------------------------------------------- KAI examples


@pytest.mark.parametrize("case", _EXAMPLES, ids=[c["name"] for c in _EXAMPLES])
def test_kai_example_case(case: dict) -> None:
    result = run_case(case)
    assert result["error"] is None, result["error"]
    assert result["name"] == case["name"]
    divided = case["resources"]
    # every queue and every divided resource is reported
    assert set(result["fair_share"]) == {x["name"] for x in case["queues"]}
    for per_queue in result["fair_share"].values():
        assert set(per_queue) == set(divided)
    # exact float equality, as KAI's tests compare
    for qname, per_resource in case["expected"].items():
        for resource, value in per_resource.items():
            if value is None:
                continue
            got = result["fair_share"][qname][resource]
            assert got == value and float(got).hex() == float(value).hex(), (qname, resource, got, value)
    if case["kai_function"] in ("setResourceShare", "divideOverQuotaResource"):
        assert result["remaining"] is not None
        for resource, value in (case["expected_remaining"] or {}).items():
            if value is not None:
                assert result["remaining"][resource] == value, (resource, result["remaining"], value)
    else:
        assert result["remaining"] is None


def test_examples_do_not_depend_on_queue_list_order() -> None:
    rng = random.Random(7)
    for case in _EXAMPLES:
        shuffled = json.loads(json.dumps(case))
        rng.shuffle(shuffled["queues"])
        assert run_case(shuffled)["fair_share"] == run_case(case)["fair_share"], case["name"]


# --------------------------------------------------------------------------- deserved phase


def test_deserved_phase_is_not_capped_by_the_amount() -> None:
    a = q("a", 0, deserved=3, request=2, weight=0)
    assert set_resource_share(1, [a], GPU) == 0.0  # 1 - 2 = -1, clamped
    assert a.fair_share[GPU] == 2

    qs = [q("a", 0, deserved=5, request=5), q("b", 1, deserved=5, request=5)]
    assert set_resource_share(6, qs, GPU) == 0.0
    assert shares(qs) == [5, 5]  # 10 out of 6


def test_deserved_is_capped_by_request_and_limit() -> None:
    qs = [q("a", 0, deserved=5, request=2, weight=0), q("b", 1, deserved=5, request=9, limit=3, weight=0)]
    assert set_resource_share(20, qs, GPU) == 15
    assert shares(qs) == [2, 3]


def test_unlimited_deserved_counts_as_the_whole_amount_for_each_queue() -> None:
    qs = [q("a", 0, deserved=-1, request=16000), q("b", 1, deserved=-1, request=16000)]
    assert set_resource_share(16000, qs, GPU) == 0.0
    assert shares(qs) == [16000, 16000]


def test_unlimited_deserved_is_capped_by_the_request() -> None:
    c = q("c", 0, deserved=-1, request=5, weight=1)
    assert set_resource_share(8, [c], GPU) == 3
    assert c.fair_share[GPU] == 5


def test_child_fair_share_can_exceed_parent() -> None:
    dept = q("dept", 0, deserved=1, request=5, weight=0)
    child = q("child", 1, deserved=2, request=5, weight=0, parent="dept")
    out = set_fair_share_tree({GPU: 1}, [dept, child])
    assert out == {"dept": {GPU: 1}, "child": {GPU: 2}}


# --------------------------------------------------------------------------- rounding


def test_portions_are_floored_and_the_remainder_goes_to_the_older_queue() -> None:
    # 11 GPUs, deserved 2 + 2, 7 over quota split 1:1 = 3.5 each -> 3 / 3, one unit to the older queue
    qs = [q("a", 0, deserved=2, weight=2, request=6), q("b", 1, deserved=2, weight=2, request=6)]
    assert set_resource_share(11, qs, GPU) == 0.0
    assert shares(qs) == [6, 5]
    # the same queues, but b is the older one
    qs = [q("a", 1, deserved=2, weight=2, request=6), q("b", 0, deserved=2, weight=2, request=6)]
    set_resource_share(11, qs, GPU)
    assert shares(qs) == [5, 6]


def test_remainder_tie_with_equal_age_goes_by_uid() -> None:
    qs = [q("x", 0, uid="zz"), q("y", 0, uid="aa")]
    divide_over_quota(3, qs, GPU)
    assert shares(qs) == [1, 2]


def test_largest_remainder_beats_age_and_weight_plays_no_part_in_the_tie_break() -> None:
    # 5 split 2:1 -> 3.33 / 1.67 -> 3 / 1 with remainders 0.33 / 0.67: the younger,
    # lighter queue has the larger remainder and gets the last unit.
    qs = [q("old", 0, weight=2), q("young", 1, weight=1)]
    assert divide_over_quota(5, qs, GPU) == 0.0
    assert shares(qs) == [3, 2]


def test_portion_that_meets_the_request_is_given_exactly() -> None:
    qs = [q("a", 0, request=4.5), q("b", 1, request=100)]
    assert divide_over_quota(10, qs, GPU) == 0.0
    # round 1: 5 / 5, a takes 4.5 exactly; round 2: b takes the 0.5 left
    assert shares(qs) == [4.5, 5.5]


def test_fraction_is_handed_out_by_the_leftover_step() -> None:
    a = q("a", 0, fair_share=3, request=5)
    assert divide_over_quota(0.5, [a], GPU) == 0.0
    assert a.fair_share[GPU] == 3.5


def test_leftover_claim_survives_a_round_where_the_portion_was_whole() -> None:
    # Round 1 (7 split 2:1:1): a 3.5 -> 3 (claim .5), b 1.75 -> 1 (claim .75), c takes its 1.5.
    # Round 2 (1.5 split 2:1): a 1.0 -> 1 (whole: its claim .5 stays), b 0.5 -> 0 (claim .5).
    # Leftover 0.5: claims tie at .5, the older queue a gets it.
    qs = [q("a", 0, weight=2), q("b", 1, weight=1), q("c", 2, weight=1, request=1.5)]
    assert divide_over_quota(7, qs, GPU) == 0.0
    assert shares(qs) == [4.5, 1, 1.5]


def test_leftover_unit_is_not_capped_by_limit() -> None:
    qs = [q("a", 0, limit=1.5, request=10), q("b", 1, limit=1.5, request=10)]
    assert set_resource_share(2.9, qs, GPU) == 0.0
    assert shares(qs) == [1.9, 1.0]
    assert qs[0].fair_share[GPU] > 1.5  # above its limit


# --------------------------------------------------------------------------- priority


def test_priority_beats_weight() -> None:
    qs = [q("low", 0, priority=1, weight=100, deserved=2, request=6),
          q("high", 1, priority=2, weight=1, deserved=2, request=6)]
    assert set_resource_share(6, qs, GPU) == 0.0
    assert shares(qs) == [2, 4]


def test_lower_bucket_divides_rounding_leftovers_before_the_remainder_hand_out() -> None:
    # 3 over quota: priority-2 pair gets 1.5 each -> 1 / 1 (claims .5 / .5); the 1 unit left
    # goes to the priority-1 queue's weighted round before the hand-out ever runs.
    qs = [q("h1", 0, priority=2), q("h2", 1, priority=2), q("low", 2, priority=1)]
    assert divide_over_quota(3, qs, GPU) == 0.0
    assert shares(qs) == [1, 1, 1]


def test_remainder_hand_out_serves_the_higher_bucket_first() -> None:
    # the low bucket cannot take anything (weight 0), so the unit left goes to the
    # high bucket's older queue by the hand-out.
    qs = [q("h1", 0, priority=2), q("h2", 1, priority=2), q("low", 2, priority=1, weight=0)]
    assert divide_over_quota(3, qs, GPU) == 0.0
    assert shares(qs) == [2, 1, 0]


def test_remainder_even_with_priorities() -> None:
    qs = [q("1", 0, priority=2, deserved=2, weight=2, request=5),
          q("2", 1, priority=2, deserved=2, weight=2, request=5),
          q("3", 2, priority=1, deserved=1, weight=2, request=0)]
    assert set_resource_share(5, qs, GPU) == 0.0
    assert shares(qs) == [3, 2, 0]


# --------------------------------------------------------------------------- weight 0, limit 0, undivided


def test_weight_zero_gets_nothing_over_quota_even_when_idle() -> None:
    qs = [q("a", 0, deserved=3, request=5, weight=0)]
    assert set_resource_share(7, qs, GPU) == 4
    assert shares(qs) == [3]
    qs = [q("a", 0, deserved=1, request=50, weight=0), q("b", 1, deserved=1, request=50, weight=1)]
    assert set_resource_share(10, qs, GPU) == 0.0
    assert shares(qs) == [1, 9]


def test_limit_zero_means_nothing_is_requestable() -> None:
    qs = [q("a", 0, deserved=4, request=10, limit=0), q("b", 1, deserved=1, request=3)]
    assert set_resource_share(10, qs, GPU) == 7
    assert shares(qs) == [0, 3]


def test_capacity_may_stay_undivided() -> None:
    qs = [q("a", 0, deserved=2, weight=2, request=6), q("b", 1, deserved=2, weight=2, request=6)]
    assert set_resource_share(15, qs, GPU) == 3
    assert shares(qs) == [6, 6]
    a = q("a", 0, fair_share=3, request=5)
    assert divide_over_quota(3, [a], GPU) == 1
    assert a.fair_share[GPU] == 5


def test_exact_float_result_from_a_second_round() -> None:
    qs = [q("1", 0, deserved=12, weight=12, request=32.54999999999996),
          q("2", 1, deserved=7, weight=7, request=9.5),
          q("3", 2, deserved=2, weight=2, request=1.65, limit=2)]
    set_resource_share(45, qs, GPU)
    assert shares(qs) == [32.54999999999996, 9.5, 1.65]


# --------------------------------------------------------------------------- multi-resource, tree, defaults


def test_resources_are_divided_independently() -> None:
    a = ShareQueue("a", None, 0, 0, {"gpu": 1, "cpu": 0}, {"gpu": -1, "cpu": -1},
                   {"gpu": 1, "cpu": 3}, {"gpu": 10, "cpu": 10})
    b = ShareQueue("b", None, 0, 1, {"gpu": 1, "cpu": 0}, {"gpu": -1, "cpu": -1},
                   {"gpu": 3, "cpu": 1}, {"gpu": 10, "cpu": 10})
    set_resources_share({"gpu": 6, "cpu": 4}, [a, b])
    assert a.fair_share == {"gpu": 2, "cpu": 3}
    assert b.fair_share == {"gpu": 4, "cpu": 1}


def test_missing_resource_defaults_take_nothing() -> None:
    a = ShareQueue("a", None, 0, 0, {}, {}, {}, {})
    b = q("b", 1)
    assert set_resource_share(4, [a, b], GPU) == 0.0
    assert a.fair_share == {GPU: 0.0}
    assert b.fair_share == {GPU: 4}


def test_tree_children_divide_the_parents_fair_share() -> None:
    queues = [
        q("d1", 0, deserved=3, weight=7),
        q("d2", 1, deserved=1, weight=1),
        q("q1", 2, deserved=2, parent="d1"),
        q("q2", 3, deserved=2, parent="d2"),
        q("q3", 4, deserved=0, weight=3, parent="d1"),
    ]
    out = set_fair_share_tree({GPU: 12}, queues)
    # top: 8 over quota split 7:1 -> d1 10, d2 2
    assert out["d1"] == {GPU: 10} and out["d2"] == {GPU: 2}
    # d1's 10: deserved 2 + 0, then 8 split 1:3 -> q1 4, q3 6
    assert out["q1"] == {GPU: 4} and out["q3"] == {GPU: 6}
    assert out["q2"] == {GPU: 2}


def test_initial_fair_share_is_the_starting_point() -> None:
    a = q("a", 0, fair_share=1, deserved=2, request=10, weight=0)
    assert set_resource_share(5, [a], GPU) == 3
    assert a.fair_share[GPU] == 3


# --------------------------------------------------------------------------- properties

_queue_params = st.tuples(
    st.integers(0, 2),  # priority
    st.sampled_from([0.0, 1.0, 2.0, 3.5, -1.0]),  # deserved
    st.sampled_from([-1.0, -1.0, 0.0, 1.5, 4.0]),  # limit
    st.sampled_from([0.0, 1.0, 2.0, 5.0]),  # weight
    st.sampled_from([0.0, 0.5, 1.0, 3.0, 7.25, 20.0]),  # request
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_queue_params, min_size=1, max_size=8), st.sampled_from([0.0, 1.0, 2.9, 7.0, 13.5, 40.0]))
def test_over_quota_properties(params, amount) -> None:
    queues = [q(f"q{i}", i, priority=p, deserved=d, limit=lim, weight=w, request=r, fair_share=0.0)
              for i, (p, d, lim, w, r) in enumerate(params)]
    remaining = divide_over_quota(amount, queues, GPU)
    assert remaining >= 0
    given_out = sum(x.fair_share[GPU] for x in queues)
    assert given_out == pytest.approx(amount - remaining, abs=1e-9)
    for x, (_p, _d, lim, w, r) in zip(queues, params):
        got = x.fair_share[GPU]
        if w == 0:
            assert got == 0  # weight 0: never anything over quota
        requestable = r if lim == -1 else min(lim, r)
        assert got <= requestable + 1  # only the leftover hand-out may overshoot, by < 1 unit
    # the same division whatever order the list is in
    again = [q(f"q{i}", i, priority=p, deserved=d, limit=lim, weight=w, request=r)
             for i, (p, d, lim, w, r) in enumerate(params)]
    random.Random(len(params)).shuffle(again)
    assert divide_over_quota(amount, again, GPU) == remaining
    assert {x.name: x.fair_share[GPU] for x in again} == {x.name: x.fair_share[GPU] for x in queues}


# --------------------------------------------------------------------------- runner and CLI


def _good_case() -> dict:
    return {
        "name": "good",
        "kai_function": "setResourceShare",
        "resources": ["gpu"],
        "k_value": 0,
        "total": {"gpu": 11, "cpu_millis": None, "memory_bytes": None},
        "queues": [
            {"name": n, "uid": n, "parent": None, "priority": 0, "created_order": i,
             "gpu": {"deserved": 2, "limit": -1, "over_quota_weight": 2, "request": 6,
                     "allocated": 0, "initial_fair_share": 0},
             "cpu_millis": None, "memory_bytes": None}
            for i, n in enumerate(["1", "2"])
        ],
    }


def test_run_case_result_shape() -> None:
    res = run_case(_good_case())
    assert res == {"name": "good", "error": None,
                   "fair_share": {"1": {"gpu": 6}, "2": {"gpu": 5}}, "remaining": {"gpu": 0}}


def test_malformed_cases_give_error_entries_not_a_crash(tmp_path: Path) -> None:
    bad_number = _good_case()
    bad_number["name"] = "bad number"
    bad_number["queues"][0]["gpu"]["request"] = "six"
    unknown_fn = _good_case()
    unknown_fn["name"] = "unknown function"
    unknown_fn["kai_function"] = "nope"
    no_queues = {"name": "no queues", "kai_function": "SetResourcesShare", "total": {"gpu": 1}}
    orphan = _good_case()
    orphan["name"] = "orphan"
    orphan["kai_function"] = "proportionPlugin.setFairShare"
    orphan["queues"][1]["parent"] = "missing"
    no_total = _good_case()
    no_total["name"] = "no total"
    no_total["total"]["gpu"] = None
    cases = [bad_number, _good_case(), unknown_fn, no_queues, orphan, no_total, "not a case"]
    path = tmp_path / "cases.json"
    path.write_text(json.dumps(cases), encoding="utf-8")
    results = run_file(path)
    assert len(results) == len(cases)
    assert results[1]["error"] is None and results[1]["fair_share"] == {"1": {"gpu": 6}, "2": {"gpu": 5}}
    for i in (0, 2, 3, 4, 5, 6):
        r = results[i]
        assert isinstance(r["error"], str) and r["error"], r
        assert r["fair_share"] is None and r["remaining"] is None
    assert results[0]["name"] == "bad number"


def test_cli_prints_a_json_list(tmp_path: Path) -> None:
    if EXAMPLES.exists():
        path = EXAMPLES
        n = len(_EXAMPLES)
    else:
        path = tmp_path / "cases.json"
        path.write_text(json.dumps([_good_case()]), encoding="utf-8")
        n = 1
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-m", "jupyter_runai.sim", "fairshare", str(path)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert isinstance(out, list) and len(out) == n
    for entry in out:
        assert set(entry) == {"name", "error", "fair_share", "remaining"}
        assert entry["error"] is None
        assert isinstance(entry["fair_share"], dict)
        assert entry["remaining"] is None or isinstance(entry["remaining"], dict)
