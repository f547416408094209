"""The tiny end-to-end build: every task's files, their contents, logs and determinism."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from conftest import result_digests, run_snakemake

from avtrust.bench.avconfusebench import m1_question
from avtrust.bench.samples import BENCHES, SAMPLE_SCHEMA
from avtrust.evaluate.prompts import prompt_for
from avtrust.media.probe import probe

pytestmark = pytest.mark.workflow

ABSTENTION = {
    "MCIT": "None of the above",
    "ICIT": "None of the options are relevant",  # overridden in tiny.yaml
    "MVIT": "Mismatch in audio and video",
    "MAIT": "Mismatch in audio and video",
    "COT-Swap": "Mismatch in audio and video",
    "MAT": "Audio is missing",
    "MVT": "Visual is missing",
}
ALL_TASKS = [(b, t) for b, ts in BENCHES.items() for t in ts]


def read(workdir, bench, task):
    return pq.read_table(workdir / "results" / "bench" / bench / f"{task}.parquet")


@pytest.mark.parametrize(("bench", "task"), ALL_TASKS)
def test_every_task_is_built_with_the_common_schema(tiny_run, bench, task):
    table = read(tiny_run, bench, task)
    assert table.schema == SAMPLE_SCHEMA
    assert table.num_rows >= 3
    rejects = pq.read_table(tiny_run / "results" / "bench" / bench / f"{task}.rejects.parquet")
    assert rejects.num_rows == 0, rejects.to_pylist()
    rows = table.to_pylist()
    assert len({r["id"] for r in rows}) == len(rows)
    for r in rows:
        assert (tiny_run / r["media_path"]).is_file()
        if r["options"]:
            assert r["options"][r["answer_index"]] == r["answer"]
        if task in ABSTENTION:
            assert r["answer"] == ABSTENTION[task]


def test_media_have_the_streams_the_task_promises(tiny_run):
    for task, audio, video in [("MAT", False, True), ("MVT", True, False), ("MVIT", True, True)]:
        for r in read(tiny_run, "avtrustbench", task).to_pylist():
            info = probe(tiny_run / r["media_path"])
            assert (
                (info.has_audio, info.has_video)
                == (audio, video)
                == (r["has_audio"], r["has_video"])
            )


def test_two_clip_tasks_record_both_sources(tiny_run):
    for task in ("MVIT", "MAIT", "COT-Stitch", "COT-Swap"):
        for r in read(tiny_run, "avtrustbench", task).to_pylist():
            assert len(r["source_ids"]) == 2 and r["source_ids"][0] != r["source_ids"][1]
    for r in read(tiny_run, "avtrustbench", "COT-Stitch").to_pylist():
        assert r["answer"] != "Mismatch in audio and video" and " then " in r["answer"]


def test_confusebench_fields(tiny_run):
    for r in read(tiny_run, "avconfusebench", "m1").to_pylist():
        assert r["answer"] == "no" and r["muted_instrument"] in r["instruments"]
        assert r["question"] == m1_question(r["muted_instrument"])
    m2 = read(tiny_run, "avconfusebench", "m2").to_pylist()
    assert {r["snr_db"] for r in m2} == {None, 5.0}
    assert {r["sound_type"] for r in m2} == {"wind", "bird", "rain", "drill", "thunder"}
    for r in m2:
        assert r["answer"].startswith("Based on the video") and "Based on the audio" in r["answer"]


def test_official_exports(tiny_run):
    root = tiny_run / "results" / "bench" / "official"
    mvit = json.loads((root / "AVTrustBench/MVIT/avqa/instruct_test_MVIT.json").read_text())
    assert all("#" in rec["video"] for rec in mvit)
    assert (root / "AVTrustBench/COT-Swap/instruct_test_COT_Swap.json").is_file()
    m1 = json.loads((root / "AVConfuseBench/avconfusebench_test_m1.json").read_text())
    assert set(m1[0]) == {"video_id", "question", "answer", "instruments", "instruments_len"}
    assert m1[0]["instruments_len"] in ("two", "three")
    m2 = json.loads((root / "AVConfuseBench/avconfusebench_test_m2.json").read_text())
    assert set(m2[0]) == {"video_id", "filename", "question", "sound_type", "annotation"}


def test_hugging_face_folder_loads(tiny_run):
    import pyarrow.parquet as pq
    from datasets import load_dataset

    folder = tiny_run / "results" / "bench" / "hf"
    split = pq.read_table(tiny_run / "results" / "score" / "split.parquet").to_pylist()
    for task in ("MCIT", "m2"):
        bench = "avtrustbench" if task == "MCIT" else "avconfusebench"
        splits = load_dataset(str(folder), task)
        test = splits["test"]
        # the workflow's split: the samples trained on are not in `test`; AV-ConfuseBench,
        # which nothing trains on, has a test split only
        assert set(test["id"]) == {
            r["id"] for r in split if r["task"] == task and r["split"] == "test"
        }
        train_rows = splits["train"].num_rows if "train" in splits else 0
        assert set(splits) == ({"train", "test"} if task == "MCIT" else {"test"})
        assert test.num_rows + train_rows == read(tiny_run, bench, task).num_rows
        assert "question" in test.column_names
        assert (folder / test[0]["media_path"]).resolve().is_file()
    assert "configs:" in (tiny_run / "results" / "bench" / "hf" / "README.md").read_text()


def test_lmms_eval_tasks_point_at_the_hugging_face_folder(tiny_run):
    """Every task has its lmms-eval YAML reading the build's Hugging Face folder, and the
    copied task functions score a reply as the workflow does (lmms-eval itself runs the
    tasks in tests/lmms_eval/)."""
    import importlib.util

    import yaml

    from avtrust.bench.lmms_eval import task_name

    folder = tiny_run / "results" / "bench" / "lmms_eval"
    for bench, task in ALL_TASKS:
        text = (folder / f"{task_name(bench, task)}.yaml").read_text()
        config = yaml.load(text.replace("!function", ""), Loader=yaml.SafeLoader)
        assert config["dataset_path"] == str((tiny_run / "results" / "bench" / "hf").resolve())
        assert config["dataset_name"] == task and config["test_split"] == "test"
    spec = importlib.util.spec_from_file_location("lmms_utils", folder / "utils.py")
    utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(utils)
    hf = tiny_run / "results" / "bench" / "hf"
    doc = pq.read_table(hf / "data" / "ICIT" / "test.parquet").to_pylist()[0]
    assert utils.doc_to_text(doc) == prompt_for(doc["question"], doc["options"])
    built = read(tiny_run, "avtrustbench", "ICIT").to_pylist()
    clip = next(r["media_path"] for r in built if r["id"] == doc["id"])
    assert utils.doc_to_visual(doc) == [str(tiny_run / clip)]
    abstain = utils.process_results(doc, ["None of the options are relevant."])
    assert abstain["accuracy"] == 100.0 * (doc["answer"] == ABSTENTION["ICIT"])


def test_every_job_wrote_its_log(tiny_run):
    logs = sorted(
        p.relative_to(tiny_run / "logs").as_posix() for p in (tiny_run / "logs").rglob("*.log")
    )
    assert len([p for p in logs if p.startswith("manipulate/")]) == 22
    assert "index/avqa.log" in logs and "export/hf.log" in logs
    assert "clips indexed" in (tiny_run / "logs" / "index" / "avqa.log").read_text()


def test_rerun_has_nothing_to_do(tiny_run):
    proc = run_snakemake(tiny_run, "-n")
    assert "Nothing to be done" in proc.stdout


def test_rebuild_from_scratch_is_byte_identical(tiny_run, tmp_path):
    """Benchmark files, models, scores, checkpoints, predictions, metrics, tables and
    plots: the same bytes (only wall-clock fields left out, see result_digests)."""
    run_snakemake(tmp_path, "--cores", "2")
    first, second = result_digests(tiny_run), result_digests(tmp_path)
    assert len(first) > 100
    assert {"results/tables/avtrustbench.csv", "results/plots/task_accuracy.png"} <= set(first)
    assert any(name.startswith("results/checkpoints/cavpref/model/") for name in first)
    assert sorted(first) == sorted(second)
    assert [name for name in first if first[name] != second[name]] == []
