"""Plan one benchmark task: samples, pairings, questions (rule plan_task)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

from avtrust.bench.plan import plan_with_supply, short_supply_note
from avtrust.io import write_json_atomic, write_parquet_atomic
from avtrust.logs import rule_logging

with rule_logging(snakemake) as log:
    names = list(snakemake.params.settings["formats"])
    plan, supply = plan_with_supply(
        snakemake.wildcards.bench,
        snakemake.wildcards.task,
        snakemake.params.settings,
        manifests=dict(zip(names, snakemake.input.manifests, strict=True)),
        raw_dirs=dict(zip(names, snakemake.input.raw, strict=True)),
    )
    log.info("planned %d samples", plan.num_rows)
    note = short_supply_note(supply)
    if note:
        log.warning(note)
    write_json_atomic(snakemake.output.supply, supply)
    write_parquet_atomic(snakemake.output.plan, plan)
