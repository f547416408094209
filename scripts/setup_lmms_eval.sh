#!/usr/bin/env bash
# The lmms-eval virtual environment the lmms-eval export test runs in (.venv-lmms/, kept
# apart from .venv: lmms-eval pins its own versions of transformers, datasets, wandb…).
# torch is pinned as in pyproject.toml so that pip takes the CPU wheel where one is
# offered. Safe to rerun: it installs only when the venv is missing or incomplete.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=".venv-lmms"
stamp="$venv/.lmms-eval-0.7.3"
if [ -f "$stamp" ]; then
    exit 0
fi
python="${PYTHON:-python3}"
echo "setup_lmms_eval: creating $venv (lmms-eval 0.7.3; a few minutes)"
"$python" -m venv "$venv"
# filelock<4: lmms-eval 0.7.3's evaluator patches filelock._api, gone in filelock 4.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "lmms-eval==0.7.3" "torch==2.13.0" "filelock<4"
# PyPI's torchvision is built against PyPI's CUDA torch: with the CPU wheel its operators
# fail to register, and transformers imports it whenever it is installed. The exported
# tasks hand clips over as paths and audio arrays, so drop it where it cannot load (on a
# GPU machine with PyPI's torch it loads and stays).
if ! "$venv/bin/python" -c "import torchvision" >/dev/null 2>&1; then
    "$venv/bin/python" -m pip uninstall --quiet --yes torchvision
fi
"$venv/bin/python" -c "import lmms_eval.evaluator, lmms_eval.tasks"
touch "$stamp"
