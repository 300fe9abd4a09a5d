"""`runai completion bash|zsh`: the scripts generate (from the one `runai` parser, with no server
running) and complete what a user types: commands, Run:ai's v2 verbs, options and their values.
The bash script is loaded into a real bash and asked for completions as bash itself asks."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from jupyter_runai.models import PriorityClass
from jupyter_runai.submit_args import KINDS

COMMANDS = ("submit", "list", "describe", "logs", "stop", "suspend", "resume", "delete", "workspace",
            "training", "inference", "workload", "config", "nodes", "completion")


def script(shell: str) -> str:
    """`runai completion SHELL` run as a user runs it (a fresh process; no server anywhere)."""
    done = subprocess.run([sys.executable, "-m", "jupyter_runai.cli", "completion", shell], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin",
                          "PYTHONPATH": ":".join(sys.path), "HOME": "/nonexistent"})
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def bash_complete(tmp_path_factory):
    """``complete("runai", "training", "")``: the words bash offers for the last one."""
    if shutil.which("bash") is None:
        pytest.skip("no bash")
    path = tmp_path_factory.mktemp("completion") / "runai.bash"
    path.write_text(script("bash"))

    def complete(*words: str) -> set[str]:
        driver = (f"source {path}\n"
                  'COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}\n'
                  'complete -p runai >/dev/null || exit 3\n'
                  '_shtab_runai; printf "%s\\n" "${COMPREPLY[@]}"\n')
        done = subprocess.run(["bash", "-c", driver, "bash", *words], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return set(done.stdout.split())

    return complete


def test_bash_completes_commands_verbs_and_options(bash_complete):
    assert set(COMMANDS) <= bash_complete("runai", "")
    assert bash_complete("runai", "tr") == {"training"}
    assert {"submit", "list", "logs", "suspend", "pytorch"} <= bash_complete("runai", "training", "")
    assert bash_complete("runai", "workload", "") == {"list", "describe"}
    assert bash_complete("runai", "training", "pytorch", "submit", "--gpu-portion-") == {
        "--gpu-portion-request", "--gpu-portion-limit"}
    assert bash_complete("runai", "workspace", "submit", "--att") == {"--attach"}
    assert bash_complete("runai", "completion", "") == {"bash", "zsh"}


def test_bash_completes_the_values_of_options_with_a_fixed_list(bash_complete):
    assert bash_complete("runai", "submit", "--kind", "") == set(KINDS)
    assert bash_complete("runai", "-o", "") == {"table", "wide", "json", "yaml", "csv"}  # csv: runai report
    assert bash_complete("runai", "workspace", "submit", "--priority-class", "") == {c.value for c in PriorityClass}
    assert bash_complete("runai", "list", "--phase", "Run") == {"Running"}


def test_zsh_script_names_every_command_and_value(tmp_path):
    text = script("zsh")
    assert text.startswith("#compdef runai")
    for command in COMMANDS:
        assert f"\n    {command}:'" in text, command
    assert "(" + " ".join(KINDS) + ")" in text and "--gpu-portion-request" in text
    if shutil.which("zsh"):  # where zsh is installed, the script at least parses
        path = tmp_path / "_runai"  # a file: the script is longer than one argument may be
        path.write_text(text)
        done = subprocess.run(["zsh", "-n", str(path)], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr


def test_an_unknown_shell_is_refused_with_the_allowed_ones():
    done = subprocess.run([sys.executable, "-m", "jupyter_runai.cli", "completion", "fish"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and "'bash', 'zsh'" in done.stderr and done.stdout == ""
