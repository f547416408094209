"""The pre-training corpus and the thinker's instruction rows drawn from it.

The corpus is the synthetic MUSIC-AVQA world (:mod:`avtrust.datasets.synthetic`) drawn
from the pre-training seed, with its videos named ``pretrain_*``: natural, synchronised
scenes (every visible instrument sounds) whose questions have exact answers; and, in
the same folder, ``event_clips`` AVQA-style single-event clips (a dog barks, a siren
wails; ``pretrain_avqa*``, questions in AVQA's files), so that the audio models also
learn the sounds of the AVQA and AudioSet clips they later describe. The clip
geometry (duration, frame rate, size, sample rate) is the benchmarks' own, so the model
sees clips like those it is later evaluated on, but never one of them.

Each scene is asked ``rounds`` draws of the MUSIC-AVQA templates (other instruments,
sides, orders each time), so that a few hundred clips give thousands of questions.
Each question becomes rows in the evaluation's own prompt forms
(:func:`avtrust.evaluate.infer.prompt_for`): yes/no questions answered ``yes``/``no``;
multiple-choice ones (the answer plus same-kind distractors, as the QA sets draw them)
both answered by the option's letter and, in the option-likelihood form, by its text.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from avtrust import data_files
from avtrust.bench.answer_kinds import Distractors
from avtrust.bench.samples import derive_seed
from avtrust.datasets import music_avqa
from avtrust.datasets.synthetic import CLIP_SIZES, Scene, generate, rng_for, scene_questions
from avtrust.evaluate.parse import LETTERS
from avtrust.evaluate.prompts import prompt_for, task_kind

PathLike = str | os.PathLike
PREFIX = "pretrain"  # the corpus's video names: pretrain_scene_0000, pretrain_solo_...
EVENT_PREFIX = "pretrain_avqa"  # its event clips: pretrain_avqa0000000_000123
DISTRACTORS = 3
# The corpus keys taken from the benchmarks' `corpus` section (the world's geometry).
SHARED_KEYS = (*CLIP_SIZES, "instruments_per_scene", "onset_step_s")
FILES = {"train": "avqa-train.json", "held_out": "avqa-test.json"}
EVENT_FILES = {"train": "train_qa.json", "held_out": "val_qa.json"}  # AVQA's names
# AVQA's question type whose answer names what makes the sound ("Dog", "Man").
SOURCE_QUESTION = "Come From"
# Video-only copies of the scenes and solos (the picture stream copied): what the vision
# tower's pre-training sees, and the clips the thinker is asked what it sees on.
SILENT = "silent"
# Questions about the picture alone, asked of the silent copies: whether an instrument
# is on screen (every instrument of the world asked of every clip; the visual questions
# real vision-language models are tuned on), and which ones are.
VISUAL_QUESTION = "Is there a {} in the video?"
VISUAL_CATEGORY = "Visual/Existential"
DESCRIBE_QUESTION = "Which instruments are in the video?"
DESCRIBE_CATEGORY = "Visual/Description"
# Plain ways of asking what a silent clip shows (the first is the corpus's own), as the
# audio LLM is asked what it hears in several wordings.
SIGHT_WORDINGS = (
    DESCRIBE_QUESTION,
    "What instruments can be seen in this video?",
    "Look at the video. Which instruments are shown?",
)


def corpus_settings(corpus: dict, pretrain_corpus: dict) -> dict:
    """The generator's ``corpus`` for the pre-training set: the benchmarks' geometry with
    the pre-training counts; ``held_out_fraction`` of the videos ask the held-out
    questions the pre-training reports its accuracy on."""
    out = {k: corpus[k] for k in SHARED_KEYS}
    out["scenes"] = pretrain_corpus["scenes"]
    out["solos_per_instrument"] = pretrain_corpus["solos_per_instrument"]
    out["qa_train_fraction"] = 1.0 - pretrain_corpus["held_out_fraction"]
    out["avqa_clips"] = pretrain_corpus["event_clips"]
    return out


def generate_corpus(
    raw_dir: PathLike, corpus: dict, media: dict, seed: int, workers: int = 1
) -> None:
    """Write the pre-training corpus (``corpus`` from :func:`corpus_settings`), ``workers``
    clips at once (the same files whatever their number)."""
    generate("music_avqa", raw_dir, corpus, media, seed, prefix=PREFIX, workers=workers)
    if corpus["avqa_clips"]:
        generate("avqa", raw_dir, corpus, media, seed, prefix=EVENT_PREFIX, workers=workers)
    write_silent_copies(raw_dir, workers)


def write_silent_copies(raw_dir: PathLike, workers: int = 1) -> None:
    """Each scene's and solo's clip without its soundtrack, into ``silent/``."""
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    from avtrust.media.manipulate import strip_audio

    raw = Path(raw_dir)

    def write(entry: dict) -> None:
        video = entry["video_id"]
        strip_audio(raw / "videos" / f"{video}.mp4", silent_clip(raw, video), encode=())

    entries = scenes(raw)
    progress = tqdm(total=len(entries), desc="silent copies", unit="clip")
    with ThreadPoolExecutor(max(1, workers)) as pool, progress:
        for _ in pool.map(write, entries):  # in order; the first failure is raised
            progress.update()


def silent_clip(raw_dir: PathLike, video_id: str) -> Path:
    return Path(raw_dir) / SILENT / f"{video_id}.mp4"


def clips(raw_dir: PathLike) -> list[Path]:
    """Every clip of the corpus: its videos (scenes, solos, event clips), then their
    silent copies, each in name order."""
    raw = Path(raw_dir)
    return sorted((raw / "videos").glob("*.mp4")) + sorted((raw / SILENT).glob("*.mp4"))


def event_clips(raw_dir: PathLike) -> dict[str, list[dict]]:
    """part -> the event clips its AVQA file asks about: {video_id, media_path, source
    (what makes the sound, lower case: "dog"), labels (the clip's answers, sorted, as the
    index labels an AVQA clip), pairs ((question, answer) of each of its questions)}.
    Empty parts for a corpus without event clips."""
    from avtrust.datasets import avqa

    raw = Path(raw_dir)
    out: dict[str, list[dict]] = {}
    for part, name in EVENT_FILES.items():
        path = raw / "annotations" / name
        frame = avqa.read_annotations(path) if path.is_file() else None
        out[part] = [] if frame is None else _event_entries(raw, frame)
    return out


def _event_entries(raw: Path, frame) -> list[dict]:
    entries = []
    for video, rows in frame.groupby("video_id", sort=True):
        sources = rows.loc[rows["question_type"] == SOURCE_QUESTION, "answer"].unique()
        if len(sources) != 1:
            raise ValueError(
                f"pre-training corpus: event clip {video} needs one {SOURCE_QUESTION!r} "
                f"answer naming its sound, not {list(sources)}"
            )
        entries.append(
            {
                "video_id": video,
                "media_path": str(raw / "videos" / f"{video}.mp4"),
                "source": str(sources[0]).lower(),
                "labels": sorted(set(rows["answer"])),
                "pairs": list(zip(rows["question"], rows["answer"], strict=True)),
            }
        )
    return entries


def scenes(raw_dir: PathLike) -> list[dict]:
    """``annotations/scenes.json``: every clip's video_id, instruments (left to right),
    stems, onsets and gains."""
    return json.loads((Path(raw_dir) / "annotations" / "scenes.json").read_text("utf-8"))


def clip_parts(raw_dir: PathLike) -> dict[str, str]:
    """video_id -> the part (train | held_out) whose annotation file asks about it; the
    held-out clips are the ones every pre-training reports its held-out figures on."""
    part_of = {}
    for part, name in FILES.items():
        for video in music_avqa.read_annotations(Path(raw_dir) / "annotations" / name)["video_id"]:
            part_of[video] = part
    return part_of


def _asked(raw: Path, seed: int, rounds: int) -> dict[str, list[dict]]:
    """Every scene's questions, ``rounds`` draws of the MUSIC-AVQA templates each
    (:func:`avtrust.datasets.synthetic.scene_questions`: answers exact from the scene),
    duplicates dropped; per part, by the videos its annotation file asks about."""
    templates = data_files.load("templates")["music_avqa_questions"]
    part_of = clip_parts(raw)
    out: dict[str, list[dict]] = {part: [] for part in FILES}
    for entry in scenes(raw):
        video = entry["video_id"]
        if video not in part_of:
            continue
        scene = Scene(video, entry["instruments"], entry["onsets"], entry["gains"])
        seen = set()
        for r in range(rounds):
            for record in scene_questions(scene, rng_for(seed, PREFIX, video, r), templates):
                question = music_avqa.fill_template(
                    record["question_content"], record["templ_values"]
                )
                if (question, record["answer"]) in seen:
                    continue
                seen.add((question, record["answer"]))
                out[part_of[video]].append(
                    {
                        "video_id": video,
                        "question": question,
                        "template": record["question_content"],
                        "answer": record["answer"],
                        "category": f"{record['modality']}/{record['qtype']}",
                    }
                )
    return out


def questions(raw_dir: PathLike, part: str, seed: int, rounds: int = 1) -> list[dict]:
    """The questions of ``part`` (train | held_out), each with its clip, options (answer
    and distractors of its kind, shuffled with ``seed``) and the answer's index."""
    if part not in FILES:
        raise ValueError(f"unknown pre-training part {part!r} ({', '.join(FILES)})")
    raw = Path(raw_dir)
    asked = _asked(raw, seed, rounds)
    every = [q for qs in asked.values() for q in qs]
    distractors = Distractors([q["answer"] for q in every], [q["template"] for q in every])
    rng = np.random.default_rng(derive_seed(seed, "pretrain", part))
    out = []
    for q in asked[part]:
        chosen = distractors.draw(q["answer"], DISTRACTORS, rng, template=q["template"])
        options = [[q["answer"], *chosen][j] for j in rng.permutation(len(chosen) + 1)]
        out.append(
            {
                "media_path": str(raw / "videos" / f"{q['video_id']}.mp4"),
                "video_id": q["video_id"],
                "question": q["question"],
                "category": q["category"],
                "options": options,
                "answer_index": options.index(q["answer"]),
            }
        )
    return out


def answer_forms(q: dict) -> list[tuple[str, list[str]]]:
    """(prompt, candidate responses) of each form a question is asked in; the right
    response of each is at ``q["answer_index"]``."""
    options = q["options"]
    if task_kind(options) == "yes_no":
        return [(prompt_for(q["question"], options), [o.lower() for o in options])]
    return [
        (prompt_for(q["question"], options, "generate"), list(LETTERS[: len(options)])),
        (prompt_for(q["question"], options, "loglik"), list(options)),
    ]


# Sentences a question may come after (true of every natural clip, or instructions), so
# that the thinker does not take a sentence before the question for part of it: the
# benchmarks' questions come after preambles it is never trained on ("This is a video of
# audio corruption where ..."), which a model only ever asked bare questions reads as
# changing the question.
PREAMBLES = (
    "This is a video of a music performance.",
    "This is a video of musicians playing their instruments.",
    "Watch the video and listen to its sound.",
    "This clip has a picture and a soundtrack.",
    "Answer the question about this clip.",
    "This video was recorded with a camera and a microphone.",
)


def with_preambles(qs: list[dict], share: float, seed: int) -> list[dict]:
    """Copies of ``share`` of ``qs`` (drawn with ``seed``, in their order), each asked
    after one of :data:`PREAMBLES`."""
    rng = np.random.default_rng(derive_seed(seed, "preambles"))
    chosen = sorted(rng.choice(len(qs), int(round(share * len(qs))), replace=False).tolist())
    said = rng.integers(len(PREAMBLES), size=len(chosen))
    return [
        {**qs[i], "question": f"{PREAMBLES[k]} {qs[i]['question']}"}
        for i, k in zip(chosen, said, strict=True)
    ]


def instruction_rows(qs: list[dict]) -> list[dict]:
    """Training rows {media_path, prompt, response, category} of questions from
    :func:`questions`."""
    rows = []
    for q in qs:
        for prompt, candidates in answer_forms(q):
            rows.append(
                {
                    "media_path": q["media_path"],
                    "prompt": prompt,
                    "response": candidates[q["answer_index"]],
                    "category": q["category"],
                }
            )
    return rows


def on_screen(raw_dir: PathLike, part: str) -> dict[str, list[str]]:
    """The silent copies of ``part``'s scenes and solos -> the instruments each shows
    (left to right). A corpus written before the copies were is an error naming them."""
    raw = Path(raw_dir)
    part_of = clip_parts(raw)
    out = {}
    for entry in scenes(raw):
        if part_of.get(entry["video_id"]) == part:
            clip = silent_clip(raw, entry["video_id"])
            if not clip.is_file():
                raise FileNotFoundError(
                    f"pre-training corpus {raw}: no silent copy {clip} (a corpus written "
                    "before they were; delete the corpus to have it written again)"
                )
            out[str(clip)] = entry["instruments"]
    return out


def visual_questions(raw_dir: PathLike, part: str) -> list[dict]:
    """:data:`VISUAL_QUESTION` about every instrument of the corpus asked of every silent
    scene and solo of ``part`` (yes when it is on screen), in :func:`questions`' form."""
    raw = Path(raw_dir)
    names = sorted({n for entry in scenes(raw) for n in entry["instruments"]})
    return ask_on_screen(on_screen(raw, part), names)


def ask_on_screen(
    shown: dict[str, list[str]],
    names: list[str],
    template: str = VISUAL_QUESTION,
    category: str = VISUAL_CATEGORY,
) -> list[dict]:
    """Yes/no questions in :func:`questions`' form, ``template`` filled with every
    instrument of ``names`` and asked of every clip of ``shown`` (path -> the instruments
    it shows), "yes" when the clip shows it."""
    return [
        {
            "media_path": clip,
            "video_id": Path(clip).stem,
            "question": template.format(name),
            "category": category,
            "options": ["yes", "no"],
            "answer_index": 0 if name in instruments else 1,
        }
        for clip, instruments in shown.items()
        for name in names
    ]


def description(instruments: list[str]) -> str:
    """What a silent clip shows, as the thinker learns to say it: "I see a cello and a
    flute." (each instrument once, in alphabetical order)."""
    return "I see " + " and ".join(f"a {n}" for n in sorted(set(instruments))) + "."


def description_rows(shown: dict[str, list[str]]) -> list[dict]:
    """Training rows asking :data:`DESCRIBE_QUESTION` of every silent clip of ``shown``
    (path -> the instruments it shows, :func:`on_screen`), answered with
    :func:`description`."""
    return [
        {
            "media_path": clip,
            "prompt": prompt_for(DESCRIBE_QUESTION, [], "generate"),
            "response": description(instruments),
            "category": DESCRIBE_CATEGORY,
        }
        for clip, instruments in shown.items()
    ]


def sight_rows(shown: dict[str, list[str]], asked: list[dict]) -> list[dict]:
    """What the thinker is taught to see before anything else (the vision job's
    alignment), in the audio LLM's training form: for each silent clip of ``shown`` and
    each question ``asked`` of its scene (:func:`questions`), one row in the score
    stage's reference form (the question and its right answer in the instruction) and
    one in a plain wording (:data:`SIGHT_WORDINGS` in turn), both answered with the
    clip's :func:`description`. The reference form asks what is heard; answered on a
    silent clip with what is seen, it teaches the language model that the picture
    answers it, the bias natural clips (where the two agree) leave untested."""
    from avtrust.scoring.reasoning import reference_instruction

    by_video: dict[str, list[dict]] = {}
    for q in asked:
        by_video.setdefault(q["video_id"], []).append(q)
    rows = []
    for clip, instruments in shown.items():
        for i, q in enumerate(by_video.get(Path(clip).stem, [])):
            answer = q["options"][q["answer_index"]]
            for prompt in (
                reference_instruction(q["question"], answer),
                prompt_for(SIGHT_WORDINGS[i % len(SIGHT_WORDINGS)], [], "generate"),
            ):
                rows.append(
                    {
                        "media_path": clip,
                        "prompt": prompt,
                        "response": description(instruments),
                        "category": DESCRIBE_CATEGORY,
                    }
                )
    return rows
