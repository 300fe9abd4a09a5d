"""``RunaiApp``: the jupyter_server extension that runs the scheduler service.

Configuration (traitlets; in ``jupyter_server_config.py`` or on the command line)::

    c.RunaiApp.backend = "local"            # the embedded default: this machine runs the pods
    c.RunaiApp.state_dir = "~/.local/share/jupyter/runai"
    c.RunaiApp.queues_file = "runai-queues.yaml"
    c.LocalCluster.virtual_gpus = "2x24Gi"  # for a machine without GPUs

See docs/configuration.md for every option.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path

from jupyter_core.paths import jupyter_data_dir
from jupyter_server.extension.application import ExtensionApp
from jupyter_server.utils import url_path_join
from traitlets import Enum, Float, Int, Unicode, default

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
    classes = [LocalCluster]

    backend = Enum(
        ["local"],
        default_value="local",
        config=True,
        help="Where workloads run. 'local': this machine, each pod a process group (the embedded default).",
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

    def _not_scheduling(self, why: str) -> None:
        """This server runs no scheduler: every /runai request answers 503 with ``why``."""
        self.service = None
        if self._state_lock is not None:
            self._state_lock.release()
        self.load_error = why
        self.settings["runai_load_error"] = why
        self.settings["runai_app"] = self

    def _start_service(self) -> None:
        state = private_dir(Path(self.state_dir).expanduser())  # its database holds credentials
        self._state_lock = StateLock(state)
        self._state_lock.acquire(url=self.serverapp.connection_url)  # or StateLocked: one scheduler per state
        store = Store(state / "runai.db")
        cluster = LocalCluster(parent=self, state_dir=str(state))
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
        )
        store.prune_events(keep=self.event_retention)
        self.service.start()  # state loaded and pods re-adopted before the first request
        self.settings["runai_service"] = self.service
        self.settings["runai_app"] = self
        gpus = sum(len(n.devices) for n in cluster.nodes())
        virtual = any(d.virtual for n in cluster.nodes() for d in n.devices)
        self.log.info("jupyter-runai: %s cluster, %d node(s), %d %sGPU(s), state in %s", self.backend,
                      len(cluster.nodes()), gpus, "virtual " if virtual else "", state)

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

    def _queues(self, cluster: LocalCluster) -> QueueConfig:
        """The queue file's content, or nothing (then the defaults apply on a first start)."""
        if self.queues_file:
            return load_queue_config(Path(self.queues_file).expanduser())
        return QueueConfig()

    load_error: str | None = None
    _state_lock: StateLock | None = None

    def initialize_handlers(self) -> None:
        if not self.inside_workload:
            self.handlers.extend(default_handlers())

    async def _start_jupyter_server_extension(self, serverapp) -> None:
        if self.service is not None:
            self.service.ensure_running()  # the scheduling loop needs the running event loop

    async def stop_extension(self) -> None:
        service = getattr(self, "service", None)
        if service is not None:
            await self._shut_down_workload_kernels()
            await service.close()
            service.store.close()
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
