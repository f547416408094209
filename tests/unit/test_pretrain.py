"""The pretrain stage: its corpus never shares a clip with the benchmarks' datasets, it
lowers the thinker's loss on a very small corpus, two runs give identical weights, and
the trained folder loads like any prepared model."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest
from pretrain_helpers import TINY, config_with, untrained_build, weights, written_corpus

from avtrust import data_files
from avtrust.datasets import synthetic
from avtrust.models.registry import load, read_manifest
from avtrust.pretrain import (
    corpus,
    corpus_job_config,
    model_job_config,
    pretrain_seed,
    pretrained_models,
)
from avtrust.pretrain.stage import decode_corpus, pretrain_model, write_corpus

PRETRAIN = {
    "enabled": True,
    "seed": None,
    "threads": 1,
    "held_out_questions": 4,
    "corpus": {
        "scenes": 4,
        "solos_per_instrument": 1,
        "event_clips": 8,
        "held_out_fraction": 0.25,
        "question_rounds": 2,
    },
    "thinker": {"steps": 16, "batch_size": 4, "learning_rate": 5.0e-3, "warmup_steps": 2},
}


def config(**pretrain) -> dict:
    return config_with(PRETRAIN, **pretrain)


def digests(folder: Path) -> dict[str, Path]:
    """sha256 of every media file under ``folder`` -> its path."""
    out = {}
    for path in folder.rglob("*"):
        if path.suffix in (".mp4", ".wav"):
            out[hashlib.sha256(path.read_bytes()).hexdigest()] = path
    return out


@pytest.fixture(scope="module")
def pretrain_corpus(tmp_path_factory) -> Path:
    return written_corpus(tmp_path_factory.mktemp("pretrain") / "corpus", config())


def test_corpus_shares_no_clip_with_any_synthetic_dataset(pretrain_corpus, tmp_path):
    cfg = config()
    ours = digests(pretrain_corpus)
    our_videos = {p.stem for p in pretrain_corpus.glob("videos/*.mp4")}
    assert our_videos and all(v.startswith("pretrain_") for v in our_videos)
    for name, dataset in cfg["datasets"].items():
        raw = tmp_path / name
        settings = synthetic.settings(dataset["format"], cfg["corpus"], cfg["media"])
        synthetic.generate(
            dataset["format"], raw, settings["corpus"], settings.get("media"), cfg["seed"]
        )
        theirs = digests(raw)
        assert theirs, name
        assert not set(ours) & set(theirs), f"a pre-training clip is one of {name}'s"
        assert not our_videos & {p.stem for p in raw.rglob("*.mp4")}


def test_the_corpus_is_the_same_files_on_several_workers(pretrain_corpus, tmp_path):
    """Encoding clips (and their silent copies) on several threads writes the files one
    thread writes, byte for byte."""
    write_corpus(tmp_path / "corpus", corpus_job_config(config()), workers=3)

    def files(root: Path) -> dict[str, str]:
        return {
            str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }

    one, three = files(pretrain_corpus), files(tmp_path / "corpus")
    assert len(one) > 20 and any(name.startswith(corpus.SILENT) for name in one)
    assert three == one


def test_a_clip_that_fails_to_encode_on_a_worker_stops_the_corpus(tmp_path):
    """An ffmpeg failure in the encoding pool is raised, naming the clip, not lost."""
    from avtrust.errors import MediaError

    job = corpus_job_config(config())
    job["media"] = {**job["media"], "video_codec": {"vcodec": "no_such_codec"}}
    with pytest.raises(MediaError, match=r"encoding .*pretrain_\w+\.mp4 failed.*no_such_codec"):
        write_corpus(tmp_path / "corpus", job, workers=2)


def test_the_seed_is_its_own_even_when_set_to_the_master_seed():
    cfg = config(seed=TINY["seed"])
    assert pretrain_seed(cfg) != TINY["seed"]
    assert pretrain_seed(cfg) == pretrain_seed(config())  # null means the master seed
    assert pretrain_seed(config(seed=1)) != pretrain_seed(config(seed=2))


def test_only_tiny_models_are_pretrained_and_only_when_enabled():
    assert pretrained_models(config()) == ["omni", "audio_llm", "clap", "embedder"]
    assert pretrained_models(config(enabled=False)) == []
    hub = config()
    hub["models"] = {**hub["models"], "omni": {**hub["models"]["omni"], "source": "hub"}}
    assert pretrained_models(hub) == ["audio_llm", "clap", "embedder"]


def test_each_job_reads_only_its_own_settings():
    """A model's training settings are in its own job's params only: editing them
    retrains that model alone and never redraws the corpus (which retrains all)."""
    base = config(clap={"steps": 4}, embedder={"steps": 4})
    edited = config(clap={"steps": 5}, embedder={"steps": 4})
    assert model_job_config(edited, "clap") != model_job_config(base, "clap")
    assert model_job_config(edited, "omni") == model_job_config(base, "omni")
    assert model_job_config(edited, "embedder") == model_job_config(base, "embedder")
    assert corpus_job_config(edited) == corpus_job_config(base)
    assert "clap" not in model_job_config(base, "omni")["pretrain"]
    assert model_job_config(base, "omni")["pretrain"]["thinker"] == PRETRAIN["thinker"]
    shared = config(threads=2)
    assert all(model_job_config(shared, m) != model_job_config(base, m) for m in ("omni", "clap"))
    # how many ffmpeg processes write and decode the corpus is no job's param
    workers = config(clap={"steps": 4}, embedder={"steps": 4}, media_workers=4)
    assert all(model_job_config(workers, m) == model_job_config(base, m) for m in ("omni", "clap"))
    assert corpus_job_config(workers) == corpus_job_config(base)
    redrawn = config(corpus={**PRETRAIN["corpus"], "scenes": 5})
    assert corpus_job_config(redrawn) != corpus_job_config(base)
    assert corpus_job_config(config(seed=11)) != corpus_job_config(base)
    # a real-data config has no synthetic corpus: the stage is off, its params still build
    assert corpus_job_config({"seed": 7})["corpus"] is None


def test_questions_are_asked_in_the_evaluation_forms(pretrain_corpus):
    train = corpus.questions(pretrain_corpus, "train", 1)
    held_out = corpus.questions(pretrain_corpus, "held_out", 1)
    assert train and held_out
    assert not {q["video_id"] for q in train} & {q["video_id"] for q in held_out}
    rows = corpus.instruction_rows(train)
    for q in train:
        assert 0 <= q["answer_index"] < len(q["options"])
    yes_no = [r for r in rows if r["prompt"].endswith("Answer yes or no.")]
    letters = [r for r in rows if r["prompt"].endswith("directly.")]
    assert {r["response"] for r in yes_no} <= {"yes", "no"}
    assert letters and {r["response"] for r in letters} <= set("ABCD")


def test_event_clips_are_read_from_their_avqa_files(pretrain_corpus, tmp_path):
    from avtrust.datasets import avqa
    from avtrust.media.synthesis import catalog, names_of_kind

    events = corpus.event_clips(pretrain_corpus)
    assert sum(len(v) for v in events.values()) == PRETRAIN["corpus"]["event_clips"]
    assert events["train"] and events["held_out"]
    train_videos = {e["video_id"] for e in events["train"]}
    assert not train_videos & {e["video_id"] for e in events["held_out"]}
    attributes = data_files.load("attributes")
    nouns = {attributes[catalog()[n].label]["noun"] for n in names_of_kind("event")}
    for e in [*events["train"], *events["held_out"]]:
        assert e["video_id"].startswith(corpus.EVENT_PREFIX) and Path(e["media_path"]).is_file()
        assert e["source"] in nouns
        # the labels the index gives an AVQA clip: its answers ("A dog barks", "Dog")
        assert e["source"].capitalize() in e["labels"] and len(e["labels"]) == 2
        assert ("What is making the sound in the video?", e["source"].capitalize()) in e["pairs"]
    # a clip whose source questions disagree is refused, naming the clip
    raw = tmp_path / "raw"
    (raw / "annotations").mkdir(parents=True)
    frame = avqa.read_annotations(pretrain_corpus / "annotations" / "val_qa.json")
    video = frame["video_id"].iloc[0]
    extra = frame[(frame["video_id"] == video) & (frame["question_type"] == "Come From")].copy()
    extra["qa_id"] += 10_000
    extra["answer_index"] = (extra["answer_index"] + 1) % 4
    extra["answer"] = [o[i] for o, i in zip(extra["options"], extra["answer_index"], strict=True)]
    avqa.write_annotations(
        pd.concat([frame, extra]), raw / "annotations" / corpus.EVENT_FILES["held_out"]
    )
    with pytest.raises(ValueError, match=f"event clip {video} needs one 'Come From' answer"):
        corpus.event_clips(raw)
    assert corpus.event_clips(tmp_path / "empty") == {"train": [], "held_out": []}
    with pytest.raises(ValueError, match="prefix applies to music_avqa and avqa only"):
        synthetic.generate("audioset", tmp_path / "as", {}, None, 1, prefix="pretrain")


@pytest.fixture(scope="module")
def untrained(tmp_path_factory) -> Path:
    return untrained_build(tmp_path_factory.mktemp("untrained") / "omni", "omni")


def test_pretraining_lowers_the_loss_and_is_deterministic(untrained, pretrain_corpus, tmp_path):
    """Two trainings give the same weights, the second reading the corpus decoded once
    (rule decode_pretrain_clips) instead of decoding any clip itself."""
    import torch

    from avtrust.models.decode_cache import DECODES

    job = model_job_config(config(), "omni")
    first = pretrain_model(untrained, pretrain_corpus, tmp_path / "a", job)
    report = decode_corpus(untrained, pretrain_corpus, tmp_path / "decoded", workers=2)
    silent = list(pretrain_corpus.glob(f"{corpus.SILENT}/*.mp4"))
    assert silent and report.entries == len(corpus.clips(pretrain_corpus))
    assert report.entries == len(list(pretrain_corpus.glob("videos/*.mp4"))) + len(silent)
    DECODES.reset()
    again = pretrain_model(
        untrained, pretrain_corpus, tmp_path / "b", job, decoded_dir=tmp_path / "decoded"
    )
    assert DECODES.total() == 0
    assert first["steps"] == 16
    assert first["loss_last"] < 0.8 * first["loss_first"]
    assert first["losses"] == again["losses"]
    a, b, before = weights(tmp_path / "a"), weights(tmp_path / "b"), weights(untrained)
    assert a.keys() == b.keys() == before.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], before[k]) for k in a)
    # The trained folder is a prepared model: it loads through the registry, with the
    # trained weights, and its manifest says how it was trained.
    manifest = read_manifest(tmp_path / "a")
    assert manifest["name"] == "omni" and manifest["pretrained"]["steps"] == 16
    # its clips are decoded with the untrained build's input settings while it trains
    # (common_decode.smk, settings_dir): the pre-training leaves them as built
    from avtrust.models.omni_inputs import VIDEO_SAMPLING_FILE, VisionSettings

    assert VisionSettings.from_dir(tmp_path / "a") == VisionSettings.from_dir(untrained)
    for name in ("preprocessor_config.json", "video_preprocessor_config.json", VIDEO_SAMPLING_FILE):
        assert (tmp_path / "a" / name).read_bytes() == (untrained / name).read_bytes()
    loaded = load(tmp_path / "a").model.state_dict()
    key = next(k for k in a if k in loaded)
    assert torch.equal(loaded[key], a[key])
    accuracy = first["held_out_accuracy"]
    assert accuracy["questions"] == 4 and 0.0 <= accuracy["all"] <= 1.0


def training_rows(pretrain_corpus: Path) -> list[dict]:
    return corpus.instruction_rows(corpus.questions(pretrain_corpus, "train", 0, 2))


def test_frozen_tower_batches_give_the_models_own_loss(untrained, pretrain_corpus):
    """Each clip's tower outputs, computed once and written over its placeholder tokens,
    give the loss the model computes running its towers itself; the clip's outputs are
    what moves it (zeroed, the loss changes)."""
    import torch

    from avtrust.pretrain.frozen_towers import FrozenTowerBatches
    from avtrust.train.data import SequenceEncoder

    thinker = load(untrained)
    model = thinker.model.eval()
    every = training_rows(pretrain_corpus)
    same_clip = [r for r in every if r["media_path"] == every[0]["media_path"]]
    rows = every[::8] + same_clip[1:5]
    picked = [0, len(rows) // 2, len(rows) - 1]
    assert len({rows[i]["media_path"] for i in picked}) > 1
    encoder = SequenceEncoder(thinker.builder, model.get_rope_index)
    batches = FrozenTowerBatches(model, encoder, rows)
    assert len(batches) == len(rows) and len(batches.features) > 1
    # A clip's rows are encoded in one call; each comes out as it is encoded alone.
    shared = [i for i, r in enumerate(rows) if r["media_path"] == rows[0]["media_path"]]
    lengths = {batches.rows[i].input_ids.shape[0] for i in shared}
    assert len(shared) > 2 and len(lengths) > 1, "rows of one clip, of different lengths"
    for i in shared:
        alone = encoder([rows[i]["media_path"]], [rows[i]["prompt"]], [rows[i]["response"]])
        for field in ("input_ids", "attention_mask", "labels"):
            assert torch.equal(getattr(batches.rows[i], field), alone.batch[field][0]), field
        assert torch.equal(batches.rows[i].position_ids, alone.batch["position_ids"][:, 0])
    own = encoder(
        [rows[i]["media_path"] for i in picked],
        [rows[i]["prompt"] for i in picked],
        [rows[i]["response"] for i in picked],
    ).batch
    with torch.no_grad():
        expected = model(**own, use_cache=False).loss
        cached = model(**batches(picked), use_cache=False).loss
        assert torch.allclose(cached, expected, atol=1e-5), (cached, expected)
        for features in batches.features.values():
            for stream in features:
                features[stream] = torch.zeros_like(features[stream])
        assert abs(float(model(**batches(picked), use_cache=False).loss - expected)) > 1e-3


def test_the_response_loss_is_the_models_own_loss_and_gradient(untrained, pretrain_corpus):
    """The training loss with the output head over the response positions only equals
    the thinker's own forward loss, and so do its gradients, for a batch that runs the
    towers and for a frozen-tower batch; it changes when a response token does."""
    import torch

    from avtrust.pretrain.frozen_towers import FrozenTowerBatches
    from avtrust.pretrain.thinker import response_loss
    from avtrust.train.data import SequenceEncoder

    thinker = load(untrained)
    model = thinker.model.eval()
    rows = training_rows(pretrain_corpus)[::8][:4]
    encoder = SequenceEncoder(thinker.builder, model.get_rope_index)
    own = encoder(
        [r["media_path"] for r in rows], [r["prompt"] for r in rows], [r["response"] for r in rows]
    ).batch
    frozen = FrozenTowerBatches(model, encoder, rows)(list(range(len(rows))))
    head = model.lm_head.weight
    for batch in (own, frozen):
        expected = model(**batch, use_cache=False).loss
        (expected_grad,) = torch.autograd.grad(expected, head)
        loss = response_loss(model, batch)
        (grad,) = torch.autograd.grad(loss, head)
        assert torch.allclose(loss, expected, atol=1e-6), (loss, expected)
        assert torch.allclose(grad, expected_grad, atol=1e-6)
    labels = own["labels"].clone()
    first = (labels[0] != -100).nonzero()[0, 0]
    labels[0, first] = (labels[0, first] + 1) % model.config.get_text_config().vocab_size
    with torch.no_grad():
        changed = response_loss(model, {**own, "labels": labels})
        assert abs(float(changed - response_loss(model, own))) > 1e-4


def test_frozen_towers_train_the_language_model_alone(untrained, pretrain_corpus, tmp_path):
    import torch

    thinker = {**PRETRAIN["thinker"], "freeze_towers": True}
    summary = pretrain_model(
        untrained,
        pretrain_corpus,
        tmp_path / "a",
        model_job_config(config(thinker=thinker), "omni"),
    )
    assert summary["loss_last"] < 0.8 * summary["loss_first"]
    after, before = weights(tmp_path / "a"), weights(untrained)
    towers = [k for k in before if k.startswith(("audio_tower.", "visual."))]
    assert towers and all(torch.equal(after[k], before[k]) for k in towers)
    rest = [k for k in before if k not in towers]
    assert any(not torch.equal(after[k], before[k]) for k in rest)


def test_the_thinker_starts_from_the_named_audio_llm(untrained, pretrain_corpus, tmp_path):
    from avtrust.pretrain import start_model

    audio_dir = untrained_build(tmp_path / "audio_llm", "audio_llm")
    thinker = {**PRETRAIN["thinker"], "start_from": "audio_llm", "steps": 2}
    cfg = config(thinker=thinker)
    assert start_model(cfg, "omni") == "audio_llm" and start_model(cfg, "audio_llm") is None
    job = model_job_config(cfg, "omni")
    summary = pretrain_model(untrained, pretrain_corpus, tmp_path / "a", job, start_dir=audio_dir)
    assert summary["started_from"]["model"] == "audio_llm"
    assert summary["started_from"]["copied"] > 40
    with pytest.raises(ValueError, match="start_from is 'audio_llm': the job needs"):
        pretrain_model(untrained, pretrain_corpus, tmp_path / "b", job)
    wrong = config(thinker={**thinker, "start_from": "clap"})
    with pytest.raises(ValueError, match="'clap' is not a model under `models` with adapter"):
        start_model(wrong, "omni")


def test_the_thinker_trains_on_the_categories_it_is_given(untrained, pretrain_corpus, tmp_path):
    existence = {**PRETRAIN["thinker"], "steps": 1, "categories": ["Audio-Visual/Existential"]}
    everything = pretrain_model(
        untrained,
        pretrain_corpus,
        tmp_path / "a",
        model_job_config(config(thinker={**existence, "categories": None}), "omni"),
    )
    chosen = pretrain_model(
        untrained,
        pretrain_corpus,
        tmp_path / "b",
        model_job_config(config(thinker=existence), "omni"),
    )
    assert 0 < chosen["rows"] < everything["rows"]
    typo = {**existence, "categories": ["Audio-Visual/Existence"]}
    with pytest.raises(ValueError, match=r"categories \['Audio-Visual/Existence'\]: no training"):
        pretrain_model(
            untrained,
            pretrain_corpus,
            tmp_path / "c",
            model_job_config(config(thinker=typo), "omni"),
        )


def test_a_curriculum_trains_its_phases_in_order(untrained, pretrain_corpus, tmp_path):
    """`then` adds phases after the first: each draws its batches from its own
    categories, the first as it would alone; the summary counts every phase's steps."""
    from avtrust.pretrain.thinker import ThinkerSettings, batch_order, phase_batches

    existence = "Audio-Visual/Existential"
    rows = training_rows(pretrain_corpus)
    section = {**PRETRAIN["thinker"], "steps": 3, "categories": [existence]}
    curriculum = {**section, "then": [{"steps": 4}]}
    steps = phase_batches(rows, ThinkerSettings.from_config(curriculum), seed=5)
    assert len(steps) == 7 and all(len(b) == 4 for b in steps)
    assert all(rows[i]["category"] == existence for b in steps[:3] for i in b)
    assert len({rows[i]["category"] for b in steps[3:] for i in b}) > 1
    alone = phase_batches(rows, ThinkerSettings.from_config(section), seed=5)
    assert steps[:3] == alone
    kept = [i for i, r in enumerate(rows) if r["category"] == existence]
    assert alone == [[kept[i] for i in b] for b in batch_order(len(kept), 3, 4, 5)]

    curriculum["then"] = [{"steps": 2, "categories": None}]
    summary = pretrain_model(
        untrained,
        pretrain_corpus,
        tmp_path / "a",
        model_job_config(config(thinker=curriculum), "omni"),
    )
    assert summary["steps"] == 5 and len(summary["losses"]) == 5
    assert [p["steps"] for p in summary["phases"]] == [3, 2]
    assert summary["phases"][0]["rows"] < summary["phases"][1]["rows"] == summary["rows"]

    typo = {**section, "then": [{"steps": 2, "categories": ["Audio/Countin"]}]}
    with pytest.raises(ValueError, match=r"then\[0\].categories \['Audio/Countin'\]: no training"):
        pretrain_model(
            untrained,
            pretrain_corpus,
            tmp_path / "b",
            model_job_config(config(thinker=typo), "omni"),
        )


def test_a_phase_that_restarts_has_a_schedule_and_optimiser_of_its_own(
    untrained, pretrain_corpus, monkeypatch
):
    """`restart` gives a phase its own warm-up and decay and a fresh optimiser, as a
    training of its own would; without it one schedule runs over every phase."""
    from avtrust.pretrain import thinker
    from avtrust.pretrain.thinker import ThinkerSettings

    seen = []
    step_once = thinker.optimiser_step

    def recording(optimiser, parameters, loss, step, schedule):
        seen.append((id(optimiser), step, schedule.steps))
        return step_once(optimiser, parameters, loss, step, schedule)

    monkeypatch.setattr(thinker, "optimiser_step", recording)
    rows = training_rows(pretrain_corpus)
    section = {**PRETRAIN["thinker"], "steps": 3, "freeze_towers": True}
    for restart, schedules in ((False, [5]), (True, [3, 2])):
        settings = ThinkerSettings.from_config(
            {**section, "then": [{"steps": 2, "restart": restart}]}
        )
        assert settings.schedules() == schedules
        seen.clear()
        thinker.train(load(untrained), rows, settings, seed=5)
        expected = [(k, span) for span in schedules for k in range(span)]
        assert [(step, span) for _, step, span in seen] == expected
        assert len({optimiser for optimiser, _, _ in seen}) == len(schedules)
