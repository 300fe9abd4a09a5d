"""Streaming handlers: pod logs (with follow) and the server-sent event stream."""

from __future__ import annotations

import asyncio
import json
from collections import deque

from jupyter_server.auth.decorator import authorized
from tornado import web
from tornado.iostream import StreamClosedError

from .base import RunaiHandler, api

FOLLOW_POLL_SECONDS = 0.25
HEARTBEAT_SECONDS = 15.0
CHUNK = 64 * 1024


def _tail_offset(path, lines: int) -> int:
    """Byte offset where the last ``lines`` lines of the file start."""
    if lines <= 0:
        return path.stat().st_size
    starts: deque[int] = deque(maxlen=lines)
    offset = 0
    with open(path, "rb") as f:
        for line in f:
            starts.append(offset)
            offset += len(line)
    return starts[0] if starts else 0


class LogsHandler(RunaiHandler):
    """``GET .../logs?pod=&follow=&tail=``: the pod's output as text; ``follow`` streams until it ends."""

    @web.authenticated
    @authorized
    @api
    async def get(self, project: str, name: str) -> None:
        pod = self.get_argument("pod", None)
        follow = self.flag("follow") if "follow" in self.request.arguments else False
        tail = self.int_argument("tail", None)
        path = self.service.log_path(project, name, pod)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Content-Type-Options", "nosniff")
        offset = 0
        if path is not None and path.exists() and tail is not None:
            offset = _tail_offset(path, tail)
        index = int(str(pod).rsplit("-", 1)[-1]) if pod is not None else 0
        while True:
            if path is None:
                path = self.service.log_path(project, name, pod)
            if path is not None and path.exists():
                with open(path, "rb") as f:
                    f.seek(offset)
                    while True:
                        data = f.read(CHUNK)
                        if not data:
                            break
                        offset += len(data)
                        self.write(data)
                if follow:
                    try:
                        await self.flush()
                    except StreamClosedError:
                        return
            if not follow or self.service.pod_finished(project, name, index):
                if follow and path is not None and path.exists() and path.stat().st_size > offset:
                    continue  # the last lines written before it ended
                break
            await asyncio.sleep(FOLLOW_POLL_SECONDS)
        self.finish(set_content_type="text/plain; charset=utf-8")


class EventsHandler(RunaiHandler):
    """``GET /runai/api/v1/events``: server-sent events, replayed from ``Last-Event-ID``
    (or ``?since=``) and then live; ``?project=`` and ``?workload=`` filter."""

    _closed = False

    def on_connection_close(self) -> None:
        self._closed = True

    @web.authenticated
    @authorized
    @api
    async def get(self) -> None:
        project = self.get_argument("project", None)
        workload = self.get_argument("workload", None)
        since = self.request.headers.get("Last-Event-ID") or self.get_argument("since", None)
        try:
            last = int(since) if since and len(since) <= 20 else None
        except ValueError:
            last = None
        if last is not None and not 0 <= last < 2**63:  # SQLite's integers
            last = None
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        service = self.service
        queue = service.subscribe()
        try:
            if last is not None:
                for event in service.store.events(since_id=last, project=project, workload=workload,
                                                  limit=10_000):
                    self._write_event(event.model_dump(mode="json"))
                    last = event.id
            self.write(": connected\n\n")
            await self.flush()
            while not self._closed:
                try:
                    data = await asyncio.wait_for(queue.get(), timeout=HEARTBEAT_SECONDS)
                except asyncio.TimeoutError:
                    self.write(": keep-alive\n\n")
                    await self.flush()
                    continue
                if last is not None and data["id"] <= last:
                    continue
                if (project and data.get("project") != project) or (workload and data.get("workload") != workload):
                    continue
                self._write_event(data)
                await self.flush()
        except StreamClosedError:
            pass
        finally:
            service.unsubscribe(queue)
        if not self._closed:
            self.finish(set_content_type="text/event-stream")

    def _write_event(self, data: dict) -> None:
        self.write(f"id: {data['id']}\nevent: {data['type']}\ndata: {json.dumps(data)}\n\n")
