"""The thinker's vision tower pre-training: the corpus's silent copies and the questions
asked of them, the tower's own job (it learns which instruments are on screen, two runs
give the same tower), and the thinker's pre-training loading it."""

from __future__ import annotations

from pathlib import Path

import pytest
from pretrain_helpers import config_with, untrained_build, weights, written_corpus

from avtrust.errors import ConfigError
from avtrust.media.probe import probe
from avtrust.models.registry import load
from avtrust.pretrain import (
    corpus,
    corpus_job_config,
    model_job_config,
    vision_job_config,
    vision_tower_trained,
)
from avtrust.pretrain.stage import pretrain_model, pretrain_vision_tower
from avtrust.pretrain.vision_tower import WEIGHTS, load_tower

PRETRAIN = {
    "enabled": True,
    "seed": None,
    "threads": 1,
    "held_out_questions": 8,
    "corpus": {
        "scenes": 6,
        "solos_per_instrument": 1,
        "event_clips": 0,
        "held_out_fraction": 0.25,
        "question_rounds": 1,
    },
    "vision_tower": {"steps": 400, "batch_size": 4, "learning_rate": 1.0e-2, "warmup_steps": 2},
    "thinker": {
        "steps": 4,
        "batch_size": 4,
        "learning_rate": 2.0e-3,
        "freeze_towers": True,
        "categories": ["Visual/Existential", "Visual/Description"],
    },
}


def config(**pretrain) -> dict:
    return config_with(PRETRAIN, **pretrain)


@pytest.fixture(scope="module")
def pretrain_corpus(tmp_path_factory) -> Path:
    return written_corpus(tmp_path_factory.mktemp("vision") / "corpus", config())


@pytest.fixture(scope="module")
def untrained(tmp_path_factory) -> Path:
    return untrained_build(tmp_path_factory.mktemp("untrained") / "omni", "omni")


@pytest.fixture(scope="module")
def tower(untrained, pretrain_corpus, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("tower") / "omni"
    return out, pretrain_vision_tower(untrained, pretrain_corpus, out, vision_job_config(config()))


def test_every_scene_and_solo_has_a_silent_copy_of_its_picture(pretrain_corpus):
    scenes = corpus.scenes(pretrain_corpus)
    shown = {
        **corpus.on_screen(pretrain_corpus, "train"),
        **corpus.on_screen(pretrain_corpus, "held_out"),
    }
    assert len(shown) == len(scenes) > 6  # scenes and solos
    for entry in scenes:
        clip = corpus.silent_clip(pretrain_corpus, entry["video_id"])
        natural = probe(pretrain_corpus / "videos" / f"{entry['video_id']}.mp4")
        silent = probe(clip)
        assert natural.has_audio and not silent.has_audio
        assert (silent.video_codec, silent.width, silent.height) == (
            natural.video_codec,
            natural.width,
            natural.height,
        )
        assert shown[str(clip)] == entry["instruments"]


def test_visual_questions_ask_every_instrument_of_every_silent_clip(pretrain_corpus):
    asked = corpus.visual_questions(pretrain_corpus, "train")
    shown = corpus.on_screen(pretrain_corpus, "train")
    names = {n for entry in corpus.scenes(pretrain_corpus) for n in entry["instruments"]}
    assert len(asked) == len(shown) * len(names)
    for q in asked:
        name = q["question"].removeprefix("Is there a ").removesuffix(" in the video?")
        assert name in names and q["category"] == "Visual/Existential"
        assert q["options"][q["answer_index"]] == (
            "yes" if name in shown[q["media_path"]] else "no"
        )
    assert {q["answer_index"] for q in asked} == {0, 1}
    rows = corpus.description_rows(shown)
    assert [r["media_path"] for r in rows] == list(shown)
    assert corpus.description(["violin", "cello", "violin"]) == "I see a cello and a violin."
    assert {r["response"] for r in rows} == {corpus.description(v) for v in shown.values()}


def test_on_screen_questions_take_any_wording_and_category():
    shown = {"a/scene_1.mp4": ["cello", "flute"], "a/solo_2.mp4": ["violin"]}
    asked = corpus.ask_on_screen(
        shown, ["cello", "violin"], "Is there a {} sound?", "Audio/Existential"
    )
    assert [(q["video_id"], q["question"], q["answer_index"]) for q in asked] == [
        ("scene_1", "Is there a cello sound?", 0),
        ("scene_1", "Is there a violin sound?", 1),
        ("solo_2", "Is there a cello sound?", 1),
        ("solo_2", "Is there a violin sound?", 0),
    ]
    assert {q["category"] for q in asked} == {"Audio/Existential"}
    assert corpus.ask_on_screen(shown, []) == []


def test_a_corpus_without_silent_copies_is_named(untrained, pretrain_corpus, tmp_path):
    """A corpus written before the silent copies were still trains a thinker on the
    natural clips' questions; a phase on the silent clips' rows names what is missing."""
    import shutil

    old = tmp_path / "corpus"
    shutil.copytree(pretrain_corpus, old)
    shutil.rmtree(old / corpus.SILENT)
    with pytest.raises(FileNotFoundError, match="no silent copy .* delete the corpus"):
        corpus.visual_questions(old, "train")
    natural = {**PRETRAIN["thinker"], "steps": 1, "categories": ["Audio-Visual/Existential"]}
    job = model_job_config(config(thinker=natural), "omni")
    assert pretrain_model(untrained, old, tmp_path / "a", job)["steps"] == 1
    with pytest.raises(FileNotFoundError, match="no silent copy"):
        pretrain_model(untrained, old, tmp_path / "b", model_job_config(config(), "omni"))


def test_the_tower_learns_what_is_on_screen_and_is_deterministic(
    untrained, pretrain_corpus, tower, tmp_path
):
    import torch

    out, summary = tower
    assert summary["steps"] == 400 and len(summary["losses"]) == 400
    assert summary["loss_last"] < 0.6 * summary["loss_first"]
    assert summary["train_exact"] > 0.5 and summary["held_out_clips"] > 0
    again = pretrain_vision_tower(
        untrained, pretrain_corpus, tmp_path / "b", vision_job_config(config())
    )
    assert again["losses"] == summary["losses"]
    first, second = weights(out), weights(tmp_path / "b")
    assert first.keys() == second.keys() and all(k.startswith("model.visual.") for k in first)
    assert all(torch.equal(first[k], second[k]) for k in first)
    # only the tower is written, and it is not the build's
    built = load(untrained).model.state_dict()
    assert set(first) == {k for k in built if k.startswith("model.visual.")}
    assert any(not torch.equal(first[k], built[k]) for k in first)


def test_the_thinker_loads_the_tower_and_learns_to_read_it(
    untrained, pretrain_corpus, tower, tmp_path
):
    import torch

    out, _ = tower
    job = model_job_config(config(), "omni")
    summary = pretrain_model(untrained, pretrain_corpus, tmp_path / "omni", job, vision_dir=out)
    assert summary["vision_tower"] == {"folder": str(out), "parts": ["vision_tower"]}
    assert 0.0 <= summary["held_out_visual_accuracy"] <= 1.0
    # the rows: the visual questions and the descriptions, on silent clips only
    assert summary["phases"][0]["rows"] == len(
        corpus.instruction_rows(corpus.visual_questions(pretrain_corpus, "train"))
    ) + len(corpus.description_rows(corpus.on_screen(pretrain_corpus, "train")))
    trained = load(tmp_path / "omni").model.state_dict()
    tower_weights = weights(out)
    # frozen towers: the thinker's vision tower is the pre-trained one, unchanged
    assert all(torch.equal(trained[k], tower_weights[k]) for k in tower_weights)


def test_a_tower_of_other_dimensions_is_refused(untrained, tower, tmp_path):
    from safetensors.torch import load_file, save_file

    out, _ = tower
    state = load_file(str(out / WEIGHTS))
    name = next(iter(state))
    state[name] = state[name][..., :1].clone()
    bad = tmp_path / "bad"
    bad.mkdir()
    save_file(state, str(bad / WEIGHTS))
    thinker = load(untrained).model
    with pytest.raises(ConfigError, match="built with other dimensions"):
        load_tower(thinker, bad)
    save_file(
        {k: v for k, v in load_file(str(out / WEIGHTS)).items() if k != name}, str(bad / WEIGHTS)
    )
    with pytest.raises(ConfigError, match="missing"):
        load_tower(thinker, bad)
    assert load_tower(thinker, out) == ["vision_tower"]


def test_the_vision_job_reads_its_own_settings_and_only_the_thinker_loads_it():
    base = config()
    edited = config(vision_tower={**PRETRAIN["vision_tower"], "steps": 401})
    assert vision_job_config(edited) != vision_job_config(base)
    assert all(model_job_config(edited, m) == model_job_config(base, m) for m in ("omni", "clap"))
    assert corpus_job_config(edited) == corpus_job_config(base)
    assert vision_job_config(
        config(thinker={**PRETRAIN["thinker"], "steps": 9})
    ) == vision_job_config(base)
    assert vision_tower_trained(base, "omni")
    assert not vision_tower_trained(base, "audio_llm")
    assert not vision_tower_trained(config(vision_tower=None), "omni")
    assert not vision_tower_trained(config(models=["audio_llm"]), "omni")


def test_sight_rows_ask_each_clip_plainly_and_in_the_reference_form(pretrain_corpus):
    from avtrust.scoring.reasoning import reference_instruction

    shown = corpus.on_screen(pretrain_corpus, "train")
    asked = corpus.questions(pretrain_corpus, "train", seed=5)
    rows = corpus.sight_rows(shown, asked)
    per_video = {}
    for q in asked:
        per_video[q["video_id"]] = per_video.get(q["video_id"], 0) + 1
    assert len(rows) == 2 * sum(per_video.get(Path(c).stem, 0) for c in shown) > 0
    assert {r["media_path"] for r in rows} <= set(shown)
    for r in rows:  # silent clips only, answered with what they show
        assert r["response"] == corpus.description(shown[r["media_path"]])
        assert r["category"] == corpus.DESCRIBE_CATEGORY
    first = next(q for q in asked if corpus.silent_clip(pretrain_corpus, q["video_id"]).is_file())
    of_first = [r["prompt"] for r in rows if Path(r["media_path"]).stem == first["video_id"]]
    right = first["options"][first["answer_index"]]
    assert of_first[0] == reference_instruction(first["question"], right)
    assert of_first[1] == corpus.SIGHT_WORDINGS[0]
    plain = set(of_first[1::2])
    assert plain <= set(corpus.SIGHT_WORDINGS) and len(plain) == min(3, len(of_first) // 2)


def test_preambles_come_before_a_share_of_the_questions():
    qs = [{"question": f"Is the cello {k} making sound?", "category": "c"} for k in range(40)]
    once = corpus.with_preambles(qs, 0.5, seed=1)
    assert len(once) == 20 and once == corpus.with_preambles(qs, 0.5, seed=1)
    for q in once:
        preamble, question = q["question"].split(" Is the", 1)
        assert preamble in corpus.PREAMBLES and {**q, "question": "Is the" + question} in qs
    assert len({q["question"].split(" Is the")[0] for q in once}) > 1
    assert corpus.with_preambles(qs, 0.0, seed=1) == []


ALIGN = {"steps": 80, "batch_size": 4, "learning_rate": 5.0e-3, "warmup_steps": 2}


@pytest.fixture(scope="module")
def aligned(untrained, pretrain_corpus, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("aligned") / "omni"
    section = {**PRETRAIN["vision_tower"], "steps": 40, "align": ALIGN}
    job = vision_job_config(config(vision_tower=section))
    return out, pretrain_vision_tower(untrained, pretrain_corpus, out, job)


def test_the_aligned_vision_job_teaches_the_language_model_and_writes_it(untrained, aligned):
    import torch

    out, summary = aligned
    taught = summary["align"]
    assert taught["steps"] == 80 and taught["rows"] > 0
    assert taught["loss_last"] < 0.5 * taught["loss_first"]
    assert 0.0 <= taught["held_out_described"] <= 1.0
    written = weights(out)
    built = load(untrained).model.state_dict()
    # the tower and the language model, never the audio encoder (the audio LLM's comes in)
    assert set(written) == {k for k in built if not k.startswith("model.audio_tower.")}
    for name in ("model.language_model.embed_tokens.weight", "model.visual.merger.mlp.0.weight"):
        assert not torch.equal(written[name], built[name]), name


def test_the_thinker_keeps_the_aligned_language_model_and_takes_the_audio_encoder(
    untrained, pretrain_corpus, aligned, tmp_path
):
    import torch

    out, _ = aligned
    audio_dir = untrained_build(tmp_path / "audio_llm", "audio_llm")
    thinker = {
        **PRETRAIN["thinker"],
        "steps": 2,
        "categories": ["Audio-Visual/Existential"],
        "start_from": "audio_llm",
        "start_parts": ["audio_tower"],
    }
    job = model_job_config(config(thinker=thinker), "omni")
    summary = pretrain_model(
        untrained, pretrain_corpus, tmp_path / "omni", job, start_dir=audio_dir, vision_dir=out
    )
    assert summary["vision_tower"]["parts"] == ["vision_tower", "language_model"]
    assert summary["started_from"]["parts"] == ["audio_tower"]
    trained = load(tmp_path / "omni").model.state_dict()
    written, source = weights(out), load(audio_dir).model.state_dict()
    # frozen towers: the vision tower is the aligned one, the audio encoder the audio LLM's
    assert torch.equal(
        trained["model.visual.merger.mlp.0.weight"], written["model.visual.merger.mlp.0.weight"]
    )
    assert torch.equal(
        trained["model.audio_tower.layers.0.fc1.weight"],
        source["model.audio_tower.layers.0.fc1.weight"],
    )
    # the language model went on from the aligned one (2 steps moved it a little)
    name = "model.language_model.layers.0.mlp.up_proj.weight"
    assert (trained[name] - written[name]).abs().max() < (trained[name] - source[name]).abs().max()
    both = model_job_config(
        config(thinker={**thinker, "start_parts": ["language_model", "audio_tower"]}), "omni"
    )
    with pytest.raises(ConfigError, match="set pretrain.thinker.start_parts to \\[audio_tower\\]"):
        pretrain_model(
            untrained, pretrain_corpus, tmp_path / "b", both, start_dir=audio_dir, vision_dir=out
        )


def test_an_aligned_vision_job_with_the_whole_audio_llm_is_refused_when_the_dag_is_built():
    from avtrust.pretrain import start_model

    section = {**PRETRAIN["vision_tower"], "align": ALIGN}
    thinker = {**PRETRAIN["thinker"], "start_from": "audio_llm"}
    with pytest.raises(ValueError, match="start_parts \\['language_model', 'audio_tower'\\]"):
        start_model(config(vision_tower=section, thinker=thinker), "omni")
    fine = {**thinker, "start_parts": ["audio_tower"]}
    assert start_model(config(vision_tower=section, thinker=fine), "omni") == "audio_llm"
    assert start_model(config(vision_tower=None, thinker=thinker), "omni") == "audio_llm"
