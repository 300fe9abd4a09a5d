"""`runai access [me|list|grant|revoke]`: roles on scopes (RBAC), through the REST API.

A binding is written as it reads: ``runai access grant researcher --user alice --project vision``
(``--group`` for a JupyterHub group; ``--department`` for a department and its projects; neither
for the whole cluster). ``revoke`` takes the id ``runai access list`` shows, or the same options
as ``grant``.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, Callable, Iterable

if TYPE_CHECKING:  # rich and the client are imported by the commands that run (a fast `runai --help`)
    from rich.console import RenderableType

    from .client import RunaiClient

__all__ = ["ROLES", "add_access_command", "binding_of", "render_bindings", "run_access"]

ROLES = ("admin", "department-admin", "ml-engineer", "researcher", "viewer")

ACCESS_EPILOG = """roles (each on the scope it is granted on):
  admin              everything, on the whole cluster
  department-admin   its departments' projects: submit any kind, stop or delete anyone's workloads,
                     change the projects, grant ml-engineer, researcher and viewer
  ml-engineer        inference workloads in its projects (and its own to stop, resume, delete);
                     sees nodes and node pools
  researcher         submits and manages its own workloads (not inference) in its projects; sees
                     the project's other workloads
  viewer             sees, changes nothing

examples:
  runai access                                          your own roles and where you may submit
  runai access list                                     the bindings you may see (admins: all)
  runai access grant researcher --user alice --project vision
  runai access grant viewer --group everyone            a JupyterHub group, on the whole cluster
  runai access grant department-admin --user bob --department research
  runai access revoke 7                                 by the id `list` shows
  runai access revoke researcher --user alice --project vision
Bindings from the configuration (c.RunaiApp.role_bindings) are listed as 'config' and change only there.
"""


def add_access_command(command: Callable[..., argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    """Add `access` with its actions, by ``command(name, help, ...)``."""
    kw = {"parents": [common], "formatter_class": argparse.RawDescriptionHelpFormatter}
    parser = command("access", "roles on projects, departments and the cluster: yours, and (admins) grant or "
                     "revoke them", epilog=ACCESS_EPILOG)
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.add_parser("me", help="your roles, the projects you may see and submit to, and the system account your "
                   "workloads run as (the default)", **kw)
    sub.add_parser("list", help="the role bindings you may see (admins: all)", **kw)
    grant = sub.add_parser("grant", help="grant a role to a user or group on a project, department or the cluster",
                           epilog=ACCESS_EPILOG, **kw)
    revoke = sub.add_parser("revoke", help="revoke a granted role, by its id or as it was granted",
                            epilog=ACCESS_EPILOG, **kw)
    grant.add_argument("role", metavar="ROLE", choices=ROLES, help=f"one of {', '.join(ROLES)}")
    revoke.add_argument("role", metavar="ID|ROLE", help="the binding's id (runai access list), or its role")
    for action in (grant, revoke):
        who = action.add_mutually_exclusive_group()
        who.add_argument("--user", metavar="NAME", help="the user who holds it")
        who.add_argument("--group", metavar="NAME", help="the group whose members hold it (JupyterHub's groups)")
        action.add_argument("--department", metavar="NAME",
                            help="on this department and its projects (-p/--project: one project; neither: the "
                            "whole cluster)")


class AccessUsage(ValueError):
    """A bad option combination, found before any network call (exit 2)."""


def binding_of(ns: argparse.Namespace) -> dict[str, Any]:
    """The binding the options of `grant` (or `revoke` by role) describe."""
    if not ns.user and not ns.group:
        raise AccessUsage("say who holds it: --user NAME or --group NAME")
    project = getattr(ns, "project", None)  # the common -p/--project, only when given
    if project and ns.department:
        raise AccessUsage("give --department or -p/--project, not both (neither: the whole cluster)")
    body: dict[str, Any] = {"role": ns.role}
    body["user" if ns.user else "group"] = ns.user or ns.group
    if ns.department:
        body["department"] = ns.department
    if project:
        body["project"] = project
    return body


def _scope(b: dict[str, Any]) -> str:
    if b.get("project"):
        return f"project {b['project']}"
    if b.get("department"):
        return f"department {b['department']}"
    return "cluster"


def render_bindings(bindings: Iterable[dict[str, Any]]) -> RenderableType:
    from rich.table import Table
    from rich.text import Text

    bindings = list(bindings)
    if not bindings:
        return Text("No role bindings you may see.")
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("ID", "ROLE", "SUBJECT", "SCOPE", "SOURCE"):
        table.add_column(column, no_wrap=True)
    for b in bindings:
        subject = f"user {b['user']}" if b.get("user") else f"group {b.get('group', '')}"
        table.add_row(*(Text(str(c)) for c in ("-" if b.get("id") is None else b["id"], b["role"], subject,
                                                 _scope(b), b.get("source", ""))))
    return table


def render_me(me: dict[str, Any]) -> RenderableType:
    from rich.text import Text

    roles = [f"{r['role']} on {r['scope'] if r['scope'] == 'cluster' else r['scope'] + ' ' + str(r['name'])}"
             for r in me.get("roles", [])]
    lines = [f"user: {me.get('user')}" + (f" (groups: {', '.join(me['groups'])})" if me.get("groups") else ""),
             f"roles: {'; '.join(roles) or 'none'}",
             f"may submit to: {', '.join(me.get('submit_projects', [])) or 'no project'}",
             f"may submit inference to: {', '.join(me.get('inference_projects', [])) or 'no project'}",
             f"sees projects: {', '.join(me.get('view_projects', [])) or 'none'}"]
    runs_as = me.get("runs_as") or {}
    if runs_as.get("error"):
        lines.append(f"workloads run as: none: {runs_as['error']}")
    elif runs_as.get("account"):
        lines.append(f"workloads run as: the system account {runs_as['account']}")
    elif runs_as:
        lines.append("workloads run as: the service's own account")
    return Text("\n".join(lines))


def run_access(ns: argparse.Namespace, client: RunaiClient, json_out: bool, show: Callable[[Any], None], out) -> int:
    """`runai access [ACTION]`."""
    from rich.text import Text

    action = getattr(ns, "action", None) or "me"
    if action == "me":
        me = client.me()
        show(me) if json_out else out.print(render_me(me))
        return 0
    if action == "list":
        bindings = client.role_bindings()
        show({"bindings": bindings}) if json_out else out.print(render_bindings(bindings))
        return 0
    if action == "grant":
        made = client.grant(binding_of(ns))
        show(made) if json_out else out.print(Text(f"Granted (id {made['id']}): {made['role']} to "
                                                    f"{'user ' + made['user'] if made.get('user') else 'group ' + made['group']} "
                                                    f"on {_scope(made)}."))
        return 0
    if ns.role.isascii() and ns.role.isdigit():
        if ns.user or ns.group or ns.department or getattr(ns, "project", None):
            raise AccessUsage("revoke by id takes no other option")
        binding_id = int(ns.role)
    else:
        if ns.role not in ROLES:
            raise AccessUsage(f"{ns.role!r} is neither a binding id nor a role ({', '.join(ROLES)})")
        wanted = binding_of(ns)
        found = [b for b in client.role_bindings()
                 if {k: v for k, v in b.items() if k not in ("id", "source")} == wanted]
        stored = [b for b in found if b.get("id") is not None]
        if not stored:
            where = "in the configuration (c.RunaiApp.role_bindings): change it there" if found else \
                "among the bindings you may see (runai access list)"
            raise AccessUsage(f"no such granted binding {where}")
        binding_id = stored[0]["id"]
    gone = client.revoke(binding_id)
    show(gone) if json_out else out.print(Text(f"Revoked (id {binding_id}): {gone['role']} on {_scope(gone)}."))
    return 0
