"""A user's local dataset folder as it comes: symlink loops, a file where a folder belongs,
and folder names with spaces and non-ASCII letters (fetch -> index -> manipulate)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from avtrust.datasets.download.local import prepare_local
from avtrust.datasets.index import index_dataset
from avtrust.errors import DownloadError
from avtrust.media import manipulate
from avtrust.media.probe import decodes_cleanly, probe

DATA = Path(__file__).resolve().parents[1] / "data"
QA = DATA / "music_avqa" / "avqa-test.json"  # asks about videos 00000001 ... 00000009


def av_clip(path: Path, freq: int = 440) -> Path:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=s=64x48:r=8", "-f", "lavfi", "-i", f"sine=f={freq}:r=16000",
         "-t", "1", "-c:v", "libx264", "-preset", "veryfast", "-threads", "1",
         "-pix_fmt", "yuv420p", "-c:a", "aac", str(path)],
        check=True, capture_output=True,
    )  # fmt: skip
    return path


def fetch_and_index(folder: Path, root: Path, annotations: Path = QA):
    spec = {"path": str(folder), "annotations": [{"path": str(annotations)}]}
    raw = root / "raw" / "music_avqa"
    prepare_local("music_avqa", "music_avqa", spec, raw, root / "cache")
    manifest, rejects = index_dataset("music_avqa", "music_avqa", str(raw), decode_check=True)
    return {r["clip_id"]: r for r in manifest.to_pylist()}, {
        r["clip_id"]: r["reason"] for r in rejects.to_pylist()
    }


def test_a_symlink_loop_is_unreadable_not_missing(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    av_clip(videos / "00000002.mp4")
    os.symlink(videos / "00000001.mp4", videos / "00000001.mp4")  # points at itself
    os.symlink(videos / "loop_b.mp4", videos / "00000003.mp4")  # 3 -> b -> 3
    os.symlink(videos / "00000003.mp4", videos / "loop_b.mp4")
    manifest, rejects = fetch_and_index(videos, tmp_path / "work")
    assert "00000002" in manifest
    for clip in ("00000001", "00000003"):
        assert "unreadable (symlink loop)" in rejects[clip], rejects[clip]
    assert "no media file found" in rejects["00000004"]  # truly absent: said so


def test_a_file_given_as_the_folder_says_so(tmp_path):
    clip = av_clip(tmp_path / "00000001.mp4")
    spec = {"path": str(clip), "annotations": [{"path": str(QA)}]}
    with pytest.raises(DownloadError) as err:
        prepare_local("music_avqa", "music_avqa", spec, tmp_path / "raw", tmp_path / "cache")
    message = str(err.value)
    assert f"{clip} is a file, not a folder" in message
    assert "does not exist" not in message and "drive links" not in message


def test_a_folder_given_as_a_symlink_loop_says_so(tmp_path):
    loop = tmp_path / "videos"
    os.symlink(loop, loop)
    spec = {"path": str(loop), "annotations": [{"path": str(QA)}]}
    with pytest.raises(DownloadError, match=r"videos is unreadable \(symlink loop\)"):
        prepare_local("music_avqa", "music_avqa", spec, tmp_path / "raw", tmp_path / "cache")


def test_spaces_and_non_ascii_letters_in_folder_names(tmp_path):
    """The user's folder, the annotation file's folder and the work folder all have spaces,
    accents and a quote; fetch, index, and manipulations by argument list and by the concat
    demuxer's list file all work."""
    folder = tmp_path / "MUSIC AVQA – vidéos réelles 音乐 l'été"
    folder.mkdir()
    av_clip(folder / "00000001.mp4", 440)
    av_clip(folder / "00000002.mp4", 660)
    notes = tmp_path / "mes annotations"
    notes.mkdir()
    annotations = notes / "avqa-test.json"
    annotations.write_text(QA.read_text(encoding="utf-8"), encoding="utf-8")
    work = tmp_path / "wörk dir"
    manifest, rejects = fetch_and_index(folder, work, annotations)
    assert sorted(manifest) == ["00000001", "00000002"], rejects
    one, two = manifest["00000001"]["path"], manifest["00000002"]["path"]
    out = work / "résultats média"
    out.mkdir()
    manipulate.strip_audio(one, out / "sans son.mp4")
    manipulate.concat([one, two], out / "bout à bout.mp4")
    manipulate.swap_stitch(one, two, out / "échangé.mp4")
    for name in ("sans son.mp4", "bout à bout.mp4", "échangé.mp4"):
        assert decodes_cleanly(out / name) is None
    assert probe(out / "bout à bout.mp4").duration > 1.5
    assert json.loads(annotations.read_text(encoding="utf-8"))  # the user's file is untouched
