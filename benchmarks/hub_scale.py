"""One shared service, a whole hub of sidebars: request latency, events delivered, memory.

    python benchmarks/hub_scale.py                  # 100 users, 30 s, both sidebar behaviours
    python benchmarks/hub_scale.py --quick --json   # 5 users, a few seconds (tests/test_hub_scale_run.py)

A real ``jupyter server`` with the extension runs the service (what ``runai serve`` runs for a
hub) on the local cluster with virtual GPUs. ``--users`` callers, each a researcher of one of
10 team projects (``hub_identity.py``), each keep what an open sidebar keeps: the event stream
open, and the sidebar's requests (projects, workloads in pages, nodes). Meanwhile an admin
submits ``--workloads`` short training workloads over the run, spread over the teams; they are
scheduled, run (real processes) and end, and each is deleted once it ended.

Each phase runs one sidebar behaviour against a fresh server:

* ``refetch`` (the sidebar before events carried their workload): every burst of events
  (120 ms) reads projects, the workload list and nodes again;
* ``apply`` (now): the workload list is read once, then patched from the workloads the events
  carry; projects and nodes are read again at most every 2 s while events come.

Figures per phase: sidebar request latency p50 / p99 and requests per second, events delivered
per second (all streams together), the events a user got of a project it may not see (must be
0), and the server's resident memory at the start and at its peak. The benchmark's clients run
on the same machine as the server: on a small machine they compete with it for the CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

import requests
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from hub_identity import ADMIN_TOKEN, TEAMS, team_of
from server_proc import rss_mib, start_server, stop_server

SIDE_REFRESH_S = 2.0  # the sidebar's bound on reading projects and nodes (labextension SIDE_REFRESH_MS)
BURST_S = 0.12  # the old sidebar's debounce of a burst of events
LIST_PAGE = 1000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))] if ordered else 0.0


def queues_yaml() -> str:
    lines = ["departments:", "  - {name: hub, deserved: {gpu: 8}}", "projects:"]
    lines += [f"  - {{name: team-{k}, department: hub, deserved: {{gpu: 0.8}}}}" for k in range(TEAMS)]
    return "\n".join(lines) + "\n"


class Stats:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.first: list[float] = []  # of each sidebar's first load (all open at once)
        self.errors = 0
        self.events = 0
        self.with_object = 0
        self.foreign = 0
        self.event_bytes = 0


class Sidebar:
    """One user's open sidebar: its event stream and its requests."""

    def __init__(self, base: str, number: int, mode: str, stats: Stats) -> None:
        self.base = base
        self.team = team_of(number)
        self.headers = {"Authorization": f"token bench-user-{number}"}
        self.mode = mode
        self.stats = stats
        self.client = AsyncHTTPClient(force_instance=True, max_clients=8)
        self.news = asyncio.Event()
        self.connected = asyncio.Event()
        self._text = ""
        self.loaded = False

    async def get(self, path: str) -> dict:
        t0 = time.perf_counter()
        try:
            response = await self.client.fetch(self.base + "runai/api/v1/" + path, headers=self.headers,
                                               request_timeout=60)
            body = json.loads(response.body)
        except HTTPClientError as exc:
            body = {}
            if exc.code != 403:  # a researcher may not see nodes: the sidebar shows the rest
                self.stats.errors += 1
        (self.stats.latencies if self.loaded else self.stats.first).append(time.perf_counter() - t0)
        return body

    async def read_all(self) -> None:
        await asyncio.gather(self.get("projects"), self.read_workloads(), self.get("nodes"))

    async def read_workloads(self) -> None:
        token = None
        while True:
            page = await self.get(f"workloads?limit={LIST_PAGE}" + (f"&continue={token}" if token else ""))
            token = page.get("continue")
            if not token:
                return

    def _on_chunk(self, chunk: bytes) -> None:
        self._text += chunk.decode()
        if ": connected" in self._text:
            self.connected.set()
        while "\n\n" in self._text:
            block, self._text = self._text.split("\n\n", 1)
            for line in block.split("\n"):
                if line.startswith("data: "):
                    self.stats.events += 1
                    self.stats.event_bytes += len(line)
                    event = json.loads(line[6:])
                    if event.get("project") != self.team:
                        self.stats.foreign += 1
                    if event.get("object"):
                        self.stats.with_object += 1
                    self.news.set()

    def open_stream(self) -> asyncio.Future:
        request = HTTPRequest(self.base + "runai/api/v1/events", headers=self.headers,
                              streaming_callback=self._on_chunk, request_timeout=3600)
        return asyncio.ensure_future(self.client.fetch(request, raise_error=False))

    async def run(self, until: float) -> None:
        await self.read_all()
        self.loaded = True
        last_side = 0.0
        while time.monotonic() < until:
            try:
                await asyncio.wait_for(self.news.wait(), timeout=max(0.01, until - time.monotonic()))
            except asyncio.TimeoutError:
                return
            if self.mode == "refetch":
                await asyncio.sleep(BURST_S)
                self.news.clear()
                await self.read_all()
            else:
                self.news.clear()
                wait = last_side + SIDE_REFRESH_S - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                last_side = time.monotonic()
                await asyncio.gather(self.get("projects"), self.get("nodes"))


async def drive(base: str, pid: int, users: int, workloads: int, seconds: float, mode: str) -> dict:
    stats = Stats()
    sidebars = [Sidebar(base, n, mode, stats) for n in range(users)]
    streams = [s.open_stream() for s in sidebars]
    await asyncio.wait_for(asyncio.gather(*(s.connected.wait() for s in sidebars)), 60)
    memory = [rss_mib(pid) or 0.0]
    admin = requests.Session()
    admin.headers["Authorization"] = f"token {ADMIN_TOKEN}"
    api = base + "runai/api/v1/"
    loop = asyncio.get_running_loop()

    def submit(i: int) -> None:
        response = admin.post(api + "workloads", json={
            "name": f"job-{i}", "project": f"team-{i % TEAMS}", "command": "sleep 0.3",
            "resources": {"gpu": 0.25}, "queue_anyway": True}, timeout=60)
        response.raise_for_status()

    def delete_ended() -> None:
        for w in admin.get(api + "workloads", params={"phase": "Succeeded"}, timeout=60).json()["workloads"]:
            admin.delete(api + f"workloads/{w['spec']['project']}/{w['spec']['name']}", timeout=60)

    t0 = time.monotonic()
    until = t0 + seconds
    running = [asyncio.ensure_future(s.run(until)) for s in sidebars]
    gap = seconds * 0.8 / max(1, workloads)
    for i in range(workloads):
        await loop.run_in_executor(None, submit, i)
        if i % 10 == 9:
            await loop.run_in_executor(None, delete_ended)
            memory.append(rss_mib(pid) or 0.0)
        await asyncio.sleep(max(0.0, t0 + (i + 1) * gap - time.monotonic()))
    while time.monotonic() < until:
        await asyncio.sleep(0.5)
        memory.append(rss_mib(pid) or 0.0)
    await asyncio.gather(*running)
    elapsed = time.monotonic() - t0
    logging.getLogger("tornado").setLevel(logging.CRITICAL)  # the streams are cut: no news
    for stream in streams:
        stream.cancel()
    for s in sidebars:
        s.client.close()
    lat = stats.latencies + stats.first
    return {
        "mode": mode, "users": users, "workloads": workloads, "seconds": round(elapsed, 1),
        "requests": len(lat), "requests_per_s": round(len(lat) / elapsed, 1), "request_errors": stats.errors,
        "latency_p50_ms": round(percentile(lat, 50) * 1000, 1),
        "latency_p99_ms": round(percentile(lat, 99) * 1000, 1),
        # after the first load, which every sidebar makes at the same moment
        "steady_p50_ms": round(percentile(stats.latencies, 50) * 1000, 1),
        "steady_p99_ms": round(percentile(stats.latencies, 99) * 1000, 1),
        "first_load_p99_ms": round(percentile(stats.first, 99) * 1000, 1),
        "events_delivered": stats.events, "events_per_s": round(stats.events / elapsed, 1),
        "events_with_object": stats.with_object, "foreign_events": stats.foreign,
        "event_kib_per_s": round(stats.event_bytes / 1024 / elapsed, 1),
        "memory_start_mib": memory[0], "memory_peak_mib": max(memory),
    }


def run_phase(users: int, workloads: int, seconds: float, mode: str) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="runai-hub-"))
    proc = None
    try:
        (tmp / "queues.yaml").write_text(queues_yaml())
        bindings = [{"role": "researcher", "group": f"team-{k}", "project": f"team-{k}"} for k in range(TEAMS)]
        proc, base = start_server(tmp, {
            "ServerApp": {"identity_provider_class": "hub_identity.BenchIdentityProvider"},
            "RunaiApp": {"state_dir": str(tmp / "state"), "queues_file": str(tmp / "queues.yaml"),
                         "role_bindings": bindings, "stop_grace_seconds": 1,
                         "run_as": "service"},  # the simulated users have no system accounts
            "LocalCluster": {"virtual_gpus": "2x24Gi"},
        }, ADMIN_TOKEN)
        return asyncio.run(drive(base, proc.pid, users, workloads, seconds, mode))
    finally:
        stop_server(proc)
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--workloads", type=int, default=100, help="submitted over the run")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--modes", default="refetch,apply", help="sidebar behaviours, in order")
    parser.add_argument("--quick", action="store_true", help="5 users, 10 workloads, 4 s: a smoke run")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.users, args.workloads, args.seconds = 5, 10, 4.0
    modes = [m for m in args.modes.split(",") if m]
    unknown = set(modes) - {"refetch", "apply"}
    if unknown:
        parser.error(f"--modes: {', '.join(sorted(unknown))} unknown; allowed: refetch, apply")
    phases = {mode: run_phase(args.users, args.workloads, args.seconds, mode) for mode in modes}
    figures: dict = {"phases": phases}
    if {"refetch", "apply"} <= set(phases):
        before, after = phases["refetch"], phases["apply"]
        figures["ratios"] = {  # before / after: above 1 is better now
            "requests_per_s": round(before["requests_per_s"] / max(after["requests_per_s"], 1e-9), 2),
            "latency_p50": round(before["latency_p50_ms"] / max(after["latency_p50_ms"], 1e-9), 2),
            "latency_p99": round(before["latency_p99_ms"] / max(after["latency_p99_ms"], 1e-9), 2),
            "steady_p99": round(before["steady_p99_ms"] / max(after["steady_p99_ms"], 1e-9), 2),
            "memory_peak": round(before["memory_peak_mib"] / max(after["memory_peak_mib"], 1e-9), 2),
        }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    for mode, f in phases.items():
        print(f"{mode:8} {f['users']} users, {f['workloads']} workloads, {f['seconds']} s: requests "
              f"{f['requests_per_s']}/s p50 {f['latency_p50_ms']} ms p99 {f['latency_p99_ms']} ms (after the first "
              f"load: p99 {f['steady_p99_ms']} ms) "
              f"({f['request_errors']} errors); events {f['events_per_s']}/s ({f['events_with_object']} with "
              f"their workload, {f['foreign_events']} of projects not theirs); memory {f['memory_start_mib']} -> "
              f"{f['memory_peak_mib']} MiB")
    if "ratios" in figures:
        print("before/after (refetch/apply):", ", ".join(f"{k} x{v}" for k, v in figures["ratios"].items()))


if __name__ == "__main__":
    sys.exit(main())
