"""benchmarks/throughput.py and benchmarks/kueue.py on small cuts: they run and their figures are
consistent (never how fast)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import kueue  # noqa: E402
import throughput  # noqa: E402

from jupyter_runai.clusters.simulated import RUNTIME_ENV, SimulatedCluster, simulated_nodes  # noqa: E402
from jupyter_runai.clusters.base import PodLaunch, PodState  # noqa: E402


@pytest.mark.parametrize("template", ["kube", "gpu"])
def test_throughput_quick(tmp_path, template):
    report = throughput.run(list(throughput.SHAPES), [template], ["engine", "service"], quick=True,
                            store_dir=str(tmp_path))
    assert len(report["results"]) == 2 * len(throughput.SHAPES)
    for f in report["results"]:
        assert f["placed"] == f["measured"], f
        assert f["pods_per_s"] > 0
        assert f["floor"] == throughput.SHAPES[f["shape"]]["floor"]
        if f["shape"] == "preemption":
            assert f["preemptors_arrived"] >= 1
            assert f["evictions"] >= 3  # the first preemptor needs 3 of a node's 4 low-priority pods


def test_kueue_small_scale(tmp_path):
    f = kueue.run(scale=0.01, store_dir=str(tmp_path))
    per_queue = {c: max(1, round(s["count"] * 0.01)) for c, s in kueue.CLASSES.items()}
    assert f["per_class"] == {c: n * 30 for c, n in per_queue.items()}  # every workload admitted once
    assert f["workloads"] == sum(f["per_class"].values())
    assert f["wall_s"] >= 1.0  # a large workload runs 1 s
    assert 0 < f["usage_pct"] <= 100
    assert all(v is not None and v >= 0 for v in f["admission_s"].values())
    assert f["admissions_per_s"] > 0


def test_simulated_cluster_runtime():
    now = [100.0]
    cluster = SimulatedCluster(simulated_nodes(1), clock=lambda: now[0])

    def launch(key, runtime=None):
        env = {RUNTIME_ENV: str(runtime)} if runtime is not None else {}
        cluster.launch(PodLaunch(key=key, workload="w", workload_uid="u", project="p", kind="training", index=0,
                                 pod_count=1, node="sim-node-0", devices=[0], fraction=None, gpu_memory_limit=None,
                                 gpu_fraction_limit=None, command=None, environment=env))

    launch("p/a-0", 5)
    launch("p/b-0", 2)
    launch("p/c-0")  # no run time: runs until stopped
    assert cluster.next_end() == 102.0
    assert cluster.poll() == []
    now[0] = 102.0
    reports = cluster.poll()
    assert [(r.key, r.state) for r in reports] == [("p/b-0", PodState.SUCCEEDED)]
    cluster.stop("p/a-0")  # stopped before its time: no success later
    launch("p/a-0", 10)  # started again: its new end counts, not the old one
    now[0] = 106.0
    assert [(r.key, r.state) for r in cluster.poll()] == [("p/a-0", PodState.STOPPED)]
    assert cluster.next_end() == 112.0
    now[0] = 112.0
    assert [(r.key, r.state) for r in cluster.poll()] == [("p/a-0", PodState.SUCCEEDED)]
    assert cluster.next_end() is None and set(cluster.running) == {"p/c-0"}
    assert cluster.stops == 1


def test_simulated_nodes_cpu_in_millicores():
    node = simulated_nodes(1, cpu_millis=4000)[0]
    assert node.cpu == 4000
