"""Generate the pre-training corpus (rule pretrain_corpus)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

from avtrust.logs import rule_logging
from avtrust.pretrain.stage import write_corpus

# ffmpeg processes at once: the same files whatever the number, so not a param (an
# edit reruns nothing)
workers = snakemake.config["pretrain"]["media_workers"]

with rule_logging(snakemake) as log:
    log.info("generating the pre-training corpus into %s", snakemake.output.corpus)
    write_corpus(snakemake.output.corpus, snakemake.params.config, workers=workers)
