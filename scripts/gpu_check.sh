#!/usr/bin/env bash
# The GPU check, one command: JiT-B/16 at 256² trained by the real trainer on synthetic images streamed
# from a dataset zip, per path, against the bare backbone step; writes results/gpu.md.
#   bash scripts/gpu_check.sh                    # on a CUDA machine (options: --help)
#   bash scripts/gpu_check.sh --device cpu --size tiny --patch 4 --resolution 16 --out /tmp/gpu.md   # a CPU trial
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m hdfm_bench.perf.gpu "$@"
