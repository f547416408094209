"""Reading a clip's streams the way the models expect them, with ffmpeg (no torchvision).

``read_audio`` gives mono float32 at a model's sample rate (16 kHz for the Whisper-style
encoders of Qwen2-Audio and Qwen2.5-Omni, 48 kHz for CLAP); ``read_frames`` gives RGB
frames sampled at a target frame rate and scaled by ffmpeg to the size the vision encoder
wants. A clip without the stream asked for gives ``None``.
"""

from __future__ import annotations

import math
import os
import subprocess
import threading
from dataclasses import dataclass

import numpy as np

from avtrust.errors import MediaError
from avtrust.media.ffmpeg import decode_audio, decode_frames, stderr_lines
from avtrust.media.probe import ClipInfo, probe

PathLike = str | os.PathLike


@dataclass(frozen=True)
class Streams:
    """What a clip offers the models: its probe info and which streams it has."""

    path: str
    info: ClipInfo

    @property
    def has_audio(self) -> bool:
        return self.info.has_audio

    @property
    def has_video(self) -> bool:
        return self.info.has_video

    @property
    def kind(self) -> str:
        """``"av"``, ``"a"``, ``"v"`` (or ``""`` for neither)."""
        return ("a" if self.has_audio else "") + ("v" if self.has_video else "")


def streams(path: PathLike) -> Streams:
    return Streams(str(path), probe(path))


def read_audio(path: PathLike, sample_rate: int, info: ClipInfo | None = None) -> np.ndarray | None:
    """The clip's first audio stream as mono float32 at ``sample_rate``; None without audio."""
    info = info or probe(path)
    if not info.has_audio:
        return None
    return decode_audio(path, sample_rate)


def smart_resize(
    height: int,
    width: int,
    factor: int = 28,
    min_pixels: int = 56 * 56,
    max_pixels: int = 1280 * 28 * 28,
) -> tuple[int, int]:
    """Qwen2-VL's resize rule: both sides multiples of ``factor``, area within bounds,
    aspect ratio kept as closely as possible (same arithmetic as transformers')."""
    if max(height, width) / min(height, width) > 200:
        raise ValueError(f"aspect ratio of {width}x{height} is above 200")
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return max(h_bar, factor), max(w_bar, factor)


def frame_indices(
    total: int,
    src_fps: float,
    fps: float,
    temporal_patch_size: int,
    min_frames: int,
    max_frames: int,
) -> list[int]:
    """Which of ``total`` frames to keep for sampling at ``fps`` (Qwen2-VL's rule).

    The count is ``total / src_fps * fps`` clamped to [min_frames, max_frames] and to
    ``total``, rounded down to a multiple of the temporal patch size; a clip shorter
    than one temporal patch keeps all its frames (patchify repeats the last one).
    """
    if total <= 0:
        raise ValueError("a video stream without frames")
    cap = math.floor(min(max_frames, total) / temporal_patch_size) * temporal_patch_size
    wanted = total / src_fps * fps if src_fps else total
    n = math.floor(min(max(wanted, min_frames), cap, total) / temporal_patch_size)
    n *= temporal_patch_size
    if n <= 0:  # fewer frames than one temporal patch: keep them all
        return list(range(total))
    step = total / n
    return [int(i * step) for i in range(n)]


def _frame_size(info: ClipInfo, factor: int, min_pixels: int, max_pixels: int):
    height, width = smart_resize(info.height, info.width, factor, min_pixels, max_pixels)
    return width, height


def _sample(frames, info: ClipInfo, fps, temporal_patch_size, min_frames, max_frames):
    src_fps = info.fps or (len(frames) / info.duration if info.duration else 0.0)
    keep = frame_indices(len(frames), src_fps, fps, temporal_patch_size, min_frames, max_frames)
    return frames[keep]


def read_frames(
    path: PathLike,
    *,
    fps: float,
    factor: int,
    min_pixels: int,
    max_pixels: int,
    temporal_patch_size: int = 2,
    min_frames: int = 4,
    max_frames: int = 768,
    info: ClipInfo | None = None,
) -> np.ndarray | None:
    """RGB frames (T, H, W, 3) uint8 sampled at ``fps``, H and W multiples of ``factor``."""
    info = info or probe(path)
    if not info.has_video:
        return None
    frames = decode_frames(path, *_frame_size(info, factor, min_pixels, max_pixels))
    return _sample(frames, info, fps, temporal_patch_size, min_frames, max_frames)


def decode_audio_video(
    path: PathLike, sample_rate: int, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`decode_audio` and :func:`decode_frames` of a clip with both streams from
    **one** ffmpeg process (video on stdout, audio on a second pipe): the same arrays,
    one process start (~0.1 s on a small machine) fewer."""
    read_fd, write_fd = os.pipe()
    args = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path),
            "-map", "0:v:0", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
            "pipe:1",
            "-map", "0:a:0", "-f", "f32le", "-ac", "1", "-ar", str(sample_rate),
            f"pipe:{write_fd}"]  # fmt: skip
    try:
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(write_fd,),
        )
    except FileNotFoundError as exc:
        os.close(read_fd)
        raise MediaError("ffmpeg is not installed or not on PATH") from exc
    finally:
        os.close(write_fd)
    got: dict[str, bytes] = {}

    def drain(name, stream):
        got[name] = stream.read()

    with os.fdopen(read_fd, "rb") as audio_pipe:
        readers = [
            threading.Thread(target=drain, args=("audio", audio_pipe)),
            threading.Thread(target=drain, args=("stderr", proc.stderr)),
        ]
        for t in readers:
            t.start()
        video = proc.stdout.read()
        for t in readers:
            t.join()
    proc.stdout.close()
    proc.stderr.close()
    if proc.wait() != 0:
        message = " | ".join(stderr_lines(got.get("stderr", b""))[-5:])
        raise MediaError(f"decoding {path} failed (exit {proc.returncode}): {message}")
    audio = np.frombuffer(got["audio"], dtype="<f4").copy()
    frames = np.frombuffer(video, dtype=np.uint8).reshape(-1, height, width, 3).copy()
    return audio, frames


def read_audio_frames(
    path: PathLike, sample_rate: int, *, info: ClipInfo | None = None, **vision
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """:func:`read_audio` and :func:`read_frames` (``vision``: its keyword arguments)
    together; a clip with both streams is decoded by one ffmpeg process."""
    info = info or probe(path)
    if not (info.has_audio and info.has_video):
        return read_audio(path, sample_rate, info), read_frames(path, info=info, **vision)
    v = {"temporal_patch_size": 2, "min_frames": 4, "max_frames": 768, **vision}
    size = _frame_size(info, v["factor"], v["min_pixels"], v["max_pixels"])
    audio, frames = decode_audio_video(path, sample_rate, *size)
    sampled = _sample(frames, info, v["fps"], v["temporal_patch_size"], v["min_frames"],
                      v["max_frames"])  # fmt: skip
    return audio, sampled
