"""Write the Hugging Face `datasets` folder (rule export_hf)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

from pathlib import Path

from avtrust.bench.export import export_hf
from avtrust.logs import rule_logging

with rule_logging(snakemake) as log:
    task_files = dict(zip(snakemake.params.tasks, snakemake.input.samples, strict=True))
    rows = export_hf(
        task_files,
        str(Path(snakemake.output.card).parent),
        snakemake.params.datasets,
        snakemake.output.statistics,
        snakemake.input.split,
    )
    log.info("wrote %d task configurations, %d samples", len(rows), sum(r["samples"] for r in rows))
