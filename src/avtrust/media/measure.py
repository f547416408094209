"""Measurements of a manipulated soundtrack against the sounds that went into it.

Three measures, each a deterministic function of decoded samples (numpy and librosa
only, no random state), so the values written into the benchmark table are the same on
every rebuild:

- :func:`component_gains`: least-squares gains of known source signals (stems, the
  original soundtrack, the new sound) in the output, after aligning the output with
  their sum; a source left out comes back near 0, one mixed in unscaled near 1.
- :func:`level_db` / :func:`snr_db`: those gains as levels and as a signal-to-noise ratio.
- :func:`soundtrack_similarity`: Pearson correlation of two sounds' log-mel
  spectrograms at their best alignment, which survives re-encoding and small offsets
  (up to :data:`MAX_LAG`), for checking whose
  soundtrack a clip carries.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from avtrust.errors import MediaError
from avtrust.media.ffmpeg import run

# Every measurement runs at this rate: 16 kHz keeps all the energy of speech, the
# instruments' fundamentals and most of their partials, and is what the models hear.
ANALYSIS_SR = 16000
# Encoders may shift a soundtrack (AAC priming, container edit lists); the output is
# aligned to its sources within this many samples (one AAC frame of 1024, twice).
MAX_LAG = 2048
# Levels and ratios are reported down to this floor (a gain of exactly 0 has no dB).
FLOOR_DB = -120.0
# Log-mel analysis: 64 ms windows, 16 ms hop, 64 bands (librosa's mel filterbank).
N_FFT = 1024
HOP = 256
N_MELS = 64
# Spectrogram values more than this far below the loudest are raised to it, so that
# digital silence and near-silence do not dominate the correlation.
TOP_DB = 80.0


def load_audio(path: str | os.PathLike, sr: int = ANALYSIS_SR) -> np.ndarray:
    """A sound file (WAV, FLAC, ...) as mono float32 at ``sr``, resampled by librosa."""
    import librosa  # here, not at the top: Snakemake imports this package to build its DAG

    try:
        audio, _ = librosa.load(str(path), sr=sr, mono=True, res_type="soxr_hq")
    except Exception as exc:  # librosa raises soundfile's, audioread's or its own errors
        raise MediaError(f"{path}: unreadable sound ({exc})") from exc
    return np.asarray(audio, dtype=np.float32)


def decode_soundtracks(paths: list[str | os.PathLike], sr: int = ANALYSIS_SR) -> list[np.ndarray]:
    """The first audio stream of each of ``paths``, mono float32 at ``sr``, decoded by one
    ffmpeg process: a check reads up to three files per sample, and starting ffmpeg
    costs more than decoding a clip."""
    with tempfile.TemporaryDirectory(prefix="avtrust-check.") as tmp:
        raws = [Path(tmp) / f"{i}.f32" for i in range(len(paths))]
        args = ["ffmpeg"]
        for path in paths:
            args += ["-i", str(path)]
        for i, raw in enumerate(raws):
            args += ["-map", f"{i}:a:0", "-f", "f32le", "-ac", "1", "-ar", str(sr), str(raw)]
        run(_Compiled(args), what=f"decoding audio of {', '.join(map(str, paths))}")
        return [np.fromfile(raw, dtype="<f4") for raw in raws]


class _Compiled:
    """An argument list in the shape :func:`avtrust.media.ffmpeg.run` takes."""

    def __init__(self, args: list[str]):
        self.args = args

    def global_args(self, *extra: str) -> _Compiled:
        return _Compiled([self.args[0], *extra, *self.args[1:]])

    def compile(self) -> list[str]:
        return list(self.args)


def fit(audio: np.ndarray, n: int) -> np.ndarray:
    """``audio`` cut or zero-padded to ``n`` samples."""
    out = np.zeros(n, dtype=np.float64)
    m = min(n, len(audio))
    out[:m] = audio[:m]
    return out


def best_lag(output: np.ndarray, reference: np.ndarray, max_lag: int = MAX_LAG) -> int:
    """The shift ``k`` (|k| <= ``max_lag``) maximising sum(output[t + k]·reference[t]).

    The largest positive peak, not the largest in magnitude: a tonal sound correlates
    negatively with itself half a period away, which would otherwise win on noise."""
    n = len(output) + len(reference)
    size = 1 << (n - 1).bit_length()
    spectrum = np.fft.rfft(output, size) * np.conj(np.fft.rfft(reference, size))
    xcorr = np.fft.irfft(spectrum, size)
    lags = np.arange(-max_lag, max_lag + 1)
    return int(lags[np.argmax(xcorr[lags])])


def overlap(a: np.ndarray, b: np.ndarray, lag: int) -> tuple[np.ndarray, np.ndarray]:
    """The parts of ``a`` and ``b`` that line up when ``a[t + lag]`` matches ``b[t]``."""
    if lag >= 0:
        a = a[lag:]
    else:
        b = b[-lag:]
    n = min(len(a), len(b))
    return a[:n], b[:n]


def _shift(audio: np.ndarray, lag: int) -> np.ndarray:
    """``audio[t + lag]`` with zeros where that falls outside."""
    out = np.zeros_like(audio)
    if lag >= 0:
        out[: len(audio) - lag] = audio[lag:]
    else:
        out[-lag:] = audio[: len(audio) + lag]
    return out


def component_gains(output: np.ndarray, sources: list[np.ndarray]) -> np.ndarray:
    """Least-squares gains g with ``output ≈ Σ g_i·sources_i``.

    All signals are taken at the output's length (sources zero-padded or cut). The output
    may lag its sources (:data:`MAX_LAG`); the shift is the one, among no shift and each
    source's own best lag, whose fit leaves the least residual, so that a source the
    output lacks cannot pull the alignment its way. A source the output does not contain
    gets a gain near 0, one mixed in unscaled a gain near 1.
    """
    if not sources:
        raise ValueError("component_gains needs at least one source")
    n = len(output)
    basis = np.stack([fit(s, n) for s in sources], axis=1)
    out = np.asarray(output, dtype=np.float64)
    max_lag = min(MAX_LAG, n - 1)
    lags = sorted({0, *(best_lag(out, basis[:, i], max_lag) for i in range(len(sources)))})
    best = None
    for lag in lags:
        shifted = _shift(out, lag)
        gains, *_ = np.linalg.lstsq(basis, shifted, rcond=None)
        residual = float(np.sum((shifted - basis @ gains) ** 2))
        if best is None or residual < best[0]:
            best = (residual, gains)
    return best[1]


def level_db(gain: float) -> float:
    """An amplitude gain in dB (20·log10|g|), floored at :data:`FLOOR_DB`."""
    g = abs(float(gain))
    return max(FLOOR_DB, 20.0 * np.log10(g)) if g > 0 else FLOOR_DB


def power(audio: np.ndarray) -> float:
    return float(np.mean(np.asarray(audio, dtype=np.float64) ** 2))


def snr_db(signal_gain: float, signal: np.ndarray, noise_gain: float, noise: np.ndarray) -> float:
    """10·log10 of the power of ``signal_gain·signal`` over that of ``noise_gain·noise``,
    clamped to ±|:data:`FLOOR_DB`|."""
    p_signal = signal_gain**2 * power(signal)
    p_noise = noise_gain**2 * power(noise)
    if p_noise == 0.0:
        return -FLOOR_DB
    if p_signal == 0.0:
        return FLOOR_DB
    return float(np.clip(10.0 * np.log10(p_signal / p_noise), FLOOR_DB, -FLOOR_DB))


def log_mel(audio: np.ndarray, sr: int = ANALYSIS_SR) -> np.ndarray:
    """(N_MELS, frames) log-mel power spectrogram in dB, TOP_DB below its peak at most."""
    import librosa  # as in load_audio

    mel = librosa.feature.melspectrogram(
        y=np.asarray(audio, dtype=np.float32), sr=sr, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS
    )
    return librosa.power_to_db(mel, ref=np.max, top_db=TOP_DB)


def soundtrack_similarity(a: np.ndarray, b: np.ndarray, sr: int = ANALYSIS_SR) -> float | None:
    """Pearson correlation of the log-mel spectrograms of ``a`` and ``b`` over their
    common frames: near 1 for the same sound (re-encoded or not), lower for different
    ones. None when either is silent or too short for one frame (nothing to compare)."""
    n = min(len(a), len(b))
    if n < N_FFT or power(a[:n]) == 0.0 or power(b[:n]) == 0.0:
        return None
    a, b = np.asarray(a[:n], dtype=np.float64), np.asarray(b[:n], dtype=np.float64)
    # Compared where they line up best: a stitched clip's halves may start a few audio
    # frames late (encoder priming), which would blur a frame-by-frame comparison.
    a, b = overlap(a, b, best_lag(a, b, min(MAX_LAG, n - 1)))
    if len(a) < N_FFT:
        return None
    x, y = log_mel(a, sr).ravel(), log_mel(b, sr).ravel()
    x, y = x - x.mean(), y - y.mean()
    denominator = float(np.sqrt(np.dot(x, x) * np.dot(y, y)))
    if denominator == 0.0:
        return None
    return float(np.dot(x, y) / denominator)
