"""The benchmark's measured audio checks in the results database.

Every manipulated sample carries what :mod:`avtrust.bench.checks` measured on its output
(``measured_*`` columns of the sample table, null where a task promises nothing about
that value); the ``samples`` table of the database keeps them. The view
``benchmark_checks`` summarises them per task, one row per (bench, task, measure): the
samples measured (``n``) and the minimum, mean, median and maximum, so that how far a
build's samples sit from each promise's threshold is one query:

    SELECT * FROM benchmark_checks WHERE measure = 'measured_snr_db'

The rule ``tables`` writes the view to ``results/tables/benchmark_checks.csv``.
Rejected samples are not in the sample table (their measured value is in the task's
``.rejects.parquet``), so the view describes the samples that are evaluated.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from avtrust.bench.samples import SAMPLE_SCHEMA
from avtrust.io import write_bytes_atomic

MEASURED = [name for name in SAMPLE_SCHEMA.names if name.startswith("measured_")]
VIEW = "benchmark_checks"


def view_sql() -> dict[str, str]:
    parts = [
        f"SELECT bench, task, '{m}' AS measure, count(\"{m}\") AS n, "
        f'min("{m}") AS min, avg("{m}") AS mean, median("{m}") AS median, max("{m}") AS max '
        f'FROM samples WHERE "{m}" IS NOT NULL GROUP BY bench, task'
        for m in MEASURED
    ]
    return {VIEW: " UNION ALL ".join(parts) + " ORDER BY bench, task, measure"}


def export_checks(con, path) -> Path:
    """Write the ``benchmark_checks`` view as CSV (a header only when nothing was
    measured), atomically."""
    import pyarrow.csv as pacsv

    table = con.sql(f"SELECT * FROM {VIEW}").to_arrow_table()
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink)
    return write_bytes_atomic(path, sink.getvalue().to_pybytes())
