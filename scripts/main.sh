#!/usr/bin/env bash
# The main job (the default suite): sets up .venv if needed, then runs `hdfm-bench run` (the default suite),
# which ends by comparing every number with the committed results/suite (--check: "reproduced" per method).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
unset PYTHONDONTWRITEBYTECODE  # Python keeps the bytecode of what the job imports (see scripts/test.sh)
exec .venv/bin/hdfm-bench run --check "$@"
