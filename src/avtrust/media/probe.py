"""Probing clips with ffprobe: streams, duration, frame rate, sample rate."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

from avtrust.errors import MediaError
from avtrust.media.ffmpeg import stderr_lines


@dataclass(frozen=True)
class ClipInfo:
    """What the index stage records about one media file."""

    duration: float
    has_audio: bool
    has_video: bool
    fps: float | None
    sample_rate: int | None
    channels: int | None
    width: int | None
    height: int | None
    video_codec: str | None
    audio_codec: str | None

    def as_dict(self) -> dict:
        return asdict(self)


def _rate(text: str | None) -> float | None:
    if not text or text in ("0/0", "0"):
        return None
    return float(Fraction(text))


def probe(path: str | os.PathLike, timeout_s: float = 60.0) -> ClipInfo:
    """Describe ``path``; raise MediaError naming the file if it is unreadable."""
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: zero-length file")
    args = [
        "ffprobe",
        "-v",
        "error",
        "-print_format",
        "json",
        "-show_format",
        "-show_streams",
        "--",
        str(path),
    ]
    try:
        proc = subprocess.run(args, capture_output=True, timeout=timeout_s, check=False)
    except FileNotFoundError as exc:
        raise MediaError(
            "ffprobe is not installed (Debian/Ubuntu: apt-get install ffmpeg)"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise MediaError(f"{path}: ffprobe timed out after {timeout_s:.0f} s") from exc
    if proc.returncode != 0:
        reason = "; ".join(stderr_lines(proc.stderr, path)[-3:]) or "ffprobe failed"
        raise MediaError(f"{path}: unreadable ({reason})")
    info = json.loads(proc.stdout or b"{}")
    streams = info.get("streams", [])
    video = next(
        (
            s
            for s in streams
            if s.get("codec_type") == "video" and not s.get("disposition", {}).get("attached_pic")
        ),
        None,
    )
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    durations = [
        float(x)
        for x in [info.get("format", {}).get("duration")] + [s.get("duration") for s in streams]
        if x not in (None, "N/A")
    ]
    duration = max(durations) if durations else 0.0
    return ClipInfo(
        duration=round(duration, 3),
        has_audio=audio is not None,
        has_video=video is not None,
        fps=_rate(video.get("avg_frame_rate")) if video else None,
        sample_rate=int(audio["sample_rate"]) if audio and audio.get("sample_rate") else None,
        channels=int(audio["channels"]) if audio and audio.get("channels") else None,
        width=int(video["width"]) if video else None,
        height=int(video["height"]) if video else None,
        video_codec=video.get("codec_name") if video else None,
        audio_codec=audio.get("codec_name") if audio else None,
    )


def decodes_cleanly(path: str | os.PathLike, timeout_s: float = 600.0) -> str | None:
    """Decode the whole file; return ffmpeg's first error, or None if it decodes.

    Catches truncated or damaged streams whose headers still probe fine.
    """
    args = ["ffmpeg", "-nostdin", "-v", "error", "-xerror", "-i", str(path), "-f", "null", "-"]
    try:
        proc = subprocess.run(args, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return f"decoding timed out after {timeout_s:.0f} s"
    errors = stderr_lines(proc.stderr, path)
    if proc.returncode != 0 or errors:
        return errors[0] if errors else f"ffmpeg exit {proc.returncode}"
    return None
