"""`runai policy [list|effective|set|update|delete]`: workload policies through the REST API.

A policy is set for one scope (``cluster``, ``department NAME``, ``project NAME``) and one
workload kind; ``set`` replaces that scope's policy for the kind with what the options give:
``--default PATH=VALUE`` and ``--rule PATH.ATTR=VALUE`` (ATTR: required, min, max, step, allowed,
can_edit). A VALUE that reads as JSON is taken as JSON; ``allowed`` and lists of names take
comma-separated values.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any, Callable, Iterable

from .cli_admin import AdminUsage

if TYPE_CHECKING:
    from rich.console import RenderableType

    from .client import RunaiClient

__all__ = ["add_policy_command", "policy_body", "render_effective", "render_policies", "run_policy", "updated_policy"]

KINDS = ("workspace", "training", "distributed", "inference")
SCOPES = ("cluster", "department", "project")
RULE_ATTRS = ("required", "min", "max", "step", "allowed", "can_edit")

EPILOG = """fields: image, resources.gpu, resources.gpu_memory, resources.cpu, resources.cpu_limit,
  resources.memory, resources.memory_limit, priority_class, preemptible, node_pools, data_sources,
  working_dir, workers (distributed), min_replicas, max_replicas (inference), backoff_limit

examples:
  runai policy                                       every policy set
  runai policy effective training -p vision          what a training submission to vision gets
  runai policy set cluster --kind training --default resources.gpu=1 --rule resources.gpu.max=4
  runai policy set department research --kind workspace --rule image.allowed=base:1,base:2 \\
        --default image=base:1 --rule image.can_edit=false
  runai policy set project vision --kind training --rule resources.gpu.max=2 --rule resources.gpu.step=0.5
  runai policy update project vision --kind training --rule resources.gpu.max=1 --remove resources.gpu.step
  runai policy delete project vision --kind training -y
A narrower scope may only tighten a wider one's rules; a policy that loosens one is refused,
naming each rule and what the wider scope allows. `set` replaces the scope's policy for the kind;
`update` changes only what it is given.
"""


def add_policy_command(command: Callable[..., argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    """Add `policy` with ``command(name, help, ...)``."""
    kw = {"parents": [common], "formatter_class": argparse.RawDescriptionHelpFormatter}
    parser = command("policy", "workload policies: defaults and rules per scope and kind; admins: set, delete",
                     epilog=EPILOG)
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    listing = sub.add_parser("list", help="list the policies set (the default)", epilog=EPILOG, **kw)
    listing.add_argument("--kind", choices=KINDS, help="only this kind")
    effective = sub.add_parser("effective", help="the defaults and rules a submission gets (of -p PROJECT)",
                               epilog=EPILOG, **kw)
    effective.add_argument("kind", choices=KINDS, metavar="KIND", help=f"one of {', '.join(KINDS)}")
    setter = sub.add_parser("set", help="set a scope's policy for a kind (replaces it)", epilog=EPILOG, **kw)
    update = sub.add_parser("update", help="change a scope's policy for a kind: only the defaults and rules "
                            "given (and --remove)", epilog=EPILOG, **kw)
    delete = sub.add_parser("delete", help="delete a scope's policy for a kind (asks first unless -y)", **kw)
    for action in (setter, update, delete):
        action.add_argument("scope", choices=SCOPES, metavar="SCOPE", help="cluster, department or project")
        action.add_argument("name", nargs="?", metavar="NAME", help="the department or project (not for cluster)")
        action.add_argument("--kind", choices=KINDS, required=True, help="the workload kind it governs")
    for action in (setter, update):
        action.add_argument("--default", action="append", default=[], metavar="PATH=VALUE", dest="defaults",
                            help="a default: resources.gpu=1, image=base:1, node_pools=a100,default")
        action.add_argument("--rule", action="append", default=[], metavar="PATH.ATTR=VALUE", dest="rules",
                            help="a rule: resources.gpu.max=4, resources.memory.required=true, "
                            "image.allowed=base:1,base:2, preemptible.can_edit=false")
    update.add_argument("--remove", action="append", default=[], metavar="PATH[.ATTR]",
                        help="drop a field's default and rules (resources.gpu), or one rule (resources.gpu.max)")
    delete.add_argument("-y", "--yes", action="store_true", help="do not ask (required when not at a terminal)")


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _items(text: str) -> list[Any]:
    value = _json_or_text(text)
    if isinstance(value, list):
        return value
    return [_json_or_text(part.strip()) if part.strip() not in ("",) else part for part in text.split(",")]


def policy_body(ns: argparse.Namespace) -> dict[str, Any]:
    """The JSON body of `runai policy set` from the parsed options."""
    from .models.policy import POLICY_FIELDS

    if (ns.scope == "cluster") != (ns.name is None):
        raise AdminUsage("give NAME for a department or project, and none for the cluster")
    body: dict[str, Any] = {"scope": ns.scope, "name": ns.name, "kind": ns.kind, "defaults": {}, "rules": {}}
    for item in ns.defaults:
        path, sep, value = item.partition("=")
        if not sep or path not in POLICY_FIELDS:
            raise AdminUsage(f"--default {item!r}: write PATH=VALUE, PATH one of {', '.join(POLICY_FIELDS)}")
        body["defaults"][path] = _items(value) if POLICY_FIELDS[path] == "names" else _json_or_text(value)
    for item in ns.rules:
        path, sep, value = item.partition("=")
        field, _, attr = path.rpartition(".")
        if not sep or field not in POLICY_FIELDS or attr not in RULE_ATTRS:
            raise AdminUsage(f"--rule {item!r}: write FIELD.ATTR=VALUE, ATTR one of {', '.join(RULE_ATTRS)}, e.g. "
                             "resources.gpu.max=4")
        body["rules"].setdefault(field, {})[attr] = _items(value) if attr == "allowed" else _json_or_text(value)
    return body


def updated_policy(current: dict[str, Any], ns: argparse.Namespace) -> dict[str, Any]:
    """`runai policy update`: the stored policy with the options' defaults and rules put in (a rule's
    other attributes kept) and the ``--remove`` ones taken out."""
    from .models.policy import POLICY_FIELDS

    changes = policy_body(ns)
    defaults = {**current.get("defaults", {}), **changes["defaults"]}
    rules = {field: dict(rule) for field, rule in (current.get("rules") or {}).items()}
    for field, rule in changes["rules"].items():
        rules[field] = {**rules.get(field, {}), **rule}
    for path in ns.remove:
        field, _, attr = path.rpartition(".")
        if path in POLICY_FIELDS:
            defaults.pop(path, None)
            rules.pop(path, None)
        elif field in POLICY_FIELDS and attr in RULE_ATTRS:
            rules.get(field, {}).pop(attr, None)
            if not rules.get(field):
                rules.pop(field, None)
        else:
            raise AdminUsage(f"--remove {path!r}: a field ({', '.join(POLICY_FIELDS)}) or FIELD.ATTR")
    return {**changes, "defaults": defaults, "rules": rules}


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _rule_text(rule: dict[str, Any]) -> str:
    parts = []
    if rule.get("required"):
        parts.append("required")
    if rule.get("min") is not None:
        parts.append(f"min {rule['min']}")
    if rule.get("max") is not None:
        parts.append(f"max {rule['max']}")
    if rule.get("step") is not None:
        parts.append(f"step {rule['step']}")
    if rule.get("allowed") is not None:
        parts.append(f"one of {_text(rule['allowed'])}")
    if rule.get("can_edit") is False:
        parts.append("fixed")
    return ", ".join(parts)


def render_policies(policies: Iterable[dict[str, Any]]) -> RenderableType:
    from rich.table import Table
    from rich.text import Text

    policies = list(policies)
    if not policies:
        return Text("No policies: submissions get the built-in defaults. Set one: runai policy set --help")
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("SCOPE", "KIND", "FIELD", "DEFAULT", "RULE"):
        table.add_column(column)
    for policy in policies:
        scope = policy["scope"] + (f" {policy['name']}" if policy.get("name") else "")
        fields = list(dict.fromkeys([*policy.get("defaults", {}), *policy.get("rules", {})])) or ["-"]
        for index, field in enumerate(fields):
            default = policy.get("defaults", {}).get(field)
            table.add_row(*(Text(c) for c in (scope if index == 0 else "", policy["kind"] if index == 0 else "",
                                              field, "-" if default is None else _text(default),
                                              _rule_text(policy.get("rules", {}).get(field) or {}) or "-")))
    return table


def render_effective(document: dict[str, Any]) -> RenderableType:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    scopes = ", ".join(document.get("policies", [])) or "none"
    head = Text(f"{document['kind']} workloads in project {document['project']} (policies: {scopes})")
    defaults, rules = document.get("defaults", {}), document.get("rules", {})
    if not defaults and not rules:
        return Group(head, Text("No defaults or rules: the built-in defaults apply."))
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("FIELD", "DEFAULT", "RULE", "FROM"):
        table.add_column(column)
    for field in dict.fromkeys([*defaults, *rules]):
        rule = rules.get(field, {})
        sources = [document.get("default_from", {}).get(field), *rule.get("from", [])]
        table.add_row(*(Text(c) for c in (field, _text(defaults[field]) if field in defaults else "-",
                                          _rule_text(rule) or "-", ", ".join(dict.fromkeys(s for s in sources if s)))))
    return Group(head, table)


def run_policy(ns: argparse.Namespace, client: RunaiClient, json_out: bool, show: Callable[[Any], None], out) -> int:
    """`runai policy [ACTION]`."""
    from rich.text import Text

    action = getattr(ns, "action", None) or "list"
    if action == "list":
        policies = client.policies(kind=getattr(ns, "kind", None))
        ns.result = {"policies": policies}  # what %runai returns
        show({"policies": policies}) if json_out else out.print(render_policies(policies))
        return 0
    if action == "effective":
        document = ns.result = client.effective_policy(ns.kind, client.project)
        show(document) if json_out else out.print(render_effective(document))
        return 0
    if action in ("set", "update"):
        body = policy_body(ns)
        if action == "update":
            found = client.policies(scope=ns.scope, name=ns.name, kind=ns.kind)
            if not found:
                raise AdminUsage(f"no {ns.kind} policy for {ns.scope} {ns.name or ''}".rstrip()
                                 + f" to update: create it with runai policy set")
            if not (ns.defaults or ns.rules or ns.remove):
                raise AdminUsage("nothing to change: give --default, --rule or --remove")
            body = updated_policy(found[0], ns)
        made = ns.result = client.set_policy(body)
        where = ns.scope + (f" {ns.name}" if ns.name else "")
        show(made) if json_out else out.print(Text(f"Policy for {ns.kind} workloads of {where} "
                                                   f"{'set' if action == 'set' else 'updated'}; new submissions get it."))
        return 0
    if (ns.scope == "cluster") != (ns.name is None):
        raise AdminUsage("give NAME for a department or project, and none for the cluster")
    where = ns.scope + (f" {ns.name}" if ns.name else "")
    if not ns.yes:
        if not sys.stdin.isatty():
            raise AdminUsage(f"not deleting the {ns.kind} policy of {where} without confirmation: input is not a "
                             "terminal; pass -y")
        if input(f"Delete the {ns.kind} policy of {where}? [y/N] ").strip().lower() not in ("y", "yes"):
            out.print(Text("Not deleted."))
            return 0
    client.delete_policy(ns.scope, ns.kind, ns.name)
    show({"deleted": {"scope": ns.scope, "name": ns.name, "kind": ns.kind}}) if json_out else out.print(
        Text(f"Policy for {ns.kind} workloads of {where} deleted."))
    return 0

