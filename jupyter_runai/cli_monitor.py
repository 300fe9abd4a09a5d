"""`runai report` (GPU-hours per day, from the accounting), `runai events` (the event log, `--follow` for
the live stream) and `runai top` (devices and workloads, refreshing); see docs/monitoring.md.

Only argparse is imported here at start; the client, rich and csv come with the command that runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from .client import RunaiClient

__all__ = ["MONITOR_COMMANDS", "add_monitor_commands", "event_line", "render_report", "render_top", "render_usage",
           "report_csv", "run_monitor"]

MONITOR_COMMANDS = ("report", "events", "top")
GROUPS = ("project", "user", "department", "workload")  # as jupyter_runai.accounting.GROUPS

REPORT_EPILOG = """\
examples:
  runai report                                   GPU-hours per project and day, the last 7 days
  runai report --by user --from 2026-01-01 --to 2026-01-31
  runai report --by workload -o csv > usage.csv  for a spreadsheet
  runai report --by project --per total --from 2026-01-01 --to 2026-01-31   one line per project

USED is the allocation weighted by the devices' measured utilization; '-' where nothing was measured
(virtual GPUs, or no NVML). Deleted workloads stay in the report. An admin sees everyone's use,
anyone else their own workloads'.
"""


EVENTS_EPILOG = """\
examples:
  runai events                          the latest 20 events of the project
  runai events -A --type Evicted        evictions in every project: reclaimed or preempted, for which workload
  runai events --workload bert -f       a workload's events, then new ones as they happen (Ctrl-C ends)
  runai events -A -f -o json            every new event as one JSON line
"""

TOP_EPILOG = """\
examples:
  runai top                     devices and live workloads, refreshed every 2 seconds (Ctrl-C ends)
  runai top -A --interval 5     every project, every 5 seconds
  runai top --once              one picture, for a script or a log

UTIL and USED come from NVML; on virtual GPUs nothing is measured and they say so.
"""


def add_monitor_commands(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Add `report`, `events` and `top` with ``command(name, help, ...)`` (see cli.build_parser)."""
    report = command("report", "GPU-hours allocated and used per day, per project, user, department or workload "
                     "(-o csv for a spreadsheet)", epilog=REPORT_EPILOG)
    report.add_argument("--from", dest="first", metavar="DAY", help="first day, YYYY-MM-DD (default: 6 days "
                        "before --to)")
    report.add_argument("--to", dest="last", metavar="DAY", help="last day, YYYY-MM-DD, included (default: today, "
                        "UTC)")
    report.add_argument("--by", choices=GROUPS, default="project", help="one line per day and this (default: "
                        "project)")
    report.add_argument("--per", choices=("day", "total"), default="day", help="a line per day (default), or one "
                        "for the whole range")
    events = command("events", "the latest events (submitted, scheduled, evicted, stopped by a rule, ...); "
                     "--follow for new ones as they happen", epilog=EVENTS_EPILOG)
    events.add_argument("-A", "--all-projects", action="store_true", help="every project (the default when no "
                        "project is named by -p, $RUNAI_PROJECT or `runai config project`)")
    events.add_argument("--workload", metavar="NAME", help="only this workload's events")
    events.add_argument("--type", metavar="TYPE", help="only this type, any case: Submitted, Scheduled, Started, "
                        "Pending, Evicted, Succeeded, Failed, Stopped, RuleStopped, RuleYielded, "
                        "RuleMadePreemptible, Resumed, Deleted, Scaled, Warning")
    events.add_argument("--limit", type=_bounded(int, 1, 10_000), default=20, metavar="N",
                        help="the latest N events (1 to 10000, default 20)")
    events.add_argument("-f", "--follow", action="store_true", help="then print new events as they happen")
    top = command("top", "devices and live workloads, refreshing: what is allocated, used and waiting",
                  epilog=TOP_EPILOG)
    top.add_argument("-A", "--all-projects", action="store_true", help="workloads of every project")
    top.add_argument("--interval", type=_bounded(float, 0.5, 3600), default=2.0, metavar="SECONDS",
                     help="seconds between refreshes (0.5 to 3600, default 2)")
    top.add_argument("--once", action="store_true", help="print one picture and exit")
    top.add_argument("-n", "--iterations", type=_bounded(int, 1, 1_000_000), default=None, metavar="N",
                     help="exit after N pictures (default: until Ctrl-C)")


def _bounded(kind: Callable[[str], float], low: float, high: float) -> Callable[[str], float]:
    """An argparse type: ``kind`` (int or float) of ``text``, from ``low`` to ``high``."""
    what = "a whole number" if kind is int else "a number"
    show = str if kind is int else (lambda number: f"{number:g}")

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what} from {show(low)} to {show(high)}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{show(value)} is not from {show(low)} to {show(high)}")
        return value
    return parse


def _columns(document: dict[str, Any]) -> list[str]:
    by = document["by"]
    keys = ["project", "workload"] if by == "workload" else [by]
    days = ["day"] if document.get("per", "day") == "day" else []
    return [*days, *keys, "gpu_hours_allocated", "gpu_hours_used", "gpu_hours_measured"]


def report_csv(document: dict[str, Any]) -> str:
    """The report's rows as CSV with a header line (an empty cell where use was not measured)."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    columns = _columns(document)
    writer.writerow(columns)
    for row in document["rows"]:
        writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
    return out.getvalue()


def render_report(document: dict[str, Any]):
    from rich.table import Table
    from rich.text import Text

    if not document["rows"]:
        return Text(f"No GPU use recorded from {document['from']} to {document['to']}.")
    table = Table(box=None, header_style="bold", pad_edge=False)
    columns = _columns(document)
    for column in columns:
        title = {"gpu_hours_allocated": "ALLOCATED (GPU-h)", "gpu_hours_used": "USED (GPU-h)",
                 "gpu_hours_measured": "MEASURED (GPU-h)"}.get(column, column.upper())
        table.add_column(title, justify="right" if column.startswith("gpu_") else "left", no_wrap=True)
    for row in document["rows"]:
        table.add_row(*(Text("-" if row.get(c) is None else f"{row[c]:g}" if isinstance(row.get(c), float)
                             else str(row.get(c))) for c in columns))
    if document.get("truncated"):
        table.caption = "only the first 10,000 rows: ask for fewer days"
    return table


def event_line(event: dict[str, Any]) -> str:
    """One event as one line: when, type, project/workload (pod), message."""
    when = str(event.get("at", ""))[:19].replace("T", " ")
    where = "/".join(str(event[k]) for k in ("project", "workload") if event.get(k)) or "-"
    if event.get("pod"):
        where += f" ({event['pod']})"
    return f"{when}  {str(event.get('type', '')):<11} {where}  {event.get('message', '')}"


def _scope(ns: argparse.Namespace) -> str | None:
    """The project asked for, None for every project (as `runai list` decides it)."""
    from .cli import _env_project

    return None if ns.all_projects else (getattr(ns, "project", None) or _env_project())


def _run_events(ns: argparse.Namespace, client: RunaiClient, show: Callable[[Any], None]) -> int:
    import json

    project = _scope(ns)
    events = client.recent_events(project, ns.workload, ns.type, ns.limit)
    output = getattr(ns, "output", "table")
    ns.result = events
    if output in ("json", "yaml") and not ns.follow:
        show({"events": events})
        return 0

    def emit(event: dict[str, Any]) -> None:
        print(json.dumps(event) if output in ("json", "yaml") else event_line(event), flush=True)

    if not events and not ns.follow and output not in ("json", "yaml"):
        print("No events.")
    for event in events:
        emit(event)
    if not ns.follow:
        return 0
    # from the newest event of the scope (whatever its type): nothing between the two reads is missed
    newest = client.recent_events(project, ns.workload, None, 1)
    last = max([e["id"] for e in events + newest], default=None)
    wanted = (ns.type or "").lower()
    for event in client.events(project, ns.workload, last_event_id=last):
        if event.get("type") == "reset":
            print("(some events were pruned before they could be shown; going on with the new ones)", flush=True)
            continue
        if not wanted or str(event.get("type", "")).lower() == wanted:
            emit(event)
    return 0


def render_usage(usage: list[dict[str, Any]]):
    """Each workload that holds GPUs: allocated beside its measured utilization and memory."""
    from rich.table import Table
    from rich.text import Text

    from .cli_render import _memory_text

    holding = [w for w in usage if w.get("allocated")]
    if not holding:
        return Text("No workload holds a GPU.")
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("WORKLOAD", "ALLOCATED (GPUs)", "GPU UTIL", "GPU MEMORY USED"):
        table.add_column(column, no_wrap=True, justify="left" if column == "WORKLOAD" else "right")
    for w in holding:
        unmeasured = "not measured (virtual GPU)" if w.get("virtual") else "not measured"
        util = unmeasured if w.get("utilization") is None else f"{w['utilization']:.0f}%"
        memory = unmeasured if w.get("used_memory") is None else _memory_text(w["used_memory"])
        table.add_row(Text(f"{w['project']}/{w['name']}"), Text(f"{w['allocated']:g}"), Text(util), Text(memory))
    return table


def render_top(nodes: list[dict[str, Any]] | None, workloads: list[dict[str, Any]], scope: str | None,
               usage: list[dict[str, Any]] | None = None, nodes_refused: str | None = None):
    """One picture of `runai top`: a summary line, the devices (allocated, memory, utilization), what
    each workload holding GPUs uses of them, and the live workloads. ``nodes`` None: the caller may
    not see nodes (``nodes_refused`` says which role would show them); the rest is shown."""
    from rich.console import Group
    from rich.text import Text

    from .cli_render import render_nodes, render_workloads

    live = [w for w in workloads if w.get("status", {}).get("phase") in ("Running", "Pending", "Stopping",
                                                                          "Deleting")]
    phases = {p: sum(1 for w in live if w["status"]["phase"] == p) for p in ("Running", "Pending")}
    counts = (f"workloads{'' if scope is None else ' in ' + scope}: {phases['Running']} running, "
              f"{phases['Pending']} pending")
    rest = (Text(""), render_usage(usage or []), Text(""),
            render_workloads(live) if live else Text("No live workloads."))
    if nodes is None:
        return Group(Text(f"{counts}\n{nodes_refused or 'Nodes not shown.'}"), *rest)
    devices = [d for n in nodes for d in n.get("devices") or []]
    allocated = sum(float(d.get("allocated_fraction") or 0) for d in devices)
    virtual = sum(1 for d in devices if d.get("virtual"))
    measured = [float(d["utilization"]) for d in devices if d.get("utilization") is not None]
    summary = Text(f"{len(nodes)} node(s), {len(devices)} GPU(s)" + (f" ({virtual} virtual)" if virtual else "")
                   + f"; allocated {allocated:.2f} of {len(devices)}; ")
    summary.append(f"utilization {sum(measured) / len(measured):.0f}% on {len(measured)} measured GPU(s)"
                   if measured else "utilization not measured (virtual GPUs, or no NVML)")
    summary.append(f"\n{counts}")
    return Group(summary, Text(""), render_nodes(nodes), *rest)


def _nodes_or_refusal(client: RunaiClient) -> tuple[list[dict[str, Any]] | None, str | None]:
    """The nodes, or (a caller whose roles do not show nodes: a researcher) None and the line saying
    which role would show them."""
    from .client import RunaiError, node_view_refusal

    try:
        return client.get_json("nodes").get("nodes", []), None
    except RunaiError as error:
        refusal = node_view_refusal(error)
        if refusal is None:
            raise
        return None, refusal


def _run_top(ns: argparse.Namespace, client: RunaiClient, show: Callable[[Any], None]) -> int:
    import time

    from .cli_render import stdout_console

    scope = _scope(ns)
    if getattr(ns, "output", "table") in ("json", "yaml"):  # one picture as the API's documents
        nodes, refusal = _nodes_or_refusal(client)
        show({"nodes": nodes, **({"nodes_refused": refusal} if refusal else {}),
              "workloads": client.list_workloads(scope),
              "usage": client.workload_usage(scope)})
        return 0
    console = stdout_console()

    def picture():
        nodes, refusal = _nodes_or_refusal(client)
        workloads = client.list_workloads(scope)
        return render_top(nodes, workloads, scope, client.workload_usage(scope), refusal)

    count = 1 if ns.once else ns.iterations
    if console.is_terminal and count != 1:
        from rich.live import Live

        shown = 0
        with Live(picture(), console=console, auto_refresh=False, screen=False) as live:
            shown += 1
            while count is None or shown < count:
                time.sleep(ns.interval)
                live.update(picture(), refresh=True)
                shown += 1
        return 0
    shown = 0
    while True:  # not a terminal: one picture after another
        if shown:
            console.print(_rule())
        console.print(picture())
        shown += 1
        if count is not None and shown >= count:
            return 0
        time.sleep(ns.interval)


def _rule():
    from rich.rule import Rule

    return Rule(style="dim")


def run_monitor(ns: argparse.Namespace, client: RunaiClient, show: Callable[[Any], None]) -> int:
    """`runai report`, `runai events`, `runai top`."""
    if ns.subcommand == "events":
        return _run_events(ns, client, show)
    if ns.subcommand == "top":
        return _run_top(ns, client, show)
    document = client.usage_report(ns.first, ns.last, ns.by, ns.per)
    ns.result = document
    output = getattr(ns, "output", "table")
    if output == "csv":
        sys.stdout.write(report_csv(document))
    elif output in ("json", "yaml"):
        show(document)
    else:
        from .cli_render import stdout_console

        stdout_console().print(render_report(document))
    return 0
