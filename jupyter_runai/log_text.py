"""A pod's log as a terminal would leave it on the screen, for views that show plain text (the
widgets' log area): ANSI colour and cursor codes taken out, and each ``\r`` (a progress bar
redrawing itself) writing over the start of its line, as it does in a terminal. With the times
of ``?timestamps=true``, each line keeps its time in front. Pure functions."""

from __future__ import annotations

import re

__all__ = ["Restamper", "as_terminal"]

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


class Restamper:
    """Repeats each line's time after every ``\r`` inside it, for a log read with
    ``?timestamps=true`` and printed where ``\r`` goes back to the start of the line (a terminal,
    a notebook's output): a progress bar redrawn in place then keeps its time in front instead of
    writing over it. ``feed`` takes the text in chunks as they come (a followed log) and gives
    back what to print; a ``\r`` that ends a line (CRLF) is left alone."""

    def __init__(self) -> None:
        self._stamp: str | None = None  # the current line's time and its space, once read whole
        self._head = ""  # the start of a line whose time is not read whole yet
        self._cr = False  # the chunk ended with a \r: held until we know whether \n follows

    def _restamp(self, text: str, ended: bool) -> str:
        """``text`` of the current line, a \r inside it followed by the time; ``ended``: a \n
        follows it (a \r at its end is a CRLF's)."""
        crlf = ended and text.endswith("\r")
        text = text[:-1] if crlf else text
        return text.replace("\r", "\r" + (self._stamp or "")) + ("\r" if crlf else "")

    def feed(self, chunk: str) -> str:
        if self._cr:
            chunk, self._cr = "\r" + chunk, False
        if chunk.endswith("\r"):
            chunk, self._cr = chunk[:-1], True
        out = []
        parts = chunk.split("\n")
        for i, part in enumerate(parts):
            ended = i < len(parts) - 1
            if i:  # a line ended: the next one brings its own time
                out.append(self._head + "\n")
                self._stamp, self._head = None, ""
            if self._stamp is None:
                self._head += part
                if " " in self._head:
                    stamp, rest = self._head.split(" ", 1)
                    self._stamp, self._head = stamp + " ", ""
                    out.append(self._stamp + self._restamp(rest, ended))
            else:
                out.append(self._restamp(part, ended))
        return "".join(out)

    def end(self) -> str:
        """What is still held when the log ends."""
        rest, self._head = self._head + ("\r" if self._cr else ""), ""
        self._cr = False
        return rest
