"""Peak memory of the CAVPref log-probs step: TRL's fused LM head vs the full logits.

One forward and backward of the summed response log-probs of a CAVPref batch (the four
sequences of each pair, one merged batch) through a LoRA-adapted tiny Omni thinker whose
vocabulary is resized to Qwen2.5-Omni's (152,064 tokens, so the head is the real width):

- **fused**: :func:`avtrust.train.data.sequence_logps` with the fused head the trainer
  has (TRL's ``add_fused_lm_head``: hidden states × head weight in tiles, log-softmax and
  gather per tile, recomputed in the backward);
- **full**: :func:`avtrust.train.data.full_logits_logps`, the (B, L, V) logits and their
  float32 log-softmax.

Off Triton devices (here: the CPU) TRL's head scores every position, in tiles of 4,096
tokens × 32,768 vocabulary entries; on a GPU it scores only the labelled (response)
positions, so its memory there is smaller still. Peak memory is the high-water mark of
the tensors torch allocates during the step (torch profiler memory events, CPU), so it
does not depend on the machine's load. Both paths give the same log-probs (checked, and
printed).

    .venv/bin/python bench/logps_memory.py
    .venv/bin/python bench/logps_memory.py --pairs 2 --vocab 152064
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch
from cavpref_step import make_clips, pair_rows
from torch.profiler import ProfilerActivity, profile

from avtrust.models.registry import load, prepare, spec_from_config
from avtrust.train.config import LoraSettings
from avtrust.train.data import (
    SequenceEncoder,
    add_fused_head,
    cache_decoding,
    full_logits_logps,
    sequence_logps,
)
from avtrust.train.lora import apply_lora
from avtrust.train.trainers import PreferenceCollator

QWEN_VOCAB = 152064
OMNI = {
    "omni": {
        "adapter": "qwen2_5_omni_thinker",
        "source": "tiny",
        "location": "Qwen/Qwen2.5-Omni-3B",
    }
}


def peak_bytes(fn) -> tuple[int, object]:
    """(high-water mark of torch's CPU allocations during ``fn()``, its result)."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        result = fn()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    current = peak = 0
    for e in sorted(events, key=lambda e: e.start_ns()):
        current += e.nbytes()  # negative for a free
        peak = max(peak, current)
    return peak, result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=2, help="pairs per batch (4 sequences each)")
    parser.add_argument("--vocab", type=int, default=QWEN_VOCAB, help="LM head width")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model_dir = prepare(spec_from_config("omni", OMNI), root / "omni", seed=0)
        clips = make_clips(root, 3)
        policy = load(model_dir)
        base = policy.model
        base.resize_token_embeddings(args.vocab, mean_resizing=False)
        encoder = SequenceEncoder(cache_decoding(policy.builder), base.get_rope_index)
        model = add_fused_head(
            apply_lora(base, LoraSettings(r=8, alpha=16, targets=("q_proj", "v_proj")))
        )
        model.train()
        # Every sample runs all four sequences (η = γ = 1).
        rows = pair_rows(clips, args.pairs, [("COT-Swap", 1.0, 1.0)])
        batch = PreferenceCollator(encoder, av_terms=True)(rows)
        n, length = batch["model"]["input_ids"].shape

        def step(fn):
            def run():
                logps = fn(model, batch["model"])[batch["index"]]
                (-logps.sum()).backward()
                model.zero_grad(set_to_none=True)
                return logps.detach()

            return run

        step(sequence_logps)()  # warm-up: decoding caches, allocator
        fused_peak, fused = peak_bytes(step(sequence_logps))
        full_peak, full = peak_bytes(step(full_logits_logps))
    gap = float((fused - full).abs().max())
    mb = 1 / 2**20
    print(f"batch: {n} sequences × {length} tokens, vocabulary {args.vocab}")
    print(f"  one (B, L, V) float32 tensor: {n * length * args.vocab * 4 * mb:.0f} MiB")
    print(f"  fused head  peak {fused_peak * mb:8.0f} MiB")
    print(f"  full logits peak {full_peak * mb:8.0f} MiB")
    print(f"full / fused peak memory: {full_peak / fused_peak:.1f}x")
    print(f"max |log-prob difference|: {gap:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
