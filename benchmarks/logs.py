"""What serving a big log costs the server: its peak memory, and how long other requests
wait meanwhile.

A real ``jupyter server`` with the extension (``tests/live_server.py``, temporary
directories) runs a workload that writes ``--mb`` MB to its log (300 by default). Then
the whole log is fetched through the REST API (``GET .../logs``, read by the client as
fast as it can and thrown away) while one thread samples the server's resident memory
(``/proc/<pid>/status``) and another asks ``GET /runai/api/v1/info`` over and over: the
longest of those answers is the stall. ``tail=100`` of the same log is timed too.

    python3 benchmarks/logs.py            # 300 MB
    python3 benchmarks/logs.py --mb 50 --json

Linux only (``/proc``). Nothing here is asserted; the figures go to the table (or JSON).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from live_server import LiveServer  # noqa: E402

LINE = 100  # bytes per log line


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run(mb: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="runai-logs-bench-") as tmp:
        base = Path(tmp)
        server = LiveServer(base).start()
        try:
            lines = mb * 1_000_000 // LINE
            script = base / "chatty.py"
            script.write_text("import sys\nw = sys.stdout.buffer.write\nchunk = b''.join(b'%09d ' % i + "
                              f"b'x' * {LINE - 11} + b'\\n' for i in range(10000))\n"
                              f"for _ in range({lines // 10000}):\n    w(chunk)\n")
            code, body = server.api("POST", "workloads", {"name": "chatty", "command": f"{sys.executable} {script}"})
            assert code == 201, body
            server.wait_phase("chatty", "Succeeded", timeout=600)
            time.sleep(1.0)  # let the server settle after the workload's cycles
            pid = server.proc.pid
            before = rss_mib(pid)
            headers = {"Authorization": f"token {server.token}"}
            url = server.url + "runai/api/v1/workloads/default/chatty/logs"

            done = threading.Event()
            peak = [before]
            waits: list[float] = []

            def sample() -> None:
                while not done.is_set():
                    peak[0] = max(peak[0], rss_mib(pid))
                    time.sleep(0.005)

            def ping() -> None:
                session = requests.Session()
                while not done.is_set():
                    t0 = time.perf_counter()
                    session.get(server.url + "runai/api/v1/info", headers=headers, timeout=60)
                    waits.append(time.perf_counter() - t0)
                    time.sleep(0.01)

            threads = [threading.Thread(target=sample), threading.Thread(target=ping)]
            for t in threads:
                t.start()
            t0 = time.perf_counter()
            received = 0
            with requests.get(url, headers=headers, stream=True, timeout=600) as response:
                response.raise_for_status()
                for chunk in response.iter_content(chunk_size=1 << 20):
                    received += len(chunk)
            whole_s = time.perf_counter() - t0
            done.set()
            for t in threads:
                t.join()

            t0 = time.perf_counter()
            tail = requests.get(url, headers=headers, params={"tail": "100"}, timeout=600)
            tail_s = time.perf_counter() - t0
            assert tail.status_code == 200 and tail.text.count("\n") == 100, tail.text[:200]
            return {
                "log_mb": round(received / 1e6, 1),
                "rss_before_mib": round(before, 1),
                "rss_peak_mib": round(peak[0], 1),
                "rss_growth_mib": round(peak[0] - before, 1),
                "whole_log_s": round(whole_s, 2),
                "whole_log_mb_per_s": round(received / 1e6 / whole_s, 1),
                "info_requests_meanwhile": len(waits),
                "info_p50_ms": round(statistics.median(waits) * 1000, 1) if waits else None,
                "info_max_ms": round(max(waits) * 1000, 1) if waits else None,
                "tail_100_ms": round(tail_s * 1000, 1),
            }
        finally:
            server.end_workloads()
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=300, help="size of the log in MB (default 300)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args()
    figures = run(args.mb)
    if args.json:
        print(json.dumps(figures))
        return
    for key, value in figures.items():
        print(f"{key:26} {value}")


if __name__ == "__main__":
    main()
