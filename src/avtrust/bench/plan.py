"""Planning a task: from manifests and annotations to one row per sample, seeded.

The plan fixes every random choice (which clips, which pairings, option order), so
the manipulation shards only execute it and the rebuilt benchmark is identical for
the same config and seed.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from avtrust.bench import avconfusebench, avtrustbench
from avtrust.bench.samples import PLAN_SCHEMA, TaskContext, derive_seed, task_wording
from avtrust.datasets.adapters import read_questions

BUILDERS = {"avtrustbench": avtrustbench.BUILDERS, "avconfusebench": avconfusebench.BUILDERS}
# Tasks whose builders read question annotations; the others need the manifest only.
USES_QUESTIONS = {
    "avtrustbench": avtrustbench.USES_QUESTIONS,
    "avconfusebench": avconfusebench.USES_QUESTIONS,
}


@contextmanager
def _cyclic_gc_paused():
    """Pause Python's cyclic garbage collector while a builder runs.

    A builder allocates ~10 objects per sample, all kept until the table is built, and
    no reference cycles, so the collector would only rescan them, over and over: a
    third of the planning time at 60,000 samples. Reference counting still frees
    everything; the previous state is restored afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def read_manifest(path: str) -> pd.DataFrame:
    frame = pq.read_table(path).to_pandas()
    frame["labels"] = frame["labels"].map(list)
    frame["stems"] = frame["stems"].map(list)
    return frame.set_index("clip_id", drop=False)


def task_datasets(task_cfg: dict) -> list[str]:
    """The datasets a task draws from: its clips, and its replacement sounds (m2)."""
    return [task_cfg[k] for k in ("dataset", "sounds") if k in task_cfg]


def task_settings(bench: str, task: str, config: dict) -> dict:
    """Exactly the configuration planning ``task`` reads (the rule's params): the task's
    section, the formats of its datasets, the seed and the abstention wordings it uses."""
    task_cfg = config["benchmark"][bench][task]
    return {
        "task": task_cfg,
        "formats": {n: config["datasets"][n]["format"] for n in task_datasets(task_cfg)},
        "seed": config["seed"],
        "wording": task_wording(task, config["benchmark"].get("wording")),
        "on_short_supply": config["benchmark"].get("on_short_supply", "cap"),
    }


def plan_task(
    bench: str, task: str, config: dict, manifests: dict[str, str], raw_dirs: dict[str, str]
) -> pa.Table:
    """Plan ``task`` of a whole config (see :func:`plan_from_settings`)."""
    return plan_from_settings(bench, task, task_settings(bench, task, config), manifests, raw_dirs)


def plan_from_settings(
    bench: str, task: str, settings: dict, manifests: dict[str, str], raw_dirs: dict[str, str]
) -> pa.Table:
    """Plan ``task`` from :func:`task_settings`; ``manifests``/``raw_dirs`` map dataset
    names to their files."""
    return plan_with_supply(bench, task, settings, manifests, raw_dirs)[0]


def supply_summary(ctx: TaskContext, planned: int) -> dict:
    """What a task asked for, what its source could give and what was planned."""
    capped = ctx.supply is not None and ctx.supply < ctx.samples
    return {
        "bench": ctx.bench,
        "task": ctx.task,
        "dataset": ctx.dataset,
        "requested": ctx.samples,
        "supply": ctx.supply,
        "planned": planned,
        "capped": capped,
        "on_short_supply": ctx.on_short_supply,
    }


def short_supply_note(summary: dict) -> str | None:
    """The log line of a capped task (None when the supply met the request)."""
    if not summary["capped"]:
        return None
    return (
        f"{summary['bench']}/{summary['task']}: {summary['requested']} samples requested, "
        f"dataset {summary['dataset']!r} gives {summary['supply']} distinct candidates: "
        f"each planned once, {summary['planned']} samples (benchmark.on_short_supply: cap)"
    )


def plan_with_supply(
    bench: str, task: str, settings: dict, manifests: dict[str, str], raw_dirs: dict[str, str]
) -> tuple[pa.Table, dict]:
    """:func:`plan_from_settings` and the task's :func:`supply_summary`."""
    task_cfg = settings["task"]
    dataset = task_cfg["dataset"]
    fmt = settings["formats"][dataset]
    ctx = TaskContext(
        bench=bench,
        task=task,
        # YAML may spell a count as a float (1.0e6); the schema has checked it is whole.
        samples=int(task_cfg["samples"]),
        seed=derive_seed(settings["seed"], bench, task),
        clips=read_manifest(manifests[dataset]),
        dataset=dataset,
        wording=settings["wording"],
        params=task_cfg,
        on_short_supply=settings.get("on_short_supply", "cap"),
    )
    if task in USES_QUESTIONS[bench] and fmt in ("music_avqa", "avqa"):
        ctx.questions = read_questions(fmt, raw_dirs[dataset])
    if "sounds" in task_cfg:
        ctx.sounds = read_manifest(manifests[task_cfg["sounds"]])
    with _cyclic_gc_paused():
        rows = BUILDERS[bench][task](ctx)
        table = pa.Table.from_pylist(rows, schema=PLAN_SCHEMA)
    return table, supply_summary(ctx, table.num_rows)
