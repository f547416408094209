"""Train the thinker's vision tower on the pre-training corpus's silent clips (rule
pretrain_vision_tower)."""

import sys
from pathlib import Path

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

from avtrust.io import write_json_atomic
from avtrust.logs import rule_logging
from avtrust.pretrain.stage import pretrain_vision_tower

with rule_logging(snakemake) as log:
    summary = pretrain_vision_tower(
        snakemake.input.untrained,
        snakemake.input.corpus,
        snakemake.output.tower,
        snakemake.params.config,
        log=log,
        decoded_dir=Path(snakemake.input.decoded).parent,
    )
    write_json_atomic(snakemake.output.summary, summary)
    log.info("ready: %s", snakemake.output.tower)
