"""Run the manipulations of one shard of a task's plan (rule manipulate_shard)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

from avtrust.bench.shards import run_shard
from avtrust.io import write_parquet_atomic
from avtrust.logs import rule_logging

with rule_logging(snakemake) as log:
    results = run_shard(
        snakemake.input.plan,
        int(snakemake.wildcards.shard),
        snakemake.params.shards,
        snakemake.params.media,
        workers=snakemake.threads,
    )
    for row in results.to_pylist():
        if not row["ok"]:
            log.warning("sample %s failed: %s", row["id"], row["error"])
    log.info(
        "%d samples, %d failed", results.num_rows, results.num_rows - sum(results["ok"].to_pylist())
    )
    write_parquet_atomic(snakemake.output.results, results)
