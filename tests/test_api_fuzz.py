"""Fuzz the REST API against its own OpenAPI document (schemathesis, issue 14): no answer
is a 5xx and every answer conforms to the document.

Only the reading operations (GET) are fuzzed: a fuzzed POST /workloads would run its
generated command as a process on this machine. Logs and the event stream (streams) are
left out too. ``API_FUZZ_EXAMPLES`` sets the examples per operation (default 10); the
``slow`` test runs 100.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from live_server import LiveServer

schemathesis = pytest.importorskip("schemathesis")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "10"))


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    server = LiveServer(tmp_path_factory.mktemp("fuzz"))
    server.env["PYTHONPATH"] = str(ROOT)  # the code of this checkout, whatever is installed
    server.start()
    server.api("POST", "workloads", {"name": "kept", "command": "sleep 60"})
    yield server
    server.end_workloads()
    server.stop()


def fuzz(live: LiveServer, examples: int) -> list:
    auth = {"Authorization": f"token {live.token}"}
    schema = schemathesis.openapi.from_url(live.url + "runai/api/v1/openapi.json", headers=auth)
    problems: list = []
    fuzzed = 0
    for result in schema.get_all_operations():
        op = result.ok()
        if op.method.upper() != "GET" or op.path.endswith(("/logs", "/events")):
            continue
        fuzzed += 1

        @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(op.as_strategy())
        def run(case):
            response = case.call(base_url=live.url.rstrip("/"), headers=auth)
            if response.status_code >= 500:
                problems.append((op.path, case.path_parameters, case.query, response.status_code))
            try:
                case.validate_response(response)
            except Exception as exc:  # schemathesis' failure group: the response does not conform
                problems.append((op.path, case.path_parameters, case.query, str(exc)[:500]))

        run()
    assert fuzzed >= 8, "the document lost its operations"
    return problems


def test_the_api_answers_every_generated_request_as_documented(live):
    assert fuzz(live, EXAMPLES) == []


@pytest.mark.slow
def test_the_api_answers_every_generated_request_as_documented_deeper(live):
    assert fuzz(live, 100) == []
