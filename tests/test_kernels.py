"""The runai kernel provisioner: a real jupyter_client KernelManager whose kernel is a workspace workload
of a live Jupyter server (virtual GPUs), driven through the kernel specs in ``kernels/``."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path

import pytest
import requests
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

from jupyter_runai.kernels import KernelStartError, RunaiProvisioner, workload_name
from live_server import LiveServer

KERNELS = Path(__file__).resolve().parent.parent / "kernels"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = LiveServer(tmp_path_factory.mktemp("kernels")).start()
    yield live
    for workload in live.api("GET", "workloads")[1]["workloads"]:
        live.api("DELETE", f"workloads/default/{workload['spec']['name']}")
    live.stop()


@pytest.fixture
def specs(tmp_path, server, monkeypatch):
    """The repo's kernel specs plus one that asks both GPUs (it waits while another workload holds one)
    and one that asks more GPUs than exist (refused at submission), in a tmp kernels dir."""
    monkeypatch.setenv("RUNAI_URL", server.url)
    monkeypatch.setenv("RUNAI_TOKEN", server.token)
    monkeypatch.delenv("RUNAI_PROJECT", raising=False)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    kernels = tmp_path / "kernels"
    shutil.copytree(KERNELS, kernels)
    big = json.loads((kernels / "runai-python-gpu-1" / "kernel.json").read_text())
    big["display_name"] = "too big"
    big["metadata"]["kernel_provisioner"]["config"].update(gpu=4, start_timeout=3)
    (kernels / "runai-python-gpu-4").mkdir()
    (kernels / "runai-python-gpu-4" / "kernel.json").write_text(json.dumps(big))
    both = json.loads(json.dumps(big))
    both["metadata"]["kernel_provisioner"]["config"].update(gpu=2)
    (kernels / "runai-python-gpu-2").mkdir()
    (kernels / "runai-python-gpu-2" / "kernel.json").write_text(json.dumps(both))
    return KernelSpecManager(kernel_dirs=[str(kernels)])


#: holds one GPU and cannot be preempted by a kernel (same priority as a workspace, not preemptible)
HOG = {"name": "hog", "command": "sleep 120", "resources": {"gpu": 1}, "priority_class": "build", "preemptible": False}


@pytest.fixture
def one_gpu_held(server):
    """A workload holding one of the server's two GPUs while the test runs."""
    code, body = server.api("POST", "workloads", HOG)
    assert code == 201, body
    deadline = time.monotonic() + 20
    while server.workload("hog")["status"]["phase"] != "Running":
        assert time.monotonic() < deadline, server.workload("hog")
        time.sleep(0.1)
    yield
    server.api("DELETE", "workloads/default/hog")
    assert gone(server, "hog")


def gone(server, name, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.api("GET", f"workloads/default/{name}")[0] == 404:
            return True
        time.sleep(0.1)
    return False


def execute(client, code, timeout=20):
    """Run code; the text it printed."""
    msg_id = client.execute(code)
    out = []
    deadline = time.monotonic() + timeout
    while True:
        msg = client.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            raise AssertionError("\n".join(msg["content"]["traceback"]))
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return "".join(out)


def test_the_kernel_specs_name_the_provisioner():
    for name, gpu in (("runai-python-gpu-0.5", 0.5), ("runai-python-gpu-1", 1)):
        spec = json.loads((KERNELS / name / "kernel.json").read_text())
        assert spec["metadata"]["kernel_provisioner"]["provisioner_name"] == "runai-provisioner"
        assert spec["metadata"]["kernel_provisioner"]["config"]["gpu"] == gpu
        assert spec["interrupt_mode"] == "message"
    assert workload_name("0f3a9c12-aaaa-bbbb") == "kernel-0f3a9c12"


def test_a_kernel_is_a_workspace_holding_half_a_gpu(specs, server, tmp_path):
    notebook_dir = tmp_path / "notebooks"
    notebook_dir.mkdir()
    km = KernelManager(kernel_name="runai-python-gpu-0.5", kernel_spec_manager=specs)
    km.start_kernel(cwd=str(notebook_dir))  # jupyter_server passes the notebook's directory
    name = workload_name(km.kernel_id)
    try:
        assert isinstance(km.provisioner, RunaiProvisioner)
        client = km.client()
        client.start_channels()
        client.wait_for_ready(timeout=20)
        out = execute(client, 'import os; print(os.environ["RUNAI_GPU_FRACTION"], os.environ["CUDA_VISIBLE_DEVICES"])')
        fraction, devices = out.split()
        assert float(fraction) == 0.5
        assert devices.isdigit()
        assert execute(client, "import os; print(os.getcwd())").strip() == str(notebook_dir)

        workload = server.workload(name)
        assert workload["spec"]["kind"] == "workspace"
        assert workload["status"]["phase"] == "Running"
        assert workload["status"]["pods"][0]["fraction"] == 0.5
        assert km.is_alive()

        info = asyncio.run(km.provisioner.get_provisioner_info())
        assert info["workload"] == name and info["project"] == "default"

        # another manager process reconnects from the provisioner info alone
        other = RunaiProvisioner(kernel_id=km.kernel_id, kernel_spec=km.kernel_spec, parent=None)
        asyncio.run(other.load_provisioner_info(info))
        assert other.has_process and asyncio.run(other.poll()) is None

        # a restart runs the kernel again as the same workload; the old pod is gone first
        uid = workload["uid"]
        km.restart_kernel(now=False)
        client.wait_for_ready(timeout=20)
        assert execute(client, "print(6 * 7)").strip() == "42"
        assert server.workload(name)["uid"] != uid
        assert server.workload(name)["status"]["phase"] == "Running"

        client.stop_channels()
    finally:
        km.shutdown_kernel(now=False)
    assert gone(server, name), server.workload(name)
    assert not km.is_alive()
    assert asyncio.run(other.poll()) is not None


def test_a_kernel_that_waits_for_a_gpu_past_its_start_timeout_fails_with_the_reason(specs, server, one_gpu_held):
    km = KernelManager(kernel_name="runai-python-gpu-2", kernel_spec_manager=specs)
    started = time.monotonic()
    with pytest.raises(KernelStartError, match="the kernel waits for a GPU: ") as info:
        km.start_kernel()
    assert time.monotonic() - started < 10
    assert "2" in str(info.value)  # the pending reason carries the numbers
    assert gone(server, workload_name(km.kernel_id))


def test_a_kernel_asking_more_gpus_than_exist_is_refused_at_once_with_what_is_allowed(specs, server):
    km = KernelManager(kernel_name="runai-python-gpu-4", kernel_spec_manager=specs)
    with pytest.raises(KernelStartError, match="was refused: resources.gpu: asks for 4 whole GPUs") as info:
        km.start_kernel()
    assert info.value.status_code == 400
    assert "at most 2" in str(info.value) or "is 2" in str(info.value)
    assert gone(server, workload_name(km.kernel_id))


def test_kernels_started_by_the_jupyter_server_end_with_it(tmp_path):
    """The JupyterLab path: the server's own kernel manager starts the kernel (POST /api/kernels).
    A server that dies leaves no kernel workload holding a GPU: the kernel ends with its manager."""
    live = LiveServer(tmp_path / "lab")
    live.env["JUPYTER_PATH"] = str(KERNELS.parent)  # <repo>/kernels
    live.start()
    headers = {"Authorization": f"token {live.token}"}
    try:
        specs = requests.get(live.url + "api/kernelspecs", headers=headers, timeout=10).json()["kernelspecs"]
        assert specs["runai-python-gpu-0.5"]["spec"]["display_name"] == "Python 3 (0.5 GPU, jupyter-runai)"
        answer = requests.post(live.url + "api/kernels", json={"name": "runai-python-gpu-0.5"}, headers=headers,
                               timeout=60)
        assert answer.status_code == 201, answer.text
        name = workload_name(answer.json()["id"])
        assert live.workload(name)["status"]["phase"] == "Running"
        live.kill()  # SIGKILL: no kernel shutdown at all
        live.start()
        ended = live.wait_phase(name, "Succeeded", "Failed", timeout=20)
        assert not ended["status"]["pods"] or ended["status"]["pods"][0]["phase"] != "Running"
    finally:
        live.stop()


def test_a_server_that_stops_deletes_its_kernel_workloads_first(tmp_path):
    """Jupyter stops its extensions before its kernels: the scheduler shuts its kernel workloads
    down first, so a clean stop leaves no finished kernel workload behind and logs no error."""
    live = LiveServer(tmp_path / "lab")
    live.env["JUPYTER_PATH"] = str(KERNELS.parent)
    live.start()
    headers = {"Authorization": f"token {live.token}"}
    try:
        answer = requests.post(live.url + "api/kernels", json={"name": "runai-python-gpu-0.5"}, headers=headers,
                               timeout=60)
        assert answer.status_code == 201, answer.text
        name = workload_name(answer.json()["id"])
        assert live.workload(name)["status"]["phase"] == "Running"
        live.stop()  # SIGTERM: Jupyter's own clean shutdown
        log = live.log_path.read_text()
        assert "shutting down 1 kernel workload(s)" in log
        assert "scheduler is stopping" not in log and "Traceback" not in log
        live.start()
        assert live.api("GET", f"workloads/default/{name}")[0] == 404
    finally:
        live.end_workloads()
        live.stop()


def test_jupyterlab_is_told_why_a_kernel_did_not_start(tmp_path):
    """JupyterLab starts kernels through the server (POST /api/kernels, a session's kernel): a kernel that
    waits for a GPU longer than its start timeout is refused with the reason in the JSON message that
    JupyterLab's dialog shows, not an empty 500 "Unhandled error". (The kernel asks both GPUs while a
    workload holds one: it could run, so it is queued, and waits.)"""
    kernels = tmp_path / "jupyter-path" / "kernels"
    shutil.copytree(KERNELS, kernels)
    big = json.loads((kernels / "runai-python-gpu-1" / "kernel.json").read_text())
    big["metadata"]["kernel_provisioner"]["config"].update(gpu=2, start_timeout=2)
    (kernels / "runai-python-gpu-2").mkdir()
    (kernels / "runai-python-gpu-2" / "kernel.json").write_text(json.dumps(big))
    live = LiveServer(tmp_path / "lab")
    live.env["JUPYTER_PATH"] = str(kernels.parent)
    live.start()
    headers = {"Authorization": f"token {live.token}"}
    try:
        code, body = live.api("POST", "workloads", HOG)
        assert code == 201, body
        deadline = time.monotonic() + 20
        while live.workload("hog")["status"]["phase"] != "Running":
            assert time.monotonic() < deadline, live.workload("hog")
            time.sleep(0.1)
        answer = requests.post(live.url + "api/kernels", json={"name": "runai-python-gpu-2"}, headers=headers,
                               timeout=60)
        assert answer.status_code == 503, answer.text
        message = answer.json()["message"]
        assert message.startswith("the kernel waits for a GPU: ") and "2" in message, message
        session = requests.post(live.url + "api/sessions", headers=headers, timeout=60, json={
            "path": "a.ipynb", "type": "notebook", "name": "a.ipynb", "kernel": {"name": "runai-python-gpu-2"}})
        assert session.status_code >= 500 and "the kernel waits for a GPU: " in session.json()["message"]
        assert "HTTP 503" not in session.json()["message"]
    finally:
        live.end_workloads()
        live.stop()


@pytest.mark.slow  # two servers and a kernel: about 17 s
def test_a_users_server_in_client_mode_runs_kernels_as_workloads_of_the_service_and_deletes_them_on_stop(tmp_path):
    """Under JupyterHub (docs/jupyterhub.md, "Kernels"): a runai kernel started in a user's server that
    forwards to the shared service is a workload of the service, submitted with the user's token; the
    server's clean stop deletes it there first (the service outlives the server)."""
    service = LiveServer(tmp_path / "service").start()
    user = LiveServer(tmp_path / "user", {"RunaiApp": {"service_url": service.url}})
    user.env.update(JUPYTER_PATH=str(KERNELS.parent), JUPYTERHUB_API_TOKEN=service.token)  # the "hub token"
    user.start()
    try:
        assert user.api("GET", "info")[1]["mode"] == "client"
        answer = requests.post(user.url + "api/kernels", json={"name": "runai-python-gpu-0.5"},
                               headers={"Authorization": f"token {user.token}"}, timeout=60)
        assert answer.status_code == 201, answer.text
        name = workload_name(answer.json()["id"])
        workload = service.workload(name)  # the service's, not the user's server's (it runs no scheduler)
        assert workload["status"]["phase"] == "Running" and workload["status"]["pods"][0]["fraction"] == 0.5
        assert workload["submitted_by"] == service.api("GET", "info")[1]["user"]  # whose token it came with
        user.stop()  # SIGTERM: Jupyter's own clean shutdown
        assert "shutting down 1 kernel workload(s)" in user.log_path.read_text()
        assert service.api("GET", f"workloads/default/{name}")[0] == 404
    finally:
        user.stop()
        service.end_workloads()
        service.stop()
