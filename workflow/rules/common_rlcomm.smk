# Constants, config checks and input functions of the RL-CoMM stage (rlcomm.smk).

from avtrust.train.rlcomm import (
    METHODS,
    REASONING_REWARDS,
    method_stage,
    stage_settings,
)

RLCOMM = config["rlcomm"]
check_models(
    config["models"], {"rlcomm.policy": (RLCOMM["policy"], "qwen2_5_omni_thinker")}
)
RLCOMM_METHODS = list(METHODS)
RLCOMM_START = {
    "rlcomm_warmup": None,
    "rlcomm_steprr": "rlcomm_warmup",
    "rlcomm_ansco": "rlcomm_steprr",
    "grpo_acc": "rlcomm_warmup",
}
RLCOMM_DATA = {
    "rlcomm_warmup": f"{SCORE}/rlcomm/warmup_sft.parquet",
    "rlcomm_steprr": f"{SCORE}/rlcomm/reference.parquet",
    "rlcomm_ansco": f"{SCORE}/rlcomm/reference.parquet",
    "grpo_acc": f"{SCORE}/rlcomm/reference.parquet",
}


def rlcomm_inputs_of(wildcards):
    start = RLCOMM_START[wildcards.method]
    out = {
        "model": model_dir(RLCOMM["policy"]),
        "data": RLCOMM_DATA[wildcards.method],
    }
    if any(r in REASONING_REWARDS for r in method_stage(wildcards.method)[2]):
        out["embedder"] = model_dir(EMBEDDER)
    if start:
        out["start"] = f"results/checkpoints/{start}/model"
    if DECODED:  # common_decode.smk
        out["decoded"] = training_index(rlcomm_source(wildcards.method))
    return out


def rlcomm_outputs():
    if not RLCOMM["enabled"] or not RLCOMM_DATASETS:
        return []
    return checkpoint_files(RLCOMM_METHODS)
