"""LoRA on the thinker's language model (peft).

``targets`` are module-name suffixes (``q_proj``, ``v_proj``...); they are matched only
inside the language model (``model.language_model.``), never in the audio or vision
towers, which have projections with the same names, nor the LM head (TRL scores with
``lm_head.weight`` directly).
"""

from __future__ import annotations

import re

from avtrust.errors import ConfigError
from avtrust.train.config import LoraSettings

LANGUAGE_MODEL = "model.language_model."


def target_regex(targets) -> str:
    names = "|".join(re.escape(t) for t in targets)
    return rf".*{re.escape(LANGUAGE_MODEL)}.*\.({names})$"


def lora_config(settings: LoraSettings, model=None):
    """The peft ``LoraConfig`` (checked against ``model``'s module names when given)."""
    from peft import LoraConfig

    if not settings.targets:
        raise ConfigError("config: training lora.targets is empty")
    regex = target_regex(settings.targets)
    if model is not None:
        names = [n for n, _ in model.named_modules() if re.fullmatch(regex, n)]
        if not names:
            raise ConfigError(
                f"config: training lora.targets {list(settings.targets)} match no module of "
                f"the language model ({LANGUAGE_MODEL}*)"
            )
    return LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=regex,
        bias="none",
        task_type="CAUSAL_LM",
    )


def apply_lora(model, settings: LoraSettings):
    """``model`` wrapped with fresh adapters (only they train), or unchanged with every
    weight trainable when LoRA is off."""
    if not settings.enabled:
        for p in model.parameters():
            p.requires_grad_(True)
        return model
    from peft import get_peft_model

    return get_peft_model(model, lora_config(settings, model))
