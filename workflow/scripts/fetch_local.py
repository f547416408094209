"""Link a dataset folder the user already has into the workflow (rule fetch_local)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

from avtrust.datasets.download.local import prepare_local
from avtrust.logs import rule_logging

with rule_logging(snakemake) as log:
    report = prepare_local(
        snakemake.wildcards.dataset,
        snakemake.params.fmt,
        snakemake.params.spec,
        snakemake.output.raw,
        snakemake.params.cache,
    )
    log.info(
        "%d media files linked, %d clips listed, %d missing",
        report.linked,
        report.listed,
        len(report.missing),
    )
