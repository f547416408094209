"""A plain QA evaluation set of one dataset (rule qa_set)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

from avtrust.evaluate.samples import build_qa_set
from avtrust.io import write_parquet_atomic
from avtrust.logs import rule_logging

with rule_logging(snakemake) as log:
    table = build_qa_set(
        snakemake.params.format,
        snakemake.wildcards.dataset,
        snakemake.input.manifest,
        snakemake.input.raw,
        snakemake.params.samples,
        snakemake.params.seed,
    )
    log.info("%d questions", table.num_rows)
    write_parquet_atomic(snakemake.output.samples, table)
