"""The mutable state of one scheduling cycle, with checkpoint and rollback.

A :class:`Session` is built from a :class:`~.types.Snapshot`. Every change of a pod
(bind, pipeline, evict, move) goes through :meth:`Session.set_pod`, which keeps all
accounting derived from it in step — device fractions, node CPU and memory, the free
capacity indexes used by placement, queue usage at every level of the tree, and the
gang counters of the job — and records the previous state in an undo log.
``checkpoint()`` / ``rollback()`` make any sequence of changes atomic, which is how
gangs are placed all-or-nothing and how victim scenarios are simulated.

Capacity of a device or a node is split in three: *active* (running or bound pods),
*releasing* (evicted pods that still hold it) and *pipelined* (pods waiting for
releasing capacity). A pod binds where it fits into what is neither active, releasing
nor pipelined; it is pipelined where it fits once the releasing pods are gone.
"""

from __future__ import annotations

import heapq

from .fairshare import ShareQueue, set_fair_share_tree
from .types import UNLIMITED, Job, Node, PlacementConfig, Pod, PodStatus, Queue, Snapshot

EPS = 1e-9

P = PodStatus
PENDING, RUNNING, ALLOCATED, PIPELINED, RELEASING = (
    P.PENDING, P.RUNNING, P.ALLOCATED, P.PIPELINED, P.RELEASING)
ACTIVE = (P.RUNNING, P.ALLOCATED)
HOLDS_QUOTA = (P.RUNNING, P.ALLOCATED, P.PIPELINED)

_RES_KEYS = ("gpu", "cpu", "memory")


class SchedulingError(ValueError):
    """The snapshot is inconsistent (unknown queue, pod on an unknown node, ...)."""


class NodeState:
    __slots__ = (
        "idx", "spec", "name", "pool", "labels", "ndev", "devmem",
        "d_act", "d_rel", "d_pip", "d_nact", "d_nrel", "d_npip", "d_nfrac",
        "cpu_cap", "mem_cap", "cpu_act", "cpu_rel", "cpu_pip", "mem_act", "mem_rel", "mem_pip",
        "idle_count", "fut_count", "rel_key", "n_rel_pods", "config", "ver", "gpu_view",
    )

    def __init__(self, idx: int, spec: Node, config: PlacementConfig):
        self.idx = idx
        self.spec = spec
        self.name = spec.name
        self.pool = spec.pool
        self.labels = spec.labels
        self.ndev = spec.gpus
        self.devmem = spec.gpu_memory_mib
        n = spec.gpus
        self.d_act = [0.0] * n
        self.d_rel = [0.0] * n
        self.d_pip = [0.0] * n
        self.d_nact = [0] * n
        self.d_nrel = [0] * n
        self.d_npip = [0] * n
        self.d_nfrac = [0] * n  # fractional holders (any status)
        self.cpu_cap = spec.cpu_millis
        self.mem_cap = spec.memory_bytes
        self.cpu_act = self.cpu_rel = self.cpu_pip = 0.0
        self.mem_act = self.mem_rel = self.mem_pip = 0.0
        self.idle_count = n
        # devices neither active nor pipelined: idle, or held only by releasing pods
        self.fut_count = n
        self.rel_key = -1  # this node's cell in Session.rel_fut, else -1
        self.n_rel_pods = 0
        self.config = config
        self.ver = 0  # grows with every change of a pod on this node (rollbacks included)
        self.gpu_view = None  # placement's cache of the devices' free shares: (ver, ...)

    # ---- capacity views
    def device_idle(self, d: int) -> bool:
        return self.d_nact[d] == 0 and self.d_nrel[d] == 0 and self.d_npip[d] == 0

    def device_releasing_only(self, d: int) -> bool:
        return self.d_nact[d] == 0 and self.d_npip[d] == 0 and self.d_nrel[d] > 0

    def cpu_free_now(self) -> float:
        return self.cpu_cap - self.cpu_act - self.cpu_rel - self.cpu_pip

    def cpu_free_future(self) -> float:
        return self.cpu_cap - self.cpu_act - self.cpu_pip

    def mem_free_now(self) -> float:
        return self.mem_cap - self.mem_act - self.mem_rel - self.mem_pip

    def mem_free_future(self) -> float:
        return self.mem_cap - self.mem_act - self.mem_pip

    def idle_gpus(self) -> int:
        return self.idle_count

    def releasing_gpus(self) -> int:
        """Devices held only by releasing pods."""
        return self.fut_count - self.idle_count

    def largest_free_fraction(self) -> float:
        best = 0.0
        for d in range(self.ndev):
            if self.d_nrel[d] == 0 and self.d_npip[d] == 0:
                if self.d_nfrac[d] == 0 and self.d_nact[d] > 0:
                    continue  # held by a whole-GPU pod
                best = max(best, 1.0 - self.d_act[d])
        return best


class NodeBucket:
    """A set of nodes walked in node order (the order of the snapshot's node list).

    Membership is a dict; a heap of node indices (with stale entries skipped
    lazily) gives the first node without sorting, so the walk costs O(log n) when the
    first node fits, as it almost always does. The order never depends on the
    history of moves, so a rolled-back simulation leaves no trace in placement.
    """

    __slots__ = ("nodes", "heap")

    def __init__(self):
        self.nodes: dict[int, NodeState] = {}
        self.heap: list[int] = []

    def add(self, node: NodeState) -> None:
        self.nodes[node.idx] = node
        heapq.heappush(self.heap, node.idx)

    def remove(self, node: NodeState) -> None:
        del self.nodes[node.idx]
        if len(self.heap) > 2 * len(self.nodes) + 32:
            self.heap = sorted(self.nodes)  # a sorted list is a heap

    def __len__(self) -> int:
        return len(self.nodes)

    def in_order(self):
        """The nodes by index, lowest first."""
        nodes = self.nodes
        if not nodes:
            return
        heap = self.heap
        while heap[0] not in nodes:
            heapq.heappop(heap)
        first = heap[0]
        yield nodes[first]
        if len(nodes) > 1:
            for i in sorted(nodes):
                if i != first:
                    yield nodes[i]


def nodes_in_order(buckets: list[NodeBucket]):
    """The nodes of several buckets (one per pool) by index, lowest first."""
    if len(buckets) == 1:
        return buckets[0].in_order()
    return (n for _i, n in sorted((i, n) for b in buckets for i, n in b.nodes.items()))


class QueueState:
    __slots__ = (
        "name", "spec", "parent", "children", "priority", "created_order", "path",
        "deserved", "limit", "weight", "alloc", "alloc_np", "request", "fair", "is_leaf", "jobs",
        "version", "share", "den",
    )

    def __init__(self, spec: Queue):
        self.name = spec.name
        self.spec = spec
        self.parent: QueueState | None = None
        self.children: list[QueueState] = []
        self.priority = spec.priority
        self.created_order = spec.created_order
        self.path: list[QueueState] = []  # self, parent, grandparent, ...
        self.deserved = [UNLIMITED, UNLIMITED, UNLIMITED]
        self.limit = [UNLIMITED, UNLIMITED, UNLIMITED]
        self.weight = [1.0, 1.0, 1.0]
        for i, key in enumerate(_RES_KEYS):
            block = spec.resources.get(key)
            if block is not None:
                self.deserved[i] = float(block.deserved)
                self.limit[i] = UNLIMITED if block.limit is None else float(block.limit)
                self.weight[i] = float(block.weight)
        self.alloc = [0.0, 0.0, 0.0]
        self.alloc_np = [0.0, 0.0, 0.0]
        self.request = [0.0, 0.0, 0.0]
        self.fair = [0.0, 0.0, 0.0]
        self.is_leaf = True
        self.jobs: list[JobState] = []
        self.version = 0  # grows with every change of a pod of this project's jobs
        self.share: tuple[float, float, float] | None = None  # allocatable, once fair share is known
        self.den: tuple[float, float, float] | None = None  # share, unlimited -> the cluster's total

    def allocatable(self, r: int) -> float:
        """min(limit, max(deserved, fair share)); unlimited deserved -> the limit."""
        if self.share is not None:
            return self.share[r]
        return self._allocatable(r)

    def _allocatable(self, r: int) -> float:
        if self.deserved[r] == UNLIMITED:
            return self.limit[r]
        a = max(self.deserved[r], self.fair[r])
        if self.limit[r] != UNLIMITED:
            a = min(a, self.limit[r])
        return a


class JobState:
    __slots__ = (
        "spec", "name", "queue", "priority", "preemptible", "min", "created_order", "pods",
        "n_active", "n_running", "being_deleted", "pools", "seq", "_tasks", "version", "shape",
    )

    def __init__(self, spec: Job, queue: QueueState, seq: int):
        self.spec = spec
        self.name = spec.name
        self.queue = queue
        self.priority = spec.priority
        self.preemptible = spec.is_preemptible
        self.min = spec.gang_min
        self.created_order = spec.created_order
        self.pods: list[PodState] = []
        self.n_active = 0  # running + allocated + pipelined
        self.n_running = 0  # running (what victim searches may take)
        self._tasks: tuple[int, list[PodState]] | None = None  # (job version, tasks to allocate)
        self.version = 0  # grows with every change of one of its pods
        self.shape: tuple | None = None  # (tasks, their shape), see actions._shape
        self.being_deleted = spec.being_deleted
        self.pools = spec.node_pools
        self.seq = seq

    def pending_pods(self) -> list[PodState]:
        out = [p for p in self.pods if p.status is P.PENDING]
        out.sort(key=_task_order)
        return out

    def active_pods(self) -> list[PodState]:
        return [p for p in self.pods if p.status in HOLDS_QUOTA]

    def tasks_to_allocate(self) -> list[PodState]:
        """The pods the next allocation attempt must place together (a shared list,
        cached until one of the job's pods changes: not to be modified).

        Below the gang minimum: as many pending pods as the minimum still needs
        (all or nothing); at or above it: one elastic pod at a time.
        """
        version = self.version  # grows with every change of one of its pods
        hit = self._tasks
        if hit is not None and hit[0] == version:
            return hit[1]
        pending = self.pending_pods()
        need = self.min - self.n_active
        if not pending:
            tasks = []
        elif need > 0:
            tasks = pending[:need] if len(pending) >= need else []
        else:
            tasks = pending[:1]
        self._tasks = (version, tasks)
        return tasks

    def elastic_rank(self) -> int:
        """0 below the gang minimum, 1 exactly at it, 2 above it (KAI's elastic order)."""
        if self.n_active < self.min:
            return 0
        if self.n_active == self.min:
            return 1
        return 2


def _task_order(p: "PodState"):
    return (-p.spec.task_priority, p.spec.index, p.name)


class PodState:
    __slots__ = (
        "spec", "name", "job", "status", "node", "devices", "frac",
        "orig_status", "orig_node", "whole", "frac_req", "mem_mib", "ndev", "cpu", "mem",
        "gpu_quota", "fractional", "shape",
    )

    def __init__(self, spec: Pod, job: JobState):
        self.spec = spec
        self.name = spec.name
        self.job = job
        self.status = P.PENDING
        self.node: NodeState | None = None
        self.devices: tuple[int, ...] = ()
        self.frac = 0.0  # fraction held on each of ``devices`` (1.0 for whole GPUs)
        self.orig_status = spec.status
        self.orig_node = spec.node
        self.whole = int(spec.gpus or 0)
        self.frac_req = spec.gpu_fraction
        self.mem_mib = spec.gpu_memory_mib
        self.ndev = max(1, int(spec.gpu_devices or 1)) if spec.is_fractional else self.whole
        self.cpu = float(spec.cpu_millis or 0.0)
        self.mem = float(spec.memory_bytes or 0.0)
        self.gpu_quota = 0.0  # GPUs this pod counts against quota where it is now
        self.fractional = self.frac_req is not None or self.mem_mib is not None
        self.shape: tuple | None = None  # what placement depends on (see actions._shape)

    def fraction_on(self, node: NodeState) -> float:
        """The fraction of one device this pod needs on ``node``."""
        if self.frac_req is not None:
            return float(self.frac_req)
        if self.mem_mib is not None:
            if node.devmem <= 0:
                return float("inf")
            return float(self.mem_mib) / node.devmem
        return 1.0


class Session:
    """The state of one cycle: nodes, queues, jobs and pods, with an undo log."""

    def __init__(self, snapshot: Snapshot, held: dict[str, int] | None = None):
        """``held``: per job of the snapshot, how many alike waiting jobs were left out of
        it (:mod:`.window`); they count in their project's demand for the fair share."""
        self.snapshot = snapshot
        self.held = held or {}
        self.config = snapshot.config
        self.now = snapshot.now
        self.nodes: list[NodeState] = []
        self.node_by_name: dict[str, NodeState] = {}
        for i, n in enumerate(snapshot.nodes):
            if n.name in self.node_by_name:
                raise SchedulingError(f"node {n.name!r} is listed twice")
            ns = NodeState(i, n, snapshot.pool_config.get(n.pool, snapshot.config))
            self.nodes.append(ns)
            self.node_by_name[n.name] = ns
        self.min_devmem = min((n.devmem for n in self.nodes if n.ndev and n.devmem > 0), default=0.0)
        self.max_gpus = max((n.ndev for n in self.nodes), default=0)
        self._totals = (float(sum(n.ndev for n in self.nodes)), float(sum(n.cpu_cap for n in self.nodes)),
                        float(sum(n.mem_cap for n in self.nodes)))
        self._cells = self.max_gpus + 1
        # free-capacity index: pool -> idle device count -> nodes
        self.buckets: dict[str, list[NodeBucket]] = {}
        for ns in self.nodes:
            self.buckets.setdefault(ns.pool, [NodeBucket() for _ in range(self.max_gpus + 1)])
        for ns in self.nodes:
            self.buckets[ns.pool][ns.idle_count].add(ns)
        self.rel_nodes: dict[int, NodeState] = {}
        # nodes with releasing pods, by pool and cell rel_cell(idle-or-releasing
        # devices, idle devices)
        self.rel_fut: dict[str, list[dict[int, NodeState]]] = {
            pool: [dict() for _ in range((self.max_gpus + 1) ** 2)] for pool in self.buckets}
        self.shared_nodes: dict[int, NodeState] = {}

        self.queues: dict[str, QueueState] = {}
        for q in snapshot.queues:
            if q.name in self.queues:
                raise SchedulingError(f"queue {q.name!r} is listed twice")
            self.queues[q.name] = QueueState(q)
        for qs in self.queues.values():
            if qs.spec.parent is not None:
                parent = self.queues.get(qs.spec.parent)
                if parent is None:
                    raise SchedulingError(f"queue {qs.name!r}: parent {qs.spec.parent!r} does not exist")
                qs.parent = parent
                parent.children.append(qs)
                parent.is_leaf = False
        for qs in self.queues.values():
            path, cur, seen = [], qs, set()
            while cur is not None:
                if cur.name in seen:
                    raise SchedulingError(f"queue {qs.name!r}: the parent chain has a cycle")
                seen.add(cur.name)
                path.append(cur)
                cur = cur.parent
            qs.path = path
        self.roots = sorted((q for q in self.queues.values() if q.parent is None), key=lambda q: q.created_order)

        self.jobs: list[JobState] = []
        self.job_by_name: dict[str, JobState] = {}
        self.pods: list[PodState] = []
        self.log: list[tuple] = []
        self.logging = True
        #: every node a pod change touched, in order (rollbacks included): the lazy
        #: placement indexes (placement.py) catch up from their position in it
        self.changed: list[int] = []
        self.placement_state: dict = {}  # placement's indexes and caches for this cycle
        self.ghosts: list[tuple[PodState, PodState]] = []
        for seq, j in enumerate(snapshot.jobs):
            q = self.queues.get(j.queue)
            if q is None:
                raise SchedulingError(f"job {j.name!r}: queue {j.queue!r} does not exist")
            if not q.is_leaf:
                raise SchedulingError(f"job {j.name!r}: queue {j.queue!r} is a department, not a project")
            js = JobState(j, q, seq)
            q.jobs.append(js)
            self.jobs.append(js)
            self.job_by_name[j.name] = js
            for p in j.pods:
                ps = PodState(p, js)
                js.pods.append(ps)
                self.pods.append(ps)
        self._place_initial()
        self.log.clear()
        self._compute_fair_share()

    # ------------------------------------------------------------------ building
    def _place_initial(self) -> None:
        groups: dict[tuple[str, str], int] = {}
        # whole-GPU pods and pods with explicit devices first, so that shared groups
        # take the devices that are left
        placed = [p for p in self.pods if p.orig_status is not P.PENDING and p.orig_node]
        placed.sort(key=lambda p: (p.fractional and p.spec.devices is None, p.spec.index))
        for p in placed:
            node = self.node_by_name.get(p.orig_node)
            if node is None:
                raise SchedulingError(f"pod {p.name!r} is on unknown node {p.orig_node!r}")
            status = p.orig_status
            if p.spec.devices is not None:
                devices = tuple(p.spec.devices)
                frac = p.fraction_on(node) if p.fractional else 1.0
            elif p.fractional:
                frac = p.fraction_on(node)
                devices = self._initial_shared_devices(p, node, frac, groups)
            else:
                devices = self._initial_whole_devices(p, node)
            for d in devices:
                if not 0 <= d < node.ndev:
                    raise SchedulingError(f"pod {p.name!r}: device {d} does not exist on node {node.name!r}")
            self.set_pod(p, status, node, devices, frac if p.fractional else 1.0)

    def _initial_whole_devices(self, p: PodState, node: NodeState) -> tuple[int, ...]:
        free = [d for d in range(node.ndev) if node.d_nact[d] + node.d_nrel[d] + node.d_npip[d] == 0]
        if len(free) < p.whole:
            raise SchedulingError(f"pod {p.name!r} holds {p.whole} GPUs but node {node.name!r} has only {len(free)} free")
        return tuple(free[: p.whole])

    def _initial_shared_devices(self, p, node, frac, groups) -> tuple[int, ...]:
        group = p.spec.shared_group or f"auto-{p.name}"
        key = (node.name, group)
        if key in groups:
            return (groups[key],)
        free = [d for d in range(node.ndev) if node.d_nact[d] + node.d_nrel[d] + node.d_npip[d] == 0]
        if not free:
            # every device already has holders: the group shares the one with the most
            # room among those held by fractions only (a group is a device's name, not a
            # claim that nobody else is on it)
            room = [(1.0 - node.d_act[d] - node.d_rel[d] - node.d_pip[d], -d) for d in range(node.ndev)
                    if node.d_nfrac[d] == node.d_nact[d] + node.d_nrel[d] + node.d_npip[d]]
            best = max(room, default=None)
            if p.ndev > 1 or best is None or best[0] < frac - EPS:
                raise SchedulingError(
                    f"pod {p.name!r}: no device on node {node.name!r} has room for shared group {group!r}")
            free = [-best[1]]
        groups[key] = free[0]
        if p.ndev > 1:
            return tuple(free[: p.ndev])
        return (free[0],)

    def rel_cell(self, fut: int, idle: int) -> int:
        """The cell of ``rel_fut`` for a node with ``fut`` idle-or-releasing and ``idle``
        idle devices."""
        return fut * self._cells + idle

    def idle_gpus_total(self) -> float:
        """Idle GPU capacity in the cluster: idle devices plus free room on shared ones."""
        total = 0.0
        for size, nodes in enumerate(self._all_buckets()):
            total += size * nodes
        for node in self.shared_nodes.values():
            for d in range(node.ndev):
                if node.d_nfrac[d] and not node.d_nrel[d] and not node.d_npip[d]:
                    total += max(0.0, 1.0 - node.d_act[d])
        return total

    def free_gpu_view(self, node_ok, all_nodes: bool = False) -> tuple[float, int]:
        """(GPU capacity a job could get without evicting anything more, the most
        idle-or-releasing whole devices on one node), over nodes that pass ``node_ok``
        (every node, with ``all_nodes``: then read from the indexes, not node by node)."""
        if all_nodes:
            return self._free_gpu_all()
        total = 0.0
        best = 0
        for b in self.buckets.values():
            for size in range(len(b) - 1, 0, -1):
                for node in b[size].nodes.values():
                    if node_ok(node):
                        total += size
                        best = max(best, size)
        for node in self.shared_nodes.values():
            if node_ok(node):
                for d in range(node.ndev):
                    if node.d_nfrac[d] and not node.d_nrel[d] and not node.d_npip[d]:
                        total += max(0.0, 1.0 - node.d_act[d])
        for node in self.rel_nodes.values():
            if node_ok(node):
                r = node.releasing_gpus()
                total += r
                best = max(best, node.idle_count + r)
        return total, best

    def _free_gpu_all(self) -> tuple[float, int]:
        """:meth:`free_gpu_view` over all nodes: idle devices by bucket, releasing ones
        by the ``rel_fut`` cells (nodes with releasing pods, by idle-or-releasing and idle
        devices), free room on shared devices node by node, summed in the same order."""
        idle = 0
        best = 0
        for b in self.buckets.values():
            for size in range(len(b) - 1, 0, -1):
                n = len(b[size].nodes)
                if n:
                    idle += size * n
                    if size > best:
                        best = size
        total = float(idle)
        for node in self.shared_nodes.values():
            for d in range(node.ndev):
                if node.d_nfrac[d] and not node.d_nrel[d] and not node.d_npip[d]:
                    total += max(0.0, 1.0 - node.d_act[d])
        if not (total * 1048576.0).is_integer() or total > 2.0 ** 31:
            # whole numbers may not add exactly to this total: node by node, as above
            for node in self.rel_nodes.values():
                r = node.releasing_gpus()
                total += r
                best = max(best, node.idle_count + r)
            return total, best
        # whole numbers add exactly here, in any order
        cells = self._cells
        rel = 0
        for pool_cells in self.rel_fut.values():
            for key, nodes in enumerate(pool_cells):
                if nodes:
                    fut, idle_n = divmod(key, cells)
                    rel += (fut - idle_n) * len(nodes)
                    if fut > best:
                        best = fut
        return total + rel, best

    def _all_buckets(self) -> list[int]:
        counts = [0] * (self.max_gpus + 1)
        for b in self.buckets.values():
            for size, nodes in enumerate(b):
                counts[size] += len(nodes)
        return counts

    def total(self, r: int) -> float:
        """The cluster's capacity of resource ``r`` (GPU, CPU, memory)."""
        return self._totals[r]

    def pod_request(self, p: PodState) -> tuple[float, float, float]:
        """What a pod counts against quota (GPU memory converted against the smallest device)."""
        if p.fractional:
            if p.frac_req is not None:
                g = p.frac_req * p.ndev
            else:
                g = (p.mem_mib / self.min_devmem * p.ndev) if self.min_devmem > 0 else 0.0
        else:
            g = float(p.whole)
        return g, p.cpu, p.mem

    def _compute_fair_share(self) -> None:
        held = self.held
        for p in self.pods:
            if p.status is P.PENDING:
                g, c, m = self.pod_request(p)
            elif p.status in HOLDS_QUOTA:
                g, c, m = p.gpu_quota, p.cpu, p.mem
            else:
                continue
            n = held.get(p.job.name)
            if n:  # the alike jobs left out of the cycle ask for the same
                g, c, m = g * (n + 1), c * (n + 1), m * (n + 1)
            for q in p.job.queue.path:
                q.request[0] += g
                q.request[1] += c
                q.request[2] += m
        totals = {k: self.total(i) for i, k in enumerate(_RES_KEYS)}
        share_queues = []
        for q in self.queues.values():
            share_queues.append(ShareQueue(
                name=q.name,
                parent=q.parent.name if q.parent else None,
                priority=q.priority,
                created_order=q.created_order,
                deserved={k: q.deserved[i] for i, k in enumerate(_RES_KEYS)},
                limit={k: q.limit[i] for i, k in enumerate(_RES_KEYS)},
                weight={k: q.weight[i] for i, k in enumerate(_RES_KEYS)},
                request={k: q.request[i] for i, k in enumerate(_RES_KEYS)},
            ))
        result = set_fair_share_tree(totals, share_queues)
        for name, shares in result.items():
            q = self.queues[name]
            for i, k in enumerate(_RES_KEYS):
                q.fair[i] = float(shares.get(k, 0.0))
        # fair shares are fixed for the cycle from here on
        for q in self.queues.values():
            q.share = (q._allocatable(0), q._allocatable(1), q._allocatable(2))
            q.den = tuple(self._totals[r] if q.share[r] == UNLIMITED else q.share[r] for r in range(3))

    # ------------------------------------------------------------------ mutation
    def checkpoint(self) -> int:
        return len(self.log)

    def rollback(self, mark: int) -> None:
        log = self.log
        self.logging = False
        try:
            while len(log) > mark:
                p, status, node, devices, frac = log.pop()
                self.set_pod(p, status, node, devices, frac)
        finally:
            self.logging = True

    def set_pod(self, p: PodState, status: PodStatus, node: NodeState | None,
                devices: tuple[int, ...] = (), frac: float = 0.0) -> None:
        job = p.job
        job.queue.version += 1
        job.version += 1
        old = p.status
        if self.logging:
            self.log.append((p, old, p.node, p.devices, p.frac))
        was = p.node
        if was is not None:
            was.ver += 1
            self.changed.append(was.idx)
        if node is not None and node is not was:
            node.ver += 1
            self.changed.append(node.idx)
        if (old is not PENDING and status is not PENDING and node is p.node and node is not None
                and frac == p.frac and devices == p.devices):
            self._transition(p, old, status)
            return
        if old is not PENDING and p.node is not None:
            self._account(p, -1)
        if old is RUNNING:
            job.n_running -= 1
        if status is RUNNING:
            job.n_running += 1
        p.status = status
        if status is PENDING:
            p.node, p.devices, p.frac = None, (), 0.0
        else:
            p.node, p.devices, p.frac = node, devices if type(devices) is tuple else tuple(devices), frac
            self._account(p, +1)

    def _transition(self, p: PodState, old: PodStatus, new: PodStatus) -> None:
        """A pod changes status where it is (evicted, restored, pipelined): the same
        result as removing it and adding it again, without passing through the
        intermediate state (its devices stay held, so no node changes idle bucket)."""
        node = p.node
        frac = p.frac
        job = p.job
        cpu, mem = p.cpu, p.mem
        if old is RUNNING:
            job.n_running -= 1
        if new is RUNNING:
            job.n_running += 1
        p.status = new
        # remove from the old share of the node
        if old is RUNNING or old is ALLOCATED:
            odv, odn = node.d_act, node.d_nact
            node.cpu_act -= cpu
            node.mem_act -= mem
        elif old is PIPELINED:
            odv, odn = node.d_pip, node.d_npip
            node.cpu_pip -= cpu
            node.mem_pip -= mem
        else:
            odv, odn = node.d_rel, node.d_nrel
            node.cpu_rel -= cpu
            node.mem_rel -= mem
            node.n_rel_pods -= 1
        # add to the new one
        if new is RUNNING or new is ALLOCATED:
            ndv, ndn = node.d_act, node.d_nact
            node.cpu_act += cpu
            node.mem_act += mem
        elif new is PIPELINED:
            ndv, ndn = node.d_pip, node.d_npip
            node.cpu_pip += cpu
            node.mem_pip += mem
        else:
            ndv, ndn = node.d_rel, node.d_nrel
            node.cpu_rel += cpu
            node.mem_rel += mem
            node.n_rel_pods += 1
        if node.n_rel_pods > 0:
            self.rel_nodes[node.idx] = node
        else:
            self.rel_nodes.pop(node.idx, None)
        d_nact, d_npip = node.d_nact, node.d_npip
        for d in p.devices:
            held = d_nact[d] + d_npip[d]
            v = odv[d] - frac
            odv[d] = 0.0 if -EPS < v < EPS else v
            odn[d] -= 1
            v = ndv[d] + frac
            ndv[d] = 0.0 if -EPS < v < EPS else v
            ndn[d] += 1
            held_after = d_nact[d] + d_npip[d]
            if held == 0:
                if held_after > 0:
                    node.fut_count -= 1
            elif held_after == 0:
                node.fut_count += 1
        rel_key = node.fut_count * self._cells + node.idle_count if node.n_rel_pods > 0 else -1
        if rel_key != node.rel_key:
            cells = self.rel_fut[node.pool]
            if node.rel_key >= 0:
                del cells[node.rel_key][node.idx]
            if rel_key >= 0:
                cells[rel_key][node.idx] = node
            node.rel_key = rel_key
        if p.fractional or node.idx in self.shared_nodes:
            d_nfrac, d_act, d_pip = node.d_nfrac, node.d_act, node.d_pip
            for d in range(node.ndev):
                if d_nfrac[d] and d_act[d] + d_pip[d] < 1.0 - EPS:
                    self.shared_nodes[node.idx] = node
                    break
            else:
                self.shared_nodes.pop(node.idx, None)
        # quota: out with the old status, in with the new
        old_holds = old is not RELEASING
        new_holds = new is not RELEASING
        if old_holds or new_holds:
            path = job.queue.path
            np_ = not job.preemptible
            if old_holds:
                g = -p.gpu_quota
                job.n_active -= 1
                for q in path:
                    a = q.alloc
                    a[0] += g
                    a[1] += -cpu
                    a[2] += -mem
                    if np_:
                        b2 = q.alloc_np
                        b2[0] += g
                        b2[1] += -cpu
                        b2[2] += -mem
            if new_holds:
                g = (frac * len(p.devices)) if p.fractional else float(len(p.devices))
                p.gpu_quota = g
                job.n_active += 1
                for q in path:
                    a = q.alloc
                    a[0] += g
                    a[1] += cpu
                    a[2] += mem
                    if np_:
                        b2 = q.alloc_np
                        b2[0] += g
                        b2[1] += cpu
                        b2[2] += mem

    def _account(self, p: PodState, sign: int) -> None:
        """Add (sign +1) or remove (-1) pod ``p`` where it is now, in every index."""
        node = p.node
        status = p.status
        old_idle = node.idle_count
        frac = p.frac
        fractional = p.fractional
        d_nact, d_nrel, d_npip = node.d_nact, node.d_nrel, node.d_npip
        if status is RUNNING or status is ALLOCATED:
            dv, dn = node.d_act, d_nact
            node.cpu_act += sign * p.cpu
            node.mem_act += sign * p.mem
        elif status is PIPELINED:
            dv, dn = node.d_pip, d_npip
            node.cpu_pip += sign * p.cpu
            node.mem_pip += sign * p.mem
        else:  # releasing
            dv, dn = node.d_rel, d_nrel
            node.cpu_rel += sign * p.cpu
            node.mem_rel += sign * p.mem
            node.n_rel_pods += sign
            if node.n_rel_pods > 0:
                self.rel_nodes[node.idx] = node
            else:
                self.rel_nodes.pop(node.idx, None)
        for d in p.devices:
            held = d_nact[d] + d_npip[d]
            before = held + d_nrel[d]
            v = dv[d] + sign * frac
            dv[d] = 0.0 if -EPS < v < EPS else v
            dn[d] += sign
            held_after = d_nact[d] + d_npip[d]
            after = held_after + d_nrel[d]
            if before == 0:
                if after > 0:
                    node.idle_count -= 1
            elif after == 0:
                node.idle_count += 1
            if held == 0:
                if held_after > 0:
                    node.fut_count -= 1
            elif held_after == 0:
                node.fut_count += 1
            if fractional:
                node.d_nfrac[d] += sign
        idle = node.idle_count
        rel_key = node.fut_count * self._cells + idle if node.n_rel_pods > 0 else -1
        if rel_key != node.rel_key:
            cells = self.rel_fut[node.pool]
            if node.rel_key >= 0:
                del cells[node.rel_key][node.idx]
            if rel_key >= 0:
                cells[rel_key][node.idx] = node
            node.rel_key = rel_key
        if fractional or node.idx in self.shared_nodes:
            # nodes with a shared device that still has room: where fractions go first
            d_nfrac, d_act, d_pip = node.d_nfrac, node.d_act, node.d_pip
            for d in range(node.ndev):
                if d_nfrac[d] and d_act[d] + d_pip[d] < 1.0 - EPS:
                    self.shared_nodes[node.idx] = node
                    break
            else:
                self.shared_nodes.pop(node.idx, None)
        if idle != old_idle:
            b = self.buckets[node.pool]
            b[old_idle].remove(node)
            b[idle].add(node)
        # quota accounting
        if status is not RELEASING:
            if sign > 0:
                g = (frac * len(p.devices)) if fractional else float(len(p.devices))
                p.gpu_quota = g
            else:
                g = p.gpu_quota
            job = p.job
            job.n_active += sign
            cpu, mem = sign * p.cpu, sign * p.mem
            g = sign * g
            np_ = not job.preemptible
            for q in job.queue.path:
                a = q.alloc
                a[0] += g
                a[1] += cpu
                a[2] += mem
                if np_:
                    b2 = q.alloc_np
                    b2[0] += g
                    b2[1] += cpu
                    b2[2] += mem

    def move(self, p: PodState, node: NodeState, devices: tuple[int, ...], frac: float) -> None:
        """Move an evicted (releasing) pod to a new place, where it waits pipelined.

        The old place keeps releasing until the pod is gone there: a *ghost* holds it.
        """
        ghost = PodState(p.spec, p.job)
        ghost.orig_status = P.RUNNING
        ghost.orig_node = p.node.name if p.node else None
        self.set_pod(ghost, P.RELEASING, p.node, p.devices, p.frac)
        self.ghosts.append((ghost, p))
        self.set_pod(p, P.PENDING, None)
        self.set_pod(p, P.PIPELINED, node, devices, frac)
