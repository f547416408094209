"""Shared media fixtures: tiny synthetic clips encoded once per test session.

Everything is generated here from the synthesis catalogue with fixed seeds and the
embedded default's codecs, so tests can compare the media a function writes with
the exact samples and pixels that went in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile

from avtrust.media.ffmpeg import encode_clip
from avtrust.media.synthesis import catalog, render_frames, synthesize_audio

DURATION_S = 1.5
FPS = 8
WIDTH = 64
HEIGHT = 48
SAMPLE_RATE = 16000
VIDEO_CODEC = {"vcodec": "libx264", "preset": "veryfast", "crf": 23, "threads": 1}
AUDIO_CODEC = {"acodec": "aac", "b:a": "64k"}


@dataclass(frozen=True)
class Clip:
    """An encoded fixture clip and what went into it."""

    path: Path
    sources: tuple[str, ...]
    frames: np.ndarray | None  # the RGB frames that were encoded
    audio: np.ndarray | None  # the float samples that were encoded
    width: int = WIDTH
    height: int = HEIGHT


def make_clip(
    path: Path,
    sources: list[str],
    seed: int,
    *,
    video: bool = True,
    audio: bool = True,
    width: int = WIDTH,
) -> Clip:
    """Encode a clip showing and/or sounding ``sources`` (audio = sum of the sources)."""
    cat = catalog()
    rng = np.random.default_rng(seed)
    frames = (
        render_frames([cat[s] for s in sources], DURATION_S, FPS, width, HEIGHT, rng)
        if video
        else None
    )
    sound = (
        np.sum([synthesize_audio(cat[s], DURATION_S, SAMPLE_RATE, rng) for s in sources], axis=0)
        if audio
        else None
    )
    encode_clip(
        path,
        frames,
        sound,
        fps=FPS,
        sample_rate=SAMPLE_RATE,
        video_codec=VIDEO_CODEC,
        audio_codec=AUDIO_CODEC,
    )
    return Clip(path, tuple(sources), frames, sound, width=width)


@pytest.fixture(scope="session")
def clips(tmp_path_factory) -> dict[str, Clip]:
    """Single-source clips: two compatible A+V clips, a wider one, audio-only, video-only."""
    root = tmp_path_factory.mktemp("clips")
    return {
        "violin": make_clip(root / "violin.mp4", ["violin"], 1),
        "cello": make_clip(root / "cello.mp4", ["cello"], 2),
        "piano_wide": make_clip(root / "piano_wide.mp4", ["piano"], 3, width=80),
        "audio_only": make_clip(root / "audio_only.m4a", ["flute"], 4, video=False),
        "video_only": make_clip(root / "video_only.mp4", ["guitar"], 5, audio=False),
    }


@dataclass(frozen=True)
class Scene:
    """A multi-instrument clip whose audio is exactly the sum of its stems."""

    clip: Clip
    instruments: tuple[str, ...]
    stems: tuple[np.ndarray, ...]
    stem_paths: tuple[Path, ...]


@pytest.fixture(scope="session")
def scene(tmp_path_factory) -> Scene:
    """violin | cello | trumpet side by side, stems written as float WAV.

    The three fundamentals (440, 131, 349 Hz) lie clear of each other's partials, so
    the energy at one instrument's fundamental belongs to that instrument alone.
    """
    root = tmp_path_factory.mktemp("scene")
    names = ("violin", "cello", "trumpet")
    cat = catalog()
    rng = np.random.default_rng(11)
    frames = render_frames([cat[n] for n in names], DURATION_S, FPS, WIDTH, HEIGHT, rng)
    # Each stem at 0.6 × the synthesis peak, so the mix of three stays below 0.9.
    stems = tuple(
        (0.6 * synthesize_audio(cat[n], DURATION_S, SAMPLE_RATE, rng)).astype(np.float32)
        for n in names
    )
    stem_paths = []
    for name, stem in zip(names, stems, strict=True):
        path = root / "stems" / f"{name}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(path, stem, SAMPLE_RATE, subtype="FLOAT")
        stem_paths.append(path)
    mix = np.sum(stems, axis=0)
    video = root / "scene.mp4"
    encode_clip(
        video,
        frames,
        mix,
        fps=FPS,
        sample_rate=SAMPLE_RATE,
        video_codec=VIDEO_CODEC,
        audio_codec=AUDIO_CODEC,
    )
    return Scene(Clip(video, names, frames, mix), names, stems, tuple(stem_paths))


@pytest.fixture(scope="session")
def drill_wav(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """1.0 s of the 'drill' environmental sound as a float WAV (shorter than the clips)."""
    path = tmp_path_factory.mktemp("sounds") / "drill.wav"
    sound = synthesize_audio(catalog()["drill"], 1.0, SAMPLE_RATE, np.random.default_rng(21))
    soundfile.write(path, sound, SAMPLE_RATE, subtype="FLOAT")
    return path, sound
