"""Per-node-pool quotas: each pool divides its own quotas; a workload's pools are tried in turn."""

from __future__ import annotations

from jupyter_runai.scheduler import Job, Node, Pod, PodStatus, Queue, QueueResources, Snapshot, schedule


def nodes():
    return ([Node(name=f"a-{i}", gpus=4, gpu_memory_mib=81920, cpu_millis=64000, memory_bytes=512e9, pool="a")
             for i in range(2)]
            + [Node(name="b-0", gpus=4, gpu_memory_mib=16384, cpu_millis=64000, memory_bytes=512e9, pool="b")])


def queue(name, deserved=0.0, limit=-1.0, pools=None, parent=None, order=0):
    return Queue(name=name, parent=parent, created_order=order,
                 resources={"gpu": QueueResources(deserved, limit, 1.0)},
                 pool_resources={pool: {"gpu": QueueResources(d, lim, 1.0)} for pool, (d, lim) in (pools or {}).items()})


def job(name, queue_name, gpus=1, pods=1, pools=None, order=0, priority=50, status=PodStatus.PENDING, node=None,
        devices=None):
    return Job(name=name, queue=queue_name, priority=priority, created_order=order, node_pools=pools,
               pods=[Pod(name=f"{name}-{i}", index=i, gpus=gpus, status=status, node=node,
                         devices=[i] if node and devices is None else devices) for i in range(pods)])


def where(result):
    return {b.job: b.node for b in result.binds}


def test_a_pool_limit_sends_the_rest_to_the_next_pool():
    q = queue("team", pools={"a": (2, 2), "b": (4, -1)})
    jobs = [job(f"j{i}", "team", pools=["a", "b"], order=i) for i in range(4)]
    result = schedule(Snapshot(nodes=nodes(), queues=[q], jobs=jobs))
    placed = where(result)
    assert [placed[f"j{i}"][0] for i in range(4)] == ["a", "a", "b", "b"]


def test_pools_without_a_list_are_tried_in_node_order_and_reasons_name_each_pool():
    q = queue("team", pools={"a": (0, 0), "b": (1, 1)})
    jobs = [job("first", "team", order=0), job("second", "team", order=1)]
    result = schedule(Snapshot(nodes=nodes(), queues=[q], jobs=jobs))
    assert where(result) == {"first": "b-0"}
    reason = result.pending_reasons["second"]
    assert reason.startswith("node pool a: ") and "node pool b: " in reason and "limit" in reason


def test_each_pool_divides_its_own_quota_and_reclaims_in_that_pool():
    # in pool a, alpha deserves everything and beta nothing; in b the other way round
    alpha = queue("alpha", pools={"a": (8, -1), "b": (0, -1)}, order=0)
    beta = queue("beta", pools={"a": (0, -1), "b": (4, -1)}, order=1)
    running = [job(f"beta-a{i}", "beta", gpus=4, status=PodStatus.RUNNING, node=f"a-{i}", devices=[0, 1, 2, 3],
                   order=i) for i in range(2)]
    pending = [job("alpha-1", "alpha", gpus=4, pools=["a"], order=5)]
    result = schedule(Snapshot(nodes=nodes(), queues=[alpha, beta], jobs=running + pending))
    evicted = {e.job for e in result.evictions}
    assert len(evicted) == 1 and evicted <= {"beta-a0", "beta-a1"}, "alpha reclaims its deserved GPUs in pool a"
    assert result.fair_share["alpha"]["gpu"] >= 4


def test_a_running_job_keeps_its_pool_for_more_pods():
    q = queue("team", pools={"a": (8, -1), "b": (4, -1)})
    elastic = Job(name="elastic", queue="team", priority=50, min_available=1, node_pools=["b", "a"], pods=[
        Pod(name="elastic-0", index=0, gpus=1, status=PodStatus.RUNNING, node="a-0", devices=[0]),
        Pod(name="elastic-1", index=1, gpus=1)])
    result = schedule(Snapshot(nodes=nodes(), queues=[q], jobs=[elastic]))
    assert where(result) == {"elastic": "a-0"} or where(result)["elastic"].startswith("a-")


def test_without_pool_blocks_quotas_are_cluster_wide():
    q = Queue(name="team", resources={"gpu": QueueResources(2, 2, 1.0)})
    jobs = [job(f"j{i}", "team", pools=["a", "b"], order=i) for i in range(4)]
    result = schedule(Snapshot(nodes=nodes(), queues=[q], jobs=jobs))
    assert len(result.binds) == 2  # one limit of 2 over all pools


# ----------------------------------------------------------------------------- invariants

from hypothesis import given, settings, strategies as st  # noqa: E402


@st.composite
def pooled_snapshots(draw):
    queues = []
    for qi in range(draw(st.integers(1, 3))):
        pools = {}
        for pool in ("a", "b"):
            if draw(st.booleans()):
                deserved = draw(st.integers(0, 4))
                limit = draw(st.one_of(st.just(-1), st.integers(deserved, 8)))
                pools[pool] = (deserved, limit)
        queues.append(queue(f"q{qi}", deserved=draw(st.integers(0, 4)), pools=pools or {"a": (1, -1)}, order=qi))
    jobs = []
    for ji in range(draw(st.integers(1, 12))):
        pools = draw(st.one_of(st.none(), st.permutations(["a", "b"]), st.just(["b"])))
        jobs.append(job(f"j{ji}", f"q{draw(st.integers(0, len(queues) - 1))}", gpus=draw(st.integers(1, 4)),
                        pods=draw(st.integers(1, 2)), pools=list(pools) if pools else None, order=ji,
                        priority=draw(st.sampled_from([50, 100]))))
    return Snapshot(nodes=nodes(), queues=queues, jobs=jobs)


@settings(max_examples=60, deadline=None)
@given(pooled_snapshots())
def test_pool_limits_hold_and_no_device_is_shared_by_whole_gpu_pods(snapshot):
    result = schedule(snapshot)
    pool_of = {n.name: n.pool for n in snapshot.nodes}
    queue_of = {j.name: j.queue for j in snapshot.jobs}
    gpus_of = {p.name: p.gpus for j in snapshot.jobs for p in j.pods}
    used: dict[tuple[str, str], float] = {}
    held: set[tuple[str, int]] = set()
    for bind in result.binds:
        key = (queue_of[bind.job], pool_of[bind.node])
        used[key] = used.get(key, 0) + gpus_of[bind.pod]
        for device in bind.devices:
            assert (bind.node, device) not in held, "a device given twice"
            held.add((bind.node, device))
    limits = {(q.name, pool): block["gpu"].limit for q in snapshot.queues for pool, block in q.pool_resources.items()}
    for (queue_name, pool), amount in used.items():
        limit = limits.get((queue_name, pool))
        if limit is not None and limit >= 0:
            assert amount <= limit + 1e-9, f"{queue_name} over its limit in pool {pool}"
    for bind in result.binds:  # a workload runs in one of its pools
        pools = next(j.node_pools for j in snapshot.jobs if j.name == bind.job)
        assert pools is None or pool_of[bind.node] in pools
    pools_of_job: dict[str, set[str]] = {}
    for bind in result.binds:
        pools_of_job.setdefault(bind.job, set()).add(pool_of[bind.node])
    assert all(len(p) == 1 for p in pools_of_job.values()), "a workload's pods stay in one pool"


def test_each_pool_pass_keeps_the_snapshot_minimum_runtime():
    # as above, alpha reclaims pool a from beta; beta's jobs started 60 s ago, and a snapshot
    # minimum runtime of 600 s protects them in the per-pool pass too
    alpha = queue("alpha", pools={"a": (8, -1), "b": (0, -1)}, order=0)
    beta = queue("beta", pools={"a": (0, -1), "b": (4, -1)}, order=1)
    running = [job(f"beta-a{i}", "beta", gpus=4, status=PodStatus.RUNNING, node=f"a-{i}", devices=[0, 1, 2, 3],
                   order=i) for i in range(2)]
    for j in running:
        for p in j.pods:
            p.started_at = 940.0
    pending = [job("alpha-1", "alpha", gpus=4, pools=["a"], order=5)]
    for protect, evicted in ((600.0, 0), (0.0, 1)):
        snap = Snapshot(nodes=nodes(), queues=[alpha, beta], jobs=running + pending, now=1000.0,
                        reclaim_min_runtime=protect)
        assert len(schedule(snap).evictions) == evicted



def weightless(name, deserved, limit=-1.0, order=0):
    """A queue with over-quota weight 0."""
    return Queue(name=name, created_order=order, resources={"gpu": QueueResources(deserved, limit, 0.0)})


def test_over_quota_weight_0_is_no_share_of_idle_gpus_not_a_cap():
    """KAI's semantics (its own tests allocate over quota with weight 0): weight 0 gives a project no part
    of the idle GPUs in the fair-share division, so all it runs above its deserved quota is the first to be
    reclaimed; it is not a cap. A project kept within its deserved quota has limit = deserved."""
    node = [Node(name="n", gpus=4, gpu_memory_mib=81920, cpu_millis=64000, memory_bytes=512e9)]
    jobs = [job(f"j{i}", "team", order=i) for i in range(3)]
    result = schedule(Snapshot(nodes=node, queues=[weightless("team", 1)], jobs=jobs))
    assert len(result.binds) == 3  # the GPUs were idle
    assert result.fair_share["team"]["gpu"] == 1
    # another project (weight 1, nothing deserved) asks for 3: it takes back all that is above team's quota
    running = [job(f"j{i}", "team", order=i, status=PodStatus.RUNNING, node="n", devices=[i]) for i in range(3)]
    other = Queue(name="other", created_order=1, resources={"gpu": QueueResources(0, -1.0, 1.0)})
    result = schedule(Snapshot(nodes=node, queues=[weightless("team", 1), other],
                               jobs=running + [job("big", "other", gpus=3, order=5)]))
    assert result.fair_share["team"]["gpu"] == 1 and result.fair_share["other"]["gpu"] == 3
    assert {e.job for e in result.evictions} == {"j1", "j2"}, "the oldest job, within quota, stays"
    # limit = deserved is the cap
    result = schedule(Snapshot(nodes=node, queues=[weightless("team", 1, limit=1)], jobs=jobs))
    assert [b.job for b in result.binds] == ["j0"] and "limit" in result.pending_reasons["j1"]


def test_fair_shares_without_a_cycle_match_the_cycle_s_and_sum_the_pools():
    """What the service shows when nothing waits (scheduler.shares): the division the cycle makes."""
    from jupyter_runai.scheduler.shares import fair_shares

    flat = [queue("alpha", deserved=2, order=0), queue("beta", deserved=0, order=1)]
    running = [job("r", "beta", gpus=4, status=PodStatus.RUNNING, node="a-0", devices=[0, 1, 2, 3])]
    waiting = [job("w", "alpha", gpus=1, order=1)]
    snap = Snapshot(nodes=nodes(), queues=flat, jobs=running + waiting)
    assert fair_shares(snap) == schedule(snap).fair_share
    idle = fair_shares(Snapshot(nodes=nodes(), queues=flat, jobs=running))
    assert idle["alpha"]["gpu"] == 0 and idle["beta"]["gpu"] == 4
    # per-pool quotas: each pool divides among the jobs that run in it, and the pools add up
    alpha = queue("alpha", pools={"a": (8, -1), "b": (0, -1)}, order=0)
    beta = queue("beta", pools={"a": (0, -1), "b": (4, -1)}, order=1)
    jobs = [job("in-a", "alpha", gpus=2, status=PodStatus.RUNNING, node="a-0", devices=[0, 1]),
            job("in-b", "beta", gpus=3, status=PodStatus.RUNNING, node="b-0", devices=[0, 1, 2], order=1),
            job("also-b", "alpha", gpus=1, status=PodStatus.RUNNING, node="b-0", devices=[3], order=2)]
    shares = fair_shares(Snapshot(nodes=nodes(), queues=[alpha, beta], jobs=jobs))
    assert shares["alpha"]["gpu"] == 2 + 1 and shares["beta"]["gpu"] == 3
