"""DAG scale: how long ``snakemake -n`` takes to plan the papers' configuration.

The target: ``snakemake -n --configfile config/paper.yaml`` plans the whole
chain at 600K samples, with no data present (downloads appear as jobs), in <= 15 s and
<= 2,000 jobs. The run happens in an empty temporary work directory holding only a copy
of config/config.yaml (which the Snakefile loads first and paper.yaml extends, as in a
checkout), so nothing is read from or written to the repository's resources/ or results/.

The baseline, timed the same way in the same run, is the embedded default's dry run
(config/config.yaml alone: the synthetic corpus, tiny sample counts): the difference is
what paper scale costs on top of starting Snakemake and parsing the workflow.

    .venv/bin/python bench/dag_scale.py
    .venv/bin/python bench/dag_scale.py --repeat 3 --shards 128   # more manipulation shards
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from avtrust.dryrun import job_counts

REPO = Path(__file__).resolve().parents[1]
TARGET_S = 15.0
TARGET_JOBS = 2000


def dry_run(configfile: Path | None) -> tuple[float, dict[str, int]]:
    """(seconds, jobs per rule) of one ``snakemake -n`` in a fresh empty work directory."""
    with tempfile.TemporaryDirectory(prefix="dag_scale.") as tmp:
        work = Path(tmp)
        (work / "config").mkdir()
        shutil.copy(REPO / "config" / "config.yaml", work / "config" / "config.yaml")
        cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]
        cmd += ["--directory", str(work), "-n"]
        if configfile is not None:
            cmd += ["--configfile", str(configfile)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            sys.exit(f"snakemake -n failed:\n{(proc.stdout + proc.stderr)[-4000:]}")
        if any(p.name in ("resources", "results") for p in work.iterdir()):
            sys.exit("the dry run wrote resources/ or results/")
        return seconds, job_counts(proc.stdout + proc.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", type=Path, default=REPO / "config" / "paper.yaml")
    parser.add_argument("--shards", type=int, help="override benchmark.shards")
    parser.add_argument("--repeat", type=int, default=1, help="runs to take the median of")
    args = parser.parse_args(argv)

    config = yaml.safe_load(args.configfile.read_text())
    configfile = args.configfile.resolve()
    with tempfile.TemporaryDirectory(prefix="dag_scale_cfg.") as tmp:
        if args.shards is not None:
            config["benchmark"]["shards"] = args.shards
            configfile = Path(tmp) / "config.yaml"
            configfile.write_text(yaml.safe_dump(config, sort_keys=False))
        runs = [dry_run(configfile) for _ in range(args.repeat)]
        base = [dry_run(None) for _ in range(args.repeat)]
    seconds = statistics.median(s for s, _ in runs)
    base_seconds = statistics.median(s for s, _ in base)
    jobs = runs[0][1]
    total = sum(jobs.values())
    tasks = [t for b in ("avtrustbench", "avconfusebench") for t in config["benchmark"][b].values()]
    samples = sum(task["samples"] for task in tasks)
    shards = config["benchmark"]["shards"]
    print(f"config: {args.configfile.name}, {samples:,} samples, shards {shards}")
    print("jobs per rule: " + ", ".join(f"{rule} {n}" for rule, n in jobs.items()))
    print(f"dry run: {seconds:.2f} s (median of {args.repeat}), {total} jobs")
    base_jobs = sum(base[0][1].values())
    print(f"baseline (embedded default dry run): {base_seconds:.2f} s, {base_jobs} jobs")
    print(f"ratio to baseline: {seconds / base_seconds:.2f}x")
    print(
        f"target: <= {TARGET_S:.0f} s and <= {TARGET_JOBS} jobs -> "
        f"{seconds / TARGET_S:.2f} of the time, {total / TARGET_JOBS:.2f} of the jobs: "
        + ("met" if seconds <= TARGET_S and total <= TARGET_JOBS else "NOT met")
    )
    return 0 if total <= TARGET_JOBS else 1


if __name__ == "__main__":
    sys.exit(main())
