"""Decode the clips of one evaluated task, or of one training table, once into the
decode-once cache (rules decode_clips and decode_training_clips)."""

import sys
from pathlib import Path

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

import pyarrow.parquet as pq

from avtrust.evaluate.samples import eval_rows
from avtrust.logs import rule_logging
from avtrust.models.decode_cache import build, clip_paths
from avtrust.models.omni_inputs import VisionSettings

with rule_logging(snakemake) as log:
    split = snakemake.input.get("split")
    rows = []
    if "samples" in snakemake.input.keys():  # an evaluated task: its evaluated rows
        rows += eval_rows(snakemake.input.samples, split, snakemake.params.split)
    for table in snakemake.input.get("tables", []):  # SFT: the training split's rows
        rows += eval_rows(table, split, "train")
    for table in snakemake.input.get("data", []):  # pairs, RL-CoMM data: every row
        rows += pq.read_table(table).to_pylist()
    settings = [VisionSettings.from_dir(folder) for folder in snakemake.input.models]
    report = build(
        clip_paths(rows),
        settings,
        Path(snakemake.output.index).parent,
        # a layout setting: the arrays are the same however they are grouped into files,
        # so it is read from the config, not a param (an edit reruns nothing)
        shard_clips=snakemake.config["evaluation"]["decode_cache"]["shard_clips"],
        workers=snakemake.threads,
        log=log,
    )
    log.info(
        "%d entries (%d decoded in %.1f s of decoding, %d reused), %.1f MB in %d shards",
        report.entries, report.decoded, report.decode_seconds, report.reused,
        report.nbytes / 1e6, report.shards,
    )  # fmt: skip
