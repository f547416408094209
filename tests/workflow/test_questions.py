"""Question-generation invariants, checked against the source annotations of the tiny build."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from avtrust.datasets.adapters import read_questions

pytestmark = pytest.mark.workflow


def rows(workdir, bench, task):
    return pq.read_table(workdir / "results" / "bench" / bench / f"{task}.parquet").to_pylist()


def manifest(workdir, dataset):
    table = pq.read_table(workdir / "results" / "manifest" / f"{dataset}.parquet").to_pylist()
    return {r["clip_id"]: r for r in table}


def avqa_by_clip_and_question(workdir):
    q = read_questions("avqa", workdir / "resources" / "raw" / "avqa")
    return {(r.video_id, r.question): r for r in q.itertuples()}


def test_mcit_removes_the_correct_option_and_keeps_the_wrong_ones(tiny_run):
    source = avqa_by_clip_and_question(tiny_run)
    for r in rows(tiny_run, "avtrustbench", "MCIT"):
        original = source[(r["source_ids"][0], r["question"])]
        assert original.answer not in r["options"]
        wrong = {o for i, o in enumerate(original.options) if i != original.answer_index}
        assert set(r["options"][:-1]) == wrong and r["options"][-1] == r["answer"]


def test_icit_options_are_unrelated_to_the_clip(tiny_run):
    source = avqa_by_clip_and_question(tiny_run)
    clips = manifest(tiny_run, "avqa")
    for r in rows(tiny_run, "avtrustbench", "ICIT"):
        original = source[(r["source_ids"][0], r["question"])]
        own = {o.lower() for o in original.options} | {
            x.lower() for x in clips[r["source_ids"][0]]["labels"]
        }
        assert len(r["options"]) == 4
        assert not own & {o.lower() for o in r["options"][:-1]}


PAIRED = [("MVIT", "avqa"), ("MAIT", "avqa"), ("COT-Stitch", "audioset"), ("COT-Swap", "audioset")]


@pytest.mark.parametrize(("task", "dataset"), PAIRED)
def test_paired_clips_share_no_label(tiny_run, task, dataset):
    clips = manifest(tiny_run, dataset)
    for r in rows(tiny_run, "avtrustbench", task):
        a, b = (set(clips[c]["labels"]) for c in r["source_ids"])
        assert a and b and not a & b


def test_cot_stitch_answer_is_the_true_order(tiny_run):
    clips = manifest(tiny_run, "audioset")
    for r in rows(tiny_run, "avtrustbench", "COT-Stitch"):
        first, second = (" and ".join(clips[c]["labels"]) for c in r["source_ids"])
        assert r["answer"] == f"{first} then {second}"
        assert f"{second} then {first}" in r["options"]


def test_cat_offers_the_swapped_binding(tiny_run):
    for r in rows(tiny_run, "avtrustbench", "CAT"):
        # "The {n1} {v1} and the {n2} {v2}" -> swapped "The {n1} {v2} and the {n2} {v1}"
        left, right = r["answer"][len("The ") :].split(" and the ")
        (n1, v1), (n2, v2) = left.rsplit(" ", 1), right.rsplit(" ", 1)
        assert f"The {n1} {v2} and the {n2} {v1}" in r["options"]
        assert len(set(r["options"])) == 4


@pytest.mark.parametrize("task", ["MAT", "MVT"])
def test_missing_modality_keeps_the_original_question_and_answer_as_distractor(tiny_run, task):
    q = read_questions("music_avqa", tiny_run / "resources" / "raw" / "music_avqa")
    by_clip = {(r.video_id, r.question): r for r in q.itertuples()}
    for r in rows(tiny_run, "avtrustbench", task):
        original = by_clip[(r["source_ids"][0], r["question"])]
        assert original.answer in r["options"] and r["category"] == original.category
        assert len(set(r["options"])) == 4


def test_m1_mutes_an_instrument_that_is_in_view(tiny_run):
    clips = manifest(tiny_run, "music_avqa")
    for r in rows(tiny_run, "avconfusebench", "m1"):
        assert r["instruments"] == clips[r["source_ids"][0]]["labels"]
        assert len(r["instruments"]) >= 2
