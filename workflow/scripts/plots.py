"""Figures from the results database and the training logs (rule plots)."""

import sys
from pathlib import Path

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

import duckdb

from avtrust.logs import rule_logging
from avtrust.results.breakdown_plots import all_plots
from avtrust.results.plots import colours, task_bars, training_curves, yes_rate

with rule_logging(snakemake) as log:
    con = duckdb.connect(snakemake.input.db, read_only=True)
    try:
        palette = colours(con)  # one colour per model (and its training method) everywhere
        task_bars(con, snakemake.output.tasks, palette)
        yes_rate(con, snakemake.output.yes_rate, palette)
        all_plots(con, Path(snakemake.output.breakdowns[0]).parent, palette)
    finally:
        con.close()
    training_curves(snakemake.params.logs, snakemake.output.curves, palette)
    log.info("plots written; training logs: %s", sorted(snakemake.params.logs) or "none")
