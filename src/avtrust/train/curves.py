"""The training log (``log.jsonl``), its curve plot and the final metrics.

Rows come from the trainer's ``log_history`` (restored on resume, so a resumed run's
log is the whole run's): one object per logged step with ``step`` and ``loss`` plus the
method's own keys.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from avtrust.io import write_json_atomic, write_text_atomic

PathLike = str | os.PathLike
# Not training values: bookkeeping, and wall-clock time (differs between identical runs).
SKIP = {"epoch", "step", "total_flos", "step_time"}
# TRL's names of the GRPO metrics -> log.jsonl keys; besides, "rewards/<f>/mean" ->
# "reward_<f without r_>". Other namespaced TRL diagnostics ("clip_ratio/...") are left out.
RENAMED = {"reward": "reward_mean", "completions/mean_length": "completion_length"}
REWARD = re.compile(r"rewards/(\w+)/mean")


def log_key(metric: str) -> str | None:
    """The log.jsonl key of a logged trainer metric (None: not logged)."""
    if metric in RENAMED:
        return RENAMED[metric]
    match = REWARD.fullmatch(metric)
    if match:
        return f"reward_{match.group(1).removeprefix('r_')}"
    return None if "/" in metric or metric in SKIP else metric


def log_rows(history: list[dict]) -> list[dict]:
    """Training-step rows of a Trainer ``log_history`` (no eval or summary rows), with
    every numeric metric under its :func:`log_key`."""
    rows = []
    for entry in history:
        if "loss" not in entry or "train_runtime" in entry:
            continue
        row = {"step": int(entry["step"])}
        for key, value in entry.items():
            name = log_key(key)
            if name and isinstance(value, int | float) and not isinstance(value, bool):
                row[name] = float(value)
        rows.append(row)
    rows.sort(key=lambda r: r["step"])
    return rows


def write_log(rows: list[dict], path: PathLike) -> Path:
    return write_text_atomic(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))


def read_log(path: PathLike) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


# Panels of the curve plot: (title, keys); a panel is drawn when one of its keys is
# logged (besides, every reward component joins the reward panel).
PANELS = (
    ("loss", ("loss", "nll", "entropy_term", "loss_text", "loss_video", "loss_audio")),
    ("reward", ("reward_mean",)),
    ("accuracy", ("accuracy",)),
    ("entropy", ("answer_entropy", "entropy")),
)


def plot_curves(rows: list[dict], path: PathLike, title: str) -> Path:
    """One panel per kind of logged value against the (integer) step: the losses, the
    mean reward and its components, accuracy, entropies."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    logged = {k for r in rows for k in r}
    parts = sorted(
        k for k in logged if k.startswith("reward_") and k not in ("reward_mean", "reward_std")
    )
    panels = [(name, [k for k in keys if k in logged]) for name, keys in PANELS]
    panels = [(n, keys + parts if n == "reward" else keys) for n, keys in panels]
    panels = [(n, keys) for n, keys in panels if keys] or [("loss", [])]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 3.6), squeeze=False)
    steps = [r["step"] for r in rows]
    for ax, (name, keys) in zip(axes[0], panels, strict=True):
        for key in keys:
            ax.plot(steps, [r.get(key, float("nan")) for r in rows], marker="o", label=key)
        ax.set_xlabel("step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"{title}: {name}", fontsize=9)
        if ax.lines:
            ax.legend(fontsize=7)
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
