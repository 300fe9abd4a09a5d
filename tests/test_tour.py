"""docs/tour.ipynb (also the Binder start page) executed top to bottom with nbclient in a real
kernel, against a real Jupyter server whose local cluster is the Binder demo's (binder/: two virtual
nodes of four virtual GPUs, two projects); its pods are real processes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from live_server import LiveServer

ROOT = Path(__file__).parent.parent
TOUR = ROOT / "docs" / "tour.ipynb"


def binder_config() -> dict:
    """The server settings binder/postBuild installs, with the queue file from the checkout."""
    config = json.loads((ROOT / "binder" / "jupyter_server_config.json").read_text())
    config.setdefault("RunaiApp", {})["queues_file"] = str(ROOT / "binder" / "runai-queues.yaml")
    return config


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = LiveServer(tmp_path_factory.mktemp("tour"), binder_config()).start()
    yield live
    for workload in live.api("GET", "workloads")[1].get("workloads", []):
        live.api("DELETE", f"workloads/{workload['spec']['project']}/{workload['spec']['name']}")
    live.stop()


def text_of(cell) -> str:
    """What a code cell showed: its printed streams and the plain text of its results."""
    parts = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", ""))
        parts.append((output.get("data") or {}).get("text/plain", ""))
    return "".join(parts)


def cell_after(nb, source_start: str):
    return next(c for c in nb.cells if c.cell_type == "code" and c.source.startswith(source_start))


def test_the_committed_tour_has_no_outputs():
    nb = nbformat.read(TOUR, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)


def test_the_tour_runs_top_to_bottom(server, tmp_path):
    nb = nbformat.read(TOUR, as_version=4)
    env = {**os.environ, "RUNAI_URL": server.url, "RUNAI_TOKEN": server.token,
           "PYTHONPATH": os.pathsep.join([str(ROOT)] + [os.environ.get("PYTHONPATH", "")])}
    env.pop("RUNAI_PROJECT", None)
    client = NotebookClient(nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute(env=env)  # raises CellExecutionError at the first failing cell

    project = server.api("GET", "info")[1]["form"]["defaults"]["project"]  # the first project: nlp
    assert f"project={project}" in text_of(cell_after(nb, "from jupyter_runai import Client"))
    log = text_of(cell_after(nb, "train.logs(follow=True)"))
    assert "my share of the GPU: 0.5" in log and "epoch 2 loss 0.333" in log
    assert "Succeeded" in text_of(cell_after(nb, 'train.wait("finished")'))
    pending = text_of(cell_after(nb, "late = "))
    assert "tour-late: Pending - " in pending and "no GPU is idle" in pending
    preempted = text_of(cell_after(nb, "urgent = "))
    assert f"Pending - evicted to make room for other work: preempted by {project}/tour-urgent" in preempted
    ranks = text_of(cell_after(nb, "ddp = "))
    assert "rank 0 of 2" in ranks and "rank 1 of 2" in ranks
    assert "'sum': 6" in text_of(cell_after(nb, "import requests")) and "tour-adder-0" in text_of(
        cell_after(nb, "import requests"))
    for name in ("form", "monitor", "quota", "gpus"):  # each widget shown as a widget view
        outputs = cell_after(nb, f"{name} = " if name != "form" else "from jupyter_runai.widgets").outputs
        assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs), name
    # the last cell deleted what the tour started
    remaining = [w["spec"]["name"] for w in server.api("GET", "workloads")[1]["workloads"]
                 if w["status"]["phase"] != "Deleting"]
    assert not [n for n in remaining if n.startswith("tour-")], remaining
