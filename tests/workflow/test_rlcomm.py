"""The RL-CoMM stages on the tiny config: checkpoints, logs with the mean reward per
step, curves and loadable policies."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.workflow

METHODS = ("rlcomm_warmup", "rlcomm_steprr", "rlcomm_ansco", "grpo_acc")


def read_log(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_three_stages_and_the_baseline_train_and_log(tiny_run):
    for method in METHODS:
        out = tiny_run / "results" / "checkpoints" / method
        meta = json.loads((out / "model" / "avtrust_checkpoint.json").read_text())
        assert meta["method"] == method and meta["adapter"] is False and meta["steps"] == 2
        assert (out / "curve.png").stat().st_size > 0
        rows = read_log(out / "log.jsonl")
        assert [r["step"] for r in rows] == [1, 2]
        assert json.loads((out / "metrics.json").read_text())["steps"] == 2
    for method, parts in (
        ("rlcomm_steprr", ("format", "arr", "avc")),
        ("grpo_acc", ("format", "acc")),
    ):
        rows = read_log(tiny_run / "results" / "checkpoints" / method / "log.jsonl")
        for r in rows:
            total = sum(r[f"reward_{p}"] for p in parts)
            assert r["reward_mean"] == pytest.approx(total, abs=1e-5)
            assert 0.0 <= r["accuracy"] <= 1.0
    ansco = read_log(tiny_run / "results" / "checkpoints" / "rlcomm_ansco" / "log.jsonl")
    assert all({"nll", "answer_entropy", "entropy_term"} <= set(r) for r in ansco)
    # resume state is removed after success (keep_state: false)
    assert not (tiny_run / "results" / "train_state" / "rlcomm_steprr").exists()


def test_each_stage_starts_from_the_checkpoint_of_the_one_before(tiny_run):
    """warm-up → Step-RR → Ans-CO and warm-up → GRPO-acc: each stage's metrics name the
    checkpoint it started from, with the hash of what that checkpoint holds now."""
    from avtrust.train.fingerprint import model_fingerprint

    root = tiny_run / "results" / "checkpoints"
    started = {m: json.loads((root / m / "metrics.json").read_text())["start"] for m in METHODS}
    assert started["rlcomm_warmup"]["path"] == "resources/models/omni"
    for method, before in (
        ("rlcomm_steprr", "rlcomm_warmup"),
        ("rlcomm_ansco", "rlcomm_steprr"),
        ("grpo_acc", "rlcomm_warmup"),
    ):
        assert started[method]["path"] == f"results/checkpoints/{before}/model"
        assert started[method]["sha256"] == model_fingerprint(root / before / "model")
    assert started["rlcomm_warmup"]["sha256"] == model_fingerprint(
        tiny_run / "resources" / "models" / "omni"
    )


def test_trained_policy_loads(tiny_run):
    from avtrust.train.checkpoint import load_policy

    policy = load_policy(
        tiny_run / "results" / "checkpoints" / "rlcomm_ansco" / "model",
        models_root=tiny_run / "resources" / "models",
    )
    assert type(policy).__name__ == "OmniThinker"
