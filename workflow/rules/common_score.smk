# Constants, config checks and input functions of the models and score stages
# (models.smk, score.smk), next to common.smk.

from avtrust.models.registry import check_config as check_models

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
RLCOMM_TASKS = {
    bench: [
        t for t in config["scoring"]["rlcomm"]["tasks"].get(bench, []) if t in tasks
    ]
    for bench, tasks in GENERATED.items()
}
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


def rlcomm_tables():
    return [
        f"results/bench/{b}/{t}.parquet" for b, ts in RLCOMM_TASKS.items() for t in ts
    ]


def rlcomm_inputs(wildcards):
    return {
        "split": f"{SCORE}/split.parquet",
        "samples": rlcomm_tables(),
        "manifests": sorted(
            {manifest_of(b, t) for b, ts in RLCOMM_TASKS.items() for t in ts}
        ),
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
    if any(RLCOMM_TASKS.values()):
        out += [
            f"{SCORE}/rlcomm/reference.parquet",
            f"{SCORE}/rlcomm/warmup_sft.parquet",
        ]
    return out
