"""CLAP adapter (``laion/clap-htsat-unfused`` or the tiny build): text and audio
embeddings in CLAP's joint space, L2-normalised.

Audio is read at the feature extractor's rate (48 kHz) and cut to its window (10 s)
around the clip's centre before feature extraction, so the unfused model's
``rand_trunc`` never draws a random crop and scores are reproducible; shorter clips are
repeat-padded (``padding="repeatpad"``), as CLAP was trained.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from avtrust.models.decode_cache import read_soundtrack
from avtrust.models.registry import ModelSpec, load_with_processor

PathLike = str | os.PathLike


def centre_crop(audio: np.ndarray, n: int) -> np.ndarray:
    if len(audio) <= n:
        return audio
    start = (len(audio) - n) // 2
    return audio[start : start + n]


class Clap:
    def __init__(self, model, processor, device: str = "cpu"):
        self.model = model
        self.processor = processor
        self.device = device
        # a decode-once cache (avtrust.models.decode_cache) that read() takes clips from
        self.decode_cache = None

    @classmethod
    def load(cls, path: PathLike, *, spec: ModelSpec | None = None, device: str = "cpu"):
        from transformers import ClapModel

        return cls(*load_with_processor(ClapModel, path, spec, device))

    @property
    def sample_rate(self) -> int:
        return int(self.processor.feature_extractor.sampling_rate)

    def read(self, path: PathLike) -> np.ndarray | None:
        """The clip's soundtrack at :attr:`sample_rate`; None if it has no audio. Read
        from :attr:`decode_cache` where it holds the clip, decoded otherwise."""
        return read_soundtrack(self.decode_cache, path, self.sample_rate)

    @property
    def window(self) -> int:
        return int(self.processor.feature_extractor.nb_max_samples)

    def embed_text(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """(n, d) unit vectors of ``texts``."""
        import torch

        rows = []
        for start in range(0, len(texts), batch_size):
            enc = self.processor.tokenizer(
                list(texts[start : start + batch_size]),
                padding=True,
                truncation=True,
                return_tensors="pt",
            ).to(self.device)
            with torch.inference_mode():
                out = self.model.get_text_features(**enc).pooler_output
            rows.append(out.float().cpu().numpy())
        return _stack(rows)

    def embed_audio(self, audios: Sequence[np.ndarray], batch_size: int = 16) -> np.ndarray:
        """(n, d) unit vectors of mono waveforms at :attr:`sample_rate`."""
        import torch

        rows = []
        for start in range(0, len(audios), batch_size):
            feats = self.features(audios[start : start + batch_size]).to(self.device)
            with torch.inference_mode():
                out = self.model.get_audio_features(
                    input_features=feats["input_features"].to(self.model.dtype),
                    is_longer=feats.get("is_longer"),
                ).pooler_output
            rows.append(out.float().cpu().numpy())
        return _stack(rows)

    def features(self, audios: Sequence[np.ndarray]):
        """The audio tower's inputs: each waveform cut to :attr:`window` around its
        centre, then the official ``ClapProcessor`` (so ``rand_trunc`` never crops)."""
        return self.processor(
            audio=[centre_crop(a, self.window) for a in audios],
            sampling_rate=self.sample_rate,
            truncation="rand_trunc",
            padding="repeatpad",
            return_tensors="pt",
        )

    def embed_audio_files(
        self, paths: Sequence[PathLike], batch_size: int = 16
    ) -> list[np.ndarray | None]:
        """Embeddings of the clips' soundtracks; None for a clip without audio."""
        waves = [self.read(p) for p in paths]
        present = [i for i, w in enumerate(waves) if w is not None and len(w) > 0]
        emb = self.embed_audio([waves[i] for i in present], batch_size)
        out: list[np.ndarray | None] = [None] * len(paths)
        for row, i in enumerate(present):
            out[i] = emb[row]
        return out


def _stack(rows: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(rows).astype(np.float32) if rows else np.zeros((0, 0), np.float32)
