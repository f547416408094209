"""Write the benchmark tasks as lmms-eval tasks (rule export_lmms_eval)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

from pathlib import Path

from avtrust import data_files
from avtrust.bench.lmms_eval import export_lmms_eval
from avtrust.bench.samples import wording
from avtrust.logs import rule_logging

with rule_logging(snakemake) as log:
    names = export_lmms_eval(
        str(Path(snakemake.input.card).parent),
        snakemake.output.tasks,
        {bench: list(tasks) for bench, tasks in snakemake.params.tasks.items()},
        wording(snakemake.params.wording),
        data_files.load("judge")["sound_keywords"],
        snakemake.params.max_new_tokens,
        snakemake.params.max_new_tokens_open,
        prompts=snakemake.params.prompts,
    )
    log.info("wrote %d lmms-eval tasks: %s", len(names), ", ".join(names))
