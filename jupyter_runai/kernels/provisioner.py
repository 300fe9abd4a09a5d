"""A jupyter_client kernel provisioner whose kernel is a runai workspace workload.

Kernel specs name it in ``metadata.kernel_provisioner`` (see ``kernels/`` and
docs/kernels.md)::

    "metadata": {"kernel_provisioner": {"provisioner_name": "runai-provisioner",
                                        "config": {"gpu": 0.5}}}

On launch the provisioner writes the kernel's connection file (ports on
127.0.0.1, picked by jupyter_client's own port cache), submits a ``workspace``
workload named ``kernel-<first 8 of the kernel id>`` whose command is the kernel
spec's ``argv`` (``python -m ipykernel_launcher -f <connection file>``), and waits
until it is Running. Every later step (poll, interrupt, stop, delete) goes
through :class:`~jupyter_runai.client.RunaiClient`, i.e. the REST API, so the
kernel manager may run in any process that reaches the server.

The local cluster only: the pod runs on this machine and binds the ports of the
connection file on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
from typing import Any

from jupyter_client.connect import KernelConnectionInfo, LocalPortCache
from jupyter_client.provisioning.provisioner_base import KernelProvisionerBase
from tornado.web import HTTPError
from traitlets import Bool, Dict, Float, Int, List, Unicode, Union

from ..client import RunaiClient, RunaiError

__all__ = ["RunaiProvisioner", "KernelStartError", "workload_name"]

# phases in which the kernel's pod is (or is about to be) alive
_ALIVE = ("Pending", "Running")
_EXIT_CODE = re.compile(r"exited with code (-?\d+)")


class KernelStartError(HTTPError, RuntimeError):
    """The kernel's workload could not be started (not scheduled in time, or it failed).

    A tornado ``HTTPError``: jupyter_server answers a kernel start (``POST /api/kernels``, a kernel
    change of a session) that raises it with its status and ``{"message": <why>}``, which JupyterLab
    shows in its dialog; any other exception reaches the user as an empty "Unhandled error"."""

    def __init__(self, message: str, status: int = 500) -> None:
        super().__init__(status, message, reason="The kernel did not start")
        self.message = message

    def __str__(self) -> str:
        return self.message


def workload_name(kernel_id: str) -> str:
    """``kernel-<first 8 characters of the kernel id>`` (a DNS-1123 label)."""
    short = re.sub(r"[^a-z0-9]", "", (kernel_id or "").lower())[:8] or "anon"
    return f"kernel-{short}"


class RunaiProvisioner(KernelProvisionerBase):  # type: ignore[misc]
    """Runs the kernel as a ``workspace`` workload holding a GPU (fraction)."""

    # ------------------------------------------------------------ config (kernel spec metadata)
    gpu = Union([Float(), Int()], default_value=0, config=True,
                help="GPU request: whole devices (1, 2) or a fraction of one (0.5).")
    gpu_memory = Unicode(None, allow_none=True, config=True,
                         help="GPU memory per device instead of a fraction, e.g. '8Gi'.")
    gpu_limit = Float(None, allow_none=True, config=True, help="Dynamic fraction: burst limit.")
    cpu = Union([Float(), Int(), Unicode()], default_value=None, allow_none=True, config=True,
                help="CPU request (cores or '500m').")
    memory = Unicode(None, allow_none=True, config=True, help="Memory request, e.g. '8Gi'.")
    project = Unicode(None, allow_none=True, config=True,
                      help="Project of the kernel's workload; RUNAI_PROJECT overrides it; default: the "
                           "first project the user may submit to.")
    node_pools = List(Unicode(), config=True, help="Node pools in order of preference.")
    python_env = Unicode(None, allow_none=True, config=True,
                         help="Local cluster: the venv / conda prefix the kernel runs in.")
    environment = Dict(config=True, help="Extra environment variables of the kernel.")
    start_timeout = Float(60.0, config=True,
                          help="Seconds to wait for the workload to be Running before giving up.")
    poll_interval = Float(0.25, config=True, help="Seconds between status checks while starting.")
    exit_with_manager = Bool(True, config=True,
                             help="End the kernel when the kernel manager's process is gone (see launcher.py).")

    # ------------------------------------------------------------ state
    workload: str | None = None
    workload_project: str | None = None
    _exit_code: int | None = None
    _client: RunaiClient | None = None

    # ------------------------------------------------------------ helpers

    @property
    def client(self) -> RunaiClient:
        if self._client is None:
            self._client = RunaiClient(project=self._resolved_project())
        return self._client

    def _resolved_project(self) -> str | None:
        """The kernel spec's project, else ``RUNAI_PROJECT``; ``None`` lets the client ask the server
        for the first project the user may submit to (no project name is assumed to exist)."""
        return self.workload_project or os.environ.get("RUNAI_PROJECT") or self.project

    async def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call a (blocking) client method off the event loop."""
        return await asyncio.to_thread(getattr(self.client, method), *args, **kwargs)

    async def _get(self) -> dict[str, Any] | None:
        """The kernel's workload, or None when it is gone."""
        try:
            return await self._call("get", self.workload, self.workload_project)
        except RunaiError as exc:
            if exc.status == 404:
                return None
            raise

    @staticmethod
    def _exit_code_of(workload: dict[str, Any] | None) -> int:
        if workload is None:
            return -signal.SIGKILL  # deleted
        status = workload.get("status") or {}
        phase = status.get("phase")
        if phase == "Succeeded":
            return 0
        texts = [status.get("message") or ""] + [p.get("message") or "" for p in status.get("pods") or []]
        for text in texts:
            match = _EXIT_CODE.search(text)
            if match:
                return int(match.group(1))
        if phase in ("Stopping", "Stopped", "Deleting"):
            return -signal.SIGTERM
        return 1

    def _resources(self) -> dict[str, Any]:
        resources: dict[str, Any] = {}
        if self.gpu_memory:
            resources["gpu_memory"] = self.gpu_memory
        elif self.gpu:
            resources["gpu"] = self.gpu
        for key in ("gpu_limit", "cpu", "memory"):
            value = getattr(self, key)
            if value is not None:
                resources[key] = value
        return resources

    # ------------------------------------------------------------ lifecycle

    @property
    def has_process(self) -> bool:
        return self.workload is not None and self._exit_code is None

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        """Pick the ports (jupyter_client's port cache), write the connection file, format argv."""
        km = self.parent
        extra_arguments = kwargs.pop("extra_arguments", [])
        if km is not None:
            if km.transport != "tcp":
                raise KernelStartError("the runai provisioner needs the tcp transport")
            if km.cache_ports and not getattr(self, "_ports_cached", False):
                lpc = LocalPortCache.instance()
                for port in ("shell_port", "iopub_port", "stdin_port", "hb_port", "control_port"):
                    setattr(km, port, lpc.find_available_port(km.ip))
                self._ports_cached = True
            session = (kwargs.get("env") or {}).get("JPY_SESSION_NAME", "")
            km.write_connection_file(jupyter_session=session)
            self.connection_info = km.get_connection_info()
            cmd = km.format_kernel_cmd(extra_arguments=extra_arguments)
        else:
            cmd = list(self.kernel_spec.argv) + list(extra_arguments)
        return await super().pre_launch(cmd=cmd, **kwargs)

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        """Submit the workspace workload running ``cmd`` and wait until it is Running."""
        try:
            return await self._launch(cmd, **kwargs)
        except RunaiError as exc:  # the server refused or could not be reached: say so, not "Unhandled error"
            raise KernelStartError(f"the kernel's workload {self.workload_project}/{self.workload} did not "
                                   f"start: {exc}", status=exc.status if 400 <= (exc.status or 0) < 600 else 502) \
                from None

    async def _launch(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        self.workload = workload_name(self.kernel_id)
        self.workload_project = self._resolved_project() or await asyncio.to_thread(lambda: self.client.project)
        self._exit_code = None
        # a previous run of this kernel (a restart) must be gone before the name is free again
        if await self._get() is not None:
            await self._delete_and_wait()

        env = kwargs.get("env") or {}
        # only the kernel spec's variables (substituted) travel: the manager's environment may hold tokens
        environment = {k: str(env.get(k, v)) for k, v in (self.kernel_spec.env or {}).items()}
        if env.get("JPY_SESSION_NAME"):
            environment["JPY_SESSION_NAME"] = env["JPY_SESSION_NAME"]
        environment.update({k: str(v) for k, v in self.environment.items()})
        environment["RUNAI_KERNEL_ID"] = self.kernel_id
        spec: dict[str, Any] = {
            "name": self.workload,
            "project": self.workload_project,
            "kind": "workspace",
            "resources": self._resources(),
            "command": self._command(cmd),
            "environment": environment,
        }
        if kwargs.get("cwd"):
            spec["working_dir"] = str(kwargs["cwd"])
        if self.python_env:
            spec["python_env"] = self.python_env
        if self.node_pools:
            spec["node_pools"] = list(self.node_pools)
        try:
            await self._call("submit", spec)
        except RunaiError as exc:
            raise KernelStartError(f"the kernel's workload {self.workload_project}/{self.workload} "
                                   f"was refused: {exc.message}",
                                   status=exc.status if 400 <= (exc.status or 0) < 500 else 500) from None
        self.log.info("runai: kernel %s is workload %s/%s (%s)", self.kernel_id, self.workload_project,
                      self.workload, spec["resources"])
        await self._wait_running()
        return self.connection_info

    def _command(self, cmd: list[str]) -> list[str]:
        if not self.exit_with_manager:
            return list(cmd)
        return ["python", "-m", "jupyter_runai.kernels.launcher", str(os.getpid()), *cmd]

    async def _wait_running(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout
        reason = None
        while True:
            workload = await self._get()
            if workload is None:
                raise KernelStartError(f"the kernel's workload {self.workload_project}/{self.workload} "
                                       "was deleted before it started")
            status = workload.get("status") or {}
            phase = status.get("phase")
            if phase == "Running":
                return
            if phase != "Pending":
                self._exit_code = self._exit_code_of(workload)
                raise KernelStartError(f"the kernel's workload {self.workload_project}/{self.workload} "
                                       f"is {phase}: {status.get('message') or 'no message'}")
            reason = status.get("pending_reason") or reason
            if loop.time() >= deadline:
                await self._delete_and_wait(wait=False)
                raise KernelStartError(
                    f"the kernel waits for a GPU: {reason or 'not scheduled yet'} (workload "
                    f"{self.workload_project}/{self.workload} still Pending after {self.start_timeout:g}s; "
                    "it was deleted)", status=503)
            await asyncio.sleep(self.poll_interval)

    async def _delete_and_wait(self, wait: bool = True, timeout: float = 30.0) -> None:
        try:
            await self._call("delete", self.workload, self.workload_project)
        except RunaiError as exc:
            if exc.status != 404:
                raise
        if not wait:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while await self._get() is not None:
            if loop.time() >= deadline:
                raise KernelStartError(f"the workload {self.workload_project}/{self.workload} "
                                       f"was not gone {timeout:g}s after its deletion")
            await asyncio.sleep(self.poll_interval)

    async def poll(self) -> int | None:
        """None while the workload is Pending or Running, else an exit code."""
        if self.workload is None:
            return 0
        if self._exit_code is not None:
            return self._exit_code
        try:
            workload = await self._get()
        except RunaiError as exc:  # the server is unreachable: do not declare the kernel dead
            self.log.warning("runai: cannot poll %s: %s", self.workload, exc)
            return None
        if workload is not None and (workload.get("status") or {}).get("phase") in _ALIVE:
            return None
        self._exit_code = self._exit_code_of(workload)
        return self._exit_code

    async def wait(self) -> int | None:
        """Until the workload is no longer Pending or Running; its exit code."""
        while True:
            code = await self.poll()
            if code is not None:
                return code
            await asyncio.sleep(self.poll_interval)

    async def send_signal(self, signum: int) -> None:
        """A pod cannot be signalled through the API: SIGKILL deletes, SIGTERM stops the workload;
        interrupts go as messages (the kernel specs say ``interrupt_mode: message``)."""
        if signum == signal.SIGKILL:
            await self.kill()
        elif signum == signal.SIGTERM:
            await self.terminate()
        elif signum != 0:
            self.log.warning("runai: signal %s is not sent to kernel workload %s (not supported)",
                             signum, self.workload)

    async def kill(self, restart: bool = False) -> None:
        """Delete the workload (its pod gets SIGTERM, then SIGKILL)."""
        if self.workload is None:
            return
        try:
            await self._call("delete", self.workload, self.workload_project)
        except RunaiError as exc:
            if exc.status != 404:
                raise

    async def terminate(self, restart: bool = False) -> None:
        """Stop the workload (SIGTERM to its pod, SIGKILL after the grace period)."""
        if self.workload is None:
            return
        try:
            await self._call("stop", self.workload, self.workload_project)
        except RunaiError as exc:
            if exc.status not in (404, 409, 400):
                raise

    async def cleanup(self, restart: bool = False) -> None:
        """Delete the workload (and wait until its name is free when the kernel restarts);
        give the cached ports back unless restarting."""
        if self.workload is not None:
            try:
                await self._delete_and_wait(wait=restart)
            except RunaiError as exc:
                self.log.warning("runai: cannot delete %s: %s", self.workload, exc)
        if getattr(self, "_ports_cached", False) and not restart:
            lpc = LocalPortCache.instance()
            for port in ("shell_port", "iopub_port", "stdin_port", "hb_port", "control_port"):
                if self.connection_info.get(port):
                    lpc.return_port(self.connection_info[port])
            self._ports_cached = False
        if not restart and self._client is not None:
            self._client.close()
            self._client = None

    async def get_provisioner_info(self) -> dict[str, Any]:
        info = await super().get_provisioner_info()
        info.update({"workload": self.workload, "project": self.workload_project})
        return info

    async def load_provisioner_info(self, provisioner_info: dict) -> None:
        await super().load_provisioner_info(provisioner_info)
        self.workload = provisioner_info.get("workload")
        self.workload_project = provisioner_info.get("project")
        self._exit_code = None

    def get_shutdown_wait_time(self, recommended: float = 5.0) -> float:
        # the kernel exits on a shutdown request; the service then sees its pod end
        return max(recommended, 5.0)
