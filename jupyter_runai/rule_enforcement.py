"""Scheduling rules in the service's cycle: which running workloads a rule stops (maximum
duration, idle GPU timeout) or makes yield (preemptible maximum duration), and which waiting
workloads a rule keeps out of a cycle (yielded ones for one pass, node pools a rule does not allow).

:class:`RuleEnforcement` is a part of :class:`~jupyter_runai.service.RunaiService` (a mixin).
What the rules say is decided by the pure functions of :mod:`jupyter_runai.rules`; this module
gives them the service's workloads, queues, GPU use and clock, and applies their verdicts
through the lifecycle.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from .models import Department, PodPhase, Project, Workload, WorkloadPhase
from .rules import breaches, contested, effective_rules, idle_workloads, pool_holds
from .snapshot import HOLDING, node_pool_of, pod_key

__all__ = ["RuleEnforcement"]


class RuleEnforcement:
    """Rules applied in each cycle (see the module docstring)."""

    if TYPE_CHECKING:  # provided by RunaiService
        from .clusters.base import Cluster
        from .lifecycle import Step
        from .models import NodePool
        from .store import Store

        store: Store
        cluster: Cluster
        node_pools: list[NodePool]
        workloads: dict[str, Workload]

        def _now(self) -> datetime: ...
        def _step(self, workload: Workload) -> Step: ...
        def _apply(self, step: Step, by: str | None = None) -> None: ...
        def _evict(self, uid: str, key: str, reason: str) -> None: ...
        def _event(self, type_: str, workload: Workload, message: str, pod: str | None = None) -> None: ...
        def _save(self, workload: Workload) -> None: ...

    def _init_rules(self) -> None:
        self._idle_since: dict[str, datetime] = {}  # uid -> since when all its GPUs showed no use (rules)
        self._yielded: dict[str, str] = {}  # uid -> why: yielded by a rule, sits out one pass once its pods end
        self._queues_read: tuple[list[Project], list[Department]] | None = None  # this cycle's (_queues)

    def _held_by_rules(self) -> dict[str, str]:
        """The waiting workloads (no pod holding devices) that a rule keeps out of this cycle, with the
        reason: a workload that yielded (preemptible_max_duration) sits out one pass, so that the
        workloads that waited are placed first; one whose node pools a node_pools rule does not allow."""
        held: dict[str, str] = {}
        for uid in list(self._yielded):
            workload = self.workloads.get(uid)
            if workload is None or workload.status.phase not in (WorkloadPhase.PENDING, WorkloadPhase.RUNNING):
                self._yielded.pop(uid, None)  # stopped or deleted meanwhile
            elif not any(p.phase in HOLDING for p in workload.status.pods):
                held[uid] = self._yielded.pop(uid)  # out of this pass only
        if not any(w.status.phase == WorkloadPhase.PENDING for w in self.workloads.values()):
            return held
        projects, departments = self._queues()  # read anyway for the snapshot when work is pending
        if not any(r.node_pools is not None for q in [*projects, *departments] for r in q.rules.values()):
            return held
        waiting = [w for uid, w in self.workloads.items() if w.status.phase == WorkloadPhase.PENDING
                   and uid not in held and not any(p.phase in HOLDING for p in w.status.pods)]
        held.update(pool_holds(waiting, {p.name: p for p in projects}, {d.name: d for d in departments}))
        return held

    def _queues(self) -> tuple[list[Project], list[Department]]:
        """The projects and departments, read from the store once per cycle (nothing changes them
        while a cycle runs)."""
        if self._queues_read is None:
            self._queues_read = (self.store.projects(), self.store.departments())
        return self._queues_read

    def _apply_rules(self) -> None:
        """Stop the running workloads that a scheduling rule of their project or department says
        are done (max duration, idle GPU timeout; :mod:`jupyter_runai.rules`), in the service's clock."""
        running = [w for w in self.workloads.values() if w.status.phase == WorkloadPhase.RUNNING]
        if not running:
            self._idle_since.clear()
            return
        projects = {p.name: p for p in self._queues()[0]}
        departments = {d.name: d for d in self._queues()[1]}
        if not any(q.rules for q in [*projects.values(), *departments.values()]):
            self._idle_since.clear()
            return
        now = self._now()
        watched = [w for w in running if "idle_gpu_timeout" in effective_rules(
            w.spec.kind.value, projects.get(w.spec.project),
            departments.get(projects[w.spec.project].department) if w.spec.project in projects else None)]
        idle: set[str] = set()
        if watched:
            utilization = {(m.node, m.index): m.utilization for m in self.cluster.metrics()}
            idle = idle_workloads(watched, utilization)
        for uid in [uid for uid in self._idle_since if uid not in idle]:
            del self._idle_since[uid]  # used again (or no longer watched): the idle time starts over
        for uid in idle:
            self._idle_since.setdefault(uid, now)
        waiting: set[str] = set()
        if any(r.preemptible_max_duration for q in [*projects.values(), *departments.values()]
               for r in q.rules.values()):
            pending = [w for uid, w in self.workloads.items()
                       if w.status.phase == WorkloadPhase.PENDING and uid not in self._yielded]
            if pending:
                pools = {n.name: node_pool_of(n, self.node_pools) for n in self.cluster.nodes()}
                waiting = contested(running, pending, pools)
        for breach in breaches(running, projects, departments, now, self._idle_since, waiting):
            workload = self.workloads[breach.uid]
            if breach.action == "yield":
                self._yield(workload, breach.message)
                continue
            if breach.action == "preemptible":  # idle_gpu_timeout with idle_gpu_action: preemptible
                self._make_preemptible(workload, breach.message)
                continue
            step = self._step(workload)
            step.stop_workload(breach.message, breach.message, event="RuleStopped")
            self._apply(step)
            self._idle_since.pop(breach.uid, None)

    def _make_preemptible(self, workload: Workload, message: str) -> None:
        """An idle workload is made preemptible (rule idle_gpu_timeout): it runs on, the engine may now
        reclaim or preempt its pods; its idle time starts over (idle as long again, it is stopped). The
        spec keeps what was submitted: a resume runs it as submitted."""
        workload.status.made_preemptible_by = message
        workload.status.message = message
        self._event("RuleMadePreemptible", workload, message)
        self._idle_since.pop(workload.uid, None)
        self._save(workload)

    def _yield(self, workload: Workload, message: str) -> None:
        """A preemptible workload gives its GPUs back to the queue (rule preemptible_max_duration):
        its pods are evicted; once they have ended it sits out one scheduling pass (``_held_by_rules``)."""
        self._event("RuleYielded", workload, message)
        for pod in workload.status.pods:
            if pod.phase == PodPhase.RUNNING:
                self._evict(workload.uid, pod_key(workload.spec.project, pod.name), message)
        workload.status.message = message
        self._yielded[workload.uid] = message
        self._idle_since.pop(workload.uid, None)
        self._save(workload)
