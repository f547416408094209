import os
import sys

import yaml

from snakemake.logging import logger
from snakemake.utils import validate

# The Snakefile imports this checkout's package, installed or not (the rule scripts
# do the same from workflow/scripts).
sys.path.insert(0, os.path.join(workflow.basedir, "src"))

from avtrust.bench.export import official_paths
from avtrust.bench.importer import task_source
from avtrust.bench.plan import task_datasets, task_settings
from avtrust.bench.samples import BENCHES
from avtrust.bench.shards import media_settings
from avtrust.datasets.synthetic import settings as synthetic_settings
from avtrust.overlays import resolve
from avtrust.preflight import check as preflight_check
from avtrust.preflight import report as preflight_report
from avtrust.pretrain import (
    corpus_decoder,
    corpus_job_config,
    is_thinker,
    model_job_config,
    pretrained_models,
    start_model,
    vision_job_config,
    vision_tower_trained,
)

validate(config, "../schemas/config.schema.yaml")
# A user's config merged into config/config.yaml removes entries set to null, replaces
# generated tasks by imported ones, and must choose to mix synthetic and real sources;
# every rule sees the resolved config, and the run log states what was resolved.
RESOLVED = resolve(config)
config.clear()
config.update(RESOLVED.config)
for note in RESOLVED.notes:
    logger.warning(f"config: {note}")


def gpu_count(resources):
    """The plain `gpu` value of one rule's set-resources (None: unset or computed per job)."""
    value = dict(resources).get("gpu")
    if value is None or (hasattr(value, "is_evaluable") and value.is_evaluable()):
        return None
    return getattr(value, "value", value)


def preflight_profile():
    """(settings, name, in use) of the Slurm resources a run gets: the set-resources this run
    was started with (--profile, --set-resources), else profiles/slurm's, which a
    cluster run of this config would use."""
    given = workflow.resource_settings.overwrite_resources
    if given:
        # snakemake holds them as Resource objects; the preflight reads the GPU counts
        resources = {job: {"gpu": gpu_count(res)} for job, res in given.items()}
        return (
            {"set-resources": resources},
            "the profile (or --set-resources) of this run",
            True,
        )
    path = os.path.join(workflow.basedir, "profiles", "slurm", "config.yaml")
    if not os.path.isfile(path):
        return {}, "the profile", False
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}, "profiles/slurm", False


# A config naming real data: what is missing before anything runs (absent folders,
# placeholders, models to fetch, GPU counts the profile replaces), said at the top of
# every run, dry runs included (not again in each job's own process); it never stops
# the run, and the synthetic default has nothing to say.
def say_preflight():
    profile, name, in_use = preflight_profile()
    findings = preflight_check(
        config, profile=profile, profile_name=name, profile_in_use=in_use
    )
    text = preflight_report(findings)
    if text:
        logger.warning(text)


if workflow.is_main_process:
    say_preflight()

RAW = "resources/raw"
DOWNLOADS = "resources/downloads"
SHARDS = list(range(config["benchmark"]["shards"]))
# Tasks taken from official files (benchmark.import) instead of being generated.
IMPORTS = {b: config["benchmark"].get("import", {}).get(b, {}) for b in BENCHES}
BUILT_TASKS = {
    bench: [t for t in tasks if t in config["benchmark"].get(bench, {})]
    for bench, tasks in BENCHES.items()
}
BENCH_TASKS = {
    bench: [t for t in tasks if t in BUILT_TASKS[bench] or t in IMPORTS[bench]]
    for bench, tasks in BENCHES.items()
}


def datasets_from(source):
    return [n for n, d in config["datasets"].items() if d["source"] == source]


def one_of(names):
    """A wildcard constraint matching exactly ``names`` (nothing when empty)."""
    return "|".join(sorted(set(names))) or "^$"


SYNTHETIC = datasets_from("synthetic")
LOCAL = datasets_from("local")
HTTP = datasets_from("http")
YOUTUBE = datasets_from("youtube")
COMPOSED = datasets_from("compose")


wildcard_constraints:
    bench="|".join(BENCHES),
    task="|".join(t for ts in BENCHES.values() for t in ts),
    dataset="|".join(config["datasets"]),
    shard=r"\d+",


def check_task_datasets():
    """Every dataset a task names must be declared under `datasets`."""
    for bench, tasks in BUILT_TASKS.items():
        for task in tasks:
            cfg = config["benchmark"][bench][task]
            for key in ("dataset", "sounds"):
                if key in cfg and cfg[key] not in config["datasets"]:
                    raise ValueError(
                        f"config: benchmark.{bench}.{task}.{key} = {cfg[key]!r} "
                        f"is not a dataset under `datasets` ({', '.join(config['datasets'])})"
                    )


check_task_datasets()


def check_sources():
    """What the schema cannot say about sources, imports and the synthetic corpus."""
    datasets = config["datasets"]
    for name, spec in datasets.items():
        where = f"config: datasets.{name}"
        if spec["source"] == "youtube" and spec["format"] not in ("avqa", "audioset"):
            raise ValueError(
                f"{where}.source = youtube serves the formats avqa and audioset, "
                f"not {spec['format']!r} (MUSIC-AVQA and sound folders: source local)"
            )
        if spec["source"] == "compose":
            if spec["format"] != "music_avqa":
                raise ValueError(
                    f"{where}.format must be music_avqa for source compose"
                )
            if spec["from"] not in datasets or spec["from"] == name:
                raise ValueError(
                    f"{where}.from = {spec['from']!r} is not another dataset under `datasets`"
                )
            if datasets[spec["from"]]["format"] != "music_avqa":
                raise ValueError(
                    f"{where}.from must name a music_avqa dataset (its solos)"
                )
        if spec["format"] == "folder" and spec.get("annotations"):
            raise ValueError(
                f"{where}.annotations: the folder format has no annotation files"
            )
    if SYNTHETIC and "corpus" not in config:
        raise ValueError(
            f"config: `corpus` is required by synthetic datasets {SYNTHETIC}"
        )


check_sources()


def plan_inputs(wildcards):
    names = task_datasets(config["benchmark"][wildcards.bench][wildcards.task])
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
    sources = {
        t: (
            config["benchmark"][bench][t]["dataset"]
            if t in BUILT_TASKS[bench]
            else task_source(t, IMPORTS[bench][t])
        )
        for t in BENCH_TASKS[bench]
    }
    return official_paths(bench, sources, "results/bench/official")


def youtube_shards(wildcards):
    n = config["datasets"][wildcards.dataset]["shards"]
    return expand(
        f"{DOWNLOADS}/{{dataset}}/shards/{{shard}}.parquet",
        dataset=wildcards.dataset,
        shard=range(n),
    )


def solo_manifest(wildcards):
    return f"results/manifest/{config['datasets'][wildcards.dataset]['from']}.parquet"


def benchmark_outputs():
    out = []
    for bench in BENCH_TASKS:
        out += bench_task_files(bench) + official_outputs(bench)
    out.append("results/bench/hf/README.md")
    out.append("results/bench/lmms_eval")  # the tasks for lmms-eval (questions.smk)
    # models and score stages (models.smk, score.smk)
    out += model_outputs() + score_outputs()
    out += evaluation_outputs()  # evaluate and aggregate stages (common_evaluate.smk)
    out += rlcomm_outputs()  # RL-CoMM training (rlcomm.smk)
    out += train_outputs()  # SFT, DPO, CAVPref training (train.smk)
    return out
