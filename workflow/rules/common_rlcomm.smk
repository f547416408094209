# Constants, config checks and input functions of the RL-CoMM stage (rlcomm.smk).

from avtrust.train.rlcomm import stage_settings

RLCOMM = config.get("rlcomm", {})
if RLCOMM:
    check_models(
        config["models"], {"rlcomm.policy": (RLCOMM["policy"], "qwen2_5_omni_thinker")}
    )
RLCOMM_METHODS = ["rlcomm_warmup", "rlcomm_steprr", "rlcomm_ansco", "grpo_acc"]
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
        "data": RLCOMM_DATA[wildcards.method],
        "policy": model_dir(RLCOMM["policy"]),
        "embedder": model_dir(EMBEDDER),
    }
    if start:
        out["start"] = f"results/checkpoints/{start}/model"
    return out


def rlcomm_outputs():
    if not RLCOMM.get("enabled", False) or not RLCOMM_DATASETS:
        return []
    return checkpoint_files(RLCOMM_METHODS)
