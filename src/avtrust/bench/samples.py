"""The sample table every benchmark task produces, and what task builders share.

One schema serves both benchmarks so that evaluation and the results database read
every task the same way; columns a task does not use are null.
"""

from __future__ import annotations

import hashlib
import json
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa

from avtrust import data_files
from avtrust.errors import ConfigError
from avtrust.media.containers import takes, unfit
from avtrust.media.timeline import starts_late

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
# Measured after manipulation (avtrust.bench.checks), null where a task measures nothing:
# the benchmark table has them, the plan does not.
CHECK_FIELDS = [
    ("measured_muted_db", pa.float64()),  # m1: the muted stem's level in the output, dB
    ("measured_kept_db", pa.float64()),  # m1: the weakest kept stem's level, dB
    ("measured_snr_db", pa.float64()),  # m2: original over new sound in the output, dB
    ("measured_donor_similarity", pa.float64()),  # MVIT/MAIT/COT-Swap: with the donor's audio
    ("measured_original_similarity", pa.float64()),  # ... and with the replaced audio
    ("measured_audio_streams", pa.int32()),  # MAT: audio streams in the output
]
CHECK_NAMES = [name for name, _ in CHECK_FIELDS]
SAMPLE_SCHEMA = pa.schema(SAMPLE_FIELDS + CHECK_FIELDS)
# The columns that identify a sample and what a model is shown; derived tables (pairs,
# reference reasoning) start with these.
_CORE = ("id", "bench", "task", "source_dataset", "media_path", "has_audio", "has_video",
         "question", "options")  # fmt: skip
SAMPLE_CORE_FIELDS = [f for f in SAMPLE_FIELDS if f[0] in _CORE]
CORE_NAMES = [name for name, _ in SAMPLE_CORE_FIELDS]
# The plan adds the manipulation to run; `op_args` is canonical JSON.
PLAN_SCHEMA = pa.schema([*SAMPLE_FIELDS, ("op", pa.string()), ("op_args", pa.string())])

# json.dumps(obj, sort_keys=True), without building an encoder per call.
_canonical_json = json.JSONEncoder(sort_keys=True).encode

# Per manipulation, the op_args naming the sources whose (video, audio) streams it puts
# into its output as they are, unless the output container does not take their codec.
STREAM_SOURCES = {
    "strip_audio": (("src",), ()),
    "strip_video": ((), ("src",)),
    "combine": (("video_src",), ("audio_src",)),
    "swap_stitch": (("src1", "src2"), ("src1", "src2")),
    "mute_stem": (("video_src",), ()),
    "replace_soundtrack": (("video_src",), ()),
}

# Manipulations whose output holds a source's audio alone: a stream copy would start it
# at the audio's own start, so a source whose audio starts late has it re-encoded with
# the silence before it (the output plays as the clip did).
AUDIO_ALONE = {"strip_video": "src"}

# What planning does when a task asks for more samples than its source has distinct
# candidates (benchmark.on_short_supply).
SHORT_SUPPLY = ("cap", "fail")

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


# The abstention option each generated task offers (its answer when the clip or the
# options make the question unanswerable).
TASK_ABSTENTIONS = {
    "MCIT": ("none_of_the_above",),
    "ICIT": ("irrelevant_options",),
    "MVIT": ("mismatch",),
    "MAIT": ("mismatch",),
    "COT-Stitch": ("mismatch",),
    "COT-Swap": ("mismatch",),
    "MAT": ("audio_missing",),
    "MVT": ("visual_missing",),
}


def task_wording(task: str, overrides: dict | None = None) -> dict[str, str]:
    """The wordings ``task`` uses, with the config's overrides: editing another task's
    wording leaves this task's plan as it is."""
    full = wording(overrides)
    return {k: full[k] for k in TASK_ABSTENTIONS.get(task, ())}


@dataclass
class TaskContext:
    """Everything a task builder needs; builders are pure functions of this.

    Builders run once per sample (up to ~60,000 times per task at paper scale), so
    they read the manifest through the plain dicts below (``clip_paths``,
    ``clip_labels``, ``clip_stems``), built once, never through per-row DataFrame
    lookups.
    """

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
    on_short_supply: str = "cap"  # SHORT_SUPPLY
    supply: int | None = None  # distinct candidates the builder drew from (set by pick)

    @property
    def rng(self) -> np.random.Generator:
        if not hasattr(self, "_rng"):
            self._rng = np.random.default_rng(self.seed)
        return self._rng

    @cached_property
    def clip_ids(self) -> list[str]:
        """Clip ids in manifest order."""
        return [str(c) for c in self.clips.index]

    @cached_property
    def clip_paths(self) -> dict[str, str]:
        return dict(zip(self.clip_ids, map(str, self.clips["path"]), strict=True))

    @cached_property
    def clip_labels(self) -> dict[str, list[str]]:
        return dict(zip(self.clip_ids, map(list, self.clips["labels"]), strict=True))

    @cached_property
    def clip_stems(self) -> dict[str, list[str]]:
        return dict(zip(self.clip_ids, map(list, self.clips["stems"]), strict=True))

    @cached_property
    def clip_streams(self) -> dict[str, tuple | None]:
        """Per clip, the stream parameters that decide whether two clips can be joined
        by stream copy (codecs, frame size and rate, sample rate, channels, rotation);
        None where the manifest lacks them."""
        columns = [
            "video_codec",
            "width",
            "height",
            "fps",
            "audio_codec",
            "sample_rate",
            "channels",
            "rotation",
        ]
        if not set(columns) <= set(self.clips.columns):
            return dict.fromkeys(self.clip_ids)
        rows = zip(*(self.clips[c].tolist() for c in columns), strict=True)
        # A null read back from Parquet is None or NaN (numeric columns with nulls).
        known = (None if any(pd.isna(v) for v in r) else r for r in rows)
        return dict(zip(self.clip_ids, known, strict=True))

    def joinable_by_copy(self, *clip_ids: str, ext: str = "mp4") -> bool | None:
        """True/False if the manifest tells whether the clips share stream parameters in
        codecs an ``ext`` container takes."""
        streams = [self.clip_streams[c] for c in clip_ids]
        if None in streams:
            return None
        video_codec, *_, audio_codec, _, _, _ = streams[0]
        return len(set(streams)) == 1 and not unfit(ext, video_codec, audio_codec)

    @cached_property
    def codecs_by_path(self) -> dict[str, tuple[str | None, str | None]]:
        """(video codec, audio codec) of each clip by its path; empty where the manifest
        lacks them."""
        if not {"video_codec", "audio_codec"} <= set(self.clips.columns):
            return {}
        columns = (self.clips["video_codec"].tolist(), self.clips["audio_codec"].tolist())
        codecs = zip(*columns, strict=True)
        return dict(zip(map(str, self.clips["path"]), codecs, strict=True))

    @cached_property
    def audio_offsets(self) -> dict[str, float | None]:
        """Seconds each clip's audio starts after the clip, by path (None where unknown);
        empty where the manifest lacks them."""
        if "audio_offset" not in self.clips.columns:
            return {}
        offsets = [None if pd.isna(v) else float(v) for v in self.clips["audio_offset"]]
        return dict(zip(map(str, self.clips["path"]), offsets, strict=True))

    def streams_to_encode(self, op: str, op_args: dict, ext: str) -> list[str] | None:
        """The source streams ("video", "audio") that ``op`` must re-encode because an
        ``ext`` container does not take their codec (Vorbis, VP8 or PCM into mp4, MP3 into
        m4a), or because the audio alone starts late (:data:`AUDIO_ALONE`); the others are
        copied. None if ``op`` copies nothing or the manifest does not know a source (the
        shard then probes)."""
        if op not in STREAM_SOURCES:
            return None
        found: set[str] = set()
        for kind, keys in zip(("video", "audio"), STREAM_SOURCES[op], strict=True):
            for key in keys:
                codecs = self.codecs_by_path.get(str(op_args[key]))
                if codecs is None:
                    return None
                if not takes(ext, kind, codecs[0] if kind == "video" else codecs[1]):
                    found.add(kind)
        if op in AUDIO_ALONE:
            offset = self.audio_offsets.get(str(op_args[AUDIO_ALONE[op]]))
            if offset is None:
                return None
            if starts_late(offset):
                found.add("audio")
        return [k for k in ("video", "audio") if k in found]

    def with_encode(self, op: str, op_args: dict, ext: str) -> dict:
        """``op_args`` plus ``encode`` (:meth:`streams_to_encode`) where it is known."""
        encode = self.streams_to_encode(op, op_args, ext)
        return op_args if encode is None else {**op_args, "encode": encode}

    def pick(self, n_candidates: int) -> list[int]:
        """Distinct candidate indices, ``samples`` of them or every candidate when fewer
        exist (``on_short_supply: cap``; ``fail`` raises instead).

        A candidate is what one sample is built from ((clip, question) pair, clip or
        scene); drawing one twice would repeat a sample, so a request beyond the supply
        is capped, never filled with repeats, and the draw needs memory for the
        candidates only, however many samples are asked for.
        """
        self.check_supply(n_candidates)
        size = min(self.samples, n_candidates)
        return self.rng.choice(n_candidates, size=size, replace=False).tolist()

    def check_supply(self, n_candidates: int) -> None:
        """Record the supply; stop if there is none, or too little under ``fail``."""
        if n_candidates == 0:
            raise ValueError(
                f"{self.bench}/{self.task}: dataset {self.dataset!r} has no usable clips "
                "for this task (see results/manifest/*.rejects.parquet)"
            )
        self.supply = n_candidates
        if n_candidates < self.samples and self.on_short_supply == "fail":
            raise ConfigError(
                f"{self.bench}/{self.task}: {self.samples} samples requested "
                f"(benchmark.{self.bench}.{self.task}.samples) but dataset "
                f"{self.dataset!r} gives only {n_candidates} distinct candidates; ask for "
                f"at most {n_candidates}, or set benchmark.on_short_supply: cap"
            )

    def pick_pairs(self, firsts: list[str], partners: PartnerPool) -> Iterator[tuple[int, str]]:
        """(index into ``firsts``, partner clip) for pairing tasks, distinct pairs only.

        A pair is the candidate here (its media differ from any other pair's), so the
        supply is the number of (first, partner) pairs. While ``firsts`` suffice, each is
        drawn at most once with a random partner, lazily so that the caller's own draws
        interleave as they always have; beyond them, further rounds pair the firsts with
        partners they have not had, until the request or the supply is met.
        """
        n = len(firsts)
        if n == 0:
            self.check_supply(0)
        supply = sum(partners.count(c) for c in firsts)
        if self.samples <= n:
            picked = self.pick(n)
            self.supply = supply
            for k in picked:
                other = partners.draw(firsts[k], self.rng)
                if other is not None:
                    yield k, other
            return
        self.check_supply(supply)
        used: dict[int, set[str]] = {}
        planned, wanted = 0, min(self.samples, supply)
        while planned < wanted:
            before = planned
            for k in self.rng.permutation(n).tolist():
                taken = used.setdefault(k, set())
                other = partners.draw_new(firsts[k], taken, self.rng)
                if other is None:
                    continue
                taken.add(other)
                planned += 1
                yield k, other
                if planned == wanted:
                    return
            if planned == before:
                return

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
            "op_args": _canonical_json(self.with_encode(op, op_args, ext)),
        }

    def shuffled(self, options: list[str]) -> list[str]:
        return [options[j] for j in self.rng.permutation(len(options)).tolist()]

    def clip_path(self, clip_id: str) -> str:
        return self.clip_paths[clip_id]


class Survivors:
    """Positions ``0..n-1`` minus the sorted, distinct positions ``removed``, by rank.

    ``survivors[j]`` is the j-th position not removed: what
    ``[p for p in range(n) if p not in removed][j]`` would give, in O(log len(removed))
    instead of O(n), so a sequence can be filtered per sample without being copied.
    """

    __slots__ = ("_before", "size")

    def __init__(self, n: int, removed: list[int]):
        self.size = n - len(removed)
        # removed[i] - i = how many kept positions come before removed[i].
        self._before = [p - i for i, p in enumerate(removed)]

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, j: int) -> int:
        if not 0 <= j < self.size:
            raise IndexError(j)
        return j + bisect_right(self._before, j)


class PartnerPool:
    """Partners for mismatch pairs: clips of ``candidates`` sharing no label with a clip.

    Two clips that share a label would make "mismatch" a wrong ground truth: a dog's
    bark on another dog's video matches. Labels compare case-insensitively, and a clip
    is never its own partner. The clips to leave out are found through a label index
    and cached per label set, so a draw costs O(log n) instead of a scan of all
    candidates; the draw itself is one ``rng.integers(len(pool))`` over the pool in
    candidate order.
    """

    def __init__(self, candidates: list[str], labels: dict[str, list[str]]):
        self.candidates = candidates
        self._labels = labels
        self._position = {c: i for i, c in enumerate(candidates)}
        self._holders: dict[str, list[int]] = {}  # lower-cased label -> candidate positions
        for i, c in enumerate(candidates):
            for label in {x.lower() for x in labels[c]}:
                self._holders.setdefault(label, []).append(i)
        self._pools: dict[tuple, Survivors] = {}

    def _pool(self, clip_id: str) -> Survivors:
        own = frozenset(x.lower() for x in self._labels[clip_id])
        # A labelled clip is excluded by its own labels; an unlabelled one by identity.
        key = (own, None if own else clip_id)
        if key not in self._pools:
            removed = {p for label in own for p in self._holders.get(label, ())}
            if clip_id in self._position:
                removed.add(self._position[clip_id])
            self._pools[key] = Survivors(len(self.candidates), sorted(removed))
        return self._pools[key]

    def count(self, clip_id: str) -> int:
        """How many partners ``clip_id`` has."""
        return len(self._pool(clip_id))

    def draw_new(self, clip_id: str, taken: set[str], rng: np.random.Generator) -> str | None:
        """A random partner of ``clip_id`` not in ``taken``, or None when none is left."""
        pool = self._pool(clip_id)
        left = len(pool) - len(taken)
        if left <= 0:
            return None
        if len(taken) * 2 <= len(pool):  # mostly free: redraw on a taken one
            while True:
                other = self.candidates[pool[int(rng.integers(len(pool)))]]
                if other not in taken:
                    return other
        free = [j for j in range(len(pool)) if self.candidates[pool[j]] not in taken]
        return self.candidates[pool[free[int(rng.integers(len(free)))]]]

    def draw(self, clip_id: str, rng: np.random.Generator) -> str | None:
        """A random partner for ``clip_id``, or None when no candidate qualifies."""
        pool = self._pool(clip_id)
        if not pool:
            return None
        return self.candidates[pool[int(rng.integers(len(pool)))]]
