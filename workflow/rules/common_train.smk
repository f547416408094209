# Constants, config checks and input functions of the training stage (train.smk).

from avtrust.train.config import declared_methods, family_of, method_settings

TRAINING = config.get("training", {})
TRAIN_METHODS = {m: family_of(m, TRAINING[m]) for m in declared_methods(TRAINING)}
TRAIN_OUT = "results/checkpoints/{method}"


def check_training():
    for m in TRAINING.get("methods", []):
        if m not in TRAIN_METHODS:
            raise ValueError(
                f"config: training.methods names {m!r}, which has no section under "
                f"`training` (declared: {', '.join(TRAIN_METHODS) or 'none'})"
            )
    if TRAINING:
        check_models(
            config["models"],
            {"training.model": (TRAINING["model"], "qwen2_5_omni_thinker")},
        )


check_training()


def methods_of(family):
    return one_of([m for m, f in TRAIN_METHODS.items() if f == family])


def train_tasks(method):
    settings = method_settings(TRAINING, method, config["seed"])
    return [t for t in settings.tasks if t in BENCH_TASKS["avtrustbench"]]


def sft_tables(wildcards):
    return {
        t: f"results/bench/avtrustbench/{t}.parquet"
        for t in train_tasks(wildcards.method)
    }


def train_outputs():
    files = ("model", "log.jsonl", "curve.png", "metrics.json")
    return [
        f"results/checkpoints/{m}/{f}"
        for m in TRAINING.get("methods", [])
        for f in files
    ]


TRAIN_OUTPUTS = {
    "model": directory(f"{TRAIN_OUT}/model"),
    "jsonl": f"{TRAIN_OUT}/log.jsonl",
    "curve": f"{TRAIN_OUT}/curve.png",
    "metrics": f"{TRAIN_OUT}/metrics.json",
}
