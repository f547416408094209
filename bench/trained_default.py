"""The trained embedded default's findings next to issue 17's targets.

Reads a default run's results — ``results/pretrain/<thinker>.json`` (the pretrain
stage's summary) and the views of ``results/results.duckdb`` — and prints one table:
figure, measured value, target, whether it is met. ``--run`` first runs the README's
main command (``snakemake --cores N``) in ``--workdir``; without it the script reads a
run already there. A figure the run does not have (a model not evaluated on a benchmark,
a model not pre-trained) is printed as missing, never guessed.

    .venv/bin/python bench/trained_default.py --workdir .            # read a finished run
    .venv/bin/python bench/trained_default.py --workdir /tmp/d --run --cores 2

These are research targets: nothing is tuned to the test split, and the printed values
are what the run measured.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def view_value(con, view: str, model: str, column: str, mode: str) -> float | None:
    """One cell of a results view (None when the model or mode has no row)."""
    rows = con.execute(
        f'SELECT "{column}" FROM {view} WHERE model = ? AND mode = ?', [model, mode]
    ).fetchall()
    return None if not rows or rows[0][0] is None else float(rows[0][0])


def figures(
    results: Path, mode: str, thinker: str = "omni"
) -> list[tuple[str, object, str, object]]:
    """(figure, measured, target, met) rows; ``met`` is None when not measurable."""
    import duckdb

    out: list[tuple[str, object, str, object]] = []
    summary_path = results / "pretrain" / f"{thinker}.json"
    if summary_path.is_file():
        summary = json.loads(summary_path.read_text())
        acc = summary.get("held_out_accuracy", {})
        out.append(
            (
                "pretrain loss first -> last",
                f"{summary['loss_first']:.3f} -> {summary['loss_last']:.3f}",
                "falls",
                summary["loss_last"] < summary["loss_first"],
            )
        )
        if acc:
            out.append(
                (
                    "pretrain held-out corpus QA acc %",
                    round(100 * acc["all"], 1),
                    f"chance {100 * acc['all_chance']:.1f}",
                    acc["all"] > acc["all_chance"],
                )
            )
    else:
        out.append(("pretrain summary", "missing", "pretrain.enabled", None))

    con = duckdb.connect(str(results / "results.duckdb"), read_only=True)

    def cell(view, model, column):
        return view_value(con, view, model, column, mode)

    def row(name, value, target, test):
        met = None if value is None else test(value)
        out.append((name, "missing" if value is None else round(value, 1), target, met))

    qa = cell("rlcomm_main", thinker, "Avg")
    row("thinker clean MUSIC-AVQA acc %", qa, ">= 85", lambda v: v >= 85)
    yes = cell("avconfusebench", thinker, "Yes-rate")
    row("thinker m1 Yes-rate %", yes, ">= 80", lambda v: v >= 80)
    drops = {}
    for method in ("rlcomm", "grpo_acc", "sft"):
        other = cell("avconfusebench", method, "Yes-rate")
        drops[method] = None if other is None or yes is None else yes - other
    row("RL-CoMM m1 Yes-rate drop (points)", drops["rlcomm"], ">= 20", lambda v: v >= 20)
    row(
        "GRPO-acc m1 Yes-rate drop (points)",
        drops["grpo_acc"],
        "< RL-CoMM's",
        lambda v: drops["rlcomm"] is not None and v < drops["rlcomm"],
    )
    row("SFT m1 Yes-rate drop (points)", drops["sft"], "paper: < 0 (worse)", lambda v: v < 0)
    rl_qa = cell("rlcomm_main", "rlcomm", "Avg")
    qa_drop = None if qa is None or rl_qa is None else qa - rl_qa
    row("RL-CoMM clean QA drop (points)", qa_drop, "<= 5", lambda v: v <= 5)
    avg = {m: cell("avtrustbench", m, "Avg") for m in (thinker, "dpo", "cavpref")}
    for base in (thinker, "dpo"):
        gain = None if avg["cavpref"] is None or avg[base] is None else avg["cavpref"] - avg[base]
        row(f"CAVPref - {base} AVTrustBench Avg (points)", gain, "> 0", lambda v: v > 0)
    for task in ("MVIT", "MAIT", "MAT", "MVT"):
        c, d = cell("avtrustbench", "cavpref", task), cell("avtrustbench", "dpo", task)
        gain = None if c is None or d is None else c - d
        row(f"CAVPref - DPO on {task} (points)", gain, "> 0", lambda v: v > 0)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("."))
    parser.add_argument("--run", action="store_true", help="run the default workflow first")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--mode", default="generate", help="scoring mode rows: generate | loglik")
    args = parser.parse_args(argv)
    if args.run:
        start = time.time()
        cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]
        cmd += ["--configfile", str(REPO / "config" / "config.yaml")]
        cmd += ["--directory", str(args.workdir), "--cores", str(args.cores)]
        subprocess.run(cmd, check=True)
        print(f"default run: {time.time() - start:.0f} s on {args.cores} cores")
    rows = figures(args.workdir / "results", args.mode)
    width = max(len(r[0]) for r in rows)
    print(f"{'figure':<{width}}  {'measured':>14}  {'target':<20} met")
    for name, value, target, met in rows:
        mark = "-" if met is None else ("yes" if met else "NO")
        print(f"{name:<{width}}  {value!s:>14}  {target:<20} {mark}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
