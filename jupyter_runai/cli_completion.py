"""``runai completion bash|zsh``: a shell completion script for every command and option.

The script is generated from the `runai` parser itself by shtab, as a static script: once it is
installed, pressing Tab runs the shell's own functions, never Python, so completion costs nothing
and `runai`'s start-up stays as it is (shtab is imported only by this command). Options whose
values are a fixed list (``--kind``, ``--priority-class``, ``--phase``; ``-o`` has argparse choices)
complete to that list, options that take a file or a directory complete paths. Regenerate the
script after an upgrade that adds commands (docs/cli.md).
"""

from __future__ import annotations

import argparse
from typing import Any, Callable, Iterator

SHELLS = ("bash", "zsh")

EPILOG = """\
install (once; open a new shell afterwards):
  bash:  runai completion bash > ~/.local/share/bash-completion/completions/runai
  zsh:   runai completion zsh > "${fpath[1]}/_runai"     (a directory on $fpath)
or, for this shell only:
  source <(runai completion bash)
The script is static: run it again after an upgrade that adds commands or options.
"""

# shtab's own names for path completion (its FILE and DIRECTORY), spelled here so that nothing
# but completion_script imports shtab
FILES = {"bash": "_shtab_compgen_files", "zsh": "_files", "tcsh": "f"}
DIRECTORIES = {"bash": "_shtab_compgen_dirs", "zsh": "_files -/", "tcsh": "d"}


def add_completion_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    """`runai completion SHELL`, with ``command(name, help, description, epilog)`` of cli.build_parser."""
    parser = command("completion", "print a shell completion script (bash or zsh) to install",
                     "Print a completion script for bash or zsh.\n\nTab then completes every `runai` "
                     "command, verb and option, and the values\nof options that have a fixed list (-o, --kind, "
                     "--priority-class, --phase)\nor take a path (-f, --working-dir, --python-env).", EPILOG)
    parser.add_argument("shell", metavar="SHELL", choices=SHELLS, help="bash or zsh")
    parser.set_defaults(run_action="completion")


def _words(name: str, values: list[str]) -> dict[str, Any]:
    """Completion to a fixed list of words: a bash function (in the script's preamble) and zsh's
    ``(a b c)`` form."""
    function = f"_runai_complete_{name}"
    return {
        "bash": function,
        "zsh": "(" + " ".join(values) + ")",
        "preamble": {"bash": f"{function}() {{\n  compgen -W \"{' '.join(values)}\" -- \"$1\"\n}}\n"},
    }


def value_completions() -> dict[str, dict[str, Any]]:
    """What the value of each option completes to, by the option's destination."""
    from .models.priority import PriorityClass
    from .models.workload import WorkloadPhase
    from .submit_args import KINDS

    return {
        "kind": _words("kinds", list(KINDS)),
        "priority_class": _words("priority_classes", [c.value for c in PriorityClass]),
        "phase": _words("phases", [p.value for p in WorkloadPhase]),
        "file": FILES,
        "python_env": DIRECTORIES,
        "working_dir": DIRECTORIES,
    }


def _actions(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    """Every option of ``parser`` and of its subcommands, at every depth."""
    for action in parser._actions:
        yield action
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):  # aliases share one parser
                yield from _actions(sub)


def completion_script(shell: str, parser: argparse.ArgumentParser | None = None) -> str:
    """The completion script of ``shell`` for ``parser`` (default: the whole `runai` parser)."""
    if shell not in SHELLS:
        raise ValueError(f"shell: {shell!r} is not one of {', '.join(SHELLS)}")
    import shtab

    if parser is None:
        from .cli import build_parser

        parser = build_parser()  # no command line: every command with all its options
    completions = value_completions()
    for action in _actions(parser):
        if action.option_strings and action.nargs != 0 and action.dest in completions and not action.choices:
            action.complete = completions[action.dest]  # type: ignore[attr-defined]
    return shtab.complete(parser, shell=shell)


def run_completion(ns: Any) -> int:
    import sys

    sys.stdout.write(completion_script(ns.shell))
    sys.stdout.flush()
    return 0
