"""How far does the tiny CLAP's pre-training get? Held-out and training retrieval.

Trains a copy of a default run's untrained tiny CLAP (``resources/pretrain/untrained/
clap``) on that run's pre-training corpus (``resources/pretrain/corpus``) with the
pretrain stage's own code (:func:`avtrust.pretrain.clap.train`) and the optimiser
settings given here, then prints audio→caption top-1 on the held-out clips and on the
training clips (a tower that cannot tell its own training clips apart is short of
capacity or steps, not of data), and what the held-out misses retrieved instead: a
caption naming a subset of the clip's sounds (one missed), a superset (one added), an
overlapping or a disjoint set.

    .venv/bin/python bench/clap_probe.py --workdir /tmp/defrun --steps 960 --learning-rate 2e-3

The clips' features are computed once and kept in ``--workdir``/clap_probe_features.pt
(delete it after changing the corpus).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))


def miss_kinds(best: list[str], items: list[dict]) -> dict[str, int]:
    """For each clip whose retrieved caption is not its own: how the retrieved caption's
    sound set relates to the clip's (subset, superset, overlap, disjoint)."""
    from avtrust.pretrain.clap import canonical_caption

    set_of = {canonical_caption(it["sounds"]): frozenset(it["sounds"]) for it in items}
    kinds = {"subset": 0, "superset": 0, "overlap": 0, "disjoint": 0}
    for caption, it in zip(best, items, strict=True):
        truth, got = frozenset(it["sounds"]), set_of[caption]
        if got == truth:
            continue
        if got < truth:
            kinds["subset"] += 1
        elif got > truth:
            kinds["superset"] += 1
        else:
            kinds["overlap" if got & truth else "disjoint"] += 1
    return kinds


def features(clap, parts: dict, cache: Path):
    import torch

    from avtrust.pretrain import clap as pretrain_clap

    if cache.is_file():
        return torch.load(cache)
    feats = {part: pretrain_clap.audio_features(clap, items) for part, items in parts.items()}
    torch.save(feats, cache)
    return feats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True, help="a default run's folder")
    parser.add_argument("--steps", type=int, default=480)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=5e-3)
    parser.add_argument("--warmup-steps", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--audio-config",
        type=json.loads,
        default={},
        help="a throw-away audio tower: ClapAudioConfig fields over the build's, e.g. "
        "'{\"depths\": [1, 2]}' (the model is built afresh from --seed)",
    )
    args = parser.parse_args()

    import torch

    from avtrust.models.registry import load
    from avtrust.pretrain import clap as pretrain_clap

    torch.set_num_threads(args.threads)
    untrained = args.workdir / "resources/pretrain/untrained/clap"
    corpus_dir = args.workdir / "resources/pretrain/corpus"
    for path in (untrained, corpus_dir):
        if not path.is_dir():
            sys.exit(f"clap_probe: {path} is missing (run the default's pretrain stage first)")
    clap = load(untrained, device="cpu")
    if args.audio_config:
        from transformers import ClapConfig, ClapModel

        config = ClapConfig.from_pretrained(untrained)
        config.audio_config.update(args.audio_config)
        torch.manual_seed(args.seed)
        clap.model = ClapModel(config).eval()
        count = sum(p.numel() for p in clap.model.parameters())
        print(f"audio tower {args.audio_config}: {count} parameters")
    parts = pretrain_clap.clips(corpus_dir)
    feats = features(clap, parts, args.workdir / "clap_probe_features.pt")
    settings = pretrain_clap.ClapSettings(
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        warmup_steps=args.warmup_steps,
    )
    start = time.perf_counter()
    losses = pretrain_clap.train(clap, parts["train"], feats["train"], settings, args.seed)
    seconds = time.perf_counter() - start
    report = {"settings": vars(settings), "seed": args.seed, "train_seconds": round(seconds)}
    report["loss_last"] = round(float(np.mean(losses[-20:])), 3)
    for part in ("held_out", "train"):
        items = parts[part]
        best = pretrain_clap.retrieved_captions(clap, items, feats[part])  # ranked once
        report[part] = {
            **pretrain_clap.retrieval_figures(items, best),
            "misses": miss_kinds(best, items),
        }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
