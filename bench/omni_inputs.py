"""Omni thinker inputs: the official processor vs the numpy builder, same decoded media.

Both builders of :mod:`avtrust.models.omni_inputs` turn the same decoded clips (audio +
sampled frames, decoded once, untimed) into the thinker's inputs:

- **processor** (the default, ``input_builder: auto``): ``Qwen2_5OmniProcessor``;
- **builtin**: :class:`OmniInputBuilder` (numpy patchify, Whisper features, the
  placeholder expansion rebuilt).

It also times the decoding itself (one ffmpeg process per clip) as the baseline: what a
batch costs end to end is decoding + building. The model folder is the tiny thinker with
Qwen2.5-Omni's real preprocessing (qwen-omni-utils' 128 to 768 tokens a frame; Whisper
features over 300 s), so the arrays have the real sizes. Prints seconds per batch and
the ratios builtin / processor and build / decode.

    .venv/bin/python bench/omni_inputs.py
    .venv/bin/python bench/omni_inputs.py --clips 8 --seconds 10 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from avtrust.media.ffmpeg import encode_clip
from avtrust.media.synthesis import catalog, render_frames, synthesize_audio
from avtrust.models.omni_inputs import VIDEO_SAMPLING_FILE, Media, input_builder
from avtrust.models.tiny import build_omni_thinker

REAL = {"chunk_length": 300, "n_samples": 4800000, "nb_max_frames": 30000, "dither": 0.0}


def make_clips(root: Path, n: int, seconds: float) -> list[Path]:
    cat, paths = catalog(), []
    for i in range(n):
        rng = np.random.default_rng(i)
        source = cat[["violin", "cello", "piano", "flute"][i % 4]]
        frames = render_frames([source], seconds, 25, 640, 360, rng)
        audio = synthesize_audio(source, seconds, 44100, rng)
        path = root / f"clip{i}.mp4"
        encode_clip(
            path,
            frames,
            audio,
            fps=25,
            sample_rate=44100,
            video_codec={"vcodec": "libx264", "preset": "veryfast", "threads": 1},
            audio_codec={"acodec": "aac"},
        )
        paths.append(path)
    return paths


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=4, help="clips in the batch")
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each clip")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = root / "omni"
        build_omni_thinker(folder, seed=0)
        cfg = json.loads((folder / "preprocessor_config.json").read_text())
        (folder / "preprocessor_config.json").write_text(json.dumps({**cfg, **REAL}))
        (folder / "video_preprocessor_config.json").unlink()
        (folder / VIDEO_SAMPLING_FILE).unlink()
        paths = make_clips(root, args.clips, args.seconds)
        questions = ["Which instrument is playing?"] * len(paths)
        processor = input_builder(folder, "processor")
        builtin = input_builder(folder, "builtin")
        media = processor.decode(paths)
        decode_s = best_of(args.repeats, lambda: processor.decode(paths))

        def cached(builder):
            builder.decode = lambda _paths: Media(media.kind, media.audio, media.frames)
            return lambda: builder(paths, questions)

        processor_s = best_of(args.repeats, cached(processor))
        builtin_s = best_of(args.repeats, cached(builtin))
    frames = sum(len(f) for f in media.frames)
    print(f"{len(paths)} clips of {args.seconds:g} s, 640x360 -> {media.frames[0].shape[1:3]}")
    print(f"  decode (baseline)  {decode_s:7.3f} s  ({frames} frames kept)")
    print(f"  processor          {processor_s:7.3f} s  {processor_s / decode_s:5.2f}x decode")
    print(f"  builtin            {builtin_s:7.3f} s  {builtin_s / decode_s:5.2f}x decode")
    print(f"  builtin / processor: {builtin_s / processor_s:.2f}")


if __name__ == "__main__":
    main()
