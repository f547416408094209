"""CAVPref step time vs plain DPO and vs a naive CAVPref, on the same tiny model and batch.

One optimiser step (collation, forward, loss, backward, AdamW step) of a LoRA-adapted
tiny Omni thinker with TRL's fused LM head (as the trainer runs it), on the same batch
of preference pairs (A+V clips, V' and A'), one per task of ``scoring.cavpref.tasks``
in turn with that task's η and γ from the config:

- **cavpref**: the workflow — :class:`avtrust.train.trainers.PreferenceCollator`'s
  sequences of every sample (y_w|V,A; y_l|V,A; y_w|V',A only where η ≠ 0; y_w|V,A'
  only where γ ≠ 0) in one merged forward, reference log-probs precomputed once;
- **cavpref_all**: the same, running all four sequences of every sample (before
  samples whose term has weight 0 skipped theirs);
- **dpo**: plain DPO as TRL runs it by default — two policy sequences per sample plus a
  reference forward (adapter disabled) every step;
- **dpo_precomputed**: plain DPO with precomputed reference log-probs (lower bound);
- **naive**: CAVPref with each of the four sequences and each of their four reference
  passes as separate forwards every step.

Targets: cavpref / dpo_precomputed ≤ 1.6; naive / cavpref ≥ 1.5. The clips are
synthesised into a temporary folder and the tiny model built there (untimed); decoded
media are cached, as in training, so the steps time the model work.

    .venv/bin/python bench/cavpref_step.py
    .venv/bin/python bench/cavpref_step.py --pairs 9 --steps 5
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
import yaml

from avtrust.media.ffmpeg import encode_clip
from avtrust.media.synthesis import catalog, render_frames, synthesize_audio
from avtrust.models.decode_cache import DecodeCache, attach, build
from avtrust.models.media_cache import clear_cache
from avtrust.models.registry import load, prepare, spec_from_config
from avtrust.train.config import LoraSettings
from avtrust.train.data import (
    SequenceEncoder,
    add_fused_head,
    cache_decoding,
    question_prompt,
    sequence_logps,
)
from avtrust.train.lora import apply_lora
from avtrust.train.losses import LossSettings, cavpref_loss
from avtrust.train.trainers import ROLES, PreferenceCollator

TARGET_DPO = 1.6
CONFIG = Path(__file__).resolve().parents[1] / "config" / "config.yaml"
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


def task_weights(config: Path) -> list[tuple[str, float, float]]:
    """(task, η, γ) of every task of ``scoring.cavpref`` in ``config``."""
    cfg = yaml.safe_load(config.read_text())["scoring"]["cavpref"]
    return [
        (t, float(cfg["eta"].get(t, 0.0)), float(cfg["gamma"].get(t, 0.0))) for t in cfg["tasks"]
    ]


def pair_rows(clips: list[str], n: int, tasks: list[tuple[str, float, float]]) -> list[dict]:
    k = len(clips)
    rows = []
    for i in range(n):
        task, eta, gamma = tasks[i % len(tasks)]
        rows.append(
            {
                "task": task,
                "media_path": clips[i % k],
                "video_corrupted_path": clips[(i + 1) % k],
                "audio_corrupted_path": clips[(i + 2) % k],
                "prompt": question_prompt(f"What is playing in clip {i}?", ["a violin", "a cello"]),
                "chosen": "Mismatch in audio and video",
                "rejected": "a violin",
                "beta_text": 0.3,
                "beta_video": 0.6,
                "beta_audio": 0.8,
                "eta": eta,
                "gamma": gamma,
            }
        )
    return rows


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
    def __init__(self, model_dir: Path | None, rows: list[dict], policy=None):
        self.policy = policy if policy is not None else load(model_dir)  # gpu_check: built
        base = self.policy.model
        self.encoder = SequenceEncoder(cache_decoding(self.policy.builder), base.get_rope_index)
        self.model = add_fused_head(
            apply_lora(base, LoraSettings(r=8, alpha=16, targets=("q_proj", "v_proj")))
        )
        self.model.train()
        self.device = next(base.parameters()).device  # gpu_check builds it on the GPU
        self.opt = torch.optim.AdamW([p for p in self.model.parameters() if p.requires_grad], 1e-4)
        self.rows = rows
        self.collators = {
            "cavpref": PreferenceCollator(self.encoder, av_terms=True),
            "cavpref_all": PreferenceCollator(self.encoder, av_terms=True, skip_unweighted=False),
            "dpo": PreferenceCollator(self.encoder, av_terms=False),
        }
        self.beta = {
            k: self.tensor([r[f"beta_{k}"] for r in rows]) for k in ("text", "video", "audio")
        }
        self.eta = self.tensor([r["eta"] for r in rows])
        self.gamma = self.tensor([r["gamma"] for r in rows])

    def tensor(self, values) -> torch.Tensor:
        return torch.tensor(values, device=self.device)

    def on_device(self, inputs: dict) -> dict:
        """The collated model inputs on the policy's device (the trainer's accelerate
        does this in the workflow; the bench drives the model itself)."""
        return {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in inputs.items()}

    def logps(self, collator: str, *, separate: bool = False, reference: bool = False):
        """(n, K) summed log-probs: one merged forward of the collator's sequences, or
        (``separate``) one forward per role of all four."""
        ctx = self.model.disable_adapter() if reference else torch.enable_grad()
        with ctx, torch.no_grad() if reference else torch.enable_grad():
            if not separate:
                batch = self.collators[collator](self.rows)
                return sequence_logps(self.model, self.on_device(batch["model"]))[batch["index"]]
            cols = []
            for role in ROLES:
                enc = self.encoder(*sequences(self.rows, [role]))
                cols.append(sequence_logps(self.model, self.on_device(enc.batch))[enc.rows])
            return torch.stack(cols, 1)

    def step(self, mode: str, ref_cache: dict) -> None:
        av = mode in ("cavpref", "cavpref_all", "naive")
        roles = ROLES if av else ROLES[:2]
        collator = "dpo" if not av else ("cavpref" if mode == "cavpref" else "cavpref_all")
        if mode in ("cavpref", "cavpref_all", "dpo_precomputed"):
            ref = ref_cache[collator]
        else:
            ref = self.logps(collator, separate=mode == "naive", reference=True)
        policy = self.logps(collator, separate=mode == "naive")
        settings = LossSettings(av_terms=av, robust=av)
        beta = self.beta if av else dict.fromkeys(("text", "video", "audio"), 0.1)
        loss, _ = cavpref_loss(
            {r: policy[:, k] for k, r in enumerate(roles)},
            {r: ref[:, k] for k, r in enumerate(roles)},
            beta,
            self.eta if av else torch.zeros(len(self.rows), device=self.device),
            self.gamma if av else torch.zeros(len(self.rows), device=self.device),
            settings,
        )
        loss.backward()
        self.opt.step()
        self.opt.zero_grad()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=9, help="samples per batch")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per variant")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--config", type=Path, default=CONFIG, help="η, γ per task from scoring.cavpref"
    )
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
        rows = pair_rows(clips, args.pairs, task_weights(args.config))
        runner = Runner(model_dir, rows)
        # The precompute pass (once per training run, untimed like the data preparation).
        ref_cache = {c: runner.logps(c, reference=True) for c in runner.collators}
        modes = ("cavpref", "cavpref_all", "dpo", "dpo_precomputed", "naive")
        for mode in modes:  # warm-up: decode and feature caches, allocator
            runner.step(mode, ref_cache)
        times = {m: [] for m in modes}
        for _ in range(args.steps):  # interleaved, so machine load hits all alike
            for mode in modes:
                start = time.perf_counter()
                runner.step(mode, ref_cache)
                times[mode].append(time.perf_counter() - start)
        cold = cold_steps(runner, ref_cache, clips, root, args.steps)
    med = {m: statistics.median(t) for m, t in times.items()}
    runs = sum(len(runner.collators["cavpref"].sequences(r)) for r in rows)
    print(
        f"batch: {args.pairs} pairs ({runs} sequences run by cavpref, {4 * len(rows)} by "
        f"cavpref_all, {2 * len(rows)} by dpo), median of {args.steps} steps (s/step)"
    )
    for m in modes:
        print(f"  {m:16s} {med[m]:.3f}")
    r_pre = med["cavpref"] / med["dpo_precomputed"]
    r_all = med["cavpref_all"] / med["dpo_precomputed"]
    print(f"cavpref / dpo with precomputed reference: {r_pre:.2f}x  (target <= {TARGET_DPO})")
    print(f"cavpref running all four sequences / dpo with precomputed reference: {r_all:.2f}x")
    print(f"cavpref / dpo (TRL default, reference each step): {med['cavpref'] / med['dpo']:.2f}x")
    r_naive = med["naive"] / med["cavpref"]
    print(f"naive cavpref / cavpref: {r_naive:.2f}x  (target >= {TARGET_NAIVE})")
    decoding, cached = (statistics.median(cold[k]) for k in ("decoding", "decode cache"))
    print(
        "cavpref step with clips new to the step (an epoch larger than the in-process memo): "
        f"decoding {decoding:.3f} s, decode cache {cached:.3f} s ({decoding / cached:.2f}x)"
    )
    return 0


def cold_steps(runner, ref_cache, clips, root: Path, steps: int) -> dict[str, list[float]]:
    """CAVPref step times with the in-process memo emptied before each step, as in an
    epoch with more clips than the memo holds: clips decoded by ffmpeg, then read from
    the decode-once cache (built untimed, as the decode stage does before training)."""
    builder = runner.policy.builder
    out = {"decoding": [], "decode cache": []}
    for _ in range(steps):
        clear_cache(builder)
        start = time.perf_counter()
        runner.step("cavpref", ref_cache)
        out["decoding"].append(time.perf_counter() - start)
    build(clips, [builder.vision], root / "decoded")
    attach(builder, DecodeCache(root / "decoded"))
    for _ in range(steps):
        clear_cache(builder)  # the features memo; clips now come from the decode cache
        start = time.perf_counter()
        runner.step("cavpref", ref_cache)
        out["decode cache"].append(time.perf_counter() - start)
    return out


if __name__ == "__main__":
    sys.exit(main())
