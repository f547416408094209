"""bench/gpu_check.sh at tiny size on the CPU: the GPU check's code paths (model in bf16,
decode cache, batched evaluation, CAVPref and GRPO steps, memory and token counts) run
here, so that scarce GPU minutes go to measuring. Times are recorded, never asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("trl")

REPO = Path(__file__).resolve().parents[2]


def test_the_gpu_check_runs_at_tiny_size_on_cpu(tmp_path):
    env = {**os.environ, "OUT_DIR": str(tmp_path), "PYTHON": sys.executable}
    proc = subprocess.run(
        ["bash", str(REPO / "bench" / "gpu_check.sh"), "tiny", "cpu"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=1200,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    out = json.loads((tmp_path / "gpu_check-tiny.json").read_text())
    assert (out["size"], out["device"]) == ("tiny", "cpu")
    ev = out["evaluation"]
    assert ev["samples"] == 4 and ev["decodes"] == 4  # each clip decoded once, then cached
    assert ev["prompt_tokens_per_sample"] > 50  # the clip's audio and video tokens
    for key in ("samples_per_s", "model_only_samples_per_s", "tokens_per_s"):
        assert ev[key] > 0, key
    for phase in ("evaluation", "cavpref", "grpo"):
        assert out[phase]["peak_memory_gib"] > 0, phase
    assert out["cavpref"]["step_s"] > 0 and out["grpo"]["step_s"] > 0
