# Constants, config checks and input functions of the training stage (train.smk).

from avtrust.evaluate.prompt_template import training_parts
from avtrust.train.config import declared_methods, family_of, job_settings

TRAINING = config["training"]
TRAIN_METHODS = {m: family_of(m, TRAINING[m]) for m in declared_methods(TRAINING)}
# SFT, DPO and CAVPref train on AVTrustBench questions worded as its evaluation asks them.
TRAIN_PROMPT = training_parts(
    (config["evaluation"].get("prompts") or {}).get("avtrustbench"),
    "config: evaluation.prompts.avtrustbench",
)
# Trainings before evaluations on a busy machine (below the thinker's chain and RL-CoMM's,
# CHAIN_PRIORITY): an evaluation job is short, a training long and followed by its own
# evaluation, so a training left to the end ran with the other core idle (sight-first
# run: the last training and its evaluation, ~0.7 minutes, alone at the end).
TRAIN_PRIORITY = 10
# The files of every trained checkpoint (train.smk and rlcomm.smk).
CHECKPOINT_OUTPUTS = {
    "model": directory("results/checkpoints/{method}/model"),
    "jsonl": "results/checkpoints/{method}/log.jsonl",
    "curve": report(
        "results/checkpoints/{method}/curve.png",
        caption="../report/checkpoint_curve.rst",
        category="Training curves",
        subcategory="{method}",
        labels={"method": "{method}"},
    ),
    "metrics": "results/checkpoints/{method}/metrics.json",
}


def check_training():
    for m in TRAINING["methods"]:
        if m not in TRAIN_METHODS:
            raise ValueError(
                f"config: training.methods names {m!r}, which has no section under "
                f"`training` (declared: {', '.join(TRAIN_METHODS) or 'none'})"
            )
    check_models(
        config["models"],
        {"training.model": (TRAINING["model"], "qwen2_5_omni_thinker")},
    )


check_training()


def train_inputs(wildcards):
    """The policy, and the family's data: SFT the benchmark tables of its tasks with the
    split, DPO and CAVPref the preference pairs."""
    out = {"model": model_dir(TRAINING["model"])}
    if TRAIN_METHODS[wildcards.method] == "sft":
        tasks = job_settings(TRAINING, wildcards.method, config["seed"])["settings"][
            "tasks"
        ]
        out["split"] = f"{SCORE}/split.parquet"
        out["tables"] = [
            f"results/bench/avtrustbench/{t}.parquet"
            for t in tasks
            if t in BENCH_TASKS["avtrustbench"]
        ]
    else:
        out["pairs"] = f"{SCORE}/cavpref/pairs.parquet"
    if DECODED:  # common_decode.smk
        source = "sft" if TRAIN_METHODS[wildcards.method] == "sft" else "pairs"
        out["decoded"] = training_index(source)
    return out


def checkpoint_files(methods):
    """Every CHECKPOINT_OUTPUTS file of ``methods``."""
    return [
        str(path).replace("{method}", m)
        for m in methods
        for path in CHECKPOINT_OUTPUTS.values()
    ]


def train_outputs():
    return checkpoint_files(TRAINING["methods"])
