"""What each manipulation promises about its output's audio, measured after it ran.

A sample whose output breaks the promise is rejected with the measured value and the
reason; every measured value also becomes a column of the benchmark table (null where a
task does not measure it):

=================  ==========================  ===========================================
manipulation       task                        promise (measured column)
=================  ==========================  ===========================================
``mute_stem``      AV-ConfuseBench m1          the muted stem is gone (``measured_muted_db``)
                                               and every other stem is there
                                               (``measured_kept_db``)
``replace_         AV-ConfuseBench m2          replace: no trace of the original
soundtrack``                                   (``measured_snr_db`` very low); mix: the
                                               configured SNR within ±0.5 dB
``strip_audio``    MAT                         no audio stream (``measured_audio_streams``)
``combine``        MVIT, MAIT                  the soundtrack is the donor's
                                               (``measured_donor_similarity`` high,
                                               ``measured_original_similarity`` low)
``swap_stitch``    COT-Swap                    each half carries the other clip's
                                               soundtrack (same two columns, worst half)
=================  ==========================  ===========================================

The measurements (:mod:`avtrust.media.measure`) are deterministic, and rounded before
they are stored, so a rebuild writes the same table byte for byte.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field

import numpy as np

from avtrust.bench.samples import CHECK_NAMES
from avtrust.errors import MediaError
from avtrust.media import measure
from avtrust.media.ffmpeg import decode_audio
from avtrust.media.manipulate import fit_length
from avtrust.media.probe import probe

# m1. A stem at -20 dB keeps 1% of its energy: under two or more instruments at full
# level it is masked, and it is the level below which the muting counts as done. The
# stems of a scene are summed unscaled, so a kept stem measures 0 dB up to the codec's
# error (well under 1 dB at the configured bit rates); below -3 dB (half its power) an
# instrument the question treats as sounding has been lost.
MUTED_MAX_DB = -20.0
KEPT_MIN_DB = -3.0
# m2 mix: the achieved SNR may differ from the configured one by at most this much (the
# graded-difficulty levels are several dB apart; AAC's error moves the measure by < 0.1 dB).
SNR_TOLERANCE_DB = 0.5
# m2 replace: what is left of the original must be at least 30 dB under the new sound
# (an exact replacement measures at the floor; 30 dB down is inaudible under it).
REPLACED_MAX_SNR_DB = -30.0
# MVIT/MAIT/COT-Swap: the donor's soundtrack, copied or re-encoded, correlates with the
# output's at >= 0.99 (log-mel); the synthetic corpus's different instruments correlate
# with each other at most ~0.73. Below 0.9 the output does not carry the donor's sound;
# at 0.8 or more it resembles the replaced soundtrack so closely that "mismatch" would no
# longer be an unambiguous answer.
DONOR_MIN_SIMILARITY = 0.9
ORIGINAL_MAX_SIMILARITY = 0.8
# Stored precision: well under every tolerance above, and it hides the last bits of
# floating-point sums, which may differ between BLAS builds.
DECIMALS = 3

CHECKED_OPS = ("mute_stem", "replace_soundtrack", "strip_audio", "combine", "swap_stitch")


@dataclass
class Measured:
    """The measured columns of one sample and, if a promise is broken, why."""

    values: dict = field(default_factory=dict)
    failure: str | None = None

    def row(self) -> dict:
        """Every measured column, null where this sample has no value."""
        return {name: self.values.get(name) for name in CHECK_NAMES}


def _round(x: float | None) -> float | None:
    return None if x is None else round(float(x), DECIMALS)


def check_mute_stem(args: dict, dst: str) -> Measured:
    """m1: each stem's level in the output, from least-squares gains on the stems."""
    stems = [measure.load_audio(p) for p in args["stems"]]
    out = decode_audio(dst, measure.ANALYSIS_SR)
    levels = [measure.level_db(g) for g in measure.component_gains(out, stems)]
    muted = args["muted"]
    kept = [lv for i, lv in enumerate(levels) if i != muted]
    got = Measured(
        {
            "measured_muted_db": _round(levels[muted]),
            "measured_kept_db": _round(min(kept)) if kept else None,
        }
    )
    if got.values["measured_muted_db"] > MUTED_MAX_DB:
        got.failure = (
            f"muted stem {muted} still in the mix at {got.values['measured_muted_db']} dB "
            f"(must be <= {MUTED_MAX_DB} dB)"
        )
    elif kept and got.values["measured_kept_db"] < KEPT_MIN_DB:
        weakest = min((i for i in range(len(levels)) if i != muted), key=lambda i: levels[i])
        got.failure = (
            f"kept stem {weakest} at {got.values['measured_kept_db']} dB "
            f"(must be >= {KEPT_MIN_DB} dB)"
        )
    return got


def check_replace_soundtrack(args: dict, dst: str) -> Measured:
    """m2: the SNR of the original soundtrack over the new sound, as found in the output."""
    out, original, sound = measure.decode_soundtracks([dst, args["video_src"], args["sound_src"]])
    n = len(out)
    if n == 0:
        raise MediaError(f"{dst}: empty soundtrack")
    # As the manipulation built it: both sounds looped or cut to the clip's length.
    original, sound = fit_length(original, n), fit_length(sound, n)
    g_original, g_sound = measure.component_gains(out, [original, sound])
    snr = _round(measure.snr_db(g_original, original, g_sound, sound))
    got = Measured({"measured_snr_db": snr})
    wanted = args["snr_db"]
    if wanted is None and snr > REPLACED_MAX_SNR_DB:
        got.failure = (
            f"original soundtrack still present at {snr} dB SNR "
            f"(a replacement must be <= {REPLACED_MAX_SNR_DB} dB)"
        )
    elif wanted is not None and abs(snr - wanted) > SNR_TOLERANCE_DB:
        got.failure = (
            f"achieved SNR {snr} dB, configured {wanted} dB (tolerance ±{SNR_TOLERANCE_DB} dB)"
        )
    return got


def audio_stream_count(path: str) -> int:
    """How many audio streams ``path`` has (ffprobe)."""
    proc = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "a", "-show_entries",
         "stream=index", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise MediaError(f"{path}: ffprobe failed: {proc.stderr.strip()[-300:]}")
    return len(proc.stdout.split())


def check_strip_audio(args: dict, dst: str) -> Measured:
    """MAT: the output has no audio stream."""
    count = audio_stream_count(dst)
    got = Measured({"measured_audio_streams": count})
    if count:
        got.failure = f"{count} audio stream(s) left (must be 0)"
    return got


def _similarities(segment: np.ndarray, donor: np.ndarray, original: np.ndarray):
    return (
        measure.soundtrack_similarity(segment, donor),
        measure.soundtrack_similarity(segment, original),
    )


def _judge_soundtrack(pairs: list[tuple[float | None, float | None]]) -> Measured:
    """Worst donor similarity and highest original similarity over the segments."""
    donors = [d for d, _ in pairs]
    if any(d is None for d in donors):
        got = Measured({"measured_donor_similarity": None, "measured_original_similarity": None})
        got.failure = "soundtrack or donor silent or shorter than one analysis window"
        return got
    originals = [o for _, o in pairs if o is not None]
    donor = _round(min(donors))
    original = _round(max(originals)) if originals else None
    got = Measured({"measured_donor_similarity": donor, "measured_original_similarity": original})
    if donor < DONOR_MIN_SIMILARITY:
        got.failure = (
            f"soundtrack is not the donor's: similarity {donor} (must be >= {DONOR_MIN_SIMILARITY})"
        )
    elif original is not None and original >= ORIGINAL_MAX_SIMILARITY:
        got.failure = (
            f"soundtrack resembles the replaced one: similarity {original} "
            f"(must be < {ORIGINAL_MAX_SIMILARITY})"
        )
    return got


def check_combine(args: dict, dst: str) -> Measured:
    """MVIT/MAIT: the output's soundtrack is ``audio_src``'s, not ``video_src``'s."""
    out, donor, original = measure.decode_soundtracks([dst, args["audio_src"], args["video_src"]])
    return _judge_soundtrack([_similarities(out, donor, original)])


def check_swap_stitch(args: dict, dst: str) -> Measured:
    """COT-Swap: the first half sounds like clip 2, the second like clip 1.

    Each half lasts as long as the shorter of its video and its audio (the manipulation
    cuts each half to its shorter stream). The first half is taken from the start and
    the second from the end of the output, so a gap between them (priming samples of the
    second half's encoder) falls outside both."""
    out, a1, a2 = measure.decode_soundtracks([dst, args["src1"], args["src2"]])

    def half(video_src: str, audio: np.ndarray) -> int:
        return min(len(audio), int(round(probe(video_src).duration * measure.ANALYSIS_SR)))

    n1 = min(half(args["src1"], a2), len(out))
    n2 = min(half(args["src2"], a1), len(out) - n1)
    first, second = out[:n1], out[len(out) - n2 :]
    return _judge_soundtrack([_similarities(first, a2, a1), _similarities(second, a1, a2)])


CHECKS = {
    "mute_stem": check_mute_stem,
    "replace_soundtrack": check_replace_soundtrack,
    "strip_audio": check_strip_audio,
    "combine": check_combine,
    "swap_stitch": check_swap_stitch,
}


def check_output(op: str, args: dict, dst: str) -> Measured:
    """Measure ``dst``, made by manipulation ``op`` from ``args``, against its promise.

    Manipulations without a promise about their audio (``none``, ``verify``, ``concat``,
    ``strip_video``) measure nothing and pass."""
    check = CHECKS.get(op)
    return Measured() if check is None else check(args, dst)
