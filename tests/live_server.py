"""A real ``jupyter server`` subprocess with the extension, for tests that need a whole process:
restarts, kills, the CLI finding the server by itself.

HOME, the Jupyter directories and the runai state live in a temporary directory, so
the tests touch nothing of the machine's.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

TOKEN = "live-server-token"
START_TIMEOUT = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """``start()``, ``kill()`` (SIGKILL: a crash), ``stop()``; ``api(method, path, body)``.

    Subclasses change what runs (``module``), its settings and environment
    (``settings()``, ``prepare()``, ``extra_env()``): the browser tests' ``LabServer``."""

    module = "jupyter_server"
    token = TOKEN
    log_name = "server.log"
    start_timeout = START_TIMEOUT

    def __init__(self, base: Path, config: dict[str, Any] | None = None) -> None:
        self.base = base
        self.dirs = {name: base / name for name in ("home", "runtime", "config", "data", "state", "root")}
        for path in self.dirs.values():
            path.mkdir(parents=True, exist_ok=True)
        settings = self.settings()
        for section, values in (config or {}).items():
            settings.setdefault(section, {}).update(values)
        (self.dirs["config"] / "jupyter_server_config.json").write_text(json.dumps(settings))
        self.prepare()
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("JUPYTER", "RUNAI_", "JUPYTERHUB_")) and k != "JPY_API_TOKEN"}
        env.update(HOME=str(self.dirs["home"]), JUPYTER_RUNTIME_DIR=str(self.dirs["runtime"]),
                   JUPYTER_CONFIG_DIR=str(self.dirs["config"]), JUPYTER_DATA_DIR=str(self.dirs["data"]),
                   PYTHONUNBUFFERED="1", **self.extra_env())
        self.env = env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.proc: subprocess.Popen | None = None
        self.log_path = base / self.log_name

    def settings(self) -> dict[str, Any]:
        """The server's configuration before the test's own ``config`` is merged in."""
        return {
            "ServerApp": {"jpserver_extensions": {"jupyter_runai": True}},
            "LocalCluster": {"virtual_gpus": "2x24Gi", "stop_grace_seconds": 2},
            "RunaiApp": {"stop_grace_seconds": 2, "interval": 0.2},
        }

    def prepare(self) -> None:
        """More files in the server's directories, before it starts."""

    def extra_env(self) -> dict[str, str]:
        return {}

    def start(self, ready: int = 200) -> "LiveServer":
        """Start it and wait until ``GET /info`` answers ``ready`` (503: a server that runs no
        scheduler) and it is in the running-server list."""
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module, "--no-browser", "--allow-root", f"--port={self.port}",
             "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={self.token}",
             f"--ServerApp.root_dir={self.dirs['root']}", f"--RunaiApp.state_dir={self.dirs['state']}"],
            env=self.env, cwd=self.dirs["root"], stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the Jupyter server exited ({self.proc.returncode}):\n{self.log_path.read_text()}")
            try:
                # ready: it answers, and it is in the running-server list (clients find it there)
                if self.api("GET", "info")[0] == ready and list(self.dirs["runtime"].glob("jpserver-*.json")):
                    return self
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"the Jupyter server did not answer in {self.start_timeout}s:\n"
                                   f"{self.log_path.read_text()}")
            time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL the server: nothing gets a chance to clean up (its pods keep running)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def end_workloads(self, timeout: float = 15) -> None:
        """Delete every workload and wait until they are gone: pods are process groups that
        outlive the server on purpose, and tests must leave none behind."""
        try:
            for w in self.api("GET", "workloads")[1].get("workloads", []):
                self.api("DELETE", f"workloads/{w['spec']['project']}/{w['spec']['name']}")
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.api("GET", "workloads")[1].get("workloads"):
                time.sleep(0.2)
        except (requests.RequestException, AttributeError, ValueError):
            pass  # best effort: the server may be gone already

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def api(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
        """One REST call (``token``: another than the server's, for a server with its own identity provider)."""
        response = requests.request(method, self.url + "runai/api/v1/" + path, json=body, timeout=10,
                                    headers={"Authorization": f"token {token or self.token}"})
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, response.text

    def workload(self, name: str, project: str = "default") -> dict[str, Any]:
        code, body = self.api("GET", f"workloads/{project}/{name}")
        assert code == 200, body
        return body

    def wait_phase(self, name: str, *phases: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            last = self.workload(name)
            if last["status"]["phase"] in phases:
                return last
            time.sleep(0.1)
        raise AssertionError(f"{name} did not reach {phases}: {json.dumps(last)[:1500]}")
