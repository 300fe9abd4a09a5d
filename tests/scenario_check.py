"""Compare a scenario runner result with a scenario's ``expected`` block."""

from __future__ import annotations


def _task_names(sc: dict, job: str) -> list[str]:
    for j in sc["jobs"]:
        if j["name"] == job:
            return [t["name"] for t in j["tasks"]]
    return []


def mismatches(sc: dict, state: dict) -> list[str]:
    exp = sc.get("expected") or {}
    problems = []
    checks: list[tuple[str, dict]] = []
    for job, e in (exp.get("jobs") or {}).items():
        for t in _task_names(sc, job):
            checks.append((t, e))
    for task, e in (exp.get("tasks") or {}).items():
        checks.append((task, e))
    for task, e in checks:
        got = state["tasks"].get(task)
        if got is None:
            problems.append(f"{task}: missing from result")
            continue
        if e.get("outcome") and got["outcome"] != e["outcome"]:
            problems.append(f"{task}: outcome {got['outcome']} != expected {e['outcome']}")
        if e.get("node") and got["node"] != e["node"]:
            problems.append(f"{task}: node {got['node']} != expected {e['node']}")
    for node, e in (exp.get("nodes") or {}).items():
        got = state["nodes"].get(node)
        for k in ("idle_gpus", "releasing_gpus"):
            if k in e and (got is None or abs(got[k] - e[k]) > 1e-9):
                problems.append(f"node {node}: {k} {None if got is None else got[k]} != expected {e[k]}")
    return problems


def check(sc: dict, out: dict) -> list[str]:
    if out.get("error"):
        return [f"error: {out['error']}"]
    problems = mismatches(sc, out["result"])
    for i, st in enumerate(out.get("stable") or []):
        problems += [f"stable round {i + 1}: {p}" for p in mismatches(sc, st)]
    return problems
