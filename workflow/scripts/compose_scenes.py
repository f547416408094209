"""Compose multi-instrument scenes from solo clips (rule compose_scenes)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

from avtrust.datasets.compose import compose
from avtrust.logs import rule_logging

with rule_logging(snakemake) as log:
    scenes = compose(
        snakemake.wildcards.dataset,
        snakemake.input.solos,
        snakemake.output.raw,
        snakemake.params.spec,
        snakemake.params.media,
        snakemake.params.seed,
        workers=snakemake.threads,
    )
    log.info("%d scenes composed", len(scenes))
