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


def planned_jobs(output: str) -> list[dict]:
    """Every job block of ``snakemake -n`` output: ``rule``, ``wildcards`` (a dict),
    ``input`` and ``output`` (lists of paths)."""
    jobs, job = [], None
    for line in output.splitlines():
        if line.startswith(("rule ", "localrule ")) and line.endswith(":"):
            job = {"rule": line.split()[1].rstrip(":"), "wildcards": {}, "input": [], "output": []}
            jobs.append(job)
            continue
        if not line.startswith("    "):
            job = None  # a job block ends at its first unindented line
        if job is None:
            continue
        key, _, value = line.strip().partition(": ")
        if key in ("input", "output"):
            job[key] = [p.strip() for p in value.split(", ") if p.strip()]
        elif key == "wildcards":
            job["wildcards"] = dict(w.split("=", 1) for w in value.split(", "))
    return jobs
