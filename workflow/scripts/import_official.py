"""Plan a task from its official benchmark file (rule import_official)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

from avtrust.bench.importer import import_official
from avtrust.io import write_parquet_atomic
from avtrust.logs import rule_logging

with rule_logging(snakemake) as log:
    spec = snakemake.params.spec
    plan = import_official(
        snakemake.wildcards.bench,
        snakemake.wildcards.task,
        spec["json"],
        spec["media"],
        src=snakemake.params.src,
    )
    log.info("imported %d samples from %s", plan.num_rows, spec["json"])
    write_parquet_atomic(snakemake.output.plan, plan)
