"""The training log (``log.jsonl``), its curve plot and the final metrics.

Rows come from the trainer's ``log_history`` (restored on resume, so a resumed run's
log is the whole run's): one object per logged step with ``step`` and ``loss`` plus the
method's own keys.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from avtrust.io import write_json_atomic, write_text_atomic

PathLike = str | os.PathLike
SKIP = {"epoch", "grad_norm", "learning_rate", "step"}


def log_rows(history: list[dict]) -> list[dict]:
    """Training-step rows of a Trainer ``log_history`` (no eval or summary rows)."""
    rows = []
    for entry in history:
        if "loss" not in entry or "train_runtime" in entry:
            continue
        row = {"step": int(entry["step"]), "loss": float(entry["loss"])}
        for key, value in entry.items():
            if key not in SKIP and key != "loss" and isinstance(value, int | float):
                row[key] = float(value)
        for key in ("learning_rate", "grad_norm"):
            if isinstance(entry.get(key), int | float):
                row[key] = float(entry[key])
        rows.append(row)
    rows.sort(key=lambda r: r["step"])
    return rows


def write_log(rows: list[dict], path: PathLike) -> Path:
    return write_text_atomic(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))


def read_log(path: PathLike) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def plot_curves(rows: list[dict], path: PathLike, title: str) -> Path:
    """The loss (and, if logged, accuracy and per-term losses) against the step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    extra = [k for k in ("loss_text", "loss_video", "loss_audio") if any(k in r for r in rows)]
    acc = any("accuracy" in r for r in rows)
    fig, axes = plt.subplots(1, 2 if acc else 1, figsize=(10 if acc else 6, 4), squeeze=False)
    ax = axes[0][0]
    steps = [r["step"] for r in rows]
    ax.plot(steps, [r["loss"] for r in rows], marker="o", label="loss")
    for key in extra:
        ax.plot(steps, [r.get(key, float("nan")) for r in rows], linestyle="--", label=key)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    if acc:
        axes[0][1].plot(steps, [r.get("accuracy", float("nan")) for r in rows], marker="o")
        axes[0][1].set_xlabel("step")
        axes[0][1].set_ylabel("preference accuracy")
    return save_figure(fig, path)


def save_figure(fig, path: PathLike) -> Path:
    """Write a matplotlib figure as PNG atomically (no timestamp metadata) and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(path).with_name(Path(path).name + ".tmp.png")
    fig.savefig(tmp, dpi=80, metadata={"Software": None})
    plt.close(fig)
    os.replace(tmp, path)
    return Path(path)


def final_metrics(method: str, rows: list[dict], steps: int, extra: dict | None = None) -> dict:
    out = {"method": method, "steps": steps, "final_loss": rows[-1]["loss"] if rows else None}
    if rows:
        out["first_loss"] = rows[0]["loss"]
        for key, value in rows[-1].items():
            if key not in ("step", "loss", "learning_rate", "grad_norm"):
                out[f"final_{key}"] = value
    out.update(extra or {})
    return out


def write_metrics(metrics: dict, path: PathLike) -> Path:
    return write_json_atomic(path, metrics)
