"""Which sense does the pre-trained tiny thinker answer from? A probe of its pre-training.

Trains a copy of a default run's untrained thinker with the pretrain stage's own code
(``avtrust.pretrain.thinker.train``: optionally started from the run's pre-trained audio
LLM, towers frozen, on some question categories) and prints, on the corpus's held-out
clips, its accuracy per question category, and its existence accuracy ("Is the X in the
video making sound?") when it gets the clip, only the soundtrack, or only the silent
video — which sense the answers come from — with its Yes-rate on the run's
AV-ConfuseBench m1 set (a visible instrument muted: "yes" is the audio-visual confusion
the paper measures).

    .venv/bin/python bench/thinker_probe.py --workdir /tmp/defrun --start-from-audio-llm \\
        --freeze-towers --categories Audio-Visual/Existential --steps 1000

``--vision-head-epochs`` and ``--vision-align-steps`` first train the vision tower
(bench/vision_tower.py), which the pretrain stage leaves as built.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

EXISTENCE = "Audio-Visual/Existential"


def silent_video(video: Path, folder: Path) -> Path:
    """The clip without its soundtrack (the video stream copied), written once into
    ``folder``; :func:`pretrain_probe.soundtrack_file` gives the soundtrack alone."""
    out = folder / f"{video.stem}.mp4"
    if not out.exists():
        folder.mkdir(parents=True, exist_ok=True)
        cmd = ["ffmpeg", "-v", "error", "-y", "-i", str(video), "-an", "-c:v", "copy"]
        subprocess.run([*cmd, str(out)], check=True)
    return out


def noisy_video(video: Path, folder: Path, snr_db: float, seed: int) -> Path:
    """The clip with Gaussian noise mixed into its soundtrack at ``snr_db`` (the
    soundtrack's own RMS as the signal; the video stream copied), written once into
    ``folder``: a recording whose instruments are playing but hard to hear."""
    out = folder / f"{video.stem}.mp4"
    if not out.exists():
        folder.mkdir(parents=True, exist_ok=True)
        decode = ["ffmpeg", "-v", "error", "-i", str(video), "-f", "s16le", "-ac", "1"]
        pcm = subprocess.run([*decode, "-ar", "16000", "-"], check=True, capture_output=True)
        audio = np.frombuffer(pcm.stdout, np.int16) / 32768.0
        rms = float(np.sqrt(np.mean(audio**2))) or 1e-3
        noise = np.random.default_rng(seed).normal(0.0, rms * 10 ** (-snr_db / 20), audio.shape)
        mixed = np.clip(audio + noise, -1, 1)
        mux = ["ffmpeg", "-v", "error", "-y", "-i", str(video), "-f", "s16le", "-ar", "16000"]
        mux += ["-ac", "1", "-i", "pipe:0", "-map", "0:v", "-map", "1:a", "-c:v", "copy"]
        pcm_mixed = (mixed * 32767).astype("<i2").tobytes()
        subprocess.run([*mux, "-c:a", "aac", "-shortest", str(out)], input=pcm_mixed, check=True)
    return out


def with_noisy_clips(rows: list[dict], share: float, snr_db: float, folder: Path, seed: int):
    """``rows`` with ``share`` of their clips (drawn with ``seed``) replaced by
    :func:`noisy_video`; every row of a chosen clip moves with it."""
    clips = sorted({r["media_path"] for r in rows})
    rng = np.random.default_rng(seed)
    chosen = set(rng.choice(clips, int(round(share * len(clips))), replace=False).tolist())
    noisy = {
        c: str(noisy_video(Path(c), folder, snr_db, seed + i)) for i, c in enumerate(sorted(chosen))
    }
    print(f"{len(noisy)} of {len(clips)} training clips with noise at {snr_db} dB SNR")
    return [{**r, "media_path": noisy.get(r["media_path"], r["media_path"])} for r in rows]


def m1_questions(path: Path, root: Path) -> list[dict]:
    """The run's m1 samples as questions for :func:`avtrust.pretrain.thinker.accuracy`."""
    import pandas as pd

    frame = pd.read_parquet(path)
    return [
        {
            "media_path": str(root / r.media_path),
            "question": r.question,
            "options": list(r.options),
            "answer_index": list(r.options).index(r.answer),
            "category": "m1",
        }
        for r in frame.itertuples()
    ]


def m1_rewordings(asked: list[dict]) -> dict[str, list[dict]]:
    """m1's clips asked otherwise: its question without the preamble, and the corpus's
    own existence question about the same instrument (what separates m1 from the
    questions the thinker was trained on)."""
    import vision_tower

    from avtrust import data_files
    from avtrust.datasets.music_avqa import fill_template

    plain = [{**q, "question": "Is there" + q["question"].rsplit("Is there", 1)[-1]} for q in asked]
    # MUSIC-AVQA's Audio-Visual/Existential template, which the corpus asks
    (existential,) = [
        t["question"]
        for t in data_files.load("templates")["music_avqa_questions"]
        if (t["modality"], t["qtype"]) == ("Audio-Visual", "Existential")
    ]
    before, after = vision_tower.SOUND_QUESTION.split("{}")
    corpus_form = [
        {
            **q,
            "question": fill_template(
                existential, [q["question"].removeprefix(before).removesuffix(after)]
            ),
        }
        for q in plain
    ]
    return {"without the preamble": plain, "in the corpus's wording": corpus_form}


def yes_rate(thinker, questions: list[dict]) -> float:
    """Share of ``questions`` (yes/no) whose more probable answer is "yes"."""
    import torch

    from avtrust.pretrain.corpus import answer_forms
    from avtrust.train.data import SequenceEncoder, sequence_logps

    encoder = SequenceEncoder(thinker.builder, thinker.model.get_rope_index)
    said_yes = []
    with torch.no_grad():
        for q in questions:
            ((prompt, candidates),) = answer_forms(q)
            enc = encoder([q["media_path"]] * 2, [prompt] * 2, candidates)
            logps = sequence_logps(thinker.model, enc.batch)[enc.rows].tolist()
            said_yes.append(candidates[int(np.argmax(logps))] == "yes")
    return float(np.mean(said_yes))


def silenced(clips: dict, folder: Path) -> dict:
    """``clips`` (path -> instruments) keyed by their silent copies in ``folder``."""
    return {str(silent_video(Path(c), folder)): v for c, v in clips.items()}


def train_vision(model, corpus_dir: Path, asked: list[dict], held_out: list[dict], out, args):
    """The ``--vision-*`` steps (bench/vision_tower.py) on the scenes and solos of the
    training questions ``asked``; prints what each reached on the held-out ones."""
    import vision_tower

    # the silent copies: the tower reads the frames only, so decoding the soundtrack
    # would be wasted (the same frames, the video stream is copied)
    train = silenced(vision_tower.on_screen(corpus_dir, asked), out / "only_video")
    test = silenced(vision_tower.on_screen(corpus_dir, held_out), out / "only_video")
    start = time.perf_counter()
    if args.vision_head_epochs:
        reached = vision_tower.train_head(
            model, train, test, args.vision_head_epochs, args.vision_head_lr, args.seed
        )
        print(f"vision head ({time.perf_counter() - start:.0f} s): {reached}")
    if args.vision_align_steps:
        from avtrust.pretrain import corpus
        from avtrust.pretrain.vision_tower import AlignSettings, align, described_exactly

        if args.vision_align_form in ("describe", "reference"):
            if args.vision_align_form == "describe":
                rows = corpus.description_rows(train)
            else:
                rows = corpus.sight_rows(train, asked)
                print(f"{len(rows)} reference-form alignment rows")

            def held_out_check() -> dict:
                return {"held_out_exact": described_exactly(model, test)}
        else:
            from avtrust.pretrain.thinker import accuracy

            names = sorted({n for shown in train.values() for n in shown})
            rows = corpus.instruction_rows(corpus.ask_on_screen(train, names))

            def held_out_check() -> dict:
                held_asked = corpus.ask_on_screen(test, names)
                return {"held_out_accuracy": accuracy(model, held_asked)["all"]}

        # the pipeline's alignment (warm-up, linear decay; sessions <= 22 ran a constant
        # rate with AdamW's default weight decay)
        settings = AlignSettings(
            steps=args.vision_align_steps,
            batch_size=8,
            learning_rate=args.vision_align_lr,
            warmup_steps=50,
        )
        summary = align(model, rows, {}, settings, args.seed)
        reached = {"loss_last": summary["loss_last"], **held_out_check()}
        print(f"vision aligned ({time.perf_counter() - start:.0f} s): {reached}")


def with_existence_rows(rows: list[dict], categories, corpus_dir: Path, out: Path, args):
    """``rows`` with the ``--visual-exist-rows`` / ``--sound-rows`` questions about their
    scenes and solos added (every instrument asked of each), and ``categories`` (None:
    all) widened to the added ones."""
    import vision_tower

    from avtrust.pretrain.corpus import ask_on_screen, description_rows, instruction_rows

    shown = vision_tower.on_screen(corpus_dir, rows)
    names = sorted({n for v in shown.values() for n in v})
    added = []
    if args.visual_exist_rows:
        silent = silenced(shown, out / "only_video")
        added.append(("Visual/Existential", ask_on_screen(silent, names)))
    if args.sound_rows:
        # natural clips only: what is shown there sounds, so "yes" is true
        sound = vision_tower.SOUND_QUESTION
        added.append(
            (
                "Audio/Existential",
                ask_on_screen(shown, names, sound, "Audio/Existential"),
            )
        )
    if args.describe_rows:
        described = description_rows(silenced(shown, out / "only_video"))
        added.append(("Visual/Description", described))
    for category, asked in added:
        rows = rows + (asked if category == "Visual/Description" else instruction_rows(asked))
        if category != "Visual/Description":  # trained when named (--visual-first-categories)
            categories = categories and (*categories, category)
        print(f"{len(asked)} {category} rows added ({len({q['media_path'] for q in asked})} clips)")
    return rows, categories


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True, help="a finished default run")
    parser.add_argument(
        "--corpus",
        type=Path,
        help="another pre-training corpus (pretrain_corpus's output; default: the run's)",
    )
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--warmup-steps", type=int, default=50)
    parser.add_argument("--categories", nargs="*", help="question categories (default: all)")
    parser.add_argument("--start-from-audio-llm", action="store_true")
    parser.add_argument(
        "--audio-tower-as-built",
        action="store_true",
        help="with --start-from-audio-llm: copy the audio LLM's language model only, "
        "keep the thinker's own (random) audio encoder",
    )
    parser.add_argument(
        "--language-model-as-built",
        action="store_true",
        help="with --start-from-audio-llm: copy the audio LLM's audio encoder only, keep "
        "the thinker's own (random) language model (to be taught sight first: "
        "--vision-align-steps)",
    )
    parser.add_argument("--freeze-towers", action="store_true")
    parser.add_argument(
        "--vision-head-epochs",
        type=int,
        default=0,
        help="first train the vision tower with a multi-label head (bench/vision_tower.py)",
    )
    parser.add_argument("--vision-head-lr", type=float, default=1e-2)
    parser.add_argument(
        "--vision-align-steps",
        type=int,
        default=0,
        help="then train it and the language model to say what the silent clip shows",
    )
    parser.add_argument("--vision-align-lr", type=float, default=2e-3)
    parser.add_argument(
        "--vision-align-form",
        choices=("describe", "exist", "reference"),
        default="describe",
        help='describe: "Which instruments are in the video?" -> "I see a X."; '
        'exist: "Is there a X in the video?" -> yes/no, every instrument asked; '
        "reference: the description asked in three plain wordings and in the score stage's "
        "reference form with each corpus question of the scene (the audio LLM's training)",
    )
    parser.add_argument(
        "--visual-exist-rows",
        action="store_true",
        help='add "Is there a X in the video?" rows on the silent training clips '
        "(every instrument asked) to the thinker's training rows",
    )
    parser.add_argument(
        "--sound-rows",
        action="store_true",
        help='add "Is there a X sound?" rows (AudioSet\'s kind) on the natural training '
        "scenes and solos to the thinker's training rows",
    )
    parser.add_argument(
        "--describe-rows",
        action="store_true",
        help='add "Which instruments are in the video?" -> "I see a X." rows on the silent '
        "training clips (category Visual/Description, trained where a phase names it: "
        "--categories or --visual-first-categories)",
    )
    parser.add_argument(
        "--visual-first",
        type=int,
        default=0,
        help="a first phase of that many steps on the added Visual/* rows alone "
        "(--describe-rows, --visual-exist-rows), before --steps on --categories",
    )
    parser.add_argument(
        "--visual-last",
        action="store_true",
        help="train the --visual-first phase after the --steps instead of before",
    )
    parser.add_argument(
        "--visual-first-apart",
        action="store_true",
        help="train the --visual-first phase as a training of its own (its own warm-up, "
        "decay and optimiser) instead of a phase of one schedule",
    )
    parser.add_argument(
        "--visual-first-categories",
        nargs="*",
        default=["Visual/Description"],
        help="the first phase's categories",
    )
    parser.add_argument(
        "--noisy-share",
        type=float,
        default=0.0,
        help="share of the training clips whose soundtrack gets noise (--noise-snr-db)",
    )
    parser.add_argument("--noise-snr-db", type=float, default=-5.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--trained",
        type=Path,
        help="measure this pre-trained thinker (a model folder, e.g. a run's "
        "resources/models/omni) instead of training one",
    )
    parser.add_argument(
        "--out", type=Path, help="the one-stream clips (default: <workdir>/results/thinker_probe)"
    )
    args = parser.parse_args()

    import torch

    from avtrust.models.registry import load
    from avtrust.pretrain import corpus, thinker
    from avtrust.pretrain.thinker_init import start_from_audio_llm

    torch.set_num_threads(1)
    work = args.workdir
    out = args.out or work / "results" / "thinker_probe"
    corpus_dir = args.corpus or work / "resources" / "pretrain" / "corpus"
    held_out = corpus.questions(corpus_dir, "held_out", args.seed, 8)
    m1 = work / "results" / "bench" / "avconfusebench" / "m1.parquet"
    if args.trained:
        report(load(args.trained, device="cpu"), held_out, m1, work, out)
        return
    model = load(work / "resources" / "pretrain" / "untrained" / "omni", device="cpu")
    if args.start_from_audio_llm:
        parts = tuple(
            part
            for part, kept in (
                ("language_model", args.language_model_as_built),
                ("audio_tower", args.audio_tower_as_built),
            )
            if not kept
        )
        start_from_audio_llm(model.model, work / "resources" / "models" / "audio_llm", parts)
    train_qs = corpus.questions(corpus_dir, "train", args.seed, 8)
    rows = corpus.instruction_rows(train_qs)
    if args.vision_head_epochs or args.vision_align_steps:
        train_vision(model, corpus_dir, train_qs, held_out, out, args)
        if m1.exists():
            said = yes_rate(model, m1_questions(m1, work))
            print(f"m1 Yes-rate before the existence training: {100 * said:.1f} %")
    if args.noisy_share:
        noisy = out / f"noisy_{args.noise_snr_db:g}dB"
        rows = with_noisy_clips(rows, args.noisy_share, args.noise_snr_db, noisy, args.seed)
    categories = tuple(args.categories) if args.categories else None
    if args.visual_exist_rows or args.sound_rows or args.describe_rows:
        rows, categories = with_existence_rows(rows, categories, corpus_dir, out, args)
    start = time.perf_counter()
    if args.visual_first and args.visual_first_apart:
        first = thinker.ThinkerSettings(
            steps=args.visual_first,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            warmup_steps=args.warmup_steps,
            freeze_towers=args.freeze_towers,
            categories=tuple(args.visual_first_categories),
        )
        losses = thinker.train(model, rows, first, args.seed)
        print(f"visual phase apart: loss {np.mean(losses[:10]):.3f} -> {np.mean(losses[-20:]):.3f}")
        if m1.exists():
            print(f"m1 Yes-rate after it: {100 * yes_rate(model, m1_questions(m1, work)):.1f} %")
        args.visual_first = 0
    phases = [(args.steps, categories)]
    if args.visual_first:
        visual = (args.visual_first, tuple(args.visual_first_categories))
        phases.insert(len(phases) if args.visual_last else 0, visual)
    settings = thinker.ThinkerSettings(
        steps=phases[0][0],
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        warmup_steps=args.warmup_steps,
        freeze_towers=args.freeze_towers,
        categories=phases[0][1],
        then=tuple({"steps": n, "categories": c} for n, c in phases[1:]),
    )
    losses = thinker.train(model, rows, settings, args.seed)
    rows = thinker.phase_union(rows, settings)
    print(
        f"{len(rows)} rows, {len(losses)} steps in {time.perf_counter() - start:.0f} s: "
        f"loss {np.mean(losses[:10]):.3f} -> {np.mean(losses[-20:]):.3f}"
    )
    report(model, held_out, m1, work, out)


def report(model, held_out: list[dict], m1: Path, work: Path, out: Path) -> None:
    """Print the trained thinker's held-out accuracy by category, its existence accuracy
    with each sense alone, and its m1 Yes-rates (as written and reworded)."""
    from pretrain_probe import soundtrack_file

    from avtrust.pretrain import thinker

    accuracy = thinker.accuracy(model, held_out[:120])
    print("held-out accuracy by category:", accuracy["by_category"])
    existence = [q for q in held_out if q["category"] == EXISTENCE]
    one_stream = {"audio": soundtrack_file, "video": silent_video}
    for keep in ("both", "audio", "video"):
        asked = existence
        if keep != "both":
            folder = out / f"only_{keep}"
            asked = [
                {**q, "media_path": str(one_stream[keep](Path(q["media_path"]), folder))}
                for q in existence
            ]
        share = thinker.accuracy(model, asked)["all"]
        print(f"held-out existence, {keep:5s} in the input: {100 * share:.1f} % ({len(asked)})")
    if m1.exists():
        asked = m1_questions(m1, work)
        print(f"m1 Yes-rate: {100 * yes_rate(model, asked):.1f} %")
        for name, reworded in m1_rewordings(asked).items():
            print(f"m1 Yes-rate, {name}: {100 * yes_rate(model, reworded):.1f} %")


if __name__ == "__main__":
    main()
