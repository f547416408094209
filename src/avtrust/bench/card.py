"""The dataset card of the Hugging Face export (``results/bench/hf/README.md``) and the
benchmark statistics table the Snakemake report shows.

The card says what a user of the folder needs without the workflow at hand: both
benchmarks and each task, every field with its type and meaning, how a sample was made,
which source datasets the build drew from (with their licences as their publishers
state them, and citations), the papers to cite, the counts per task and split, and the
known limits. Its YAML header declares one configuration per task so that
``datasets.load_dataset(folder, task)`` works offline.
"""

from __future__ import annotations

import pyarrow as pa
import yaml

from avtrust.bench.samples import BENCHES

BENCH_TEXT = {
    "avtrustbench": (
        "AVTrustBench",
        "AVTrustBench (Chowdhury et al., ICCV 2025) measures the reliability of audio-visual "
        "LLMs in three dimensions: adversarial attack (the options or one modality do not "
        "fit the clip), compositional reasoning (two clips in a row, sound attributes) and "
        "modality dependency (a stream is missing). Every sample is a multiple-choice "
        "question; the abstention answers are among the options.",
    ),
    "avconfusebench": (
        "AV-ConfuseBench",
        "AV-ConfuseBench (Ye et al., AAAI 2026) asks whether a model notices that what it "
        "hears does not match what it sees: a visible instrument that is muted (m1), or a "
        "soundtrack that was replaced by, or mixed with, an unrelated sound (m2).",
    ),
}

# task -> (dimension, how the sample is made, the expected answer)
TASK_TEXT = {
    "MCIT": (
        "adversarial",
        "a question about the clip whose correct option is removed from the options",
        '"None of the above"',
    ),
    "ICIT": (
        "adversarial",
        "a question whose options are all answers to another clip's question",
        "the irrelevant-options abstention (wording configurable)",
    ),
    "MVIT": (
        "adversarial",
        "the audio of clip 1 on the video of clip 2 (two clips with different labels)",
        '"Mismatch in audio and video"',
    ),
    "MAIT": (
        "adversarial",
        "the video of clip 1 with the audio of clip 2 (two clips with different labels)",
        '"Mismatch in audio and video"',
    ),
    "COT-Stitch": (
        "compositional",
        "clip 1 then clip 2, concatenated; the options are orders of their events",
        "the correct order",
    ),
    "COT-Swap": (
        "compositional",
        "[video 1 + audio 2] then [video 2 + audio 1]",
        '"Mismatch in audio and video"',
    ),
    "CAT": (
        "compositional",
        "options binding the clip's sound attributes (noun, verb) correctly or swapped",
        "the correct binding",
    ),
    "MAT": ("modality", "the clip with its audio stream removed", '"Audio is missing"'),
    "MVT": (
        "modality",
        "the clip with its video stream removed (audio only)",
        '"Visual is missing"',
    ),
    "m1": (
        "audio muted",
        "a multi-instrument scene with one visible instrument's stem left out of the mix; "
        '"Is there a/an {instrument} sound?"',
        '"no" (metrics: accuracy and the rate of "yes")',
    ),
    "m2": (
        "audio modified",
        "the soundtrack replaced (snr_db null) or mixed at snr_db with wind, bird, rain, "
        'drill or thunder; "Describe what you see and what you hear."',
        'open: "Based on the video... Based on the audio..." (judged 0-5 for each modality)',
    ),
}

FIELD_TEXT = {
    "id": "sample identifier, unique within the build",
    "bench": "avtrustbench or avconfusebench",
    "task": "the task (configuration) name",
    "source_dataset": "the configured dataset the clips come from (see Source datasets)",
    "source_ids": "ids of the source clips, in the order they were combined",
    "media_path": "the manipulated clip, relative to the workflow directory",
    "has_audio": "the clip has an audio stream",
    "has_video": "the clip has a video stream",
    "question": "the prompt given to the model",
    "options": "the answer options in the order shown (empty for open questions)",
    "answer": "the correct answer (an option's text, or the reference description for m2)",
    "answer_index": "position of the answer in options; -1 for open answers",
    "category": "question category (the source's question type, or the task's own)",
    "seed": "the seed the task's plan was drawn from: the same config and seed rebuild it",
    "instruments": "AV-ConfuseBench: the instruments in view",
    "muted_instrument": "m1: the instrument whose sound was removed",
    "sound_type": "m2: the sound put on the soundtrack",
    "snr_db": "m2: the mixing SNR in dB; null when the soundtrack was replaced outright",
}

# Source datasets by adapter format. Licences are quoted from the publishers' own pages;
# where a publisher states none we point to the source instead of guessing.
SOURCE_TEXT = {
    "music_avqa": {
        "name": "MUSIC-AVQA",
        "url": "https://gewu-lab.github.io/MUSIC-AVQA/",
        "licence": "not stated here: see the source (https://gewu-lab.github.io/MUSIC-AVQA/, "
        "https://github.com/GeWu-Lab/MUSIC-AVQA); the videos are YouTube videos whose "
        "rights stay with their owners",
        "citation": "Li et al., Learning to Answer Questions in Dynamic Audio-Visual "
        "Scenarios, CVPR 2022",
    },
    "avqa": {
        "name": "AVQA (videos from VGGSound)",
        "url": "https://mn.cs.tsinghua.edu.cn/avqa",
        "licence": "AVQA: see the source (https://mn.cs.tsinghua.edu.cn/avqa); VGGSound's "
        "annotations are published under CC BY 4.0 "
        "(https://www.robots.ox.ac.uk/~vgg/data/vggsound/); the videos are YouTube videos "
        "whose rights stay with their owners",
        "citation": "Yang et al., AVQA: A Dataset for Audio-Visual Question Answering on "
        "Videos, ACM Multimedia 2022 (doi:10.1145/3503161.3548291); Chen et al., "
        "VGGSound: A Large-scale Audio-Visual Dataset, ICASSP 2020",
    },
    "audioset": {
        "name": "AudioSet",
        "url": "https://research.google.com/audioset/",
        "licence": "the AudioSet annotations: CC BY 4.0, the ontology: CC BY-SA 4.0 "
        "(Google, https://research.google.com/audioset/download.html, "
        "https://github.com/audioset/ontology); the videos are YouTube videos whose "
        "rights stay with their owners",
        "citation": "Gemmeke et al., Audio Set: An Ontology and Human-Labeled Dataset for "
        "Audio Events, ICASSP 2017",
    },
    "folder": {
        "name": "a folder of labelled sounds",
        "url": None,
        "licence": "the folder's own: check the licence of every sound you put there",
        "citation": None,
    },
}
SYNTHETIC_TEXT = (
    "generated by the avtrust workflow (coloured shapes and synthesised timbres, written "
    "in the source's format); no third-party media"
)

CITATIONS = """```bibtex
@inproceedings{chowdhury2025avtrustbench,
  title     = {AVTrustBench: Assessing and Enhancing Reliability and Robustness in
               Audio-Visual LLMs},
  author    = {Chowdhury, Sanjoy and others},
  booktitle = {IEEE/CVF International Conference on Computer Vision (ICCV)},
  year      = {2025},
  eprint    = {2501.02135},
  archivePrefix = {arXiv}
}
@inproceedings{ye2026avconfusebench,
  title     = {When Eyes and Ears Disagree: Can MLLMs Discern Audio-Visual Confusion?},
  author    = {Ye and others},
  booktitle = {AAAI Conference on Artificial Intelligence},
  year      = {2026},
  eprint    = {2511.10059},
  archivePrefix = {arXiv}
}
```

Author lists are abridged to the first author's family name: take the full entries from
arXiv (2501.02135, 2511.10059)."""

LIMITS = [
    "Media are not in this folder: `media_path` is relative to this folder (it points "
    "into the build's `results/media/`); copy `results/media/` along with it, keeping "
    "the two side by side, to use the clips elsewhere.",
    "The `train` split is what the workflow trains SFT, DPO and CAVPref on (a seeded "
    "fraction of every task); evaluate on `test`. The papers release both benchmarks as "
    "test sets only.",
    "A build with synthetic sources (the workflow's default) is a small stand-in that "
    "exercises every task, not the papers' benchmark: its clips are generated shapes "
    "and tones, and its counts are far below the papers' (~600K AVTrustBench samples).",
    "m2 has no closed answer: it is scored by a judge (A-Acc, V-Acc, 0-5), which this "
    "folder does not include. Its `source_dataset` names the clips' source; the sounds "
    "put on the soundtrack come from the dataset the configuration names for them.",
    "Abstention wordings and question templates follow the papers but are "
    "configurable; results are comparable only between builds with the same wordings.",
    "Clips from YouTube that could not be downloaded are left out, so two builds of "
    "the real sources at different times may differ in their samples.",
]


def size_category(n: int) -> str:
    """The Hub's size bucket of ``n`` samples."""
    for limit, name in [
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
        (10_000_000, "1M<n<10M"),
    ]:
        if n < limit:
            return name
    return "10M<n<100M"


def arrow_type(t: pa.DataType) -> str:
    """A column type in the `datasets` spelling (string, bool, int32, list<string>)."""
    if pa.types.is_list(t):
        return f"list<{arrow_type(t.value_type)}>"
    return {"bool": "bool", "double": "float64"}.get(str(t), str(t))


SPLITS = ("train", "test")


def statistics(tables: dict[str, pa.Table]) -> list[dict]:
    """One row per task and split (of its ``split`` column; a split without samples is
    left out): bench, task, split, samples, source datasets, seeds, and the samples with
    an audio / video stream."""
    rows = []
    for task, table in tables.items():
        bench = next(b for b, ts in BENCHES.items() if task in ts)
        every = table.to_pylist()
        for split in SPLITS:
            part = [r for r in every if r["split"] == split]
            if not part:
                continue
            rows.append(
                {
                    "bench": bench,
                    "task": task,
                    "split": split,
                    "samples": len(part),
                    "source_datasets": ", ".join(sorted({r["source_dataset"] for r in part})),
                    "seeds": ", ".join(str(v) for v in sorted({r["seed"] for r in part})),
                    "with_audio": sum(bool(r["has_audio"]) for r in part),
                    "with_video": sum(bool(r["has_video"]) for r in part),
                }
            )
    return rows


def split_file(task: str, split: str) -> str:
    """Where a task's split lies inside the export folder."""
    return f"data/{task}/{split}.parquet"


def front_matter(stats: list[dict], total: int) -> dict:
    """The card's YAML metadata: the Hub's dataset fields and one config per task, with
    the task's splits."""
    splits: dict[str, list[str]] = {}
    for r in stats:
        splits.setdefault(r["task"], []).append(r["split"])
    return {
        "pretty_name": "AVTrustBench and AV-ConfuseBench (avtrust build)",
        "language": ["en"],
        "license": "other",
        "license_name": "source-datasets",
        "task_categories": ["visual-question-answering", "multiple-choice"],
        "tags": ["audio-visual", "benchmark", "reliability", "hallucination"],
        "size_categories": [size_category(total)],
        "configs": [
            {
                "config_name": t,
                "data_files": [{"split": sp, "path": split_file(t, sp)} for sp in task_splits],
            }
            for t, task_splits in splits.items()
        ],
    }


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def dataset_card(tables: dict[str, pa.Table], datasets: dict[str, dict]) -> str:
    """The card text for the task tables ``tables`` (task -> Arrow table, in config
    order) built from the configured ``datasets`` (name -> {format, source})."""
    tasks = list(tables)
    stats = statistics(tables)
    header = yaml.safe_dump(front_matter(stats, sum(r["samples"] for r in stats)), sort_keys=False)
    parts = [f"---\n{header}---\n", "# AVTrustBench and AV-ConfuseBench (avtrust build)\n"]
    parts.append(
        "Built by the avtrust workflow from raw videos: every sample's manipulation is "
        "fixed by the task's seed, so the same configuration rebuilds the same files. One "
        "configuration per task, with the workflow's `train` and `test` splits "
        "(AV-ConfuseBench, which nothing trains on: `test` only):\n\n"
        "```python\nfrom datasets import load_dataset\n"
        f'ds = load_dataset("results/bench/hf", "{tasks[0]}", split="test")\n```\n'
    )
    for bench, (name, text) in BENCH_TEXT.items():
        bench_tasks = [t for t in tasks if t in BENCHES[bench]]
        if not bench_tasks:
            continue
        rows = [[f"`{t}`", *TASK_TEXT[t]] for t in bench_tasks]
        parts.append(
            f"## {name}\n\n{text}\n\n"
            + _table(["task", "dimension", "sample (how it is made)", "expected answer"], rows)
        )
    schema = next(iter(tables.values())).schema
    fields = [[f"`{f.name}`", arrow_type(f.type), FIELD_TEXT.get(f.name, "")] for f in schema]
    parts.append(
        "## Fields\n\nEvery configuration has the same columns (AV-ConfuseBench's own are "
        "null for AVTrustBench).\n\n" + _table(["field", "type", "meaning"], fields)
    )
    parts.append(
        "## How the samples were made\n\nThe workflow probes every source clip, plans "
        "each task from its seed (which clips, pairings and option orders; mismatched and "
        "stitched pairs never share a label), then manipulates the media with ffmpeg: "
        "strip a stream, swap audio and video between clips, concatenate clips, remix "
        "the stems without one instrument, or replace / mix the soundtrack. "
        "Multiple-choice distractors are of the answer's kind (yes/no, number, "
        "instrument, location, event) so no option can be ruled out by its type alone. "
        "Samples whose manipulation failed are left out and listed in "
        "`results/bench/<bench>/<task>.rejects.parquet`.\n\n"
        + _table(
            ["task", "split", "samples", "source datasets", "seeds", "with audio", "with video"],
            [
                [
                    f"`{r['task']}`",
                    r["split"],
                    r["samples"],
                    r["source_datasets"],
                    r["seeds"],
                    r["with_audio"],
                    r["with_video"],
                ]
                for r in stats
            ],
        )
    )
    used = sorted({d for r in stats for d in r["source_datasets"].split(", ")})
    source_rows = []
    for name in used:
        spec = datasets.get(name)
        if spec is None:
            source_rows.append([f"`{name}`", "not in this configuration", "see the source", ""])
            continue
        info = SOURCE_TEXT[spec["format"]]
        if spec["source"] == "synthetic":
            source_rows.append(
                [f"`{name}`", f"{info['name']} format", SYNTHETIC_TEXT, "none needed"]
            )
            continue
        link = f"[{info['name']}]({info['url']})" if info["url"] else info["name"]
        source_rows.append([f"`{name}`", link, info["licence"], info["citation"] or ""])
    parts.append(
        "## Source datasets and licences\n\nThe annotations and media of each source keep "
        "their own licence; this build's questions and manipulated clips derive from "
        "them (hence `license: other`).\n\n"
        + _table(["dataset", "source", "licence", "cite"], source_rows)
    )
    parts.append(f"## Citation\n\nPlease cite the benchmarks' papers:\n\n{CITATIONS}\n")
    parts.append("## Known limits\n\n" + "".join(f"- {item}\n" for item in LIMITS))
    return "\n".join(parts)
