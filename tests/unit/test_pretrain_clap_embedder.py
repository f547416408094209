"""Contrastive pre-training of the tiny CLAP and Qwen3-Embedding: each lowers its loss,
two runs give identical weights, and the saved folder loads through the registry with
embeddings that match what they were trained to match better than the untrained ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pretrain_helpers import config_with, untrained_build, weights, written_corpus

from avtrust.bench.samples import derive_seed
from avtrust.models.registry import load, read_manifest
from avtrust.pretrain import (
    clap,
    embedder,
    model_job_config,
    pretrain_seed,
    pretrained_models,
)
from avtrust.pretrain.stage import decode_corpus, pretrain_model
from avtrust.pretrain.thinker import spread

PRETRAIN = {
    "enabled": True,
    "seed": None,
    "threads": 1,
    "held_out_questions": 0,
    "corpus": {
        "scenes": 8,
        "solos_per_instrument": 1,
        "event_clips": 8,
        "held_out_fraction": 0.25,
    },
    "clap": {"steps": 48, "batch_size": 8, "learning_rate": 5.0e-3, "warmup_steps": 2},
    "embedder": {
        "steps": 30,
        "batch_size": 16,
        "learning_rate": 3.0e-3,
        "warmup_steps": 2,
        "held_out_contents": 16,
    },
}


def config(**pretrain) -> dict:
    return config_with(PRETRAIN, **pretrain)


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory) -> Path:
    return written_corpus(tmp_path_factory.mktemp("pretrain") / "corpus", config())


def untrained(tmp_path: Path, name: str) -> Path:
    return untrained_build(tmp_path / "untrained" / name, name)


def assert_trained_deterministically(before: Path, a: Path, b: Path) -> None:
    import torch

    first, again, init = weights(a), weights(b), weights(before)
    assert first.keys() == again.keys() == init.keys()
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert any(not torch.equal(first[k], init[k]) for k in first)


def own_caption_wins(folder: Path, items: list[dict]) -> float:
    """Share of (clip, other scene's caption) pairs where the clip's own canonical caption
    is closer to its soundtrack, with the adapter scoring uses."""
    model = load(folder)
    captions = [clap.canonical_caption(it["sounds"]) for it in items]
    audio = np.stack(model.embed_audio_files([it["media_path"] for it in items]))
    cos = audio @ model.embed_text(captions).T
    wins = [
        cos[i, i] > cos[i, j]
        for i in range(len(items))
        for j in range(len(items))
        if captions[j] != captions[i]
    ]
    return float(np.mean(wins))


def test_every_tiny_model_with_a_pretraining_is_chosen_unless_named():
    assert pretrained_models(config()) == ["omni", "audio_llm", "clap", "embedder"]
    assert pretrained_models(config(models=["embedder", "clap"])) == ["clap", "embedder"]
    with_endpoint = config(models=["judge"])
    with_endpoint["models"] = {**with_endpoint["models"], "judge": {"adapter": "openai_http"}}
    with pytest.raises(ValueError, match="judge"):  # an endpoint has no pre-training
        pretrained_models(with_endpoint)
    with pytest.raises(ValueError, match="clapp"):
        pretrained_models(config(models=["clapp"]))


def test_a_named_model_that_is_a_real_checkpoint_is_not_pretrained():
    # An overlay that points CLAP at the Hub keeps the default's `pretrain.models`.
    settings = config(models=["clap", "embedder"])
    hub_clap = {"adapter": "clap", "source": "hub", "location": "laion/clap-htsat-unfused"}
    settings["models"] = {**settings["models"], "clap": hub_clap}
    assert pretrained_models(settings) == ["embedder"]


def test_captions_name_the_instruments_in_every_wording():
    for wording in clap.wordings():
        text = clap.caption(["violin", "piano"], wording)
        assert "violin" in text and "piano" in text, wording
    assert clap.caption(["violin", "piano"], "visual") == "A video showing violin and piano."
    assert clap.canonical_caption(["violin", "cello"]) == clap.canonical_caption(
        ["cello", "violin"]
    )


def test_event_clips_are_captioned_by_their_source_and_labels(small_corpus):
    import numpy as np

    parts = clap.clips(small_corpus)
    kinds = {it["kind"] for part in parts.values() for it in part}
    assert kinds == {"music", "event"}
    dog = {"sounds": ["dog"], "labels": ["A dog barks", "Dog"], "kind": "event"}
    rng = np.random.default_rng(0)
    drawn = {clap.draw_caption(dog, rng) for _ in range(200)}
    assert all("dog" in text.lower() for text in drawn)
    # the score stage's own caption of such a clip is among them, and no music wording
    assert "A video showing A dog barks and Dog." in drawn
    assert "a dog barks" in drawn and "the sound of a dog" in drawn
    assert not any("playing" in text or "music" in text for text in drawn)


def test_clap_pretraining_matches_clips_to_their_captions(small_corpus, tmp_path, monkeypatch):
    """Two trainings give the same weights, the second hearing the soundtracks the
    thinker's decode job cached (16 kHz, resampled to CLAP's 48 as read_audio does)
    instead of decoding any clip itself."""
    from avtrust.models import media

    init = untrained(tmp_path, "clap")
    job = model_job_config(config(), "clap")
    first = pretrain_model(init, small_corpus, tmp_path / "a", job)
    decode_corpus(untrained(tmp_path, "omni"), small_corpus, tmp_path / "decoded")

    def refuse(path, sample_rate):
        raise AssertionError(f"{path} decoded again")

    monkeypatch.setattr(media, "read_audio", refuse)
    again = pretrain_model(
        init, small_corpus, tmp_path / "b", job, decoded_dir=tmp_path / "decoded"
    )
    monkeypatch.undo()
    assert first["steps"] == 48
    assert first["loss_last"] < 0.9 * first["loss_first"]
    assert first["losses"] == again["losses"]
    assert_trained_deterministically(init, tmp_path / "a", tmp_path / "b")
    manifest = read_manifest(tmp_path / "a")
    assert manifest["adapter"] == "clap" and manifest["pretrained"]["steps"] == 48
    held_out = first["held_out"]
    assert held_out["clips"] >= 2 and 0.0 <= held_out["top1"] <= 1.0
    # Through the scoring adapter: a training clip's own caption beats another scene's
    # more often than with the random weights.
    items = clap.clips(small_corpus)["train"]
    assert own_caption_wins(tmp_path / "a", items) > own_caption_wins(init, items) + 0.1


def test_clap_trains_and_is_scored_on_at_most_max_clips(small_corpus, tmp_path):
    """``max_clips`` keeps that many training and held-out clips, spread over each part
    (the event clips listed after the scenes keep a share)."""
    init = untrained(tmp_path, "clap")
    parts = clap.clips(small_corpus)
    limit = 4
    assert len(parts["train"]) > limit and len(parts["held_out"]) > 2
    section = {**PRETRAIN["clap"], "steps": 2, "max_clips": limit}
    summary = pretrain_model(
        init, small_corpus, tmp_path / "a", model_job_config(config(clap=section), "clap")
    )
    assert summary["clips"] == limit
    assert summary["held_out"]["clips"] == min(limit, len(parts["held_out"]))
    kinds = {it["kind"] for it in spread(parts["train"], limit)}
    assert kinds == {"music", "event"}


def test_embedder_pretraining_separates_paraphrases_from_other_contents(small_corpus, tmp_path):
    init = untrained(tmp_path, "embedder")
    job = model_job_config(config(), "embedder")
    first = pretrain_model(init, small_corpus, tmp_path / "a", job)
    again = pretrain_model(init, small_corpus, tmp_path / "b", job)
    assert first["steps"] == 30
    assert first["loss_last"] < 0.5 * first["loss_first"]
    assert first["losses"] == again["losses"]
    assert_trained_deterministically(init, tmp_path / "a", tmp_path / "b")
    # The saved folder is the build's layout and loads through the registry; on contents
    # never trained on, a paraphrase is retrieved above chance and is closer than others.
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(
        p.name for p in init.iterdir()
    )
    seed = derive_seed(pretrain_seed(config()), "model", "embedder")  # the stage's
    held_out = embedder.contents(seed, 16)["held_out"]
    after = embedder.paraphrase_figures(load(tmp_path / "a"), held_out, seed)
    before = embedder.paraphrase_figures(load(init), held_out, seed)
    assert after["top1"] > max(before["top1"], 2 * after["chance"])
    assert after["positive_cos"] - after["negative_cos"] > (
        before["positive_cos"] - before["negative_cos"] + 0.2
    )
    assert first["held_out"]["top1"] > first["held_out"]["chance"]
