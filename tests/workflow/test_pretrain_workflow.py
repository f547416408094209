"""The pretrain stage in the DAG: with pretrain.enabled, the folder every later stage
loads for a tiny thinker (resources/models/<name>) is the pretrain stage's output."""

from __future__ import annotations

import pytest
from conftest import (
    job_blocks,
    job_priority,
    planned_jobs,
    planned_with,
    run_snakemake,
    write_config,
)

pytestmark = pytest.mark.workflow


def enable(config):
    config["pretrain"] = {
        "enabled": True,
        "models": ["omni"],
        "corpus": {
            "scenes": 2,
            "solos_per_instrument": 0,
            "event_clips": 2,
            "held_out_fraction": 0.5,
        },
        "thinker": {"steps": 2, "batch_size": 2, "learning_rate": 1.0e-3},
    }


def test_later_stages_load_the_pretrained_thinker(tmp_path):
    on = planned_with(tmp_path, "on.yaml", enable)
    off = planned_with(tmp_path, "off.yaml", lambda c: None)
    # omni, the one chosen in pretrain.models: built untrained, then trained.
    assert on["pretrain_corpus"] == 1
    assert on["prepare_untrained_model"] == 1
    assert on["pretrain_model"] == 1
    assert on["prepare_model"] == off["prepare_model"] - 1 == 3
    assert not {"pretrain_corpus", "prepare_untrained_model", "pretrain_model"} & set(off)
    # Everything downstream of the models is planned as before, now after pre-training.
    same = {k: v for k, v in off.items() if k not in ("prepare_model", "all")}
    assert {k: on[k] for k in same} == same


def test_without_a_choice_every_tiny_model_with_a_pretraining_is_pretrained(tmp_path):
    def enable_all(config):
        enable(config)
        config["pretrain"]["models"] = None

    on = planned_with(tmp_path, "all.yaml", enable_all)
    # every tiny model (omni, the audio LLM, CLAP, the embedder) has a pre-training
    assert on["prepare_untrained_model"] == on["pretrain_model"] == 4
    assert on.get("prepare_model", 0) == 0


def test_the_thinkers_model_folder_is_the_pretrain_stages_output(tmp_path):
    config = write_config(tmp_path / "on.yaml", enable)
    proc = run_snakemake(tmp_path, "-n", "resources/models/omni", config=config)
    assert planned_jobs(proc) == {
        "pretrain_corpus": 1,
        "decode_pretrain_clips": 1,  # the thinker's jobs read the corpus decoded once
        "prepare_untrained_model": 1,
        "pretrain_model": 1,
    }
    # A model not chosen for pre-training (CLAP) is still the models stage's.
    proc = run_snakemake(tmp_path, "-n", "resources/models/clap", config=config)
    assert planned_jobs(proc) == {"prepare_model": 1}


def test_the_stage_runs_and_writes_a_loadable_trained_folder(tmp_path):
    import json

    from avtrust.models.registry import read_manifest

    config = write_config(tmp_path / "on.yaml", enable)
    run_snakemake(tmp_path, "--cores", "1", "resources/models/omni", config=config)
    manifest = read_manifest(tmp_path / "resources/models/omni")
    summary = json.loads((tmp_path / "results/pretrain/omni.json").read_text())
    assert manifest["adapter"] == "qwen2_5_omni_thinker"
    assert manifest["pretrained"]["steps"] == summary["steps"] == 2
    assert len(summary["losses"]) == 2
    assert (tmp_path / "logs/pretrain/omni.log").is_file()
    assert (tmp_path / "resources/pretrain/decoded/omni/index.parquet").is_file()

    # How many ffmpeg processes write and decode the corpus changes no file: an edit
    # reruns nothing.
    def more_workers(config):
        enable(config)
        config["pretrain"]["media_workers"] = 3

    edited = write_config(tmp_path / "workers.yaml", more_workers)
    proc = run_snakemake(tmp_path, "-n", "resources/models/omni", config=edited)
    assert planned_jobs(proc) == {}
    videos = list((tmp_path / "resources/pretrain/corpus/videos").glob("*.mp4"))
    assert videos and all(v.name.startswith("pretrain_") for v in videos)


def test_a_thinker_started_from_the_audio_llm_is_trained_after_it(tmp_path):
    def start_from(config, models):
        enable(config)
        config["pretrain"]["models"] = models
        config["pretrain"]["thinker"]["start_from"] = "audio_llm"

    both = write_config(tmp_path / "both.yaml", lambda c: start_from(c, ["omni", "audio_llm"]))
    proc = run_snakemake(tmp_path, "-n", "resources/models/omni", config=both)
    assert planned_jobs(proc) == {
        "pretrain_corpus": 1,
        "decode_pretrain_clips": 1,
        "prepare_untrained_model": 2,
        "pretrain_model": 2,  # the audio LLM's first: the thinker's job reads its folder
    }
    # an audio LLM left out of the pre-training is the models stage's (random) build
    alone = write_config(tmp_path / "alone.yaml", lambda c: start_from(c, ["omni"]))
    proc = run_snakemake(tmp_path, "-n", "resources/models/omni", config=alone)
    assert planned_jobs(proc) == {
        "pretrain_corpus": 1,
        "decode_pretrain_clips": 1,
        "prepare_untrained_model": 1,
        "pretrain_model": 1,
        "prepare_model": 1,
    }


def test_a_thinker_with_a_vision_tower_is_trained_after_it(tmp_path):
    import json

    def with_tower(config):
        enable(config)
        config["pretrain"]["vision_tower"] = {"steps": 2, "batch_size": 1, "learning_rate": 1e-3}

    config = write_config(tmp_path / "tower.yaml", with_tower)
    proc = run_snakemake(tmp_path, "-n", "resources/models/omni", config=config)
    assert planned_jobs(proc) == {
        "pretrain_corpus": 1,
        "decode_pretrain_clips": 1,
        "prepare_untrained_model": 1,
        "pretrain_vision_tower": 1,
        "pretrain_model": 1,
    }
    run_snakemake(tmp_path, "--cores", "1", "resources/models/omni", config=config)
    tower = json.loads((tmp_path / "results/pretrain/omni_vision_tower.json").read_text())
    summary = json.loads((tmp_path / "results/pretrain/omni.json").read_text())
    assert tower["steps"] == 2 and (tmp_path / "logs/pretrain/omni_vision_tower.log").is_file()
    assert summary["vision_tower"] == {
        "folder": "resources/pretrain/vision_tower/omni",
        "parts": ["vision_tower"],
    }

    # the vision tower's settings are its job's alone: editing them retrains the tower
    # and, through its output, the thinker; the corpus stays
    def longer(config):
        with_tower(config)
        config["pretrain"]["vision_tower"]["steps"] = 3

    edited = write_config(tmp_path / "longer.yaml", longer)
    proc = run_snakemake(tmp_path, "-n", "resources/models/omni", config=edited)
    assert planned_jobs(proc) == {"pretrain_vision_tower": 1, "pretrain_model": 1}


def test_the_thinkers_chain_runs_first(tmp_path):
    """On a busy machine the scheduler takes the corpus, the thinker and the model it
    starts from before CLAP and the embedder, which only the score stage reads."""

    def all_models(config):
        enable(config)
        config["pretrain"]["models"] = None
        config["pretrain"]["thinker"]["start_from"] = "audio_llm"

    config = write_config(tmp_path / "all.yaml", all_models)
    proc = run_snakemake(tmp_path, "-n", config=config)
    priority = {
        job: job_priority(block)
        for job, block in job_blocks(proc, "model")
        if job.startswith("pretrain_")
    }
    assert priority == {
        "pretrain_corpus": 50,
        "pretrain_model:omni": 50,
        "pretrain_model:audio_llm": 50,
        "pretrain_model:clap": 0,
        "pretrain_model:embedder": 0,
    }


def test_the_default_thinker_learns_to_see_first_and_the_hearing_overlay_does_not(tmp_path):
    """config/config.yaml: the aligned vision job, then the thinker after it and the
    audio LLM, which both read the decode job's cache; the vision job, the longest of
    them, starts first when one core is free. config/hearing_thinker.yaml plans no
    vision job. With the audio LLM's whole model taken too, the run stops before any
    job, naming the key to set."""
    import re
    import shutil

    import yaml
    from conftest import REPO

    (tmp_path / "config").mkdir()
    default = tmp_path / "config" / "config.yaml"
    shutil.copy(REPO / "config" / "config.yaml", default)
    proc = run_snakemake(tmp_path, "-n", "resources/models/omni", config=default)
    assert planned_jobs(proc) == {
        "pretrain_corpus": 1,
        "decode_pretrain_clips": 1,
        "prepare_untrained_model": 2,
        "pretrain_vision_tower": 1,
        "pretrain_model": 2,
    }
    blocks = dict(job_blocks(proc, "model"))
    decoded = "resources/pretrain/decoded/omni/index.parquet"
    for job in ("pretrain_vision_tower:omni", "pretrain_model:omni", "pretrain_model:audio_llm"):
        assert decoded in re.search(r"input: (.*)", blocks[job]).group(1), job

    vision, audio_llm = blocks["pretrain_vision_tower:omni"], blocks["pretrain_model:audio_llm"]
    assert job_priority(vision) > job_priority(audio_llm) > 0
    hearing = REPO / "config" / "hearing_thinker.yaml"
    proc = run_snakemake(tmp_path, "-n", "resources/models/omni", config=hearing)
    assert planned_jobs(proc) == {
        "pretrain_corpus": 1,
        "decode_pretrain_clips": 1,
        "prepare_untrained_model": 2,
        "pretrain_model": 2,
    }
    bad = tmp_path / "bad.yaml"
    wrong = {"pretrain": {"thinker": {"start_parts": ["language_model", "audio_tower"]}}}
    bad.write_text(yaml.safe_dump(wrong))
    proc = run_snakemake(tmp_path, "-n", "resources/models/omni", config=bad, check=False)
    assert proc.returncode != 0
    assert "set start_parts to [audio_tower]" in proc.stdout
