import os
import sys

from snakemake.utils import validate

# The Snakefile imports this checkout's package, installed or not (the rule scripts
# do the same from workflow/scripts).
sys.path.insert(0, os.path.join(workflow.basedir, "src"))

from avtrust.bench.export import official_paths
from avtrust.bench.samples import BENCHES

validate(config, "../schemas/config.schema.yaml")

RAW = "resources/raw"
SHARDS = list(range(config["benchmark"]["shards"]))
BENCH_TASKS = {
    bench: [t for t in tasks if t in config["benchmark"].get(bench, {})]
    for bench, tasks in BENCHES.items()
}
SYNTHETIC = [n for n, d in config["datasets"].items() if d["source"] == "synthetic"]


wildcard_constraints:
    bench="|".join(BENCHES),
    task="|".join(t for ts in BENCHES.values() for t in ts),
    dataset="|".join(config["datasets"]),
    shard=r"\d+",


def check_task_datasets():
    """Every dataset a task names must be declared under `datasets`."""
    for bench, tasks in BENCH_TASKS.items():
        for task in tasks:
            cfg = config["benchmark"][bench][task]
            for key in ("dataset", "sounds"):
                if key in cfg and cfg[key] not in config["datasets"]:
                    raise ValueError(
                        f"config: benchmark.{bench}.{task}.{key} = {cfg[key]!r} "
                        f"is not a dataset under `datasets` ({', '.join(config['datasets'])})"
                    )


check_task_datasets()


def task_datasets(wildcards):
    cfg = config["benchmark"][wildcards.bench][wildcards.task]
    return [cfg[k] for k in ("dataset", "sounds") if k in cfg]


def plan_inputs(wildcards):
    names = task_datasets(wildcards)
    return {
        "manifests": [f"results/manifest/{n}.parquet" for n in names],
        "raw": [f"{RAW}/{n}" for n in names],
    }


def shard_results(wildcards):
    return expand(
        "results/media/{bench}/{task}/shards/{shard}.parquet",
        bench=wildcards.bench,
        task=wildcards.task,
        shard=SHARDS,
    )


def bench_task_files(bench):
    return expand(
        "results/bench/{bench}/{task}.parquet", bench=bench, task=BENCH_TASKS[bench]
    )


def official_outputs(bench):
    sources = {t: config["benchmark"][bench][t]["dataset"] for t in BENCH_TASKS[bench]}
    return official_paths(bench, sources, "results/bench/official")


def benchmark_outputs():
    out = []
    for bench in BENCH_TASKS:
        out += bench_task_files(bench) + official_outputs(bench)
    out.append("results/bench/hf/README.md")
    return out
