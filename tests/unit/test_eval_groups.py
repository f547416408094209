"""Which (benchmark, task) pairs one evaluation job answers (evaluation.group_tasks)."""

from __future__ import annotations

import pytest

from avtrust.evaluate.groups import evaluation_groups, group_of, shard_file

TASKS = {"avtrustbench": ["MAT", "MVT"], "avconfusebench": ["m1", "m2"], "qa": []}


def test_model_grouping_answers_every_task_of_the_models_benchmarks_in_one_job():
    groups = evaluation_groups(TASKS, ["avconfusebench", "avtrustbench"], "model")
    # the benchmarks in the run's order, not the model entry's
    assert groups == {
        "all": [("avtrustbench", "MAT"), ("avtrustbench", "MVT"), ("avconfusebench", "m1"),
                ("avconfusebench", "m2")]
    }  # fmt: skip
    only = evaluation_groups(TASKS, ["avconfusebench"], "model")
    assert only == {"all": [("avconfusebench", "m1"), ("avconfusebench", "m2")]}
    assert evaluation_groups(TASKS, ["qa"], "model") == {}  # nothing to answer: no job


def test_benchmark_and_task_groupings():
    by_bench = evaluation_groups(TASKS, ["avtrustbench", "avconfusebench", "qa"], "benchmark")
    assert by_bench == {
        "avtrustbench": [("avtrustbench", "MAT"), ("avtrustbench", "MVT")],
        "avconfusebench": [("avconfusebench", "m1"), ("avconfusebench", "m2")],
    }
    by_task = evaluation_groups(TASKS, ["avtrustbench"], "task")
    assert by_task == {"avtrustbench/MAT": [("avtrustbench", "MAT")],
                       "avtrustbench/MVT": [("avtrustbench", "MVT")]}  # fmt: skip
    assert group_of(by_bench, "avconfusebench", "m2") == "avconfusebench"
    assert group_of(by_task, "avtrustbench", "MVT") == "avtrustbench/MVT"
    with pytest.raises(KeyError, match="avconfusebench/m1"):
        group_of(by_task, "avconfusebench", "m1")


def test_unknown_grouping_is_a_clear_error():
    message = "group_tasks: 'bench' is not one of model, benchmark, task"
    with pytest.raises(ValueError, match=message):
        evaluation_groups(TASKS, ["avtrustbench"], "bench")


def test_a_shard_folder_keeps_each_benchmark_apart(tmp_path):
    assert shard_file(tmp_path, "qa", "AVQA") == tmp_path / "qa" / "AVQA.parquet"
