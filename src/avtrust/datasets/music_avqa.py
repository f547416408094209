"""MUSIC-AVQA question annotations (Li et al., CVPR 2022): reader and writer.

Format (the released ``avqa-{train,val,test}.json`` of GeWu-Lab/MUSIC-AVQA): a JSON list of ::

    {"video_id": "00000238", "question_id": 8,
     "type": "[\\"Audio-Visual\\", \\"Counting\\"]",
     "question_content": "Is the <Object> in the video always playing?",
     "templ_values": "[\\"ukulele\\"]", "question_deleted": 0, "anser": "yes"}

``type`` and ``templ_values`` are JSON *strings* (encoded twice), the answer key is spelled
``anser``, and the slots ``<Object> <LR> <FL> <TH> <LRer> <LL> <BA>`` of ``question_content``
are filled, in order of appearance, from ``templ_values``. The project's synthetic corpus writes
this same format, so one reader serves both.

Solo lists (which videos show one instrument playing alone, needed to compose
AV-ConfuseBench scenes from real data) use the layout of the MUSIC dataset's
``MUSIC_solo_videos.json`` / ``MUSIC21_solo_videos.json`` (Zhao et al., ECCV 2018;
github.com/roudimit/MUSIC_dataset), ``{"videos": {"<instrument>": ["<video id>", ...]}}``,
with the ids of the video files at hand (:func:`read_solo_videos`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from avtrust.datasets.records import (
    UniqueRecords,
    annotation_error,
    dump_json,
    load_json,
    load_json_records,
    records_of,
    require,
    require_str_list,
)
from avtrust.errors import AnnotationError
from avtrust.io import write_text_atomic

SLOTS: tuple[str, ...] = ("<Object>", "<LR>", "<FL>", "<TH>", "<LRer>", "<LL>", "<BA>")
MODALITIES: tuple[str, ...] = ("Audio", "Visual", "Audio-Visual")
QTYPES: tuple[str, ...] = ("Counting", "Location", "Existential", "Comparative", "Temporal")
# Column names of the RL-CoMM results table (Ye et al. 2025, Table on MUSIC-AVQA).
CATEGORY_SHORT: dict[str, str] = {
    "Existential": "Exist",
    "Location": "Localis",
    "Counting": "Count",
    "Comparative": "Comp",
    "Temporal": "Temp",
}
COLUMNS: tuple[str, ...] = (
    "video_id",
    "question_id",
    "modality",
    "qtype",
    "category",
    "question",
    "answer",
    "templ_values",
    "question_content",
)

_SLOT_RE = re.compile("|".join(re.escape(slot) for slot in SLOTS))


def fill_template(question_content: str, templ_values: list[str]) -> str:
    """Replace the slots of ``question_content`` by ``templ_values``, in order of appearance.

    >>> fill_template("Is the <Object> on the <LR> louder than the <Object>?",
    ...               ["violin", "left", "cello"])
    'Is the violin on the left louder than the cello?'
    """
    found = _SLOT_RE.findall(question_content)
    if len(found) != len(templ_values):
        raise AnnotationError(
            f"template {question_content!r} has {len(found)} slot(s) {found} "
            f"but {len(templ_values)} value(s) {list(templ_values)}"
        )
    values = iter(templ_values)
    return _SLOT_RE.sub(lambda _match: next(values), question_content)


def _type_pair(record: Mapping[str, Any], path: str | os.PathLike, index: int) -> tuple[str, str]:
    pair = require_str_list(record, "type", path, index, json_string=True)
    if len(pair) != 2:
        raise annotation_error(path, index, "type", f"expected [modality, qtype], got {pair}")
    modality, qtype = pair
    if modality not in MODALITIES:
        raise annotation_error(path, index, "type", f"unknown modality {modality!r}")
    if qtype not in QTYPES:
        raise annotation_error(path, index, "type", f"unknown question type {qtype!r}")
    return modality, qtype


def read_annotations(path: str | os.PathLike) -> pd.DataFrame:
    """Read a MUSIC-AVQA JSON file; rows with a truthy ``question_deleted`` are dropped.

    A ``question_id`` repeated in the file is kept once if its record is identical and an
    AnnotationError naming both records otherwise. (Ids are checked per file: splits may
    number their questions independently.)

    Columns: video_id, question_id, modality, qtype, category (``"Audio-Visual/Counting"``),
    question (slots filled), answer, templ_values (list), question_content (the template,
    kept so that ``write_annotations(read_annotations(p))`` round-trips).
    A missing ``question_deleted`` counts as 0.
    """
    seen = unique_questions()
    rows = []
    for index, record in enumerate(load_json_records(path)):
        deleted = record.get("question_deleted", 0)
        if not isinstance(deleted, int):
            raise annotation_error(path, index, "question_deleted", f"not 0/1: {deleted!r}")
        if deleted:  # withdrawn by the dataset authors; not checked further
            continue
        video_id = require(record, "video_id", str, path, index)
        question_id = require(record, "question_id", int, path, index)
        modality, qtype = _type_pair(record, path, index)
        content = require(record, "question_content", str, path, index)
        values = require_str_list(record, "templ_values", path, index, json_string=True)
        answer = require(record, "anser", str, path, index)
        try:
            question = fill_template(content, values)
        except AnnotationError as exc:
            raise annotation_error(path, index, "templ_values", str(exc)) from None
        row = (video_id, question_id, modality, qtype, f"{modality}/{qtype}", question, answer)
        row += (values, content)
        if seen.keep(path, index, row):
            rows.append(row)
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    return frame.astype({"question_id": "int64"})


def unique_questions() -> UniqueRecords:
    """The duplicate check of :func:`read_annotations`, by ``question_id``."""
    return UniqueRecords("question_id", COLUMNS)


# The annotation files the MUSIC-AVQA adapter reads, by name (the release's names).
QUESTION_FILES = "avqa-*.json"
SOLO_FILES = "*solo*.json"
SCENES_FILE = "scenes.json"


def annotation_files(folder: str | os.PathLike) -> tuple[list[Path], list[Path]]:
    """(question files, solo lists) of an annotations folder, sorted.

    A JSON file matching none of the names the adapter reads is an AnnotationError naming
    them: left unread, its questions would only surface later as "no annotations".
    """
    folder = Path(folder)
    if not folder.is_dir():
        return [], []
    questions = sorted(folder.glob(QUESTION_FILES))
    solos = sorted(p for p in folder.glob(SOLO_FILES) if p not in questions)
    known = {*questions, *solos, folder / SCENES_FILE}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() == ".json" and path not in known and not path.name.startswith("."):
            raise AnnotationError(
                f"{path}: not read: MUSIC-AVQA annotation files are named {QUESTION_FILES} "
                "for questions (the release's avqa-train.json, avqa-val.json, avqa-test.json), "
                f"{SOLO_FILES} for solo lists (MUSIC_solo_videos.json) and {SCENES_FILE} for "
                "composed scenes; rename the file or set its `name` in the config's "
                "annotations entry"
            )
    return questions, solos


def write_annotations(
    records: Iterable[Mapping[str, Any]] | pd.DataFrame, path: str | os.PathLike
) -> Path:
    """Write records in the official MUSIC-AVQA layout (record order kept).

    Each record needs video_id, question_id, modality, qtype, question_content (with slots),
    templ_values (list) and answer; ``type``/``templ_values`` are written as JSON strings,
    the answer as ``anser`` and ``question_deleted`` as 0.
    """
    out = []
    for index, record in enumerate(records_of(records)):
        video_id = require(record, "video_id", str, path, index)
        question_id = require(record, "question_id", int, path, index)
        modality = require(record, "modality", str, path, index)
        qtype = require(record, "qtype", str, path, index)
        if modality not in MODALITIES:
            raise annotation_error(path, index, "modality", f"unknown modality {modality!r}")
        if qtype not in QTYPES:
            raise annotation_error(path, index, "qtype", f"unknown question type {qtype!r}")
        content = require(record, "question_content", str, path, index)
        values = require_str_list(record, "templ_values", path, index)
        try:
            fill_template(content, values)
        except AnnotationError as exc:
            raise annotation_error(path, index, "templ_values", str(exc)) from None
        out.append(
            {
                "video_id": video_id,
                "question_id": question_id,
                "type": json.dumps([modality, qtype], ensure_ascii=False),
                "question_content": content,
                "templ_values": json.dumps(values, ensure_ascii=False),
                "question_deleted": 0,
                "anser": require(record, "answer", str, path, index),
            }
        )
    return write_text_atomic(path, dump_json(out))


def read_solo_videos(path: str | os.PathLike) -> dict[str, str]:
    """Map video id to instrument from a solo list ``{"videos": {instrument: [ids]}}``.

    Instrument names are written as the questions spell them (``acoustic_guitar`` ->
    ``acoustic guitar``). A video listed under two instruments is an error.
    """
    data = load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("videos"), dict):
        raise AnnotationError(
            f'{path}: expected {{"videos": {{"<instrument>": ["<video id>", ...]}}}} '
            "(the MUSIC dataset's solo list layout)"
        )
    solos: dict[str, str] = {}
    for index, (instrument, ids) in enumerate(data["videos"].items()):
        ids = require_str_list({instrument: ids}, instrument, path, index)
        name = instrument.replace("_", " ").strip()
        if not name:
            raise annotation_error(path, index, instrument, "empty instrument name")
        for video_id in ids:
            if solos.setdefault(video_id, name) != name:
                raise annotation_error(
                    path,
                    index,
                    instrument,
                    f"video {video_id!r} is also listed as {solos[video_id]!r}",
                )
    return solos


def write_solo_videos(solos: Mapping[str, str], path: str | os.PathLike) -> Path:
    """Write a solo list (video id -> instrument) in the MUSIC dataset's layout."""
    videos: dict[str, list[str]] = {}
    for video_id, instrument in solos.items():
        videos.setdefault(instrument.replace(" ", "_"), []).append(video_id)
    return write_text_atomic(path, dump_json({"videos": dict(sorted(videos.items()))}))
