"""Reading Snakemake's dry-run output (used by the DAG-scale benchmark and the tests)."""

from __future__ import annotations


def job_counts(output: str) -> dict[str, int]:
    """Job counts per rule from the 'Job stats' table of ``snakemake -n`` output."""
    counts, in_table = {}, False
    for line in output.splitlines():
        if line.startswith("job ") and "count" in line:
            in_table = True
            continue
        if in_table:
            parts = line.split()
            if not parts or parts[0] == "total":
                break
            if not parts[0].startswith("-"):
                counts[parts[0]] = int(parts[1])
    return counts
