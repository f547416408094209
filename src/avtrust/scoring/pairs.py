"""CAVPref preference pairs: y_w, y_l, V', A', η, γ and the three calibrated β.

For each AVTrustBench training sample whose V'/A' were made (``counterfactual``):

- ``chosen`` (y_w) is the ground-truth answer — for the adversarial and modality tasks
  an abstention ("Mismatch in audio and video", "Audio is missing"...);
- ``rejected`` (y_l) is the *plausible* wrong option: among the sample's wrong options,
  the one whose CLAP text embedding is closest to the question's (ties: option order);
- ``video_corrupted_path`` / ``audio_corrupted_path`` are V' and A';
- ``eta`` / ``gamma`` weigh L_V / L_A for the task (config ``scoring.cavpref``;
  defaults η = 1 for MVIT, COT-Swap, MVT and γ = 1 for MAIT, COT-Swap, MAT, else 0);
- ``beta_text`` = β(CLAP text similarity of y_w and y_l), ``beta_video`` = β(AVSM(V, V')),
  ``beta_audio`` = β(AVSM(A, A')), with β = 0.9·(1 − clip(S, 0, 1)) + 0.1
  (``avtrust.scoring.similarity``).

One CLAP load per shard: every distinct text and soundtrack of the shard is embedded
once, in batches (V' carries the clean clip's soundtrack stream, copied, so its audio
embedding is the clean one's).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from avtrust import data_files
from avtrust.bench.samples import CORE_NAMES, SAMPLE_CORE_FIELDS
from avtrust.scoring.similarity import avsm, beta_from_similarity, cosine, visual_caption

PAIR_SCHEMA = pa.schema(
    [
        *SAMPLE_CORE_FIELDS,
        ("chosen", pa.string()),
        ("rejected", pa.string()),
        ("video_corrupted_path", pa.string()),
        ("video_corrupted_kind", pa.string()),
        ("audio_corrupted_path", pa.string()),
        ("audio_corrupted_kind", pa.string()),
        ("eta", pa.float64()),
        ("gamma", pa.float64()),
        ("sim_text", pa.float64()),
        ("avsm_video", pa.float64()),
        ("avsm_audio", pa.float64()),
        ("beta_text", pa.float64()),
        ("beta_video", pa.float64()),
        ("beta_audio", pa.float64()),
        ("caption", pa.string()),
        ("video_corrupted_caption", pa.string()),
    ]
)


def captions_of(ids: Sequence[str], labels: dict[str, list[str]]) -> str | None:
    cfg = data_files.load("scoring")["avsm"]
    return visual_caption(
        [labels.get(c, []) for c in ids],
        template=cfg["visual_caption"],
        label_joiner=cfg["label_joiner"],
        then_joiner=cfg["then_joiner"],
        unlabelled=cfg["unlabelled"],
    )


class EmbeddingCache:
    """Each distinct text / soundtrack embedded once per shard, in batches."""

    def __init__(self, clap, batch_size: int):
        self.clap = clap
        self.batch_size = batch_size
        self.text: dict[str, np.ndarray] = {}
        self.audio: dict[str, np.ndarray | None] = {}

    def add_texts(self, texts) -> None:
        todo = list(dict.fromkeys(t for t in texts if t is not None and t not in self.text))
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start : start + self.batch_size]
            for t, e in zip(chunk, self.clap.embed_text(chunk, self.batch_size), strict=True):
                self.text[t] = e

    def add_audio(self, paths) -> None:
        todo = list(dict.fromkeys(p for p in paths if p not in self.audio))
        for start in tqdm(
            range(0, len(todo), self.batch_size), desc="CLAP audio", unit="batch", leave=False
        ):
            chunk = todo[start : start + self.batch_size]
            for p, e in zip(
                chunk, self.clap.embed_audio_files(chunk, self.batch_size), strict=True
            ):
                self.audio[p] = e

    def t(self, text: str | None) -> np.ndarray | None:
        return None if text is None else self.text[text]


def score_pairs(
    samples: list[dict],
    counterfactual: dict[str, dict],
    labels: dict[str, dict[str, list[str]]],
    clap,
    *,
    eta: dict[str, float],
    gamma: dict[str, float],
    batch_size: int = 16,
    log=None,
) -> pa.Table:
    """Pairs for ``samples`` (benchmark rows) with their V'/A' records (by id).

    ``labels`` maps a dataset to its clips' labels (for AVSM's captions).
    """
    usable = []
    for s in samples:
        cf = counterfactual.get(s["id"])
        wrong = [o for o in s["options"] or [] if o != s["answer"]]
        if cf is None or not cf["ok"]:
            if log:
                log.warning("%s: no V'/A' (%s); skipped", s["id"], cf and cf["error"])
            continue
        if not wrong:
            if log:
                log.warning("%s: no wrong option to prefer against; skipped", s["id"])
            continue
        usable.append((s, cf, wrong))

    cache = EmbeddingCache(clap, batch_size)
    captions = {}
    for s, cf, _ in usable:
        lab = labels[s["source_dataset"]]
        captions[s["id"]] = tuple(
            captions_of(cf[k], lab)
            for k in (
                "clean_video_ids",
                "video_corrupted_video_ids",
                "audio_corrupted_video_ids",
            )
        )
    cache.add_texts(
        [x for s, _, wrong in usable for x in (s["question"], s["answer"], *wrong)]
        + [c for caps in captions.values() for c in caps]
    )
    # A corrupted clip whose soundtrack comes from the same source clips as the clean one
    # carries the clean clip's audio stream (copied, not re-encoded): same embedding.
    same_audio = {
        s["id"]: {
            k: cf[f"{k}_audio_ids"] == cf["clean_audio_ids"]
            for k in ("video_corrupted", "audio_corrupted")
        }
        for s, cf, _ in usable
    }
    cache.add_audio(
        [s["media_path"] for s, _, _ in usable]
        + [
            cf[f"{k}_path"]
            for s, cf, _ in usable
            for k in ("video_corrupted", "audio_corrupted")
            if not same_audio[s["id"]][k]
        ]
    )

    rows = []
    for s, cf, wrong in usable:
        q = cache.t(s["question"])
        closeness = cosine(np.repeat(q[None], len(wrong), 0), np.stack([cache.t(w) for w in wrong]))
        rejected = wrong[int(np.argmax(closeness))]
        sim_text = float(cosine(cache.t(s["answer"]), cache.t(rejected))[0])
        cap, cap_v, cap_a = captions[s["id"]]
        audio = cache.audio[s["media_path"]]
        audio_v, audio_a = (
            audio if same_audio[s["id"]][k] else cache.audio[cf[f"{k}_path"]]
            for k in ("video_corrupted", "audio_corrupted")
        )
        s_video = avsm(audio, audio_v, cache.t(cap), cache.t(cap_v))
        s_audio = avsm(audio, audio_a, cache.t(cap), cache.t(cap_a))
        rows.append(
            {
                **{name: s[name] for name in CORE_NAMES},
                "chosen": s["answer"],
                "rejected": rejected,
                "video_corrupted_path": cf["video_corrupted_path"],
                "video_corrupted_kind": cf["video_corrupted_kind"],
                "audio_corrupted_path": cf["audio_corrupted_path"],
                "audio_corrupted_kind": cf["audio_corrupted_kind"],
                "eta": float(eta.get(s["task"], 0.0)),
                "gamma": float(gamma.get(s["task"], 0.0)),
                "sim_text": sim_text,
                "avsm_video": s_video,
                "avsm_audio": s_audio,
                "beta_text": beta_from_similarity(sim_text),
                "beta_video": beta_from_similarity(s_video),
                "beta_audio": beta_from_similarity(s_audio),
                "caption": cap,
                "video_corrupted_caption": cap_v,
            }
        )
    return pa.Table.from_pylist(rows, schema=PAIR_SCHEMA)
