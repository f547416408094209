"""Predictions of one model on one shard of each task of a group (rule evaluate_shard):
the model is loaded once, each task's predictions go to <output folder>/<bench>/<task>.parquet."""

import shutil
import sys
from pathlib import Path

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

import torch

from avtrust.evaluate.groups import shard_file
from avtrust.evaluate.infer import Predictor, Settings, modes_setting, run_shard
from avtrust.evaluate.samples import eval_rows
from avtrust.io import write_parquet_atomic
from avtrust.logs import rule_logging
from avtrust.models.decode_cache import DecodeCache
from avtrust.models.registry import load
from avtrust.sharding import shard_rows

# what a task's settings may hold for Settings: an open-ended task's leave out what only
# choices read (and vice versa)
SETTINGS_KEYS = ("max_new_tokens", "max_new_tokens_open", "loglik_norm", "wording", "prompt")

with rule_logging(snakemake) as log:
    torch.set_num_threads(snakemake.threads)
    shard, pairs = int(snakemake.wildcards.shard), snakemake.params.tasks
    names = ", ".join(f"{bench}/{task}" for bench, task in pairs)
    log.info("tasks %s, shard %d; loading %s", names, shard, snakemake.input.model)
    device = snakemake.params.settings[0]["device"]
    if snakemake.params.kind == "checkpoint":
        from avtrust.train.checkpoint import load_policy

        model = load_policy(snakemake.input.model, device=device)
    else:
        model = load(snakemake.input.model, device=device)
    out = Path(snakemake.output.predictions)
    decoded_indexes = snakemake.input.get("decoded") or [None] * len(pairs)
    tables = zip(pairs, snakemake.params.settings, snakemake.input.samples, decoded_indexes,
                 strict=True)  # fmt: skip
    for (bench, task), s, samples, decoded in tables:
        rows = eval_rows(samples, snakemake.input.get("split"), s["split"] or "all")
        rows = shard_rows(rows, shard, snakemake.params.shards)
        log.info("%s/%s: %d samples in shard %d", bench, task, len(rows), shard)
        settings = Settings(
            modes=modes_setting(s["mode"]),
            batch_size=s["batch_size"],
            **{k: s[k] for k in SETTINGS_KEYS if k in s},
        )
        # the decode-once cache of this task (rule decode_clips), where the config has one
        decoded = DecodeCache(Path(decoded).parent) if decoded else None
        table = run_shard(
            Predictor(model, threads=snakemake.threads, cache=s["batch_size"], decoded=decoded),
            rows,
            settings,
            model_id=snakemake.wildcards.model,
            state_dir=Path(snakemake.params.state) / bench / task,
            shard=shard,
            log=log,
        )
        if decoded is not None:
            log.info("%s/%s decode cache: %d clips read from it, %d decoded (not in it)",
                     bench, task, decoded.hits, decoded.misses)  # fmt: skip
        target = shard_file(out, bench, task)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_parquet_atomic(target, table)
        log.info("%s/%s: %d predictions", bench, task, table.num_rows)
    shutil.rmtree(snakemake.params.state, ignore_errors=True)  # done: the state is spent
