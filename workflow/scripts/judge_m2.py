"""AV-ConfuseBench m2: judge scores and the audio keyword metric (rule judge_m2)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

import pyarrow.parquet as pq

from avtrust.evaluate.judge import HttpJudge, LocalJudge, judge_predictions
from avtrust.io import write_parquet_atomic
from avtrust.logs import rule_logging
from avtrust.models.registry import load

with rule_logging(snakemake) as log:
    p = snakemake.params
    predictions = pq.read_table(snakemake.input.predictions).to_pylist()
    samples = {r["id"]: r for r in pq.read_table(snakemake.input.samples).to_pylist()}
    chat = None
    if p.judge is not None:
        log.info("judge: %s", p.judge)
        model = load(snakemake.input.judge, device=p.device)
        if hasattr(model, "chat"):
            chat = HttpJudge(model, p.max_new_tokens)
        else:
            chat = LocalJudge(model, p.max_new_tokens, seed=p.seed)
    else:
        log.info("no judge model: audio keyword metric only")
    table = judge_predictions(
        predictions,
        samples,
        chat,
        judge_name=p.judge,
        retries=p.retries,
        retry_temperature=p.retry_temperature,
        log=log,
    )
    failed = sum(e is not None for e in table["error"].to_pylist())
    log.info("%d descriptions, %d judge failures", table.num_rows, failed)
    write_parquet_atomic(snakemake.output.verdicts, table)
