"""Streaming handlers: pod logs (with follow) and the server-sent event stream."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import time

from jupyter_server.auth.decorator import authorized
from tornado import web
from tornado.iostream import StreamClosedError

from ..clusters.logtimes import Stamper, offset_since
from ..events import Subscription
from ..models.queues import DURATION_MAX
from .base import RunaiHandler, api

FOLLOW_POLL_SECONDS = 0.25
HEARTBEAT_SECONDS = 15.0
CHUNK = 256 * 1024  # bytes read and sent at a time: what a log request holds in memory
TAIL_BLOCK = 64 * 1024  # bytes read at a time when looking for the last lines
MAX_TAIL_LINES = 100_000
MAX_SINCE_SECONDS = int(DURATION_MAX)
REPLAY_PAGE = 1000  # events read from the store at a time when a client resumes
STALL_SECONDS = HEARTBEAT_SECONDS  # an overflowed client that reads nothing is closed after this


def tail_offset(path, lines: int, block: int = TAIL_BLOCK) -> int:
    """Byte offset where the last ``lines`` lines of the file start, found by reading
    backwards from its end in blocks (the time and memory depend on ``lines``, not on
    the size of the file). A last line without a newline counts as a line."""
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        if lines <= 0 or size == 0:
            return size
        f.seek(size - 1)
        end = size - 1 if f.read(1) == b"\n" else size  # the last line's own newline starts nothing
        left = lines
        while end > 0:
            start = max(0, end - block)
            f.seek(start)
            data = f.read(end - start)
            at = len(data)
            while (at := data.rfind(b"\n", 0, at)) >= 0:
                left -= 1
                if left == 0:
                    return start + at + 1
            end = start
        return 0


def _sse(data: dict) -> str:
    return f"id: {data['id']}\nevent: {data['type']}\ndata: {json.dumps(data)}\n\n"


#: live events already encoded, by id: (the event's dict, its text); at most ENCODED_KEPT
_ENCODED: dict[int, tuple[dict, str]] = {}
ENCODED_KEPT = 512  # what many streams send at about the same time; a stream further behind encodes its own


def _encoded(data: dict) -> str:
    """The event as server-sent text, encoded once however many subscribers send it (an event
    with its workload's view is a few kilobytes, and a hub has a hundred streams open)."""
    hit = _ENCODED.get(data["id"])
    if hit is not None and hit[0] is data:
        return hit[1]
    text = _sse(data)
    if len(_ENCODED) >= ENCODED_KEPT:
        _ENCODED.clear()
    _ENCODED[data["id"]] = (data, text)
    return text


class LogsHandler(RunaiHandler):
    """``GET .../logs?pod=&follow=&tail=&timestamps=&since_seconds=``: the pod's output as text;
    ``follow`` streams until it ends; ``timestamps`` puts the time each line arrived before it, and
    ``since_seconds`` starts at the first line that arrived in the last N seconds (both from the
    times recorded beside the log, ``clusters/logtimes.py``).

    The file is read off the event loop, in chunks of ``CHUNK`` bytes, each sent (and
    waited for) before the next is read: a log of any size holds one chunk in memory, and
    a slow disk or a slow client delays only this response."""

    @web.authenticated
    @authorized
    @api
    async def get(self, project: str, name: str) -> None:
        pod = self.get_argument("pod", None)
        follow = self.flag("follow") if "follow" in self.request.arguments else False
        tail = self.int_argument("tail", None, maximum=MAX_TAIL_LINES)
        timestamps = self.flag("timestamps") if "timestamps" in self.request.arguments else False
        since = self.int_argument("since_seconds", None, minimum=1, maximum=MAX_SINCE_SECONDS)
        path = self.service.log_path(project, name, pod, self.user)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Content-Type-Options", "nosniff")
        loop = asyncio.get_running_loop()
        offset = 0
        if path is not None and path.exists() and tail is not None:
            try:
                offset = await loop.run_in_executor(None, tail_offset, path, tail)
            except FileNotFoundError:
                offset = 0
        if path is not None and path.exists() and since is not None:
            start = await loop.run_in_executor(None, offset_since, path, time.time_ns() - since * 1_000_000_000)
            offset = max(offset, start or 0)  # no times recorded: nothing is known to be older
        index = int(str(pod).rsplit("-", 1)[-1]) if pod is not None else 0
        stamper = None
        try:
            while True:
                if path is None:
                    path = self.service.log_path(project, name, pod, self.user)
                if path is not None and path.exists():
                    if timestamps and stamper is None:
                        stamper = await loop.run_in_executor(None, Stamper, path, offset)
                    sent = await self._send_file(path, offset, stamper)
                    if sent is None:
                        return  # the client went away
                    offset = sent
                if not follow or self.service.pod_finished(project, name, index):
                    if follow and path is not None and path.exists() and path.stat().st_size > offset:
                        continue  # the last lines written before it ended
                    break
                await asyncio.sleep(FOLLOW_POLL_SECONDS)
        finally:
            if stamper is not None:
                stamper.close()
        self.finish(set_content_type="text/plain; charset=utf-8")

    async def _send_file(self, path, offset: int, stamper: Stamper | None = None) -> int | None:
        """Send the file from ``offset`` to its end (each line after the time it arrived, with a
        ``stamper``); the offset reached, or None if the client closed the connection."""
        loop = asyncio.get_running_loop()
        try:
            f = await loop.run_in_executor(None, open, path, "rb")
        except FileNotFoundError:  # removed since it was looked at
            return offset
        try:
            if offset:
                f.seek(offset)
            while data := await loop.run_in_executor(None, f.read, CHUNK):
                offset += len(data)
                if stamper is not None:
                    data = await loop.run_in_executor(None, stamper.stamp, data)
                self.write(data)
                await self.flush()  # wait until it is on its way: one chunk in memory at a time
        except StreamClosedError:
            return None
        finally:
            f.close()
        return offset


class EventsHandler(RunaiHandler):
    """``GET /runai/api/v1/events``: server-sent events, replayed from ``Last-Event-ID``
    (or ``?since=``) and then live; ``?project=`` and ``?workload=`` filter.

    A replay delivers every stored event after the id, read from the store in pages off
    the event loop, or, when some of them were pruned already, says so: an ``event:
    reset`` (its ``id:`` the newest event) tells the client to reload the state and
    follow from there. A client that falls ``event_stream_buffer`` events behind the
    live events gets what was queued for it, then an ``event: overflow``, and the
    stream ends: it reconnects with ``Last-Event-ID`` and the rest comes from the store.
    One that stops reading altogether is disconnected ``STALL_SECONDS`` after it
    overflowed."""

    _closed = False
    queue: Subscription | None = None
    stall_seconds = STALL_SECONDS

    def on_connection_close(self) -> None:
        """The client left: its subscription ends now (not at the next event or heartbeat), and
        the waiting loop is woken to finish."""
        self._closed = True
        if self.queue is not None:
            self.service.unsubscribe(self.queue)
            try:
                self.queue.put_nowait(None)  # wakes the loop; a full queue wakes it anyway
            except asyncio.QueueFull:
                pass

    @web.authenticated
    @authorized
    @api
    async def get(self) -> None:
        project = self.get_argument("project", None)
        workload = self.get_argument("workload", None)
        header = self.request.headers.get("Last-Event-ID")
        if header is not None:  # the browser's resume: an id it cannot use starts afresh
            try:
                last = int(header) if len(header) <= 20 else None
            except ValueError:
                last = None
            if last is not None and not 0 <= last < 2**63:  # SQLite's integers
                last = None
        else:  # asked for by name: a bad value is a 400 naming it
            last = self.int_argument("since", None, minimum=0, maximum=2**63 - 1)
        service = self.service
        self.queue = service.subscribe(user=self.user, project=project)  # a 403 before the stream starts
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        try:
            if last is not None:
                last = await self._replay(last, project, workload)
            self.write(": connected\n\n")
            await self._flush()
            while not self._closed:
                queue = self.queue
                if queue.overflowed.is_set() and queue.empty():
                    self._write_overflow(queue.maxsize)
                    break
                try:
                    data = await asyncio.wait_for(queue.get(), timeout=HEARTBEAT_SECONDS)
                except asyncio.TimeoutError:
                    self.write(": keep-alive\n\n")
                    await self._flush()
                    continue
                if data is None:  # the client left (on_connection_close)
                    break
                if last is not None and data["id"] <= last:
                    continue
                if (project and data.get("project") != project) or (workload and data.get("workload") != workload):
                    continue
                self._write_event(data, shared=True)
                await self._flush()
        except StreamClosedError:
            pass
        finally:
            service.unsubscribe(self.queue)
        if not self._closed:
            self.finish(set_content_type="text/event-stream")

    async def _replay(self, last: int, project: str | None, workload: str | None) -> int:
        """Send every stored event after ``last`` (of the project / workload asked for);
        the id the live events go on from."""
        service = self.service
        loop = asyncio.get_running_loop()
        while True:
            page = await loop.run_in_executor(
                None, functools.partial(service.events_after, last, project=project, workload=workload,
                                        limit=REPLAY_PAGE, user=self.user))
            # read after the page: pruning takes the oldest first, so the page is whole
            # exactly when nothing after ``last`` was pruned by now
            oldest, newest = await loop.run_in_executor(None, service.event_ids)
            if last > newest or (oldest is None and last < newest) or (oldest is not None and oldest > last + 1):
                self._write_reset(last, newest)
                return newest
            for event in page:
                self._write_event(event.model_dump(mode="json"))
            if page:
                last = page[-1].id
                await self._flush()
            if len(page) == REPLAY_PAGE:
                continue
            if self.queue.overflowed.is_set():  # live events piled up while it replayed: they are stored too
                self.service.unsubscribe(self.queue)
                self.queue = self.service.subscribe(user=self.user, project=project)
                continue
            return last

    async def _flush(self) -> None:
        """Flush; if the client stops reading while its events overflow, give it
        ``STALL_SECONDS`` to take what was sent, then close the connection."""
        flush = asyncio.ensure_future(self.flush())
        queue = self.queue
        if not flush.done() and queue is not None:
            overflowed = asyncio.ensure_future(queue.overflowed.wait())
            try:
                await asyncio.wait({flush, overflowed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                overflowed.cancel()
            if not flush.done():  # it overflowed while this flush waits: it may still catch up
                done, _ = await asyncio.wait({flush}, timeout=self.stall_seconds)
                if not done:
                    flush.add_done_callback(lambda f: f.cancelled() or f.exception())
                    self.request.connection.close()
                    raise StreamClosedError()
        await flush

    def _write_event(self, data: dict, shared: bool = False) -> None:
        """Write one event; a ``shared`` one (a live event, the same dict for every
        subscriber) is encoded once for all of them."""
        self.write(_encoded(data) if shared else _sse(data))

    def _write_overflow(self, behind: int) -> None:
        data = {"type": "overflow",
                "message": f"this client fell {behind} events behind; the stream ends here: reconnect with "
                           f"Last-Event-ID (the id of the last event received) to get the rest"}
        self.write(f"event: overflow\ndata: {json.dumps(data)}\n\n")

    def _write_reset(self, last: int, newest: int) -> None:
        if last > newest:
            why = f"event {last} is unknown here (the newest is {newest}): the server's store was replaced"
        else:
            why = f"events after {last} were pruned (the server keeps its newest events only)"
        data = {"type": "reset", "id": newest,
                "message": f"{why}; reload the state (list the workloads) and follow the events from here"}
        self.write(f"id: {newest}\nevent: reset\ndata: {json.dumps(data)}\n\n")
