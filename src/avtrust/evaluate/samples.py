"""What evaluation runs on: the test samples of the benchmark tasks, and the plain QA sets.

The benchmark tables hold every sample; the score stage's split marks each one train or
test, and evaluation uses the *test* part (``split: all`` uses everything).

The RL-CoMM main table reports plain question answering on MUSIC-AVQA (its 9 question
types) and AVQA, on unmanipulated clips. The AVTrustBench tasks built from these
datasets are manipulated (MAT strips the audio, MVIT swaps it…), so
:func:`build_qa_set` makes a small evaluation set per dataset instead: ``samples``
questions drawn with a seed from the dataset's annotations (MUSIC-AVQA: the
``avqa-test.json`` file when there is one; AVQA: its ``val`` file; never a training
file), about clips that
passed the index, in the
common sample schema (bench ``qa``, task ``MUSIC-AVQA`` or ``AVQA``). AVQA questions
keep their four options; MUSIC-AVQA answers are open vocabulary, so each question gets
its answer and three distractors *of the answer's kind* (yes/no, number, instrument,
side, indoor/outdoor, ...; :mod:`avtrust.bench.answer_kinds`) drawn from the set's
answers, topped up from the kind's closed vocabulary, shuffled with the seed — a
multiple-choice version of the dataset. Kinds with fewer values give fewer options:
yes/no questions have 2, indoor/outdoor 2, side questions 3.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from avtrust.bench.answer_kinds import Distractors
from avtrust.bench.samples import SAMPLE_SCHEMA, derive_seed
from avtrust.datasets import avqa, music_avqa
from avtrust.errors import AnnotationError
from avtrust.scoring.tables import train_split

QA_BENCH = "qa"
QA_TASKS = {"music_avqa": "MUSIC-AVQA", "avqa": "AVQA"}
MUSIC_DISTRACTORS = 3


def eval_rows(table_path: str, split_path: str | None, split: str = "test") -> list[dict]:
    """The rows of one benchmark table in ``split`` (``all``: every row), table order."""
    rows = pq.read_table(table_path).to_pylist()
    if split == "all" or split_path is None:
        return rows
    train = train_split(split_path)  # the split has two parts: train, and test
    return [r for r in rows if ((r["bench"], r["id"]) in train) == (split == "train")]


def _question_files(raw_dir: Path, fmt: str) -> list[Path]:
    """The evaluation questions' files. Training files are never among them: RL-CoMM
    trains on them (:mod:`avtrust.scoring.rlcomm_questions`)."""
    folder = raw_dir / "annotations"
    if fmt == "music_avqa":
        files, _ = music_avqa.annotation_files(folder)  # other JSON names are an error
        test = [f for f in files if f.name == "avqa-test.json"]
    else:  # AVQA's test answers are not public: its val split is the evaluation set
        files = sorted(folder.glob("*.json"))
        test = [f for f in files if "val" in f.name]
    files = test or [f for f in files if "train" not in f.name]
    if not files:
        raise AnnotationError(
            f"no {fmt} evaluation question annotations under {folder} "
            "(training files are not evaluated on)"
        )
    return files


def _questions(fmt: str, files: Iterable[Path]) -> list[dict]:
    """Questions as dicts; MUSIC-AVQA's category is ``modality/type``, AVQA's its
    question type, and only AVQA has options."""
    reader = music_avqa.read_annotations if fmt == "music_avqa" else avqa.read_annotations
    category = "category" if fmt == "music_avqa" else "question_type"
    out = []
    for path in files:
        for r in reader(path).to_dict("records"):
            out.append(
                {
                    "video_id": r["video_id"],
                    "question": r["question"],
                    "answer": r["answer"],
                    "category": r[category],
                    "template": r.get("question_content") or r["question"],
                    "options": list(r["options"]) if "options" in r else None,
                }
            )
    return out


def build_qa_set(
    fmt: str, dataset: str, manifest_path: str, raw_dir: str, samples: int, seed: int
) -> pa.Table:
    """A plain QA evaluation set of ``dataset`` (format music_avqa or avqa); see module."""
    if fmt not in QA_TASKS:
        raise ValueError(f"no QA set for dataset format {fmt!r} ({', '.join(QA_TASKS)})")
    task = QA_TASKS[fmt]
    clips = {r["clip_id"]: r for r in pq.read_table(manifest_path).to_pylist()}
    questions = [
        q for q in _questions(fmt, _question_files(Path(raw_dir), fmt)) if q["video_id"] in clips
    ]
    rng = np.random.default_rng(derive_seed(seed, QA_BENCH, task))
    picked = sorted(rng.permutation(len(questions))[:samples].tolist())
    distractors = Distractors([q["answer"] for q in questions], [q["template"] for q in questions])
    rows = []
    for n, k in enumerate(picked):
        q = questions[k]
        options = q["options"]
        if options is None:
            chosen = distractors.draw(q["answer"], MUSIC_DISTRACTORS, rng, template=q["template"])
            options = [[q["answer"], *chosen][j] for j in rng.permutation(len(chosen) + 1)]
        clip = clips[q["video_id"]]
        rows.append(
            {
                "id": f"{task}-{n:06d}",
                "bench": QA_BENCH,
                "task": task,
                "source_dataset": dataset,
                "source_ids": [q["video_id"]],
                "media_path": clip["path"],
                "has_audio": clip["has_audio"],
                "has_video": clip["has_video"],
                "question": q["question"],
                "options": options,
                "answer": q["answer"],
                "answer_index": options.index(q["answer"]),
                "category": q["category"],
                "seed": seed,
            }
        )
    return pa.Table.from_pylist(rows, schema=SAMPLE_SCHEMA)
