"""Does the tiny Omni thinker learn to use the clip? A probe of the pre-training.

Trains a copy of the untrained tiny thinker on the pre-training corpus with one of two
kinds of rows and measures, on held-out clips, what only the clip can tell:

* ``caption``: "Which instruments do you hear?" -> "violin, piano." (the scene's
  instruments, left to right). Scored by ranking every distinct caption of the corpus
  by likelihood: top-1 accuracy, chance = 1 / number of captions.
* ``exist``: "Is there a {instrument} sound? Answer yes or no." over as many absent
  instruments as present ones. Scored by the yes-minus-no margin: AUC of present vs.
  absent instruments per clip, and the margin's spread across instruments of one clip
  (0 means the answer ignores which instrument is asked about).

``--rows caption+exist`` mixes both. Measured figures are in bench/README.md; the
corpus and the model are built under ``--workdir`` (reused when there).

    .venv/bin/python bench/pretrain_probe.py --workdir /tmp/probe --scenes 400 \
        --rows caption --steps 600 --learning-rate 3e-3
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

CAPTION_PROMPT = "Which instruments do you hear?"


def exist_prompt(instrument: str) -> str:
    return f"Is there a {instrument} sound? Answer yes or no."


CAPTION_FORMS = ("list", "sentence")


def caption(scene: dict, form: str = "list") -> str:
    """The caption row's answer: the instruments left to right ("violin, piano."), or
    (``sentence``) the audio LLM's own answer ("I hear a piano and a violin.")."""
    if form == "sentence":
        from avtrust.pretrain.audio_llm import response

        return response(sorted(scene["instruments"]))
    return ", ".join(scene["instruments"]) + "."


def caption_rows(scenes, media, form: str) -> list[dict]:
    return [
        {"media_path": media(s), "prompt": CAPTION_PROMPT, "response": caption(s, form)}
        for s in scenes
    ]


def exist_rows(scenes, media, instruments, rng) -> list[dict]:
    """Balanced: each present instrument (yes) and as many absent ones (no)."""
    out = []
    for s in scenes:
        absent = [i for i in instruments if i not in s["instruments"]]
        asked = list(s["instruments"]) + list(
            rng.choice(absent, size=min(len(absent), len(s["instruments"])), replace=False)
        )
        for i in asked:
            answer = "yes" if i in s["instruments"] else "no"
            out.append({"media_path": media(s), "prompt": exist_prompt(i), "response": answer})
    return out


def soundtrack_file(video: Path, folder: Path) -> Path:
    """The clip's soundtrack alone, as 16-bit WAV in ``folder`` (written once)."""
    import subprocess

    out = folder / f"{video.stem}.wav"
    if not out.exists():
        folder.mkdir(parents=True, exist_ok=True)
        cmd = ["ffmpeg", "-v", "error", "-y", "-i", str(video), "-vn", "-c:a", "pcm_s16le"]
        subprocess.run([*cmd, str(out)], check=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--scenes", type=int, default=400)
    parser.add_argument("--rows", default="caption", help="caption, exist or caption+exist")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--caption-form",
        choices=CAPTION_FORMS,
        default="list",
        help="list: 'violin, piano.'; sentence: the audio LLM's 'I hear a piano and a violin.'",
    )
    parser.add_argument(
        "--inputs",
        default="av",
        help="what the training rows show: av (the clip), a (its soundtrack alone) or a+av "
        "(both, each row once per input)",
    )
    parser.add_argument(
        "--seen-scenes",
        type=Path,
        help="scenes.json of a corpus a starting model was trained on: no held-out scene "
        "comes from it",
    )
    parser.add_argument(
        "--start-from-audio-llm",
        type=Path,
        help="a pre-trained audio LLM folder: the thinker starts from its language model "
        "and audio encoder (avtrust.pretrain.thinker_init)",
    )
    args = parser.parse_args()

    import torch

    from avtrust.models.registry import load, prepare, spec_from_config
    from avtrust.pretrain import stage, thinker
    from avtrust.train.data import SequenceEncoder, sequence_logps

    torch.set_num_threads(1)
    work = args.workdir
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["pretrain"]["corpus"]["scenes"] = args.scenes
    if not (work / "corpus").exists():
        stage.write_corpus(work / "corpus", config)
    if not (work / "untrained").exists():
        prepare(spec_from_config("omni", config["models"]), work / "untrained", seed=1)
    scenes = json.loads((work / "corpus" / "annotations" / "scenes.json").read_text())
    instruments = sorted({i for s in scenes for i in s["instruments"]})
    rng = np.random.default_rng(args.seed)
    # held-out scenes: never among the clips the starting audio LLM was trained on (its
    # corpus is the default's, from the same seed: the probe's first scenes are its scenes)
    seen = set()
    if args.seen_scenes:
        seen = {s["video_id"] for s in json.loads(args.seen_scenes.read_text())}
    fresh = [k for k, s in enumerate(scenes) if s["video_id"] not in seen]
    held = set(rng.choice(fresh, size=min(len(scenes) // 5, len(fresh)), replace=False).tolist())
    train_scenes = [s for k, s in enumerate(scenes) if k not in held]
    test_scenes = [s for k, s in enumerate(scenes) if k in held]

    def clip(s):
        return str(work / "corpus" / "videos" / f"{s['video_id']}.mp4")

    def soundtrack(s):
        return str(soundtrack_file(Path(clip(s)), work / "soundtracks"))

    readers = {"av": clip, "a": soundtrack}
    inputs = args.inputs.split("+")
    if set(inputs) - set(readers):
        parser.error(f"unknown inputs {args.inputs!r}")
    rows = []
    for kind in args.rows.split("+"):
        for media in (readers[i] for i in inputs):
            if kind == "caption":
                rows += caption_rows(train_scenes, media, args.caption_form)
            elif kind == "exist":
                rows += exist_rows(train_scenes, media, instruments, rng)
            else:
                parser.error(f"unknown rows {kind!r}")
    model = load(work / "untrained", device="cpu")
    if args.start_from_audio_llm:
        from avtrust.pretrain.thinker_init import start_from_audio_llm

        print(
            "started from the audio LLM:",
            start_from_audio_llm(model.model, args.start_from_audio_llm),
        )
    settings = thinker.ThinkerSettings(
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        warmup_steps=min(20, args.steps // 10),
    )
    start = time.perf_counter()
    losses = thinker.train(model, rows, settings, args.seed)
    print(
        f"{len(rows)} rows, {args.steps} steps in {time.perf_counter() - start:.0f} s: "
        f"loss {np.mean(losses[:10]):.3f} -> {np.mean(losses[-20:]):.3f}"
    )

    encoder = SequenceEncoder(model.builder, model.model.get_rope_index)

    def logps(paths, prompts, responses):
        enc = encoder(paths, prompts, responses)
        with torch.no_grad():
            return sequence_logps(model.model, enc.batch)[enc.rows].numpy()

    captions = sorted({caption(s, args.caption_form) for s in scenes})
    parts = [
        (f"{part} {name}", part_scenes, readers[name])
        for name in inputs
        for part, part_scenes in (
            ("train", train_scenes[: len(test_scenes)]),
            ("held", test_scenes),
        )
    ]
    for part, part_scenes, media in parts:
        aucs, spreads, hits = [], [], []
        for s in part_scenes:
            n = len(instruments)
            lp = logps(
                [media(s)] * 2 * n,
                [exist_prompt(i) for i in instruments for _ in (0, 1)],
                ["yes", "no"] * n,
            ).reshape(n, 2)
            margin = lp[:, 0] - lp[:, 1]
            present = np.array([i in s["instruments"] for i in instruments])
            aucs.append(np.mean(margin[present][:, None] > margin[~present][None, :]))
            spreads.append(margin.std())
            lp = logps([media(s)] * len(captions), [CAPTION_PROMPT] * len(captions), captions)
            hits.append(captions[int(np.argmax(lp))] == caption(s, args.caption_form))
        print(
            f"{part:8s} ({len(part_scenes)} clips): existence AUC {np.mean(aucs):.3f} "
            f"(chance 0.5), margin spread within a clip {np.mean(spreads):.3f}; "
            f"caption top-1 {np.mean(hits):.3f} (chance {1 / len(captions):.3f})"
        )


if __name__ == "__main__":
    main()
