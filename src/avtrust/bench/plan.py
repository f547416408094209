"""Planning a task: from manifests and annotations to one row per sample, seeded.

The plan fixes every random choice (which clips, which pairings, option order), so
the manipulation shards only execute it and the rebuilt benchmark is identical for
the same config and seed.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from avtrust.bench import avconfusebench, avtrustbench
from avtrust.bench.samples import PLAN_SCHEMA, TaskContext, derive_seed, wording
from avtrust.datasets.adapters import read_questions

BUILDERS = {"avtrustbench": avtrustbench.BUILDERS, "avconfusebench": avconfusebench.BUILDERS}


def read_manifest(path: str) -> pd.DataFrame:
    frame = pq.read_table(path).to_pandas()
    frame["labels"] = frame["labels"].map(list)
    frame["stems"] = frame["stems"].map(list)
    return frame.set_index("clip_id", drop=False)


def plan_task(
    bench: str, task: str, config: dict, manifests: dict[str, str], raw_dirs: dict[str, str]
) -> pa.Table:
    """Plan ``task``; ``manifests``/``raw_dirs`` map dataset names to their files."""
    task_cfg = config["benchmark"][bench][task]
    dataset = task_cfg["dataset"]
    fmt = config["datasets"][dataset]["format"]
    ctx = TaskContext(
        bench=bench,
        task=task,
        samples=task_cfg["samples"],
        seed=derive_seed(config["seed"], bench, task),
        clips=read_manifest(manifests[dataset]),
        dataset=dataset,
        wording=wording(config["benchmark"].get("wording")),
        params=task_cfg,
    )
    if fmt in ("music_avqa", "avqa"):
        ctx.questions = read_questions(fmt, raw_dirs[dataset])
    if "sounds" in task_cfg:
        ctx.sounds = read_manifest(manifests[task_cfg["sounds"]])
    rows = BUILDERS[bench][task](ctx)
    return pa.Table.from_pylist(rows, schema=PLAN_SCHEMA)
