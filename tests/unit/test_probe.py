"""probe() and decodes_cleanly() on good, partial and broken files."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

from avtrust.errors import MediaError
from avtrust.media.probe import decodes_cleanly, probe


def test_probe_audio_and_video_clip(clips):
    info = probe(clips["violin"].path)
    assert info.as_dict() == {
        "duration": pytest.approx(1.5, abs=0.02),
        "has_audio": True,
        "has_video": True,
        "fps": 8.0,
        "sample_rate": 16000,
        "channels": 1,
        "width": 64,
        "height": 48,
        "video_codec": "h264",
        "audio_codec": "aac",
        "rotation": 0,
        "audio_offset": 0.0,
    }
    assert probe(clips["piano_wide"].path).width == 80


def test_probe_audio_only(clips):
    info = probe(clips["audio_only"].path)
    assert (info.has_audio, info.has_video) == (True, False)
    assert (info.sample_rate, info.channels, info.audio_codec) == (16000, 1, "aac")
    assert info.fps is None and info.width is None and info.height is None
    assert info.video_codec is None
    assert info.duration == pytest.approx(1.5, abs=0.1)


def test_probe_video_only(clips):
    info = probe(clips["video_only"].path)
    assert (info.has_audio, info.has_video) == (False, True)
    assert info.sample_rate is None and info.channels is None and info.audio_codec is None
    assert (info.fps, info.width, info.height) == (8.0, 64, 48)
    assert info.duration == pytest.approx(1.5, abs=0.02)


def test_cover_art_is_not_a_video_stream(clips, tmp_path):
    """An audio file with an embedded picture (attached_pic) is still audio-only."""
    cover = tmp_path / "cover.png"
    cover.write_bytes(
        subprocess.run(
            ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=red:s=16x16", "-frames:v", "1"]
            + ["-f", "image2pipe", "-vcodec", "png", "-"],
            capture_output=True,
            check=True,
        ).stdout
    )
    dst = tmp_path / "with_cover.m4a"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(clips["audio_only"].path), "-i", str(cover)]
        + ["-map", "0", "-map", "1", "-c", "copy", "-disposition:v", "attached_pic", str(dst)],
        check=True,
    )
    streams = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0"]
        + [str(dst)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert sorted(streams) == ["audio", "video"]  # the picture is there ...
    info = probe(dst)
    assert (info.has_audio, info.has_video, info.width) == (True, False, None)  # ... but ignored


def test_probe_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nowhere" / "clip.mp4"
    with pytest.raises(MediaError, match=re.escape(f"{path}: no such file")):
        probe(path)
    with pytest.raises(MediaError, match="no such file"):
        probe(tmp_path)  # a directory is not a media file


def test_probe_zero_length_file_names_the_path(tmp_path):
    path = tmp_path / "empty.mp4"
    path.touch()
    with pytest.raises(MediaError, match=re.escape(f"{path}: zero-length file")):
        probe(path)


def test_probe_garbage_names_the_path_and_ffprobes_reason(tmp_path):
    path = tmp_path / "garbage.mp4"
    path.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 2048, dtype=np.uint8)))
    with pytest.raises(MediaError, match=re.escape(f"{path}: unreadable (")) as err:
        probe(path)
    assert "Invalid data found" in str(err.value)  # ffprobe's own message is passed on


def test_probe_truncated_mp4(clips, tmp_path):
    path = tmp_path / "truncated.mp4"
    data = clips["violin"].path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError, match=re.escape(str(path))) as err:
        probe(path)
    # The specific cause (what a user needs: the download was cut short), not only
    # ffmpeg's generic last line; the path is named once, and no per-process pointers
    # ("[mov,mp4,… @ 0x55…]") make the message differ between runs.
    message = str(err.value)
    assert "moov atom not found" in message
    assert message.count(str(path)) == 1
    assert "0x" not in message


@pytest.mark.parametrize("name", ["-starts with dash.mp4", "quote's & $(semi);colon.mp4"])
def test_probe_odd_file_names(clips, tmp_path, name):
    """Names are passed as arguments, never through a shell or as options."""
    path = tmp_path / name
    shutil.copy(clips["violin"].path, path)
    assert probe(path).has_video
    assert decodes_cleanly(path) is None


def damaged_copy(src, dst, fill: bytes | None = None):
    """Copy ``src`` with the middle half of its mdat payload overwritten: the header
    (moov) still probes, the coded data does not decode."""
    data = bytearray(src.read_bytes())
    at = data.find(b"mdat")
    size = int.from_bytes(data[at - 4 : at], "big")
    assert at > 0 and size > 1000
    start, end = at + 4 + size // 4, at + 4 + 3 * size // 4
    data[start:end] = (
        fill * (end - start)
        if fill is not None
        else bytes(np.random.default_rng(1).integers(0, 256, end - start, dtype=np.uint8))
    )
    dst.write_bytes(bytes(data))
    return dst


@pytest.mark.parametrize("fill", [None, b"\x00"], ids=["garbage", "zeros"])
def test_decodes_cleanly_finds_damage_the_header_hides(clips, tmp_path, fill):
    src = clips["violin"].path
    assert decodes_cleanly(src) is None
    bad = damaged_copy(src, tmp_path / "damaged.mp4", fill)
    assert probe(bad) == probe(src)  # the header is intact
    error = decodes_cleanly(bad)
    assert error is not None and error.strip()
    assert "0x" not in error  # reproducible: the same damage gives the same reason
    assert decodes_cleanly(bad) == error


def test_decodes_cleanly_reports_unreadable_files(tmp_path):
    path = tmp_path / "garbage.mp4"
    path.write_bytes(b"\x00\x01" * 500)
    assert decodes_cleanly(path)
