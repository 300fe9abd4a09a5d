"""``runai serve``: the scheduler as a JupyterHub service (docs/jupyterhub.md).

The same service, REST API, event stream, logs and proxy as inside a Jupyter server, run once
for a whole hub: a Jupyter server with only this extension (no contents, kernels or terminals:
nobody reaches this process's files or runs code in it), at the URL and prefix the hub gives its
service (``JUPYTERHUB_SERVICE_URL``, ``JUPYTERHUB_SERVICE_PREFIX``), every request authenticated
with the hub (``server/hub_auth.py``). Each user's own Jupyter server forwards to it (client mode,
``c.RunaiApp.service_url``).

Configuration: the usual Jupyter config files (``jupyter_server_config.py``: ``c.RunaiApp.*``,
``c.LocalCluster.*``), ``--config FILE``, or ``--Class.trait=value`` arguments.
"""

from __future__ import annotations

import os
import sys
from typing import Sequence
from urllib.parse import urlparse

__all__ = ["main", "hub_settings", "NotAHubService"]

#: the Jupyter server's services this process offers: login plumbing only (no contents,
#: kernels, terminals, files: the hub's users must not reach this account)
SERVICES = ("auth",)

USAGE = """\
usage: runai serve [--config FILE] [--Class.trait=value ...]
   or: jupyter runai serve [--config FILE] [--Class.trait=value ...]

Run the scheduler once for a whole JupyterHub, as a hub-managed service. Every request is
authenticated with the hub (a hub token or the hub's OAuth cookie): the caller's name, groups
and admin flag come from the hub. Each user's Jupyter server forwards its /runai requests here
(c.RunaiApp.service_url, or RUNAI_SERVICE_URL in the spawner's environment).

Register it in jupyterhub_config.py (docs/jupyterhub.md has the whole recipe):

  c.JupyterHub.services = [{"name": "runai", "url": "http://127.0.0.1:10101",
                            "command": ["runai", "serve"]}]

It reads JUPYTERHUB_SERVICE_URL (where to listen), JUPYTERHUB_SERVICE_PREFIX (its base URL) and
JUPYTERHUB_API_TOKEN (set by the hub): started outside a hub it exits with status 2.

options:
  --config FILE            a Jupyter config file (.py or .json) read after the usual ones
  --Class.trait=value      any Jupyter server or runai setting, e.g.
                           --RunaiApp.state_dir=/srv/runai --RunaiApp.queues_file=/srv/queues.yaml
                           --LocalCluster.virtual_gpus=2x24Gi
  -h, --help               show this help
"""


class NotAHubService(Exception):
    """``runai serve`` was started without the environment a hub gives its services."""


def hub_settings(environ: dict[str, str] | os._Environ) -> dict[str, object]:
    """The Jupyter server settings a hub service's environment dictates: where to listen and
    under which prefix. Raises :class:`NotAHubService` naming what is missing."""
    missing = [name for name in ("JUPYTERHUB_API_TOKEN", "JUPYTERHUB_SERVICE_URL", "JUPYTERHUB_SERVICE_PREFIX")
               if not environ.get(name)]
    if missing:
        raise NotAHubService(
            f"runai serve runs as a JupyterHub service and needs {', '.join(missing)} from the hub: register it in "
            "c.JupyterHub.services with a 'url' and a 'command' (docs/jupyterhub.md). On one machine without a "
            "hub, `jupyter lab` runs the scheduler itself.")
    url = urlparse(environ["JUPYTERHUB_SERVICE_URL"])
    if url.scheme != "http" or not url.hostname:
        raise NotAHubService(f"JUPYTERHUB_SERVICE_URL must be an http:// URL with a host, got "
                             f"{environ['JUPYTERHUB_SERVICE_URL'][:200]!r}")
    prefix = environ["JUPYTERHUB_SERVICE_PREFIX"]
    return {"ip": url.hostname, "port": url.port or 80,
            "base_url": prefix if prefix.endswith("/") else prefix + "/"}


def _server_app_class():
    from jupyter_server.serverapp import ServerApp

    class RunaiServeApp(ServerApp):
        """A Jupyter server that runs the runai extension alone, authenticated by the hub."""

        name = "runai-serve"
        description = "The jupyter-runai scheduler as a JupyterHub service."
        default_services = SERVICES

        def find_server_extensions(self) -> None:
            # only this one: the other installed extensions (JupyterLab, ...) add pages and APIs
            # this service must not offer
            self.jpserver_extensions = {"jupyter_runai": True}

        def init_webapp(self) -> None:
            super().init_webapp()
            # Tornado checks XSRF before the caller is known (so before a hub token can exempt a
            # request); Jupyter's own check runs once it is, as in a hub's single-user server
            self.web_app.settings["xsrf_cookies"] = False
            self.web_app.settings.setdefault("headers", {}).setdefault(
                "Content-Security-Policy", "frame-ancestors 'none'")

    return RunaiServeApp


def main(argv: Sequence[str] | None = None) -> int:
    """Run the service until it is stopped; the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        sys.stdout.write(USAGE)
        return 0
    try:
        settings = hub_settings(os.environ)
    except NotAHubService as exc:
        sys.stderr.write(f"runai serve: {exc}\n")
        return 2
    try:
        import jupyterhub.services.auth  # noqa: F401  (the hub's client library: authenticates requests)
    except ImportError:
        sys.stderr.write("runai serve: the jupyterhub package is not installed in this environment: "
                         "pip install 'jupyter-runai[hub]' (or jupyterhub)\n")
        return 2
    extra: list[str] = []
    while argv:
        arg = argv.pop(0)
        if arg == "--config" or arg.startswith("--config="):
            path = arg.partition("=")[2] or (argv.pop(0) if argv else "")
            if not path:
                sys.stderr.write("runai serve: --config needs a file\n")
                return 2
            extra.append(f"--ServerApp.config_file={path}")
        elif arg.startswith("--") and "." in arg.split("=", 1)[0]:
            extra.append(arg)
        else:
            sys.stderr.write(f"runai serve: unknown argument {arg!r}\n{USAGE}")
            return 2
    app_class = _server_app_class()
    # the hub's settings last (later arguments win): neither a config file nor an argument moves
    # the service off the hub's URL or replaces the hub's authentication
    argv_for_server = [*extra, f"--ServerApp.ip={settings['ip']}", f"--ServerApp.port={settings['port']}",
                       "--ServerApp.port_retries=0", f"--ServerApp.base_url={settings['base_url']}",
                       "--ServerApp.open_browser=False", "--ServerApp.terminals_enabled=False",
                       "--RunaiApp.service_url=",
                       "--ServerApp.identity_provider_class=jupyter_runai.server.hub_auth.HubIdentityProvider",
                       "--ServerApp.authorizer_class=jupyter_runai.server.hub_auth.RunaiOnlyAuthorizer"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # as The Littlest JupyterHub runs its services; nothing here runs a user's code in this process
        argv_for_server.append("--ServerApp.allow_root=True")
    app_class.launch_instance(argv=argv_for_server)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
