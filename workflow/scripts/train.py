"""Train one SFT / DPO / CAVPref method (rules train_sft, train_dpo, train_cavpref)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

from avtrust.logs import rule_logging
from avtrust.train.run import train_job

with rule_logging(snakemake) as log:
    inputs = (
        {"pairs": snakemake.input.pairs}
        if "pairs" in snakemake.input.keys()
        else {
            "split": snakemake.input.split,
            "tables": snakemake.params.tables,
        }
    )
    train_job(
        method=snakemake.wildcards.method,
        training=snakemake.params.training,
        seed=snakemake.params.seed,
        model_dir=snakemake.input.model,
        inputs=inputs,
        outputs=dict(snakemake.output.items()),
        state_dir=snakemake.params.state_dir,
        threads=snakemake.threads,
        log=log,
    )
