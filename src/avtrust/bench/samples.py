"""The sample table every benchmark task produces, and what task builders share.

One schema serves both benchmarks so that evaluation and the results database read
every task the same way; columns a task does not use are null.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from avtrust import data_files

SAMPLE_FIELDS = [
    ("id", pa.string()),
    ("bench", pa.string()),
    ("task", pa.string()),
    ("source_dataset", pa.string()),
    ("source_ids", pa.list_(pa.string())),
    ("media_path", pa.string()),
    ("has_audio", pa.bool_()),
    ("has_video", pa.bool_()),
    ("question", pa.string()),
    ("options", pa.list_(pa.string())),
    ("answer", pa.string()),
    ("answer_index", pa.int32()),  # -1 for open-ended answers (m2)
    ("category", pa.string()),
    ("seed", pa.int64()),
    ("instruments", pa.list_(pa.string())),  # AV-ConfuseBench: instruments in view
    ("muted_instrument", pa.string()),  # m1
    ("sound_type", pa.string()),  # m2
    ("snr_db", pa.float64()),  # m2: null = soundtrack replaced outright
]
SAMPLE_SCHEMA = pa.schema(SAMPLE_FIELDS)
# The plan adds the manipulation to run; `op_args` is canonical JSON.
PLAN_SCHEMA = pa.schema([*SAMPLE_FIELDS, ("op", pa.string()), ("op_args", pa.string())])

BENCHES = {
    "avtrustbench": ["MCIT", "ICIT", "MVIT", "MAIT", "COT-Stitch", "COT-Swap", "CAT", "MAT", "MVT"],
    "avconfusebench": ["m1", "m2"],
}


def derive_seed(seed: int, *keys: object) -> int:
    """A 63-bit seed from the master seed and ``keys``, stable across runs and machines."""
    digest = hashlib.sha256(json.dumps([seed, *map(str, keys)]).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def wording(overrides: dict | None = None) -> dict[str, str]:
    """Abstention wordings: the templates' defaults with the config's overrides."""
    return {**data_files.load("templates")["abstention"], **(overrides or {})}


@dataclass
class TaskContext:
    """Everything a task builder needs; builders are pure functions of this."""

    bench: str
    task: str
    samples: int
    seed: int
    clips: pd.DataFrame  # the dataset's manifest, indexed by clip_id
    dataset: str
    wording: dict[str, str]
    questions: pd.DataFrame | None = None  # question annotations, if the format has them
    sounds: pd.DataFrame | None = None  # m2: manifest of replacement sounds
    params: dict = field(default_factory=dict)
    media_root: str = "results/media"

    @property
    def rng(self) -> np.random.Generator:
        if not hasattr(self, "_rng"):
            self._rng = np.random.default_rng(self.seed)
        return self._rng

    def pick(self, n_candidates: int) -> list[int]:
        """``samples`` candidate indices: without replacement while enough exist."""
        if n_candidates == 0:
            raise ValueError(
                f"{self.bench}/{self.task}: dataset {self.dataset!r} has no usable clips "
                "for this task (see results/manifest/*.rejects.parquet)"
            )
        replace = n_candidates < self.samples
        return [int(i) for i in self.rng.choice(n_candidates, size=self.samples, replace=replace)]

    def sample_id(self, i: int) -> str:
        return f"{self.task}-{i:06d}"

    def media_path(self, i: int, ext: str) -> str:
        return f"{self.media_root}/{self.bench}/{self.task}/{self.sample_id(i)}.{ext}"

    def row(
        self,
        i: int,
        *,
        source_ids: list[str],
        question: str,
        options: list[str],
        answer: str,
        category: str,
        op: str,
        op_args: dict,
        ext: str = "mp4",
        **extra,
    ) -> dict:
        """A plan row; ``op == "none"`` means the sample uses the source clip as is."""
        if options and answer not in options:
            raise AssertionError(f"{self.task}: answer {answer!r} not among options {options}")
        media = op_args["src"] if op == "none" else self.media_path(i, ext)
        return {
            "id": self.sample_id(i),
            "bench": self.bench,
            "task": self.task,
            "source_dataset": self.dataset,
            "source_ids": source_ids,
            "media_path": media,
            "has_audio": None,
            "has_video": None,
            "question": question,
            "options": options,
            "answer": answer,
            "answer_index": options.index(answer) if options else -1,
            "category": category,
            "seed": self.seed,
            "instruments": extra.get("instruments"),
            "muted_instrument": extra.get("muted_instrument"),
            "sound_type": extra.get("sound_type"),
            "snr_db": extra.get("snr_db"),
            "op": op,
            "op_args": json.dumps(op_args, sort_keys=True),
        }

    def shuffled(self, options: list[str]) -> list[str]:
        return [options[j] for j in self.rng.permutation(len(options))]

    def clip_path(self, clip_id: str) -> str:
        return str(self.clips.at[clip_id, "path"])


def disjoint_partner(ctx: TaskContext, clip_id: str, candidates: list[str]) -> str | None:
    """A clip from ``candidates`` sharing no label with ``clip_id`` (for mismatch pairs).

    Two clips that share a label would make "mismatch" a wrong ground truth: a dog's
    bark on another dog's video matches. Returns None when no such clip exists.
    """
    labels = {x.lower() for x in ctx.clips.at[clip_id, "labels"]}
    pool = [
        c
        for c in candidates
        if c != clip_id and not labels & {x.lower() for x in ctx.clips.at[c, "labels"]}
    ]
    if not pool:
        return None
    return pool[int(ctx.rng.integers(len(pool)))]
