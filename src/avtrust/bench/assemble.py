"""Assembling a task's benchmark table from its plan and the shards' results."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from avtrust.bench.samples import CHECK_FIELDS, CHECK_NAMES, SAMPLE_SCHEMA

# A reject's error says why (the failed manipulation, or the broken promise of the audio
# check); the measured columns hold what the check found, null if it never ran.
REJECTS_SCHEMA = pa.schema(
    [("id", pa.string()), ("media_path", pa.string()), ("error", pa.string()), *CHECK_FIELDS]
)


def assemble(plan_path: str, shard_paths: list[str]) -> tuple[pa.Table, pa.Table]:
    """(samples, rejects): plan rows whose media was produced and passed its audio
    check, with the measured values, in plan order; the others with their reason.

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
            measured = {name: r.get(name) for name in CHECK_NAMES}
            rejects.append(
                {"id": row["id"], "media_path": r["media_path"], "error": r["error"], **measured}
            )
            continue
        row = {name: row.get(name) for name in SAMPLE_SCHEMA.names}
        row["has_audio"], row["has_video"] = r["has_audio"], r["has_video"]
        # Shards written before the audio checks existed carry no measured columns.
        row.update({name: r.get(name) for name in CHECK_NAMES})
        samples.append(row)
    return (
        pa.Table.from_pylist(samples, schema=SAMPLE_SCHEMA),
        pa.Table.from_pylist(rejects, schema=REJECTS_SCHEMA),
    )
