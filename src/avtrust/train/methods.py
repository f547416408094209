"""The trainers of the methods trained on AVTrustBench rows: SFT (benchmark samples of
the training split), DPO and CAVPref (the pairs file); built by the training job
(:mod:`avtrust.train.job`) in every process of the run."""

from __future__ import annotations

from pathlib import Path

from avtrust.errors import ConfigError
from avtrust.train.config import MethodSettings, PreferenceSettings
from avtrust.train.data import SequenceEncoder, job_builder, pair_rows, sft_rows
from avtrust.train.lora import apply_lora, lora_config
from avtrust.train.losses import LossSettings


def training_rows(settings: MethodSettings, inputs: dict, prompt: dict | None = None) -> list[dict]:
    """The method's rows, their prompts worded by ``prompt`` (the training parts of the
    evaluation template; None: the default wording)."""
    if settings.family == "sft":
        rows = sft_rows(inputs["split"], inputs["tables"], settings.tasks, prompt)
    else:
        rows = pair_rows(inputs["pairs"], settings.tasks or None, prompt)
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


def build_trainer(spec: dict, settings: MethodSettings, rows: list[dict] | None = None):
    """(trainer, number of training rows, extra metrics) of ``spec``; ``rows`` default to
    the spec's inputs."""
    import datasets

    from avtrust.train.arguments import job_arguments
    from avtrust.train.job import load_start_policy
    from avtrust.train.trainers import (
        CAVPrefTrainer,
        PreferenceCollator,
        SFTCollator,
        SFTTrainer,
    )

    if rows is None:
        rows = training_rows(settings, spec["inputs"], spec.get("prompt"))
    policy = load_start_policy(spec)
    encoder = SequenceEncoder(job_builder(policy, spec), policy.model.get_rope_index)
    dataset = datasets.Dataset.from_list(rows)
    args = job_arguments(settings, spec)
    Path(spec["state_dir"]).mkdir(parents=True, exist_ok=True)  # the reference cache's home
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
    return trainer, len(rows), {}
