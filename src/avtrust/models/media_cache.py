"""Per-clip memo of what building model inputs costs: probing, decoding, audio features.

Building a thinker batch on CPU is dominated by ffprobe/ffmpeg processes and Whisper
log-mel features (~0.2 s per short clip against ~0.01 s in a tiny model), and the same
clip comes back often: every option of a multiple-choice sample in log-likelihood mode,
both scoring modes of an evaluation batch, the chosen/rejected sequences of a
preference pair, every epoch of training. :func:`cache_decoding` makes an input builder
(:mod:`avtrust.models.omni_inputs`) do each of these once per clip, in LRU caches of
``size`` clips; training (:mod:`avtrust.train`) and evaluation
(:mod:`avtrust.evaluate.infer`) both use it.

The caches key on the clip's path: clips are read-only inputs of a run. Decoded frames
are kept at the model's resolution and frame rate, so ``size`` bounds memory (a 60 s
clip at 2 fps and 448×448 is ~70 MB).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

PathLike = str | os.PathLike


class LRU:
    """``fn(key)`` memoised for the ``size`` most recently used keys (no memo if 0).

    Safe to call from several threads (decoding runs in a pool); two threads asking for
    the same missing key may both compute it."""

    def __init__(self, fn: Callable, size: int = 64):
        self.fn = fn
        self.size = size
        self.entries: OrderedDict[Hashable, object] = OrderedDict()
        self.misses = 0
        self.lock = threading.Lock()

    def lookup(self, key: Hashable, compute: Callable[[], object]):
        with self.lock:
            if key in self.entries:
                self.entries.move_to_end(key)
                return self.entries[key]
        value = compute()
        with self.lock:
            self.misses += 1
            if self.size > 0:
                self.entries[key] = value
                while len(self.entries) > self.size:
                    self.entries.popitem(last=False)
        return value

    def __call__(self, path: PathLike):
        return self.lookup(str(path), lambda: self.fn(path))

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()
            self.misses = 0


class CachedFeatures:
    """A ``WhisperFeatureExtractor`` memoised per clip when it pads to a fixed length
    (``padding="max_length"``: a clip's features then do not depend on the rest of the
    batch), keyed by a hash of the samples and the call's options."""

    def __init__(self, extractor, size: int = 64):
        self.extractor = extractor
        self.memo = LRU(None, size)

    def __getattr__(self, name):
        return getattr(self.extractor, name)

    def clear(self) -> None:
        self.memo.clear()

    def __call__(self, audio, **kwargs):
        import numpy as np
        import torch

        if kwargs.get("padding") != "max_length" or kwargs.get("return_tensors") != "pt":
            return self.extractor(audio, **kwargs)
        options = tuple(sorted((k, str(v)) for k, v in kwargs.items()))
        parts = []
        for clip in audio:
            clip = np.ascontiguousarray(clip)
            key = (hashlib.sha1(clip.tobytes()).hexdigest(), clip.shape, str(clip.dtype), options)
            parts.append(self.memo.lookup(key, lambda c=clip: dict(self.extractor([c], **kwargs))))
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def cache_decoding(builder, size: int = 64):
    """Make ``builder`` probe and decode each clip, and compute its audio features, once
    per ``size`` most recent clips (idempotent; returns the builder)."""
    if not isinstance(builder.read_clip, LRU):
        builder.read_clip = LRU(builder.read_clip, size)
        builder.streams = LRU(builder.streams, max(size, 4096))  # probe results are small
    extractor = getattr(builder, "feature_extractor", None)
    if extractor is not None and not isinstance(extractor, CachedFeatures):
        builder.feature_extractor = CachedFeatures(extractor, size)
    return builder


def warm(builder, paths) -> None:
    """Load ``paths`` into the memo of a builder wrapped by :func:`cache_decoding`: their
    arrays (decoded, or read from a decode cache) and, for a builder that featurises
    audio itself, their audio features with the options its batches use. Run on a
    worker thread while the model works on the batch before (evaluation's prefetch)."""
    unique = list(dict.fromkeys(str(p) for p in paths))
    media = [builder.read_clip(p) for p in unique]
    extractor = getattr(builder, "feature_extractor", None)
    audio = [m[1] for m in media if m[1] is not None]
    if isinstance(extractor, CachedFeatures) and audio:
        extractor(audio, sampling_rate=16000, return_attention_mask=True,
                  padding="max_length", return_tensors="pt")  # fmt: skip


def clear_cache(builder) -> None:
    """Forget everything :func:`cache_decoding` memoised for ``builder``."""
    for name in ("read_clip", "streams", "feature_extractor"):
        memo = getattr(builder, name, None)
        if isinstance(memo, LRU | CachedFeatures):
            memo.clear()
