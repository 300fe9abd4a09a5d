"""How long a `runai` command takes, against how long Python takes to start.

    python benchmarks/cli_startup.py               # 15 runs of each command
    python benchmarks/cli_startup.py --runs 5      # fewer
    python benchmarks/cli_startup.py --json        # the figures as one JSON object

A real Jupyter server with the extension runs in a temporary directory
(``tests/live_server.py``: virtual GPUs, its own runtime directory) holding a few
workloads. Each command then runs as a user's shell runs it: a fresh
``python -m jupyter_runai.cli ...`` process that finds the server by itself in the
runtime directory. In the same run, ``python -c pass`` is timed the same way, and
each command is reported as its median wall time and its difference from that
baseline. The target (issue 13): ``runai list`` within 0.3 s of ``python -c pass``.

For comparison it also times ``python -c "import jupyter_server.serverapp"``: what
finding the server used to cost before the runtime files were read directly.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from live_server import LiveServer  # noqa: E402

TARGET_S = 0.3

COMMANDS = {
    "python -c pass": ["-c", "pass"],
    "runai --help": ["-m", "jupyter_runai.cli", "--help"],
    "runai list": ["-m", "jupyter_runai.cli", "list"],
    "runai -o json list": ["-m", "jupyter_runai.cli", "-o", "json", "list"],
    "runai describe": ["-m", "jupyter_runai.cli", "describe", "bench-0"],
    "runai nodes": ["-m", "jupyter_runai.cli", "nodes"],
    "import jupyter_server.serverapp": ["-c", "import jupyter_server.serverapp"],
}


def time_command(args: list[str], env: dict[str, str], cwd: Path, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, *args], env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(args)} failed ({done.returncode}): {done.stderr}")
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="runs of each command (the median is reported)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="runai-cli-bench-") as tmp:
        server = LiveServer(Path(tmp)).start()
        try:
            for index in range(3):
                status, body = server.api("POST", "workloads", {
                    "name": f"bench-{index}", "project": "default", "resources": {"gpu": 0.5},
                    "command": [sys.executable, "-c", "import time; time.sleep(600)"],
                })
                if status not in (200, 201):
                    raise SystemExit(f"submit failed: {status} {body}")
            env = {**server.env, "PYTHONPATH": str(ROOT)}
            # as installed: the .pyc files are written (by the untimed run below) and used, as they are
            # after `pip install`; with PYTHONDONTWRITEBYTECODE every run would compile the package again
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            # one untimed run of each: the page cache and the .pyc files are warm for every command alike
            for args in COMMANDS.values():
                time_command(args, env, server.dirs["root"], 1)
            medians = {label: statistics.median(time_command(args, env, server.dirs["root"], options.runs))
                       for label, args in COMMANDS.items()}
        finally:
            server.end_workloads()
            server.stop()

    baseline = medians["python -c pass"]
    figures = {
        "runs": options.runs,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "target_s": TARGET_S,
        "median_s": {label: round(value, 4) for label, value in medians.items()},
        "over_python_s": {label: round(value - baseline, 4) for label, value in medians.items()},
    }
    if options.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"median of {options.runs} runs (Python {figures['python']}, {figures['cpus']} CPUs)")
    print(f"{'command':34} {'median':>8} {'over python -c pass':>20}  target")
    for label, value in medians.items():
        over = value - baseline
        target = ""
        if label.startswith("runai"):
            target = f"<= {TARGET_S:.1f} s  " + ("ok" if over <= TARGET_S else "MISSED")
        print(f"{label:34} {value:7.3f}s {over:+19.3f}s  {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
