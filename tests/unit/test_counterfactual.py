"""V' and A' of CAVPref: which stream each task changes, and the files on disk."""

from __future__ import annotations

import numpy as np
import pytest

from avtrust.media import manipulate
from avtrust.media.ffmpeg import decode_audio
from avtrust.media.probe import probe
from avtrust.scoring.counterfactual import (
    Partners,
    clean_streams,
    plan_sample,
    run_counterfactual_shard,
)


@pytest.fixture(scope="module")
def corpus(clips, scene, tmp_path_factory):
    """A manifest of five A+V clips (labels chosen for the test) and samples of five tasks
    whose media are made from them the way the benchmark makes them."""
    root = tmp_path_factory.mktemp("cf")
    manifest = {
        "violin": {"path": str(clips["violin"].path), "labels": ["violin"]},
        "cello": {"path": str(clips["cello"].path), "labels": ["cello"]},
        "piano": {"path": str(clips["piano_wide"].path), "labels": ["piano"]},
        "band": {"path": str(scene.clip.path), "labels": ["Crowd"]},
    }
    for record in manifest.values():
        record.update(has_audio=True, has_video=True)
    v, c = str(clips["violin"].path), str(clips["cello"].path)
    media = {
        "MVIT": root / "mvit.mp4",  # audio of violin on the video of cello
        "MAT": root / "mat.mp4",
        "MVT": root / "mvt.m4a",
        "COT-Swap": root / "swap.mp4",
        "COT-Stitch": root / "stitch.mp4",
    }
    manipulate.combine(c, v, media["MVIT"])
    manipulate.strip_audio(v, media["MAT"])
    manipulate.strip_video(v, media["MVT"])
    manipulate.swap_stitch(v, c, media["COT-Swap"])
    manipulate.concat([v, c], media["COT-Stitch"])
    sources = {"MVIT": ["violin", "cello"], "COT-Swap": ["violin", "cello"]}
    sources["COT-Stitch"] = ["violin", "cello"]
    rows = [
        {
            "id": f"{task}-000000",
            "task": task,
            "media_path": str(path),
            "source_ids": sources.get(task, ["violin"]),
            "source_dataset": "ds",
        }
        for task, path in media.items()
    ]
    return manifest, rows, root


def test_clean_streams_follow_the_manipulation():
    assert clean_streams("MVIT", ["a", "b"]) == (["b"], ["a"])
    assert clean_streams("MAIT", ["a", "b"]) == (["a"], ["b"])
    assert clean_streams("COT-Swap", ["a", "b"]) == (["a", "b"], ["b", "a"])
    assert clean_streams("MAT", ["a"]) == (["a"], [])
    assert clean_streams("MVT", ["a"]) == ([], ["a"])
    assert clean_streams("CAT", ["a"]) == (["a"], ["a"])


def test_plans_restore_or_replace_the_stream(corpus):
    manifest, rows, root = corpus
    partners = Partners(manifest)
    plans = {r["task"]: plan_sample(r, partners, 7, str(root / "m")) for r in rows}
    sources = {r["task"]: set(r["source_ids"]) for r in rows}
    kinds = {t: (p["video_corrupted_kind"], p["audio_corrupted_kind"]) for t, p in plans.items()}
    assert kinds == {
        "MVIT": ("restored", "replaced"),
        "MAT": ("replaced", "restored"),
        "MVT": ("restored", "replaced"),
        "COT-Swap": ("restored", "restored"),
        "COT-Stitch": ("replaced", "replaced"),
    }
    assert plans["MVIT"]["video_corrupted_video_ids"] == ["violin"]  # the audio's own video
    assert plans["COT-Swap"]["video_corrupted_video_ids"] == ["cello", "violin"]
    assert plans["COT-Swap"]["audio_corrupted_audio_ids"] == ["violin", "cello"]
    for p in plans.values():
        # V' keeps the clean soundtrack, A' the clean video.
        assert p["video_corrupted_audio_ids"] == p["clean_audio_ids"]
        assert p["audio_corrupted_video_ids"] == p["clean_video_ids"]
        # A replaced stream comes from clips sharing no label with the sources.
        for kind, ids in (
            (p["video_corrupted_kind"], p["video_corrupted_video_ids"]),
            (p["audio_corrupted_kind"], p["audio_corrupted_audio_ids"]),
        ):
            if kind == "replaced":
                assert ids and not sources[p["task"]] & set(ids)
    stitch = plans["COT-Stitch"]
    assert sorted(stitch["video_corrupted_video_ids"]) == ["band", "piano"]  # disjoint labels
    # The same sample gets the same partners whatever else is planned with it.
    again = plan_sample(rows[-1], Partners(manifest), 7, str(root / "m"))
    assert again["video_corrupted_video_ids"] == stitch["video_corrupted_video_ids"]


def test_shard_writes_every_v_and_a_prime(corpus, tmp_path):
    manifest, rows, _ = corpus
    table = run_counterfactual_shard(rows, {"ds": manifest}, seed=7, media_root=str(tmp_path / "m"))
    records = {r["task"]: r for r in table.to_pylist()}
    assert all(r["ok"] for r in records.values()), [r["error"] for r in records.values()]
    streams = {}
    for task, r in records.items():
        v, a = probe(r["video_corrupted_path"]), probe(r["audio_corrupted_path"])
        streams[task] = ((v.has_audio, v.has_video), (a.has_audio, a.has_video))
    assert streams == {
        "MVIT": ((True, True), (True, True)),
        "MAT": ((False, True), (True, True)),  # V': partner video, still silent
        "MVT": ((True, True), (True, False)),  # A': partner audio, still no video
        "COT-Swap": ((True, True), (True, True)),
        "COT-Stitch": ((True, True), (True, True)),
    }
    assert records["MVT"]["audio_corrupted_path"].endswith(".a.m4a")
    # V' of MVIT plays the sample's own soundtrack (stream copy).
    clean = decode_audio(records["MVIT"]["media_path"], 16000)
    v_prime = decode_audio(records["MVIT"]["video_corrupted_path"], 16000)
    n = min(len(clean), len(v_prime))
    np.testing.assert_array_equal(clean[:n], v_prime[:n])
    assert probe(records["COT-Stitch"]["video_corrupted_path"]).duration == pytest.approx(
        probe(records["COT-Stitch"]["media_path"]).duration, abs=0.15
    )


def test_a_sample_without_partners_is_recorded_not_fatal(corpus, tmp_path):
    manifest, rows, _ = corpus
    only = {k: manifest[k] for k in ("violin", "cello")}  # no clip is label-disjoint
    table = run_counterfactual_shard(
        [r for r in rows if r["task"] == "COT-Stitch"],
        {"ds": only},
        seed=7,
        media_root=str(tmp_path),
    )
    (record,) = table.to_pylist()
    assert record["ok"] is False and "no partner clip" in record["error"]
