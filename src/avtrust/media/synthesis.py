"""Signal synthesis for the synthetic corpus: sounds from recipes and frames from shapes.

Everything here is pure NumPy and driven by an explicit ``numpy.random.Generator``,
so the same seed always gives the same samples and pixels. The recipes live in
``avtrust/data/sources.yaml``; each ``kind`` below is one family of sounds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import numpy as np

from avtrust import data_files

PEAK = 0.5  # every synthesised source is scaled to this peak, mixes stay below 1.0
VIBRATO_DEPTH = 0.006  # ±0.6 % frequency swing (about ±10 cents)


@dataclass(frozen=True)
class Source:
    """One sound source of the catalogue: how it looks and how it sounds."""

    name: str
    kind: str  # "instrument" | "environment" | "event"
    sound: dict = field(hash=False)
    shape: str | None = None
    color: tuple[int, int, int] | None = None
    label: str | None = None  # AudioSet display name (events, environment)
    mid: str | None = None  # AudioSet machine id


@cache
def catalog() -> dict[str, Source]:
    """All sources of ``sources.yaml`` by name."""
    raw = data_files.load("sources")
    kinds = {"instruments": "instrument", "environment": "environment", "events": "event"}
    out: dict[str, Source] = {}
    for group, kind in kinds.items():
        for name, spec in raw[group].items():
            color = spec.get("color")
            out[name] = Source(
                name=name,
                kind=kind,
                sound=dict(spec["sound"]),
                shape=spec.get("shape"),
                color=tuple(color) if color else None,
                label=spec.get("label", name),
                mid=spec.get("mid"),
            )
    return out


def names_of_kind(kind: str) -> list[str]:
    return [s.name for s in catalog().values() if s.kind == kind]


# --------------------------------------------------------------------------- audio


def _bandpass_noise(n: int, sr: int, lo: float, hi: float, rng: np.random.Generator):
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / sr)
    spectrum[(freqs < lo) | (freqs > hi)] = 0.0
    return np.fft.irfft(spectrum, n)


def _harmonics(t, f0, rolloff, odd_only=False, inharmonic=1.0, n_partials=8):
    out = np.zeros_like(t)
    for k in range(1, n_partials + 1):
        if odd_only and k % 2 == 0:
            continue
        freq = f0 * (k if inharmonic == 1.0 else k**inharmonic)
        out += (rolloff ** (k - 1)) * np.sin(2 * np.pi * freq * t)
    return out


def _note_envelope(t, note_hz, decay):
    phase = np.mod(t * note_hz, 1.0) / note_hz
    return np.exp(-decay * phase)


def _gate(t, rate_hz, length_s):
    return (np.mod(t, 1.0 / rate_hz) < length_s).astype(np.float64)


def _vibrato_time(t, rate_hz, depth=VIBRATO_DEPTH):
    """Warped time whose rate is ``1 + depth·sin(2π·rate_hz·t)``.

    A partial ``sin(2π f τ)`` then has instantaneous frequency ``f·(1 + depth·sin(…))``
    at every moment. (Multiplying ``t`` by that factor instead would make the
    frequency swing grow with ``t``: ±30 % of f0 after 1.5 s at 5.5 Hz.)
    """
    if rate_hz == 0.0:
        return t
    w = 2 * np.pi * rate_hz
    return t + depth * (1.0 - np.cos(w * t)) / w


def _smooth(x, sr, ms=5.0):
    width = max(1, int(sr * ms / 1000))
    return np.convolve(x, np.ones(width) / width, mode="same")


def synthesize_audio(
    source: Source, duration_s: float, sample_rate: int, rng: np.random.Generator
) -> np.ndarray:
    """Render ``duration_s`` seconds of ``source`` as mono float32 with peak ``PEAK``.

    Random parameters (start phase, slight detune, noise) come from ``rng`` so two
    clips of the same source differ a little, as two recordings would.
    """
    n = int(round(duration_s * sample_rate))
    t = np.arange(n) / sample_rate
    p = source.sound
    kind = p["kind"]
    detune = 1.0 + rng.uniform(-0.01, 0.01)
    offset = rng.uniform(0, 1.0)
    if kind == "harmonic":
        f0 = p["f0"] * detune
        wave = _harmonics(
            _vibrato_time(t, p.get("vibrato_hz", 0.0)), f0, p["rolloff"], p.get("odd_only", False)
        )
        wave *= 1.0 - np.exp(-t / p["attack"])
        if p.get("breath"):
            wave += p["breath"] * _bandpass_noise(n, sample_rate, 2000, 6000, rng) * 4
    elif kind == "plucked":
        f0 = p["f0"] * detune
        wave = _harmonics(t, f0, p["rolloff"], inharmonic=p.get("inharmonic", 1.0))
        wave *= _note_envelope(t + offset / p["note_hz"], p["note_hz"], p["decay"])
    elif kind == "noise":
        lo, hi = p["band"]
        wave = _bandpass_noise(n, sample_rate, lo, hi, rng)
        wave *= 1.0 - p["am_depth"] * (0.5 + 0.5 * np.sin(2 * np.pi * p["am_hz"] * t + offset))
    elif kind == "chirp":
        gate = _gate(t + offset, p["rate_hz"], p["length_s"])
        local = np.mod(t + offset, 1.0 / p["rate_hz"])
        freq = p["f_lo"] + (p["f_hi"] - p["f_lo"]) * np.clip(local / p["length_s"], 0, 1)
        wave = np.sin(2 * np.pi * np.cumsum(freq) / sample_rate) * _smooth(gate, sample_rate)
    elif kind == "crackle":
        lo, hi = p["band"]
        drops = (rng.random(n) < p["density_hz"] / sample_rate).astype(np.float64)
        drops *= rng.uniform(0.3, 1.0, n)
        kernel = np.exp(-np.arange(int(0.004 * sample_rate)) / (0.0008 * sample_rate))
        wave = np.convolve(drops, kernel, mode="same")
        wave = wave + 0.15 * _bandpass_noise(n, sample_rate, lo, hi, rng) * 8
        spectrum = np.fft.rfft(wave)
        freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
        spectrum[freqs < lo] = 0.0
        wave = np.fft.irfft(spectrum, n)
    elif kind == "buzz":
        f0 = p["f0"] * detune
        saw = 2.0 * np.mod(t * f0 + offset, 1.0) - 1.0
        wave = saw * (1.0 - p["am_depth"] * (0.5 + 0.5 * np.sin(2 * np.pi * p["am_hz"] * t)))
    elif kind == "rumble":
        lo, hi = p["band"]
        wave = _bandpass_noise(n, sample_rate, lo, hi, rng)
        burst_phase = np.mod(t * p["bursts_hz"] + offset, 1.0)
        wave *= 0.2 + np.exp(-4.0 * burst_phase)
    elif kind == "pulses":
        f0 = p["f0"] * detune
        gate = _smooth(_gate(t + offset, p["rate_hz"], p["length_s"]), sample_rate)
        wave = _harmonics(t, f0, p["rolloff"]) * gate
    elif kind == "sweep":
        lfo = 0.5 + 0.5 * np.sin(2 * np.pi * p["rate_hz"] * t + 2 * np.pi * offset)
        freq = p["f_lo"] + (p["f_hi"] - p["f_lo"]) * lfo
        phase = 2 * np.pi * np.cumsum(freq) / sample_rate
        wave = np.sin(phase) + 0.4 * np.sin(2 * phase)
    elif kind == "clicks":
        lo, hi = p["band"]
        clicks = np.zeros(n)
        period = int(sample_rate / p["rate_hz"])
        clicks[int(offset * period) :: period] = 1.0
        kernel = _bandpass_noise(int(0.01 * sample_rate), sample_rate, lo, hi, rng)
        wave = np.convolve(clicks, kernel, mode="same")
    elif kind == "formant":
        f0 = p["f0"] * detune
        pulse = _harmonics(t, f0, 0.85, n_partials=20)
        syll = 0.5 + 0.5 * np.sin(2 * np.pi * p["syllable_hz"] * t + 2 * np.pi * offset)
        formant = np.sin(2 * np.pi * (500 + 700 * syll) * t)
        wave = pulse * (0.6 + 0.4 * formant) * syll
    else:
        raise ValueError(f"unknown sound kind {kind!r} for source {source.name!r}")
    return normalize(wave)


def normalize(wave: np.ndarray, peak: float = PEAK) -> np.ndarray:
    top = float(np.max(np.abs(wave))) if wave.size else 0.0
    if top == 0.0:
        return wave.astype(np.float32)
    return (wave * (peak / top)).astype(np.float32)


# --------------------------------------------------------------------------- video


def _shape_mask(shape: str, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    y = (yy + 0.5) / h * 2 - 1  # [-1, 1]
    x = (xx + 0.5) / w * 2 - 1
    if shape == "rectangle":
        return (np.abs(x) < 0.55) & (np.abs(y) < 0.85)
    if shape == "square":
        return (np.abs(x) < 0.7) & (np.abs(y) < 0.7)
    if shape == "ellipse":
        return (x / 0.7) ** 2 + (y / 0.95) ** 2 < 1
    if shape == "triangle":
        return (y > -0.8) & (y < 0.8) & (np.abs(x) < (y + 0.8) / 1.6 * 0.9)
    if shape == "diamond":
        return np.abs(x) + np.abs(y) < 0.9
    if shape == "cross":
        return ((np.abs(x) < 0.25) & (np.abs(y) < 0.9)) | ((np.abs(y) < 0.25) & (np.abs(x) < 0.9))
    if shape == "bar":
        return (np.abs(x) < 0.2) & (np.abs(y) < 0.95)
    if shape == "ring":
        r2 = x**2 + y**2
        return (r2 < 0.85) & (r2 > 0.3)
    raise ValueError(f"unknown shape {shape!r}")


def render_frames(
    sources: list[Source],
    duration_s: float,
    fps: int,
    width: int,
    height: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Frames (T, H, W, 3) uint8 showing each source in its own horizontal slot.

    Source i of k is drawn in slot i (left to right), so "left"/"right" questions have
    an exact answer. Each shape bobs vertically with its own phase, which gives the
    encoder real motion to code and the frames a per-clip signature.
    """
    n_frames = max(1, int(round(duration_s * fps)))
    background = np.array(rng.integers(16, 48, size=3), dtype=np.uint8)
    frames = np.empty((n_frames, height, width, 3), dtype=np.uint8)
    frames[:] = background
    k = len(sources)
    if k == 0:
        return frames
    slot_w = width // k
    size = int(min(slot_w, height) * 0.6)
    masks = [_shape_mask(s.shape, size, size) for s in sources]
    phases = rng.uniform(0, 2 * np.pi, size=k)
    amp = max(1, (height - size) // 4)
    for f in range(n_frames):
        for i, (src, mask) in enumerate(zip(sources, masks, strict=True)):
            cx = slot_w * i + slot_w // 2
            cy = height // 2 + int(round(amp * np.sin(2 * np.pi * 0.5 * f / fps + phases[i])))
            y0 = min(max(cy - size // 2, 0), height - size)
            x0 = min(max(cx - size // 2, 0), width - size)
            region = frames[f, y0 : y0 + size, x0 : x0 + size]
            region[mask] = src.color
    return frames
