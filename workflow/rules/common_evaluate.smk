# Constants, config checks and input functions of the evaluate and aggregate stages
# (evaluate.smk, aggregate.smk), next to common.smk and common_score.smk.

from avtrust.evaluate.config import BENCHES, eval_models
from avtrust.evaluate.groups import evaluation_groups, group_of
from avtrust.evaluate.prompt_template import check_template, template_parts
from avtrust.evaluate.samples import QA_BENCH, QA_TASKS
from avtrust.results.breakdown_plots import PLOTS as BREAKDOWN_PLOT_NAMES
from avtrust.results.breakdowns import BREAKDOWNS
from avtrust.results.db import views_digest
from avtrust.results.views import VIEWS

if "evaluation" not in config:
    raise ValueError(
        "config: the `evaluation` section is missing (see config/config.yaml)"
    )
EVAL = config["evaluation"]
EVAL_MODELS = eval_models(EVAL, config["models"], [*TRAIN_METHODS, *RLCOMM_METHODS])
EVAL_SHARDS = list(range(EVAL["shards"]))
JUDGE = EVAL["judge"]["model"]
# Each benchmark's evaluation prompt template, checked (ConfigError naming the key).
PROMPTS = {
    bench: check_template(
        (EVAL.get("prompts") or {}).get(bench), f"config: evaluation.prompts.{bench}"
    )
    for bench in BENCHES
}


def check_qa_sets():
    """QA sets of the datasets this run declares (a QA set of a dataset the run does
    not use is left out, so one `evaluation` section serves configs with fewer datasets).
    """
    seen = {}
    names = [n for n in EVAL["qa_sets"] if n in config["datasets"]]
    for name in names:
        where = f"config: evaluation.qa_sets.{name}"
        fmt = config["datasets"][name]["format"]
        if fmt not in QA_TASKS:
            raise ValueError(
                f"{where}: format {fmt!r} has no QA set ({', '.join(QA_TASKS)})"
            )
        if fmt in seen:
            raise ValueError(f"{where}: {seen[fmt]!r} already gives the {fmt} QA set")
        seen[fmt] = name
    return {QA_TASKS[config["datasets"][n]["format"]]: n for n in names}


QA_SETS = check_qa_sets()  # task (MUSIC-AVQA, AVQA) -> dataset
# Tasks evaluated: evaluation.tasks (default: every task of the run) + the QA sets.
EVAL_TASKS = {
    bench: [t for t in tasks if t in EVAL.get("tasks", {}).get(bench, tasks)]
    for bench, tasks in BENCH_TASKS.items()
}
EVAL_TASKS[QA_BENCH] = list(QA_SETS)


# The (benchmark, task) pairs each evaluation job answers with one model load
# (evaluation.group_tasks: model, benchmark or task; avtrust.evaluate.groups).
def eval_groups(model):
    return evaluation_groups(
        EVAL_TASKS, EVAL_MODELS[model].benches, EVAL["group_tasks"]
    )


EVAL_GROUP_NAMES = {g for m in EVAL_MODELS for g in eval_groups(m)}


# Open-ended tasks (descriptions, judged later): generation length of their own, never
# parsed against options.
OPEN_TASKS = {("avconfusebench", "m2")}


def eval_settings(bench, task):
    """The evaluation settings a shard of ``task`` reads (evaluate_shard's params)."""
    out = {k: EVAL[k] for k in ("mode", "batch_size", "device")}
    # the split selects a benchmark's rows (the QA sets are evaluation sets throughout)
    out["split"] = EVAL["split"] if bench != QA_BENCH else None
    # the parts of the benchmark's prompt template this task reads, resolved
    out["prompt"] = template_parts(PROMPTS[bench], (bench, task) in OPEN_TASKS)
    if (bench, task) in OPEN_TASKS:
        out["max_new_tokens_open"] = EVAL["max_new_tokens_open"]
    else:
        out["max_new_tokens"] = EVAL["max_new_tokens"]
        out["loglik_norm"] = EVAL["loglik_norm"]
        # replies are parsed against the options, abstention wordings included
        out["wording"] = config["benchmark"]["wording"]
    return out


def eval_table(bench, task):
    if bench == QA_BENCH:
        return f"results/qa/{QA_SETS[task]}.parquet"
    return f"results/bench/{bench}/{task}.parquet"


def split_input(benches):
    """The split file where it selects the evaluated rows of one of ``benches`` (one
    file for every benchmark), else nothing."""
    if EVAL["split"] != "all" and any(b != QA_BENCH for b in benches):
        return {"split": f"{SCORE}/split.parquet"}
    return {}


def samples_inputs(bench, task):
    """The table of an evaluated task and, where a split selects its rows, the split."""
    return {"samples": eval_table(bench, task), **split_input([bench])}


def evaluate_inputs(wildcards):
    """Each pair's table (and decode-cache index), in the order of the group's pairs."""
    pairs = eval_groups(wildcards.model)[wildcards.group]
    out = {
        **split_input([b for b, _ in pairs]),
        "samples": [eval_table(b, t) for b, t in pairs],
        "model": EVAL_MODELS[wildcards.model].folder,
    }
    if DECODED and EVAL_MODELS[wildcards.model].adapter == OMNI_ADAPTER:
        out["decoded"] = [f"{DECODED}/{b}/{t}/index.parquet" for b, t in pairs]
    return out


def shard_folders(model, bench, task):
    """The evaluation shards' folders that hold a task's predictions."""
    group = group_of(eval_groups(model), bench, task)
    return [f"results/predictions/{model}/{group}.shards/{s}" for s in EVAL_SHARDS]


def merge_folders(model, bench):
    """{task: its shards' folders} of a benchmark (merge_predictions_<bench>'s params)."""
    return {t: shard_folders(model, bench, t) for t in EVAL_TASKS[bench]}


def merge_inputs(model, bench):
    folders = merge_folders(model, bench).values()
    return {"shards": sorted({f for task_folders in folders for f in task_folders})}


def qa_inputs(wildcards):
    return {
        "manifest": f"results/manifest/{wildcards.dataset}.parquet",
        "raw": f"{RAW}/{wildcards.dataset}",
    }


def prediction_files(model):
    return [
        f"results/predictions/{model}/{bench}/{task}.parquet"
        for bench, tasks in EVAL_TASKS.items()
        if bench in EVAL_MODELS[model].benches
        for task in tasks
    ]


def has_m2(model):
    return (
        "m2" in EVAL_TASKS["avconfusebench"]
        and "avconfusebench" in EVAL_MODELS[model].benches
    )


def metrics_inputs(wildcards):
    out = {"predictions": prediction_files(wildcards.model)}
    if has_m2(wildcards.model):
        out["judge"] = f"results/judge/{wildcards.model}/m2.parquet"
    return out


def judge_inputs(wildcards):
    out = {
        "predictions": f"results/predictions/{wildcards.model}/avconfusebench/m2.parquet",
        "samples": "results/bench/avconfusebench/m2.parquet",
    }
    if JUDGE is not None:
        out["judge"] = model_dir(JUDGE)
    return out


def aggregate_inputs(wildcards):
    models = list(EVAL_MODELS)
    return {
        "samples": [eval_table(b, t) for b, ts in EVAL_TASKS.items() for t in ts],
        "predictions": [p for m in models for p in prediction_files(m)],
        "judge": [f"results/judge/{m}/m2.parquet" for m in models if has_m2(m)],
        "metrics": [f"results/metrics/{m}.parquet" for m in models],
        "runs": [f"results/metrics/{m}.run.json" for m in models],
    }


def training_logs():
    """log.jsonl of every evaluated checkpoint's training run."""
    methods = sorted({m.method for m in EVAL_MODELS.values() if m.kind == "checkpoint"})
    return {m: f"results/checkpoints/{m}/log.jsonl" for m in methods}


TABLE_FILES = expand(
    "results/tables/{view}.{ext}", view=VIEWS, ext=["md", "tex", "csv"]
)
CHECKS_TABLE = "results/tables/benchmark_checks.csv"  # avtrust.results.checks
BREAKDOWN_TABLES = expand(
    "results/tables/{name}.{ext}", name=BREAKDOWNS, ext=["md", "tex", "csv"]
)
BREAKDOWN_PLOTS = [f"results/plots/{name}" for name in BREAKDOWN_PLOT_NAMES]
PLOT_FILES = [
    "results/plots/task_accuracy.png",
    "results/plots/m1_yes_rate.png",
    "results/plots/training_curves.png",
] + BREAKDOWN_PLOTS


def evaluation_outputs():
    if not EVAL_MODELS:
        return []
    return (
        ["results/results.duckdb", CHECKS_TABLE]
        + TABLE_FILES
        + BREAKDOWN_TABLES
        + PLOT_FILES
    )
