"""Make a YouTube dataset's raw folder and failures table (rule fetch_youtube)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

from avtrust.datasets.download.youtube import gather
from avtrust.logs import rule_logging

with rule_logging(snakemake) as log:
    failures = gather(snakemake.input.annotations, snakemake.input.status, snakemake.output.raw)
    log.info("%d clips could not be downloaded (download_failures.parquet)", failures.num_rows)
