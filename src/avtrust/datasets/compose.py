"""AV-ConfuseBench scenes composed from solo clips (``source: compose``).

Real MUSIC-AVQA videos are recordings with one soundtrack, not stems, so muting one
instrument of a real ensemble is impossible. Instead, as MUSIC-AVQA's own synthetic
videos were made, a scene places k solo clips side by side and uses their soundtracks
as the stems: the scene's soundtrack is exactly the sum of the stems, and the m1
sample (one instrument muted) mixes k-1 of them, so its ground truth is exact.

Composition runs in its own rule, ``compose_scenes``, between the index of the solo
dataset and the index of the scenes dataset::

    fetch (music_avqa) -> index (music_avqa) -> compose_scenes (music_avqa_scenes)
        -> index (music_avqa_scenes) -> plan m1 ...

It reads the solo dataset's *manifest*, so only clips that probed and decoded cleanly
are used, and its solos are the clips labelled with exactly one instrument (from a solo
list ``*solo*.json`` in the MUSIC dataset layout, or the synthetic corpus's own solos).
It writes the layout of the synthetic corpus, which the ``music_avqa`` adapter and the
m1 builder read unchanged::

    videos/scene_000000.mp4            k tiles, left to right, and the mixed soundtrack
    stems/scene_000000/0_violin.wav    one stem per tile, at the level used in the mix
    annotations/scenes.json            [{video_id, instruments, stems, sources, offsets,
                                         gains, duration_s}]

Each scene has its own random stream (seed, dataset name, scene number): the number of
instruments, which ones, which solo of each, and where in the solo the segment starts.
Each stem is brought to the same RMS level, so no instrument is inaudible, and all are
scaled together so the mix peaks at 0.9 at most.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import ffmpeg
import numpy as np
import pyarrow.parquet as pq
import soundfile
from tqdm import tqdm

from avtrust.datasets.synthetic import rng_for
from avtrust.errors import MediaError, StorageError
from avtrust.io import write_json_atomic
from avtrust.media.ffmpeg import atomic_output, decode_audio_segment, output, run, scratch_file

log = logging.getLogger(__name__)

STEM_RMS = 0.1  # every stem's level before the common peak scaling
PEAK = 0.9


@dataclass(frozen=True)
class ComposeOptions:
    """The ``datasets.<name>`` keys of a ``compose`` source, with their defaults."""

    scenes: int
    instruments_per_scene: tuple[int, ...] = (2, 3)
    duration_s: float = 10.0
    min_solo_s: float = 1.0
    tile_width: int = 224
    tile_height: int = 224
    fps: int = 25

    @classmethod
    def from_config(cls, spec: Mapping[str, Any]) -> ComposeOptions:
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in spec.items() if k in names}
        if "instruments_per_scene" in values:
            values["instruments_per_scene"] = tuple(values["instruments_per_scene"])
        return cls(**values)


@dataclass(frozen=True)
class Solo:
    clip_id: str
    path: str
    duration: float


@dataclass(frozen=True)
class ScenePlan:
    video_id: str
    instruments: list[str]  # left to right
    solos: list[Solo]
    offsets: list[float]  # seconds into each solo
    duration_s: float


def solo_pool(manifest_path: str | Path, min_solo_s: float = 1.0) -> dict[str, list[Solo]]:
    """Instrument -> its solo clips (one label, audio and video, long enough), by clip id."""
    pool: dict[str, list[Solo]] = {}
    for row in pq.read_table(manifest_path).to_pylist():
        if (
            len(row["labels"]) == 1
            and row["has_audio"]
            and row["has_video"]
            and row["duration"] >= min_solo_s
        ):
            pool.setdefault(row["labels"][0], []).append(
                Solo(row["clip_id"], row["path"], float(row["duration"]))
            )
    return {name: sorted(clips, key=lambda s: s.clip_id) for name, clips in sorted(pool.items())}


def plan_scenes(
    pool: Mapping[str, list[Solo]], options: ComposeOptions, seed: int, dataset: str
) -> list[ScenePlan]:
    """Which solos each scene combines; a pure function of the pool, options and seed."""
    instruments = sorted(pool)
    sizes = [k for k in options.instruments_per_scene if k <= len(instruments)]
    if not sizes:
        raise MediaError(
            f"compose {dataset}: scenes of {list(options.instruments_per_scene)} instruments "
            f"need solos of that many different instruments; the solo dataset has "
            f"{len(instruments)} ({', '.join(instruments) or 'none'}). Solos are clips "
            "labelled with one instrument: give the solo dataset a solo list "
            '({"videos": {"<instrument>": ["<video id>", ...]}}) among its annotations.'
        )
    plans = []
    for i in range(options.scenes):
        rng = rng_for(seed, dataset, "scene", i)
        k = int(rng.choice(sizes))
        chosen = [instruments[j] for j in rng.choice(len(instruments), size=k, replace=False)]
        solos = [pool[name][int(rng.integers(len(pool[name])))] for name in chosen]
        duration = min(options.duration_s, *(s.duration for s in solos))
        offsets = [round(float(rng.uniform(0.0, s.duration - duration)), 3) for s in solos]
        plans.append(ScenePlan(f"scene_{i:06d}", chosen, solos, offsets, round(duration, 3)))
    return plans


def _stem_name(index: int, instrument: str) -> str:
    return f"{index}_{re.sub(r'[^A-Za-z0-9_-]+', '_', instrument)}.wav"


def level_stems(stems: list[np.ndarray]) -> tuple[list[np.ndarray], list[float]]:
    """Each stem at RMS STEM_RMS, then all scaled so their sum peaks at PEAK at most.

    Returns the stems as they are mixed and the gain applied to each.
    """
    gains = []
    for i, stem in enumerate(stems):
        rms = float(np.sqrt(np.mean(stem.astype(np.float64) ** 2)))
        if rms == 0.0:
            raise MediaError(f"solo {i} is silent in the chosen segment")
        gains.append(STEM_RMS / rms)
    leveled = [stem * g for stem, g in zip(stems, gains, strict=True)]
    peak = float(np.max(np.abs(np.sum(leveled, axis=0))))
    scale = min(1.0, PEAK / peak) if peak > 0 else 1.0
    return [(s * scale).astype(np.float32) for s in leveled], [g * scale for g in gains]


def compose_scene(
    plan: ScenePlan, raw_dir: str | Path, options: ComposeOptions, media: Mapping[str, Any]
) -> dict:
    """Write one scene's video and stems under ``raw_dir``; return its scenes.json record."""
    raw = Path(raw_dir)
    sr = media["sample_rate"]
    n = int(round(plan.duration_s * sr))
    stems = []
    for solo, offset in zip(plan.solos, plan.offsets, strict=True):
        audio = decode_audio_segment(solo.path, offset, plan.duration_s, sr)[:n]
        stems.append(np.pad(audio, (0, n - len(audio))))
    stems, gains = level_stems(stems)
    stem_rel = []
    for j, (instrument, stem) in enumerate(zip(plan.instruments, stems, strict=True)):
        rel = f"stems/{plan.video_id}/{_stem_name(j, instrument)}"
        (raw / rel).parent.mkdir(parents=True, exist_ok=True)
        # 24-bit PCM: exact enough, and no timestamped PEAK chunk as float WAVs have.
        soundfile.write(raw / rel, stem, sr, subtype="PCM_24")
        stem_rel.append(rel)
    mix = np.sum(stems, axis=0).astype("<f4")
    tiles = [
        ffmpeg.input(str(solo.path), ss=offset, t=plan.duration_s)
        .video.filter(
            "scale", options.tile_width, options.tile_height, force_original_aspect_ratio="decrease"
        )
        .filter("pad", options.tile_width, options.tile_height, "(ow-iw)/2", "(oh-ih)/2")
        .filter("setsar", 1)
        .filter("fps", fps=options.fps)
        for solo, offset in zip(plan.solos, plan.offsets, strict=True)
    ]
    video = ffmpeg.filter(tiles, "hstack", inputs=len(tiles)) if len(tiles) > 1 else tiles[0]
    dst = raw / "videos" / f"{plan.video_id}.mp4"
    with (
        atomic_output(dst) as tmp,
        scratch_file(dst, ".f32") as pcm,
    ):
        pcm.write(mix.tobytes())
        pcm.flush()
        audio = ffmpeg.input(pcm.name, format="f32le", ac=1, ar=sr).audio
        run(
            output(
                [video, audio],
                tmp,
                t=plan.duration_s,
                pix_fmt="yuv420p",
                ar=sr,
                **media["video_codec"],
                **media["audio_codec"],
            ),
            what=f"composing {plan.video_id} from {', '.join(s.clip_id for s in plan.solos)}",
        )
    return {
        "video_id": plan.video_id,
        "instruments": plan.instruments,
        "stems": stem_rel,
        "sources": [s.clip_id for s in plan.solos],
        "offsets": plan.offsets,
        "gains": [round(g, 6) for g in gains],
        "duration_s": plan.duration_s,
    }


def compose(
    dataset: str,
    solo_manifest: str | Path,
    raw_dir: str | Path,
    spec: Mapping[str, Any],
    media: Mapping[str, Any],
    seed: int,
    *,
    workers: int = 1,
) -> list[dict]:
    """Compose ``spec['scenes']`` scenes into ``raw_dir``; return the scenes.json records.

    A scene whose solos cannot be read is logged and left out (the others are kept), so
    one bad solo never stops the stage; the scene numbers of the others do not change.
    """
    options = ComposeOptions.from_config(spec)
    pool = solo_pool(solo_manifest, options.min_solo_s)
    log.info(
        "%s: %d solos of %d instruments: %s",
        dataset,
        sum(map(len, pool.values())),
        len(pool),
        ", ".join(f"{k} ({len(v)})" for k, v in pool.items()),
    )
    plans = plan_scenes(pool, options, seed, dataset)
    raw = Path(raw_dir)
    (raw / "videos").mkdir(parents=True, exist_ok=True)

    def one(plan: ScenePlan) -> dict | None:
        try:
            return compose_scene(plan, raw, options, media)
        except StorageError:
            raise  # a full disk is not the scene's fault: stop the job
        except (MediaError, OSError, soundfile.SoundFileError) as exc:
            log.warning("%s: left out: %s", plan.video_id, exc)
            return None

    with ThreadPoolExecutor(max_workers=workers) as pool_:
        records = list(
            tqdm(pool_.map(one, plans), total=len(plans), desc=f"compose {dataset}", unit="scene")
        )
    scenes = [r for r in records if r is not None]
    if not scenes:
        raise MediaError(f"compose {dataset}: no scene could be composed (see the log)")
    write_json_atomic(raw / "annotations" / "scenes.json", scenes)
    return scenes
