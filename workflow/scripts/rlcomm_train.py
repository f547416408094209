"""One RL-CoMM stage (rule rlcomm_train): spec, resume state, Ans-CO targets, launch."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

from avtrust.logs import rule_logging
from avtrust.train.rlcomm import stage_spec, train_stage

with rule_logging(snakemake) as log:
    job = snakemake.params.job
    spec = stage_spec(
        snakemake.wildcards.method,
        job,
        seed=snakemake.params.seed,
        data=snakemake.input.data,
        base_dir=snakemake.input.policy,
        base_model=job["policy"],
        embedder_dir=snakemake.input.embedder,
        init_dir=snakemake.input.get("start"),
        out_dir=str(snakemake.output.model).rsplit("/model", 1)[0],
        state_dir=snakemake.params.state_dir,
    )
    train_stage(spec, log, job["accelerate_config"])
