"""Elastic pods above a gang minimum wait for the jobs ahead of them in their project
(issue 14: while a gang's GPUs freed one at a time, an older waiting gang was passed
over and a later elastic job's extra pods took the GPUs). docs/semantics.md, "Elastic
pods above the minimum"."""

from __future__ import annotations

from jupyter_runai.scheduler import schedule
from jupyter_runai.scheduler.types import Job, Node, Pod, PodStatus, Queue, QueueResources, Snapshot

R = PodStatus.RUNNING


def _queue(name: str, gpus: float, limit: float = -1, order: int = 0) -> Queue:
    return Queue(name=name, created_order=order, resources={"gpu": QueueResources(deserved=gpus, limit=limit)})


def _job(name: str, queue: str, pods: int, order: int, *, min_available: int | None = None,
         running: dict[int, int] | None = None, priority: int = 50, pools: list[str] | None = None) -> Job:
    """``running``: pod index -> device on n0 (or on the first node of its pool) for the pods that run."""
    running = running or {}
    return Job(name, queue, priority=priority, created_order=order, min_available=min_available, node_pools=pools,
               pods=[Pod(f"{name}-{k}", index=k, gpus=1,
                         status=R if k in running else PodStatus.PENDING,
                         node=("n0" if not pools else f"{pools[0]}-0") if k in running else None,
                         devices=[running[k]] if k in running else None)
                     for k in range(pods)])


def _cycles_while_a_gang_frees_one_gpu_at_a_time():
    """One node of 5 GPUs. Gang x (4 pods) runs on devices 0-3 and its pods end one per
    cycle; gang g (4 pods, submitted before e) waits for 4 GPUs; elastic e (minimum 1,
    up to 4 pods) runs its minimum on device 4. Each cycle's binds start their pods."""
    node = Node("n0", gpus=5, cpu_millis=64000, memory_bytes=1e12)
    e_running = {0: 4}
    g_running: dict[int, int] = {}
    history = []
    for x_left in (3, 2, 1, 0, 0):
        used = set(range(x_left)) | set(e_running.values()) | set(g_running.values())
        assert len(used) == x_left + len(e_running) + len(g_running)  # never two pods on one device
        jobs = [_job("x", "p", x_left, 0, running={k: k for k in range(x_left)}),  # ended pods are gone
                _job("g", "p", 4, 1, running=g_running),
                _job("e", "p", 4, 2, min_available=1, running=e_running)]
        res = schedule(Snapshot(nodes=[node], queues=[_queue("p", 5)], jobs=jobs))
        history.append(res)
        for b in res.binds:
            assert not b.pipelined
            target = e_running if b.job == "e" else g_running
            target[int(b.pod.rsplit("-", 1)[1])] = b.devices[0]
    return history, e_running, g_running


def test_a_later_elastic_jobs_extra_pods_do_not_take_the_gpus_an_older_gang_waits_for():
    history, e_running, g_running = _cycles_while_a_gang_frees_one_gpu_at_a_time()
    # while x's GPUs free one at a time, none of them goes to e's pods above its minimum
    for res in history[:3]:
        assert res.binds == []
        assert "waits for capacity on the same nodes" in res.pending_reasons["e"]
        assert "pod g-0 and 3 more" in res.pending_reasons["e"]
        assert res.pending_reasons["g"].startswith("all 4 pods must start together and ")
    # the gang's reason counts its pods plainly as GPUs free up
    assert [res.pending_reasons["g"].split("; ")[0] for res in history[:3]] == [
        "all 4 pods must start together and only 1 fits now", "all 4 pods must start together and only 2 fit now",
        "all 4 pods must start together and only 3 fit now"]
    # once the fourth is free, the gang starts whole
    assert sorted(b.pod for b in history[3].binds) == ["g-0", "g-1", "g-2", "g-3"]
    assert set(g_running.values()) == {0, 1, 2, 3}
    # and e grows only when nothing ahead of it waits (here: no GPU left)
    assert e_running == {0: 4}
    assert history[4].binds == [] and "g" not in history[4].pending_reasons


def test_a_gang_none_of_whose_pods_fits_says_so_plainly():
    x = _job("x", "p", 5, 0, running={k: k for k in range(5)}, priority=100)  # every GPU, not preemptible by g
    reason = _one_cycle([x, _job("g", "p", 2, 1)], [_queue("p", 5)]).pending_reasons["g"]
    assert reason.startswith("all 2 pods must start together and none of them fits now; pod g-0 needs 1 whole GPU")
    assert "only 0" not in reason


def _one_cycle(jobs: list[Job], queues: list[Queue], nodes: list[Node] | None = None):
    nodes = nodes or [Node("n0", gpus=5, cpu_millis=64000, memory_bytes=1e12)]
    return schedule(Snapshot(nodes=nodes, queues=queues, jobs=jobs))


def _extra_binds(res) -> list[str]:
    return sorted(b.pod for b in res.binds if b.job == "e")


def test_the_extras_hold_is_only_for_a_wait_that_can_end():
    # x runs on devices 0-2, e its minimum on device 3: one GPU (4) is idle
    x = _job("x", "p", 3, 0, running={0: 0, 1: 1, 2: 2})
    e = _job("e", "p", 3, 2, min_available=1, running={0: 3})
    # a gang of 6 never fits on 5 GPUs: it holds nothing back
    res = _one_cycle([x, _job("g", "p", 6, 1), e], [_queue("p", 5)])
    assert _extra_binds(res) == ["e-1"]
    # a gang over its project's limit waits for the limit, not for capacity
    res = _one_cycle([x, _job("g", "p", 2, 1), e], [_queue("p", 5, limit=5)])
    assert _extra_binds(res) == ["e-1"]
    assert "limit" in res.pending_reasons["g"]
    # a gang of another project is not ahead in e's project (between projects, reclaim decides)
    res = _one_cycle([x, _job("g", "q", 2, 1), e], [_queue("p", 5, order=0), _queue("q", 0, order=1)])
    assert _extra_binds(res) == ["e-1"]
    # a gang of lower priority comes after e's pods in the project's order
    res = _one_cycle([x, _job("g", "p", 2, 1, priority=40), e], [_queue("p", 5)])
    assert _extra_binds(res) == ["e-1"]
    # and the same gang at e's priority holds them back
    res = _one_cycle([x, _job("g", "p", 2, 1), e], [_queue("p", 5)])
    assert _extra_binds(res) == []
    assert res.pending_reasons["e"].startswith("running with its gang minimum; its pods above the minimum wait")


def test_a_gang_holds_back_only_the_extras_that_could_use_its_nodes():
    nodes = [Node("a-0", gpus=2, pool="a", cpu_millis=64000, memory_bytes=1e12),
             Node("b-0", gpus=2, pool="b", cpu_millis=64000, memory_bytes=1e12)]
    x = _job("x", "p", 1, 0, running={0: 0}, pools=["a"])  # a-0: one GPU idle
    e = _job("e", "p", 3, 2, min_available=1, running={0: 0}, pools=["b"])  # b-0: one GPU idle
    g = _job("g", "p", 2, 1, pools=["a"])  # waits for both GPUs of pool a
    res = _one_cycle([x, g, e], [_queue("p", 4)], nodes)
    assert _extra_binds(res) == ["e-1"]  # pool b: nothing ahead of e waits there
    assert "g" in res.pending_reasons


def test_the_minimum_of_a_later_job_still_takes_idle_gpus():
    # only pods above a minimum wait: a later job's minimum (here a one-pod job) takes an
    # idle GPU in its turn, as in KAI (no reservation for a waiting gang)
    x = _job("x", "p", 4, 0, running={k: k for k in range(4)})
    res = _one_cycle([x, _job("g", "p", 2, 1), _job("later", "p", 1, 2)], [_queue("p", 5)])
    assert [b.pod for b in res.binds] == ["later-0"]
