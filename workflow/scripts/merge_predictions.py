"""The shards of one (model, task) as one predictions table (rule merge_predictions)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

from avtrust.evaluate.infer import merge_shards
from avtrust.io import write_parquet_atomic
from avtrust.logs import rule_logging

with rule_logging(snakemake) as log:
    table = merge_shards(snakemake.input.shards)
    log.info("%d predictions from %d shards", table.num_rows, len(snakemake.input.shards))
    write_parquet_atomic(snakemake.output.predictions, table)
