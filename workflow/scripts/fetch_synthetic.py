"""Generate a synthetic dataset in its real format (rule fetch_synthetic)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

from avtrust.datasets import synthetic
from avtrust.logs import rule_logging

with rule_logging(snakemake) as log:
    p = snakemake.params
    log.info("generating synthetic %s corpus into %s", p.fmt, snakemake.output.raw)
    synthetic.generate(
        p.fmt, snakemake.output.raw, p.settings["corpus"], p.settings.get("media"), p.seed
    )
