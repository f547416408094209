"""Pre-training of the tiny Qwen2-Audio: the loss is the response's alone (prompt and
padding masked, the closing <|im_end|> learnt), inputs are the official processor's, the
loss falls, two runs give identical weights, the saved folder loads through the registry
and generates, and the held-out matcher counts a reply as right only for the clip's
exact instrument set."""

from __future__ import annotations

from pathlib import Path

import pytest
from pretrain_helpers import config_with, untrained_build, weights, written_corpus

from avtrust.models.registry import load, read_manifest
from avtrust.pretrain import (
    audio_llm,
    clap,
    corpus_decoder,
    model_job_config,
    pretrained_models,
)
from avtrust.pretrain.stage import decode_corpus, pretrain_model

SETTINGS = {
    "steps": 24,
    "batch_size": 4,
    "learning_rate": 1.0e-2,
    "warmup_steps": 2,
    "held_out_clips": 3,
    "max_new_tokens": 12,
}
PRETRAIN = {
    "enabled": True,
    "seed": None,
    "threads": 1,
    "held_out_questions": 0,
    "corpus": {"scenes": 6, "solos_per_instrument": 1, "event_clips": 8, "held_out_fraction": 0.25},
    "audio_llm": SETTINGS,
}


def config(**pretrain) -> dict:
    return config_with(PRETRAIN, **pretrain)


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory) -> Path:
    return written_corpus(tmp_path_factory.mktemp("pretrain") / "corpus", config())


@pytest.fixture(scope="module")
def untrained(tmp_path_factory) -> Path:
    return untrained_build(tmp_path_factory.mktemp("untrained") / "audio_llm", "audio_llm")


@pytest.fixture(scope="module")
def trained(small_corpus, untrained, tmp_path_factory) -> dict:
    """Two pre-trainings of one untrained build on one corpus."""
    root = tmp_path_factory.mktemp("trained")
    job = model_job_config(config(), "audio_llm")
    return {
        "a": (root / "a", pretrain_model(untrained, small_corpus, root / "a", job)),
        "b": (root / "b", pretrain_model(untrained, small_corpus, root / "b", job)),
    }


def test_the_audio_llm_is_a_pretrained_model_with_its_own_settings():
    assert "audio_llm" in pretrained_models(config())
    assert pretrained_models(config(models=["audio_llm"])) == ["audio_llm"]
    job = model_job_config(config(), "audio_llm")["pretrain"]
    assert job["audio_llm"] == SETTINGS and "clap" not in job
    with pytest.raises(ValueError, match="unknown key"):
        audio_llm.AudioLLMSettings.from_config({**SETTINGS, "stpes": 3})
    # it hears the soundtracks of the thinker's decode-once cache of the corpus, when
    # the thinker is pre-trained too (rule decode_pretrain_clips), as CLAP does
    assert corpus_decoder(config(), "audio_llm") == "omni"
    assert corpus_decoder(config(), "omni") == "omni"
    assert corpus_decoder(config(), "clap") == "omni"
    assert corpus_decoder(config(), "embedder") is None
    assert corpus_decoder(config(models=["audio_llm"]), "audio_llm") is None


def test_the_response_names_each_instrument_once_in_a_fixed_order():
    assert audio_llm.response(["violin", "cello"]) == "I hear a cello and a violin."
    assert audio_llm.response(["violin", "cello"]) == audio_llm.response(["cello", "violin"])
    assert audio_llm.response(["piano"]) == "I hear a piano."
    three = audio_llm.response(["xylophone", "flute", "clarinet"])
    assert three == "I hear a clarinet, a flute and a xylophone."
    assert audio_llm.response(["engine"]) == "I hear an engine."


def test_event_clips_are_asked_their_own_avqa_questions(small_corpus):
    parts = audio_llm.corpus_parts(small_corpus, config(), 5)
    for part in ("train", "held_out"):
        items, pairs = parts[part]
        events = [(it, p) for it, p in zip(items, pairs, strict=True) if it["kind"] == "event"]
        assert events, part
        for it, clip_pairs in events:
            assert clip_pairs == it["pairs"]
            assert {q for q, _ in clip_pairs} == {
                "What is making the sound in the video?",
                "What happened in the video?",
            }
    every = {n for part in ("train", "held_out") for it in parts[part][0] for n in it["sounds"]}
    assert set(parts["vocabulary"]) == every and "violin" in every
    assert every - {"violin", "cello", "flute", "piano", "guitar", "trumpet", "clarinet"}


def test_held_out_clips_are_spread_over_the_part():
    assert audio_llm.spread(10, 3) == [0, 4, 9]
    assert audio_llm.spread(3, 5) == [0, 1, 2]
    assert audio_llm.spread(10, 1) == [0] and audio_llm.spread(10, 0) == []


def test_the_matcher_wants_the_exact_set_and_prefers_longer_names():
    vocabulary = ["bass", "double bass", "violin", "cello"]
    found = audio_llm.named_instruments
    assert found("I hear a Double Bass and a violin.", vocabulary) == {"double bass", "violin"}
    assert found("I hear a bass, a double bass.", vocabulary) == {"bass", "double bass"}
    assert found("Two violins play.", vocabulary) == {"violin"}
    assert found("A violinist and a cellophane wrapper.", vocabulary) == set()
    assert found("anjok\ufffd", vocabulary) == set()
    right = audio_llm.names_the_instruments
    assert right("I hear a cello and a violin.", ["violin", "cello"], vocabulary)
    assert not right("I hear a cello.", ["violin", "cello"], vocabulary)
    assert not right("I hear a cello, a violin and a bass.", ["violin", "cello"], vocabulary)
    assert not right("I hear a double bass.", ["bass"], vocabulary)


def test_the_batch_is_the_processors_prompt_with_the_response_alone_labelled(
    small_corpus, untrained
):
    import torch

    llm = load(untrained)
    items = clap.clips(small_corpus)["train"][:2]
    audios = audio_llm.clip_audio(llm, items)
    instruction, system = audio_llm.reference_prompt("Is there a violin sound?", "yes")
    forms = [(audio_llm.PLAIN_QUESTIONS["music"][0], None), (instruction, system)]
    prompts = [audio_llm.prompt_ids(llm, a, *form) for a, form in zip(audios, forms, strict=True)]
    # the processor itself, on the clip's soundtrack: same ids, same features
    for it, a, ids, (text, sys) in zip(items, audios, prompts, forms, strict=True):
        official = llm.inputs([llm.read(it["media_path"])], [text], system=sys)
        assert official["input_ids"][0].tolist() == ids
        assert torch.equal(official["input_features"][0], a["input_features"])
        assert torch.equal(official["feature_attention_mask"][0], a["feature_attention_mask"])
        assert ids.count(llm.processor.audio_token_id) > 10
    responses = [audio_llm.response(it["sounds"]) for it in items]
    batch = audio_llm.build_batch(llm, audios, prompts, responses)
    tok = llm.processor.tokenizer
    end = tok.convert_tokens_to_ids("<|im_end|>")
    width = max(len(p) for p in prompts) + max(len(tok(r)["input_ids"]) for r in responses) + 1
    assert batch["input_ids"].shape == batch["labels"].shape == (2, width)
    assert batch["input_features"].shape[0] == batch["feature_attention_mask"].shape[0] == 2
    for row, (prompt, text) in enumerate(zip(prompts, responses, strict=True)):
        answer = [*tok(text)["input_ids"], end]
        used = len(prompt) + len(answer)
        ids, labels = batch["input_ids"][row].tolist(), batch["labels"][row].tolist()
        mask = batch["attention_mask"][row].tolist()
        assert ids[:used] == prompt + answer  # padded on the right
        assert labels[: len(prompt)] == [-100] * len(prompt)
        assert labels[len(prompt) : used] == answer and answer[-1] == end
        assert labels[used:] == [-100] * (width - used)
        assert mask == [1] * used + [0] * (width - used)
        assert tok.decode(labels[len(prompt) : used - 1]) == text
    with torch.no_grad():
        assert float(llm.model(**batch).loss) > 0


def test_pretraining_lowers_the_loss_deterministically(trained, untrained):
    import torch

    (a, first), (b, again) = trained["a"], trained["b"]
    assert first["steps"] == SETTINGS["steps"]
    assert first["loss_last"] < 0.5 * first["loss_first"]
    assert first["losses"] == again["losses"]
    one, two, init = weights(a), weights(b), weights(untrained)
    assert one.keys() == two.keys() == init.keys()
    assert all(torch.equal(one[k], two[k]) for k in one)
    assert any(not torch.equal(one[k], init[k]) for k in one)
    positions = "audio_tower.embed_positions.weight"  # Whisper's sinusoids, kept
    assert torch.equal(one[positions], init[positions])
    held_out = first["held_out"]
    assert held_out["clips"] == SETTINGS["held_out_clips"]
    assert 0.0 <= held_out["names_instruments"] <= 1.0
    assert set(held_out["by_form"]) == {"reference", "plain"}
    assert set(held_out["by_kind"]) == {"music", "event"}
    assert held_out["examples"]
    assert all(e["truth"].startswith("I hear") for e in held_out["examples"])


def test_it_hears_the_soundtracks_the_thinker_decoded_once(
    trained, small_corpus, tmp_path, monkeypatch
):
    """Reading the corpus's decode-once cache (rule decode_pretrain_clips, decoded with
    the thinker's settings), the pre-training decodes no clip itself and gives the same
    weights as decoding every clip."""
    import torch

    from avtrust.models import media

    thinker = untrained_build(tmp_path / "omni", "omni")
    decode_corpus(thinker, small_corpus, tmp_path / "decoded")

    def refuse(path, sample_rate):
        raise AssertionError(f"{path} decoded again")

    monkeypatch.setattr(media, "read_audio", refuse)
    job = model_job_config(config(), "audio_llm")
    untrained_dir = tmp_path / "untrained"
    untrained_build(untrained_dir, "audio_llm")
    summary = pretrain_model(
        untrained_dir, small_corpus, tmp_path / "c", job, decoded_dir=tmp_path / "decoded"
    )
    folder, first = trained["a"]
    assert summary["losses"] == first["losses"]
    assert summary["held_out"] == first["held_out"]
    one, cached = weights(folder), weights(tmp_path / "c")
    assert all(torch.equal(one[k], cached[k]) for k in one)


def test_the_saved_model_loads_and_replies_in_the_trained_wording(trained, untrained, small_corpus):
    folder, _ = trained["a"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in untrained.iterdir())
    manifest = read_manifest(folder)
    assert manifest["adapter"] == "qwen2_audio"
    assert manifest["pretrained"]["steps"] == SETTINGS["steps"]
    assert "losses" not in manifest["pretrained"]
    llm = load(folder)
    it = clap.clips(small_corpus)["held_out"][0]
    instruction, system = audio_llm.reference_prompt("Is there a violin sound?", "yes")
    (reply,) = llm.generate(
        [llm.read(it["media_path"])], [instruction], system=system, max_new_tokens=12
    )
    assert reply.startswith("I hear a")
