"""Pod logs through the REST API: any size is served whole in bounded memory, ``tail`` reads
from the end of the file, and file reads never hold up the server's other requests."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import sys
import threading
import tracemalloc

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from api_helpers import server_config
from jupyter_runai.server.stream import MAX_TAIL_LINES, tail_offset

pytest_plugins = ["pytest_jupyter.jupyter_server"]

PY = sys.executable
BIG_LINES = 300_000  # ~27 MB of log


def big_line(i: int) -> bytes:
    return f"line {i:07d} {'x' * 76}\n".encode()


# ---------------------------------------------------------------- tail_offset, on files


def last_lines(data: bytes, n: int) -> bytes:
    """What ``tail -n`` prints: the reference the offset is checked against."""
    return b"".join(data.splitlines(keepends=True)[-n:]) if n > 0 else b""


CASES = [
    b"",
    b"\n",
    b"\n\n\n",
    b"one",
    b"one\n",
    b"one\ntwo\nthree\n",
    b"one\ntwo\nthree",  # no newline at the end: the last line still counts
    b"a\n\nb\n\n",  # empty lines count
    b"x" * 50 + b"\n" + b"y" * 50,  # lines longer than a block
]


@pytest.mark.parametrize("data", CASES)
@pytest.mark.parametrize("n", [0, 1, 2, 3, 10])
@pytest.mark.parametrize("block", [1, 3, 7, 64 * 1024])
def test_tail_offset_starts_the_last_n_lines(tmp_path, data, n, block):
    path = tmp_path / "pod.log"
    path.write_bytes(data)
    assert data[tail_offset(path, n, block=block):] == last_lines(data, n)


def test_tail_of_a_big_file_is_exactly_its_last_lines(tmp_path):
    path = tmp_path / "pod.log"
    lines = [big_line(i) for i in range(200_000)]
    path.write_bytes(b"".join(lines) + b"unterminated")
    size = path.stat().st_size
    for n in (1, 2, 1000, 199_999):
        start = tail_offset(path, n)
        with open(path, "rb") as f:
            f.seek(start)
            assert f.read() == b"".join(lines[len(lines) - n + 1:]) + b"unterminated"
    assert tail_offset(path, 0) == size
    assert tail_offset(path, 10**6) == 0  # more lines asked for than there are: all of it


# ---------------------------------------------------------------- through the API


@pytest.fixture
def jp_server_config(tmp_path):
    return server_config(tmp_path)


async def stream(url: str, headers: dict, on_chunk) -> int:
    """GET ``url`` handing each chunk of the body to ``on_chunk`` as it arrives (nothing kept)."""
    response = await AsyncHTTPClient().fetch(HTTPRequest(url, headers=headers, streaming_callback=on_chunk,
                                                         request_timeout=120))
    return response.code


async def test_a_big_log_is_served_whole_in_bounded_memory(api, tmp_path, jp_http_port, jp_base_url,
                                                           jp_auth_header):
    script = tmp_path / "chatty.py"
    script.write_text("import sys\nw = sys.stdout.buffer.write\n"
                      f"for i in range({BIG_LINES}):\n    w(b'line %07d ' % i + b'x' * 76 + b'\\n')\n")
    await api.submit(name="chatty", command=f"{PY} {script}")
    await api.wait_phase("chatty", "Succeeded", timeout=60)
    expected = hashlib.sha256()
    for i in range(BIG_LINES):
        expected.update(big_line(i))
    size = BIG_LINES * len(big_line(0))

    got = hashlib.sha256()
    received = 0

    def on_chunk(chunk: bytes) -> None:
        nonlocal received
        received += len(chunk)
        got.update(chunk)

    url = f"http://localhost:{jp_http_port}{jp_base_url}runai/api/v1/workloads/default/chatty/logs"
    tracemalloc.start()
    try:
        code = await stream(url, jp_auth_header, on_chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert code == 200
    assert received == size and got.hexdigest() == expected.hexdigest()
    # server and client together held a few chunks at a time, never the log (27 MB)
    assert peak < size // 4, f"peak {peak / 2**20:.1f} MiB while serving a {size / 2**20:.1f} MiB log"

    tail = await api.logs("chatty", tail=3)
    assert tail == b"".join(big_line(i) for i in range(BIG_LINES - 3, BIG_LINES)).decode()


async def test_tail_is_bounded_and_zero_gives_nothing(api):
    await api.submit(name="short", command="printf 'a\\nb\\nc'")
    await api.wait_phase("short", "Succeeded")
    assert await api.logs("short", tail=0) == ""
    assert await api.logs("short", tail=2) == "b\nc"
    assert await api.logs("short", tail=MAX_TAIL_LINES) == "a\nb\nc"
    code, body = await api.get("workloads", "default", "short", "logs", params={"tail": str(MAX_TAIL_LINES + 1)})
    assert code == 400
    assert body["error"]["field"] == "tail" and str(MAX_TAIL_LINES) in body["error"]["allowed"]
    code, body = await api.get("workloads", "default", "short", "logs", params={"tail": "-1"})
    assert code == 400 and body["error"]["field"] == "tail"


class PipeWriter(threading.Thread):
    """Stands for a disk that does not answer: the log is a named pipe whose writer waits
    until the test lets it go (or gives up after ``patience`` seconds)."""

    def __init__(self, path, patience: float = 10.0) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.patience = patience
        self.reader_waiting = threading.Event()
        self.release = threading.Event()
        self.gave_up = False

    def run(self) -> None:
        while True:  # a non-blocking open for writing succeeds only once a reader has the pipe open
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError as exc:
                if exc.errno != errno.ENXIO:
                    raise
                if self.release.wait(0.01):
                    return
        self.reader_waiting.set()
        self.gave_up = not self.release.wait(self.patience)
        os.write(fd, b"from the pipe\n")
        os.close(fd)


async def test_a_log_read_that_blocks_holds_up_no_other_request(api, service):
    await api.submit(name="quiet", command="echo hi")
    await api.wait_phase("quiet", "Succeeded")
    path = service.log_path("default", "quiet")
    path.unlink()
    os.mkfifo(path)
    writer = PipeWriter(path)
    writer.start()
    try:
        logs = asyncio.ensure_future(api.logs("quiet"))
        loop = asyncio.get_running_loop()
        assert await loop.run_in_executor(None, writer.reader_waiting.wait, 30), "the server never opened the log"
        # the server is now waiting on the log file: it still answers
        code, info = await api.get("info")
        assert code == 200
        assert not writer.gave_up, "the server answered only after the blocked read of the log ended"
        writer.release.set()
        assert await asyncio.wait_for(logs, 30) == "from the pipe\n"
    finally:
        writer.release.set()
        writer.join(30)
