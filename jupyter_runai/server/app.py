"""``RunaiApp``: the jupyter_server extension that runs the scheduler service.

Configuration (traitlets; in ``jupyter_server_config.py`` or on the command line)::

    c.RunaiApp.backend = "local"            # the embedded default: this machine runs the pods
    c.RunaiApp.state_dir = "~/.local/share/jupyter/runai"
    c.RunaiApp.queues_file = "runai-queues.yaml"
    c.LocalCluster.virtual_gpus = "2x24Gi"  # for a machine without GPUs
    c.RunaiApp.service_url = "http://127.0.0.1:10101/services/runai/"  # JupyterHub: forward to the service
    c.RunaiApp.backend = "kubernetes"       # a Kubernetes cluster runs the pods (docs/kubernetes.md)
    c.KubernetesCluster.kubeconfig = "~/.kube/config"

See docs/configuration.md for every option.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path
from urllib.parse import urlparse

from jupyter_core.paths import jupyter_data_dir
from jupyter_server.extension.application import ExtensionApp
from jupyter_server.utils import url_path_join
from traitlets import Callable, Dict, Enum, Float, Int, List, Unicode, Union, default

from ..accounts import RUN_AS_MODES, RunAs
from ..clusters.kubernetes import KubernetesCluster  # the class only: the client is imported when it starts
from ..clusters.local import LocalCluster, private_dir
from ..config import QueueConfig, default_queue_config, load_queue_config
from ..models import Department
from ..service import RunaiService
from ..statelock import StateLock, StateLocked
from ..store import Store
from .routes import default_handlers

__all__ = ["RunaiApp"]


class RunaiApp(ExtensionApp):
    """GPU workload scheduling inside the Jupyter server."""

    name = "jupyter_runai"
    description = "GPU workload scheduler: quotas, fair share, GPU fractions, gangs and preemption."
    load_other_extensions = True
    classes = [LocalCluster, KubernetesCluster]

    backend = Enum(
        ["local", "kubernetes"],
        default_value="local",
        config=True,
        help="Where workloads run. 'local': this machine, each pod a process group (the embedded default). "
        "'kubernetes': a Kubernetes cluster, from the kubeconfig or the in-cluster service account "
        "(c.KubernetesCluster; docs/kubernetes.md).",
    )
    state_dir = Unicode(
        config=True,
        help="Directory for the database, pod working directories, logs and secrets. "
        "Default: <jupyter data dir>/runai.",
    )
    queues_file = Unicode(
        "",
        config=True,
        help="YAML or JSON file with departments, projects and node pools (docs/configuration.md). "
        "Applied at every start; without it a 'default' project owns all GPUs.",
    )
    interval = Float(1.0, config=True, help="Seconds between scheduling cycles when nothing happens.")
    poll_interval = Float(
        0.1, config=True,
        help="Seconds between looks at the cluster for pods that ended or became ready; a change starts a cycle.",
    )
    stop_grace_seconds = Float(
        10.0, config=True, help="Seconds between SIGTERM and SIGKILL when a pod is stopped or evicted."
    )
    scale_down_delay = Float(
        30.0, config=True,
        help="Seconds an inference workload's load must stay low before replicas are removed.",
    )
    event_retention = Int(
        100_000, config=True,
        help="Events kept in the store: older ones are pruned at start and while the server runs (after every "
        "tenth of this many new events, at most every 1000), so the store holds at most this many plus one "
        "such batch.",
    )
    event_stream_buffer = Int(
        1000, config=True,
        help="Events an event-stream client may fall behind before the server tells it so (event 'overflow') "
        "and closes its stream; it reconnects with Last-Event-ID and gets the rest from the store.",
    )
    accounting_interval = Float(
        60.0, config=True,
        help="Seconds (of the scheduler's clock) between writes of the GPU accounting to the store; also written "
        "before every usage report and when the server stops (docs/monitoring.md).",
    )
    usage_sample_interval = Float(
        5.0, config=True, help="Seconds between samples of each device's and workload's GPU use (the history).",
    )
    usage_history = Int(
        120, config=True, help="Samples kept per device and per workload (1 to 10000): the history's length.",
    )
    placement_history = Int(
        1000, config=True,
        help="Most recent workloads (any state) whose pod shapes the fragmentation-aware GPU placement "
        "expects to keep arriving; 0: only the pending and running ones.",
    )

    role_bindings = List(
        Dict(), config=True,
        help="Roles granted from the configuration, each a dict: role (admin, department-admin, ml-engineer, "
        "researcher, viewer), user or group, and department or project (neither: the whole cluster), e.g. "
        "[{'role': 'researcher', 'group': 'vision', 'project': 'cats'}]. They add to the bindings granted at "
        "runtime (`runai access grant`) and cannot be revoked there. The server's own user is admin unless an "
        "identity provider (JupyterHub) says who the caller is (docs/admin.md).",
    )

    run_as = Enum(
        list(RUN_AS_MODES), default_value="auto", config=True,
        help="Whose system account a workload's processes run as on the local cluster. 'auto' (default): "
        "the submitter's (c.RunaiApp.system_account) when the service runs as root and the submitter is not "
        "the service's own user, else the service's own account. 'submitter': always the submitter's (the "
        "service must run as root). 'service': always the service's own account. A submitter without a "
        "system account gets a 400 naming submitted_by; a workload never runs as root in their place.",
    )
    system_account = Union(
        [Unicode(), Callable()], default_value="{username}", config=True,
        help="The system account of a (hub) user: a format string with {username} ('{username}'; The Littlest "
        "JupyterHub: 'jupyter-{username}') or a callable taking the user's name and returning the account's "
        "name. Used when run_as gives workloads their submitter's account (docs/jupyterhub.md).",
    )

    service_url = Unicode(
        config=True,
        help="Client mode (JupyterHub): the base URL of the shared scheduler service (`runai serve`, "
        "registered in c.JupyterHub.services). This server then runs no scheduler and forwards /runai to "
        "the service with the user's own hub token (JUPYTERHUB_API_TOKEN). Default: $RUNAI_SERVICE_URL, "
        "else empty (this server runs the scheduler itself). docs/jupyterhub.md.",
    )
    service_name = Unicode(
        config=True,
        help="The hub's name of the shared scheduler service, shown in /info (default: $RUNAI_SERVICE_NAME).",
    )

    @default("service_url")
    def _default_service_url(self) -> str:
        return os.environ.get("RUNAI_SERVICE_URL", "")

    @default("service_name")
    def _default_service_name(self) -> str:
        return os.environ.get("RUNAI_SERVICE_NAME", "")

    @default("state_dir")
    def _default_state_dir(self) -> str:
        return os.path.join(jupyter_data_dir(), "runai")

    @property
    def inside_workload(self) -> bool:
        """True in a Jupyter server that is itself a workload (a workspace): the scheduler runs
        in the outer server, not in this one."""
        return bool(os.environ.get("RUNAI_WORKLOAD_UID"))

    def initialize_settings(self) -> None:
        if self.inside_workload:
            self.log.info("jupyter-runai: this server is workload %s; the scheduler runs in the server "
                          "that started it", os.environ.get("RUNAI_WORKLOAD"))
            self.service = None
            return
        if self.service_url:
            self._forward_to_service()
            return
        self.settings["runai_mode"] = ({"mode": "service", "service": {"name": os.environ["JUPYTERHUB_SERVICE_NAME"]}}
                                       if os.environ.get("JUPYTERHUB_SERVICE_NAME") else {"mode": "embedded"})
        try:
            self._start_service()
        except StateLocked as exc:  # another server schedules on this state: never two schedulers
            self._not_scheduling(str(exc))
            self.log.warning("jupyter-runai: %s", self.load_error)
        except Exception as exc:  # say why, and answer every request with it, instead of no /runai at all
            self._not_scheduling(
                f"jupyter-runai could not start its scheduler: {type(exc).__name__}: {exc}. "
                f"State directory: {Path(self.state_dir).expanduser()}. Every /runai request "
                f"answers 503 with this message until it is fixed and the server restarted.")
            self.log.error("%s", self.load_error, exc_info=True)

    def _forward_to_service(self) -> None:
        """Client mode: no scheduler here; /runai goes to the shared service with the user's hub token."""
        from .forward import Upstream

        self.service = None
        token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
        url = urlparse(self.service_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            self._not_scheduling(
                f"c.RunaiApp.service_url (or RUNAI_SERVICE_URL) must be the shared service's http:// or https:// "
                f"base URL, such as http://127.0.0.1:10101/services/runai/; got {self.service_url[:200]!r}")
            self.log.warning("jupyter-runai: %s", self.load_error)
            return
        if not token:
            self._not_scheduling(
                f"c.RunaiApp.service_url is {self.service_url!r} but this server has no JUPYTERHUB_API_TOKEN to call "
                "it with: client mode runs in a JupyterHub user's server (docs/jupyterhub.md)")
            self.log.warning("jupyter-runai: %s", self.load_error)
            return
        self.upstream = Upstream(self.service_url, token, self.service_name or None)
        self.settings["runai_upstream"] = self.upstream
        self.settings["runai_app"] = self
        self.log.info("jupyter-runai: client mode: /runai is forwarded to the service at %s", self.upstream.url)

    upstream = None

    def _not_scheduling(self, why: str) -> None:
        """This server runs no scheduler: every /runai request answers 503 with ``why``."""
        self.service = None
        if self._state_lock is not None:
            self._state_lock.release()
        self.load_error = why
        self.settings["runai_load_error"] = why
        self.settings["runai_app"] = self

    def _start_service(self) -> None:
        self._run_as = RunAs(self.run_as, self.system_account)  # a setting that cannot work: said at once
        state = private_dir(Path(self.state_dir).expanduser())  # its database holds credentials
        cluster = None
        if self.backend == "kubernetes":
            cluster = self._cluster(state)
            elector = cluster.elector
            if elector is not None:  # one of several replicas: schedule only while holding the Lease
                elector.on_stopped = self._lease_lost
                elector.tried.wait(elector.request_timeout * 2)
                if not elector.leading:
                    self._standby(state, cluster)
                    return
        try:
            self._schedule(state, cluster)
        except BaseException:
            if cluster is not None:
                cluster.close()
            raise

    def _schedule(self, state: Path, cluster=None) -> None:
        """Take the state directory's lock, open the store and start the service on the cluster."""
        self._state_lock = StateLock(state)
        self._state_lock.acquire(url=self.serverapp.connection_url)  # or StateLocked: one scheduler per state
        store = Store(state / "runai.db")
        cluster = cluster or self._cluster(state)
        queues = self._queues(cluster)
        for dept in queues.departments:
            store.put_department(dept)
        if any(p.department == "default" for p in queues.projects) and store.departments() and \
                "default" not in {d.name for d in store.departments()}:
            store.put_department(Department(name="default"))
        for project in queues.projects:
            store.put_project(project)
        if not store.projects():  # a first start without a queue file: one project owns every GPU
            defaults = default_queue_config(sum(len(n.devices) for n in cluster.nodes()))
            for dept in defaults.departments:
                store.put_department(dept)
            for project in defaults.projects:
                store.put_project(project)
        for pool in queues.node_pools:  # the file's pools, then those created at runtime
            store.put_node_pool(pool)
        known = {pool.name for pool in store.node_pools()}
        for pool in getattr(cluster, "node_pools", lambda: [])():  # pools the cluster's node labels name
            if pool.name not in known:
                store.put_node_pool(pool)
        self.service = RunaiService(
            store,
            cluster,
            node_pools=store.node_pools(),
            interval=self.interval,
            poll_interval=self.poll_interval,
            stop_grace_seconds=self.stop_grace_seconds,
            scale_down_delay=self.scale_down_delay,
            placement_history=self.placement_history,
            event_retention=self.event_retention,
            event_buffer=self.event_stream_buffer,
            accounting_interval=max(1.0, self.accounting_interval),
            usage_sample_interval=max(0.5, self.usage_sample_interval),
            usage_history=self.usage_history,
            proxy_prefix=url_path_join(self.serverapp.base_url, "runai/proxy/"),
            proxy_secret=self._proxy_secret(state),
            run_as=self._run_as,
        )
        self.service.set_seed_bindings(self.role_bindings)  # a bad one: 503 naming its field, at once
        store.prune_events(keep=self.event_retention)
        self.service.start()  # state loaded and pods re-adopted before the first request
        self.settings["runai_service"] = self.service
        self.settings["runai_app"] = self
        gpus = sum(len(n.devices) for n in cluster.nodes())
        virtual = any(d.virtual for n in cluster.nodes() for d in n.devices)
        self.log.info("jupyter-runai: %s cluster, %d node(s), %d %sGPU(s), state in %s", self.backend,
                      len(cluster.nodes()), gpus, "virtual " if virtual else "", state)

    def _cluster(self, state: Path):
        """The configured backend (the Kubernetes client, seconds to import, only when it is chosen)."""
        if self.backend == "kubernetes":
            return KubernetesCluster(parent=self, state_dir=str(state))
        return LocalCluster(parent=self, state_dir=str(state))

    @staticmethod
    def _proxy_secret(state: Path) -> bytes:
        """A random key kept in the state dir (0600): workspace tokens are derived from it, so
        they stay valid across restarts of the server."""
        path = state / "proxy-secret"
        try:
            return bytes.fromhex(path.read_text().strip())
        except (OSError, ValueError):
            key = secrets.token_bytes(32)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(key.hex())
            return key

    def _queues(self, cluster) -> QueueConfig:
        """The queue file's content, or nothing (then the defaults apply on a first start)."""
        if self.queues_file:
            return load_queue_config(Path(self.queues_file).expanduser())
        return QueueConfig()

    load_error: str | None = None
    _state_lock: StateLock | None = None

    def initialize_handlers(self) -> None:
        if self.inside_workload:
            return
        if getattr(self, "upstream", None) is not None:
            from .forward import forward_handlers

            self.handlers.extend(forward_handlers())
        else:
            self.handlers.extend(default_handlers())

    async def _start_jupyter_server_extension(self, serverapp) -> None:
        self._loop = asyncio.get_running_loop()
        if self._lease_was_lost:  # lost while the server was starting: stop now that it can
            self._loop.call_soon(self.serverapp.stop)
        elif self.service is not None:
            self.service.ensure_running()  # the scheduling loop needs the running event loop
        elif self._standby_of is not None and self._standby_of[1].leading:
            self._take_over()  # the Lease came while the server was starting

    # ------------------------------------------------------------ leader election (Kubernetes)

    _loop: asyncio.AbstractEventLoop | None = None
    _lease_was_lost = False
    _standby_of: tuple[Path, KubernetesCluster] | None = None

    def _standby(self, state: Path, cluster: KubernetesCluster) -> None:
        """Another replica holds the Lease: answer 503 saying so, and take over when it is ours."""
        elector = cluster.elector
        self._standby_of = (state, cluster)
        self._not_scheduling(
            f"this replica is a standby: {elector.holder or 'another replica'} holds the Lease "
            f"{elector.namespace}/{elector.name} and schedules. This one takes over within "
            f"{elector.lease_seconds:g}s if it stops renewing it.")
        self.log.info("jupyter-runai: %s", self.load_error)

        def started() -> None:  # on the elector's thread
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._take_over)
        elector.on_started = started

    def _take_over(self, tries: int = 0) -> None:
        """This replica now holds the Lease: the state from the shared store, pods re-adopted."""
        if self._standby_of is None or self.service is not None:
            return
        state, cluster = self._standby_of
        try:
            self._schedule(state, cluster)
        except Exception as exc:
            if self._state_lock is not None:
                self._state_lock.release()
            if isinstance(exc, StateLocked) and tries < 60:  # the previous leader's process is on its way out
                asyncio.get_running_loop().call_later(0.5, self._take_over, tries + 1)
                return
            # holding the Lease without scheduling would leave the cluster with no scheduler:
            # stop (the Lease is handed over on the way out), and the Deployment starts this one again
            self.log.error("jupyter-runai: could not take over the scheduling: %s", exc, exc_info=True)
            self.serverapp.stop()
            return
        self._standby_of = None
        self.load_error = None
        self.settings["runai_load_error"] = None
        # the web app copied the extension's settings when it loaded: what requests read is there
        self.serverapp.web_app.settings.update(runai_service=self.service, runai_load_error=None)
        self.service.ensure_running()
        self.log.info("jupyter-runai: this replica took over the scheduling (it holds the Lease)")

    def _lease_lost(self) -> None:
        """On the elector's thread: the Lease is gone (not renewed in time, or taken over). This
        replica writes nothing more (the backend checks) and the server stops, so that its
        Deployment starts it again, as a standby."""
        self.log.error("jupyter-runai: this replica lost the Lease and stops; it restarts as a standby")
        self._lease_was_lost = True
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.serverapp.stop)

    async def stop_extension(self) -> None:
        service = getattr(self, "service", None)
        # in client mode too: the service outlives this server, but its kernels' workloads must not
        # (deleted while this server still forwards their provisioners' requests)
        if service is not None or self.upstream is not None:
            await self._shut_down_workload_kernels()
        if service is not None:
            await service.close()
            service.store.close()
        if self._standby_of is not None:  # a standby's caches and elector
            self._standby_of[1].close()
        if self._state_lock is not None:
            self._state_lock.release()

    async def _shut_down_workload_kernels(self, timeout: float = 30.0) -> None:
        """Shut down this server's kernels that run as workloads while the scheduler can
        still delete them: Jupyter stops extensions before kernels, so afterwards their
        provisioners would find the scheduler gone and leave the workloads behind."""
        from ..kernels.provisioner import RunaiProvisioner

        manager = getattr(self.serverapp, "kernel_manager", None)
        if manager is None:
            return
        ids = [kid for kid in list(manager.list_kernel_ids())
               if isinstance(getattr(manager.get_kernel(kid), "provisioner", None), RunaiProvisioner)]
        if not ids:
            return
        self.log.info("runai: shutting down %d kernel workload(s) before the scheduler stops", len(ids))
        try:
            results = await asyncio.wait_for(
                asyncio.gather(*(manager.shutdown_kernel(kid, now=False) for kid in ids), return_exceptions=True),
                timeout)
        except asyncio.TimeoutError:
            self.log.warning("runai: kernel workloads still shutting down after %gs; the scheduler stops anyway",
                             timeout)
            return
        for kid, result in zip(ids, results):
            if isinstance(result, BaseException):
                self.log.warning("runai: kernel %s did not shut down cleanly: %s", kid, result)
