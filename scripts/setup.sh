#!/usr/bin/env bash
# Create/refresh the project's virtual environment in .venv (idempotent).
# Re-installs only when pyproject.toml changed since the last successful install.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv" >&2
  "$PY" -m venv .venv
fi
stamp=.venv/.hdfm-bench-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[setup] installing hdfm-bench and its pinned dependencies (first time: ~2 min, ~6 GB)" >&2
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]' 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" >&2 || true
  .venv/bin/python -c "import hdfm_bench, hdfm_bench.methods, hdfm_bench.tasks, torch, torchvision, torch_fidelity, jax" \
    || { echo "[setup] install failed" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
