"""Scheduling rules: which running workloads a project's or department's rules stop now.

Pure functions (no I/O; the time and the GPU measurements are passed in), called by the
service on every cycle in its own clock, so simulated time and real time run the same code.

Rules are set per workload kind on a project and on its department
(``Project.rules`` / ``Department.rules``, :class:`~jupyter_runai.models.queues.KindRules`).
Both apply: where both set a rule, the shorter wins (a department bounds its projects).

* ``max_duration``: a Running workload is stopped once it has run this long since it last
  started (``status.started_at``).
* ``idle_gpu_timeout``: a Running workload that holds GPUs is stopped once every device its
  pods hold has shown 0% utilization for this long. Only measured devices count: a device
  without a measurement (a virtual GPU, a sample missing) is never idle, and a device it
  shares with another workload is idle only when the device as a whole is.
  With ``idle_gpu_action: preemptible`` set beside the timeout (by the scope whose timeout is
  in force), a non-preemptible workload is made preemptible instead (action ``preemptible``):
  it runs on, its GPUs free to be reclaimed or preempted by work that waits, and its idle time
  starts over; one already preemptible (or made so, then idle that long again) is stopped.
* ``preemptible_max_duration``: a Running preemptible workload that has run this long since
  it last started yields while another workload waits for GPUs it could use (:func:`contested`):
  its pods are evicted and it goes back
  to the queue, behind the workloads that waited (the service holds it out of one scheduling
  pass). With nothing waiting it runs on: yielding would give the GPUs to nobody.
* ``node_pools``: the pools a kind may use; where the project and the department both say,
  only the pools both allow (:func:`allowed_pools`). Applied at admission and to workloads
  that wait; a running workload is not moved.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Container, Iterable, Mapping, Optional

from .models import Department, PodPhase, Project, Workload, WorkloadPhase

__all__ = ["Breach", "RULES", "allowed_pools", "breaches", "contested", "effective_rules", "idle_action",
           "idle_workloads", "format_seconds",
           "pool_holds", "pool_problem"]

#: the rules of a duration, in the order they are checked
RULES = ("max_duration", "idle_gpu_timeout", "preemptible_max_duration")


@dataclass(frozen=True)
class Breach:
    """A rule that stops a workload now: which rule, whose, and the words for its status and event."""

    uid: str
    rule: str
    scope: str  # "project 'team-a'" or "department 'research'"
    seconds: float
    message: str
    action: str = "stop"  # "stop" (ends as Stopped), "yield" (back to the queue) or "preemptible" (runs on)


def format_seconds(seconds: float) -> str:
    """90 -> '1m30s', 7200 -> '2h', 0.5 -> '0.5s'."""
    if seconds < 60 and not float(seconds).is_integer():
        return f"{seconds:g}s"
    whole = int(round(seconds))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, whole = divmod(whole, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def effective_rules(kind: str, project: Project | None, department: Department | None
                    ) -> dict[str, tuple[float, str]]:
    """For a workload kind: rule name -> (seconds, whose rule it is), the shorter of the
    project's and the department's where both set one."""
    out: dict[str, tuple[float, str]] = {}
    for queue, what in ((project, "project"), (department, "department")):
        if queue is None:
            continue
        rules = queue.rules.get(kind)
        if rules is None:
            continue
        for rule in RULES:
            seconds = getattr(rules, rule)
            if seconds is not None and (rule not in out or seconds < out[rule][0]):
                out[rule] = (seconds, f"{what} {queue.name!r}")
    return out


def idle_action(kind: str, project: Project | None, department: Department | None, scope: str) -> str:
    """``idle_gpu_action`` ('stop' or 'preemptible') of the scope whose ``idle_gpu_timeout`` is in
    force (``scope``, as :func:`effective_rules` names it); 'stop' where it sets none."""
    for queue, what in ((project, "project"), (department, "department")):
        if queue is not None and scope == f"{what} {queue.name!r}":
            rules = queue.rules.get(kind)
            if rules is not None and rules.idle_gpu_action is not None:
                return rules.idle_gpu_action.value
    return "stop"


def idle_workloads(workloads: Iterable[Workload], utilization: Mapping[tuple[str, int], Optional[float]]
                   ) -> set[str]:
    """The uids of Running workloads that hold GPUs, all of them measured and at 0% now.
    ``utilization`` maps (node, device index) to percent, None when not measured."""
    idle = set()
    for workload in workloads:
        if workload.status.phase != WorkloadPhase.RUNNING:
            continue
        held = [(pod.node, index) for pod in workload.status.pods
                if pod.phase == PodPhase.RUNNING and pod.node for index in pod.devices]
        if held and all(utilization.get(device) == 0 for device in held):
            idle.add(workload.uid)
    return idle


def allowed_pools(kind: str, project: Project | None, department: Department | None
                  ) -> tuple[list[str], str] | None:
    """The node pools a kind may use in this project and whose rule says so (both scopes, when both
    do: the pools both allow, in the project's order), or None when no rule restricts them."""
    found: tuple[list[str], str] | None = None
    for queue, what in ((department, "department"), (project, "project")):
        rules = queue.rules.get(kind) if queue is not None else None
        if rules is None or rules.node_pools is None:
            continue
        scope = f"{what} {queue.name!r}"
        if found is None:
            found = (list(rules.node_pools), scope)
        else:
            found = ([p for p in rules.node_pools if p in found[0]], f"{found[1]} and {scope}")
    return found


def pool_problem(kind: str, pools: list[str], allowed: tuple[list[str], str] | None) -> str | None:
    """Why a workload of ``kind`` asking for ``pools`` (empty: any) may not use them, naming the rule; None if it may."""
    if allowed is None:
        return None
    names, scope = allowed
    outside = [p for p in pools if p not in names] if pools else ["any pool"]
    if not outside:
        return None
    return (f"rule node_pools of {scope} for {kind} workloads allows only {', '.join(names) or 'no pool'}; it asks "
            f"for {', '.join(outside)}")


def pool_holds(workloads: Iterable[Workload], projects: Mapping[str, Project],
               departments: Mapping[str, Department]) -> dict[str, str]:
    """uid -> the reason it waits, for each waiting workload whose node pools a node_pools rule
    (set after it was submitted) does not allow: it is not placed until the rule or its pools change."""
    out: dict[str, str] = {}
    allowed: dict[tuple[str, str], tuple[list[str], str] | None] = {}  # (project, kind) -> its pools
    for workload in workloads:
        kind = workload.spec.kind.value
        key = (workload.spec.project, kind)
        if key not in allowed:
            project = projects.get(workload.spec.project)
            department = departments.get(project.department) if project is not None else None
            allowed[key] = allowed_pools(kind, project, department)
        if allowed[key] is None:
            continue
        problem = pool_problem(kind, workload.spec.node_pools, allowed[key])
        if problem is not None:
            out[workload.uid] = f"held: {problem}"
    return out


def contested(running: Iterable[Workload], waiting: Iterable[Workload], pool_of_node: Mapping[str, str]) -> set[str]:
    """The uids of the running preemptible workloads whose GPUs a waiting workload could use: one
    that asks for GPUs, is not queued anyway (it may never fit), and names one of the node pools
    the running one's pods are in (or names none: any pool)."""
    wanted: set[str] = set()
    for workload in waiting:
        spec = workload.spec
        if spec.queue_anyway or not (spec.resources.gpu > 0 or spec.resources.gpu_memory):
            continue
        wanted |= set(spec.node_pools) if spec.node_pools else {"*"}
    if not wanted:
        return set()
    out = set()
    for workload in running:
        if not workload.preemptible:
            continue
        pools = {pool_of_node.get(pod.node, "") for pod in workload.status.pods
                 if pod.phase == PodPhase.RUNNING and pod.node and pod.devices}
        if pools and ("*" in wanted or pools & wanted):
            out.add(workload.uid)
    return out


def breaches(workloads: Iterable[Workload], projects: Mapping[str, Project], departments: Mapping[str, Department],
             now: datetime, idle_since: Mapping[str, datetime], waiting: Container[str] = ()) -> list[Breach]:
    """The Running workloads that a rule stops (or makes yield) at ``now``, one breach each (the
    first rule that is due, in the order of :data:`RULES`). ``idle_since`` says since when each idle
    workload's GPUs have shown no use; ``waiting``: the uids of the running workloads whose GPUs
    another workload waits for (:func:`contested`)."""
    out: list[Breach] = []
    for workload in workloads:
        status = workload.status
        if status.phase != WorkloadPhase.RUNNING:
            continue
        project = projects.get(workload.spec.project)
        department = departments.get(project.department) if project is not None else None
        rules = effective_rules(workload.spec.kind.value, project, department)
        if not rules:
            continue
        kind = workload.spec.kind.value
        if "max_duration" in rules and status.started_at is not None:
            seconds, scope = rules["max_duration"]
            ran = (now - status.started_at).total_seconds()
            if ran >= seconds:
                out.append(Breach(workload.uid, "max_duration", scope, seconds,
                                  f"stopped by rule max_duration of {scope} for {kind} workloads: ran "
                                  f"{format_seconds(ran)}, the most allowed is {format_seconds(seconds)}"))
                continue
        since = idle_since.get(workload.uid)
        if "idle_gpu_timeout" in rules and since is not None:
            seconds, scope = rules["idle_gpu_timeout"]
            idle = (now - since).total_seconds()
            if idle >= seconds and not workload.preemptible \
                    and idle_action(kind, project, department, scope) == "preemptible":
                out.append(Breach(workload.uid, "idle_gpu_timeout", scope, seconds,
                                  f"made preemptible by rule idle_gpu_timeout of {scope} for {kind} workloads: its "
                                  f"GPUs showed no utilization for {format_seconds(idle)}, the most allowed is "
                                  f"{format_seconds(seconds)}; it runs on, and its GPUs may be taken back",
                                  action="preemptible"))
                continue
            if idle >= seconds:
                out.append(Breach(workload.uid, "idle_gpu_timeout", scope, seconds,
                                  f"stopped by rule idle_gpu_timeout of {scope} for {kind} workloads: its GPUs "
                                  f"showed no utilization for {format_seconds(idle)}, the most allowed is "
                                  f"{format_seconds(seconds)}"))
                continue
        if "preemptible_max_duration" in rules and workload.uid in waiting and workload.preemptible \
                and status.started_at is not None:
            seconds, scope = rules["preemptible_max_duration"]
            ran = (now - status.started_at).total_seconds()
            if ran >= seconds:
                out.append(Breach(workload.uid, "preemptible_max_duration", scope, seconds,
                                  f"yielded by rule preemptible_max_duration of {scope} for {kind} workloads: "
                                  f"preemptible, ran {format_seconds(ran)} while others waited, the most allowed "
                                  f"is {format_seconds(seconds)}; back in the queue", action="yield"))
    return out

