"""Train one SFT / DPO / CAVPref method (rule train)."""

import sys
from pathlib import Path

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

from avtrust.logs import rule_logging
from avtrust.train.run import train_job

with rule_logging(snakemake) as log:
    if "pairs" in snakemake.input.keys():
        inputs = {"pairs": snakemake.input.pairs}
    else:  # SFT: the benchmark table of each task, named by its file
        tables = {Path(p).stem: p for p in snakemake.input.tables}
        inputs = {"split": snakemake.input.split, "tables": tables}
    train_job(
        method=snakemake.wildcards.method,
        job=snakemake.params.job,
        model_dir=snakemake.input.model,
        inputs=inputs,
        outputs=dict(snakemake.output.items()),
        state_dir=snakemake.params.state_dir,
        threads=snakemake.threads,
        log=log,
    )
