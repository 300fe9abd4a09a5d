"""The local cluster: the embedded default backend, where this machine runs the pods.

Each pod is a process group on this machine, started through the pod runner
(``podrunner.py``) that records the command's exit code on disk, so a restarted
server still learns how its pods ended. GPUs come from NVML through the one seam
in ``nvml.py``; a machine without GPUs gets virtual devices (``virtual_gpus``), and
demonstrations and tests may declare more nodes (``virtual_nodes``) whose pods
also run here. GPU memory limits of fractions are enforced by a watchdog that
reads each pod's GPU memory from NVML. See ``docs/local-cluster.md``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import stat as stat_mode
import subprocess
import tempfile
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from traitlets import Any as AnyTrait
from traitlets import Bool, Dict, Float, List, TraitError, Unicode, default, validate
from traitlets.config import LoggingConfigurable

from ..accounts import SystemAccount
from ..models import GpuDevice, Node
from ..models.quantity import parse_memory
from . import logtimes, podrunner
from .base import DeviceMetrics, Endpoint, PodDeviceMetrics, PodLaunch, PodReport, PodState
from .nvml import Nvml, PynvmlNvml

__all__ = ["LocalCluster", "parse_virtual_gpus", "private_dir"]

GIB = 1024**3
DEFAULT_VIRTUAL_GPUS = {"count": 2, "memory": 24 * GIB}
VIRTUAL_GPU_MODEL = "Virtual GPU"
_RUNNER = os.path.abspath(podrunner.__file__)


# ----------------------------------------------------------------- helpers


def parse_virtual_gpus(value: Any) -> dict[str, int]:
    """``"2x24Gi"``, ``{"count": 2, "memory": "24Gi"}``, ``2`` (24Gi each) or ``0`` ->
    ``{"count": n, "memory": bytes}``."""
    if isinstance(value, bool):
        raise ValueError("must be a count and memory per device: '2x24Gi' or {'count': 2, 'memory': '24Gi'}")
    if isinstance(value, int):
        count, memory = value, DEFAULT_VIRTUAL_GPUS["memory"]
    elif isinstance(value, str):
        text = value.strip()
        match = re.fullmatch(r"(\d+)\s*(?:[xX*]\s*(\S+))?", text)
        if not match:
            raise ValueError(f"must be '<count>x<memory>' such as '2x24Gi', not {value!r}")
        count = int(match.group(1))
        memory = parse_memory(match.group(2)) if match.group(2) else DEFAULT_VIRTUAL_GPUS["memory"]
    elif isinstance(value, dict):
        unknown = set(value) - {"count", "memory"}
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)}; allowed: count, memory")
        count = value.get("count", DEFAULT_VIRTUAL_GPUS["count"])
        if isinstance(count, bool) or not isinstance(count, int):
            raise ValueError(f"count must be a whole number, not {count!r}")
        memory = parse_memory(value.get("memory", DEFAULT_VIRTUAL_GPUS["memory"]))
    else:
        raise ValueError(f"must be '2x24Gi' or {{'count': 2, 'memory': '24Gi'}}, not {value!r}")
    if count < 0:
        raise ValueError(f"count must be 0 or more, not {count}")
    if count and memory <= 0:
        raise ValueError("memory per device must be more than 0")
    return {"count": count, "memory": memory}


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _proc_stat(pid: int) -> tuple[str, int, int, int] | None:
    """(state, ppid, pgrp, start time in clock ticks) of a process, or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as stream:
            fields = stream.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # fields[0] is field 3 (state) of proc(5); start time is field 22.
    return fields[0], int(fields[1]), int(fields[2]), int(fields[19])


def _reap(pid: int) -> None:
    """Collect an ended child of this process (a zombie), if it is ours."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    except OSError:
        pass


def _alive(pid: int, start_time: int | None) -> bool:
    """True if ``pid`` runs and is the process started at ``start_time`` (not a reused pid)."""
    stat = _proc_stat(pid)
    if stat is None:
        return False
    if start_time is not None and stat[3] != start_time:
        return False
    if stat[0] in ("Z", "X"):
        _reap(pid)
        return False
    return True


_HANDLE_FILE = "handle.json"


def _write_handle_file(meta: Path, handle: dict[str, Any]) -> None:
    """The pod's handle next to its spec (atomically): what adopting a launch intent reads."""
    temp = meta / f".{_HANDLE_FILE}.tmp"
    temp.write_text(json.dumps(handle))
    os.replace(temp, meta / _HANDLE_FILE)


def _read_handle_file(meta: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((meta / _HANDLE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _runners() -> list[tuple[int, str]]:
    """(pid, spec file) of every pod runner process of this machine that this user can see."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as stream:
                args = stream.read().split(b"\0")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in args if a]
        if len(args) >= 2 and _RUNNER in args[:-1] and args[-1].endswith("spec.json"):
            found.append((int(name), args[-1]))
    return found


def _find_runner(spec_file: Path) -> tuple[int, int] | None:
    """(pid, start time) of the running pod runner started with ``spec_file``, or None."""
    for pid, spec in _runners():
        if spec == str(spec_file):
            stat = _proc_stat(pid)
            if stat is not None and stat[0] not in ("Z", "X"):
                return pid, stat[3]
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _socket_open(path: str) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.2)
            sock.connect(path)
            return True
    except OSError:
        return False


SOCKET_PATH_MAX = 100  # sun_path holds 107 bytes on Linux; keep a margin


def private_dir(path: Path) -> Path:
    """``path`` as a directory only this account can enter (mode 0700), created if missing.
    An existing one must be ours and no symlink; its mode is tightened if it was wider."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = os.lstat(path)
    if stat_mode.S_ISLNK(info.st_mode) or not stat_mode.S_ISDIR(info.st_mode):
        raise OSError(f"{path} is not a directory")
    if info.st_uid != os.geteuid():
        raise OSError(f"{path} belongs to another account (uid {info.st_uid}); refusing to keep pod files there")
    if stat_mode.S_IMODE(info.st_mode) & 0o077:
        os.chmod(path, 0o700)
    return path


def _remove(path: Path) -> None:
    """Remove a file or a directory tree; what is already gone is fine."""
    try:
        if path.is_symlink() or not path.is_dir():
            path.unlink(missing_ok=True)
        else:
            shutil.rmtree(path, ignore_errors=True)
    except OSError:
        pass


def _physical_memory() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def _label_value(text: str) -> str | None:
    value = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._")[:63].strip("-._")
    return value or None


def _host_name() -> str:
    name = socket.gethostname().split(".")[0] or "localhost"
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-._")
    return name or "localhost"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _gib(num_bytes: float) -> str:
    return f"{num_bytes / GIB:.1f} GiB"


# ----------------------------------------------------------------- pod state


@dataclass
class _Pod:
    key: str
    handle: dict[str, Any]
    popen: subprocess.Popen | None = None       # None for adopted pods (not our child)
    stop_requested: bool = False
    stop_grace: float = 0.0
    kill_deadline: float | None = None           # monotonic; SIGKILL after it
    killed: bool = False                         # SIGKILL sent by us
    failure: str | None = None                   # why the watchdog killed it
    timer: threading.Timer | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return int(self.handle["pid"])

    def running(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        return _alive(self.pid, self.handle.get("start_time"))


class LocalCluster(LoggingConfigurable):
    """Runs pods as process groups on this machine (and on declared virtual nodes)."""

    name = "local"
    read_only_mounts = False  # a host path is linked, not mounted: the pod's account can write to it
    runs_images = False  # no container runtime: commands run in the server's Python environment
    gpu_fractions = True
    workload_mirror = None  # workloads live in the store only (no custom resources)
    runs_as_accounts = True  # a launch's run_as (a system account) is honoured when the service runs as root

    state_dir = Unicode(
        help="Directory for the pods' working directories, logs and exit records "
        "(<state_dir>/pods/<project>/<workload>-<uid8>/<index>/). The service passes its own. "
        "Default: <jupyter data dir>/runai.",
    ).tag(config=True)

    virtual_gpus = AnyTrait(
        default_value=None,
        allow_none=True,
        help="Virtual GPUs of this machine, for a machine without GPUs: '2x24Gi', {'count': 2, 'memory': "
        "'24Gi'}, or 0 for none. Unset (default): none when NVML finds GPUs, otherwise 2 virtual devices "
        "of 24Gi, so a first-time user can submit at once. Virtual devices follow the real ones.",
    ).tag(config=True)

    virtual_nodes = List(
        Dict(),
        help="Extra virtual nodes (demonstrations and tests), each {'name', 'gpus', 'gpu_memory', 'cpu', "
        "'memory', 'labels', 'gpu_model'}; their pods run on this machine too. Default: none.",
    ).tag(config=True)

    local_node = Bool(
        True, help="List this machine itself as a node. False: only virtual_nodes (demonstrations)."
    ).tag(config=True)

    node_name = Unicode(help="Name of this machine's node. Default: the host name.").tag(config=True)

    node_labels = Dict(
        Unicode(), help="Labels of this machine's node (node pools select by them). Default: none."
    ).tag(config=True)

    stop_grace_seconds = Float(
        10.0, help="Seconds between SIGTERM and SIGKILL when stop() is given no grace period."
    ).tag(config=True)

    watchdog_interval = Float(
        2.0,
        help="Seconds between GPU memory checks of the pods (NVML), done in poll(). 0 turns the watchdog off.",
    ).tag(config=True)

    inherit_environment = Bool(
        True, help="Start pods with the server's environment (minus environment_exclude) under theirs."
    ).tag(config=True)

    environment_exclude = List(
        Unicode(),
        default_value=["JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN", "JUPYTER_TOKEN", "JUPYTER_PASSWORD"],
        help="Server environment variables a pod never inherits (the server's secrets).",
    ).tag(config=True)

    account_environment = List(
        Unicode(),
        default_value=["PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "LD_LIBRARY_PATH", "CUDA_HOME",
                       "CUDA_PATH", "PYTHONPATH", "CONDA_ROOT", "CONDA_DEFAULT_ENV", "VIRTUAL_ENV"],
        help="The only variables of the server's environment that a pod running as another account (its "
        "submitter's, under a root service) inherits, when inherit_environment is on: nothing else of root's "
        "environment reaches another account.",
    ).tag(config=True)

    default_commands = Dict(
        default_value={
            # served only through the Jupyter server's proxy: on a Unix socket in a directory
            # only this account can enter (RUNAI_SOCKET; a pod of another account has none and
            # listens on its loopback PORT), under the proxy's path as base URL
            # (RUNAI_PROXY_PATH), with the token the proxy adds taken from the environment
            # (JUPYTER_TOKEN, never the command line), and its own config and runtime dirs
            "workspace": "export JUPYTER_TOKEN=\"$RUNAI_PROXY_TOKEN\"; "
            "if [ -n \"$RUNAI_SOCKET\" ]; then set -- --ServerApp.sock=\"$RUNAI_SOCKET\"; "
            "else set -- --ServerApp.port=\"$PORT\"; fi; "
            "exec python -m jupyter lab --no-browser \"$@\" --ServerApp.base_url=\"${RUNAI_PROXY_PATH:-/}\" "
            "--ServerApp.root_dir=\"$PWD\" "
            "--ServerApp.allow_origin='*' --ServerApp.open_browser=False --allow-root",
            "inference": None,
        },
        help="Command by workload kind when a workload gives none. A kind missing or None: a command is required.",
    ).tag(config=True)

    nvml = AnyTrait(
        default_value=None,
        allow_none=True,
        help="The NVML seam (an object with devices/process_memory/usage/close); default: pynvml. For tests.",
    )

    # ------------------------------------------------------------ setup

    @default("state_dir")
    def _default_state_dir(self) -> str:
        try:
            from jupyter_core.paths import jupyter_data_dir  # noqa: PLC0415

            return os.path.join(jupyter_data_dir(), "runai")
        except ImportError:
            return os.path.join(os.path.expanduser("~"), ".local", "share", "jupyter-runai")

    @default("node_name")
    def _default_node_name(self) -> str:
        return _host_name()

    @validate("virtual_gpus")
    def _check_virtual_gpus(self, proposal):
        value = proposal["value"]
        if value is None:
            return None
        try:
            parse_virtual_gpus(value)
        except ValueError as error:
            raise TraitError(f"LocalCluster.virtual_gpus {error}") from None
        return value

    @validate("virtual_nodes")
    def _check_virtual_nodes(self, proposal):
        nodes = proposal["value"]
        for position, spec in enumerate(nodes):
            try:
                self._virtual_node(spec)
            except (ValueError, TypeError, KeyError) as error:
                raise TraitError(f"LocalCluster.virtual_nodes[{position}]: {error}") from None
        return nodes

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._lock = threading.RLock()
        self._pods: dict[str, _Pod] = {}
        self._master_ports: dict[str, int] = {}
        self._nodes: list[Node] | None = None
        self._next_watchdog = 0.0
        self._boot = _boot_id()

    def _nvml(self) -> Nvml:
        if self.nvml is None:
            self.nvml = PynvmlNvml()
        return self.nvml

    # ------------------------------------------------------------ nodes

    @staticmethod
    def _virtual_node(spec: dict[str, Any]) -> Node:
        allowed = {"name", "gpus", "gpu_memory", "cpu", "memory", "labels", "gpu_model"}
        unknown = set(spec) - allowed
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)}; allowed: {', '.join(sorted(allowed))}")
        if "name" not in spec:
            raise ValueError("'name' is required")
        name = spec["name"]
        count = int(spec.get("gpus", 0))
        memory = parse_memory(spec.get("gpu_memory", DEFAULT_VIRTUAL_GPUS["memory"]))
        model = spec.get("gpu_model", VIRTUAL_GPU_MODEL)
        devices = [
            GpuDevice(index=i, uuid=f"VIRTUAL-GPU-{name}-{i}", model=model, memory=memory, virtual=True)
            for i in range(count)
        ]
        return Node(
            name=name,
            labels=dict(spec.get("labels", {})),
            cpu=spec.get("cpu", os.cpu_count() or 1),
            memory=spec.get("memory", _physical_memory()),
            devices=devices,
        )

    def _local_node(self) -> Node:
        name = self.node_name
        devices = [
            GpuDevice(index=d.index, uuid=d.uuid, model=d.name, memory=d.memory_total)
            for d in self._nvml().devices()
        ]
        if self.virtual_gpus is None:
            virtual = {"count": 0, "memory": 0} if devices else dict(DEFAULT_VIRTUAL_GPUS)
        else:
            virtual = parse_virtual_gpus(self.virtual_gpus)
        start = len(devices)
        devices += [
            GpuDevice(index=start + i, uuid=f"VIRTUAL-GPU-{name}-{start + i}", model=VIRTUAL_GPU_MODEL,
                      memory=virtual["memory"], virtual=True)
            for i in range(virtual["count"])
        ]
        labels = {}
        host = _label_value(name)
        if host:
            labels["kubernetes.io/hostname"] = host
        real = [d for d in devices if not d.virtual]
        if real and _label_value(real[0].model):
            labels["nvidia.com/gpu.product"] = _label_value(real[0].model)
        labels.update(self.node_labels)
        return Node(name=name, labels=labels, cpu=os.cpu_count() or 1, memory=_physical_memory(), devices=devices)

    def nodes(self) -> list[Node]:
        """This machine (unless ``local_node`` is false) and the virtual nodes; computed once."""
        with self._lock:
            if self._nodes is None:
                nodes = [self._local_node()] if self.local_node else []
                nodes += [self._virtual_node(spec) for spec in self.virtual_nodes]
                names = [node.name for node in nodes]
                if len(set(names)) != len(names):
                    raise ValueError(f"LocalCluster: node names must be distinct, got {names}")
                self._nodes = nodes
            return list(self._nodes)

    def _node(self, name: str) -> Node:
        for node in self.nodes():
            if node.name == name:
                return node
        raise ValueError(f"the local cluster has no node {name!r} (nodes: {[n.name for n in self.nodes()]})")

    # ------------------------------------------------------------ launch

    def _pods_root(self) -> Path:
        return Path(self.state_dir) / "pods"

    def _pod_dir(self, launch: PodLaunch) -> Path:
        return self._pod_dir_of(launch.project, launch.workload, launch.workload_uid, launch.index)

    def _pod_dir_of(self, project: str, workload: str, workload_uid: str, index: int) -> Path:
        return self._pods_root() / project / f"{workload}-{workload_uid[:8]}" / str(index)

    def _socket_dir(self) -> Path:
        """A private directory for the pods' Unix sockets, with a path short enough for one:
        ``<state_dir>/sockets``, or one of this account's own under the temporary directory."""
        here = Path(self.state_dir).expanduser() / "sockets"
        if len(str(here)) + 22 <= SOCKET_PATH_MAX:
            return private_dir(here)
        digest = hashlib.sha256(str(Path(self.state_dir).expanduser().resolve()).encode()).hexdigest()[:8]
        return private_dir(Path(tempfile.gettempdir()) / f"runai-{os.geteuid()}-{digest}")

    def _socket_path(self, launch: PodLaunch) -> str:
        name = hashlib.sha256(f"{launch.workload_uid}/{launch.key}".encode()).hexdigest()[:16]
        return str(self._socket_dir() / f"{name}.sock")

    def _command(self, launch: PodLaunch) -> list[str]:
        command = launch.command
        if command is None:
            command = self.default_commands.get(launch.kind)
            if command is None:
                raise ValueError(f"a command is required for a {launch.kind} workload on the local cluster")
        if isinstance(command, str):
            return ["/bin/sh", "-c", command]
        if not command:
            raise ValueError("the command is empty")
        return [str(part) for part in command]

    def _master_port(self, launch: PodLaunch) -> int:
        port = self._master_ports.get(launch.workload_uid)
        if port is None and launch.master_key and launch.master_key in self._pods:
            port = self._pods[launch.master_key].handle.get("master_port")
        if port is None:
            port = _free_port()
        self._master_ports[launch.workload_uid] = port
        return port

    def _local_rank(self, launch: PodLaunch) -> int:
        return sum(
            1 for pod in self._pods.values()
            if pod.handle.get("workload_uid") == launch.workload_uid and pod.handle.get("node") == launch.node
            and int(pod.handle.get("index", -1)) < launch.index and pod.key != launch.key
        )

    def _environment(self, launch: PodLaunch, node: Node, meta: Path, port: int | None, sock: str | None,
                     master_port: int | None, account: SystemAccount | None = None) -> dict[str, str]:
        env: dict[str, str] = {}
        if self.inherit_environment:
            kept = set(self.account_environment) if account is not None else None
            env.update({k: v for k, v in os.environ.items()
                        if k not in set(self.environment_exclude) and (kept is None or k in kept)})
        # the pod's own Jupyter config and runtime directories, never the server's (a workspace's
        # Jupyter must not read the server's config, nor write its files among the server's)
        env["JUPYTER_CONFIG_DIR"] = str(meta / "jupyter-config")
        env["JUPYTER_RUNTIME_DIR"] = str(meta / "jupyter-runtime")
        env.update({k: str(v) for k, v in launch.environment.items()})
        bin_dir = os.path.join(launch.python_env, "bin") if launch.python_env else os.path.dirname(sys.executable)
        env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", os.defpath)])
        if launch.python_env:
            env["VIRTUAL_ENV"] = launch.python_env
        devices = [node.device(i) for i in launch.devices]
        env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"  # CUDA indices = NVML indices
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(d.index) for d in devices)
        env["NVIDIA_VISIBLE_DEVICES"] = ",".join(d.uuid for d in devices) if devices else "none"
        gpus = len(devices) * (launch.fraction if launch.fraction is not None else 1.0)
        env["RUNAI_NUM_OF_GPUS"] = f"{gpus:g}"
        if devices:
            fraction = launch.fraction if launch.fraction is not None else 1.0
            env["RUNAI_GPU_FRACTION"] = env["GPU_PORTION"] = f"{fraction:g}"
            if launch.gpu_memory_limit is not None:
                env["RUNAI_GPU_MEMORY_LIMIT"] = str(int(launch.gpu_memory_limit))
            if launch.gpu_fraction_limit is not None:
                env["RUNAI_GPU_FRACTION_LIMIT"] = f"{launch.gpu_fraction_limit:g}"
        pod_name = launch.key.split("/", 1)[-1]
        env.update({
            "RUNAI_WORKLOAD": launch.workload,
            "RUNAI_WORKLOAD_UID": launch.workload_uid,
            "RUNAI_PROJECT": launch.project,
            "RUNAI_WORKLOAD_KIND": launch.kind,
            "RUNAI_POD_INDEX": str(launch.index),
            "RUNAI_POD_NAME": pod_name,
            "RUNAI_NODE": launch.node,
            # Run:ai's own names for the same facts
            "JOB_NAME": launch.workload,
            "JOB_UUID": launch.workload_uid,
            "POD_INDEX": str(launch.index),
            "NODE_NAME": launch.node,
        })
        if port is not None:
            env["PORT"] = str(port)
        if sock is not None:
            env["RUNAI_SOCKET"] = sock
        if master_port is not None:
            env.update({
                "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": str(master_port),
                "WORLD_SIZE": str(launch.pod_count),
                "RANK": str(launch.index),
                "NODE_RANK": str(launch.index),
                "LOCAL_RANK": str(self._local_rank(launch)),
            })
        return env

    def _prepare(self, launch: PodLaunch, cwd: Path, written: list[str]) -> list[dict[str, Any]]:
        """Write the files (their paths go to ``written``, to be removed when the pod ends),
        link the host paths; return the git sources for the runner."""
        for item in launch.files:
            written.append(podrunner.inside(str(cwd), item.path, "file"))
            podrunner.write_file(str(cwd), item.path, item.content, item.mode)
        for mount in launch.mounts:
            if mount.kind == "host_path":
                podrunner.link_host_path(str(cwd), mount.source, mount.target)
        return self._git_sources(launch, lambda relative, what: podrunner.inside(str(cwd), relative, what))

    @staticmethod
    def _git_sources(launch: PodLaunch, place) -> list[dict[str, Any]]:
        """The git sources for the runner, each target placed by ``place(relative, what)``."""
        git = []
        for mount in launch.mounts:
            if mount.kind == "git":
                target = place(mount.target, "git mount target")
                git.append({"source": mount.source, "target": target, "revision": mount.revision})
            elif mount.kind != "host_path":
                raise ValueError(f"data source kind {mount.kind!r} is not supported by the local cluster "
                                 "(host_path and git are)")
        return git

    # ------------------------------------------------------------ as the submitter's account

    @staticmethod
    def _account_workdir(launch: PodLaunch, account: SystemAccount) -> Path:
        """The working directory of a pod that runs as ``account``: the workload's ``working_dir``
        (``~`` and relative paths are under the account's home), else a directory of its own
        under ``<home>/runai/``. The pod makes it, as the account: root never writes there."""
        home = account.home
        if launch.working_dir:
            given = launch.working_dir
            if given == "~" or given.startswith("~/"):
                given = home + given[1:]
            path = given if os.path.isabs(given) else os.path.join(home, given)
        else:
            path = os.path.join(home, "runai", launch.project, f"{launch.workload}-{launch.workload_uid[:8]}",
                                str(launch.index))
        return Path(os.path.normpath(path))

    @staticmethod
    def _account_place(cwd: Path):
        """``place(relative, what)``: a path under ``cwd`` worked out without looking there (root follows
        nothing in the account's directory; the pod checks again, as the account, where it writes)."""
        def place(relative: str, what: str) -> str:
            path = os.path.normpath(os.path.join(str(cwd), relative.lstrip("/")))
            if path != str(cwd) and not path.startswith(str(cwd).rstrip("/") + "/"):
                raise ValueError(f"{what} {relative!r} is outside the pod's working directory")
            return path
        return place

    @staticmethod
    def _account_environment(env: dict[str, str], account: SystemAccount, cwd: Path, pod_name: str) -> list[str]:
        """The account's HOME, USER, LOGNAME and SHELL, and Jupyter directories of the pod's own in
        its working directory (the service's are not the account's to read); returns those directories."""
        env.update(HOME=account.home, USER=account.name, LOGNAME=account.name, SHELL=account.shell)
        private = [f".runai/{pod_name}/jupyter-config", f".runai/{pod_name}/jupyter-runtime"]
        env["JUPYTER_CONFIG_DIR"] = str(cwd / private[0])
        env["JUPYTER_RUNTIME_DIR"] = str(cwd / private[1])
        return private

    @staticmethod
    def _write_inputs(meta: Path, launch: PodLaunch, env: dict[str, str]) -> Path:
        """The pod's environment, files and host paths for a runner that starts as root with an empty
        environment (``podrunner``): a file only root may read, which the runner removes at once."""
        inputs = {
            "env": env,
            "files": [{"path": f.path, "content": base64.b64encode(f.content).decode(), "mode": f.mode}
                      for f in launch.files],
            "mounts": [{"source": m.source, "target": m.target} for m in launch.mounts if m.kind == "host_path"],
        }
        path = meta / "inputs.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with open(fd, "w", encoding="utf-8") as stream:
            json.dump(inputs, stream)
        return path

    @staticmethod
    def _remove_as(account: dict[str, Any], paths: list[str]) -> None:
        """Remove files in a directory the account controls, as that account (root follows no link there)."""
        if not paths:
            return
        try:
            subprocess.run(["rm", "-f", "--", *paths], user=int(account["uid"]), group=int(account["gid"]),
                           extra_groups=[int(g) for g in account.get("groups") or []], cwd="/",
                           env={"PATH": os.defpath}, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=10, check=False)
        except (OSError, subprocess.SubprocessError, ValueError):
            pass

    def launch(self, launch: PodLaunch) -> dict[str, Any]:
        """Start the pod through the pod runner; return its handle. Raises ValueError/OSError
        when it cannot start (bad node/device, missing host path, unwritable state dir)."""
        with self._lock:
            if launch.key in self._pods and self._pods[launch.key].running():
                raise ValueError(f"pod {launch.key} is already running")
            node = self._node(launch.node)
            missing = [i for i in launch.devices if i not in {d.index for d in node.devices}]
            if missing:
                raise ValueError(f"node {node.name} has no device {', '.join(map(str, missing))}")
            command = self._command(launch)
            private_dir(self._pods_root())  # what lies below is this account's only
            pod_dir = self._pod_dir(launch)
            pod_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            meta = pod_dir / ".runai"
            for directory in (meta, meta / "jupyter-config", meta / "jupyter-runtime"):
                directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            account: SystemAccount | None = launch.run_as
            if account is not None and os.geteuid() != 0 and account.uid != os.geteuid():
                raise ValueError(f"cannot run the pod as {account.name}: the service does not run as root")
            if account is not None and account.uid == os.geteuid():
                account = None  # its own account: nothing to change
            secret_files: list[str] = []
            user_files: list[str] = []  # the account's, in its own directory: removed as the account
            spec: dict[str, Any] = {}
            if account is None:
                cwd = Path(launch.working_dir).expanduser() if launch.working_dir else pod_dir
                cwd.mkdir(parents=True, exist_ok=True)
                try:
                    git = self._prepare(launch, cwd, secret_files)
                except BaseException:
                    self._scrub({"secret_files": secret_files})
                    raise
            else:  # nothing is written where the account could plant a link: the pod prepares it, as the account
                cwd = self._account_workdir(launch, account)
                place = self._account_place(cwd)
                user_files = [place(item.path, "file") for item in launch.files]
                git = self._git_sources(launch, place)
                spec.update(run_as=account.as_dict(), cwd=str(cwd))
            exit_file = meta / "exit.json"
            exit_file.unlink(missing_ok=True)
            _write_handle_file(meta, {"launch_id": launch.launch_id})  # this launch, before it starts
            port = _free_port() if launch.needs_port else None
            # a pod of another account listens on its port: a socket in a directory it could write would
            # let it point the proxy (root) at any socket of the machine (see docs/security.md)
            sock = self._socket_path(launch) if launch.needs_port and account is None else None
            if sock is not None:
                Path(sock).unlink(missing_ok=True)  # a socket left by an earlier run of this pod
            distributed = launch.kind == "distributed" or launch.master_key is not None
            master_port = self._master_port(launch) if distributed else None
            env = self._environment(launch, node, meta, port, sock, master_port, account)
            env.setdefault("GIT_TERMINAL_PROMPT", "0")
            runner_env = env
            if account is not None:
                spec["private_dirs"] = self._account_environment(env, account, cwd, launch.key.split("/", 1)[-1])
                inputs = self._write_inputs(meta, launch, env)
                secret_files.append(str(inputs))  # the runner removes it; if it never started, the scrub does
                spec["inputs"] = str(inputs)
                runner_env = {"PATH": os.defpath, "LANG": "C.UTF-8"}  # nothing of the pod's reaches root
            log_path = pod_dir / "pod.log"
            spec_file = meta / "spec.json"
            spec_file.write_text(json.dumps({"command": command, "exit_file": str(exit_file), "git": git,
                                             "times_file": str(logtimes.times_path(log_path)), **spec}))
            # The runner starts with the stop signals blocked (the mask survives exec) and
            # unblocks them once its handler is in place: a stop() right after launch is
            # then recorded by the runner instead of killing it before it can record anything.
            blocked = signal.pthread_sigmask(signal.SIG_BLOCK, podrunner.STOP_SIGNALS)
            try:
                # a new pod, a new log (as on Kubernetes), readable by this account only
                log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
                os.fchmod(log_fd, 0o600)
                with open(log_fd, "wb") as log_stream:
                    popen = subprocess.Popen(
                        [sys.executable, "-I", _RUNNER, str(spec_file)],
                        cwd=cwd if account is None else pod_dir, env=runner_env, stdin=subprocess.DEVNULL,
                        stdout=log_stream, stderr=subprocess.STDOUT,
                        start_new_session=True, close_fds=True,
                    )
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            stat = _proc_stat(popen.pid)
            handle: dict[str, Any] = {
                "pid": popen.pid,
                "pgid": popen.pid,  # the runner leads a new session and process group
                "start_time": stat[3] if stat else None,
                "boot_id": self._boot,
                "node": launch.node,
                "workload_uid": launch.workload_uid,
                "index": launch.index,
                "devices": list(launch.devices),
                "fraction": launch.fraction,
                "gpu_memory_limit": launch.gpu_memory_limit,
                "gpu_fraction_limit": launch.gpu_fraction_limit,
                "workdir": str(cwd),
                "pod_dir": str(pod_dir),
                "log": str(log_path),
                "exit_file": str(exit_file),
                "port": port,
                "socket": sock,
                "secret_files": secret_files,
                "user_files": user_files,
                "run_as": account.as_dict() if account is not None else None,
                "master_port": master_port,
                "needs_port": launch.needs_port,
                "ready": False if launch.needs_port else None,
                "started_at": time.time(),
            }
            if launch.launch_id is not None:
                handle["launch_id"] = launch.launch_id
            _write_handle_file(meta, handle)  # found again through the service's launch intent
            self._pods[launch.key] = _Pod(launch.key, handle, popen)
            self.log.debug("launched pod %s as pid %s in %s", launch.key, popen.pid, cwd)
            return dict(handle)

    # ------------------------------------------------------------ stop

    def stop(self, key: str, grace_seconds: float | None = None) -> None:
        """SIGTERM to the pod's process group now, SIGKILL after the grace period if it still
        runs (by a timer, and checked again in poll()). Idempotent; a shorter grace on a
        second call brings the SIGKILL forward."""
        grace = self.stop_grace_seconds if grace_seconds is None else max(0.0, float(grace_seconds))
        with self._lock:
            pod = self._pods.get(key)
            if pod is None:
                return
            deadline = time.monotonic() + grace
            if pod.stop_requested:
                if pod.kill_deadline is not None and deadline >= pod.kill_deadline:
                    return
            else:
                pod.stop_requested = True
                pod.stop_grace = grace
                self._signal(pod, signal.SIGTERM)
            pod.kill_deadline = deadline
            if pod.timer is not None:
                pod.timer.cancel()
            if grace <= 0:
                self._kill(pod)
                return
            timer = threading.Timer(grace, self._kill_when_due, args=(key,))
            timer.daemon = True
            pod.timer = timer
            timer.start()

    def _signal(self, pod: _Pod, sig: int) -> None:
        if not pod.running():
            return  # ended (and reaped); its pgid may name someone else's group by now
        try:
            os.killpg(int(pod.handle.get("pgid", pod.pid)), sig)
        except ProcessLookupError:
            pass
        except PermissionError as error:
            self.log.warning("cannot signal pod %s: %s", pod.key, error)

    def _kill(self, pod: _Pod) -> None:
        if pod.running():
            pod.killed = True
            self._signal(pod, signal.SIGKILL)

    def _kill_when_due(self, key: str) -> None:
        with self._lock:
            pod = self._pods.get(key)
            if pod is not None and pod.kill_deadline is not None and time.monotonic() >= pod.kill_deadline - 0.01:
                self._kill(pod)

    # ------------------------------------------------------------ poll

    @staticmethod
    def _read_exit(handle: dict[str, Any]) -> dict[str, Any] | None:
        try:
            with open(handle["exit_file"], encoding="utf-8") as stream:
                return json.load(stream)
        except (OSError, ValueError, KeyError, TypeError):
            return None

    @staticmethod
    def _ended_words(record: dict[str, Any]) -> str:
        if record.get("reason"):
            return str(record["reason"])
        if record.get("signal"):
            return f"killed by signal {record['signal']}"
        return f"exited with code {record.get('exit_code')}"

    def _end_report(self, pod: _Pod) -> PodReport:
        record = self._read_exit(pod.handle)
        code = record.get("exit_code") if record else None
        if pod.failure:
            return PodReport(pod.key, PodState.FAILED, code if code is not None else 128 + signal.SIGKILL,
                             pod.failure)
        if pod.stop_requested:
            if record is None:
                words = (f"stopped: killed with SIGKILL after the {pod.stop_grace:g} s grace period"
                         if pod.killed else "stopped")
                code = 128 + signal.SIGKILL if pod.killed else None
            else:
                words = f"stopped ({self._ended_words(record)})"
            return PodReport(pod.key, PodState.STOPPED, code, words)
        if record is None:
            return PodReport(pod.key, PodState.FAILED, None,
                             "ended without an exit code: its process group was killed from outside")
        state = PodState.SUCCEEDED if code == 0 else PodState.FAILED
        return PodReport(pod.key, state, code, self._ended_words(record))

    def poll(self) -> list[PodReport]:
        """Pods that ended (reaped, with their exit codes), pods whose port opened (RUNNING with
        ``handle["ready"] = True``), and pods the watchdog stopped (FAILED, with the reason)."""
        reports: list[PodReport] = []
        with self._lock:
            now = time.monotonic()
            for pod in list(self._pods.values()):
                if pod.stop_requested and pod.kill_deadline is not None and now >= pod.kill_deadline:
                    self._kill(pod)
            if self.watchdog_interval > 0 and now >= self._next_watchdog:
                self._next_watchdog = now + self.watchdog_interval
                try:
                    self._watchdog()
                except Exception:  # never let a driver hiccup stop the service's loop
                    self.log.exception("local cluster: the GPU memory watchdog failed this round")
            for key, pod in list(self._pods.items()):
                if not pod.running():
                    if pod.timer is not None:
                        pod.timer.cancel()
                    del self._pods[key]
                    reports.append(self._end_report(pod))
                    self._scrub(pod.handle)
                elif pod.handle.get("needs_port") and not pod.handle.get("ready") and not pod.stop_requested:
                    via = self._answers(pod.handle)
                    if via is not None:
                        pod.handle["ready"] = True
                        pod.handle["via"] = via
                        where = "its socket" if via == "socket" else f"port {pod.handle.get('port')}"
                        reports.append(PodReport(key, PodState.RUNNING, handle=dict(pod.handle),
                                                 message=f"ready on {where}"))
            if not self._pods:
                self._master_ports.clear()
        return reports

    # ------------------------------------------------------------ watchdog

    def _pod_of_pid(self, pid: int, groups: dict[int, str], runners: dict[int, str]) -> str | None:
        """The pod a process belongs to: by process group, else by ancestry (the runner)."""
        seen = 0
        current = pid
        while current > 1 and seen < 64:
            stat = _proc_stat(current)
            if stat is None:
                return None
            if stat[2] in groups:
                return groups[stat[2]]
            if current in runners:
                return runners[current]
            current = stat[1]
            seen += 1
        return None

    def _watchdog(self) -> None:
        nvml = self._nvml()
        local = self.node_name if self.local_node else None
        watched = {k: p for k, p in self._pods.items()
                   if p.handle.get("node") == local and p.handle.get("devices") and not p.failure}
        if not watched:
            return
        totals = {d.index: d.memory_total for d in nvml.devices()}
        if not totals:
            return
        groups = {int(p.handle.get("pgid", p.pid)): k for k, p in watched.items()}
        runners = {p.pid: k for k, p in watched.items()}
        for index, total in totals.items():
            holders = {k: p for k, p in watched.items() if index in p.handle["devices"]}
            if not holders:
                continue
            used: dict[str, int] = {k: 0 for k in holders}
            other = 0  # memory of processes that are not pods holding this device
            for pid, memory in nvml.process_memory(index).items():
                owner = self._pod_of_pid(pid, groups, runners)
                if owner in used:
                    used[owner] += memory
                else:
                    other += memory
            guaranteed: dict[str, int] = {}
            for key, pod in holders.items():
                g, limit = self._limits(pod.handle, total)
                guaranteed[key] = g
                if limit is not None and used[key] > limit:
                    self._fail(pod, f"stopped: used {_gib(used[key])} of GPU memory on device {index}, "
                                    f"over its limit of {_gib(limit)}")
            # Dynamic fractions: burst memory only from what no other pod is guaranteed.
            alive = [k for k in holders if not holders[k].failure]
            bursting = sorted((k for k in alive if used[k] > guaranteed[k]),
                              key=lambda k: used[k] - guaranteed[k], reverse=True)
            if not bursting:
                continue
            steady = [k for k in alive if k not in bursting]
            room = total - other - sum(guaranteed[k] for k in steady)
            burst_use = sum(used[k] for k in bursting)
            for key in bursting:
                if burst_use <= room:
                    break
                claim = max(steady, key=lambda k: guaranteed[k] - used[k]) if steady else None
                why = (f", leaving pod {claim} less than its guaranteed {_gib(guaranteed[claim])}"
                       if claim else "")
                self._fail(holders[key], f"stopped: used {_gib(used[key])} of GPU memory on device {index}, "
                                         f"above its guaranteed {_gib(guaranteed[key])}{why}")
                burst_use -= used[key]
                steady.append(key)  # what it held is now free for the others' guarantees

    @staticmethod
    def _limits(handle: dict[str, Any], total: int) -> tuple[int, int | None]:
        """(guaranteed bytes, hard limit in bytes or None) of a pod on a device of ``total`` bytes."""
        fraction = handle.get("fraction")
        memory_limit = handle.get("gpu_memory_limit")
        fraction_limit = handle.get("gpu_fraction_limit")
        if fraction is not None:
            guaranteed = int(fraction * total)
        elif memory_limit is not None:
            guaranteed = int(memory_limit)
        else:
            guaranteed = total
        if fraction_limit is not None:
            limit = max(int(fraction_limit * total), int(memory_limit or 0))
            guaranteed = min(guaranteed, limit)
        elif memory_limit is not None:
            limit = int(memory_limit)
        elif fraction is not None:
            limit = int(fraction * total)
        else:
            limit = None  # whole devices: the device is the limit
        return guaranteed, limit

    def _fail(self, pod: _Pod, message: str) -> None:
        if pod.failure:
            return
        self.log.warning("local cluster: pod %s %s", pod.key, message)
        pod.failure = message
        self._kill(pod)

    # ------------------------------------------------------------ adopt

    def _adopt_intent(self, key: str, intent: dict[str, Any]) -> PodReport:
        """A pod whose launch was only intended when the service stopped: did that launch
        start it? Its handle file names the launch; the runner is found by its spec file
        when the server died before it wrote the pid there."""
        never = PodReport(key, PodState.LOST, message="lost: it had not started")
        try:
            project, pod_name = key.split("/", 1)
            pod_dir = self._pod_dir_of(project, pod_name.rsplit("-", 1)[0], str(intent["workload_uid"]),
                                       int(intent["index"]))
        except (KeyError, TypeError, ValueError):
            return never
        meta = pod_dir / ".runai"
        recorded = _read_handle_file(meta)
        if recorded is None or not intent.get("launch_id") or recorded.get("launch_id") != intent["launch_id"]:
            return never  # that launch did not get as far as starting a process
        if recorded.get("pid") is None:  # started, maybe: the runner names its spec file
            found = _find_runner(meta / "spec.json")
            if found is not None:
                pid, start_time = found
                recorded.update(pid=pid, pgid=pid, start_time=start_time, boot_id=self._boot,
                                exit_file=str(meta / "exit.json"), log=str(pod_dir / "pod.log"),
                                pod_dir=str(pod_dir), node=intent.get("node"),
                                workload_uid=intent.get("workload_uid"), index=intent.get("index"),
                                devices=list(intent.get("devices") or []), fraction=intent.get("fraction"))
            else:
                recorded.update(exit_file=str(meta / "exit.json"), log=str(pod_dir / "pod.log"))
                record = self._read_exit(recorded)
                if record is None:
                    return never
                code = record.get("exit_code")
                return PodReport(key, PodState.SUCCEEDED if code == 0 else PodState.FAILED, code,
                                 self._ended_words(record), handle=recorded)
        report = self.adopt(key, recorded)
        if report.handle is None and report.state != PodState.LOST:
            report.handle = dict(recorded)
        return report

    def end_strays(self) -> list[str]:
        """Kill (SIGKILL, the whole process group) every pod runner under this cluster's state
        directory that no adopted pod accounts for: pods that nothing tracks any more. Call it
        once after the service re-adopted its pods. Returns what it ended, in words."""
        root = (Path(self.state_dir) / "pods").resolve()
        ended = []
        with self._lock:
            known = {pod.pid for pod in self._pods.values()}
            for pid, spec in _runners():
                try:
                    where = Path(spec).resolve().relative_to(root)
                except (ValueError, OSError):
                    continue  # another state directory's pod
                stat = _proc_stat(pid)
                if pid in known or stat is None or stat[2] != pid:
                    continue
                try:
                    os.killpg(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    continue
                _reap(pid)
                ended.append(f"pid {pid}, {where.parent.parent}")
        return ended

    def adopt(self, key: str, handle: dict[str, Any]) -> PodReport:
        """Find a pod again from its stored handle after a restart (or from the launch intent
        the service recorded before it launched the pod)."""
        if handle.get("launching"):
            with self._lock:
                if key in self._pods:
                    return PodReport(key, PodState.RUNNING, handle=dict(self._pods[key].handle))
            return self._adopt_intent(key, handle)
        with self._lock:
            if key in self._pods:
                return PodReport(key, PodState.RUNNING, handle=dict(self._pods[key].handle))
            try:
                pid = int(handle["pid"])
            except (KeyError, TypeError, ValueError):
                return PodReport(key, PodState.LOST, message="lost: its handle names no process")
            handle = dict(handle)
            same_boot = handle.get("boot_id") is None or handle.get("boot_id") == self._boot
            if same_boot and _alive(pid, handle.get("start_time")):
                pod = _Pod(key, handle)
                self._pods[key] = pod
                if handle.get("master_port") and handle.get("workload_uid"):
                    self._master_ports.setdefault(handle["workload_uid"], int(handle["master_port"]))
                return PodReport(key, PodState.RUNNING, handle=dict(handle), message="adopted: still running")
            self._scrub(handle)  # it ended while the server was away: its secrets go now
            record = self._read_exit(handle)
            if record is None:
                why = "the machine restarted" if not same_boot else "its process is gone"
                return PodReport(key, PodState.LOST, message=f"lost: {why} and it recorded no exit code")
            code = record.get("exit_code")
            state = PodState.SUCCEEDED if code == 0 else PodState.FAILED
            return PodReport(key, state, code, self._ended_words(record))

    # ------------------------------------------------------------ logs, metrics, close

    def log_path(self, key: str, handle: dict[str, Any] | None = None) -> Path | None:
        with self._lock:
            pod = self._pods.get(key)
            source = pod.handle if pod is not None else handle
        if not source or not source.get("log"):
            return None
        path = Path(source["log"])
        return path if path.exists() else None

    @staticmethod
    def _answers(handle: dict[str, Any]) -> str | None:
        """How a serving pod answers now: ``"socket"`` (its Unix socket, preferred), ``"port"``, or None."""
        sock = handle.get("socket")
        if sock and _socket_open(sock):
            return "socket"
        port = handle.get("port")
        if port and _port_open(int(port)):
            return "port"
        return None

    def endpoint(self, key: str, handle: dict[str, Any]) -> Endpoint | None:
        if not handle.get("ready"):
            return None
        if handle.get("via") == "socket" and handle.get("socket"):
            return Endpoint(socket=str(handle["socket"]))
        if handle.get("port"):
            return Endpoint(port=int(handle["port"]))
        return None

    @classmethod
    def _scrub(cls, handle: dict[str, Any]) -> None:
        """Remove a pod's secret files and socket once it no longer runs."""
        for path in handle.get("secret_files") or []:
            _remove(Path(path))
        if handle.get("run_as") and handle.get("user_files"):
            cls._remove_as(handle["run_as"], list(handle["user_files"]))
        if handle.get("socket"):
            _remove(Path(handle["socket"]))

    def release(self, key: str, handle: dict[str, Any]) -> None:
        """Remove the pod's directory (log, exit record, its files) and secret files; only a
        directory under ``<state_dir>/pods`` is ever removed."""
        with self._lock:
            pod = self._pods.get(key)
            if pod is not None and pod.running():
                return  # still running: it is removed when its workload is, after it ends
            self._pods.pop(key, None)
        self._scrub(handle)
        if not handle.get("pod_dir"):
            return
        pod_dir = Path(handle["pod_dir"])
        root = self._pods_root().resolve()
        try:
            resolved = pod_dir.resolve()
        except OSError:
            return
        if root not in resolved.parents:
            self.log.warning("local cluster: not removing %s: it is not under %s", pod_dir, root)
            return
        _remove(resolved)
        for parent in (resolved.parent, resolved.parent.parent):  # <workload>-<uid8>, <project>
            if parent != root and root in parent.parents:
                try:
                    parent.rmdir()  # only when empty
                except OSError:
                    break

    def pod_metrics(self) -> list[PodDeviceMetrics]:
        """Per pod and real device it holds on this machine: the GPU memory its processes use and their
        utilization (NVML per process), each process mapped to its pod by process group or ancestry.
        Utilization is None where NVML does not measure processes; virtual devices are not listed."""
        if not self.local_node:
            return []
        with self._lock:
            pods = {k: p for k, p in self._pods.items()
                    if p.handle.get("node") == self.node_name and p.handle.get("devices") and p.running()}
        if not pods:
            return []
        nvml = self._nvml()
        real = {d.index for d in nvml.devices()}
        groups = {int(p.handle.get("pgid", p.pid)): k for k, p in pods.items()}
        runners = {p.pid: k for k, p in pods.items()}
        by_process = getattr(nvml, "process_utilization", None)
        out = []
        for index in sorted(real):
            holders = [k for k, p in pods.items() if index in p.handle["devices"]]
            if not holders:
                continue
            memory = {k: 0 for k in holders}
            for pid, used in nvml.process_memory(index).items():
                owner = self._pod_of_pid(pid, groups, runners)
                if owner in memory:
                    memory[owner] += used
            samples = by_process(index) if callable(by_process) else None
            utilization: dict[str, float | None] = {k: None if samples is None else 0.0 for k in holders}
            for pid, percent in (samples or {}).items():
                owner = self._pod_of_pid(pid, groups, runners)
                if owner in utilization:
                    utilization[owner] = min(100.0, (utilization[owner] or 0.0) + percent)
            out += [PodDeviceMetrics(k, self.node_name, index, memory[k], utilization[k]) for k in holders]
        return out

    def metrics(self) -> list[DeviceMetrics]:
        """Per device: used memory and utilization from NVML; None for virtual devices."""
        result = []
        nvml = self._nvml()
        for node in self.nodes():
            for device in node.devices:
                if device.virtual:
                    result.append(DeviceMetrics(node.name, device.index))
                else:
                    used, utilization = nvml.usage(device.index)
                    result.append(DeviceMetrics(node.name, device.index, used, utilization))
        return result

    def close(self) -> None:
        """Cancel the SIGKILL timers and release NVML; pods keep running (adopt finds them again)."""
        with self._lock:
            for pod in self._pods.values():
                if pod.timer is not None:
                    pod.timer.cancel()
                    pod.timer = None
            if self.nvml is not None:
                self.nvml.close()
