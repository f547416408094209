"""Figures of the results (matplotlib, Agg backend): task bars, m1 Yes-rate, training curves."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from avtrust.results.tables import read_view
from avtrust.results.views import AVT_TASKS

PathLike = str | os.PathLike


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120, metadata={"Software": None})
    os.replace(tmp, path)
    return path


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


def task_bars(con, path: PathLike) -> Path:
    """AVTrustBench accuracy per task, one bar per (model, mode)."""
    plt = _pyplot()
    columns, rows = read_view(con, "avtrustbench")
    fig, ax = plt.subplots(figsize=(10, 4))
    if not rows:
        _empty(ax, "no AVTrustBench results")
    else:
        width = 0.8 / len(rows)
        for k, row in enumerate(rows):
            values = [row[columns.index(t)] for t in AVT_TASKS]
            xs = [i + (k - (len(rows) - 1) / 2) * width for i in range(len(AVT_TASKS))]
            ax.bar(xs, [v if v is not None else 0 for v in values], width,
                   label=f"{row[0]} ({row[1]})")  # fmt: skip
        ax.set_xticks(range(len(AVT_TASKS)), AVT_TASKS, rotation=30)
        ax.set_ylabel("accuracy (%)")
        ax.set_ylim(0, 100)
        ax.legend(fontsize=7)
    ax.set_title("AVTrustBench: accuracy per task")
    fig.tight_layout()
    out = _save(fig, path)
    plt.close(fig)
    return out


def yes_rate(con, path: PathLike) -> Path:
    """AV-ConfuseBench m1: Yes-rate (lower is better; the answer is always "no")."""
    plt = _pyplot()
    columns, rows = read_view(con, "avconfusebench")
    rows = [r for r in rows if r[columns.index("Yes-rate")] is not None]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if not rows:
        _empty(ax, "no m1 results")
    else:
        labels = [f"{r[0]}\n({r[1]})" for r in rows]
        ax.bar(range(len(rows)), [r[columns.index("Yes-rate")] for r in rows], color="tab:red")
        ax.set_xticks(range(len(rows)), labels, fontsize=7)
        ax.set_ylabel("Yes-rate (%)")
        ax.set_ylim(0, 100)
    ax.set_title('AV-ConfuseBench m1: "yes" to a muted instrument')
    fig.tight_layout()
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


def training_curves(logs: Mapping[str, PathLike], path: PathLike) -> Path:
    """Loss (and every other numeric key, e.g. rewards) over steps, one panel per key."""
    plt = _pyplot()
    series: dict[str, dict[str, tuple[list, list]]] = {}
    for method, log_path in sorted(logs.items()):
        for record in read_log(log_path):
            for key, value in record.items():
                if key == "step" or isinstance(value, bool) or not isinstance(value, int | float):
                    continue
                xs, ys = series.setdefault(key, {}).setdefault(method, ([], []))
                xs.append(record["step"])
                ys.append(value)
    keys = sorted(series, key=lambda k: (k != "loss", k))
    ncols = min(3, max(len(keys), 1))
    nrows = max(1, -(-len(keys) // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4 * ncols, 3 * nrows), squeeze=False)
    flat = [a for row in axes for a in row]
    if not keys:
        _empty(flat[0], "no training runs in this configuration")
    for ax, key in zip(flat, keys, strict=False):
        for method, (xs, ys) in sorted(series[key].items()):
            ax.plot(xs, ys, label=method)
        ax.set_title(key)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    for ax in flat[len(keys) :] if keys else flat[1:]:
        ax.set_axis_off()
    fig.tight_layout()
    out = _save(fig, path)
    plt.close(fig)
    return out
