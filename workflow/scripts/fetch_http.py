"""Download a dataset's files by URL with pinned checksums (rule fetch_http)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

from avtrust.datasets.download import prepare_http
from avtrust.logs import rule_logging

with rule_logging(snakemake) as log:
    files = prepare_http(
        snakemake.wildcards.dataset,
        snakemake.params.spec,
        snakemake.output.raw,
        snakemake.params.cache,
    )
    log.info("%d files downloaded and verified", len(files))
