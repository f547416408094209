"""One training run from a run spec (JSON): the process that ``accelerate launch`` starts.

``python -m avtrust.train.run --spec spec.json`` (every process of the run reads the
same spec). The spec is written by the workflow script (``workflow/scripts/train.py``
via :func:`make_spec`)::

    {"settings": {...TrainSettings...}, "model_dir", "base_model",
     "inputs": {"pairs": path} | {"split": path, "tables": {task: path}},
     "state_dir", "outputs": {"model", "jsonl", "curve", "metrics"},
     "device", "precision", "media_cache", "resume": checkpoint | null, "config_hash"}

Only the process with rank 0 writes the outputs; the Trainer writes the resume
checkpoints under ``state_dir`` (rank 0 the weights and optimizer, each process its
RNG state).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from avtrust.errors import ConfigError
from avtrust.train import checkpoint, curves
from avtrust.train.arguments import Optimisation, trainer_arguments
from avtrust.train.config import PreferenceSettings, TrainSettings, settings_from_dict
from avtrust.train.data import SequenceEncoder, cache_decoding, pair_rows, sft_rows
from avtrust.train.lora import apply_lora, lora_config
from avtrust.train.losses import LossSettings

PathLike = str | os.PathLike


def training_rows(settings: TrainSettings, inputs: dict) -> list[dict]:
    if settings.family == "sft":
        rows = sft_rows(inputs["split"], inputs["tables"], settings.tasks)
    else:
        rows = pair_rows(inputs["pairs"], settings.tasks or None)
    if settings.max_samples > 0 and len(rows) > settings.max_samples:
        import numpy as np

        order = np.random.default_rng(settings.seed).permutation(len(rows))
        rows = [rows[i] for i in sorted(order[: settings.max_samples])]
    if not rows:
        raise ConfigError(
            f"training.{settings.method}: no training rows in {sorted(inputs.values(), key=str)} "
            f"for tasks {list(settings.tasks)}"
        )
    return rows


def training_arguments(settings: TrainSettings, spec: dict):
    place = {
        "state_dir": spec["state_dir"],
        "seed": settings.seed,
        "device": spec["device"],
        "precision": spec["precision"],
        "ddp_find_unused_parameters": False,
    }
    opt = Optimisation.from_settings(settings)
    if settings.family == "sft":
        from transformers import TrainingArguments

        return trainer_arguments(TrainingArguments, opt, **place)
    from trl import DPOConfig

    beta = settings.beta if isinstance(settings.beta, int | float) else 0.1
    return trainer_arguments(
        DPOConfig,
        opt,
        **place,
        beta=float(beta),
        precompute_ref_log_probs=True,
        precompute_ref_batch_size=settings.batch_size,
        max_length=None,
        disable_dropout=True,
    )


def build_trainer(spec: dict, rows: list[dict] | None = None):
    """(trainer, policy wrapper) for ``spec``; ``rows`` default to the spec's inputs."""
    import datasets
    from transformers import set_seed

    from avtrust.models import registry
    from avtrust.train.trainers import (
        CAVPrefTrainer,
        PreferenceCollator,
        SFTCollator,
        SFTTrainer,
    )

    settings = settings_from_dict(spec["settings"])
    rows = training_rows(settings, spec["inputs"]) if rows is None else rows
    set_seed(settings.seed)
    policy = registry.load(spec["model_dir"], device="cpu")
    encoder = SequenceEncoder(
        cache_decoding(policy.builder, spec.get("media_cache", 64)), policy.model.get_rope_index
    )
    dataset = datasets.Dataset.from_list(rows)
    args = training_arguments(settings, spec)
    Path(spec["state_dir"]).mkdir(parents=True, exist_ok=True)
    if settings.family == "sft":
        model = apply_lora(policy.model, settings.lora)
        trainer = SFTTrainer(
            model=model,
            args=args,
            train_dataset=dataset,
            data_collator=SFTCollator(encoder),
            processing_class=policy.tokenizer,
        )
    else:
        assert isinstance(settings, PreferenceSettings)
        model = policy.model
        peft_config = None
        if settings.lora.enabled:
            peft_config = lora_config(settings.lora, model)
        else:
            for p in model.parameters():
                p.requires_grad_(True)
        trainer = CAVPrefTrainer(
            model=model,
            args=args,
            train_dataset=dataset,
            processing_class=policy.tokenizer,
            peft_config=peft_config,
            loss_settings=LossSettings(
                av_terms=settings.av_terms,
                robust=settings.robust,
                lambda_text=settings.lambda_text,
                lambda_video=settings.lambda_video,
                lambda_audio=settings.lambda_audio,
            ),
            fixed_beta=None if settings.calibrated() else float(settings.beta),
            collator=PreferenceCollator(encoder, settings.av_terms),
            state_dir=spec["state_dir"],
        )
    return trainer, policy


def finish(trainer, spec: dict, n_rows: int) -> dict | None:
    """Rank 0: the final weights, log.jsonl, curve.png and metrics.json."""
    settings = settings_from_dict(spec["settings"])
    out = spec["outputs"]
    trainer.save_model(out["model"])  # gathers ZeRO-3 shards; writes on rank 0 only
    if not trainer.is_world_process_zero():
        return None
    steps = int(trainer.state.global_step)
    checkpoint.write_meta(
        out["model"],
        method=settings.method,
        base_model=spec["base_model"],
        base_dir=spec["model_dir"],
        adapter=settings.lora.enabled,
        seed=settings.seed,
        steps=steps,
        config_hash=spec["config_hash"],
    )
    rows = curves.log_rows(trainer.state.log_history)
    curves.write_log(rows, out["jsonl"])
    curves.plot_curves(rows, out["curve"], f"{settings.method} ({settings.family})")
    extra = {
        "family": settings.family,
        "train_rows": n_rows,
        "processes": trainer.accelerator.num_processes,
        "config_hash": spec["config_hash"],
    }
    metrics = curves.final_metrics(settings.method, rows, steps, extra)
    curves.write_metrics(metrics, out["metrics"])
    return metrics


def run(spec: dict) -> dict | None:
    trainer, _ = build_trainer(spec)
    trainer.train(resume_from_checkpoint=spec.get("resume"))
    return finish(trainer, spec, len(trainer.train_dataset))


def make_spec(
    *,
    settings: TrainSettings,
    model_dir: PathLike,
    base_model: str,
    inputs: dict,
    state_dir: PathLike,
    outputs: dict,
    device: str = "cpu",
    precision: str = "no",
    media_cache: int = 64,
) -> dict:
    """The run spec (without ``resume``, which the caller sets after
    :func:`avtrust.train.checkpoint.prepare_state`); ``config_hash`` covers every
    setting and input that changes the result."""
    from avtrust.train.config import config_hash, settings_dict
    from avtrust.train.fingerprint import run_fingerprint

    spec = {
        "settings": settings_dict(settings),
        "model_dir": str(model_dir),
        "base_model": base_model,
        "inputs": {k: (v if isinstance(v, dict) else str(v)) for k, v in inputs.items()},
        "state_dir": str(state_dir),
        "outputs": {k: str(v) for k, v in outputs.items()},
        "device": device,
        "precision": precision,
        "media_cache": media_cache,
    }
    # Keyed by content, not paths: the rows, the clips they use and the base weights.
    hashed = {k: spec[k] for k in ("settings", "device", "precision")}
    hashed["content"] = run_fingerprint(training_rows(settings, spec["inputs"]), model_dir)
    spec["config_hash"] = config_hash(hashed)
    return spec


def train_job(
    *,
    method: str,
    job: dict,
    model_dir: PathLike,
    inputs: dict,
    outputs: dict,
    state_dir: PathLike,
    threads: int = 1,
    log=None,
) -> None:
    """What the Snakemake rule runs: resume state, then one process in place or
    ``accelerate launch`` with several (see :mod:`avtrust.train.launch`); ``job`` is
    :func:`avtrust.train.config.job_settings` (the rule's params)."""
    from avtrust.io import write_json_atomic
    from avtrust.train import launch

    settings = settings_from_dict(job["settings"])
    if settings.method != method:
        raise ConfigError(
            f"training job of {method!r} was given the settings of {settings.method!r}"
        )
    spec = make_spec(
        settings=settings,
        model_dir=model_dir,
        base_model=job["model"],
        inputs=inputs,
        state_dir=state_dir,
        outputs=outputs,
        device=job["device"],
        precision=job["precision"],
        media_cache=job["media_cache"],
    )
    spec["resume"] = checkpoint.prepare_state(state_dir, spec["config_hash"], log)
    spec_path = write_json_atomic(Path(state_dir) / "spec.json", spec)
    if log:
        log.info("%s: %s", method, json.dumps(spec["settings"], sort_keys=True))
    launch.start(
        lambda: run(spec),
        ["--spec", str(spec_path)],
        job["processes"],
        precision=spec["precision"],
        cpu=spec["device"] == "cpu",
        threads=threads,
        config_file=job["accelerate_config"],
        log=log,
    )
    checkpoint.finish_state(state_dir, keep=job["keep_state"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", required=True, help="run spec (JSON)")
    args = parser.parse_args(argv)
    spec = json.loads(Path(args.spec).read_text())
    run(spec)
    return 0


if __name__ == "__main__":
    sys.exit(main())
