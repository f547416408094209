"""Write the benchmarks' official JSON layouts (rule export_official)."""

from avtrust.bench.export import export_official
from avtrust.logs import rule_logging

with rule_logging(snakemake) as log:
    files = iter(snakemake.input.samples)
    for bench, tasks in snakemake.params.tasks.items():
        task_files = {task: next(files) for task in tasks}
        for path in export_official(bench, task_files, snakemake.params.root):
            log.info("wrote %s", path)
