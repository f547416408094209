"""Train one untrained tiny model on the pre-training corpus (rule pretrain_model)."""

import sys
from pathlib import Path

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

from avtrust.io import write_json_atomic
from avtrust.logs import rule_logging
from avtrust.pretrain.stage import pretrain_model

with rule_logging(snakemake) as log:
    decoded = snakemake.input.get("decoded")  # the thinker's decode-once cache
    summary = pretrain_model(
        snakemake.input.untrained,
        snakemake.input.corpus,
        snakemake.output.model,
        snakemake.params.config,
        log=log,
        start_dir=snakemake.input.get("start"),
        vision_dir=snakemake.input.get("vision"),
        decoded_dir=decoded and Path(decoded).parent,
    )
    write_json_atomic(snakemake.output.summary, summary)
    log.info("ready: %s", snakemake.output.model)
