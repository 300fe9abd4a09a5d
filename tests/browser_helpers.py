"""JupyterLab in a subprocess (the extension's server side and the prebuilt labextension),
and Debian's chromium driven by Python Playwright, for the sidebar's browser tests.

No browser is downloaded: Playwright launches the system chromium (``apt-get install chromium``)
through ``executable_path``, with the flags it needs on these machines.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from live_server import free_port

TOKEN = "browser-test-token"
START_TIMEOUT = 90

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str | None:
    """The system chromium (Debian's package), or RUNAI_CHROMIUM."""
    for candidate in (os.environ.get("RUNAI_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser",
                      shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


class LabServer:
    """``jupyter lab`` on a free port, its HOME, Jupyter dirs and runai state in ``base``."""

    def __init__(self, base: Path, config: dict[str, Any] | None = None) -> None:
        self.base = base
        self.dirs = {name: base / name for name in ("home", "runtime", "config", "data", "state", "root")}
        for path in self.dirs.values():
            path.mkdir(parents=True, exist_ok=True)
        settings: dict[str, Any] = {
            "ServerApp": {"jpserver_extensions": {"jupyter_runai": True}},
            "LabApp": {"news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate"},
            "LocalCluster": {"virtual_gpus": "2x24Gi", "stop_grace_seconds": 1},
            "RunaiApp": {"stop_grace_seconds": 1, "interval": 0.2},
        }
        for section, values in (config or {}).items():
            settings.setdefault(section, {}).update(values)
        (self.dirs["config"] / "jupyter_server_config.json").write_text(json.dumps(settings))
        # no first-run "get notified about news?" toast in screenshots
        settings_dir = self.dirs["config"] / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
        settings_dir.mkdir(parents=True, exist_ok=True)
        (settings_dir / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("JUPYTER", "RUNAI_", "JUPYTERHUB_")) and k != "JPY_API_TOKEN"}
        env.update(HOME=str(self.dirs["home"]), JUPYTER_RUNTIME_DIR=str(self.dirs["runtime"]),
                   JUPYTER_CONFIG_DIR=str(self.dirs["config"]), JUPYTER_DATA_DIR=str(self.dirs["data"]),
                   JUPYTERLAB_SETTINGS_DIR=str(self.dirs["config"] / "lab" / "user-settings"),
                   JUPYTERLAB_WORKSPACES_DIR=str(self.dirs["config"] / "lab" / "workspaces"),
                   PYTHONUNBUFFERED="1")
        self.env = env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.proc: subprocess.Popen | None = None
        self.log_path = base / "lab.log"

    def start(self) -> "LabServer":
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={self.port}",
             "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={TOKEN}",
             f"--ServerApp.root_dir={self.dirs['root']}", f"--RunaiApp.state_dir={self.dirs['state']}"],
            env=self.env, cwd=self.dirs["root"], stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited ({self.proc.returncode}):\n{self.log_path.read_text()}")
            try:
                if self.api("GET", "info")[0] == 200:
                    return self
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"jupyter lab did not answer in {START_TIMEOUT}s:\n{self.log_path.read_text()}")
            time.sleep(0.25)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # end every workload first: pods are process groups that outlive the server on purpose
            try:
                _, body = self.api("GET", "workloads")
                for w in body.get("workloads", []):
                    self.api("DELETE", f"workloads/{w['spec']['project']}/{w['spec']['name']}")
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline and self.api("GET", "workloads")[1].get("workloads"):
                    time.sleep(0.2)
            except Exception:  # noqa: BLE001 - best effort before the server goes
                pass
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        response = requests.request(method, self.url + "runai/api/v1/" + path, json=body, timeout=10,
                                    headers={"Authorization": f"token {TOKEN}"})
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, response.text

    @property
    def lab_url(self) -> str:
        return f"{self.url}lab?token={TOKEN}"
