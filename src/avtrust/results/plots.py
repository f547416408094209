"""Figures of the results (matplotlib, Agg backend): task bars, m1 Yes-rate, training curves.

Conventions shared by the figures:

- one colour per evaluated model in every figure (:func:`colours`: the models of the
  ``runs`` table in name order; a training method takes the colour of the model that
  evaluates its checkpoint); ``loglik`` bars are the model's colour, lighter;
- error bars are the 95% Wilson intervals of the tables (:func:`avtrust.results.tables.interval`);
- a missing value is a hatched grey stub labelled "n/a", never a 0-high bar; a real 0
  is labelled "0";
- long labels are wrapped and rotated, the legend sits outside the axes;
- training curves: one row of panels per method family (CAVPref and its baselines,
  RL-CoMM and its stages), one panel per logged key, integer step axes, and methods
  whose values differ by more than 10× on separate axes.
"""

from __future__ import annotations

import json
import math
import os
import textwrap
from collections.abc import Iterable, Mapping
from pathlib import Path

from avtrust.results.tables import build_table, interval
from avtrust.results.views import AVT_TASKS, CAVPREF_METHODS, COLUMNS, RLCOMM_METHODS

PathLike = str | os.PathLike
MISSING = {"color": "0.85", "hatch": "///", "edgecolor": "0.55"}
UNPARSED = {"color": "white", "hatch": "xx", "edgecolor": "0.45"}
PAPER_STYLE = {"color": "white", "edgecolor": "0.2", "linestyle": "--"}
SKIP_KEYS = {"step", "epoch", "learning_rate"}
SCALE_GAP = 10.0  # series whose magnitudes differ by more get separate axes


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120, metadata={"Software": None}, bbox_inches="tight")
    os.replace(tmp, path)
    return path


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


def model_colours(names: Iterable[str]) -> dict[str, tuple]:
    """A distinct colour per name (sorted names → tab10, tab20 beyond 10, then hues)."""
    import matplotlib

    names = sorted(set(names))
    if len(names) <= 10:
        cmap, count = matplotlib.colormaps["tab10"], 10
    elif len(names) <= 20:
        cmap, count = matplotlib.colormaps["tab20"], 20
    else:
        cmap, count = matplotlib.colormaps["hsv"], len(names) + 1
    return {name: tuple(cmap(i / count if count > 20 else i)) for i, name in enumerate(names)}


def colours(con) -> dict[str, tuple]:
    """Colours of every evaluated model, and of each training method (its model's)."""
    runs = con.execute("SELECT model, method FROM runs ORDER BY model").fetchall()
    out = model_colours(model for model, _ in runs)
    for model, method in runs:
        if method and method not in out:
            out[method] = out[model]
    return out


def _lighter(colour, amount: float = 0.55) -> tuple:
    r, g, b = colour[:3]
    return (r + (1 - r) * amount, g + (1 - g) * amount, b + (1 - b) * amount, 1.0)


def _wrap(text: str, width: int = 16) -> str:
    lines = textwrap.wrap(text, width, break_on_hyphens=False, break_long_words=False)
    return "\n".join(lines) or text


def _bar_set(ax, xs, values, errors, face, label, width, **style):
    """Bars for ``values`` (None → hatched "n/a" stub) with asymmetric error bars."""
    for x, value, err in zip(xs, values, errors, strict=True):
        if value is None:
            ax.bar(x, 4, width, bottom=0, **MISSING)
            ax.text(x, 5, "n/a", ha="center", va="bottom", fontsize=6, rotation=90, color="0.4")
            continue
        ax.bar(x, value, width, color=face, **style)
        if err is not None:
            # clamped: a value at 0 or 100 may sit a rounding error outside its interval
            below, above = max(0.0, value - err[0]), max(0.0, err[1] - value)
            ax.errorbar(x, value, yerr=[[below], [above]], fmt="none",
                        ecolor="0.15", elinewidth=0.8, capsize=2)  # fmt: skip
        if value == 0:
            ax.text(x, 1, "0", ha="center", va="bottom", fontsize=6, color="0.2")
    return _patch(label, facecolor=face, **style)


def _patch(label, **style):
    """A legend handle for bars drawn with ``style``."""
    from matplotlib.patches import Patch

    if "color" in style:
        style["facecolor"] = style.pop("color")
    return Patch(label=label, **style)


def _legend(ax, handles) -> None:
    handles = [h for h in handles if h is not None and h.get_label()]
    if handles:
        ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  frameon=False)  # fmt: skip


def _label_overlap(ax) -> float:
    """How much wider (a fraction) ``ax`` must be for neighbouring x tick labels to stand
    a fifth of a label apart; 0 where they do. Reads the last layout pass."""
    boxes = [t.get_window_extent() for t in ax.get_xticklabels() if t.get_text()]
    need = 0.0
    for a, b in zip(boxes, boxes[1:], strict=False):
        gap = b.x0 - a.x1 - 0.2 * a.width
        if gap < 0:
            need = max(need, -gap / max(b.x0 - a.x0, 1.0))
    return need


def _x_labels_fit(fig, axes) -> None:
    """Widen the figure until neighbouring tick labels of each of ``axes`` do not overlap,
    then shrink the labels of the panels where they still do. One layout pass measures
    every panel: the figure's width is shared, so the panel that needs most decides it
    (a pass per panel drew a figure of eleven panels 44 times)."""
    for _ in range(4):
        fig.draw_without_rendering()  # lays the text out; no pixels
        need = max((_label_overlap(ax) for ax in axes), default=0.0)
        if need == 0.0:
            return
        width, height = fig.get_size_inches()
        fig.set_size_inches(width * (1.0 + need) * 1.1, height)
        fig.tight_layout()
    fig.draw_without_rendering()
    for ax in axes:
        if _label_overlap(ax) > 0.0:
            ax.tick_params(axis="x", labelsize=5)


def task_bars(con, path: PathLike, palette: Mapping[str, tuple] | None = None) -> Path:
    """AVTrustBench accuracy per task, one bar per (model, mode), with Wilson intervals."""
    plt = _pyplot()
    table = build_table(con, "avtrustbench", {})
    rows = [r for r in table.rows if not r.paper]
    palette = dict(palette or colours(con))
    columns = {c.name: c for c in COLUMNS["avtrustbench"]}
    fig, ax = plt.subplots(figsize=(max(8.0, 1.0 + 0.35 * len(AVT_TASKS) * max(len(rows), 2)), 4))
    if not rows:
        _empty(ax, "no AVTrustBench results")
    else:
        width = 0.8 / len(rows)
        handles = []
        for k, row in enumerate(rows):
            xs = [i + (k - (len(rows) - 1) / 2) * width for i in range(len(AVT_TASKS))]
            values = [row.number(t) for t in AVT_TASKS]
            errors = [interval(columns[t], row.number(t), row.n.get(t)) for t in AVT_TASKS]
            colour = palette.get(row.model, (0.5, 0.5, 0.5, 1.0))
            face = colour if row.mode != "loglik" else _lighter(colour)
            handles.append(_bar_set(ax, xs, values, errors, face, f"{row.model} ({row.mode})",
                                    width, edgecolor=colour))  # fmt: skip
        ax.set_xticks(range(len(AVT_TASKS)), AVT_TASKS, rotation=30, ha="right")
        ax.set_ylabel("accuracy (%), 95% Wilson interval")
        ax.set_ylim(0, 105)
        _legend(ax, [*handles, _patch("n/a: not evaluated", **MISSING)])
    ax.set_title("AVTrustBench: accuracy per task")
    fig.tight_layout()
    if rows:
        _x_labels_fit(fig, [ax])
    out = _save(fig, path)
    plt.close(fig)
    return out


def yes_rate(con, path: PathLike, palette: Mapping[str, tuple] | None = None,
             paper: dict | None = None) -> Path:  # fmt: skip
    """AV-ConfuseBench m1: Yes-rate (lower is better; the answer is always "no").

    Each bar of ours has the share of unparsed replies stacked on it (hatched): a model
    that never answers has a low Yes-rate and a tall unparsed segment, not a perfect
    score. The papers' Yes-rates are dashed outline bars.
    """
    plt = _pyplot()
    table = build_table(con, "avconfusebench", paper)
    col = {c.name: c for c in COLUMNS["avconfusebench"]}
    rows = [r for r in table.rows
            if r.number("Yes-rate") is not None or r.number("m1 unparsed") is not None]  # fmt: skip
    palette = dict(palette or colours(con))
    fig, ax = plt.subplots(figsize=(max(6.0, 2.5 + 1.05 * len(rows)), 4.6))
    if not rows:
        _empty(ax, "no m1 results")
    else:
        handles = {}
        for x, row in enumerate(rows):
            value, n = row.number("Yes-rate"), row.n.get("Yes-rate")
            err = interval(col["Yes-rate"], value, n)
            if row.paper:
                face, label = PAPER_STYLE["color"], "paper (as printed)"
                style = {k: v for k, v in PAPER_STYLE.items() if k != "color"}
            else:
                colour = palette.get(row.model, (0.5, 0.5, 0.5, 1.0))
                face = colour if row.mode != "loglik" else _lighter(colour)
                style, label = {"edgecolor": colour}, f"{row.model} ({row.mode})"
            handles.setdefault(label, _bar_set(ax, [x], [value], [err], face, label, 0.7,
                                               **style))  # fmt: skip
            unparsed = row.number("m1 unparsed")
            if unparsed:
                ax.bar(x, unparsed, 0.7, bottom=value or 0, **UNPARSED)
                handles.setdefault("u", _patch("unparsed replies (no answer)", **UNPARSED))
        names = [_wrap(f"{r.model} ({r.mode})" if not r.paper else r.model, 14) for r in rows]
        ax.set_xticks(range(len(rows)), names, fontsize=7)
        ax.set_ylabel("Yes-rate (%), 95% Wilson interval")
        ax.set_ylim(0, 105)
        _legend(ax, [*handles.values(), _patch("n/a: no Yes-rate", **MISSING)])
    ax.set_title('AV-ConfuseBench m1: "yes" to a muted instrument (lower is better)')
    fig.tight_layout()
    if rows:
        _x_labels_fit(fig, [ax])
    out = _save(fig, path)
    plt.close(fig)
    return out


def read_log(path: PathLike) -> list[dict]:
    """The records of a training ``log.jsonl`` (one JSON object per logged step)."""
    out = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        record = json.loads(line)
        if not isinstance(record, dict) or "step" not in record:
            raise ValueError(f"{path}:{n}: a log record needs a 'step' ({line[:80]!r})")
        out.append(record)
    return out


def family(method: str) -> str:
    """The method family a training run belongs to (one row of training-curve panels)."""
    if method in CAVPREF_METHODS or method.startswith("cavpref"):
        return "CAVPref and baselines"
    if method in RLCOMM_METHODS or method.startswith(("rlcomm", "grpo")):
        return "RL-CoMM stages and baselines"
    return "other"


def _magnitude(ys: list[float]) -> float:
    finite = [abs(y) for y in ys if math.isfinite(y)]
    return max(max(finite, default=0.0), 1e-12)


def scale_groups(series: Mapping[str, tuple[list, list]]) -> list[list[str]]:
    """Methods grouped so that no group's magnitudes differ by more than SCALE_GAP."""
    ordered = sorted(series, key=lambda m: (_magnitude(series[m][1]), m))
    groups: list[list[str]] = []
    base = None
    for method in ordered:
        mag = _magnitude(series[method][1])
        if base is None or mag > SCALE_GAP * base:
            groups.append([])
            base = mag
        groups[-1].append(method)
    return [sorted(g) for g in groups]


def _key_order(key: str) -> tuple:
    return (key != "loss", not key.startswith("loss"), not key.startswith("reward"), key)


def curve_panels(logs: Mapping[str, PathLike]) -> list[tuple[str, str, dict]]:
    """(family, key, {method: (steps, values)}) per panel, in display order."""
    by_family: dict[str, dict[str, dict[str, tuple[list, list]]]] = {}
    for method, log_path in sorted(logs.items()):
        for record in read_log(log_path):
            for key, value in record.items():
                if key in SKIP_KEYS or isinstance(value, bool):
                    continue
                if not isinstance(value, int | float):
                    continue
                keys = by_family.setdefault(family(method), {})
                xs, ys = keys.setdefault(key, {}).setdefault(method, ([], []))
                xs.append(int(record["step"]))
                ys.append(float(value))
    panels = []
    order = ["CAVPref and baselines", "RL-CoMM stages and baselines", "other"]
    for fam in sorted(by_family, key=order.index):
        for key in sorted(by_family[fam], key=_key_order):
            series = by_family[fam][key]
            for group in scale_groups(series):
                panels.append((fam, key, {m: series[m] for m in group}))
    return panels


def extend_palette(palette: Mapping[str, tuple], names: Iterable[str]) -> dict[str, tuple]:
    """``palette`` plus a colour for each of ``names`` it lacks, unused ones first."""
    import matplotlib

    out = dict(palette)
    used = {tuple(c) for c in out.values()}
    free = [tuple(c) for c in matplotlib.colormaps["tab20"].colors if tuple(c) not in used]
    free = [c for c in model_colours(range(10)).values() if c not in used] + free  # tab10 first
    for i, name in enumerate(sorted(set(names) - set(out))):
        out[name] = free[i] if i < len(free) else (0.5, 0.5, 0.5, 1.0)
    return out


def training_curves(logs: Mapping[str, PathLike], path: PathLike,
                    palette: Mapping[str, tuple] | None = None) -> Path:  # fmt: skip
    """Loss, per-term losses, rewards and the other logged keys over the training step:
    one block of panels per method family, one panel per key (and per scale)."""
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    panels = curve_panels(logs)
    palette = extend_palette(palette or {}, logs)
    families = list(dict.fromkeys(fam for fam, _, _ in panels))
    ncols = min(4, max((sum(1 for p in panels if p[0] == f) for f in families), default=1))
    rows_of = {f: -(-sum(1 for p in panels if p[0] == f) // ncols) for f in families}
    height = sum(rows_of.values()) or 1
    fig = plt.figure(figsize=(3.8 * ncols, 3.0 * height + 0.5 * len(families)),
                     layout="constrained")  # fmt: skip
    if not panels:
        _empty(fig.add_subplot(), "no training runs in this configuration")
    subfigs = fig.subfigures(len(families), 1, height_ratios=[rows_of[f] for f in families],
                             squeeze=False)[:, 0] if families else []  # fmt: skip
    for sub, fam in zip(subfigs, families, strict=True):
        sub.suptitle(fam, fontsize=10, fontweight="bold", x=0.01, ha="left")
        axes = sub.subplots(rows_of[fam], ncols, squeeze=False).ravel()
        mine = [p for p in panels if p[0] == fam]
        for ax, (_, key, series) in zip(axes, mine, strict=False):
            split = sum(1 for p in mine if p[1] == key) > 1
            for method, (xs, ys) in sorted(series.items()):
                ax.plot(xs, ys, label=method, color=palette[method],
                        marker="o" if len(xs) <= 20 else None, markersize=3)  # fmt: skip
            title = key + (f" ({', '.join(sorted(series))})" if split else "")
            ax.set_title(_wrap(title, 40), fontsize=9)
            ax.set_xlabel("step", fontsize=8)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.tick_params(labelsize=7)
            ax.legend(fontsize=6, frameon=False)
        for ax in axes[len(mine) :]:
            ax.set_axis_off()
    out = _save(fig, path)
    plt.close(fig)
    return out
