"""Choosing a node and devices for one pod.

The default GPU strategy, ``fragmentation-aware`` (:class:`_Fragmentation`), binds a GPU
pod on the node and devices where the fragmentation of the cluster's free GPU grows
least for the workload the snapshot holds (fragmentation gradient descent); only a pod
that fits nowhere now falls through to the pipelined tiers below. With ``binpack`` and
``spread``, nodes are ranked in tiers, as KAI-Scheduler's scores do:

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
CPU-only pods read a per-pool list of nodes sorted by free CPU (:class:`_CpuIndex`).
``fragmentation-aware`` keeps each pod shape's score on every node and a lazy heap of
them (:class:`_ShapeCache`). These indexes catch up from :attr:`.Session.changed` (the
nodes every pod change touched, rollbacks included) when they are next read.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import Counter
from heapq import heapify, heappop, heappush

from .fragmentation import KEEP_WHOLE_MIN_SHARE, MILLI, Shape, WorkloadDistribution, fgd_score
from .session import EPS, RELEASING, NodeState, PodState, Session, nodes_in_order
from .types import Pod

#: the GPU strategy that scores fragmentation (the default, see :class:`.types.PlacementConfig`)
FRAGMENTATION = "fragmentation-aware"

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
    return [list(sess.buckets)] if sess.buckets else []  # no node at all: nowhere to try


def place(sess: Session, pod: PodState, allow_pipeline: bool = True, held: dict | None = None) -> Placement | None:
    """Where ``pod`` goes (None: nowhere). ``held`` (whole-GPU pods only) overlays
    restores that the victim search decided but has not applied yet: per node index,
    the releasing pods that run again there (see :meth:`.victims.Solver._move_victims`).

    With the ``fragmentation-aware`` GPU strategy a GPU pod binds on the node (and
    devices) that the fragmentation score prefers among those where it fits now; only
    when it fits nowhere now does it wait for releasing capacity, where ``binpack``
    would (the tiers below). Releasing pods count as holding their share in the score,
    so restores that the victim search only marked (``held``) score as applied ones."""
    for group in _pools(sess, pod):
        if pod.fractional or pod.whole > 0:
            skip_now = False
            if _node_config(sess, group).gpu == FRAGMENTATION:
                found = _fragmentation(sess).place_now(pod, group)
                if found is not None:
                    return found
                if not allow_pipeline:
                    continue
                skip_now = True  # nothing fits now: only the pipelined tiers are left
            if pod.fractional:
                found = _place_fraction(sess, pod, group, allow_pipeline, skip_now)
            else:
                found = _place_whole(sess, pod, group, allow_pipeline, held, skip_now)
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
                 held: dict | None = None, skip_now: bool = False) -> Placement | None:
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
    for count in () if skip_now else order:
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
    """The placement config of a group of pools: its first pool's (every node of a pool
    carries its pool's config, the snapshot's default when the pool has none)."""
    return sess.snapshot.pool_config.get(pools[0], sess.config)


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


def _place_fraction(sess: Session, pod: PodState, pools: list[str], allow_pipeline: bool,
                    skip_now: bool = False) -> Placement | None:
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
    for count in () if skip_now else order:
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
    """Nodes without GPUs first, by the pool's CPU strategy (``binpack``: the least free
    CPU that fits, ``spread``: the most; ties: the node listed first), then nodes with
    GPUs — by the CPU strategy too, or, with the ``fragmentation-aware`` GPU strategy,
    where the GPUs are already taken (:class:`_Fragmentation`) — and, when the pod fits
    nowhere now, the node where it fits once releasing capacity is free (same order).

    The nodes that fit now come from :class:`_CpuIndex` (O(log nodes) when the first
    candidate fits); only nodes with releasing pods are scanned for the last tier."""
    affinity = pod.spec.node_affinity
    cfg = _node_config(sess, pools)
    spread = cfg.cpu == "spread"
    index = _cpu_index(sess)
    node = index.find(pools, False, pod, affinity, spread)
    if node is not None:
        return node, (), 0.0, False
    if cfg.gpu == FRAGMENTATION:
        found = _fragmentation(sess).place_now(pod, pools)
        if found is not None:
            return found
    else:
        node = index.find(pools, True, pod, affinity, spread)
        if node is not None:
            return node, (), 0.0, False
    if not allow_pipeline:
        return None
    # nothing fits now: a node where it fits once releasing capacity is free (such a
    # node has releasing pods)
    pool_set = set(pools)
    best, best_key = None, None
    for node in sess.rel_nodes.values():
        if node.pool not in pool_set or (affinity and not _affinity_ok(node, affinity)):
            continue
        if node.cpu_free_future() + EPS < pod.cpu or node.mem_free_future() + EPS < pod.mem:
            continue
        free = node.cpu_free_now()
        key = (node.ndev > 0, -free if spread else free, node.idx)
        if best_key is None or key < best_key:
            best, best_key = (node, (), 0.0, True), key
    return best


def _cpu_index(sess: Session) -> _CpuIndex:
    index = sess.placement_state.get("cpu")
    if index is None:
        index = sess.placement_state["cpu"] = _CpuIndex(sess)
    else:
        index.refresh()
    return index


class _CpuIndex:
    """The nodes of each pool, with and without GPUs apart, sorted by (free CPU now, node
    index). Built at the first CPU-only placement of a cycle; brought up to date before
    each one from :attr:`.Session.changed` (every node a pod change touched, rollbacks
    included), so each entry is exactly the node's ``cpu_free_now()``."""

    __slots__ = ("sess", "pos", "lists", "keys")

    def __init__(self, sess: Session):
        self.sess = sess
        self.pos = len(sess.changed)
        self.lists: dict[tuple[str, bool], list[tuple[float, int]]] = {}
        self.keys: list[tuple[float, int]] = []
        for n in sess.nodes:
            k = (n.cpu_free_now(), n.idx)
            self.keys.append(k)
            self.lists.setdefault((n.pool, n.ndev > 0), []).append(k)
        for lst in self.lists.values():
            lst.sort()

    def refresh(self) -> None:
        changed = self.sess.changed
        pos = self.pos
        if pos == len(changed):
            return
        nodes, keys, lists = self.sess.nodes, self.keys, self.lists
        for i in (changed[pos:] if len(changed) - pos == 1 else set(changed[pos:])):
            node = nodes[i]
            free = node.cpu_free_now()
            old = keys[i]
            if old[0] == free:
                continue
            lst = lists[(node.pool, node.ndev > 0)]
            del lst[bisect_left(lst, old)]
            k = keys[i] = (free, i)
            insort(lst, k)
        self.pos = len(changed)

    def find(self, pools: list[str], gpus: bool, pod: PodState, affinity, spread: bool) -> NodeState | None:
        """The node (among those with GPUs, or without) of ``pools`` where ``pod`` fits now:
        the least free CPU (the most with ``spread``), then the lowest node index."""
        best, best_key = None, None
        for pool in pools:
            lst = self.lists.get((pool, gpus))
            if lst:
                hit = (self._last if spread else self._first)(lst, pod, affinity)
                if hit is not None:
                    key = (-hit[0], hit[1]) if spread else hit
                    if best_key is None or key < best_key:
                        best, best_key = hit, key
        return None if best is None else self.sess.nodes[best[1]]

    def _first(self, lst, pod: PodState, affinity):
        cpu, mem = pod.cpu, pod.mem
        nodes = self.sess.nodes
        for j in range(bisect_left(lst, (cpu - 1e-6,)), len(lst)):
            entry = lst[j]
            if entry[0] + EPS < cpu:
                continue
            node = nodes[entry[1]]
            if node.mem_free_now() + EPS < mem or (affinity and not _affinity_ok(node, affinity)):
                continue
            return entry
        return None

    def _last(self, lst, pod: PodState, affinity):
        """The most free CPU that fits; among equal free CPU, the lowest index."""
        cpu, mem = pod.cpu, pod.mem
        nodes = self.sess.nodes
        found = None
        for j in range(len(lst) - 1, -1, -1):
            entry = lst[j]
            if entry[0] + EPS < cpu or (found is not None and entry[0] != found[0]):
                break
            node = nodes[entry[1]]
            if node.mem_free_now() + EPS < mem or (affinity and not _affinity_ok(node, affinity)):
                continue
            found = entry
        return found


# ---------------------------------------------------------------- fragmentation-aware
def _fragmentation(sess: Session) -> _Fragmentation:
    state = sess.placement_state.get("frag")
    if state is None:
        state = sess.placement_state["frag"] = _Fragmentation(sess)
    return state


def _constraint(pools, affinity):
    """A pod's node constraint (its job's pools and its node affinity) as a hashable key;
    None: none."""
    if not pools and not affinity:
        return None
    return (tuple(pools or ()), repr(sorted(affinity.items())) if affinity else "")


def _pod_milli(sess: Session, spec: Pod) -> tuple[int, int]:
    """(milli-GPU per device, devices) of a pod for the workload distribution; a GPU-memory
    fraction is converted against the smallest device (as for quota)."""
    if spec.is_fractional:
        if spec.gpu_fraction is not None:
            f = float(spec.gpu_fraction)
        else:
            f = spec.gpu_memory_mib / sess.min_devmem if sess.min_devmem > 0 else 1.0
        return min(MILLI, max(1, round(f * MILLI))), max(1, int(spec.gpu_devices or 1))
    if spec.gpus:
        return MILLI, int(spec.gpus)
    return 0, 0


def _mix_pods(sess: Session):
    """(pod spec, its job's pools) of every pod the workload distribution is learned from:
    the snapshot's ``workload_mix`` when it has one, else its pending and running pods."""
    mix = sess.snapshot.workload_mix
    if mix:
        for job in mix:
            for spec in job.pods:
                yield spec, job.node_pools
        return
    for p in sess.pods:
        if p.orig_status is RELEASING or p.job.being_deleted:
            continue
        yield p.spec, p.job.pools


class _Fragmentation:
    """The ``fragmentation-aware`` strategy for one cycle.

    The workload distribution (:class:`.fragmentation.WorkloadDistribution`) is built once
    from the snapshot: the shapes (CPU, GPU per device, devices, node constraint) of its
    pending and running pods, the most frequent ones that make 95 % of them. A node
    constraint (pools, node affinity) becomes the set of *node classes* it accepts: nodes
    are classed by which of the distribution's constraints they pass.

    A pod's key on a node (:meth:`_evaluate`, lower is better): for a fraction, not opening
    a fully free device while the distribution has whole-device shapes, then the FGD score
    of the node's fragmentation change (:func:`.fragmentation.fgd_score`); for a CPU-only
    pod (on nodes with GPUs), the least free GPU, then the FGD score; then the lowest node
    index. The key depends only on the node's state, so it is cached per pod shape
    (:class:`_ShapeCache`: a key per node and a lazy heap) and recomputed only for the
    nodes changed since the shape's last placement (:attr:`.Session.changed`, rollbacks
    included): a placement costs O(changed nodes · log nodes), not O(nodes).
    """

    __slots__ = ("sess", "dist", "cls", "caches")

    def __init__(self, sess: Session):
        self.sess = sess
        counts: Counter = Counter()
        constraints: dict = {}
        for spec, pools in _mix_pods(sess):
            milli, gpus = _pod_milli(sess, spec)
            c = _constraint(pools, spec.node_affinity)
            if c is not None and c not in constraints:
                constraints[c] = (pools, spec.node_affinity)
            counts[(round(float(spec.cpu_millis or 0.0)), milli, gpus, c)] += 1
        # node classes: which constraints a node passes
        cons = list(constraints)
        classes: dict[tuple, str] = {}
        self.cls: list[str] = []
        for n in sess.nodes:
            bits = tuple((not pools or n.pool in pools) and _affinity_ok(n, aff)
                         for pools, aff in constraints.values())
            cid = classes.get(bits)
            if cid is None:
                cid = classes[bits] = str(len(classes))
            self.cls.append(cid)
        accepts = {c: frozenset(cid for bits, cid in classes.items() if bits[j]) for j, c in enumerate(cons)}
        shapes: Counter = Counter()
        for (cpu, milli, gpus, c), n in counts.items():
            shapes[Shape(cpu=cpu, gpu_milli=milli, gpus=gpus, models=None if c is None else accepts[c])] += n
        self.dist = WorkloadDistribution.from_counts(shapes) if shapes else None
        self.caches: dict[tuple, _ShapeCache] = {}

    def place_now(self, pod: PodState, pools: list[str]) -> Placement | None:
        """The best node (and devices) of ``pools`` where ``pod`` fits now; None: none."""
        sess = self.sess
        cpu_only = not (pod.fractional or pod.whole > 0)
        spread_devs = _node_config(sess, pools).device == "spread"
        affinity = pod.spec.node_affinity
        key = (pod.whole, pod.frac_req, pod.mem_mib, pod.ndev, pod.cpu, pod.mem,
               repr(sorted(affinity.items())) if affinity else "", tuple(pools), spread_devs)
        sc = self.caches.get(key)
        if sc is None:
            if self.dist is None:  # no pod in the snapshot to learn from: this one
                milli, gpus = _pod_milli(sess, pod.spec)
                self.dist = WorkloadDistribution({Shape(round(pod.cpu), milli, gpus): 1.0})
            sc = self.caches[key] = _ShapeCache(self, pod, pools, cpu_only, spread_devs)
        else:
            sc.refresh(pod)
        heap, keys = sc.heap, sc.keys
        while heap:
            e = heap[0]
            i = e[2]
            if keys[i] is e:
                node = sess.nodes[i]
                return node, sc.devs[i], (pod.fraction_on(node) if pod.fractional else 1.0 if pod.whole else 0.0), False
            heappop(heap)
        return None

    def _evaluate(self, node: NodeState, pod: PodState, cpu_only: bool, spread_devs: bool, memo: dict):
        """(key 0, key 1, devices) of ``pod`` on ``node`` if it fits now there, else None."""
        cpu_free = node.cpu_free_now()
        if cpu_free + EPS < pod.cpu or node.mem_free_now() + EPS < pod.mem:
            return None
        view = node.gpu_view
        if view is None or view[0] != node.ver:
            view = node.gpu_view = _gpu_view(node)
        free = view[1]
        dist = self.dist
        if cpu_only:
            if node.ndev == 0:
                return None
            choices = None
            mkey = (self.cls[node.idx], free, dist.cpu_rank(cpu_free), dist.cpu_rank(cpu_free - pod.cpu))
            milli = 0
        elif not pod.fractional:
            idle = view[2]
            if len(idle) < pod.whole:
                return None
            choices = (idle[: pod.whole],)
            milli = MILLI
            mkey = (self.cls[node.idx], free, choices[0], dist.cpu_rank(cpu_free), dist.cpu_rank(cpu_free - pod.cpu))
        else:
            f = pod.fraction_on(node)
            if f > 1.0 + EPS or node.ndev < pod.ndev:
                return None
            lim = 1.0 + EPS - f
            cands = [(d, act, shared) for d, act, shared in view[3] if act <= lim]
            if len(cands) < pod.ndev:
                return None
            milli = max(1, round(f * MILLI))
            if spread_devs:  # the device strategy chooses the devices: unshared, least used first
                cands.sort(key=lambda c: (c[2], c[1], c[0]))
                choices = (tuple(sorted(c[0] for c in cands[: pod.ndev])),)
            elif pod.ndev > 1:  # the same fraction on several devices: the tightest ones
                cands.sort(key=lambda c: (free[c[0]], c[0]))
                choices = (tuple(sorted(c[0] for c in cands[: pod.ndev])),)
            else:  # one device: the first of each free share
                seen = set()
                choices = []
                for d, _act, _s in cands:
                    x = free[d]
                    if x not in seen:
                        seen.add(x)
                        choices.append((d,))
            mkey = (self.cls[node.idx], free, tuple(choices), milli, dist.cpu_rank(cpu_free),
                    dist.cpu_rank(cpu_free - pod.cpu))
        hit = memo.get(mkey)
        if hit is not None:
            return hit
        model = self.cls[node.idx]
        before = dist.fragmentation(free, cpu_free, model)
        after_cpu = cpu_free - pod.cpu
        if choices is None:
            delta = dist.fragmentation(free, after_cpu, model) - before
            hit = (sum(free), -fgd_score(delta), ())
        else:
            opens_rule = pod.fractional and dist.whole_share >= KEEP_WHOLE_MIN_SHARE
            for devs in choices:
                new = list(free)
                for d in devs:
                    x = new[d] - milli
                    new[d] = x if x > 0 else 0
                delta = dist.fragmentation(new, after_cpu, model) - before
                k0 = 1 if opens_rule and any(free[d] >= MILLI for d in devs) else 0
                k1 = -fgd_score(delta)
                if hit is None or (k0, k1) < (hit[0], hit[1]):
                    hit = (k0, k1, devs)
        if len(memo) > 200_000:
            memo.clear()
        memo[mkey] = hit
        return hit


def _gpu_view(node: NodeState) -> tuple:
    """(version, free milli-GPU per device, idle devices, devices a fraction may take now
    as (device, active share, shared)). A device's free share counts releasing and
    pipelined pods as holding theirs, so it reads the same whether an evicted pod is
    releasing or restored; a fraction may bind now only on a device with neither."""
    free = []
    idle = []
    usable = []
    d_act, d_rel, d_pip = node.d_act, node.d_rel, node.d_pip
    d_nact, d_nrel, d_npip, d_nfrac = node.d_nact, node.d_nrel, node.d_npip, node.d_nfrac
    for d in range(node.ndev):
        x = round((1.0 - d_act[d] - d_rel[d] - d_pip[d]) * MILLI)
        free.append(x if x > 0 else 0)
        if d_nrel[d] or d_npip[d]:
            continue
        if d_nact[d] == 0:
            idle.append(d)
            usable.append((d, 0.0, False))
        elif d_nfrac[d]:
            usable.append((d, d_act[d], True))
    return (node.ver, tuple(free), tuple(idle), tuple(usable))


class _ShapeCache:
    """One pod shape's key on every node it may go to (pools, affinity, GPU nodes for a
    CPU-only pod), and a heap of the keys; an entry is live while it is the node's key."""

    __slots__ = ("frag", "pos", "member", "keys", "devs", "heap", "memo", "cpu_only", "spread_devs")

    def __init__(self, frag: _Fragmentation, pod: PodState, pools: list[str], cpu_only: bool, spread_devs: bool):
        sess = frag.sess
        self.frag = frag
        self.cpu_only = cpu_only
        self.spread_devs = spread_devs
        self.pos = len(sess.changed)
        self.memo: dict = {}
        n = len(sess.nodes)
        self.member = [False] * n
        self.keys: list = [None] * n
        self.devs: list = [None] * n
        heap = []
        pool_set = set(pools)
        affinity = pod.spec.node_affinity
        member, keys, devs, memo = self.member, self.keys, self.devs, self.memo
        evaluate = frag._evaluate
        for node in sess.nodes:
            if node.pool not in pool_set or (affinity and not _affinity_ok(node, affinity)):
                continue
            if cpu_only and node.ndev == 0:
                continue
            i = node.idx
            member[i] = True
            r = evaluate(node, pod, cpu_only, spread_devs, memo)
            if r is not None:
                e = keys[i] = (r[0], r[1], i)
                devs[i] = r[2]
                heap.append(e)
        heapify(heap)
        self.heap = heap

    def refresh(self, pod: PodState) -> None:
        changed = self.frag.sess.changed
        pos = self.pos
        if pos == len(changed):
            return
        nodes = self.frag.sess.nodes
        member, keys, devs, heap, memo = self.member, self.keys, self.devs, self.heap, self.memo
        evaluate = self.frag._evaluate
        for i in (changed[pos:] if len(changed) - pos == 1 else set(changed[pos:])):
            if not member[i]:
                continue
            r = evaluate(nodes[i], pod, self.cpu_only, self.spread_devs, memo)
            if r is None:
                keys[i] = None
                continue
            old = keys[i]
            devs[i] = r[2]
            if old is not None and old[0] == r[0] and old[1] == r[1]:
                continue
            e = keys[i] = (r[0], r[1], i)
            heappush(heap, e)
        self.pos = len(changed)
        if len(heap) > 2 * len(keys) + 64:
            live = [e for e in keys if e is not None]
            heapify(live)
            self.heap = live


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
        biggest = max(n.devmem for n in nodes)
        if want is None and pod.mem_mib > biggest:  # no device could ever hold it: say that, not a fraction
            msg = f"needs {need}; the largest GPU{where} has {biggest:g} MiB of memory"
        elif largest <= 1e-9:
            msg = f"needs {need}; every GPU{where} is fully allocated"
        else:
            msg = f"needs {need}; the largest free fraction on one device{where} is {largest:.2f}"
    elif pod.whole:
        idle = max(n.idle_count for n in nodes)
        gpus = f"{pod.whole} whole GPU{'s' if pod.whole > 1 else ''}"
        if idle == 0:
            msg = f"needs {gpus} on one node; no GPU{where} is idle"
        else:
            msg = f"needs {gpus} on one node; the most idle GPUs on one node{where} is {idle}"
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
