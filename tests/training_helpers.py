"""Helpers of the training tests that run whole jobs (several processes, kill and resume).

Kept free of heavy imports: the training processes that ``accelerate launch`` starts
import this module for :func:`token_residue` (``PYTHONPATH`` = :data:`TESTS`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent
# The tiny Omni thinker (built by avtrust.models.tiny, no download).
OMNI = {
    "omni": {
        "adapter": "qwen2_5_omni_thinker",
        "source": "tiny",
        "location": "Qwen/Qwen2.5-Omni-3B",
    }
}
COMPLETIONS_ENV = "AVTRUST_TEST_COMPLETIONS"
# The job keys of a `training` or `rlcomm` section for a CPU run in one process, no
# tracking (avtrust.train.config.JOB_KEYS).
CPU_JOB = {
    "device": "cpu",
    "precision": "no",
    "processes": 1,
    "media_cache": 64,
    "accelerate_config": None,
    "keep_state": False,
    "tracking": {"report_to": "none"},
}


class RecordingLog:
    """A logger that keeps its formatted messages."""

    def __init__(self):
        self.messages: list[str] = []

    def info(self, msg, *args):
        self.messages.append(msg % args if args else msg)


def python_path_env(env: dict | None = None) -> str:
    """``PYTHONPATH`` with the tests folder first (for child processes)."""
    env = os.environ if env is None else env
    return os.pathsep.join([str(TESTS), *filter(None, [env.get("PYTHONPATH")])])


def kill_after(code: str, arg: str, marker: Path, poll_s: float = 0.05) -> int:
    """Run ``python -c code arg`` in its own session and SIGKILL its process group as
    soon as ``marker`` exists; returns its exit status (negative: the signal)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", code, arg],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        while not marker.exists() and proc.poll() is None:
            time.sleep(poll_s)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return proc.returncode


def token_residue(prompts, completions, completion_ids, trainer_state=None, **columns):
    """A GRPO reward that differs between the completions of a random tiny model: the
    mean of (token id mod 10) / 9 over the completion. With
    ``AVTRUST_TEST_COMPLETIONS=<dir>`` every call also appends its rows' completions to
    ``<dir>/<pid>.jsonl``."""
    out = [sum(t % 10 for t in ids) / (9 * max(1, len(ids))) for ids in completion_ids]
    folder = os.environ.get(COMPLETIONS_ENV)
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        step = trainer_state.global_step if trainer_state is not None else None
        with open(Path(folder) / f"{os.getpid()}.jsonl", "a") as f:
            for path, prompt, ids in zip(
                columns["media_path"], prompts, completion_ids, strict=True
            ):
                f.write(json.dumps({"step": step, "media": path, "prompt": prompt, "ids": ids}))
                f.write("\n")
    return out


def recorded_completions(folder: Path) -> list[tuple]:
    """Every completion recorded by :func:`token_residue` in ``folder``, sorted."""
    rows = []
    for path in sorted(Path(folder).glob("*.jsonl")):
        for line in path.read_text().splitlines():
            r = json.loads(line)
            rows.append((r["step"], r["media"], str(r["prompt"]), tuple(r["ids"])))
    return sorted(rows)


def checkpoint_outputs(out: Path) -> dict:
    """A training job's outputs under ``out``, named as the workflow names them."""
    names = {"model": "model", "jsonl": "log.jsonl", "curve": "curve.png"}
    return {**{k: out / v for k, v in names.items()}, "metrics": out / "metrics.json"}
