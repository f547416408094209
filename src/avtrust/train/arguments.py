"""The Trainer arguments every avtrust training job shares (SFT, DPO, CAVPref and the
RL-CoMM stages), built in one place so a new knob reaches all of them."""

from __future__ import annotations

from avtrust.train.config import TrainSettings


def trainer_arguments(
    cls,
    settings: TrainSettings,
    *,
    state_dir: str,
    device: str,
    precision: str,
    tracking: dict | None = None,
    **extra,
):
    """``cls`` (TrainingArguments or a TRL config) for a job that checkpoints into
    ``state_dir`` (the resume state), with ``extra`` keyword arguments of that class.
    ``tracking`` (:func:`avtrust.train.tracking.job_tracking`) names the loggers the
    Trainer reports to and the run's name; none without it."""
    return cls(
        output_dir=str(state_dir),
        per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.grad_accum,
        learning_rate=settings.learning_rate,
        num_train_epochs=settings.epochs,
        max_steps=settings.max_steps,
        lr_scheduler_type=settings.lr_scheduler,
        # transformers 5 reads a value below 1 as a fraction of the total steps
        warmup_steps=settings.warmup_ratio,
        weight_decay=settings.weight_decay,
        max_grad_norm=settings.max_grad_norm,
        logging_steps=settings.logging_steps,
        save_strategy="steps",
        save_steps=settings.save_steps,
        save_total_limit=settings.save_total_limit,
        activation_checkpointing=settings.gradient_checkpointing,  # transformers 5 name
        seed=settings.seed,
        data_seed=settings.seed,
        report_to=(tracking or {}).get("report_to") or "none",
        run_name=(tracking or {}).get("run_name"),
        remove_unused_columns=False,
        use_cpu=device == "cpu",
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        dataloader_num_workers=0,
        disable_tqdm=False,
        ddp_find_unused_parameters=False,
        **extra,
    )


def job_arguments(settings: TrainSettings, spec: dict):
    """The Trainer arguments of a run spec's job (:mod:`avtrust.train.job`): plain
    TrainingArguments for SFT, warm-up and Ans-CO, a DPOConfig for the preference
    methods (references precomputed once), a GRPOConfig (no KL) for GRPO stages."""
    place = {
        "state_dir": spec["state_dir"],
        "device": spec["device"],
        "precision": spec["precision"],
        "tracking": spec.get("tracking"),
    }
    if settings.family in ("dpo", "cavpref"):
        from trl import DPOConfig

        beta = settings.beta if isinstance(settings.beta, int | float) else 0.1
        return trainer_arguments(
            DPOConfig,
            settings,
            **place,
            beta=float(beta),
            precompute_ref_log_probs=True,
            precompute_ref_batch_size=settings.batch_size,
            max_length=None,
            disable_dropout=True,
        )
    if settings.family == "grpo":
        from trl import GRPOConfig

        scoring = {}
        if settings.reward_before_after:
            # The training prompts scored as an evaluation (a group each) at the start and
            # at the last step, inside the training loop: the model is prepared (DDP) by
            # then. A resumed run's start was scored before its checkpoint.
            scoring = {
                "eval_strategy": "steps",
                "eval_steps": settings.max_steps,
                "eval_on_start": not spec.get("resume"),
                "per_device_eval_batch_size": settings.batch_size,
            }
        return trainer_arguments(
            GRPOConfig,
            settings,
            **place,
            **scoring,
            num_generations=settings.group_size,
            max_completion_length=settings.max_completion_length,
            temperature=settings.temperature,
            beta=0.0,
            loss_type=settings.loss_type,
            scale_rewards=settings.scale_rewards,
        )
    from transformers import TrainingArguments

    return trainer_arguments(TrainingArguments, settings, **place)
