"""Choosing a node and devices for one pod.

Nodes are ranked in tiers, as KAI-Scheduler's scores do:

1. (fractions only) a node with a shared device the fraction fits on, even if only
   once releasing pods are gone — fractions gather on devices already shared rather
   than break a whole idle device;
2. a node where the pod fits now, on idle capacity (it binds);
3. a node where the pod fits once releasing capacity is free (it is *pipelined*).

Inside a tier, the pool's strategy decides: ``binpack`` takes the node with the
fewest idle devices that still fits (the least free CPU for CPU-only pods),
``spread`` the most. Ties go to the node listed first.

To stay fast on thousands of nodes, whole-GPU pods never scan the cluster: nodes
sit in buckets by their count of idle devices (per pool), so the first node of the
first non-empty bucket that passes the filters is the answer. Fractions look at the
nodes that already have a shared device first (few, when packing), then the buckets.
"""

from __future__ import annotations

from .session import EPS, NodeState, PodState, Session, nodes_in_order

Placement = tuple[NodeState, tuple[int, ...], float, bool]  # node, devices, fraction, pipelined


def _affinity_ok(node: NodeState, affinity) -> bool:
    if not affinity:
        return True
    labels = node.labels
    for key, values in affinity.items():
        if labels.get(key) not in values:
            return False
    return True


def _pools(sess: Session, pod: PodState) -> list[list[str]]:
    """Pool groups to try in turn: the job's ordered list, else all pools at once."""
    pools = pod.job.pools
    if pools:
        return [[p] for p in pools if p in sess.buckets]
    return [list(sess.buckets)]


def place(sess: Session, pod: PodState, allow_pipeline: bool = True, held: dict | None = None) -> Placement | None:
    """Where ``pod`` goes (None: nowhere). ``held`` (whole-GPU pods only) overlays
    restores that the victim search decided but has not applied yet: per node index,
    the releasing pods that run again there (see :meth:`.victims.Solver._move_victims`)."""
    for group in _pools(sess, pod):
        if pod.fractional:
            found = _place_fraction(sess, pod, group, allow_pipeline)
        elif pod.whole > 0:
            found = _place_whole(sess, pod, group, allow_pipeline, held)
        else:
            found = _place_cpu_only(sess, pod, group, allow_pipeline)
        if found is not None:
            return found
    return None


# ---------------------------------------------------------------- whole GPUs
def _whole_now(node: NodeState, pod: PodState) -> tuple[int, ...] | None:
    if node.idle_count < pod.whole:
        return None
    if node.cpu_free_now() + EPS < pod.cpu or node.mem_free_now() + EPS < pod.mem:
        return None
    out = []
    for d in range(node.ndev):
        if node.d_nact[d] == 0 and node.d_nrel[d] == 0 and node.d_npip[d] == 0:
            out.append(d)
            if len(out) == pod.whole:
                return tuple(out)
    return None


def _whole_future(node: NodeState, pod: PodState, held: list | None = None) -> tuple[int, ...] | None:
    if held is None:
        if node.cpu_free_future() + EPS < pod.cpu or node.mem_free_future() + EPS < pod.mem:
            return None
        counts = ()
    else:
        # as if the held (restored) pods ran again: active, no longer releasing
        cpu = mem = 0.0
        counts = set()
        for q in held:
            cpu += q.cpu
            mem += q.mem
            counts.update(q.devices)
        if (node.cpu_cap - (node.cpu_act + cpu) - node.cpu_pip + EPS < pod.cpu
                or node.mem_cap - (node.mem_act + mem) - node.mem_pip + EPS < pod.mem):
            return None
    idle, releasing = [], []
    for d in range(node.ndev):
        if node.d_nact[d] == 0 and node.d_npip[d] == 0 and d not in counts:
            (releasing if node.d_nrel[d] else idle).append(d)
    if len(idle) + len(releasing) < pod.whole:
        return None
    return tuple(sorted((idle + releasing)[: pod.whole]))


def _place_whole(sess: Session, pod: PodState, pools: list[str], allow_pipeline: bool,
                 held: dict | None = None) -> Placement | None:
    spread = False
    affinity = pod.spec.node_affinity
    k = pod.whole
    top = sess.max_gpus
    if k > top:
        return None
    buckets = [sess.buckets[p] for p in pools]
    if buckets:
        spread = _node_config(sess, pools).gpu == "spread"
    order = range(top, k - 1, -1) if spread else range(k, top + 1)
    for count in order:
        for node in nodes_in_order([b[count] for b in buckets]):
            if affinity and not _affinity_ok(node, affinity):
                continue
            devs = _whole_now(node, pod)
            if devs is not None:
                return node, devs, 1.0, False
    if not allow_pipeline:
        return None
    # tier 3: nodes with releasing pods and at least k idle-or-releasing devices, by
    # idle devices (the strategy's order), then the node listed first
    pool_cells = [sess.rel_fut[p] for p in pools]
    for idle in (range(top, -1, -1) if spread else range(top + 1)):
        level = [cell for cells in pool_cells for fut in range(max(k, idle), top + 1)
                 if (cell := cells[sess.rel_cell(fut, idle)])]
        if not level:
            continue
        idxs = level[0].keys() if len(level) == 1 else [i for cell in level for i in cell]
        for i in sorted(idxs):
            node = sess.nodes[i]
            if affinity and not _affinity_ok(node, affinity):
                continue
            h = held.get(i) if held else None
            if h is not None and node.n_rel_pods <= len(h):
                continue  # once the held pods run again, nothing on it is releasing
            devs = _whole_future(node, pod, h)
            if devs is not None:
                return node, devs, 1.0, True
    return None


def _node_config(sess: Session, pools: list[str]):
    for n in sess.nodes:
        if n.pool == pools[0]:
            return n.config
    return sess.config


# ---------------------------------------------------------------- fractions
def _device_candidates(node: NodeState, f: float, spread: bool):
    """Devices that can take fraction ``f``: [(rank key, device, needs pipelining)]."""
    out = []
    for d in range(node.ndev):
        nfrac = node.d_nfrac[d]
        if node.d_nact[d] and not nfrac:
            continue  # a whole-GPU pod holds it
        if node.d_npip[d] and not nfrac:
            continue  # reserved for a pipelined whole-GPU pod
        act, pip, rel = node.d_act[d], node.d_pip[d], node.d_rel[d]
        if act + pip + f > 1.0 + EPS:
            continue
        pipelined = bool(node.d_nrel[d] or node.d_npip[d])
        if not pipelined and act + f > 1.0 + EPS:
            continue
        shared = nfrac > 0
        used = act + pip + rel if shared else 0.0
        if spread:
            key = (0 if not shared else 1, used, d)
        else:
            key = (0 if shared else 1, -used, d)
        out.append((key, d, pipelined))
    out.sort()
    return out


def _fraction_on_node(node: NodeState, pod: PodState, spread: bool):
    """(devices, fraction, pipelined, uses_shared_device) for ``pod`` on ``node``, or None."""
    f = pod.fraction_on(node)
    if f > 1.0 + EPS or node.ndev < pod.ndev:
        return None
    cands = _device_candidates(node, f, spread)
    if len(cands) < pod.ndev:
        return None
    chosen = cands[: pod.ndev]
    pipelined = any(c[2] for c in chosen)
    if pipelined or node.cpu_free_now() + EPS < pod.cpu or node.mem_free_now() + EPS < pod.mem:
        if node.cpu_free_future() + EPS < pod.cpu or node.mem_free_future() + EPS < pod.mem:
            return None
        pipelined = True
    shared = any(node.d_nfrac[c[1]] > 0 for c in chosen)
    return tuple(sorted(c[1] for c in chosen)), f, pipelined, shared


def _place_fraction(sess: Session, pod: PodState, pools: list[str], allow_pipeline: bool) -> Placement | None:
    affinity = pod.spec.node_affinity
    pool_set = set(pools)
    cfg = _node_config(sess, pools)
    spread_nodes = cfg.gpu == "spread"
    spread_devs = cfg.device == "spread"
    # tier 1: nodes with a shared device that takes the fraction
    best, best_key = None, None
    for node in sess.shared_nodes.values():
        if node.pool not in pool_set or (affinity and not _affinity_ok(node, affinity)):
            continue
        r = _fraction_on_node(node, pod, spread_devs)
        if r is None or not r[3]:
            continue
        devs, f, pipelined, _ = r
        if pipelined and not allow_pipeline:
            continue
        key = (pipelined, -node.idle_count if spread_nodes else node.idle_count, node.idx)
        if best_key is None or key < best_key:
            best, best_key = (node, devs, f, pipelined), key
    if best is not None:
        return best
    # tier 2: a node with an idle device, by the bucket index
    top = sess.max_gpus
    order = range(top, 0, -1) if spread_nodes else range(1, top + 1)
    buckets = [sess.buckets[p] for p in pools]
    for count in order:
        for node in nodes_in_order([b[count] for b in buckets]):
            if affinity and not _affinity_ok(node, affinity):
                continue
            r = _fraction_on_node(node, pod, spread_devs)
            if r is None or r[2]:
                continue
            return node, r[0], r[1], False
    if not allow_pipeline:
        return None
    # tier 3: wait for releasing capacity
    for node in sess.rel_nodes.values():
        if node.pool not in pool_set or (affinity and not _affinity_ok(node, affinity)):
            continue
        r = _fraction_on_node(node, pod, spread_devs)
        if r is None:
            continue
        key = (-node.idle_count if spread_nodes else node.idle_count, node.idx)
        if best_key is None or key < best_key:
            best, best_key = (node, r[0], r[1], True), key
    return best


# ---------------------------------------------------------------- CPU only
def _place_cpu_only(sess: Session, pod: PodState, pools: list[str], allow_pipeline: bool) -> Placement | None:
    affinity = pod.spec.node_affinity
    pool_set = set(pools)
    spread = _node_config(sess, pools).cpu == "spread"
    best, best_key = None, None
    for node in sess.nodes:
        if node.pool not in pool_set or (affinity and not _affinity_ok(node, affinity)):
            continue
        now = node.cpu_free_now() + EPS >= pod.cpu and node.mem_free_now() + EPS >= pod.mem
        if not now:
            if not allow_pipeline:
                continue
            if node.cpu_free_future() + EPS < pod.cpu or node.mem_free_future() + EPS < pod.mem:
                continue
        free = node.cpu_free_now()
        key = (not now, node.ndev > 0, -free if spread else free, node.idx)
        if best_key is None or key < best_key:
            best, best_key = (node, (), 0.0, not now), key
    return best


# ---------------------------------------------------------------- explanations
def explain_no_fit(sess: Session, pod: PodState) -> str:
    """Why ``pod`` fits on no node, in words: the best the cluster offers for it."""
    pools = pod.job.pools
    nodes = [n for n in sess.nodes if (not pools or n.pool in pools) and _affinity_ok(n, pod.spec.node_affinity)]
    where = f" in node pool{'s' if pools and len(pools) > 1 else ''} {', '.join(pools)}" if pools else ""
    if not nodes:
        return f"no node matches the workload's node pools or node affinity{where}"
    cpu = max(n.cpu_free_now() for n in nodes)
    mem = max(n.mem_free_now() for n in nodes)
    if pod.fractional:
        largest = max(n.largest_free_fraction() for n in nodes)
        want = pod.frac_req if pod.frac_req is not None else None
        need = f"{want:g} of a GPU" if want is not None else f"{pod.mem_mib:g} MiB of GPU memory"
        if pod.ndev > 1:
            need += f" on each of {pod.ndev} devices"
        msg = f"needs {need}; the largest free fraction on one device{where} is {largest:.2f}"
    elif pod.whole:
        idle = max(n.idle_count for n in nodes)
        msg = f"needs {pod.whole} whole GPU{'s' if pod.whole > 1 else ''} on one node; the most idle GPUs on one node{where} is {idle}"
    else:
        msg = f"needs {pod.cpu / 1000:g} CPU and {_fmt_bytes(pod.mem)} of memory"
    if pod.cpu > cpu + EPS:
        msg += f"; CPU is short: {pod.cpu / 1000:g} cores wanted, at most {cpu / 1000:g} free on one node"
    if pod.mem > mem + EPS:
        msg += f"; memory is short: {_fmt_bytes(pod.mem)} wanted, at most {_fmt_bytes(mem)} free on one node"
    return msg


def _fmt_bytes(b: float) -> str:
    for unit, size in (("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
        if b >= size:
            return f"{b / size:.3g}{unit}"
    return f"{b:.0f}B"
