"""Log timestamps on demand: the local pod runner records when each line arrived beside a
byte-exact log, and ``GET .../logs?timestamps=true`` prefixes each line with that time in
RFC 3339 UTC, as ``kubectl logs --timestamps`` does (clusters/logtimes.py)."""

from __future__ import annotations

import asyncio
import re
import sys
import time
from pathlib import Path

import pytest

from api_helpers import server_config
from jupyter_runai.clusters import logtimes
from jupyter_runai.clusters.local import LocalCluster, _alive
from jupyter_runai.clusters.logtimes import (Stamper, TimesWriter, format_time, offset_since, parse_time,
                                             times_path)
from test_local_cluster import FakeNvml, make_launch, wait_file, wait_report

pytest_plugins = ["pytest_jupyter.jupyter_server"]

PY = sys.executable
STAMP = rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z"
T0 = 1_800_000_000_000_000_000  # 2027-01-15T08:00:00Z


def lines_of(data: bytes) -> list[bytes]:
    """The lines of a log as the logs API counts them: ended by \n only (\r is inside a line)."""
    return re.findall(rb"[^\n]*\n|[^\n]+\Z", data)


def stamped(data: bytes) -> list[tuple[int | None, bytes]]:
    """(time in ns or None for '-', line) of each line of a stamped log."""
    out = []
    for line in lines_of(data):
        head, _, rest = line.partition(b" ")
        out.append((None if head == b"-" else parse_time(head.decode()), rest))
    return out


def write_log(tmp_path: Path, chunks: list[tuple[bytes, int | None]]) -> Path:
    """A log written as the pod runner writes one: each chunk's time recorded, then its bytes."""
    log = tmp_path / "pod.log"
    writer = TimesWriter(times_path(log))
    with open(log, "wb") as out:
        for data, when in chunks:
            writer.chunk(data, when)
            out.write(data)
    writer.close()
    return log


# ---------------------------------------------------------------- the side file, on files

CHUNKS = [(b"a\nb", T0), (b"c\n\r1\r2", T0 + 1), (b"\n", T0 + 2), (b"tail", T0 + 3)]
EXPECTED = [(T0, b"a\n"), (T0, b"bc\n"), (T0 + 1, b"\r1\r2\n"), (T0 + 3, b"tail")]


def test_each_line_gets_the_time_its_first_byte_arrived(tmp_path):
    log = write_log(tmp_path, CHUNKS)
    data = log.read_bytes()
    assert data == b"a\nbc\n\r1\r2\ntail"  # the log itself is exactly what was written
    # a line split over chunks (bc), a progress bar redrawn with \r, a last line without newline
    assert stamped(Stamper(log).stamp(data)) == EXPECTED
    assert Stamper(log).stamp(data).startswith(b"2027-01-15T08:00:00.000000000Z a\n")


@pytest.mark.parametrize("piece", [1, 2, 5])
@pytest.mark.parametrize("start", [0, 2, 5, 10])
def test_any_chunking_and_any_line_start_give_the_same_times(tmp_path, piece, start):
    log = write_log(tmp_path, CHUNKS)
    data = log.read_bytes()[start:]
    stamper = Stamper(log, start)  # a tail starts at a line
    out = b"".join(stamper.stamp(data[i:i + piece]) for i in range(0, len(data), piece))
    assert stamped(out) == [line for line in EXPECTED if line[1] in lines_of(data)]


def test_a_read_that_stops_mid_line_goes_on_without_a_second_time(tmp_path):
    log = write_log(tmp_path, CHUNKS)
    data = log.read_bytes()
    stamper = Stamper(log, 0)
    first = stamper.stamp(data[:3])  # 'a\nb': a followed log read while 'c\n' was not there yet
    resumed = Stamper(log, 3)  # a new request from the middle of a line: no time before 'c'
    assert first + resumed.stamp(data[3:]) == Stamper(log).stamp(data)


def test_no_times_recorded_says_so_instead_of_inventing_one(tmp_path):
    log = tmp_path / "pod.log"
    log.write_bytes(b"from an older runner\nno side file\n")  # a pod started before times were kept
    assert Stamper(log).stamp(log.read_bytes()) == b"- from an older runner\n- no side file\n"
    log = write_log(tmp_path, [(b"known\n", T0), (b"unknown\n", None), (b"known again\n", T0 + 5)])
    assert stamped(Stamper(log).stamp(log.read_bytes())) == [
        (T0, b"known\n"), (None, b"unknown\n"), (T0 + 5, b"known again\n")]


def test_the_side_file_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(logtimes, "FULL_RECORDS", 2)
    monkeypatch.setattr(logtimes, "MAX_RECORDS", 5)
    half = 500_000_000
    log = write_log(tmp_path, [(b"%d\n" % i, T0 + i * half) for i in range(12)])  # a line every half second
    times = [t for t, _ in stamped(Stamper(log).stamp(log.read_bytes()))]
    # exact, then at most one time a second (a line may show the time of the one before), then none
    assert times == [T0 + i * half for i in (0, 1, 1, 3, 3, 5)] + [None] * 6
    assert times_path(log).stat().st_size == len(logtimes.HEADER) + 5 * logtimes.RECORD.size


@pytest.mark.parametrize("text, nanos", [
    ("2026-01-02T03:04:05.12345Z", 123_450_000),  # Go's RFC3339Nano cuts trailing zeros
    ("2026-01-02T03:04:05Z", 0),
    ("2026-01-02T04:04:05.000000001+01:00", 1),
])
def test_kubernetes_times_parse_to_one_format(text, nanos):
    assert format_time(parse_time(text)) == b"2026-01-02T03:04:05.%09dZ" % nanos


@pytest.mark.parametrize("text", ["2026-01-02T03:04:05.1234567891Z", "2026-01-02T03:04:05", "epoch", ""])
def test_what_is_not_a_time_is_refused(text):
    with pytest.raises(ValueError):
        parse_time(text)


def test_since_starts_at_the_first_line_that_arrived_after_it(tmp_path):
    # chunks: 'a\nb' at T0, 'c\n\r1\r2' at T0+1 (its line starts after 'c\n'), '\n' at T0+2, 'tail' at T0+3
    log = write_log(tmp_path, CHUNKS)
    data = log.read_bytes()
    assert [data[offset_since(log, since):] for since in (T0 - 1, T0, T0 + 1, T0 + 2, T0 + 3, T0 + 4)] == [
        data, data, b"\r1\r2\ntail", b"tail", b"tail", b""]
    assert offset_since(tmp_path / "other.log", T0) is None  # no times: the caller decides


# ---------------------------------------------------------------- the local cluster's pod runner

CHATTY = """
import sys, time
print('start', flush=True)
time.sleep(0.3)
for i in range(3):
    sys.stdout.write('\\r%d%%' % (i * 50)); sys.stdout.flush(); time.sleep(0.05)
print()
sys.stderr.buffer.write(b'\\xff\\x00binary\\n'); sys.stderr.flush()
sys.stdout.write('no newline'); sys.stdout.flush()
"""


@pytest.fixture
def cluster(tmp_path):
    cluster = LocalCluster(state_dir=str(tmp_path / "state"), nvml=FakeNvml(count=0), watchdog_interval=0)
    yield cluster
    for key in list(cluster._pods):
        cluster.stop(key, 0)
    cluster.close()


def test_the_pod_runner_records_each_line_and_keeps_the_log_exact(cluster):
    before = time.time_ns()
    launch = make_launch(cluster, "chatty", [PY, "-c", CHATTY])
    handle = cluster.launch(launch)
    assert wait_report(cluster, launch.key).exit_code == 0
    log = Path(handle["log"])
    assert log.read_bytes() == b"start\n\r0%\r50%\r100%\n\xff\x00binary\nno newline"
    lines = stamped(Stamper(log).stamp(log.read_bytes()))
    assert [line for _, line in lines] == [b"start\n", b"\r0%\r50%\r100%\n", b"\xff\x00binary\n", b"no newline"]
    times = [t for t, _ in lines]
    assert None not in times and times == sorted(times) and before <= times[0] <= time.time_ns()
    assert times[1] - times[0] >= 300_000_000  # the bar started after the pause


def test_an_adopted_pod_keeps_its_times(tmp_path):
    """The runner records the times, and it outlives the server: what the pod writes while no
    server runs has its time all the same."""
    state = str(tmp_path / "state")
    go = tmp_path / "go"
    first = LocalCluster(state_dir=state, nvml=FakeNvml(count=0), watchdog_interval=0)
    script = (f"import os, time\nprint('before', flush=True)\n"
              f"while not os.path.exists({str(go)!r}): time.sleep(0.02)\nprint('after', flush=True)")
    launch = make_launch(first, "adopted", [PY, "-c", script])
    handle = first.launch(launch)
    log = Path(handle["log"])
    wait_file(log)
    del first  # the server "crashes"
    go.touch()
    deadline = time.monotonic() + 10
    while _alive(handle["pid"], handle["start_time"]) and time.monotonic() < deadline:
        time.sleep(0.02)
    second = LocalCluster(state_dir=state, nvml=FakeNvml(count=0), watchdog_interval=0)
    assert second.adopt(launch.key, handle).exit_code == 0
    lines = stamped(Stamper(log).stamp(log.read_bytes()))
    assert [line for _, line in lines] == [b"before\n", b"after\n"]
    assert None not in [t for t, _ in lines]
    second.close()


# ---------------------------------------------------------------- through the API


@pytest.fixture
def jp_server_config(tmp_path):
    return server_config(tmp_path)


async def test_timestamps_on_demand_through_the_api(api, service):
    await api.submit(name="stamped", command="printf 'one\\ntwo\\nthree'")
    await api.wait_phase("stamped", "Succeeded")
    assert await api.logs("stamped") == "one\ntwo\nthree"  # without asking: the log as written
    text = await api.logs("stamped", timestamps="true")
    assert re.fullmatch(rb"(%s one\n)(%s two\n)(%s three)" % (STAMP, STAMP, STAMP), text.encode()), text
    tail = await api.logs("stamped", timestamps="true", tail=1)
    assert tail == text.splitlines(keepends=True)[-1]
    assert await api.logs("stamped", timestamps="false") == "one\ntwo\nthree"
    assert await api.logs("stamped", since_seconds=3600) == "one\ntwo\nthree"  # all arrived in the last hour
    code, body = await api.get("workloads", "default", "stamped", "logs", params={"since_seconds": "0"})
    assert code == 400 and body["error"]["field"] == "since_seconds"
    times_path(service.log_path("default", "stamped")).unlink()  # as for a pod of an older version
    assert await api.logs("stamped", timestamps="true") == "- one\n- two\n- three"
    assert await api.logs("stamped", since_seconds=1) == "one\ntwo\nthree"  # nothing says what is older


async def test_following_with_timestamps(api):
    await api.submit(name="followed", command="echo first; sleep 0.5; echo second")
    await api.wait_phase("followed", "Running")
    followed = asyncio.ensure_future(api.logs("followed", follow="true", timestamps="true"))
    text = await asyncio.wait_for(followed, 30)
    assert re.fullmatch(rb"%s first\n%s second\n" % (STAMP, STAMP), text.encode()), text


def test_kubernetes_lines_split_anywhere_keep_their_times():
    from jupyter_runai.clusters.kube_logs import _StampedLines

    sent = b"2026-01-02T03:04:05.5Z epoch 1\n2026-01-02T03:04:06Z \r10%\r100%\nno time here\n2026-01-02T03:04:07Z end"
    for size in (1, 3, 7, len(sent)):
        pieces = [p for p in _StampedLines().read(sent[i:i + size] for i in range(0, len(sent), size)) if p[1]]
        assert pieces == [(parse_time("2026-01-02T03:04:05.5Z"), b"epoch 1\n"),
                          (parse_time("2026-01-02T03:04:06Z"), b"\r10%\r100%\n"),
                          (None, b"no time here\n"), (parse_time("2026-01-02T03:04:07Z"), b"end")]
