"""The embedded default's findings next to the targets a trained default aims at.

Reads a default run's results — ``results/pretrain/<model>.json`` (the pretrain stage's
summaries), the RL methods' training logs and the views of ``results/results.duckdb`` —
and prints one table: figure, measured value, target, whether it is met; ``--figure``
draws it, ``--readme`` rewrites the README's "What the default run shows" table.
``--run`` first runs the README's main command (``snakemake --cores N``) in
``--workdir``; without it the script reads a run already there. A figure the run does
not have (a model not evaluated on a benchmark, a model not pre-trained) is printed as
missing, never guessed.

    .venv/bin/python bench/trained_default.py --workdir .            # read a finished run
    .venv/bin/python bench/trained_default.py --workdir /tmp/d --run --cores 2
    .venv/bin/python bench/trained_default.py --workdir . --mode loglik \
        --figure docs/trained_default.png --readme README.md

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


def _read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


# the corpus's question category the default's thinker is pre-trained on
EXISTENCE = "Audio-Visual/Existential"


def pretrain_figures(folder: Path, thinker: str) -> list[tuple[str, object, str, object]]:
    """The pretrain stage's summaries (``results/pretrain/<model>.json``): the thinker's
    loss and held-out corpus accuracy, the audio LLM's share of held-out replies naming
    exactly the clip's instruments, CLAP's held-out audio->caption retrieval and the
    embedder's held-out paraphrase retrieval; a model not pre-trained is missing."""
    out: list[tuple[str, object, str, object]] = []
    summary = _read_json(folder / f"{thinker}.json")
    if summary is None:
        out.append(("thinker pretrain", "missing", "pretrain.models", None))
    else:
        out.append(
            (
                "thinker pretrain loss first -> last",
                f"{summary['loss_first']:.3f} -> {summary['loss_last']:.3f}",
                "falls",
                summary["loss_last"] < summary["loss_first"],
            )
        )
        acc = summary.get("held_out_accuracy")
        if acc:
            out.append(
                (
                    "thinker held-out corpus QA acc %",
                    round(100 * acc["all"], 1),
                    f"chance {100 * acc['all_chance']:.1f}",
                    acc["all"] > acc["all_chance"],
                )
            )
            existence = acc.get("by_category", {}).get(EXISTENCE)
            if existence is not None:
                out.append(
                    (
                        "thinker held-out 'Is the X in the video making sound?' acc %",
                        round(100 * existence, 1),
                        "chance 50",
                        existence > 0.5,
                    )
                )
        visual = summary.get("held_out_visual_accuracy")
        if visual is not None:
            out.append(
                (
                    "thinker held-out 'Is there a X in the video?' (silent) acc %",
                    round(100 * visual, 1),
                    "chance 50",
                    visual > 0.5,
                )
            )
    tower = _read_json(folder / f"{thinker}_vision_tower.json")
    if tower is not None:
        share = round(100 * tower["held_out_exact"], 1)
        name = "vision tower held-out exact on-screen set %"
        out.append((name, share, f"> 0 (n={tower['held_out_clips']})", share > 0))
        described = (tower.get("align") or {}).get("held_out_described")
        if described is not None:
            share = round(100 * described, 1)
            name = "thinker describes held-out silent clips exactly % (vision job)"
            out.append((name, share, f"> 0 (n={tower['held_out_clips']})", share > 0))
    named = (_read_json(folder / "audio_llm.json") or {}).get("held_out")
    name = "audio LLM names held-out clips' instruments %"
    if named:
        share = round(100 * named["names_instruments"], 1)
        out.append((name, share, ">= 80 (exact set)", share >= 80))
    else:
        out.append((name, "missing", "pretrain.models", None))
    for model, name, target in (
        ("clap", "CLAP held-out audio->caption top-1 %", 90),
        ("embedder", "embedder held-out paraphrase top-1 %", None),
    ):
        held = (_read_json(folder / f"{model}.json") or {}).get("held_out")
        if not held:
            out.append((name, "missing", "pretrain.models", None))
            continue
        top1, chance = 100 * held["top1"], 100 * held["chance"]
        if target is None:
            out.append((name, round(top1, 1), f"> chance {chance:.1f}", top1 > chance))
        else:
            # the held-out clips are few (30 in the default): a seed moves the figure
            clips = f", n={held['clips']}" if "clips" in held else ""
            target_text = f">= {target} (chance {chance:.1f}{clips})"
            out.append((name, round(top1, 1), target_text, top1 >= target))
    return out


def reward_figures(checkpoints: Path) -> list[tuple[str, object, str, object]]:
    """Each RL method's mean GRPO reward on its training prompts, scored by the policy it
    started from and by the trained one (``results/checkpoints/<method>/metrics.json``,
    ``reward_mean_before`` / ``_after``: the same prompts and sampling seeds both times):
    the issue asks for rewards that are non-zero and rise. (The per-step log is no
    measure of that: a step of the default scores one question's group.)"""
    out: list[tuple[str, object, str, object]] = []
    for method in ("rlcomm_steprr", "grpo_acc"):
        path = checkpoints / method / "metrics.json"
        metrics = json.loads(path.read_text()) if path.is_file() else {}
        name = f"{method} mean reward on its training prompts, start -> trained"
        if "reward_mean_before" not in metrics or "reward_mean_after" not in metrics:
            out.append((name, "missing", "non-zero, rises", None))
            continue
        before, after = metrics["reward_mean_before"], metrics["reward_mean_after"]
        met = after > 0 and after > before
        out.append((name, f"{before:.3f} -> {after:.3f}", "non-zero, rises", met))
    return out


def figures(
    results: Path, mode: str, thinker: str = "omni", dpo_beta: float | None = None
) -> list[tuple[str, object, str, object]]:
    """(figure, measured, target, met) rows; ``met`` is None when not measurable (or a
    row gives context); ``dpo_beta``: the run's ``training.dpo.beta``, shown beside
    CAVPref's calibrated β."""
    import duckdb

    out: list[tuple[str, object, str, object]] = []
    out += pretrain_figures(results / "pretrain", thinker)
    out += reward_figures(results / "checkpoints")

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
    for method in DROPPED:
        other = cell("avconfusebench", method, "Yes-rate")
        drops[method] = None if other is None or yes is None else yes - other
    row("RL-CoMM m1 Yes-rate drop (points)", drops["rlcomm"], ">= 20", lambda v: v >= 20)
    row(
        "GRPO-acc m1 Yes-rate drop (points)",
        drops["grpo_acc"],
        "< RL-CoMM's",
        lambda v: drops["rlcomm"] is not None and v < drops["rlcomm"],
    )
    # The paper's "+ SFT" is SFT on the QA data, as RL-CoMM's warm-up is; `sft` is
    # CAVPref's SFT baseline, trained on AVTrustBench's chosen answers.
    row(
        "QA SFT (RL-CoMM's warm-up) m1 Yes-rate drop (points)",
        drops["rlcomm_warmup"],
        "paper: < 0 (worse)",
        lambda v: v < 0,
    )
    row("AVTrustBench SFT m1 Yes-rate drop (points)", drops["sft"], "context", lambda v: None)
    out.append(existence_row(cell, thinker))
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
    ablations = {m: cell("avtrustbench", m, "Avg") for m in ABLATIONS}
    out += ablation_rows(ablations, avg["dpo"])
    out += moved_rows(con, mode, thinker)
    out += beta_rows(results / "score" / "cavpref" / "pairs.parquet", dpo_beta)
    return out


# The models whose m1 Yes-rate drop from the zero-shot thinker's is reported.
DROPPED = ("rlcomm", "grpo_acc", "rlcomm_warmup", "sft")


def existence_row(cell, thinker: str) -> tuple[str, object, str, object]:
    """The clean MUSIC-AVQA audio-visual existence accuracy of the thinker and of the
    methods whose m1 drop is reported (``cell(view, model, column)``). m1 asks only
    questions whose answer is "no": a model that says "no" to every existence question
    lowers its Yes-rate without hearing the muted instrument, and the clean existence
    questions (some answered "yes") tell the two apart."""
    exist = {m: cell("rlcomm_main", m, "AV Exist") for m in (thinker, *DROPPED)}
    return (
        "clean MUSIC-AVQA AV existence acc % " + " / ".join(exist),
        " / ".join("missing" if v is None else f"{v:.1f}" for v in exist.values()),
        "context: an m1 drop is hearing only where this holds",
        None,
    )


# How far preference training moved each model from the zero-shot one it started from.
MOVED = ("dpo", "cavpref", "cavpref_fixed_beta")


def moved_rows(con, mode: str, thinker: str) -> list[tuple[str, object, str, object]]:
    """Share of AVTrustBench test questions a preference-trained model answers otherwise
    than ``thinker`` (the zero-shot start): context for CAVPref against DPO, how far
    each moved from the model it started from. Models not evaluated are left out."""
    out: list[tuple[str, object, str, object]] = []
    for model in MOVED:
        (share,) = con.execute(
            """SELECT 100 * avg(CASE WHEN p.parsed_index IS DISTINCT FROM z.parsed_index
                                THEN 1 ELSE 0 END)
               FROM predictions p JOIN predictions z
                 ON z.model = ? AND z.mode = p.mode AND z.bench = p.bench
                AND z.task = p.task AND z.id = p.id
               WHERE p.model = ? AND p.mode = ? AND p.bench = 'avtrustbench'""",
            [thinker, model, mode],
        ).fetchone()
        if share is not None:
            name = f"{model} AVTrustBench answers changed from zero-shot %"
            out.append((name, round(share, 1), "context", None))
    return out


def beta_rows(pairs: Path, dpo_beta: float | None) -> list[tuple[str, object, str, object]]:
    """The CAVPref pairs' mean calibrated β of the text, video and audio terms (from the
    score stage's pairs file) beside DPO's fixed β; nothing when there are no pairs."""
    if not pairs.is_file():
        return []
    import pandas as pd

    frame = pd.read_parquet(pairs, columns=["beta_text", "beta_video", "beta_audio"])
    means = " / ".join(f"{frame[c].mean():.2f}" for c in frame.columns)
    target = "context" if dpo_beta is None else f"context: DPO's β {dpo_beta:g}"
    return [("CAVPref pairs' mean calibrated β text / video / audio", means, target, None)]


# CAVPref's ablations; shown when the run evaluated them (what each drops: README).
ABLATIONS = ("cavpref_no_robust", "cavpref_no_av", "cavpref_fixed_beta", "cavpref_beta_only")


def ablation_rows(averages: dict, dpo: float | None) -> list[tuple[str, object, str, object]]:
    """One row per evaluated ablation: its AVTrustBench Avg against DPO's, no target
    (they say which of CAVPref's parts moves it, see README "What the default run
    shows"); ablations the run did not evaluate are left out."""
    return [
        (f"{name} - DPO AVTrustBench Avg (points)", round(value - dpo, 1), "ablation", None)
        for name, value in averages.items()
        if value is not None and dpo is not None
    ]


def mark(met) -> str:
    return "-" if met is None else ("yes" if met else "NO")


def plain_table(rows) -> str:
    width = max(len(r[0]) for r in rows)
    lines = [f"{'figure':<{width}}  {'measured':>18}  {'target':<24} met"]
    lines += [f"{n:<{width}}  {v!s:>18}  {t:<24} {mark(m)}" for n, v, t, m in rows]
    return "\n".join(lines)


def markdown_table(rows, mode: str, figure: Path | None) -> str:
    lines = [
        f"Measured by `bench/trained_default.py` ({mode} rows), beside a trained default's"
        " targets:",
        "",
        "| figure | measured | target | met |",
        "|---|---|---|---|",
    ]
    lines += [f"| {n} | {v} | {t} | {mark(m)} |" for n, v, t, m in rows]
    if figure is not None:
        lines += ["", f"![the default run's figures against their targets]({figure.as_posix()})"]
    return "\n".join(lines)


def markers(section: str = "trained-default") -> tuple[str, str]:
    """The comments around a README section the bench rewrites."""
    return f"<!-- {section}: start -->", f"<!-- {section}: end -->"


def replace_section(path: Path, body: str, section: str = "trained-default") -> None:
    """Replace what lies between the :func:`markers` of ``section`` in ``path`` (both
    must be there)."""
    text = path.read_text(encoding="utf-8")
    first, last = markers(section)
    start, end = text.find(first), text.find(last)
    if start < 0 or end < start:
        raise SystemExit(f"{path}: no {first} ... {last} section to rewrite")
    head = text[: start + len(first)]
    path.write_text(f"{head}\n{body}\n{text[end:]}", encoding="utf-8")


def write_figure(rows, path: Path, title: str) -> None:
    """The table as a picture, each row coloured by whether its target is met."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colour = {True: "#c7e9c0", False: "#fcbba1", None: "#eeeeee"}
    fig, ax = plt.subplots(figsize=(11, 0.25 * len(rows) + 0.6))
    ax.axis("off")
    table = ax.table(
        cellText=[[n, str(v), t, mark(m)] for n, v, t, m in rows],
        colLabels=["figure", "measured", "target", "met"],
        cellColours=[[colour[m]] * 4 for *_, m in rows],
        colWidths=[0.6, 0.14, 0.2, 0.06],
        loc="center",
        cellLoc="left",
    )
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    ax.set_title(title, fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def dpo_beta(workdir: Path) -> float | None:
    """``training.dpo.beta`` of the run's config (the workdir's own, else the repository's)."""
    import yaml

    for config in (workdir / "config" / "config.yaml", REPO / "config" / "config.yaml"):
        if config.is_file():
            section = (yaml.safe_load(config.read_text()) or {}).get("training") or {}
            return (section.get("dpo") or {}).get("beta")
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("."))
    parser.add_argument("--run", action="store_true", help="run the default workflow first")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--mode", default="generate", help="scoring mode rows: generate | loglik")
    parser.add_argument("--figure", type=Path, help="also draw the table into this PNG")
    parser.add_argument(
        "--readme",
        type=Path,
        help="rewrite this file's section between the --section markers with the table",
    )
    parser.add_argument(
        "--section",
        default="trained-default",
        help="the README section (<!-- NAME: start --> ... <!-- NAME: end -->); "
        "hearing-thinker for a run with config/hearing_thinker.yaml",
    )
    parser.add_argument(
        "--configfile",
        type=Path,
        action="append",
        default=[],
        help="with --run: an overlay on config/config.yaml (e.g. config/hearing_thinker.yaml)",
    )
    args = parser.parse_args(argv)
    if args.run:
        start = time.time()
        cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]
        cmd += ["--configfile", str(REPO / "config" / "config.yaml"), *map(str, args.configfile)]
        cmd += ["--directory", str(args.workdir), "--cores", str(args.cores)]
        subprocess.run(cmd, check=True)
        print(f"default run: {time.time() - start:.0f} s on {args.cores} cores")
    rows = figures(args.workdir / "results", args.mode, dpo_beta=dpo_beta(args.workdir))
    print(plain_table(rows))
    if args.figure:
        write_figure(rows, args.figure, f"{args.mode} rows, bench/trained_default.py")
        print(f"figure: {args.figure}")
    if args.readme:
        replace_section(args.readme, markdown_table(rows, args.mode, args.figure), args.section)
        print(f"README section rewritten: {args.readme}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
