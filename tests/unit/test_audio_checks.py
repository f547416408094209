"""The audio checks after manipulation: a correct manipulation passes with its measured
values, a deliberately wrong one is rejected with the value that gave it away."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from avtrust.bench import checks
from avtrust.bench.assemble import assemble
from avtrust.bench.samples import CHECK_NAMES, PLAN_SCHEMA, SAMPLE_SCHEMA
from avtrust.bench.shards import run_shard
from avtrust.media import manipulate, measure
from avtrust.media.ffmpeg import decode_audio

SR = 16000
AUDIO = {"sample_rate": SR, "audio_codec": {"acodec": "aac", "b:a": "64k"}}
VIDEO_CODEC = {"vcodec": "libx264", "preset": "veryfast", "crf": 23, "threads": 1}
MEDIA = {**AUDIO, "video_codec": VIDEO_CODEC}


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("checked")


def m1_args(scene, muted: int) -> dict:
    return {"video_src": str(scene.clip.path), "stems": [str(p) for p in scene.stem_paths],
            "muted": muted}  # fmt: skip


def with_soundtrack(video: str, audio: np.ndarray, dst) -> str:
    """``video``'s picture with ``audio`` (at SR) as its soundtrack: a wrong manipulation."""
    manipulate._encode_with_audio(video, audio, SR, dst, AUDIO["audio_codec"])
    return str(dst)


# ------------------------------------------------------------------------------ m1


@pytest.mark.parametrize("muted", [0, 1, 2])
def test_m1_correctly_muted_stem_passes(scene, out_dir, muted):
    dst = out_dir / f"m1_{muted}.mp4"
    args = m1_args(scene, muted)
    manipulate.mute_stem(args["video_src"], args["stems"], muted, dst, **AUDIO)
    got = checks.check_output("mute_stem", args, str(dst))
    assert got.failure is None
    assert got.values["measured_muted_db"] < -40.0  # nothing left of it but codec error
    assert got.values["measured_kept_db"] == pytest.approx(0.0, abs=0.5)
    # Deterministic: measured again, the same values to the last stored digit.
    assert checks.check_output("mute_stem", args, str(dst)) == got


def test_m1_stem_not_muted_is_rejected_with_its_level(scene, out_dir):
    # The scene as it was: every stem in the mix, the one asked about included.
    wrong = with_soundtrack(
        str(scene.clip.path), np.sum(scene.stems, axis=0), out_dir / "m1_all.mp4"
    )
    got = checks.check_output("mute_stem", m1_args(scene, 1), wrong)
    assert got.values["measured_muted_db"] == pytest.approx(0.0, abs=0.5)
    assert got.failure.startswith("muted stem 1 still in the mix at ")
    assert f"{got.values['measured_muted_db']} dB (must be <= -20.0 dB)" in got.failure


def test_m1_half_muted_stem_is_rejected(scene, out_dir):
    # Stem 0 only turned down by 10 dB: audible, so the answer "no" would be wrong.
    stems = [s * (10 ** (-10 / 20) if i == 0 else 1.0) for i, s in enumerate(scene.stems)]
    wrong = with_soundtrack(str(scene.clip.path), np.sum(stems, axis=0), out_dir / "m1_ducked.mp4")
    got = checks.check_output("mute_stem", m1_args(scene, 0), wrong)
    assert got.values["measured_muted_db"] == pytest.approx(-10.0, abs=0.5)
    assert "still in the mix" in got.failure


def test_m1_lost_instrument_is_rejected(scene, out_dir):
    # Stem 0 muted as asked, but stem 2 dropped too: the scene lost an instrument it shows.
    wrong = with_soundtrack(str(scene.clip.path), scene.stems[1], out_dir / "m1_lost.mp4")
    got = checks.check_output("mute_stem", m1_args(scene, 0), wrong)
    assert got.values["measured_muted_db"] <= checks.MUTED_MAX_DB
    assert got.values["measured_kept_db"] < -40.0
    assert got.failure.startswith("kept stem 2 at ")


# ------------------------------------------------------------------------------ m2


def m2_args(clips, drill_wav, snr_db) -> dict:
    return {"video_src": str(clips["violin"].path), "sound_src": str(drill_wav[0]),
            "snr_db": snr_db}  # fmt: skip


@pytest.mark.parametrize("snr_db", [None, -5.0, 0.0, 10.0])
def test_m2_replaced_or_mixed_soundtrack_passes(clips, drill_wav, out_dir, snr_db):
    args = m2_args(clips, drill_wav, snr_db)
    dst = out_dir / f"m2_{snr_db}.mp4"
    manipulate.replace_soundtrack(args["video_src"], args["sound_src"], dst, snr_db=snr_db, **AUDIO)
    got = checks.check_output("replace_soundtrack", args, str(dst))
    assert got.failure is None, got
    if snr_db is None:
        assert got.values["measured_snr_db"] < -40.0
    else:
        assert got.values["measured_snr_db"] == pytest.approx(snr_db, abs=0.2)


def test_m2_replacement_keeping_the_original_is_rejected(clips, drill_wav, out_dir):
    # "Replaced" but the original soundtrack is still under the new sound at -10 dB.
    args = m2_args(clips, drill_wav, None)
    n = len(decode_audio(args["video_src"], SR))
    original = manipulate.fit_length(decode_audio(args["video_src"], SR), n)
    sound = manipulate.fit_length(drill_wav[1], n)
    leaky = manipulate.mix_at_snr(original, sound, -10.0)
    wrong = with_soundtrack(args["video_src"], leaky, out_dir / "m2_leaky.mp4")
    got = checks.check_output("replace_soundtrack", args, wrong)
    assert got.values["measured_snr_db"] == pytest.approx(-10.0, abs=0.5)
    assert got.failure == (
        f"original soundtrack still present at {got.values['measured_snr_db']} dB SNR "
        "(a replacement must be <= -30.0 dB)"
    )
    # The untouched clip, passed off as a replacement: the original alone.
    got = checks.check_output("replace_soundtrack", args, args["video_src"])
    assert got.values["measured_snr_db"] > 40.0
    assert "original soundtrack still present" in got.failure


def test_m2_wrong_snr_is_rejected_with_the_achieved_snr(clips, drill_wav, out_dir):
    args = m2_args(clips, drill_wav, 0.0)
    dst = out_dir / "m2_at_1.mp4"  # mixed at 1 dB where 0 dB was asked for
    manipulate.replace_soundtrack(args["video_src"], args["sound_src"], dst, snr_db=1.0, **AUDIO)
    got = checks.check_output("replace_soundtrack", args, str(dst))
    assert got.values["measured_snr_db"] == pytest.approx(1.0, abs=0.2)
    assert got.failure == (
        f"achieved SNR {got.values['measured_snr_db']} dB, configured 0.0 dB (tolerance ±0.5 dB)"
    )


# ------------------------------------------------------------------------------ MAT


def test_mat_without_audio_passes_with_audio_is_rejected(clips, out_dir):
    src = str(clips["violin"].path)
    dst = out_dir / "mat.mp4"
    manipulate.strip_audio(src, dst)
    assert checks.check_output("strip_audio", {"src": src}, str(dst)) == checks.Measured(
        {"measured_audio_streams": 0}
    )
    got = checks.check_output("strip_audio", {"src": src}, src)  # audio left in
    assert got.values == {"measured_audio_streams": 1}
    assert got.failure == "1 audio stream(s) left (must be 0)"


# ------------------------------------------------------------------------------ donor's soundtrack


def test_mismatch_with_the_donors_soundtrack_passes(clips, out_dir):
    video, donor = str(clips["violin"].path), str(clips["cello"].path)
    args = {"video_src": video, "audio_src": donor}
    for encode in ((), ("audio",)):  # stream copy, and a re-encoded soundtrack
        dst = out_dir / f"mvit_{len(encode)}.mp4"
        manipulate.combine(video, donor, dst, encode=encode, codecs=MEDIA)
        got = checks.check_output("combine", args, str(dst))
        assert got.failure is None
        assert got.values["measured_donor_similarity"] > 0.99
        assert got.values["measured_original_similarity"] < checks.ORIGINAL_MAX_SIMILARITY


def test_mismatch_keeping_the_original_soundtrack_is_rejected(clips, out_dir):
    video, donor = str(clips["violin"].path), str(clips["cello"].path)
    # The video's own clip, unchanged: the "donor" sound was never put on it.
    got = checks.check_output("combine", {"video_src": video, "audio_src": donor}, video)
    assert got.values["measured_original_similarity"] > 0.99
    assert got.values["measured_donor_similarity"] < checks.DONOR_MIN_SIMILARITY
    assert got.failure == (
        f"soundtrack is not the donor's: similarity {got.values['measured_donor_similarity']} "
        "(must be >= 0.9)"
    )


def test_cot_swap_checks_both_halves(clips, out_dir):
    src1, src2 = str(clips["violin"].path), str(clips["cello"].path)
    args = {"src1": src1, "src2": src2}
    dst = out_dir / "swap.mp4"
    manipulate.swap_stitch(src1, src2, dst)
    got = checks.check_output("swap_stitch", args, str(dst))
    assert got.failure is None
    assert got.values["measured_donor_similarity"] > 0.95
    # A plain stitch (each clip keeps its own audio) is no swap.
    stitched = out_dir / "stitch.mp4"
    manipulate.concat([src1, src2], stitched)
    got = checks.check_output("swap_stitch", args, str(stitched))
    assert got.values["measured_original_similarity"] > 0.95
    assert got.failure.startswith("soundtrack is not the donor's")


def test_similarity_of_silence_is_a_reject_not_a_number():
    assert measure.soundtrack_similarity(np.zeros(SR), np.ones(SR)) is None
    got = checks._judge_soundtrack([(None, None)])
    assert got.failure.startswith("soundtrack or donor silent")


def test_component_gains_find_a_shifted_output():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(SR), rng.standard_normal(SR)
    out = np.concatenate([np.zeros(700), 0.5 * a + 2.0 * b])  # 700 samples late
    assert measure.component_gains(out, [a, b]) == pytest.approx([0.5, 2.0], abs=0.01)


# ------------------------------------------------------------------------------ through the shard


def plan_row(i: int, task: str, bench: str, op: str, args: dict, media_path: str, **extra):
    row = {name: None for name in PLAN_SCHEMA.names}
    row.update(id=f"{task}-{i:06d}", bench=bench, task=task, source_dataset="synthetic",
               source_ids=[], media_path=media_path, question="q", options=[], answer="a",
               answer_index=-1, category="c", seed=1, op=op,
               op_args=json.dumps(args, sort_keys=True), **extra)  # fmt: skip
    return row


def test_shard_rejects_a_wrong_snr_and_tables_carry_the_measures(
    clips, drill_wav, tmp_path, monkeypatch
):
    """A broken mixer (6 dB off) reaches the rejects table with its achieved SNR; the
    replaced sample reaches the benchmark table with its measured value."""
    good = {**m2_args(clips, drill_wav, None)}
    bad = {**m2_args(clips, drill_wav, 0.0)}
    rows = [
        plan_row(0, "m2", "avconfusebench", "replace_soundtrack", good, str(tmp_path / "0.mp4")),
        plan_row(1, "m2", "avconfusebench", "replace_soundtrack", bad, str(tmp_path / "1.mp4"),
                 snr_db=0.0),
    ]  # fmt: skip
    plan = tmp_path / "plan.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=PLAN_SCHEMA), plan)
    mix = manipulate.mix_at_snr
    monkeypatch.setattr(manipulate, "mix_at_snr", lambda s, n, snr: mix(s, n, snr + 6.0))
    shard = tmp_path / "shard.parquet"
    pq.write_table(run_shard(str(plan), 0, 1, MEDIA), shard)
    samples, rejects = assemble(str(plan), [str(shard)])

    assert samples.schema == SAMPLE_SCHEMA
    assert samples["id"].to_pylist() == ["m2-000000"]
    assert samples["measured_snr_db"][0].as_py() < -40.0
    assert samples["measured_muted_db"][0].as_py() is None
    reject = rejects.to_pylist()[0]
    assert reject["id"] == "m2-000001"
    assert reject["measured_snr_db"] == pytest.approx(6.0, abs=0.2)
    assert reject["error"].startswith(
        f"check failed: achieved SNR {reject['measured_snr_db']} dB, configured 0.0 dB"
    )
    assert set(CHECK_NAMES) <= set(rejects.column_names)
