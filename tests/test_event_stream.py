"""The event stream on a real Jupyter server: a client that falls behind is told and
resumes without a gap, a resume delivers every stored event after its id or says that it
cannot (``reset``), and the Python client resumes by itself."""

from __future__ import annotations

import asyncio
import getpass
import socket
from datetime import datetime, timezone

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from api_helpers import server_config
from jupyter_runai.client import RunaiClient, parse_sse
from jupyter_runai.server.stream import EventsHandler
from jupyter_runai.service import User

pytest_plugins = ["pytest_jupyter.jupyter_server"]

BUFFER = 5  # events a stream client may fall behind (event_stream_buffer)
ME = User(getpass.getuser(), admin=True)  # the server's own user (a root server runs others' as theirs)


@pytest.fixture
def retention() -> int:
    return 100_000


@pytest.fixture
def jp_server_config(tmp_path, retention):
    return server_config(tmp_path, event_stream_buffer=BUFFER, event_retention=retention)


class Stream:
    """``GET /runai/api/v1/events`` read as it arrives: ``events`` (parsed with the client's
    own parser) and whether the server ended it (``ended``)."""

    def __init__(self, base: str, headers: dict) -> None:
        self.base = base
        self.headers = headers
        self.text = ""
        self.ended = False

    @property
    def events(self) -> list[dict]:
        return list(parse_sse(iter([self.text])))

    async def read(self, last_event_id: int | None = None, until=lambda stream: False, timeout: float = 20,
                   **params: str) -> "Stream":
        """Read until the server ends the stream, ``until(self)`` holds, or ``timeout``."""
        headers = dict(self.headers)
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        query = "&".join(f"{k}={v}" for k, v in params.items())

        enough = False

        def on_chunk(chunk: bytes) -> None:
            nonlocal enough
            self.text += chunk.decode()
            if until(self):
                enough = True
                raise EOFError("read enough")  # the client drops the connection

        request = HTTPRequest(f"{self.base}runai/api/v1/events?{query}", headers=headers,
                              streaming_callback=on_chunk, request_timeout=timeout)
        try:
            await AsyncHTTPClient().fetch(request)
            self.ended = True
        except Exception as exc:  # noqa: BLE001 - enough read, or the request_timeout: the server kept it open
            if not enough and "Timeout" not in type(exc).__name__:
                raise
        return self


@pytest.fixture
def stream(jp_http_port, jp_base_url, jp_auth_header):
    return lambda: Stream(f"http://localhost:{jp_http_port}{jp_base_url}", jp_auth_header)


def connected(s: Stream) -> bool:
    return ": connected" in s.text


async def test_a_client_that_falls_behind_is_told_and_resumes_without_a_gap(api, service, stream):
    first = stream()
    reading = asyncio.ensure_future(first.read())
    # wait until the server has it subscribed, then publish more events at once than it may queue
    for _ in range(200):
        if service._subscribers:
            break
        await asyncio.sleep(0.02)
    assert service._subscribers, "the stream never subscribed"
    for i in range(3 * BUFFER):
        service.submit({"name": f"burst-{i}", "command": "sleep 30", "resources": {"gpu": 2}}, ME)
    await asyncio.wait_for(reading, 30)
    assert first.ended, "the server kept the stream of a client that fell behind open"
    got = first.events
    assert got[-1]["type"] == "overflow" and "Last-Event-ID" in got[-1]["message"]
    delivered = [e for e in got if e["type"] != "overflow"]
    assert 0 < len(delivered) <= BUFFER
    # it reconnects after the last event it took, and gets every later one
    last = delivered[-1]["id"]
    second = await stream().read(last_event_id=last, until=connected)
    resumed = second.events
    ids = [e["id"] for e in delivered + resumed]
    stored = [e.id for e in service.store.events(limit=100_000)]
    start = stored.index(ids[0])
    assert ids == stored[start:start + len(ids)], "events were lost or repeated across the reconnect"
    assert {e["workload"] for e in delivered + resumed if e["type"] == "Submitted"} == {
        f"burst-{i}" for i in range(3 * BUFFER)}


async def test_a_resume_far_behind_delivers_every_event(api, service, stream):
    count = 12_500  # more than the 10,000 a resume used to stop at
    now = datetime.now(timezone.utc)
    with service.store.batch():
        for i in range(count):
            service.store.add_event("Warning", f"event {i}", at=now, project="default", workload="many")
    s = await stream().read(last_event_id=0, until=connected, timeout=60, workload="many")
    ids = [e["id"] for e in s.events]
    assert [e["message"] for e in s.events] == [f"event {i}" for i in range(count)]
    assert ids == sorted(ids) and len(set(ids)) == count


@pytest.mark.parametrize("retention", [10])
async def test_a_resume_after_pruned_events_says_so_and_goes_on_live(api, service, stream):
    now = datetime.now(timezone.utc)
    for i in range(20):
        service.store.add_event("Warning", f"old {i}", at=now, project="default", workload="old")
    await api.submit(name="filler", command="true")  # the server prunes as events come
    assert len(service.store.events(limit=1000)) <= 10 + 1
    newest = service.store.events(limit=1, newest=True)[0].id

    s = stream()
    reading = asyncio.ensure_future(s.read(last_event_id=2, until=lambda s: any(
        e.get("workload") == "fresh" for e in s.events)))
    for _ in range(200):
        if connected(s):
            break
        await asyncio.sleep(0.02)
    await api.submit(name="fresh", command="true")
    await asyncio.wait_for(reading, 30)
    got = s.events
    assert got[0]["type"] == "reset" and got[0]["id"] >= newest
    assert "pruned" in got[0]["message"] and "reload" in got[0]["message"]
    assert not [e for e in got if e.get("workload") == "old"], "pruned-over events were replayed as if whole"
    assert [e["type"] for e in got if e.get("workload") == "fresh"][0] == "Submitted"

    # an id this store never gave (its state was replaced): the same answer
    future = await stream().read(last_event_id=newest + 1000, until=connected)
    assert future.events[0]["type"] == "reset"
    # caught up exactly: nothing to say
    await api.wait_phase("filler", "Succeeded")
    await api.wait_phase("fresh", "Succeeded")
    exact = await stream().read(last_event_id=service.store.events(limit=1, newest=True)[0].id, until=connected)
    assert exact.events == []


async def test_the_python_client_resumes_after_an_overflow(api, service, jp_http_port, jp_base_url, jp_auth_header):
    token = jp_auth_header["Authorization"].split(" ", 1)[1]
    client = RunaiClient(f"http://localhost:{jp_http_port}{jp_base_url}", token)
    loop = asyncio.get_running_loop()
    events = await loop.run_in_executor(None, client.events)  # connects (in a thread: the server runs here)
    for _ in range(200):
        if service._subscribers:
            break
        await asyncio.sleep(0.02)
    names = {f"many-{i}" for i in range(4 * BUFFER)}
    for name in sorted(names):
        service.submit({"name": name, "command": "sleep 30", "resources": {"gpu": 2}}, ME)

    def take() -> list[dict]:
        seen = []
        for event in events:
            seen.append(event)
            if {e["workload"] for e in seen if e.get("type") == "Submitted"} >= names:
                return seen
        return seen

    seen = await asyncio.wait_for(loop.run_in_executor(None, take), 60)
    events.close()
    assert "overflow" not in [e.get("type") for e in seen]
    ids = [int(e["id"]) for e in seen]
    assert ids == list(range(ids[0], ids[0] + len(ids))), "an event was missed or repeated"


async def test_a_client_that_stops_reading_is_disconnected(api, service, jp_http_port, jp_base_url, jp_auth_header,
                                                          monkeypatch):
    monkeypatch.setattr(EventsHandler, "stall_seconds", 0.5)
    loop = asyncio.get_running_loop()

    def connect() -> socket.socket:  # a client that reads the answer's first bytes, then nothing
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(15)
        sock.connect(("127.0.0.1", jp_http_port))
        sock.sendall(f"GET {jp_base_url}runai/api/v1/events HTTP/1.1\r\nHost: localhost:{jp_http_port}\r\n"
                     f"Authorization: {jp_auth_header['Authorization']}\r\n\r\n".encode())
        assert sock.recv(100).startswith(b"HTTP/1.1 200")
        return sock

    sock = await loop.run_in_executor(None, connect)
    # big events, published until the socket's buffers are full and the client falls behind
    now = datetime.now(timezone.utc)
    for i in range(400):
        if not service._subscribers:
            break
        event = service.store.add_event("Warning", "x" * 65536, at=now, project="default", workload="big")
        service._outbox.append(event.model_dump(mode="json"))
        service._publish()
        await asyncio.sleep(0.01)
    assert not service._subscribers, "the client never fell behind"

    await asyncio.sleep(1.5)  # it reads nothing meanwhile: the server gives it up

    def read_to_the_end() -> bytes:
        tail = b""
        while data := sock.recv(1 << 20):
            tail = (tail + data)[-4096:]
            if tail.endswith(b"0\r\n\r\n"):  # the response ended (it caught up in time: told, then ended)
                assert b"event: overflow" in tail
                break
        return tail

    try:
        await loop.run_in_executor(None, read_to_the_end)  # the connection closed, or the response ended
    except socket.timeout:
        pytest.fail("the server kept the stream of a client that stopped reading open")
    finally:
        sock.close()


async def test_each_workload_event_carries_the_workload_as_get_shows_it(api, service, stream):
    """A client follows a workload from the events alone: each of its events carries its view (the
    document GET answers, without events) as it was once the event was stored; the last one is
    what GET shows, and the event of its deletion carries null."""
    s = stream()
    reading = asyncio.ensure_future(s.read(until=lambda s: any(
        e.get("type") == "Deleted" and e.get("workload") == "followed" for e in s.events)))
    for _ in range(200):
        if connected(s):
            break
        await asyncio.sleep(0.02)
    await api.submit(name="followed", command="true", resources={"gpu": 0.5})
    done = await api.wait_phase("followed", "Succeeded")
    done.pop("events")
    code, _ = await api.delete("workloads", "default", "followed")
    assert code == 202
    await asyncio.wait_for(reading, 30)
    mine = [e for e in s.events if e.get("workload") == "followed"]
    assert [e["type"] for e in mine][0] == "Submitted" and mine[-1]["type"] == "Deleted"
    assert mine[-1]["object"] is None
    assert mine[0]["object"]["spec"]["name"] == "followed" and mine[0]["object"]["uid"] == done["uid"]
    succeeded = [e for e in mine if e["type"] == "Succeeded"]
    assert succeeded and succeeded[0]["object"] == done
    phases = [e["object"]["status"]["phase"] for e in mine if e["object"]]
    assert "Running" in phases or "Succeeded" in phases


async def test_an_event_from_the_store_carries_no_object(api, service, stream):
    """A replayed event (from ``Last-Event-ID``) is as it was stored: no ``object``; the client
    reads the workload (or the list) again for those."""
    await api.submit(name="stored", command="true")
    await api.wait_phase("stored", "Succeeded")
    s = await stream().read(last_event_id=0, until=connected, workload="stored")
    assert s.events and all("object" not in e for e in s.events)


async def test_a_client_that_leaves_is_unsubscribed_at_once(api, service, stream):
    """A sidebar or a user's server that closes its event stream stops holding a subscription at
    once, not at the next event or heartbeat (a hub has many users coming and going)."""
    before = len(service._subscribers)
    s = await stream().read(until=connected)  # reads ": connected", then drops the connection
    assert connected(s) and not s.ended
    for _ in range(100):  # well under the heartbeat's 15 s: gone within a second
        if len(service._subscribers) == before:
            break
        await asyncio.sleep(0.01)
    assert len(service._subscribers) == before, "the subscription outlived its client"
