"""The train/test split of every benchmark sample (rule split_samples)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

from collections import Counter

from avtrust.io import write_parquet_atomic
from avtrust.logs import rule_logging
from avtrust.scoring.split import split_table

with rule_logging(snakemake) as log:
    tables = {tuple(key.split("/")): path for key, path in snakemake.params.tables.items()}
    split = split_table(tables, snakemake.params.seed, snakemake.params.train_fraction)
    counts = Counter(zip(split["task"].to_pylist(), split["split"].to_pylist(), strict=True))
    for (task, part), n in sorted(counts.items()):
        log.info("%s %s: %d", task, part, n)
    write_parquet_atomic(snakemake.output.split, split)
