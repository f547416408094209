"""Qwen3-Embedding adapter (``Qwen/Qwen3-Embedding-0.6B`` or the tiny build) through
sentence-transformers: last-token pooling, left padding, L2-normalised vectors, and one
instruction on every text.

Qwen3-Embedding is instruction-aware: a query is embedded as
``"Instruct: {task}\nQuery:{text}"``. Its built-in ``query`` prompt is the web-search
task ("Given a web search query, retrieve relevant passages that answer the query"),
which asks for query→passage relevance, not for whether two texts say the same thing.
RL-CoMM's r_arr asks the latter: does the policy's ``<a-think>`` describe the same
sounds as the reference audio reasoning? So both sides (the reference, embedded once in
the score stage by :func:`avtrust.scoring.reasoning.reference_reasoning`, and the
completions, embedded by :class:`avtrust.train.rewards.StepRewards`) get
:data:`EMBEDDING_INSTRUCTION`, a semantic-similarity task in the form of Qwen3-Embedding's
own symmetric STS instructions ("Retrieve semantically similar text"; "Given a news
summary, retrieve other semantically similar summaries"), narrowed to descriptions of
sounds. The same instruction on both sides keeps the similarity symmetric.
Configurable as ``scoring.rlcomm.embedding_instruction`` (null: this default).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from avtrust.models.registry import ModelSpec, resolve_device, torch_dtype

PathLike = str | os.PathLike
EMBEDDING_INSTRUCTION = (
    "Instruct: Given a description of the sounds in a clip, retrieve other descriptions "
    "of the same sounds\nQuery:"
)


class TextEmbedder:
    """``instruction``: the text put before every input (see the module docstring);
    ``prompt_name`` (one of the model's own prompts) is used only without one."""

    def __init__(
        self, model, prompt_name: str | None = None, instruction: str | None = EMBEDDING_INSTRUCTION
    ):
        self.model = model
        self.prompt_name = prompt_name if prompt_name in (model.prompts or {}) else None
        self.instruction = instruction

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
        prompt_name = spec.options.get("prompt_name") if spec else None
        return cls(model, prompt_name, None if prompt_name else EMBEDDING_INSTRUCTION)

    def embed(
        self, texts: Sequence[str], batch_size: int = 64, instruction: str | None = None
    ) -> np.ndarray:
        """(n, d) unit vectors; ``instruction`` (None: the embedder's own) before each text."""
        if not texts:
            return np.zeros((0, 0), np.float32)
        instruction = self.instruction if instruction is None else instruction
        emb = self.model.encode(
            list(texts),
            prompt=instruction or None,
            prompt_name=None if instruction else self.prompt_name,
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
