"""Qwen2.5-Omni thinker adapter (3B/7B, or the tiny build): the AVLLM that is trained.

Loads ``Qwen2_5OmniThinkerForConditionalGeneration`` from a thinker checkpoint (the tiny
build) or the thinker of a full ``Qwen2_5OmniForConditionalGeneration`` checkpoint
(the Hub's ``Qwen/Qwen2.5-Omni-7B``; the talker is dropped). Inputs come from
:func:`avtrust.models.omni_inputs.input_builder`; clips with both streams use
``use_audio_in_video`` (the soundtrack interleaved with the frames in 2-second chunks).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

from avtrust.models.omni_inputs import group_by_streams, input_builder
from avtrust.models.registry import ModelError, ModelSpec, resolve_device, torch_dtype

PathLike = str | os.PathLike
MODEL_KEYS = (
    "input_ids",
    "attention_mask",
    "input_features",
    "feature_attention_mask",
    "pixel_values_videos",
    "video_grid_thw",
    "video_second_per_grid",
    "use_audio_in_video",
    "labels",
)


class OmniThinker:
    def __init__(self, model, builder, device: str = "cpu"):
        self.model = model
        self.builder = builder
        self.tokenizer = builder.tokenizer
        self.device = device

    @classmethod
    def load(
        cls,
        path: PathLike,
        *,
        spec: ModelSpec | None = None,
        device: str = "cpu",
        input_mode: str | None = None,
    ) -> OmniThinker:
        from transformers import (
            Qwen2_5OmniForConditionalGeneration,
            Qwen2_5OmniThinkerForConditionalGeneration,
        )

        path = Path(path)
        model_type = json.loads((path / "config.json").read_text()).get("model_type")
        kwargs = {
            "dtype": torch_dtype(spec.dtype if spec else "auto"),
            "trust_remote_code": bool(spec and spec.trust_remote_code),
        }
        if model_type == "qwen2_5_omni_thinker":
            model = Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(str(path), **kwargs)
        elif model_type == "qwen2_5_omni":
            # The talker (speech output) is never built: only the thinker is used.
            full = Qwen2_5OmniForConditionalGeneration.from_pretrained(
                str(path), enable_audio_output=False, **kwargs
            )
            model = full.thinker
        else:
            raise ModelError(
                f"{str(path)!r}: model_type {model_type!r} is not a Qwen2.5-Omni model"
            )
        device = resolve_device(device)
        model = model.to(device).eval()
        mode = input_mode or (spec.options.get("input_builder", "auto") if spec else "auto")
        return cls(model, input_builder(path, mode, config=model.config), device)

    def inputs(
        self,
        paths: Sequence[PathLike],
        questions: Sequence[str],
        responses: Sequence[str] | None = None,
        *,
        use_audio_in_video: bool = True,
    ) -> dict:
        """Model inputs for one batch of clips with the same streams, on the device."""
        batch = self.builder(paths, questions, responses, use_audio_in_video=use_audio_in_video)
        return {
            k: (v.to(self.device) if hasattr(v, "to") else v)
            for k, v in batch.items()
            if k in MODEL_KEYS
        }

    def forward(self, batch: dict):
        return self.model(**batch)

    @contextmanager
    def left_padding(self):
        """Pad on the left while building inputs for generation: a decoder continues
        every row from its last position, so right padding would put pad tokens between
        a shorter prompt and its answer. The tokenizer's setting is restored after."""
        side = self.tokenizer.padding_side
        self.tokenizer.padding_side = "left"
        try:
            yield
        finally:
            self.tokenizer.padding_side = side

    def generation_inputs(
        self,
        paths: Sequence[PathLike],
        questions: Sequence[str],
        *,
        use_audio_in_video: bool = True,
    ) -> dict:
        """:meth:`inputs` for generation: prompts only, padded on the left."""
        with self.left_padding():
            return self.inputs(paths, questions, use_audio_in_video=use_audio_in_video)

    def generate_batch(self, batch: dict, *, max_new_tokens: int = 64, **generate_kwargs):
        """Greedy answers for one batch from :meth:`generation_inputs`."""
        import torch

        with torch.inference_mode():
            ids = self.model.generate(
                **batch, max_new_tokens=max_new_tokens, do_sample=False, **generate_kwargs
            )
        new = ids[:, batch["input_ids"].shape[1] :]
        return self.tokenizer.batch_decode(new, skip_special_tokens=True)

    def generate(
        self,
        paths: Sequence[PathLike],
        questions: Sequence[str],
        *,
        max_new_tokens: int = 64,
        batch_size: int = 4,
        use_audio_in_video: bool = True,
        **generate_kwargs,
    ) -> list[str]:
        """Greedy answers, batched by stream kind (prompts padded on the left); returned in
        input order."""
        out: list[str | None] = [None] * len(paths)
        for positions in group_by_streams(paths, self.builder.streams).values():
            for start in range(0, len(positions), batch_size):
                chunk = positions[start : start + batch_size]
                batch = self.generation_inputs(
                    [paths[i] for i in chunk],
                    [questions[i] for i in chunk],
                    use_audio_in_video=use_audio_in_video,
                )
                texts = self.generate_batch(batch, max_new_tokens=max_new_tokens, **generate_kwargs)
                for i, text in zip(chunk, texts, strict=True):
                    out[i] = text
        return out

    def sequence_logprobs(self, batch: dict):
        """Summed log-probability of each sequence's labelled tokens (the responses)."""
        import torch

        labels = batch["labels"]
        logits = self.model(**{k: v for k, v in batch.items() if k != "labels"}).logits
        logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
        target = labels[:, 1:]
        mask = target != -100
        picked = torch.gather(logp, 2, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        return (picked * mask).sum(-1)
