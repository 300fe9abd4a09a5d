"""The REST API on a real Jupyter server (pytest-jupyter) with the local cluster running
real processes on virtual GPUs."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest

from api_helpers import server_config, wait_for

pytest_plugins = ["pytest_jupyter.jupyter_server"]

PY = sys.executable


@pytest.fixture
def jp_server_config(tmp_path):
    return server_config(tmp_path)


async def test_training_runs_to_success_with_its_output_in_the_logs(api):
    await api.submit(name="hello", command="echo hello from $RUNAI_WORKLOAD on GPU $CUDA_VISIBLE_DEVICES",
                     resources={"gpu": 1})
    done = await api.wait_phase("hello", "Succeeded", "Failed")
    assert done["status"]["phase"] == "Succeeded"
    pod = done["status"]["pods"][0]
    assert pod["node"] and pod["devices"] == [0] and pod["fraction"] is None
    assert "hello from hello on GPU 0" in await api.logs("hello")
    types = [e["type"] for e in done["events"]]
    assert types[:2] == ["Submitted", "Scheduled"] and "Succeeded" in types
    assert done["events"][1]["message"] == f"pod hello-0 started on {pod['node']} device 0"  # one: singular


async def test_failed_training_says_why_and_backoff_restarts_it(api):
    await api.submit(name="fails", command="echo trying; exit 3", backoff_limit=1)
    done = await api.wait_phase("fails", "Failed", "Succeeded")
    assert done["status"]["phase"] == "Failed"
    assert "exited with code 3" in done["status"]["message"]
    assert done["status"]["restarts"] == 1
    assert (await api.logs("fails")).count("trying") >= 1


async def test_two_halves_share_a_device_and_a_third_waits_with_a_reason(api):
    # two virtual GPUs: four halves fill them, the fifth waits
    for i in range(4):
        await api.submit(name=f"half-{i}", command="sleep 30", resources={"gpu": 0.5})
    for i in range(4):
        await api.wait_phase(f"half-{i}", "Running")
    await api.submit(name="half-4", command="sleep 30", resources={"gpu": 0.5})
    waiting = await wait_for(lambda: api.workload("half-4"), lambda w: w["status"]["pending_reason"], 10,
                             "a pending reason")
    assert waiting["status"]["phase"] == "Pending"
    assert "GPU" in waiting["status"]["pending_reason"] or "gpu" in waiting["status"]["pending_reason"]
    code, nodes = await api.get("nodes")
    devices = nodes["nodes"][0]["devices"]
    assert [d["allocated_fraction"] for d in devices] == [1.0, 1.0]
    assert all(len(d["pods"]) == 2 and d["virtual"] for d in devices)
    # stopping one frees its half: the waiting one starts
    code, _ = await api.post("workloads", "default", "half-0", "stop")
    assert code == 200
    await api.wait_phase("half-0", "Stopped")
    await api.wait_phase("half-4", "Running")


async def test_pending_workloads_show_their_place_in_the_project_queue(api):
    # both GPUs taken: the others wait, a higher priority ahead of the older ones
    await api.submit(name="holder", command="sleep 30", resources={"gpu": 2}, preemptible=False)
    await api.wait_phase("holder", "Running")
    for name in ("first", "second"):
        await api.submit(name=name, command="sleep 30", resources={"gpu": 1})
    await api.submit(name="urgent", command="sleep 30", resources={"gpu": 1}, priority_class="build-preemptible")
    code, body = await api.get("workloads")
    assert code == 200, body
    positions = {w["spec"]["name"]: w["status"]["queue_position"] for w in body["workloads"]}
    assert positions == {"holder": None, "urgent": 1, "first": 2, "second": 3}
    assert (await api.workload("second"))["status"]["queue_position"] == 3
    # one leaves the queue: those behind it move up
    code, _ = await api.post("workloads", "default", "urgent", "stop")
    assert code == 200
    assert (await api.workload("second"))["status"]["queue_position"] == 2
    assert (await api.workload("urgent"))["status"]["queue_position"] is None


async def test_a_workspace_placed_and_waiting_for_its_server_is_not_in_the_queue(api):
    # the workspace holds a GPU but never answers on $PORT: it stays Pending ("starting"), yet it is
    # not queued, so the one that waits for a GPU is first in the queue, not second
    await api.submit(name="slow-ws", kind="workspace", command="sleep 30", resources={"gpu": 1})
    starting = await wait_for(lambda: api.workload("slow-ws"),
                              lambda w: any(p["phase"] == "Running" for p in w["status"]["pods"]), 20,
                              "slow-ws's pod to run")
    assert starting["status"]["phase"] == "Pending"
    await api.submit(name="waits", command="sleep 30", resources={"gpu": 2})
    await api.wait_phase("waits", "Pending")
    assert (await api.workload("slow-ws"))["status"]["queue_position"] is None
    assert (await api.workload("waits"))["status"]["queue_position"] == 1


async def test_distributed_pods_see_their_rank_variables(api):
    cmd = "echo rank=$RANK world=$WORLD_SIZE local=$LOCAL_RANK master=$MASTER_ADDR:$MASTER_PORT"
    await api.submit(name="ddp", kind="distributed", workers=2, command=cmd, resources={"gpu": 0.5})
    done = await api.wait_phase("ddp", "Succeeded", "Failed")
    assert done["status"]["phase"] == "Succeeded"
    ports = set()
    for index in range(3):
        line = [x for x in (await api.logs("ddp", pod=index)).splitlines() if x.startswith("rank=")][0]
        assert line.startswith(f"rank={index} world=3")
        ports.add(line.split("master=")[1])
    assert len(ports) == 1 and ports.pop().startswith("127.0.0.1:")


async def test_a_gang_that_cannot_fit_waits_whole(api):
    await api.submit(name="big", kind="distributed", workers=3, command="sleep 5", resources={"gpu": 1})
    waiting = await wait_for(lambda: api.workload("big"), lambda w: w["status"]["pending_reason"], 10, "reason")
    assert waiting["status"]["phase"] == "Pending"
    assert all(p["phase"] == "Pending" for p in waiting["status"]["pods"])


async def test_workspace_runs_until_stopped_and_is_reachable(api, tmp_path):
    server = tmp_path / "serve.py"
    server.write_text(
        "import http.server, os\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        body = f'workspace at {self.path}'.encode()\n"
        "        self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers()\n"
        "        self.wfile.write(body)\n"
        "    def log_message(self, *a): pass\n"
        "http.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n")
    await api.submit(name="ws", kind="workspace", command=[PY, str(server)], resources={"gpu": 0.5})
    running = await api.wait_phase("ws", "Running")
    assert running["status"]["url"].endswith("/runai/proxy/default/ws/")
    assert running["spec"]["preemptible"] is False

    async def page():
        try:
            r = await api.fetch("runai", "proxy", "default", "ws", "lab")
            return r.body.decode()
        except Exception:
            return ""

    text = await wait_for(page, lambda t: "workspace at" in t, 15, "the workspace to answer")
    assert text.endswith("/runai/proxy/default/ws/lab")  # a workspace sees the whole path
    await api.post("workloads", "default", "ws", "stop")
    stopped = await api.wait_phase("ws", "Stopped")
    assert stopped["status"]["url"] is None


GATED_SERVER = (
    "import http.server, os, pathlib, time\n"
    "gate = pathlib.Path(os.environ['GATE'])\n"
    "while not gate.exists():\n"
    "    time.sleep(0.02)\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        self.send_response(200); self.send_header('Content-Length', '2'); self.end_headers()\n"
    "        self.wfile.write(b'ok')\n"
    "    def log_message(self, *a): pass\n"
    "http.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n"
)


@pytest.mark.parametrize("kind", ["workspace", "inference"])
async def test_running_means_the_server_answers(api, tmp_path, kind):
    """A workspace or endpoint whose process runs but does not listen yet is Pending, saying it starts;
    it becomes Running (and --wait returns) only once it answers through the proxy."""
    server, gate = tmp_path / "gated.py", tmp_path / "open"
    server.write_text(GATED_SERVER)
    await api.submit(name="slow", kind=kind, command=[PY, str(server)], environment={"GATE": str(gate)},
                     resources={"gpu": 0.5})
    starting = await wait_for(lambda: api.workload("slow"),
                              lambda w: [p["phase"] for p in w["status"]["pods"]] == ["Running"], 20,
                              "the pod to run")
    for _ in range(10):  # many cycles: its process runs, it does not answer, it stays Pending
        await asyncio.sleep(0.05)
        starting = await api.workload("slow")
        assert starting["status"]["phase"] == "Pending", starting["status"]
        assert starting["status"]["pending_reason"] == "starting: waiting for the server to answer"
        assert starting["status"]["url"] is None
    gate.write_text("")
    running = await api.wait_phase("slow", "Running")
    assert running["status"]["url"].endswith("/runai/proxy/default/slow/")
    answer = await api.fetch("runai", "proxy", "default", "slow", "")  # answers at once: no 503 to retry
    assert answer.code == 200 and answer.body == b"ok"
    assert [e["type"] for e in running["events"]].count("Started") == 1


async def test_stop_resume_delete(api):
    await api.submit(name="life", command="sleep 60", resources={"gpu": 1})
    await api.wait_phase("life", "Running")
    code, body = await api.post("workloads", "default", "life", "stop")
    assert code == 200 and body["status"]["phase"] in ("Stopping", "Stopped")
    await api.wait_phase("life", "Stopped")
    code, body = await api.post("workloads", "default", "life", "stop")
    assert code == 409 and body["error"]["field"] == "name"
    code, body = await api.post("workloads", "default", "life", "resume")
    assert code == 200 and body["status"]["phase"] == "Pending"
    await api.wait_phase("life", "Running")
    code, body = await api.delete("workloads", "default", "life")
    assert code == 202
    await wait_for(lambda: api.get("workloads", "default", "life"), lambda r: r[0] == 404, 10, "deletion")
    code, listing = await api.get("workloads")
    assert [w["spec"]["name"] for w in listing["workloads"]] == []
    # the name can be used again
    await api.submit(name="life", command="true")


@pytest.mark.parametrize(
    "spec, field",
    [
        ({"name": "x", "project": "nope", "command": "true"}, "project"),
        ({"name": "x", "command": "true", "resources": {"gpu": -1}}, "resources.gpu"),
        ({"name": "x", "command": "true", "resources": {"gpu": 1.5}}, "resources.gpu"),
        ({"name": "x", "command": "true", "kind": "batch"}, "kind"),
        ({"name": "Not_A_Label", "command": "true"}, "name"),
        ({"name": "x", "command": "true", "resources": {"gpu": 0.5, "gpu_limit": 0.25}}, "resources.gpu_limit"),
        ({"name": "x", "command": "true", "data_sources": ["missing"]}, "data_sources.0"),
        ({"name": "x", "kind": "training"}, "command"),
        # a NUL byte cannot reach a process: refused here, not reported later as "killed from outside"
        ({"name": "x", "command": "echo a\x00b"}, "command"),
        ({"name": "x", "command": ["echo", "a\x00b"]}, "command"),
        ({"name": "x", "command": "true", "environment": {"A": "b\x00"}}, "environment.A"),
        # nor a path the pod starts in or runs from, nor an image name
        ({"name": "x", "command": "true", "working_dir": "/tmp/a\x00b"}, "working_dir"),
        ({"name": "x", "command": "true", "python_env": "/opt/env\x00"}, "python_env"),
        ({"name": "x", "command": "true", "image": "python:3.12\x00"}, "image"),
    ],
)
async def test_bad_input_is_a_400_naming_the_field_and_changes_nothing(api, spec, field):
    await api.submit(name="keep", command="sleep 30")
    before = (await api.get("workloads"))[1]
    code, body = await api.post("workloads", body=spec)
    assert code in (400, 404), body
    assert body["error"]["field"] == field, body
    assert body["error"]["message"]
    after = (await api.get("workloads"))[1]
    assert [w["uid"] for w in after["workloads"]] == [w["uid"] for w in before["workloads"]]


async def test_a_request_that_can_never_run_is_refused_with_what_is_allowed_unless_queued_anyway(api):
    # the server's one node has two virtual GPUs of 24Gi
    code, body = await api.post("workloads", body={"name": "big", "command": "true", "resources": {"gpu": 4}})
    assert code == 400, body
    assert body["error"]["field"] == "resources.gpu"
    assert body["error"]["allowed"] == "at most 2 (the most on one node)"
    assert "queue_anyway" in body["error"]["message"]
    code, body = await api.post("workloads", body={"name": "big", "command": "true",
                                                   "resources": {"gpu_memory": "30Gi", "gpu_devices": 3}})
    assert code == 400, body
    assert {e["field"]: e["allowed"] for e in body["error"]["errors"]} == {
        "resources.gpu_devices": "at most 2 (the most on one node)",
        "resources.gpu_memory": "at most 24Gi (the largest device)"}
    assert (await api.get("workloads"))[1]["workloads"] == []
    queued = await api.submit(name="big", command="true", resources={"gpu": 4}, queue_anyway=True)
    assert queued["spec"]["queue_anyway"] is True
    waiting = await wait_for(lambda: api.workload("big"), lambda w: w["status"]["pending_reason"], 10,
                             "a pending reason")
    assert waiting["status"]["phase"] == "Pending"


async def test_malformed_json_and_duplicates(api):
    code, body = await api.post("workloads", raw=b"{not json")
    assert code == 400 and "not valid JSON" in body["error"]["message"]
    code, body = await api.post("workloads", raw=b"[1, 2]")
    assert code == 400 and "JSON object" in body["error"]["message"]
    await api.submit(name="twice", command="sleep 30")
    code, body = await api.post("workloads", body={"name": "twice", "command": "true"})
    assert code == 409 and body["error"]["field"] == "name"
    code, body = await api.get("workloads", "default", "nothing")
    assert code == 404


BAD_BODIES = [
    (b'{"name": "x", "command": "true", "environment": {"V": "\\ud800"}}', "environment.V"),  # lone surrogate
    (b'{"name": "x", "command": "\\udfff true"}', "command"),
    (b'{"name": "x", "command": "true", "environment": {"\\ud800": "v"}}', "environment"),
    (b'{"name": "x", "command": "true", "workers": ' + b"9" * 5000 + b"}", None),  # int digit limit
    (b'{"name": "x", "command": "true", "resources": {"gpu": NaN}}', None),
    (b'{"name": "x", "command": "true", "resources": {"gpu": 0.5, "gpu_devices": Infinity}}', None),
    (b'{"name": "x", "command": "true", "environment": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", None),
    (b'{"name": "x", "command": "true", "environment": ' + b"[" * 40 + b"]" * 40 + b"}", "environment" + "[0]" * 31),
    (b'{"name": "x", "command": "true", "resources": {"memory": "1e1000000"}}', "resources.memory"),
    (b'{"name": "x", "command": "true", "kind": "distributed", "workers": 100000}', "workers"),
    (b'{"name": "x", "command": "' + b"x" * (5 * 2**20) + b'"}', None),  # body over 4 MiB
]


@pytest.mark.parametrize("raw, field", BAD_BODIES, ids=[f"body{i}" for i in range(len(BAD_BODIES))])
async def test_every_bad_body_is_a_400_and_changes_nothing(api, raw, field):
    """Deep nesting, numbers Python will not read, NaN, lone surrogates (which failed later,
    writing to SQLite or printing) and values over their maxima: 400s, never 500s."""
    code, body = await api.post("workloads", raw=raw)
    assert code == 400, body
    assert body["error"]["message"] and body["error"]["field"] == field, body
    assert (await api.get("workloads"))[1]["workloads"] == []


async def test_bad_query_arguments_are_400s(api):
    await api.submit(name="q", command="sleep 30")
    for value in ("9" * 5000, str(2**70), "-1", "x"):
        code, body = await api.get("workloads", "default", "q", params={"events": value})
        assert code == 400 and body["error"]["field"] == "events", (value, body)
    code, body = await api.get("workloads", "default", "q", params={"events": "3"})
    assert code == 200
    for value in ("abc", "-5", str(2**64)):  # the event stream's resume point, asked for by name
        code, body = await api.get("events", params={"since": value})
        assert code == 400 and body["error"]["field"] == "since", (value, body)


async def test_list_filters_that_name_nothing_are_400s_naming_the_allowed_values(api):
    """`runai list --phase Runing` printed "No workloads": a typo in a filter read as an empty answer."""
    await api.submit(name="f", command="sleep 30")
    for params, field, allowed in (({"phase": "Runing"}, "phase", "Running"),
                                   ({"kind": "trainig"}, "kind", "training"),
                                   ({"project": "no-such-team"}, "project", "default")):
        code, body = await api.get("workloads", params=params)
        assert code == 400 and body["error"]["field"] == field, (params, body)
        assert allowed in body["error"]["allowed"], body
    # the values that exist filter, in any case
    for params in ({"phase": "pending"}, {"phase": "Running"}, {"kind": "TRAINING"}, {"project": "default"}):
        code, body = await api.get("workloads", params=params)
        assert code == 200, (params, body)
    code, body = await api.get("workloads", params={"kind": "Training", "project": "default"})
    assert [w["spec"]["name"] for w in body["workloads"]] == ["f"]
    code, body = await api.get("workloads", params={"kind": "inference"})
    assert code == 200 and body["workloads"] == []


def assert_error_document(code: int, body, status: int) -> dict:
    """The REST error document (not Jupyter's HTML page nor its own JSON shape)."""
    assert code == status and isinstance(body, dict) and "error" in body, (code, body)
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
    return body["error"]


async def test_unknown_routes_and_actions_answer_the_error_document(api):
    """Issue 14 (fuzzing): an unknown action or path under the API answered Jupyter's HTML 404
    page, and an unsupported method Jupyter's own JSON; clients and the document expect
    ``{"error": ...}`` everywhere."""
    await api.submit(name="act", command="sleep 30")
    error = assert_error_document(*await api.post("workloads", "default", "act", "pause"), 400)
    assert error["field"] == "action" and error["allowed"] == ["stop", "resume"], error
    assert (await api.get("workloads", "default", "act"))[1]["status"]["phase"] in ("Pending", "Running")
    for method, path in (("GET", ("nothing-here",)), ("POST", ("workloads", "default", "act", "stop", "more")),
                         ("GET", ())):
        error = assert_error_document(*await api.call(method, *path), 404)
        assert "openapi.json" in error["message"], error
    for method, path, allowed in (("PUT", ("workloads",), ["GET", "POST"]), ("DELETE", ("projects",), ["GET", "POST"]), ("PUT", ("audit",), ["GET"])):
        error = assert_error_document(*await api.call(method, *path), 405)  # raised by Tornado
        assert error["allowed"] == allowed, error
    assert (await api.get("workloads", "default", "act"))[1]["status"]["phase"] in ("Pending", "Running")


async def test_projects_show_deserved_allocated_and_fair_share(api):
    await api.submit(name="one", command="sleep 30", resources={"gpu": 1})
    await api.wait_phase("one", "Running")
    await asyncio.sleep(0.2)
    code, body = await api.get("projects")
    default = next(p for p in body["projects"] if p["name"] == "default")
    assert default["deserved"]["gpu"] == 2
    assert default["allocated"]["gpu"] == 1
    assert default["fair_share"]["gpu"] >= 1


async def test_event_stream_replays_after_last_event_id(api, jp_fetch, jp_http_port, jp_base_url, jp_auth_header):
    from tornado.httpclient import AsyncHTTPClient, HTTPRequest

    await api.submit(name="ev", command="true")
    await api.wait_phase("ev", "Succeeded")
    chunks: list[bytes] = []
    url = f"http://localhost:{jp_http_port}{jp_base_url}runai/api/v1/events?workload=ev"
    request = HTTPRequest(url, headers={**jp_auth_header, "Last-Event-ID": "0"},
                          streaming_callback=chunks.append, request_timeout=1.5)
    try:
        await AsyncHTTPClient().fetch(request)
    except Exception:
        pass  # the stream does not end by itself: the timeout ends it
    text = b"".join(chunks).decode()
    events = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]
    assert [e["type"] for e in events][:2] == ["Submitted", "Scheduled"]
    assert events[-1]["type"] == "Succeeded"
    assert all(e["workload"] == "ev" for e in events)
    ids = [e["id"] for e in events]
    assert ids == sorted(ids)


async def test_logs_follow_streams_until_the_pod_ends(api):
    await api.submit(name="slow", command="for i in 1 2 3; do echo line $i; sleep 0.3; done")
    await api.wait_phase("slow", "Running", "Succeeded")
    text = await api.logs("slow", follow="true")
    assert text.splitlines() == ["line 1", "line 2", "line 3"]
    assert await api.logs("slow", tail=1) == "line 3\n"


async def test_openapi_matches_the_routes(api, jp_serverapp):
    code, doc = await api.get("openapi.json")
    assert code == 200 and doc["openapi"].startswith("3.")
    from jupyter_runai.server.routes import ROUTES, API

    for route in ROUTES:
        item = doc["paths"][API + route.template]
        assert set(item) == set(route.ops)
        for method in route.ops:
            handler_method = getattr(route.handler, method)
            assert handler_method is not None
    spec_schema = doc["components"]["schemas"]["WorkloadSpec"]
    assert "resources" in spec_schema["properties"]


@pytest.mark.parametrize("what, body, field", [
    ("data-sources", {"name": "d", "kind": "host_path", "path": "/data\x00/x"}, "path"),
    ("data-sources", {"name": "d", "kind": "host_path", "path": "/data", "target": "in\x00side"}, "target"),
    ("data-sources", {"name": "d", "kind": "git", "url": "https://example.com/r\x00.git"}, "url"),
    ("credentials", {"name": "c", "inject_as": "env", "data": {"TOKEN": "s3cr3t\x00value"}}, "data.TOKEN"),
    ("credentials", {"name": "c", "inject_as": "file", "data": {"key\x00": "v"}}, "data.key\x00"),
    ("credentials", {"name": "c", "inject_as": "file", "data": {"key": "v"}, "mount_path": "m\x00"}, "mount_path"),
])
async def test_a_nul_byte_in_a_path_file_name_or_injected_value_is_a_400_naming_the_field(api, what, body, field):
    """A NUL byte reaches no path, file name or environment: refused at the door, saying so,
    instead of a pod that fails to start (or a file created under a truncated name)."""
    _code, before = await api.get("projects", "default", what)
    code, answer = await api.post("projects", "default", what, body=body)
    assert code == 400, answer
    assert answer["error"]["field"] == field, answer
    assert "NUL" in answer["error"]["message"], answer
    assert "s3cr3t" not in json.dumps(answer)  # a secret value is never shown back, not even a bad one
    assert (await api.get("projects", "default", what))[1] == before


async def test_credentials_never_come_back(api):
    code, body = await api.post("projects", "default", "credentials",
                                body={"name": "hf", "inject_as": "env", "data": {"HF_TOKEN": "s3cr3t-value"}})
    assert code == 201 and "s3cr3t-value" not in json.dumps(body)
    code, body = await api.get("projects", "default", "credentials")
    assert "s3cr3t-value" not in json.dumps(body) and body["credentials"][0]["name"] == "hf"
    await api.submit(name="uses", command='echo "$HF_TOKEN" | rev', credentials=["hf"])
    done = await api.wait_phase("uses", "Succeeded", "Failed")
    assert done["status"]["phase"] == "Succeeded"
    assert "eulav-t3rc3s" in await api.logs("uses")  # the pod saw the value (reversed: logs are not secret)
    assert "s3cr3t-value" not in json.dumps(await api.workload("uses"))


INFERENCE_SERVER = (
    "import http.server, os, socketserver, time\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        time.sleep(0.3)\n"
    "        body = ('replica ' + os.environ['RUNAI_POD_INDEX'] + ' ' + self.path).encode()\n"
    "        self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers()\n"
    "        self.wfile.write(body)\n"
    "    def log_message(self, *a): pass\n"
    "class S(socketserver.ThreadingMixIn, http.server.HTTPServer): daemon_threads = True\n"
    "S(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n"
)


async def test_inference_balances_and_scales_between_min_and_max(api, tmp_path):
    server = tmp_path / "serve.py"
    server.write_text(INFERENCE_SERVER)
    await api.submit(name="llm", kind="inference", command=[PY, str(server)], resources={"gpu": 0.25},
                     min_replicas=1, max_replicas=3, target_concurrency=1)
    running = await api.wait_phase("llm", "Running")
    assert running["status"]["url"].endswith("/runai/proxy/default/llm/")

    async def ask(path="predict"):
        try:
            r = await api.fetch("runai", "proxy", "default", "llm", path)
            return r.body.decode(), r.headers.get("X-Runai-Pod")
        except Exception as exc:  # 503 while no replica is ready
            return str(exc), None

    await wait_for(ask, lambda r: r[0].startswith("replica 0 /predict"), 15, "the endpoint to answer")
    seen_pods: set[str] = set()
    most = 0
    for _ in range(40):  # steady load of 6 requests in flight
        answers = await asyncio.gather(*(ask() for _ in range(6)))
        seen_pods.update(pod for _, pod in answers if pod)
        pods = [p for p in (await api.workload("llm"))["status"]["pods"] if p["phase"] == "Running"]
        most = max(most, len(pods))
        if len(seen_pods) == 3:
            break
    assert most == 3, "scaled up to max_replicas under load"
    assert seen_pods == {"default/llm-0", "default/llm-1", "default/llm-2"}, "requests spread over the replicas"
    # no load: back down to min_replicas after the delay
    low = await wait_for(lambda: api.workload("llm"),
                         lambda w: [p["phase"] for p in w["status"]["pods"]] == ["Running"], 20, "scale down")
    assert low["status"]["phase"] == "Running"
    assert (await ask("again"))[0].startswith("replica 0 /again")


# A WebSocket echo app: answers each message (with how it was authenticated), closes on 'bye'
# (code 4001), picks the first subprotocol offered, and notes each close (with the code and reason
# it was given) in the file argv[1] names
ECHO_SERVER = (
    "import asyncio, os, sys, tornado.web, tornado.websocket\n"
    "class Echo(tornado.websocket.WebSocketHandler):\n"
    "    def select_subprotocol(self, offered): return offered[0] if offered else None\n"
    "    def on_message(self, m):\n"
    "        if m == 'bye': return self.close(4001, 'bye')\n"
    "        self.write_message('echo:' + m + ' auth=' + self.request.headers.get('Authorization', '-')[:6])\n"
    "    def on_close(self):\n"
    "        if len(sys.argv) > 1: open(sys.argv[1], 'a').write(f'closed {self.close_code} {self.close_reason}\\n')\n"
    "async def main():\n"
    "    tornado.web.Application([(r'.*/ws', Echo)]).listen(int(os.environ['PORT']), '127.0.0.1')\n"
    "    await asyncio.Event().wait()\n"
    "asyncio.run(main())\n"
)


async def test_websockets_reach_a_workspace_through_the_proxy(api, tmp_path, jp_http_port, jp_base_url,
                                                            jp_auth_header):
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    server, closes = tmp_path / "echo.py", tmp_path / "closes.log"
    server.write_text(ECHO_SERVER)
    await api.submit(name="wsecho", kind="workspace", command=[PY, str(server), str(closes)])
    await api.wait_phase("wsecho", "Running")
    url = f"ws://localhost:{jp_http_port}{jp_base_url}runai/proxy/default/wsecho/ws"

    async def connect():
        try:
            return await websocket_connect(HTTPRequest(url, headers=jp_auth_header))
        except Exception:
            return None

    conn = await wait_for(connect, lambda c: c is not None, 15, "the WebSocket to open")
    await conn.write_message("hello")
    answer = await asyncio.wait_for(conn.read_message(), 5)
    assert answer == "echo:hello auth=token "  # the workspace's own token, not the server's
    conn.close(4002, "leaving")  # the browser's code and reason reach the pod
    await wait_for(lambda: asyncio.sleep(0, closes.read_text() if closes.exists() else ""),
                   lambda text: "closed" in text, 15, "the pod's side to close")
    assert closes.read_text() == "closed 4002 leaving\n"
    conn = await wait_for(connect, lambda c: c is not None, 15, "the WebSocket to open again")
    await conn.write_message("bye")  # the pod closes with 4001: so does the browser's socket
    assert await asyncio.wait_for(conn.read_message(), 5) is None
    assert (conn.close_code, conn.close_reason) == (4001, "bye")
    # without the Jupyter server's login the proxy refuses
    from tornado.httpclient import HTTPClientError
    with pytest.raises(HTTPClientError) as refused:
        await websocket_connect(HTTPRequest(url))
    assert refused.value.code in (302, 403)  # sent to the login page, or refused


async def test_default_workspace_is_jupyterlab_behind_the_proxy(api):
    await api.submit(name="lab", kind="workspace")
    await api.wait_phase("lab", "Running")

    async def status():
        try:
            r = await api.fetch("runai", "proxy", "default", "lab", "api", "status")
            return json.loads(r.body)
        except Exception:
            return None

    answer = await wait_for(status, lambda s: s is not None, 40, "JupyterLab in the workspace to answer")
    assert "started" in answer  # the workspace's own Jupyter server, reached with the proxy's token


class TestNodePools:
    """Virtual nodes with labels, node pools from the queue file, a workload's ordered pools."""

    @pytest.fixture
    def jp_server_config(self, tmp_path):
        queues = tmp_path / "queues.yaml"
        queues.write_text(
            "projects:\n"
            "  - name: team\n"
            "    deserved: {gpu: 6}\n"
            "node_pools:\n"
            "  - name: big\n"
            "    label_selector: {gpu-type: a100}\n"
            "  - name: small\n"
            "    label_selector: {gpu-type: t4}\n"
            "    gpu_placement: spread\n")
        return server_config(tmp_path, queues_file=str(queues), local={
            "local_node": False,
            "virtual_nodes": [
                {"name": "a100-node", "gpus": 4, "gpu_memory": "80Gi", "labels": {"gpu-type": "a100"}},
                {"name": "t4-node-1", "gpus": 1, "gpu_memory": "16Gi", "labels": {"gpu-type": "t4"}},
                {"name": "t4-node-2", "gpus": 1, "gpu_memory": "16Gi", "labels": {"gpu-type": "t4"}},
            ]})

    async def test_pools_in_order_of_preference(self, api):
        code, nodes = await api.get("nodes")
        assert {n["name"]: n["pool"] for n in nodes["nodes"]} == {
            "a100-node": "big", "t4-node-1": "small", "t4-node-2": "small"}
        await api.submit(name="cheap", project="team", command="sleep 30", resources={"gpu": 1},
                         node_pools=["small", "big"])
        await api.submit(name="cheap-2", project="team", command="sleep 30", resources={"gpu": 1},
                         node_pools=["small", "big"])
        await api.submit(name="cheap-3", project="team", command="sleep 30", resources={"gpu": 1},
                         node_pools=["small", "big"])
        placed = {}
        for name in ("cheap", "cheap-2", "cheap-3"):
            w = await api.wait_phase(name, "Running", project="team")
            placed[name] = w["status"]["pods"][0]["node"]
        # the two t4 nodes first (one each: the small pool spreads), then the next pool
        assert sorted(placed.values()) == ["a100-node", "t4-node-1", "t4-node-2"]
        assert placed["cheap-3"] == "a100-node"
        await api.submit(name="gpu-memory", project="team", command="sleep 30", resources={"gpu_memory": "40Gi"},
                         node_pools=["big"])
        w = await api.wait_phase("gpu-memory", "Running", project="team")
        pod = w["status"]["pods"][0]
        assert pod["node"] == "a100-node" and pod["fraction"] == 0.5  # 40Gi of an 80Gi device
        code, body = await api.post("workloads", body={"name": "x", "project": "team", "command": "true",
                                                       "node_pools": ["nope"]})
        assert code == 400 and body["error"]["field"] == "node_pools.0"


async def test_info_gives_the_submit_form_its_defaults_and_bounds(api):
    code, info = await api.get("info")
    assert code == 200
    form = info["form"]
    assert [k["name"] for k in form["kinds"]] == info["kinds"]
    assert {k["name"]: k["fields"] for k in form["kinds"]}["distributed"] == ["workers"]
    assert form["defaults"]["kind"] == "training" and form["defaults"]["project"] == "default"
    # two virtual 24Gi devices on one node
    assert form["bounds"]["gpu"]["max"] == 2 and form["bounds"]["gpu_devices"]["max"] == 2
    assert form["bounds"]["fraction"]["steps"] == [0.25, 0.5, 0.75]
    assert form["bounds"]["gpu_memory"]["max"] == "24Gi" and form["defaults"]["gpu_memory"] == "12Gi"
    assert "default" in form["node_pools"]
    assert form["priority_classes"] == ["train", "build-preemptible", "build", "inference"]
    # the local cluster runs no image: none by default, so the defaults draw no warning
    assert form["defaults"]["image"] == ""
    # the defaults are a valid submission as they stand
    spec = {"name": "from-defaults", "kind": form["defaults"]["kind"], "project": form["defaults"]["project"],
            "command": form["defaults"]["commands"]["training"], "resources": {
                "gpu": form["defaults"]["gpu"], "cpu": form["defaults"]["cpu"], "memory": form["defaults"]["memory"]},
            "image": form["defaults"]["image"]}
    await api.submit(**spec)
    done = await api.wait_phase("from-defaults", "Succeeded", "Failed")
    assert done["status"]["phase"] == "Succeeded", done
    assert "hello from from-defaults" in await api.logs("from-defaults")
    events = (await api.workload("from-defaults"))["events"]
    assert [e["message"] for e in events if e["type"] == "Warning"] == []


async def test_a_missing_command_on_the_local_cluster_is_worded_plainly(api):
    # an image given or not, the local cluster runs the command: the error says so, not "no image"
    for image in (None, "python:3.11"):
        spec = {"name": "no-cmd", "kind": "training", **({"image": image} if image else {})}
        code, body = await api.post("workloads", body=spec)
        assert code == 400 and body["error"]["field"] == "command", body
        message = body["error"]["message"]
        assert message == ("command: required for a training on the local cluster: it runs this command in "
                           "the server's Python environment and does not run images"), message
    assert (await api.get("workloads"))[1]["workloads"] == []


async def test_prometheus_metrics(api):
    await api.submit(name="metered", command="sleep 30", resources={"gpu": 0.5})
    await api.wait_phase("metered", "Running")
    response = await api.fetch("runai", "metrics")
    text = response.body.decode()
    assert response.headers["Content-Type"].startswith("text/plain")
    assert 'runai_workloads{kind="training",phase="Running",project="default"} 1.0' in text
    assert 'runai_project_gpu_allocated{project="default"} 0.5' in text
    assert 'runai_project_gpu_deserved{project="default"} 2.0' in text
    assert 'runai_device_allocated_fraction{device="0",node=' in text and 'virtual="true"} 0.5' in text
    assert "runai_scheduling_cycles_total" in text


class TestReclaimAndPreempt:
    """Evictions through the whole service: the victim's process ends, it waits again, it comes back."""

    @pytest.fixture
    def jp_server_config(self, tmp_path):
        queues = tmp_path / "queues.yaml"
        queues.write_text(
            "projects:\n"
            "  - {name: alpha, deserved: {gpu: 1}}\n"
            "  - {name: beta, deserved: {gpu: 1}}\n")
        return server_config(tmp_path, queues_file=str(queues))

    async def test_a_project_below_its_share_reclaims_a_borrowed_gpu(self, api):
        for name in ("a-1", "a-2"):
            await api.submit(name=name, project="alpha", command="sleep 60", resources={"gpu": 1})
            await api.wait_phase(name, "Running", project="alpha")  # a-2 runs over quota on the idle GPU
        await api.submit(name="b-1", project="beta", command="sleep 60", resources={"gpu": 1})
        await api.wait_phase("b-1", "Running", project="beta")
        phases = {n: (await api.workload(n, "alpha"))["status"]["phase"] for n in ("a-1", "a-2")}
        assert sorted(phases.values()) == ["Pending", "Running"]
        evicted = next(n for n, p in phases.items() if p == "Pending")
        shown = await api.workload(evicted, "alpha")
        events = shown["events"]
        assert "Evicted" in [e["type"] for e in events]
        # it says that it was evicted, why and for what, in its pod (what lists show) and its event
        evicted_by = "evicted to make room for other work: reclaimed by project beta for beta/b-1"
        assert shown["status"]["pods"][0]["message"] == f"{evicted_by}; waiting to be placed again"
        assert any(e["type"] == "Evicted" and e["message"].endswith(evicted_by) for e in events)
        # when beta is done, the evicted workload gets its GPU back
        await api.delete("workloads", "beta", "b-1")
        await api.wait_phase(evicted, "Running", project="alpha")

    async def test_higher_priority_preempts_inside_a_project(self, api):
        for name in ("t-1", "t-2"):
            await api.submit(name=name, project="alpha", command="sleep 60", resources={"gpu": 1})
            await api.wait_phase(name, "Running", project="alpha")
        # build-preemptible (75) beats train (50) within the project; it stays preemptible itself
        await api.submit(name="urgent", project="alpha", command="sleep 60", resources={"gpu": 1},
                         priority_class="build-preemptible")
        await api.wait_phase("urgent", "Running", project="alpha")
        phases = sorted([(await api.workload(n, "alpha"))["status"]["phase"] for n in ("t-1", "t-2")])
        assert phases == ["Pending", "Running"]
        evicted = [n for n in ("t-1", "t-2") if (await api.workload(n, "alpha"))["status"]["phase"] == "Pending"][0]
        events = (await api.workload(evicted, "alpha"))["events"]
        assert any(e["type"] == "Evicted" and e["message"].endswith(
            "preempted by alpha/urgent (higher priority in project alpha)") for e in events), events


class TestPerPoolQuotas:
    @pytest.fixture
    def jp_server_config(self, tmp_path):
        queues = tmp_path / "queues.yaml"
        queues.write_text(
            "projects:\n"
            "  - name: team\n"
            "    deserved: {gpu: 2}\n"
            "    node_pools:\n"
            "      fast: {deserved: {gpu: 1}, limit: {gpu: 1}}\n"
            "node_pools:\n"
            "  - {name: fast, label_selector: {speed: fast}}\n")
        return server_config(tmp_path, queues_file=str(queues), local={
            "local_node": False,
            "virtual_nodes": [{"name": "fast-1", "gpus": 2, "labels": {"speed": "fast"}},
                              {"name": "slow-1", "gpus": 2}]})

    async def test_the_pool_limit_holds_and_the_next_pool_takes_the_rest(self, api):
        for i in range(2):
            await api.submit(name=f"j{i}", project="team", command="sleep 30", resources={"gpu": 1},
                             node_pools=["fast", "default"])
        nodes = {}
        for i in range(2):
            w = await api.wait_phase(f"j{i}", "Running", project="team")
            nodes[f"j{i}"] = w["status"]["pods"][0]["node"]
        assert nodes == {"j0": "fast-1", "j1": "slow-1"}
        await api.submit(name="only-fast", project="team", command="sleep 30", resources={"gpu": 1},
                         node_pools=["fast"])
        w = await wait_for(lambda: api.workload("only-fast", "team"), lambda w: w["status"]["pending_reason"], 10,
                           "a reason")
        assert w["status"]["pending_reason"].startswith("node pool fast: ") and "limit" in w["status"]["pending_reason"]
