"""The papers' tables from the results database (rule tables)."""

import sys
from pathlib import Path

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

import duckdb

from avtrust.logs import rule_logging
from avtrust.results.breakdowns import export_breakdowns
from avtrust.results.checks import export_checks
from avtrust.results.tables import export_tables

with rule_logging(snakemake) as log:
    con = duckdb.connect(snakemake.input.db, read_only=True)
    try:
        out_dir = Path(snakemake.output.md[0]).parent
        written = export_tables(con, out_dir, snakemake.params.views)
        written += export_breakdowns(con, out_dir, snakemake.params.breakdowns)
        written.append(export_checks(con, snakemake.output.checks))
    finally:
        con.close()
    log.info("wrote %s", ", ".join(str(w) for w in written))
