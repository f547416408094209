"""Qwen2-Audio adapter: the audio-only LLM that writes RL-CoMM's reference reasoning.

``Qwen2AudioForConditionalGeneration`` with its ``Qwen2AudioProcessor`` (Whisper
features with 128 mel bins at 16 kHz; audio passed as ``audio=``). Prompts go through
the processor's chat template, one audio per prompt.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from avtrust.models.decode_cache import read_soundtrack
from avtrust.models.registry import ModelSpec, load_with_processor

PathLike = str | os.PathLike


class AudioLLM:
    def __init__(self, model, processor, device: str = "cpu"):
        self.model = model
        self.processor = processor
        self.device = device
        self.processor.tokenizer.padding_side = "left"
        # a decode-once cache (avtrust.models.decode_cache) that read() takes clips from
        self.decode_cache = None

    @classmethod
    def load(cls, path: PathLike, *, spec: ModelSpec | None = None, device: str = "cpu"):
        from transformers import Qwen2AudioForConditionalGeneration

        return cls(*load_with_processor(Qwen2AudioForConditionalGeneration, path, spec, device))

    @property
    def sample_rate(self) -> int:
        return int(self.processor.feature_extractor.sampling_rate)

    def chat_text(self, instruction: str, system: str | None = None) -> str:
        """The chat prompt for one audio followed by ``instruction``."""
        conversation = []
        if system:
            conversation.append({"role": "system", "content": system})
        conversation.append(
            {
                "role": "user",
                "content": [
                    {"type": "audio", "audio_url": "clip"},
                    {"type": "text", "text": instruction},
                ],
            }
        )
        return self.processor.apply_chat_template(
            conversation, add_generation_prompt=True, tokenize=False
        )

    def generate(
        self,
        audios: Sequence[np.ndarray],
        instructions: Sequence[str],
        *,
        system: str | None = None,
        max_new_tokens: int = 128,
        batch_size: int = 8,
    ) -> list[str]:
        """Greedy replies, one per (audio, instruction), batched."""
        import torch

        if len(audios) != len(instructions):
            raise ValueError(f"{len(audios)} audios but {len(instructions)} instructions")
        out: list[str] = []
        for start in range(0, len(audios), batch_size):
            end = start + batch_size
            batch = self.inputs(audios[start:end], instructions[start:end], system=system)
            batch = batch.to(self.device)
            with torch.inference_mode():
                ids = self.model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False)
            new = ids[:, batch["input_ids"].shape[1] :]
            out += [t.strip() for t in self.processor.batch_decode(new, skip_special_tokens=True)]
        return out

    def inputs(self, audios: Sequence[np.ndarray], instructions: Sequence[str], *, system=None):
        """The model's inputs for (audio, instruction) pairs: the official
        ``Qwen2AudioProcessor`` on the chat texts and the waveforms."""
        return self.processor(
            text=[self.chat_text(x, system) for x in instructions],
            audio=list(audios),
            sampling_rate=self.sample_rate,
            return_tensors="pt",
            padding=True,
        )

    def read(self, path: PathLike) -> np.ndarray | None:
        """The clip's soundtrack at the model's sample rate; None if it has no audio.
        Read from :attr:`decode_cache` where it holds the clip, decoded otherwise."""
        return read_soundtrack(self.decode_cache, path, self.sample_rate)
