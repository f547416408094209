"""Assemble a task's benchmark table from its plan and shards (rule build_questions)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

from avtrust.bench.assemble import assemble
from avtrust.io import write_parquet_atomic
from avtrust.logs import rule_logging

with rule_logging(snakemake) as log:
    samples, rejects = assemble(snakemake.input.plan, list(snakemake.input.shards))
    log.info("%d samples, %d rejected", samples.num_rows, rejects.num_rows)
    write_parquet_atomic(snakemake.output.rejects, rejects)
    write_parquet_atomic(snakemake.output.samples, samples)
