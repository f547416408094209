"""Dry runs: the DAG's shape, and config errors that stop the workflow before any job."""

from __future__ import annotations

import pytest
import yaml
from conftest import (
    REPO,
    job_blocks,
    job_priority,
    planned_jobs,
    planned_with,
    run_snakemake,
    scale_samples,
    write_config,
)

pytestmark = pytest.mark.workflow

STAGES = {"fetch_synthetic": 4, "index_dataset": 4, "plan_task": 11, "build_questions": 11}


def test_default_config_plans_the_whole_benchmark(tmp_path):
    proc = run_snakemake(tmp_path, "-n", config=REPO / "config" / "config.yaml")
    jobs = planned_jobs(proc)
    assert {k: jobs[k] for k in STAGES} == STAGES
    assert jobs["manipulate_shard"] == 11 * 2  # 11 tasks x 2 shards
    assert jobs["export_official"] == 1 and jobs["export_hf"] == 1
    assert jobs["export_lmms_eval"] == 1
    # RL-CoMM's warm-up, SFT on the QA sets, is evaluated as the RL-CoMM paper's "+ SFT"
    # row (bench/trained_default.py reads it), not on AVTrustBench
    warmup = "results/predictions/rlcomm_warmup"
    for task in ("avconfusebench/m1", "qa/MUSIC-AVQA", "qa/AVQA"):
        assert f"{warmup}/{task}.parquet" in proc.stdout
    assert f"{warmup}/avtrustbench/" not in proc.stdout


def test_one_evaluation_job_per_model_and_shard(tmp_path):
    """The default evaluates a model's every task in one job (evaluation.group_tasks:
    model): each model loads once per shard; `benchmark` makes a job per benchmark,
    `task` one per task. One merge job per (model, benchmark) writes its tasks' files."""
    default = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    evaluation = default["evaluation"]
    assert evaluation["group_tasks"] == "model" and evaluation["shards"] == 1
    # Tasks per benchmark; a model without `benches` is evaluated on all three.
    per_bench = {"avtrustbench": 9, "avconfusebench": 2, "qa": len(evaluation["qa_sets"])}
    evaluated = [m.get("benches", list(per_bench)) for m in evaluation["models"].values()]
    models = len(evaluated)
    benches = sum(len(b) for b in evaluated)
    tasks = sum(per_bench[b] for bs in evaluated for b in bs)
    assert any(len(b) < len(per_bench) for b in evaluated)  # the ablations: AVTrustBench only

    def plan(name, **settings):
        """(evaluation jobs, merge jobs) of the edited default."""
        config = tmp_path / f"{name}.yaml"
        edited = {**default, "evaluation": {**evaluation, **settings}}
        config.write_text(yaml.safe_dump(edited, sort_keys=False))
        proc = run_snakemake(tmp_path, "-n", config=config)
        jobs = planned_jobs(proc)
        merges = sum(n for rule, n in jobs.items() if rule.startswith("merge_predictions_"))
        return jobs["evaluate_shard"], merges

    # a merge job per (model, benchmark) writes each of its tasks' predictions
    for n in (1, 3):
        assert plan(f"shards{n}", shards=n) == (models * n, benches)
    assert plan("per_bench", group_tasks="benchmark") == (benches, benches)
    assert plan("alone", group_tasks="task") == (tasks, benches)


def test_job_count_depends_on_shards_not_samples(tmp_path):
    def scale(factor, shards):
        def edit(config):
            config["benchmark"]["shards"] = shards
            scale_samples(config, factor)

        return edit

    small = planned_with(tmp_path, "a.yaml", scale(1, 2))
    huge = planned_with(tmp_path, "b.yaml", scale(10000, 2))
    more_shards = planned_with(tmp_path, "c.yaml", scale(1, 5))
    assert small == huge
    assert more_shards["manipulate_shard"] == 11 * 5
    assert small["manipulate_shard"] == 11 * 2


def test_single_target_plans_only_its_chain(tmp_path):
    proc = run_snakemake(tmp_path, "-n", "results/bench/avtrustbench/MAT.parquet")
    jobs = planned_jobs(proc)
    assert jobs == {
        "fetch_synthetic": 1,
        "index_dataset": 1,
        "plan_task": 1,
        "manipulate_shard": 2,
        "build_questions": 1,
    }


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda c: c["corpus"].update(duraton_s=1.0), "duraton_s"),
        (lambda c: c.update(seed="seven"), "seed"),
        (lambda c: c["benchmark"]["avtrustbench"]["MAT"].update(samples=0), "samples"),
        (lambda c: c["datasets"]["avqa"].update(format="avqa2"), "avqa2"),
        (
            lambda c: c["benchmark"]["avtrustbench"].update(MXIT={"samples": 1, "dataset": "avqa"}),
            "MXIT",
        ),
        (lambda c: c["benchmark"]["avtrustbench"]["MAT"].update(dataset="music"), "music"),
    ],
    ids=[
        "typo-key",
        "wrong-type",
        "out-of-range",
        "unknown-format",
        "unknown-task",
        "undeclared-dataset",
    ],
)
def test_config_errors_name_the_key_before_any_job(tmp_path, edit, named):
    proc = run_snakemake(
        tmp_path, "-n", config=write_config(tmp_path / "bad.yaml", edit), check=False
    )
    assert proc.returncode != 0
    assert named in proc.stdout
    assert not (tmp_path / "results").exists() and not (tmp_path / "resources").exists()


def test_slurm_profile_plans_and_names_only_existing_rules(tmp_path):
    profile = REPO / "profiles" / "slurm"
    proc = run_snakemake(tmp_path, "-n", "--profile", str(profile))
    assert planned_jobs(proc)["manipulate_shard"] == 22
    rules = set(run_snakemake(tmp_path, "--list-rules").stdout.split())
    settings = yaml.safe_load((profile / "config.yaml").read_text())
    named = set(settings["set-resources"]) | set(settings["set-threads"])
    assert named <= rules, f"profile names unknown rules: {sorted(named - rules)}"
    for gpu_rule in ("score_pairs", "reference_reasoning"):
        assert settings["set-resources"][gpu_rule]["gpu_model"] == "a800"


def test_trainings_start_before_evaluations(tmp_path):
    """On a busy machine the scheduler starts trainings before evaluation jobs: each
    training is long and followed by its own evaluation, so one left to the end runs
    with the other cores idle. RL-CoMM's chain goes first of all, its inputs with it
    (a stage that waits for its decode job behind the trainings idles its chain)."""
    proc = run_snakemake(tmp_path, "-n")
    priorities: dict[str, set[int]] = {}
    for name, block in job_blocks(proc, "source"):
        priorities.setdefault(name, set()).add(job_priority(block))
    (rl,), (train,), (evaluate,) = (
        priorities[r] for r in ("rlcomm_train", "train", "evaluate_shard")
    )
    assert rl > train > evaluate == 0
    rl_inputs = ["reference_reasoning", "decode_training_clips:rlcomm_reference",
                 "decode_training_clips:rlcomm_warmup_sft"]  # fmt: skip
    assert all(priorities[job] == {rl} for job in rl_inputs)
    assert priorities["decode_training_clips:pairs"] == {train}
