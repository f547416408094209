"""Plans of every task built from the scale benchmark's input (bench/plan_scale.py), small.

Checks the invariants of each task's plan, not its speed: row counts, answers among the
options, the abstention answers, unique ids, mismatch pairs that share no label.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from avtrust.bench.plan import plan_task, read_manifest
from avtrust.bench.samples import PLAN_SCHEMA, PartnerPool, Survivors, wording
from avtrust.datasets.adapters import read_questions

REPO = Path(__file__).resolve().parents[2]
ROWS = 2_000


def _load_bench_module():
    """bench/plan_scale.py, a script rather than a package module."""
    if "plan_scale" not in sys.modules:
        path = REPO / "bench" / "plan_scale.py"
        spec = importlib.util.spec_from_file_location("plan_scale", path)
        sys.modules["plan_scale"] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)  # registered first: its dataclasses look it up
    return sys.modules["plan_scale"]


@pytest.fixture(scope="module")
def scale(tmp_path_factory):
    """(input, {(bench, task): plan rows}) for ROWS samples over the 11 tasks."""
    plan_scale = _load_bench_module()
    root = tmp_path_factory.mktemp("plan_scale")
    inp = plan_scale.build_inputs(root, ROWS)
    plan_scale.plan_all(inp, root / "plan")
    plans = {}
    for bench, task in inp.split:
        table = pq.read_table(root / "plan" / bench / f"{task}.parquet")
        assert table.schema.equals(PLAN_SCHEMA)
        plans[bench, task] = table.to_pylist()
    return inp, plans


@pytest.fixture(scope="module")
def labels(scale):
    """Manifest labels of every clip, by dataset."""
    inp, _ = scale
    return {d: dict(zip(m.index, m["labels"], strict=True)) for d, m in _manifests(inp).items()}


def _manifests(inp):
    return {dataset: read_manifest(path) for dataset, path in inp.manifests.items()}


def _lower(items) -> set[str]:
    return {x.lower() for x in items}


def test_split_sums_to_rows_and_every_task_is_full(scale):
    inp, plans = scale
    assert sum(inp.split.values()) == ROWS
    for key, rows in plans.items():
        # The synthetic input always has a disjoint partner, so no sample is skipped.
        assert len(rows) == inp.split[key], key


def test_ids_rows_and_answers(scale):
    _, plans = scale
    for (_, task), rows in plans.items():
        assert [r["id"] for r in rows] == [f"{task}-{i:06d}" for i in range(len(rows))]
        for r in rows:
            assert r["task"] == task
            if task == "m2":  # open-ended
                assert r["options"] == [] and r["answer_index"] == -1
                continue
            assert r["answer"] in r["options"], r
            assert r["options"][r["answer_index"]] == r["answer"]
            assert len(set(r["options"])) == len(r["options"]), r


def test_abstention_answers(scale):
    _, plans = scale
    words = wording()
    expected = {
        "MCIT": words["none_of_the_above"],
        "ICIT": words["irrelevant_options"],
        "MVIT": words["mismatch"],
        "MAIT": words["mismatch"],
        "COT-Swap": words["mismatch"],
        "MAT": words["audio_missing"],
        "MVT": words["visual_missing"],
        "m1": "no",
    }
    for (_, task), rows in plans.items():
        if task in expected:
            assert {r["answer"] for r in rows} == {expected[task]}, task
    assert all(words["mismatch"] in r["options"] for r in plans["avtrustbench", "COT-Stitch"])


def test_mismatch_pairs_share_no_label(scale, labels):
    inp, plans = scale
    for task in ("MVIT", "MAIT", "COT-Stitch", "COT-Swap"):
        dataset = inp.config["benchmark"]["avtrustbench"][task]["dataset"]
        for r in plans["avtrustbench", task]:
            a, b = r["source_ids"]
            assert a != b
            assert not _lower(labels[dataset][a]) & _lower(labels[dataset][b]), r


def test_mismatch_sources_and_operations(scale):
    inp, plans = scale
    manifest = read_manifest(inp.manifests["avqa"])
    path = dict(zip(manifest.index, manifest["path"], strict=True))
    for task, audio_first in (("MVIT", True), ("MAIT", False)):
        for r in plans["avtrustbench", task]:
            own, other = r["source_ids"]
            args = json.loads(r["op_args"])
            assert r["op"] == "combine"
            assert args["audio_src"] == path[own if audio_first else other]
            assert args["video_src"] == path[other if audio_first else own]
    for task, op, ext in (("MAT", "strip_audio", ".mp4"), ("MVT", "strip_video", ".m4a")):
        for r in plans["avtrustbench", task]:
            assert r["op"] == op and r["media_path"].endswith(ext)


def test_option_tasks_leave_out_what_they_should(scale, labels):
    inp, plans = scale
    records = read_questions("avqa", inp.raw_dirs["avqa"]).to_dict("records")
    by_key = {(q["video_id"], q["question"]): q for q in records}  # unique in this input
    for r in plans["avtrustbench", "MCIT"]:
        question = by_key[r["source_ids"][0], r["question"]]
        assert question["answer"] not in r["options"]
    for r in plans["avtrustbench", "ICIT"]:
        video = r["source_ids"][0]
        own = _lower(by_key[video, r["question"]]["options"]) | _lower(labels["avqa"][video])
        assert len(r["options"]) == 4
        assert not _lower(r["options"][:-1]) & own, r


def test_order_and_binding_tasks(scale, labels):
    _, plans = scale
    for r in plans["avtrustbench", "COT-Stitch"]:
        a, b = (" and ".join(labels["audioset"][c]) for c in r["source_ids"])
        assert r["answer"] == f"{a} then {b}"
        assert f"{b} then {a}" in r["options"]
    for r in plans["avtrustbench", "CAT"]:
        assert len(r["options"]) == 4 and r["op"] == "none"


def test_confusebench_tasks(scale):
    inp, plans = scale
    for r in plans["avconfusebench", "m1"]:
        args = json.loads(r["op_args"])
        assert r["muted_instrument"] == r["instruments"][args["muted"]]
        assert r["muted_instrument"] in r["question"]
        assert len(args["stems"]) == len(r["instruments"]) >= 2
    m2 = plans["avconfusebench", "m2"]
    counts = Counter(r["sound_type"] for r in m2)
    assert set(counts) == set(inp.config["benchmark"]["avconfusebench"]["m2"]["sound_types"])
    assert max(counts.values()) - min(counts.values()) <= 1
    for r in m2:
        assert r["source_ids"][1].startswith(r["sound_type"] + ".")


def test_planning_is_deterministic(scale):
    inp, _ = scale
    for task in ("ICIT", "MVIT"):
        first = plan_task("avtrustbench", task, inp.config, inp.manifests, inp.raw_dirs)
        again = plan_task("avtrustbench", task, inp.config, inp.manifests, inp.raw_dirs)
        assert first.equals(again)


def test_survivors_and_partner_pool_match_a_plain_filter():
    rng = np.random.default_rng(0)
    vocab = ["Dog", "dog", "Bell", "cat", "Cat", "Rain"]
    for _ in range(200):
        n = int(rng.integers(1, 12))
        removed = sorted({int(p) for p in rng.integers(0, n, size=int(rng.integers(0, n + 1)))})
        kept = [p for p in range(n) if p not in removed]
        survivors = Survivors(n, removed)
        assert [survivors[j] for j in range(len(survivors))] == kept

        clips = [f"c{i}" for i in range(n)]
        labels = {c: [vocab[j] for j in rng.integers(0, len(vocab), int(rng.integers(0, 3)))]
                  for c in clips}  # fmt: skip
        pool = PartnerPool(clips, labels)
        for clip in clips:
            plain = [c for c in clips if c != clip and not _lower(labels[clip]) & _lower(labels[c])]
            seed = int(rng.integers(1 << 30))
            drawn = pool.draw(clip, np.random.default_rng(seed))
            expected = (
                plain[int(np.random.default_rng(seed).integers(len(plain)))] if plain else None
            )
            assert drawn == expected
