"""Scenario runner: KAI-Scheduler's test scenarios, run on our engine.

The scenario form is described in ``shared/scenarios/README.md``: nodes, a queue tree,
jobs with their pods, and one action (``allocate``, ``reclaim``, ``preempt``,
``consolidation``) or a ``full-cycle`` of several rounds. For each scenario we print
``{"name", "error", "result": STATE, "stable": [STATE, ...]}`` where a STATE holds
every task's outcome (pending, running, placed, pipelined, evicted), node and devices,
and every node's idle and releasing GPUs.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..scheduler import engine
from ..scheduler.session import P, Session
from ..scheduler.types import UNLIMITED, Job, Node, PlacementConfig, Pod, PodStatus, Queue, QueueResources, Snapshot

ACTION_NAMES = {
    "allocate": ("allocate",),
    "consolidation": ("consolidate",),
    "reclaim": ("reclaim",),
    "preempt": ("preempt",),
    "full-cycle": engine.ACTION_ORDER,
}

OUTCOME = {
    P.PENDING: "pending",
    P.RUNNING: "running",
    P.ALLOCATED: "placed",
    P.PIPELINED: "pipelined",
    P.RELEASING: "evicted",
}


def _num(v, default=None):
    return default if v is None else v


def _queue(q: dict, proportion: bool) -> Queue:
    def block(deserved, limit, weight):
        if not proportion:
            return QueueResources(deserved=UNLIMITED, limit=UNLIMITED, weight=1.0)
        return QueueResources(
            deserved=float(UNLIMITED if deserved is None else deserved),
            limit=float(UNLIMITED if limit in (None, 0) else limit),
            weight=float(weight),
        )

    mem_des = q.get("deserved_memory_mb")
    mem_lim = q.get("limit_memory_mb")
    return Queue(
        name=q["name"],
        parent=q.get("parent"),
        priority=int(_num(q.get("priority"), 100)),
        created_order=int(_num(q.get("created_order"), 0)),
        resources={
            "gpu": block(_num(q.get("deserved_gpus"), 0), q.get("limit_gpus"), _num(q.get("over_quota_weight"), 0)),
            "cpu": block(q.get("deserved_cpu_millis"), q.get("limit_cpu_millis"), 1.0),
            "memory": block(None if mem_des is None else mem_des * 1e6,
                            None if mem_lim is None else mem_lim * 1e6, 1.0),
        },
    )


def _index(name: str, pos: int) -> int:
    m = re.search(r"-(\d+)$", name)
    return int(m.group(1)) if m else pos


def build_snapshot(sc: dict) -> tuple[Snapshot, dict[str, str]]:
    """The snapshot of a scenario, and the nodes named by pending pods' fixtures."""
    cfg = sc.get("config") or {}
    plugins = cfg.get("kai_plugins")
    proportion = plugins is None or any(p.get("name") == "proportion" for p in plugins)
    np = cfg.get("node_placement") or {}
    config = PlacementConfig(gpu=np.get("gpu") or "binpack", cpu=np.get("cpu") or "binpack",
                             device=cfg.get("gpu_device_placement") or "pack")
    nodes = [
        Node(name=n["name"], gpus=int(n.get("gpus") or 0), gpu_memory_mib=float(_num(n.get("gpu_memory_mib"), 100)),
             cpu_millis=float(_num(n.get("cpu_millis"), 20_000_000)),
             memory_bytes=float(_num(n.get("memory_bytes"), 20e9)),
             labels=dict(n.get("labels") or {}), gpu_model=n.get("gpu_name") or "")
        for n in sc["nodes"]
    ]
    queues = [_queue(q, proportion) for q in sc["queues"]]
    jobs = []
    spec_nodes: dict[str, str] = {}
    for j in sc["jobs"]:
        pods = []
        for pos, t in enumerate(j["tasks"]):
            status = PodStatus(t.get("status") or "pending")
            aff = t.get("node_affinity")
            groups = t.get("gpu_groups") or []
            if t.get("pod_spec_node_name"):
                spec_nodes[t["name"]] = t["pod_spec_node_name"]
            pods.append(Pod(
                name=t["name"], index=_index(t["name"], pos), gpus=int(t.get("gpus") or 0),
                gpu_fraction=t.get("gpu_fraction"), gpu_memory_mib=t.get("gpu_memory_mib"),
                cpu_millis=float(_num(t.get("cpu_millis"), 1000)),
                memory_bytes=float(_num(t.get("memory_bytes"), 1e9)),
                status=status, node=t.get("node") if status is not PodStatus.PENDING else None,
                shared_group=groups[0] if groups else None,
                task_priority=int(_num(t.get("task_order_priority"), 0)),
                node_affinity={aff["key"]: list(aff["values"])} if aff else None,
            ))
        jobs.append(Job(
            name=j["name"], queue=j["queue"], priority=int(j.get("priority", 50)),
            preemptible=j.get("preemptible"), min_available=j.get("min_available"),
            created_order=int(_num(j.get("created_order"), 0)), pods=pods,
            being_deleted=bool(j.get("being_deleted")),
        ))
    return Snapshot(nodes=nodes, queues=queues, jobs=jobs, config=config), spec_nodes


def state_of(sess: Session, spec_nodes: dict[str, str]) -> dict[str, Any]:
    tasks = {}
    for p in sess.pods:
        if p.status is P.PENDING:
            tasks[p.name] = {"outcome": "pending", "node": spec_nodes.get(p.name), "devices": None}
        else:
            tasks[p.name] = {"outcome": OUTCOME[p.status], "node": p.node.name, "devices": list(p.devices)}
    nodes = {n.name: {"idle_gpus": n.idle_gpus(), "releasing_gpus": n.releasing_gpus()} for n in sess.nodes}
    return {"tasks": tasks, "nodes": nodes}


def _advance(snapshot: Snapshot, sess: Session) -> None:
    """The full-cycle state update (README §2) applied to the snapshot's pods."""
    by_name = {p.name: p for p in sess.pods}
    for job in snapshot.jobs:
        for pod in job.pods:
            ps = by_name[pod.name]
            if ps.status in (P.RUNNING, P.ALLOCATED):
                pod.status, pod.node, pod.devices = PodStatus.RUNNING, ps.node.name, list(ps.devices)
            elif ps.status is P.RELEASING and job.being_deleted:
                pod.status, pod.node, pod.devices = PodStatus.RELEASING, ps.node.name, list(ps.devices)
            else:
                pod.status, pod.node, pod.devices = PodStatus.PENDING, None, None
            pod.shared_group = None


def run_scenario(sc: dict) -> dict[str, Any]:
    name = sc.get("name") if isinstance(sc, dict) else None
    try:
        action = sc["action"]
        if action not in ACTION_NAMES:
            raise ValueError(f"unknown action {action!r}; known: {', '.join(ACTION_NAMES)}")
        actions = ACTION_NAMES[action]
        snapshot, spec_nodes = build_snapshot(sc)
        if action != "full-cycle":
            sess = Session(snapshot)
            engine.run_actions(sess, actions)
            return {"name": name, "error": None, "result": state_of(sess, spec_nodes), "stable": []}
        rounds = int(_num(sc.get("rounds"), 2))
        stable_rounds = int(_num(sc.get("stable_rounds"), 5))
        sess = None
        for _ in range(rounds):
            sess = Session(snapshot)
            engine.run_actions(sess, actions)
            _advance(snapshot, sess)
        sess = Session(snapshot)
        result = state_of(sess, spec_nodes)
        stable = []
        for _ in range(stable_rounds):
            sess = Session(snapshot)
            engine.run_actions(sess, actions)
            stable.append(state_of(sess, spec_nodes))
            _advance(snapshot, sess)
        return {"name": name, "error": None, "result": result, "stable": stable}
    except Exception as exc:  # one bad scenario must not stop the others
        return {"name": name, "error": f"{type(exc).__name__}: {exc}", "result": None, "stable": []}


def run_file(path: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    if isinstance(data, dict) and "scenarios" in data:
        data = data["scenarios"]
    if not isinstance(data, list):
        raise SystemExit(f"{path}: expected a JSON list of scenarios")
    return [run_scenario(sc) for sc in data]
