"""The models and score stages in the tiny end-to-end build, and their config errors."""

from __future__ import annotations

import re

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import TINY, planned_with, run_snakemake, scale_samples, write_config

from avtrust.dryrun import planned_jobs
from avtrust.media.probe import probe
from avtrust.models import registry
from avtrust.scoring.similarity import beta_from_similarity
from avtrust.scoring.split import split_of

pytestmark = pytest.mark.workflow

CONFIG = yaml.safe_load(TINY.read_text())
SCORING = CONFIG["scoring"]
CAVPREF = SCORING["cavpref"]["tasks"]
SCORE_DIR = "results/score"


def table(workdir, path):
    return pq.read_table(workdir / path).to_pylist()


def train_samples(workdir, bench, tasks):
    rows = []
    for task in tasks:
        rows += [
            r
            for r in table(workdir, f"results/bench/{bench}/{task}.parquet")
            if split_of(CONFIG["seed"], bench, r["id"], SCORING["train_fraction"]) == "train"
        ]
    return rows


def test_models_are_prepared_and_load_through_the_registry(tiny_run):
    for name, entry in CONFIG["models"].items():
        folder = tiny_run / "resources" / "models" / name
        manifest = registry.read_manifest(folder)
        assert manifest["adapter"] == entry["adapter"] and manifest["source"] == "tiny"
    omni = registry.load_by_name("omni", CONFIG["models"], root=tiny_run / "resources/models")
    mvit = table(tiny_run, "results/bench/avtrustbench/MVIT.parquet")[:2]
    import torch

    batch = omni.inputs(
        [tiny_run / r["media_path"] for r in mvit],
        [r["question"] for r in mvit],
        [r["answer"] for r in mvit],
    )
    assert batch["use_audio_in_video"] and "pixel_values_videos" in batch
    assert torch.isfinite(omni.forward(batch).loss)


def test_split_covers_every_sample(tiny_run):
    split = table(tiny_run, "results/score/split.parquet")
    n = sum(
        pq.read_metadata(p).num_rows
        for p in (tiny_run / "results" / "bench").glob("*/*.parquet")
        if not p.name.endswith(".rejects.parquet")
    )
    assert len(split) == n and {r["split"] for r in split} == {"train", "test"}
    for r in split:
        assert r["split"] == split_of(
            CONFIG["seed"], r["bench"], r["id"], SCORING["train_fraction"]
        )


def test_pairs_are_complete(tiny_run):
    pairs = table(tiny_run, "results/score/cavpref/pairs.parquet")
    rejects = table(tiny_run, "results/score/cavpref/pairs.rejects.parquet")
    train = {r["id"]: r for r in train_samples(tiny_run, "avtrustbench", CAVPREF)}
    assert rejects == []
    assert pairs and sorted(p["id"] for p in pairs) == sorted(train)  # every training sample
    eta, gamma = SCORING["cavpref"]["eta"], SCORING["cavpref"]["gamma"]
    for p in pairs:
        sample = train[p["id"]]
        assert p["chosen"] == sample["answer"]
        assert p["rejected"] in sample["options"] and p["rejected"] != p["chosen"]
        for key in ("video_corrupted_path", "audio_corrupted_path"):
            assert (tiny_run / p[key]).is_file(), p[key]
        clean = probe(tiny_run / p["media_path"])
        v, a = (
            probe(tiny_run / p["video_corrupted_path"]),
            probe(tiny_run / p["audio_corrupted_path"]),
        )
        assert v.has_audio == clean.has_audio and a.has_video == clean.has_video
        assert p["eta"] == eta.get(p["task"], 0.0) and p["gamma"] == gamma.get(p["task"], 0.0)
        for s, b in (
            (p["sim_text"], p["beta_text"]),
            (p["avsm_video"], p["beta_video"]),
            (p["avsm_audio"], p["beta_audio"]),
        ):
            assert 0.1 - 1e-9 <= b <= 1.0 + 1e-9
            assert b == pytest.approx(beta_from_similarity(s))
    # Restoring a missing modality is the largest change there is: AVSM 0, beta 1.
    for p in pairs:
        if p["task"] == "MAT":
            assert p["avsm_audio"] == 0.0 and p["beta_audio"] == pytest.approx(1.0)


def test_reference_reasoning_once_per_training_question(tiny_run):
    questions = table(tiny_run, "results/score/rlcomm/questions.parquet")
    settings = SCORING["rlcomm"]["questions"]
    assert {r["source_dataset"] for r in questions} == set(settings["datasets"])
    assert {r["split"] for r in questions} == set(settings["splits"])  # training files only
    ref = table(tiny_run, "results/score/rlcomm/reference.parquet")
    warmup = table(tiny_run, "results/score/rlcomm/warmup_sft.parquet")
    rl_ids = sorted(r["id"] for r in questions if r["role"] == "rl")
    warm_ids = sorted(r["id"] for r in questions if r["role"] == "warmup")
    assert sorted(r["id"] for r in ref) == rl_ids and sorted(w["id"] for w in warmup) == warm_ids
    assert not set(rl_ids) & set(warm_ids)
    assert len(warmup) == SCORING["rlcomm"]["warmup_samples"]
    for name in settings["datasets"]:
        n = sum(r["source_dataset"] == name for r in ref)
        assert 0 < n <= settings["max_samples"]
    for r in ref:
        assert r["reference_a_think"].strip()
        assert r["reference_origin"] == ("generated" if r["has_audio"] else "no_audio")
        assert np.linalg.norm(r["reference_embedding"]) == pytest.approx(1.0, abs=1e-4)
        assert r["prompt"].startswith(r["question"]) and "<a-think>" in r["prompt"]
        assert r["answer"] in r["options"] and len(r["options"]) >= 2  # closed answers only
    shape = re.compile(r"^<a-think>.+</a-think> <v-think>.+</v-think> <answer>(.+)</answer>$", re.S)
    for w in warmup:
        m = shape.match(w["response"])
        assert m and m.group(1) == w["answer"]
    # Round robin: the warm-up draws from both datasets.
    assert {w["task"] for w in warmup} == {"MUSIC-AVQA", "AVQA"}


def test_score_jobs_logged(tiny_run):
    logs = tiny_run / "logs"
    assert sorted(p.name for p in (logs / "models").glob("*.log")) == sorted(
        f"{m}.log" for m in CONFIG["models"]
    )
    assert "pairs" in (logs / "score" / "pairs" / "0.log").read_text()
    assert "with V'/A'" in (logs / "score" / "counterfactual" / "0.log").read_text()


def test_scoring_jobs_depend_on_shards_not_samples(tmp_path):
    def edit(shards, factor):
        def apply(config):
            config["scoring"]["shards"] = shards
            scale_samples(config, factor)

        return apply

    small = planned_with(tmp_path, "a.yaml", edit(1, 1))
    huge = planned_with(tmp_path, "b.yaml", edit(1, 1000))
    three = planned_with(tmp_path, "c.yaml", edit(3, 1))
    assert small == huge
    assert small["prepare_model"] == 4 and small["split_samples"] == 1
    assert three["score_pairs"] == 3 and three["reference_reasoning"] == 3
    assert three["counterfactual_media"] == 3


def test_rlcomm_data_comes_from_the_training_annotations_not_the_benchmarks(tmp_path):
    proc = run_snakemake(tmp_path, "-n", "results/score/rlcomm/reference.parquet")
    jobs = planned_jobs(proc.stdout)
    by_rule = {}
    for j in jobs:
        by_rule.setdefault(j["rule"], []).append(j)
    questions = by_rule["rlcomm_questions"][0]["input"]
    raw = {f"resources/raw/{n}" for n in SCORING["rlcomm"]["questions"]["datasets"]}
    assert raw <= set(questions)  # the folders holding avqa-train.json / train_qa.json
    for rule in ("rlcomm_questions", "reference_reasoning", "rlcomm_data"):
        for j in by_rule[rule]:
            assert not [p for p in j["input"] if p.startswith("results/bench/")], j
            assert f"{SCORE_DIR}/split.parquet" not in j["input"]
    # Nothing of the benchmarks is built for it: no task is planned, no split drawn.
    assert not {"plan_task", "build_questions", "split_samples"} & set(by_rule)


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda c: c["scoring"].update(trian_fraction=0.5), "trian_fraction"),
        (lambda c: c["scoring"]["cavpref"]["eta"].update(MVTT=1.0), "MVTT"),
        (lambda c: c["models"]["clap"].update(adapter="clip"), "clip"),
        (lambda c: c["models"]["clap"].update(locaton="x"), "locaton"),
        (lambda c: c["scoring"].update(clap_model="clapp"), "clapp"),
        (lambda c: c["scoring"].update(clap_model="omni"), "scoring.clap_model"),
        (lambda c: c["scoring"]["rlcomm"].update(reference_model="nope"), "reference_model"),
        (
            lambda c: c["scoring"]["rlcomm"]["questions"].update(datasets=["music_avqa", "nope"]),
            "scoring.rlcomm.questions.datasets: nope",
        ),
        (
            lambda c: c["scoring"]["rlcomm"]["questions"].update(datasets=["audioset"]),
            "scoring.rlcomm.questions.datasets: audioset",
        ),
        (
            lambda c: c["scoring"]["rlcomm"]["questions"].update(splits=["train", "val"]),
            "val_qa.json is its evaluation set",
        ),
        (lambda c: c["scoring"]["rlcomm"]["questions"].update(splits=["test"]), "test"),
    ],
    ids=[
        "typo-key",
        "unknown-task-weight",
        "unknown-adapter",
        "typo-model-key",
        "undeclared-model",
        "wrong-adapter",
        "undeclared-reference",
        "undeclared-rlcomm-dataset",
        "rlcomm-dataset-without-questions",
        "rlcomm-avqa-val",
        "rlcomm-test-split",
    ],
)
def test_score_config_errors_name_the_key(tmp_path, edit, named):
    proc = run_snakemake(
        tmp_path, "-n", config=write_config(tmp_path / "bad.yaml", edit), check=False
    )
    assert proc.returncode != 0
    assert named in proc.stdout
    assert not (tmp_path / "results").exists()
