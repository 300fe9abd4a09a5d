"""A short, readable demonstration of the engine: ``python -m jupyter_runai.sim demo``.

Two projects share a small cluster of two 4-GPU nodes. Cycle by cycle it shows what
the engine decides: over-quota training filling idle GPUs, fractions packing onto one
device, a non-preemptible workspace held to its quota, and a project under its quota
reclaiming GPUs from one that borrowed them.
"""

from __future__ import annotations

from ..scheduler import Job, Node, Pod, PodStatus, Queue, QueueResources, Snapshot, schedule


def _cluster() -> list[Node]:
    return [Node(name=f"node-{i}", gpus=4, gpu_memory_mib=81920, cpu_millis=64000, memory_bytes=512e9)
            for i in range(2)]


def _queues() -> list[Queue]:
    return [
        Queue(name="research", parent=None, created_order=0, resources={"gpu": QueueResources(8, -1, 1)}),
        Queue(name="vision", parent="research", created_order=0, resources={"gpu": QueueResources(4, -1, 1)}),
        Queue(name="nlp", parent="research", created_order=1, resources={"gpu": QueueResources(4, -1, 1)}),
    ]


def _job(name, queue, pods, priority=50, created=0, **pod):
    return Job(name=name, queue=queue, priority=priority, created_order=created,
               pods=[Pod(name=f"{name}-{i}", index=i, cpu_millis=2000, memory_bytes=8e9, **pod) for i in range(pods)])


def _apply(jobs: list[Job], result) -> None:
    """Play the part of the cluster: binds start running, evicted pods go back to pending."""
    pods = {p.name: p for j in jobs for p in j.pods}
    for b in result.binds:
        p = pods[b.pod]
        p.status, p.node, p.devices = PodStatus.RUNNING, b.node, b.devices
    for e in result.evictions:
        p = pods[e.pod]
        p.status, p.node, p.devices = PodStatus.PENDING, None, None


def _show(title: str, jobs: list[Job], result) -> None:
    print(f"\n== {title}")
    for b in result.binds:
        frac = f" fraction {b.fraction:g}" if b.fraction < 1 else ""
        print(f"  bind   {b.pod:<16} -> {b.node} devices {b.devices}{frac}{' (pipelined)' if b.pipelined else ''}")
    for e in result.evictions:
        print(f"  evict  {e.pod:<16} from {e.node}: {e.reason}")
    for job, reason in result.pending_reasons.items():
        print(f"  wait   {job:<16} {reason}")
    shares = ", ".join(f"{q} {v['gpu']:g}" for q, v in result.fair_share.items() if q in ("vision", "nlp"))
    print(f"  fair share (GPUs): {shares}")


def run_demo() -> None:
    print("jupyter-runai scheduling engine: two projects (vision, nlp) with 4 deserved GPUs each,")
    print("on two nodes of 4 GPUs. Each step is one scheduling cycle.")
    jobs: list[Job] = [
        _job("vision-train", "vision", 6, created=0, gpus=1, ),
        _job("vision-nb", "vision", 1, priority=100, created=1, gpu_fraction=0.5),
        _job("vision-nb2", "vision", 1, priority=100, created=2, gpu_fraction=0.25),
    ]
    jobs[0].min_available = 4  # elastic: 4 pods make a gang, 2 more use idle GPUs
    snap = lambda: Snapshot(nodes=_cluster(), queues=_queues(), jobs=jobs)  # noqa: E731
    r = schedule(snap())
    _show("vision trains with 6 GPUs (4 in quota, 2 borrowed); two notebooks share one GPU", jobs, r)
    _apply(jobs, r)

    jobs.append(_job("nlp-train", "nlp", 4, created=3, gpus=1))
    r = schedule(snap())
    _show("nlp submits a 4-GPU gang within its quota: it reclaims GPUs from vision "
          "(the elastic pods go first, then the gang, which moves or stops whole)", jobs, r)
    _apply(jobs, r)
    r = schedule(snap())
    _show("next cycle: nlp runs; vision's gang waits for 4 GPUs on its fair share", jobs, r)
    _apply(jobs, r)

    jobs.append(_job("nlp-workspace", "nlp", 1, priority=100, created=4, gpus=1))
    jobs.append(_job("nlp-workspace2", "nlp", 1, priority=100, created=5, gpus=4))
    r = schedule(snap())
    _show("nlp opens workspaces (non-preemptible): they run only inside nlp's deserved quota", jobs, r)
