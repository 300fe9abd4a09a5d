#!/usr/bin/env bash
# Run the real-GPU checks (tests/gpu) and print what they saw: the GPUs, then each check's
# "[gpu] ..." lines and its result. One command, from anywhere:  tests/gpu/run.sh
# PYTHON picks the interpreter (default: the repository's .venv, else python3); the whole
# transcript is also written to $OUT/tests-gpu.txt when OUT names a directory.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
python="${PYTHON:-}"
if [ -z "$python" ]; then
  if [ -x .venv/bin/python ]; then python=.venv/bin/python; else python=python3; fi
fi
log="${OUT:+$OUT/tests-gpu.txt}"
{
  echo "== $(date -u +%FT%TZ) on $(hostname)"
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=index,name,uuid,memory.total,driver_version --format=csv
  else
    echo "nvidia-smi: not found"
  fi
  "$python" -c 'import pynvml; print("pynvml", getattr(pynvml, "__version__", "?"))' 2>&1
  echo "== pytest tests/gpu"
  timeout 600 "$python" -m pytest tests/gpu -v -s -rs -p no:cacheprovider
  rc=$?
  echo "== exit $rc"
  exit "$rc"
} 2>&1 | tee ${log:+"$log"}
exit "${PIPESTATUS[0]}"
