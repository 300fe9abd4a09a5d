"""`runai data-source ...` and `runai credential ...`: a project's data sources and credentials.

Secret values never go through the command line when avoidable: ``KEY`` without
``=VALUE`` takes the value from the environment variable ``KEY``, or asks for it
(hidden) at a terminal. Listings show keys only; the server never returns values.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # rich and the client are imported by the functions that use them (fast start-up)
    from rich.table import Table
    from rich.text import Text

    from .client import RunaiClient

DATA_SOURCE_EPILOG = """examples:
  runai data-source add imagenet --host-path /datasets/imagenet            # read-only at data/imagenet
  runai data-source add scratch --host-path /scratch/me --read-write --target scratch
  runai data-source add code --git https://github.com/me/project.git --revision main
  runai data-source list
  runai submit train --data-source imagenet --data-source code -- python code/train.py
"""

CREDENTIAL_EPILOG = """examples:
  runai credential add hf --env HF_TOKEN                 # value from $HF_TOKEN, or asked for (hidden)
  runai credential add aws --env AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
  runai credential add kube --file config=@~/.kube/config   # a file's content (@PATH)
  runai credential list
  runai submit train --credential hf -- python train.py
Values are write-only: no command, API or view shows them again.
"""


def plain(value: Any) -> Any:
    """User text (names, pools, messages, commands) as literal text: rich reads ``[a100]`` in a plain
    string as markup and drops it, so every cell and line that carries text from the server goes
    through here (renderables pass as they are)."""
    from rich.text import Text

    if value is None:
        return Text("")
    if isinstance(value, Text) or hasattr(value, "__rich_console__") or hasattr(value, "__rich__"):
        return value
    return Text(str(value))


def plain_row(table: Table, *cells: Any) -> None:
    """``table.add_row`` with every string cell taken literally (see :func:`plain`)."""
    table.add_row(*(plain(cell) for cell in cells))


def error_line(message: Any, label: str = "error:") -> Text:
    """``error: <message>`` with the label in bold red and the message literal."""
    from rich.text import Text

    return Text.assemble((label, "bold red"), " ", str(message))


class CredentialValueError(ValueError):
    """A KEY whose value cannot be found; the message says how to give it."""


def add_data_commands(command: Callable[..., argparse.ArgumentParser],
                      common: argparse.ArgumentParser) -> None:
    """Add the `data-source` and `credential` commands with ``command(name, help, ...)``;
    ``common`` holds the global options (--url, --token, -p, -o), accepted after the action too."""
    kw = {"parents": [common], "formatter_class": argparse.RawDescriptionHelpFormatter}
    ds = command("data-source", "a project's data sources: host paths and git repositories (list, add, delete)",
                 epilog=DATA_SOURCE_EPILOG)
    ds_sub = ds.add_subparsers(dest="action", metavar="ACTION", required=True)
    ds_sub.add_parser("list", help="list the project's data sources", **kw)
    add = ds_sub.add_parser("add", help="define a data source", epilog=DATA_SOURCE_EPILOG, **kw)
    add.add_argument("name", metavar="NAME", help="its name (a DNS label), used by --data-source at submit")
    kind = add.add_mutually_exclusive_group(required=True)
    kind.add_argument("--host-path", metavar="PATH", help="an absolute directory on the node")
    kind.add_argument("--git", metavar="URL", help="a git repository, cloned when a pod starts")
    add.add_argument("--revision", metavar="REV", help="with --git: branch, tag or commit")
    add.add_argument("--target", metavar="PATH",
                     help="where it appears, relative to the pod's working directory (default data/NAME)")
    add.add_argument("--read-write", action="store_true", help="with --host-path: writable (default read-only)")
    rm = ds_sub.add_parser("delete", help="remove a data source", **kw)
    rm.add_argument("name", metavar="NAME")

    cred = command("credential", "a project's credentials: secrets injected as variables or files (list, add, delete)",
                   epilog=CREDENTIAL_EPILOG)
    cred_sub = cred.add_subparsers(dest="action", metavar="ACTION", required=True)
    cred_sub.add_parser("list", help="list the project's credentials (keys only)", **kw)
    cadd = cred_sub.add_parser("add", help="store a credential", epilog=CREDENTIAL_EPILOG, **kw)
    cadd.add_argument("name", metavar="NAME", help="its name (a DNS label), used by --credential at submit")
    how = cadd.add_mutually_exclusive_group(required=True)
    how.add_argument("--env", nargs="+", metavar="KEY[=VALUE]",
                     help="inject as environment variables, one per KEY")
    how.add_argument("--file", nargs="+", metavar="KEY[=VALUE|=@PATH]",
                     help="inject as files named KEY under --mount-path (mode 0600)")
    cadd.add_argument("--mount-path", metavar="PATH",
                      help="with --file: directory for the files, relative to the working directory "
                      "(default .credentials/NAME)")
    crm = cred_sub.add_parser("delete", help="remove a credential", **kw)
    crm.add_argument("name", metavar="NAME")


def secret_items(items: list[str], ask: Callable[[str], str] | None = None) -> dict[str, str]:
    """``KEY=VALUE``, ``KEY=@PATH`` (a file's content) or ``KEY`` (from $KEY, or asked for)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key:
            raise CredentialValueError(f"{item!r}: write KEY, KEY=VALUE or KEY=@PATH")
        if sep and value.startswith("@"):
            path = os.path.expanduser(value[1:])
            try:
                with open(path) as f:
                    value = f.read()
            except OSError as exc:
                raise CredentialValueError(f"{key}: cannot read {path!r}: {exc.strerror}") from None
        elif not sep:
            if key in os.environ:
                value = os.environ[key]
            elif ask is not None:
                value = ask(key)
            else:
                raise CredentialValueError(
                    f"{key}: no value: set the environment variable {key}, write {key}=VALUE, or run at a terminal "
                    "to be asked")
        out[key] = value
    return out


def _ask(key: str) -> str:
    return getpass.getpass(f"Value of {key} (hidden): ")


def run_data_source(ns: argparse.Namespace, client: RunaiClient, project: str, json_out: bool,
                    show: Callable[[Any], None], out) -> int:
    from rich.table import Table
    from rich.text import Text

    if ns.action == "list":
        items = client.data_sources(project)
        if json_out:
            show({"data_sources": items})
            return 0
        table = Table(title=Text(f"data sources of {project}"), title_justify="left")
        for column in ("NAME", "KIND", "SOURCE", "TARGET", "ACCESS"):
            table.add_column(column)
        for d in items:
            source = d.get("path") or d.get("url") or ""
            if d.get("revision"):
                source += f" @ {d['revision']}"
            access = "" if d.get("kind") == "git" else ("read-only" if d.get("read_only", True) else "read-write")
            plain_row(table, d["name"], d.get("kind", ""), source, d.get("target") or "", access)
        out.print(table if items else
                  Text(f"Project {project} has no data sources. Add one: runai data-source add --help"))
        return 0
    if ns.action == "add":
        spec: dict[str, Any] = {"name": ns.name}
        if ns.host_path:
            spec.update(kind="host_path", path=ns.host_path, read_only=not ns.read_write)
        else:
            spec.update(kind="git", url=ns.git)
            if ns.revision:
                spec["revision"] = ns.revision
        if ns.target:
            spec["target"] = ns.target
        created = client.create_data_source(spec, project)
        if json_out:
            show(created)
        else:
            out.print(Text(f"Data source {created['name']} added to project {project}: "
                           f"appears at {created.get('target')}."))
        return 0
    client.delete_data_source(ns.name, project)
    out.print(Text(f"Data source {ns.name} deleted from project {project}."))
    return 0


def run_credential(ns: argparse.Namespace, client: RunaiClient, project: str, json_out: bool,
                   show: Callable[[Any], None], out) -> int:
    from rich.table import Table
    from rich.text import Text

    if ns.action == "list":
        items = client.credentials(project)
        if json_out:
            show({"credentials": items})
            return 0
        table = Table(title=Text(f"credentials of {project}"), title_justify="left")
        for column in ("NAME", "INJECTED AS", "KEYS", "MOUNT PATH"):
            table.add_column(column)
        for c in items:
            plain_row(table, c["name"], c.get("inject_as", ""), ", ".join(c.get("keys", [])), c.get("mount_path") or "")
        out.print(table if items else
                  Text(f"Project {project} has no credentials. Add one: runai credential add --help"))
        return 0
    if ns.action == "add":
        ask = _ask if sys.stdin.isatty() else None
        inject_as = "env" if ns.env else "file"
        data = secret_items(ns.env or ns.file, ask)
        spec: dict[str, Any] = {"name": ns.name, "inject_as": inject_as, "data": data}
        if ns.mount_path:
            spec["mount_path"] = ns.mount_path
        created = client.create_credential(spec, project)
        if json_out:
            show(created)
        else:
            keys = ", ".join(created.get("keys", []))
            out.print(Text(f"Credential {created['name']} stored in project {project} ({inject_as}: {keys})."))
        return 0
    client.delete_credential(ns.name, project)
    out.print(Text(f"Credential {ns.name} deleted from project {project}."))
    return 0
