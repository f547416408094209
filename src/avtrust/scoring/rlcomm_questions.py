"""RL-CoMM's training questions: a seeded subset of the QA datasets' *training* files.

RL-CoMM (Ye et al., AAAI 2026) trains its warm-up, Step-RR and Ans-CO stages on "only a
small subset of training samples from Music-AVQA and AVQA" (~20%). AV-ConfuseBench is
what it is evaluated on, and the plain QA evaluation sets come from the datasets' test
(MUSIC-AVQA ``avqa-test.json``) and val (AVQA ``val_qa.json``) files, so neither is read
here. The questions come from the annotation files of the configured ``splits``
(:data:`SPLIT_FILES`): MUSIC-AVQA ``avqa-train.json`` (and ``avqa-val.json`` with
``val``), AVQA ``train_qa.json``. AVQA has no ``val`` here: its val file is its
evaluation set.

**Options.** AVQA questions keep their four ``multi_choice`` options. MUSIC-AVQA answers
are open vocabulary; each question gets its answer and three distractors *of the answer's
kind* (:class:`avtrust.bench.answer_kinds.Distractors` over the answers of the training
questions read, descriptions left out, topped up from the kind's closed vocabulary),
shuffled with a seed per question — the same construction as the MUSIC-AVQA evaluation set
(:mod:`avtrust.evaluate.samples`), so the policy trains on the option lists it is tested
with. A yes/no question therefore has 2 options, a side question up to 3.

**Open-ended answers stay out.** Step-RR and the GRPO baseline score answers by exact
match against the options; a free description (AV-ConfuseBench m2-like) would never
match, so r_arr would stay 0 and r_avc would pull the audio reasoning toward the visual
one. A question enters the training sets only if :func:`closed_answer` holds: its answer
is one of at least two options and at most :data:`MAX_ANSWER_WORDS` words long.
MUSIC-AVQA and AVQA answers are single words or short option phrases, so in practice
this drops only questions for which no distractor exists.

**Selection.** Only questions about clips that passed the index are used. Within each
dataset the eligible questions are ordered by ``derive_seed(seed, "rlcomm", dataset,
id)``. The warm-up set takes ``warmup_samples`` of them round-robin over the datasets
(from the front of each order); the RL set (Step-RR, Ans-CO, GRPO baseline) then takes,
per dataset, ``round(fraction * eligible)`` questions (at most ``max_samples`` when that
is not 0) from the questions the warm-up did not take. The two sets are disjoint, and the
same seed and files give the same sets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from avtrust.bench.answer_kinds import Distractors
from avtrust.bench.samples import SAMPLE_FIELDS, derive_seed
from avtrust.datasets import avqa, music_avqa
from avtrust.errors import AnnotationError, ConfigError

# The training annotation files of each dataset format, by split (the releases' names).
SPLIT_FILES: dict[str, dict[str, str]] = {
    "music_avqa": {"train": "avqa-train.json", "val": "avqa-val.json"},
    "avqa": {"train": "train_qa.json"},
}
# Task names of the QA datasets, as the evaluation QA sets spell them.
TASKS = {"music_avqa": "MUSIC-AVQA", "avqa": "AVQA"}
BENCH = "qa"
MUSIC_DISTRACTORS = 3
# Longer answers are descriptions, not options (see the module docstring).
MAX_ANSWER_WORDS = 6
ROLES = ("warmup", "rl")

QUESTIONS_SCHEMA = pa.schema(
    [
        *SAMPLE_FIELDS,
        ("role", pa.string()),  # warmup | rl
        ("split", pa.string()),  # the annotation file's split
        ("question_id", pa.string()),  # the dataset's own id in that file
    ]
)


def check_splits(fmt: str, splits: Sequence[str], where: str) -> None:
    """A ConfigError naming ``where`` for a split the format has no training file of."""
    if fmt not in SPLIT_FILES:
        raise ConfigError(
            f"{where}: dataset format {fmt!r} has no question annotations to train RL-CoMM "
            f"on (formats: {', '.join(SPLIT_FILES)})"
        )
    unknown = [s for s in splits if s not in SPLIT_FILES[fmt]]
    if unknown:
        why = " (AVQA's val_qa.json is its evaluation set)" if fmt == "avqa" else ""
        raise ConfigError(
            f"{where}: split(s) {unknown} are not training splits of {fmt}{why}; "
            f"use {sorted(SPLIT_FILES[fmt])}"
        )
    if not splits:
        raise ConfigError(f"{where}: no split given")


def closed_answer(answer: str, options: Sequence[str] | None) -> bool:
    """Whether exact-match accuracy can grade the question: the answer is one of at least
    two options and short (:data:`MAX_ANSWER_WORDS`), not a description."""
    return (
        options is not None
        and len(options) >= 2
        and answer in options
        and 0 < len(answer.split()) <= MAX_ANSWER_WORDS
    )


def read_questions(fmt: str, raw_dir: str | Path, splits: Sequence[str]) -> list[dict]:
    """The questions of the ``splits`` training files of a raw dataset folder, as dicts
    (video_id, question_id, split, question, answer, category, template, options; options
    None for MUSIC-AVQA). A missing file is an AnnotationError naming it."""
    check_splits(fmt, splits, f"{fmt} training questions")
    folder = Path(raw_dir) / "annotations"
    if fmt == "music_avqa":
        music_avqa.annotation_files(folder)  # other JSON names are an error there too
    out = []
    for split in splits:
        path = folder / SPLIT_FILES[fmt][split]
        if not path.is_file():
            raise AnnotationError(
                f"{path}: missing: RL-CoMM trains on the {split} questions of {fmt} "
                f"({SPLIT_FILES[fmt][split]}); add the file to the dataset's annotations "
                "or leave the dataset out of scoring.rlcomm.questions.datasets"
            )
        if fmt == "music_avqa":
            for r in music_avqa.read_annotations(path).to_dict("records"):
                out.append(
                    {
                        "video_id": r["video_id"],
                        "question_id": str(r["question_id"]),
                        "split": split,
                        "question": r["question"],
                        "answer": r["answer"],
                        "category": r["category"],
                        "template": r["question_content"],
                        "options": None,
                    }
                )
        else:
            for r in avqa.read_annotations(path).to_dict("records"):
                out.append(
                    {
                        "video_id": r["video_id"],
                        "question_id": str(r["qa_id"]),
                        "split": split,
                        "question": r["question"],
                        "answer": r["answer"],
                        "category": r["question_type"],
                        "template": r["question"],
                        "options": list(r["options"]),
                    }
                )
    return out


def sample_id(fmt: str, question: Mapping) -> str:
    """``MUSIC-AVQA-train-123``: task, split and the dataset's question id (the
    evaluation sets' ids, ``MUSIC-AVQA-000001``, never collide with these)."""
    return f"{TASKS[fmt]}-{question['split']}-{question['question_id']}"


def with_options(fmt: str, dataset: str, questions: list[dict], seed: int) -> list[dict]:
    """``questions`` with options (see the module docstring), each a new dict."""
    if fmt != "music_avqa":
        return [dict(q) for q in questions]
    # A description must never be offered as another question's option.
    pool = [q for q in questions if 0 < len(q["answer"].split()) <= MAX_ANSWER_WORDS]
    distractors = Distractors([q["answer"] for q in pool], [q["template"] for q in pool])
    out = []
    for q in questions:
        rng = np.random.default_rng(derive_seed(seed, "rlcomm-options", dataset, sample_id(fmt, q)))
        chosen = distractors.draw(q["answer"], MUSIC_DISTRACTORS, rng, template=q["template"])
        options = [q["answer"], *chosen]
        out.append({**q, "options": [options[j] for j in rng.permutation(len(options))]})
    return out


def select(
    eligible: Mapping[str, list[dict]],
    *,
    warmup_samples: int,
    fraction: float,
    max_samples: int,
    seed: int,
) -> dict[str, list[tuple[str, dict]]]:
    """{dataset: [(role, question), ...]} from the eligible questions of each dataset,
    each carrying its ``id`` (see the module docstring for the rule)."""
    queues = {
        name: sorted(qs, key=lambda q: derive_seed(seed, "rlcomm", name, q["id"]))
        for name, qs in sorted(eligible.items())
    }
    taken = dict.fromkeys(queues, 0)
    chosen: dict[str, list[tuple[str, dict]]] = {name: [] for name in queues}
    total = 0
    while total < warmup_samples and any(taken[n] < len(q) for n, q in queues.items()):
        for name, queue in queues.items():
            if taken[name] < len(queue) and total < warmup_samples:
                chosen[name].append(("warmup", queue[taken[name]]))
                taken[name] += 1
                total += 1
    for name, queue in queues.items():
        n = round(fraction * len(queue))
        if max_samples:
            n = min(n, max_samples)
        start = taken[name]
        chosen[name] += [("rl", q) for q in queue[start : start + n]]
    return chosen


def training_questions(
    datasets: Mapping[str, str],
    raw_dirs: Mapping[str, str],
    manifests: Mapping[str, str],
    *,
    splits: Sequence[str],
    warmup_samples: int,
    fraction: float,
    max_samples: int,
    seed: int,
) -> tuple[pa.Table, dict[str, dict[str, int]]]:
    """The warm-up and RL questions of ``datasets`` (name -> format) in the common sample
    schema plus ``role``, ``split``, ``question_id``; and per dataset the counts read,
    left out (clip not indexed, open-ended answer) and chosen per role."""
    eligible: dict[str, list[dict]] = {}
    clips_of: dict[str, dict[str, dict]] = {}
    counts: dict[str, dict[str, int]] = {}
    for name, fmt in sorted(datasets.items()):
        clips = {r["clip_id"]: r for r in pq.read_table(manifests[name]).to_pylist()}
        questions = read_questions(fmt, raw_dirs[name], splits)
        indexed = [q for q in questions if q["video_id"] in clips]
        with_opts = with_options(fmt, name, indexed, seed)
        closed = [
            {**q, "id": sample_id(fmt, q)}
            for q in with_opts
            if closed_answer(q["answer"], q["options"])
        ]
        eligible[name], clips_of[name] = closed, clips
        counts[name] = {
            "read": len(questions),
            "clip_not_indexed": len(questions) - len(indexed),
            "open_ended": len(indexed) - len(closed),
        }
    chosen = select(
        eligible,
        warmup_samples=warmup_samples,
        fraction=fraction,
        max_samples=max_samples,
        seed=seed,
    )
    rows = []
    for name, picked in chosen.items():
        fmt = datasets[name]
        for role in ROLES:
            counts[name][role] = sum(1 for r, _ in picked if r == role)
        for role, q in sorted(picked, key=lambda rq: rq[1]["id"]):
            clip = clips_of[name][q["video_id"]]
            rows.append(
                {
                    "id": q["id"],
                    "bench": BENCH,
                    "task": TASKS[fmt],
                    "source_dataset": name,
                    "source_ids": [q["video_id"]],
                    "media_path": clip["path"],
                    "has_audio": clip["has_audio"],
                    "has_video": clip["has_video"],
                    "question": q["question"],
                    "options": q["options"],
                    "answer": q["answer"],
                    "answer_index": q["options"].index(q["answer"]),
                    "category": q["category"],
                    "seed": seed,
                    "role": role,
                    "split": q["split"],
                    "question_id": q["question_id"],
                }
            )
    if not any(r["role"] == "rl" for r in rows):
        raise ConfigError(
            "scoring.rlcomm.questions: no RL-CoMM training question left for Step-RR and "
            f"Ans-CO (per dataset: {counts}); raise `fraction` or `max_samples`, lower "
            "`warmup_samples`, or check the training annotation files"
        )
    return pa.Table.from_pylist(rows, schema=QUESTIONS_SCHEMA), counts
