"""The Kubernetes backend's costs against the API server stand-in (tests/kube_stand_in.py):

* **binds per second**: pods created unbound, then bound one after the other through the
  backend's writer (``KubeWriter.bind``, the ``pods/binding`` subresource, the real
  ``kubernetes`` client over HTTP on loopback), as the backend's one writer thread does,
  on a cluster of ``--nodes`` nodes (1,000 by default). Creates per second are reported
  too, as a comparison.
* **the informer cache's memory per 1,000 pods**: a backend (``KubernetesCluster``) lists
  and watches ``--pods`` pods built by the pod template (a training, one GPU, with its
  environment, labels and annotations, plus the status a kubelet writes). The size is the
  deep size of the pod cache's objects (``sys.getsizeof`` over every dict, list and string
  it holds), divided by the pods and times 1,000.

    python3 benchmarks/kube_binds.py                 # 1,000 nodes, 2,000 binds, 1,000 pods cached
    python3 benchmarks/kube_binds.py --quick --json  # 100 nodes, 200 binds, 200 pods

The stand-in runs in this process, on its own thread, so it and the client share the CPU:
the figures are a floor for the client's own cost, not a real API server's rate. Nothing
is asserted; the figures go to a table or JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from kube_stand_in import gpu_node, running_stand_in  # noqa: E402

from jupyter_runai.clusters.kube_writer import KubeWriter  # noqa: E402
from jupyter_runai.clusters.podtemplate import Placement, TemplateOptions, pod_manifest  # noqa: E402
from jupyter_runai.models import Workload  # noqa: E402

NS = "runai-bench"


def deep_size(obj, seen: set[int] | None = None) -> int:
    """Bytes held by ``obj`` and everything it refers to (dicts, lists, strings, numbers), once each."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(deep_size(k, seen) + deep_size(v, seen) for k, v in obj.items())
    elif isinstance(obj, (list, tuple, set)):
        size += sum(deep_size(v, seen) for v in obj)
    return size


def manifest(index: int, nodes: int) -> dict:
    """A realistic pod of ours: the pod template's training pod, one GPU, as a kubelet reports it."""
    workload = Workload.model_validate({
        "uid": f"00000000-0000-0000-0000-{index:012d}",
        "spec": {"name": f"train{index}", "project": "bench", "command": "python train.py --epochs 10",
                 "image": "ghcr.io/acme/train:1.2", "environment": {"WANDB_PROJECT": "bench", "SEED": str(index)},
                 "resources": {"gpu": 1, "cpu": "4", "memory": "16Gi"}},
        "submitted_by": "bench"})
    pod = pod_manifest(workload, 0, Placement(node=f"node-{index % nodes:04d}", devices=(0,)),
                       options=TemplateOptions(bind="node_selector"))
    pod["metadata"]["namespace"] = NS
    return pod


def run(nodes: int, binds: int, cached: int) -> dict:
    from kubernetes import client as k8s

    with running_stand_in() as api:
        api.keep_requests = False  # the stand-in's request log would cost O(requests so far) a request
        for n in range(nodes):
            api.put("nodes", gpu_node(f"node-{n:04d}", gpus=8))
        core = k8s.CoreV1Api(k8s.ApiClient(k8s.Configuration(host=api.host)))
        closed = threading.Event()
        writer = KubeWriter(core, request_timeout=30, retry_seconds=30, closed=closed)
        pods = [manifest(i, nodes) for i in range(max(binds, cached))]

        start = time.perf_counter()
        for pod in pods[:binds]:
            writer.create_pod(NS, pod, None)
        create_s = time.perf_counter() - start

        start = time.perf_counter()
        for i, pod in enumerate(pods[:binds]):
            writer.bind(NS, pod["metadata"]["name"], f"node-{i % nodes:04d}")
        bind_s = time.perf_counter() - start

        for pod in pods[binds:cached]:
            writer.create_pod(NS, pod, None)
        for pod in pods[:cached]:  # what a kubelet adds: the status of a running pod
            api.patch("pods", NS, pod["metadata"]["name"], {"status": {
                "phase": "Running", "podIP": "10.1.2.3", "hostIP": "10.0.0.1", "startTime": "2026-01-01T00:00:00Z",
                "conditions": [{"type": t, "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}
                               for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")],
                "containerStatuses": [{"name": "main", "ready": True, "restartCount": 0,
                                       "image": "ghcr.io/acme/train:1.2",
                                       "imageID": "ghcr.io/acme/train@sha256:" + "0" * 64,
                                       "containerID": "containerd://" + "1" * 64,
                                       "state": {"running": {"startedAt": "2026-01-01T00:00:01Z"}}}]}})
        writer.close()

        from jupyter_runai.clusters.kubernetes import KubernetesCluster

        with tempfile.TemporaryDirectory(prefix="runai-kube-bench-") as state:
            start = time.perf_counter()
            cluster = KubernetesCluster(host=api.host, state_dir=state, sync_timeout=120)
            sync_s = time.perf_counter() - start
            try:
                items = cluster.pod_informer.items()
                size = deep_size(items) - sys.getsizeof(items)  # the objects, not the list made to return them
                node_items = cluster.node_informer.items()
                node_size = deep_size(node_items) - sys.getsizeof(node_items)
                count = len(items)
            finally:
                cluster.close()
    return {
        "nodes": nodes,
        "binds": binds,
        "binds_per_s": round(binds / bind_s, 1),
        "creates_per_s": round(binds / create_s, 1),
        "cached_pods": count,
        "cache_mib_per_1000_pods": round(size / count * 1000 / 2**20, 2),
        "cache_kib_per_pod": round(size / count / 1024, 2),
        "node_cache_mib_per_1000_nodes": round(node_size / nodes * 1000 / 2**20, 2),
        "first_sync_s": round(sync_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--binds", type=int, default=2000)
    parser.add_argument("--pods", type=int, default=1000,
                        help="pods in the informer cache at least (every pod bound is there too)")
    parser.add_argument("--quick", action="store_true", help="100 nodes, 200 binds, 200 pods (CI)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.nodes, args.binds, args.pods = 100, 200, 200
    for name, value in (("--nodes", args.nodes), ("--binds", args.binds), ("--pods", args.pods)):
        if not 1 <= value <= 20000:
            parser.error(f"{name} is 1 to 20000, got {value}")
    report = {"quick": args.quick, "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
              **run(args.nodes, args.binds, args.pods)}
    if args.json:
        print(json.dumps(report))
        return
    for key, value in report.items():
        print(f"{key:32} {value}")


if __name__ == "__main__":
    main()
