"""Qwen3-Embedding adapter (``Qwen/Qwen3-Embedding-0.6B`` or the tiny build) through
sentence-transformers: last-token pooling, left padding, L2-normalised vectors, and the
model's ``query`` prompt on every text (RL-CoMM compares reasoning texts with each
other, so both sides get the same prompt and the similarity is symmetric)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from avtrust.models.registry import ModelSpec, resolve_device, torch_dtype

PathLike = str | os.PathLike


class TextEmbedder:
    def __init__(self, model, prompt_name: str = "query"):
        self.model = model
        self.prompt_name = prompt_name if prompt_name in (model.prompts or {}) else None

    @classmethod
    def load(cls, path: PathLike, *, spec: ModelSpec | None = None, device: str = "cpu"):
        from sentence_transformers import SentenceTransformer

        dtype = torch_dtype(spec.dtype if spec else "auto")
        model = SentenceTransformer(
            str(path),
            device=resolve_device(device),
            trust_remote_code=bool(spec and spec.trust_remote_code),
            model_kwargs={"dtype": dtype},
            processor_kwargs={"padding_side": "left"},
            local_files_only=True,
        )
        prompt = spec.options.get("prompt_name", "query") if spec else "query"
        return cls(model, prompt)

    def embed(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """(n, d) unit vectors."""
        if not texts:
            return np.zeros((0, 0), np.float32)
        emb = self.model.encode(
            list(texts),
            prompt_name=self.prompt_name,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(emb, dtype=np.float32)

    def similarity(self, a: Sequence[str], b: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Cosine similarity of ``a[i]`` and ``b[i]`` for every i: each distinct text is
        embedded once, all in one batched pass."""
        from avtrust.scoring.similarity import cosine

        if len(a) != len(b):
            raise ValueError(f"{len(a)} texts against {len(b)}")
        unique = list(dict.fromkeys([*a, *b]))
        row = {text: i for i, text in enumerate(unique)}
        emb = self.embed(unique, batch_size)
        return cosine(emb[[row[t] for t in a]], emb[[row[t] for t in b]])
