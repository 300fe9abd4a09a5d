"""How many events and writes a busy queue makes: a pending reason whose figures move
every cycle is recorded once per kind of reason, not once per cycle, and the store is
pruned while the service runs, not only at start."""

from __future__ import annotations

import random

from jupyter_runai.clusters.simulated import SimulatedCluster, simulated_nodes
from jupyter_runai.scheduler.reasons import reason_kind
from test_service import ME, make_service

SHAPES = [{"gpu": 0.25}, {"gpu": 0.5}, {"gpu": 0.75}, {"gpu": 1}, {"gpu": 2}, {"gpu_memory": "30Gi"}]


def churn(service, cluster, workloads: int, cycles: int, seed: int = 1) -> None:
    """``workloads`` of mixed shapes queued on 8 GPUs; every cycle one running pod ends."""
    rng = random.Random(seed)
    for i in range(workloads):
        service.submit({"name": f"w{i}", "command": "run", "resources": rng.choice(SHAPES)}, ME)
    service.run_cycle()
    for _ in range(cycles):
        running = sorted(p.name for w in service.workloads.values() for p in w.status.pods
                         if p.phase.value == "Running")
        for name in rng.sample(running, min(len(running), 1)):
            cluster.finish(f"default/{name}", 0)
        service.run_cycle()


def test_a_busy_queue_records_each_kind_of_pending_reason_once(tmp_path):
    cluster = SimulatedCluster(simulated_nodes(2, gpus=4))
    service = make_service(tmp_path, cluster, gpus=8)
    try:
        workloads, cycles = 300, 150
        churn(service, cluster, workloads, cycles)
        events = service.store.events(limit=10**6)
        pending = [e for e in events if e.type == "Pending"]
        # before: every figure that moved was an event (several thousand here)
        assert len(pending) <= 2 * workloads, f"{len(pending)} Pending events for {workloads} workloads"
        told: dict[str, set] = {}  # workload -> kinds told since it last started waiting
        for e in events:
            if e.type in ("Started", "Evicted", "Resumed"):
                told.pop(e.workload, None)
            elif e.type == "Pending":
                kind = reason_kind(e.message)
                assert kind not in told.setdefault(e.workload, set()), f"{e.workload} told twice: {e.message}"
                told[e.workload].add(kind)
        # the status still shows this cycle's words
        waiting = [w for w in service.workloads.values() if w.status.phase.value == "Pending"]
        assert waiting and all(w.status.pending_reason for w in waiting)
        last_told = {e.workload: e.message for e in pending}
        assert any(w.status.pending_reason != last_told.get(w.spec.name) for w in waiting), \
            "figures never moved: the test does not exercise what it is about"
    finally:
        service.store.close()


def test_figures_alone_do_not_make_a_new_kind():
    a = ("pod default/w1-0 needs 0.75 of a GPU; the largest free fraction on one device is 0.25; project "
         "'default' would be above its fair share of 8 GPUs (8.625 GPUs with this workload), so it cannot take "
         "resources back from other projects")
    b = a.replace("is 0.25", "is 0.50").replace("8.625 GPUs", "9 GPUs")
    c = a.replace("the largest free fraction on one device is 0.25", "every GPU is fully allocated")
    assert reason_kind(a) == reason_kind(b) == reason_kind(c)
    idle = "pod default/w2-0 needs 2 whole GPUs on one node; no GPU in node pool a100 is idle"
    some = "pod default/w2-0 needs 2 whole GPUs on one node; the most idle GPUs on one node in node pool a100 is 1"
    assert reason_kind(idle) == reason_kind(some)
    cpu = "pod default/w3-0 needs 1 CPU and 2Gi of memory; CPU is short: 1 cores wanted, at most 0.5 free on one node"
    memory = ("pod default/w3-0 needs 1 CPU and 2Gi of memory; memory is short: 2Gi wanted, at most 1Gi free on "
              "one node")
    assert reason_kind(cpu) != reason_kind(memory)
    assert reason_kind(a) != reason_kind("waiting for its turn in the queue")
    assert reason_kind(None) is None


def test_events_are_pruned_while_the_service_runs(tmp_path):
    cluster = SimulatedCluster(simulated_nodes(1, gpus=2))
    service = make_service(tmp_path, cluster, event_retention=50)
    try:
        stored = []
        for i in range(40):  # each: Submitted, Scheduled, Started, Succeeded (pod and workload)
            service.submit({"name": f"short-{i}", "command": "run"}, ME)
            service.run_cycle()
            cluster.finish(f"default/short-{i}-0", 0)
            service.run_cycle()
            stored.append(len(service.store.events(limit=10**6)))
        oldest, newest = service.store.event_ids()
        assert newest >= 40 * 4, "fewer events than the test expects"
        assert max(stored) <= 50 + 5, f"the store grew past its retention while running: {stored}"
        assert oldest > newest - 60  # the newest were kept
    finally:
        service.store.close()


class NodesFailOnce(SimulatedCluster):
    """A cluster whose node listing fails once when asked to (a backend error mid-cycle)."""

    fail = False

    def nodes(self):
        if self.fail:
            self.fail = False
            raise RuntimeError("the node list could not be read")
        return super().nodes()


def test_events_of_a_cycle_that_rolled_back_are_never_published(tmp_path):
    cluster = NodesFailOnce(simulated_nodes(1, gpus=2))
    service = make_service(tmp_path, cluster)
    try:
        service.submit({"name": "job", "command": "run", "resources": {"gpu": 1}}, ME)
        service.run_cycle()
        queue = service.subscribe()
        cluster.finish("default/job-0", 0)  # the cycle records that it ended, then fails
        cluster.fail = True
        try:
            service.run_cycle()
        except RuntimeError:
            pass
        stored = {e.id: e.message for e in service.store.events(limit=1000)}
        published = [queue.get_nowait() for _ in range(queue.qsize())]
        assert all(stored.get(data["id"]) == data["message"] for data in published), \
            f"published events that are not stored: {published}"
        service.submit({"name": "next", "command": "run"}, ME)  # takes the ids given before
        again = [queue.get_nowait() for _ in range(queue.qsize())]
        ids = [data["id"] for data in published + again]
        assert len(ids) == len(set(ids)), "two different events went out under one id"
    finally:
        service.store.close()
