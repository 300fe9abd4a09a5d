"""One scheduler per state directory.

The scheduler holds an exclusive lock on ``<state_dir>/scheduler.lock`` (``flock``) while
it runs, and writes who it is into the file: its process id, its URL and when it
started. The kernel releases the lock when the process ends, however it ends (a kill -9
included), so a stale file never blocks a restart. A second server started on the same
state directory cannot take the lock: it does not schedule (two schedulers would book
the same device twice) and says which server does.
"""

from __future__ import annotations

import fcntl
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = ["StateLock", "StateLocked"]

LOCK_FILE = "scheduler.lock"


class StateLocked(Exception):
    """Another process runs the scheduler on this state directory; ``holder`` says who."""

    def __init__(self, directory: Path, holder: dict[str, Any]) -> None:
        self.directory = directory
        self.holder = holder
        who = f"pid {holder.get('pid', '?')}"
        if holder.get("url"):
            who += f", {holder['url']}"
        if holder.get("started_at"):
            who += f", since {holder['started_at']}"
        super().__init__(
            f"another Jupyter server ({who}) runs the scheduler on the state directory {directory}. This "
            f"server does not schedule, so that no device is booked twice: use that server (the CLI: "
            f"runai --url {holder.get('url') or '<its URL>'}), or give this one a state directory of its own "
            f"(c.RunaiApp.state_dir) and restart it.")


class StateLock:
    """``acquire()`` the lock of a state directory (or raise :class:`StateLocked`); ``release()``."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, **about: Any) -> None:
        """Take the lock without waiting and record ``about`` (the URL, say) with the pid."""
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._read(fd)
            os.close(fd)
            raise StateLocked(self.directory, holder) from None
        except BaseException:
            os.close(fd)
            raise
        record = {"pid": os.getpid(), "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  **about}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Give the lock back (closing the file releases it)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @staticmethod
    def _read(fd: int) -> dict[str, Any]:
        try:
            data = json.loads(os.pread(fd, 4096, 0) or b"{}")
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}
