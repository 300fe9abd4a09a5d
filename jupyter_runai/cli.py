"""``runai``: the command line of jupyter-runai (see docs/cli.md).

Every command is one or two REST calls through :class:`jupyter_runai.client.RunaiClient`;
the submit options come from :mod:`jupyter_runai.submit_args` (shared with the
``%runai`` magics). ``-o json`` prints the API's JSON document unchanged.

The tables are drawn by :mod:`jupyter_runai.cli_render` (rich). This module imports only what
parsing needs: the client (requests), rich and the pydantic models are imported by the commands
that use them, so that ``runai --help`` and ``runai list`` start about as fast as Python does
(benchmarks/cli_startup.py; tests/test_cli_args.py and tests/test_cli_e2e.py check what the commands
import).

Exit codes: 0 ok, 1 an error from (or on the way to) the server, 2 a usage error
(bad option or value, caught before any network call), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Any, Sequence

from .cli_access import add_access_command
from .cli_admin import add_admin_commands
from .cli_completion import add_completion_command
from .cli_monitor import MONITOR_COMMANDS, add_monitor_commands
from .cli_policy import add_policy_command
from .cli_data import add_data_commands
from .submit_args import DESCRIPTION as SUBMIT_DESCRIPTION
from .submit_args import EPILOG as SUBMIT_EPILOG
from .submit_args import PROJECT_DEFAULT
from .submit_args import SubmitArgsError, add_submit_arguments, spec_from_args, split_command

if TYPE_CHECKING:
    from .client import RunaiClient

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

# Names that live in cli_render (rich), served from here on first use.
_RENDER_NAMES = {
    "age_text": "age_text",
    "gpu_request_text": "gpu_request_text",
    "workload_request_text": "workload_request_text",
    "render_describe": "render_describe",
    "render_nodes": "render_nodes",
    "render_projects": "render_projects",
    "render_workloads": "render_workloads",
    "_print_error": "print_error",
    "_stdout": "stdout_console",
    "_stderr": "stderr_console",
}


def __getattr__(name: str) -> Any:
    if name in _RENDER_NAMES:
        from . import cli_render

        return getattr(cli_render, _RENDER_NAMES[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


EXIT_OK, EXIT_SERVER, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

#: -o: tables for people (wide: more columns), the API's documents for scripts
OUTPUTS = ("table", "wide", "json", "yaml", "csv")
CSV_COMMANDS = ("report",)
"""The commands that write CSV (-o csv)."""

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


# =========================================================================== parser


BY_NAME = ("data-source", "credential", "projects", "departments", "nodepools", "audit", "access", "policy", *MONITOR_COMMANDS)
"""Commands dispatched by their name (their own sub-actions), not by ``run_action``."""


def _common_options() -> argparse.ArgumentParser:
    """Options every command takes, before or after the command name."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("server and output")
    group.add_argument("--url", default=argparse.SUPPRESS,
                       help="the Jupyter server's URL, e.g. http://localhost:8888/ (default: found by itself)")
    group.add_argument("--token", default=argparse.SUPPRESS,
                       help="the Jupyter server's token (default: $RUNAI_TOKEN, or the found server's)")
    group.add_argument("-p", "--project", default=argparse.SUPPRESS,
                       help=f"project to work in (default: {PROJECT_DEFAULT})")
    group.add_argument("-o", "--output", choices=OUTPUTS, default=argparse.SUPPRESS,
                       help="table (default); wide: a table with more columns (list); json or yaml: the "
                            "API's document, for scripts; csv: rows for a spreadsheet (report)")
    return common


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)


# Run:ai's v2 command tree: `runai <group> <verb>`, each group one kind of workload.
KIND_GROUPS = {
    "workspace": ("workspace", "workspaces: interactive, not preemptible (Run:ai's `runai workspace`)"),
    "training": ("training", "training jobs: one pod, preemptible (Run:ai's `runai training`)"),
    "inference": ("inference", "inference endpoints: replicas behind one URL (Run:ai's `runai inference`)"),
}
TRAINING_SUBGROUPS = {
    "pytorch": ("distributed", "distributed training: a master and workers started together "
                               "(Run:ai's `runai training pytorch`)"),
    "standard": ("training", "training jobs: one pod, preemptible (Run:ai's `runai training standard`)"),
}


def _add_list(add: Any, kind: str | None, words: str) -> None:
    what = f"{kind} workloads" if kind else "workloads"
    listing = add("list", f"list {what}: GPU request, status, age, and why pending ones wait (every page "
                          f"of a long list, read 1000 at a time)",
                  epilog=f"examples:\n  {words} list\n  {words} list -A --phase Pending\n  {words} list -o json")
    listing.add_argument("-A", "--all-projects", action="store_true",
                         help="every project (the default when neither -p, $RUNAI_PROJECT nor a saved project "
                              "names one)")
    listing.add_argument("--phase", help="only this phase: Pending, Running, Stopped, Succeeded, Failed, ...")
    if kind is None:
        listing.add_argument("--kind", "--type", dest="kind",
                             help="only this kind: workspace, training, distributed, inference")
    listing.set_defaults(run_action="list", kind=kind)


def _add_workload_verbs(add: Any, kind: str | None, group: str | None = None, submit_note: str = "") -> None:
    """The verbs on workloads: submit, list, describe, logs, stop (suspend), resume, delete.

    ``add(name, help, description=None, epilog=None, **kw)`` makes a subcommand's parser; ``kind`` is
    the kind a Run:ai group stands for (None: ours, all kinds). ``group`` is the words between `runai`
    and the verb, for the examples. ``submit_note`` ends the submit help (the policy in force)."""
    words = f"runai {group}" if group else "runai"
    example_name = {"workspace": "nb", "inference": "llm", "distributed": "ddp"}.get(kind or "", "bert")

    description = SUBMIT_DESCRIPTION
    if kind is not None:
        description = (f"Submit a {kind} workload: the same options as `runai submit --kind {kind}`.\n"
                       "Resources are per pod. Everything after `--` is the command: several words run\n"
                       "as they are; one quoted string runs in a shell.\n")
    submit = add("submit", f"submit a {kind or 'workload (training, distributed, workspace or inference)'}",
                 description, SUBMIT_EPILOG + submit_note, usage=f"{words} submit [NAME] [options] [-- COMMAND ...]")
    add_submit_arguments(submit, project_option=False, kind=kind)
    submit.add_argument("--wait", action="store_true",
                        help="wait (with a spinner) until it runs or finishes, showing why it waits")
    submit.add_argument("--wait-timeout", type=float, default=None, metavar="SECONDS",
                        help="with --wait: give up after this long (exit 1)")
    submit.set_defaults(run_action="submit")

    _add_list(add, kind, words)

    describe = add("describe", "show a workload: spec, pods (node, devices, fraction), pending reason, events",
                   epilog=f"example:\n  {words} describe {example_name} -p team-a")
    describe.add_argument("name", metavar="NAME")
    describe.set_defaults(run_action="describe")

    logs = add("logs", "print a pod's log (-f to follow it)",
               epilog=f"examples:\n  {words} logs {example_name}\n  {words} logs {example_name} --pod 1 --tail 50 -f\n"
                      f"  {words} logs {example_name} --timestamps --since 10m")
    logs.add_argument("name", metavar="NAME")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing until the pod ends")
    logs.add_argument("--pod", type=int, default=None, metavar="N", help="pod index (default 0: the master or first)")
    logs.add_argument("--tail", type=int, default=None, metavar="N", help="only the last N lines")
    logs.add_argument("--timestamps", action="store_true",
                      help="put the time each line arrived before it (RFC 3339, UTC; '-' where none was "
                           "recorded), and again after each \\r in it, so a progress bar keeps its time")
    logs.add_argument("--since", type=_since, default=None, metavar="DURATION",
                      help="only the lines that arrived in the last DURATION (90, 30s, 10m, 1h30m, 2d)")
    logs.set_defaults(run_action="logs")

    # Run:ai calls it suspend; ours was stop: both names everywhere
    first, second = ("suspend", "stop") if group else ("stop", "suspend")
    stop = add(first, "stop a workload (it stays, and can be resumed)", aliases=[second],
               epilog=f"example:\n  {words} {first} {example_name}")
    stop.add_argument("name", metavar="NAME")
    stop.set_defaults(run_action="stop")
    resume = add("resume", "put a stopped or finished workload back in the queue",
                 epilog=f"example:\n  {words} resume {example_name}\n\nIt is admitted again under the "
                 "policies in force now (runai policy effective KIND -p PROJECT):\nrefused, with every rule it "
                 "breaks, where they changed since it was submitted.")
    resume.add_argument("name", metavar="NAME")
    resume.set_defaults(run_action="resume")

    delete = add("delete", "stop a workload and remove it (asks first unless -y)",
                 epilog=f"example:\n  {words} delete {example_name} -y")
    delete.add_argument("name", metavar="NAME")
    delete.add_argument("-y", "--yes", action="store_true",
                        help="do not ask (required when not run from a terminal)")
    delete.set_defaults(run_action="delete")


# global options that take a value: the word after them is not the command
_VALUE_OPTIONS = ("--url", "--token", "-p", "--project", "-o", "--output")


def _command_word(options: Sequence[str]) -> str | None:
    """The command of a `runai` command line (``list`` in ``runai -o json list -A``), if any."""
    skip = False
    for word in options:
        if skip:
            skip = False
        elif word in _VALUE_OPTIONS:
            skip = True
        elif not word.startswith("-"):
            return word
    return None


def build_parser(argv: Sequence[str] | None = None, submit_note: str = "") -> argparse.ArgumentParser:
    """The `runai` parser with its subcommands: ours (`runai submit`, `runai list`, ...) and Run:ai's v2
    tree (`runai workspace submit`, `runai training pytorch list`, `runai workload list`, ...), all on the
    one submit parser of :mod:`jupyter_runai.submit_args`.

    Given the command line ``argv``, only the options of the command it names are built (the other
    commands are there by name and help, for `runai --help` and for refusing a typo): building all
    of them, six submit parsers included, took a tenth of `runai list`'s time. ``submit_note`` ends
    the submit commands' help (:mod:`jupyter_runai.cli_submit_help`)."""
    wanted = _command_word(argv) if argv is not None else None
    lazy = argv is not None
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog="runai", description=MAIN_DESCRIPTION, epilog=MAIN_EPILOG, parents=[common], formatter_class=_Formatter,
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"runai (jupyter-runai) {__version__}")
    sub = parser.add_subparsers(dest="subcommand", metavar="COMMAND", title="commands")

    def adder(subparsers: Any, prog_words: str = "") -> Any:
        def add(name: str, help: str, description: str | None = None, epilog: str | None = None, **kw: Any):
            return subparsers.add_parser(name, help=help,
                                         description=description or help[0].upper() + help[1:] + ".",
                                         epilog=epilog, parents=[common], formatter_class=_Formatter, **kw)
        return add

    full_command = adder(sub)

    def command(name: str, help: str, description: str | None = None, epilog: str | None = None, **kw: Any):
        if lazy and wanted not in (name, *kw.get("aliases", ())):
            # a command not being run: listed by name, its options not built
            sub.add_parser(name, help=help, aliases=kw.get("aliases", ()), add_help=False)
            return argparse.ArgumentParser(add_help=False)
        return full_command(name, help, description, epilog, **kw)

    def skipped(name: str) -> bool:
        return lazy and wanted != name

    _add_workload_verbs(command, None, submit_note=submit_note)
    for group, (kind, help) in KIND_GROUPS.items():
        group_parser = command(group, help)
        if skipped(group):
            continue
        verbs = group_parser.add_subparsers(dest="verb", metavar="VERB", title="verbs", required=True)
        _add_workload_verbs(adder(verbs), kind, group, submit_note)
        if group == "training":
            for name, (sub_kind, sub_help) in TRAINING_SUBGROUPS.items():
                sub_parser = adder(verbs)(name, sub_help)
                sub_verbs = sub_parser.add_subparsers(dest="sub_verb", metavar="VERB", title="verbs", required=True)
                _add_workload_verbs(adder(sub_verbs), sub_kind, f"training {name}", submit_note)
    workload = command("workload", "workloads of every kind (Run:ai's `runai workload`)")
    if not skipped("workload"):
        _add_workload_group(workload, adder)
    config = command("config", "settings of this command line, saved for later commands (a default project)")
    if not skipped("config"):
        _add_config_group(config, adder)

    command("nodes", "list nodes and their GPUs with allocated fractions (virtual GPUs marked)").set_defaults(
        run_action="nodes")
    command("serve", "run the scheduler once for a whole JupyterHub, as a hub service (runai serve --help)")
    add_admin_commands(command, common)
    add_access_command(command, common)
    add_monitor_commands(command)
    add_policy_command(command, common)
    add_data_commands(command, common)
    add_completion_command(command)
    return parser


def _add_workload_group(workload: argparse.ArgumentParser, adder: Any) -> None:
    """`runai workload list|describe` (Run:ai's verbs over every kind)."""
    workload_verbs = workload.add_subparsers(dest="verb", metavar="VERB", title="verbs", required=True)
    add = adder(workload_verbs)
    _add_list(add, None, "runai workload")
    describe = add("describe", "show a workload: spec, pods (node, devices, fraction), pending reason, events")
    describe.add_argument("name", metavar="NAME")
    describe.set_defaults(run_action="describe")


def _add_config_group(config: argparse.ArgumentParser, adder: Any) -> None:
    """`runai config project [NAME | --unset]`."""
    config_verbs = config.add_subparsers(dest="verb", metavar="SETTING", title="settings", required=True)
    project = adder(config_verbs)(
        "project", "show the default project, or save one (a project the server has)",
        epilog="examples:\n  runai config project team-a     every later command works in team-a\n"
               "  runai config project            which project, and where it comes from\n"
               "  runai config project --unset    forget it\n"
               "-p and $RUNAI_PROJECT still win over the saved project.")
    project.add_argument("name", metavar="NAME", nargs="?", help="the project to work in from now on")
    project.add_argument("--unset", action="store_true", help="forget the saved project")
    project.set_defaults(run_action="config")


# =========================================================================== commands


class _Usage(Exception):
    """A usage error found after parsing: exit 2."""


def _refusal(message: str, field: str | None = None, allowed: Any = None) -> Exception:
    """A refusal decided against what the server says (a name it does not have): shown and exited
    like the server's own errors (exit 1)."""
    from .client import RunaiError

    return RunaiError(None, message, field, allowed)


def _show(ns: argparse.Namespace, document: Any) -> None:
    """Print an API document as ``-o json`` or ``-o yaml`` asked (unchanged: the API's own fields)."""
    if getattr(ns, "output", None) == "yaml":
        import yaml

        sys.stdout.write(yaml.safe_dump(document, sort_keys=False, allow_unicode=True, default_flow_style=False))
    else:
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    sys.stdout.flush()


def _wide(ns: argparse.Namespace) -> bool:
    return getattr(ns, "output", None) == "wide"


def _project_of(ns: argparse.Namespace) -> str | None:
    """``-p``, else ``$RUNAI_PROJECT`` or the saved project; ``None`` lets the client ask the
    server for the first project the caller may submit to."""
    from .client import default_project

    return getattr(ns, "project", None) or default_project()


def _cmd_submit(ns: argparse.Namespace, client: RunaiClient, json_out: bool, command: list[str] | None) -> int:
    spec = spec_from_args(ns, command)  # SubmitArgsError -> exit 2, before any network call
    if getattr(ns, "attach", False) and json_out:
        raise _Usage("--attach prints the workload's log: it does not go with -o json or -o yaml")
    from rich.text import Text

    from .cli_render import error_line, phase_text, stderr_console, stdout_console, workload_request_text

    out, err = stdout_console(), stderr_console()
    workload = ns.result = client.submit(spec)
    name = workload.get("spec", {}).get("name", spec["name"])
    project = workload.get("spec", {}).get("project", spec.get("project"))
    if not ns.wait and not ns.attach:
        if not ns.print_result:
            pass
        elif json_out:
            _show(ns, workload)
        else:
            request = workload_request_text(workload.get("spec", {}))
            kind = workload.get("spec", {}).get("kind", "training")
            out.print(Text.assemble(f"Submitted {kind} workload ", (str(name), "bold"), f" in project {project}",
                                    f", requesting {request}." if request != "-" else ", no GPU."))
            out.print(Text(f"  runai describe {name} -p {project}    runai logs {name} -p {project} -f"))
        return EXIT_OK

    def until(w: dict[str, Any]) -> bool:
        return w.get("status", {}).get("phase") not in ("Pending", None)

    if not json_out and ns.print_result:
        out.print(Text.assemble("Submitted ", (str(name), "bold"), f" in project {project}."))
    try:
        with err.status(Text(f"waiting for {name} to be scheduled...")) as spinner:
            def update(w: dict[str, Any]) -> None:
                status = w.get("status", {})
                reason = status.get("pending_reason")
                spinner.update(Text(f"{name}: {status.get('phase')}" + (f" - {reason}" if reason else "")))

            workload = client.wait(name, project, until=until, timeout=ns.wait_timeout, on_update=update)
    except TimeoutError as exc:
        if not ns.print_result:
            raise
        err.print(error_line(exc))
        return EXIT_SERVER
    ns.result = workload
    phase = workload.get("status", {}).get("phase")
    if not ns.print_result:
        pass
    elif json_out:
        _show(ns, workload)
    else:
        url = workload.get("status", {}).get("url")
        out.print(Text(f"{name}: "), phase_text(phase), Text(f"  {url}" if url else ""), sep="")
        if workload.get("status", {}).get("message"):
            out.print(Text(f"  {workload['status']['message']}"))
    if ns.attach:
        from .cli_attach import attach

        workload = ns.result = attach(client, name, project, out if ns.print_result else None)
        phase = workload.get("status", {}).get("phase")
    return EXIT_SERVER if phase == "Failed" else EXIT_OK


def _cmd_list(ns: argparse.Namespace, client: RunaiClient, json_out: bool) -> int:
    project = None if ns.all_projects else (getattr(ns, "project", None) or _env_project())
    # every page of the list, read with limit/continue (the whole list in one document)
    document = {"workloads": client.list_workloads(project, ns.phase, ns.kind)}
    ns.result = document["workloads"]
    if not ns.print_result:
        pass
    elif json_out:
        _show(ns, document)
    else:
        from .cli_render import render_workloads, stdout_console

        stdout_console().print(render_workloads(document.get("workloads", []), wide=_wide(ns)))
    return EXIT_OK


def _env_project() -> str | None:
    from .client import saved_project

    return os.environ.get("RUNAI_PROJECT") or saved_project()


def _cmd_config(ns: argparse.Namespace, client: RunaiClient, json_out: bool) -> int:
    """`runai config project [NAME | --unset]`: show, save or forget the default project."""
    from .client import config_path, save_settings, saved_project

    if ns.unset and ns.name is not None:
        raise _Usage("give a project NAME to save, or --unset to forget the saved one, not both")
    if ns.unset:
        path = save_settings({"project": None})
        print(f"No saved default project now ({path}).")
        return EXIT_OK
    if ns.name is None:
        env, saved = os.environ.get("RUNAI_PROJECT"), saved_project()
        project, source = ((env, "$RUNAI_PROJECT") if env else (saved, str(config_path())) if saved
                           else ("(the server's first project you may submit to)",
                                 "nothing saved, nor $RUNAI_PROJECT"))
        if json_out:
            _show(ns, {"project": project, "source": source})
        else:
            print(f"{project} (from {source})")
        return EXIT_OK
    # only a project the server has: a typo saved here would send every later command astray
    names = [project.get("name") for project in client.get_json("projects").get("projects", [])]
    if ns.name not in names:
        raise _refusal(f"project: no project {ns.name!r}", field="project", allowed=names)
    path = save_settings({"project": ns.name})
    print(f"Default project: {ns.name} (saved in {path}; -p and $RUNAI_PROJECT still win).")
    return EXIT_OK


def _cmd_describe(ns: argparse.Namespace, client: RunaiClient, json_out: bool) -> int:
    workload = ns.result = client.get(ns.name, _project_of(ns))
    if not ns.print_result:
        pass
    elif json_out:
        _show(ns, workload)
    else:
        from .cli_render import render_describe, stdout_console

        stdout_console().print(render_describe(workload, server_url=client.url))
    return EXIT_OK


def _since(text: str) -> int:
    """``--since``: whole seconds (at least 1) from a duration such as ``10m``."""
    import math  # noqa: PLC0415

    from .models.queues import parse_duration  # noqa: PLC0415 - the models only when it is used

    try:
        seconds = parse_duration(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (examples: 90, 30s, 10m, 1h30m, 2d)") from None
    return max(1, math.ceil(seconds))


def _cmd_logs(ns: argparse.Namespace, client: RunaiClient, json_out: bool) -> int:
    # with times: a progress bar's \r would go back over its line's time in a terminal or a
    # notebook; the time is repeated after it (log_text.Restamper)
    from .log_text import Restamper  # noqa: PLC0415

    restamp = Restamper() if ns.timestamps else None
    for chunk in client.logs(ns.name, _project_of(ns), pod=ns.pod, follow=ns.follow, tail=ns.tail,
                             timestamps=ns.timestamps, since_seconds=ns.since):
        sys.stdout.write(restamp.feed(chunk) if restamp else chunk)
        sys.stdout.flush()
    if restamp:
        sys.stdout.write(restamp.end())
        sys.stdout.flush()
    return EXIT_OK


def _cmd_action(action: str, ns: argparse.Namespace, client: RunaiClient, json_out: bool) -> int:
    project = _project_of(ns)
    if action == "delete" and not ns.yes:
        if not sys.stdin.isatty():
            raise _Usage(f"not deleting {ns.name!r} without confirmation: input is not a terminal; pass -y")
        answer = input(f"Delete workload {ns.name!r} in project {project!r}? Its pods are stopped. [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("Not deleted.", file=sys.stderr)
            return EXIT_OK
    workload = ns.result = getattr(client, action)(ns.name, project)
    if not ns.print_result:
        pass
    elif json_out:
        _show(ns, workload)
    else:
        phase = (workload or {}).get("status", {}).get("phase")
        verb = {"stop": "stopping", "resume": "resumed", "delete": "deleting"}[action]
        print(f"{ns.name}: {verb}" + (f" (phase {phase})" if phase else ""))
    return EXIT_OK


def _cmd_nodes(ns: argparse.Namespace, client: RunaiClient, json_out: bool) -> int:
    from .client import RunaiError, node_view_refusal

    try:
        document = client.get_json("nodes")
    except RunaiError as error:
        refusal = node_view_refusal(error)
        if refusal is None:
            raise
        _error(refusal)
        return EXIT_SERVER
    ns.result = document.get("nodes", [])
    if not ns.print_result:
        pass
    elif json_out:
        _show(ns, document)
    else:
        from .cli_render import render_nodes, stdout_console

        stdout_console().print(render_nodes(document.get("nodes", [])))
    return EXIT_OK


def _error(message: Any) -> None:
    """`error: <message>` on stderr (rich only when it is a terminal, for the colour)."""
    if sys.stderr.isatty():
        from .cli_render import error_line, stderr_console

        stderr_console().print(error_line(message))
    else:
        print(f"error: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run `runai` with ``argv`` (default: the command line); returns the exit code."""
    return run(list(sys.argv[1:] if argv is None else argv))[0]


def run(argv: Sequence[str], *, print_result: bool = True,
        raise_errors: bool = False) -> tuple[int, argparse.Namespace | None]:
    """Run one `runai` command: the exit code and the parsed options, whose ``result`` is the API
    document the command showed (a workload, the list of workloads or nodes; ``None`` for the
    others). ``print_result=False`` leaves that document unprinted (the ``%runai`` magic shows it
    as objects); ``raise_errors=True`` raises the server's and the usage errors (``RunaiError``,
    ``SubmitArgsError``, ...) instead of printing them and returning 1 or 2 (argparse's own usage
    errors still print and give 2)."""
    argv = list(argv)
    if argv[:1] == ["serve"]:  # the scheduler itself, for a JupyterHub: its own options (serve.py)
        from .serve import main as serve

        return serve(argv[1:]), None
    options, command = split_command(argv)
    submit_note = ""
    if "-h" in options or "--help" in options:  # a submit command's help ends with the policy in force
        from .cli_submit_help import policy_note, submit_help_target

        target = submit_help_target(options)
        submit_note = policy_note(target) if target is not None else ""
    parser = build_parser(options, submit_note)
    try:
        ns = parser.parse_args(options)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0), None
    ns.result, ns.print_result = None, print_result
    if ns.subcommand is None:
        parser.print_help()
        return EXIT_USAGE, ns
    action = ns.subcommand if ns.subcommand in BY_NAME else getattr(ns, "run_action", None)
    if getattr(ns, "output", None) == "csv" and ns.subcommand not in CSV_COMMANDS:
        if raise_errors:
            raise _Usage(f"-o csv is for {', '.join(CSV_COMMANDS)}; `runai {ns.subcommand}` takes table, wide, "
                         f"json or yaml")
        _error(f"-o csv is for {', '.join(CSV_COMMANDS)}; `runai {ns.subcommand}` takes table, wide, json or yaml")
        return EXIT_USAGE, ns
    if command is not None and action != "submit":
        if raise_errors:
            raise _Usage(f"`runai {ns.subcommand}` takes no command after '--'")
        _error(f"`runai {ns.subcommand}` takes no command after '--'")
        return EXIT_USAGE, ns

    from .cli_access import AccessUsage
    from .cli_admin import AdminUsage
    from .cli_data import CredentialValueError
    from .client import RunaiClient, RunaiError

    json_out = getattr(ns, "output", "table") in ("json", "yaml")  # a document, not a table
    client = RunaiClient(getattr(ns, "url", None), getattr(ns, "token", None), project=_project_of(ns))
    try:
        return _dispatch(action, ns, client, json_out, command), ns
    except (SubmitArgsError, RunaiError) as exc:
        if raise_errors:
            raise
        from .cli_render import print_error, stderr_console

        print_error(exc, stderr_console())
        return (EXIT_USAGE if isinstance(exc, SubmitArgsError) else EXIT_SERVER), ns
    except (_Usage, CredentialValueError, AdminUsage, AccessUsage) as exc:
        if raise_errors:
            raise
        _error(exc)
        return EXIT_USAGE, ns
    except KeyboardInterrupt:
        if raise_errors:
            raise
        return EXIT_INTERRUPTED, ns
    except BrokenPipeError:  # `runai logs x | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK, ns
    finally:
        client.close()


def _dispatch(action: str, ns: argparse.Namespace, client: RunaiClient, json_out: bool,
              command: list[str] | None) -> int:
    """Run the parsed command (errors are raised, for ``run`` to show or pass on)."""
    if action == "submit":
        return _cmd_submit(ns, client, json_out, command)
    if action == "completion":
        from .cli_completion import run_completion

        return run_completion(ns)
    if action in ("stop", "resume", "delete"):
        return _cmd_action(action, ns, client, json_out)
    if action in ("data-source", "credential"):
        from .cli_render import stdout_console
        from .cli_data import run_credential, run_data_source

        runner = run_data_source if action == "data-source" else run_credential
        return runner(ns, client, _project_of(ns), json_out, lambda document: _show(ns, document), stdout_console())
    if action == "access":
        from .cli_access import run_access
        from .cli_render import stdout_console

        return run_access(ns, client, json_out, lambda document: _show(ns, document), stdout_console())
    if action in MONITOR_COMMANDS:
        from .cli_monitor import run_monitor

        return run_monitor(ns, client, lambda document: _show(ns, document))
    if action == "policy":
        from .cli_policy import run_policy
        from .cli_render import stdout_console

        return run_policy(ns, client, json_out, lambda document: _show(ns, document), stdout_console())
    if action in ("projects", "departments", "nodepools", "audit"):
        from .cli_admin import run_admin, run_audit
        from .cli_render import render_projects, stdout_console

        if action == "audit":
            return run_audit(ns, client, json_out, lambda document: _show(ns, document), stdout_console())
        return run_admin(ns, client, json_out, lambda document: _show(ns, document), stdout_console(),
                         render_projects)
    handler = {
        "list": _cmd_list,
        "describe": _cmd_describe,
        "logs": _cmd_logs,
        "nodes": _cmd_nodes,
        "config": _cmd_config,
    }[action]
    return handler(ns, client, json_out)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
