"""The manipulations, checked on the media they write: streams, samples and pixels."""

from __future__ import annotations

import functools
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile

from avtrust.errors import MediaError
from avtrust.media import manipulate
from avtrust.media.ffmpeg import decode_audio, decode_frames, encode_clip
from avtrust.media.probe import probe

SR = 16000
N = 24000  # samples in one 1.5 s fixture clip
AUDIO = {"sample_rate": SR, "audio_codec": {"acodec": "aac", "b:a": "64k"}}

# ------------------------------------------------------------------------------ helpers


# Every path decoded here is written once and never changed (each output goes to a
# fresh path), so decoding results are cached for the session: ffmpeg start-up is
# most of these tests' run time.


@functools.cache
def packet_hashes(path: Path, stream: str) -> list[str]:
    """MD5 of every packet of the first ``stream`` ("v" or "a") stream, in file order."""
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            f"{stream}:0",
            "-show_entries",
            "packet=data_hash",
            "-show_data_hash",
            "md5",
            "-of",
            "csv=p=0",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return out


@functools.cache
def video_pts(path: Path) -> list[float]:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts_time",
            "-of",
            "csv=p=0",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return sorted(float(x) for x in out)


def ncorr(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised correlation at zero lag over the common length."""
    n = min(len(a), len(b))
    a, b = a[:n].astype(np.float64), b[:n].astype(np.float64)
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def locate(haystack: np.ndarray, needle: np.ndarray) -> tuple[float, float]:
    """(offset in seconds, normalised correlation there) of ``needle`` inside ``haystack``."""
    n = len(haystack) + len(needle)
    xc = np.fft.irfft(np.fft.rfft(haystack, n) * np.conj(np.fft.rfft(needle, n)), n)
    lag = int(np.argmax(xc[: len(haystack)]))
    part = haystack[lag : lag + len(needle)]
    return lag / SR, ncorr(part, needle)


def band_energy(x: np.ndarray, freq: float, half_width: float = 8.0) -> float:
    spectrum = np.abs(np.fft.rfft(np.hanning(len(x)) * x.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1.0 / SR)
    return float(spectrum[np.abs(freqs - freq) <= half_width].sum())


def peak_freq(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x.astype(np.float64)))
    return float(np.fft.rfftfreq(len(x), 1.0 / SR)[np.argmax(spectrum)])


def color_fraction(frames: np.ndarray, color, tol: int = 40) -> float:
    """Fraction of pixels (over all frames) within ``tol`` of ``color`` in every channel."""
    close = np.all(np.abs(frames.astype(int) - np.array(color)) <= tol, axis=-1)
    return float(close.mean())


@functools.cache
def audio(path: Path) -> np.ndarray:
    return decode_audio(path, SR)


@functools.cache
def frames_of(path: Path, width: int = 64, height: int = 48) -> np.ndarray:
    return decode_frames(path, width, height)


@functools.cache
def info(path: Path):
    return probe(path)


def _ops(clips, scene, drill_wav) -> dict:
    """Every manipulation under test, by name: ``name -> f(dst)``."""
    v, c, w = clips["violin"].path, clips["cello"].path, clips["piano_wide"].path
    video, stems, sound = scene.clip.path, list(scene.stem_paths), drill_wav[0]
    ops = {
        "strip_audio": lambda dst: manipulate.strip_audio(v, dst),
        "strip_video": lambda dst: manipulate.strip_video(v, dst),
        "combine": lambda dst: manipulate.combine(c, v, dst),  # video 2, audio 1
        "concat_copy": lambda dst: manipulate.concat([v, c], dst),
        "concat_reencode": lambda dst: manipulate.concat([v, w], dst),
        "swap_stitch": lambda dst: manipulate.swap_stitch(v, c, dst),
        "replace_none": lambda dst: manipulate.replace_soundtrack(
            v, sound, dst, snr_db=None, **AUDIO
        ),
    }
    for i in range(3):
        ops[f"mute_stem_{i}"] = lambda dst, i=i: manipulate.mute_stem(video, stems, i, dst, **AUDIO)
    for snr in (0, 10):
        ops[f"replace_snr{snr}"] = lambda dst, snr=snr: manipulate.replace_soundtrack(
            v, sound, dst, snr_db=float(snr), **AUDIO
        )
    return ops


@pytest.fixture(scope="module")
def ops(clips, scene, drill_wav) -> dict:
    return _ops(clips, scene, drill_wav)


@pytest.fixture(scope="module")
def made(ops, tmp_path_factory):
    """``made(name)``: the output of manipulation ``name``, produced once per module."""
    root = tmp_path_factory.mktemp("made")
    done: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in done:
            dst = root / name / "out.mp4"
            dst.parent.mkdir()
            ops[name](dst)
            done[name] = dst
        return done[name]

    return get


# ------------------------------------------------------------------------------ mute_stem


@pytest.mark.parametrize("muted", [0, 1, 2])
def test_mute_stem_removes_exactly_that_instrument(scene, made, muted):
    dst = made(f"mute_stem_{muted}")
    out = audio(dst)[:N]
    before = audio(scene.clip.path)[:N]
    stems = np.stack(scene.stems)
    others = stems[[i for i in range(3) if i != muted]].sum(axis=0)
    assert ncorr(out, others) > 0.98
    assert abs(ncorr(out, stems[muted])) < 0.1 < ncorr(before, stems[muted])

    # Least-squares decomposition of the output onto the stems: 1, 1 and 0.
    coef, *_ = np.linalg.lstsq(stems.T.astype(np.float64), out.astype(np.float64), rcond=None)
    for i, c in enumerate(coef):
        assert c == pytest.approx(0.0 if i == muted else 1.0, abs=0.05), coef

    # Spectral energy at each instrument's own fundamental.
    for i, stem in enumerate(scene.stems):
        f0 = peak_freq(stem)
        ratio = band_energy(out, f0) / band_energy(before, f0)
        if i == muted:
            assert ratio < 0.01, (scene.instruments[i], ratio)
        else:
            assert 0.8 < ratio < 1.25, (scene.instruments[i], ratio)


def test_mute_stem_copies_the_video_stream(scene, made):
    dst = made("mute_stem_1")
    assert packet_hashes(dst, "v") == packet_hashes(scene.clip.path, "v")
    np.testing.assert_array_equal(frames_of(dst), frames_of(scene.clip.path))
    out = info(dst)
    assert (out.has_audio, out.sample_rate, out.channels) == (True, SR, 1)
    assert out.duration == pytest.approx(1.5, abs=0.05)


def test_mute_stem_rejects_bad_index_and_sample_rate(scene, tmp_path):
    dst = tmp_path / "x.mp4"
    with pytest.raises(MediaError, match="out of range"):
        manipulate.mute_stem(scene.clip.path, list(scene.stem_paths), 3, dst, **AUDIO)
    wrong_rate = tmp_path / "stem_8k.wav"
    soundfile.write(wrong_rate, scene.stems[0][::2], 8000, subtype="FLOAT")
    with pytest.raises(MediaError, match=re.escape(str(wrong_rate))):
        manipulate.mute_stem(scene.clip.path, [wrong_rate, *scene.stem_paths[1:]], 1, dst, **AUDIO)
    assert not dst.exists()


@pytest.mark.parametrize("damage", ["missing", "garbage"])
def test_mute_stem_unreadable_stem_is_a_media_error(scene, tmp_path, damage):
    """The shard runner records AvtrustError/OSError/ValueError per sample; a raw
    soundfile error (a RuntimeError) would abort the whole shard instead."""
    stem = tmp_path / "broken.wav"
    if damage == "garbage":
        stem.write_bytes(b"RIFF\x00\x00not a wav at all" * 10)
    with pytest.raises(MediaError, match=re.escape(str(stem))):
        manipulate.mute_stem(
            scene.clip.path, [stem, *scene.stem_paths[1:]], 1, tmp_path / "x.mp4", **AUDIO
        )


def test_mix_stems_sums_kept_stems_unscaled():
    stems = [np.ones(4, np.float32), 2 * np.ones(6, np.float32), 4 * np.ones(5, np.float32)]
    np.testing.assert_array_equal(
        manipulate.mix_stems(stems, [True, False, True]), [5, 5, 5, 5, 4, 0]
    )


# ------------------------------------------------------------------------------ strip


def test_strip_audio_keeps_the_video_untouched(clips, made):
    src, dst = clips["violin"].path, made("strip_audio")
    out = info(dst)
    assert (out.has_audio, out.has_video) == (False, True)
    assert out.sample_rate is None and out.audio_codec is None
    assert (out.width, out.height, out.fps) == (64, 48, 8.0)
    assert packet_hashes(dst, "v") == packet_hashes(src, "v")
    np.testing.assert_array_equal(frames_of(dst), frames_of(src))


def test_strip_video_keeps_the_audio_untouched(clips, made):
    clip, dst = clips["violin"], made("strip_video")
    out = info(dst)
    assert (out.has_audio, out.has_video) == (True, False)
    assert out.fps is None and out.width is None and out.video_codec is None
    assert (out.sample_rate, out.channels) == (SR, 1)
    assert packet_hashes(dst, "a") == packet_hashes(clip.path, "a")
    np.testing.assert_array_equal(audio(dst), audio(clip.path))
    assert ncorr(audio(dst), clip.audio) > 0.99


# ------------------------------------------------------------------------------ combine


def test_combine_puts_audio_of_one_clip_on_video_of_another(clips, made):
    violin, cello, dst = clips["violin"], clips["cello"], made("combine")
    out = audio(dst)
    assert len(out) >= N
    np.testing.assert_array_equal(out, audio(violin.path)[: len(out)])
    assert ncorr(out, violin.audio) > 0.99
    assert abs(ncorr(out, cello.audio)) < 0.1
    assert packet_hashes(dst, "v") == packet_hashes(cello.path, "v")
    np.testing.assert_array_equal(frames_of(dst), frames_of(cello.path))
    assert info(dst).duration == pytest.approx(1.5, abs=0.05)


# ------------------------------------------------------------------------------ concat


def assert_frames_in_order(out: np.ndarray, first: np.ndarray, second: np.ndarray) -> None:
    """``out`` shows ``first`` then ``second`` exactly (stream copy), allowing at most
    one leading duplicate of the first frame where the copied streams start late."""
    np.testing.assert_array_equal(out[-len(second) :], second)
    np.testing.assert_array_equal(out[-len(second) - len(first) : -len(second)], first)
    lead = out[: len(out) - len(first) - len(second)]
    assert len(lead) <= 1
    assert all(np.array_equal(f, first[0]) for f in lead)


def test_concat_of_compatible_clips_plays_them_in_order(clips, made):
    violin, cello, dst = clips["violin"], clips["cello"], made("concat_copy")
    out = info(dst)
    assert (out.has_audio, out.has_video) == (True, True)
    assert (out.width, out.height, out.fps) == (64, 48, 8.0)
    assert out.duration == pytest.approx(3.0, abs=0.1)

    sound = audio(dst)
    at1, c1 = locate(sound, violin.audio)
    at2, c2 = locate(sound, cello.audio)
    assert at1 == pytest.approx(0.0, abs=0.1) and c1 > 0.95
    assert at2 == pytest.approx(1.5, abs=0.2) and c2 > 0.95
    assert_frames_in_order(frames_of(dst), frames_of(violin.path), frames_of(cello.path))


AUDIO_FRAME_S = 1024 / SR  # one AAC frame: the bound on a stitched clip's A/V offset


def cue_clip(path: Path, cue_s: float) -> Path:
    """A 1.5 s clip, dark and silent but for one white frame and a 5 ms 1 kHz click,
    both at ``cue_s`` (a multiple of the frame period): an A/V sync cue."""
    fps, n_frames = 8, 12
    frames = np.zeros((n_frames, 48, 64, 3), np.uint8)
    frames[round(cue_s * fps)] = 255
    sound = np.zeros(N, np.float32)
    at = round(cue_s * SR)
    sound[at : at + 80] = 0.9 * np.sin(2 * np.pi * 1000 * np.arange(80) / SR)
    encode_clip(
        path, frames, sound, fps=fps, sample_rate=SR,
        video_codec={"vcodec": "libx264", "preset": "veryfast", "crf": 23, "threads": 1},
        audio_codec=AUDIO["audio_codec"],
    )  # fmt: skip
    return path


def cue_offsets(path: Path) -> list[float]:
    """For each cue in ``path``, in order: when its click sounds minus when its flash is
    shown (decoded samples vs the flash frame's presentation time), in seconds."""
    pts, frames = video_pts(path), frames_of(path)
    # The decoder repeats the first frame over a late video start: frame i is at pts[i]
    # counted from the end.
    assert 0 <= len(frames) - len(pts) <= 1
    frames = frames[len(frames) - len(pts) :]
    flashes = [pts[i] for i in range(len(frames)) if frames[i].mean() > 128]
    sound = np.abs(audio(path))
    clicks, i = [], 0
    while i < len(sound):
        if sound[i] > 0.3:
            clicks.append(i / SR)
            i += SR // 4  # past this click
        else:
            i += 1
    assert len(flashes) == len(clicks) == 2, (flashes, clicks)
    return [c - f for c, f in zip(clicks, flashes, strict=True)]


@pytest.mark.parametrize("op", ["concat", "concat_planned", "swap_stitch"])
def test_stitched_second_clip_is_in_sync(op, tmp_path):
    """COT-Stitch and COT-Swap: the second clip's sound plays under its own pictures.
    With the audio stream-copied too, its AAC priming (and the first clip's padding)
    put the second click ~0.1 s after where it belongs; the bound is one AAC frame.
    The clips' cues sit at 0.5 s and 0.75 s, so a stitch has each click on its flash,
    and a swap (video 1 + audio 2, then video 2 + audio 1) has the clicks 0.25 s after
    and before the flashes."""
    first, second = cue_clip(tmp_path / "a.mp4", 0.5), cue_clip(tmp_path / "b.mp4", 0.75)
    dst = tmp_path / "out.mp4"
    if op == "concat":
        manipulate.concat([first, second], dst, copy=True)
        expected = [0.0, 0.0]
    elif op == "concat_planned":  # the clips' durations from the manifest: no probing
        durations = [info(first).duration, info(second).duration]
        manipulate.concat([first, second], dst, copy=True, durations=durations)
        expected = [0.0, 0.0]
    else:
        manipulate.swap_stitch(first, second, dst, copy=True)
        expected = [0.25, -0.25]
    assert info(dst).audio_codec == "aac" and info(dst).duration == pytest.approx(3.0, abs=0.07)
    offsets = cue_offsets(dst)
    assert offsets == pytest.approx(expected, abs=AUDIO_FRAME_S), offsets


def test_concat_reencodes_clips_of_different_size_at_the_first_size(clips, made):
    violin, piano = clips["violin"], clips["piano_wide"]
    assert info(piano.path).width == 80
    dst = made("concat_reencode")
    out = info(dst)
    assert (out.width, out.height, out.fps) == (64, 48, 8.0)
    assert (out.video_codec, out.audio_codec, out.sample_rate) == ("h264", "aac", SR)
    assert out.duration == pytest.approx(3.0, abs=0.1)

    sound = audio(dst)
    at1, c1 = locate(sound, violin.audio)
    at2, c2 = locate(sound, piano.audio)
    assert at1 == pytest.approx(0.0, abs=0.05) and c1 > 0.9
    assert at2 == pytest.approx(1.5, abs=0.1) and c2 > 0.9

    frames = frames_of(dst)
    first, second = frames[: len(frames) // 2], frames[len(frames) // 2 :]
    red, white = (214, 48, 49), (240, 240, 240)  # violin, piano
    assert color_fraction(first, red) > 0.05 and color_fraction(first, white) < 0.005
    assert color_fraction(second, white) > 0.05 and color_fraction(second, red) < 0.005


def test_concat_refuses_bad_inputs(clips, tmp_path):
    dst = tmp_path / "x.mp4"
    with pytest.raises(MediaError, match="at least two"):
        manipulate.concat([clips["violin"].path], dst)
    with pytest.raises(MediaError, match="audio and video"):
        manipulate.concat([clips["violin"].path, clips["video_only"].path], dst)
    with pytest.raises(MediaError, match="audio and video"):
        manipulate.concat([clips["audio_only"].path, clips["violin"].path], dst)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------ swap_stitch


def test_swap_stitch_crosses_audio_and_video(clips, made):
    violin, cello, dst = clips["violin"], clips["cello"], made("swap_stitch")
    out = info(dst)
    assert (out.width, out.height, out.has_audio) == (64, 48, True)
    assert out.duration == pytest.approx(3.0, abs=0.1)

    sound = audio(dst)
    first, second = sound[: len(sound) // 2], sound[len(sound) // 2 :]
    # The first half sounds like the cello (audio 2), the second like the violin (audio 1).
    assert peak_freq(first) == pytest.approx(peak_freq(cello.audio), rel=0.02)
    assert peak_freq(second) == pytest.approx(peak_freq(violin.audio), rel=0.02)
    at_cello, c_cello = locate(sound, cello.audio)
    at_violin, c_violin = locate(sound, violin.audio)
    assert at_cello == pytest.approx(0.0, abs=0.1) and c_cello > 0.95
    assert at_violin == pytest.approx(1.5, abs=0.2) and c_violin > 0.95

    # The first half shows the violin (video 1), the second the cello (video 2).
    assert_frames_in_order(frames_of(dst), frames_of(violin.path), frames_of(cello.path))


def test_swap_stitch_leaves_no_intermediate_files(made):
    assert [p.name for p in made("swap_stitch").parent.iterdir()] == ["out.mp4"]


# ------------------------------------------------------------------------------ soundtrack


def test_replace_soundtrack_outright(clips, drill_wav, made):
    clip, sound, dst = clips["violin"], drill_wav[1], made("replace_none")
    out = audio(dst)[:N]
    expected = np.tile(sound, 2)[:N]  # the 1.0 s sound looped to the 1.5 s clip
    assert len(out) == N
    assert ncorr(out, expected) > 0.95
    assert abs(ncorr(out, clip.audio)) < 0.1
    f0 = peak_freq(clip.audio)
    assert band_energy(out, f0) < 0.01 * band_energy(audio(clip.path)[:N], f0)
    assert packet_hashes(dst, "v") == packet_hashes(clip.path, "v")
    assert info(dst).duration == pytest.approx(1.5, abs=0.05)


@pytest.mark.parametrize("snr_db", [0, 10])
def test_replace_soundtrack_mixes_at_the_requested_snr(clips, drill_wav, made, snr_db):
    clip, sound, dst = clips["violin"], drill_wav[1], made(f"replace_snr{snr_db}")
    out = audio(dst)[:N].astype(np.float64)
    original = audio(clip.path)[:N].astype(np.float64)
    noise = np.tile(sound, 2)[:N].astype(np.float64)
    (a, b), *_ = np.linalg.lstsq(np.stack([original, noise]).T, out, rcond=None)
    residual = out - a * original - b * noise
    assert np.mean(residual**2) < 0.01 * np.mean(out**2)
    measured = 10 * np.log10(np.mean((a * original) ** 2) / np.mean((b * noise) ** 2))
    assert measured == pytest.approx(snr_db, abs=1.0)
    assert packet_hashes(dst, "v") == packet_hashes(clip.path, "v")


@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 3.0, 20.0])
def test_mix_at_snr_is_exact(snr_db):
    rng = np.random.default_rng(0)
    signal = (0.1 * rng.standard_normal(8000)).astype(np.float32)
    noise = (0.05 * rng.standard_normal(8000)).astype(np.float32)
    mix = manipulate.mix_at_snr(signal, noise, snr_db)
    assert mix.dtype == np.float32 and mix.shape == signal.shape
    added = mix.astype(np.float64) - signal
    # What was added is a scaled copy of the noise ...
    gain = np.dot(added, noise) / np.dot(noise, noise)
    np.testing.assert_allclose(added, gain * noise, atol=1e-6)
    # ... at exactly the requested SNR.
    measured = 10 * np.log10(np.mean(signal.astype(np.float64) ** 2) / np.mean(added**2))
    assert measured == pytest.approx(snr_db, abs=1e-3)


def test_mix_at_snr_scales_down_a_clipping_mix_without_changing_the_snr():
    rng = np.random.default_rng(1)
    signal = (0.4 * rng.standard_normal(8000)).astype(np.float32)
    noise = rng.standard_normal(8000).astype(np.float32)
    mix = manipulate.mix_at_snr(signal, noise, -6.0).astype(np.float64)
    assert np.max(np.abs(mix)) == pytest.approx(0.9, abs=1e-6)
    basis = np.stack([signal, noise]).T.astype(np.float64)
    (a, b), *_ = np.linalg.lstsq(basis, mix, rcond=None)
    measured = 10 * np.log10(np.mean((a * basis[:, 0]) ** 2) / np.mean((b * basis[:, 1]) ** 2))
    assert measured == pytest.approx(-6.0, abs=1e-3)


def test_mix_at_snr_edge_cases():
    noise = np.full(10, 0.1, np.float32)
    with pytest.raises(MediaError, match="silent"):
        manipulate.mix_at_snr(noise, np.zeros(10, np.float32), 0.0)
    np.testing.assert_allclose(manipulate.mix_at_snr(np.zeros(10, np.float32), noise, 0.0), noise)


def test_fit_length_loops_and_cuts():
    x = np.arange(3, dtype=np.float32)
    np.testing.assert_array_equal(manipulate.fit_length(x, 7), [0, 1, 2, 0, 1, 2, 0])
    np.testing.assert_array_equal(manipulate.fit_length(x, 2), [0, 1])
    with pytest.raises(MediaError):
        manipulate.fit_length(np.zeros(0, np.float32), 5)


# ------------------------------------------------------------------------------ atomicity


@pytest.fixture(scope="module")
def corrupt(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corrupt") / "corrupt.mp4"
    path.write_bytes(bytes(np.random.default_rng(5).integers(0, 256, 4096, dtype=np.uint8)))
    return path


FAILING = {
    "strip_audio": lambda c, s, bad, dst: manipulate.strip_audio(bad, dst),
    "strip_video": lambda c, s, bad, dst: manipulate.strip_video(bad, dst),
    "combine_bad_video": lambda c, s, bad, dst: manipulate.combine(bad, c["violin"].path, dst),
    "combine_bad_audio": lambda c, s, bad, dst: manipulate.combine(c["violin"].path, bad, dst),
    "concat": lambda c, s, bad, dst: manipulate.concat([c["violin"].path, bad], dst),
    "swap_stitch": lambda c, s, bad, dst: manipulate.swap_stitch(c["violin"].path, bad, dst),
    "mute_stem": lambda c, s, bad, dst: manipulate.mute_stem(
        bad, list(s.stem_paths), 0, dst, **AUDIO
    ),
    "replace_bad_video": lambda c, s, bad, dst: manipulate.replace_soundtrack(
        bad, s.stem_paths[0], dst, snr_db=None, **AUDIO
    ),
    "replace_bad_sound": lambda c, s, bad, dst: manipulate.replace_soundtrack(
        c["violin"].path, bad, dst, snr_db=0.0, **AUDIO
    ),
}


@pytest.mark.parametrize("op", sorted(FAILING))
def test_failure_names_the_file_and_leaves_nothing_behind(clips, scene, corrupt, tmp_path, op):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    dst = out_dir / "sample.mp4"
    with pytest.raises(MediaError, match=re.escape(str(corrupt))):
        FAILING[op](clips, scene, corrupt, dst)
    assert list(out_dir.iterdir()) == []


def test_failure_keeps_an_existing_output(clips, corrupt, tmp_path):
    dst = tmp_path / "sample.mp4"
    manipulate.strip_audio(clips["violin"].path, dst)
    before = dst.read_bytes()
    with pytest.raises(MediaError):
        manipulate.strip_audio(corrupt, dst)
    assert dst.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["sample.mp4"]


# ------------------------------------------------------------------------------ determinism


@pytest.mark.parametrize(
    "name",
    [
        "strip_audio",
        "strip_video",
        "combine",
        "concat_copy",
        "concat_reencode",
        "swap_stitch",
        "mute_stem_2",
        "replace_snr10",
    ],
)
def test_same_inputs_give_byte_identical_outputs(ops, made, tmp_path, name):
    # Another directory and name, so nothing path-dependent can leak into the bytes.
    again = tmp_path / "again.mp4"
    ops[name](again)
    first = made(name)
    assert again.read_bytes() == first.read_bytes()
    assert first.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("name", ["strip_audio", "swap_stitch", "mute_stem_0", "replace_none"])
def test_missing_destination_directories_are_created(ops, tmp_path, name):
    dst = tmp_path / "results" / "media" / "task" / "sample.mp4"
    ops[name](dst)
    assert [p.name for p in dst.parent.iterdir()] == ["sample.mp4"]
    assert probe(dst).has_video
