"""RL-CoMM's warm-up and RL questions from the QA datasets' training files
(rule rlcomm_questions)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

from avtrust.io import write_parquet_atomic
from avtrust.logs import rule_logging
from avtrust.scoring.rlcomm_questions import training_questions

with rule_logging(snakemake) as log:
    p = snakemake.params
    table, counts = training_questions(
        p.datasets,
        dict(zip(p.datasets, snakemake.input.raw, strict=True)),
        dict(zip(p.datasets, snakemake.input.manifests, strict=True)),
        splits=p.splits,
        warmup_samples=p.warmup_samples,
        fraction=p.fraction,
        max_samples=p.max_samples,
        seed=p.seed,
    )
    for name, c in counts.items():
        log.info(
            "%s: %d questions in %s; left out: %d about clips not indexed, %d open-ended; "
            "chosen: %d warm-up, %d RL",
            name, c["read"], "+".join(p.splits), c["clip_not_indexed"], c["open_ended"],
            c["warmup"], c["rl"],
        )  # fmt: skip
    write_parquet_atomic(snakemake.output.questions, table)
