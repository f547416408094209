"""Hostile and broken inputs at the index stage and in the model-input decoder.

One AVQA-format raw folder holds a good clip next to every kind of bad one; the index must
turn each bad clip into a rejects row whose reason names the problem (never crash, never
let it into the manifest), and read nothing outside the folder. Media are made with ffmpeg
from lavfi sources (argument lists, no shell).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tracemalloc
from pathlib import Path

import pytest

from avtrust.datasets.index import index_dataset
from avtrust.errors import AnnotationError
from avtrust.media.probe import probe
from avtrust.models.media import read_audio, read_frames, smart_resize

LONG_ID = "x" * 240  # a legal file name (< 255 bytes) but longer than a clip id may be
UNSAFE_IDS = [
    "../outside",
    "../../etc/passwd",
    "/etc/passwd",
    "a;rm -rf ~",
    "$(touch pwned)",
    "`id`",
    "y" * 300,
]


def ffmpeg(*args: str) -> None:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args],
        check=True,
        capture_output=True,
    )


def av_clip(path: Path, seconds: float = 1.0, size: str = "64x48", rate: str = "8") -> Path:
    ffmpeg(
        *("-f", "lavfi", "-i", f"testsrc2=s={size}:r={rate}"),
        *("-f", "lavfi", "-i", "sine=f=440:r=16000"),
        *("-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-threads", "1"),
        *("-pix_fmt", "yuv420p", "-c:a", "aac", str(path)),
    )
    return path


def qa_record(i: int, clip_id: str) -> dict:
    return {
        "id": i,
        "video_name": clip_id,
        "video_id": i,
        "question_text": "What is making the sound?",
        "multi_choice": ["Cat", "Dog", "Piano", "Train"],
        "answer": 2,
        "question_relation": "Both",
        "question_type": "Come From",
    }


@pytest.fixture(scope="module")
def hostile_raw(tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("hostile") / "avqa"
    videos = raw / "videos"
    videos.mkdir(parents=True)
    good = av_clip(videos / "good.mp4")
    data = good.read_bytes()
    (videos / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (videos / "garbage.mp4").write_bytes(b"\x00\x01not a video at all" * 64)
    (videos / "empty.mp4").touch()
    ffmpeg("-i", str(good), "-vn", "-c", "copy", str(videos / "audio_only.m4a"))
    ffmpeg("-i", str(good), "-an", "-c", "copy", str(videos / "video_only.mp4"))
    shutil.copy(good, videos / "twice.mp4")
    ffmpeg("-i", str(good), "-c", "copy", str(videos / "twice.mkv"))
    shutil.copy(good, videos / f"{LONG_ID}.mp4")
    shutil.copy(good, videos / "semi;colon $(x).mp4")
    av_clip(videos / "short.mp4", seconds=0.01, rate="25")
    ids = [p.name.rsplit(".", 1)[0] for p in sorted(videos.iterdir())] + UNSAFE_IDS
    records = [qa_record(i, clip) for i, clip in enumerate(dict.fromkeys(ids))]
    (raw / "annotations").mkdir()
    (raw / "annotations" / "val_qa.json").write_text(json.dumps(records), encoding="utf-8")
    return raw


@pytest.fixture(scope="module")
def hostile_index(hostile_raw):
    manifest, rejects = index_dataset("avqa", "avqa", str(hostile_raw), decode_check=True)
    return (
        {r["clip_id"]: r for r in manifest.to_pylist()},
        {r["clip_id"]: r for r in rejects.to_pylist()},
    )


REJECTED = {
    "truncated": "moov atom not found",
    "garbage": "unreadable",
    "empty": "zero-length file",
    "audio_only": "no video stream",
    "video_only": "no audio stream",
    "twice": "duplicate clip id: several media files share it (twice.mkv, twice.mp4)",
    LONG_ID: "unsafe clip id",
    "semi;colon $(x)": "unsafe clip id",
    **{clip: "unsafe clip id" for clip in UNSAFE_IDS},
}


@pytest.mark.parametrize(("clip_id", "reason"), list(REJECTED.items()), ids=lambda v: v[:24])
def test_bad_clip_is_a_reject_naming_the_problem(hostile_index, clip_id, reason):
    manifest, rejects = hostile_index
    assert clip_id not in manifest
    assert reason in rejects[clip_id]["reason"]


def test_only_the_good_and_the_very_short_clip_are_indexed(hostile_raw, hostile_index):
    manifest, rejects = hostile_index
    assert sorted(manifest) == ["good", "short"]
    assert set(rejects) == set(REJECTED)
    # Ids from the annotations never become paths: nothing was created outside the folder.
    assert not (hostile_raw.parent / "outside").exists()
    assert not Path("pwned").exists() and not (hostile_raw / "videos" / "pwned").exists()


def test_a_hundredth_of_a_second_clip_is_usable(hostile_raw, hostile_index):
    manifest, _ = hostile_index
    row = manifest["short"]
    assert 0 < row["duration"] <= 0.1
    frames = read_frames(row["path"], fps=2, factor=28, min_pixels=28 * 28, max_pixels=56 * 56)
    assert frames.shape[0] >= 1 and frames.shape[1:] == (*smart_resize(48, 64, 28, 784, 3136), 3)
    assert read_audio(row["path"], 16000).size > 0


def test_non_utf8_annotation_file_is_an_error_naming_it(hostile_raw, tmp_path):
    raw = tmp_path / "avqa"
    shutil.copytree(hostile_raw / "videos", raw / "videos")
    bad = raw / "annotations" / "val_qa.json"
    bad.parent.mkdir()
    bad.write_bytes(json.dumps([qa_record(0, "café")], ensure_ascii=False).encode("latin-1"))
    with pytest.raises(AnnotationError, match="val_qa.json"):
        index_dataset("avqa", "avqa", str(raw))


def test_very_long_declared_duration_is_probed_from_headers(tmp_path):
    """Three frames five hours apart: probing (and the decode check) stay cheap, and the
    model input is capped at max_frames whatever the duration says."""
    path = tmp_path / "long.mp4"
    ffmpeg(
        *("-f", "lavfi", "-i", "testsrc2=s=64x48:r=1/18000", "-frames:v", "3"),
        *("-c:v", "libx264", "-preset", "veryfast", "-threads", "1", str(path)),
    )
    info = probe(path)
    assert info.duration >= 36000 and info.has_video and not info.has_audio
    frames = read_frames(
        path, fps=2, factor=28, min_pixels=28 * 28, max_pixels=56 * 56, max_frames=2
    )
    assert frames.shape == (2, *smart_resize(48, 64, 28, 784, 3136), 3)


def test_huge_resolution_is_resized_by_the_decoder_not_in_memory(tmp_path):
    """An 8000x8000 frame (192 MB as RGB) must never reach Python: ffmpeg scales it to the
    model's size, and Python's peak allocation stays far below one full frame."""
    path = tmp_path / "huge.mkv"
    ffmpeg("-f", "lavfi", "-i", "color=c=blue:s=8000x8000", "-frames:v", "1", "-c:v", "mjpeg",
           "-q:v", "31", str(path))  # fmt: skip
    info = probe(path)
    assert (info.width, info.height) == (8000, 8000)
    tracemalloc.start()
    try:
        frames = read_frames(path, fps=2, factor=28, min_pixels=28 * 28, max_pixels=64 * 28 * 28)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert frames.shape == (1, 224, 224, 3)
    assert frames[0, 100, 100, 2] > 200 and frames[0, 100, 100, 0] < 50  # blue
    assert peak < 8000 * 8000 * 3 // 20
