"""``%runai`` and ``%%runai``: the `runai` command inside a notebook.

    %load_ext jupyter_runai

    %runai submit train -g 0.5 -- python train.py     # any runai command, same options
    %runai list
    %runai logs train -f

    %%runai submit sweep -g 1 -e LR=0.1
    import os, torch                                   # the cell is the workload's Python script
    print(os.environ["LR"], torch.cuda.device_count())

The line magic runs `runai` with the line's arguments (``%runai --help`` lists the
commands); the cell magic submits the cell's body as a Python script (``--shell``: as a
shell script). The server is found as `runai` finds it (the kernel's own Jupyter
server, JupyterHub's variables, or ``RUNAI_URL``/``RUNAI_TOKEN``). Submit options are
parsed in one place (``jupyter_runai.submit_args``), shared with the CLI.
"""

from __future__ import annotations

import shlex

from IPython.core.magic import Magics, line_cell_magic, magics_class

from . import cli

CELL_USAGE = "%%runai submit [NAME] [options] [--shell]: the cell is the workload's script"


class RunaiMagicError(ValueError):
    """A ``%%runai`` cell that cannot become a workload; the message says why."""


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


@magics_class
class RunaiMagics(Magics):
    @line_cell_magic
    def runai(self, line: str, cell: str | None = None) -> int | None:
        """Run a `runai` command (line), or submit the cell as a workload's script (cell)."""
        try:
            argv = shlex.split(line) if cell is None else cell_command(line, cell)
        except (ValueError, RunaiMagicError) as exc:  # shlex: unbalanced quotes
            print(f"error: {exc}")
            return 2
        code = cli.main(argv)
        return code if code else None  # nothing shown for success


def load_ipython_extension(ipython) -> None:
    """``%load_ext jupyter_runai.magics`` (or ``%load_ext jupyter_runai``)."""
    ipython.register_magics(RunaiMagics)
