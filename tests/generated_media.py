"""Clips generated for the dataset-source tests (importable from unit and workflow tests,
unlike the conftest modules, whose shared name ``conftest`` makes imports ambiguous)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avtrust.media.ffmpeg import encode_clip
from avtrust.media.synthesis import catalog, render_frames, synthesize_audio

SAMPLE_RATE = 16000
VIDEO_CODEC = {"vcodec": "libx264", "preset": "veryfast", "crf": 23, "threads": 1}
AUDIO_CODEC = {"acodec": "aac", "b:a": "64k"}
MEDIA = {"video_codec": VIDEO_CODEC, "audio_codec": AUDIO_CODEC, "sample_rate": SAMPLE_RATE}
# The videos of the MUSIC-AVQA fixture annotations (tests/data) -> the instruments they
# show; 00000099 is asked about there but absent.
MUSIC_AVQA_VIDEOS = {
    "00000001": ["violin"],
    "00000002": ["cello"],
    "00000003": ["flute"],
    "00000004": ["trumpet"],
    "00000005": ["violin"],
    "00000006": ["violin", "cello"],
}


def make_clip(
    path: Path,
    sources: list[str],
    seed: int,
    *,
    duration: float = 1.5,
    fps: int = 8,
    width: int = 64,
    height: int = 48,
) -> Path:
    """Encode a clip showing ``sources`` side by side, its audio their summed sounds."""
    cat, rng = catalog(), np.random.default_rng(seed)
    frames = render_frames([cat[s] for s in sources], duration, fps, width, height, rng)
    audio = np.sum([synthesize_audio(cat[s], duration, SAMPLE_RATE, rng) for s in sources], axis=0)
    encode_clip(
        path,
        frames,
        audio,
        fps=fps,
        sample_rate=SAMPLE_RATE,
        video_codec=VIDEO_CODEC,
        audio_codec=AUDIO_CODEC,
    )
    return path
