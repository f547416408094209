"""read_frames / read_audio_frames keep only the sampled frames while ffmpeg decodes.

The reference is the reader this replaced: decode every frame (``decode_frames``), then
keep ``frame_indices(total, ...)`` of them. The streaming reader must give the same
arrays, bit for bit, whether its predicted frame count is right (one decoding pass) or
wrong (damaged streams, edit lists: the frames are picked again for the true count), and
hold only the kept frames (plus one frame of buffer) in memory. Clips are made with
ffmpeg from lavfi sources (argument lists, no shell).
"""

from __future__ import annotations

import dataclasses
import subprocess
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from avtrust.errors import MediaError
from avtrust.media.ffmpeg import decode_frames
from avtrust.media.probe import count_packets, probe
from avtrust.models import media
from avtrust.models.media import frame_indices, read_audio_frames, read_frames, smart_resize

VISION = {"fps": 2.0, "factor": 28, "min_pixels": 28 * 28, "max_pixels": 56 * 56}
VPX = ("-c:v", "libvpx", "-threads", "1")
X264 = ("-c:v", "libx264", "-preset", "ultrafast", "-threads", "1", "-pix_fmt", "yuv420p")


def ffmpeg(*args: str) -> None:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args],
        check=True,
        capture_output=True,
    )


def lavfi_clip(path: Path, seconds: float, rate: str, video: tuple[str, ...], audio=None) -> Path:
    """testsrc2 at ``rate`` fps (64x48), with a sine soundtrack encoded by ``audio``."""
    args = ["-f", "lavfi", "-i", f"testsrc2=s=64x48:r={rate}"]
    if audio:
        args += ["-f", "lavfi", "-i", "sine=f=440:r=44100", "-c:a", audio]
    ffmpeg(*args, "-t", str(seconds), *video, str(path))
    return path


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("model_media")
    clips = {
        # mp4: the header has the frame count (nb_frames)
        "mp4": lavfi_clip(root / "av.mp4", 2.3, "25", X264, "aac"),
        # Matroska/WebM: no frame count in the header but the video's end time; the video
        # starts after the audio, so ffmpeg's constant-rate output repeats the first frame
        "mkv": lavfi_clip(root / "av.mkv", 2.3, "25", X264, "aac"),
        "webm": lavfi_clip(root / "av.webm", 2.3, "60", VPX, "libopus"),
        "video_only_mkv": lavfi_clip(root / "v.mkv", 2.3, "30000/1001", X264),
        # NUT: neither a frame count nor an end time (the packets are counted)
        "nut": lavfi_clip(root / "av.nut", 2.3, "24000/1001", ("-c:v", "mpeg4"), "pcm_s16le"),
        # a bare MJPEG stream: no frame rate, no duration, no frame count
        "mjpeg": lavfi_clip(root / "v.mjpeg", 2.0, "8", ("-c:v", "mjpeg", "-f", "image2pipe")),
        # one frame: shorter than one temporal patch
        "one_frame": lavfi_clip(root / "one.mp4", 0.01, "8", X264),
    }
    # Matroska as mkvmerge writes it: the frame count in a statistics tag
    clips["mkvmerge"] = root / "tagged.mkv"
    ffmpeg("-i", str(clips["mkv"]), "-c", "copy", "-metadata:s:v:0", "NUMBER_OF_FRAMES-eng=58",
           str(clips["mkvmerge"]))  # fmt: skip
    # an edit list: the header counts frames that the decoder drops
    clips["trimmed"] = root / "trimmed.mp4"
    ffmpeg("-ss", "0.5", "-i", str(clips["mp4"]), "-c", "copy", str(clips["trimmed"]))
    return clips


def decode_all_then_sample(path, info, fps, factor, min_pixels, max_pixels, temporal=2,
                           min_frames=4, max_frames=768):  # fmt: skip
    """The reader this replaced: every frame in memory, then the sampled ones (resized
    from the source size as the streaming reader does)."""
    frames = decode_frames(path, info.width, info.height)
    total = len(frames)
    src_fps = info.fps or (total / info.duration if info.duration else 0.0)
    kept = frames[frame_indices(total, src_fps, fps, temporal, min_frames, max_frames)]
    ceiling = media.video_max_pixels(len(kept), factor, min_pixels, max_pixels, None)
    height, width = smart_resize(info.height, info.width, factor, min_pixels, ceiling)
    return np.stack([media.resize_frame(f, width, height) for f in kept])


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)


def count_decodes(monkeypatch) -> list[int | None]:
    """Record the frames each ffmpeg decoding was asked to keep (its count: the passes)."""
    passes, decode = [], media._decode

    def counted(path, width, height, keep, sample_rate, source):
        passes.append(None if keep is None else len(keep))
        return decode(path, width, height, keep, sample_rate, source)

    monkeypatch.setattr(media, "_decode", counted)
    return passes


def test_probe_reads_the_frame_count_and_the_video_times(made):
    mp4, mkv, tagged, nut = (probe(made[k]) for k in ("mp4", "mkv", "mkvmerge", "nut"))
    assert (mp4.nb_frames, mp4.video_offset, mp4.video_end) == (58, 0.0, None)
    assert mkv.nb_frames is None and 0 < mkv.video_offset < 0.1
    assert mkv.video_end == pytest.approx(mkv.video_offset + 58 / 25, abs=1e-3)
    assert tagged.nb_frames == 58 and nut.nb_frames is None and nut.video_end is None
    assert count_packets(made["mkv"]) == 58 and count_packets(made["mjpeg"]) == 16
    assert set(mp4.as_dict()) == {f.name for f in dataclasses.fields(mp4)} - {
        "nb_frames", "video_offset", "video_end"}  # fmt: skip
    assert count_packets(made["mp4"].parent / "missing.mkv") is None


@pytest.mark.parametrize(
    "name", ["mp4", "mkv", "webm", "video_only_mkv", "mkvmerge", "nut", "mjpeg", "one_frame"]
)
def test_predicted_count_is_right_and_one_pass_gives_the_old_frames(made, name, monkeypatch):
    path, info = made[name], probe(made[name])
    total = len(decode_frames(path, 28, 28))
    assert media.expected_frame_count(path, info) == total
    sound = media.read_audio(path, 16000, info)
    passes = count_decodes(monkeypatch)
    for fps in (0.5, 2.0, 30.0):
        vision = {**VISION, "fps": fps}
        want = decode_all_then_sample(path, info, **vision)
        passes.clear()
        got = read_frames(path, info=info, **vision)
        assert same(got, want) and got.flags.writeable and got.flags.c_contiguous
        assert passes == [len(want)]  # one ffmpeg process, holding the kept frames only
        if info.has_audio:
            audio, frames = read_audio_frames(path, 16000, info=info, **vision)
            assert same(frames, want) and same(audio, sound)
            assert passes[1:] == [len(want)]  # audio and video from one process too
    if name == "one_frame":
        assert want.shape[0] == 1  # fewer frames than one temporal patch: all kept
    if name == "mjpeg":
        assert info.fps is None and info.duration == 0 and want.shape[0] == 16


def test_unknown_frame_rate_falls_back_to_frames_per_second_of_duration(made):
    for name in ("mp4", "mkv"):
        info = dataclasses.replace(probe(made[name]), fps=None)
        want = decode_all_then_sample(made[name], info, **VISION)
        assert same(read_frames(made[name], info=info, **VISION), want)
        audio, frames = read_audio_frames(made[name], 16000, info=info, **VISION)
        assert same(frames, want) and audio.size > 16000


def test_header_counts_cost_no_extra_process(made, monkeypatch):
    counted = []

    def counting(path, timeout_s=600.0):
        counted.append(Path(path).name)
        return count_packets(path, timeout_s)

    monkeypatch.setattr(media, "count_packets", counting)
    for name in ("mp4", "mkv", "webm", "mkvmerge", "nut", "mjpeg"):
        read_frames(made[name], **VISION)
    # mp4: nb_frames, Matroska: the end time or a tag, from the probe already made; NUT
    # and a bare stream: packets counted (read, not decoded)
    assert counted == ["av.nut", "v.mjpeg"]


def test_an_edit_list_makes_the_prediction_wrong_and_the_frames_still_exact(made, monkeypatch):
    path, info = made["trimmed"], probe(made["trimmed"])
    total = len(decode_frames(path, 28, 28))
    assert media.expected_frame_count(path, info) > total
    want = decode_all_then_sample(path, info, **VISION)
    passes = count_decodes(monkeypatch)
    assert same(read_frames(path, info=info, **VISION), want)
    assert len(passes) == 2 and passes[1] == len(want)
    audio, frames = read_audio_frames(path, 16000, info=info, **VISION)
    assert same(frames, want) and same(audio, media.read_audio(path, 16000, info))


def test_wrong_predictions_still_give_the_exact_frames(made, monkeypatch):
    path, info = made["mkv"], probe(made["mkv"])
    total = media.expected_frame_count(path, info)
    sound = media.read_audio(path, 16000, info)
    passes = count_decodes(monkeypatch)
    seconds = set()
    for wrong, fps in [(total - 30, 2.0), (total - 1, 0.5), (total + 1, 30.0), (total + 40, 2.0),
                       (None, 2.0), (0, 30.0)]:  # fmt: skip
        monkeypatch.setattr(media, "expected_frame_count", lambda p, i, n=wrong: n)
        vision = {**VISION, "fps": fps}
        want = decode_all_then_sample(path, info, **vision)
        # a second pass only where the frames kept for the wrong count lack some wanted
        kept = set(frame_indices(wrong, info.fps, fps, 2, 4, 768)) if wrong else set()
        second = not set(frame_indices(total, info.fps, fps, 2, 4, 768)) <= kept
        seconds.add(second)
        passes.clear()
        got = read_frames(path, info=info, **vision)
        assert same(got, want) and passes[1:] == ([len(want)] if second else [])
        passes.clear()
        audio, frames = read_audio_frames(path, 16000, info=info, **vision)
        assert same(frames, want) and same(audio, sound) and len(passes) == 1 + second
    assert seconds == {True, False}  # both ways of picking again were taken


@pytest.mark.parametrize("size", [(80, 48, 56, 28), (640, 360, 448, 252)])
def test_a_resized_frame_does_not_depend_on_torchs_thread_count(size):
    """The decode cache resizes on one torch thread (decode_cache._one_torch_thread),
    an evaluation without it on several: both must give the same bytes."""
    torch = pytest.importorskip("torch")
    width, height, out_width, out_height = size
    frame = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    threads = torch.get_num_threads()
    try:
        resized = []
        for n in (1, 4):
            torch.set_num_threads(n)
            resized.append(media.resize_frame(frame, out_width, out_height))
    finally:
        torch.set_num_threads(threads)
    assert resized[0].shape == (out_height, out_width, 3)
    assert np.array_equal(*resized)


def test_a_decoding_failure_is_a_media_error_naming_the_file(made, tmp_path):
    info = probe(made["mp4"])
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"junk" * 64)
    with pytest.raises(MediaError, match="broken.mp4"):
        read_frames(bad, info=info, **VISION)
    with pytest.raises(MediaError, match="broken.mp4"):
        read_audio_frames(bad, 16000, info=info, **VISION)


def test_memory_holds_the_kept_frames_not_the_clip(tmp_path):
    """A minute at 25 fps (1500 frames): sampling at 0.1 fps keeps 6. Python's peak
    allocation stays within a few kept frames, far below the frames of the whole clip."""
    path = tmp_path / "minute.mp4"
    ffmpeg(*("-f", "lavfi", "-i", "testsrc2=s=128x96:r=25"),
           *("-f", "lavfi", "-i", "sine=f=440:r=16000", "-c:a", "aac"),
           "-t", "60", *X264, str(path))  # fmt: skip
    info = probe(path)
    assert info.nb_frames == 1500
    vision = {"fps": 0.1, "factor": 28, "min_pixels": 28 * 28, "max_pixels": 200 * 28 * 28}
    height, width = smart_resize(96, 128, 28, 28 * 28, 200 * 28 * 28)
    frame_bytes = height * width * 3
    all_frames = 1500 * frame_bytes
    tracemalloc.start()
    try:
        frames = read_frames(path, info=info, **vision)
        _, peak_video = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        audio, frames_av = read_audio_frames(path, 16000, info=info, **vision)
        _, peak_av = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert frames.shape == (6, height, width, 3) and same(frames_av, frames)
    kept = frames.nbytes
    assert peak_video < 2 * (kept + frame_bytes) and peak_video < all_frames // 100
    # the soundtrack is read whole (the model's input); frames add only what is kept
    assert audio.size == pytest.approx(60 * 16000, rel=0.01)
    assert peak_av < 2 * audio.nbytes + 2 * (kept + frame_bytes) + (1 << 20)
    assert peak_av < all_frames // 4
