"""`runai projects|departments|nodepools [list|create|update|delete]` and `runai audit`:
administration at runtime (admins), through the REST API.

Quotas are given with named options (``--gpu 4 --limit-gpu 6 --weight 2``) for the usual
fields and ``--set PATH=VALUE`` for any other (``--set node_pools.a100.deserved.gpu=2``,
``--set reclaim_min_runtime=10m``); a VALUE that reads as JSON is taken as JSON
(numbers, ``null``), else as text. ``update`` sends only what is given; the rest stays.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any, Callable, Iterable

if TYPE_CHECKING:  # rich and the client are imported by the commands that run (a fast `runai --help`)
    from rich.console import RenderableType
    from rich.table import Table

    from .client import RunaiClient

__all__ = ["ADMIN_COMMANDS", "AdminUsage", "add_admin_commands", "diff_text", "queue_changes", "render_audit",
           "render_departments", "render_node_pools", "run_admin", "run_audit"]

#: `runai <command>` -> the REST collection it administers
ADMIN_COMMANDS = {"projects": "projects", "departments": "departments", "nodepools": "node-pools"}
WHAT = {"projects": "project", "departments": "department", "nodepools": "node pool"}

QUEUE_EPILOG = """examples:
  runai projects                                         list them (with department and per-pool quotas)
  runai projects create vision --department research --gpu 4 --limit-gpu 6
  runai projects update vision --gpu 2 --weight 2        only these change
  runai projects update vision --set node_pools.a100.deserved.gpu=2
  runai projects update vision --limit-gpu unlimited
  runai projects delete vision -y                        refused while it has workloads
Changes take effect in the next scheduling cycle and evict nothing by themselves.
"""

DEPARTMENT_EPILOG = """examples:
  runai departments                                      list them with their projects
  runai departments create research --gpu 8
  runai departments update research --limit-gpu 10 --priority 200
  runai departments delete research -y                   refused while projects belong to it
Changes take effect in the next scheduling cycle and evict nothing by themselves.
"""

POOL_EPILOG = """examples:
  runai nodepools
  runai nodepools create a100 --label gpu-type=a100 --gpu-placement binpack
  runai nodepools update a100 --device-placement spread
  runai nodepools delete a100 -y                         refused while a quota or workload uses it
"""

AUDIT_EPILOG = """examples:
  runai audit                        the latest changes
  runai audit --kind project --name vision
"""


class AdminUsage(ValueError):
    """A bad option value, found before any network call (exit 2)."""


def add_admin_commands(command: Callable[..., argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    """Add `projects`, `departments`, `nodepools` and `audit` with ``command(name, help, ...)``."""
    kw = {"parents": [common], "formatter_class": argparse.RawDescriptionHelpFormatter}
    for name, help_text in (
        ("projects", "list projects (deserved GPUs, allocated, fair share, limit, department); admins: create, "
                     "update, delete"),
        ("departments", "list departments and their projects; admins: create, update, delete"),
    ):
        what = WHAT[name]
        parser = command(name, help_text, epilog=QUEUE_EPILOG if name == "projects" else DEPARTMENT_EPILOG)
        sub = parser.add_subparsers(dest="action", metavar="ACTION")
        sub.add_parser("list", help=f"list the {name} (the default)", **kw)
        create = sub.add_parser("create", help=f"create a {what}", epilog=parser.epilog, **kw)
        update = sub.add_parser("update", help=f"change a {what}: only what is given", epilog=parser.epilog, **kw)
        for action in (create, update):
            action.add_argument("name", metavar="NAME")
            if name == "projects":
                action.add_argument("--department", help="its department" + (" (default: default)"
                                                                           if action is create else ""))
            _queue_options(action)
        delete = sub.add_parser("delete", help=f"delete a {what} (asks first unless -y)", **kw)
        delete.add_argument("name", metavar="NAME")
        delete.add_argument("-y", "--yes", action="store_true", help="do not ask (required when not at a terminal)")

    pools = command("nodepools", "list node pools and their nodes; admins: create, update, delete",
                    epilog=POOL_EPILOG)
    sub = pools.add_subparsers(dest="action", metavar="ACTION")
    sub.add_parser("list", help="list the node pools (the default)", **kw)
    create = sub.add_parser("create", help="create a node pool", epilog=POOL_EPILOG, **kw)
    update = sub.add_parser("update", help="change a node pool: only what is given", epilog=POOL_EPILOG, **kw)
    for action in (create, update):
        action.add_argument("name", metavar="NAME")
        action.add_argument("--label", action="append", metavar="KEY=VALUE",
                            help="a label its nodes carry (repeat for several; all must match); on update the "
                            "given labels replace the selector")
        action.add_argument("--gpu-placement", choices=("fragmentation-aware", "binpack", "spread"))
        action.add_argument("--cpu-placement", choices=("binpack", "spread"))
        action.add_argument("--device-placement", choices=("pack", "spread"))
    delete = sub.add_parser("delete", help="delete a node pool (asks first unless -y)", **kw)
    delete.add_argument("name", metavar="NAME")
    delete.add_argument("-y", "--yes", action="store_true", help="do not ask (required when not at a terminal)")

    audit = command("audit", "the audit log (admins): who changed which project, department, node pool, role "
                    "binding or policy, when, before and after", epilog=AUDIT_EPILOG)
    audit.add_argument("--kind", choices=("project", "department", "node_pool", "role_binding", "policy"),
                       help="only this kind")
    audit.add_argument("--name", help="only this object")
    audit.add_argument("--limit", type=int, default=None, metavar="N", help="the newest N entries (default 100)")


def _queue_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("quota")
    group.add_argument("--gpu", metavar="N", help="deserved GPUs (the quota; fractions allowed)")
    group.add_argument("--cpu", metavar="Q", help="deserved CPU (cores, or millicores as '500m')")
    group.add_argument("--memory", metavar="Q", help="deserved memory ('64Gi')")
    group.add_argument("--limit-gpu", metavar="N", help="the most GPUs it may hold ('unlimited' to remove)")
    group.add_argument("--limit-cpu", metavar="Q", help="the most CPU it may hold ('unlimited' to remove)")
    group.add_argument("--limit-memory", metavar="Q", help="the most memory it may hold ('unlimited' to remove)")
    group.add_argument("--weight", metavar="W", help="over-quota weight: its share of idle GPUs (default 1)")
    group.add_argument("--priority", metavar="N", help="queue priority among its siblings (default 100)")
    group.add_argument("--set", action="append", default=[], metavar="PATH=VALUE", dest="sets",
                       help="any other field, by its dotted path: node_pools.a100.deserved.gpu=2, "
                       "reclaim_min_runtime=10m, node_pools.a100=null (remove a pool's quota), "
                       "rules.training.max_duration=8h, rules.workspace.idle_gpu_timeout=30m, "
                       "rules.workspace.idle_gpu_action=preemptible (made preemptible instead of stopped)")


def _value(text: str) -> Any:
    """A command-line value as the API takes it: JSON where it reads as JSON, else the text."""
    if text.strip().lower() in ("unlimited", "none"):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _put(body: dict[str, Any], path: str, value: Any) -> None:
    keys = path.split(".")
    if not all(keys):
        raise AdminUsage(f"--set {path!r}: the path has an empty part")
    node = body
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise AdminUsage(f"--set {path!r}: {key} is given a value and also fields")
        node = child
    node[keys[-1]] = value


def queue_changes(ns: argparse.Namespace) -> dict[str, Any]:
    """The JSON body of `projects|departments create|update` from the parsed options."""
    body: dict[str, Any] = {}
    if getattr(ns, "department", None):
        body["department"] = ns.department
    for option, path in (("gpu", "deserved.gpu"), ("cpu", "deserved.cpu"), ("memory", "deserved.memory"),
                         ("limit_gpu", "limit.gpu"), ("limit_cpu", "limit.cpu"), ("limit_memory", "limit.memory"),
                         ("weight", "over_quota_weight"), ("priority", "priority")):
        given = getattr(ns, option, None)
        if given is not None:
            _put(body, path, _value(given))
    for item in ns.sets:
        path, sep, value = item.partition("=")
        if not sep or not path:
            raise AdminUsage(f"--set {item!r}: write PATH=VALUE, e.g. node_pools.a100.deserved.gpu=2")
        _put(body, path.strip(), _value(value))
    return body


def pool_changes(ns: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if ns.label:
        selector = {}
        for item in ns.label:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise AdminUsage(f"--label {item!r}: write KEY=VALUE, e.g. gpu-type=a100")
            selector[key] = value
        body["label_selector"] = selector
    for option in ("gpu_placement", "cpu_placement", "device_placement"):
        if getattr(ns, option) is not None:
            body[option] = getattr(ns, option)
    return body


# ----------------------------------------------------------------------------- rendering


def _num(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "-" if value is None else str(value)


def _amounts(block: dict[str, Any] | None, unset: str) -> str:
    """``gpu 2, cpu 500m`` from a resource block: the GPU always, CPU and memory when set."""
    block = block or {}
    gpu = block.get("gpu")
    parts = [unset if gpu is None else _num(gpu)]
    for key in ("cpu", "memory"):
        value = block.get(key)
        if value not in (None, 0, "0"):
            parts.append(f"{key} {value}")
    return ", ".join(parts)


def render_departments(departments: Iterable[dict[str, Any]]) -> RenderableType:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    departments = list(departments)
    if not departments:
        return Text("No departments.")
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("DEPARTMENT", "PROJECTS", "DESERVED", "LIMIT", "OVER-QUOTA WEIGHT", "PRIORITY"):
        table.add_column(column, no_wrap=column != "PROJECTS",
                         justify="left" if column in ("DEPARTMENT", "PROJECTS") else "right")
    for d in departments:
        table.add_row(*(Text(str(cell)) for cell in (
            d.get("name", "?"), ", ".join(d.get("projects", [])) or "-", _amounts(d.get("deserved"), "0"),
            _amounts(d.get("limit"), "unlimited"), _num(d.get("over_quota_weight", 1)), _num(d.get("priority")))))
        _pool_rows(table, d, 6)
    return Group(table, Text("(GPUs, then CPU and memory where set)", style="dim"))


def _pool_rows(table: Table, queue: dict[str, Any], columns: int, layout: str = "department") -> None:
    """One indented row per per-pool quota block under its queue's row."""
    from rich.text import Text

    for pool, block in sorted((queue.get("node_pools") or {}).items()):
        deserved = _amounts(block.get("deserved"), "0")
        limit = _amounts(block.get("limit"), "unlimited")
        weight = _num(block.get("over_quota_weight", 1))
        if layout == "project":  # PROJECT, DEPARTMENT, DESERVED, ALLOCATED, FAIR SHARE, LIMIT, WEIGHT
            cells = [f"  pool {pool}", "", deserved, "", "", limit, weight]
        else:  # DEPARTMENT, PROJECTS, DESERVED, LIMIT, WEIGHT, PRIORITY
            cells = [f"  pool {pool}", "", deserved, limit, weight, ""]
        table.add_row(*(Text(c, style="dim") for c in cells[:columns]))


def project_pool_rows(table: Table, project: dict[str, Any]) -> None:
    """`runai projects`: a project's per-pool quotas, under its row."""
    _pool_rows(table, project, 7, layout="project")


def render_node_pools(pools: Iterable[dict[str, Any]]) -> RenderableType:
    from rich.table import Table
    from rich.text import Text

    pools = list(pools)
    if not pools:
        return Text("No node pools: every node is in the 'default' pool. Create one: runai nodepools create --help")
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("POOL", "LABELS", "GPU PLACEMENT", "CPU PLACEMENT", "DEVICE PLACEMENT", "NODES"):
        table.add_column(column)
    for p in pools:
        labels = ", ".join(f"{k}={v}" for k, v in (p.get("label_selector") or {}).items()) or "(every node)"
        table.add_row(*(Text(str(c)) for c in (p.get("name", "?"), labels, p.get("gpu_placement", ""),
                                                 p.get("cpu_placement", ""), p.get("device_placement", ""),
                                                 ", ".join(p.get("nodes", [])) or "-")))
    return table


def _changes(old: Any, new: Any, path: str, out: list[str]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in list(old) + [k for k in new if k not in old]:
            where = f"{path}.{key}" if path else str(key)
            if key not in new:
                out.append(f"{where} removed")
            elif key not in old:
                out.append(f"{where} added" if isinstance(new[key], dict) else f"{where} {_num(new[key])}")
            else:
                _changes(old[key], new[key], where, out)
    elif old != new:
        out.append(f"{path} {_num(old)} -> {_num(new)}")


def diff_text(before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    """What a change did, in one line: ``deserved.gpu 2 -> 1; priority 100 -> 150``; a block that
    appears or goes (a pool's quota) is one item: ``node_pools.a100 added``."""
    if before is None:
        return "created"
    if after is None:
        return "deleted"
    parts: list[str] = []
    _changes(before, after, "", parts)
    return "; ".join(parts) or "no change"


def render_audit(entries: Iterable[dict[str, Any]]) -> RenderableType:
    from rich.table import Table
    from rich.text import Text

    entries = list(entries)
    if not entries:
        return Text("No changes recorded.")
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("WHEN", "USER", "ACTION", "KIND", "NAME", "CHANGE"):
        table.add_column(column, no_wrap=column != "CHANGE")
    for e in entries:
        when = str(e.get("at", ""))[:19].replace("T", " ")
        table.add_row(*(Text(str(c)) for c in (when, e.get("user", ""), e.get("action", ""),
                                                 str(e.get("kind", "")).replace("_", " "), e.get("name", ""),
                                                 diff_text(e.get("before"), e.get("after")))))
    return table


# ----------------------------------------------------------------------------- commands


def run_admin(ns: argparse.Namespace, client: RunaiClient, json_out: bool, show: Callable[[Any], None], out,
              render_projects: Callable[[list[dict[str, Any]]], RenderableType]) -> int:
    """`runai projects|departments|nodepools [ACTION]`."""
    from rich.text import Text

    command = ns.subcommand
    collection = ADMIN_COMMANDS[command]
    what = WHAT[command]
    key = collection.replace("-", "_")
    action = getattr(ns, "action", None) or "list"
    if action == "list":
        document = client.get_json(collection)
        if json_out:
            show(document)
        else:
            items = document.get(key, [])
            render = {"projects": render_projects, "departments": render_departments,
                      "nodepools": render_node_pools}[command]
            out.print(render(items))
        return 0
    if action in ("create", "update"):
        body = pool_changes(ns) if command == "nodepools" else queue_changes(ns)
        if action == "create":
            made = client.create(collection, {"name": ns.name, **body})
        else:
            if not body:
                raise AdminUsage(f"nothing to change: give at least one option (runai {command} update --help)")
            made = client.update(collection, ns.name, body)
        if json_out:
            show(made)
        else:
            verb = "created" if action == "create" else "updated"
            out.print(Text(f"{what.capitalize()} {ns.name} {verb}; the next scheduling cycle uses it."))
        return 0
    if not ns.yes:
        if not sys.stdin.isatty():
            raise AdminUsage(f"not deleting {what} {ns.name!r} without confirmation: input is not a terminal; pass -y")
        extra = " with its data sources and credentials" if command == "projects" else ""
        answer = input(f"Delete {what} {ns.name!r}{extra}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            out.print(Text("Not deleted."))
            return 0
    client.remove(collection, ns.name)
    if json_out:
        show({"deleted": {"kind": what, "name": ns.name}})
    else:
        out.print(Text(f"{what.capitalize()} {ns.name} deleted."))
    return 0


def run_audit(ns: argparse.Namespace, client: RunaiClient, json_out: bool, show: Callable[[Any], None], out) -> int:
    entries = client.audit(kind=ns.kind, name=ns.name, limit=ns.limit)
    if json_out:
        show({"entries": entries})
    else:
        out.print(render_audit(entries))
    return 0
