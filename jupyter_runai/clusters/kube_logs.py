"""Pod logs from the API server, copied to a file the log handler reads (as it reads the local
cluster's): one daemon thread per pod being read, bounded in size.

The copy waits while the pod is Pending, follows the log (``follow=true``) while it runs;
when the stream ends and the pod has ended, one last read completes the copy and the
thread stops. A stream that
breaks while the pod runs is read again from the start after a pause. Each read rewrites
the file from the start; the file never holds more than ``max_bytes`` (a line says where
the copy stops).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Callable, Iterable

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
        path at its first bytes (it holds what the old one did, and more, as it grows)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        partial = self.path.with_suffix(".part")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        written = 0
        published = False
        with os.fdopen(fd, "wb") as out:
            for chunk in self._fetch(follow):
                if self._closed.is_set():
                    break
                room = self.max_bytes - written
                if len(chunk) > room:
                    out.write(chunk[:room])
                    out.write(f"\n[runai: the log goes on; only its first {self.max_bytes} bytes are kept here]\n"
                              .encode())
                    break
                out.write(chunk)
                written += len(chunk)
                if follow:
                    out.flush()
                    if not published:
                        os.replace(partial, self.path)  # the open file goes on growing under the path
                        published = True
        if not published:
            os.replace(partial, self.path)
