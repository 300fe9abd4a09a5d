"""The one REST client of the runai API (``/runai/api/v1/``, see docs/rest-api.md).

Used by the ``runai`` CLI, the ``%runai`` magics, the widgets and the kernel
provisioner. It finds the Jupyter server by itself (:func:`find_server`), in
this order:

1. explicit arguments (``RunaiClient(url=..., token=...)``, ``runai --url``);
2. the environment variables ``RUNAI_URL`` and ``RUNAI_TOKEN``;
3. JupyterHub's single-user environment: ``JUPYTERHUB_SERVICE_URL`` (the
   single-user server's own URL, base URL included) with
   ``JUPYTERHUB_API_TOKEN``; with only ``JUPYTERHUB_SERVICE_PREFIX``, the
   running server whose base URL is that prefix;
4. jupyter_server's list of running servers (``jpserver-<pid>.json`` files in
   the Jupyter runtime directory): inside a kernel, the server that started it
   (``JPY_PARENT_PID``, set by jupyter_client for the kernels it launches, when
   that is this process's parent);
   otherwise the one whose root directory contains the
   current directory (the deepest such root), else the most recently started;
   servers whose process is gone are ignored.

A token given without a URL (``--token``, ``RUNAI_TOKEN``) applies to whatever
server is found; a URL given without a token takes the token of the running
server with that URL, if there is one.

Errors are :class:`RunaiError` (``status``, ``message``, ``field``,
``allowed``), built from the server's ``{"error": {...}}`` body;
:class:`ServerNotFoundError` and :class:`RunaiConnectionError` (both
subclasses, ``status`` ``None``) say in words what to do.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping
from urllib.parse import quote, urlsplit, urlunsplit

import requests

from .request_text import workload_request_text

__all__ = [
    "API_PREFIX",
    "Client",
    "Node",
    "Project",
    "Workload",
    "WorkloadList",
    "node_view_refusal",
    "RunaiClient",
    "RunaiConnectionError",
    "RunaiError",
    "ServerInfo",
    "ServerNotFoundError",
    "default_project",
    "find_server",
]

API_PREFIX = "runai/api/v1/"
"""Path of the API below the Jupyter server's base URL."""

HOW_TO_FIX = (
    "Start one with `jupyter lab` (or `jupyter server`) in this environment, or say where it is: "
    "`runai --url http://localhost:8888/ --token <TOKEN>` or the environment variables RUNAI_URL and "
    "RUNAI_TOKEN (`jupyter server list` shows the URL and token of running servers)."
)

# connect, read timeouts (seconds) for ordinary calls; streams read without a timeout
TIMEOUT = (10, 60)
#: workloads asked for per page when a list is read (the server returns at most 10,000 a page)
LIST_PAGE = 1000


def default_project(environ: Mapping[str, str] | None = None) -> str | None:
    """The project this user names when a command names none: ``RUNAI_PROJECT``, else the one
    saved by ``runai config project NAME`` (:func:`saved_project`). ``None`` when neither is
    set: the client then asks the server (:attr:`RunaiClient.project`), which offers the first
    project the caller may submit to; no project name is assumed to exist."""
    environ = os.environ if environ is None else environ
    return environ.get("RUNAI_PROJECT") or saved_project(environ) or None


# --------------------------------------------------------------------------- saved settings


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where ``runai config`` saves its settings: ``$RUNAI_CONFIG``, else ``runai_cli.json`` in the
    Jupyter config directory (``jupyter --config-dir``: ``~/.jupyter`` or ``$JUPYTER_CONFIG_DIR``)."""
    environ = os.environ if environ is None else environ
    if environ.get("RUNAI_CONFIG"):
        return Path(environ["RUNAI_CONFIG"]).expanduser()
    if environ.get("JUPYTER_CONFIG_DIR"):
        return Path(environ["JUPYTER_CONFIG_DIR"]).expanduser() / "runai_cli.json"
    from jupyter_core.paths import jupyter_config_dir

    return Path(jupyter_config_dir()) / "runai_cli.json"


def saved_settings(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The saved settings (``{}`` when there are none or the file is unreadable)."""
    try:
        with open(config_path(environ), encoding="utf-8") as f:
            settings = json.load(f)
    except (OSError, ValueError):
        return {}
    return settings if isinstance(settings, dict) else {}


def saved_project(environ: Mapping[str, str] | None = None) -> str | None:
    """The default project saved by ``runai config project NAME``, if any."""
    project = saved_settings(environ).get("project")
    return project if isinstance(project, str) and project else None


def save_settings(changes: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Path:
    """Merge ``changes`` into the saved settings (a value ``None`` removes the key); written to a
    temporary file and renamed, so a reader never sees half a file. Returns the file's path."""
    path = config_path(environ)
    settings = saved_settings(environ)
    for key, value in changes.items():
        if value is None:
            settings.pop(key, None)
        else:
            settings[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)
    return path


# --------------------------------------------------------------------------- errors


class RunaiError(Exception):
    """An error from the runai API, or on the way to it.

    ``status`` is the HTTP status (``None`` when no answer came back),
    ``message`` the text to show, ``field`` the request field at fault (e.g.
    ``resources.gpu``) and ``allowed`` what that field accepts; ``errors`` lists
    every item when the server reported several.
    """

    def __init__(
        self,
        status: int | None,
        message: str,
        field: str | None = None,
        allowed: Any = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.allowed = allowed
        self.errors = errors or []

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, message={self.message!r}, field={self.field!r})"

    @classmethod
    def from_response(cls, response: requests.Response, server: "ServerInfo | None" = None) -> "RunaiError":
        """Build the error from an answer with a 4xx/5xx status."""
        status = response.status_code
        body: Any = None
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            error = body["error"]
            message = str(error.get("message") or response.reason or f"HTTP {status}")
            return cls(status, message, error.get("field"), error.get("allowed"), error.get("errors"))
        # Not our error document: Jupyter's own ({"message": ..., "reason": ...}) or a page.
        where = server.url if server else response.url
        detail = ""
        if isinstance(body, dict):
            detail = str(body.get("message") or body.get("reason") or "")
        if detail == response.reason:
            detail = ""
        if status in (401, 403) and not (isinstance(body, dict) and "error" in body):
            hint = (
                f"the Jupyter server at {where} refused the request ({status} {response.reason})"
                + (f": {detail}" if detail else "")
                + ". Pass the server's token with --token or RUNAI_TOKEN (`jupyter server list` shows it)."
            )
            return cls(status, hint)
        if status == 404:
            hint = (
                f"{response.url}: not found (404)"
                + (f": {detail}" if detail else "")
                + f". If every command says this, the server at {where} does not run the runai extension: "
                "install jupyter-runai in the server's environment and restart it."
            )
            return cls(status, hint)
        text = detail or _short_text(response.text) or response.reason or ""
        return cls(status, f"the server answered {status} {response.reason}: {text}".rstrip(": "))


def node_view_refusal(error: RunaiError) -> str | None:
    """The line a node view (`runai top`, `runai nodes`, the GPU widget) shows in place of the nodes
    when the server refused them (403): which roles would show them, as the server's answer names
    them. ``None`` for any other error."""
    if error.status != 403:
        return None
    roles = [str(r) for r in error.allowed] if isinstance(error.allowed, list) else []
    needs = (", ".join(roles[:-1]) + " or " + roles[-1]) if len(roles) > 1 else (roles[0] if roles else
                                                                                   "a role that sees nodes")
    return (f"Node views (nodes and GPU devices) need the ML engineer, viewer or admin role on some scope "
            f"({needs}); ask an admin to grant one (runai access grant).")


class ServerNotFoundError(RunaiError):
    """No Jupyter server was found to talk to."""

    def __init__(self, message: str) -> None:
        super().__init__(None, message)


class RunaiConnectionError(RunaiError):
    """The server could not be reached (refused, timed out, name not resolved, TLS)."""

    def __init__(self, message: str) -> None:
        super().__init__(None, message)


def _short_text(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- discovery


@dataclass(frozen=True)
class ServerInfo:
    """Where the server is: its URL (base URL included, ending in ``/``), token and how it was found."""

    url: str
    token: str | None
    source: str

    @property
    def api_url(self) -> str:
        return self.url + API_PREFIX


def _normalize_url(url: str) -> str:
    url = url.strip()
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = parts.netloc
    # A server bound to every interface (ip '' or 0.0.0.0) is reached on loopback.
    if host in ("", "0.0.0.0", "::"):
        port = f":{parts.port}" if parts.port else ""
        netloc = f"127.0.0.1{port}" if host != "::" else f"[::1]{port}"
    path = parts.path or "/"
    if not path.endswith("/"):
        path += "/"
    return urlunsplit((parts.scheme, netloc, path, "", ""))


def _same_server(a: str, b: str) -> bool:
    """True when two server URLs name the same server (localhost and 127.0.0.1 are the same)."""

    def key(url: str) -> tuple[str, int | None, str]:
        parts = urlsplit(_normalize_url(url))
        host = (parts.hostname or "").lower()
        if host in ("localhost", "127.0.0.1", "::1"):
            host = "localhost"
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return host, port, parts.path

    try:
        return key(a) == key(b)
    except ValueError:
        return False


def _pid_alive(pid: Any) -> bool:
    """Whether process ``pid`` still runs (what jupyter_server's ``check_pid`` decides)."""
    try:
        pid = int(pid)
    except (TypeError, ValueError):
        return False
    if pid <= 0:
        return False
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process there
        from jupyter_server.utils import check_pid

        return bool(check_pid(pid))
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, as another user
        return True
    except OSError:
        return False
    return True


def running_servers(runtime_dir: str | None = None) -> list[dict[str, Any]]:
    """The running Jupyter servers, newest first: the ``jpserver-<pid>.json`` files of the runtime
    directory whose process is alive (a dead server's file is removed, as jupyter_server does).

    Each is the server's info dict (``url``, ``token``, ``root_dir``,
    ``base_url``, ``pid``, ...) plus ``started`` (the info file's time).

    The files are read here rather than through ``jupyter_server.serverapp.list_running_servers``:
    importing that module costs seconds, and every ``runai`` command starts by finding its server.
    """
    if runtime_dir is None:
        from jupyter_core.paths import jupyter_runtime_dir

        runtime_dir = jupyter_runtime_dir()
    try:
        names = os.listdir(runtime_dir)
    except (FileNotFoundError, NotADirectoryError):
        return []
    servers = []
    for file_name in names:
        if not (file_name.startswith("jpserver-") and file_name.endswith(".json")):
            continue  # jpserver-<pid>-open.html and the kernels' files
        path = Path(runtime_dir) / file_name
        try:
            with open(path, encoding="utf-8") as f:
                started = os.fstat(f.fileno()).st_mtime
                info = json.load(f)
        except (OSError, ValueError):
            continue  # gone meanwhile, unreadable, or being written
        if not isinstance(info, dict):
            continue
        if "pid" not in info or not _pid_alive(info["pid"]):
            try:
                path.unlink()
            except OSError:
                pass
            continue
        if not info.get("url") or str(info["url"]).startswith("http+unix"):
            continue  # a server on a unix socket: requests cannot reach it without extras
        servers.append({**info, "started": started})
    servers.sort(key=lambda info: info["started"], reverse=True)
    return servers


def _contains(root: str, path: str) -> bool:
    try:
        Path(path).resolve().relative_to(Path(root).resolve())
        return True
    except (ValueError, OSError):
        return False


def _pick_server(servers: list[dict[str, Any]], cwd: str) -> dict[str, Any] | None:
    """The server whose root_dir holds ``cwd`` (the deepest such root, then the newest), else the newest."""
    holding = [info for info in servers if info.get("root_dir") and _contains(info["root_dir"], cwd)]
    if holding:
        return max(holding, key=lambda info: (len(Path(info["root_dir"]).resolve().parts), info["started"]))
    return servers[0] if servers else None


def _token_for(url: str, runtime_dir: str | None) -> str | None:
    try:
        servers = running_servers(runtime_dir)
    except Exception:  # noqa: BLE001 - the token lookup is a convenience
        return None
    for info in servers:
        if _same_server(info["url"], url):
            return info.get("token") or None
    return None


def find_server(
    url: str | None = None,
    token: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: str | None = None,
    runtime_dir: str | None = None,
) -> ServerInfo:
    """Find the Jupyter server to talk to (see the module docstring for the order).

    Raises :class:`ServerNotFoundError`, whose message says how to fix it, when
    there is none.
    """
    environ = os.environ if environ is None else environ
    cwd = cwd or os.getcwd()
    token = token or None

    if url:
        return ServerInfo(_normalize_url(url), token or environ.get("RUNAI_TOKEN") or _token_for(url, runtime_dir),
                          "--url")
    if environ.get("RUNAI_URL"):
        env_url = environ["RUNAI_URL"]
        return ServerInfo(
            _normalize_url(env_url), token or environ.get("RUNAI_TOKEN") or _token_for(env_url, runtime_dir),
            "RUNAI_URL",
        )
    token = token or environ.get("RUNAI_TOKEN") or None

    hub_token = environ.get("JUPYTERHUB_API_TOKEN") or environ.get("JPY_API_TOKEN")
    if environ.get("JUPYTERHUB_SERVICE_URL"):
        return ServerInfo(_normalize_url(environ["JUPYTERHUB_SERVICE_URL"]), token or hub_token,
                          "JUPYTERHUB_SERVICE_URL")

    try:
        servers = running_servers(runtime_dir)
    except Exception as exc:  # noqa: BLE001 - an unreadable runtime dir is reported, not raised as is
        servers = []
        listing_problem = f" (reading the list of running servers failed: {exc})"
    else:
        listing_problem = ""

    prefix = environ.get("JUPYTERHUB_SERVICE_PREFIX")
    if prefix:
        for info in servers:
            if info.get("base_url", "").rstrip("/") == prefix.rstrip("/"):
                return ServerInfo(_normalize_url(info["url"]), token or hub_token or info.get("token") or None,
                                  f"JUPYTERHUB_SERVICE_PREFIX and jpserver-{info.get('pid')}.json")

    # in a kernel: the Jupyter server that started it, which jupyter_client names in JPY_PARENT_PID
    # (the working directory alone may be under several servers' roots). Only for the kernel itself,
    # whose parent that server is: a process further down inherits the variable too, and may be a
    # Jupyter server of its own (one started from a notebook), which must not take the outer one.
    parent = (environ.get("JPY_PARENT_PID") or "").strip()
    if parent and parent == str(os.getppid()):
        for info in servers:
            if str(info.get("pid")) == parent:
                return ServerInfo(_normalize_url(info["url"]), token or info.get("token") or None,
                                  f"the kernel's own server jpserver-{parent}.json (JPY_PARENT_PID)")

    chosen = _pick_server(servers, cwd)
    if chosen is not None:
        return ServerInfo(_normalize_url(chosen["url"]), token or chosen.get("token") or None,
                          f"running server jpserver-{chosen.get('pid')}.json (root {chosen.get('root_dir')})")

    raise ServerNotFoundError(f"no running Jupyter server found{listing_problem}. {HOW_TO_FIX}")


# --------------------------------------------------------------------------- client


def _q(segment: str) -> str:
    return quote(str(segment), safe="")


def _drop_none(params: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in params.items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else value
    return out


class RunaiClient:
    """A client of one runai server. Every method returns the API's JSON (dicts and lists).

    ``project`` is the project used when a call names none (default:
    ``RUNAI_PROJECT``, else the one saved by ``runai config project``, else the server's
    first project the caller may submit to, asked on first use). The server is looked up on
    first use, so creating a client never fails.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        project: str | None = None,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = TIMEOUT,
    ) -> None:
        self._url = url
        self._token = token
        self._server: ServerInfo | None = None
        self._project_name = project or default_project()
        self.session = session or requests.Session()
        self.session.headers.setdefault("Accept", "application/json")
        self.timeout = timeout

    # ---------------------------------------------------------------- plumbing

    @property
    def server(self) -> ServerInfo:
        """Where the server is (found on first use)."""
        if self._server is None:
            self._server = find_server(self._url, self._token)
        return self._server

    @property
    def url(self) -> str:
        return self.server.url

    def _headers(self, method: str) -> dict[str, str]:
        headers = {}
        if self.server.token:
            headers["Authorization"] = f"token {self.server.token}"
        if method not in ("GET", "HEAD", "OPTIONS"):
            xsrf = self.session.cookies.get("_xsrf")
            if xsrf:  # cookie sessions without a token need it; harmless otherwise
                headers["X-XSRFToken"] = xsrf
        return headers

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        stream: bool = False,
        headers: Mapping[str, str] | None = None,
        timeout: Any = None,
    ) -> requests.Response:
        """Send one request to ``<server>/runai/api/v1/<path>``; raise :class:`RunaiError` unless 2xx."""
        server = self.server
        url = server.api_url + path.lstrip("/")
        all_headers = self._headers(method)
        if headers:
            all_headers.update(headers)
        try:
            response = self.session.request(
                method,
                url,
                params=_drop_none(params or {}),
                json=body,
                headers=all_headers,
                stream=stream,
                timeout=timeout if timeout is not None else self.timeout,
                allow_redirects=False,
            )
        except requests.exceptions.SSLError as exc:
            raise RunaiConnectionError(
                f"TLS failed with the server at {server.url} (found from {server.source}): {exc}"
            ) from None
        except requests.exceptions.ConnectionError as exc:
            raise RunaiConnectionError(
                f"cannot reach the server at {server.url} (found from {server.source}): {_reason(exc)}. "
                f"Is the Jupyter server still running? {HOW_TO_FIX}"
            ) from None
        except requests.exceptions.Timeout:
            raise RunaiConnectionError(
                f"the server at {server.url} (found from {server.source}) did not answer in time"
            ) from None
        if response.is_redirect:
            # Jupyter redirects unauthenticated page requests to its login page.
            response.close()
            location = response.headers.get("Location", "")
            raise RunaiError(
                response.status_code,
                f"the server at {server.url} redirected to {location or 'another page'} instead of answering: "
                "it wants a login. Pass its token with --token or RUNAI_TOKEN.",
            )
        if response.status_code >= 400:
            error = RunaiError.from_response(response, server)
            response.close()
            raise error
        return response

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET a JSON document, unchanged."""
        return _json(self.request("GET", path, params=params))

    def _send(self, method: str, path: str, body: Any = None, params: Mapping[str, Any] | None = None) -> Any:
        response = self.request(method, path, body=body, params=params)
        if response.status_code == 204 or not response.content:
            return None
        return _json(response)

    @property
    def project(self) -> str:
        """The project used when a call names none; asked of the server the first time when
        neither the caller, ``RUNAI_PROJECT`` nor ``runai config project`` named one."""
        if self._project_name is None:
            offered = (self.info().get("defaults") or {}).get("project")
            if not offered:
                raise RunaiError(403, "there is no project you may submit to on this server; ask an "
                                 "administrator for a role (`runai access me` shows yours), or name "
                                 "one with -p / RUNAI_PROJECT", field="project")
            self._project_name = offered
        return self._project_name

    @project.setter
    def project(self, name: str | None) -> None:
        self._project_name = name or default_project()

    def _project(self, project: str | None) -> str:
        return project or self.project

    def _workload_path(self, name: str, project: str | None, suffix: str = "") -> str:
        return f"workloads/{_q(self._project(project))}/{_q(name)}{suffix}"

    # ---------------------------------------------------------------- routes

    def info(self) -> dict[str, Any]:
        """Version, backend, the current user and the submit form's defaults."""
        return self.get_json("info")

    def submit(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Submit a workload (a ``WorkloadSpec`` dict); returns the ``Workload``.

        A spec without ``project`` goes to this client's project.
        """
        body = dict(spec)
        body.setdefault("project", self.project)
        return self._send("POST", "workloads", body)

    def list_workloads(
        self, project: str | None = None, phase: str | None = None, kind: str | None = None
    ) -> list[dict[str, Any]]:
        """Workloads in queue order; ``project=None`` lists every project's. Read from the server in
        pages of ``LIST_PAGE`` (see :meth:`iter_workloads`)."""
        return list(self.iter_workloads(project, phase, kind))

    def iter_workloads(
        self, project: str | None = None, phase: str | None = None, kind: str | None = None,
        page_size: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Workloads in queue order, fetched a page at a time (``limit`` and ``continue``): a
        workload submitted meanwhile comes on a later page, one deleted meanwhile shifts nothing."""
        params: dict[str, Any] = {"project": project, "phase": phase, "kind": kind,
                                  "limit": page_size or LIST_PAGE}
        while True:
            document = self.get_json("workloads", params)
            yield from document["workloads"]
            token = document.get("continue")
            if not token:
                return
            params["continue"] = token

    def get(self, name: str, project: str | None = None) -> dict[str, Any]:
        """One ``Workload``, with ``events`` (its latest events)."""
        return self.get_json(self._workload_path(name, project))

    def delete(self, name: str, project: str | None = None) -> dict[str, Any]:
        """Stop its pods and remove it; returns the ``Workload`` (phase ``Deleting``)."""
        return self._send("DELETE", self._workload_path(name, project))

    def stop(self, name: str, project: str | None = None) -> dict[str, Any]:
        """Stop it; it stays (phase ``Stopping`` then ``Stopped``) and may be resumed."""
        return self._send("POST", self._workload_path(name, project, "/stop"))

    def resume(self, name: str, project: str | None = None) -> dict[str, Any]:
        """Put a stopped or finished workload back in the queue."""
        return self._send("POST", self._workload_path(name, project, "/resume"))

    def logs(
        self,
        name: str,
        project: str | None = None,
        pod: int | None = None,
        follow: bool = False,
        tail: int | None = None,
        timestamps: bool = False,
        since_seconds: int | None = None,
    ) -> Iterator[str]:
        """The log of one pod (default pod 0) as text chunks; with ``follow``, until the pod ends.
        ``timestamps``: each line after the time it arrived (RFC 3339, UTC, as ``kubectl logs
        --timestamps``); ``since_seconds``: only the lines that arrived in the last N seconds."""
        response = self.request(
            "GET",
            self._workload_path(name, project, "/logs"),
            params={"pod": pod, "follow": True if follow else None, "tail": tail,
                    "timestamps": True if timestamps else None, "since_seconds": since_seconds},
            stream=True,
            headers={"Accept": "text/plain"},
            timeout=(self.timeout[0], None) if follow else self.timeout,
        )
        return _text_chunks(response)

    def events(
        self,
        project: str | None = None,
        workload: str | None = None,
        last_event_id: str | int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Server-sent events as dicts (``id``, ``at``, ``type``, ``project``, ``workload``, ``pod``,
        ``message``), forever; ``last_event_id`` resumes after that event.

        When this reader falls too far behind, the server ends the stream (``overflow``):
        it is reopened at once after the last event taken, so no event is missed. A
        ``{"type": "reset", ...}`` item means events after ``last_event_id`` were pruned
        and are lost: reload the state (list the workloads); the stream goes on from there."""
        def connect(last: str | int | None) -> Iterator[dict[str, Any]]:
            headers = {"Accept": "text/event-stream"}
            if last is not None:
                headers["Last-Event-ID"] = str(last)
            response = self.request(
                "GET", "events", params={"project": project, "workload": workload}, stream=True,
                headers=headers, timeout=(self.timeout[0], None),
            )
            return parse_sse(_text_chunks(response))

        def resuming(stream: Iterator[dict[str, Any]], last: str | int | None) -> Iterator[dict[str, Any]]:
            while True:
                for event in stream:
                    if event.get("type") == "overflow":
                        break
                    if event.get("id") is not None:
                        last = event["id"]
                    yield event
                else:
                    return  # the server ended the stream (it stopped)
                stream.close()
                stream = connect(last)

        return resuming(connect(last_event_id), last_event_id)

    def wait(
        self,
        name: str,
        project: str | None = None,
        until: Callable[[dict[str, Any]], bool] | None = None,
        timeout: float | None = None,
        interval: float = 1.0,
        on_update: Callable[[dict[str, Any]], None] | None = None,
        follow_events: bool = True,
    ) -> dict[str, Any]:
        """Wait until ``until(workload)`` (default: no longer Pending); returns the workload.

        It follows the server's event stream for this workload (``GET events?workload=``) and
        reads the workload again on each of its events, so a change is seen when it happens, not
        at the next poll; ``on_update`` gets the workload each time (its ``pending_reason`` says
        why it waits). Where the stream cannot be opened or ends, it polls every ``interval``
        seconds instead (``follow_events=False``: polls only). Raises ``TimeoutError`` after
        ``timeout`` seconds."""
        until = until or (lambda w: w.get("status", {}).get("phase") not in ("Pending", None))
        project = self._project(project)
        deadline = None if timeout is None else time.monotonic() + timeout

        def check() -> dict[str, Any] | None:
            workload = self.get(name, project)
            if on_update:
                on_update(workload)
            if until(workload):
                return workload
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"workload {name!r} still {workload.get('status', {}).get('phase')} "
                                   f"after {timeout:g}s")
            return None

        if follow_events:
            response = None
            try:
                # subscribed before the first read: nothing that happens in between is missed
                read_timeout = None if deadline is None else max(0.5, deadline - time.monotonic())
                response = self.request("GET", "events", params={"project": project, "workload": name},
                                        stream=True, headers={"Accept": "text/event-stream"},
                                        timeout=(self.timeout[0], read_timeout))
            except RunaiError as error:
                if error.status is not None and error.status < 500 and error.status != 404:
                    raise  # refused (401/403): polling would be refused as well
            if response is not None:
                try:
                    done = check()
                    if done is not None:
                        return done

                    def chunks() -> Iterator[str]:
                        # keep-alives arrive every few seconds: the deadline is checked on each
                        for chunk in _text_chunks(response):
                            if deadline is not None and time.monotonic() >= deadline:
                                return  # the last check below says done or raises TimeoutError
                            yield chunk

                    for _event in parse_sse(chunks()):
                        done = check()
                        if done is not None:
                            return done
                except (requests.exceptions.Timeout, requests.exceptions.ConnectionError):
                    pass  # silent past the deadline, or the stream broke: the loop below decides
                finally:
                    response.close()
        while True:
            done = check()
            if done is not None:
                return done
            time.sleep(interval if deadline is None else max(0.0, min(interval, deadline - time.monotonic())))

    def nodes(self) -> list[dict[str, Any]]:
        """Nodes with their devices and what is allocated on each."""
        return self.get_json("nodes")["nodes"]

    def projects(self) -> list[dict[str, Any]]:
        """Projects with deserved, limit, allocated and fair share."""
        return self.get_json("projects")["projects"]

    # administration (admins): departments, projects and node pools; the audit log
    def departments(self) -> list[dict[str, Any]]:
        """Departments with their projects' names."""
        return self.get_json("departments")["departments"]

    def node_pools(self) -> list[dict[str, Any]]:
        """Node pools in matching order, with the nodes each holds."""
        return self.get_json("node-pools")["node_pools"]

    def create(self, collection: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Create a department, project or node pool (``collection``: ``departments``,
        ``projects`` or ``node-pools``); returns it as stored."""
        return self._send("POST", _q(collection), dict(spec))

    def update(self, collection: str, name: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Change one: the fields given replace the current ones (deserved, limit and node_pools
        are merged key by key); returns it as stored."""
        return self._send("PATCH", f"{_q(collection)}/{_q(name)}", dict(changes))

    def remove(self, collection: str, name: str) -> None:
        """Delete a department, project or node pool."""
        self._send("DELETE", f"{_q(collection)}/{_q(name)}")

    def audit(self, kind: str | None = None, name: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """The newest audit entries (oldest first): who changed what, when, before and after."""
        return self.get_json("audit", {"kind": kind, "name": name, "limit": limit})["entries"]

    # access: role bindings (admins grant and revoke; a department admin inside its departments)
    def me(self) -> dict[str, Any]:
        """The caller: its groups, roles on scopes, and the projects it may see and submit to."""
        return self.get_json("access/me")

    def role_bindings(self) -> list[dict[str, Any]]:
        """Role bindings the caller may see (all, for an admin), each with its id and source."""
        return self.get_json("access/bindings")["bindings"]

    def grant(self, binding: Mapping[str, Any]) -> dict[str, Any]:
        """Grant a role: ``{"role": "researcher", "user": "alice", "project": "vision"}``; returns it with its id."""
        return self._send("POST", "access/bindings", dict(binding))

    def revoke(self, binding_id: int) -> dict[str, Any]:
        """Revoke a stored role binding by its id; returns what was revoked."""
        return self._send("DELETE", f"access/bindings/{int(binding_id)}")
    # monitoring
    def workload_usage(self, project: str | None = None) -> list[dict[str, Any]]:
        """Each live workload's GPUs allocated beside its measured utilization and memory, with recent samples."""
        return self.get_json("usage/workloads", {"project": project})["workloads"]

    def project_usage(self) -> list[dict[str, Any]]:
        """Each project's recent samples: GPUs allocated against deserved and fair share, utilization."""
        return self.get_json("usage/projects")["projects"]

    def device_usage(self) -> list[dict[str, Any]]:
        """Each device's recent samples: allocated fraction, utilization, used memory."""
        return self.get_json("usage/devices")["devices"]

    def recent_events(self, project: str | None = None, workload: str | None = None, type: str | None = None,
                      limit: int | None = None) -> list[dict[str, Any]]:
        """The newest stored events (oldest first), optionally of one project, workload and type."""
        return self.get_json("events/recent", {"project": project, "workload": workload, "type": type,
                                               "limit": limit})["events"]

    def usage_report(self, first: str | None = None, last: str | None = None,
                     by: str | None = None, per: str | None = None) -> dict[str, Any]:
        """GPU-hours allocated and used per day (``per="total"``: for the whole range) and per project,
        user, department or workload (``by``), from ``first`` to ``last`` (ISO dates, both included;
        default the last 7 days)."""
        return self.get_json("reports/usage", {"from": first, "to": last, "by": by, "per": per})
    # workload policies
    def policies(self, scope: str | None = None, name: str | None = None,
                 kind: str | None = None) -> list[dict[str, Any]]:
        """The stored workload policies, optionally of one scope, department or project, and kind."""
        return self.get_json("policies", {"scope": scope, "name": name, "kind": kind})["policies"]

    def set_policy(self, policy: Mapping[str, Any]) -> dict[str, Any]:
        """Set (create or replace) the policy of one scope and kind (admins); returns it as stored."""
        return self._send("PUT", "policies", dict(policy))

    def delete_policy(self, scope: str, kind: str, name: str | None = None) -> None:
        """Delete the policy of one scope and kind (admins)."""
        self._send("DELETE", "policies", params={"scope": scope, "name": name, "kind": kind})

    def effective_policy(self, kind: str, project: str | None = None) -> dict[str, Any]:
        """The defaults and rules a submission of ``kind`` to ``project`` gets."""
        return self.get_json("policies/effective", {"project": self._project(project), "kind": kind})

    # data sources
    def data_sources(self, project: str | None = None) -> list[dict[str, Any]]:
        return _unwrap(self.get_json(f"projects/{_q(self._project(project))}/data-sources"), "data_sources")

    def create_data_source(self, spec: Mapping[str, Any], project: str | None = None) -> dict[str, Any]:
        return self._send("POST", f"projects/{_q(self._project(project))}/data-sources", dict(spec))

    def get_data_source(self, name: str, project: str | None = None) -> dict[str, Any]:
        return self.get_json(f"projects/{_q(self._project(project))}/data-sources/{_q(name)}")

    def delete_data_source(self, name: str, project: str | None = None) -> Any:
        return self._send("DELETE", f"projects/{_q(self._project(project))}/data-sources/{_q(name)}")

    # credentials
    def credentials(self, project: str | None = None) -> list[dict[str, Any]]:
        return _unwrap(self.get_json(f"projects/{_q(self._project(project))}/credentials"), "credentials")

    def create_credential(self, spec: Mapping[str, Any], project: str | None = None) -> dict[str, Any]:
        return self._send("POST", f"projects/{_q(self._project(project))}/credentials", dict(spec))

    def get_credential(self, name: str, project: str | None = None) -> dict[str, Any]:
        return self.get_json(f"projects/{_q(self._project(project))}/credentials/{_q(name)}")

    def delete_credential(self, name: str, project: str | None = None) -> Any:
        return self._send("DELETE", f"projects/{_q(self._project(project))}/credentials/{_q(name)}")

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> "RunaiClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _unwrap(document: Any, key: str) -> Any:
    if isinstance(document, dict) and key in document:
        return document[key]
    if isinstance(document, dict) and len(document) == 1:
        return next(iter(document.values()))
    return document


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise RunaiError(
            response.status_code,
            f"{response.url}: expected JSON, got {response.headers.get('Content-Type', 'no content type')}: "
            f"{_short_text(response.text, 120)}",
        ) from None


def _reason(exc: Exception) -> str:
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "nodename nor servname",
                   "No route to host", "timed out", "Temporary failure in name resolution"):
        if marker in text:
            return marker.lower()
    return _short_text(text, 200)


def _text_chunks(response: requests.Response) -> Iterator[str]:
    """Decode a streamed answer into text chunks as they arrive; closes the answer at the end."""
    if response.encoding is None:
        response.encoding = "utf-8"
    try:
        for chunk in response.iter_content(chunk_size=None, decode_unicode=True):
            if chunk:
                yield chunk if isinstance(chunk, str) else chunk.decode(response.encoding, "replace")
    except requests.exceptions.ChunkedEncodingError:
        return  # the server ended the stream (e.g. it shut down): end quietly
    finally:
        response.close()


def parse_sse(chunks: Iterator[str]) -> Iterator[dict[str, Any]]:
    """Parse a ``text/event-stream`` into events: the ``data`` parsed as JSON (a dict), with ``id``
    (and ``event`` as ``type`` when the data has none). Comments and keep-alives are skipped."""
    buffer = ""
    data_lines: list[str] = []
    event_id: str | None = None
    event_name: str | None = None
    for chunk in chunks:
        buffer += chunk.replace("\r\n", "\n").replace("\r", "\n")
        while "\n" in buffer:
            line, buffer = buffer.split("\n", 1)
            if line == "":
                if data_lines:
                    yield _sse_event("\n".join(data_lines), event_id, event_name)
                data_lines, event_name = [], None
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if field == "data":
                data_lines.append(value)
            elif field == "id":
                event_id = value
            elif field == "event":
                event_name = value
    if data_lines:
        yield _sse_event("\n".join(data_lines), event_id, event_name)


def _sse_event(data: str, event_id: str | None, event_name: str | None) -> dict[str, Any]:
    try:
        event = json.loads(data)
    except ValueError:
        event = {"message": data}
    if not isinstance(event, dict):
        event = {"data": event}
    if event_id is not None:
        event.setdefault("id", event_id)
    if event_name and event_name != "message":
        event.setdefault("type", event_name)
    return event


# --------------------------------------------------------------------------- objects
#
# The object API for notebooks and scripts (docs/client.md): ``Client`` returns ``Workload``,
# ``Project`` and ``Node`` objects instead of the API's dicts. Every call goes through the one
# ``RunaiClient`` above (``Client.api``); these classes only hold the documents and show them.

#: phases in which no pod runs and none will until someone acts
FINISHED_PHASES = ("Stopped", "Succeeded", "Failed")

#: the ``Resources`` fields that ``Client.submit`` takes as keywords beside the spec's own fields
RESOURCE_FIELDS = ("gpu", "gpu_memory", "gpu_devices", "gpu_limit", "cpu", "cpu_limit", "memory", "memory_limit")


def _html_table(headers: list[str], rows: list[list[Any]], caption: str | None = None) -> str:
    from html import escape

    head = "".join(f"<th style='text-align:left'>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td style='text-align:left'>{escape('' if v is None else str(v))}</td>"
                                    for v in row) + "</tr>" for row in rows)
    cap = f"<caption style='text-align:left'>{escape(caption)}</caption>" if caption else ""
    return f"<table class='runai-table'>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _request_text(spec: Mapping[str, Any]) -> str:
    """A workload's GPU request in the CLI's words ('2 GPUs', '1 GPU x 4 pods'), 'no GPU' for none."""
    text = workload_request_text(dict(spec))
    return "no GPU" if text == "-" else text


def kind_text(document: Mapping[str, Any]) -> str:
    """A workload's kind as lists show it: its owner's kind for one made outside jupyter-runai
    (``Job (external)``: a third-party workload on Kubernetes), else the kind it was submitted as."""
    external = document.get("external")
    if external:
        return f"{external.get('kind', '?')} (external)"
    return (document.get("spec") or {}).get("kind", "training")


class Workload:
    """One workload as the server last showed it (``data``: the API's ``Workload`` document).

    ``name``, ``project``, ``kind``, ``phase`` and ``pending_reason`` are as of the last read
    (``refresh()`` reads again); ``status`` reads the server each time and gives the phase now.
    ``wait()``, ``logs()``, ``stop()``, ``resume()`` and ``delete()`` act on it on the server.
    """

    def __init__(self, client: "Client", data: Mapping[str, Any]) -> None:
        self.client = client
        self.data: dict[str, Any] = dict(data)

    # ---------------------------------------------------------------- what it is
    @property
    def spec(self) -> dict[str, Any]:
        return self.data.get("spec") or {}

    @property
    def name(self) -> str:
        return self.spec.get("name", "")

    @property
    def project(self) -> str:
        return self.spec.get("project", "")

    @property
    def kind(self) -> str:
        return self.spec.get("kind", "training")

    @property
    def external(self) -> dict[str, Any] | None:
        """For a workload made outside jupyter-runai (a third-party Job, Deployment... on Kubernetes):
        its owner, ``{"api_version", "kind", "name", "namespace", "uid"}``; else ``None``."""
        return self.data.get("external")

    @property
    def phase(self) -> str | None:
        """The phase as of the last read."""
        return (self.data.get("status") or {}).get("phase")

    @property
    def pending_reason(self) -> str | None:
        """Why it waits, in words, as of the last read (``None`` once it runs)."""
        return (self.data.get("status") or {}).get("pending_reason")

    @property
    def message(self) -> str | None:
        return (self.data.get("status") or {}).get("message")

    @property
    def status(self) -> str | None:
        """The phase now: reads the workload from the server (``refresh()``) and returns its phase."""
        return self.refresh().phase

    @property
    def url(self) -> str | None:
        """Where an inference endpoint or workspace answers (absolute), ``None`` when it has none."""
        url = (self.data.get("status") or {}).get("url")
        if url and url.startswith("/"):
            return self.client.url.rstrip("/") + url
        return url

    # ---------------------------------------------------------------- acting on it
    def refresh(self) -> "Workload":
        """Read it again from the server; returns itself."""
        self.data = self.client.api.get(self.name, self.project)
        return self

    def wait(
        self,
        until: str | Callable[["Workload"], bool] | None = None,
        timeout: float | None = None,
        show: bool = True,
    ) -> "Workload":
        """Wait on the event stream until it is no longer Pending (``until="finished"``: until it
        has ended; a phase name: until that phase; or a function of the Workload). While it
        waits, ``show`` prints its phase and why it is pending each time that changes. Raises
        ``TimeoutError`` after ``timeout`` seconds; returns itself, read again."""
        if until is None:
            test: Callable[[dict[str, Any]], bool] = lambda w: (w.get("status") or {}).get("phase") != "Pending"
        elif until == "finished":
            test = lambda w: (w.get("status") or {}).get("phase") in FINISHED_PHASES
        elif isinstance(until, str):
            test = lambda w: (w.get("status") or {}).get("phase") == until
        else:
            test = lambda w: bool(until(Workload(self.client, w)))
        shown: list[str] = []

        def on_update(document: dict[str, Any]) -> None:
            self.data = document
            line = f"{self.name}: {self.phase}" + (f" - {self.pending_reason}" if self.pending_reason else "")
            if show and (not shown or shown[-1] != line):
                shown.append(line)
                print(line, flush=True)

        self.data = self.client.api.wait(self.name, self.project, until=test, timeout=timeout, on_update=on_update)
        return self

    def logs(self, follow: bool = False, pod: int | None = None, tail: int | None = None,
             timestamps: bool = False, since_seconds: int | None = None) -> str | None:
        """The log of one pod (default pod 0) as text; ``follow=True`` prints it as it comes, until
        the pod ends (returns ``None``: the text is on the screen). ``timestamps=True`` puts the
        time each line arrived before it; ``since_seconds`` keeps the lines of the last N seconds."""
        chunks = self.client.api.logs(self.name, self.project, pod=pod, follow=follow, tail=tail,
                                      timestamps=timestamps, since_seconds=since_seconds)
        if not follow:
            return "".join(chunks)
        for chunk in chunks:
            print(chunk, end="", flush=True)
        return None

    def stop(self) -> "Workload":
        """Stop it (it stays, and may be resumed); returns itself."""
        self.data = self.client.api.stop(self.name, self.project) or self.data
        return self

    def resume(self) -> "Workload":
        """Put it back in the queue after a stop or an end; returns itself."""
        self.data = self.client.api.resume(self.name, self.project) or self.data
        return self

    def delete(self) -> "Workload":
        """Stop its pods and remove it; returns itself (phase ``Deleting``)."""
        self.data = self.client.api.delete(self.name, self.project) or self.data
        return self

    # ---------------------------------------------------------------- showing it
    def _row(self) -> list[Any]:
        return [self.name, self.project, kind_text(self.data), self.phase, _request_text(self.spec),
                self.pending_reason or self.message or ""]

    def __repr__(self) -> str:
        reason = self.pending_reason or self.message
        return (f"<Workload {self.project}/{self.name} {kind_text(self.data)} {self.phase}"
                f" ({_request_text(self.spec)})" + (f": {reason}" if reason else "") + ">")

    def _repr_html_(self) -> str:
        rows = [["kind", kind_text(self.data)], ["phase", self.phase], ["request", _request_text(self.spec)]]
        if self.pending_reason:
            rows.append(["pending", self.pending_reason])
        if self.message:
            rows.append(["message", self.message])
        if self.url:
            rows.append(["url", self.url])
        return _html_table(["workload", f"{self.project}/{self.name}"], rows)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Workload) and (self.project, self.name) == (other.project, other.name)

    def __hash__(self) -> int:
        return hash((self.project, self.name))


class WorkloadList(list):
    """A list of :class:`Workload` that shows as one table in a notebook."""

    def __repr__(self) -> str:
        return "[" + ",\n ".join(repr(w) for w in self) + "]" if self else "[] (no workloads)"

    def _repr_html_(self) -> str:
        if not self:
            return "<p>No workloads.</p>"
        return _html_table(["name", "project", "kind", "phase", "request", "why"], [w._row() for w in self])


class _Record:
    """A read-only document (a project or a node) with attribute access to its fields."""

    headers: list[str] = []

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data: dict[str, Any] = dict(data)

    def __getattr__(self, key: str) -> Any:
        data = self.__dict__.get("data") or {}
        if key in data:
            return data[key]
        raise AttributeError(f"{type(self).__name__} has no field {key!r}")

    def _row(self) -> list[Any]:
        return [self.data.get(h) for h in self.headers]

    def __repr__(self) -> str:
        fields = ", ".join(f"{h}={self.data.get(h)!r}" for h in self.headers[1:] if h in self.data)
        return f"<{type(self).__name__} {self.data.get('name')}: {fields}>"

    def _repr_html_(self) -> str:
        return _html_table(self.headers, [self._row()])


class Project(_Record):
    """A project (queue): ``deserved``, ``limit``, ``allocated``, ``fair_share``, ..."""

    headers = ["name", "department", "deserved", "allocated", "fair_share", "limit"]


class Node(_Record):
    """A node with its ``devices`` (GPUs) and what is allocated on each."""

    headers = ["name", "pool", "cpu", "memory", "schedulable"]


class RecordList(list):
    """A list of :class:`Project` or :class:`Node` that shows as one table in a notebook."""

    def _repr_html_(self) -> str:
        if not self:
            return "<p>None.</p>"
        return _html_table(self[0].headers, [item._row() for item in self])


class Client:
    """The runai server, with objects (docs/client.md)::

        from jupyter_runai import Client
        runai = Client()                      # the server that runs this kernel, or the hub's
        w = runai.submit("python train.py", gpu=0.5)
        w.wait(); print(w.logs())

    ``Client()`` finds its server as ``runai`` does (:func:`find_server`: in a kernel, the
    Jupyter server that started it; under JupyterHub, the hub's variables); ``url`` and
    ``token`` name one. ``project`` is the one used when a call names none. ``api`` is the
    underlying :class:`RunaiClient` (the API's dicts). Errors are :class:`RunaiError`.
    """

    def __init__(self, url: str | None = None, token: str | None = None, *, project: str | None = None,
                 api: RunaiClient | None = None) -> None:
        self.api = api or RunaiClient(url, token, project=project)

    @property
    def url(self) -> str:
        return self.api.url

    @property
    def project(self) -> str:
        return self.api.project

    def workload(self, data: Mapping[str, Any]) -> Workload:
        """A :class:`Workload` for an API document (as the server sent it)."""
        return Workload(self, data)

    def submit(self, command: str | list[str] | None = None, *, name: str | None = None,
               spec: Mapping[str, Any] | None = None, **fields: Any) -> Workload:
        """Submit a workload; returns it as a :class:`Workload`.

        ``command`` is what it runs (a shell line, or a list run as is); the keywords are the
        ``WorkloadSpec`` fields (``kind``, ``project``, ``image``, ``environment``, ``priority_class``,
        ...; docs/models.md) and the resources' (``gpu``, ``gpu_memory``, ``gpu_devices``,
        ``gpu_limit``, ``cpu``, ``memory``, ...), or a whole ``spec`` dict. The server checks
        everything: a bad value raises :class:`RunaiError` naming the field and what it allows."""
        body: dict[str, Any] = dict(spec or {})
        resources = dict(body.get("resources") or {})
        for key in RESOURCE_FIELDS:
            if key in fields:
                value = fields.pop(key)
                if value is not None:
                    resources[key] = value
        if resources:
            body["resources"] = resources
        body.update({key: value for key, value in fields.items() if value is not None})
        if command is not None:
            body["command"] = command
        if name is not None:
            body["name"] = name
        return Workload(self, self.api.submit(body))

    def get(self, name: str, project: str | None = None) -> Workload:
        """One workload by name."""
        return Workload(self, self.api.get(name, project))

    def workloads(self, project: str | None = None, phase: str | None = None, kind: str | None = None,
                  all_projects: bool = False) -> WorkloadList:
        """Workloads in queue order, of this client's project (``all_projects=True``: of every one)."""
        project = None if all_projects else (project or self.project)
        return WorkloadList(Workload(self, w) for w in self.api.list_workloads(project, phase, kind))

    def projects(self) -> RecordList:
        """Projects with deserved, limit, allocated and fair share."""
        return RecordList(Project(p) for p in self.api.projects())

    def nodes(self) -> RecordList:
        """Nodes with their devices and what is allocated on each."""
        return RecordList(Node(n) for n in self.api.nodes())

    def info(self) -> dict[str, Any]:
        """The server's version, backend, user and the submit form's defaults and bounds."""
        return self.api.info()

    def close(self) -> None:
        self.api.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self.api._server.url if self.api._server else "(server found on first use)"
        return f"<runai Client {where} project={self.project}>"
