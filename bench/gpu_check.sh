#!/usr/bin/env bash
# The prepared GPU check (bench/README.md, "gpu_check.sh"): evaluation samples/s, CAVPref
# and GRPO step time, peak memory and tokens/s of the real-sized Qwen2.5-Omni-3B thinker
# (random bf16 weights, nothing downloaded), written to a JSON file.
#
#   bench/gpu_check.sh                       # 3B on cuda -> results/bench/gpu_check-3b.json
#   bench/gpu_check.sh tiny cpu              # the tiny thinker on a CPU (what the test runs)
#   OUT_DIR=/somewhere PYTHON=python bench/gpu_check.sh 3b cuda --samples 128
#
# Arguments: size (3b | tiny), device (cuda | cpu | cuda:N), then extra options of
# bench/gpu_check.py. On a GPU the defaults take a few minutes (model built on the device,
# 64 clips of 10 s decoded once, 3 timed steps of each trainer).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SIZE="${1:-3b}"
DEVICE="${2:-cuda}"
shift $(($# < 2 ? $# : 2))
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
OUT_DIR="${OUT_DIR:-$ROOT/results/bench}"
if [ "$SIZE" = tiny ]; then  # a test-sized run: small batches, few tokens
  SMALL=(--samples 4 --batch-size 2 --seconds 1 --max-new-tokens 4 --pairs 2 --group 2 --steps 1)
else
  SMALL=()
fi
if [[ "$DEVICE" == cuda* ]] && command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
fi
cd "$ROOT"
PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" bench/gpu_check.py \
  --size "$SIZE" --device "$DEVICE" "${SMALL[@]}" "$@" --out "$OUT_DIR/gpu_check-$SIZE.json"
