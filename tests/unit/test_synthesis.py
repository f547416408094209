"""The synthetic sources: deterministic, normalised, and telling apart by ear and eye."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from avtrust.media.synthesis import PEAK, catalog, names_of_kind, render_frames, synthesize_audio

SR = 16000


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def spectrum(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mag = np.abs(np.fft.rfft(np.hanning(len(x)) * x.astype(np.float64)))
    return np.fft.rfftfreq(len(x), 1.0 / SR), mag


def peak_freq(x: np.ndarray) -> float:
    freqs, mag = spectrum(x)
    return float(freqs[np.argmax(mag)])


def centroid(x: np.ndarray) -> float:
    freqs, mag = spectrum(x)
    power = mag**2
    return float((freqs * power).sum() / power.sum())


@pytest.mark.parametrize("name", sorted(catalog()))
def test_every_source_synthesises_deterministically_at_peak_level(name):
    source = catalog()[name]
    a = synthesize_audio(source, 0.75, SR, rng(3))
    b = synthesize_audio(source, 0.75, SR, rng(3))
    c = synthesize_audio(source, 0.75, SR, rng(4))
    assert a.dtype == np.float32 and a.shape == (12000,)
    assert np.all(np.isfinite(a))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)  # another seed is another "recording"
    assert float(np.max(np.abs(a))) == pytest.approx(PEAK, abs=1e-6)
    assert float(np.sqrt(np.mean(a.astype(np.float64) ** 2))) > 0.02  # not near-silent


def test_catalogue_has_the_benchmarks_sources():
    assert set(names_of_kind("environment")) == {"wind", "bird", "rain", "drill", "thunder"}
    assert {"violin", "cello", "flute", "piano", "guitar"} <= set(names_of_kind("instrument"))
    for source in catalog().values():
        if source.kind != "environment":
            assert source.shape and source.color, source.name
    colors = [s.color for s in catalog().values() if s.kind == "instrument"]
    assert len(set(colors)) == len(colors)


@pytest.mark.parametrize("name", names_of_kind("instrument"))
def test_instruments_sound_at_their_own_pitch_for_the_whole_clip(name):
    """The strongest partial is the recipe's f0 (±1 % detune, ±0.6 % vibrato) in every
    quarter of a 4 s note, not only at the start."""
    source = catalog()[name]
    f0 = source.sound["f0"]
    wave = synthesize_audio(source, 4.0, SR, rng(7))
    for quarter in np.array_split(wave, 4):
        assert peak_freq(quarter) == pytest.approx(f0, rel=0.025), name


def test_instruments_are_distinguishable_by_pitch():
    pitches = {
        name: peak_freq(synthesize_audio(catalog()[name], 1.0, SR, rng(1)))
        for name in names_of_kind("instrument")
    }
    for (a, fa), (b, fb) in itertools.combinations(pitches.items(), 2):
        assert abs(fa - fb) / min(fa, fb) > 0.05, (a, fa, b, fb)


def periodicity(x: np.ndarray) -> float:
    """Highest normalised autocorrelation at lags of 2–20 ms (pitches of 50–500 Hz)."""
    x = x.astype(np.float64) - x.mean()
    n = len(x)
    ac = np.fft.irfft(np.abs(np.fft.rfft(x, 2 * n)) ** 2)[:n]
    return float((ac / ac[0])[int(0.002 * SR) : int(0.02 * SR)].max())


def gap_fraction(x: np.ndarray) -> float:
    """Fraction of 20 ms frames more than 20 dB below the loudest frame."""
    frames = x[: len(x) // 320 * 320].astype(np.float64).reshape(-1, 320)
    rms = np.sqrt((frames**2).mean(axis=1))
    return float((rms < 0.1 * rms.max()).mean())


def test_environmental_sounds_are_distinguishable():
    """Each replacement sound of AV-ConfuseBench m2 differs from every other in
    spectral centroid, periodicity or pauses, so the sound type is recoverable."""
    feats = {}
    for name in names_of_kind("environment"):
        x = synthesize_audio(catalog()[name], 1.5, SR, rng(2))
        feats[name] = (centroid(x), periodicity(x), gap_fraction(x))
    assert feats["thunder"][0] < 300 < feats["wind"][0] < 900
    assert feats["bird"][0] > 2500 and feats["rain"][0] > 1500
    assert feats["drill"][1] > 0.9 > 0.5 > max(f[1] for n, f in feats.items() if n != "drill")
    assert feats["bird"][2] > 0.4 > 0.05 > feats["rain"][2]
    for (a, fa), (b, fb) in itertools.combinations(feats.items(), 2):
        differ = (
            max(fa[0], fb[0]) / min(fa[0], fb[0]) > 1.2
            or abs(fa[1] - fb[1]) > 0.5
            or abs(fa[2] - fb[2]) > 0.3
        )
        assert differ, (a, fa, b, fb)


def test_render_frames_is_deterministic_and_moves():
    sources = [catalog()[n] for n in ("violin", "cello")]
    a = render_frames(sources, 2.0, 8, 64, 48, rng(5))
    b = render_frames(sources, 2.0, 8, 64, 48, rng(5))
    assert a.shape == (16, 48, 64, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[0], a[2])  # the shapes bob


@pytest.mark.parametrize("order", [("violin", "cello", "flute"), ("flute", "violin", "cello")])
def test_render_frames_draws_source_i_in_slot_i(order):
    width, height = 96, 48
    sources = [catalog()[n] for n in order]
    frames = render_frames(sources, 1.0, 8, width, height, rng(6))
    third = width // 3
    for i, source in enumerate(sources):
        for frame in frames:
            ys, xs = np.nonzero(np.all(frame == np.array(source.color), axis=-1))
            assert len(xs) > 20, (source.name, "not drawn")
            assert i * third <= xs.min() and xs.max() < (i + 1) * third, (source.name, i)


def test_render_frames_without_sources_is_background():
    frames = render_frames([], 0.5, 8, 32, 24, rng(0))
    assert frames.shape == (4, 24, 32, 3)
    assert len(np.unique(frames.reshape(-1, 3), axis=0)) == 1
