"""AudioSet segment lists and ontology (Gemmeke et al., ICASSP 2017): readers and writers.

Segment CSVs (``eval_segments.csv``, ``balanced_train_segments.csv``,
``unbalanced_train_segments.csv`` from research.google.com/audioset/download.html) start with
three comment lines, then one segment per line with a space after each comma and the label
MIDs quoted::

    # Segments csv created Sun Mar  5 10:54:31 2017
    # num_ytids=22160, num_segs=22160, num_unique_labels=527, num_positive_labels=52882
    # YTID, start_seconds, end_seconds, positive_labels
    --PJHxphWEs, 30.000, 40.000, "/m/09x0r,/t/dd00088"

The ontology (``ontology.json`` of github.com/audioset/ontology) is a JSON list of objects with
``id, name, description, citation_uri, positive_examples, child_ids, restrictions``, written
with a two-space indent and every list on one line; :func:`write_ontology` reproduces that
layout. Clip ids follow the VGGSound/AVQA convention ``<ytid>_<start second, 6 digits>``.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from avtrust.datasets.records import (
    annotation_error,
    load_json_records,
    read_text,
    records_of,
    require,
    require_str_list,
)
from avtrust.io import write_text_atomic

SEGMENT_HEADER = "# YTID, start_seconds, end_seconds, positive_labels"
SEGMENT_COLUMNS: tuple[str, ...] = ("ytid", "start_seconds", "end_seconds", "labels", "clip_id")
ONTOLOGY_KEYS: tuple[str, ...] = (
    "id",
    "name",
    "description",
    "citation_uri",
    "positive_examples",
    "child_ids",
    "restrictions",
)
_CSV_KEYS = ("ytid", "start_seconds", "end_seconds", "positive_labels")


def clip_id(ytid: str, start_seconds: float) -> str:
    """``"<ytid>_<start, whole seconds, 6 digits>"``, e.g. ``clip_id("-HG3Omg_89c", 30.0)``
    is ``"-HG3Omg_89c_000030"`` (the ``video_name`` convention of VGGSound and AVQA).

    The start is rounded half to even (``round``), which matters only for half seconds.
    """
    if start_seconds < 0:
        raise ValueError(f"negative start_seconds {start_seconds} for {ytid!r}")
    return f"{ytid}_{int(round(start_seconds)):06d}"


def _segment_row(
    text: str, path: str | os.PathLike, index: int, line: int
) -> tuple[str, float, float, list[str], str]:
    try:
        fields = next(csv.reader([text], skipinitialspace=True, strict=True))
    except csv.Error as exc:
        raise annotation_error(path, index, "<row>", f"line {line}: CSV error: {exc}") from None
    if len(fields) != 4:
        key = _CSV_KEYS[len(fields)] if len(fields) < 4 else "positive_labels"
        raise annotation_error(
            path, index, key, f"line {line}: expected 4 fields, got {len(fields)}: {text!r}"
        )
    ytid, start_text, end_text, label_text = (field.strip() for field in fields)
    if not ytid or " " in ytid:
        raise annotation_error(path, index, "ytid", f"line {line}: bad YouTube id {ytid!r}")
    times = []
    for key, value in (("start_seconds", start_text), ("end_seconds", end_text)):
        try:
            times.append(float(value))
        except ValueError:
            raise annotation_error(
                path, index, key, f"line {line}: not a number: {value!r}"
            ) from None
    start, end = times
    if not 0 <= start <= end:
        raise annotation_error(
            path, index, "end_seconds", f"line {line}: bad interval {start}..{end}"
        )
    labels = [label.strip() for label in label_text.split(",") if label.strip()]
    return ytid, start, end, labels, clip_id(ytid, start)


def read_segments(path: str | os.PathLike) -> pd.DataFrame:
    """Read an AudioSet segment CSV into (ytid, start_seconds, end_seconds, labels, clip_id).

    ``labels`` is the list of positive label MIDs. Lines starting with ``#`` and blank lines
    are skipped; a malformed row raises AnnotationError naming the record (0-based among the
    data rows), the line number and the field.
    """
    rows = []
    for line, text in enumerate(read_text(path).splitlines(), start=1):
        if text.strip() and not text.lstrip().startswith("#"):
            rows.append(_segment_row(text, path, len(rows), line))
    frame = pd.DataFrame(rows, columns=list(SEGMENT_COLUMNS))
    return frame.astype({"start_seconds": "float64", "end_seconds": "float64"})


def _check_token(value: str, path: str | os.PathLike, index: int, key: str) -> str:
    if not value or any(bad in value for bad in ', "\n'):
        raise annotation_error(path, index, key, f"{value!r} cannot be written to a segment CSV")
    return value


def write_segments(
    rows: Iterable[Mapping[str, Any]] | pd.DataFrame,
    path: str | os.PathLike,
    *,
    created: str = "by avtrust",
) -> Path:
    """Write segments in the official layout: three ``#`` lines, then
    ``ytid, start.000, end.000, "mid1,mid2"`` per row (record order kept).

    Rows need ytid, start_seconds, end_seconds and labels (list of MIDs). The counts line is
    computed from the rows; ``created`` replaces the release's timestamp so reruns are
    byte-identical.
    """
    lines = []
    ytids: set[str] = set()
    label_set: set[str] = set()
    n_labels = 0
    for index, row in enumerate(records_of(rows)):
        ytid = _check_token(require(row, "ytid", str, path, index), path, index, "ytid")
        start = require(row, "start_seconds", float, path, index)
        end = require(row, "end_seconds", float, path, index)
        if not 0 <= start <= end:
            raise annotation_error(path, index, "end_seconds", f"bad interval {start}..{end}")
        labels = require_str_list(row, "labels", path, index)
        for label in labels:
            _check_token(label, path, index, "labels")
        ytids.add(ytid)
        label_set.update(labels)
        n_labels += len(labels)
        lines.append(f'{ytid}, {start:.3f}, {end:.3f}, "{",".join(labels)}"')
    header = [
        f"# Segments csv created {created}",
        f"# num_ytids={len(ytids)}, num_segs={len(lines)}, "
        f"num_unique_labels={len(label_set)}, num_positive_labels={n_labels}",
        SEGMENT_HEADER,
    ]
    return write_text_atomic(path, "\n".join(header + lines) + "\n")


def read_ontology(path: str | os.PathLike) -> dict[str, str]:
    """Map label MID to display name from an AudioSet ``ontology.json``."""
    names: dict[str, str] = {}
    for index, entry in enumerate(load_json_records(path)):
        mid = require(entry, "id", str, path, index)
        if mid in names:
            raise annotation_error(path, index, "id", f"duplicate id {mid!r}")
        names[mid] = require(entry, "name", str, path, index)
    return names


def write_ontology(
    entries: Iterable[Mapping[str, Any]] | pd.DataFrame, path: str | os.PathLike
) -> Path:
    """Write ontology entries (id, name, description required) like the real ontology.json.

    Missing ``citation_uri`` becomes ``""``; missing ``positive_examples``, ``child_ids`` and
    ``restrictions`` become ``[]``. Entry order is kept.
    """
    blocks = []
    seen: set[str] = set()
    for index, entry in enumerate(records_of(entries)):
        full = {
            "id": require(entry, "id", str, path, index),
            "name": require(entry, "name", str, path, index),
            "description": require(entry, "description", str, path, index),
            "citation_uri": require(
                {"citation_uri": entry.get("citation_uri", "")}, "citation_uri", str, path, index
            ),
        }
        if full["id"] in seen:
            raise annotation_error(path, index, "id", f"duplicate id {full['id']!r}")
        seen.add(full["id"])
        for key in ONTOLOGY_KEYS[4:]:
            full[key] = require_str_list({key: entry.get(key, [])}, key, path, index)
        body = ",\n".join(
            f"    {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}"
            for key, value in full.items()
        )
        blocks.append("  {\n" + body + "\n  }")
    return write_text_atomic(path, "[\n" + ",\n".join(blocks) + "\n]\n")
