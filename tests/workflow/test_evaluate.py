"""The evaluate and aggregate stages in the tiny end-to-end build."""

from __future__ import annotations

import csv
import shutil

import duckdb
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import TIMING_COLUMNS, TINY, planned_jobs, run_snakemake, write_config

from avtrust.evaluate.samples import QA_TASKS
from avtrust.results.breakdown_plots import PLOTS as BREAKDOWN_PLOTS
from avtrust.results.breakdowns import BREAKDOWNS
from avtrust.results.views import VIEWS
from avtrust.scoring.split import split_of

pytestmark = pytest.mark.workflow

CONFIG = yaml.safe_load(TINY.read_text())
EVAL = CONFIG["evaluation"]
TASKS = [(b, t) for b, ts in EVAL["tasks"].items() for t in ts]


def test_predictions_cover_the_test_split_in_both_modes(tiny_run):
    for bench, task in TASKS:
        samples = pq.read_table(tiny_run / f"results/bench/{bench}/{task}.parquet").to_pylist()
        test = {
            r["id"]
            for r in samples
            if split_of(CONFIG["seed"], bench, r["id"], CONFIG["scoring"]["train_fraction"])
            == "test"
        }
        preds = pq.read_table(tiny_run / f"results/predictions/omni/{bench}/{task}.parquet")
        rows = preds.to_pylist()
        modes = {"generate"} if task == "m2" else {"generate", "loglik"}
        assert {(r["id"], r["mode"]) for r in rows} == {(i, m) for i in test for m in modes}
        for r in rows:
            assert r["raw"] is not None and r["seconds"] >= 0
            if r["mode"] == "loglik":  # the argmax option, from one log-prob per option
                lps = r["option_logprobs"]
                assert r["status"] == "ok" and len(lps) >= 2
                assert lps[r["parsed_index"]] == max(lps)
    qa = pq.read_table(tiny_run / "results/qa/music_avqa.parquet")
    assert qa.num_rows == EVAL["qa_sets"]["music_avqa"]["samples"]


def test_tasks_evaluated_together_predict_as_each_alone(tiny_run, tmp_path):
    """evaluation.group_tasks: model: one job loads the model once and answers every
    task of every benchmark (closed and open ones, a QA set), with the predictions the
    tiny run's one-job-per-task evaluation made; a merge job per benchmark then writes
    each task's file."""
    work = tmp_path / "run"
    shutil.copytree(tiny_run, work, symlinks=True, ignore=shutil.ignore_patterns("logs"))
    config = write_config(
        tmp_path / "grouped.yaml", lambda c: c["evaluation"].update(group_tasks="model")
    )
    tasks = [("avconfusebench", "m1"), ("avconfusebench", "m2"), ("qa", "MUSIC-AVQA")]
    targets = [f"results/predictions/rlcomm/{b}/{t}.parquet" for b, t in tasks]
    plan = planned_jobs(run_snakemake(work, "-n", *targets, config=config))
    merges = {"merge_predictions_avconfusebench": 1, "merge_predictions_qa": 1}
    assert plan == {"evaluate_shard": 1, **merges}
    run_snakemake(work, "--cores", "1", *targets, config=config)
    shard = work / "results/predictions/rlcomm/all.shards/0"
    # every task of the model's benchmarks (not AVTrustBench's), in bench folders
    written = sorted(str(p.relative_to(shard)) for p in shard.rglob("*.parquet"))
    qa = [f"qa/{QA_TASKS[name]}.parquet" for name in EVAL["qa_sets"]]
    assert written == sorted(["avconfusebench/m1.parquet", "avconfusebench/m2.parquet", *qa])

    def rows(run, target):
        table = pq.read_table(run / target)
        timing = [c for c in TIMING_COLUMNS if c in table.schema.names]
        return table.drop_columns(timing).to_pylist()

    for target in targets:
        assert rows(work, target) == rows(tiny_run, target) != []


def test_database_tables_and_metrics_agree_with_predictions(tiny_run):
    con = duckdb.connect(str(tiny_run / "results/results.duckdb"), read_only=True)
    try:
        counts = dict(
            con.execute(
                "SELECT task, count(*) FROM predictions WHERE mode = 'generate' GROUP BY task"
            ).fetchall()
        )
        assert set(counts) == {t for _, t in TASKS} | {"MUSIC-AVQA", "AVQA"}
        recomputed = con.execute(
            "SELECT 100.0 * avg(CASE WHEN correct THEN 1 ELSE 0 END) FROM predictions "
            "WHERE task = 'MAT' AND mode = 'generate'"
        ).fetchone()[0]
        stored = con.execute("SELECT \"MAT\" FROM avtrustbench WHERE mode = 'generate'").fetchone()
        assert stored[0] == pytest.approx(recomputed)
        runs = con.execute(
            "SELECT model, kind, base_model, config_hash, seed FROM runs ORDER BY model"
        ).fetchall()
        # each evaluation's own identity (its settings, a checkpoint's training run),
        # not the whole config: editing one model's entry leaves the others' records
        hashes = [r[3] for r in runs]
        assert all(len(h) == 64 for h in hashes) and len(set(hashes)) == 3
        assert [r[:3] + r[4:] for r in runs] == [
            ("cavpref", "checkpoint", "omni", CONFIG["seed"]),
            ("omni", "zero-shot", "omni", CONFIG["seed"]),
            ("rlcomm", "checkpoint", "omni", CONFIG["seed"]),
        ]
        # each model was evaluated on the benchmarks its config entry names
        benches = con.execute("SELECT DISTINCT model, bench FROM predictions ORDER BY ALL")
        assert benches.fetchall() == [
            ("cavpref", "avtrustbench"),
            ("omni", "avconfusebench"),
            ("omni", "avtrustbench"),
            ("omni", "qa"),
            ("rlcomm", "avconfusebench"),
            ("rlcomm", "qa"),
        ]
        # the tiny judge writes random text: every judgement is a recorded failure
        failed = con.execute(
            "SELECT count(*), count(error) FROM judgements WHERE model = 'omni'"
        ).fetchone()
        assert failed[0] > 0
    finally:
        con.close()


def test_tables_and_plots_are_written(tiny_run):
    for view in VIEWS:
        for ext in ("md", "tex", "csv"):
            assert (tiny_run / f"results/tables/{view}.{ext}").stat().st_size > 0
    rows = list(csv.reader((tiny_run / "results/tables/avtrustbench.csv").open()))
    assert rows[0][:3] == ["model", "mode", "MCIT"]
    assert [r[:2] for r in rows[1:] if r[1] != "paper"] == [
        [model, mode] for model in ("cavpref", "omni") for mode in ("generate", "loglik")
    ]
    rlcomm = list(csv.reader((tiny_run / "results/tables/rlcomm_main.csv").open()))
    assert sorted({r[0] for r in rlcomm[1:] if r[1] != "paper"}) == ["omni", "rlcomm"]
    assert any(r[1] == "paper" for r in rlcomm[1:])  # the paper's rows, beside ours
    for name in ("task_accuracy", "m1_yes_rate", "training_curves"):
        assert (tiny_run / f"results/plots/{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the breakdowns, from the samples' categories, instruments, sounds and SNRs
    for name in BREAKDOWNS:
        for ext in ("md", "tex", "csv"):
            assert (tiny_run / f"results/tables/{name}.{ext}").stat().st_size > 0
    for name in BREAKDOWN_PLOTS:
        assert (tiny_run / f"results/plots/{name}").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    by_task = list(csv.DictReader((tiny_run / "results/tables/breakdown_category.csv").open()))
    assert {"MUSIC-AVQA", "AVQA"} <= {r["task"] for r in by_task}
    assert all(r["Acc_n"] and r["Acc_lo"] for r in by_task)
    muted = list(csv.DictReader((tiny_run / "results/tables/breakdown_m1_muted.csv").open()))
    assert muted and all(r["muted instrument"] for r in muted)


def test_report(tiny_run, tmp_path):
    # written outside the shared tiny run, which other tests read (and copy) meanwhile
    run_snakemake(tiny_run, "--nolock", "--report", str(tmp_path / "report.html"))
    html = (tmp_path / "report.html").read_text(errors="replace")
    assert "task_accuracy.png" in html and "avtrustbench.csv" in html
