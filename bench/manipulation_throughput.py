"""Media manipulation throughput: the workflow's shards vs. one shell ffmpeg per sample.

Both sides produce the same samples from the same synthetic corpus, in the same run:

- **workflow**: ``avtrust.bench.shards.run_shard`` on each task's plan, as the
  ``manipulate_shard`` rule runs it: a thread pool of ffmpeg processes, streams copied
  wherever the manipulation only rearranges them (strip a stream, combine the video of
  one clip with the audio of another, concatenate compatible clips).
- **baseline**: what the authors' released generator does, one ffmpeg process per
  sample started through a shell string, one after another, re-encoding every stream
  (ffmpeg's defaults: libx264 and AAC for MP4).

The tasks are MVIT, MAIT (combine), MAT, MVT (strip a stream) and COT-Stitch
(concatenate). The clips are shaped like the real sources (10 s, 640x360, 25 fps)
unless told otherwise.

    .venv/bin/python bench/manipulation_throughput.py
    .venv/bin/python bench/manipulation_throughput.py --duration 2 --width 128 \\
        --height 96 --fps 8              # the embedded default's tiny clips
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import yaml

from avtrust.bench.plan import plan_task
from avtrust.bench.shards import run_shard
from avtrust.datasets.index import index_dataset
from avtrust.datasets.synthetic import generate
from avtrust.io import write_parquet_atomic

REPO = Path(__file__).resolve().parents[1]
TARGET_RATIO = 5.0
TASKS = ["MVIT", "MAIT", "MAT", "MVT", "COT-Stitch"]


def build_corpus(root: Path, config: dict) -> tuple[dict[str, str], dict[str, str]]:
    """Generate and index the synthetic datasets the TASKS use: (manifests, raw dirs)."""
    datasets = sorted({config["benchmark"]["avtrustbench"][t]["dataset"] for t in TASKS})
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


def plan_tasks(root: Path, config: dict, manifests: dict, raw_dirs: dict) -> dict[str, Path]:
    """Plan every task of TASKS; returns the plan files."""
    plans = {}
    for task in TASKS:
        table = plan_task("avtrustbench", task, config, manifests, raw_dirs)
        plans[task] = root / "results" / "plan" / f"{task}.parquet"
        write_parquet_atomic(plans[task], table)
    return plans


def run_workflow(plans: dict[str, Path], media: dict, workers: int) -> dict[str, tuple]:
    """Each plan through ``run_shard`` (one shard per task): {task: (samples, ok, s)}."""
    out = {}
    for task, path in plans.items():
        t0 = time.perf_counter()
        results = run_shard(str(path), 0, 1, media, workers=workers)
        out[task] = (results.num_rows, sum(results["ok"].to_pylist()), time.perf_counter() - t0)
    return out


def baseline_command(op: str, args: dict, out: str) -> str:
    """The authors' way: one ffmpeg command line per sample, streams re-encoded."""
    q = shlex.quote
    if op == "combine":
        video, audio = q(args["video_src"]), q(args["audio_src"])
        return f"ffmpeg -y -i {video} -i {audio} -map 0:v -map 1:a {q(out)}"
    if op == "strip_audio":
        return f"ffmpeg -y -i {q(args['src'])} -an {q(out)}"
    if op == "strip_video":
        return f"ffmpeg -y -i {q(args['src'])} -vn {q(out)}"
    if op == "concat":
        graph = q("[0:v][0:a][1:v][1:a]concat=n=2:v=1:a=1[v][a]")
        return (
            f"ffmpeg -y -i {q(args['src1'])} -i {q(args['src2'])} "
            f"-filter_complex {graph} -map '[v]' -map '[a]' {q(out)}"
        )
    raise ValueError(f"no baseline command for {op!r}")


def run_baseline(plans: dict[str, Path], out_dir: Path) -> dict[str, tuple]:
    """Every planned sample with its own shell ffmpeg, one after another:
    {task: (samples, ok, s)}."""
    out_dir.mkdir(parents=True, exist_ok=True)
    out = {}
    for task, path in plans.items():
        rows = pq.read_table(path).to_pylist()
        ok = 0
        t0 = time.perf_counter()
        for row in rows:
            dst = out_dir / Path(row["media_path"]).name
            command = baseline_command(row["op"], json.loads(row["op_args"]), str(dst))
            # The deliberate baseline: a shell string per sample, as the released generator.
            proc = subprocess.run(  # noqa: S602
                command,
                shell=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
            )
            ok += proc.returncode == 0 and dst.is_file() and dst.stat().st_size > 0
        out[task] = (len(rows), ok, time.perf_counter() - t0)
    return out


def report(ours: dict[str, tuple], base: dict[str, tuple], workers: int) -> bool:
    """Print samples/s per task and overall; True when every sample succeeded."""
    print(f"{'task':<12}{'workflow/s':>12}{'baseline/s':>12}{'ratio':>8}")
    for task in ours:
        (n, _, s), (bn, _, bs) = ours[task], base[task]
        print(f"{task:<12}{n / s:>12.2f}{bn / bs:>12.2f}{(n / s) / (bn / bs):>8.2f}")
    n, ok, s = (sum(v[i] for v in ours.values()) for i in range(3))
    bn, bok, bs = (sum(v[i] for v in base.values()) for i in range(3))
    print(
        f"workflow (run_shard, {workers} workers, stream copy): {n} samples ({ok} ok) "
        f"in {s:.2f} s = {n / s:.2f} samples/s"
    )
    print(
        f"baseline (one shell ffmpeg per sample, re-encode): {bn} samples ({bok} ok) "
        f"in {bs:.2f} s = {bn / bs:.2f} samples/s"
    )
    ratio = (n / s) / (bn / bs)
    verdict = "met" if ratio >= TARGET_RATIO else "MISSED"
    print(
        f"ratio: {ratio:.2f} x the baseline's samples/s (target >= {TARGET_RATIO:.0f} x: {verdict})"
    )
    return ok == n and bok == bn


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # Defaults: clips shaped like the real sources (AudioSet/AVQA: 10 s, 360p, 25 fps);
    # --duration 2 --width 128 --height 96 --fps 8 gives the embedded default's clips.
    parser.add_argument("--samples", type=int, default=8, help="samples per task")
    parser.add_argument("--workers", type=int, default=2, help="run_shard's thread pool")
    parser.add_argument("--duration", type=float, default=10.0, help="clip seconds")
    parser.add_argument("--width", type=int, default=640, help="frame width")
    parser.add_argument("--height", type=int, default=360, help="frame height")
    parser.add_argument("--fps", type=int, default=25, help="frame rate")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args(argv)
    if shutil.which("ffmpeg") is None:
        sys.exit("ffmpeg is not on PATH (Debian/Ubuntu: apt-get install ffmpeg)")

    config = copy.deepcopy(yaml.safe_load((REPO / "config" / "config.yaml").read_text()))
    for key, corpus_key in (
        ("duration", "duration_s"),
        ("width", "width"),
        ("height", "height"),
        ("fps", "fps"),
    ):
        if getattr(args, key) is not None:
            config["corpus"][corpus_key] = getattr(args, key)
    for task in TASKS:
        config["benchmark"]["avtrustbench"][task]["samples"] = args.samples
    media = {
        "sample_rate": config["media"]["sample_rate"],
        "audio_codec": config["media"]["audio_codec"],
    }

    root = (args.keep or Path(tempfile.mkdtemp(prefix="manip_bench."))).resolve()
    root.mkdir(parents=True, exist_ok=True)
    cwd = os.getcwd()
    os.chdir(root)  # plans name their outputs relative to the work directory
    try:
        t0 = time.perf_counter()
        manifests, raw_dirs = build_corpus(root, config)
        plans = plan_tasks(root, config, manifests, raw_dirs)
        c = config["corpus"]
        print(
            f"corpus and plans (untimed): {time.perf_counter() - t0:.1f} s under {root}; "
            f"clips {c['duration_s']} s, {c['width']}x{c['height']} @ {c['fps']} fps"
        )
        ours = run_workflow(plans, media, args.workers)
        base = run_baseline(plans, root / "baseline")
    finally:
        os.chdir(cwd)
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    print(f"{args.samples} samples per task")
    return 0 if report(ours, base, args.workers) else 1


if __name__ == "__main__":
    sys.exit(main())
