"""Running ffmpeg: argument lists only (never a shell), atomic outputs, clear errors.

Every output is written to a temporary name beside its destination and renamed into
place only after ffmpeg succeeded, so an interrupted job never leaves a half-written
file that a later stage would accept.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import ffmpeg
import numpy as np

from avtrust.errors import MediaError, StorageError
from avtrust.io import atomic_path, mentions_no_space, remove_stale_scratch, scratch_prefix
from avtrust.media.timeline import ON_TIMELINE

# Flags that make ffmpeg's output depend only on its inputs: no encoder version
# string, no creation time, no copied metadata. Needed for byte-identical rebuilds.
BITEXACT = {"fflags": "+bitexact", "flags": "+bitexact", "map_metadata": -1}


_ADDRESS = re.compile(r" @ 0x[0-9a-fA-F]+\]")


def stderr_lines(stderr: bytes, path: str | os.PathLike | None = None) -> list[str]:
    """ffmpeg's message lines made reproducible: context pointers (``[aac @ 0x55…]``,
    different in every process) become ``[aac]``, a leading ``<path>: `` is dropped
    (the caller names the file once) and repeated lines are kept once."""
    prefix = f"{path}: " if path is not None else None
    out: list[str] = []
    for line in stderr.decode("utf-8", "replace").splitlines():
        line = _ADDRESS.sub("]", line.strip())
        if prefix and line.startswith(prefix):
            line = line[len(prefix) :]
        if line and line not in out:
            out.append(line)
    return out


def run(stream, *, input_bytes: bytes | None = None, what: str = "ffmpeg") -> bytes:
    """Run a compiled ffmpeg-python stream; raise MediaError with ffmpeg's message."""
    args = stream.global_args("-hide_banner", "-loglevel", "error").compile()
    if input_bytes is None:
        args.insert(1, "-nostdin")  # never wait on a terminal inside a cluster job
    try:
        proc = subprocess.run(
            args,
            input=input_bytes,
            stdin=subprocess.DEVNULL if input_bytes is None else None,
            capture_output=True,
            check=False,
        )
    except FileNotFoundError as exc:
        raise MediaError(
            "ffmpeg is not installed or not on PATH (Debian/Ubuntu: apt-get install ffmpeg)"
        ) from exc
    if proc.returncode != 0:
        message = " | ".join(stderr_lines(proc.stderr)[-5:])
        if mentions_no_space(message):  # an environment failure, never a bad input
            raise StorageError(f"{what} failed: {message}; free space and rerun")
        raise MediaError(f"{what} failed (exit {proc.returncode}): " + message)
    return proc.stdout


@contextlib.contextmanager
def atomic_output(dst: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``dst`` (same suffix, so ffmpeg picks the container
    from it); rename it to ``dst`` on success. Stale scratch of ``dst`` is removed first."""
    dst = Path(dst)
    with atomic_path(dst, suffix=dst.suffix) as tmp_path:
        try:
            yield tmp_path
        except StorageError as exc:  # ffmpeg names its inputs; the user needs the output
            raise StorageError(f"{dst}: cannot write it: {exc}") from exc
        if not tmp_path.exists() or tmp_path.stat().st_size == 0:
            raise MediaError(f"ffmpeg wrote nothing for {dst}")


def scratch_file(dst: str | os.PathLike, suffix: str, tag: str = "pcm"):
    """A named temporary file beside ``dst`` (e.g. raw audio ffmpeg reads), deleted on
    close; a stale one that a killed job left is removed first."""
    remove_stale_scratch(dst, tag)
    return tempfile.NamedTemporaryFile(
        prefix=scratch_prefix(dst, tag), suffix=suffix, dir=Path(dst).parent
    )


def scratch_dir(dst: str | os.PathLike, tag: str = "work"):
    """A temporary folder beside ``dst`` for intermediate files, removed on exit; a stale
    one that a killed job left is removed first."""
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    remove_stale_scratch(dst, tag)
    return tempfile.TemporaryDirectory(prefix=scratch_prefix(dst, tag), dir=Path(dst).parent)


def output(stream_inputs, dst: Path, **kwargs):
    """An ffmpeg-python output node with the bit-exact flags and overwrite on."""
    return ffmpeg.output(*stream_inputs, str(dst), **BITEXACT, **kwargs).overwrite_output()


def encode_clip(
    dst: str | os.PathLike,
    frames: np.ndarray | None,
    audio: np.ndarray | None,
    *,
    fps: int,
    sample_rate: int,
    video_codec: dict,
    audio_codec: dict,
) -> None:
    """Encode RGB frames (T, H, W, 3) and/or mono float audio into one container.

    Frames go through stdin; audio is passed as a raw float32 input file because
    ffmpeg can read only one stream from stdin.
    """
    if frames is None and audio is None:
        raise MediaError(f"nothing to encode for {dst}")
    with contextlib.ExitStack() as stack:
        tmp_dst = stack.enter_context(atomic_output(dst))
        inputs, codec_args, stdin = [], {}, None
        if frames is not None:
            t, h, w, _ = frames.shape
            inputs.append(
                ffmpeg.input(
                    "pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{w}x{h}", framerate=fps
                ).video
            )
            codec_args.update(pix_fmt="yuv420p", **video_codec)
            stdin = np.ascontiguousarray(frames, dtype=np.uint8).tobytes()
        if audio is not None:
            raw = stack.enter_context(scratch_file(dst, ".f32"))
            raw.write(np.asarray(audio, dtype="<f4").tobytes())
            raw.flush()
            inputs.append(ffmpeg.input(raw.name, format="f32le", ac=1, ar=sample_rate).audio)
            codec_args.update(ar=sample_rate, **audio_codec)
        run(output(inputs, tmp_dst, **codec_args), input_bytes=stdin, what=f"encoding {dst}")


def decode_audio(path: str | os.PathLike, sample_rate: int) -> np.ndarray:
    """The first audio stream of ``path`` as mono float32 at ``sample_rate``, from the
    clip's start (:data:`ON_TIMELINE`)."""
    stream = ffmpeg.input(str(path)).output(
        "pipe:", format="f32le", ac=1, ar=sample_rate, map="0:a:0", af=ON_TIMELINE
    )
    data = run(stream, what=f"decoding audio of {path}")
    return np.frombuffer(data, dtype="<f4").copy()


def decode_frames(path: str | os.PathLike, width: int, height: int) -> np.ndarray:
    """All frames of the first video stream as (T, H, W, 3) uint8, scaled to width×height."""
    stream = ffmpeg.input(str(path)).output(
        "pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{width}x{height}", map="0:v:0"
    )
    data = run(stream, what=f"decoding video of {path}")
    return np.frombuffer(data, dtype=np.uint8).reshape(-1, height, width, 3).copy()


def decode_audio_segment(
    path: str | os.PathLike, start_s: float, duration_s: float, sample_rate: int
) -> np.ndarray:
    """``duration_s`` seconds of the first audio stream from ``start_s`` of the clip's
    timeline (silence where the audio has not started yet), mono float32."""
    stream = ffmpeg.input(str(path), ss=start_s, t=duration_s).output(
        "pipe:", format="f32le", ac=1, ar=sample_rate, map="0:a:0", af=ON_TIMELINE
    )
    data = run(stream, what=f"decoding audio of {path} at {start_s}+{duration_s} s")
    return np.frombuffer(data, dtype="<f4").copy()
