"""The README's config recipes work exactly as written, as overlays of config/config.yaml
(`snakemake -n --configfile config/config.yaml <recipe>` in a checkout), an overlay
that would mix synthetic and real sources stops naming them, and the README's "Evaluate
your own model" recipe evaluates a model served by a local OpenAI-compatible server."""

from __future__ import annotations

import re
import shutil
import subprocess

import pyarrow.parquet as pq
import pytest
import yaml
from conftest import REPO, SNAKEMAKE
from local_openai import ChatServer

from avtrust.dryrun import job_counts, planned_jobs
from avtrust.evaluate.infer import YES_NO_PROMPT

pytestmark = pytest.mark.workflow

# The README's recipes by file name: fenced yaml blocks starting "# <name>.yaml:".
RECIPES = {
    m[2]: m[1]
    for m in re.finditer(
        r"```yaml\n(# ([\w-]+)\.yaml:.*?)```", (REPO / "README.md").read_text(), re.DOTALL
    )
}


def dry_run(tmp_path, text: str | None, *args: str) -> subprocess.CompletedProcess:
    """``snakemake -n --configfile config/config.yaml overlay.yaml`` in a checkout's copy
    (``text`` None: the default config alone)."""
    return snakemake(tmp_path, text, "-n", *args)


def snakemake(tmp_path, text: str | None, *args: str) -> subprocess.CompletedProcess:
    (tmp_path / "config").mkdir(exist_ok=True)
    shutil.copy(REPO / "config" / "config.yaml", tmp_path / "config" / "config.yaml")
    configs = ["config/config.yaml"]
    if text is not None:
        (tmp_path / "overlay.yaml").write_text(text)
        configs.append("overlay.yaml")
    cmd = [*SNAKEMAKE, "--configfile", *configs, *args]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, check=False)
    proc.stdout += proc.stderr
    return proc


def test_the_readme_has_its_recipes():
    assert set(RECIPES) == {"official", "music_only", "mixed", "own_model"}


def test_official_files_recipe(tmp_path):
    proc = dry_run(tmp_path, RECIPES["official"])
    assert proc.returncode == 0, proc.stdout[-3000:]
    jobs = job_counts(proc.stdout)
    assert jobs["import_official"] == 3  # MAT, m1, m2
    assert "plan_task" not in jobs  # nothing generated: no mix with the synthetic corpus
    assert "config: benchmark.avtrustbench: every generated task removed" in proc.stdout
    assert "config: benchmark.import.avconfusebench replaces the generated m1, m2" in proc.stdout


def test_music_only_recipe_schedules_nothing_synthetic(tmp_path):
    proc = dry_run(tmp_path, RECIPES["music_only"])
    assert proc.returncode == 0, proc.stdout[-3000:]
    jobs = job_counts(proc.stdout)
    assert "fetch_synthetic" not in jobs
    assert jobs["fetch_local"] == 1 and jobs["compose_scenes"] == 1
    assert jobs["plan_task"] == 3  # MAT, MVT, m1
    assert "config: datasets removed by the config: avqa, audioset, sounds" in proc.stdout


def test_mixed_recipe_states_the_mix(tmp_path):
    proc = dry_run(tmp_path, RECIPES["mixed"])
    assert proc.returncode == 0, proc.stdout[-3000:]
    jobs = job_counts(proc.stdout)
    assert jobs["fetch_local"] == 1 and jobs["fetch_synthetic"] == 3
    assert (
        "config: avconfusebench mixes synthetic (sounds) and real (music_avqa) sources "
        "(benchmark.allow_mixed_sources: true)"
    ) in proc.stdout


def test_a_real_dataset_among_synthetic_ones_stops_naming_them(tmp_path):
    # The mixed recipe without its explicit choice.
    text = RECIPES["mixed"].replace("  allow_mixed_sources: true\n", "  shards: 2\n")
    proc = dry_run(tmp_path, text)
    assert proc.returncode != 0
    assert "avtrustbench mixes synthetic (avqa, audioset) and real (music_avqa)" in proc.stdout
    assert "benchmark.allow_mixed_sources: true" in proc.stdout
    assert "Traceback" not in proc.stdout


# The served model of the "Evaluate your own model" recipe: its name under `models` and
# `evaluation.models`, and the base URL the README points it at.
OWN = yaml.safe_load(RECIPES["own_model"])
OWN_NAME = next(iter(OWN["evaluation"]["models"]))
OWN_ENTRY = OWN["models"][OWN["evaluation"]["models"][OWN_NAME]["model"]]
OWN_URL = OWN_ENTRY["location"]
OWN_JOB_RULES = {
    "prepare_model",
    "evaluate_shard",
    "merge_predictions_avtrustbench",
    "merge_predictions_avconfusebench",
    "merge_predictions_qa",
    "judge_m2",
    "model_metrics",
}


def job_keys(proc) -> set[tuple[str, tuple]]:
    return {(j["rule"], tuple(sorted(j["wildcards"].items()))) for j in planned_jobs(proc.stdout)}


def test_own_model_recipe_adds_only_that_models_jobs(tmp_path):
    base = dry_run(tmp_path, None)
    own = dry_run(tmp_path, RECIPES["own_model"])
    assert base.returncode == 0 and own.returncode == 0, own.stdout[-3000:]
    before, after = job_keys(base), job_keys(own)
    assert before <= after  # every job of the default is planned as it was
    added = after - before
    assert {rule for rule, _ in added} == OWN_JOB_RULES
    assert all(dict(wc)["model"] == OWN_NAME for _, wc in added)
    # every task and QA set, as the zero-shot default model (benches: all three)
    counts = job_counts(own.stdout)
    omni = [wc for rule, wc in before if rule == "evaluate_shard" and dict(wc)["model"] == "omni"]
    assert sum(1 for rule, _ in added if rule == "evaluate_shard") == len(omni) > 0
    for rule in ("results_db", "tables", "plots"):
        assert counts[rule] == 1


def test_own_model_recipe_evaluates_through_a_local_endpoint(tmp_path):
    """The recipe as written, its URL pointed at a local keyless server: on a run that
    has the default's model and QA sets, only the new model's jobs are planned, and its
    QA sets are answered through the endpoint (one job, with the benchmark's tasks
    grouped: the default's one job per model would answer every benchmark, and this
    test builds only the QA sets), clip media in every request."""
    qa_sets = ["results/qa/music_avqa.parquet", "results/qa/avqa.parquet"]
    done = snakemake(tmp_path, None, "--cores", "2", "resources/models/omni", *qa_sets)
    assert done.returncode == 0, done.stdout[-3000:]

    def reply(body):
        text = body["messages"][-1]["content"][-1]["text"]
        return 200, "yes" if text.endswith(YES_NO_PROMPT) else "A"

    with ChatServer(reply) as server:
        overlay = RECIPES["own_model"].replace(OWN_URL, server.base_url)
        assert overlay != RECIPES["own_model"] and overlay.rstrip().endswith("qa]}")
        overlay += "  group_tasks: benchmark\n"  # in its `evaluation` section, the last
        target = f"results/predictions/{OWN_NAME}/qa/MUSIC-AVQA.parquet"
        plan = dry_run(tmp_path, overlay, "resources/models/omni", *qa_sets, target)
        assert plan.returncode == 0, plan.stdout[-3000:]
        assert sorted((rule, dict(wc)["model"]) for rule, wc in job_keys(plan)) == [
            ("evaluate_shard", OWN_NAME),
            ("merge_predictions_qa", OWN_NAME),
            ("prepare_model", OWN_NAME),
        ]
        run = snakemake(tmp_path, overlay, "--cores", "2", target)
        assert run.returncode == 0, run.stdout[-3000:]

    samples = [row for qa in qa_sets for row in pq.read_table(tmp_path / qa).to_pylist()]
    preds = pq.read_table(tmp_path / target).to_pylist()
    answered = (
        len(preds)
        + pq.read_metadata(
            tmp_path / f"results/predictions/{OWN_NAME}/qa.shards/0/qa/AVQA.parquet"
        ).num_rows
    )
    assert answered == len(server.requests) == len(samples) > len(preds) > 0
    assert {p["mode"] for p in preds} == {"generate"}  # an endpoint only generates
    for p in preds:
        expected = "yes" if p["kind"] == "yes_no" else None
        assert p["status"] == "ok" and p["raw"] in ("A", "yes"), p
        assert p["parsed"] == (
            expected or next(s for s in samples if s["id"] == p["id"])["options"][0]
        )
    for request in server.requests:
        body = request["body"]
        assert request["path"] == "/v1/chat/completions" and request["auth"] is None
        assert body["model"] == OWN_ENTRY["model"] and body["temperature"] == 0.0
        kinds = [part["type"] for part in body["messages"][-1]["content"]]
        assert kinds == ["image_url"] * OWN_ENTRY["frames"] + ["input_audio", "text"]
