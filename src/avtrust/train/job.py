"""One training job, whatever the method: spec → state → launch → save → finish.

Every training rule (``train`` for SFT/DPO/CAVPref, ``rlcomm_train`` for the RL-CoMM
stages and the GRPO baseline) runs :func:`train_job` on a *run spec* built by
:func:`make_spec` from the rule's params (:func:`avtrust.train.config.job_settings` or
:func:`avtrust.train.rlcomm.stage_settings`, the same shape) and its files::

    {"method", "settings": {...the family's settings dataclass...},
     "base_model", "base_dir", "init_dir": checkpoint the job starts from | null,
     "start": {"path", "sha256"}, "inputs": {name: path | {name: path}},
     "state_dir", "outputs": {"model", "jsonl", "curve", "metrics"},
     "device", "precision", "processes", "threads", "media_cache",
     "accelerate_config", "keep_state", "tracking": {"report_to", "run_name",
     "logging_dir"}, "config_hash", "resume": checkpoint | null}

The job:

1. **state** — :func:`avtrust.train.checkpoint.prepare_state` keeps the resume state
   made under the same ``config_hash`` (everything that changes the result: settings,
   the content of the inputs and of the start checkpoint, :mod:`avtrust.train.fingerprint`;
   not the tracking) and returns the checkpoint to resume from; a fresh start empties the
   run's tracking folder;
   a family with a preparation step (Ans-CO's targets) runs it here, once;
2. **launch** — one process in place, or ``accelerate launch`` with several
   (:func:`avtrust.train.launch.start`); every process runs :func:`execute` on the spec
   (``python -m avtrust.train.job spec.json``): build the family's trainer
   (:data:`BUILDERS`), train (a GRPO stage scores its training prompts at the start
   and the end: :data:`AFTER_TRAINING` reads the figures), :func:`save`;
3. **save** — one path for every family: ``trainer.save_model`` (which gathers
   DeepSpeed ZeRO-3 shards; rank 0 writes), then on rank 0 only: an RL-CoMM stage's
   adapter is merged into the policy it started from (on the CPU) so the next stage
   loads the checkpoint alone; the metadata, ``log.jsonl``, ``curve.png`` and
   ``metrics.json`` (with the start checkpoint's path and hash);
4. **finish** — the resume state is removed unless ``keep_state``.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import sys
from pathlib import Path

from avtrust.errors import ConfigError
from avtrust.io import write_json_atomic
from avtrust.train import checkpoint, curves, tracking
from avtrust.train.config import (
    JOB_KEYS,
    TrainSettings,
    config_hash,
    settings_dict,
    settings_from_dict,
)

PathLike = str | os.PathLike

# family -> "module:function" building (trainer, training rows, extra metrics) from a
# spec in a training process; imported when used (each pulls in its own trainer stack).
BUILDERS = {
    "sft": "avtrust.train.methods:build_trainer",
    "dpo": "avtrust.train.methods:build_trainer",
    "cavpref": "avtrust.train.methods:build_trainer",
    "warmup": "avtrust.train.rlcomm:build_warmup",
    "grpo": "avtrust.train.rlcomm:build_grpo",
    "ansco": "avtrust.train.rlcomm:build_ansco",
}
# family -> "module:function" run once in the job before the launch (spec, log).
PREPARERS = {"ansco": "avtrust.train.ansco_targets:prepare_ansco_targets"}
# family -> "module:function" (trainer, settings) -> metrics that join metrics.json,
# called after training.
AFTER_TRAINING = {"grpo": "avtrust.train.rlcomm:prompt_rewards"}
# Families whose LoRA adapter is merged into full weights: each RL-CoMM stage starts
# from the previous one's checkpoint, which must load on its own.
MERGED = ("warmup", "grpo", "ansco")


def _resolve(ref: str):
    module, name = ref.split(":")
    return getattr(importlib.import_module(module), name)


def make_spec(
    *,
    job: dict,
    base_dir: PathLike,
    inputs: dict,
    outputs: dict,
    state_dir: PathLike,
    init_dir: PathLike | None = None,
    threads: int = 1,
) -> dict:
    """The run spec of a job from the rule's params ``job`` ({"settings", "model", and
    :data:`JOB_KEYS`}) and its files (without ``resume``, set by :func:`train_job`)."""
    from avtrust.evaluate.prompt_template import training_parts
    from avtrust.train.fingerprint import inputs_fingerprint, model_fingerprint

    settings = settings_from_dict(job["settings"])  # a malformed section fails here
    start = init_dir or base_dir
    spec = {
        "method": settings.method,
        "settings": settings_dict(settings),
        "base_model": job["model"],
        "base_dir": str(base_dir),
        "init_dir": str(init_dir) if init_dir else None,
        "start": {"path": str(start), "sha256": model_fingerprint(start)},
        "inputs": {k: (v if isinstance(v, dict) else str(v)) for k, v in inputs.items()},
        "state_dir": str(state_dir),
        "outputs": {k: str(v) for k, v in outputs.items()},
        "threads": int(threads),
        **{k: job[k] for k in JOB_KEYS},
        "prompt": training_parts(job.get("prompt")),  # None: the default wording
    }
    # The run's identity: what it trains, from what and how, by content (the rows, the
    # clips they use, the start weights), not by paths: rewriting pairs.parquet in place
    # is another run, moving the results folder is not; nor where its state lives or how
    # many threads or processes compute it.
    hashed = {k: spec[k] for k in ("settings", "device", "precision", "prompt")}
    hashed["start"] = spec["start"]["sha256"]
    hashed["inputs"] = inputs_fingerprint(spec["inputs"])
    spec["config_hash"] = config_hash(hashed)
    return spec


def load_start_policy(spec: dict):
    """The policy a job starts from: the previous stage's checkpoint or the base model."""
    from avtrust.models import registry

    if spec["init_dir"]:
        models_root = Path(spec["base_dir"]).parent
        return checkpoint.load_policy(spec["init_dir"], device="cpu", models_root=models_root)
    return registry.load(spec["base_dir"], device="cpu")


def train_job(spec: dict, log=None) -> None:
    """What a training rule runs (see the module doc): state, preparation, launch, finish."""
    from avtrust.train import launch

    settings = settings_from_dict(spec["settings"])
    if settings.family not in BUILDERS:
        raise ConfigError(f"{spec['method']}: no trainer for the family {settings.family!r}")
    spec = {**spec, "resume": checkpoint.prepare_state(spec["state_dir"], spec["config_hash"], log)}
    tracking.start(spec["tracking"], resumed=spec["resume"] is not None)
    if settings.family in PREPARERS:
        _resolve(PREPARERS[settings.family])(spec, log)
    spec_path = write_json_atomic(Path(spec["state_dir"]) / "spec.json", spec)
    if log:
        log.info("%s: %s", spec["method"], json.dumps(spec["settings"], sort_keys=True))
    launch.start(
        lambda: execute(spec),
        [str(spec_path)],
        spec["processes"],
        module=__name__,
        precision=spec["precision"],
        cpu=spec["device"] == "cpu",
        threads=spec["threads"],
        config_file=spec["accelerate_config"],
        log=log,
    )
    checkpoint.finish_state(spec["state_dir"], keep=spec["keep_state"])


def execute(spec: dict) -> dict | None:
    """One training process: build the family's trainer, train (from ``spec["resume"]``
    if set), save. Returns the metrics on rank 0."""
    import torch
    from transformers import set_seed

    settings = settings_from_dict(spec["settings"])
    torch.set_num_threads(max(1, int(spec["threads"])))
    set_seed(settings.seed)  # the adapters' initialisation is the same in every run
    tracking.activate(spec["tracking"])  # before the Trainer builds its callbacks
    trainer, n_rows, extra = _resolve(BUILDERS[settings.family])(spec, settings)
    trainer.train(resume_from_checkpoint=spec.get("resume"))
    if settings.family in AFTER_TRAINING:
        extra = {**extra, **_resolve(AFTER_TRAINING[settings.family])(trainer, settings)}
    metrics = save(trainer, spec, settings, n_rows, extra)
    tracking.finish(spec["tracking"])
    # Every process waits for rank 0's files, then the process group is torn down before
    # the interpreter exits: a rank that exited with the group alive was once aborted in
    # the collective backend's teardown ("terminate called without an active
    # exception"), failing a launch whose training had finished.
    trainer.accelerator.wait_for_everyone()
    trainer.accelerator.end_training()
    return metrics


def save(trainer, spec: dict, settings: TrainSettings, n_rows: int, extra: dict) -> dict | None:
    """The one checkpoint-saving path (module doc, step 3); the metrics on rank 0."""
    out = spec["outputs"]
    merge = settings.family in MERGED and settings.lora.enabled
    weights_dir = Path(spec["state_dir"]) / "adapter" if merge else Path(out["model"])
    trainer.save_model(str(weights_dir))  # every process: ZeRO-3 gathers the shards
    if not trainer.is_world_process_zero():
        return None
    if merge:
        merge_adapter(spec, weights_dir, out["model"])
    steps = int(trainer.state.global_step)
    checkpoint.write_meta(
        out["model"],
        method=settings.method,
        base_model=spec["base_model"],
        base_dir=spec["base_dir"],
        adapter=settings.lora.enabled and not merge,
        seed=settings.seed,
        steps=steps,
        config_hash=spec["config_hash"],
    )
    rows = curves.log_rows(trainer.state.log_history)
    curves.write_log(rows, out["jsonl"])
    curves.plot_curves(rows, out["curve"], f"{settings.method} ({settings.family})")
    metrics = curves.final_metrics(
        settings.method,
        rows,
        steps,
        {
            "family": settings.family,
            "train_rows": n_rows,
            "processes": trainer.accelerator.num_processes,
            "config_hash": spec["config_hash"],
            "start": spec["start"],
            **extra,
        },
    )
    curves.write_metrics(metrics, out["metrics"])
    return metrics


def merge_adapter(spec: dict, adapter_dir: PathLike, model_dir: PathLike) -> Path:
    """Full weights = the start policy with the saved adapter merged, written to
    ``model_dir`` (rank 0, on the CPU: the training copy may be sharded)."""
    from peft import PeftModel

    policy = load_start_policy(spec)
    merged = PeftModel.from_pretrained(policy.model, str(adapter_dir)).merge_and_unload()
    if Path(model_dir).exists():
        shutil.rmtree(model_dir)
    Path(model_dir).mkdir(parents=True)
    merged.save_pretrained(str(model_dir))
    shutil.rmtree(adapter_dir, ignore_errors=True)
    return Path(model_dir)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m avtrust.train.job <spec.json>", file=sys.stderr)
        return 2
    execute(json.loads(Path(args[0]).read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
