"""Pod logs from the API server, copied to a file the log handler reads (as it reads the local
cluster's): one daemon thread per pod being read, bounded in size.

The copy waits while the pod is Pending, follows the log (``follow=true``) while it runs;
when the stream ends and the pod has ended, one last read completes the copy and the
thread stops. A stream that
breaks while the pod runs is read again from the start after a pause. Each read rewrites
the file from the start; the file never holds more than ``max_bytes`` (a line says where
the copy stops). The log is read with ``timestamps=true``: each line's time goes to the
times file beside the copy (``logtimes.py``), the line itself to the copy, so the logs API
serves both backends' logs, with or without times, the same way.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Callable, Iterable, Iterator

from . import logtimes

__all__ = ["LogCopy"]

log = logging.getLogger(__name__)


class LogCopy:
    """Copies one pod's log to ``path``; :attr:`done` once the copy is complete."""

    def __init__(self, path: Path, fetch: Callable[[bool], Iterable[bytes]], phase: Callable[[], str | None],
                 closed: threading.Event, *, max_bytes: int, retry_seconds: float = 0.5) -> None:
        self.path = path
        self._fetch = fetch      # fetch(follow) -> the log's bytes, in chunks
        self._phase = phase      # the pod's phase now (None: gone)
        self._closed = closed
        self.max_bytes = max_bytes
        self.retry_seconds = retry_seconds
        self.done = False
        self._thread = threading.Thread(target=self._run, name=f"kube-log-{path.stem}", daemon=True)

    def start(self) -> "LogCopy":
        self._thread.start()
        return self

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _ended(self) -> bool:
        return self._phase() in (None, "Succeeded", "Failed")

    def _run(self) -> None:
        while not self._closed.is_set():
            phase = self._phase()
            if phase is None:
                break  # gone: what was copied stays
            if phase == "Pending":  # no container has run yet: nothing to read
                if self._closed.wait(self.retry_seconds):
                    break
                continue
            final = self._ended()
            try:
                self._copy(follow=not final)
            except Exception as exc:  # the API server away: try again unless it ended
                log.info("log of %s: %s", self.path.stem, exc)
                if final:
                    break
            if final:
                break
            if self._ended():
                continue  # one more read, complete this time
            if self._closed.wait(self.retry_seconds):
                break
        self.done = True

    def _copy(self, follow: bool) -> None:
        """Read the log from its start into a new file; while following, the new file takes the
        path at its first bytes (it holds what the old one did, and more, as it grows). The API
        server's times (``timestamps=true``) go to the times file beside it (``logtimes.py``),
        which takes its path first: a reader of a line finds its time."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        partial = self.path.with_suffix(".part")
        times_file = logtimes.times_path(self.path)
        times_partial = logtimes.times_path(partial)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        times = logtimes.TimesWriter(times_partial)
        written = 0
        published = False
        lines = _StampedLines()
        try:
            with os.fdopen(fd, "wb") as out:
                for time_ns, piece in lines.read(self._fetch(follow)):
                    if self._closed.is_set():
                        break
                    if not piece:  # the end of what arrived so far
                        if follow and written:
                            out.flush()
                            if not published:
                                os.replace(times_partial, times_file)
                                os.replace(partial, self.path)  # the open file goes on growing under the path
                                published = True
                        continue
                    room = self.max_bytes - written
                    if len(piece) > room:
                        times.chunk(piece[:room], time_ns)
                        out.write(piece[:room])
                        note = f"\n[runai: the log goes on; only its first {self.max_bytes} bytes are kept here]\n"
                        times.chunk(note.encode(), None)
                        out.write(note.encode())
                        break
                    times.chunk(piece, time_ns)
                    out.write(piece)
                    written += len(piece)
        finally:
            times.close()
        if not published:
            os.replace(times_partial, times_file)
            os.replace(partial, self.path)


class _StampedLines:
    """Splits what the API server sends with ``timestamps=true`` (``<RFC 3339 time> <line>``)
    into ``(time_ns, line)``; a line that comes without a time (or one that does not parse)
    gets None. A line longer than ``MAX_LINE`` is passed on in pieces, the first with its time.
    ``(None, b"")`` marks the end of each chunk received."""

    MAX_LINE = 256 * 1024

    def __init__(self) -> None:
        self._pending = b""
        self._at_line_start = True

    def _piece(self, data: bytes) -> tuple[int | None, bytes]:
        time_ns = None
        if self._at_line_start:
            head, space, rest = data.partition(b" ")
            try:
                time_ns = logtimes.parse_time(head.decode("ascii")) if space else None
            except (UnicodeDecodeError, ValueError):
                time_ns = None
            if time_ns is not None:
                data = rest
        self._at_line_start = data.endswith(b"\n")
        return time_ns, data

    def read(self, chunks: Iterable[bytes]) -> Iterator[tuple[int | None, bytes]]:
        for chunk in chunks:
            self._pending += chunk
            while True:
                end = self._pending.find(b"\n")
                if end < 0:
                    if len(self._pending) < self.MAX_LINE:
                        break
                    end = self.MAX_LINE - 1
                line, self._pending = self._pending[:end + 1], self._pending[end + 1:]
                yield self._piece(line)
            yield None, b""
        if self._pending:
            line, self._pending = self._pending, b""
            yield self._piece(line)
