"""When each line of a pod's log arrived: a small side file beside the log, and the reader
that prefixes lines with their time (``?timestamps=true``, as ``kubectl logs --timestamps``).

The log itself stays byte-exact as the pod wrote it. Its times live in ``<log>.times``:
a 16-byte header, then records of two little-endian unsigned 64-bit integers
``(offset, time_ns)``: the bytes of the log from ``offset`` on (up to the next record)
arrived at ``time_ns`` nanoseconds since the epoch. A record is written only for a chunk
of output in which a line starts, before the chunk's bytes reach the log, so a reader
that sees a line also finds its record.

A line's time is when its **first** byte arrived: a ``\\r`` progress bar's line is
stamped when the bar started (the next line's time says when it ended), and a line
still being written has its time already, so a followed log and a later read of it agree.

Bounded: the first ``FULL_RECORDS`` records are exact; after them a record is written
at most once per ``COARSE_NS`` (a line may then show a time up to a second early); at
``MAX_RECORDS`` a last record with time 0 says that no times are kept from there on.
Lines without a recorded time (that record, or a log with no side file: a pod started
by an older version) are prefixed with ``-`` instead of a time: nothing is invented.

Standard library only: the pod runner (``python -I``) loads this file by its path.
"""

from __future__ import annotations

import bisect
import os
import struct
from datetime import datetime, timezone
from pathlib import Path

__all__ = ["TimesWriter", "Stamper", "times_path", "format_time", "parse_time", "offset_since", "UNKNOWN"]

HEADER = b"runai-logtimes1\n"  # 16 bytes
RECORD = struct.Struct("<QQ")
FULL_RECORDS = 1 << 19  # 8 MiB of exact times
MAX_RECORDS = 1 << 20  # 16 MiB at most
COARSE_NS = 1_000_000_000
UNKNOWN = b"-"  # the prefix of a line whose time was not recorded
READ_RECORDS = 4096  # records read at a time by a reader


def times_path(log_path: str | os.PathLike) -> Path:
    """Where the times of a log are kept: beside it."""
    path = Path(log_path)
    return path.with_name(path.name + ".times")


def format_time(time_ns: int) -> bytes:
    """RFC 3339 in UTC with nanoseconds, a fixed width: ``2026-12-07T11:02:11.123456789Z``."""
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{nanos:09d}Z".encode()


def parse_time(text: str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 time as Kubernetes writes it
    (``2026-12-07T11:02:11.12345678Z``, any number of fractional digits, or an offset).
    Raises ValueError for anything else."""
    text = text.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    main, offset = text[:19], text[19:]
    fraction = ""
    if offset.startswith("."):
        digits = len(offset) - len(offset[1:].lstrip("0123456789"))
        fraction, offset = offset[1:digits], offset[digits:]
    if len(fraction) > 9 or not offset:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    moment = datetime.fromisoformat(main + offset)
    return int(moment.timestamp()) * 1_000_000_000 + int((fraction or "0").ljust(9, "0"))


class TimesWriter:
    """Records the arrival of each chunk of output that starts a line. ``chunk(data, now_ns)``
    is called before ``data`` is written to the log (the log is then as long as the records say)."""

    def __init__(self, path: str | os.PathLike, offset: int = 0) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        self._file = os.fdopen(fd, "wb", buffering=0)
        self._file.write(HEADER)
        self.offset = offset  # the log's length so far
        self.records = 0
        self._at_line_start = True
        self._last_ns = 0
        self._stopped = False

    def chunk(self, data: bytes, now_ns: int | None) -> None:
        """``data`` arrived at ``now_ns`` (None: when is not known)."""
        if not data:
            return
        start = self.offset
        self.offset += len(data)
        starts_line = self._at_line_start or b"\n" in data[:-1]
        self._at_line_start = data.endswith(b"\n")
        if not starts_line or self._stopped:
            return
        if self.records >= MAX_RECORDS - 1:
            self._write(start, 0)  # no times from here on
            self._stopped = True
        elif now_ns is None:
            self._write(start, 0)
        elif self.records < FULL_RECORDS or now_ns - self._last_ns >= COARSE_NS:
            self._write(start, max(now_ns, 1))
            self._last_ns = now_ns

    def _write(self, offset: int, time_ns: int) -> None:
        self._file.write(RECORD.pack(offset, time_ns))
        self.records += 1

    def close(self) -> None:
        self._file.close()


class _Times:
    """The records of one side file, read forward in blocks (re-read at its end: it may grow)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._file = None
        self._offsets: list[int] = []
        self._times: list[int] = []
        self._next = len(HEADER)  # file position of the next record to read
        self._start = 0
        self._eof = False  # the last read found no more records (reset by refresh())
        self.open()

    def open(self) -> None:
        """Open the side file if it is not open yet (a pod's runner creates it just after the log)."""
        if self._file is not None:
            return
        try:
            stream = open(self._path, "rb")  # noqa: SIM115 - closed by close()
        except (FileNotFoundError, NotADirectoryError):
            return
        if stream.read(len(HEADER)) != HEADER:
            stream.close()
            return
        self._file = stream
        self.seek(self._start)

    def _count(self) -> int:
        return (os.fstat(self._file.fileno()).st_size - len(HEADER)) // RECORD.size

    def _record(self, index: int) -> tuple[int, int]:
        self._file.seek(len(HEADER) + index * RECORD.size)
        return RECORD.unpack(self._file.read(RECORD.size))

    def seek(self, offset: int) -> None:
        """Start reading at the last record at or before ``offset`` (a binary search on disk)."""
        self._start = offset
        if self._file is None:
            return
        low, high = 0, self._count()
        while high - low > 1:
            mid = (low + high) // 2
            if self._record(mid)[0] <= offset:
                low = mid
            else:
                high = mid
        self._next = len(HEADER) + low * RECORD.size
        self._offsets, self._times = [], []

    def refresh(self) -> None:
        """Look for new records again (the side file grows while the pod writes)."""
        self._eof = False

    def _more(self) -> bool:
        if self._eof:
            return False
        self._file.seek(self._next)
        data = self._file.read(READ_RECORDS * RECORD.size)
        data = data[: len(data) - len(data) % RECORD.size]  # a record being written is read next time
        if len(data) < READ_RECORDS * RECORD.size:
            self._eof = True
        if not data:
            return False
        self._next += len(data)
        keep = max(0, len(self._offsets) - 1)  # the last record read still covers what follows it
        self._offsets, self._times = self._offsets[keep:], self._times[keep:]
        for offset, time_ns in RECORD.iter_unpack(data):
            self._offsets.append(offset)
            self._times.append(time_ns)
        return True

    def time_at(self, offset: int) -> int | None:
        """The time the byte at ``offset`` arrived (None: not recorded). Offsets asked for go up."""
        if self._file is None:
            return None
        while not self._offsets or self._offsets[-1] <= offset:
            if not self._more():
                break
        at = bisect.bisect_right(self._offsets, offset) - 1
        if at < 0:
            return None
        return self._times[at] or None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class Stamper:
    """Prefixes each line of a log read from ``offset`` on with the time it arrived and a space.
    Feed it the log's bytes in order, in chunks of any size."""

    def __init__(self, log_path: str | os.PathLike, offset: int = 0, at_line_start: bool | None = None) -> None:
        self._times = _Times(times_path(log_path))
        self._times.seek(offset)
        self.offset = offset
        if at_line_start is None:
            at_line_start = offset == 0 or _byte_before(log_path, offset) == b"\n"
        self._at_line_start = at_line_start
        self._last_ns: int | None = -1
        self._last = b""

    def _prefix(self, offset: int) -> bytes:
        time_ns = self._times.time_at(offset)
        if time_ns != self._last_ns:  # the lines of one chunk of output share their time
            self._last_ns, self._last = time_ns, (format_time(time_ns) if time_ns else UNKNOWN) + b" "
        return self._last

    def stamp(self, data: bytes) -> bytes:
        out = []
        at = 0
        self._times.open()
        self._times.refresh()  # the records of these bytes were written before them
        if data and self._at_line_start:
            out.append(self._prefix(self.offset))
        while (end := data.find(b"\n", at)) >= 0 and end + 1 < len(data):
            out.append(data[at:end + 1])
            at = end + 1
            out.append(self._prefix(self.offset + at))
        out.append(data[at:])
        if data:
            self._at_line_start = data.endswith(b"\n")
        self.offset += len(data)
        return b"".join(out)

    def close(self) -> None:
        self._times.close()


def offset_since(log_path: str | os.PathLike, since_ns: int, block: int = 64 * 1024) -> int | None:
    """Byte offset of the first line of the log that started at or after ``since_ns`` (the log's
    size when none did), found by a binary search of the side file; None when the log has no
    recorded times (nothing says which lines are older). A line without a time counts as new."""
    times = _Times(times_path(log_path))
    try:
        if times._file is None:
            return None
        low, high = 0, times._count()
        if high == 0:
            return None
        while low < high:  # the first record at or after since_ns
            mid = (low + high) // 2
            time_ns = times._record(mid)[1]
            if time_ns and time_ns < since_ns:
                low = mid + 1
            else:
                high = mid
        with open(log_path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            if low == times._count():
                return size
            start = min(times._record(low)[0], size)
            if start == 0:
                return 0
            f.seek(start - 1)  # the record's chunk starts a line: here, or after its first newline
            at = start - 1
            while data := f.read(block):
                found = data.find(b"\n")
                if found >= 0:
                    return at + found + 1
                at += len(data)
            return size
    finally:
        times.close()


def _byte_before(path: str | os.PathLike, offset: int) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(offset - 1)
            return f.read(1)
    except OSError:
        return b""
