"""Contrastive pre-training of the tiny Qwen3-Embedding on synthetic sound descriptions.

RL-CoMM's rewards compare the policy's ``<a-think>`` with the reference audio reasoning
(r_arr: cosine above ω) and with its own ``<v-think>`` (r_avc). With random weights
those cosines do not depend on what the texts say. Here the embedder learns that two
wordings of one content are close and other contents are not: each training content is
a set of the synthetic world's sounds (:func:`avtrust.media.synthesis.names_of_kind`:
instruments, events, environments; or silence), written in two of the wordings below
(the reference reasoning's "what I hear" sentences, the policy's ``<a-think>``, the
score stage's ``<v-think>`` "The video shows ..."), with the instruments in random
orders; the other contents of the batch are the negatives (in-batch InfoNCE with a fixed
temperature, sentence-transformers' MultipleNegativesRankingLoss).

Texts go through the SentenceTransformer's own forward (tokeniser with left padding,
last-token pooling, normalisation) with the instruction scoring and training put before
every text (:data:`avtrust.models.embedding.EMBEDDING_INSTRUCTION`), so the trained
weights are those the adapter uses. Contents are split by a seeded permutation: the
held-out ones (never trained on) give the paraphrase retrieval top-1 and the mean cosine
of a paraphrase vs another content.
"""

from __future__ import annotations

import itertools
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from avtrust import data_files
from avtrust.bench.samples import derive_seed
from avtrust.pretrain import SectionSettings
from avtrust.pretrain.clap import listed, with_article
from avtrust.pretrain.thinker import batch_order, loss_summary, optimiser_step

PathLike = str | os.PathLike
KINDS = ("instrument", "event", "environment")
MAX_SOUNDS = 3
SILENCE = ()  # the content of a clip without sound
# {a_list}: "a violin and a piano"; {labels}: "violin and piano"; {first}/{rest}: order
WORDINGS = (
    "I hear {a_list}.",
    "The audio has {labels} playing.",
    "In the audio, {a_list} can be heard.",
    "The sound of {bare} is audible in this clip.",
    "The soundtrack contains {a_list}.",
    "You can hear {a_list} in the recording.",
    "Listening to the audio, I can make out {a_list}, which supports the answer.",
    "The audio features {a_list}; nothing else is audible.",
    "The video shows {labels}.",
)
ORDER_WORDING = "{first} starts first, then {rest} joins in."
SILENT_WORDINGS = (
    "There is no audio track in this clip, so nothing can be heard.",
    "The clip is silent; no sound can be heard.",
    "Nothing is audible in this clip.",
    "I hear nothing: the audio is silent.",
)
SCALE = 20.0  # 1 / temperature, MultipleNegativesRankingLoss's default


@dataclass(frozen=True)
class EmbedderSettings(SectionSettings):
    """config ``pretrain.embedder``."""

    key = "embedder"

    held_out_contents: int = 64


def sound_names() -> list[str]:
    from avtrust.media.synthesis import names_of_kind

    return [name for kind in KINDS for name in names_of_kind(kind)]


def contents(seed: int, held_out: int) -> dict[str, list[tuple[str, ...]]]:
    """train / held_out contents: every set of 1..:data:`MAX_SOUNDS` sounds and silence,
    split by a seeded permutation (silence always trains: one phrase has no paraphrase
    worth holding out)."""
    names = sound_names()
    every = [c for k in range(1, MAX_SOUNDS + 1) for c in itertools.combinations(names, k)]
    order = np.random.default_rng(derive_seed(seed, "embedder", "split")).permutation(len(every))
    shuffled = [every[i] for i in order]
    held_out = min(held_out, len(shuffled) - 1)
    return {"train": [SILENCE, *shuffled[held_out:]], "held_out": shuffled[:held_out]}


def sentence(content: tuple[str, ...], wording: int, rng: np.random.Generator) -> str:
    """``content`` in wording number ``wording`` (of :func:`wording_count`), its sounds
    in an order drawn from ``rng``."""
    if content == SILENCE:
        return SILENT_WORDINGS[wording % len(SILENT_WORDINGS)]
    names = [content[i] for i in rng.permutation(len(content))]
    joiner = data_files.load("scoring")["avsm"]["label_joiner"]
    if wording == len(WORDINGS) and len(names) > 1:
        return ORDER_WORDING.format(
            first=with_article(names[0]).capitalize(),
            rest=listed([with_article(n) for n in names[1:]]),
        )
    template = WORDINGS[wording % len(WORDINGS)]
    return template.format(
        a_list=listed([with_article(n) for n in names]),
        labels=joiner.join(names),
        bare=", ".join(names),
    )


def wording_count() -> int:
    return len(WORDINGS) + 1


def pairs(items: list[tuple[str, ...]], rng: np.random.Generator) -> tuple[list, list]:
    """Two different wordings of each content."""
    left, right = [], []
    for content in items:
        a, b = rng.choice(wording_count(), size=2, replace=False)
        left.append(sentence(content, int(a), rng))
        right.append(sentence(content, int(b), rng))
    return left, right


def _embed(embedder, texts: list[str]):
    """Unit vectors through the SentenceTransformer's forward, with gradients."""
    st = embedder.model
    prefix = embedder.instruction or ""
    features = st.preprocess([prefix + t for t in texts])
    features = {k: v.to(st.device) if hasattr(v, "to") else v for k, v in features.items()}
    return st(features)["sentence_embedding"]


def contrastive_loss(embedder, left: list[str], right: list[str]):
    """Symmetric in-batch InfoNCE: ``left[i]``'s positive is ``right[i]``."""
    import torch
    import torch.nn.functional as F

    a = F.normalize(_embed(embedder, left), dim=-1)
    b = F.normalize(_embed(embedder, right), dim=-1)
    logits = SCALE * a @ b.T
    labels = torch.arange(len(left))
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def train(embedder, items: list, settings: EmbedderSettings, seed: int) -> list[float]:
    """Train the embedder's transformer in place on ``items`` (contents); returns every
    step's loss. Batches hold distinct contents, so no negative is a paraphrase."""
    import torch

    if len(items) < 2:
        raise ValueError("pre-training the embedder: fewer than two training contents")
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed % 2**31)
    st = embedder.model
    optimiser = torch.optim.AdamW(
        st.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    st.train()
    losses = []
    batch = min(settings.batch_size, len(items))
    steps = batch_order(len(items), settings.steps, batch, seed)
    for step, rows in enumerate(tqdm(steps, desc="pre-training the embedder")):
        left, right = pairs([items[i] for i in dict.fromkeys(rows)], rng)
        loss = contrastive_loss(embedder, left, right)
        losses.append(optimiser_step(optimiser, st.parameters(), loss, step, settings))
    st.eval()
    return losses


def paraphrase_figures(embedder, items: list, seed: int) -> dict:
    """Top-1 of each content's wording among another wording of every content in
    ``items`` (chance 1 / contents), mean cosine of the paraphrase and of the others,
    through the adapter's own :meth:`~avtrust.models.embedding.TextEmbedder.embed`."""
    if len(items) < 2:
        return {"contents": len(items)}
    left, right = pairs(items, np.random.default_rng(derive_seed(seed, "embedder", "eval")))
    a, b = embedder.embed(left), embedder.embed(right)
    cos = a @ b.T
    off = ~np.eye(len(items), dtype=bool)
    return {
        "top1": float(np.mean(cos.argmax(axis=1) == np.arange(len(items)))),
        "chance": 1.0 / len(items),
        "contents": len(items),
        "positive_cos": float(np.mean(np.diag(cos))),
        "negative_cos": float(np.mean(cos[off])),
    }


def train_model(embedder, corpus_dir: Path, section: dict, seed: int, log) -> dict:
    """The pretrain stage's entry (the corpus's clips are not needed: contents come from
    the synthetic world's sound catalogue); returns the summary."""
    settings = EmbedderSettings.from_config(section["embedder"])
    parts = contents(seed, settings.held_out_contents)
    if log:
        log.info(
            "%d training contents, %d held-out contents",
            len(parts["train"]),
            len(parts["held_out"]),
        )
    before = paraphrase_figures(embedder, parts["held_out"], seed)
    losses = train(embedder, parts["train"], settings, seed)
    return {
        **loss_summary(losses, contents=len(parts["train"])),
        "held_out_before": before,
        "held_out": paraphrase_figures(embedder, parts["held_out"], seed),
    }


def save(embedder, init_dir: PathLike, out_dir: PathLike) -> None:
    """The trained transformer's weights over a copy of the untrained folder, so the
    sentence-transformers layout (modules, pooling, prompts) is the build's own."""
    out = Path(out_dir)
    shutil.copytree(init_dir, out, dirs_exist_ok=True)
    for weights in out.glob("*.safetensors"):
        weights.unlink()
    embedder.model[0].auto_model.save_pretrained(out)
