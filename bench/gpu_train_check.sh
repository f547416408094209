#!/usr/bin/env bash
# The prepared GPU check of the workflow's own training jobs (bench/README.md,
# "gpu_train_check.sh"): SFT, DPO, CAVPref and an RL-CoMM GRPO stage, each run as the
# train / rlcomm_train rule runs it (workflow/scripts/train.py -> avtrust.train.job ->
# avtrust.train.launch), in bf16, a few optimiser steps, in place and through
# `accelerate launch`; losses finite, checkpoints written; a JSON summary.
#
#   bench/gpu_train_check.sh                 # on cuda -> results/bench/gpu_train_check-cuda.json
#   bench/gpu_train_check.sh cpu             # small, bf16 on a CPU (tests/unit/test_gpu_train_check.py)
#   OUT_DIR=/somewhere PYTHON=python3 bench/gpu_train_check.sh cuda --launch accelerate
#
# Arguments: device (cuda | cpu), then extra options of bench/gpu_train_check.py. Exit
# status 1 if any job failed (the summary says which and why; the jobs' logs are in
# $OUT_DIR/gpu_train_check-<device>-logs/).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEVICE="${1:-cuda}"
shift $(($# < 1 ? $# : 1))
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
OUT_DIR="${OUT_DIR:-$ROOT/results/bench}"
if [ "$DEVICE" = cpu ]; then  # a test-sized run: one step, short clips, few tokens
  SMALL=(--steps 1 --samples 4 --seconds 1 --group 2 --max-new-tokens 8 --grad-accum 1 --threads 2)
else
  SMALL=()
fi
if [[ "$DEVICE" == cuda* ]] && command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
fi
cd "$ROOT"
PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" bench/gpu_train_check.py \
  --device "$DEVICE" "${SMALL[@]}" "$@" --out "$OUT_DIR/gpu_train_check-$DEVICE.json"
