"""Reading a clip's streams the way the models expect them.

``read_audio`` gives mono float32 at a model's sample rate (16 kHz for the Whisper-style
encoders of Qwen2-Audio and Qwen2.5-Omni, 48 kHz for CLAP); ``read_frames`` gives RGB
frames sampled at a target frame rate and resized to the size the vision encoder wants.
A clip without the stream asked for gives ``None``.

Frames follow the Qwen2.5-Omni authors' utility (``qwen-omni-utils``' ``fetch_video``)
step for step, so that the official processor receives the same pixels: the frame count
and indices of its ``smart_nframes`` + ``linspace`` rule, the per-frame pixel budget of
its video path (:func:`video_max_pixels`), and each kept frame decoded by ffmpeg to RGB
at its own size, then resized by torchvision (bicubic, antialiased, uint8) as the
utility does. ffmpeg's own scaler would differ from it by up to ~60 grey levels on sharp
edges; decoding at the source size makes the frames equal to the utility's, bit for bit
(``tests/unit/test_omni_parity.py``).

Both read the clip as a player shows it: the audio on the clip's timeline (silence
before a late start, :mod:`avtrust.media.timeline`), the pictures turned by the
container's display matrix (ffmpeg's autorotate) and sized from the probe's displayed
size, so a portrait clip filmed on its side comes out portrait, not stretched.
"""

from __future__ import annotations

import math
import os
import subprocess
import threading
from dataclasses import dataclass

import numpy as np

from avtrust.errors import MediaError
from avtrust.media.ffmpeg import decode_audio, stderr_lines
from avtrust.media.probe import ClipInfo, count_packets, probe
from avtrust.media.timeline import ON_TIMELINE

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


def resample(audio: np.ndarray, source_rate: int, sample_rate: int) -> np.ndarray:
    """``audio`` from ``source_rate`` to ``sample_rate`` with the resampler of
    ``librosa.load`` (soxr, "soxr_hq"), which the official loaders of Qwen2.5-Omni
    (qwen-omni-utils), Qwen2-Audio and CLAP use: ffmpeg's own resampler gives log-mel
    features up to 0.3 apart from theirs (``tests/unit/test_omni_parity.py``)."""
    if source_rate == sample_rate:
        return audio
    import librosa

    out = librosa.resample(audio, orig_sr=source_rate, target_sr=sample_rate, res_type="soxr_hq")
    return np.ascontiguousarray(out, dtype=np.float32)


def read_audio(path: PathLike, sample_rate: int, info: ClipInfo | None = None) -> np.ndarray | None:
    """The clip's first audio stream as mono float32 at ``sample_rate`` on the clip's
    timeline (silence before a late start, as a player plays it); None without audio.
    ffmpeg decodes and downmixes at the stream's own rate, :func:`resample` resamples."""
    info = info or probe(path)
    if not info.has_audio:
        return None
    source_rate = info.sample_rate or sample_rate
    return resample(decode_audio(path, source_rate), source_rate, sample_rate)


# qwen-omni-utils' video constants: at most 768 and at least 128 merged tokens per frame,
# and a whole video within 90% of a 128k-token sequence (its MODEL_SEQ_LEN default).
VIDEO_MIN_TOKENS = 128
VIDEO_MAX_TOKENS = 768
VIDEO_TOTAL_TOKENS = 128000 * 0.9


def smart_resize(
    height: int,
    width: int,
    factor: int = 28,
    min_pixels: float = 56 * 56,
    max_pixels: float = 1280 * 28 * 28,
) -> tuple[int, int]:
    """Qwen2-VL's resize rule: both sides multiples of ``factor``, area within bounds,
    aspect ratio kept as closely as possible (the arithmetic of qwen-omni-utils)."""
    if max(height, width) / min(height, width) > 200:
        raise ValueError(f"aspect ratio of {width}x{height} is above 200")
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return max(h_bar, factor), max(w_bar, factor)


def video_max_pixels(
    frames: int, factor: int, min_pixels: float, max_pixels: float, total_pixels: float | None
) -> float:
    """The per-frame pixel ceiling of ``frames`` sampled frames in qwen-omni-utils'
    ``fetch_video``: ``max_pixels``, but at most 768 tokens a frame and, for long clips,
    ``total_pixels`` shared by the frames (two frames a temporal patch), never below
    1.05 × ``min_pixels``. ``total_pixels`` None: the utility's default budget."""
    if total_pixels is None:
        total_pixels = VIDEO_TOTAL_TOKENS * factor * factor
    cap = VIDEO_MAX_TOKENS * factor * factor
    cap = max(min(cap, total_pixels / max(frames, 1) * 2), int(min_pixels * 1.05))
    return min(max_pixels, cap)


def frame_indices(
    total: int,
    src_fps: float,
    fps: float,
    temporal_patch_size: int,
    min_frames: int,
    max_frames: int,
) -> list[int]:
    """Which of ``total`` frames to keep for sampling at ``fps`` (qwen-omni-utils' rule).

    The count is ``total / src_fps * fps`` clamped to [min_frames, max_frames] and to
    ``total``, rounded down to a multiple of the temporal patch size; the frames are
    ``linspace(0, total - 1, count)`` rounded (torch's float32 linspace and
    round-half-to-even, as the utility computes them). A clip shorter than one temporal
    patch keeps all its frames (the utility refuses it; patchify repeats the last one).
    """
    import torch

    if total <= 0:
        raise ValueError("a video stream without frames")
    cap = math.floor(min(max_frames, total) / temporal_patch_size) * temporal_patch_size
    low = math.ceil(min_frames / temporal_patch_size) * temporal_patch_size
    wanted = total / src_fps * fps if src_fps else total
    n = math.floor(min(max(wanted, low), cap, total) / temporal_patch_size)
    n *= temporal_patch_size
    if n <= 0:  # fewer frames than one temporal patch: keep them all
        return list(range(total))
    return torch.linspace(0, total - 1, n).round().long().tolist()


def _frame_size(
    info: ClipInfo,
    factor: int,
    min_pixels: float,
    max_pixels: float,
    frames: int = 1,
    total_pixels: float | None = None,
):
    """(width, height) of ``frames`` sampled frames of the clip (:func:`video_max_pixels`)."""
    ceiling = video_max_pixels(frames, factor, min_pixels, max_pixels, total_pixels)
    height, width = smart_resize(info.height, info.width, factor, min_pixels, ceiling)
    return width, height


def _sizer(info: ClipInfo, factor, min_pixels, max_pixels, total_pixels=None):
    """``frames -> (width, height)``: the size of that many sampled frames."""
    return lambda frames: _frame_size(info, factor, min_pixels, max_pixels, frames, total_pixels)


# A source frame above this many times the model's frame size is scaled by ffmpeg instead
# of reaching Python whole (an 8000x8000 frame is 192 MB): 16 covers 4K video at the
# default budget, which keeps the utility's pixels; beyond it the frames differ from
# the utility's by ffmpeg's scaler (its grid and token counts do not).
SOURCE_SIZE_LIMIT = 16


def _source_size(info: ClipInfo, size: tuple[int, int]) -> tuple[int, int]:
    """The size ffmpeg decodes frames at before :func:`resize_frame` makes them ``size``."""
    width, height = size
    if info.width * info.height > SOURCE_SIZE_LIMIT * width * height:
        return size
    return info.width, info.height


def resize_frame(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """One RGB uint8 frame (H, W, 3) resized as qwen-omni-utils resizes a sampled video:
    torchvision, bicubic, antialiased, on uint8 (so rounded to uint8)."""
    if frame.shape[:2] == (height, width):
        return frame.copy()
    import torch
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as F

    chw = torch.from_numpy(frame).permute(2, 0, 1)
    out = F.resize(chw, [height, width], interpolation=InterpolationMode.BICUBIC, antialias=True)
    return out.permute(1, 2, 0).numpy()


def expected_frame_count(path: PathLike, info: ClipInfo) -> int | None:
    """How many frames decoding the first video stream of ``path`` to raw video gives,
    predicted without decoding. ffmpeg's raw output has a constant rate: a frame per
    1/fps from the file's start to the video's end (the first frame repeated over a late
    start). So: the header's frame count plus the frames of the late start; else the
    video's end time (Matroska from ffmpeg) × fps; else the stream's packets counted by
    ffprobe (one more process, reading the file without decoding it). A prediction only:
    damaged streams, edit lists, variable rates can decode to another count."""
    rate = info.fps or 0.0
    late_start = max(0, round(info.video_offset * rate))
    if info.nb_frames:
        return info.nb_frames + late_start
    if info.video_end and rate:
        return round(info.video_end * rate)
    packets = count_packets(path)
    return None if packets is None else packets + late_start


def _picker(info: ClipInfo, fps, temporal_patch_size, min_frames, max_frames):
    """``total -> indices`` of the frames :func:`read_frames` keeps of ``total`` decoded."""

    def pick(total: int) -> list[int]:
        src_fps = info.fps or (total / info.duration if info.duration else 0.0)
        return frame_indices(total, src_fps, fps, temporal_patch_size, min_frames, max_frames)

    return pick


def _read_into(stream, view: memoryview) -> int:
    """Fill ``view`` from ``stream``; the bytes read (fewer only at the end of the stream)."""
    got = 0
    while got < len(view):
        n = stream.readinto(view[got:])
        if not n:
            break
        got += n
    return got


def _decode(
    path: PathLike,
    width: int,
    height: int,
    keep: list[int],
    sample_rate: int | None,
    source: tuple[int, int],
) -> tuple[np.ndarray | None, np.ndarray, int]:
    """One ffmpeg process decoding the first video stream of ``path`` (RGB at its shown
    size ``source`` = (width, height)) and, with a ``sample_rate``, its first audio
    stream (mono float32, drained on a thread from a second pipe). Frames are read from
    the pipe one at a time and only those at the indices ``keep`` are kept, in ``keep``'s
    order, each resized to width×height by :func:`resize_frame`: memory is the kept
    frames and one source frame of buffer. Returns (audio or None, kept frames, number of
    frames decoded); a kept index past the end leaves its slot unset."""
    src_w, src_h = source
    args = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path),
            "-map", "0:v:0", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{src_w}x{src_h}",
            "pipe:1"]  # fmt: skip
    read_fd = write_fd = None
    if sample_rate is not None:
        read_fd, write_fd = os.pipe()
        args += ["-map", "0:a:0", "-af", ON_TIMELINE, "-f", "f32le", "-ac", "1",
                 "-ar", str(sample_rate), f"pipe:{write_fd}"]  # fmt: skip
    try:
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=() if write_fd is None else (write_fd,),
            bufsize=0,
        )
    except FileNotFoundError as exc:
        if read_fd is not None:
            os.close(read_fd)
        raise MediaError(
            "ffmpeg is not installed or not on PATH (Debian/Ubuntu: apt-get install ffmpeg)"
        ) from exc
    finally:
        if write_fd is not None:
            os.close(write_fd)
    got: dict[str, bytes] = {}

    def drain(name, stream):
        with stream:
            got[name] = stream.read()

    readers = [threading.Thread(target=drain, args=("stderr", proc.stderr))]
    if read_fd is not None:
        audio_pipe = os.fdopen(read_fd, "rb")
        readers.append(threading.Thread(target=drain, args=("audio", audio_pipe)))
    for t in readers:
        t.start()
    frame_bytes = src_w * src_h * 3
    buffer = bytearray(frame_bytes)
    frame = np.frombuffer(buffer, dtype=np.uint8).reshape(src_h, src_w, 3)
    slots: dict[int, list[int]] = {}
    for slot, index in enumerate(keep):
        slots.setdefault(index, []).append(slot)
    kept = np.empty((len(keep), height, width, 3), np.uint8)
    total, tail = 0, 0
    try:
        with proc.stdout:
            while (n := _read_into(proc.stdout, memoryview(buffer))) == frame_bytes:
                if total in slots:
                    resized = resize_frame(frame, width, height)
                    for slot in slots[total]:
                        kept[slot] = resized
                total += 1
            tail = n
    except BaseException:  # interrupted: stop ffmpeg, so that the readers see their pipes end
        proc.kill()
        raise
    finally:
        for t in readers:
            t.join()
        proc.wait()
    what = f"decoding {path}" if sample_rate is not None else f"decoding video of {path}"
    if proc.returncode != 0:
        message = " | ".join(stderr_lines(got.get("stderr", b""))[-5:])
        raise MediaError(f"{what} failed (exit {proc.returncode}): {message}")
    if tail:
        raise MediaError(f"{what}: the video ends inside a frame ({tail} of {frame_bytes} bytes)")
    audio = np.frombuffer(got["audio"], dtype="<f4").copy() if sample_rate is not None else None
    return audio, kept, total


def _decode_sampled(
    path: PathLike, info: ClipInfo, sizer, pick, sample_rate: int | None = None
) -> tuple[np.ndarray | None, np.ndarray]:
    """(audio, ``pick(total)`` of the clip's ``total`` frames at ``sizer(len(frames))``):
    the indices are chosen from the predicted count before decoding, so only the frames
    kept are held; where the decoded count turns out different, the frames are picked
    again for the true count (from the frames already kept if they include them at the
    right size, else by a second decoding)."""
    expected = expected_frame_count(path, info)
    keep = pick(expected) if expected else []
    size = sizer(max(len(keep), 1))
    source = _source_size(info, size)
    audio, kept, total = _decode(path, *size, keep, sample_rate, source)
    if total == 0:
        raise MediaError(f"{path}: the video stream decodes to no frames")
    if total == expected:
        return audio, kept
    want = pick(total)
    slot = {index: s for s, index in enumerate(keep)}
    if all(i in slot for i in want) and sizer(len(want)) == size:
        return audio, kept[[slot[i] for i in want]]
    size = sizer(len(want))
    _, frames, again = _decode(path, *size, want, None, _source_size(info, size))
    if again != total:
        raise MediaError(f"decoding video of {path} gave {total} frames, then {again}")
    return audio, frames


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
    total_pixels: float | None = None,
    info: ClipInfo | None = None,
) -> np.ndarray | None:
    """RGB frames (T, H, W, 3) uint8 sampled at ``fps``, H and W multiples of ``factor``,
    the area within [min_pixels, :func:`video_max_pixels`].

    Only the sampled frames are kept (and resized) while decoding, so memory depends on
    T, not on the clip's length or resolution."""
    info = info or probe(path)
    if not info.has_video:
        return None
    sizer = _sizer(info, factor, min_pixels, max_pixels, total_pixels)
    pick = _picker(info, fps, temporal_patch_size, min_frames, max_frames)
    return _decode_sampled(path, info, sizer, pick)[1]


def read_audio_frames(
    path: PathLike, sample_rate: int, *, info: ClipInfo | None = None, **vision
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """:func:`read_audio` and :func:`read_frames` (``vision``: its keyword arguments)
    together; a clip with both streams is decoded by one ffmpeg process, which keeps
    only the sampled frames as :func:`read_frames` does."""
    info = info or probe(path)
    if not (info.has_audio and info.has_video):
        return read_audio(path, sample_rate, info), read_frames(path, info=info, **vision)
    v = {"temporal_patch_size": 2, "min_frames": 4, "max_frames": 768, **vision}
    sizer = _sizer(info, v["factor"], v["min_pixels"], v["max_pixels"], v.get("total_pixels"))
    pick = _picker(info, v["fps"], v["temporal_patch_size"], v["min_frames"], v["max_frames"])
    source_rate = info.sample_rate or sample_rate
    audio, frames = _decode_sampled(path, info, sizer, pick, source_rate)
    return resample(audio, source_rate, sample_rate), frames
