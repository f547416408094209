"""bench/gpu_train_check.sh on the CPU: the workflow's own training jobs (the train and
rlcomm_train rules' script, launch in place and through `accelerate launch`) in bf16 at
the smallest size, so that the GPU run only has the device to find out about. CAVPref
(the preference family's trainer and its reference pass) and the GRPO stage (generation,
rewards, the merged checkpoint) under both launches; SFT and DPO run the same way on the
GPU. Times are recorded, never asserted."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("trl")
pytest.importorskip("accelerate")

REPO = Path(__file__).resolve().parents[2]


def test_the_training_jobs_run_in_bf16_on_cpu_in_place_and_launched(tmp_path):
    env = {**os.environ, "OUT_DIR": str(tmp_path), "PYTHON": sys.executable}
    proc = subprocess.run(
        ["bash", str(REPO / "bench" / "gpu_train_check.sh"), "cpu", "--methods", "cavpref,grpo"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=1200,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    out = json.loads((tmp_path / "gpu_train_check-cpu.json").read_text())
    assert (out["device"], out["precision"], out["ok"]) == ("cpu", "bf16", True)
    assert out["launches"] == ["in-place", "accelerate"]
    assert out["grpo_stage"] in ("rlcomm_steprr", "grpo_acc")
    jobs = {(j["launch"], j["method"]): j for j in out["jobs"]}
    assert sorted(jobs) == sorted(
        (launch, m) for launch in ("in-place", "accelerate") for m in ("cavpref", "grpo")
    )
    for (launch, method), job in jobs.items():
        assert job["ok"] and "error" not in job, (launch, method, job.get("error"))
        assert job["steps"] == 1 and len(job["losses"]) == 1
        assert all(math.isfinite(x) for x in job["losses"] + job["grad_norms"])
        assert job["wall_s"] > 0 and job["saved_tensors"] > 0
        assert "avtrust_checkpoint.json" in job["checkpoint"]
        if method == "grpo":  # the stage's adapter merged into full weights
            assert job["rule"] == "rlcomm_train" and job["job"] == out["grpo_stage"]
            assert "model.safetensors" in job["checkpoint"] and job["rewards"] is not None
        else:
            assert job["rule"] == "train" and "adapter_model.safetensors" in job["checkpoint"]
        assert "peak_gpu_allocated_gib" not in job  # cuda only
    # the launched jobs went through `accelerate launch` in bf16, as their logs say
    logs = Path(out["logs"])
    launched = (logs / "accelerate-cavpref.log").read_text()
    assert "accelerate.commands.launch" in launched and "--mixed_precision bf16" in launched
    assert "accelerate.commands.launch" not in (logs / "in-place-cavpref.log").read_text()
    # the same start, data and seed: the first step's loss does not depend on the launch
    for method in ("cavpref", "grpo"):
        a, b = jobs[("in-place", method)], jobs[("accelerate", method)]
        assert a["losses"] == pytest.approx(b["losses"], rel=1e-3, abs=1e-5)
