"""The cost of the audio checks after manipulation, as a ratio to the manipulation itself.

On a synthetic corpus (``config/config.yaml``'s, clips resized by the options), each
checked task is planned and every sample is first manipulated
(``avtrust.bench.shards.run_op``, as the ``manipulate_shard`` rule runs it), then checked
(``avtrust.bench.checks.check_output``), one sample at a time on one thread, both timed.
The tasks are those whose audio is checked: MVIT, MAIT (donor's soundtrack), COT-Swap
(both halves), MAT (no audio stream), m1 (stem levels) and m2 (SNR; replaced and mixed).

    .venv/bin/python bench/audio_checks_cost.py                  # 10 s clips at 360p
    .venv/bin/python bench/audio_checks_cost.py --duration 2 --width 128 --height 96 --fps 8

It prints per task the manipulation's and the check's seconds per sample and their
ratio, the overall ratio against the target (checks cost at most half the manipulation),
and how many samples each check rejected (on the synthetic corpus: none expected). The
exit status is 1 if a manipulation failed or a check rejected a sample.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

from avtrust.bench.checks import check_output
from avtrust.bench.plan import plan_task, task_datasets
from avtrust.bench.shards import media_settings, run_op
from avtrust.datasets.index import index_dataset
from avtrust.datasets.synthetic import generate
from avtrust.io import write_parquet_atomic

REPO = Path(__file__).resolve().parents[1]
TARGET_RATIO = 0.5  # check seconds / manipulation seconds
TASKS = [
    ("avtrustbench", "MVIT"),
    ("avtrustbench", "MAIT"),
    ("avtrustbench", "COT-Swap"),
    ("avtrustbench", "MAT"),
    ("avconfusebench", "m1"),
    ("avconfusebench", "m2"),
]


def build_corpus(root: Path, config: dict) -> tuple[dict[str, str], dict[str, str]]:
    """Generate and index every synthetic dataset the TASKS read: (manifests, raw dirs)."""
    datasets = sorted(
        {d for bench, task in TASKS for d in task_datasets(config["benchmark"][bench][task])}
    )
    manifests, raw_dirs = {}, {}
    for dataset in datasets:
        fmt = config["datasets"][dataset]["format"]
        raw = root / "resources" / "raw" / dataset
        generate(fmt, raw, config["corpus"], config["media"], config["seed"])
        manifest, _ = index_dataset(dataset, fmt, str(raw), decode_check=False, workers=2)
        manifests[dataset] = str(root / "results" / "manifest" / f"{dataset}.parquet")
        raw_dirs[dataset] = str(raw)
        write_parquet_atomic(manifests[dataset], manifest)
    return manifests, raw_dirs


def time_task(rows: list[dict], media: dict) -> dict:
    """Manipulate, then check, every row: seconds of each, samples, failures, rejects."""
    out = {"n": len(rows), "manipulate_s": 0.0, "check_s": 0.0, "failed": 0, "rejected": []}
    for row in rows:
        args, dst = json.loads(row["op_args"]), row["media_path"]
        Path(dst).parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        try:
            run_op(row["op"], args, dst, media)
        except Exception as exc:  # a failed manipulation is counted and reported
            out["failed"] += 1
            print(f"{row['id']}: manipulation failed: {exc}", file=sys.stderr)
            continue
        t1 = time.perf_counter()
        measured = check_output(row["op"], args, dst)
        out["check_s"] += time.perf_counter() - t1
        out["manipulate_s"] += t1 - t0
        if measured.failure is not None:
            out["rejected"].append(f"{row['id']}: {measured.failure}")
    return out


def report(results: dict[str, dict]) -> bool:
    """Print the per-task and overall costs; True when nothing failed or was rejected."""
    print(f"{'task':<10}{'samples':>8}{'manip ms':>10}{'check ms':>10}{'ratio':>8}{'rejected':>10}")
    for task, r in results.items():
        done = max(r["n"] - r["failed"], 1)
        ratio = r["check_s"] / r["manipulate_s"] if r["manipulate_s"] else float("nan")
        print(
            f"{task:<10}{r['n']:>8}{1000 * r['manipulate_s'] / done:>10.1f}"
            f"{1000 * r['check_s'] / done:>10.1f}{ratio:>8.2f}{len(r['rejected']):>10}"
        )
        for line in r["rejected"]:
            print(f"  rejected {line}")
    manip = sum(r["manipulate_s"] for r in results.values())
    check = sum(r["check_s"] for r in results.values())
    ratio = check / manip
    verdict = "met" if ratio <= TARGET_RATIO else "MISSED"
    print(
        f"all: manipulation {manip:.2f} s, checks {check:.2f} s; checks cost {ratio:.2f} x "
        f"the manipulation (target <= {TARGET_RATIO} x: {verdict})"
    )
    return not any(r["failed"] or r["rejected"] for r in results.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # Defaults: clips shaped like the real sources (10 s, 360p, 25 fps).
    parser.add_argument("--samples", type=int, default=8, help="samples per task")
    parser.add_argument("--duration", type=float, default=10.0, help="clip seconds")
    parser.add_argument("--width", type=int, default=640, help="frame width")
    parser.add_argument("--height", type=int, default=360, help="frame height")
    parser.add_argument("--fps", type=int, default=25, help="frame rate")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args(argv)
    if shutil.which("ffmpeg") is None:
        sys.exit("ffmpeg is not on PATH (Debian/Ubuntu: apt-get install ffmpeg)")

    config = copy.deepcopy(yaml.safe_load((REPO / "config" / "config.yaml").read_text()))
    corpus = config["corpus"]
    corpus.update(duration_s=args.duration, width=args.width, height=args.height, fps=args.fps)
    for bench, task in TASKS:
        config["benchmark"][bench][task]["samples"] = args.samples

    root = (args.keep or Path(tempfile.mkdtemp(prefix="checks_bench."))).resolve()
    root.mkdir(parents=True, exist_ok=True)
    cwd = os.getcwd()
    os.chdir(root)  # plans name their outputs relative to the work directory
    try:
        t0 = time.perf_counter()
        manifests, raw_dirs = build_corpus(root, config)
        plans = {}
        for bench, task in TASKS:
            table = plan_task(bench, task, config, manifests, raw_dirs)
            plans[task] = (bench, table.to_pylist())
        print(
            f"corpus and plans (untimed): {time.perf_counter() - t0:.1f} s under {root}; "
            f"clips {args.duration} s, {args.width}x{args.height} @ {args.fps} fps"
        )
        results = {
            task: time_task(rows, media_settings(bench, task, config["media"]))
            for task, (bench, rows) in plans.items()
        }
    finally:
        os.chdir(cwd)
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0 if report(results) else 1


if __name__ == "__main__":
    sys.exit(main())
