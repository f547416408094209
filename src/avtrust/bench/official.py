"""Exports to (and reads from) the official JSON layouts of the two benchmarks.

AVTrustBench (Chowdhury et al., ICCV 2025; github.com/schowdhury671/avtrustbench-).
What the release shows (``datagen.py``, which rebuilds the perturbed media from the JSONs):
files ``AVTrustBench-10K/<TASK>/<src>/instruct_test_<TASK>.json`` (MAIT and MVIT under
``avqa/``, MAT and MVT under ``music_avqa/``), each a JSON list of records whose ``video``
field is the source clip id, or ``"id1#id2"`` for two-clip tasks, media being ``<id>.mp4``.
For MAIT the output keeps the video of ``id1`` and takes the audio of ``id2``; for MVIT it
keeps the audio of ``id1`` and the video of ``id2``. The release puts COT-Stitch/COT-Swap
directly under the task folder (no ``<src>``) and spells their files
``instruct_test_COT_Stitch.json`` / ``instruct_test_COT_Swap.json``; so does
:func:`avtrustbench_export_path`. The other fields of a record are not public (the JSONs are
on a SharePoint link, "dataset details coming soon"); the file name suggests a LLaVA-style
instruction file, so records here carry ``id``, ``video`` and ``conversations`` (a human turn
with the question and lettered options, a gpt turn with the lettered answer) plus explicit
``task, question, options, answer, answer_index`` so that nothing has to be parsed back.

AV-ConfuseBench (Ye et al., AAAI 2026, arXiv 2511.10059; github.com/rikeilong/
AudioVisual_Confusion, ``AVConfuseBench/avconfusebench_test_m{1,2}.json``), verified on the
released files: a JSON list, two-space indent, non-ASCII characters kept, no final newline.
m1 records are ``{video_id: "000001", question, answer: "no", instruments: "violin, cello",
instruments_len: "two"}`` (instruments in scene order, not sorted); m2 records are
``{video_id, filename: "combined_000001_bird.mp4", question, sound_type, annotation}`` with
sound types bird, drill, rain, thunderstorm, wind. (The repository README shows
``instruments`` as a list and ``instruments_len`` as an int; the readers accept both.)
"""

from __future__ import annotations

import os
import re
import string
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from avtrust.datasets.records import (
    annotation_error,
    dump_json,
    load_json_records,
    records_of,
    require,
    require_str_list,
)
from avtrust.io import write_text_atomic

OPTION_LETTERS = string.ascii_uppercase
VIDEO_TOKEN = "<video>"
ANSWER_INSTRUCTION = "Answer with the option's letter from the given choices directly."
NUMBER_WORDS: dict[int, str] = dict(
    enumerate("one two three four five six seven eight nine ten".split(), start=1)
)
_OPTION_RE = re.compile(r"^\(([A-Z])\) (.*)$")
_LETTER_RE = re.compile(r"\(([A-Z])\)(?:\s.*)?|([A-Z])[.)]?", re.DOTALL)

Samples = Iterable[Mapping[str, Any]] | pd.DataFrame


# --------------------------------------------------------------------------- AVTrustBench


def avtrustbench_prompt(question: str, options: list[str]) -> str:
    """The human turn: video token, question, ``(A) option`` lines, answer instruction."""
    lines = [f"({OPTION_LETTERS[i]}) {option}" for i, option in enumerate(options)]
    return "\n".join([VIDEO_TOKEN, question, *lines, ANSWER_INSTRUCTION])


def avtrustbench_export_path(root: str | os.PathLike, task: str, src: str) -> Path:
    """Where the release keeps a task's file.

    ``root/AVTrustBench/<task>/<src>/instruct_test_<task>.json``, except the COT tasks,
    which the release keeps directly under the task folder with an underscore in the
    file name (``COT-Stitch/instruct_test_COT_Stitch.json``).
    """
    if task.startswith("COT-"):
        return Path(root) / "AVTrustBench" / task / f"instruct_test_{task.replace('-', '_')}.json"
    return Path(root) / "AVTrustBench" / task / src / f"instruct_test_{task}.json"


def _source_ids(sample: Mapping[str, Any], path: str | os.PathLike, index: int) -> list[str]:
    ids = require_str_list(sample, "source_ids", path, index)
    if len(ids) not in (1, 2) or any(not i or "#" in i for i in ids):
        raise annotation_error(path, index, "source_ids", f"need 1 or 2 ids without '#': {ids}")
    return ids


def _choice(
    sample: Mapping[str, Any], path: str | os.PathLike, index: int
) -> tuple[list[str], int, str]:
    options = require_str_list(sample, "options", path, index)
    if not 2 <= len(options) <= len(OPTION_LETTERS):
        raise annotation_error(path, index, "options", f"need 2..26 options, got {len(options)}")
    answer_index = require(sample, "answer_index", int, path, index)
    if not 0 <= answer_index < len(options):
        raise annotation_error(
            path, index, "answer_index", f"{answer_index} out of range for {len(options)} options"
        )
    answer = require(sample, "answer", str, path, index)
    if answer != options[answer_index]:
        raise annotation_error(
            path, index, "answer", f"{answer!r} is not option {answer_index} of {options}"
        )
    return options, answer_index, answer


def avtrustbench_record(
    sample: Mapping[str, Any], *, path: str | os.PathLike = "<sample>", index: int = 0
) -> dict[str, Any]:
    """One release record from a sample (id, task, source_ids, question, options, answer,
    answer_index); ``path``/``index`` only label error messages."""
    sample_id = require(sample, "id", (str, int), path, index)
    task = require(sample, "task", str, path, index)
    source_ids = _source_ids(sample, path, index)
    question = require(sample, "question", str, path, index)
    options, answer_index, answer = _choice(sample, path, index)
    letter = OPTION_LETTERS[answer_index]
    return {
        "id": sample_id,
        "video": "#".join(source_ids),
        "conversations": [
            {"from": "human", "value": avtrustbench_prompt(question, options)},
            {"from": "gpt", "value": f"({letter}) {answer}"},
        ],
        "task": task,
        "question": question,
        "options": options,
        "answer": answer,
        "answer_index": answer_index,
    }


def write_avtrustbench_json(samples: Samples, path: str | os.PathLike) -> Path:
    """Write ``instruct_test_<TASK>.json`` (record order kept; ids must be unique)."""
    records = [
        avtrustbench_record(sample, path=path, index=i)
        for i, sample in enumerate(records_of(samples))
    ]
    seen: set[Any] = set()
    for index, record in enumerate(records):
        if record["id"] in seen:
            raise annotation_error(path, index, "id", f"duplicate id {record['id']!r}")
        seen.add(record["id"])
    return write_text_atomic(path, dump_json(records))


def _parse_prompt(text: str) -> tuple[str, list[str]] | None:
    """Question and options back from :func:`avtrustbench_prompt` text, or None."""
    lines = text.split("\n")
    if lines and lines[0] == VIDEO_TOKEN:
        lines = lines[1:]
    if lines and lines[-1] == ANSWER_INSTRUCTION:
        lines = lines[:-1]
    first = next((i for i, line in enumerate(lines) if _OPTION_RE.match(line)), None)
    if first is None:
        return None
    matches = [_OPTION_RE.match(line) for line in lines[first:]]
    if any(m is None or m.group(1) != OPTION_LETTERS[i] for i, m in enumerate(matches)):
        return None
    return "\n".join(lines[:first]), [m.group(2) for m in matches]


def _read_avtrustbench_record(
    record: Mapping[str, Any], path: str | os.PathLike, index: int
) -> dict[str, Any]:
    sample_id = require(record, "id", (str, int), path, index)
    video = require(record, "video", str, path, index)
    source_ids = video.split("#")
    if len(source_ids) not in (1, 2) or not all(source_ids):
        raise annotation_error(path, index, "video", f"expected 'id' or 'id1#id2', got {video!r}")
    turns = require(record, "conversations", list, path, index)
    if len(turns) < 2 or not all(
        isinstance(t, dict) and isinstance(t.get("value"), str) for t in turns[:2]
    ):
        raise annotation_error(path, index, "conversations", "need a human and a gpt turn")
    human, gpt = turns[0]["value"], turns[1]["value"]
    sample: dict[str, Any] = {"id": sample_id, "source_ids": source_ids}
    stem = Path(path).stem
    if "task" in record:
        sample["task"] = record["task"]
    elif stem.startswith("instruct_test_"):
        sample["task"] = stem.removeprefix("instruct_test_")
    if "question" in record or "options" in record:
        sample["question"] = require(record, "question", str, path, index)
        sample["options"] = options = require_str_list(record, "options", path, index)
    elif (parsed := _parse_prompt(human)) is not None:
        sample["question"], options = parsed
        sample["options"] = options
    else:
        raise annotation_error(path, index, "conversations", "no lettered options in prompt")
    match = _LETTER_RE.fullmatch(gpt.strip())  # "(B) text", "B", "B." or "B)"
    letter = (match.group(1) or match.group(2)) if match else None
    if "answer_index" in record:
        answer_index = require(record, "answer_index", int, path, index)
    elif letter:
        answer_index = OPTION_LETTERS.index(letter)
    else:
        raise annotation_error(path, index, "answer_index", "missing and not in the gpt turn")
    if not 0 <= answer_index < len(options):
        raise annotation_error(
            path, index, "answer_index", f"{answer_index} out of range for {len(options)} options"
        )
    if letter and letter != OPTION_LETTERS[answer_index]:
        raise annotation_error(
            path, index, "conversations", f"gpt turn {gpt!r} disagrees with answer_index"
        )
    sample["answer_index"] = answer_index
    sample["answer"] = record.get("answer", options[answer_index])
    return avtrustbench_sample(sample, path=path, index=index)


def avtrustbench_sample(
    sample: Mapping[str, Any], *, path: str | os.PathLike = "<sample>", index: int = 0
) -> dict[str, Any]:
    """A validated sample dict in the writer-input shape."""
    options, answer_index, answer = _choice(sample, path, index)
    return {
        "id": require(sample, "id", (str, int), path, index),
        "task": require(sample, "task", str, path, index),
        "source_ids": _source_ids(sample, path, index),
        "question": require(sample, "question", str, path, index),
        "options": options,
        "answer": answer,
        "answer_index": answer_index,
    }


def read_avtrustbench_json(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Samples (id, task, source_ids, question, options, answer, answer_index) from a file
    written by :func:`write_avtrustbench_json`. Without explicit fields, the question and
    options are parsed from the human turn, the answer letter from the gpt turn, and the
    task from the file name ``instruct_test_<TASK>.json``."""
    return [
        _read_avtrustbench_record(record, path, index)
        for index, record in enumerate(load_json_records(path))
    ]


# --------------------------------------------------------------------------- AV-ConfuseBench

_CONFUSE_M2_KEYS = ("video_id", "filename", "question", "sound_type", "annotation")


def _instruments(record: Mapping[str, Any], path: str | os.PathLike, index: int) -> list[str]:
    if isinstance(record.get("instruments"), str):  # the released files join them with ", "
        record = {"instruments": [name.strip() for name in record["instruments"].split(",")]}
    names = require_str_list(record, "instruments", path, index)
    if not names or any(not n or "," in n or n != n.strip() for n in names):
        raise annotation_error(path, index, "instruments", f"bad instrument names {names}")
    if len(names) not in NUMBER_WORDS:
        raise annotation_error(path, index, "instruments", f"{len(names)} instruments (max 10)")
    return names


def write_confuse_m1_json(samples: Samples, path: str | os.PathLike) -> Path:
    """AV-ConfuseBench m1 (audio muted) file from samples (video_id, question, answer,
    instruments as a list in scene order)."""
    out = []
    for index, sample in enumerate(records_of(samples)):
        names = _instruments(sample, path, index)
        out.append(
            {
                "video_id": require(sample, "video_id", str, path, index),
                "question": require(sample, "question", str, path, index),
                "answer": require(sample, "answer", str, path, index),
                "instruments": ", ".join(names),
                "instruments_len": NUMBER_WORDS[len(names)],
            }
        )
    return write_text_atomic(path, dump_json(out, indent=2, trailing_newline=False))


def read_confuse_m1_json(path: str | os.PathLike) -> list[dict[str, Any]]:
    """m1 samples (video_id, question, answer, instruments list); ``instruments_len`` is
    checked against the instrument count."""
    samples = []
    for index, record in enumerate(load_json_records(path)):
        names = _instruments(record, path, index)
        count = require(record, "instruments_len", (str, int), path, index)
        if count not in (len(names), NUMBER_WORDS[len(names)]):
            raise annotation_error(
                path, index, "instruments_len", f"{count!r} but {len(names)} instruments {names}"
            )
        samples.append(
            {
                "video_id": require(record, "video_id", str, path, index),
                "question": require(record, "question", str, path, index),
                "answer": require(record, "answer", str, path, index),
                "instruments": names,
            }
        )
    return samples


def write_confuse_m2_json(samples: Samples, path: str | os.PathLike) -> Path:
    """AV-ConfuseBench m2 (audio modified) file from samples with the five official fields."""
    out = [
        {key: require(sample, key, str, path, index) for key in _CONFUSE_M2_KEYS}
        for index, sample in enumerate(records_of(samples))
    ]
    return write_text_atomic(path, dump_json(out, indent=2, trailing_newline=False))


def read_confuse_m2_json(path: str | os.PathLike) -> list[dict[str, Any]]:
    """m2 samples (video_id, filename, question, sound_type, annotation)."""
    return [
        {key: require(record, key, str, path, index) for key in _CONFUSE_M2_KEYS}
        for index, record in enumerate(load_json_records(path))
    ]
