"""Instruction-tune the tiny Omni thinker on the pre-training corpus.

Full fine-tuning (the model is tiny) of ``Qwen2_5OmniThinkerForConditionalGeneration``
on (clip, question, answer) rows with the project's own input path: the thinker's input
builder with decoding memoised per clip, and :class:`avtrust.train.data.SequenceEncoder`
merging audio features, video patches and 3-D position ids into one batch, so the model
learns from audio and video both. The loss is the thinker's token loss on the response.
With ``freeze_towers`` only the language model trains, over each clip's tower outputs
computed once (:mod:`avtrust.pretrain.frozen_towers`); with ``start_from`` it starts
from a pre-trained audio LLM (:mod:`avtrust.pretrain.thinker_init`).

A plain loop rather than ``transformers.Trainer``: one process, no resume state, and
every random choice (batch order, initial weights) comes from the seed, so two runs give
identical weights. Afterwards the held-out questions are scored the way evaluation's
likelihood mode scores options (the most probable candidate response wins).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from avtrust.bench.samples import derive_seed
from avtrust.pretrain import SectionSettings, corpus
from avtrust.pretrain.corpus import answer_forms
from avtrust.pretrain.thinker_init import PARTS

PathLike = str | os.PathLike
# the thinker's media encoders, by parameter prefix
TOWERS = ("model.audio_tower.", "model.visual.")


@dataclass(frozen=True)
class ThinkerSettings(SectionSettings):
    """config ``pretrain.thinker``."""

    key = "thinker"

    # The random audio and vision towers barely move the answer at first (swapping the
    # clip changes it by ~1 %), so they may learn faster than the language model.
    tower_lr_scale: float = 1.0
    # Train the language model only, over each clip's tower outputs computed once
    # (avtrust.pretrain.frozen_towers): 6-9x the rows per second on a CPU.
    freeze_towers: bool = False
    # A pre-trained audio LLM (a model under `models`, adapter qwen2_audio, of the
    # thinker's dimensions) whose language model and audio encoder the thinker starts
    # from (avtrust.pretrain.thinker_init), as Qwen2.5-Omni starts from Qwen2.5 and
    # Whisper; null: the thinker's own random build.
    start_from: str | None = None
    # What it takes from that model (avtrust.pretrain.thinker_init.PARTS): its language
    # model and audio encoder, or only the audio encoder when the vision job's alignment
    # has taught the thinker's own language model to see.
    start_parts: tuple[str, ...] = PARTS
    # The question categories it trains on ("Audio-Visual/Existential", ...; the
    # corpus's `modality/qtype`); null: all. Mixed with every other category, the
    # existence questions stay at their answer prior for 1000s of steps (bench/README.md).
    categories: tuple[str, ...] | None = None
    # Phases trained after the first `steps` (a curriculum), each {steps, categories,
    # restart}, e.g. the existence lookup alone first, then every category. One
    # learning-rate schedule spans the phases; a phase with `restart` starts a schedule
    # (warm-up, decay) and an optimiser of its own, as a training of its own would.
    then: tuple[dict, ...] = ()
    # Share of the training questions also asked after a preamble (corpus.PREAMBLES), so
    # that a sentence before a question (as the benchmarks' have) does not change it.
    preamble_share: float = 0.0

    def phases(self) -> list[tuple[int, tuple[str, ...] | None]]:
        """(steps, categories) of each phase, the first one's from ``steps`` and
        ``categories``."""
        first = [(self.steps, self.categories)]
        return first + [(p["steps"], p.get("categories")) for p in self.then]

    def schedules(self) -> list[int]:
        """Steps of each learning-rate schedule: the phases' steps summed up to each
        phase that restarts."""
        spans = [self.steps]
        for phase in self.then:
            if phase.get("restart", False):
                spans.append(0)
            spans[-1] += phase["steps"]
        return spans


def batch_order(n_rows: int, steps: int, batch_size: int, seed: int) -> list[list[int]]:
    """Row indices of each step: seeded shuffles of all rows, one after another."""
    rng = np.random.default_rng(seed)
    order: list[int] = []
    while len(order) < steps * batch_size:
        order += rng.permutation(n_rows).tolist()
    return [order[i * batch_size : (i + 1) * batch_size] for i in range(steps)]


def phase_rows(rows: list[dict], settings: ThinkerSettings) -> list[tuple[int, list[int]]]:
    """(steps, row indices) of each phase: the ``rows`` whose ``category`` is among the
    phase's (all when it names none). A phase no row is in is an error that lists the
    categories the rows have."""
    out = []
    for k, (steps, categories) in enumerate(settings.phases()):
        chosen = [
            i
            for i, row in enumerate(rows)
            if categories is None or row.get("category") in categories
        ]
        if not chosen:
            known = sorted({r["category"] for r in rows if "category" in r})
            key = "categories" if k == 0 else f"then[{k - 1}].categories"
            raise ValueError(
                f"pretrain.thinker.{key} {list(categories)}: no training question has one "
                f"(the corpus's: {', '.join(known)})"
            )
        out.append((steps, chosen))
    return out


def phase_union(rows: list[dict], settings: ThinkerSettings) -> list[dict]:
    """The ``rows`` some phase trains on, in their order."""
    used = {i for _, chosen in phase_rows(rows, settings) for i in chosen}
    return [rows[i] for i in sorted(used)]


def phase_batches(rows: list[dict], settings: ThinkerSettings, seed: int) -> list[list[int]]:
    """Row indices of every step, phase after phase: each phase's seeded shuffles of its
    rows (:func:`batch_order`; the first phase with ``seed`` itself)."""
    batches = []
    for k, (steps, chosen) in enumerate(phase_rows(rows, settings)):
        phase_seed = seed if k == 0 else derive_seed(seed, "thinker phase", k)
        order = batch_order(len(chosen), steps, settings.batch_size, phase_seed)
        batches += [[chosen[i] for i in indices] for indices in order]
    return batches


def learning_rate(step: int, settings: ThinkerSettings) -> float:
    """Linear warm-up, then linear decay to 0 at the last step."""
    if step < settings.warmup_steps:
        return settings.learning_rate * (step + 1) / settings.warmup_steps
    left = settings.steps - step
    span = max(settings.steps - settings.warmup_steps, 1)
    return settings.learning_rate * left / span


def optimiser_step(optimiser, parameters, loss, step: int, settings: SectionSettings) -> float:
    """Back-propagate ``loss`` and take one step at the schedule's rate for ``step``
    (times each parameter group's ``scale``, 1 when it has none), the gradients of
    ``parameters`` clipped to ``settings.max_grad_norm`` (0: not clipped); the loss."""
    import torch

    for group in optimiser.param_groups:
        group["lr"] = learning_rate(step, settings) * group.get("scale", 1.0)
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    if settings.max_grad_norm > 0:
        torch.nn.utils.clip_grad_norm_(parameters, settings.max_grad_norm)
    optimiser.step()
    return float(loss.detach())


def response_loss(model, batch: dict):
    """The thinker's token loss on ``batch``'s labelled (response) tokens, as its own
    forward computes it, with the output head applied to those positions only: the
    head over every prompt and media position (a vocabulary-wide projection and
    cross-entropy for each) was a third of a tiny thinker's training step."""
    import torch.nn.functional as F

    inputs = {k: v for k, v in batch.items() if k != "labels"}
    hidden = model.model(**inputs, use_cache=False)[0]
    # position t predicts token t + 1 (the forward's shift)
    targets = batch["labels"][:, 1:]
    kept = targets != -100
    logits = model.lm_head(hidden[:, :-1][kept])
    return F.cross_entropy(logits.float(), targets[kept])


def loss_summary(losses: list[float], **counts: int) -> dict:
    """The start of a pre-training's summary: its steps, ``counts`` (what it trained on),
    the mean loss of its first and last steps (a quarter of them, at most 20) and every
    step's loss."""
    window = max(1, min(20, len(losses) // 4))
    return {
        "steps": len(losses),
        **counts,
        "loss_first": sum(losses[:window]) / window,
        "loss_last": sum(losses[-window:]) / window,
        "losses": losses,
    }


def train(
    thinker,
    rows: list[dict],
    settings: ThinkerSettings,
    seed: int,
    desc: str = "pre-training the thinker",
) -> list[float]:
    """Train ``thinker`` (an :class:`avtrust.models.omni.OmniThinker`) in place on
    ``rows``; returns the loss of every step (``desc``: the progress bar's)."""
    import torch

    from avtrust.pretrain.frozen_towers import FrozenTowerBatches
    from avtrust.train.data import SequenceEncoder, cache_decoding

    if not rows:
        raise ValueError("pre-training the thinker: no training rows")
    rows = phase_union(rows, settings)  # only rows some phase trains on are encoded
    clips = len({r["media_path"] for r in rows})
    model = thinker.model
    encoder = SequenceEncoder(cache_decoding(thinker.builder, clips), model.get_rope_index)
    torch.manual_seed(seed % 2**31)
    towers = [p for n, p in model.named_parameters() if n.startswith(TOWERS)]
    tower_ids = {id(p) for p in towers}
    rest = [p for p in model.parameters() if id(p) not in tower_ids]
    groups = [{"params": rest, "scale": 1.0}]
    if settings.freeze_towers:
        for p in towers:
            p.requires_grad_(False)
        model.eval()  # the towers' outputs are computed once, without dropout
        batches = FrozenTowerBatches(model, encoder, rows)
    else:
        groups.append({"params": towers, "scale": settings.tower_lr_scale})

        def batches(indices):
            return encoder(
                [rows[i]["media_path"] for i in indices],
                [rows[i]["prompt"] for i in indices],
                [rows[i]["response"] for i in indices],
            ).batch

    trained = [p for group in groups for p in group["params"]]
    model.train()
    losses = []
    steps = phase_batches(rows, settings, seed)
    progress = tqdm(total=len(steps), desc=desc, unit="step")
    start = 0
    for span in settings.schedules():
        # each schedule's warm-up and decay span its phases, with a fresh optimiser
        optimiser = torch.optim.AdamW(
            groups, lr=settings.learning_rate, weight_decay=settings.weight_decay
        )
        schedule = replace(settings, steps=span, then=())
        for step, indices in enumerate(steps[start : start + span]):
            loss = response_loss(model, batches(indices))
            losses.append(optimiser_step(optimiser, trained, loss, step, schedule))
            progress.update()
            progress.set_postfix(loss=f"{losses[-1]:.3f}")
        start += span
    progress.close()
    model.eval()
    for p in towers:
        p.requires_grad_(True)
    return losses


def accuracy(thinker, questions: list[dict], batch_size: int = 16) -> dict:
    """Share of ``questions`` (:func:`avtrust.pretrain.corpus.questions`) whose right
    candidate is the most probable, per prompt form (``yes_no``, ``letter``, ``text``)
    and overall, with the chance level of each, and per question category (all forms)."""
    import torch

    from avtrust.train.data import SequenceEncoder, sequence_logps

    encoder = SequenceEncoder(thinker.builder, thinker.model.get_rope_index)
    items = []  # (form, question index, prompt, candidates)
    for k, q in enumerate(questions):
        forms = answer_forms(q)
        names = ["yes_no"] if len(forms) == 1 else ["letter", "text"]
        for name, (prompt, candidates) in zip(names, forms, strict=True):
            items.append((name, k, prompt, candidates))
    right: dict[str, list[float]] = {}
    chance: dict[str, list[float]] = {}
    by_category: dict[str, list[float]] = {}
    thinker.model.eval()
    with torch.no_grad():
        for start in tqdm(range(0, len(items), batch_size), desc="held-out questions"):
            chunk = items[start : start + batch_size]
            paths, prompts, responses = [], [], []
            for _, k, prompt, candidates in chunk:
                for c in candidates:
                    paths.append(questions[k]["media_path"])
                    prompts.append(prompt)
                    responses.append(c)
            enc = encoder(paths, prompts, responses)
            logps = sequence_logps(thinker.model, enc.batch)[enc.rows].tolist()
            at = 0
            for name, k, _, candidates in chunk:
                scores = logps[at : at + len(candidates)]
                at += len(candidates)
                best = int(np.argmax(scores))
                hit = float(best == questions[k]["answer_index"])
                right.setdefault(name, []).append(hit)
                by_category.setdefault(questions[k]["category"], []).append(hit)
                chance.setdefault(name, []).append(1.0 / len(candidates))
    out = {name: float(np.mean(v)) for name, v in right.items()}
    out.update({f"{name}_chance": float(np.mean(v)) for name, v in chance.items()})
    out["all"] = float(np.mean([x for v in right.values() for x in v]))
    out["all_chance"] = float(np.mean([x for v in chance.values() for x in v]))
    out["by_category"] = {c: float(np.mean(v)) for c, v in sorted(by_category.items())}
    out["questions"] = len(questions)
    return out


def train_model(
    thinker,
    corpus_dir: Path,
    section: dict,
    seed: int,
    log,
    start_dir: PathLike | None = None,
    vision_dir: PathLike | None = None,
) -> dict:
    """The pretrain stage's entry: train on the corpus's training questions and its
    questions about the silent clips; returns the summary (losses, held-out accuracy).
    ``start_dir``: the folder of the model named by ``pretrain.thinker.start_from``,
    copied into the thinker first; ``vision_dir``: a pre-trained vision tower
    (:mod:`avtrust.pretrain.vision_tower`), copied in after it."""
    from avtrust.errors import ConfigError
    from avtrust.pretrain.thinker_init import LANGUAGE_MODEL, start_from_audio_llm
    from avtrust.pretrain.vision_tower import load_tower

    settings = ThinkerSettings.from_config(section["thinker"])
    started = None
    if settings.start_from is not None:
        if start_dir is None:
            raise ValueError(
                f"pretrain.thinker.start_from is {settings.start_from!r}: the job needs "
                "that model's folder"
            )
        started = start_from_audio_llm(thinker.model, start_dir, tuple(settings.start_parts))
        if log:
            log.info("started from %s: %s", settings.start_from, started)
    if vision_dir is not None:
        loaded = load_tower(thinker.model, vision_dir)
        if started is not None and set(loaded) & set(started["parts"]):
            raise ConfigError(
                f"the vision job's folder {vision_dir} holds the {LANGUAGE_MODEL} "
                "(pretrain.vision_tower.align), which would replace the one "
                f"pretrain.thinker.start_from {settings.start_from!r} gives: set "
                "pretrain.thinker.start_parts to [audio_tower]"
            )
        if log:
            log.info("from the vision job (%s): %s", vision_dir, ", ".join(loaded))
    rounds = section["corpus"].get("question_rounds", 1)
    train_qs = corpus.questions(corpus_dir, "train", seed, rounds)
    held_out = corpus.questions(corpus_dir, "held_out", seed, rounds)
    held_out = held_out[: section["held_out_questions"]]
    if settings.preamble_share:
        train_qs += corpus.with_preambles(train_qs, settings.preamble_share, seed)
    every = corpus.instruction_rows(train_qs)
    silent = {corpus.VISUAL_CATEGORY, corpus.DESCRIBE_CATEGORY}
    if any(cats is None or silent & set(cats) for _, cats in settings.phases()):
        # the silent clips' rows (a corpus written before it had silent copies is
        # asked for them only when a phase trains on them)
        every += corpus.instruction_rows(corpus.visual_questions(corpus_dir, "train"))
        every += corpus.description_rows(corpus.on_screen(corpus_dir, "train"))
    phases = phase_rows(every, settings)
    rows = phase_union(every, settings)
    if log:
        log.info(
            "%d training rows (of %d), %d held-out questions; phases (steps, rows): %s",
            len(rows),
            len(every),
            len(held_out),
            [(steps, len(chosen)) for steps, chosen in phases],
        )
    losses = train(thinker, every, settings, seed)
    summary = loss_summary(losses, rows=len(rows))
    restarts = [False, *(p.get("restart", False) for p in settings.then)]
    summary["phases"] = [
        {
            "steps": steps,
            "categories": None if cats is None else list(cats),
            "rows": len(chosen),
            "restart": restart,
        }
        for (steps, cats), (_, chosen), restart in zip(
            settings.phases(), phases, restarts, strict=True
        )
    ]
    if started is not None:
        summary["started_from"] = {"model": settings.start_from, **started}
    if vision_dir is not None:
        summary["vision_tower"] = {"folder": str(vision_dir), "parts": loaded}
    if held_out:
        summary["held_out_accuracy"] = accuracy(thinker, held_out)
    if any(r["category"] == corpus.VISUAL_CATEGORY for r in rows):
        asked = spread(corpus.visual_questions(corpus_dir, "held_out"), len(held_out))
        if asked:
            summary["held_out_visual_accuracy"] = accuracy(thinker, asked)["all"]
    return summary


def spread(items: list, n: int) -> list:
    """``n`` of ``items`` at even intervals (all of them when there are no more)."""
    if len(items) <= n:
        return items
    return [items[int(k * len(items) / n)] for k in range(n)]


def save(thinker, init_dir: PathLike, out_dir: PathLike) -> None:
    """Write the trained weights over a copy of the untrained folder (tokenizer and
    preprocessing configs unchanged)."""
    import shutil

    out = Path(out_dir)
    shutil.copytree(init_dir, out, dirs_exist_ok=True)
    for weights in out.glob("*.safetensors"):
        weights.unlink()
    thinker.model.save_pretrained(out)
