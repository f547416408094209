"""The training stage on the tiny config: SFT, DPO and CAVPref train, write their
outputs, the loss goes down, and the resume state is cleaned up after success."""

from __future__ import annotations

import json

import pytest

from avtrust.train.checkpoint import load_policy, read_meta
from avtrust.train.curves import read_log

METHODS = ("sft", "dpo", "cavpref")


@pytest.mark.parametrize("method", METHODS)
def test_methods_train_and_the_loss_decreases(tiny_run, method):
    out = tiny_run / "results" / "checkpoints" / method
    rows = read_log(out / "log.jsonl")
    metrics = json.loads((out / "metrics.json").read_text())
    assert [r["step"] for r in rows] == list(range(1, metrics["steps"] + 1))
    assert metrics["steps"] >= 2 and metrics["final_loss"] == rows[-1]["loss"]
    # tiny.yaml: one batch seen every step, so the loss must go down.
    assert rows[-1]["loss"] < rows[0]["loss"]
    assert (out / "curve.png").read_bytes()[:4] == b"\x89PNG"
    meta = read_meta(out / "model")
    assert meta["method"] == method and meta["adapter"] is True
    assert (out / "model" / "adapter_config.json").is_file()
    if method != "sft":
        assert "accuracy" in rows[-1]
    if method == "cavpref":
        assert {"loss_text", "loss_video", "loss_audio"} <= set(rows[-1])
    # keep_state: false -> the resume state is gone after success.
    assert not (tiny_run / "results" / "train_state" / method).exists()
    assert (tiny_run / "logs" / "train" / f"{method}.log").is_file()


def test_trained_policy_loads_for_evaluation(tiny_run, monkeypatch):
    monkeypatch.chdir(tiny_run)
    policy = load_policy("results/checkpoints/cavpref/model")
    assert type(policy).__name__ == "OmniThinker"
    assert not hasattr(policy.model, "peft_config")  # the adapter is merged
