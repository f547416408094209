"""Experiment tracking: the loggers a training job reports to (TensorBoard, Weights &
Biases) besides its own ``log.jsonl`` and curve, and where they write.

The ``tracking`` section of ``training`` and of ``rlcomm``::

    tracking:
      report_to: none            # none | tensorboard | wandb | [tensorboard, wandb]
      run_name: "{method}"       # the run's name in the tracker ({method} is filled in)
      logging_dir: results/tracking  # a job writes under <logging_dir>/<method>/

A job's params carry the resolved form (:func:`job_tracking`): the reporters as a list,
the run name and the method's own folder. The Trainer's callbacks write on the main
process only (rank 0); the folder is a side product of the training job, like its
resume state, and is emptied when a job starts afresh so that one folder holds one run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path, PurePosixPath

from avtrust.errors import ConfigError

# The Trainer integrations a job may report to: both write only into the run's folder
# (others, e.g. MLflow's ./mlruns, would write outside results/).
REPORTERS = ("tensorboard", "wandb")
DEFAULT = {"report_to": "none", "run_name": "{method}", "logging_dir": "results/tracking"}


def reporters(value, where: str) -> list[str]:
    """``report_to`` as a list of :data:`REPORTERS` (``none``: an empty list)."""
    names = [value] if isinstance(value, str) else list(value or [])
    if names == ["none"]:
        return []
    unknown = [n for n in names if n not in REPORTERS]
    if unknown or not names:
        raise ConfigError(
            f"config: {where}.report_to: {value!r} is not 'none' or one or more of "
            f"{', '.join(REPORTERS)}"
        )
    return sorted(set(names), key=names.index)


def job_tracking(section: dict, where: str, method: str) -> dict:
    """The tracking settings of ``method``'s job from a ``tracking`` section: the
    reporters, the run name and the job's folder ``<logging_dir>/<method>``."""
    unknown = sorted(set(section) - set(DEFAULT))
    if unknown:
        raise ConfigError(
            f"config: {where}: unknown key(s) {unknown} (allowed: {', '.join(sorted(DEFAULT))})"
        )
    values = {**DEFAULT, **section}
    try:
        run_name = str(values["run_name"]).format(method=method)
    except (KeyError, IndexError, ValueError) as err:
        raise ConfigError(
            f"config: {where}.run_name: {values['run_name']!r} may only use {{method}} ({err})"
        ) from None
    if not run_name.strip():
        raise ConfigError(f"config: {where}.run_name is empty")
    root = PurePosixPath(str(values["logging_dir"]))
    # Everything a run writes stays in the workflow's results folder.
    if root.is_absolute() or ".." in root.parts or root.parts[:1] != ("results",):
        raise ConfigError(
            f"config: {where}.logging_dir must be a folder under results/, "
            f"not {values['logging_dir']!r}"
        )
    return {
        "report_to": reporters(values["report_to"], where),
        "run_name": run_name,
        "logging_dir": str(root / method),
    }


def environment(tracking: dict) -> dict[str, str]:
    """The environment the Trainer's callbacks read for the run's folder: TensorBoard's
    event files go straight into it, Weights & Biases keeps its run (``wandb/``, offline
    or online) and its staging files there. An explicit ``WANDB_PROJECT`` wins."""
    folder = str(tracking["logging_dir"])
    env = {}
    if "tensorboard" in tracking["report_to"]:
        env["TENSORBOARD_LOGGING_DIR"] = folder
    if "wandb" in tracking["report_to"]:
        env.update(
            WANDB_DIR=folder,
            WANDB_CACHE_DIR=str(Path(folder) / "wandb-cache"),
            WANDB_DATA_DIR=str(Path(folder) / "wandb-data"),
            WANDB_PROJECT=os.environ.get("WANDB_PROJECT", "avtrust"),
        )
    return env


def activate(tracking: dict | None) -> None:
    """Set the run's environment in a training process (before its Trainer is built) and
    check that each reporter's package is there, naming it if not."""
    if not tracking or not tracking["report_to"]:
        return
    missing = []
    for name in tracking["report_to"]:
        module = "tensorboard" if name == "tensorboard" else "wandb"
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise ConfigError(
            f"report_to: {', '.join(tracking['report_to'])} needs the Python package(s) "
            f"{', '.join(missing)} (pip install {' '.join(missing)})"
        )
    os.environ.update(environment(tracking))
    Path(tracking["logging_dir"]).mkdir(parents=True, exist_ok=True)


def start(tracking: dict | None, resumed: bool) -> None:
    """Before a job launches: a fresh run starts from an empty folder (a resumed one
    appends to the events it wrote before it was stopped)."""
    if tracking and not resumed:
        shutil.rmtree(tracking["logging_dir"], ignore_errors=True)


def finish(tracking: dict | None) -> None:
    """Close the process's Weights & Biases run once training is saved: its files (config,
    summary, history) are complete when the job ends, not at interpreter exit."""
    if tracking and "wandb" in tracking["report_to"]:
        import wandb

        if wandb.run is not None:
            wandb.run.finish()
