"""`runai report`: GPU-hours allocated and used per day (the accounting; docs/monitoring.md).

Only argparse is imported here at start; the client, rich and csv come with the command that runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from .client import RunaiClient

__all__ = ["MONITOR_COMMANDS", "add_monitor_commands", "render_report", "report_csv", "run_monitor"]

MONITOR_COMMANDS = ("report",)
GROUPS = ("project", "user", "department", "workload")  # as jupyter_runai.accounting.GROUPS

REPORT_EPILOG = """\
examples:
  runai report                                   GPU-hours per project and day, the last 7 days
  runai report --by user --from 2026-01-01 --to 2026-01-31
  runai report --by workload -o csv > usage.csv  for a spreadsheet

USED is the allocation weighted by the devices' measured utilization; '-' where nothing was measured
(virtual GPUs, or no NVML). Deleted workloads stay in the report. An admin sees everyone's use,
anyone else their own workloads'.
"""


def add_monitor_commands(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Add `report` with ``command(name, help, ...)`` (see cli.build_parser)."""
    report = command("report", "GPU-hours allocated and used per day, per project, user, department or workload "
                     "(-o csv for a spreadsheet)", epilog=REPORT_EPILOG)
    report.add_argument("--from", dest="first", metavar="DAY", help="first day, YYYY-MM-DD (default: 6 days "
                        "before --to)")
    report.add_argument("--to", dest="last", metavar="DAY", help="last day, YYYY-MM-DD, included (default: today, "
                        "UTC)")
    report.add_argument("--by", choices=GROUPS, default="project", help="one line per day and this (default: "
                        "project)")


def _columns(by: str) -> list[str]:
    keys = ["project", "workload"] if by == "workload" else [by]
    return ["day", *keys, "gpu_hours_allocated", "gpu_hours_used", "gpu_hours_measured"]


def report_csv(document: dict[str, Any]) -> str:
    """The report's rows as CSV with a header line (an empty cell where use was not measured)."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    columns = _columns(document["by"])
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
    columns = _columns(document["by"])
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


def run_monitor(ns: argparse.Namespace, client: RunaiClient, show: Callable[[Any], None]) -> int:
    """`runai report`."""
    document = client.usage_report(ns.first, ns.last, ns.by)
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
