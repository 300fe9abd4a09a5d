"""``runai``: the command line of jupyter-runai (see docs/cli.md).

Every command is one or two REST calls through :class:`jupyter_runai.client.RunaiClient`;
the submit options come from :mod:`jupyter_runai.submit_args` (shared with the
``%runai`` magics). ``-o json`` prints the API's JSON document unchanged.

The ``render_*`` functions turn API documents into rich renderables; they are
pure (``now`` can be given), so they are tested without a server.

Exit codes: 0 ok, 1 an error from (or on the way to) the server, 2 a usage error
(bad option or value, caught before any network call), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from typing import Any, Iterable, Sequence
from urllib.parse import urlsplit

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from .cli_admin import AdminUsage, add_admin_commands, project_pool_rows, run_admin, run_audit
from .cli_resources import (CredentialValueError, add_resource_commands, error_line, plain_row, run_credential,
                            run_data_source)
from .client import RunaiClient, RunaiError, default_project
from .submit_args import DESCRIPTION as SUBMIT_DESCRIPTION
from .submit_args import EPILOG as SUBMIT_EPILOG
from .submit_args import SubmitArgsError, add_submit_arguments, spec_from_args, split_command

__all__ = [
    "age_text",
    "build_parser",
    "gpu_request_text",
    "main",
    "render_describe",
    "render_nodes",
    "render_projects",
    "render_workloads",
]

EXIT_OK, EXIT_SERVER, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

MAIN_DESCRIPTION = """\
Submit and manage GPU workloads on the jupyter-runai scheduler: training jobs,
distributed training, workspaces and inference endpoints, with whole GPUs or
fractions, inside project quotas.

The server is the Jupyter server running the jupyter-runai extension. It is
found by itself: --url/--token, else $RUNAI_URL/$RUNAI_TOKEN, else JupyterHub's
variables (in a hub's single-user server), else the running Jupyter server
whose root directory holds the current directory (or the newest one).
"""

MAIN_EPILOG = """\
examples:
  runai submit -g 0.5 -- python train.py      half a GPU for a training job
  runai list                                  what runs and what waits (and why)
  runai logs training-k3x9 -f                 follow its log
  runai -o json list                          the API's JSON, for scripts

`runai COMMAND --help` explains each command's options.
"""


# =========================================================================== rendering helpers


def _num(value: Any) -> str:
    """2 -> '2', 0.5 -> '0.5', 0.30000000000000004 -> '0.3'."""
    if value is None:
        return "-"
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return str(value)


def _gpus(value: float) -> str:
    return f"{_num(value)} GPU" + ("" if float(value) <= 1 else "s")


def gpu_request_text(resources: dict[str, Any] | None) -> str:
    """A pod's GPU request as people say it: '1 GPU', '2 GPUs', '0.5 GPU', '20Gi GPU memory',
    '0.5 x 4 GPUs', '0.25 GPU (burst to 0.75)'; '-' for none."""
    resources = resources or {}
    gpu = float(resources.get("gpu") or 0)
    memory = resources.get("gpu_memory")
    devices = resources.get("gpu_devices")
    limit = resources.get("gpu_limit")
    if memory:
        text = f"{memory} GPU memory"
        if devices and int(devices) > 1:
            text = f"{memory} x {int(devices)} GPUs memory"
        return text
    if gpu <= 0:
        return "-"
    if gpu >= 1:
        return _gpus(gpu)
    text = f"{_num(gpu)} x {int(devices)} GPUs" if devices and int(devices) > 1 else f"{_num(gpu)} GPU"
    if limit is not None and float(limit) > gpu:
        text += f" (burst to {_num(limit)})"
    return text


def workload_request_text(spec: dict[str, Any]) -> str:
    """The GPU request of a whole workload: the per-pod request and the pods, when there are several."""
    text = gpu_request_text(spec.get("resources"))
    kind = spec.get("kind")
    if kind == "distributed":
        pods = int(spec.get("workers") or 0) + (0 if spec.get("master") is False else 1)
        if text != "-" and pods > 1:
            text += f" x {pods} pods"
    elif kind == "inference":
        low = spec.get("min_replicas") or 1
        high = spec.get("max_replicas") or low
        replicas = f"{low}" if low == high else f"{low}-{high}"
        if text != "-" and (low != 1 or high != 1):
            text += f" x {replicas} replicas"
    return text


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


def _phase(phase: Any) -> Text:
    phase = str(phase or "-")
    return Text(phase, style=PHASE_STYLE.get(phase, ""))


# =========================================================================== renderers


def render_workloads(workloads: Iterable[dict[str, Any]], now: datetime | None = None) -> RenderableType:
    """The `runai list` table: name, project, kind, GPU request, status, age, and why pending ones wait."""
    workloads = list(workloads)
    if not workloads:
        return Text("No workloads. Submit one with `runai submit -g 1 -- python train.py`.")
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("NAME", "PROJECT", "KIND", "GPU", "STATUS", "AGE"):
        table.add_column(column, no_wrap=True, min_width=len(column))
    table.add_column("REASON", overflow="fold")
    for workload in workloads:
        spec = workload.get("spec", {})
        status = workload.get("status", {})
        phase = status.get("phase")
        reason = status.get("pending_reason") if phase == "Pending" else None
        if phase in ("Failed", "Stopped") and status.get("message"):
            reason = status["message"]
        plain_row(
            table,
            spec.get("name", "?"),
            spec.get("project", "-"),
            spec.get("kind", "training"),
            workload_request_text(spec),
            _phase(phase),
            age_text(status.get("submitted_at"), now),
            reason or "",
        )
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
    status_text = _phase(phase)
    if status.get("message"):
        status_text.append(f"  {status['message']}", style="")
    row("Status", status_text)
    if phase == "Pending":
        row("Pending reason", Text(status.get("pending_reason") or "not scheduled yet", style="yellow"))
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
        pods = int(spec.get("workers") or 0) + (0 if spec.get("master") is False else 1)
        row("Pods", f"{pods} ({'a master and ' if spec.get('master') is not False else ''}"
                    f"{spec.get('workers')} workers), at least {spec.get('min_available') or pods} together")
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
                _phase(pod.get("phase")),
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
    import shlex

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
            plain_row(
                table,
                name,
                str(device.get("index", "?")),
                model_text,
                _memory_text(device.get("memory")),
                _fraction_bar(fraction),
                _memory_text(device.get("allocated_memory")),
                _memory_text(device.get("used_memory")),
                "-" if utilization is None else f"{_num(utilization)}%",
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
    """`runai projects`: GPUs deserved (quota), allocated, fair share and limit per project."""
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


# =========================================================================== parser


def _common_options() -> argparse.ArgumentParser:
    """Options every command takes, before or after the command name."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("server and output")
    group.add_argument("--url", default=argparse.SUPPRESS,
                       help="the Jupyter server's URL, e.g. http://localhost:8888/ (default: found by itself)")
    group.add_argument("--token", default=argparse.SUPPRESS,
                       help="the Jupyter server's token (default: $RUNAI_TOKEN, or the found server's)")
    group.add_argument("-p", "--project", default=argparse.SUPPRESS,
                       help="project to work in (default: $RUNAI_PROJECT, else 'default')")
    group.add_argument("-o", "--output", choices=("table", "json"), default=argparse.SUPPRESS,
                       help="table (default) or json: the API's JSON document, for scripts")
    return common


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)


def build_parser() -> argparse.ArgumentParser:
    """The `runai` parser with its subcommands."""
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog="runai", description=MAIN_DESCRIPTION, epilog=MAIN_EPILOG, parents=[common], formatter_class=_Formatter,
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"runai (jupyter-runai) {__version__}")
    sub = parser.add_subparsers(dest="subcommand", metavar="COMMAND", title="commands")

    def command(name: str, help: str, description: str | None = None, epilog: str | None = None, **kw: Any):
        return sub.add_parser(name, help=help, description=description or help[0].upper() + help[1:] + ".",
                              epilog=epilog, parents=[common], formatter_class=_Formatter, **kw)

    submit = command("submit", "submit a workload (training, distributed, workspace or inference)",
                     SUBMIT_DESCRIPTION, SUBMIT_EPILOG, usage="runai submit [NAME] [options] [-- COMMAND ...]")
    add_submit_arguments(submit, project_option=False)
    submit.add_argument("--wait", action="store_true",
                        help="wait (with a spinner) until it runs or finishes, showing why it waits")
    submit.add_argument("--wait-timeout", type=float, default=None, metavar="SECONDS",
                        help="with --wait: give up after this long (exit 1)")

    listing = command("list", "list workloads: GPU request, status, age, and why pending ones wait",
                      epilog="examples:\n  runai list\n  runai list -A --phase Pending\n  runai -o json list")
    listing.add_argument("-A", "--all-projects", action="store_true",
                         help="every project (the default when neither -p nor $RUNAI_PROJECT names one)")
    listing.add_argument("--phase", help="only this phase: Pending, Running, Stopped, Succeeded, Failed, ...")
    listing.add_argument("--kind", help="only this kind: workspace, training, distributed, inference")

    describe = command("describe", "show a workload: spec, pods (node, devices, fraction), pending reason, events",
                       epilog="example:\n  runai describe bert -p team-a")
    describe.add_argument("name", metavar="NAME")

    logs = command("logs", "print a pod's log (-f to follow it)",
                   epilog="examples:\n  runai logs bert\n  runai logs ddp --pod 2 --tail 50 -f")
    logs.add_argument("name", metavar="NAME")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing until the pod ends")
    logs.add_argument("--pod", type=int, default=None, metavar="N", help="pod index (default 0: the master or first)")
    logs.add_argument("--tail", type=int, default=None, metavar="N", help="only the last N lines")

    stop = command("stop", "stop a workload (it stays, and can be resumed)",
                   epilog="example:\n  runai stop bert")
    stop.add_argument("name", metavar="NAME")
    resume = command("resume", "put a stopped or finished workload back in the queue",
                     epilog="example:\n  runai resume bert")
    resume.add_argument("name", metavar="NAME")

    delete = command("delete", "stop a workload and remove it (asks first unless -y)",
                     epilog="example:\n  runai delete bert -y")
    delete.add_argument("name", metavar="NAME")
    delete.add_argument("-y", "--yes", action="store_true",
                        help="do not ask (required when not run from a terminal)")

    command("nodes", "list nodes and their GPUs with allocated fractions (virtual GPUs marked)")
    add_admin_commands(command, common)
    add_resource_commands(command, common)
    return parser


# =========================================================================== commands


class _Usage(Exception):
    """A usage error found after parsing: exit 2."""


def _print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2) + "\n")
    sys.stdout.flush()


def _stdout() -> Console:
    # In a pipe rich would assume 80 columns and cut table cells; scripts get full lines.
    import os

    wide = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200
    # markup=False: nothing printed is read as markup (styles come from Text objects)
    return Console(highlight=False, soft_wrap=False, width=wide, markup=False)


def _stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


def _print_error(error: RunaiError | SubmitArgsError, err: Console) -> None:
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


def _allowed_text(allowed: Any) -> str:
    if isinstance(allowed, list):
        return ", ".join(str(item) for item in allowed)
    return str(allowed)


def _project_of(ns: argparse.Namespace) -> str:
    return getattr(ns, "project", None) or default_project()


def _cmd_submit(ns: argparse.Namespace, client: RunaiClient, json_out: bool, command: list[str] | None) -> int:
    spec = spec_from_args(ns, command)  # SubmitArgsError -> exit 2, before any network call
    out, err = _stdout(), _stderr()
    workload = client.submit(spec)
    name = workload.get("spec", {}).get("name", spec["name"])
    project = workload.get("spec", {}).get("project", spec["project"])
    if not ns.wait:
        if json_out:
            _print_json(workload)
        else:
            request = workload_request_text(workload.get("spec", {}))
            kind = workload.get("spec", {}).get("kind", "training")
            out.print(Text.assemble(f"Submitted {kind} workload ", (str(name), "bold"), f" in project {project}",
                                    f", requesting {request}." if request != "-" else ", no GPU."))
            out.print(Text(f"  runai describe {name} -p {project}    runai logs {name} -p {project} -f"))
        return EXIT_OK

    def until(w: dict[str, Any]) -> bool:
        return w.get("status", {}).get("phase") not in ("Pending", None)

    if not json_out:
        out.print(Text.assemble("Submitted ", (str(name), "bold"), f" in project {project}."))
    try:
        with err.status(Text(f"waiting for {name} to be scheduled...")) as spinner:
            def update(w: dict[str, Any]) -> None:
                status = w.get("status", {})
                reason = status.get("pending_reason")
                spinner.update(Text(f"{name}: {status.get('phase')}" + (f" - {reason}" if reason else "")))

            workload = client.wait(name, project, until=until, timeout=ns.wait_timeout, on_update=update)
    except TimeoutError as exc:
        err.print(error_line(exc))
        return EXIT_SERVER
    phase = workload.get("status", {}).get("phase")
    if json_out:
        _print_json(workload)
    else:
        url = workload.get("status", {}).get("url")
        out.print(Text(f"{name}: "), _phase(phase), Text(f"  {url}" if url else ""), sep="")
        if workload.get("status", {}).get("message"):
            out.print(Text(f"  {workload['status']['message']}"))
    return EXIT_SERVER if phase == "Failed" else EXIT_OK


def _cmd_list(ns: argparse.Namespace, client: RunaiClient, json_out: bool) -> int:
    project = None if ns.all_projects else (getattr(ns, "project", None) or _env_project())
    document = client.get_json("workloads", {"project": project, "phase": ns.phase, "kind": ns.kind})
    if json_out:
        _print_json(document)
    else:
        _stdout().print(render_workloads(document.get("workloads", [])))
    return EXIT_OK


def _env_project() -> str | None:
    import os

    return os.environ.get("RUNAI_PROJECT") or None


def _cmd_describe(ns: argparse.Namespace, client: RunaiClient, json_out: bool) -> int:
    workload = client.get(ns.name, _project_of(ns))
    if json_out:
        _print_json(workload)
    else:
        _stdout().print(render_describe(workload, server_url=client.url))
    return EXIT_OK


def _cmd_logs(ns: argparse.Namespace, client: RunaiClient, json_out: bool) -> int:
    for chunk in client.logs(ns.name, _project_of(ns), pod=ns.pod, follow=ns.follow, tail=ns.tail):
        sys.stdout.write(chunk)
        sys.stdout.flush()
    return EXIT_OK


def _cmd_action(action: str, ns: argparse.Namespace, client: RunaiClient, json_out: bool) -> int:
    project = _project_of(ns)
    if action == "delete" and not ns.yes:
        if not sys.stdin.isatty():
            raise _Usage(f"not deleting {ns.name!r} without confirmation: input is not a terminal; pass -y")
        answer = input(f"Delete workload {ns.name!r} in project {project!r}? Its pods are stopped. [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            _stderr().print(Text("Not deleted."))
            return EXIT_OK
    workload = getattr(client, action)(ns.name, project)
    if json_out:
        _print_json(workload)
    else:
        phase = (workload or {}).get("status", {}).get("phase")
        verb = {"stop": "stopping", "resume": "resumed", "delete": "deleting"}[action]
        _stdout().print(Text(f"{ns.name}: {verb}" + (f" (phase {phase})" if phase else "")))
    return EXIT_OK


def _cmd_nodes(ns: argparse.Namespace, client: RunaiClient, json_out: bool) -> int:
    document = client.get_json("nodes")
    if json_out:
        _print_json(document)
    else:
        _stdout().print(render_nodes(document.get("nodes", [])))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run `runai` with ``argv`` (default: the command line); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    err = _stderr()
    parser = build_parser()
    options, command = split_command(argv)
    try:
        ns = parser.parse_args(options)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)
    if ns.subcommand is None:
        parser.print_help()
        return EXIT_USAGE
    if command is not None and ns.subcommand != "submit":
        err.print(error_line(f"`runai {ns.subcommand}` takes no command after '--'"))
        return EXIT_USAGE

    json_out = getattr(ns, "output", "table") == "json"
    client = RunaiClient(getattr(ns, "url", None), getattr(ns, "token", None), project=_project_of(ns))
    try:
        if ns.subcommand == "submit":
            return _cmd_submit(ns, client, json_out, command)
        if ns.subcommand in ("stop", "resume", "delete"):
            return _cmd_action(ns.subcommand, ns, client, json_out)
        if ns.subcommand in ("data-source", "credential"):
            run = run_data_source if ns.subcommand == "data-source" else run_credential
            return run(ns, client, _project_of(ns), json_out, _print_json, _stdout())
        if ns.subcommand in ("projects", "departments", "nodepools"):
            return run_admin(ns, client, json_out, _print_json, _stdout(), render_projects)
        if ns.subcommand == "audit":
            return run_audit(ns, client, json_out, _print_json, _stdout())
        handler = {
            "list": _cmd_list,
            "describe": _cmd_describe,
            "logs": _cmd_logs,
            "nodes": _cmd_nodes,
        }[ns.subcommand]
        return handler(ns, client, json_out)
    except SubmitArgsError as exc:
        _print_error(exc, err)
        return EXIT_USAGE
    except (_Usage, CredentialValueError, AdminUsage) as exc:
        err.print(error_line(exc))
        return EXIT_USAGE
    except RunaiError as exc:
        _print_error(exc, err)
        return EXIT_SERVER
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `runai logs x | head`: the reader left; say nothing more
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    finally:
        client.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
