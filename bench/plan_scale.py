"""Question generation at paper scale: plan all 11 tasks, 600,000 samples, and write them.

The target: "600,000 generated questions written to Parquet; print seconds and
rows/s. Target: <= 30 s on 2 cores." Planning never touches media, so the input here is
built without any: manifests with tens of thousands of clip rows (paths that need not
exist) and the question annotations in the real datasets' formats, written by the
format writers of ``avtrust.datasets``. Sizes follow the real datasets (MUSIC-AVQA's
9,288 videos with ~46K questions, AVQA's ~57K questions, an AudioSet eval-sized
segment list) and shrink proportionally for smaller ``--rows``.

What is timed is what the ``plan_task`` rule does for every task: ``plan_task`` (read
the manifests and annotations, plan every sample) and ``write_parquet_atomic``. The
baseline, in the same run, writes the very same rows the plain pandas way
(``pandas.DataFrame(rows).to_parquet``), i.e. the cost of only storing the output.

    .venv/bin/python bench/plan_scale.py              # 600,000 rows, tasks one after another
    .venv/bin/python bench/plan_scale.py --jobs 2     # two tasks at a time, like --cores 2
    .venv/bin/python bench/plan_scale.py --rows 20000 --keep /tmp/scale

``build_inputs`` and ``plan_all`` are also used by tests/unit/test_plan_scale.py.
"""

from __future__ import annotations

import argparse
import copy
import math
import re
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from avtrust import data_files
from avtrust.bench.plan import plan_task
from avtrust.bench.samples import BENCHES
from avtrust.datasets import audioset, avqa, music_avqa
from avtrust.datasets.adapters import list_clips
from avtrust.datasets.index import MANIFEST_SCHEMA
from avtrust.io import write_json_atomic, write_parquet_atomic

REPO = Path(__file__).resolve().parents[1]
PAPER_ROWS = 600_000
TARGET_S = 30.0
# Samples per task at paper scale: 60,000 for each AVTrustBench task, 30,000 for each
# AV-ConfuseBench task; 600,000 in all. Smaller runs scale every count down.
PAPER_SPLIT = {("avtrustbench", task): 60_000 for task in BENCHES["avtrustbench"]} | {
    ("avconfusebench", "m1"): 30_000,
    ("avconfusebench", "m2"): 30_000,
}

# The 22 instruments of MUSIC-AVQA.
INSTRUMENTS = [
    "accordion", "acoustic_guitar", "bagpipe", "banjo", "bassoon", "cello", "clarinet",
    "congas", "drum", "electric_bass", "erhu", "flute", "guzheng", "piano", "pipa",
    "saxophone", "suona", "trumpet", "tuba", "ukulele", "violin", "xylophone",
]  # fmt: skip
NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five"]
# Qualifiers that multiply the few sound sources of attributes.yaml into a vocabulary
# as large as VGGSound's (AVQA, 309 classes) or AudioSet's (527 classes).
QUALIFIERS = [
    "", "distant", "loud", "small", "large", "old", "electric", "wild", "tiny", "muffled",
    "nearby", "echoing", "rapid", "slow", "soft", "heavy", "faint", "busy", "indoor",
    "outdoor", "metal", "wooden", "broken", "toy", "young", "angry", "giant", "hollow",
    "shrill", "deep",
]  # fmt: skip
# AVQA question types: (type, relation, option field, question).
AVQA_QUESTIONS = [
    ("Come From", "Both", "noun", "What is making the sound in the video?"),
    ("Which", "View", "noun", "Which object in the video is making the sound?"),
    ("Happening", "Both", "event", "What happened in the video?"),
    ("Why", "Sound", "event", "Why is there a sound in the video?"),
]


@dataclass(frozen=True)
class CorpusSize:
    """Clip counts of the synthetic manifests (paper scale by default)."""

    music_videos: int = 9_288  # MUSIC-AVQA
    questions_per_music_video: int = 5  # ~45.9K questions in MUSIC-AVQA
    avqa_clips: int = 28_700  # two questions each: ~57K, as AVQA
    audioset_clips: int = 20_371  # AudioSet eval segments
    sounds_per_type: int = 200
    avqa_classes: int = 309  # VGGSound
    audioset_classes: int = 527  # AudioSet

    @classmethod
    def for_rows(cls, rows: int) -> CorpusSize:
        """The paper's sizes scaled by ``rows / 600,000``, never below a workable minimum,
        and large enough that every task's share of ``rows`` (a tenth, m1/m2 a
        twentieth) exists as distinct candidates: planning caps a task at its supply.
        About half the music videos are multi-instrument scenes (m1), AVQA has two
        questions per clip (MCIT, ICIT), and one AudioSet clip in eight has two events with
        distinct attributes (CAT)."""
        f = rows / PAPER_ROWS
        paper = cls()
        return cls(
            music_videos=max(60, round(paper.music_videos * f), math.ceil(rows * 0.1)),
            avqa_clips=max(60, round(paper.avqa_clips * f), math.ceil(rows * 0.06)),
            audioset_clips=max(80, round(paper.audioset_clips * f), rows),
            sounds_per_type=max(2, round(paper.sounds_per_type * f)),
        )


@dataclass
class ScaleInput:
    """Everything ``plan_task`` needs, for every task."""

    root: Path
    config: dict
    manifests: dict[str, str]
    raw_dirs: dict[str, str]
    split: dict[tuple[str, str], int]
    size: CorpusSize


def split_rows(rows: int) -> dict[tuple[str, str], int]:
    """Samples per task: PAPER_SPLIT scaled to ``rows`` (largest remainder, exact sum)."""
    total = sum(PAPER_SPLIT.values())
    exact = {key: n * rows / total for key, n in PAPER_SPLIT.items()}
    out = {key: int(v) for key, v in exact.items()}
    by_remainder = sorted(exact, key=lambda k: (out[k] - exact[k], k))
    for key in by_remainder[: rows - sum(out.values())]:
        out[key] += 1
    return out


def _sound_classes() -> list[tuple[str, str, str]]:
    """(label, noun, verb) classes: attributes.yaml's sources, then qualified ones."""
    attrs = data_files.load("attributes")
    pairs = sorted({(a["noun"], a["verb"]) for a in attrs.values()})
    nouns = [(f"{q} {noun}".strip(), verb) for q in QUALIFIERS for noun, verb in pairs]
    return [(noun.capitalize(), noun, verb) for noun, verb in nouns]


# ------------------------------------------------------------------------- MUSIC-AVQA

_SLOT = re.compile("|".join(re.escape(s) for s in music_avqa.SLOTS))


def _slot_value(slot: str, instruments: list[str], rng: np.random.Generator) -> str:
    if slot == "<Object>":
        return instruments[int(rng.integers(len(instruments)))]
    choices = {
        "<LR>": ["left", "right"],
        "<LRer>": ["left", "right"],
        "<FL>": ["first", "last"],
        "<TH>": ["first", "second", "third"],
        "<LL>": ["louder", "quieter"],
        "<BA>": ["before", "after"],
    }[slot]
    return choices[int(rng.integers(len(choices)))]


def _music_answer(qtype: str, instruments: list[str], rng: np.random.Generator) -> str:
    """A plausible answer of the question type (planning never checks it against media)."""
    if qtype == "Counting":
        return NUMBER_WORDS[int(rng.integers(len(instruments) + 1))]
    if qtype in ("Existential", "Comparative"):
        return "yes" if rng.random() < 0.5 else "no"
    if qtype == "Location":
        places = ["left", "right", "middle", *instruments]
        return places[int(rng.integers(len(places)))]
    return instruments[int(rng.integers(len(instruments)))]  # Temporal


def _write_music_avqa(raw: Path, size: CorpusSize, rng: np.random.Generator) -> None:
    """Scenes of 1-3 instruments with stems, and MUSIC-AVQA questions about them."""
    templates = data_files.load("templates")["music_avqa_questions"]
    scenes, records = [], []
    for v in range(size.music_videos):
        k = int(rng.choice([1, 2, 3], p=[0.4, 0.4, 0.2]))
        instruments = [INSTRUMENTS[j] for j in rng.choice(len(INSTRUMENTS), k, replace=False)]
        video_id = f"{v:08d}"
        scenes.append(
            {
                "video_id": video_id,
                "instruments": instruments,
                "stems": [f"stems/{video_id}/{x}.wav" for x in instruments],
            }
        )
        usable = [t for t in templates if t["min_k"] <= k]
        n = min(size.questions_per_music_video, len(usable))
        for j in sorted(rng.choice(len(usable), n, replace=False)):
            t = usable[j]
            content = t["question"]
            records.append(
                {
                    "video_id": video_id,
                    "question_id": len(records),
                    "modality": t["modality"],
                    "qtype": t["qtype"],
                    "question_content": content,
                    "templ_values": [
                        _slot_value(s, instruments, rng) for s in _SLOT.findall(content)
                    ],
                    "answer": _music_answer(t["qtype"], instruments, rng),
                }
            )
    music_avqa.write_annotations(records, raw / "annotations" / "avqa-test.json")
    write_json_atomic(raw / "annotations" / "scenes.json", scenes)


# ------------------------------------------------------------------------------- AVQA


def _write_avqa(raw: Path, size: CorpusSize, rng: np.random.Generator) -> None:
    """One sound class per clip; a 'noun' and an 'event' question about each clip."""
    classes = _sound_classes()[: size.avqa_classes]
    options_of = {
        "noun": [noun.capitalize() for _, noun, _ in classes],
        "event": [f"A {noun} {verb}" for _, noun, verb in classes],
    }
    records = []
    for i in range(size.avqa_clips):
        c = int(rng.integers(len(classes)))
        video_name = audioset.clip_id(f"av{i:09d}", float(rng.integers(0, 300)))
        for qtype, relation, field, question in (
            AVQA_QUESTIONS[int(rng.integers(2))],
            AVQA_QUESTIONS[2 + int(rng.integers(2))],
        ):
            others = rng.choice(len(classes) - 1, 3, replace=False)
            chosen = [c, *(int(o) + (o >= c) for o in others)]  # the class and 3 others
            perm = [int(j) for j in rng.permutation(4)]
            records.append(
                {
                    "qa_id": len(records),
                    "video_id": video_name,
                    "question": question,
                    "options": [options_of[field][chosen[j]] for j in perm],
                    "answer_index": perm.index(0),
                    "question_type": qtype,
                    "question_relation": relation,
                }
            )
    avqa.write_annotations(records, raw / "annotations" / "val_qa.json")


# --------------------------------------------------------------------------- AudioSet


def _write_audioset(raw: Path, size: CorpusSize, rng: np.random.Generator) -> None:
    """One- and two-event segments; half the labels are classes that CAT can bind."""
    attrs = sorted(data_files.load("attributes"))
    extra = [label for label, _, _ in _sound_classes() if label not in attrs]
    names = attrs + extra[: size.audioset_classes - len(attrs)]
    mids = [f"/m/syn{i:04d}" for i in range(len(names))]
    rows = []
    for i in range(size.audioset_clips):
        k = 2 if rng.random() < 0.5 else 1
        picks = set()
        while len(picks) < k:  # common classes (those in attributes.yaml) half the time
            pool = len(attrs) if rng.random() < 0.5 else len(names)
            picks.add(int(rng.integers(pool)))
        start = float(rng.integers(0, 300))
        rows.append(
            {
                "ytid": f"as{i:09d}",
                "start_seconds": start,
                "end_seconds": start + 10.0,
                "labels": [mids[j] for j in sorted(picks)],
            }
        )
    audioset.write_segments(rows, raw / "annotations" / "eval_segments.csv")
    ontology = [
        {"id": mid, "name": name, "description": f"Synthetic {name}."}
        for mid, name in zip(mids, names, strict=True)
    ]
    audioset.write_ontology(ontology, raw / "annotations" / "ontology.json")


# -------------------------------------------------------------------------- manifests


def _manifest_row(dataset: str, clip_id: str, path: str, labels, stems, video: bool) -> dict:
    return {
        "clip_id": clip_id,
        "dataset": dataset,
        "path": path,
        "duration": 10.0,
        "has_audio": True,
        "has_video": video,
        "fps": 25.0 if video else None,
        "sample_rate": 16000,
        "width": 320 if video else None,
        "height": 240 if video else None,
        "labels": list(labels),
        "stems": list(stems),
    }


def _manifest_from_adapter(dataset: str, fmt: str, raw: Path) -> pa.Table:
    """The manifest the index stage would write if every listed clip were present."""
    rows = [
        _manifest_row(
            dataset,
            e.clip_id,
            str(raw / "videos" / f"{e.clip_id}.mp4"),
            e.labels,
            [str(s) for s in e.stems],
            video=True,
        )
        for e in list_clips(fmt, raw)
    ]
    return pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA)


def _sounds_manifest(raw: Path, sound_types: list[str], per_type: int) -> pa.Table:
    """The labelled-folder manifest of the replacement sounds (``<label>/<label>_i.wav``)."""
    rows = [
        _manifest_row(
            "sounds", f"{t}.{t}_{i:03d}", str(raw / t / f"{t}_{i:03d}.wav"), [t], [], False
        )
        for t in sound_types
        for i in range(per_type)
    ]
    return pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA)


def build_inputs(root: str | Path, rows: int = PAPER_ROWS, seed: int = 20250103) -> ScaleInput:
    """Annotations, manifests and config for planning ``rows`` samples, under ``root``."""
    root = Path(root)
    size = CorpusSize.for_rows(rows)
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["seed"] = seed
    split = split_rows(rows)
    for (bench, task), n in split.items():
        config["benchmark"][bench][task]["samples"] = n
    rng = np.random.default_rng(seed)
    writers = {"music_avqa": _write_music_avqa, "avqa": _write_avqa, "audioset": _write_audioset}
    manifests, raw_dirs = {}, {}
    for dataset, spec in config["datasets"].items():
        raw = root / "raw" / dataset
        raw_dirs[dataset] = str(raw)
        manifests[dataset] = str(root / "manifest" / f"{dataset}.parquet")
        if spec["format"] == "folder":
            sound_types = config["benchmark"]["avconfusebench"]["m2"]["sound_types"]
            table = _sounds_manifest(raw, sound_types, size.sounds_per_type)
        else:
            writers[spec["format"]](raw, size, rng)
            table = _manifest_from_adapter(dataset, spec["format"], raw)
        write_parquet_atomic(manifests[dataset], table)
    return ScaleInput(root, config, manifests, raw_dirs, split, size)


# ----------------------------------------------------------------------------- timing


def plan_one(inp: ScaleInput, bench: str, task: str, out_dir: Path) -> tuple[int, float, float]:
    """Plan one task and write it, as the plan_task rule does: (rows, plan s, write s)."""
    t0 = time.perf_counter()
    table = plan_task(bench, task, inp.config, inp.manifests, inp.raw_dirs)
    t1 = time.perf_counter()
    write_parquet_atomic(out_dir / bench / f"{task}.parquet", table)
    return table.num_rows, t1 - t0, time.perf_counter() - t1


def plan_all(inp: ScaleInput, out_dir: str | Path, jobs: int = 1) -> dict:
    """Plan and write every task, ``jobs`` tasks at a time (largest first).

    Returns {(bench, task): (rows, plan s, write s)} and the wall time under "wall".
    """
    out_dir = Path(out_dir)
    order = sorted(inp.split, key=lambda k: -inp.split[k])
    t0 = time.perf_counter()
    if jobs == 1:
        results = {key: plan_one(inp, *key, out_dir) for key in order}
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = {key: pool.submit(plan_one, inp, *key, out_dir) for key in order}
            results = {key: f.result() for key, f in futures.items()}
    results["wall"] = time.perf_counter() - t0
    return results


def pandas_baseline(inp: ScaleInput, out_dir: Path) -> float:
    """Seconds to write the same rows with ``pandas.DataFrame(rows).to_parquet``."""
    total = 0.0
    for bench, task in inp.split:
        rows = pq.read_table(out_dir / bench / f"{task}.parquet").to_pylist()  # untimed
        t0 = time.perf_counter()
        pd.DataFrame(rows).to_parquet(out_dir / f"pandas-{bench}-{task}.parquet")
        total += time.perf_counter() - t0
    return total


def _report(inp: ScaleInput, results: dict, jobs: int, baseline_s: float) -> None:
    wall = results.pop("wall")
    rows = sum(r[0] for r in results.values())
    print(f"{'task':<28}{'asked':>9}{'rows':>9}{'plan s':>9}{'write s':>9}{'rows/s':>11}")
    for (bench, task), (n, plan_s, write_s) in results.items():
        asked = inp.split[(bench, task)]
        rate = n / (plan_s + write_s)
        print(
            f"{bench + '/' + task:<28}{asked:>9,}{n:>9,}{plan_s:>9.2f}{write_s:>9.2f}{rate:>11,.0f}"
        )
    s = inp.size
    print(
        f"\ninput: {s.music_videos:,} MUSIC-AVQA videos, {s.avqa_clips:,} AVQA clips, "
        f"{s.audioset_clips:,} AudioSet clips, {5 * s.sounds_per_type:,} sounds"
    )
    print(f"planned and written: {rows:,} rows in {wall:.2f} s with {jobs} job(s)")
    print(f"  {rows / wall:,.0f} rows/s; {wall / TARGET_S:.2f} x the {TARGET_S:.0f} s target "
          f"({'met' if wall <= TARGET_S else 'MISSED'})")  # fmt: skip
    print(
        f"baseline, same rows via pandas.DataFrame(rows).to_parquet: {baseline_s:.2f} s, "
        f"{rows / baseline_s:,.0f} rows/s"
    )
    print(f"  planning + writing runs at {baseline_s / wall:.2f} x the baseline's rows/s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=PAPER_ROWS, help="samples over 11 tasks")
    parser.add_argument("--jobs", type=int, default=1, help="tasks planned at a time")
    parser.add_argument("--seed", type=int, default=20250103)
    parser.add_argument("--keep", type=Path, help="build in this folder and keep it")
    args = parser.parse_args(argv)
    root = args.keep or Path(tempfile.mkdtemp(prefix="plan_scale."))
    try:
        t0 = time.perf_counter()
        inp = build_inputs(root, args.rows, args.seed)
        print(f"built input (untimed) in {time.perf_counter() - t0:.1f} s under {root}")
        results = plan_all(inp, root / "plan", args.jobs)
        _report(inp, copy.copy(results), args.jobs, pandas_baseline(inp, root / "plan"))
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
