"""Probing clips with ffprobe: streams, duration, frame rate, sample rate."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
from dataclasses import asdict, dataclass, field
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
    # How a player shows the clip: ``width``×``height`` above are the picture as shown,
    # after ``rotation``, the degrees counter-clockwise that the container's display
    # matrix turns the stored picture (ffprobe's sign; 90 and 270 swap the sides); and
    # ``audio_offset``, the seconds the first audio stream starts after the clip starts
    # (a player plays silence until then).
    rotation: int = 0
    audio_offset: float = 0.0
    # What the frame reader predicts its frame count from (not manifest columns), about
    # the first video stream: its frame count in the header (mp4, mov, avi; Matroska
    # written by mkvmerge), how late it starts after the file starts, and where it ends
    # after the file starts as Matroska written by ffmpeg records it (seconds).
    nb_frames: int | None = field(default=None, repr=False)
    video_offset: float = field(default=0.0, repr=False)
    video_end: float | None = field(default=None, repr=False)

    def as_dict(self) -> dict:
        d = asdict(self)
        del d["nb_frames"], d["video_offset"], d["video_end"]
        return d


def _rate(text: str | None) -> float | None:
    if not text or text in ("0/0", "0"):
        return None
    return float(Fraction(text))


def _seconds(text: str | None) -> float | None:
    return None if text in (None, "N/A") else float(text)


def _tag(stream: dict, name: str) -> str | None:
    """A stream tag by name, else with a language suffix (mkvmerge's ``NUMBER_OF_FRAMES-eng``)."""
    tags = stream.get("tags", {})
    return tags.get(name) or next((v for k, v in tags.items() if k.startswith(name + "-")), None)


def _clock(text: str | None) -> float | None:
    """``HH:MM:SS.fraction`` (Matroska's DURATION tag) in seconds."""
    try:
        h, m, s = (text or "").split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)
    except ValueError:
        return None


def _rotation(stream: dict) -> int:
    """The display matrix's counter-clockwise rotation of ``stream`` in [0, 360), rounded
    to whole degrees; 0 without one."""
    for side in stream.get("side_data_list", []):
        if "rotation" in side:
            return round(float(side["rotation"])) % 360
    return 0


def unreadable_reason(path: Path) -> str | None:
    """Why ``path`` cannot be read as a media file (a symlink loop, a link to nothing, a
    folder, nothing there), or None."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "unreadable (symlink loop)"
        if path.is_symlink():
            return f"unreadable (broken symbolic link to {os.readlink(path)})"
        if exc.errno == errno.EACCES:
            return "unreadable (permission denied)"
        return "no such file"
    if stat.S_ISDIR(mode):
        return "no such file (it is a folder)"
    return None if stat.S_ISREG(mode) else "not a regular file"


def probe(path: str | os.PathLike, timeout_s: float = 60.0) -> ClipInfo:
    """Describe ``path``; raise MediaError naming the file if it is unreadable."""
    path = Path(path)
    problem = unreadable_reason(path)
    if problem:
        raise MediaError(f"{path}: {problem}")
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
    first_video = next((s for s in streams if s.get("codec_type") == "video"), {})  # 0:v:0
    nb_frames = first_video.get("nb_frames") or _tag(first_video, "NUMBER_OF_FRAMES")
    file_start = _seconds(info.get("format", {}).get("start_time")) or 0.0
    start = _seconds(first_video.get("start_time"))
    end = _clock(first_video.get("tags", {}).get("DURATION"))  # ffmpeg's Matroska: end time
    durations = [
        float(x)
        for x in [info.get("format", {}).get("duration")] + [s.get("duration") for s in streams]
        if x not in (None, "N/A")
    ]
    duration = max(durations) if durations else 0.0
    rotation = _rotation(video) if video else 0
    width, height = (int(video["width"]), int(video["height"])) if video else (None, None)
    if rotation in (90, 270):  # the player shows the picture on its side
        width, height = height, width
    audio_start = _seconds(audio.get("start_time")) if audio else None
    return ClipInfo(
        duration=round(duration, 3),
        has_audio=audio is not None,
        has_video=video is not None,
        fps=_rate(video.get("avg_frame_rate")) if video else None,
        sample_rate=int(audio["sample_rate"]) if audio and audio.get("sample_rate") else None,
        channels=int(audio["channels"]) if audio and audio.get("channels") else None,
        width=width,
        height=height,
        video_codec=video.get("codec_name") if video else None,
        audio_codec=audio.get("codec_name") if audio else None,
        rotation=rotation,
        audio_offset=round(max(0.0, audio_start - file_start), 3) if audio_start else 0.0,
        nb_frames=int(nb_frames) if nb_frames and nb_frames.isdigit() else None,
        video_offset=start - file_start if start is not None else 0.0,
        video_end=end - file_start if end is not None else None,
    )


def count_packets(path: str | os.PathLike, timeout_s: float = 600.0) -> int | None:
    """The packets of the first video stream, counted by reading (not decoding) the file;
    None if ffprobe cannot count them."""
    args = ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries",
            "stream=nb_read_packets", "-of", "csv=p=0", "--", str(path)]  # fmt: skip
    try:
        proc = subprocess.run(args, capture_output=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = proc.stdout.decode("ascii", "replace").strip().rstrip(",")
    return int(text) if proc.returncode == 0 and text.isdigit() else None


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
