"""GPU check: evaluation samples/s, CAVPref and GRPO step time, peak memory and tokens/s
of the real-sized Qwen2.5-Omni-3B thinker, with random weights (no download).

``--size 3b`` builds ``Qwen2_5OmniThinkerForConditionalGeneration`` from the published
dimensions of Qwen2.5-Omni-3B's thinker (text: 36 layers, hidden 2048, MLP 11008, 16
heads, 2 KV heads, vocabulary 151,936, 3-D RoPE sections 16/24/24; the family's ViT:
32 layers, hidden 1280, MLP 3420; its Whisper-large encoder; both projecting to 2048;
4.70 B parameters) directly on the device in bf16, and reads clips with the real processor's
settings (:class:`avtrust.models.omni_inputs.VisionSettings` defaults: 2 fps, 128–768
merged patches per frame). ``--size tiny`` builds the tiny thinker of the default run
instead, so that the script can be tested on a CPU (tests/unit/test_gpu_check.py).

What it measures, in this order, all through the project's code:

1. **evaluation**: synthetic A+V clips decoded once into a decode-once cache, then
   ``run_shard`` (batched generation, prefetching loader) reading it: samples/s; and the
   model alone on prebuilt batches: prompt and generated tokens/s;
2. **CAVPref step**: LoRA-adapted policy with the fused LM head, one batch of pairs
   (``bench/cavpref_step.py``'s runner: merged forward of the weighted sequences,
   precomputed references, loss, backward, AdamW): seconds per step;
3. **GRPO step**: ``AVGRPOTrainer`` (group of ``--group`` completions, format reward,
   config/paper.yaml's LoRA r 64 on the attention projections): seconds per step;

each with the device's peak memory. The results go to ``--out`` (JSON) and stdout.
Run it through ``bench/gpu_check.sh``.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))  # the other bench scripts' clip and pair builders

# Qwen2.5-Omni-3B's thinker text model (its published config.json).
TEXT_3B = {
    "hidden_size": 2048,
    "intermediate_size": 11008,
    "num_hidden_layers": 36,
    "num_attention_heads": 16,
    "num_key_value_heads": 2,
    "max_position_embeddings": 32768,
    "vocab_size": 151936,
    "rms_norm_eps": 1e-6,
}
# Its vision tower (the Qwen2.5-VL ViT). transformers' defaults for the Omni vision config
# have hidden_size 3584, which builds a 3-billion-parameter tower instead of 0.67 B.
VISION_3B = {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16}
MROPE_3B = [16, 24, 24]  # temporal / height / width rotary pairs of the 128-wide heads


def thinker_3b(device: str, seed: int = 0):
    """(model, input builder) of the real-sized 3B thinker, random bf16 weights."""
    import torch
    from transformers import (
        Qwen2_5OmniThinkerConfig,
        Qwen2_5OmniThinkerForConditionalGeneration,
        WhisperFeatureExtractor,
    )

    from avtrust.models.omni_inputs import OmniInputBuilder, VisionSettings
    from avtrust.models.tokenizer import qwen_tokenizer

    tok = qwen_tokenizer()
    token_id = tok.convert_tokens_to_ids
    config = Qwen2_5OmniThinkerConfig(
        audio_config={"output_dim": TEXT_3B["hidden_size"]},  # the family's Whisper encoder
        vision_config={**VISION_3B, "out_hidden_size": TEXT_3B["hidden_size"]},
        text_config={
            **TEXT_3B,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 1000000.0,
                "mrope_section": MROPE_3B,
            },
        },
        audio_token_index=token_id("<|AUDIO|>"),
        image_token_index=token_id("<|IMAGE|>"),
        video_token_index=token_id("<|VIDEO|>"),
        audio_start_token_id=token_id("<|audio_bos|>"),
        audio_end_token_id=token_id("<|audio_eos|>"),
        vision_start_token_id=token_id("<|vision_bos|>"),
        vision_end_token_id=token_id("<|vision_eos|>"),
        user_token_id=tok("user")["input_ids"][0],
        pad_token_id=tok.pad_token_id,
        eos_token_id=token_id("<|im_end|>"),
    )
    torch.manual_seed(seed)
    dtype = torch.bfloat16
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = Qwen2_5OmniThinkerForConditionalGeneration(config)
    finally:
        torch.set_default_dtype(previous)
    model.eval()
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = token_id("<|im_end|>")
    builder = OmniInputBuilder(tok, WhisperFeatureExtractor(feature_size=128), VisionSettings())
    return model, builder


def load_thinker(size: str, device: str, root: Path):
    from avtrust.models.omni import OmniThinker
    from avtrust.models.registry import ModelSpec, load, prepare

    if size == "tiny":  # in bf16 too: the dtype path of the real run, testable on a CPU
        import torch

        spec = ModelSpec("omni", "qwen2_5_omni_thinker", "tiny", "Qwen/Qwen2.5-Omni-3B")
        thinker = load(prepare(spec, root / "omni", seed=0), device=device)
        thinker.model.to(torch.bfloat16)
        return thinker
    model, builder = thinker_3b(device)
    return OmniThinker(model, builder, device)


class Peak:
    """Peak memory of a phase: the device's allocator on CUDA, the process's RSS on CPU."""

    def __init__(self, device: str):
        self.cuda = device.startswith("cuda")

    def __enter__(self):
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        return self

    def __exit__(self, *exc):
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            self.gib = torch.cuda.max_memory_allocated() / 2**30
        else:  # ru_maxrss: KiB on Linux; the process's peak so far, not this phase's
            self.gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def evaluation(thinker, args, root: Path, device: str) -> dict:
    from eval_throughput import make_clips

    root.mkdir(parents=True, exist_ok=True)

    from avtrust.evaluate.infer import Predictor, Settings, prompt_for, run_shard
    from avtrust.models.decode_cache import DECODES, DecodeCache, build

    rows = make_clips(root, args.samples, args.seconds)
    DECODES.reset()
    start = time.perf_counter()
    build([r["media_path"] for r in rows], [thinker.builder.vision], root / "decoded", workers=4)
    build_s = time.perf_counter() - start
    predictor = Predictor(thinker, threads=args.threads, cache=args.batch_size,
                          decoded=DecodeCache(root / "decoded"))  # fmt: skip
    settings = Settings(batch_size=args.batch_size, max_new_tokens=args.max_new_tokens)
    run_shard(predictor, rows[: args.batch_size], settings, model_id="warm",
              state_dir=root / "warm")  # fmt: skip
    with Peak(device) as peak:
        start = time.perf_counter()
        run_shard(predictor, rows, settings, model_id="check", state_dir=root / "eval")
        elapsed = time.perf_counter() - start
    # the model alone on prebuilt batches: tokens/s of prompts (prefill) and answers
    prompts = [prompt_for(r["question"], r["options"]) for r in rows]
    paths = [r["media_path"] for r in rows]
    size = args.batch_size
    batches = [thinker.generation_inputs(paths[s : s + size], prompts[s : s + size])
               for s in range(0, len(rows), size)]  # fmt: skip
    prompt_tokens = sum(int(b["attention_mask"].sum()) for b in batches)
    new_tokens = 0
    thinker.generate_batch(batches[0], max_new_tokens=args.max_new_tokens)  # warm-up
    sync(device)
    start = time.perf_counter()
    for batch in batches:
        new_tokens += generated_tokens(thinker, batch, args.max_new_tokens)
    sync(device)
    model_s = time.perf_counter() - start
    return {
        "samples": len(rows),
        "batch_size": size,
        "threads": args.threads,
        "samples_per_s": len(rows) / elapsed,
        "model_only_samples_per_s": len(rows) / model_s,
        "prompt_tokens_per_sample": prompt_tokens / len(rows),
        "tokens_per_s": (prompt_tokens + new_tokens) / model_s,
        "generated_tokens_per_s": new_tokens / model_s,
        "decode_cache_build_s": build_s,
        "decodes": DECODES.total(),
        "peak_memory_gib": peak.gib,
    }


def generated_tokens(thinker, batch: dict, max_new_tokens: int) -> int:
    """How many tokens greedy generation produced for ``batch`` (padding after an early
    end not counted). Counted as ids: the 3B model's random weights mostly pick ids past
    the tiny tokenizer's vocabulary, which decode to nothing."""
    import torch

    with torch.inference_mode():
        ids = thinker.model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False)
    new = ids[:, batch["input_ids"].shape[1] :]
    pad = thinker.model.generation_config.pad_token_id
    return int(new.numel() if pad is None else (new != pad).sum())


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def cavpref(thinker, args, root: Path, device: str) -> dict:
    from cavpref_step import CONFIG, Runner, make_clips, pair_rows, task_weights

    (root / "pairs").mkdir(parents=True)
    clips = make_clips(root / "pairs", 6)
    rows = pair_rows(clips, args.pairs, task_weights(CONFIG))
    runner = Runner(None, rows, policy=thinker)
    ref_cache = {"cavpref": runner.logps("cavpref", reference=True)}
    runner.step("cavpref", ref_cache)  # warm-up
    times = []
    with Peak(device) as peak:
        for _ in range(args.steps):
            sync(device)
            start = time.perf_counter()
            runner.step("cavpref", ref_cache)
            sync(device)
            times.append(time.perf_counter() - start)
    return {"pairs": args.pairs, "step_s": statistics.median(times), "peak_memory_gib": peak.gib}


def grpo(thinker, args, root: Path, device: str) -> dict:
    from datasets import Dataset
    from eval_throughput import make_clips
    from trl import GRPOConfig

    from avtrust.train.config import LoraSettings
    from avtrust.train.grpo import AVGRPOTrainer
    from avtrust.train.lora import apply_lora
    from avtrust.train.rewards import StepRewards

    (root / "grpo").mkdir(parents=True)
    samples = make_clips(root / "grpo", 2, args.seconds)
    columns = ("media_path", "answer", "options")
    rows = [
        {"prompt": r["question"], "reference_embedding": [1.0] * 8, **{k: r[k] for k in columns}}
        for r in samples
    ]
    cuda = device.startswith("cuda")
    config = GRPOConfig(
        output_dir=str(root / "grpo_state"),
        per_device_train_batch_size=args.group,
        num_generations=args.group,
        max_completion_length=args.max_new_tokens,
        max_steps=1,
        logging_steps=1,
        report_to="none",
        use_cpu=not cuda,
        bf16=cuda,
        save_strategy="no",
        disable_tqdm=True,
        seed=0,
    )
    lora = LoraSettings(r=64, alpha=128, targets=("q_proj", "k_proj", "v_proj", "o_proj"))
    trainer = AVGRPOTrainer(
        apply_lora(thinker.model, lora),  # config/paper.yaml's RL-CoMM adapters
        StepRewards(None).functions(["format"]),
        config,
        train_dataset=Dataset.from_list(rows),
        builder=thinker.builder,
    )
    trainer.train()  # warm-up step
    times = []
    step = trainer.training_step

    def timed_step(*a, **k):  # the steps alone, not the trainer's setup around them
        sync(device)
        start = time.perf_counter()
        try:
            return step(*a, **k)
        finally:
            sync(device)
            times.append(time.perf_counter() - start)

    trainer.training_step = timed_step
    trainer.args.max_steps = args.steps
    with Peak(device) as peak:
        trainer.train()
    return {"group": args.group, "step_s": statistics.median(times), "peak_memory_gib": peak.gib}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=["3b", "tiny"], default="3b")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the clips")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--pairs", type=int, default=4, help="CAVPref pairs per step")
    parser.add_argument("--group", type=int, default=4, help="GRPO completions per prompt")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps")
    parser.add_argument(
        "--threads", type=int, default=4, help="evaluation's loader threads (evaluation.threads)"
    )
    parser.add_argument(
        "--phases", default="evaluation,cavpref,grpo", help="comma-separated, in this order"
    )
    parser.add_argument("--out", type=Path, required=True, help="results JSON")
    args = parser.parse_args(argv)
    import torch

    torch.manual_seed(0)
    out = {"size": args.size, "device": args.device}
    if args.device.startswith("cuda"):
        out["gpu"] = torch.cuda.get_device_name(0)
    with tempfile.TemporaryDirectory(prefix="gpu_check.") as tmp:
        root = Path(tmp)
        # a fresh model per phase: the training phases add their own LoRA adapters
        phases = {"evaluation": evaluation, "cavpref": cavpref, "grpo": grpo}
        chosen = args.phases.split(",")
        if unknown := sorted(set(chosen) - set(phases)):
            parser.error(f"unknown phase(s) {unknown} (phases: {', '.join(phases)})")
        for phase, measure in ((p, phases[p]) for p in chosen):
            start = time.perf_counter()
            thinker = load_thinker(args.size, args.device, root / phase)
            out["build_s"] = time.perf_counter() - start
            out["parameters"] = sum(p.numel() for p in thinker.model.parameters())
            out[phase] = measure(thinker, args, root / phase, args.device)
            print(phase, json.dumps(out[phase]), flush=True)
            del thinker
            if args.device.startswith("cuda"):
                torch.cuda.empty_cache()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
