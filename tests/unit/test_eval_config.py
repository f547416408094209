"""The `evaluation.models` section: zero-shot and checkpoint entries, benchmark choice."""

from __future__ import annotations

import pytest

from avtrust.errors import ConfigError
from avtrust.evaluate.config import BENCHES, eval_models

MODELS = {
    "omni": {"adapter": "qwen2_5_omni_thinker"},
    "clap": {"adapter": "clap"},
}
# What a run can train: the declared training methods and RL-CoMM's stages.
METHODS = ["sft", "dpo", "cavpref", "rlcomm_warmup", "rlcomm_ansco"]


def test_entries_resolve_to_folders_and_benches():
    models = eval_models(
        {
            "models": {
                "omni": {"model": "omni"},
                "rlcomm": {"checkpoint": "rlcomm_ansco", "benches": ["avconfusebench", "qa"]},
            }
        },
        MODELS,
        METHODS,
    )
    assert models["omni"].folder == "resources/models/omni"
    assert models["omni"].benches == BENCHES
    assert models["rlcomm"].folder == "results/checkpoints/rlcomm_ansco/model"
    assert models["rlcomm"].benches == ("avconfusebench", "qa")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"model": "omni", "checkpoint": "sft"}, "exactly one of"),
        ({"model": "nope"}, "'nope' is not a model under `models`"),
        ({"model": "clap"}, "adapter 'clap'"),
        ({"checkpoint": "ppo"}, "'ppo' is not a training method (sft, dpo, cavpref,"),
        ({"model": "omni", "benches": ["avtrustbench", "vggsound"]}, "benches: vggsound unknown"),
    ],
)
def test_bad_entries_name_the_key(entry, message):
    with pytest.raises(ConfigError, match="evaluation.models.m") as err:
        eval_models({"models": {"m": entry}}, MODELS, METHODS)
    assert message in str(err.value)


def test_an_endpoint_cannot_be_evaluated_by_log_likelihood_alone():
    models = {**MODELS, "served": {"adapter": "openai_http"}}
    entries = {"served": {"model": "served"}, "omni": {"model": "omni"}}
    with pytest.raises(ConfigError) as err:
        eval_models({"models": entries, "mode": "loglik"}, models, METHODS)
    assert "evaluation.models.served" in str(err.value)
    assert "set it to both or generate" in str(err.value)
    for mode in ("both", "generate"):
        resolved = eval_models({"models": entries, "mode": mode}, models, METHODS)
        assert resolved["served"].adapter == "openai_http"
    # a local model is scored by option log-likelihood: no endpoint, no error
    assert list(
        eval_models({"models": {"omni": {"model": "omni"}}, "mode": "loglik"}, models, METHODS)
    )


def test_a_checkpoint_may_be_any_method_the_run_trains():
    """A user's own ablation declared under `training` is evaluated like the built-ins."""
    entries = {"models": {"beta01": {"checkpoint": "cavpref_fixed_beta"}}}
    with pytest.raises(ConfigError, match="'cavpref_fixed_beta' is not a training method"):
        eval_models(entries, MODELS, METHODS)
    model = eval_models(entries, MODELS, [*METHODS, "cavpref_fixed_beta"])["beta01"]
    assert model.folder == "results/checkpoints/cavpref_fixed_beta/model"
