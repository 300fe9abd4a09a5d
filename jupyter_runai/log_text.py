"""A pod's log as a terminal would leave it on the screen, for views that show plain text (the
widgets' log area): ANSI colour and cursor codes taken out, and each ``\r`` (a progress bar
redrawing itself) writing over the start of its line, as it does in a terminal. With the times
of ``?timestamps=true``, each line keeps its time in front. Pure functions."""

from __future__ import annotations

import re

__all__ = ["as_terminal"]

#: CSI sequences (colours, cursor moves, erase line) and OSC sequences (titles, links)
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")


def _overwrite(line: str) -> str:
    """What a terminal shows of one line whose segments are separated by ``\r``: each segment
    written from the first column over what was there."""
    shown = ""
    for segment in line.split("\r"):
        shown = segment + shown[len(segment):]
    return shown


def as_terminal(text: str, stamped: bool = False) -> str:
    """``text`` as a terminal shows it at the end; ``stamped``: every line begins with its time
    and a space (``?timestamps=true``), kept in front of what the line shows."""
    lines = []
    for line in _ESCAPES.sub("", text).split("\n"):
        line = line[:-1] if line.endswith("\r") else line  # a CRLF ending
        stamp = ""
        if stamped and " " in line:
            stamp, line = line.split(" ", 1)
            stamp += " "
        lines.append(stamp + _overwrite(line))
    return "\n".join(lines)
