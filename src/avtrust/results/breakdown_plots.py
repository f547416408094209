"""Figures of the breakdowns (:mod:`avtrust.results.breakdowns`), with the conventions of
:mod:`avtrust.results.plots`: one colour per model, lighter for ``loglik``, 95% Wilson
error bars on proportions, a hatched "n/a" stub where a model has no result for a level
(never a 0-high bar; a real 0 is labelled "0").

- ``breakdown_category.png``: accuracy per category, one panel per task;
- ``breakdown_m1.png``: m1 Yes-rate by number of instruments and by muted instrument;
- ``breakdown_m2.png``: m2 by replacement sound and by SNR: the judge's A-Acc % and
  V-Acc % where any description was judged, and the keyword audio match % always;
- ``breakdown_judge_scores.png``: the share of judged descriptions per score 0–5,
  audio and visual.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from avtrust.results.breakdowns import build_breakdown
from avtrust.results.plots import (
    MISSING,
    _bar_set,
    _empty,
    _legend,
    _lighter,
    _patch,
    _pyplot,
    _save,
    _wrap,
    _x_labels_fit,
    colours,
)
from avtrust.results.tables import Row, Table, interval
from avtrust.results.views import Column

PathLike = str | os.PathLike
PLOTS = [
    "breakdown_category.png",
    "breakdown_m1.png",
    "breakdown_m2.png",
    "breakdown_judge_scores.png",
]
GREY = (0.5, 0.5, 0.5, 1.0)


def _series(rows: list[Row]) -> list[tuple[str, str]]:
    return sorted({(r.model, r.mode) for r in rows})  # the same order in every panel


def grouped_bars(ax, table: Table, rows: list[Row], key: str, column: str,
                 palette: Mapping[str, tuple]) -> list:  # fmt: skip
    """Bars of ``column`` for each level of ``key`` (x) and each (model, mode) (colour);
    returns the legend handles. A (model, mode) without a row for a level gets "n/a"."""
    spec = next(c for c in table.columns if c.name == column)
    levels = list(dict.fromkeys(r.keys.get(key) for r in rows))
    series = _series(rows)
    cells = {(r.keys.get(key), r.model, r.mode): r for r in rows}
    width = 0.8 / max(len(series), 1)
    handles = []
    for k, (model, mode) in enumerate(series):
        xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(levels))]
        found = [cells.get((level, model, mode)) for level in levels]
        values = [r.number(column) if r else None for r in found]
        errors = [interval(spec, v, r.n.get(column)) if r else None
                  for v, r in zip(values, found, strict=True)]  # fmt: skip
        colour = palette.get(model, GREY)
        face = colour if mode != "loglik" else _lighter(colour)
        handles.append(_bar_set(ax, xs, values, errors, face, f"{model} ({mode})", width,
                                edgecolor=colour))  # fmt: skip
    names = [_wrap("(unknown)" if level is None else str(level), 14) for level in levels]
    tilt = len(levels) > 4 and max(map(len, names)) > 6  # long names of many levels
    ax.set_xticks(range(len(levels)), names, rotation=30 if tilt else 0,
                  ha="right" if tilt else "center", fontsize=7)  # fmt: skip
    ax.set_ylim(0, 105)
    return handles


def _panels(plt, count: int, ncols: int, size=(5.0, 3.6)):
    ncols = max(1, min(ncols, count))
    nrows = -(-max(count, 1) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows),
                             squeeze=False)  # fmt: skip
    return fig, list(axes.ravel())


def _finish(fig, axes, used: int, handles: list, path: PathLike, no_data: str | None) -> Path:
    plt = _pyplot()
    for ax in axes[used:]:
        ax.set_axis_off()
    if no_data:
        _empty(axes[0], no_data)
    else:
        unique = {h.get_label(): h for h in handles}
        _legend(axes[min(used, len(axes)) - 1] if used else axes[0],
                [*unique.values(), _patch("n/a: no result", **MISSING)])  # fmt: skip
    fig.tight_layout()
    _x_labels_fit(fig, axes[:used])
    out = _save(fig, path)
    plt.close(fig)
    return out


def category_plot(con, path: PathLike, palette: Mapping[str, tuple]) -> Path:
    """Accuracy per category, one panel per task."""
    plt = _pyplot()
    table = build_breakdown(con, "breakdown_category")
    tasks = list(dict.fromkeys(r.keys["task"] for r in table.rows))
    fig, axes = _panels(plt, len(tasks), 2, (6.0, 3.8))
    handles = []
    for ax, task in zip(axes, tasks, strict=False):
        rows = [r for r in table.rows if r.keys["task"] == task]
        handles += grouped_bars(ax, table, rows, "category", "Acc", palette)
        ax.set_title(f"{task}: accuracy per category", fontsize=9)
        ax.set_ylabel("accuracy (%), 95% Wilson", fontsize=8)
    return _finish(fig, axes, len(tasks), handles, path,
                   None if tasks else "no results with a category")  # fmt: skip


def m1_plot(con, path: PathLike, palette: Mapping[str, tuple]) -> Path:
    """m1 Yes-rate by number of instruments and by muted instrument."""
    plt = _pyplot()
    fig, axes = _panels(plt, 2, 2)
    handles, used = [], 0
    for ax, (name, key, label) in zip(axes, [
        ("breakdown_m1_instruments", "instruments", "number of instruments in view"),
        ("breakdown_m1_muted", "muted instrument", "muted instrument"),
    ], strict=True):  # fmt: skip
        table = build_breakdown(con, name)
        if table.rows:
            used += 1
            handles += grouped_bars(ax, table, table.rows, key, "Yes-rate", palette)
        ax.set_title(f'm1: "yes" to the muted instrument, by {label}', fontsize=9)
        ax.set_ylabel("Yes-rate (%, lower is better), 95% Wilson", fontsize=8)
    return _finish(fig, axes, used, handles, path, None if used else "no m1 results")


def m2_plot(con, path: PathLike, palette: Mapping[str, tuple]) -> Path:
    """m2 by sound type and by SNR: judge A-Acc/V-Acc % where judged, audio match %."""
    plt = _pyplot()
    groups = [(build_breakdown(con, "breakdown_m2_sound"), "sound type"),
              (build_breakdown(con, "breakdown_m2_snr"), "SNR")]  # fmt: skip
    judged = any(r.n.get("A-Acc") for t, _ in groups for r in t.rows)
    metrics = (["A-Acc %", "V-Acc %"] if judged else []) + ["Audio match %"]
    titles = {"A-Acc %": "judge A-Acc (sum / 5n)", "V-Acc %": "judge V-Acc (sum / 5n)",
              "Audio match %": "keyword audio match"}  # fmt: skip
    fig, axes = _panels(plt, 2 * len(metrics), len(metrics))
    handles = []
    if groups[0][0].rows:
        for i, (table, key) in enumerate(groups):
            for j, metric in enumerate(metrics):
                ax = axes[i * len(metrics) + j]
                handles += grouped_bars(ax, table, table.rows, key, metric, palette)
                ax.set_title(f"m2: {titles[metric]} by {key}", fontsize=9)
                ax.set_ylabel("%" + (", 95% Wilson" if metric == "Audio match %" else ""),
                              fontsize=8)  # fmt: skip
    used = len(axes) if groups[0][0].rows else 0
    return _finish(fig, axes, used, handles, path, None if used else "no m2 results")


def judge_scores_plot(con, path: PathLike, palette: Mapping[str, tuple]) -> Path:
    """Share of the judged descriptions per score 0–5, audio and visual."""
    plt = _pyplot()
    table = build_breakdown(con, "breakdown_judge_scores")
    fig, axes = _panels(plt, 2, 2)
    handles, used = [], 0
    # one bar group per score: rows are re-keyed by score, one row per (model, mode)
    for ax, part in zip(axes, ("audio", "visual"), strict=True):
        rows = [r for r in table.rows if r.keys["part"] == part]
        if not rows:
            continue
        used += 1
        by_score = [
            Row(r.model, r.mode, {"share": r.values.get(c.name)}, {"share": r.n.get(c.name)},
                keys={"score": c.name.split()[-1]})
            for c in table.columns
            for r in rows
        ]  # fmt: skip
        shares = Table(table.view, table.title, [Column("share", "rate")], by_score,
                       keys=["score"])  # fmt: skip
        handles += grouped_bars(ax, shares, by_score, "score", "share", palette)
        ax.set_title(f"judge's {part} scores (n/a: no judged description)", fontsize=9)
        ax.set_xlabel("score (0–5)", fontsize=8)
        ax.set_ylabel("% of judged descriptions, 95% Wilson", fontsize=8)
    return _finish(fig, axes, used, handles, path, None if used else "no judge verdicts")


def all_plots(con, out_dir: PathLike, palette: Mapping[str, tuple] | None = None) -> list[Path]:
    """Every breakdown figure in ``out_dir`` (names in PLOTS); returns the paths."""
    palette = dict(palette or colours(con))
    out_dir = Path(out_dir)
    makers = [category_plot, m1_plot, m2_plot, judge_scores_plot]
    return [make(con, out_dir / name, palette) for make, name in zip(makers, PLOTS, strict=True)]
