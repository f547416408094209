"""Training configuration: one dataclass per method family, built from ``training:``.

The config section holds shared settings (policy model, device, precision, processes,
DeepSpeed file), ``defaults`` (hyper-parameters every method starts from) and one
section per method. A method's settings are ``defaults`` ← its family's section ←
its own section, so an ablation only states what differs::

    training:
      defaults: {learning_rate: 1.0e-3, lora: {enabled: true, r: 8, ...}, ...}
      cavpref: {lambda_text: 1.0, lambda_video: 1.0, lambda_audio: 0.8}
      cavpref_no_robust: {robust: false}     # family cavpref: inherits the lambdas

The family of a method is its own name for ``sft``/``dpo``/``cavpref`` and the prefix
before the first ``_`` otherwise (``cavpref_no_av`` → ``cavpref``), unless the section
sets ``family``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields

from avtrust.errors import ConfigError
from avtrust.train.arguments import Optimisation

FAMILIES = ("sft", "dpo", "cavpref")


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
class TrainSettings(Optimisation):
    """What every method shares: the optimisation settings, and its name, family, seed,
    training rows and adapters."""

    method: str
    family: str
    seed: int = 0
    # > 0: train on this many rows, the first in a seeded order (quick runs).
    max_samples: int = 0
    lora: LoraSettings = field(default_factory=LoraSettings)
    # AVTrustBench tasks the method trains on (SFT: benchmark samples of the training
    # split; preference methods: the rows of the pairs file of these tasks).
    tasks: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class SFTSettings(TrainSettings):
    """Supervised fine-tuning on (question, ground-truth answer) with the clean clip."""


@dataclass(frozen=True, kw_only=True)
class PreferenceSettings(TrainSettings):
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


FAMILY_DEFAULTS = {
    "sft": {},
    "dpo": {"beta": 0.1, "av_terms": False, "robust": False},
    "cavpref": {"beta": "calibrated", "av_terms": True, "robust": True},
}
SETTINGS_CLASS = {"sft": SFTSettings, "dpo": PreferenceSettings, "cavpref": PreferenceSettings}


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
    "defaults",
)


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def method_settings(training: dict, method: str, seed: int) -> TrainSettings:
    """The dataclass of ``method`` from the ``training`` section (see the module doc)."""
    if method not in training or not isinstance(training[method], dict):
        known = ", ".join(declared_methods(training)) or "none"
        raise ConfigError(f"config: training has no method {method!r} (declared: {known})")
    section = dict(training[method])
    family = family_of(method, section)
    section.pop("family", None)
    merged = _merge(training.get("defaults", {}), FAMILY_DEFAULTS[family])
    if family != method and isinstance(training.get(family), dict):
        merged = _merge(merged, training[family])
    merged = _merge(merged, section)
    merged.pop("family", None)
    merged.setdefault("seed", seed)
    if merged["seed"] is None:
        merged["seed"] = seed
    merged.setdefault("tasks", training.get("tasks", ()))
    cls = SETTINGS_CLASS[family]
    allowed = {f.name for f in fields(cls)}
    unknown = sorted(set(merged) - allowed)
    if unknown:
        raise ConfigError(
            f"config: training.{method}: unknown key(s) {unknown} for a {family} method "
            f"(allowed: {', '.join(sorted(allowed - {'method', 'family'}))})"
        )
    lora = LoraSettings(**{**merged.pop("lora", {})})
    lora = LoraSettings(**{**asdict(lora), "targets": tuple(lora.targets)})
    merged["tasks"] = tuple(merged.get("tasks") or ())
    settings = cls(method=method, family=family, lora=lora, **merged)
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
# the job's resources; `methods` only says which methods `all` trains).
JOB_KEYS = (
    "model",
    "device",
    "precision",
    "processes",
    "accelerate_config",
    "media_cache",
    "keep_state",
)


def job_settings(training: dict, method: str, seed: int) -> dict:
    """Exactly the configuration the training job of ``method`` reads (the rule's params):
    its merged settings and the shared job keys, so that editing another method's section
    leaves this method's checkpoint as it is."""
    return {
        "settings": settings_dict(method_settings(training, method, seed)),
        **{k: training[k] for k in JOB_KEYS},
    }


def settings_dict(settings: TrainSettings) -> dict:
    out = asdict(settings)
    out["lora"]["targets"] = list(out["lora"]["targets"])
    out["tasks"] = list(out["tasks"])
    return out


def settings_from_dict(data: dict) -> TrainSettings:
    data = dict(data)
    cls = SETTINGS_CLASS[data["family"]]
    lora = data.pop("lora")
    lora = LoraSettings(**{**lora, "targets": tuple(lora["targets"])})
    data["tasks"] = tuple(data.get("tasks") or ())
    return cls(lora=lora, **data)


def config_hash(obj) -> str:
    """A short, stable hash of a JSON-able object (the run spec): resume state made
    under another configuration is never resumed."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
