"""Elastic pods above a gang minimum wait for the jobs ahead of them in their project.

KAI-Scheduler schedules the pods of an elastic job above its minimum ("extras") after
every job's minimum, but only inside one allocation pass: a job whose minimum does not
fit *now* is passed over, and the extras of a later job take the capacity. When GPUs
free one at a time (the pods of a finishing gang, say) a waiting gang that needs several
at once never sees enough of them idle: each freed GPU goes to the next extra pod, and the
gang waits for as long as the elastic job grows. KAI has no reservation that would stop
it (its issue #1969), and inside one project at equal priority nothing takes the extras
back (preemption is strictly by priority).

Here, extras are opportunistic in that order as well: while a job of the same project
that comes before them (equal or higher priority, still below its gang minimum) waits
for capacity on nodes they could use, no action starts them. Only a wait for capacity
holds extras back — a job over a limit or outside its quota rules does not, nor does
one that could never fit on its nodes even if they were empty. Everything else is as
in KAI: other jobs' minimums still take idle capacity in their turn, and extras of
other projects are held only by their own project's waiting jobs (between projects,
reclaim takes extras back for a project within its fair share).
"""

from __future__ import annotations

from .placement import _affinity_ok
from .session import EPS, P, JobState, PodState, Session

ALL = None  # "every node" (no pools, no affinity): intersects any non-empty set


class ExtrasHold:
    """The jobs below their gang minimum that wait for capacity, per project, and the
    nodes each could use; asked whether a job's next elastic pod must wait."""

    def __init__(self, sess: Session):
        self.sess = sess
        # project -> [(job, its nodes or ALL)]
        self.waiting: dict[str, list[tuple[JobState, frozenset[int] | None]]] = {}
        self._nodes: dict[tuple, frozenset[int] | None] = {}  # by (pools, affinities)
        self._fits: dict[tuple, bool] = {}  # by job shape: could ever fit on its nodes

    # ---------------------------------------------------------------- nodes
    def nodes_of(self, job: JobState, pods: list[PodState]) -> frozenset[int] | None:
        """The nodes any of ``pods`` could use (pools and node affinity), ALL for all."""
        affinities = tuple(sorted({repr(sorted(p.spec.node_affinity.items())) if p.spec.node_affinity else ""
                                   for p in pods}))
        key = (tuple(job.pools or ()), affinities)
        if key in self._nodes:
            return self._nodes[key]
        pools = job.pools
        if not pools and affinities == ("",):
            found = ALL
        else:
            found = frozenset(n.idx for n in self.sess.nodes
                              if (not pools or n.pool in pools)
                              and any(_affinity_ok(n, p.spec.node_affinity) for p in pods))
        self._nodes[key] = found
        return found

    def _could_fit(self, job: JobState, pods: list[PodState], shape: tuple) -> bool:
        """Whether ``pods`` would fit together on their nodes if those were empty: the
        waits that end only when other work finishes, not ones that never end."""
        hit = self._fits.get(shape)
        if hit is not None:
            return hit
        pools = job.pools
        nodes = [n for n in self.sess.nodes if not pools or n.pool in pools]
        ok = bool(nodes)
        gpus = cpu = mem = 0.0
        for p in pods:
            if not ok:
                break
            ok = any(_affinity_ok(n, p.spec.node_affinity) and _pod_fits_empty(n, p) for n in nodes)
            gpus += p.ndev if (p.whole or p.fractional) else 0
            cpu += p.cpu
            mem += p.mem
        if ok:
            ok = (gpus <= sum(n.ndev for n in nodes) + EPS and cpu <= sum(n.cpu_cap for n in nodes) + EPS
                  and mem <= sum(n.mem_cap for n in nodes) + EPS)
        self._fits[shape] = ok
        return ok

    # ---------------------------------------------------------------- records
    def waits_for_capacity(self, job: JobState, pods: list[PodState], shape: tuple) -> None:
        """``job`` (below its gang minimum, ``pods`` the ones it needs) found no room."""
        if job.n_active >= job.min or not pods or not self._could_fit(job, pods, shape):
            return
        self.waiting.setdefault(job.queue.name, []).append((job, self.nodes_of(job, pods)))

    def holder(self, job: JobState) -> JobState | None:
        """The job that holds back ``job``'s next pod, when that pod is above the gang
        minimum and a job ahead of it in its project waits for nodes it could use."""
        if job.n_active < job.min:
            return None
        waiting = self.waiting.get(job.queue.name)
        if not waiting:
            return None
        mine: frozenset[int] | None | bool = False  # not computed yet
        for other, nodes in waiting:
            if other is job or other.priority < job.priority or other.n_active >= other.min:
                continue
            if mine is False:
                tasks = job.tasks_to_allocate()
                if not tasks:
                    return None
                mine = self.nodes_of(job, tasks)
            if _meet(nodes, mine):
                return other
        return None

    def reason(self, job: JobState, other: JobState) -> str:
        pods = [p.name for p in other.pods if p.status is P.PENDING]
        first = pods[0] if pods else other.name
        more = f" and {len(pods) - 1} more" if len(pods) > 1 else ""
        return (f"running with its gang minimum; its pods above the minimum wait while an earlier "
                f"workload of project '{job.queue.name}' (pod {first}{more}) waits for capacity on the same "
                "nodes")


def _meet(a: frozenset[int] | None, b: frozenset[int] | None) -> bool:
    if a is ALL:
        return b is ALL or bool(b)
    if b is ALL:
        return bool(a)
    return not a.isdisjoint(b)


def _pod_fits_empty(node, p: PodState) -> bool:
    if p.cpu > node.cpu_cap + EPS or p.mem > node.mem_cap + EPS:
        return False
    if p.fractional:
        if node.ndev < p.ndev:
            return False
        if p.frac_req is not None:
            return p.frac_req <= 1.0 + EPS
        return node.devmem > 0 and p.mem_mib <= node.devmem + EPS
    return p.whole <= node.ndev
