"""Evaluation throughput on the tiny Omni thinker: one-by-one vs. batched generation, with
and without the decode-once cache, vs. the model alone; decodes counted over N models.

All runs answer the same multiple-choice questions about the same clips, through the
code of the evaluate stage (``avtrust.evaluate.infer.run_shard``):

- **one-by-one**: ``batch_size 1``, every clip decoded by ffmpeg (the baseline);
- **batched, decoding**: ``--batch-size`` samples per model call, clips decoded by ffmpeg;
- **decode cache**: the clips decoded once into a decode-once cache (rule decode_clips,
  :mod:`avtrust.models.decode_cache`; timed);
- **batched, cached**: ``--models`` models (tiny builds of other seeds) each evaluated on
  the cached arrays, with the prefetching loader and length-ordered batches; the
  decodes of all of them are counted (target: each clip decoded once in all);
- **loglik, cached**: every option of every sample of a batch scored in one forward;
- **model only**: greedy generation on inputs built beforehand (untimed).

Targets: batched+cached ≥ 4× one-by-one, and ≥ 50 % of the model-only rate; a shortfall
is printed. The clips (audio+video, synthetic, ``--seconds`` long) and the tiny models
are built in a temporary folder first (untimed). ``--model`` names a prepared model
folder instead (``resources/models/omni``), e.g. a real Qwen2.5-Omni-3B on a GPU.

    .venv/bin/python bench/eval_throughput.py
    .venv/bin/python bench/eval_throughput.py --samples 64 --batch-size 16 --models 3
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from avtrust.evaluate.infer import Predictor, Settings, prompt_for, run_shard
from avtrust.media.ffmpeg import encode_clip
from avtrust.media.synthesis import catalog, render_frames, synthesize_audio
from avtrust.models.decode_cache import DECODES, DecodeCache, build
from avtrust.models.media_cache import clear_cache
from avtrust.models.registry import ModelSpec, load, prepare

TARGET_RATIO = 4.0  # batched + cached end to end vs one-by-one
TARGET_SHARE = 0.5  # batched + cached end to end vs the model alone on prebuilt inputs
INSTRUMENTS = ["violin", "cello", "piano", "guitar", "flute", "trumpet"]


def make_clips(folder: Path, n: int, seconds: float, seed: int = 0) -> list[dict]:
    """``n`` audio+video clips and a multiple-choice question about each."""
    cat, rng, rows = catalog(), np.random.default_rng(seed), []
    for i in range(n):
        name = INSTRUMENTS[i % len(INSTRUMENTS)]
        path = folder / f"clip{i}.mp4"
        encode_clip(
            path,
            render_frames([cat[name]], seconds, 8, 64, 48, rng),
            synthesize_audio(cat[name], seconds, 16000, rng),
            fps=8,
            sample_rate=16000,
            video_codec={"vcodec": "libx264", "preset": "veryfast", "crf": 23, "threads": 1},
            audio_codec={"acodec": "aac", "b:a": "64k"},
        )
        options = [name, *[x for x in INSTRUMENTS if x != name][:2], "Audio is missing"]
        rows.append(
            {
                "id": f"s{i:04d}",
                "bench": "avtrustbench",
                "task": "MCIT",
                "category": None,
                "media_path": str(path),
                "has_audio": True,
                "has_video": True,
                "question": "Which instrument is playing?",
                "options": options,
                "answer": name,
                "answer_index": 0,
            }  # fmt: skip
        )
    return rows


def timed(predictor, rows, settings, state: Path) -> tuple[float, list]:
    """samples/s of one evaluate run from a cold media cache, and its predictions."""
    builder = getattr(predictor.model, "builder", None)
    if builder is not None:
        clear_cache(builder)  # every run decodes its clips afresh, as an evaluate job does
    start = time.perf_counter()
    table = run_shard(predictor, rows, settings, model_id="bench", state_dir=state)
    elapsed = time.perf_counter() - start
    shutil.rmtree(state, ignore_errors=True)
    return len(rows) / elapsed, table.select(["id", "mode", "raw", "parsed_index"]).to_pylist()


def model_only(thinker, rows, batch_size: int, max_new_tokens: int) -> float:
    """samples/s of greedy generation alone: inputs built beforehand (untimed)."""
    prompts = [prompt_for(r["question"], r["options"]) for r in rows]
    paths = [r["media_path"] for r in rows]
    batches = [
        thinker.generation_inputs(paths[s : s + batch_size], prompts[s : s + batch_size])
        for s in range(0, len(rows), batch_size)
    ]
    # warm-up on the first batch (untimed), as the end-to-end runs had theirs: the first
    # calls with a new batch shape cost several times the steady state on CPU
    thinker.generate_batch(batches[0], max_new_tokens=max_new_tokens)
    start = time.perf_counter()
    for batch in batches:
        thinker.generate_batch(batch, max_new_tokens=max_new_tokens)
    return len(rows) / (time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=2, help="decoding threads (rule threads)")
    parser.add_argument("--models", type=int, default=3, help="models evaluated on the cache")
    parser.add_argument("--model", help="a prepared model folder (default: build the tiny one)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)  # as the evaluate rule does with its threads
    tmp = Path(tempfile.mkdtemp(prefix="eval_bench."))
    try:
        rows = make_clips(tmp, args.samples, args.seconds)
        clips = len({r["media_path"] for r in rows})
        if args.model is None:
            spec = ModelSpec("omni", "qwen2_5_omni_thinker", "tiny", "Qwen/Qwen2.5-Omni-3B")
            folders = [prepare(spec, tmp / f"omni{s}", seed=s) for s in range(args.models)]
        else:
            folders = [args.model] * args.models
        thinkers = [load(f, device=args.device) for f in folders]
        thinker = thinkers[0]
        predictor = Predictor(thinker, threads=args.threads, cache=args.batch_size)
        common = {"max_new_tokens": args.max_new_tokens}
        batched_settings = Settings(batch_size=args.batch_size, **common)
        # warm-up (first-call allocations, lazy imports), untimed
        run_shard(predictor, rows[:2], Settings(batch_size=2, **common), model_id="warm",
                  state_dir=tmp / "warm")  # fmt: skip
        single, p1 = timed(predictor, rows, Settings(batch_size=1, **common), tmp / "s1")
        batched, p2 = timed(predictor, rows, batched_settings, tmp / "s2")
        # the decode stage: every clip once, for the settings of all the models
        DECODES.reset()
        start = time.perf_counter()
        report = build([r["media_path"] for r in rows], [t.builder.vision for t in thinkers],
                       tmp / "decoded", workers=args.threads)  # fmt: skip
        build_s = time.perf_counter() - start
        cached_rates, p3 = [], None
        for n, model in enumerate(thinkers):
            cached = Predictor(model, threads=args.threads, cache=args.batch_size,
                               decoded=DecodeCache(tmp / "decoded"))  # fmt: skip
            rate, preds = timed(cached, rows, batched_settings, tmp / f"c{n}")
            cached_rates.append(rate)
            p3 = preds if n == 0 else p3
        decodes = DECODES.total()
        cached = Predictor(thinker, threads=args.threads, cache=args.batch_size,
                           decoded=DecodeCache(tmp / "decoded"))  # fmt: skip
        loglik, _ = timed(cached, rows, Settings(modes=("loglik",), batch_size=args.batch_size),
                          tmp / "s3")  # fmt: skip
        m1 = model_only(thinker, rows, 1, args.max_new_tokens)
        mb = model_only(thinker, rows, args.batch_size, args.max_new_tokens)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    same = sum(a == b for a, b in zip(p1, p2, strict=True))
    same_cached = sum(a == b for a, b in zip(p2, p3, strict=True))
    best = cached_rates[0]
    print(
        f"samples: {args.samples}, batch size {args.batch_size}, max_new_tokens "
        f"{args.max_new_tokens}, decoding threads {args.threads}, device {args.device}"
    )
    print(f"one-by-one generation : {single:8.2f} samples/s  (baseline, ffmpeg per clip)")
    print(f"batched, decoding     : {batched:8.2f} samples/s  ({batched / single:.2f}x one-by-one)")
    per_clip_ms = report.decode_seconds / max(report.decoded, 1) * 1e3
    print(
        f"decode cache build    : {build_s:8.2f} s for {clips} clips x {len(set(folders))} "
        f"model folder(s): {report.decoded} decodes, {per_clip_ms:.1f} ms decoding per clip, "
        f"{report.nbytes / max(report.entries, 1) / 1e3:.1f} kB per entry"
    )
    for n, rate in enumerate(cached_rates):
        print(f"batched, cached, model {n}: {rate:6.2f} samples/s  ({rate / single:.2f}x 1-by-1)")
    print(
        f"batched loglik, cached: {loglik:8.2f} samples/s  ({loglik / best:.2f}x batched "
        f"generation, {loglik / single:.2f}x one-by-one)"
    )
    print(f"model only, batch 1   : {m1:8.2f} samples/s  (inputs prebuilt)")
    print(f"model only, batched   : {mb:8.2f} samples/s  ({mb / m1:.2f}x batch 1)")
    once = f"{decodes / clips:.2f} decodes per clip"
    once = "each clip decoded once" if decodes == clips else once
    print(f"decodes: {decodes} for {clips} clips evaluated by {len(thinkers)} models ({once})")
    ratio, share = best / single, best / mb
    for name, value, target in (("batched+cached vs one-by-one", ratio, TARGET_RATIO),
                                ("batched+cached vs model only", share, TARGET_SHARE)):  # fmt: skip
        verdict = "met" if value >= target else f"NOT met, short by {target - value:.2f}"
        print(f"target {name}: {value:.2f} (>= {target:.2f}: {verdict})")
    print(f"batched predictions equal to one-by-one: {same}/{len(p1)}; cached equal to "
          f"decoded: {same_cached}/{len(p2)}")  # fmt: skip
    return 0 if same == len(p1) and same_cached == len(p2) else 1


if __name__ == "__main__":
    sys.exit(main())
