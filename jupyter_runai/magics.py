"""``%runai`` and ``%%runai``: the `runai` command inside a notebook.

    %load_ext jupyter_runai

    %runai submit train -g 0.5 -- python train.py     # any runai command, same options
    %runai list
    %runai logs train -f

    %%runai submit sweep -g 1 -e LR=0.1
    import os, torch                                   # the cell is the workload's Python script
    print(os.environ["LR"], torch.cuda.device_count())

The line magic runs `runai` with the line's arguments (``%runai --help`` lists the
commands) and returns what it shows as the Python client's objects (``w = %runai submit ...``
is a ``Workload``, ``ws = %runai list`` a ``WorkloadList``); a failure raises
:class:`RunaiMagicError` (a ``RunaiError`` and IPython's ``UsageError``), so "Run all" stops; the cell magic submits the cell's body as a Python script (``--shell``: as a
shell script). The server is found as `runai` finds it (the kernel's own Jupyter
server, JupyterHub's variables, or ``RUNAI_URL``/``RUNAI_TOKEN``). Submit options are
parsed in one place (``jupyter_runai.submit_args``), shared with the CLI.
"""

from __future__ import annotations

import contextlib
import io
import shlex
import sys
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class

from . import cli
from .client import Client, Node, RecordList, RunaiError, WorkloadList

CELL_USAGE = "%%runai submit [NAME] [options] [--shell]: the cell is the workload's script"


class RunaiMagicError(RunaiError, UsageError):
    """A ``%runai`` command that failed: refused by the server (``status``, ``field``, ``allowed``
    as the server said), a bad option, or a ``%%runai`` cell that cannot become a workload. It is
    IPython's ``UsageError`` too: the notebook shows the message without a traceback, and "Run
    all" stops at the cell."""

    def __init__(self, message: str, *, status: int | None = None, field: str | None = None,
                 allowed: Any = None, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(status, message, field, allowed, errors)

    @classmethod
    def from_error(cls, error: BaseException) -> "RunaiMagicError":
        """The magic's error for what the CLI raised, message, field and allowed kept."""
        field, allowed = getattr(error, "field", None), getattr(error, "allowed", None)
        errors = list(getattr(error, "errors", None) or [])
        message = str(getattr(error, "message", None) or error)
        if errors and not field:  # several problems (a submit's options): one line each
            message = "; ".join(str(item.get("message")) for item in errors if item.get("message")) or message
            field, allowed = errors[0].get("field"), errors[0].get("allowed")
        elif len(errors) > 1:  # the server refused for several reasons (policy rules): each with what it allows
            message = "; ".join(_with_allowed(str(item["message"]), item.get("allowed"))
                                for item in errors if item.get("message")) or message
            return cls(message, status=getattr(error, "status", None), field=field, allowed=allowed, errors=errors)
        if field and not message.startswith(str(field)):
            message = f"{field}: {message}"
        message = _with_allowed(message, allowed)
        return cls(message, status=getattr(error, "status", None), field=field, allowed=allowed, errors=errors)


def _with_allowed(message: str, allowed: Any) -> str:
    """``message (allowed: ...)`` unless the message says it already or there is nothing to say."""
    if allowed in (None, "", []) or "allowed:" in message:
        return message
    return f"{message} (allowed: {', '.join(map(str, allowed)) if isinstance(allowed, list) else allowed})"


def cell_command(line: str, cell: str) -> list[str]:
    """The `runai` arguments for a ``%%runai`` cell: the line's options, then the cell as the command."""
    argv = shlex.split(line)
    if not argv or argv[0] != "submit":
        raise RunaiMagicError(f"the cell magic only submits: {CELL_USAGE}")
    if "--" in argv:
        raise RunaiMagicError("the cell is the command: remove '-- ...' from the line")
    shell = "--shell" in argv
    argv = [a for a in argv if a != "--shell"]
    if not cell.strip():
        raise RunaiMagicError("the cell is empty: write the script the workload runs")
    return argv + (["--", "sh", "-c", cell] if shell else ["--", "python", "-c", cell])


#: commands whose result the magic returns as objects (the CLI's printing of it is left out)
OBJECT_ACTIONS = ("submit", "list", "describe", "stop", "resume", "delete", "nodes")


def run_magic(argv: list[str], client: Client | None = None) -> Any:
    """Run a `runai` command for ``%runai``: returns what it shows (a :class:`Workload`, a
    :class:`WorkloadList`, a list of :class:`Node`; with ``-o json|yaml`` the API's document; ``None``
    for the commands that only print) and raises :class:`RunaiMagicError` on any failure."""
    argv = list(argv) or ["--help"]  # a bare %runai: the commands, not an error
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):  # argparse's usage errors, to raise them
            code, ns = cli.run(argv, print_result=False, raise_errors=True)
    except (RunaiError, ValueError, cli._Usage) as exc:
        # RunaiError: the server's refusal; ValueError: SubmitArgsError, AdminUsage, CredentialValueError
        raise RunaiMagicError.from_error(exc) from None
    except TimeoutError as exc:  # submit --wait --wait-timeout
        raise RunaiMagicError(str(exc)) from None
    finally:
        sys.stderr.write(captured.getvalue())  # shown as the CLI shows it (usage, warnings)
    result = getattr(ns, "result", None)
    if code != 0 and isinstance(result, dict) and (result.get("status") or {}).get("phase") == "Failed":
        # submit --wait: it ran, and failed
        status = result["status"]
        raise RunaiMagicError(f"workload {result.get('spec', {}).get('name')!r} failed"
                              + (f": {status['message']}" if status.get("message") else ""))
    if code != 0:
        lines = [line for line in captured.getvalue().splitlines() if line.strip()]
        raise RunaiMagicError(lines[-1] if lines else f"`runai {shlex.join(argv)}` failed (exit code {code})")
    action = getattr(ns, "run_action", None)
    if ns is None or ns.result is None or action not in OBJECT_ACTIONS:
        return None
    if getattr(ns, "output", "table") in ("json", "yaml"):
        return ns.result  # the API's document, as asked
    client = client or Client(getattr(ns, "url", None), getattr(ns, "token", None))
    if action == "list":
        return WorkloadList(client.workload(w) for w in ns.result)
    if action == "nodes":
        return RecordList(Node(n) for n in ns.result)
    return client.workload(ns.result)


@magics_class
class RunaiMagics(Magics):
    @line_cell_magic
    def runai(self, line: str, cell: str | None = None) -> Any:
        """Run a `runai` command (line), or submit the cell as a workload's script (cell).

        ``w = %runai submit ...`` is the :class:`jupyter_runai.client.Workload` (``w.wait()``,
        ``w.logs()``, ``w.stop()``, ...); ``ws = %runai list`` the list of them; describe, stop,
        resume and delete return the workload too, ``nodes`` the nodes. Any failure raises
        :class:`RunaiMagicError` (IPython's ``UsageError``) with the server's message, field and
        allowed values, so "Run all" stops there. ``%runai --help`` lists the commands and
        ``%runai submit --help`` every submit option (the CLI's, docs/cli.md)."""
        try:
            argv = shlex.split(line) if cell is None else cell_command(line, cell)
        except ValueError as exc:  # shlex: unbalanced quotes
            raise RunaiMagicError(f"cannot split the line: {exc}") from None
        return run_magic(argv)


def load_ipython_extension(ipython) -> None:
    """``%load_ext jupyter_runai.magics`` (or ``%load_ext jupyter_runai``)."""
    ipython.register_magics(RunaiMagics)
