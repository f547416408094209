"""Decode every clip of the pre-training corpus once, as the thinker reads it (rule
decode_pretrain_clips)."""

import sys
from pathlib import Path

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

from avtrust.logs import rule_logging
from avtrust.pretrain.stage import decode_corpus

# ffmpeg processes at once: the same files whatever the number, so not a param (an
# edit reruns nothing)
workers = snakemake.config["pretrain"]["media_workers"]

with rule_logging(snakemake) as log:
    report = decode_corpus(
        snakemake.input.untrained,
        snakemake.input.corpus,
        Path(snakemake.output.index).parent,
        workers=workers,
        log=log,
    )
    log.info(
        "%d clips decoded in %.1f s (%.1f s of decoding, %d at once), %.1f MB",
        report.entries, report.seconds, report.decode_seconds, workers,
        report.nbytes / 1e6,
    )  # fmt: skip
