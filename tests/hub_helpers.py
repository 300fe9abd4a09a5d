"""A real JupyterHub for the tests (docs/jupyterhub.md's recipe): configurable-http-proxy, the
dummy authenticator, the simple local spawner, the runai service (`runai serve`) on a local
cluster of virtual GPUs with the test's queue file, and each user's server in client mode.

Everything lives in a temporary directory; the hub's admin API is reached with the token of a
token-only service ("ci"), written into the config file (never on a command line)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from live_server import free_port

CHP_NAME = "configurable-http-proxy"
START_TIMEOUT = 90


def find_chp() -> str | None:
    """configurable-http-proxy: $RUNAI_TEST_CHP, else where `make install-test` puts it (the venv's
    chp/ folder), else the PATH."""
    candidates = [os.environ.get("RUNAI_TEST_CHP", ""),
                  str(Path(sys.prefix) / "chp" / "node_modules" / ".bin" / CHP_NAME)]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which(CHP_NAME)


CONFIG = """\
import sys
c.JupyterHub.bind_url = "http://127.0.0.1:{proxy_port}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.command = [{chp!r}]
c.JupyterHub.db_url = "sqlite:///{base}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{base}/jupyterhub_cookie_secret"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allowed_users = {{"alice", "bob", "admin"}}
c.Authenticator.admin_users = {{"admin"}}
c.JupyterHub.load_groups = {{"team": {{"users": ["alice", "bob"]}}}}
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = "{base}/home/{{username}}"
c.Spawner.cmd = [{singleuser!r}]
c.Spawner.args = ["--allow-root"]
c.Spawner.start_timeout = {start_timeout}
c.Spawner.http_timeout = {start_timeout}
# the runai lines of docs/jupyterhub.md
c.Spawner.server_token_scopes = ["users:activity!user", "access:servers!server", "access:services!service=runai"]
c.Spawner.environment = {{"RUNAI_SERVICE_URL": "http://127.0.0.1:{service_port}/services/runai/",
                          "RUNAI_SERVICE_NAME": "runai"}}
c.JupyterHub.services = [
    {{"name": "runai", "url": "http://127.0.0.1:{service_port}", "oauth_no_confirm": True,
      "command": [sys.executable, "-m", "jupyter_runai.cli", "serve", "--RunaiApp.state_dir={base}/state",
                  "--RunaiApp.queues_file={base}/queues.yaml", "--config={base}/runai_service.json",
                  "--LocalCluster.virtual_gpus={gpus}", "--LocalCluster.stop_grace_seconds=1",
                  "--RunaiApp.interval=0.2", "--RunaiApp.stop_grace_seconds=1"],
      "environment": {{"HOME": "{base}/service-home", "JUPYTER_CONFIG_DIR": "{base}/service-home/config",
                       "JUPYTER_DATA_DIR": "{base}/service-home/data",
                       "JUPYTER_RUNTIME_DIR": "{base}/service-home/runtime"}}}},
    {{"name": "ci", "api_token": {ci_token!r}}},
]
c.JupyterHub.load_roles = [
    {{"name": "user", "scopes": ["self", "access:services!service=runai"]}},
    {{"name": "admin", "services": ["ci"]}},
]
"""


class Hub:
    """``start(users)``, ``stop()``; ``hub_api(method, path, body)`` as the admin service;
    ``token(user)``; ``user_api(user, method, path, body)`` through the user's own server."""

    def __init__(self, base: Path, chp: str, queues: str, gpus: str = "2x24Gi",
                 service_config: dict | None = None) -> None:
        self.base = base
        (base / "queues.yaml").write_text(queues)
        # the service's own settings (role bindings, as docs/jupyterhub.md shows)
        (base / "runai_service.json").write_text(json.dumps(service_config or {}))
        (base / "service-home").mkdir(parents=True, exist_ok=True)
        (base / "home").mkdir(exist_ok=True)
        self.ci_token = secrets.token_hex(24)
        self.proxy_port, self.service_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.proxy_port}/"
        self.service_url = f"http://127.0.0.1:{self.service_port}/services/runai/"
        (base / "jupyterhub_config.py").write_text(CONFIG.format(
            proxy_port=self.proxy_port, hub_port=free_port(), proxy_api_port=free_port(), chp=chp, base=base,
            singleuser=str(Path(sys.executable).parent / "jupyterhub-singleuser"), start_timeout=START_TIMEOUT,
            service_port=self.service_port, ci_token=self.ci_token, gpus=gpus))
        self.proc: subprocess.Popen | None = None
        self.log_path = base / "hub.log"
        self.tokens: dict[str, str] = {}

    def start(self, users: list[str]) -> "Hub":
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "RUNAI_", "JUPYTERHUB_"))}
        env["PYTHONUNBUFFERED"] = "1"
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", str(self.base / "jupyterhub_config.py")],
                                         cwd=self.base, env=env, stdout=log, stderr=subprocess.STDOUT)
        self._wait(lambda: self.hub_api("GET", "info")[0] == 200, "the hub's API to answer")
        for user in users:
            code, body = self.hub_api("POST", f"users/{user}/server")
            assert code in (201, 202), (code, body, self.log())
        for user in users:
            self._wait(lambda: self.hub_api("GET", f"users/{user}")[1].get("servers", {}).get("", {}).get("ready"),
                       f"{user}'s server")
            code, body = self.hub_api("POST", f"users/{user}/tokens", {"expires_in": 3600, "note": "runai test"})
            assert code == 201, (code, body)
            self.tokens[user] = body["token"]
        self._wait(lambda: self._service_up(), "the runai service")
        return self

    def _service_up(self) -> bool:
        try:
            return requests.get(self.service_url + "runai/api/v1/info", timeout=5).status_code in (401, 403)
        except requests.ConnectionError:
            return False

    def _wait(self, ready, what: str, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"the hub exited ({self.proc.returncode}):\n{self.log()}")
            try:
                if ready():
                    return
            except (requests.ConnectionError, ValueError, AttributeError):
                pass
            time.sleep(0.3)
        raise RuntimeError(f"waited {timeout}s for {what}:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text()[-8000:] if self.log_path.exists() else ""

    def hub_api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        response = requests.request(method, self.url + "hub/api/" + path, json=body, timeout=30,
                                    headers={"Authorization": f"token {self.ci_token}"})
        return response.status_code, _json(response)

    def user_api(self, user: str, method: str, path: str, body: Any = None, token: str | None = None,
                 **kwargs: Any) -> tuple[int, Any]:
        """``/runai/api/v1/<path>`` of ``user``'s own server, through the hub's proxy, with that user's
        token (``token=""``: none)."""
        token = self.tokens[user] if token is None else token
        headers = {"Authorization": f"token {token}"} if token else {}
        response = requests.request(method, f"{self.url}user/{user}/runai/api/v1/{path}", json=body,
                                    headers=headers, timeout=30, allow_redirects=False, **kwargs)
        return response.status_code, _json(response)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.hub_api("POST", "shutdown", {"servers": True, "proxy": True})
                self.proc.wait(30)
            except (requests.RequestException, subprocess.TimeoutExpired):
                self.proc.terminate()
                try:
                    self.proc.wait(15)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
        self.proc = None


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


__all__ = ["Hub", "find_chp"]
