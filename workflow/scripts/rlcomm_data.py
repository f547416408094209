"""RL-CoMM training table and warm-up SFT set from the reference shards (rule rlcomm_data)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

import pyarrow as pa
import pyarrow.parquet as pq

from avtrust.io import write_parquet_atomic
from avtrust.logs import rule_logging
from avtrust.scoring.reasoning import warmup_set

with rule_logging(snakemake) as log:
    reference = pa.concat_tables(pq.read_table(p) for p in snakemake.input.shards)
    reference = reference.sort_by([("bench", "ascending"), ("id", "ascending")])
    warmup = warmup_set(reference, snakemake.params.warmup_samples, snakemake.params.seed)
    log.info("%d training samples, %d warm-up examples", reference.num_rows, warmup.num_rows)
    write_parquet_atomic(snakemake.output.reference, reference)
    write_parquet_atomic(snakemake.output.warmup, warmup)
