"""Download one shard of a YouTube dataset's segments (rule fetch_youtube_shard)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

import pyarrow.parquet as pq

from avtrust.datasets.download.youtube import YoutubeOptions, download_shard
from avtrust.io import write_parquet_atomic
from avtrust.logs import rule_logging

with rule_logging(snakemake) as log:
    status = download_shard(
        pq.read_table(snakemake.input.segments),
        int(snakemake.wildcards.shard),
        snakemake.params.shards,
        snakemake.params.cache,
        YoutubeOptions.from_config(snakemake.params.spec),
        snakemake.params.media,
    )
    ok = sum(status["ok"].to_pylist())
    log.info("%d clips ready, %d failed (recorded)", ok, status.num_rows - ok)
    write_parquet_atomic(snakemake.output.status, status)
