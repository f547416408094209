"""CAVPref step time vs plain DPO and vs a naive CAVPref, on the same tiny model and batch.

One optimiser step (collation, forward, loss, backward, AdamW step) of a LoRA-adapted
tiny Omni thinker, on the same batch of preference pairs (A+V clips, V' and A'):

- **cavpref**: the workflow — the four sequences of every sample (y_w|V,A; y_l|V,A;
  y_w|V',A; y_w|V,A') in one merged forward, reference log-probs precomputed once;
- **dpo**: plain DPO as TRL runs it by default — two policy sequences per sample plus a
  reference forward (adapter disabled) every step;
- **dpo_precomputed**: plain DPO with precomputed reference log-probs (lower bound);
- **naive**: CAVPref with each of the four sequences and each of their four reference
  passes as separate forwards every step.

Targets: cavpref / dpo ≤ 1.6; naive / cavpref ≥ 1.5. The clips are synthesised into a
temporary folder and the tiny model built there (untimed); decoded media are cached, as
in training, so the steps time the model work.

    .venv/bin/python bench/cavpref_step.py
    .venv/bin/python bench/cavpref_step.py --pairs 8 --steps 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from avtrust.media.ffmpeg import encode_clip
from avtrust.media.synthesis import catalog, render_frames, synthesize_audio
from avtrust.models.registry import load, prepare, spec_from_config
from avtrust.train.config import LoraSettings
from avtrust.train.data import SequenceEncoder, cache_decoding, question_prompt, sequence_logps
from avtrust.train.lora import apply_lora
from avtrust.train.losses import LossSettings, cavpref_loss
from avtrust.train.trainers import ROLES

TARGET_DPO = 1.6
TARGET_NAIVE = 1.5
CODECS = {
    "video_codec": {"vcodec": "libx264", "preset": "veryfast", "crf": 23, "threads": 1},
    "audio_codec": {"acodec": "aac", "b:a": "64k"},
}


def make_clips(root: Path, n: int) -> list[str]:
    cat, names = catalog(), ["violin", "cello", "flute", "piano", "trumpet", "guitar"]
    paths = []
    for i in range(n):
        rng = np.random.default_rng(i)
        src = [cat[names[i % len(names)]]]
        path = root / f"clip{i}.mp4"
        encode_clip(
            path,
            render_frames(src, 1.5, 8, 64, 48, rng),
            synthesize_audio(src[0], 1.5, 16000, rng),
            fps=8,
            sample_rate=16000,
            **CODECS,
        )
        paths.append(str(path))
    return paths


def pair_rows(clips: list[str], n: int) -> list[dict]:
    k = len(clips)
    return [
        {
            "media_path": clips[i % k],
            "video_corrupted_path": clips[(i + 1) % k],
            "audio_corrupted_path": clips[(i + 2) % k],
            "prompt": question_prompt(f"What is playing in clip {i}?", ["a violin", "a cello"]),
            "chosen": "Mismatch in audio and video",
            "rejected": "a violin",
            "beta": [0.3, 0.6, 0.8],
            "eta": 1.0,
            "gamma": 1.0,
        }
        for i in range(n)
    ]


def sequences(rows, roles):
    paths, prompts, responses = [], [], []
    for r in rows:
        seq = {
            "chosen": (r["media_path"], r["chosen"]),
            "rejected": (r["media_path"], r["rejected"]),
            "video": (r["video_corrupted_path"], r["chosen"]),
            "audio": (r["audio_corrupted_path"], r["chosen"]),
        }
        for role in roles:
            paths.append(seq[role][0])
            prompts.append(r["prompt"])
            responses.append(seq[role][1])
    return paths, prompts, responses


class Runner:
    def __init__(self, model_dir: Path, rows: list[dict]):
        self.policy = load(model_dir)
        base = self.policy.model
        self.encoder = SequenceEncoder(cache_decoding(self.policy.builder), base.get_rope_index)
        self.model = apply_lora(base, LoraSettings(r=8, alpha=16, targets=("q_proj", "v_proj")))
        self.model.train()
        self.opt = torch.optim.AdamW([p for p in self.model.parameters() if p.requires_grad], 1e-4)
        self.rows = rows
        n = len(rows)
        self.beta = {
            k: torch.tensor([r["beta"][j] for r in rows])
            for j, k in enumerate(("text", "video", "audio"))
        }
        self.eta = torch.ones(n)
        self.gamma = torch.ones(n)

    def logps(self, roles, *, separate: bool = False, reference: bool = False):
        """(n, len(roles)) summed log-probs, one merged forward or one per role."""
        ctx = self.model.disable_adapter() if reference else torch.enable_grad()
        with ctx, torch.no_grad() if reference else torch.enable_grad():
            if not separate:
                enc = self.encoder(*sequences(self.rows, roles))
                return sequence_logps(self.model, enc.batch)[enc.rows].view(
                    len(self.rows), len(roles)
                )
            cols = []
            for role in roles:
                enc = self.encoder(*sequences(self.rows, [role]))
                cols.append(sequence_logps(self.model, enc.batch)[enc.rows])
            return torch.stack(cols, 1)

    def step(self, mode: str, ref_cache: dict) -> None:
        av = mode in ("cavpref", "naive")
        roles = ROLES if av else ROLES[:2]
        if mode in ("cavpref", "dpo_precomputed"):
            ref = ref_cache[len(roles)]
        else:
            ref = self.logps(roles, separate=mode == "naive", reference=True)
        policy = self.logps(roles, separate=mode == "naive")
        settings = LossSettings(av_terms=av, robust=av)
        beta = self.beta if av else dict.fromkeys(("text", "video", "audio"), 0.1)
        loss, _ = cavpref_loss(
            {r: policy[:, k] for k, r in enumerate(roles)},
            {r: ref[:, k] for k, r in enumerate(roles)},
            beta,
            self.eta if av else torch.zeros(len(self.rows)),
            self.gamma if av else torch.zeros(len(self.rows)),
            settings,
        )
        loss.backward()
        self.opt.step()
        self.opt.zero_grad()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=4, help="samples per batch")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per variant")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        spec = spec_from_config(
            "omni",
            {
                "omni": {
                    "adapter": "qwen2_5_omni_thinker",
                    "source": "tiny",
                    "location": "Qwen/Qwen2.5-Omni-3B",
                }
            },
        )
        model_dir = prepare(spec, root / "omni", seed=0)
        clips = make_clips(root, 6)
        runner = Runner(model_dir, pair_rows(clips, args.pairs))
        # The precompute pass (once per training run, untimed like the data preparation).
        ref_cache = {k: runner.logps(ROLES[:k], reference=True) for k in (2, 4)}
        modes = ("cavpref", "dpo", "dpo_precomputed", "naive")
        for mode in modes:  # warm-up: decode and feature caches, allocator
            runner.step(mode, ref_cache)
        times = {m: [] for m in modes}
        for _ in range(args.steps):  # interleaved, so machine load hits all alike
            for mode in modes:
                start = time.perf_counter()
                runner.step(mode, ref_cache)
                times[mode].append(time.perf_counter() - start)
    med = {m: statistics.median(t) for m, t in times.items()}
    print(f"batch: {args.pairs} pairs, median of {args.steps} steps (s/step)")
    for m in modes:
        print(f"  {m:16s} {med[m]:.3f}")
    r_dpo = med["cavpref"] / med["dpo"]
    r_pre = med["cavpref"] / med["dpo_precomputed"]
    r_naive = med["naive"] / med["cavpref"]
    print(
        f"cavpref / dpo (TRL default, reference each step): {r_dpo:.2f}x  (target <= {TARGET_DPO})"
    )
    print(f"cavpref / dpo with precomputed reference: {r_pre:.2f}x")
    print(f"naive cavpref / cavpref: {r_naive:.2f}x  (target >= {TARGET_NAIVE})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
