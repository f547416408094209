"""The index stage on raw folders mixing good clips with every kind of bad one."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from avtrust.datasets import adapters, audioset
from avtrust.datasets.index import MANIFEST_SCHEMA, REJECTS_SCHEMA, index_dataset
from avtrust.media.synthesis import catalog, synthesize_audio

SR = 16000
UNSAFE = "a;b$(x)"


def truncate(src: Path, dst: Path) -> None:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])


def damage_mdat(src: Path, dst: Path) -> None:
    """Overwrite the middle half of the mdat payload: moov (the header) stays intact."""
    data = bytearray(src.read_bytes())
    at = data.find(b"mdat")
    size = int.from_bytes(data[at - 4 : at], "big")
    start, end = at + 4 + size // 4, at + 4 + 3 * size // 4
    data[start:end] = bytes(np.random.default_rng(1).integers(0, 256, end - start, np.uint8))
    dst.write_bytes(bytes(data))


def write_wav(path: Path, name: str, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sound = synthesize_audio(catalog()[name], 1.0, SR, np.random.default_rng(seed))
    soundfile.write(path, sound, SR, subtype="PCM_16")


def rows_by_id(table) -> dict[str, dict]:
    return {row["clip_id"]: row for row in table.to_pylist()}


# ------------------------------------------------------------------------------ folder


@pytest.fixture(scope="module")
def folder_raw(clips, tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("folder_raw")
    write_wav(raw / "wind" / "wind_0.wav", "wind", 1)
    shutil.copy(clips["audio_only"].path, raw / "wind" / "wind_1.m4a")
    (raw / "bird").mkdir()
    shutil.copy(clips["violin"].path, raw / "bird" / "bird_0.mp4")  # audio + video is fine
    truncate(clips["violin"].path, raw / "bird" / "bird_1.mp4")
    (raw / "bird" / "bird_2.wav").touch()
    (raw / "rain").mkdir()
    shutil.copy(clips["video_only"].path, raw / "rain" / "rain_0.mp4")  # folder needs audio
    write_wav(raw / "rain" / "rain_1.wav", "rain", 6)
    write_wav(raw / "rain" / f"{UNSAFE}.wav", "rain", 2)
    write_wav(raw / "rain" / "x..y.wav", "rain", 3)
    write_wav(raw / "rain" / ".hidden.wav", "rain", 4)  # hidden: not a clip
    (raw / "rain" / "notes.txt").write_text("not media")  # not a media suffix
    # 'rain-heavy.…' sorts before 'rain.…' although the folder 'rain' sorts first.
    write_wav(raw / "rain-heavy" / "rain_0.wav", "rain", 5)
    (raw / "empty_label").mkdir()
    (raw / "README.md").write_text("top-level files are not labels")
    return raw


@pytest.fixture(scope="module")
def folder_index(folder_raw):
    return index_dataset("envsounds", "folder", str(folder_raw), decode_check=True)


FOLDER_GOOD = {
    # clip_id: (has_audio, has_video, fps, sample_rate, duration, label)
    "bird.bird_0": (True, True, 8.0, SR, 1.5, "bird"),
    "rain.rain_1": (True, False, None, SR, 1.0, "rain"),
    "rain-heavy.rain_0": (True, False, None, SR, 1.0, "rain-heavy"),
    "wind.wind_0": (True, False, None, SR, 1.0, "wind"),
    "wind.wind_1": (True, False, None, SR, 1.5, "wind"),
}
FOLDER_BAD = {
    "bird.bird_1": "moov atom not found",
    "bird.bird_2": "zero-length file",
    "rain.rain_0": "no audio stream",
    f"rain.{UNSAFE}": "unsafe clip id",
    "rain.x..y": "unsafe clip id",
}


def test_folder_list_clips(folder_raw):
    entries = adapters.list_clips("folder", folder_raw)
    ids = [e.clip_id for e in entries]
    assert ids == sorted(ids)
    assert set(ids) == set(FOLDER_GOOD) | set(FOLDER_BAD)
    for entry in entries:
        assert entry.labels == [entry.clip_id.split(".")[0]]
        assert (entry.needs_audio, entry.needs_video) == (True, False)
        assert entry.path is not None and entry.path.is_file()


def test_folder_manifest_holds_exactly_the_good_clips(folder_raw, folder_index):
    manifest, rejects = folder_index
    assert manifest.schema == MANIFEST_SCHEMA and rejects.schema == REJECTS_SCHEMA
    assert manifest.column("clip_id").to_pylist() == sorted(FOLDER_GOOD)
    rows = rows_by_id(manifest)
    for clip_id, (has_a, has_v, fps, sr, duration, label) in FOLDER_GOOD.items():
        row = rows[clip_id]
        assert row["dataset"] == "envsounds"
        assert Path(row["path"]).parent == folder_raw / label
        assert (row["has_audio"], row["has_video"], row["fps"], row["sample_rate"]) == (
            has_a,
            has_v,
            fps,
            sr,
        ), clip_id
        assert row["duration"] == pytest.approx(duration, abs=0.1), clip_id
        assert row["labels"] == [label] and row["stems"] == []
    assert (rows["bird.bird_0"]["width"], rows["bird.bird_0"]["height"]) == (64, 48)
    assert rows["wind.wind_0"]["width"] is None


def test_folder_rejects_name_the_problem(folder_raw, folder_index):
    _, rejects = folder_index
    assert rejects.column("clip_id").to_pylist() == sorted(FOLDER_BAD)
    for clip_id, row in rows_by_id(rejects).items():
        assert FOLDER_BAD[clip_id] in row["reason"], (clip_id, row["reason"])
        assert row["dataset"] == "envsounds"
        assert Path(row["path"]).is_file()
    truncated = rows_by_id(rejects)["bird.bird_1"]
    assert truncated["path"] in truncated["reason"]


# ------------------------------------------------------------------------------ audioset

ONTOLOGY = [
    {"id": "/m/0bt9lr", "name": "Dog", "description": "A dog."},
    {"id": "/m/09x0r", "name": "Speech", "description": "Talking."},
    {"id": "/m/0912c9", "name": "Vehicle horn, car horn, honking", "description": "Honk."},
]
SEGMENTS = [
    ("good0000001", 0.0, ["/m/0bt9lr"]),
    ("good0000002", 30.0, ["/m/09x0r", "/m/0912c9"]),
    ("unknownmid1", 0.0, ["/m/09x0r", "/m/notinontology"]),
    ("truncated01", 0.0, ["/m/0bt9lr"]),
    ("zerolength1", 0.0, ["/m/0bt9lr"]),
    ("audioonly01", 0.0, ["/m/09x0r"]),
    ("videoonly01", 0.0, ["/m/0bt9lr"]),
    ("missing0001", 10.0, ["/m/0bt9lr"]),
    ("x..y", 0.0, ["/m/0bt9lr"]),
    ("damaged0001", 0.0, ["/m/0912c9"]),
]


@pytest.fixture(scope="module")
def audioset_raw(clips, tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("audioset_raw")
    videos, ann = raw / "videos", raw / "annotations"
    videos.mkdir()
    audioset.write_ontology(ONTOLOGY, ann / "ontology.json")
    rows = [
        {"ytid": y, "start_seconds": s, "end_seconds": s + 10, "labels": labels}
        for y, s, labels in SEGMENTS
    ]
    audioset.write_segments(rows[:6], ann / "eval_segments.csv")
    audioset.write_segments(rows[6:], ann / "balanced_train_segments.csv")
    violin, cello = clips["violin"].path, clips["cello"].path
    shutil.copy(violin, videos / "good0000001_000000.mp4")
    shutil.copy(cello, videos / "good0000002_000030.mp4")
    shutil.copy(cello, videos / "unknownmid1_000000.mp4")
    shutil.copy(violin, videos / "unlisted0001_000000.mp4")  # a file the CSVs do not name
    truncate(violin, videos / "truncated01_000000.mp4")
    (videos / "zerolength1_000000.mp4").touch()
    shutil.copy(clips["audio_only"].path, videos / "audioonly01_000000.m4a")
    shutil.copy(clips["video_only"].path, videos / "videoonly01_000000.mp4")
    shutil.copy(violin, videos / "x..y_000000.mp4")
    shutil.copy(violin, videos / f"{UNSAFE}.mp4")
    damage_mdat(violin, videos / "damaged0001_000000.mp4")
    return raw


@pytest.fixture(scope="module")
def audioset_index(audioset_raw):
    return index_dataset("audioset", "audioset", str(audioset_raw), decode_check=True, workers=2)


AUDIOSET_GOOD = {
    "good0000001_000000": ["Dog"],
    "good0000002_000030": ["Speech", "Vehicle horn, car horn, honking"],
    "unknownmid1_000000": ["Speech", "/m/notinontology"],  # unknown MIDs stay MIDs
    "unlisted0001_000000": [],
}
AUDIOSET_BAD = {
    "truncated01_000000": "moov atom not found",
    "zerolength1_000000": "zero-length file",
    "audioonly01_000000": "no video stream",
    "videoonly01_000000": "no audio stream",
    "missing0001_000010": "no media file found",
    "x..y_000000": "unsafe clip id",
    UNSAFE: "unsafe clip id",
    "damaged0001_000000": "does not decode",
}


def test_audioset_list_clips(audioset_raw):
    entries = {e.clip_id: e for e in adapters.list_clips("audioset", audioset_raw)}
    assert set(entries) == set(AUDIOSET_GOOD) | set(AUDIOSET_BAD)
    assert entries["missing0001_000010"].path is None
    assert entries["audioonly01_000000"].path.suffix == ".m4a"
    assert entries["good0000002_000030"].labels == AUDIOSET_GOOD["good0000002_000030"]
    assert all(e.needs_audio and e.needs_video for e in entries.values())


def test_audioset_manifest_holds_exactly_the_good_clips(audioset_raw, audioset_index):
    manifest, _ = audioset_index
    assert manifest.column("clip_id").to_pylist() == sorted(AUDIOSET_GOOD)
    for clip_id, row in rows_by_id(manifest).items():
        assert row["path"] == str(audioset_raw / "videos" / f"{clip_id}.mp4")
        assert row["duration"] == pytest.approx(1.5, abs=0.05)
        assert (row["has_audio"], row["has_video"]) == (True, True)
        assert (row["fps"], row["sample_rate"], row["width"], row["height"]) == (8.0, SR, 64, 48)
        assert row["labels"] == AUDIOSET_GOOD[clip_id]
        assert row["dataset"] == "audioset"


def test_audioset_rejects_name_the_problem(audioset_raw, audioset_index):
    _, rejects = audioset_index
    assert rejects.column("clip_id").to_pylist() == sorted(AUDIOSET_BAD)
    rows = rows_by_id(rejects)
    for clip_id, needle in AUDIOSET_BAD.items():
        assert needle in rows[clip_id]["reason"], (clip_id, rows[clip_id]["reason"])
    assert rows["missing0001_000010"]["path"] == ""
    assert rows["audioonly01_000000"]["path"].endswith(".m4a")
    assert "0x" not in rows["damaged0001_000000"]["reason"]  # reproducible reasons


def test_decode_check_off_accepts_a_clip_whose_header_probes(audioset_raw, audioset_index):
    manifest, rejects = index_dataset("audioset", "audioset", str(audioset_raw), decode_check=False)
    assert "damaged0001_000000" in manifest.column("clip_id").to_pylist()
    expected_rejects = sorted(set(AUDIOSET_BAD) - {"damaged0001_000000"})
    assert rejects.column("clip_id").to_pylist() == expected_rejects
    # Everything else is the same as with the decode check (run with 2 workers).
    with_check = audioset_index[0].to_pylist()
    without = [r for r in manifest.to_pylist() if r["clip_id"] != "damaged0001_000000"]
    assert without == with_check


def test_empty_or_missing_raw_folders_give_empty_tables(tmp_path):
    for fmt in ("folder", "audioset"):
        if fmt == "audioset":
            audioset.write_ontology(ONTOLOGY, tmp_path / fmt / "annotations" / "ontology.json")
        manifest, rejects = index_dataset("x", fmt, str(tmp_path / fmt))
        assert manifest.num_rows == 0 and rejects.num_rows == 0
        assert manifest.schema == MANIFEST_SCHEMA
    assert adapters.list_clips("folder", tmp_path / "does_not_exist") == []
    with pytest.raises(ValueError, match="unknown dataset format"):
        adapters.list_clips("nope", tmp_path)


def test_file_names_that_are_not_utf8_are_rejected_not_fatal(clips, tmp_path):
    """Arrow stores only valid UTF-8; a Latin-1 file name must become a reject row."""
    raw = tmp_path / os.fsdecode(b"raw\xff")  # the raw folder's own name is not UTF-8
    (raw / "videos").mkdir(parents=True)
    audioset.write_ontology(ONTOLOGY, raw / "annotations" / "ontology.json")
    shutil.copy(clips["violin"].path, raw / "videos" / "fine0000001_000000.mp4")
    shutil.copy(clips["violin"].path, raw / "videos" / os.fsdecode(b"caf\xe9.mp4"))
    manifest, rejects = index_dataset("x", "audioset", str(raw), decode_check=False)
    assert manifest.num_rows == 0
    rows = rows_by_id(rejects)
    assert set(rows) == {"caf\\xe9", "fine0000001_000000"}
    assert "unsafe clip id" in rows["caf\\xe9"]["reason"]
    assert "not valid UTF-8" in rows["fine0000001_000000"]["reason"]
    assert rows["fine0000001_000000"]["path"].endswith("raw\\xff/videos/fine0000001_000000.mp4")
