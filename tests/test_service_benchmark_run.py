"""The service benchmark runs and reports every figure (never how fast)."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_service_benchmark_quick_reports_every_figure():
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "service.py"), "--quick", "--json"],
                          capture_output=True, text=True, timeout=240, cwd=REPO)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["latency"]["submissions"] == 10 and figures["latency"]["p50_ms"] > 0
    assert figures["list"]["all"]["returned"] == 200 and figures["list"]["one_project"]["returned"] == 4
    assert figures["throughput"]["placed"] == figures["throughput"]["pods"] == 300
