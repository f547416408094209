"""Helpers to run the workflow in a temporary directory."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from session_lock import session_lock

from avtrust.dryrun import job_counts

REPO = Path(__file__).resolve().parents[2]
TINY = Path(__file__).with_name("tiny.yaml")
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]


def run_snakemake(workdir: Path, *args: str, config: Path | None = None, check: bool = True):
    """Run snakemake in ``workdir``; return the CompletedProcess (stdout+stderr in .stdout)."""
    cmd = [*SNAKEMAKE, "--directory", str(workdir), "--configfile", str(config or TINY), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    proc.stdout += proc.stderr
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-6000:]}")
    return proc


def write_config(path: Path, edit) -> Path:
    """A copy of tiny.yaml changed by ``edit(config_dict)``."""
    config = yaml.safe_load(TINY.read_text())
    edit(config)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def scale_samples(config: dict, factor: int) -> None:
    """Multiply every generated task's sample count by ``factor``."""
    for bench in ("avtrustbench", "avconfusebench"):
        for task in config["benchmark"][bench].values():
            task["samples"] *= factor


def planned_jobs(proc) -> dict[str, int]:
    """Job counts per rule from a dry run's 'Job stats' table."""
    return job_counts(proc.stdout)


def job_blocks(proc, wildcard: str) -> list[tuple[str, str]]:
    """Each planned job of a dry run as (name, its block of the output): the name is the
    rule's, with ``:<value>`` of the job's ``wildcard`` where it has one."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule )", proc.stdout):
        head = re.match(r"(?:local)?rule (\w+):", block)
        if head:
            value = re.search(rf"wildcards: (?:.*, )?{wildcard}=([\w/]+)", block)
            jobs.append((head[1] + (f":{value[1]}" if value else ""), block))
    return jobs


def job_priority(block: str) -> int:
    """A planned job's priority (0 where the dry run prints none)."""
    found = re.search(r"priority: (\d+)", block)
    return int(found[1]) if found else 0


def planned_with(tmp_path: Path, name: str, edit) -> dict[str, int]:
    """Job counts per rule of a dry run of tiny.yaml changed by ``edit(config_dict)``."""
    return planned_jobs(run_snakemake(tmp_path, "-n", config=write_config(tmp_path / name, edit)))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """The whole benchmark built once from tiny.yaml; returns the work directory."""
    return build_tiny(tmp_path_factory)


def build_tiny(tmp_path_factory) -> Path:
    """Run tiny.yaml locally once per session, in a fixed folder of the session's temp root.

    tests/slurm compares its cluster run with this folder and calls this function too,
    so whichever test directory runs first builds it and the other reuses it. Under
    pytest-xdist the other workers wait for the build instead of building again.
    """
    with session_lock(tmp_path_factory, "tiny-local") as root:
        workdir = root / "tiny-local"
        done = workdir.with_name("tiny-local.done")
        if not done.exists():
            workdir.mkdir(exist_ok=True)  # a failed build resumes where it stopped
            run_snakemake(workdir, "--cores", "2")
            done.touch()
    return workdir


# Wall-clock fields: the only parts of a run's outputs that may differ between two runs.
TIMING_COLUMNS = ("seconds",)  # predictions: time per batch
TIMING_KEYS = ("evaluated_at",)  # results/metrics/<model>.run.json


def result_digests(
    workdir: Path, folders: tuple[str, ...] = ("results", "resources")
) -> dict[str, str]:
    """sha256 of every file (hidden ones included) under ``folders``, timings left out:
    predictions without their timing column, run records without their timestamp, the
    lmms-eval tasks without the build's location, and the DuckDB files skipped (their
    contents are compared through results/tables and metrics)."""
    out = {}
    for folder in folders:
        for path in sorted((workdir / folder).rglob("*")):
            name = path.relative_to(workdir).as_posix()
            if not path.is_file() or path.suffix == ".duckdb":
                continue
            if name.startswith("results/predictions/") and path.suffix == ".parquet":
                table = pq.read_table(path)
                table = table.drop_columns([c for c in TIMING_COLUMNS if c in table.schema.names])
                data = json.dumps(table.to_pylist(), sort_keys=True, default=str).encode()
            elif name.startswith("results/bench/lmms_eval/"):
                # the tasks point at the Hugging Face folder by its absolute path: the
                # build's location is left out, nothing else
                data = path.read_bytes().replace(str(workdir.resolve()).encode(), b"<workdir>")
            elif name.startswith("results/metrics/") and name.endswith(".run.json"):
                record = json.loads(path.read_text())
                kept = {k: v for k, v in record.items() if k not in TIMING_KEYS}
                data = json.dumps(kept, sort_keys=True).encode()
            else:
                data = path.read_bytes()
            out[name] = hashlib.sha256(data).hexdigest()
    return out
