"""Write the benchmarks' official JSON layouts (rule export_official)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

from avtrust.bench.export import export_official
from avtrust.logs import rule_logging

with rule_logging(snakemake) as log:
    samples, outputs = iter(snakemake.input.samples), iter(snakemake.output.files)
    for bench, tasks in snakemake.params.tasks.items():
        for task in tasks:
            log.info("wrote %s", export_official(bench, task, next(samples), next(outputs)))
