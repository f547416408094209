"""Gather the CAVPref pair shards into one table, and the samples left out (rule cavpref_pairs)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from avtrust.io import write_parquet_atomic
from avtrust.logs import rule_logging

with rule_logging(snakemake) as log:
    pairs = pa.concat_tables(pq.read_table(p) for p in snakemake.input.shards)
    pairs = pairs.sort_by([("id", "ascending")])
    made = pa.concat_tables(pq.read_table(p) for p in snakemake.input.counterfactual)
    rejects = made.filter(pc.invert(made["ok"])).select(["id", "task", "media_path", "error"])
    rejects = rejects.sort_by([("id", "ascending")])
    log.info("%d pairs, %d training samples without V'/A'", pairs.num_rows, rejects.num_rows)
    write_parquet_atomic(snakemake.output.rejects, rejects)
    write_parquet_atomic(snakemake.output.pairs, pairs)
