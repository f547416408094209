"""Predictions of one model on one shard of a task (rule evaluate_shard)."""

import shutil
import sys
from pathlib import Path

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

import torch

from avtrust.evaluate.infer import Predictor, Settings, modes_setting, run_shard
from avtrust.evaluate.samples import eval_rows
from avtrust.io import write_parquet_atomic
from avtrust.logs import rule_logging
from avtrust.models.decode_cache import DecodeCache
from avtrust.models.registry import load
from avtrust.sharding import shard_rows

with rule_logging(snakemake) as log:
    torch.set_num_threads(snakemake.threads)
    s = snakemake.params.settings
    rows = eval_rows(snakemake.input.samples, snakemake.input.get("split"), snakemake.params.split)
    shard = int(snakemake.wildcards.shard)
    rows = shard_rows(rows, shard, snakemake.params.shards)
    log.info("%d samples in shard %d; loading %s", len(rows), shard, snakemake.input.model)
    if snakemake.params.kind == "checkpoint":
        from avtrust.train.checkpoint import load_policy

        model = load_policy(snakemake.input.model, device=s["device"])
    else:
        model = load(snakemake.input.model, device=s["device"])
    # an open-ended task's settings leave out what only choices read (and vice versa)
    settings = Settings(
        modes=modes_setting(s["mode"]),
        batch_size=s["batch_size"],
        **{
            k: s[k]
            for k in ("max_new_tokens", "max_new_tokens_open", "loglik_norm", "wording", "prompt")
            if k in s
        },
    )
    # the decode-once cache of this task (rule decode_clips), where the config has one
    decoded = snakemake.input.get("decoded")
    decoded = DecodeCache(Path(decoded).parent) if decoded else None
    table = run_shard(
        Predictor(model, threads=snakemake.threads, cache=s["batch_size"], decoded=decoded),
        rows,
        settings,
        model_id=snakemake.wildcards.model,
        state_dir=snakemake.params.state,
        shard=shard,
        log=log,
    )
    if decoded is not None:
        log.info("decode cache: %d clips read from it, %d decoded (not in it)",
                 decoded.hits, decoded.misses)  # fmt: skip
    write_parquet_atomic(snakemake.output.predictions, table)
    shutil.rmtree(snakemake.params.state, ignore_errors=True)  # done: the state is spent
    log.info("%d predictions", table.num_rows)
