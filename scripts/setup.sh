#!/usr/bin/env bash
# Create/refresh the project's virtual environment in .venv (idempotent).
# The install is a strict editable one: build/__editable__.*/hdfm_bench/ is a real package tree of
# links to bench/, methods/ and tasks/, so that editors, import-linter and static resolvers follow
# every hdfm_bench.* import (a plain editable install maps the folders with an import hook they cannot
# see). Edits to existing files show at once; a file added or removed needs a re-install, so this
# re-installs when pyproject.toml or the list of package files changed since the last install.
# Usage: setup.sh [EXTRA_PACKAGE_DIR...] — also installs each extra folder, editable, without its
# dependencies (the test command's example plugin).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
UV_VERSION=0.13.9  # the installer (PyPI), pinned like everything else
# pip_install ARGS...: quiet pip in the venv, without the warnings about absent local index folders
pip_install() {
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "$@" 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" >&2 || true
}
# venv_install ARGS...: install into the venv with uv, or with pip where uv could not be installed
venv_install() {
  if [ -x .venv/bin/uv ]; then
    .venv/bin/uv pip install --quiet --python .venv/bin/python "$@"
  else
    pip_install "$@"
  fi
}
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv" >&2
  "$PY" -m venv .venv
fi
stamp=.venv/.hdfm-bench-installed
want=$( { sha256sum pyproject.toml; find bench methods tasks -type f ! -path '*/__pycache__/*' | LC_ALL=C sort; } \
       | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[setup] installing hdfm-bench and its pinned dependencies (first time on a machine: ~1 min and ~6 GB of downloads; then ~20 s)" >&2
  rm -rf build/__editable__.*  # links of files that no longer exist would linger
  # uv installs from its cache by hard links: ~7 s on 2 cores where pip took ~2 min (it unpacks ~6 GB of
  # wheels every time); the same pinned versions. No --compile-bytecode (26 s for all of site-packages):
  # the import check below writes the bytecode of what the package imports (torch, jax, ...), and the
  # test and main scripts let Python write the rest as it is imported. pip stays the fallback.
  if [ ! -x .venv/bin/uv ]; then
    pip_install "uv==$UV_VERSION"
  fi
  [ -x .venv/bin/uv ] || echo "[setup] uv could not be installed; installing with pip (~2 min)" >&2
  venv_install -e '.[dev]' --config-settings editable_mode=strict
  # with PYTHONDONTWRITEBYTECODE set (as on these machines) every process would otherwise compile torch
  # from source on import (the test suite took 20 min 48 s instead of 11)
  env -u PYTHONDONTWRITEBYTECODE .venv/bin/python -c \
      "import hdfm_bench.cli, hdfm_bench.methods, hdfm_bench.tasks, torch, torchvision, torch_fidelity, jax" \
    || { echo "[setup] install failed" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
for extra in "$@"; do
  venv_install --no-deps --no-build-isolation -e "$extra"
done
