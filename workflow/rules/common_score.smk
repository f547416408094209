# Constants, config checks and input functions of the models and score stages
# (models.smk, score.smk), next to common.smk.

from avtrust.errors import ConfigError
from avtrust.models.registry import check_config as check_models
from avtrust.scoring.rlcomm_questions import check_splits

SCORE = "results/score"
SCORE_SHARDS = list(range(config["scoring"]["shards"]))
# Tasks built from a source dataset here (imported tasks have no manifest to draw from).
GENERATED = {
    bench: [t for t in BENCH_TASKS[bench] if t in config["benchmark"].get(bench, {})]
    for bench in BENCH_TASKS
}
CAVPREF_TASKS = [
    t for t in config["scoring"]["cavpref"]["tasks"] if t in GENERATED["avtrustbench"]
]
RLCOMM_QUESTIONS = config["scoring"]["rlcomm"]["questions"]


def check_rlcomm_datasets():
    """{dataset: format} of the QA datasets RL-CoMM trains on; a dataset that is not
    declared, or has no training split of the configured ones, stops the workflow."""
    out = {}
    for name in RLCOMM_QUESTIONS["datasets"]:
        where = f"config: scoring.rlcomm.questions.datasets: {name}"
        if name not in config["datasets"]:
            raise ConfigError(f"{where}: not a dataset under `datasets`")
        fmt = config["datasets"][name]["format"]
        check_splits(fmt, RLCOMM_QUESTIONS["splits"], where)
        out[name] = fmt
    return out


RLCOMM_DATASETS = check_rlcomm_datasets()
CLAP = config["scoring"]["clap_model"]
REFERENCE = config["scoring"]["rlcomm"]["reference_model"]
EMBEDDER = config["scoring"]["rlcomm"]["embedding_model"]

check_models(
    config["models"],
    {
        "scoring.clap_model": (CLAP, "clap"),
        "scoring.rlcomm.reference_model": (REFERENCE, "qwen2_audio"),
        "scoring.rlcomm.embedding_model": (EMBEDDER, "qwen3_embedding"),
    },
)


def task_dataset(bench, task):
    return config["benchmark"][bench][task]["dataset"]


def manifest_of(bench, task):
    return f"results/manifest/{task_dataset(bench, task)}.parquet"


def model_dir(name):
    return f"resources/models/{name}"


def all_bench_tables():
    return {
        f"{b}/{t}": f"results/bench/{b}/{t}.parquet"
        for b in BENCH_TASKS
        for t in BENCH_TASKS[b]
    }


def cavpref_inputs(wildcards):
    return {
        "split": f"{SCORE}/split.parquet",
        "samples": [f"results/bench/avtrustbench/{t}.parquet" for t in CAVPREF_TASKS],
        "counterfactual": f"{SCORE}/counterfactual/{wildcards.shard}.parquet",
        "manifests": sorted({manifest_of("avtrustbench", t) for t in CAVPREF_TASKS}),
        "model": model_dir(CLAP),
    }


def rlcomm_seed():
    seed = RLCOMM_QUESTIONS.get("seed")
    return config["seed"] if seed is None else seed


def rlcomm_question_inputs(wildcards):
    # The raw folders hold the training annotation files the questions are read from;
    # the manifests say which of their clips are usable.
    return {
        "raw": [f"{RAW}/{name}" for name in RLCOMM_DATASETS],
        "manifests": [f"results/manifest/{name}.parquet" for name in RLCOMM_DATASETS],
    }


def rlcomm_inputs(wildcards):
    return {
        "questions": f"{SCORE}/rlcomm/questions.parquet",
        "manifests": [f"results/manifest/{name}.parquet" for name in RLCOMM_DATASETS],
        "reference": model_dir(REFERENCE),
        "embedder": model_dir(EMBEDDER),
    }


def model_outputs():
    return [model_dir(m) for m in config["models"]]


def score_outputs():
    out = [f"{SCORE}/split.parquet"]
    if CAVPREF_TASKS:
        out += [
            f"{SCORE}/cavpref/pairs.parquet",
            f"{SCORE}/cavpref/pairs.rejects.parquet",
        ]
    if RLCOMM_DATASETS:
        out += [
            f"{SCORE}/rlcomm/reference.parquet",
            f"{SCORE}/rlcomm/warmup_sft.parquet",
        ]
    return out
