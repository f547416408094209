"""V' and A' of one shard of the CAVPref training samples (rule counterfactual_media)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

from pathlib import Path

from avtrust.io import write_parquet_atomic
from avtrust.logs import rule_logging
from avtrust.scoring.counterfactual import run_counterfactual_shard
from avtrust.scoring.tables import manifest_records, training_rows
from avtrust.sharding import shard_rows

with rule_logging(snakemake) as log:
    shard, shards = int(snakemake.wildcards.shard), snakemake.params.shards
    rows = shard_rows(training_rows(snakemake.input.samples, snakemake.input.split), shard, shards)
    # results/manifest/<dataset>.parquet
    manifests = {Path(p).stem: manifest_records(p) for p in snakemake.input.manifests}
    results = run_counterfactual_shard(
        rows,
        manifests,
        seed=snakemake.params.seed,
        media_root=snakemake.params.media_root,
        workers=snakemake.threads,
    )
    for row in results.to_pylist():
        if not row["ok"]:
            log.warning("sample %s: %s", row["id"], row["error"])
    ok = sum(results["ok"].to_pylist())
    log.info("%d training samples, %d with V'/A', %d failed", len(rows), ok, len(rows) - ok)
    write_parquet_atomic(snakemake.output.results, results)
