"""Fetch a YouTube dataset's annotations and list its segments (rule fetch_youtube_list)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

from avtrust.datasets.download.youtube import prepare_list
from avtrust.io import write_parquet_atomic
from avtrust.logs import rule_logging

with rule_logging(snakemake) as log:
    segments = prepare_list(
        snakemake.wildcards.dataset,
        snakemake.params.fmt,
        snakemake.params.spec,
        snakemake.output.annotations,
        snakemake.params.cache,
    )
    log.info("%d segments to download", segments.num_rows)
    write_parquet_atomic(snakemake.output.segments, segments)
