"""Reference <a-think> of one shard of RL-CoMM training questions (rule reference_reasoning)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

import pyarrow.parquet as pq
import torch

from avtrust.io import write_parquet_atomic
from avtrust.logs import rule_logging
from avtrust.models.registry import load
from avtrust.scoring.reasoning import reference_reasoning
from avtrust.scoring.tables import clip_labels
from avtrust.sharding import shard_rows

with rule_logging(snakemake) as log:
    torch.set_num_threads(snakemake.threads)
    shard, shards = int(snakemake.wildcards.shard), snakemake.params.shards
    rows = shard_rows(pq.read_table(snakemake.input.questions).to_pylist(), shard, shards)
    labels = clip_labels(snakemake.input.manifests)
    visual = {
        r["id"]: labels.get(r["source_dataset"], {}).get(r["source_ids"][0], [])
        for r in rows
        if r["has_video"]
    }
    log.info(
        "%d samples; loading %s and %s",
        len(rows),
        snakemake.input.reference,
        snakemake.input.embedder,
    )
    device = snakemake.params.device
    table = reference_reasoning(
        rows,
        visual,
        load(snakemake.input.reference, device=device),
        load(snakemake.input.embedder, device=device),
        model_name=snakemake.params.model_name,
        max_new_tokens=snakemake.params.max_new_tokens,
        batch_size=snakemake.params.batch_size,
        instruction=snakemake.params.embedding_instruction,
    )
    write_parquet_atomic(snakemake.output.reference, table)
