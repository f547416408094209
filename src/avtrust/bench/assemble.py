"""Assembling a task's benchmark table from its plan and the shards' results."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from avtrust.bench.samples import SAMPLE_SCHEMA

REJECTS_SCHEMA = pa.schema(
    [("id", pa.string()), ("media_path", pa.string()), ("error", pa.string())]
)


def assemble(plan_path: str, shard_paths: list[str]) -> tuple[pa.Table, pa.Table]:
    """(samples, rejects): plan rows whose media was produced, in plan order.

    Every plan row must be accounted for by exactly one shard result; anything else
    means the shards came from a different plan, which is an error, not a reject.
    """
    plan = pq.read_table(plan_path).to_pylist()
    results = {}
    for path in shard_paths:
        for r in pq.read_table(path).to_pylist():
            if r["id"] in results:
                raise ValueError(f"sample {r['id']} appears in more than one shard ({path})")
            results[r["id"]] = r
    planned = {row["id"] for row in plan}
    if planned != set(results):
        stray = sorted(set(results) ^ planned)[:5]
        raise ValueError(f"shard results do not match the plan {plan_path}: e.g. {stray}")
    samples, rejects = [], []
    for row in plan:
        r = results[row["id"]]
        if not r["ok"]:
            rejects.append({"id": row["id"], "media_path": r["media_path"], "error": r["error"]})
            continue
        row = {name: row[name] for name in SAMPLE_SCHEMA.names}
        row["has_audio"], row["has_video"] = r["has_audio"], r["has_video"]
        samples.append(row)
    return (
        pa.Table.from_pylist(samples, schema=SAMPLE_SCHEMA),
        pa.Table.from_pylist(rejects, schema=REJECTS_SCHEMA),
    )
