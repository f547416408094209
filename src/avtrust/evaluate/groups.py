"""Which tasks one evaluation job answers (``evaluation.group_tasks``).

An evaluation job loads its model once and answers a *group* of (benchmark, task)
pairs, one shard of each (``evaluation.shards``):

- ``model``: every task of every benchmark the model is evaluated on (group ``all``):
  the fewest jobs, each model loaded once per shard. On a small machine most of a job
  is starting Python and loading the model, not answering.
- ``benchmark``: each benchmark's tasks (group = the benchmark).
- ``task``: each task alone (group ``<bench>/<task>``): the most jobs in parallel on a
  cluster, and a task's decode cache can go once its jobs are done.

A job writes each pair's predictions to ``<shard folder>/<bench>/<task>.parquet``
(:func:`shard_file`); ``merge_predictions_<bench>`` joins each task's shards.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

GROUPINGS = ("model", "benchmark", "task")
ALL = "all"  # the group of a model's every task


def evaluation_groups(
    tasks: Mapping[str, Sequence[str]], benches: Iterable[str], grouping: str
) -> dict[str, list[tuple[str, str]]]:
    """{group name: [(bench, task), ...]} for a model evaluated on ``benches``, with
    ``tasks`` the evaluated tasks of each benchmark (in ``tasks``' order; a benchmark
    without tasks makes no group)."""
    if grouping not in GROUPINGS:
        raise ValueError(
            f"evaluation.group_tasks: {grouping!r} is not one of {', '.join(GROUPINGS)}"
        )
    wanted = set(benches)
    pairs = [(b, t) for b, ts in tasks.items() if b in wanted for t in ts]
    if grouping == "model":
        return {ALL: pairs} if pairs else {}
    if grouping == "benchmark":
        out: dict[str, list[tuple[str, str]]] = {}
        for bench, task in pairs:
            out.setdefault(bench, []).append((bench, task))
        return out
    return {f"{bench}/{task}": [(bench, task)] for bench, task in pairs}


def group_of(groups: Mapping[str, Sequence[tuple[str, str]]], bench: str, task: str) -> str:
    """The group of ``groups`` that answers (bench, task)."""
    for name, pairs in groups.items():
        if (bench, task) in pairs:
            return name
    raise KeyError(f"no evaluation group answers {bench}/{task}")


def shard_file(folder: str | os.PathLike, bench: str, task: str) -> Path:
    """Where an evaluation shard's folder holds one task's predictions."""
    return Path(folder) / bench / f"{task}.parquet"
