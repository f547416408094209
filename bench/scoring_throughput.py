"""Scoring throughput: batched, load-once similarity vs. one item per call with a reload.

RL-CoMM's step-wise reasoning reward needs, for every sampled completion, the
Qwen3-Embedding cosine similarity of its ``<a-think>`` with the reference audio
reasoning. Both sides score the same pairs of texts in the same run:

- **workflow**: ``avtrust.models.registry.load`` once, then
  ``TextEmbedder.similarity(a, b)``: every distinct text embedded once, in batches
  (``--batch-size``), as the score stage and the reward function do;
- **baseline**: what the authors' released reward code does: per completion, build the
  embedding model from its folder (``SentenceTransformer(path)``), embed the two texts,
  take the cosine, drop the model.

``--scorer clap`` runs the same comparison for CLAP text-text similarity (the text β of
CAVPref). The model is the tiny build of the embedded default, built into a temporary
folder (untimed), unless ``--model`` names a prepared model folder
(``resources/models/<name>``), e.g. the real Qwen3-Embedding-0.6B: then loading is
seconds and the gap is far wider.

    .venv/bin/python bench/scoring_throughput.py
    .venv/bin/python bench/scoring_throughput.py --pairs 512 --batch-size 128
    .venv/bin/python bench/scoring_throughput.py --scorer clap
    .venv/bin/python bench/scoring_throughput.py --model resources/models/embedder
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from avtrust.models.registry import ModelSpec, load, prepare
from avtrust.scoring.similarity import cosine

TARGET_RATIO = 20.0
ADAPTER = {"embedding": "qwen3_embedding", "clap": "clap"}
INSTRUMENTS = [
    "violin", "cello", "piano", "guitar", "flute", "trumpet", "clarinet", "xylophone",
    "accordion", "saxophone", "erhu", "tuba", "bagpipe", "drum",
]  # fmt: skip
SOUNDS = ["wind blowing", "birds chirping", "rain falling", "a power drill", "thunder"]


def reasoning_pairs(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """``n`` (policy a-think, reference a-think) pairs, deterministic, varied wording."""
    rng = np.random.default_rng(seed)
    a, b = [], []
    for _ in range(n):
        x, y = rng.choice(INSTRUMENTS, 2, replace=False)
        s = SOUNDS[int(rng.integers(len(SOUNDS)))]
        k = int(rng.integers(1, 4))
        a.append(f"I hear {k} instruments: the {x} starts first, then the {y}, over {s}.")
        b.append(
            f"The audio has the sound of the {x} and the {y}; {s} can be heard too, "
            f"and about {k} sources sound in total."
        )
    return a, b


def similarity_fn(model, scorer: str):
    if scorer == "embedding":
        return lambda a, b, bs: model.similarity(a, b, bs)

    def clap(a, b, bs):
        unique = list(dict.fromkeys([*a, *b]))
        row = {t: i for i, t in enumerate(unique)}
        emb = model.embed_text(unique, bs)
        return cosine(emb[[row[t] for t in a]], emb[[row[t] for t in b]])

    return clap


def batched(folder: Path, a: list[str], b: list[str], scorer: str, batch_size: int):
    t0 = time.perf_counter()
    model = load(folder)
    sims = similarity_fn(model, scorer)(a, b, batch_size)
    return sims, time.perf_counter() - t0


def per_call(folder: Path, a: list[str], b: list[str], scorer: str):
    sims = []
    t0 = time.perf_counter()
    for x, y in zip(a, b, strict=True):
        model = load(folder)  # the authors' reward code: a fresh model per call
        sims.append(float(similarity_fn(model, scorer)([x], [y], 2)[0]))
        del model
    return np.array(sims), time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=256, help="text pairs to score")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--scorer", choices=sorted(ADAPTER), default="embedding")
    parser.add_argument("--model", type=Path, help="a prepared model folder (default: tiny)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    tmp = None
    folder = args.model
    if folder is None:
        tmp = Path(tempfile.mkdtemp(prefix="scoring_bench."))
        folder = tmp / "model"
        t0 = time.perf_counter()
        spec = ModelSpec(name="bench", adapter=ADAPTER[args.scorer], source="tiny", location="tiny")
        prepare(spec, folder, seed=0)
        print(f"tiny {spec.adapter} built (untimed): {time.perf_counter() - t0:.1f} s")
    try:
        a, b = reasoning_pairs(args.pairs)
        load(folder)  # warm the imports and file cache for both sides alike (untimed)
        ours, t_ours = batched(folder, a, b, args.scorer, args.batch_size)
        base, t_base = per_call(folder, a, b, args.scorer)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    same = np.allclose(ours, base, atol=1e-4)
    n = args.pairs
    print(f"scorer: {args.scorer} ({folder if args.model else 'tiny build'}), {n} text pairs")
    print(
        f"workflow (load once, batches of {args.batch_size}): {t_ours:.2f} s = "
        f"{n / t_ours:.1f} pairs/s"
    )
    print(
        f"baseline (reload per pair, one pair per call): {t_base:.2f} s = {n / t_base:.1f} pairs/s"
    )
    ratio = t_base / t_ours
    verdict = "met" if ratio >= TARGET_RATIO else "MISSED"
    print(
        f"ratio: {ratio:.1f} x the baseline's pairs/s (target >= {TARGET_RATIO:.0f} x: {verdict})"
    )
    print(f"same similarities on both sides (|diff| <= 1e-4): {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
