"""Similarities, AVSM and the calibrated β of CAVPref.

Definitions (also in the README):

- **cosine** ``cos(x, y) = x·y / (|x| |y|)`` of embedding vectors (rows); a zero vector
  has no direction and is an error.
- **CLAP text similarity** of two texts: cosine of their CLAP text embeddings.
  **CLAP audio–text similarity**: cosine of a soundtrack's CLAP audio embedding and a
  text's CLAP text embedding (same joint space).
- **Qwen3-Embedding similarity**: cosine of the two texts' Qwen3-Embedding vectors, both
  encoded with the model's ``query`` prompt.
- **AVSM** (audio-visual similarity of two clips X and Y)::

      AVSM(X, Y) = s_audio(X, Y) · s_visual(X, Y)                      ∈ [0, 1]
      s_audio  = max(0, cos(CLAP_audio(soundtrack X), CLAP_audio(soundtrack Y)))
      s_visual = max(0, cos(CLAP_text(caption X),    CLAP_text(caption Y)))

  where a clip's *caption* describes its visual stream from the labels of the source
  clip(s) that provide it ("A video showing violin and cello.", parts of a stitched
  video joined by ", then "). A modality absent from both clips counts as identical
  (s = 1); present in one and absent in the other, as unrelated (s = 0). The product
  makes two clips similar only if they sound alike *and* show alike things; a pair
  that differs in one modality only (the V/V' and A/A' pairs of CAVPref) gets exactly
  that modality's similarity.
- **Normalised dissimilarity** ``ΔS = 1 − S`` for a similarity S clipped to [0, 1]
  (negative cosines count as unrelated): 0 for identical, 1 for orthogonal or opposite.
  Text pair: S = CLAP text similarity of y_w and y_l. Video pair: S = AVSM(V, V').
  Audio pair: S = AVSM(A, A').
- **Calibrated β** ``β = 0.9·ΔS + 0.1`` ∈ [0.1, 1.0], increasing in ΔS: semantically
  close pairs (hard to tell apart) get a small β, a soft preference margin.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BETA_SLOPE = 0.9
BETA_FLOOR = 0.1


def _rows(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x[None, :] if x.ndim == 1 else x


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError("cosine similarity of a zero vector is undefined")
    return x / norms


def cosine(a, b) -> np.ndarray:
    """Row-wise cosine similarity of (n, d) and (n, d) arrays (or two vectors) → (n,)."""
    a, b = _rows(a), _rows(b)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    return np.clip(np.sum(_unit(a) * _unit(b), axis=-1), -1.0, 1.0)


def cosine_matrix(a, b) -> np.ndarray:
    """All-pairs cosine similarity: (n, d) × (m, d) → (n, m)."""
    return np.clip(_unit(_rows(a)) @ _unit(_rows(b)).T, -1.0, 1.0)


def modality_similarity(x: np.ndarray | None, y: np.ndarray | None) -> float:
    """max(0, cos) of two embeddings of one modality; 1 if both absent, 0 if one is."""
    if x is None and y is None:
        return 1.0
    if x is None or y is None:
        return 0.0
    return float(max(0.0, cosine(x, y)[0]))


def avsm(
    audio_x: np.ndarray | None,
    audio_y: np.ndarray | None,
    visual_x: np.ndarray | None,
    visual_y: np.ndarray | None,
) -> float:
    """AVSM of clips X and Y from their CLAP audio and visual-caption embeddings."""
    return modality_similarity(audio_x, audio_y) * modality_similarity(visual_x, visual_y)


def dissimilarity(similarity) -> np.ndarray | float:
    """ΔS = 1 − clip(S, 0, 1)."""
    out = 1.0 - np.clip(np.asarray(similarity, dtype=np.float64), 0.0, 1.0)
    return float(out) if out.ndim == 0 else out


def calibrated_beta(delta_s) -> np.ndarray | float:
    """β = 0.9·ΔS + 0.1 for ΔS ∈ [0, 1] (values outside are clipped first)."""
    d = np.clip(np.asarray(delta_s, dtype=np.float64), 0.0, 1.0)
    out = BETA_SLOPE * d + BETA_FLOOR
    return float(out) if out.ndim == 0 else out


def beta_from_similarity(similarity) -> np.ndarray | float:
    """β of a pair from its similarity S: 0.9·(1 − clip(S, 0, 1)) + 0.1."""
    return calibrated_beta(dissimilarity(similarity))


def visual_caption(
    parts: Sequence[Sequence[str]],
    template: str = "A video showing {labels}.",
    label_joiner: str = " and ",
    then_joiner: str = ", then ",
    unlabelled: str = "something",
) -> str | None:
    """The caption of a visual stream made of ``parts`` (label lists of its source clips,
    in playing order); None for a clip without video (no parts)."""
    if not parts:
        return None
    described = [label_joiner.join(p) if len(p) else unlabelled for p in parts]
    return template.format(labels=then_joiner.join(described))
