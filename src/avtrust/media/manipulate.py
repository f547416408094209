"""Audio/video manipulations that turn clean clips into benchmark samples.

Each function writes exactly one output file atomically. Streams are copied, not
re-encoded, wherever the manipulation only rearranges them (strip, combine, the
pictures of a stitch of compatible clips) and the output container takes their codec;
audio is re-encoded where its samples change (stem remix, soundtrack replacement) and
where a copy would drift (a stitch: AAC priming, see :func:`_concat_copy`), and any
stream whose codec the output container does not take (VP8 or Vorbis into mp4, MP3 into
m4a, PCM) is re-encoded with the configured codec. Planning decides which (``encode``, from the
manifest); without a decision the sources are probed. All ffmpeg calls are argument lists.

Outputs keep the sources' timeline and display matrix, as a player shows them: a stream
copy keeps timestamps and rotation; a re-encoded video is turned upright by ffmpeg's
autorotate (and its size is the displayed one); audio alone (MVT) whose source starts
late is re-encoded with the silence before it, since a stream copy would start it at
0 s; stitched clips are joined on each clip's timeline, and only clips with the same
rotation are joined by stream copy.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path

import ffmpeg
import numpy as np
import soundfile

from avtrust.errors import MediaError
from avtrust.media.containers import unfit
from avtrust.media.ffmpeg import (
    atomic_output,
    decode_audio,
    output,
    run,
    scratch_dir,
    scratch_file,
)
from avtrust.media.probe import probe
from avtrust.media.timeline import ON_TIMELINE, starts_late

PathLike = str | os.PathLike
# Codecs for streams that must be re-encoded when the caller gives none (the workflow
# passes its config's ``media`` section).
DEFAULT_CODECS = {
    "video_codec": {"vcodec": "libx264", "preset": "veryfast", "crf": 23, "threads": 1},
    "audio_codec": {"acodec": "aac", "b:a": "128k"},
}


def _to_encode(
    encode: Collection[str] | None,
    dst: PathLike,
    video_src: PathLike | None = None,
    audio_src: PathLike | None = None,
) -> set[str]:
    """The streams ("video", "audio") to re-encode: as planned, else found by probing
    the sources for codecs ``dst``'s container does not take, and, for audio alone, an
    audio stream that starts late (its leading silence is written out)."""
    if encode is not None:
        return set(encode)
    video = probe(video_src).video_codec if video_src is not None else None
    audio_info = probe(audio_src) if audio_src is not None else None
    todo = set(unfit(str(dst), video, audio_info.audio_codec if audio_info else None))
    if video_src is None and audio_info is not None and starts_late(audio_info.audio_offset):
        todo.add("audio")
    return todo


def _codec_args(encode: set[str], has_video: bool, has_audio: bool, codecs: dict | None) -> dict:
    """ffmpeg output options: copy each stream except those in ``encode``."""
    if not encode:
        return {"c": "copy"}
    codecs = codecs or DEFAULT_CODECS
    args = {}
    if has_video:
        if "video" in encode:
            args.update(pix_fmt="yuv420p", **codecs["video_codec"])
        else:
            args["vcodec"] = "copy"
    if has_audio:
        args.update(codecs["audio_codec"] if "audio" in encode else {"acodec": "copy"})
    return args


def _video(src: PathLike, encode: set[str]):
    """The video stream of ``src``; when it is re-encoded, cut to even dimensions
    (4:2:0 chroma needs them; odd sizes occur in users' clips)."""
    v = ffmpeg.input(str(src)).video
    if "video" in encode:
        v = v.filter("scale", "trunc(iw/2)*2", "trunc(ih/2)*2")
    return v


def strip_audio(
    src: PathLike,
    dst: PathLike,
    *,
    encode: Collection[str] | None = None,
    codecs: dict | None = None,
) -> None:
    """MAT: the clip without its audio stream (video stream copied where ``dst`` takes it).

    ``encode``: the streams to re-encode, as planned; None probes ``src``. ``codecs``:
    the ``video_codec``/``audio_codec`` settings for re-encoded streams.
    """
    todo = _to_encode(encode, dst, video_src=src)
    with atomic_output(dst) as tmp:
        stream = _video(src, todo)
        args = _codec_args(todo, True, False, codecs)
        run(output([stream], tmp, **args), what=f"strip audio {src}")


def strip_video(
    src: PathLike,
    dst: PathLike,
    *,
    encode: Collection[str] | None = None,
    codecs: dict | None = None,
) -> None:
    """MVT: the clip's audio alone (audio stream copied where ``dst`` takes it, and the
    audio did not start late in the clip: re-encoded, it starts at the clip's start)."""
    todo = _to_encode(encode, dst, audio_src=src)
    with atomic_output(dst) as tmp:
        args = _codec_args(todo, False, True, codecs)
        if "audio" in todo:
            args["af"] = ON_TIMELINE
        run(output([ffmpeg.input(str(src)).audio], tmp, **args), what=f"strip video {src}")


def combine(
    video_src: PathLike,
    audio_src: PathLike,
    dst: PathLike,
    *,
    encode: Collection[str] | None = None,
    codecs: dict | None = None,
) -> None:
    """Video of one clip with the audio of another (MVIT, MAIT); both streams copied
    where ``dst`` takes them (``encode`` as in :func:`strip_audio`).

    The output is cut to the shorter of the two streams.
    """
    todo = _to_encode(encode, dst, video_src=video_src, audio_src=audio_src)
    v = _video(video_src, todo)
    a = ffmpeg.input(str(audio_src)).audio
    args = _codec_args(todo, True, True, codecs)
    with atomic_output(dst) as tmp:
        run(output([v, a], tmp, shortest=None, **args), what=f"combine {video_src}+{audio_src}")


def _stream_signature(path: PathLike) -> tuple:
    info = probe(path)
    return (
        info.video_codec,
        info.width,
        info.height,
        info.fps,
        info.audio_codec,
        info.sample_rate,
        info.channels,
        info.rotation,  # one display matrix holds for the whole joined stream
    )


def concat(
    srcs: list[PathLike],
    dst: PathLike,
    copy: bool | None = None,
    *,
    codecs: dict | None = None,
    durations: list[float] | None = None,
) -> None:
    """Play ``srcs`` one after another (COT-Stitch).

    Clips with identical stream parameters, in codecs ``dst``'s container takes, have
    their video joined by the concat demuxer with stream copy and their audio decoded
    and re-encoded (``codecs["audio_codec"]``) in step with it (:func:`_concat_copy`);
    otherwise both are re-encoded through the concat filter at the first clip's size,
    frame rate and sample rate. ``copy`` says the caller already knows (from the
    manifest) and skips comparing them; with ``durations`` (the clips' durations as the
    index probed them) a copy join does not probe the clips at all.
    """
    if len(srcs) < 2:
        raise MediaError(f"concat needs at least two clips, got {len(srcs)}")
    if copy:
        _concat_copy(srcs, dst, codecs, durations)
        return
    signatures = [_stream_signature(s) for s in srcs]
    if any(sig[0] is None or sig[4] is None for sig in signatures):
        raise MediaError(f"concat needs audio and video in every clip: {[str(s) for s in srcs]}")
    first = signatures[0]
    if len(set(signatures)) == 1 and not unfit(str(dst), first[0], first[4]):
        _concat_copy(srcs, dst, codecs, None)
    else:
        _concat_reencode(srcs, dst, signatures[0])


def _quote_concat_path(path: PathLike) -> str:
    # The concat list quotes with single quotes; a quote inside a path is '\''.
    return "'" + str(Path(path).resolve()).replace("'", "'\\''") + "'"


def _concat_copy(
    srcs: list[PathLike], dst: PathLike, codecs: dict | None, durations: list[float] | None
) -> None:
    """Pictures joined by stream copy, each clip's sound placed under its own pictures.

    Why the audio is not stream-copied too: an AAC stream starts with encoder priming
    (1024 samples) that the container's edit list tells decoders to skip, and the concat
    demuxer keeps only the first clip's edit list, so a copied join plays the second
    clip's priming (and the first clip's padding) as sound and its audio comes ~0.1 s
    behind its pictures. So the pictures are joined alone, and then each clip's audio is
    decoded on its own timeline (priming skipped, a late start kept as silence), padded
    or cut to exactly the clip's slot, and the slots are joined: the k-th
    clip's sound starts at the sum of the earlier clips' durations, which the listing
    gives the demuxer as the start of the k-th clip's pictures, so the two agree by
    construction. The audio is re-encoded (``codecs["audio_codec"]``) at the clips'
    sample rate and channel count (a copy join has them equal). ``durations``: the
    clips' durations, known from the manifest; None probes the clips.
    """
    if durations is None:
        infos = [probe(s) for s in srcs]
        if any(not (i.has_video and i.has_audio) for i in infos):
            clips = [str(s) for s in srcs]
            raise MediaError(f"concat needs audio and video in every clip: {clips}")
        durations = [i.duration for i in infos]
    if len(durations) != len(srcs):
        raise MediaError(f"concat: {len(durations)} durations for {len(srcs)} clips")
    audio_codec = (codecs or DEFAULT_CODECS)["audio_codec"]
    with scratch_dir(dst, tag="stitch") as tmpdir:
        listing = Path(tmpdir) / "clips.txt"
        lines = ["ffconcat version 1.0"]
        for src, duration in zip(srcs, durations, strict=True):
            lines += [f"file {_quote_concat_path(src)}", f"duration {duration:.6f}"]
        listing.write_text("\n".join(lines) + "\n", encoding="utf-8")
        # The pictures are joined first, into a file: muxed straight from the concat
        # demuxer beside a fresh AAC stream, they would start one priming (64 ms at
        # 16 kHz) after the sound.
        joined = Path(tmpdir) / f"pictures{Path(dst).suffix}"
        stream = ffmpeg.input(str(listing), format="concat", safe=0).video
        run(output([stream], joined, c="copy"), what=f"concat the pictures of {len(srcs)} clips")
        pictures = ffmpeg.input(str(joined)).video
        slots = []
        for src, duration in zip(srcs, durations, strict=True):
            sound = ffmpeg.input(str(src)).audio.filter("aresample", **{"async": 1, "first_pts": 0})
            slots.append(sound.filter("apad").filter("atrim", end=f"{duration:.6f}"))
        sound = ffmpeg.concat(*slots, v=0, a=1)
        with atomic_output(dst) as tmp:
            args = {"vcodec": "copy", **audio_codec}
            run(output([pictures, sound], tmp, **args), what=f"concat {len(srcs)} clips")


def _concat_reencode(srcs: list[PathLike], dst: PathLike, target: tuple) -> None:
    # The frame is the first clip's as displayed (ffmpeg turns each clip upright first);
    # a clip of another shape is fitted inside it with black bars, not stretched (a
    # portrait clip after a landscape one stays portrait).
    _, width, height, fps, _, sample_rate, *_ = target
    parts = []
    for src in srcs:
        stream = ffmpeg.input(str(src))
        v = stream.video.filter("scale", width, height, force_original_aspect_ratio="decrease")
        v = v.filter("pad", width, height, "(ow-iw)/2", "(oh-ih)/2")
        v = v.filter("setsar", 1).filter("fps", fps)
        # Each clip's audio from its own start (silence before a late start), so that it
        # stays under its own pictures once the concat filter joins the clips.
        a = stream.audio.filter("aresample", sample_rate, **{"async": 1, "first_pts": 0})
        a = a.filter("aformat", channel_layouts="mono")
        parts.extend([v, a])
    joined = ffmpeg.concat(*parts, v=1, a=1).node
    with atomic_output(dst) as tmp:
        run(
            output(
                [joined[0], joined[1]],
                tmp,
                pix_fmt="yuv420p",
                vcodec="libx264",
                acodec="aac",
                threads=1,
            ),
            what=f"concat (re-encode) {len(srcs)} clips",
        )


def swap_stitch(
    src1: PathLike,
    src2: PathLike,
    dst: PathLike,
    copy: bool | None = None,
    *,
    encode: Collection[str] | None = None,
    codecs: dict | None = None,
) -> None:
    """COT-Swap: [video 1 + audio 2] followed by [video 2 + audio 1].

    ``copy`` as in :func:`concat`: the two halves match exactly when the clips do.
    ``encode``: the streams of either clip that ``dst``'s container does not take (None:
    probe); the halves are then Matroska (which takes them) and the join re-encodes.
    """
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    if copy:
        halves = ".mp4"  # the plan says both clips are in codecs mp4 takes
    else:
        todo = set(encode) if encode is not None else set()
        if encode is None:
            for src in (src1, src2):
                info = probe(src)
                todo.update(unfit(str(dst), info.video_codec, info.audio_codec))
        halves = ".mkv" if todo else ".mp4"
    with scratch_dir(dst) as tmpdir:
        first = Path(tmpdir) / f"first{halves}"
        second = Path(tmpdir) / f"second{halves}"
        combine(src1, src2, first, encode=())
        combine(src2, src1, second, encode=())
        concat([first, second], dst, copy=copy, codecs=codecs)


def _encode_with_audio(
    video_src: PathLike,
    audio: np.ndarray,
    sample_rate: int,
    dst: PathLike,
    audio_codec: dict,
    encode_video: bool = False,
    video_codec: dict | None = None,
) -> None:
    """Copy the video stream of ``video_src`` (re-encode it with ``video_codec`` if
    ``encode_video``) and encode ``audio`` as its soundtrack."""
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    if encode_video:
        video = {"pix_fmt": "yuv420p", **(video_codec or DEFAULT_CODECS["video_codec"])}
    else:
        video = {"vcodec": "copy"}
    with scratch_file(dst, ".f32") as raw:
        raw.write(np.asarray(audio, dtype="<f4").tobytes())
        raw.flush()
        v = _video(video_src, {"video"} if encode_video else set())
        a = ffmpeg.input(raw.name, format="f32le", ac=1, ar=sample_rate).audio
        with atomic_output(dst) as tmp:
            run(
                output([v, a], tmp, ar=sample_rate, shortest=None, **video, **audio_codec),
                what=f"re-soundtrack {video_src}",
            )


def read_stem(path: PathLike, sample_rate: int) -> np.ndarray:
    try:
        audio, sr = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.SoundFileError, OSError) as exc:
        # A RuntimeError subclass: unwrapped, it would abort a whole manipulation shard.
        raise MediaError(f"{path}: unreadable stem ({exc})") from exc
    if sr != sample_rate:
        raise MediaError(f"{path}: stem sample rate {sr} Hz, expected {sample_rate} Hz")
    return audio.mean(axis=1)


def mix_stems(stems: list[np.ndarray], keep: list[bool]) -> np.ndarray:
    """Sum the kept stems, unscaled, so each remaining instrument keeps its level."""
    n = max(len(s) for s in stems)
    mix = np.zeros(n, dtype=np.float32)
    for stem, kept in zip(stems, keep, strict=True):
        if kept:
            mix[: len(stem)] += stem
    return mix


def mute_stem(
    video_src: PathLike,
    stem_paths: list[PathLike],
    muted: int,
    dst: PathLike,
    *,
    sample_rate: int,
    audio_codec: dict,
    encode: Collection[str] | None = None,
    video_codec: dict | None = None,
) -> None:
    """AV-ConfuseBench m1: the scene's video with one instrument's stem left out.

    The video is copied unless ``encode`` (as planned; None probes) names it.
    """
    if not 0 <= muted < len(stem_paths):
        raise MediaError(f"muted stem index {muted} out of range for {len(stem_paths)} stems")
    stems = [read_stem(p, sample_rate) for p in stem_paths]
    keep = [i != muted for i in range(len(stems))]
    encode_video = "video" in _to_encode(encode, dst, video_src=video_src)
    mix = mix_stems(stems, keep)
    _encode_with_audio(video_src, mix, sample_rate, dst, audio_codec, encode_video, video_codec)


def fit_length(audio: np.ndarray, n: int) -> np.ndarray:
    """Loop or cut ``audio`` to exactly ``n`` samples."""
    if len(audio) == 0:
        raise MediaError("cannot fit an empty sound to a clip")
    reps = int(np.ceil(n / len(audio)))
    return np.tile(audio, reps)[:n]


def mix_at_snr(signal: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``signal + g·noise`` with g chosen so that 10·log10(P_signal / P_(g·noise)) = snr_db.

    If the sum would clip, the whole mix is scaled down, which keeps the SNR.
    """
    p_signal = float(np.mean(signal.astype(np.float64) ** 2))
    p_noise = float(np.mean(noise.astype(np.float64) ** 2))
    if p_noise == 0.0:
        raise MediaError("the replacement sound is silent; cannot mix at an SNR")
    gain = np.sqrt(p_signal / (p_noise * 10 ** (snr_db / 10))) if p_signal > 0 else 1.0
    mix = signal + gain * noise
    peak = float(np.max(np.abs(mix)))
    return (mix / peak * 0.9 if peak > 0.99 else mix).astype(np.float32)


def replace_soundtrack(
    video_src: PathLike,
    sound_src: PathLike,
    dst: PathLike,
    *,
    snr_db: float | None,
    sample_rate: int,
    audio_codec: dict,
    encode: Collection[str] | None = None,
    video_codec: dict | None = None,
) -> None:
    """AV-ConfuseBench m2: replace the clip's soundtrack with another sound.

    ``snr_db=None`` replaces the audio outright (the paper's setting). A number mixes
    the new sound under the original at that SNR (original over new sound), giving
    graded difficulty: high SNR keeps the instrument audible, low SNR buries it. The
    video is copied unless ``encode`` (as planned; None: from the probe) names it.
    """
    info = probe(video_src)
    duration = info.duration
    if encode is None:
        encode = unfit(str(dst), info.video_codec, None)
    n = int(round(duration * sample_rate))
    sound = fit_length(decode_audio(sound_src, sample_rate), n)
    if snr_db is None:
        audio = sound
    else:
        original = fit_length(decode_audio(video_src, sample_rate), n)
        audio = mix_at_snr(original, sound, snr_db)
    encode_video = "video" in encode
    _encode_with_audio(video_src, audio, sample_rate, dst, audio_codec, encode_video, video_codec)


def trim(
    src: PathLike,
    dst: PathLike,
    start_s: float,
    duration_s: float,
    *,
    video_codec: dict,
    audio_codec: dict,
    sample_rate: int,
) -> None:
    """The segment ``[start_s, start_s + duration_s)`` of ``src``, re-encoded.

    Seeking on the input while transcoding makes the cut exact (stream copy could only
    cut at key frames). Whichever of the video and audio streams ``src`` has are kept.
    """
    info = probe(src)
    if start_s >= info.duration:
        raise MediaError(f"{src}: segment starts at {start_s} s, after the end ({info.duration} s)")
    clip = ffmpeg.input(str(src), ss=start_s, t=duration_s)
    streams, args = [], {}
    if info.has_video:
        streams.append(clip.video)
        args.update(pix_fmt="yuv420p", **video_codec)
    if info.has_audio:
        streams.append(clip.audio)
        args.update(ar=sample_rate, **audio_codec)
    if not streams:
        raise MediaError(f"{src}: neither audio nor video to trim")
    with atomic_output(dst) as tmp:
        run(output(streams, tmp, **args), what=f"trim {src} at {start_s}+{duration_s} s")
