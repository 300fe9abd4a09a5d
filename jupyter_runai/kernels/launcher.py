"""``python -m jupyter_runai.kernels.launcher <manager pid> <kernel argv...>``: the command of a kernel's
workload. It runs the kernel and ends it when the kernel manager's process is gone, so that a Jupyter
server that stops (it stops its extensions, and with them the runai service, before its kernels) or
dies leaves no kernel workload holding a GPU behind. The local cluster only: the pid is of this machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

CHECK_SECONDS = 2.0
GRACE_SECONDS = 5.0


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 2 or not args[0].isdigit():
        print("usage: python -m jupyter_runai.kernels.launcher <manager pid> <kernel argv...>", file=sys.stderr)
        return 2
    manager, command = int(args[0]), args[1:]
    kernel = subprocess.Popen(command)

    def forward(signum: int, _frame: object) -> None:
        if kernel.poll() is None:
            kernel.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    while True:
        try:
            return kernel.wait(CHECK_SECONDS)
        except subprocess.TimeoutExpired:
            pass
        if manager > 1 and not alive(manager):
            print(f"jupyter-runai: the kernel manager (pid {manager}) is gone; ending the kernel", file=sys.stderr)
            kernel.terminate()
            try:
                return kernel.wait(GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                kernel.kill()
                return kernel.wait()


if __name__ == "__main__":
    sys.exit(main())
