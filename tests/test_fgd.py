"""The FGD-protocol benchmark (``python -m jupyter_runai.sim fgd``) on small cuts.

Checks the protocol's invariants for every policy; never the speed, never the published
figures. A synthetic trace always runs; the real openb trace runs when it is present.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_runai.scheduler.fragmentation import MILLI, Shape, WorkloadDistribution, best_on_node, placement_key
from jupyter_runai.sim import fgd

ROOT = Path(__file__).resolve().parents[1]

NODES_CSV = """sn,cpu_milli,memory_mib,gpu,model
n0,32000,131072,8,G2
n1,16000,65536,2,T4
n2,8000,32768,1,P100
n3,64000,262144,4,V100M32
n4,32000,131072,8,G2
n5,16000,65536,2,T4
"""


def _pods_csv() -> str:
    rows = ["name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time"]
    shapes = [
        (4000, 8192, 1, 500, ""), (2000, 4096, 1, 250, ""), (6000, 16384, 1, 1000, ""),
        (8000, 16384, 2, 1000, ""), (1000, 2048, 0, 0, ""), (4000, 8192, 1, 700, "T4"),
        (12000, 32768, 4, 1000, "V100M32|G2"), (3000, 4096, 1, 300, "G2|P100"), (16000, 65536, 8, 1000, "G2"),
        (2000, 2048, 0, 0, ""),
    ]
    for k in range(40):
        cpu, mem, n, milli, spec = shapes[k % len(shapes)]
        rows.append(f"p{k:03d},{cpu},{mem},{n},{milli},{spec},LS,Running,0,1,0")
    return "\n".join(rows) + "\n"


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    d = tmp_path_factory.mktemp("openb")
    (d / fgd.NODE_FILE).write_text(NODES_CSV)
    (d / "openb_pod_list_default.csv").write_text(_pods_csv())
    return d


def check_invariants(result: fgd.RunResult) -> None:
    nodes = result.nodes
    cpu = [n.cpu for n in nodes]
    mem = [n.mem for n in nodes]
    free = [[MILLI] * n.gpus for n in nodes]
    assert len(result.log) == len(result.order) == result.pods
    placed = failed = 0
    for (k, i, devices), pod in zip(result.log, result.order):
        if i < 0:
            failed += 1
            assert devices == ()
            continue
        placed += 1
        node = nodes[i]
        cpu[i] -= pod.cpu
        mem[i] -= pod.mem
        assert cpu[i] >= 0 and mem[i] >= 0, "CPU and memory must fit"
        assert len(devices) == pod.gpus and len(set(devices)) == pod.gpus
        if pod.gpus:
            if pod.models is not None:
                assert node.model in pod.models, "gpu_spec restricts the GPU model"
            if pod.milli < MILLI:
                assert pod.gpus == 1
            for d in devices:
                if pod.milli >= MILLI:
                    assert free[i][d] == MILLI, "whole devices must be fully free"
                free[i][d] -= pod.milli
                assert 0 <= free[i][d] <= MILLI, "no device over 1000 milli"
    assert placed == result.placed and failed == result.failed
    used = sum(n.gpus * MILLI - sum(f) for n, f in zip(nodes, free))
    assert used <= sum(n.gpus for n in nodes) * MILLI, "allocations never exceed capacity"
    values = [v for v in result.curve if v is not None]
    assert values, "the curve has points"
    assert all(0 <= v <= 100 for v in values)
    assert all(b >= a - 1e-9 for a, b in zip(values, values[1:])), "allocated % never goes down"


@pytest.mark.parametrize("policy", fgd.POLICIES)
def test_synthetic_invariants(synthetic, policy):
    nodes = fgd.load_nodes(synthetic / fgd.NODE_FILE)
    pods = fgd.load_pods(synthetic / "openb_pod_list_default.csv")
    for seed in (42, 43):
        for ties in ("first", "random"):
            r = fgd.run(nodes, pods, policy, seed, keep_log=True, ties=ties)
            check_invariants(r)
            assert r.placed > 0
            # the arrival list reaches the 130 % target without passing it
            asked = sum(p.total_milli for p in r.order)
            cap = MILLI * sum(n.gpus for n in nodes)
            assert asked <= 1.3 * cap
            if sum(p.total_milli for p in pods) <= 1.3 * cap:  # every trace pod arrives, copies after
                assert sorted(p.name for p in r.order[: len(pods)]) == sorted(p.name for p in pods)


def test_same_seed_same_result(synthetic):
    nodes = fgd.load_nodes(synthetic / fgd.NODE_FILE)
    pods = fgd.load_pods(synthetic / "openb_pod_list_default.csv")
    a = fgd.run(nodes, pods, "fgd", 7, keep_log=True)
    b = fgd.run(nodes, pods, "fgd", 7, keep_log=True)
    assert a.log == b.log and a.curve == b.curve


def test_the_engine_places_every_pod_as_the_reference_loop(synthetic):
    # `default` goes through the engine (one allocate pass, the trace as its workload_mix);
    # `fgd_plus` runs the same rule in the benchmark's own loop: the same node and devices
    # for every pod, so the engine's figures are the rule's, not an artefact of either path.
    # (Not on a cut that lacks a GPU model some pods ask for, e.g. gpuspec33 at 80 nodes without
    # A10: the engine merges "A10|T4" and "T4", which accept the same nodes there, into one
    # shape of its distribution; the loop keeps them apart. On the full cluster they agree.)
    cases = [(fgd.load_nodes(synthetic / fgd.NODE_FILE), fgd.load_pods(synthetic / "openb_pod_list_default.csv"))]
    if REAL is not None:
        for trace in ("default", "gpushare100"):
            cases.append(fgd.cut(fgd.load_nodes(REAL / fgd.NODE_FILE),
                                 fgd.load_pods(REAL / f"openb_pod_list_{trace}.csv"), 80))
    for nodes, pods in cases:
        for seed in (42, 43):
            engine = fgd.run(nodes, pods, "default", seed, keep_log=True)
            loop = fgd.run(nodes, pods, "fgd_plus", seed, keep_log=True)
            assert engine.placed > 0
            assert engine.log == loop.log


def test_cli_json_on_synthetic(synthetic):
    proc = subprocess.run(
        [sys.executable, "-m", "jupyter_runai.sim", "fgd", "--trace", "default", "--seeds", "2", "--json", "--quiet",
         "--trace-dir", str(synthetic)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert set(report) == set(fgd.POLICIES)
    for entry in report.values():
        for key in ("unallocated_at_100", "unallocated_at_130", "curve"):
            assert key in entry
        assert len(entry["curve"]) == 131


def test_fragmentation_module():
    dist = WorkloadDistribution({Shape(cpu=1000, gpu_milli=500, gpus=1): 1.0, Shape(cpu=1000, gpu_milli=1000, gpus=1): 1.0})
    assert dist.fragmentation([MILLI, MILLI], 8000, "G2") == 0.0
    # a 300 left on one device is a fragment for both shapes
    assert dist.fragmentation([300, MILLI], 8000, "G2") == pytest.approx(300.0)
    # no CPU left: all free GPU is a fragment
    assert dist.fragmentation([MILLI, MILLI], 0, "G2") == pytest.approx(2000.0)
    # a fraction goes on the device already shared rather than open a whole one
    key, devices = best_on_node([500, MILLI], 8000, "G2", Shape(cpu=1000, gpu_milli=500, gpus=1), dist)
    assert devices == (0,)
    assert best_on_node([MILLI], 500, "G2", Shape(cpu=1000, gpu_milli=500, gpus=1), dist) is None
    assert best_on_node([MILLI], 8000, "T4", Shape(cpu=0, gpu_milli=500, gpus=1, models=frozenset({"G2"})), dist) is None


REAL = None
try:
    REAL = fgd.trace_dir()
except FileNotFoundError:
    pass


@pytest.mark.skipif(REAL is None, reason="the openb trace (shared/traces/alibaba-gpu-v2023) is not here")
@pytest.mark.parametrize("trace", ["default", "gpushare100", "gpuspec33"])
def test_real_trace_cut(trace):
    nodes = fgd.load_nodes(REAL / fgd.NODE_FILE)
    pods = fgd.load_pods(REAL / f"openb_pod_list_{trace}.csv")
    nodes, pods = fgd.cut(nodes, pods, 60)
    for policy in fgd.POLICIES:
        check_invariants(fgd.run(nodes, pods, policy, 42, keep_log=True))


@pytest.mark.parametrize("whole, keeps_whole", [(0.05, False), (0.09, False), (0.1, True), (0.5, True)])
def test_fractions_keep_devices_whole_only_for_a_tenth_of_whole_gpu_pods(whole, keeps_whole):
    # a 0.4 fraction on a node with one device at 0.5 free and one idle: opening the idle device
    # ranks last while whole-GPU shapes make a tenth of the workload or more; below that only
    # FGD's score ranks the two (with 5 % whole-GPU shapes it prefers the idle device)
    dist = WorkloadDistribution({Shape(cpu=0, gpu_milli=500, gpus=1): 1.0 - whole,
                                 Shape(cpu=0, gpu_milli=1000, gpus=1): whole})
    fraction = Shape(cpu=0, gpu_milli=400, gpus=1)
    assert placement_key([500, MILLI], 64000, "G", fraction, (1,), dist)[0] == (1 if keeps_whole else 0)
    assert placement_key([500, MILLI], 64000, "G", fraction, (0,), dist)[0] == 0
    _key, devices = best_on_node([500, MILLI], 64000, "G", fraction, dist)
    if keeps_whole:
        assert devices == (0,)
    if whole == 0.05:
        assert devices == (1,)
