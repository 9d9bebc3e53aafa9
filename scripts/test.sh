#!/usr/bin/env bash
# The test command: sets up .venv if needed, brings up a local single-node Slurm cluster for the
# integration tests (root only; tests/slurm/local_cluster.sh), runs the whole test suite, and
# stops the daemons it started, also when tests fail.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# the example plugin package (examples/hdfm-bench-ve): installed as a user would, found through its entry point
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation \
  -e examples/hdfm-bench-ve
if [ "$(id -u)" = 0 ] && [ -z "${HDFM_BENCH_NO_SLURM:-}" ]; then
  if bash tests/slurm/local_cluster.sh check; then
    echo "[test] using the Slurm cluster already running (left running afterwards)" >&2
  elif bash tests/slurm/local_cluster.sh up; then
    trap 'bash tests/slurm/local_cluster.sh down' EXIT
  else
    export HDFM_BENCH_SLURM_UNAVAILABLE="tests/slurm/local_cluster.sh up failed (see .slurm-ci/)"
  fi
fi
rc=0
.venv/bin/python -m pytest -n 2 --dist worksteal -q --durations=15 "$@" || rc=$?
exit $rc
