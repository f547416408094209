"""The shards of one (model, task) as one predictions table (rule merge_predictions):
each evaluation shard's folder holds the task as <bench>/<task>.parquet."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

from avtrust.evaluate.groups import shard_file
from avtrust.evaluate.infer import merge_shards
from avtrust.io import write_parquet_atomic
from avtrust.logs import rule_logging

with rule_logging(snakemake) as log:
    bench, task = snakemake.wildcards.bench, snakemake.wildcards.task
    shards = [shard_file(folder, bench, task) for folder in snakemake.input.shards]
    table = merge_shards(shards)
    log.info("%d predictions from %d shards", table.num_rows, len(shards))
    write_parquet_atomic(snakemake.output.predictions, table)
