"""The Trainer arguments every avtrust training job shares (SFT, DPO, CAVPref and the
RL-CoMM stages), built in one place so a new knob reaches all of them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Optimisation:
    """Optimisation, batching and checkpoint settings of one job (see the schema's
    ``train_method`` and ``rlcomm_*`` definitions for their meaning); the training
    methods' settings (:class:`avtrust.train.config.TrainSettings`) extend it."""

    learning_rate: float = 1e-4
    # > 0: stop after this many optimiser steps (overrides epochs).
    max_steps: int = -1
    # Per process; the global batch is batch_size × processes × grad_accum.
    batch_size: int = 1
    # Optimiser steps between resume checkpoints (results/train_state/{method}/).
    save_steps: int = 50
    epochs: float = 1.0
    grad_accum: int = 1
    lr_scheduler: str = "linear"
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    logging_steps: int = 1
    save_total_limit: int = 2
    gradient_checkpointing: bool = False

    @classmethod
    def from_settings(cls, settings: Mapping | object, **defaults) -> Optimisation:
        """The fields of ``settings`` (a mapping or a settings dataclass) that name one of
        ours, over ``defaults``."""
        get = settings.get if isinstance(settings, Mapping) else None
        values = dict(defaults)
        for name in cls.__dataclass_fields__:
            value = get(name) if get else getattr(settings, name, None)
            if value is not None:
                values[name] = value
        return cls(**values)


def trainer_arguments(
    cls,
    opt: Optimisation,
    *,
    state_dir: str,
    seed: int,
    device: str,
    precision: str,
    **extra,
):
    """``cls`` (TrainingArguments or a TRL config) for a job that checkpoints into
    ``state_dir`` (the resume state), with ``extra`` keyword arguments of that class."""
    return cls(
        output_dir=str(state_dir),
        per_device_train_batch_size=opt.batch_size,
        gradient_accumulation_steps=opt.grad_accum,
        learning_rate=opt.learning_rate,
        num_train_epochs=opt.epochs,
        max_steps=opt.max_steps,
        lr_scheduler_type=opt.lr_scheduler,
        # transformers 5 reads a value below 1 as a fraction of the total steps
        warmup_steps=opt.warmup_ratio,
        weight_decay=opt.weight_decay,
        max_grad_norm=opt.max_grad_norm,
        logging_steps=opt.logging_steps,
        save_strategy="steps",
        save_steps=opt.save_steps,
        save_total_limit=opt.save_total_limit,
        activation_checkpointing=opt.gradient_checkpointing,  # transformers 5 name
        seed=seed,
        data_seed=seed,
        report_to="none",
        remove_unused_columns=False,
        use_cpu=device == "cpu",
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        dataloader_num_workers=0,
        disable_tqdm=False,
        **extra,
    )
