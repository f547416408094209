"""A user's config merged into config/config.yaml says what it removes, replaces and mixes
(avtrust.overlays.resolve), and the schema accepts null and false for removable entries."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from snakemake.utils import update_config, validate

from avtrust.errors import ConfigError
from avtrust.overlays import resolve

REPO = Path(__file__).resolve().parents[2]
SCHEMA = str(REPO / "workflow" / "schemas" / "config.schema.yaml")
LOCAL_MUSIC = {"format": "music_avqa", "source": "local", "path": "/data/MUSIC-AVQA/videos"}
REAL_ONLY_MUSIC = {
    "datasets": {"music_avqa": LOCAL_MUSIC, "avqa": None, "audioset": None, "sounds": None},
    "benchmark": {
        "avtrustbench": {
            t: None for t in ("MCIT", "ICIT", "MVIT", "MAIT", "COT-Stitch", "COT-Swap", "CAT")
        },
        "avconfusebench": {"m2": False},
    },
}


def merged(overlay: dict) -> dict:
    """config/config.yaml with ``overlay`` merged in, as Snakemake does, then validated."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    update_config(config, overlay)
    validate(config, SCHEMA)
    return config


def test_null_and_false_remove_datasets_tasks_and_qa_sets():
    resolved = resolve(merged(REAL_ONLY_MUSIC))
    cfg = resolved.config
    assert list(cfg["datasets"]) == ["music_avqa"]
    assert list(cfg["benchmark"]["avtrustbench"]) == ["MAT", "MVT"]
    assert list(cfg["benchmark"]["avconfusebench"]) == ["m1"]
    assert resolved.notes == [
        "datasets removed by the config: avqa, audioset, sounds",
        "benchmark.avtrustbench: generated tasks removed: MCIT, ICIT, MVIT, MAIT, "
        "COT-Stitch, COT-Swap, CAT",
        "benchmark.avconfusebench: generated tasks removed: m2",
        "QA sets left out with their removed datasets: avqa",
        "RL-CoMM training questions left out with their removed datasets: avqa",
    ]
    assert cfg["scoring"]["rlcomm"]["questions"]["datasets"] == ["music_avqa"]


def test_an_import_entry_replaces_the_generated_task_of_its_name():
    entry = {"json": "/data/m1.json", "media": "/data/m1"}
    overlay = {"benchmark": {"import": {"avconfusebench": {"m1": entry, "m2": entry}}}}
    resolved = resolve(merged(overlay))
    assert resolved.config["benchmark"]["avconfusebench"] == {}
    assert resolved.config["benchmark"]["import"]["avconfusebench"] == {"m1": entry, "m2": entry}
    assert "benchmark.import.avconfusebench replaces the generated m1, m2" in resolved.notes


def test_a_whole_benchmark_section_and_an_import_entry_can_be_removed():
    entry = {"json": "/data/MAT.json", "media": "/data/music"}
    overlay = {
        "benchmark": {
            "avtrustbench": None,
            "import": {"avtrustbench": {"MAT": entry, "MVT": None}},
        }
    }
    resolved = resolve(merged(overlay))
    assert resolved.config["benchmark"]["avtrustbench"] == {}
    assert resolved.config["benchmark"]["import"]["avtrustbench"] == {"MAT": entry}


def test_mixing_synthetic_and_real_sources_is_an_error_naming_them():
    with pytest.raises(ConfigError) as info:
        resolve(merged({"datasets": {"music_avqa": LOCAL_MUSIC}}))
    message = str(info.value)
    assert "avtrustbench mixes synthetic (avqa, audioset) and real (music_avqa)" in message
    assert "avconfusebench mixes synthetic (sounds) and real (music_avqa)" in message
    assert "evaluation.qa_sets mixes synthetic (avqa) and real (music_avqa)" in message
    assert "benchmark.allow_mixed_sources: true" in message


def test_mixing_allowed_is_stated():
    overlay = {"datasets": {"music_avqa": LOCAL_MUSIC}, "benchmark": {"allow_mixed_sources": True}}
    resolved = resolve(merged(overlay))
    assert resolved.config["datasets"]["avqa"]["source"] == "synthetic"
    assert (
        "avconfusebench mixes synthetic (sounds) and real (music_avqa) sources "
        "(benchmark.allow_mixed_sources: true)"
    ) in resolved.notes


def test_official_files_next_to_generated_synthetic_tasks_are_a_mix():
    entry = {"json": "/data/MAT.json", "media": "/data/music"}
    with pytest.raises(ConfigError, match=r"avtrustbench mixes synthetic \(avqa, audioset, "):
        resolve(merged({"benchmark": {"import": {"avtrustbench": {"MAT": entry}}}}))


def test_scenes_composed_from_synthetic_solos_are_synthetic():
    scenes = {"format": "music_avqa", "source": "compose", "from": "music_avqa", "scenes": 4}
    overlay = {
        "datasets": {"scenes": scenes},
        "benchmark": {"avconfusebench": {"m1": {"samples": 4, "dataset": "scenes"}}},
    }
    assert resolve(merged(overlay)).notes == []


def test_a_task_drawing_from_a_removed_dataset_is_an_error_naming_both():
    overlay = {"datasets": {"avqa": None}, "evaluation": {"qa_sets": {"avqa": None}}}
    with pytest.raises(ConfigError) as info:
        resolve(merged(overlay))
    message = str(info.value)
    for task in ("MCIT", "ICIT", "MVIT", "MAIT"):
        assert f"benchmark.avtrustbench.{task}.dataset = avqa" in message
    assert "that dataset is removed (set to null)" in message


@pytest.mark.parametrize(
    ("overlay", "named"),
    [
        ({"benchmark": {"avtrustbench": True}}, "should not be valid"),
        ({"benchmark": {"avconfusebench": {"m1": True}}}, "True is not one of"),
        ({"benchmark": {"avtrustbench": {"MAT": {"sampels": 4}}}}, "'sampels' was unexpected"),
        ({"datasets": {"avqa": "off"}}, "'off' is not one of"),
        ({"evaluation": {"models": {"dpo": True}}}, "should not be valid"),
    ],
)
def test_the_schema_still_refuses_what_is_not_a_removal(overlay, named):
    with pytest.raises(Exception, match=named):  # snakemake's WorkflowError
        merged(overlay)


def test_null_and_false_remove_evaluation_models_and_say_so():
    overlay = {"evaluation": {"models": {"cavpref_fixed_beta": None, "cavpref_no_av": False}}}
    resolved = resolve(merged(overlay))
    models = resolved.config["evaluation"]["models"]
    assert "cavpref_fixed_beta" not in models and "cavpref_no_av" not in models
    assert models["cavpref"] == {"checkpoint": "cavpref"}
    assert resolved.notes == ["evaluation.models removed: cavpref_no_av, cavpref_fixed_beta"]


def test_the_config_given_is_not_changed():
    config = merged(REAL_ONLY_MUSIC)
    resolve(config)
    assert config["datasets"]["avqa"] is None
