"""The embedded synthetic corpus, written in the real datasets' own formats.

``generate(fmt, raw_dir, corpus, media, seed)`` fills ``raw_dir`` the way a download
of the real dataset would, so the same adapter reads both:

- ``music_avqa``: solo clips and multi-instrument scenes (instruments side by side,
  each sounding from its own onset at its own level), the per-instrument stems under
  ``stems/<video_id>/<instrument>.wav``, ``annotations/scenes.json`` (instruments
  left to right with their stems) and the questions in MUSIC-AVQA format with answers
  derived exactly from the scene: ``annotations/avqa-train.json`` and
  ``annotations/avqa-test.json``.
- ``avqa``: single-event clips and their questions in AVQA format,
  ``annotations/train_qa.json`` and ``annotations/val_qa.json``.

As in the real releases, the training and evaluation files ask about different videos:
a share ``corpus.qa_train_fraction`` of the clips (chosen with the seed, at least one on
each side) has its questions in the training file, the others in the evaluation file
(:func:`train_videos`). RL-CoMM trains on the training files; the plain QA evaluation
sets are drawn from the others.
- ``audioset``: one- and two-event clips named ``<YTID>_<start>``, an
  ``annotations/eval_segments.csv`` and ``annotations/ontology.json``.
- ``folder``: environmental sounds (wind, bird, rain, drill, thunder) as
  ``<label>/<label>_<i>.wav``, the labelled-folder layout.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
from tqdm import tqdm

from avtrust import data_files
from avtrust.datasets import audioset, avqa, music_avqa
from avtrust.io import write_json_atomic
from avtrust.media.ffmpeg import encode_clip
from avtrust.media.synthesis import Source, catalog, names_of_kind, render_frames
from avtrust.media.synthesis import synthesize_audio as synth

NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight"]
SIDES = {1: ["middle"], 2: ["left", "right"], 3: ["left", "middle", "right"]}


def rng_for(seed: int, *keys: object) -> np.random.Generator:
    """A generator seeded from ``seed`` and ``keys``, stable across Python runs.

    Each clip/task gets its own stream, so adding clips does not shift others.
    """
    digest = hashlib.sha256(json.dumps([seed, *map(str, keys)]).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def train_videos(video_ids: list[str], fraction: float, seed: int, fmt: str) -> set[str]:
    """The videos whose questions go to the training annotation file: the first
    ``round(fraction * n)`` in an order seeded by ``seed`` and the video id, at least one
    and at most n - 1 when 0 < fraction < 1 (so that both files ask something)."""
    n = len(video_ids)
    k = round(fraction * n)
    if 0 < fraction < 1 and n >= 2:
        k = min(max(k, 1), n - 1)
    order = sorted(video_ids, key=lambda v: rng_for(seed, fmt, "split", v).random())
    return set(order[:k])


@dataclass(frozen=True)
class Sizes:
    """The corpus's size knobs (config ``corpus``)."""

    duration_s: float
    sample_rate: int
    # unset for formats that write sounds only (folder)
    fps: int = 0
    width: int = 0
    height: int = 0

    @classmethod
    def from_config(cls, corpus: dict) -> Sizes:
        return cls(**{k: corpus[k] for k in CLIP_SIZES if k in corpus})


class _Writer:
    """Encodes clips with the configured codecs into ``raw_dir``; with ``workers`` > 1,
    that many ffmpeg encodes run while the generator draws the next clips (every random
    draw stays in the generator's order, so the files are the same bytes)."""

    def __init__(self, raw_dir: Path, sizes: Sizes, media: dict, workers: int = 1):
        self.raw_dir, self.sizes, self.media = raw_dir, sizes, media
        self.pool = ThreadPoolExecutor(workers) if workers > 1 else None
        self.workers = workers
        self.pending: deque[Future] = deque()

    def clip(self, rel: str, frames, audio) -> None:
        s = self.sizes
        args = (self.raw_dir / rel, frames, audio)
        options = dict(
            fps=s.fps,
            sample_rate=s.sample_rate,
            video_codec=self.media["video_codec"],
            audio_codec=self.media["audio_codec"],
        )
        if self.pool is None:
            encode_clip(*args, **options)
            return
        # a few clips in flight at most: the frames waiting to be encoded are held in memory
        while len(self.pending) >= 2 * self.workers:
            self.pending.popleft().result()
        self.pending.append(self.pool.submit(encode_clip, *args, **options))

    def close(self) -> None:
        """Wait for the encodes in flight; the first one's error is raised."""
        if self.pool is None:
            return
        try:
            while self.pending:
                self.pending.popleft().result()
        finally:
            self.pool.shutdown(cancel_futures=True)

    def frames(self, sources: list[Source], rng) -> np.ndarray:
        s = self.sizes
        return render_frames(sources, s.duration_s, s.fps, s.width, s.height, rng)

    def sound(self, source: Source, rng) -> np.ndarray:
        return synth(source, self.sizes.duration_s, self.sizes.sample_rate, rng)


# --------------------------------------------------------------------- MUSIC-AVQA


@dataclass
class Scene:
    video_id: str
    instruments: list[str]  # left to right
    onsets: list[float]  # seconds
    gains: list[float]


def scene_questions(scene: Scene, rng: np.random.Generator, templates: list[dict]) -> list[dict]:
    """MUSIC-AVQA records for one scene; each answer follows from the scene exactly."""
    inst, k = scene.instruments, len(scene.instruments)
    sides = SIDES[k]
    order = sorted(range(k), key=lambda i: scene.onsets[i])  # first sounding first
    absent = [n for n in names_of_kind("instrument") if n not in inst]
    records = []
    for t in templates:
        if k < t["min_k"]:
            continue
        rule, values = t["rule"], []
        if rule == "count_heard" or rule == "count_seen":
            answer = NUMBER_WORDS[k]
        elif rule == "count_late":
            answer = NUMBER_WORDS[sum(1 for o in scene.onsets if o > 0)]
        elif rule == "longer":
            a, b = rng.choice(k, size=2, replace=False)
            values = [inst[a], inst[b]]
            answer = "yes" if scene.onsets[a] < scene.onsets[b] else "no"
        elif rule == "instrument_at_side":
            side = int(rng.choice([0, k - 1]))
            values, answer = [sides[side]], inst[side]
        elif rule == "visible_and_sounding":
            if absent and rng.random() < 0.5:
                values, answer = [str(rng.choice(absent))], "no"
            else:
                values, answer = [inst[int(rng.integers(k))]], "yes"
        elif rule == "side_of_first_or_last":
            which = str(rng.choice(["first", "last"]))
            values, answer = [which], sides[order[0] if which == "first" else order[-1]]
        elif rule == "louder_side":
            a, b = (0, k - 1) if rng.random() < 0.5 else (k - 1, 0)
            values = [sides[a], sides[b]]
            answer = "yes" if scene.gains[a] > scene.gains[b] else "no"
        elif rule == "before_after":
            pos = int(rng.integers(k - 1))
            if rng.random() < 0.5:
                values, answer = ["before", inst[order[pos + 1]]], inst[order[pos]]
            else:
                values, answer = ["after", inst[order[pos]]], inst[order[pos + 1]]
        else:
            raise ValueError(f"unknown MUSIC-AVQA question rule {rule!r}")
        records.append(
            {
                "video_id": scene.video_id,
                "modality": t["modality"],
                "qtype": t["qtype"],
                "question_content": t["question"],
                "templ_values": values,
                "answer": answer,
            }
        )
    return records


def _music_avqa(raw: Path, w: _Writer, corpus: dict, seed: int, prefix: str = "music") -> None:
    instruments = names_of_kind("instrument")
    cat = catalog()
    scenes: list[Scene] = []
    for name in instruments:
        for i in range(corpus["solos_per_instrument"]):
            scenes.append(Scene(f"{prefix}_solo_{name}_{i:02d}", [name], [0.0], [1.0]))
    for i in range(corpus["scenes"]):
        rng = rng_for(seed, "music_avqa", "scene", i)
        k = int(rng.choice(corpus["instruments_per_scene"]))
        chosen = [str(x) for x in rng.choice(instruments, size=k, replace=False)]
        # Distinct onsets and levels make order/loudness questions well defined.
        onsets = list(rng.permutation(k) * corpus["onset_step_s"])
        gains = list(rng.permutation(np.linspace(0.5, 1.0, k)))
        scenes.append(
            Scene(
                f"{prefix}_scene_{i:04d}",
                chosen,
                [float(o) for o in onsets],
                [float(g) for g in gains],
            )
        )

    templates = data_files.load("templates")["music_avqa_questions"]
    records, scene_index = [], []
    for scene in tqdm(scenes, desc="music_avqa clips", unit="clip"):
        rng = rng_for(seed, "music_avqa", scene.video_id)
        sources = [cat[n] for n in scene.instruments]
        frames = w.frames(sources, rng)
        stems = []
        for src, onset, gain in zip(sources, scene.onsets, scene.gains, strict=True):
            stem = w.sound(src, rng) * gain
            stem[: int(onset * w.sizes.sample_rate)] = 0.0
            stems.append(stem.astype(np.float32))
        mix = np.sum(stems, axis=0)
        # Stems are stored at the scale used in the mix, so that the mix is exactly
        # their sum and muting one stem removes exactly that instrument.
        scale = min(1.0, 0.9 / max(float(np.max(np.abs(mix))), 1e-9))
        mix *= scale
        stem_rel = []
        for src, stem in zip(sources, stems, strict=True):
            rel = f"stems/{scene.video_id}/{src.name}.wav"
            (raw / rel).parent.mkdir(parents=True, exist_ok=True)
            # 24-bit PCM, not float: float WAVs carry a PEAK chunk with a timestamp,
            # which would make rebuilds differ byte-wise.
            soundfile.write(raw / rel, stem * scale, w.sizes.sample_rate, subtype="PCM_24")
            stem_rel.append(rel)
        w.clip(f"videos/{scene.video_id}.mp4", frames, mix)
        scene_index.append(
            {
                "video_id": scene.video_id,
                "instruments": scene.instruments,
                "stems": stem_rel,
                "onsets": scene.onsets,
                "gains": scene.gains,
            }
        )
        records.extend(scene_questions(scene, rng, templates))
    train = train_videos(
        [s.video_id for s in scenes], corpus["qa_train_fraction"], seed, "music_avqa"
    )
    for qid, record in enumerate(records):
        record["question_id"] = qid
    for name, in_train in (("avqa-train.json", True), ("avqa-test.json", False)):
        part = [r for r in records if (r["video_id"] in train) == in_train]
        music_avqa.write_annotations(part, raw / "annotations" / name)
    write_json_atomic(raw / "annotations/scenes.json", scene_index)


# --------------------------------------------------------------------------- AVQA


def _event_phrase(label: str) -> str:
    attr = data_files.load("attributes")[label]
    return f"A {attr['noun']} {attr['verb']}"


def _avqa_option(source: Source, field: str, attrs: dict) -> str:
    """An AVQA answer option naming the source ("Dog") or its event ("A dog barks")."""
    if field == "noun":
        return attrs[source.label]["noun"].capitalize()
    return _event_phrase(source.label)


def _avqa(raw: Path, w: _Writer, corpus: dict, seed: int, prefix: str = "avqa") -> None:
    events = names_of_kind("event")
    cat = catalog()
    attrs = data_files.load("attributes")
    templates = data_files.load("templates")["avqa_questions"]
    records = []
    for i in tqdm(range(corpus["avqa_clips"]), desc="avqa clips", unit="clip"):
        rng = rng_for(seed, "avqa", i)
        source = cat[events[i % len(events)]]
        video_name = f"{prefix}{i:07d}_{int(rng.integers(0, 300)):06d}"
        w.clip(f"videos/{video_name}.mp4", w.frames([source], rng), w.sound(source, rng))
        others = [cat[e] for e in events if e != source.name]
        for template in templates:  # every clip gets one question of each AVQA type
            distractors = [others[j] for j in rng.choice(len(others), size=3, replace=False)]
            options = [_avqa_option(s, template["field"], attrs) for s in [source, *distractors]]
            perm = [int(j) for j in rng.permutation(4)]
            records.append(
                {
                    "qa_id": len(records),
                    "video_id": video_name,
                    "question": template["question"],
                    "options": [options[j] for j in perm],
                    "answer_index": perm.index(0),
                    "question_type": template["question_type"],
                    "question_relation": template["question_relation"],
                }
            )
    names = sorted({r["video_id"] for r in records})
    train = train_videos(names, corpus["qa_train_fraction"], seed, "avqa")
    for name, in_train in (("train_qa.json", True), ("val_qa.json", False)):
        part = [r for r in records if (r["video_id"] in train) == in_train]
        avqa.write_annotations(part, raw / "annotations" / name)


# ----------------------------------------------------------------------- AudioSet


def _audioset(raw: Path, w: _Writer, corpus: dict, seed: int) -> None:
    events = names_of_kind("event")
    cat = catalog()
    rows = []
    for i in tqdm(range(corpus["audioset_clips"]), desc="audioset clips", unit="clip"):
        rng = rng_for(seed, "audioset", i)
        k = 2 if rng.random() < corpus["two_event_fraction"] else 1
        sources = [cat[str(e)] for e in rng.choice(events, size=k, replace=False)]
        ytid, start = f"as{i:09d}", float(rng.integers(0, 300))
        audio = np.sum([w.sound(s, rng) for s in sources], axis=0) / k
        clip = audioset.clip_id(ytid, start)
        w.clip(f"videos/{clip}.mp4", w.frames(sources, rng), audio)
        rows.append(
            {
                "ytid": ytid,
                "start_seconds": start,
                "end_seconds": start + w.sizes.duration_s,
                "labels": [s.mid for s in sources],
            }
        )
    audioset.write_segments(rows, raw / "annotations/eval_segments.csv")
    ontology = [
        {"id": s.mid, "name": s.label, "description": f"Synthetic {s.label}."}
        for s in cat.values()
        if s.mid
    ]
    audioset.write_ontology(ontology, raw / "annotations/ontology.json")


# ------------------------------------------------------------------ sound folder


def _folder(raw: Path, w: _Writer, corpus: dict, seed: int) -> None:
    cat = catalog()
    for name in tqdm(names_of_kind("environment"), desc="environmental sounds", unit="type"):
        for i in range(corpus["sounds_per_type"]):
            rng = rng_for(seed, "sounds", name, i)
            path = raw / name / f"{name}_{i:02d}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            soundfile.write(path, w.sound(cat[name], rng), w.sizes.sample_rate, subtype="PCM_16")


GENERATORS = {"music_avqa": _music_avqa, "avqa": _avqa, "audioset": _audioset, "folder": _folder}
PREFIXED = ("music_avqa", "avqa")  # the formats whose video names take a prefix
# The `corpus` keys each format's generator reads (besides the clip sizes), and whether
# it encodes video clips (with `media`'s codecs) or writes plain WAV files.
CLIP_SIZES = ("duration_s", "fps", "width", "height", "sample_rate")
FORMAT_KEYS = {
    "music_avqa": (
        "solos_per_instrument",
        "scenes",
        "instruments_per_scene",
        "onset_step_s",
        "qa_train_fraction",
    ),
    "avqa": ("avqa_clips", "qa_train_fraction"),
    "audioset": ("audioset_clips", "two_event_fraction"),
    "folder": ("sounds_per_type",),
}
SOUND_SIZES = ("duration_s", "sample_rate")


def settings(fmt: str, corpus: dict, media: dict) -> dict:
    """Exactly the configuration :func:`generate` reads for ``fmt``: the rule's params, so
    that editing another format's knob does not regenerate this corpus."""
    if fmt not in GENERATORS:
        raise ValueError(f"no synthetic generator for format {fmt!r}; known: {sorted(GENERATORS)}")
    sizes = SOUND_SIZES if fmt == "folder" else CLIP_SIZES
    out = {"corpus": {k: corpus[k] for k in (*sizes, *FORMAT_KEYS[fmt])}}
    if fmt != "folder":
        out["media"] = {k: media[k] for k in ("video_codec", "audio_codec")}
    return out


def generate(
    fmt: str,
    raw_dir: str | Path,
    corpus: dict,
    media: dict | None,
    seed: int,
    *,
    prefix: str | None = None,
    workers: int = 1,
) -> None:
    """Write the synthetic corpus of dataset format ``fmt`` into ``raw_dir`` (``corpus``
    and ``media`` may be the slices :func:`settings` gives). ``prefix`` renames the
    MUSIC-AVQA videos (``<prefix>_scene_0000``) or the AVQA ones (``<prefix>0000000_000123``):
    the pre-training corpus (:mod:`avtrust.pretrain.corpus`) names its clips apart from
    the benchmarks' ones. ``workers``: clips encoded at once (the same files)."""
    if fmt not in GENERATORS:
        raise ValueError(f"no synthetic generator for format {fmt!r}; known: {sorted(GENERATORS)}")
    if prefix is not None and fmt not in PREFIXED:
        raise ValueError(
            f"a video-name prefix applies to {' and '.join(PREFIXED)} only, not {fmt!r}"
        )
    raw = Path(raw_dir)
    raw.mkdir(parents=True, exist_ok=True)
    writer = _Writer(raw, Sizes.from_config(corpus), media or {}, workers)
    extra = {} if prefix is None else {"prefix": prefix}
    try:
        GENERATORS[fmt](raw, writer, corpus, seed, **extra)
    finally:
        writer.close()
