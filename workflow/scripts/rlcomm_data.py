"""RL-CoMM training table and warm-up SFT set from the reference shards (rule rlcomm_data)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

import pyarrow.parquet as pq

from avtrust.io import write_parquet_atomic
from avtrust.logs import rule_logging
from avtrust.scoring.reasoning import rlcomm_tables

with rule_logging(snakemake) as log:
    reference, warmup = rlcomm_tables([pq.read_table(p) for p in snakemake.input.shards])
    log.info("%d RL training samples, %d warm-up examples", reference.num_rows, warmup.num_rows)
    write_parquet_atomic(snakemake.output.reference, reference)
    write_parquet_atomic(snakemake.output.warmup, warmup)
