#!/usr/bin/env bash
# The test command: sets up .venv if needed, brings up a local single-node Slurm cluster for the
# integration tests (root only; tests/slurm/local_cluster.sh), runs the whole test suite, and
# stops the daemons it started, also when tests fail.
set -euo pipefail
cd "$(dirname "$0")/.."
# set-up, with the example plugin package (examples/hdfm-bench-ve) installed as a user would, found through
# its entry point
bash scripts/setup.sh examples/hdfm-bench-ve
# Python writes the bytecode of what the tests import once (set-up compiles only the package's own
# imports); with PYTHONDONTWRITEBYTECODE each of the tests' ~200 processes would compile it again.
unset PYTHONDONTWRITEBYTECODE
if [ "$(id -u)" = 0 ] && [ -z "${HDFM_BENCH_NO_SLURM:-}" ]; then
  if bash tests/slurm/local_cluster.sh check; then
    echo "[test] using the Slurm cluster already running (left running afterwards)" >&2
  elif bash tests/slurm/local_cluster.sh up; then
    trap 'bash tests/slurm/local_cluster.sh down' EXIT
  else
    export HDFM_BENCH_SLURM_UNAVAILABLE="tests/slurm/local_cluster.sh up failed (see .slurm-ci/)"
  fi
fi
# a real browser for the report's page test (tests/evaluation/test_report.py): Debian's chromium and its
# driver, installed once as the Slurm packages are; the test then runs (never skipped) wherever this could
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "[test] installing chromium and chromium-driver for the report test (apt log: .browser-apt.log)" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        chromium chromium-driver; } > .browser-apt.log 2>&1 || echo "[test] apt-get failed; see .browser-apt.log" >&2
  fi
fi
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  export HDFM_BENCH_REQUIRE_BROWSER=1
fi
rc=0
.venv/bin/python -m pytest -n 2 --dist worksteal -q --durations=25 "$@" || rc=$?
exit $rc
