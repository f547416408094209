"""Start the tiny Omni thinker from the pre-trained audio LLM.

Qwen2.5-Omni was not trained from scratch: its language model starts from Qwen2.5 and
its audio encoder from Whisper-large-v3, both already trained. The tiny world has a
trained model of the same pieces — the audio LLM (Qwen2-Audio classes, the same tiny
text and Whisper encoder dimensions, the same tokenizer), pre-trained to name the
instruments it hears — so the thinker can start from it the same way: its language
model, audio encoder and audio projection copied, its vision tower left as built. Or
only the audio encoder (``parts``), when the language model has learnt to see first
(the vision job's alignment, :mod:`avtrust.pretrain.vision_tower`) and is kept.
"""

from __future__ import annotations

import os
import re

from avtrust.errors import ConfigError

PathLike = str | os.PathLike

# Qwen2AudioForConditionalGeneration's parameter -> the thinker's
# (Qwen2_5OmniThinkerForConditionalGeneration), as transformers names them in memory;
# every other name is the same in both (language model, lm_head, encoder convolutions
# and layers).
RENAMES = (
    (r"model\.audio_tower\.layer_norm\.(.*)", r"model.audio_tower.ln_post.\1"),
    (r"model\.multi_modal_projector\.linear\.(.*)", r"model.audio_tower.proj.\1"),
)
# Left behind: Qwen2-Audio's position table (Whisper's sinusoids in the real and the
# tiny build), which the Omni encoder computes itself as a buffer.
SKIPPED = re.compile(r"model\.audio_tower\.embed_positions\..*")
# What the thinker can take from the audio LLM (pretrain.thinker.start_parts), by the
# thinker's parameter names: the audio encoder (with its projection) and the language
# model (with the output head: every other parameter the two share).
AUDIO_TOWER = "audio_tower"
LANGUAGE_MODEL = "language_model"
PARTS = (LANGUAGE_MODEL, AUDIO_TOWER)


def part_of(thinker_name: str) -> str:
    """The part (:data:`PARTS`) a thinker parameter carried over from the audio LLM is in."""
    return AUDIO_TOWER if thinker_name.startswith("model.audio_tower.") else LANGUAGE_MODEL


def thinker_name(audio_llm_name: str) -> str | None:
    """The thinker parameter an audio LLM parameter becomes (None: not carried over)."""
    if SKIPPED.fullmatch(audio_llm_name):
        return None
    for pattern, target in RENAMES:
        if re.fullmatch(pattern, audio_llm_name):
            return re.sub(pattern, target, audio_llm_name)
    return audio_llm_name


def start_from_audio_llm(
    thinker_model, audio_llm_dir: PathLike, parts: tuple[str, ...] = PARTS
) -> dict:
    """Copy the audio LLM's weights (``audio_llm_dir``: a prepared or pre-trained
    ``qwen2_audio`` model folder) of ``parts`` (:data:`PARTS`) into ``thinker_model`` in
    place; returns {"copied": n, "parts": [...], "kept": [thinker parameter groups left
    as they were]}. A parameter without a place in the thinker, or of another shape (the
    two were built with other dimensions), is a ConfigError."""
    from avtrust.models.registry import load

    unknown = sorted(set(parts) - set(PARTS))
    if unknown or not parts:
        raise ConfigError(
            f"pretrain.thinker.start_parts {list(parts)}: name one or more of {list(PARTS)}"
        )
    source = load(audio_llm_dir).model.state_dict()
    target = thinker_model.state_dict()
    copied = set()
    for name, tensor in source.items():
        dest = thinker_name(name)
        if dest is None or (dest in target and part_of(dest) not in parts):
            continue
        if dest not in target:
            raise ConfigError(f"audio LLM parameter {name!r}: the thinker has no {dest!r}")
        if tuple(target[dest].shape) != tuple(tensor.shape):
            raise ConfigError(
                f"audio LLM parameter {name!r} {tuple(tensor.shape)} does not fit the "
                f"thinker's {dest!r} {tuple(target[dest].shape)}: built with other dimensions"
            )
        target[dest] = tensor.to(target[dest].dtype)
        copied.add(dest)
    thinker_model.load_state_dict(target)
    kept = sorted({".".join(k.split(".")[:3]) for k in target if k not in copied})
    return {"copied": len(copied), "parts": list(parts), "kept": kept}
