"""Training configuration: one settings dataclass per kind of training job.

SFT, DPO and CAVPref come from ``training:``. The section holds shared settings (policy
model, device, precision, processes, DeepSpeed file), ``defaults`` (hyper-parameters
every method starts from) and one section per method. A method's settings are
``defaults`` ← its family's section ← its own section, so an ablation only states what
differs::

    training:
      defaults: {learning_rate: 1.0e-3, lora: {enabled: true, r: 8, ...}, ...}
      cavpref: {lambda_text: 1.0, lambda_video: 1.0, lambda_audio: 0.8}
      cavpref_no_robust: {robust: false}     # family cavpref: inherits the lambdas

The family of a method is its own name for ``sft``/``dpo``/``cavpref`` and the prefix
before the first ``_`` otherwise (``cavpref_no_av`` → ``cavpref``), unless the section
sets ``family``.

The RL-CoMM stages (``warmup``, ``grpo``, ``ansco``) come from ``rlcomm:``: the stage's
section with the shared ``lora`` (:func:`avtrust.train.rlcomm.stage_settings`).

Every job's settings travel in its run spec as :func:`settings_dict` and come back as
the same dataclass with :func:`settings_from_dict`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields

from avtrust.errors import ConfigError
from avtrust.train.tracking import job_tracking


@dataclass(frozen=True)
class LoraSettings:
    """LoRA on the thinker's language model (``enabled: false`` trains all weights)."""

    enabled: bool = True
    r: int = 8
    alpha: int = 16
    dropout: float = 0.0
    # Module-name suffixes that get adapters (the language model's projections).
    targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")


@dataclass(frozen=True, kw_only=True)
class TrainSettings:
    """What every training job shares: its name, family, seed and adapters, and the
    optimisation, batching and checkpoint settings (see the schema's ``train_method``
    and ``rlcomm_*`` definitions for their meaning)."""

    method: str
    family: str
    seed: int = 0
    lora: LoraSettings = field(default_factory=LoraSettings)
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


@dataclass(frozen=True, kw_only=True)
class MethodSettings(TrainSettings):
    """A method trained on AVTrustBench rows (SFT, DPO, CAVPref)."""

    # > 0: train on this many rows, the first in a seeded order (quick runs).
    max_samples: int = 0
    # AVTrustBench tasks the method trains on (SFT: benchmark samples of the training
    # split; preference methods: the rows of the pairs file of these tasks).
    tasks: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class SFTSettings(MethodSettings):
    """Supervised fine-tuning on (question, ground-truth answer) with the clean clip."""


@dataclass(frozen=True, kw_only=True)
class PreferenceSettings(MethodSettings):
    """DPO and CAVPref (DPO: fixed β, no V'/A' terms, no robustness).

    ``beta: calibrated`` takes β_y, β_V, β_A per sample from the pairs file; a number
    uses that β for all three terms. ``av_terms`` adds L_V and L_A (weighted by the
    pair's η, γ); ``robust`` replaces each term's batch mean by
    λ·log mean exp(L/λ) with λ = ``lambda_text`` / ``lambda_video`` / ``lambda_audio``.
    """

    beta: float | str = 0.1
    av_terms: bool = False
    robust: bool = False
    lambda_text: float = 1.0
    lambda_video: float = 1.0
    lambda_audio: float = 0.8

    def calibrated(self) -> bool:
        return self.beta == "calibrated"


@dataclass(frozen=True, kw_only=True)
class StageSettings(TrainSettings):
    """An RL-CoMM stage: a constant learning rate unless its section says otherwise."""

    lr_scheduler: str = "constant"


@dataclass(frozen=True, kw_only=True)
class WarmupSettings(StageSettings):
    """Warm-up SFT on the formatted reasoning pairs."""


@dataclass(frozen=True, kw_only=True)
class GRPOSettings(StageSettings):
    """A GRPO stage (Step-RR, or the accuracy-rewarded baseline); no KL term."""

    group_size: int = 6  # completions per prompt (G)
    max_completion_length: int = 512
    temperature: float = 1.0
    omega: float = 0.8  # the r_arr similarity threshold ω
    # Sample each row from its own seed: the same completions on 1 or N processes.
    seeded_generation: bool = False
    loss_type: str = "grpo"
    scale_rewards: str = "group"
    embed_batch_size: int = 64
    # Qwen3-Embedding instruction of r_arr / r_avc (the references' one); None: default.
    embedding_instruction: str | None = None
    # Built-in reward components of the stage (avtrust.train.rewards.StepRewards).
    rewards: tuple[str, ...] = ()
    # The user's own TRL reward functions, "module:function" each.
    extra_rewards: tuple[str, ...] = ()
    # Score every training prompt (a group each) with the start policy and again with the
    # trained one: metrics.json reward_<name>_before / _after, the same prompts both times.
    reward_before_after: bool = True


@dataclass(frozen=True, kw_only=True)
class AnsCOSettings(StageSettings):
    """Ans-CO: NLL of the chosen targets + λ·answer entropy, gated by the uncertainty u."""

    samples: int = 6  # K completions per sample for u
    max_completion_length: int = 512
    temperature: float = 1.0
    lam: float = 0.5
    u_threshold: float = 0.75


FAMILIES = ("sft", "dpo", "cavpref")


FAMILY_DEFAULTS = {
    "sft": {},
    "dpo": {"beta": 0.1, "av_terms": False, "robust": False},
    "cavpref": {"beta": "calibrated", "av_terms": True, "robust": True},
}
SETTINGS_CLASS = {
    "sft": SFTSettings,
    "dpo": PreferenceSettings,
    "cavpref": PreferenceSettings,
    "warmup": WarmupSettings,
    "grpo": GRPOSettings,
    "ansco": AnsCOSettings,
}


def family_of(method: str, section: dict | None = None) -> str:
    family = (section or {}).get("family") or (
        method if method in FAMILIES else method.split("_", 1)[0]
    )
    if family not in FAMILIES:
        raise ConfigError(
            f"config: training.{method}: cannot tell the method family "
            f"(name it sft, dpo, cavpref or <family>_<variant>, or set `family`)"
        )
    return family


def declared_methods(training: dict) -> list[str]:
    """Every method with a section under ``training`` (trainable by name)."""
    reserved = set(SHARED_KEYS)
    return [k for k in training if k not in reserved and isinstance(training[k], dict)]


SHARED_KEYS = (
    "model",
    "methods",
    "device",
    "precision",
    "processes",
    "gpus",
    "threads",
    "mem_mb",
    "accelerate_config",
    "tasks",
    "media_cache",
    "keep_state",
    "tracking",
    "defaults",
)


def deep_merge(base: dict, extra: dict) -> dict:
    """``extra`` over ``base`` key by key, nested dicts merged (as Snakemake merges a
    --configfile into the config); neither input is changed."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def method_settings(training: dict, method: str, seed: int) -> MethodSettings:
    """The dataclass of ``method`` from the ``training`` section (see the module doc)."""
    if method not in training or not isinstance(training[method], dict):
        known = ", ".join(declared_methods(training)) or "none"
        raise ConfigError(f"config: training has no method {method!r} (declared: {known})")
    section = dict(training[method])
    family = family_of(method, section)
    section.pop("family", None)
    merged = deep_merge(training.get("defaults", {}), FAMILY_DEFAULTS[family])
    if family != method and isinstance(training.get(family), dict):
        merged = deep_merge(merged, training[family])
    merged = deep_merge(merged, section)
    merged.pop("family", None)
    merged.setdefault("seed", seed)
    if merged["seed"] is None:
        merged["seed"] = seed
    merged.setdefault("tasks", training.get("tasks", ()))
    merged["tasks"] = merged["tasks"] or ()
    settings = build_settings(
        SETTINGS_CLASS[family],
        f"training.{method} ({family} method)",
        {**merged, "method": method, "family": family},
    )
    if isinstance(settings, PreferenceSettings):
        if isinstance(settings.beta, str) and settings.beta != "calibrated":
            raise ConfigError(
                f"config: training.{method}.beta must be a number or 'calibrated', "
                f"not {settings.beta!r}"
            )
        for name in ("lambda_text", "lambda_video", "lambda_audio"):
            if getattr(settings, name) <= 0:
                raise ConfigError(f"config: training.{method}.{name} must be > 0")
    return settings


# What a training job reads besides its method's settings (threads, GPUs and memory are
# the job's resources; `methods` only says which methods `all` trains). `tracking` is
# resolved per method (avtrust.train.tracking.job_tracking).
JOB_KEYS = (
    "device",
    "precision",
    "processes",
    "media_cache",
    "accelerate_config",
    "keep_state",
    "tracking",
)


def job_settings(training: dict, method: str, seed: int, prompt: dict | None = None) -> dict:
    """Exactly the configuration the training job of ``method`` reads (the rule's params):
    its merged settings, the shared job keys and the prompt parts its rows are worded by
    (``prompt``: :func:`avtrust.evaluate.prompt_template.training_parts`; None: the
    default wording), so that editing another method's section leaves this method's
    checkpoint as it is."""
    return {
        "settings": settings_dict(method_settings(training, method, seed)),
        "model": training["model"],
        **{k: training[k] for k in JOB_KEYS},
        "tracking": job_tracking(training["tracking"], "training.tracking", method),
        "prompt": prompt,
    }


def settings_dict(settings: TrainSettings) -> dict:
    """JSON-able: tuples become lists."""

    def plain(value):
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return list(value) if isinstance(value, tuple) else value

    return plain(asdict(settings))


def settings_from_dict(data: dict) -> TrainSettings:
    """The dataclass of ``data["family"]`` (lists back to tuples)."""
    data = dict(data)
    cls = SETTINGS_CLASS[data["family"]]
    lora = data.pop("lora", {})
    lora = LoraSettings(**{**lora, "targets": tuple(lora.get("targets", LoraSettings.targets))})
    return cls(lora=lora, **{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def build_settings(cls, where: str, values: dict) -> TrainSettings:
    """``cls`` from a merged config section, with an error naming ``where`` and the
    allowed keys for an unknown one."""
    allowed = {f.name for f in fields(cls)} - {"method", "family"}
    unknown = sorted(set(values) - allowed - {"method", "family", "lora"})
    if unknown:
        raise ConfigError(
            f"config: {where}: unknown key(s) {unknown} (allowed: {', '.join(sorted(allowed))})"
        )
    return settings_from_dict(values)


def config_hash(obj) -> str:
    """A short, stable hash of a JSON-able object (the run spec): resume state made
    under another configuration is never resumed."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
