"""Decode every clip of one evaluated task once into the decode cache (rule decode_clips)."""

import sys
from pathlib import Path

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

from avtrust.evaluate.samples import eval_rows
from avtrust.logs import rule_logging
from avtrust.models.decode_cache import build
from avtrust.models.omni_inputs import VisionSettings

with rule_logging(snakemake) as log:
    rows = eval_rows(snakemake.input.samples, snakemake.input.get("split"), snakemake.params.split)
    settings = [VisionSettings.from_dir(folder) for folder in snakemake.input.models]
    report = build(
        [r["media_path"] for r in rows],
        settings,
        Path(snakemake.output.index).parent,
        shard_clips=snakemake.params.shard_clips,
        workers=snakemake.threads,
        log=log,
    )
    log.info(
        "%d entries (%d decoded in %.1f s of decoding, %d reused), %.1f MB in %d shards",
        report.entries, report.decoded, report.decode_seconds, report.reused,
        report.nbytes / 1e6, report.shards,
    )  # fmt: skip
