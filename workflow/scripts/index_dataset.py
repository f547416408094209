"""Probe a raw dataset into a manifest and a rejects table (rule index_dataset)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

from avtrust.datasets.index import index_dataset
from avtrust.io import write_parquet_atomic
from avtrust.logs import rule_logging

with rule_logging(snakemake) as log:
    manifest, rejects = index_dataset(
        snakemake.wildcards.dataset,
        snakemake.params.fmt,
        snakemake.input.raw,
        decode_check=snakemake.params.decode_check,
        workers=snakemake.threads,
    )
    for row in rejects.to_pylist():
        log.warning("rejected %s: %s", row["path"] or row["clip_id"], row["reason"])
    log.info("%d clips indexed, %d rejected", manifest.num_rows, rejects.num_rows)
    write_parquet_atomic(snakemake.output.rejects, rejects)
    write_parquet_atomic(snakemake.output.manifest, manifest)
