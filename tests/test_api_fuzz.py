"""Fuzz the REST API against its own OpenAPI document (schemathesis, issue 14): no answer
is a 5xx, every answer conforms to the document, and an error answer changed nothing.

Every operation is fuzzed, the mutating ones too (submit, stop, resume, delete; data
sources; credentials), with data that fits the document and data that does not. The
server has no node at all (``local_node`` off, no virtual nodes), so nothing a fuzzed
submission asks for can ever be placed: nothing runs on this machine, and the test checks
that no pod directory was ever made. Logs and the event stream (streams) are left out.
``API_FUZZ_EXAMPLES`` sets the examples per operation and mode (default 8); the ``slow``
test runs 60.
"""

from __future__ import annotations

import os
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
EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "8"))
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


def fuzz(live: LiveServer, examples: int) -> list:
    auth = {"Authorization": f"token {live.token}"}
    schema = schemathesis.openapi.from_url(live.url + "runai/api/v1/openapi.json", headers=auth)
    before = listing(live)
    acknowledged: dict[str, set[str]] = {key: set(names) for key, names in before.items()}
    problems: list = []
    fuzzed: set[str] = set()
    for result in schema.get_all_operations():
        op = result.ok()
        if op.path.endswith(("/logs", "/events")):
            continue
        fuzzed.add(f"{op.method.upper()} {op.path}")
        # half of the cases name the project that exists, so the handlers get past the lookup
        known = {"project": PROJECT} if "{project}" in op.path else None
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            strategies = [op.as_strategy(generation_mode=mode)]
            if known:
                strategies.append(op.as_strategy(generation_mode=mode, path_parameters=known))

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
    kept = live.workload("kept")
    assert kept["status"]["phase"] == "Pending", kept["status"]
    assert kept["status"]["pending_reason"], kept["status"]
    assert pod_dirs(live) == [], "a fuzzed workload started a process"


def test_the_api_answers_every_generated_request_as_documented(live):
    assert fuzz(live, EXAMPLES) == []
    check_nothing_ran(live)


@pytest.mark.slow
def test_the_api_answers_every_generated_request_as_documented_deeper(live):
    assert fuzz(live, 60) == []
    check_nothing_ran(live)
