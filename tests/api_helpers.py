"""Shared pieces of the REST tests: the server config, a non-raising fetch, waiting."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Callable

from tornado.httpclient import HTTPClientError


def server_config(tmp_path, **runai: Any) -> dict[str, Any]:
    """A Jupyter server with the extension on a local cluster of virtual GPUs, state in tmp_path."""
    local = runai.pop("local", {})
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_runai": True}},
        "RunaiApp": {"state_dir": str(tmp_path / "state"), "interval": 0.05, "stop_grace_seconds": 1,
                     "scale_down_delay": 0.5, **runai},
        "LocalCluster": {"virtual_gpus": "2x24Gi", "watchdog_interval": 0.2, **local},
    }


class Api:
    """``await api.get("workloads")`` -> (status, JSON); never raises on HTTP errors."""

    def __init__(self, fetch) -> None:
        self.fetch = fetch

    async def call(self, method: str, *path: str, body: Any = None, raw: bytes | None = None,
                   params: dict | None = None) -> tuple[int, Any]:
        kwargs: dict[str, Any] = {"method": method}
        if raw is not None:
            kwargs["body"] = raw
        elif body is not None:
            kwargs["body"] = json.dumps(body)
        elif method in ("POST", "PUT", "PATCH"):
            kwargs["body"] = b"{}"
        if params:
            kwargs["params"] = params
        try:
            response = await self.fetch("runai", "api", "v1", *path, **kwargs)
        except HTTPClientError as exc:
            response = exc.response
            assert response is not None, exc
        text = response.body.decode() if response.body else ""
        ctype = response.headers.get("Content-Type", "")
        return response.code, (json.loads(text) if text and "json" in ctype else text)

    async def get(self, *path: str, **kw) -> tuple[int, Any]:
        return await self.call("GET", *path, **kw)

    async def post(self, *path: str, **kw) -> tuple[int, Any]:
        return await self.call("POST", *path, **kw)

    async def delete(self, *path: str, **kw) -> tuple[int, Any]:
        return await self.call("DELETE", *path, **kw)

    async def submit(self, **spec: Any) -> dict[str, Any]:
        code, body = await self.post("workloads", body=spec)
        assert code == 201, body
        return body

    async def workload(self, name: str, project: str = "default") -> dict[str, Any]:
        code, body = await self.get("workloads", project, name)
        assert code == 200, body
        return body

    async def wait_phase(self, name: str, *phases: str, project: str = "default", timeout: float = 20) -> dict:
        return await wait_for(lambda: self.workload(name, project),
                              lambda w: w["status"]["phase"] in phases, timeout,
                              f"{name} to reach {' or '.join(phases)}")

    async def logs(self, name: str, project: str = "default", **params: Any) -> str:
        code, body = await self.get("workloads", project, name, "logs",
                                    params={k: str(v) for k, v in params.items()})
        assert code == 200, body
        return body


def kill_pods(service) -> None:
    """Test teardown: the server leaves pods running on shutdown (a restart re-adopts them);
    tests must not leave processes behind, so end every pod group still alive."""
    import os
    import signal

    for handle in service.handles.values():
        pgid = handle.get("pgid")
        if pgid:
            try:
                os.killpg(int(pgid), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        pid = handle.get("pid")
        if pid:  # the runner is a child of this test process (the server runs in it): reap it
            try:
                os.waitpid(int(pid), 0)
            except ChildProcessError:
                pass


async def wait_for(get: Callable[[], Any], ok: Callable[[Any], bool], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = await get()
        if ok(value):
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; last seen: {json.dumps(value, default=str)[:2000]}")


def fill_store(store) -> None:
    """Make ``store``'s database full, as a full disk does: SQLite answers "database or disk is
    full" (SQLITE_FULL) to any write that needs room. The file may not grow past its size
    (``PRAGMA max_page_count``, this connection only), and the room left in the pages of the
    events and data_sources tables is taken by filler rows, so a write that records an event
    (every request, every cycle that changes something) or a data source fails for certain."""
    import sqlite3  # noqa: PLC0415

    with store._lock:
        db = store._db
        db.execute("VACUUM")  # no free pages left inside the file
        (pages,) = db.execute("PRAGMA page_count").fetchone()
        db.execute(f"PRAGMA max_page_count = {pages}")
        for size in (2048, 512, 128, 32, 8, 2, 1):
            for sql, row in (
                ("INSERT INTO events (at, type, message) VALUES ('2000-01-01T00:00:00+00:00', 'Warning', ?)",
                 lambda: ("x" * size,)),
                ("INSERT INTO data_sources (project, name, body) VALUES ('~filler', ?, '{}')",
                 lambda: (f"{size}-{time.monotonic_ns()}" + "x" * size,)),
            ):
                while True:
                    try:
                        db.execute(sql, row())
                    except sqlite3.OperationalError:
                        break


def unfill_store(store) -> None:
    """Room on the disk again (after :func:`fill_store`)."""
    with store._lock:
        store._db.execute("PRAGMA max_page_count = 1073741823")
