"""Contrastive pre-training of the tiny CLAP on the pre-training corpus's clips.

CLAP's own objective (symmetric InfoNCE over a batch of (audio, caption) pairs, with
the model's learnt ``logit_scale_a`` / ``logit_scale_t``) on each clip's soundtrack and
a caption naming what sounds, in one of several wordings: for a music scene its
instruments in a random order ("a violin and a piano playing", "the sound of violin,
piano", the score stage's own "A video showing violin and piano."); for an event clip
its source or one of its labels as the index labels such a clip ("a dog", "the sound of
a dog", "a dog barks", "A video showing A dog barks and Dog."). Two clips of the same
sound set are both positives of each other's captions (soft targets), so a batch never
pushes a caption away from a clip it describes.

The audio goes through the scoring code's own path (the video's soundtrack read at
48 kHz, :meth:`avtrust.models.clap.Clap.features`: centre window, ``ClapProcessor``),
so the trained towers see the features scoring feeds them; each clip is decoded and
featurised once.

Held-out figures: audio→caption top-1 on the corpus's held-out clips against one
canonical caption per distinct instrument set among them (chance 1 / sets), before
and after training, and the text tower's cosine between two wordings of one set and
between captions of different sets (what the calibrated β reads).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from avtrust import data_files
from avtrust.bench.avconfusebench import indefinite_article
from avtrust.pretrain import SectionSettings, corpus
from avtrust.pretrain.thinker import batch_order, loss_summary, optimiser_step, save  # noqa: F401 (save: the stage calls it)

PathLike = str | os.PathLike
# {a_list}: "a violin and a piano"; {bare}: "violin, piano"; {labels}: the score stage's
# label joining ("violin and piano").
WORDINGS = (
    "{a_list} playing",
    "the sound of {bare}",
    "{a_list}",
    "{labels}",
    "music played on {a_list}",
    "you can hear {a_list}",
    "a recording of {a_list} playing together",
)
# An event clip's wordings; "label": one of its labels, lower case ("a dog barks").
EVENT_WORDINGS = (
    "{a_list}",
    "the sound of {a_list}",
    "you can hear {a_list}",
    "a recording of {a_list}",
    "label",
    "visual",
)
CANONICAL = "the sound of {labels}"


@dataclass(frozen=True)
class ClapSettings(SectionSettings):
    """config ``pretrain.clap``."""

    key = "clap"

    # At most this many of the corpus's training clips, and of its held-out clips, evenly
    # spread over each (music scenes and event clips keep their shares); null: all. Each
    # clip's soundtrack is decoded and featurised first, which on a larger corpus costs
    # more than the steps do.
    max_clips: int | None = None


def with_article(name: str) -> str:
    return f"{indefinite_article(name)} {name}"


def listed(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def caption(names: list[str], wording: str, labels: list[str] | None = None) -> str:
    """``names`` (in the given order) in ``wording`` (one of :func:`wordings`); the visual
    caption joins ``labels`` (default: the names), as the score stage joins a clip's."""
    joiner = data_files.load("scoring")["avsm"]["label_joiner"]
    visual = data_files.load("scoring")["avsm"]["visual_caption"]
    fields = {
        "a_list": listed([with_article(n) for n in names]),
        "bare": ", ".join(names),
        "labels": joiner.join(names),
    }
    if wording == "visual":
        return visual.format(labels=joiner.join(labels or names))
    return wording.format(**fields)


def wordings(kind: str = "music") -> tuple[str, ...]:
    """Every training wording of a clip of ``kind``: :data:`WORDINGS` and the score
    stage's visual caption for a music scene, :data:`EVENT_WORDINGS` for an event."""
    return EVENT_WORDINGS if kind == "event" else (*WORDINGS, "visual")


def draw_caption(item: dict, rng: np.random.Generator) -> str:
    """One training caption of ``item`` (of :func:`clips`): a wording of its kind, its
    sounds in a random order."""
    every = wordings(item["kind"])
    wording = every[int(rng.integers(len(every)))]
    if wording == "label":
        return item["labels"][int(rng.integers(len(item["labels"])))].lower()
    names = [item["sounds"][k] for k in rng.permutation(len(item["sounds"]))]
    return caption(names, wording, item["labels"] if item["kind"] == "event" else names)


def canonical_caption(names: list[str]) -> str:
    return caption(sorted(names), CANONICAL)


def clips(corpus_dir: PathLike) -> dict[str, list[dict]]:
    """part -> [{media_path, sounds, labels, kind}] of the corpus's clips: its music
    scenes (kind ``music``; sounds and labels: the instruments) and its event clips
    (``event``; sounds: the source, labels: the clip's answers, and their ``pairs``)."""
    raw = Path(corpus_dir)
    part_of = corpus.clip_parts(raw)
    out: dict[str, list[dict]] = {part: [] for part in corpus.FILES}
    for entry in corpus.scenes(raw):
        part = part_of.get(entry["video_id"])
        if part is not None:
            out[part].append(
                {
                    "media_path": str(raw / "videos" / f"{entry['video_id']}.mp4"),
                    "sounds": list(entry["instruments"]),
                    "labels": list(entry["instruments"]),
                    "kind": "music",
                }
            )
    for part, events in corpus.event_clips(raw).items():
        out[part] += [
            {
                "media_path": e["media_path"],
                "sounds": [e["source"]],
                "labels": e["labels"],
                "kind": "event",
                "pairs": e["pairs"],
            }
            for e in events
        ]
    return out


def audio_features(clap, items: list[dict]) -> dict:
    """{input_features, is_longer} of every clip (rows in ``items`` order): the video's
    soundtrack read as scoring reads it (:meth:`~avtrust.models.clap.Clap.read`, at the
    extractor's rate; from the corpus's decode-once cache where attached) through the
    adapter's own :meth:`~avtrust.models.clap.Clap.features`, once, reused by every
    step. (Not the corpus's WAV stems, though cheaper to read: the video's coded audio
    gives log-mel features 17 dB apart on average from the stems' sum on a clip
    measured, so the towers would learn features scoring never feeds them.)"""
    import torch

    rows = []
    for it in items:
        wave = clap.read(it["media_path"])
        if wave is None or len(wave) == 0:
            raise ValueError(f"pre-training CLAP: {it['media_path']} has no audio")
        rows.append(clap.features([wave]))
    return {
        "input_features": torch.cat([r["input_features"] for r in rows]),
        "is_longer": torch.cat([r["is_longer"] for r in rows]),
    }


def _embed_audio(model, feats: dict, rows, batch: int = 32):
    import torch

    out = []
    for start in range(0, len(rows), batch):
        idx = rows[start : start + batch]
        out.append(
            model.get_audio_features(
                input_features=feats["input_features"][idx],
                is_longer=feats["is_longer"][idx],
            ).pooler_output
        )
    return torch.nn.functional.normalize(torch.cat(out), dim=-1)


def _embed_text(clap, texts: list[str]):
    import torch

    enc = clap.processor.tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
    out = clap.model.get_text_features(**enc).pooler_output
    return torch.nn.functional.normalize(out, dim=-1)


def contrastive_loss(clap, feats: dict, rows: list[int], texts: list[str], same):
    """CLAP's symmetric InfoNCE with the model's logit scales; ``same[i, j]``: clip i and
    caption j describe one instrument set (soft targets spread over those)."""
    import torch.nn.functional as F

    model = clap.model
    audio = _embed_audio(model, feats, rows)
    text = _embed_text(clap, texts)
    logits_audio = model.logit_scale_a.exp() * audio @ text.T
    logits_text = model.logit_scale_t.exp() * text @ audio.T
    target = same / same.sum(dim=1, keepdim=True)
    target_t = same.T / same.T.sum(dim=1, keepdim=True)
    return (F.cross_entropy(logits_audio, target) + F.cross_entropy(logits_text, target_t)) / 2


def train(clap, items: list[dict], feats: dict, settings: ClapSettings, seed: int) -> list[float]:
    """Train ``clap`` (the adapter) in place on ``items`` (rows of ``feats``); returns
    every step's loss. Batch order, wordings and instrument orders come from ``seed``."""
    import torch

    if len(items) < 2:
        raise ValueError("pre-training CLAP: fewer than two training clips")
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed % 2**31)
    model = clap.model
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    sets = [frozenset(it["sounds"]) for it in items]
    model.train()
    losses = []
    batch = min(settings.batch_size, len(items))
    progress = tqdm(batch_order(len(items), settings.steps, batch, seed), desc="pre-training CLAP")
    for step, rows in enumerate(progress):
        texts = [draw_caption(items[i], rng) for i in rows]
        same = torch.tensor([[float(sets[i] == sets[j]) for j in rows] for i in rows])
        loss = contrastive_loss(clap, feats, rows, texts, same)
        losses.append(optimiser_step(optimiser, model.parameters(), loss, step, settings))
        progress.set_postfix(loss=f"{losses[-1]:.3f}")
    model.eval()
    return losses


def retrieved_captions(clap, items: list[dict], feats: dict) -> list[str]:
    """Each clip's nearest caption: ``items`` (rows of ``feats``) against one canonical
    caption per distinct instrument set among them."""
    import torch

    captions = sorted({canonical_caption(it["sounds"]) for it in items})
    clap.model.eval()
    with torch.no_grad():
        audio = _embed_audio(clap.model, feats, list(range(len(items))))
        text = _embed_text(clap, captions)
        best = (audio @ text.T).argmax(dim=1).tolist()
    return [captions[b] for b in best]


def retrieval_figures(items: list[dict], best: list[str]) -> dict:
    """Top-1 of the captions ``best`` retrieved for ``items`` (:func:`retrieved_captions`),
    with its chance level (one canonical caption per distinct instrument set)."""
    truth = [canonical_caption(it["sounds"]) for it in items]
    return {
        "top1": float(np.mean([b == t for b, t in zip(best, truth, strict=True)])),
        "chance": 1.0 / len(set(truth)),
        "clips": len(items),
        "captions": len(set(truth)),
    }


def retrieval(clap, items: list[dict], feats: dict) -> dict:
    """Audio→caption top-1 of ``items`` (rows of ``feats``) against one canonical caption
    per distinct instrument set among them, with its chance level."""
    captions = {canonical_caption(it["sounds"]) for it in items}
    if not items or len(captions) < 2:
        return {"clips": len(items), "captions": len(captions)}
    return retrieval_figures(items, retrieved_captions(clap, items, feats))


def text_similarity(clap, items: list[dict]) -> dict:
    """Mean cosine of two wordings of one sound set vs captions of different sets."""
    import torch

    sets = sorted({tuple(sorted(it["sounds"])) for it in items})
    if len(sets) < 2:
        return {}
    # Two wordings every kind has: "a violin and a piano" vs "the sound of a piano and a violin"
    first = [caption(list(s), "{a_list}") for s in sets]
    second = [caption(list(reversed(s)), "the sound of {a_list}") for s in sets]
    with torch.no_grad():
        a, b = _embed_text(clap, first), _embed_text(clap, second)
        cos = (a @ b.T).numpy()
    off = ~np.eye(len(sets), dtype=bool)
    return {
        "same_set_cos": float(np.mean(np.diag(cos))),
        "other_set_cos": float(np.mean(cos[off])),
    }


def _figures(clap, held_out: list[dict], held_feats: dict) -> dict:
    return {**retrieval(clap, held_out, held_feats), **text_similarity(clap, held_out)}


def train_model(clap, corpus_dir: Path, section: dict, seed: int, log) -> dict:
    """The pretrain stage's entry: train ``clap`` in place on the corpus's training clips;
    returns the summary (losses, held-out figures before and after)."""
    from avtrust.pretrain.thinker import spread

    settings = ClapSettings.from_config(section["clap"])
    parts = clips(corpus_dir)
    train_items, held_out = parts["train"], parts["held_out"]
    if settings.max_clips is not None:
        train_items = spread(train_items, settings.max_clips)
        held_out = spread(held_out, settings.max_clips)
    if log:
        log.info("%d training clips, %d held-out clips", len(train_items), len(held_out))
    feats = audio_features(clap, train_items)
    held_feats = audio_features(clap, held_out) if held_out else {}
    before = _figures(clap, held_out, held_feats) if held_out else {}
    losses = train(clap, train_items, feats, settings, seed)
    summary = loss_summary(losses, clips=len(train_items))
    if held_out:
        summary["held_out_before"] = before
        summary["held_out"] = _figures(clap, held_out, held_feats)
    return summary
