"""SIGKILL each stage mid-way, resume as a user would, and compare with an uninterrupted run.

Each case copies the uninterrupted tiny build (``tiny_run``), forces the stage's rules to
run again for all of the stage's outputs (the targets are the stage's own outputs: the
rerun must redo exactly the killed jobs) (``--forcerun``: Snakemake deletes each output just
before its job starts), and kills the whole process group (snakemake, job scripts, ffmpeg)
as soon as the stage has started writing: a new log of the stage, a new file in its output
folder, or the hidden scratch folder of a model. Then:

- every file under the stage's folders that has its final name at the moment of the kill is
  byte-identical to the reference (writers are atomic: a later stage can only ever see a
  complete file), except inside a ``directory()`` output whose job was killed, which
  Snakemake must then refuse to use (it asks for ``--rerun-incomplete``);
- the rerun (``--unlock`` for the stale lock, ``--rerun-incomplete`` when asked) gives
  byte-identical files (wall-clock fields aside, see ``result_digests``), with no scratch
  file left anywhere under results/ or resources/; training jobs, killed once they saved a
  resume checkpoint, must say in their logs that they resumed from it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from reliability_harness import SCRATCH, digests, kill_when, newer_than, resume

pytestmark = pytest.mark.workflow


def _files(ref: Path, pattern: str) -> list[str]:
    return sorted(p.relative_to(ref).as_posix() for p in ref.glob(pattern))


def _new_log(folder: str) -> Callable[[Path, float], bool]:
    return lambda work, t0: bool(newer_than(work / "logs" / folder, t0, ".log"))


def _new_file(folder: str) -> Callable[[Path, float], bool]:
    return lambda work, t0: any(p.is_file() for p in newer_than(work / folder, t0))


def _new_scratch(folder: str) -> Callable[[Path, float], bool]:
    return lambda work, t0: any(SCRATCH.match(p.name) for p in newer_than(work / folder, t0))


def _checkpoint_written(work: Path, t0: float) -> bool:
    """A training job has saved a complete resume checkpoint (its trainer_state.json is
    the Trainer's last write), so the rerun has something to resume from."""
    return any(p.name == "trainer_state.json" for p in newer_than(work / TRAIN_STATE, t0))


def _results_db_written(work: Path, t0: float) -> bool:
    """The DuckDB ingest of results_db has started writing (database or its WAL)."""
    return bool(newer_than(work / "results/cache", t0))


@dataclass(frozen=True)
class Stage:
    name: str
    rules: tuple[str, ...]
    targets: Callable[[Path], list[str]]  # from the reference build
    folders: tuple[str, ...]  # compared byte for byte after the rerun
    started: Callable[[Path, float], bool]  # kill as soon as this holds
    directory_outputs: bool = False  # outputs are directory(): partial ones are flagged
    resumed_logs: str | None = None  # glob of job logs, one of which must say it resumed


BENCH = "results/bench"
TRAIN_STATE = "results/train_state"
TRAINED = ("sft", "dpo", "cavpref")  # tiny.yaml's training.methods
EVALUATED = ("avtrustbench", "avconfusebench", "qa")  # a merge rule each (tiny.yaml's)
RLCOMM = ("rlcomm_warmup", "rlcomm_steprr", "rlcomm_ansco", "grpo_acc")
STAGES = [
    Stage(
        "fetch",
        ("fetch_synthetic",),
        lambda ref: _files(ref, "resources/raw/*"),
        ("resources/raw",),
        _new_file("resources/raw"),
        directory_outputs=True,
    ),
    Stage(
        "index",
        ("index_dataset",),
        lambda ref: _files(ref, "results/manifest/*.parquet"),
        ("results/manifest",),
        _new_log("index"),
    ),
    Stage(
        "plan",
        ("plan_task",),
        lambda ref: _files(ref, "results/plan/*/*.parquet"),
        ("results/plan",),
        _new_log("plan"),
    ),
    Stage(
        "manipulate",
        ("manipulate_shard",),
        lambda ref: _files(ref, "results/media/*/*/shards/*.parquet"),
        ("results/media",),
        _new_file("results/media"),
    ),
    Stage(
        "build_questions",
        ("build_questions",),
        lambda ref: (
            _files(ref, f"{BENCH}/avtrustbench/*.parquet")
            + _files(ref, f"{BENCH}/avconfusebench/*.parquet")
        ),
        (f"{BENCH}/avtrustbench", f"{BENCH}/avconfusebench"),
        _new_log("build_questions"),
    ),
    Stage(
        "export",
        ("export_official", "export_hf"),
        lambda ref: _files(ref, f"{BENCH}/official/**/*.json") + [f"{BENCH}/hf/README.md"],
        (f"{BENCH}/official", f"{BENCH}/hf"),
        _new_log("export"),
    ),
    Stage(
        "models",
        ("prepare_model",),
        lambda ref: _files(ref, "resources/models/*"),
        ("resources/models",),
        _new_scratch("resources/models"),
    ),
    Stage(  # killed while the counterfactual V'/A' media are being written
        "score_media",
        ("counterfactual_media",),
        lambda ref: _files(ref, "results/score/counterfactual/*.parquet"),
        ("results/score/counterfactual", "results/score/media"),
        _new_file("results/score/media"),
    ),
    Stage(  # killed while the models score pairs and write reference reasoning
        "score_models",
        ("score_pairs", "reference_reasoning"),
        lambda ref: _files(ref, "results/score/*/shards/*.parquet"),
        ("results/score/cavpref/shards", "results/score/rlcomm/shards"),
        lambda work, t0: _new_log("score/pairs")(work, t0) or _new_log("score/reference")(work, t0),
    ),
    Stage(
        "score_tables",
        ("split_samples", "cavpref_pairs", "rlcomm_data"),
        lambda ref: (
            ["results/score/split.parquet"]
            + _files(ref, "results/score/cavpref/*.parquet")
            + _files(ref, "results/score/rlcomm/*.parquet")
        ),
        ("results/score",),
        lambda work, t0: any(p.parent.name == "score" for p in newer_than(work / "logs/score", t0)),
    ),
    # Training: killed once a job has saved a resume checkpoint; the rerun continues from
    # results/train_state/ (not an output, so Snakemake's cleanup of the killed job keeps it).
    Stage(
        "train",
        ("train",),
        lambda ref: [f"results/checkpoints/{m}/metrics.json" for m in TRAINED],
        tuple(f"results/checkpoints/{m}" for m in TRAINED),
        _checkpoint_written,
        directory_outputs=True,
        resumed_logs="logs/train/*.log",
    ),
    Stage(
        "rlcomm",
        ("rlcomm_train",),
        lambda ref: [f"results/checkpoints/{m}/metrics.json" for m in RLCOMM],
        tuple(f"results/checkpoints/{m}" for m in RLCOMM),
        _checkpoint_written,
        directory_outputs=True,
        resumed_logs="logs/train/*.log",
    ),
    Stage(  # QA sets, then every model x task shard; killed once the first has started
        "evaluate",
        ("qa_set", "evaluate_shard", *(f"merge_predictions_{b}" for b in EVALUATED)),
        lambda ref: (
            _files(ref, "results/qa/*.parquet")
            + _files(ref, "results/predictions/*/*/*.shards/*")  # a folder per shard
            + _files(ref, "results/predictions/*/*/*.parquet")
        ),
        ("results/qa", "results/predictions"),
        lambda work, t0: bool(newer_than(work / "logs/evaluate", t0, ".0.log")),  # shard 0
        directory_outputs=True,
    ),
    Stage(
        "judge",
        ("judge_m2",),
        lambda ref: _files(ref, "results/judge/*/m2.parquet"),
        ("results/judge",),
        lambda work, t0: bool(newer_than(work / "logs/evaluate", t0, "judge_m2.log")),
    ),
    Stage(  # metrics, then killed while the DuckDB database is being written
        "aggregate",
        ("model_metrics", "results_db", "tables", "plots"),
        lambda ref: (
            _files(ref, "results/metrics/*")
            + ["results/results.duckdb"]
            + _files(ref, "results/tables/*")
            + _files(ref, "results/plots/*")
        ),
        ("results/metrics", "results/tables", "results/plots"),
        _results_db_written,
    ),
]


def _scratch_files(workdir: Path) -> list[str]:
    return sorted(
        p.relative_to(workdir).as_posix()
        for folder in ("results", "resources")
        for p in (workdir / folder).rglob("*")
        if SCRATCH.match(p.name)
    )


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.name)
def test_killed_stage_resumes_to_identical_outputs(tiny_run, tmp_path, stage):
    work = tmp_path / "work"
    shutil.copytree(tiny_run, work, symlinks=True)  # copy2: modification times kept
    targets = stage.targets(tiny_run)
    assert targets, f"the reference build has no outputs for {stage.name}"
    reference = digests(tiny_run, list(stage.folders))

    status = kill_when(
        work, ["--forcerun", *stage.rules, "--", *targets], lambda t0: stage.started(work, t0)
    )
    assert status == -9, f"{stage.name}: the run ended (exit {status}) before it was killed"

    # What a later stage could read right after the kill: complete files only.
    at_kill = digests(work, list(stage.folders))
    torn = sorted(
        path
        for path, digest in at_kill.items()
        # a killed job's scratch file or folder (and what is in that folder)
        if not any(SCRATCH.match(part) for part in Path(path).parts)
        and reference.get(path) != digest
    )
    if stage.directory_outputs:
        incomplete = sorted({"/".join(p.split("/")[:3]) for p in torn})
    else:
        assert torn == [], f"{stage.name}: files under their final name differ: {torn}"

    resumed = resume(work, targets)
    if stage.directory_outputs and incomplete:
        # A partly written directory() output is never taken as done.
        assert "--rerun-incomplete" in resumed.steps, (incomplete, resumed.output[-3000:])
    assert digests(work, list(stage.folders)) == reference
    assert _scratch_files(work) == []
    if stage.resumed_logs:
        logs = [p.read_text() for p in work.glob(stage.resumed_logs)]
        assert any(f"resume from {TRAIN_STATE}/" in text for text in logs), resumed.output[-3000:]
        assert not any((work / TRAIN_STATE).glob("*/checkpoint-*"))  # removed after success
