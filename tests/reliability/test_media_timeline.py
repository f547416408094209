"""Media are read, manipulated and fed to the models as a player shows them.

Two kinds of real-world clip that a player shows differently from their raw streams:

- **late audio**: the container starts the soundtrack 2 s into the clip (``-itsoffset``;
  an edit list, a recorder that starts the microphone late). A player plays 2 s of
  silence first; ffmpeg writes the samples back to back from 0 s unless told otherwise.
- **rotation**: the stored picture is landscape and the display matrix turns it 90°
  (how phones film portrait; ``-metadata:s:v rotate=90`` on a stream copy, since ffmpeg
  5.1 has no ``-display_rotation``). A player shows it portrait.

The stored picture is red on its left half and blue on its right; turned 90° counter-
clockwise, as this matrix says, it shows blue on top and red at the bottom. Tones tell
the soundtracks apart: 440 Hz in the on-time clips, 880 Hz in the late one.

Chain: generated clips -> index (folder format) -> manifest -> plan rows
(``TaskContext.row`` as the builders call it) -> ``run_op``; and the readers of the
model inputs (``OmniInputBuilder.read_clip``, ``read_audio``) on the clips and outputs.
"""

from __future__ import annotations

import json
import subprocess
from types import SimpleNamespace

import numpy as np
import pytest
from reliability_harness import indexed_task

from avtrust.bench.samples import TaskContext
from avtrust.bench.shards import run_op
from avtrust.media.ffmpeg import decode_audio, decode_audio_segment
from avtrust.media.probe import probe
from avtrust.models.media import read_audio
from avtrust.models.omni_inputs import OmniInputBuilder, VisionSettings

SR = 16000
MEDIA = {
    "video_codec": {"vcodec": "libx264", "preset": "veryfast", "crf": 18, "threads": 1},
    "audio_codec": {"acodec": "aac", "b:a": "64k"},
    "sample_rate": SR,
}
PICTURE = "color=red:s=64x48:r=8,drawbox=x=32:y=0:w=32:h=48:color=blue:t=fill"
X264 = ("-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-threads", "1")
TOKENS = ("audio_token", "video_token", "audio_bos_token", "audio_eos_token",
          "vision_bos_token", "vision_eos_token")  # fmt: skip


def ffmpeg(*args: str) -> None:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args],
        check=True,
        capture_output=True,
    )


def tone(audio: np.ndarray, freq: float, t0: float, t1: float) -> float:
    """Amplitude of the ``freq`` Hz component of ``audio`` (at 16 kHz) in [t0, t1) s."""
    seg = audio[int(t0 * SR) : int(t1 * SR)].astype(np.float64)
    assert len(seg) == int(t1 * SR) - int(t0 * SR), f"audio ends at {len(audio) / SR:.2f} s"
    t = np.arange(len(seg)) / SR
    return float(2 * abs(np.mean(seg * np.exp(-2j * np.pi * freq * t))))


def colour(frame: np.ndarray) -> str:
    """``red``, ``blue`` or ``black`` for a patch of an RGB frame."""
    r, _, b = frame.reshape(-1, 3).mean(axis=0)
    if max(r, b) < 60:
        return "black"
    return "red" if r > b else "blue"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """(TaskContext over the indexed manifest, manifest rows by clip id)."""
    root = tmp_path_factory.mktemp("timeline")
    raw = root / "raw" / "clips"  # folder format: <label>/<stem>, id "clips.<stem>"
    raw.mkdir(parents=True)
    ffmpeg("-f", "lavfi", "-i", PICTURE, "-f", "lavfi", "-i", f"sine=f=440:r={SR}",
           "-t", "3", *X264, "-c:a", "aac", str(raw / "landscape.mp4"))  # fmt: skip
    # The same streams, shown turned by the container's display matrix.
    ffmpeg("-i", str(raw / "landscape.mp4"), "-c", "copy", "-metadata:s:v", "rotate=90",
           str(raw / "portrait.mp4"))  # fmt: skip
    ffmpeg("-i", str(raw / "landscape.mp4"), "-c", "copy", "-metadata:s:v", "rotate=180",
           str(raw / "upside_down.mp4"))  # fmt: skip
    # 4 s of pictures; 2 s of sound that the container starts at 2 s.
    ffmpeg("-f", "lavfi", "-t", "4", "-i", PICTURE,
           "-itsoffset", "2", "-f", "lavfi", "-t", "2", "-i", f"sine=f=880:r={SR}",
           "-map", "0:v", "-map", "1:a", *X264, "-c:a", "aac", str(raw / "late.mp4"))  # fmt: skip
    ctx, manifest = indexed_task(root, root / "raw", "timeline")
    return ctx, {r["clip_id"].removeprefix("clips."): r for r in manifest.to_pylist()}


def planned(ctx: TaskContext, op: str, op_args: dict, name: str) -> tuple[dict, str]:
    """(op_args as planning records them, output path) of ``op``."""
    ctx.task = name
    ext = "m4a" if op == "strip_video" else "mp4"
    row = ctx.row(0, source_ids=[], question="q", options=[], answer="a", category="c",
                  op=op, op_args=op_args, ext=ext)  # fmt: skip
    return json.loads(row["op_args"]), row["media_path"]


def model_input(path) -> tuple[str, np.ndarray | None, np.ndarray | None]:
    """What the Omni thinker's input builder decodes of ``path`` (kind, audio, frames)."""
    tokenizer = SimpleNamespace(**{name: f"<{name}>" for name in TOKENS})
    builder = OmniInputBuilder(tokenizer, None, VisionSettings())
    return builder.read_clip(path)


def assert_portrait(frames: np.ndarray) -> None:
    """Frames of the turned picture: taller than wide, blue on top, red at the bottom."""
    t, h, w, _ = frames.shape
    assert h > w, f"{w}x{h}: the rotated clip is fed landscape"
    for frame in frames:
        top, bottom = frame[: h // 4, w // 4 : 3 * w // 4], frame[3 * h // 4 :, w // 4 : 3 * w // 4]
        assert (colour(top), colour(bottom)) == ("blue", "red")


def assert_late_880(audio: np.ndarray, start: float) -> None:
    """Silence at 880 Hz until ``start`` s (with 0.2 s of slack for the codec), the tone
    after it (lavfi's sine has an amplitude of 1/8)."""
    assert tone(audio, 880, max(0.0, start - 1.8), start - 0.2) < 0.01
    end = min(start + 1.8, len(audio) / SR - 0.1)
    assert end > start + 0.4, f"audio ends at {len(audio) / SR:.2f} s"
    assert tone(audio, 880, start + 0.2, end) > 0.08


def test_manifest_records_rotation_and_late_audio(world):
    _, rows = world
    shown = {c: (r["width"], r["height"], r["rotation"]) for c, r in rows.items()}
    assert shown == {"landscape": (64, 48, 0), "portrait": (48, 64, 90),
                     "upside_down": (64, 48, 180), "late": (64, 48, 0)}  # fmt: skip
    # AAC's priming makes ffprobe place the stream 1024 samples (64 ms) early.
    assert rows["late"]["audio_offset"] == pytest.approx(2.0, abs=0.1)
    assert {rows[c]["audio_offset"] for c in ("landscape", "portrait", "upside_down")} == {0.0}


def test_model_inputs_follow_the_display_matrix(world):
    ctx, _ = world
    kind, audio, frames = model_input(ctx.clip_path("clips.portrait"))
    assert kind == "av" and len(audio) == pytest.approx(3 * SR, abs=0.1 * SR)
    assert_portrait(frames)
    _, _, upright = model_input(ctx.clip_path("clips.landscape"))
    assert upright.shape[2] > upright.shape[1]


def test_model_inputs_put_late_audio_on_the_clip_timeline(world):
    ctx, _ = world
    path = ctx.clip_path("clips.late")
    kind, audio, frames = model_input(path)  # one ffmpeg process for both streams
    assert kind == "av" and len(frames) == 8  # 4 s at 2 fps
    assert len(audio) == pytest.approx(4 * SR, abs=0.1 * SR)
    assert_late_880(audio, 2.0)
    # Audio alone (CLAP, the audio LLM, HTTP models), and the scenes' solo segments.
    assert_late_880(read_audio(path, SR), 2.0)
    assert_late_880(decode_audio_segment(path, 1.0, 2.5, SR), 1.0)


def test_mvt_of_a_late_audio_keeps_its_silence(world):
    ctx, _ = world
    args, dst = planned(ctx, "strip_video", {"src": ctx.clip_path("clips.late")}, "MVT-late")
    # Planning reads the late start from the manifest: a stream copy would drop it.
    assert args["encode"] == ["audio"]
    run_op("strip_video", args, dst, MEDIA)
    assert_late_880(decode_audio(dst, SR), 2.0)
    # An on-time soundtrack is still copied.
    args, _ = planned(ctx, "strip_video", {"src": ctx.clip_path("clips.landscape")}, "MVT-on-time")
    assert args["encode"] == []


def test_combine_keeps_rotation_and_late_audio(world):
    ctx, _ = world
    late, portrait = ctx.clip_path("clips.late"), ctx.clip_path("clips.portrait")
    op_args = {"video_src": portrait, "audio_src": late}
    args, dst = planned(ctx, "combine", op_args, "MAIT-rotated-late")
    assert args["encode"] == []
    run_op("combine", args, dst, MEDIA)
    _, audio, frames = model_input(dst)
    assert_portrait(frames)
    assert_late_880(audio, 2.0)
    assert probe(dst).rotation == 90  # copied with the stream, not turned twice


@pytest.mark.parametrize("decided_by", ["manifest", "probe"])
@pytest.mark.parametrize("second", ["portrait", "upside_down"])
def test_stitching_clips_of_another_rotation_keeps_each_upright(world, second, decided_by):
    ctx, _ = world
    landscape, other = ctx.clip_path("clips.landscape"), ctx.clip_path(f"clips.{second}")
    copy = ctx.joinable_by_copy("clips.landscape", f"clips.{second}")
    assert copy is False  # one display matrix cannot hold for both
    op_args = {"src1": landscape, "src2": other, "copy": copy}
    if decided_by == "probe":  # a plan without the decision: the clips are probed
        del op_args["copy"]
    args, dst = planned(ctx, "concat", op_args, f"COT-Stitch-{second}-{decided_by}")
    run_op("concat", args, dst, MEDIA)
    info = probe(dst)
    assert (info.width, info.height, info.rotation) == (64, 48, 0)
    _, _, frames = model_input(dst)
    h, w = frames.shape[1:3]
    first, last = frames[1], frames[-2]  # a frame of each clip
    assert (colour(first[:, : w // 4]), colour(first[:, 3 * w // 4 :])) == ("red", "blue")
    if second == "upside_down":  # turned by 180°: blue on the left
        assert (colour(last[:, : w // 4]), colour(last[:, 3 * w // 4 :])) == ("blue", "red")
        return
    # The portrait clip, upright, between black bars (not stretched to landscape).
    middle = slice(w // 2 - 4, w // 2 + 4)
    assert (colour(last[: h // 4, middle]), colour(last[3 * h // 4 :, middle])) == ("blue", "red")
    assert colour(last[:, :4]) == colour(last[:, -4:]) == "black"


def test_stitched_late_audio_stays_under_its_pictures(world):
    ctx, _ = world
    op_args = {"src1": ctx.clip_path("clips.portrait"), "src2": ctx.clip_path("clips.late"),
               "copy": ctx.joinable_by_copy("clips.portrait", "clips.late")}  # fmt: skip
    args, dst = planned(ctx, "concat", op_args, "COT-Stitch-late")
    run_op("concat", args, dst, MEDIA)
    audio = decode_audio(dst, SR)
    assert tone(audio, 440, 0.2, 2.8) > 0.08
    # The late clip starts at 3 s; its sound 2 s later.
    assert_late_880(audio, 5.0)


def test_a_mixed_soundtrack_keeps_the_original_on_its_timeline(world):
    ctx, _ = world
    late, landscape = ctx.clip_path("clips.late"), ctx.clip_path("clips.landscape")
    op_args = {"video_src": late, "sound_src": landscape, "snr_db": 0.0}
    args, dst = planned(ctx, "replace_soundtrack", op_args, "m2-late")
    run_op("replace_soundtrack", args, dst, MEDIA)
    audio = decode_audio(dst, SR)
    assert tone(audio, 440, 0.2, 3.8) > 0.03  # the new sound throughout
    assert_late_880(audio, 2.0)  # the original where the clip played it
