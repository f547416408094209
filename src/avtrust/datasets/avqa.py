"""AVQA question annotations (Yang et al., ACM MM 2022): reader and writer.

"AVQA: A Dataset for Audio-Visual Question Answering on Videos" distributes
``train_qa.json`` and ``val_qa.json`` (https://mn.cs.tsinghua.edu.cn/avqa), each a JSON list of ::

    {"id": 183, "video_name": "-HG3Omg_89c_000030", "video_id": 341,
     "question_text": "What happened in the video?",
     "multi_choice": ["motorboat", "Yacht consignment", "...", "..."], "answer": 1,
     "question_relation": "View", "question_type": "Happening"}

``answer`` is the 0-based index into the four ``multi_choice`` options, ``video_name`` is the
VGGSound clip ``<YouTube id>_<start second, 6 digits>`` (see :func:`avtrust.datasets.audioset.
clip_id`) and ``video_id`` is AVQA's own integer video number. Field names and types were checked
against public loaders of the real files (dragonlzm/PAVE ``eval_pave_avqa.py`` and its
``convert_annotation_to_instruction_dataset``; park-jungin/lynx ``scripts/avqa_eval.py``; test
fixtures copied from ``val_qa.json`` records). ``question_relation``/``question_type`` are kept
as free strings (seen: relations "Both", "View", "Sound"; types "Which", "Why", "Happening").
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from avtrust.datasets.records import (
    UniqueRecords,
    annotation_error,
    dump_json,
    load_json_records,
    records_of,
    require,
    require_str_list,
)
from avtrust.io import write_text_atomic

COLUMNS: tuple[str, ...] = (
    "qa_id",
    "video_id",
    "question",
    "options",
    "answer_index",
    "answer",
    "question_type",
    "question_relation",
    "video_index",
)


def _answer_index(
    record: Mapping[str, Any], key: str, options: list[str], path: str | os.PathLike, index: int
) -> int:
    answer = require(record, key, int, path, index)
    if not 0 <= answer < len(options):
        raise annotation_error(
            path, index, key, f"answer index {answer} out of range for {len(options)} options"
        )
    return answer


def _options(record: Mapping[str, Any], key: str, path: str | os.PathLike, index: int) -> list[str]:
    options = require_str_list(record, key, path, index)
    if len(options) < 2:
        raise annotation_error(path, index, key, f"need at least 2 options, got {len(options)}")
    return options


def unique_questions() -> UniqueRecords:
    """The duplicate check of :func:`read_annotations`, by ``id``."""
    return UniqueRecords("qa_id", COLUMNS, name="id")


def read_annotations(path: str | os.PathLike) -> pd.DataFrame:
    """Read an AVQA ``*_qa.json`` file.

    An ``id`` repeated in the file is kept once if its record is identical and an
    AnnotationError naming both records otherwise (checked per file, as splits may number
    their questions independently).

    Columns: qa_id (``id``), video_id (the ``video_name`` clip id, e.g. "-HG3Omg_89c_000030"),
    question, options, answer_index, answer (the option text), question_type,
    question_relation, and video_index (AVQA's integer ``video_id``, kept for round trips).
    """
    seen = unique_questions()
    rows = []
    for index, record in enumerate(load_json_records(path)):
        options = _options(record, "multi_choice", path, index)
        answer_index = _answer_index(record, "answer", options, path, index)
        row = (
            require(record, "id", int, path, index),
            require(record, "video_name", str, path, index),
            require(record, "question_text", str, path, index),
            options,
            answer_index,
            options[answer_index],
            require(record, "question_type", str, path, index),
            require(record, "question_relation", str, path, index),
            require(record, "video_id", int, path, index),
        )
        if seen.keep(path, index, row):
            rows.append(row)
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    return frame.astype({"qa_id": "int64", "answer_index": "int64", "video_index": "int64"})


def write_annotations(
    records: Iterable[Mapping[str, Any]] | pd.DataFrame, path: str | os.PathLike
) -> Path:
    """Write records (columns of :func:`read_annotations`) in the official AVQA layout.

    ``answer`` is optional but, when given, must equal ``options[answer_index]``.
    ``video_index`` is optional: clips without one are numbered after the largest given
    index, in order of first appearance, so the output stays deterministic.
    """
    rows = records_of(records)
    given: dict[str, int] = {}
    for i, row in enumerate(rows):
        if pd.isna(row.get("video_index")):  # absent, None or NaN from a DataFrame
            continue
        name = require(row, "video_id", str, path, i)
        value = row["video_index"]
        value = int(value) if isinstance(value, float) and value.is_integer() else value
        number = require({"video_index": value}, "video_index", int, path, i)
        if given.setdefault(name, number) != number:
            raise annotation_error(
                path, i, "video_index", f"clip {name!r} already numbered {given[name]}"
            )
    next_index = max(given.values(), default=0) + 1
    out = []
    for index, record in enumerate(rows):
        video_name = require(record, "video_id", str, path, index)
        if video_name not in given:
            given[video_name] = next_index
            next_index += 1
        options = _options(record, "options", path, index)
        answer_index = _answer_index(record, "answer_index", options, path, index)
        if record.get("answer") is not None and record["answer"] != options[answer_index]:
            raise annotation_error(
                path,
                index,
                "answer",
                f"{record['answer']!r} is not option {answer_index} ({options[answer_index]!r})",
            )
        out.append(
            {
                "id": require(record, "qa_id", int, path, index),
                "video_name": video_name,
                "video_id": given[video_name],
                "question_text": require(record, "question", str, path, index),
                "multi_choice": options,
                "answer": answer_index,
                "question_relation": require(record, "question_relation", str, path, index),
                "question_type": require(record, "question_type", str, path, index),
            }
        )
    return write_text_atomic(path, dump_json(out))
