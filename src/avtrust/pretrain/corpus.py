"""The pre-training corpus and the thinker's instruction rows drawn from it.

The corpus is the synthetic MUSIC-AVQA world (:mod:`avtrust.datasets.synthetic`) drawn
from the pre-training seed, with its videos named ``pretrain_*``: natural, synchronised
scenes (every visible instrument sounds) whose questions have exact answers. The clip
geometry (duration, frame rate, size, sample rate) is the benchmarks' own, so the model
sees clips like those it is later evaluated on, but never one of them.

Each question becomes rows in the evaluation's own prompt forms
(:func:`avtrust.evaluate.infer.prompt_for`): yes/no questions answered ``yes``/``no``;
multiple-choice ones (the answer plus same-kind distractors, as the QA sets draw them)
both answered by the option's letter and, in the option-likelihood form, by its text.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from avtrust.bench.answer_kinds import Distractors
from avtrust.bench.samples import derive_seed
from avtrust.datasets import music_avqa
from avtrust.datasets.synthetic import CLIP_SIZES, generate
from avtrust.evaluate.infer import LETTERS, prompt_for, task_kind

PathLike = str | os.PathLike
PREFIX = "pretrain"  # the corpus's video names: pretrain_scene_0000, pretrain_solo_...
DISTRACTORS = 3
# The corpus keys taken from the benchmarks' `corpus` section (the world's geometry).
SHARED_KEYS = (*CLIP_SIZES, "instruments_per_scene", "onset_step_s")
FILES = {"train": "avqa-train.json", "held_out": "avqa-test.json"}


def corpus_settings(corpus: dict, pretrain_corpus: dict) -> dict:
    """The generator's ``corpus`` for the pre-training set: the benchmarks' geometry with
    the pre-training counts; ``held_out_fraction`` of the videos ask the held-out
    questions the pre-training reports its accuracy on."""
    out = {k: corpus[k] for k in SHARED_KEYS}
    out["scenes"] = pretrain_corpus["scenes"]
    out["solos_per_instrument"] = pretrain_corpus["solos_per_instrument"]
    out["qa_train_fraction"] = 1.0 - pretrain_corpus["held_out_fraction"]
    return out


def generate_corpus(raw_dir: PathLike, corpus: dict, media: dict, seed: int) -> None:
    """Write the pre-training corpus (``corpus`` from :func:`corpus_settings`)."""
    generate("music_avqa", raw_dir, corpus, media, seed, prefix=PREFIX)


def questions(raw_dir: PathLike, part: str, seed: int) -> list[dict]:
    """The questions of ``part`` (train | held_out), each with its clip, options (answer
    and distractors of its kind, shuffled with ``seed``) and the answer's index."""
    if part not in FILES:
        raise ValueError(f"unknown pre-training part {part!r} ({', '.join(FILES)})")
    raw = Path(raw_dir)
    every = [music_avqa.read_annotations(raw / "annotations" / f) for f in FILES.values()]
    records = [r for table in every for r in table.to_dict("records")]
    distractors = Distractors(
        [r["answer"] for r in records], [r["question_content"] for r in records]
    )
    table = every[list(FILES).index(part)]
    rng = np.random.default_rng(derive_seed(seed, "pretrain", part))
    out = []
    for r in table.to_dict("records"):
        chosen = distractors.draw(r["answer"], DISTRACTORS, rng, template=r["question_content"])
        options = [[r["answer"], *chosen][j] for j in rng.permutation(len(chosen) + 1)]
        out.append(
            {
                "media_path": str(raw / "videos" / f"{r['video_id']}.mp4"),
                "video_id": r["video_id"],
                "question": r["question"],
                "category": r["category"],
                "options": options,
                "answer_index": options.index(r["answer"]),
            }
        )
    return out


def answer_forms(q: dict) -> list[tuple[str, list[str]]]:
    """(prompt, candidate responses) of each form a question is asked in; the right
    response of each is at ``q["answer_index"]``."""
    options = q["options"]
    if task_kind(options) == "yes_no":
        return [(prompt_for(q["question"], options), [o.lower() for o in options])]
    return [
        (prompt_for(q["question"], options, "generate"), list(LETTERS[: len(options)])),
        (prompt_for(q["question"], options, "loglik"), list(options)),
    ]


def instruction_rows(qs: list[dict]) -> list[dict]:
    """Training rows {media_path, prompt, response} of questions from :func:`questions`."""
    rows = []
    for q in qs:
        for prompt, candidates in answer_forms(q):
            rows.append(
                {
                    "media_path": q["media_path"],
                    "prompt": prompt,
                    "response": candidates[q["answer_index"]],
                }
            )
    return rows
