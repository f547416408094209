"""Time per GRPO step of RL-CoMM's Step-RR on the tiny model, split into generation,
reward scoring and update (the rest of the step: log-prob pass, backward, optimiser).

Then the reward scoring alone, two ways on the same completions:

- **workflow**: :class:`avtrust.train.rewards.StepRewards` with the embedding model
  loaded once per job, every distinct a-think / v-think of the step embedded in one
  batched call shared by r_arr and r_avc;
- **baseline**: the embedding model loaded again on every reward call (what the
  authors' released reward code does), r_arr and r_avc each embedding their texts.

Models (tiny builds) and two clips are made in a temporary folder first (untimed).

    .venv/bin/python bench/grpo_step.py
    .venv/bin/python bench/grpo_step.py --steps 6 --group 6 --length 32
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_inputs(root: Path) -> tuple[Path, Path, list[str]]:
    from avtrust.media.ffmpeg import encode_clip
    from avtrust.media.synthesis import catalog, render_frames, synthesize_audio
    from avtrust.models import registry

    models = {
        "omni": {"adapter": "qwen2_5_omni_thinker", "source": "tiny", "location": "x"},
        "embedder": {"adapter": "qwen3_embedding", "source": "tiny", "location": "x"},
    }
    for name in models:
        registry.prepare(registry.spec_from_config(name, models), root / name, seed=1)
    cat, rng, clips = catalog(), np.random.default_rng(0), []
    for i, name in enumerate(("violin", "cello")):
        frames = render_frames([cat[name]], 1.5, 8, 64, 48, rng)
        audio = synthesize_audio(cat[name], 1.5, 16000, rng)
        path = root / f"{i}.mp4"
        encode_clip(
            path,
            frames,
            audio,
            fps=8,
            sample_rate=16000,
            video_codec={"vcodec": "libx264", "preset": "veryfast", "threads": 1},
            audio_codec={"acodec": "aac"},
        )
        clips.append(str(path))
    return root / "omni", root / "embedder", clips


class Timer:
    def __init__(self):
        self.total: dict[str, float] = {}

    def wrap(self, obj, name: str, label: str) -> None:
        original = getattr(obj, name)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.total[label] = self.total.get(label, 0.0) + time.perf_counter() - start

        setattr(obj, name, timed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--group", type=int, default=6)
    parser.add_argument("--length", type=int, default=24, help="max completion tokens")
    parser.add_argument("--calls", type=int, default=5, help="reward calls timed")
    args = parser.parse_args()

    import torch
    from datasets import Dataset
    from trl import GRPOConfig

    from avtrust.models import registry
    from avtrust.models.decode_cache import DecodeCache, attach, build
    from avtrust.train.grpo import AVGRPOTrainer
    from avtrust.train.rewards import StepRewards

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        omni_dir, emb_dir, clips = make_inputs(Path(tmp))
        policy = registry.load(omni_dir)
        embedder = registry.load(emb_dir)
        rows = [
            {
                "prompt": f"Is there a {n} sound?",
                "media_path": c,
                "answer": "yes",
                "options": ["yes", "no"],
                "reference_embedding": [1.0] * 32,
            }
            for n, c in zip(("violin", "cello"), clips, strict=True)
        ]
        scorer = StepRewards(embedder, omega=0.8)
        config = GRPOConfig(
            output_dir=str(Path(tmp) / "state"),
            per_device_train_batch_size=args.group,
            num_generations=args.group,
            max_completion_length=args.length,
            max_steps=args.steps + 1,
            logging_steps=1,
            report_to="none",
            use_cpu=True,
            bf16=False,
            save_strategy="no",
            disable_tqdm=True,
            seed=0,
        )
        trainer = AVGRPOTrainer(
            policy.model,
            scorer.functions(["format", "arr", "avc"]),
            config,
            train_dataset=Dataset.from_list(rows),
            builder=policy.builder,
        )
        timer = Timer()
        timer.wrap(trainer, "training_step", "step")
        timer.wrap(trainer, "_generate_single_turn", "generation")
        timer.wrap(trainer, "_calculate_rewards", "rewards")
        # the first step decodes the clips and warms up; time the next ones
        trainer.args.max_steps = 1
        trainer.train()
        timer.total.clear()
        trainer.args.max_steps = args.steps + 1
        trainer.train(resume_from_checkpoint=None)
        steps = args.steps + 1
        step = timer.total["step"] / steps
        gen = timer.total["generation"] / steps
        rew = timer.total["rewards"] / steps
        update = step - gen - rew
        print(f"GRPO step ({args.group} completions, ≤{args.length} tokens, tiny model, CPU):")
        print(f"  total       {step * 1e3:8.1f} ms")
        for name, value in (("generation", gen), ("rewards", rew), ("update", update)):
            print(f"  {name:<11} {value * 1e3:8.1f} ms  {100 * value / step:5.1f} %")

        # steps whose clips are new to them (an epoch larger than the media memo):
        # decoded by ffmpeg, then read from the decode-once cache (built untimed)
        cold = {}
        for label in ("decoding", "decode cache"):
            if label == "decode cache":
                build(clips, [policy.builder.vision], Path(tmp) / "decoded")
                attach(policy.builder, DecodeCache(Path(tmp) / "decoded"))
            timed_step = trainer.training_step

            def cold_step(*a, _step=timed_step, **k):
                trainer.media._entries.clear()  # every clip new to this step
                return _step(*a, **k)

            trainer.training_step = cold_step
            timer.total.clear()
            trainer.args.max_steps = args.steps  # a fresh run of args.steps steps
            trainer.train(resume_from_checkpoint=None)
            cold[label] = timer.total["step"] / args.steps
            trainer.training_step = timed_step
        print("GRPO step with clips new to the step:")
        for label, value in cold.items():
            print(f"  {label:<12} {value * 1e3:8.1f} ms")
        print(f"  ratio decoding / decode cache {cold['decoding'] / cold['decode cache']:8.2f} x")
        # reward scoring alone on fixed completions
        texts = [
            f"<a-think>I hear a string instrument {i}.</a-think> <v-think>A violin is "
            f"shown {i % 3}.</v-think> <answer>{'yes' if i % 2 else 'no'}</answer>"
            for i in range(args.group * 2)
        ]
        cols = {"answer": ["yes"] * len(texts), "reference_embedding": [[1.0] * 32] * len(texts)}
        funcs = scorer.functions(["format", "arr", "avc"])
        start = time.perf_counter()
        for i in range(args.calls):
            batch = [t + " " * i for t in texts]  # new texts every call: no cache hit
            for f in funcs:
                f(prompts=[""] * len(batch), completions=batch, **cols)
        once = (time.perf_counter() - start) / args.calls
        start = time.perf_counter()
        for i in range(args.calls):
            batch = [t + " " * i for t in texts]
            for f in funcs:  # each reward function reloads the model and embeds alone
                fresh = StepRewards(registry.load(emb_dir), omega=0.8)
                fresh.functions(["format", "arr", "avc"])[funcs.index(f)](
                    prompts=[""] * len(batch), completions=batch, **cols
                )
        reload = (time.perf_counter() - start) / args.calls
        print(f"reward scoring of {len(texts)} completions (3 components):")
        print(f"  load once, one batched embedding  {once * 1e3:8.1f} ms")
        print(f"  reload per call (baseline)         {reload * 1e3:8.1f} ms")
        print(f"  ratio baseline / workflow          {reload / once:8.1f} x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
