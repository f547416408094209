"""A task asking for more samples than its source has distinct candidates: capped (each
candidate planned once, said so) or stopped with the task, the request and the supply
(benchmark.on_short_supply). Built on the scale benchmark's input (bench/plan_scale.py)."""

from __future__ import annotations

import copy
import tracemalloc

import pytest
from test_plan_scale import _load_bench_module

from avtrust.bench.plan import plan_with_supply, short_supply_note, task_settings
from avtrust.errors import ConfigError

ROWS = 300
HUGE = 10**9
# What one sample is built from, per task: a (clip, question) pair, a (clip, question,
# partner clip) or (clip, partner clip) pairing, or a clip.
QUESTION_TASKS = {"MCIT", "ICIT", "MAT", "MVT"}
PAIR_TASKS = {"MVIT", "MAIT", "COT-Stitch", "COT-Swap"}


@pytest.fixture(scope="module")
def inp(tmp_path_factory):
    return _load_bench_module().build_inputs(tmp_path_factory.mktemp("short"), ROWS)


def settings(inp, bench, task, samples, policy=None):
    config = copy.deepcopy(inp.config)
    config["benchmark"][bench][task]["samples"] = samples
    if policy:
        config["benchmark"]["on_short_supply"] = policy
    return task_settings(bench, task, config)


def plan(inp, bench, task, samples, policy=None):
    return plan_with_supply(
        bench, task, settings(inp, bench, task, samples, policy), inp.manifests, inp.raw_dirs
    )


def candidate(task: str, row: dict) -> tuple:
    first = row["source_ids"][0]
    if task in PAIR_TASKS:
        return (*row["source_ids"], row["question"])
    return (first, row["question"]) if task in QUESTION_TASKS else (first,)


@pytest.mark.parametrize("key", list(_load_bench_module().split_rows(ROWS)), ids="/".join)
def test_a_huge_request_is_capped_at_the_distinct_candidates(inp, key):
    bench, task = key
    tracemalloc.start()
    try:
        table, supply = plan(inp, bench, task, HUGE)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    rows = table.to_pylist()
    assert supply["requested"] == HUGE and supply["capped"]
    assert supply["planned"] == len(rows) <= supply["supply"]
    # every candidate at most once: no repeated sample
    assert len({candidate(task, r) for r in rows}) == len(rows)
    assert len({r["id"] for r in rows}) == len(rows)
    assert peak < 200 * 2**20, f"planning held {peak / 2**20:.0f} MiB"
    note = short_supply_note(supply)
    assert f"{bench}/{task}: {HUGE} samples requested" in note
    assert f"gives {supply['supply']} distinct candidates" in note


def test_capped_plan_takes_every_candidate_once(inp):
    """Clip-based tasks without skips plan exactly their supply (m1: every scene)."""
    table, supply = plan(inp, "avconfusebench", "m1", HUGE)
    assert supply["planned"] == supply["supply"] == table.num_rows > 0
    scenes = [r["source_ids"][0] for r in table.to_pylist()]
    assert len(set(scenes)) == len(scenes)


def test_pairing_tasks_pair_a_clip_again_with_new_partners_only(inp):
    """Beyond one sample per question, MVIT pairs questions with partners they have not
    had: more samples than questions, never the same pair twice."""
    questions = len(plan(inp, "avtrustbench", "MCIT", HUGE)[0])
    table, supply = plan(inp, "avtrustbench", "MVIT", 3 * questions)
    rows = table.to_pylist()
    assert len(rows) == 3 * questions and not supply["capped"]
    assert supply["supply"] > 3 * questions
    pairs = [(r["source_ids"][0], r["question"], r["source_ids"][1]) for r in rows]
    assert len(set(pairs)) == len(pairs)


def test_a_request_within_the_supply_is_planned_as_asked(inp):
    _, full = plan(inp, "avtrustbench", "MAT", HUGE)
    asked = full["supply"] - 1
    table, supply = plan(inp, "avtrustbench", "MAT", asked, policy="fail")
    assert table.num_rows == asked and not supply["capped"]
    assert short_supply_note(supply) is None


def test_fail_names_the_task_the_request_and_the_supply(inp):
    _, full = plan(inp, "avtrustbench", "MAT", HUGE)
    with pytest.raises(ConfigError) as info:
        plan(inp, "avtrustbench", "MAT", full["supply"] + 1, policy="fail")
    message = str(info.value)
    assert f"avtrustbench/MAT: {full['supply'] + 1} samples requested" in message
    assert f"dataset 'music_avqa' gives only {full['supply']} distinct candidates" in message
    assert "benchmark.on_short_supply: cap" in message


def test_a_whole_count_written_as_a_float_plans(inp):
    table, supply = plan(inp, "avtrustbench", "CAT", 5.0)
    assert table.num_rows == 5 and supply["requested"] == 5
