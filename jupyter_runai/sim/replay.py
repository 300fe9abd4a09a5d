"""Time-based replay of the Philly trace on a simulated cluster (``python -m jupyter_runai.sim replay``).

The protocol (issue 4, section 3):

* the first ``jobs`` jobs (50,000) of ``philly_jobs_pollux.csv`` by submit time (stable on ties,
  file order), arrival = submit time - the first submit time;
* a cluster of ``gpus`` GPUs (768) in nodes of ``gpus_per_node`` (8);
* each Philly virtual cluster (VC) is a project of one department; its deserved GPUs are
  proportional to its share of the replayed jobs' GPU-time (integers by largest remainder that
  add up to the cluster), over-quota weight = its deserved GPUs (at least 1);
* each job is a gang of ``ceil(gpus / gpus_per_node)`` pods (more when they do not divide the
  job's GPUs evenly: 12 GPUs = 2 pods of 6), whole GPUs, all pods or none; preemptible training
  (priority 50);
* a job runs for its trace ``duration``; a preempted job goes back to the queue and restarts
  from its last checkpoint (one every ``checkpoint`` = 1,800 s of progress): the progress since
  then is lost;
* a job's pods carry the time they started, so a project's minimum runtime
  (``reclaim_min_runtime``, ``preempt_min_runtime``; 0 by default, as in the service) applies;
* event-driven simulated time: a scheduling cycle runs only when a job arrives or ends, at most
  one every ``period`` seconds (60 s, the Pollux simulator's scheduling interval; ``--period 0``:
  a cycle at every distinct event time): the events in between wait for the next cycle. A cycle
  that evicts pods or decides pipelined binds is followed at once by another at the same instant
  (a simulated pod releases its GPUs at once), as the service does on the next cluster poll.

Policies:

``fifo``
    one project that deserves the whole cluster, the engine's ``allocate`` action only: jobs
    in submit order, no preemption, no quotas; a job that does not fit does not block later
    ones (no head-of-line blocking, no reservation).
``ours``
    the engine with every action (allocate, consolidate, reclaim, preempt, stale_gang) and the
    VC projects: a project below its fair share reclaims GPUs that others use over quota.
``ours-no-overquota``
    the same with every project's limit at its deserved GPUs: no over-quota sharing (jobs
    larger than their project's quota never run; they are counted, not in the JCT figures).
    Its backlog (thousands of waiting jobs) is what the engine's window is for
    (``scheduler/window.py``): a cycle looks at no more alike waiting jobs of a project than
    its limit can admit.

The engine is driven directly (snapshot -> ``schedule`` -> apply), not through
``RunaiService``: the service adds a store and events per cycle, no scheduling decision, and
with 50,000 workloads its per-cycle cost (models of every workload) would make a replay take
hours. The driver applies decisions as the service does (evictions end pods; non-pipelined
binds start them; pipelined ones wait for the next cycle).

Figures: mean / p50 / p99 job completion time (finish - submit) and queueing delay (first start
- submit), GPU utilization over time (GPUs allocated / cluster, hourly means) and its mean over
the makespan, Jain's fairness index over the projects of their mean slowdown (JCT / duration,
durations below 1 s counted as 1 s), preemptions and GPU-hours lost to them.
"""

from __future__ import annotations

import csv
import heapq
import math
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

from ..scheduler import UNLIMITED, Job, Node, Pod, PodStatus, Queue, QueueResources, Snapshot, schedule

__all__ = ["POLICIES", "TraceJob", "benchmark", "format_table", "jain", "load_trace", "plot", "replay",
           "trace_path"]

TRACE_NAME = "philly-2017"
TRACE_FILE = "philly_jobs_pollux.csv"
POLICIES = ("fifo", "ours", "ours-no-overquota")
ALL_ACTIONS = ("allocate", "consolidate", "reclaim", "preempt", "stale_gang")
DEVICE_MIB = 32768.0  # Philly's GPUs (P100/P40 class); the replay asks whole GPUs, so this only labels them


@dataclass(slots=True)
class TraceJob:
    index: int
    submit: float  # seconds after the first replayed submission
    duration: float
    gpus: int
    vc: str


def trace_path(explicit: str | os.PathLike | None = None) -> Path:
    """The Philly CSV: ``explicit`` (a file or its folder), ``$RUNAI_PHILLY_TRACE``, or a
    ``shared/traces/philly-2017`` folder in or next to the repository."""
    cands: list[Path] = []
    if explicit:
        p = Path(explicit)
        cands.append(p / TRACE_FILE if p.is_dir() else p)
    if os.environ.get("RUNAI_PHILLY_TRACE"):
        cands.append(Path(os.environ["RUNAI_PHILLY_TRACE"]))
    root = Path(__file__).resolve().parents[2]
    cands += [root / "shared" / "traces" / TRACE_NAME / TRACE_FILE,
              root.parent / "shared" / "traces" / TRACE_NAME / TRACE_FILE]
    for c in cands:
        if c.is_file():
            return c
    raise FileNotFoundError(f"no {TRACE_FILE}; looked at: {', '.join(map(str, cands))}")


def load_trace(path: str | os.PathLike | None = None, jobs: int | None = 50_000) -> list[TraceJob]:
    """The first ``jobs`` jobs by submit time (all with ``None``)."""
    rows = []
    with open(trace_path(path), newline="") as f:
        for order, row in enumerate(csv.DictReader(f)):
            if not row.get("timestamp"):
                continue
            t = datetime.strptime(row["timestamp"], "%Y-%m-%d %H:%M:%S").timestamp()
            rows.append((t, order, float(row["duration"]), int(float(row["num_gpus"])), row["cluster"]))
    rows.sort(key=lambda r: (r[0], r[1]))
    if jobs is not None:
        rows = rows[:jobs]
    t0 = rows[0][0] if rows else 0.0
    return [TraceJob(i, r[0] - t0, r[2], r[3], r[4]) for i, r in enumerate(rows)]


def split_integer(total: int, weights: dict[str, float]) -> dict[str, int]:
    """``total`` split in integers proportional to ``weights`` (largest remainder, ties by name)."""
    s = sum(weights.values()) or 1.0
    raw = {k: total * w / s for k, w in weights.items()}
    out = {k: int(v) for k, v in raw.items()}
    rest = total - sum(out.values())
    for k in sorted(raw, key=lambda k: (-(raw[k] - out[k]), k))[:rest]:
        out[k] += 1
    return out


def gang_shape(gpus: int, per_node: int) -> tuple[int, int]:
    """(pods, GPUs per pod) of a job of ``gpus`` GPUs on nodes of ``per_node``."""
    if gpus <= per_node:
        return 1, gpus
    pods = math.ceil(gpus / per_node)
    while gpus % pods:
        pods += 1
    return pods, gpus // pods


def jain(values: list[float]) -> float | None:
    """Jain's fairness index: (sum x)^2 / (n sum x^2); 1 = all equal."""
    if not values:
        return None
    sq = sum(v * v for v in values)
    return (sum(values) ** 2) / (len(values) * sq) if sq else 1.0


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


@dataclass(slots=True)
class _Run:
    tj: TraceJob
    job: Job
    progress: float = 0.0   # checkpointed work (seconds)
    start: float | None = None  # start of the current run (all pods running)
    first_start: float | None = None
    finish: float | None = None
    version: int = 0
    preemptions: int = 0
    lost: float = 0.0  # GPU-seconds of work lost to preemptions
    running_pods: int = 0


@dataclass
class _Util:
    used: float = 0.0
    last_t: float = 0.0
    area: float = 0.0
    hourly: dict[int, float] = field(default_factory=dict)  # hour -> GPU-seconds

    def advance(self, t: float) -> None:
        a, used = self.last_t, self.used
        while a < t:
            hour = int(a // 3600)
            b = min(t, (hour + 1) * 3600.0)
            if used:
                self.hourly[hour] = self.hourly.get(hour, 0.0) + used * (b - a)
                self.area += used * (b - a)
            a = b
        self.last_t = max(self.last_t, t)


def _queues(trace: list[TraceJob], gpus: int, policy: str) -> tuple[list[Queue], dict[str, int]]:
    def block(gpu: float, limit: float = UNLIMITED, weight: float = 1.0) -> dict[str, QueueResources]:
        return {"gpu": QueueResources(deserved=gpu, limit=limit, weight=weight),
                "cpu": QueueResources(deserved=UNLIMITED), "memory": QueueResources(deserved=UNLIMITED)}

    queues = [Queue(name="department/philly", resources=block(float(gpus)))]
    if policy == "fifo":
        queues.append(Queue(name="all", parent="department/philly", created_order=1, resources=block(float(gpus))))
        return queues, {"all": gpus}
    share: dict[str, float] = {}
    for tj in trace:
        share[tj.vc] = share.get(tj.vc, 0.0) + tj.duration * tj.gpus
    deserved = split_integer(gpus, share)
    for order, vc in enumerate(sorted(deserved)):
        d = float(deserved[vc])
        limit = d if policy == "ours-no-overquota" else UNLIMITED
        queues.append(Queue(name=vc, parent="department/philly", created_order=order + 1,
                            resources=block(d, limit, max(1.0, d))))
    return queues, deserved


def replay(trace: list[TraceJob], policy: str = "ours", gpus: int = 768, gpus_per_node: int = 8,
           checkpoint: float = 1800.0, progress: Callable[[str], None] | None = None,
           check: bool = False, details: bool = False, period: float = 60.0,
           reclaim_min_runtime: float = 0.0, preempt_min_runtime: float = 0.0) -> dict:
    """Replay ``trace`` under ``policy``; returns the figures (see the module's docstring).
    ``check``: verify after every cycle that no node holds more GPUs than it has; ``details``:
    add ``per_job`` (submit, first start, finish, duration, GPUs, project, preemptions); ``period``:
    the least simulated time between two cycles (events in between wait for the next one)."""
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; allowed: {', '.join(POLICIES)}")
    if gpus % gpus_per_node:
        raise ValueError(f"{gpus} GPUs do not divide into nodes of {gpus_per_node}")
    wall0 = time.perf_counter()
    nodes = [Node(name=f"node-{i:03d}", gpus=gpus_per_node, gpu_memory_mib=DEVICE_MIB, cpu_millis=1e9,
                  memory_bytes=1e15) for i in range(gpus // gpus_per_node)]
    queues, deserved = _queues(trace, gpus, policy)
    actions = ("allocate",) if policy == "fifo" else ALL_ACTIONS
    preemptible = policy != "fifo"
    runs: list[_Run] = []
    for tj in trace:
        n_pods, per_pod = gang_shape(tj.gpus, gpus_per_node)
        job = Job(name=str(tj.index), queue="all" if policy == "fifo" else tj.vc, priority=50,
                  preemptible=preemptible, created_order=tj.index,
                  pods=[Pod(name=f"{tj.index}-{k}", index=k, gpus=per_pod) for k in range(n_pods)])
        runs.append(_Run(tj, job))
    by_name = {r.job.name: r for r in runs}
    never = set()
    if policy == "ours-no-overquota":  # larger than its project's quota: can never start
        never = {r.job.name for r in runs if r.tj.gpus > deserved.get(r.tj.vc, 0)}
    live: dict[str, _Run] = {}
    ends: list[tuple[float, int, str]] = []
    util = _Util()
    i = 0
    n = len(runs)
    cycles = 0
    engine_s = 0.0
    now = 0.0
    preemptions = 0
    last_report = wall0

    def stop(run: _Run, t: float) -> None:
        nonlocal preemptions
        if run.start is not None:
            achieved = min(run.tj.duration, run.progress + (t - run.start))
            kept = min(achieved, math.floor(achieved / checkpoint) * checkpoint) if checkpoint > 0 else 0.0
            run.lost += (achieved - kept) * run.tj.gpus
            run.progress = kept
            run.preemptions += 1
            preemptions += 1
            run.version += 1  # its end event is void
        for p in run.job.pods:
            if p.status is PodStatus.RUNNING:
                util.used -= p.gpus
            p.status, p.node, p.devices, p.started_at = PodStatus.PENDING, None, None, None
        run.start = None
        run.running_pods = 0

    def cycle(t: float) -> bool:
        """One engine cycle at ``t``; True when another is due at once (evictions or pipelined binds)."""
        nonlocal cycles, engine_s
        jobs = [r.job for r in live.values()]
        if not jobs:
            return False
        snap = Snapshot(nodes=nodes, queues=queues, jobs=jobs, now=t, actions=actions,
                        reclaim_min_runtime=reclaim_min_runtime, preempt_min_runtime=preempt_min_runtime)
        t0 = time.perf_counter()
        result = schedule(snap)
        engine_s += time.perf_counter() - t0
        cycles += 1
        again = False
        for name in {e.job for e in result.evictions}:
            run = live.get(name)
            if run is not None:
                stop(run, t)  # a gang that loses a pod stops whole
                again = True
        for b in result.binds:
            if b.pipelined:
                again = True
                continue
            run = live.get(b.job)
            if run is None:
                continue
            pod = run.job.pods[int(b.pod.rsplit("-", 1)[1])]
            if pod.status is PodStatus.RUNNING:
                continue
            pod.status, pod.node, pod.devices, pod.started_at = PodStatus.RUNNING, b.node, list(b.devices), t
            util.used += pod.gpus
            run.running_pods += 1
            if run.running_pods == len(run.job.pods):
                run.start = t
                if run.first_start is None:
                    run.first_start = t
                heapq.heappush(ends, (t + run.tj.duration - run.progress, run.version, run.job.name))
        if check:
            held: dict[str, int] = {}
            for r in live.values():
                for p in r.job.pods:
                    if p.status is PodStatus.RUNNING:
                        held[p.node] = held.get(p.node, 0) + p.gpus
            assert all(v <= gpus_per_node for v in held.values()), "a node holds more GPUs than it has"
            assert abs(sum(held.values()) - util.used) < 1e-6
        return again

    last_cycle = -math.inf
    while True:
        t_arrival = runs[i].tj.submit if i < n else math.inf
        t_end = ends[0][0] if ends else math.inf
        t = min(t_arrival, t_end)
        if t == math.inf:
            break
        t = max(t, last_cycle + period)  # at most one cycle per period: what happened meanwhile waits
        now = max(now, t)
        util.advance(now)
        changed = False
        while i < n and runs[i].tj.submit <= now + 1e-9:
            run = runs[i]
            i += 1
            if run.job.name in never:
                continue
            live[run.job.name] = run
            changed = True
        while ends and ends[0][0] <= now + 1e-9:
            _, version, name = heapq.heappop(ends)
            run = live.get(name)
            if run is None or run.version != version:
                continue
            for p in run.job.pods:
                util.used -= p.gpus
                p.status = PodStatus.PENDING
            run.finish = now
            del live[name]
            changed = True
        if changed:
            last_cycle = now
            for _ in range(8):
                if not cycle(now):
                    break
        if progress and time.perf_counter() - last_report > 10:
            last_report = time.perf_counter()
            progress(f"  {policy}: t={now / 86400:.1f} d, {i:,}/{n:,} arrived, {len(live):,} live, "
                     f"{cycles:,} cycles, {time.perf_counter() - wall0:.0f} s")
    util.advance(now)
    out = _figures(policy, runs, never, deserved, util, now, gpus, gpus_per_node, checkpoint, period, cycles,
                   engine_s, preemptions, time.perf_counter() - wall0, by_name)
    out["gpu_seconds_allocated"] = util.area
    if details:
        out["per_job"] = [{"submit": r.tj.submit, "first_start": r.first_start, "finish": r.finish,
                           "duration": r.tj.duration, "gpus": r.tj.gpus, "project": r.tj.vc,
                           "preemptions": r.preemptions, "lost_gpu_s": r.lost} for r in runs]
    return out


def _figures(policy, runs, never, deserved, util, end, gpus, gpus_per_node, checkpoint, period, cycles, engine_s,
             preemptions, wall, by_name) -> dict:
    done = [r for r in runs if r.finish is not None]
    jct = [r.finish - r.tj.submit for r in done]
    wait = [r.first_start - r.tj.submit for r in done]
    slow: dict[str, list[float]] = {}
    for r in done:
        slow.setdefault(r.tj.vc, []).append((r.finish - r.tj.submit) / max(1.0, r.tj.duration))
    mean_slow = {vc: sum(v) / len(v) for vc, v in slow.items()}
    hours = max(1, math.ceil(end / 3600))
    hourly = [round(100 * util.hourly.get(h, 0.0) / (3600 * gpus), 2) for h in range(hours)]

    def stats(values):
        if not values:
            return {"mean": None, "p50": None, "p99": None}
        return {"mean": round(sum(values) / len(values), 1), "p50": round(percentile(values, 50), 1),
                "p99": round(percentile(values, 99), 1)}

    return {
        "policy": policy,
        "jobs": len(runs),
        "finished": len(done),
        "never_ran": len(runs) - len(done),
        "never_ran_reason": ("larger than the project's deserved GPUs (no over-quota sharing)" if never else None),
        "gpus": gpus,
        "gpus_per_node": gpus_per_node,
        "checkpoint_s": checkpoint,
        "period_s": period,
        "jct_s": stats(jct),
        "queueing_delay_s": stats(wait),
        "makespan_s": round(end, 1),
        "utilization_mean_pct": round(100 * util.area / (end * gpus), 2) if end else None,
        "utilization_hourly_pct": hourly,
        "fairness_jain_mean_slowdown": round(jain(list(mean_slow.values())), 4) if mean_slow else None,
        "mean_slowdown_by_project": {vc: round(v, 2) for vc, v in sorted(mean_slow.items())},
        "deserved_by_project": dict(sorted(deserved.items())),
        "preemptions": preemptions,
        "gpu_hours_lost_to_preemption": round(sum(r.lost for r in runs) / 3600, 1),
        "cycles": cycles,
        "engine_s": round(engine_s, 1),
        "wall_s": round(wall, 1),
    }


def benchmark(jobs: int = 50_000, gpus: int = 768, gpus_per_node: int = 8, policies=POLICIES,
              checkpoint: float = 1800.0, trace: str | None = None, progress=None, check: bool = False,
              period: float = 60.0, workers: int = 1, reclaim_min_runtime: float = 0.0,
              preempt_min_runtime: float = 0.0) -> dict:
    """Every policy on the same cut; an object keyed by policy name. ``workers`` > 1 replays the
    policies in that many processes at once."""
    cut = load_trace(trace, jobs)
    args = [(cut, policy, gpus, gpus_per_node, checkpoint, progress if workers <= 1 else None, check, False, period,
             reclaim_min_runtime, preempt_min_runtime)
            for policy in policies]
    if progress:
        progress(f"replaying {len(cut):,} jobs on {gpus} GPUs: {', '.join(policies)}")
    if workers > 1 and len(args) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(min(workers, len(args))) as pool:
            results = list(pool.map(_replay_args, args))
    else:
        results = [_replay_args(a) for a in args]
    return {policy: r for policy, r in zip(policies, results)}


def _replay_args(a) -> dict:
    return replay(*a)


def format_table(report: dict) -> str:
    def h(v):
        return "-" if v is None else f"{v:,.0f}"

    first = next(iter(report.values()))
    lines = [f"Philly replay: {first['jobs']:,} jobs, {first['gpus']} GPUs in nodes of {first['gpus_per_node']}, "
             f"checkpoint every {first['checkpoint_s']:g} s of progress, a cycle at most every {first['period_s']:g} s",
             f"{'policy':<18} {'JCT mean':>9} {'p50':>7} {'p99':>9} {'wait mean':>9} {'p50':>6} {'p99':>9} "
             f"{'util %':>6} {'Jain':>6} {'preempt':>7} {'lost GPUh':>9} {'not run':>7} {'cycles':>7} {'wall s':>6}"]
    for name, f in report.items():
        j, w = f["jct_s"], f["queueing_delay_s"]
        lines.append(f"{name:<18} {h(j['mean']):>9} {h(j['p50']):>7} {h(j['p99']):>9} {h(w['mean']):>9} "
                     f"{h(w['p50']):>6} {h(w['p99']):>9} {f['utilization_mean_pct']:>6} "
                     f"{f['fairness_jain_mean_slowdown']:>6} {f['preemptions']:>7,} "
                     f"{f['gpu_hours_lost_to_preemption']:>9,.0f} {f['never_ran']:>7,} {f['cycles']:>7,} "
                     f"{f['wall_s']:>6.0f}")
    lines.append("(seconds; wait = queueing delay to the first start; Jain = fairness of the projects' mean slowdown)")
    return "\n".join(lines)


def plot(report: dict, out: str | os.PathLike) -> bool:
    """GPU utilization over time (hourly means) per policy. False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(10, 4))
    for name, f in report.items():
        series = f["utilization_hourly_pct"]
        ax.plot([h / 24 for h in range(len(series))], series, label=f"{name} (mean {f['utilization_mean_pct']} %)",
                linewidth=0.8)
    first = next(iter(report.values()))
    ax.set_xlabel("days since the first submission")
    ax.set_ylabel("GPUs allocated (%)")
    ax.set_ylim(0, 105)
    ax.set_title(f"Philly replay: {first['jobs']:,} jobs on {first['gpus']} GPUs (hourly means)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return True
