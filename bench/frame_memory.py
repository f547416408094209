"""Peak Python memory of reading a clip's frames for a model, against clip length.

Two readers of the same clips, in the same process, measured with tracemalloc (numpy
buffers included):

- **decode-all** (the baseline, what ``read_frames`` did before): every frame at the
  model's size from ``avtrust.media.ffmpeg.decode_frames``, then ``frame_indices``;
- **streaming** (``avtrust.models.media.read_frames``): only the sampled frames are kept
  while ffmpeg decodes.

Both return the same array (checked). The clips (ffmpeg's test pattern with a tone, 25
fps) are written to a temporary folder first. Past 384 s the model's cap of 768 frames
holds the streaming reader flat while the baseline keeps growing. Prints peak MB per
reader and their ratio for each length; ``--plot`` also draws the curves
(docs/figures/frame_memory.png).

    .venv/bin/python bench/frame_memory.py
    .venv/bin/python bench/frame_memory.py --seconds 10 60 --plot docs/figures/frame_memory.png
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np

from avtrust.media.ffmpeg import decode_frames
from avtrust.media.probe import probe
from avtrust.models.media import _frame_size, frame_indices, read_frames

# Qwen2.5-Omni's video sampling (2 fps, at most 768 frames), with a small frame (112 x
# 84) so that the baseline's memory for long clips stays within a small machine.
VISION = {"fps": 2.0, "factor": 28, "min_pixels": 4 * 28 * 28, "max_pixels": 12 * 28 * 28}


def make_clip(path: Path, seconds: float) -> None:
    args = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=25:duration={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
            "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest",
            str(path)]  # fmt: skip
    subprocess.run(args, check=True)


def decode_all(path: Path) -> np.ndarray:
    info = probe(path)
    frames = decode_frames(path, *_frame_size(info, VISION["factor"], VISION["min_pixels"],
                                              VISION["max_pixels"]))  # fmt: skip
    keep = frame_indices(len(frames), info.fps, VISION["fps"], 2, 4, 768)
    return frames[keep]


def streaming(path: Path) -> np.ndarray:
    return read_frames(path, **VISION)


def peak_mb(reader, path: Path) -> tuple[float, np.ndarray]:
    tracemalloc.start()
    try:
        frames = reader(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 2**20, frames


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, nargs="+", default=[15, 60, 240, 600, 1200])
    parser.add_argument("--plot", type=Path, help="write the curves to this PNG")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'seconds':>8} {'kept':>5} {'decode-all MB':>14} {'streaming MB':>13} {'ratio':>7}")
        for seconds in args.seconds:
            path = Path(tmp) / f"clip_{seconds:g}.mp4"
            make_clip(path, seconds)
            base_mb, base = peak_mb(decode_all, path)
            new_mb, new = peak_mb(streaming, path)
            if not np.array_equal(base, new):
                raise SystemExit(f"{seconds:g} s: the readers disagree")
            rows.append((seconds, len(new), base_mb, new_mb))
            print(f"{seconds:>8g} {len(new):>5} {base_mb:>14.1f} {new_mb:>13.2f} "
                  f"{base_mb / new_mb:>6.0f}x")  # fmt: skip
    if args.plot:
        plot(rows, args.plot)


def plot(rows, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seconds = [r[0] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(seconds, [r[2] for r in rows], "o-", color="#c62828", label="decode all, then sample")
    ax.plot(seconds, [r[3] for r in rows], "o-", color="#2e7d32", label="keep sampled frames only")
    ax.set_xlabel("clip length (s, 25 fps)")
    ax.set_ylabel("peak Python memory (MB)")
    ax.set_yscale("log")
    ax.set_title(f"read_frames at {VISION['fps']:g} fps sampling", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, metadata={"Software": None})
    plt.close(fig)


if __name__ == "__main__":
    main()
