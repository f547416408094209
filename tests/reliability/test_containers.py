"""Every common container survives every manipulation.

Users' folders hold mkv (Vorbis), webm (VP8/VP9 with Vorbis/Opus), avi (MP3, PCM) and
mov (PCM) next to mp4. Such clips index fine; the outputs are mp4 (m4a for the audio-only
MVT), which does not take every codec (VP8, Vorbis, PCM; m4a not even MP3 or Opus).
Planning decides from the manifest which streams are copied and which re-encoded; each
manipulation must then write a file that exists, decodes, holds the streams promised and
only codecs its container takes (stream copy kept where it does).

Chain: generated clips -> index (folder format) -> plan rows (``TaskContext.row`` as the
builders call it) -> ``run_op`` with the workflow's media settings.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile
from reliability_harness import indexed_task

from avtrust.bench.samples import TaskContext
from avtrust.bench.shards import OUTPUT_STREAMS, run_op
from avtrust.media.probe import decodes_cleanly, probe

SR = 16000
MEDIA = {
    "video_codec": {"vcodec": "libx264", "preset": "veryfast", "crf": 23, "threads": 1},
    "audio_codec": {"acodec": "aac", "b:a": "64k"},
    "sample_rate": SR,
}
X264 = ("-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p")
VPX = ("-b:v", "200k", "-deadline", "realtime", "-cpu-used", "8")
# label (= folder) -> (suffix, video args, audio args, video codec, audio codec)
CONTAINERS = {
    "mp4-h264-aac": ("mp4", X264, ("-c:a", "aac"), "h264", "aac"),
    "mkv-h264-vorbis": ("mkv", X264, ("-c:a", "libvorbis"), "h264", "vorbis"),
    "webm-vp8-vorbis": ("webm", ("-c:v", "libvpx", *VPX), ("-c:a", "libvorbis"), "vp8", "vorbis"),
    "webm-vp9-opus": ("webm", ("-c:v", "libvpx-vp9", *VPX), ("-c:a", "libopus"), "vp9", "opus"),
    "avi-mpeg4-mp3": ("avi", ("-c:v", "mpeg4"), ("-c:a", "libmp3lame"), "mpeg4", "mp3"),
    "avi-mpeg4-pcm": ("avi", ("-c:v", "mpeg4"), ("-c:a", "pcm_s16le"), "mpeg4", "pcm_s16le"),
    "mov-h264-pcm": ("mov", X264, ("-c:a", "pcm_s16le"), "h264", "pcm_s16le"),
}
# Codecs each output container takes by the standards players follow (ffmpeg 5.1 also
# muxes Vorbis into mp4, which hardly anything else plays).
TAKES = {
    "mp4": {"h264", "hevc", "mpeg4", "av1", "vp9", "aac", "mp3", "opus", "alac", "ac3", "eac3"},
    "m4a": {"aac", "alac", "ac3", "eac3"},
}
OPS = ["strip_audio", "strip_video", "combine", "combine_from_mp4", "combine_onto_mp4",
       "concat", "swap_stitch", "mute_stem", "replace_soundtrack", "mix_soundtrack"]  # fmt: skip


def ffmpeg(*args: str) -> None:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args],
        check=True,
        capture_output=True,
    )


def make_clip(path: Path, video: tuple, audio: tuple, pattern: str, freq: int) -> None:
    ffmpeg(
        *("-f", "lavfi", "-i", f"{pattern}=s=64x48:r=8"),
        *("-f", "lavfi", "-i", f"sine=f={freq}:r={SR}"),
        *("-t", "1", "-threads", "1", *video, *audio, str(path)),
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """(TaskContext over the indexed manifest, folder of stems, work root)."""
    root = tmp_path_factory.mktemp("containers")
    raw = root / "raw"
    for label, (suffix, video, audio, *_) in CONTAINERS.items():
        (raw / label).mkdir(parents=True)
        make_clip(raw / label / f"one.{suffix}", video, audio, "testsrc2", 440)
        make_clip(raw / label / f"two.{suffix}", video, audio, "smptebars", 660)
    stems = []
    for i, freq in enumerate((330, 990)):
        stems.append(root / f"stem{i}.wav")
        t = np.arange(SR) / SR
        soundfile.write(stems[-1], 0.3 * np.sin(2 * np.pi * freq * t), SR)
    ctx, manifest = indexed_task(root, raw, "containers")
    assert manifest.num_rows == 2 * len(CONTAINERS)
    return ctx, stems


def plan(ctx: TaskContext, label: str, op: str, stems: list[Path]) -> tuple[str, dict, str]:
    """(op, op_args as planned, output path) of manipulation ``op`` on ``label``'s clips."""
    one, two = ctx.clip_path(f"{label}.one"), ctx.clip_path(f"{label}.two")
    mp4 = ctx.clip_path("mp4-h264-aac.two")
    copy = ctx.joinable_by_copy(f"{label}.one", f"{label}.two")
    ext = "m4a" if op == "strip_video" else "mp4"
    op_args = {
        "strip_audio": {"src": one},
        "strip_video": {"src": one},
        "combine": {"video_src": one, "audio_src": two},
        "combine_from_mp4": {"video_src": one, "audio_src": mp4},
        "combine_onto_mp4": {"video_src": mp4, "audio_src": one},
        "concat": {"src1": one, "src2": two, "copy": copy},
        "swap_stitch": {"src1": one, "src2": two, "copy": copy},
        "mute_stem": {"video_src": one, "stems": [str(s) for s in stems], "muted": 0},
        "replace_soundtrack": {"video_src": one, "sound_src": two, "snr_db": None},
        "mix_soundtrack": {"video_src": one, "sound_src": two, "snr_db": 10.0},
    }[op]  # fmt: skip
    real_op = {"combine_from_mp4": "combine", "combine_onto_mp4": "combine",
               "mix_soundtrack": "replace_soundtrack"}.get(op, op)  # fmt: skip
    ctx.task = f"{label}-{op}"
    row = ctx.row(0, source_ids=[], question="q", options=[], answer="a", category="c",
                  op=real_op, op_args=op_args, ext=ext)  # fmt: skip
    return real_op, json.loads(row["op_args"]), row["media_path"]


def packets(path: str, stream: str) -> list[str]:
    return subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", f"{stream}:0", "-show_entries",
         "packet=data_hash", "-show_data_hash", "md5", "-of", "csv=p=0", path],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("label", [c for c in CONTAINERS if c != "mp4-h264-aac"])
def test_every_container_survives_every_manipulation(world, label, op):
    ctx, stems = world
    real_op, args, dst = plan(ctx, label, op, stems)
    run_op(real_op, args, dst, MEDIA)
    assert Path(dst).is_file()
    info = probe(dst)
    has_audio, has_video = OUTPUT_STREAMS.get(real_op, (True, True))
    assert (info.has_audio, info.has_video) == (has_audio, has_video)
    assert info.duration > 0.5
    assert decodes_cleanly(dst) is None
    takes = TAKES[Path(dst).suffix[1:]]
    for codec in (info.video_codec, info.audio_codec):
        assert codec is None or codec in takes, f"{codec} in {dst}"
    # Stream copy where the output container takes the source's codec.
    _, _, _, vcodec, acodec = CONTAINERS[label]
    if real_op == "strip_audio" and vcodec in takes:
        assert packets(dst, "v") == packets(args["src"], "v")
    if real_op == "strip_video" and acodec in takes:
        assert packets(dst, "a") == packets(args["src"], "a")


@pytest.mark.parametrize("label", list(CONTAINERS))
def test_planning_records_which_streams_are_reencoded(world, label):
    ctx, stems = world
    _, _, _, vcodec, acodec = CONTAINERS[label]
    video_fits, audio_fits = vcodec in TAKES["mp4"], acodec in TAKES["mp4"]
    expected = [k for k, fits in (("video", video_fits), ("audio", audio_fits)) if not fits]
    assert plan(ctx, label, "combine", stems)[1]["encode"] == expected
    assert plan(ctx, label, "strip_audio", stems)[1]["encode"] == ([] if video_fits else ["video"])
    m4a = [] if acodec in TAKES["m4a"] else ["audio"]
    assert plan(ctx, label, "strip_video", stems)[1]["encode"] == m4a
    assert plan(ctx, label, "mute_stem", stems)[1]["encode"] == ([] if video_fits else ["video"])
    # Two clips with the same streams are joined by stream copy only if mp4 takes them.
    assert plan(ctx, label, "concat", stems)[1]["copy"] is (video_fits and audio_fits)
