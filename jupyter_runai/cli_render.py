"""The terminal views of ``runai`` (and of the ``%runai`` magics): API documents -> rich renderables.

Kept apart from :mod:`jupyter_runai.cli` so that a command which prints no table (``--help``,
``-o json``, a usage error) never imports rich. The ``render_*`` functions are pure (``now`` can
be given), so they are tested without a server.
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from typing import Any, Iterable
from urllib.parse import urlsplit

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from .cli_data import error_line, plain_row  # noqa: F401 - error_line is used by cli
from .client import kind_text
from .request_text import _gpus, _num, gpu_request_text, workload_request_text  # noqa: F401 - re-exported
from .submit_args import SubmitArgsError

__all__ = [
    "age_text",
    "gpu_request_text",
    "print_error",
    "render_describe",
    "render_nodes",
    "render_projects",
    "render_workloads",
    "stderr_console",
    "stdout_console",
    "workload_request_text",
]


# =========================================================================== rendering helpers


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    if isinstance(value, datetime):
        return value
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def age_text(since: Any, now: datetime | None = None) -> str:
    """'45s', '3m', '2h5m', '4d' since an ISO time; '-' when unknown."""
    start = _parse_time(since)
    if start is None:
        return "-"
    now = now or datetime.now(timezone.utc)
    seconds = max(0, int((now - start).total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 24:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest and hours < 10 else f"{hours}h"
    return f"{hours // 24}d"


PHASE_STYLE = {
    "Pending": "yellow",
    "Running": "green",
    "Succeeded": "cyan",
    "Failed": "red",
    "Stopping": "magenta",
    "Stopped": "dim",
    "Deleting": "magenta",
}


def phase_text(phase: Any) -> Text:
    phase = str(phase or "-")
    return Text(phase, style=PHASE_STYLE.get(phase, ""))


# =========================================================================== renderers


def render_workloads(workloads: Iterable[dict[str, Any]], now: datetime | None = None,
                     wide: bool = False) -> RenderableType:
    """The `runai list` table: name, project, kind, GPU request, status, age, and why pending ones wait.
    ``wide`` (``-o wide``) adds the pods running, their nodes, the priority class, whether it is
    preemptible and who submitted it."""
    workloads = list(workloads)
    if not workloads:
        return Text("No workloads. Submit one with `runai submit -g 1 -- python train.py`.")
    table = Table(box=None, header_style="bold", pad_edge=False)
    columns = ["NAME", "PROJECT", "KIND", "GPU", "STATUS", "AGE"]
    if wide:
        columns += ["PODS", "NODES", "PRIORITY", "PREEMPTIBLE", "SUBMITTED BY"]
    for column in columns:
        table.add_column(column, no_wrap=True, min_width=len(column))
    table.add_column("REASON", overflow="fold")
    for workload in workloads:
        spec = workload.get("spec", {})
        status = workload.get("status", {})
        phase = status.get("phase")
        reason = status.get("pending_reason") if phase == "Pending" else None
        if phase in ("Failed", "Stopped") and status.get("message"):
            reason = status["message"]
        cells: list[Any] = [
            spec.get("name", "?"),
            spec.get("project", "-"),
            kind_text(workload),
            workload_request_text(spec),
            phase_text(phase),
            age_text(status.get("submitted_at"), now),
        ]
        if wide:
            pods = status.get("pods") or []
            running = sum(1 for pod in pods if pod.get("phase") == "Running")
            nodes = sorted({str(pod["node"]) for pod in pods if pod.get("node")})
            preemptible = spec.get("preemptible")
            cells += [
                f"{running}/{len(pods)}",
                ",".join(nodes) or "-",
                spec.get("priority_class") or "-",
                "-" if preemptible is None else ("yes" if preemptible else "no"),
                workload.get("submitted_by") or ("the cluster" if workload.get("external") else "-"),
            ]
        plain_row(table, *cells, reason or "")
    return table


def _resources_text(resources: dict[str, Any] | None) -> str:
    resources = resources or {}
    parts = [gpu_request_text(resources)]
    if parts[0] == "-":
        parts = ["no GPU"]
    for key, label in (("cpu", "CPU"), ("memory", "memory")):
        value = resources.get(key)
        if value not in (None, 0, "0"):
            limit = resources.get(f"{key}_limit")
            parts.append(f"{label} {value}" + (f" (limit {limit})" if limit is not None else ""))
    return ", ".join(parts)


def render_describe(workload: dict[str, Any], now: datetime | None = None,
                    server_url: str | None = None) -> RenderableType:
    """`runai describe`: the spec, the pods (node, devices, fraction), why it waits, its latest events.
    ``server_url`` makes a workspace's or endpoint's URL absolute (openable from a terminal)."""
    spec = workload.get("spec", {})
    status = workload.get("status", {})
    phase = status.get("phase")
    rows: list[tuple[str, RenderableType]] = []

    def row(label: str, value: Any) -> None:
        if value in (None, "", [], {}):
            return
        rows.append((label, value if isinstance(value, Text) else Text(str(value))))

    row("Name", spec.get("name"))
    row("Project", spec.get("project"))
    row("Kind", spec.get("kind"))
    external = workload.get("external")
    if external:
        row("Made by", f"{external.get('kind')} {external.get('namespace')}/{external.get('name')} "
            "(outside jupyter-runai: stop or delete it with kubectl on that object)")
    status_text = phase_text(phase)
    if status.get("message"):
        status_text.append(f"  {status['message']}", style="")
    row("Status", status_text)
    if phase == "Pending":
        row("Pending reason", Text(status.get("pending_reason") or "not scheduled yet", style="yellow"))
        if status.get("queue_position"):
            row("Queue position", f"{status['queue_position']} of the pending workloads in project {spec.get('project')}"
                " (by priority, then submission)")
    url = status.get("url")
    if url and server_url and url.startswith("/"):
        parts = urlsplit(server_url)
        url = f"{parts.scheme}://{parts.netloc}{url}"
    row("URL", url)
    row("Submitted", _when(status.get("submitted_at"), now, by=workload.get("submitted_by")))
    row("Started", _when(status.get("started_at"), now))
    row("Finished", _when(status.get("finished_at"), now))
    priority = spec.get("priority_class")
    if priority is not None or spec.get("preemptible") is not None:
        preemptible = spec.get("preemptible")
        row("Priority", f"{priority or 'by kind'}"
            + ("" if preemptible is None else (", preemptible" if preemptible else ", not preemptible")))
    row("Resources", _resources_text(spec.get("resources")) + " per pod")
    if spec.get("kind") == "distributed":
        workers = int(spec.get("workers") or 0)
        pods = workers + (0 if spec.get("master") is False else 1)
        together = spec.get("min_available") or pods
        row("Pods", f"{pods} ({'a master and ' if spec.get('master') is not False else ''}"
                    f"{workers} worker{'' if workers == 1 else 's'}), "
                    + ("all start together" if together >= pods else f"at least {together} start together"))
        if spec.get("master_resources"):
            row("Master", _resources_text(spec["master_resources"]))
    if spec.get("kind") == "inference":
        row("Replicas", f"{spec.get('min_replicas') or 1} to {spec.get('max_replicas') or spec.get('min_replicas') or 1}")
    row("Node pools", ", ".join(spec.get("node_pools") or []))
    row("Image", spec.get("image"))
    command = spec.get("command")
    if isinstance(command, list):
        command = " ".join(_shell_quote(part) for part in command)
    row("Command", command)
    row("Working dir", spec.get("working_dir"))
    row("Python env", spec.get("python_env"))
    row("Environment", " ".join(f"{k}={v}" for k, v in (spec.get("environment") or {}).items()))
    row("Data sources", ", ".join(spec.get("data_sources") or []))
    row("Credentials", ", ".join(spec.get("credentials") or []))
    row("UID", workload.get("uid"))

    header = Table.grid(padding=(0, 2))
    header.add_column(style="bold", no_wrap=True)
    header.add_column(overflow="fold")
    for label, value in rows:
        plain_row(header, label + ":", value)
    parts: list[RenderableType] = [header]

    pods = status.get("pods") or []
    parts.append(Text(""))
    if pods:
        table = Table(title="Pods", title_justify="left", title_style="bold", box=None, header_style="bold",
                      pad_edge=False)
        for column in ("POD", "PHASE", "NODE", "DEVICES", "FRACTION", "STARTED", "MESSAGE"):
            table.add_column(column, no_wrap=column != "MESSAGE", overflow="fold")
        for pod in pods:
            devices = pod.get("devices") or []
            if pod.get("fraction") is not None:
                share = _num(pod["fraction"])
            elif pod.get("gpu_memory"):
                share = f"{pod['gpu_memory']} memory"
            else:
                share = "whole" if devices else "-"
            plain_row(
                table,
                pod.get("name") or f"{spec.get('name')}-{pod.get('index')}",
                phase_text(pod.get("phase")),
                pod.get("node") or "-",
                ",".join(str(d) for d in devices) or "-",
                share,
                age_text(pod.get("started_at"), now) + (" ago" if pod.get("started_at") else ""),
                pod.get("message") or "",
            )
        parts.append(table)
    else:
        parts.append(Text("Pods: none placed yet", style="bold"))

    events = workload.get("events") or []
    parts.append(Text(""))
    if events:
        table = Table(title="Events", title_justify="left", title_style="bold", box=None, header_style="bold",
                      pad_edge=False)
        for column in ("AGE", "TYPE", "POD", "MESSAGE"):
            table.add_column(column, no_wrap=column != "MESSAGE", overflow="fold")
        for event in events[-20:]:
            plain_row(table, age_text(event.get("at"), now), event.get("type") or "-", event.get("pod") or "",
                      event.get("message") or "")
        parts.append(table)
    else:
        parts.append(Text("Events: none", style="bold"))
    return Group(*parts)


def _when(value: Any, now: datetime | None, by: str | None = None) -> str | None:
    moment = _parse_time(value)
    if moment is None:
        return None
    text = f"{moment.isoformat(timespec='seconds')} ({age_text(moment, now)} ago)"
    return text + (f" by {by}" if by else "")


def _shell_quote(part: str) -> str:
    """One word for a POSIX shell, as people write it: in double quotes when it has single quotes
    and nothing a shell expands there (``python -c "print('hi')"``), else as shlex quotes it (the
    sidebar's shellQuote does the same)."""
    import shlex

    if "'" in part and not any(c in part for c in '"\\$`!'):
        return f'"{part}"'
    return shlex.quote(part)


def _memory_text(value: Any) -> str:
    if value in (None, ""):
        return "-"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
        for unit, size in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
            if number >= size:
                return f"{number / size:.1f}".removesuffix(".0") + unit
        return f"{int(number)}"
    return str(value)


def render_nodes(nodes: Iterable[dict[str, Any]]) -> RenderableType:
    """`runai nodes`: one row per device with its allocated fraction and memory; virtual devices marked."""
    nodes = list(nodes)
    if not nodes:
        return Text("No nodes.")
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("NODE", "GPU", "MODEL", "MEMORY", "ALLOCATED", "ALLOC. MEMORY", "USED", "UTIL", "PODS"):
        table.add_column(column, no_wrap=column != "PODS", overflow="fold", min_width=len(column))
    for node in nodes:
        name = node.get("name", "?")
        if node.get("pool") and node.get("pool") != "default":
            name += f" [{node['pool']}]"
        if node.get("schedulable") is False:
            name += " (cordoned)"
        devices = node.get("devices") or []
        if not devices:
            plain_row(table, name, "-", "no GPU", "-", "-", "-", "-", "-", "")
            continue
        for device in devices:
            model = device.get("model") or "?"
            model_text = Text(model)
            if device.get("virtual"):
                model_text.append(" (virtual)", style="italic")
            fraction = float(device.get("allocated_fraction") or 0)
            utilization = device.get("utilization")
            # a virtual GPU has nothing to measure: said in words, not as a '-' that looks like a gap
            unmeasured = "not measured" if device.get("virtual") else "-"
            plain_row(
                table,
                name,
                str(device.get("index", "?")),
                model_text,
                _memory_text(device.get("memory")),
                _fraction_bar(fraction),
                _memory_text(device.get("allocated_memory")),
                unmeasured if device.get("used_memory") is None else _memory_text(device.get("used_memory")),
                unmeasured if utilization is None else f"{_num(utilization)}%",
                ", ".join(_pod_share(pod) for pod in device.get("pods") or []),
            )
    return table


def _pod_share(pod: Any) -> str:
    """A pod on a device: 'project/pod' or {'pod': 'project/pod', 'fraction': 0.5} -> 'project/pod (0.5)'."""
    if isinstance(pod, dict):
        name = str(pod.get("pod") or pod.get("name") or "?")
        fraction = pod.get("fraction")
        return name if fraction in (None, 1, 1.0) else f"{name} ({_num(fraction)})"
    return str(pod)


def _fraction_bar(fraction: float, width: int = 10) -> Text:
    filled = round(max(0.0, min(1.0, fraction)) * width)
    text = Text(f"{fraction:.2f} ")
    style = "green" if fraction < 0.75 else ("yellow" if fraction < 1 else "red")
    text.append("█" * filled, style=style)
    text.append("░" * (width - filled), style="dim")
    return text


def _gpu_amount(value: Any, unlimited: str = "-") -> str:
    """A GPU amount from a resource block ({'gpu': 2, ...}) or a bare number; None -> ``unlimited``."""
    if isinstance(value, dict):
        value = value.get("gpu")
    if value is None or (isinstance(value, (int, float)) and value == -1):
        return unlimited
    return _num(value)


def render_projects(projects: Iterable[dict[str, Any]]) -> RenderableType:
    """`runai projects`: GPUs deserved (quota), allocated, fair share and limit per project, and
    each per-pool quota on a line of its own."""
    from .cli_admin import project_pool_rows

    projects = list(projects)
    if not projects:
        return Text("No projects.")
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("PROJECT", "DEPARTMENT", "DESERVED", "ALLOCATED", "FAIR SHARE", "LIMIT", "OVER-QUOTA WEIGHT"):
        table.add_column(column, no_wrap=True, min_width=len(column),
                         justify="left" if column in ("PROJECT", "DEPARTMENT") else "right")
    for project in projects:
        plain_row(
            table,
            project.get("name", "?"),
            project.get("department") or "-",
            _gpu_amount(project.get("deserved"), "0"),
            _gpu_amount(project.get("allocated"), "0"),
            _gpu_amount(project.get("fair_share")),
            _gpu_amount(project.get("limit"), "unlimited"),
            _num(project.get("over_quota_weight", 1)),
        )
        project_pool_rows(table, project)
    return Group(table, Text("(GPUs)", style="dim"))



# =========================================================================== consoles


def stdout_console() -> Console:
    # In a pipe rich would assume 80 columns and cut table cells; scripts get full lines.
    import os

    wide = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200
    # markup=False: nothing printed is read as markup (styles come from Text objects)
    return Console(highlight=False, soft_wrap=False, width=wide, markup=False)


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


def print_error(error: Any, err: Console) -> None:
    """A RunaiError or SubmitArgsError as `error: ...` lines, with what the field allows."""
    errors = list(getattr(error, "errors", None) or [])
    if isinstance(error, SubmitArgsError):
        for item in errors:
            err.print(error_line(item["message"]))
            if item.get("allowed") not in (None, ""):
                err.print(Text(f"  allowed: {_allowed_text(item['allowed'])}"))
        return
    message = error.message
    if error.field and not message.startswith(str(error.field)):
        message = f"{error.field}: {message}"
    err.print(error_line(message))
    if error.allowed not in (None, "") and _allowed_text(error.allowed) not in message:
        err.print(Text(f"  allowed: {_allowed_text(error.allowed)}"))
    for item in errors[1:] if errors and errors[0].get("message") == message else errors:
        if item.get("message") and item["message"] != message:
            err.print(error_line(item["message"]))
            if item.get("allowed") not in (None, "") and _allowed_text(item["allowed"]) not in item["message"]:
                err.print(Text(f"  allowed: {_allowed_text(item['allowed'])}"))


def _allowed_text(allowed: Any) -> str:
    if isinstance(allowed, list):
        return ", ".join(str(item) for item in allowed)
    return str(allowed)
