"""CAVPref pairs of one shard: y_l, CLAP similarities, AVSM, beta (rule score_pairs)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

import pyarrow.parquet as pq
import torch

from avtrust.io import write_parquet_atomic
from avtrust.logs import rule_logging
from avtrust.models.registry import load
from avtrust.scoring.pairs import score_pairs
from avtrust.scoring.tables import clip_labels, training_rows

with rule_logging(snakemake) as log:
    torch.set_num_threads(snakemake.threads)
    cf = {r["id"]: r for r in pq.read_table(snakemake.input.counterfactual).to_pylist()}
    samples = [
        r for r in training_rows(snakemake.input.samples, snakemake.input.split) if r["id"] in cf
    ]
    log.info("%d samples in this shard; loading %s", len(samples), snakemake.input.model)
    clap = load(snakemake.input.model, device=snakemake.params.device)
    pairs = score_pairs(
        samples,
        cf,
        clip_labels(snakemake.input.manifests),
        clap,
        eta=snakemake.params.eta,
        gamma=snakemake.params.gamma,
        batch_size=snakemake.params.batch_size,
        log=log,
    )
    log.info("%d pairs", pairs.num_rows)
    write_parquet_atomic(snakemake.output.pairs, pairs)
