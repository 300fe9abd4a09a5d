"""Fuzz the REST API against its own OpenAPI document (schemathesis, issue 14): no answer
is a 5xx, every answer conforms to the document, and an error answer changed nothing.

Every operation is fuzzed, the mutating ones too (submit, stop, resume, delete; data
sources; credentials), with data that fits the document and data that does not. The
server has no node at all (``local_node`` off, no virtual nodes), so nothing a fuzzed
submission asks for can ever be placed: nothing runs on this machine, and the test checks
that no pod directory was ever made. Logs and the event stream (streams) are left out.
``API_FUZZ_EXAMPLES`` sets the examples per operation and mode (default 15); the ``slow``
test runs 100.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from live_server import LiveServer

schemathesis = pytest.importorskip("schemathesis")
# A request that fits the document may still be refused (400): rules that tie fields together
# (a kind's own fields, a command on the local cluster, a data source that must exist) are
# checked by the models, not stated in JSON Schema. Refusing data that does NOT fit the
# document (negative_data_rejection) stays checked.
from schemathesis.checks import positive_data_acceptance  # noqa: E402
from schemathesis.core.failures import FailureGroup  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "15"))
PROJECT = "default"
#: no node at all: whatever is submitted waits, nothing starts a process
NO_NODES = {"LocalCluster": {"local_node": False, "virtual_nodes": []}}


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    server = LiveServer(tmp_path_factory.mktemp("fuzz"), config=NO_NODES)
    server.env["PYTHONPATH"] = str(ROOT)  # the code of this checkout, whatever is installed
    server.start()
    assert server.api("POST", "workloads", {"name": "kept", "command": "sleep 60", "resources": {"gpu": 0}})[0] == 201
    assert server.api("POST", f"projects/{PROJECT}/data-sources",
                      {"name": "kept", "kind": "host_path", "path": str(server.dirs["root"])})[0] == 201
    assert server.api("POST", f"projects/{PROJECT}/credentials",
                      {"name": "kept", "inject_as": "env", "data": {"KEY": "secret"}})[0] == 201
    yield server
    server.end_workloads()
    server.stop()


def pod_dirs(live: LiveServer) -> list[Path]:
    return sorted((live.dirs["state"] / "pods").glob("*/*/*")) if (live.dirs["state"] / "pods").exists() else []


def listing(live: LiveServer) -> dict[str, set[str]]:
    """Names of what the server holds: workloads (project/name), data sources and credentials."""
    out: dict[str, set[str]] = {}
    out["workloads"] = {f"{w['spec']['project']}/{w['spec']['name']}" for w in live.api("GET", "workloads")[1]["workloads"]}
    out["data-sources"] = {d["name"] for d in live.api("GET", f"projects/{PROJECT}/data-sources")[1]["data_sources"]}
    out["credentials"] = {c["name"] for c in live.api("GET", f"projects/{PROJECT}/credentials")[1]["credentials"]}
    return out


def created_key(path: str, case, response) -> tuple[str, str] | None:
    """What a 201 created: (kind, name) as ``listing`` names it."""
    body = response.json()
    if path.endswith("/workloads"):
        return "workloads", f"{body['spec']['project']}/{body['spec']['name']}"
    if path.endswith("/data-sources"):
        return "data-sources", body["name"]
    if path.endswith("/credentials"):
        return "credentials", body["name"]
    return None


#: objects the fuzzer acts on by name (stop, resume, read, delete), made before each run: one
#: workload of each kind, one of them stopped (so that resume has something to do)
TARGET_WORKLOADS = {
    "t-train": {"command": "sleep 60", "resources": {"cpu": "100m"}},
    "t-space": {"kind": "workspace"},
    "t-dist": {"kind": "distributed", "command": "sleep 60", "workers": 2},
    "t-serve": {"kind": "inference", "command": "sleep 60", "min_replicas": 1, "max_replicas": 2},
    "t-stopped": {"command": "sleep 60"},
}
TARGET_SOURCES = {
    "t-path": {"kind": "host_path", "path": "/tmp", "read_only": False},
    "t-git": {"kind": "git", "url": "https://example.invalid/repo.git", "revision": "main"},
}
TARGET_CREDENTIALS = {
    "t-env": {"inject_as": "env", "data": {"TOKEN": "secret"}},
    "t-file": {"inject_as": "file", "data": {"key.pem": "secret"}},
}


def make_targets(live: LiveServer) -> dict[str, list[str]]:
    """(Re)create the objects the fuzzer names; what a fuzzed path names, by collection."""
    for path, items in (("workloads", TARGET_WORKLOADS), (f"projects/{PROJECT}/data-sources", TARGET_SOURCES),
                        (f"projects/{PROJECT}/credentials", TARGET_CREDENTIALS)):
        for name, body in items.items():
            code, answer = live.api("POST", path, {"name": name, **body})
            assert code in (201, 409), answer  # 409: left from an earlier run in this server
    code, answer = live.api("POST", f"workloads/{PROJECT}/t-stopped/stop")
    assert code in (200, 409), answer
    return {"/workloads/": list(TARGET_WORKLOADS), "/data-sources/": list(TARGET_SOURCES),
            "/credentials/": list(TARGET_CREDENTIALS)}


def strategies_for(op, mode, targets: dict[str, list[str]]) -> list:
    """Fuzzed requests for one operation: all generated, and (fitting the document only) with
    the project that exists and, where the path names an object, one that exists."""
    out = [op.as_strategy(generation_mode=mode)]
    if mode != schemathesis.GenerationMode.POSITIVE or "{project}" not in op.path:
        return out
    out.append(op.as_strategy(generation_mode=mode, path_parameters={"project": PROJECT}))
    names = next((names for part, names in targets.items() if part in op.path and "{name}" in op.path), None)
    if names:
        out.append(st.sampled_from(names).flatmap(lambda name: op.as_strategy(
            generation_mode=mode, path_parameters={"project": PROJECT, "name": name})))
    return out


def fuzz(live: LiveServer, examples: int) -> list:
    auth = {"Authorization": f"token {live.token}"}
    schema = schemathesis.openapi.from_url(live.url + "runai/api/v1/openapi.json", headers=auth)
    targets = make_targets(live)
    before = listing(live)
    acknowledged: dict[str, set[str]] = {key: set(names) for key, names in before.items()}
    problems: list = []
    fuzzed: set[str] = set()
    operations = [result.ok() for result in schema.get_all_operations()]
    operations.sort(key=lambda op: op.method.upper() == "DELETE")  # deletes last: the others need targets
    for op in operations:
        if op.path.endswith(("/logs", "/events")):
            continue
        fuzzed.add(f"{op.method.upper()} {op.path}")
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            strategies = strategies_for(op, mode, targets)

            @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck),
                      database=None)
            @given(st.one_of(strategies))
            def run(case):
                response = case.call(base_url=live.url.rstrip("/"), headers=auth, timeout=30)
                where = (op.method.upper(), op.path, case.path_parameters, case.query, repr(case.body)[:300])
                if response.status_code >= 500:
                    problems.append((*where, response.status_code, response.text[:300]))
                try:
                    case.validate_response(response, excluded_checks=[positive_data_acceptance])
                except FailureGroup as exc:  # the response does not conform
                    problems.append((*where, str(exc)[:1500]))
                if response.status_code == 201:
                    made = created_key(op.path, case, response)
                    if made:
                        acknowledged[made[0]].add(made[1])

            try:
                run()
            except Unsatisfiable:  # nothing to break: no parameter and no body
                assert mode == schemathesis.GenerationMode.NEGATIVE, op.path
    assert len(fuzzed) >= 13, f"the document lost its operations: {sorted(fuzzed)}"
    # an error answer means nothing happened: all the server holds was acknowledged by a 201
    # (deletes may have removed some of it)
    time.sleep(0.5)
    for kind, names in listing(live).items():
        unacknowledged = names - acknowledged[kind]
        if unacknowledged:
            problems.append(("an error answer left something behind", kind, sorted(unacknowledged)))
    return problems


def check_nothing_ran(live: LiveServer) -> None:
    """A CPU-only workload waits with a reason; no pod ever started (no pod directory now, and
    no Scheduled event in the store on disk, which also counts workloads deleted since)."""
    kept = live.workload("kept")
    assert kept["status"]["phase"] == "Pending", kept["status"]
    assert kept["status"]["pending_reason"], kept["status"]
    assert pod_dirs(live) == [], "a fuzzed workload started a process"
    db = sqlite3.connect(f"file:{live.dirs['state'] / 'runai.db'}?mode=ro", uri=True)
    try:
        started = db.execute("SELECT workload, message FROM events WHERE type IN ('Scheduled', 'Started')").fetchall()
        submitted = db.execute("SELECT count(*) FROM events WHERE type = 'Submitted'").fetchone()[0]
    finally:
        db.close()
    assert started == [], "a fuzzed workload started a process"
    assert submitted > len(TARGET_WORKLOADS), "the check reads the wrong store"


def test_the_api_answers_every_generated_request_as_documented(live):
    assert fuzz(live, EXAMPLES) == []
    check_nothing_ran(live)


@pytest.mark.slow
def test_the_api_answers_every_generated_request_as_documented_deeper(live):
    assert fuzz(live, 100) == []
    check_nothing_ran(live)
