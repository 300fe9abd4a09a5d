"""A real ``jupyter server`` with the extension, as a subprocess, for the benchmarks that go
through HTTP (service.py's ``list``, hub_scale.py)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(tmp: Path, config: dict[str, Any], token: str, ready_path: str = "info",
                 timeout: float = 60) -> tuple[subprocess.Popen, str]:
    """Start a server whose state is under ``tmp`` with ``config`` (merged over the extension's
    enabling) and wait until ``ready_path`` of the API answers ``token``; (process, base URL)."""
    port = free_port()
    (tmp / "config").mkdir(parents=True, exist_ok=True)
    (tmp / "runtime").mkdir(parents=True, exist_ok=True)
    server = {"jpserver_extensions": {"jupyter_runai": True}, **config.pop("ServerApp", {})}
    (tmp / "config" / "jupyter_server_config.json").write_text(json.dumps({"ServerApp": server, **config}))
    path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"), "JUPYTER_CONFIG_DIR": str(tmp / "config"),
           "PYTHONPATH": path}
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root", f"--port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server ended with code {proc.returncode}")
        try:
            if requests.get(base + "runai/api/v1/" + ready_path, headers={"Authorization": f"token {token}"},
                            timeout=30).ok:
                return proc, base
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    proc.terminate()
    raise RuntimeError(f"the server did not answer within {timeout} s")


def stop_server(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def rss_mib(pid: int) -> float | None:
    """The process's resident memory (MiB), from /proc; None where there is none."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None
