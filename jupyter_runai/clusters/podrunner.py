"""The pod runner: the first process of every local pod.

``python -I path/to/podrunner.py SPEC.json`` (or ``python -m
jupyter_runai.clusters.podrunner SPEC.json``). The local cluster starts it as the
leader of a new session and process group, with the pod's environment, working
directory and log file (stdout and stderr) already in place. It

1. clones the pod's git data sources (their output goes to the pod's log),
2. runs the command as its child, in the same process group,
3. waits for it, riding out SIGTERM (the command gets it too, through the group),
4. writes the exit record ``{"exit_code", "signal", "reason", "finished_at"}``
   atomically (write to a temporary file, fsync, rename) to the exit file, so the
   exit code survives a crash or restart of the Jupyter server,
5. and ends what the command left running in the group (SIGKILL), reaping them:
   the runner is a child subreaper, so the pod's orphans are its children. As
   Kubernetes ends a container's processes when its main process exits.

When the spec names a ``times_file``, the runner's output (its own, git's and the
command's) reaches the log through a pipe that the runner reads: each chunk goes to the
log unchanged and, when a line starts in it, its arrival time to the times file
(``logtimes.py``). The runner outlives a restart of the Jupyter server, so an adopted pod
keeps its times. Everything written before the command ended is in the log before the
exit record is written.

The spec holds no secrets: the environment comes through the process
environment. Standard library only, so it runs under ``python -I``.

Run as another account (``spec["run_as"]``: the service runs as root and the workload
is a user's): the runner itself stays root, started with an empty environment, so
that nothing of the pod's (``LD_PRELOAD``...) reaches a root process. It reads the
pod's environment and files from ``spec["inputs"]`` (a root-only file in the pod's
root-only directory, removed at once), and everything else happens as the user, in
processes that dropped root (groups, gid, uid) before doing anything: a child makes
the working directory, writes the files, links the host paths (which it must be able
to read) and clones the git sources; the command starts in that directory. The log
is the file descriptor the runner inherited: the user's processes write to it, but
cannot open it, nor the exit record, nor anything else of the service's.
"""

from __future__ import annotations

import base64
import json
import os
import select
import signal
import fcntl
import subprocess
import sys
import termios
import threading
import time

try:
    from . import logtimes
except ImportError:  # run as a script under ``python -I``: the sibling file, by its path
    import importlib.util

    _spec = importlib.util.spec_from_file_location(
        "_runai_logtimes", os.path.join(os.path.dirname(os.path.abspath(__file__)), "logtimes.py"))
    logtimes = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(logtimes)

__all__ = ["STOP_SIGNALS", "inside", "link_host_path", "main", "write_exit_record", "write_file"]

STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
"""Signals the runner rides out; the cluster starts it with them blocked until its handler is set."""


def write_exit_record(path: str, exit_code: int, sig: int | None = None, reason: str | None = None) -> None:
    """Write the exit record atomically: readers see the old file or the whole new one."""
    record = {
        "exit_code": exit_code,
        "signal": signal.Signals(sig).name if sig else None,
        "reason": reason,
        "finished_at": time.time(),
    }
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as stream:
        json.dump(record, stream)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(tmp, path)


class _Tee(threading.Thread):
    """Copies what arrives on the pipe to the log, recording when each line started."""

    def __init__(self, times_file: str) -> None:
        super().__init__(name="runai-tee", daemon=True)
        self._log = os.dup(1)  # the log file the cluster opened as our stdout
        self._read, write = os.pipe()
        os.dup2(write, 1)
        os.dup2(write, 2)
        os.close(write)
        try:
            start = os.lseek(self._log, 0, os.SEEK_END)
        except OSError:  # not a file (a pipe): offsets count from here
            start = 0
        self._times: logtimes.TimesWriter | None = logtimes.TimesWriter(times_file, offset=start)
        self._busy = threading.Lock()  # held from a read until its bytes are in the log

    def run(self) -> None:
        while True:
            select.select([self._read], [], [])  # waits outside the lock; only this thread reads
            with self._busy:  # read and written together: drain() sees the pipe empty only after
                data = os.read(self._read, 64 * 1024)
                if not data:
                    break
                if self._times is not None:
                    try:
                        self._times.chunk(data, time.time_ns())  # the time first: a reader of a line finds it
                    except OSError:  # the times are lost from here (the reader says '-'), never the output
                        self._times = None
                view = memoryview(data)
                try:
                    while view:
                        view = view[os.write(self._log, view):]
                except OSError:  # a full disk: the rest of this chunk is lost, as the command's own write
                    # would have failed; reading on keeps the command from blocking on a full pipe, and
                    # the next record starts where the log goes on (it supersedes this one's)
                    if self._times is not None:
                        self._times.offset = os.lseek(self._log, 0, os.SEEK_CUR)
        if self._times is not None:
            self._times.close()

    def drain(self, timeout: float = 5.0) -> None:
        """Return once what was written to the pipe so far is in the log (or after ``timeout``,
        when something left running keeps writing)."""
        sys.stdout.flush()
        sys.stderr.flush()
        deadline = time.monotonic() + timeout
        waiting = bytearray(4)
        while time.monotonic() < deadline:
            with self._busy:
                fcntl.ioctl(self._read, termios.FIONREAD, waiting)
                if int.from_bytes(waiting, sys.byteorder) == 0:
                    return
            time.sleep(0.005)

    def close(self, timeout: float = 2.0) -> None:
        """Our end of the pipe closes; the copy ends once no process of the pod holds it."""
        sys.stdout.flush()
        sys.stderr.flush()
        os.close(1)
        os.close(2)
        self.join(timeout)


def _say(message: str) -> None:
    print(f"[runai] {message}", flush=True)


def _git(args: list[str]) -> int:
    _say("$ git " + " ".join(args))
    return subprocess.call(["git", *args], stdin=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def inside(base: str, relative: str, what: str) -> str:
    """``relative`` under ``base``; absolute paths are placed under base too; no escaping by '..'."""
    root = os.path.realpath(base)
    path = os.path.realpath(os.path.join(base, relative.lstrip("/"))) if relative else root
    if path != root and not path.startswith(root.rstrip("/") + "/"):
        raise ValueError(f"{what} {relative!r} is outside the pod's working directory")
    return path


def write_file(cwd: str, relative: str, content: bytes, mode: int) -> str:
    """Write one of the pod's files (a credential) under ``cwd`` with ``mode``, following no link
    at its place; returns its path."""
    path = inside(cwd, relative, "file")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    try:
        os.fchmod(fd, mode)  # the umask does not apply, and an existing file gets the mode too
        os.write(fd, content)
    finally:
        os.close(fd)
    return path


def link_host_path(cwd: str, source: str, target: str) -> None:
    """Show the host path ``source`` at ``target`` (under ``cwd``) as a link. The caller's account
    must be able to read it: a path it cannot read is refused, never read with more rights."""
    where = inside(cwd, target, "host_path mount target")
    source = os.path.expanduser(source)
    if not os.path.exists(source):
        raise ValueError(f"data source {source}: no such path on this machine")
    if not os.access(source, os.R_OK | (os.X_OK if os.path.isdir(source) else 0)):
        raise ValueError(f"data source {source}: permission denied for this account (uid {os.getuid()})")
    if os.path.islink(where):
        os.unlink(where)
    elif os.path.exists(where):
        raise ValueError(f"cannot mount {source} at {target}: the path exists")
    os.makedirs(os.path.dirname(where), exist_ok=True)
    os.symlink(os.path.realpath(source), where, target_is_directory=os.path.isdir(source))


def _drop_to(account: dict) -> None:
    """Become ``account`` for good (supplementary groups, then gid, then uid); raises if not all took."""
    uid, gid = int(account["uid"]), int(account["gid"])
    os.setgroups([int(g) for g in account.get("groups") or [gid]])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid):
        raise PermissionError(f"could not become uid {uid}")


def _as_account(account: dict, env: dict, work) -> str | None:
    """Run ``work()`` in a child process that is ``account`` (never root): None when it succeeded,
    else the reason it gives. Its output goes to the pod's log."""
    sys.stdout.flush()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no threads in the runner, so a fork is safe
        code = 1
        try:
            os.close(read_end)
            for sig in STOP_SIGNALS:  # a stop ends the preparation at once (the runner records it)
                signal.signal(sig, signal.SIG_DFL)
            _drop_to(account)
            os.environ.clear()
            os.environ.update(env)
            reason = work()
            code = 0 if reason is None else 1
        except BaseException as error:  # noqa: BLE001 - the child says why and ends
            reason = str(error) or type(error).__name__
        try:
            if reason:
                os.write(write_end, reason.encode("utf-8", "replace")[:4000])
            sys.stdout.flush()
        finally:
            os._exit(code)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 4096):
        chunks.append(chunk)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    reason = b"".join(chunks).decode("utf-8", "replace")
    if reason:
        return reason
    return None if os.waitstatus_to_exitcode(status) == 0 else "preparing the pod as its account failed"


def _prepare_as_account(spec: dict, inputs: dict) -> str | None:
    """In the account's child: its working directory, files, host paths and git sources."""
    cwd = spec["cwd"]
    os.makedirs(cwd, mode=0o700, exist_ok=True)
    os.chdir(cwd)
    for relative in spec.get("private_dirs", []):
        os.makedirs(inside(cwd, relative, "directory"), mode=0o700, exist_ok=True)
    for item in inputs.get("files", []):
        write_file(cwd, item["path"], base64.b64decode(item["content"]), int(item["mode"]))
    for mount in inputs.get("mounts", []):
        link_host_path(cwd, mount["source"], mount["target"])
    for source in spec.get("git", []):
        reason = _checkout(source)
        if reason:
            return reason
    return None


def _read_inputs(path: str) -> dict:
    """The pod's environment and files, from the root-only file the cluster wrote; removed at once."""
    try:
        with open(path, encoding="utf-8") as stream:
            return json.load(stream)
    finally:
        os.unlink(path)


def _checkout(source: dict) -> str | None:
    """Clone one git data source; None on success, else the reason it failed."""
    url, target, revision = source["source"], source["target"], source.get("revision")
    if os.path.isdir(os.path.join(target, ".git")):
        _say(f"data source {url}: {target} is already a clone; fetching")
        if _git(["-C", target, "fetch", "--all", "--tags"]) != 0:
            return f"data source {url}: git fetch failed"
    else:
        parent = os.path.dirname(os.path.abspath(target))
        os.makedirs(parent, exist_ok=True)
        code = _git(["clone", "--", url, target])  # '--': neither can be read as an option
        if code != 0:
            return f"data source {url}: git clone failed with code {code}"
    if revision:
        code = _git(["-C", target, "checkout", "--quiet", revision])
        if code != 0:
            return f"data source {url}: git checkout of {revision!r} failed with code {code}"
    return None


def _others_in_group() -> list[int]:
    me, group = os.getpid(), os.getpgrp()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/stat", encoding="utf-8", errors="replace") as stream:
                fields = stream.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == group:
            found.append(int(name))
    return found


def _become_subreaper() -> None:
    """Orphans of the command are re-parented to the runner (Linux), so it can reap them."""
    try:
        import ctypes  # noqa: PLC0415

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def _end_leftovers(timeout: float = 2.0) -> None:
    """SIGKILL what the command left in the group, and reap what was re-parented to us."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        others = _others_in_group()
        for pid in others:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            if not others:
                return
        if not others:
            return
        time.sleep(0.01)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: podrunner SPEC.json", file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as stream:
        spec = json.load(stream)
    exit_file: str = spec["exit_file"]
    tee = _Tee(spec["times_file"]) if spec.get("times_file") else None
    if tee is not None:
        tee.start()
    code = _run(spec, exit_file, tee)
    if tee is not None:
        tee.close()
    return code


def _run(spec: dict, exit_file: str, tee: _Tee | None) -> int:
    def record_exit(path: str, exit_code: int, sig: int | None = None, reason: str | None = None) -> None:
        if tee is not None:
            tee.drain()  # the log is complete up to here before the pod is seen to end
        write_exit_record(path, exit_code, sig, reason)
    account = spec.get("run_as")
    inputs = _read_inputs(spec["inputs"]) if account else {}
    env = inputs.get("env")  # None: this process's environment (the runner is the pod's account)

    terminating = False

    def on_term(signum, frame):  # the command got the same signal through the group
        nonlocal terminating
        terminating = True

    for sig in STOP_SIGNALS:
        signal.signal(sig, on_term)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # a stop that came early is delivered now
    _become_subreaper()

    if account:  # everything the pod does, as its account
        reason = _as_account(account, env, lambda: _prepare_as_account(spec, inputs))
        inputs = {}
        if terminating:
            record_exit(exit_file, 143, signal.SIGTERM, "ended before the command started")
            return 143
        if reason:
            reason = f"could not prepare the pod as {account.get('name')}: {reason}"
            _say(reason)
            record_exit(exit_file, 1, None, reason)
            return 1
    for source in [] if account else spec.get("git", []):
        if terminating:
            record_exit(exit_file, 143, signal.SIGTERM, "ended before the command started")
            return 143
        reason = _checkout(source)
        if reason:
            _say(reason)
            record_exit(exit_file, 1, None, reason)
            return 1
    if terminating:
        record_exit(exit_file, 143, signal.SIGTERM, "ended before the command started")
        return 143

    command = spec["command"]
    try:
        # The child restores default signal handling (Python's subprocess does so
        # for SIGPIPE etc.; SIGTERM handlers are not inherited across exec).
        if account:
            cwd = spec["cwd"]

            def become() -> None:  # in the child, before exec: the account, then its directory
                _drop_to(account)
                os.chdir(cwd)

            child = subprocess.Popen(command, stdin=subprocess.DEVNULL, env=env, preexec_fn=become)
        else:
            child = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        reason = f"could not start: command not found: {command[0]}"
        _say(reason)
        record_exit(exit_file, 127, None, reason)
        return 127
    except PermissionError:
        reason = f"could not start: permission denied: {command[0]}"
        _say(reason)
        record_exit(exit_file, 126, None, reason)
        return 126
    except (OSError, subprocess.SubprocessError) as error:  # SubprocessError: the account's step failed
        reason = f"could not start {command[0]}: {error}"
        _say(reason)
        record_exit(exit_file, 126, None, reason)
        return 126
    if terminating:  # the stop came between the check above and the start: pass it on
        child.send_signal(signal.SIGTERM)

    while True:
        try:
            returncode = child.wait()
            break
        except InterruptedError:  # pragma: no cover - PEP 475 retries; kept for safety
            continue
    if returncode < 0:
        sig = -returncode
        record_exit(exit_file, 128 + sig, sig, None)
        code = 128 + sig
    else:
        record_exit(exit_file, returncode, None, None)
        code = returncode
    sys.stdout.flush()
    _end_leftovers()  # as Kubernetes ends a container's processes when its main process exits
    return code


if __name__ == "__main__":
    sys.exit(main())
