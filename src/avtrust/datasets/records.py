"""Strict reading of annotation records: JSON loading and field checks.

Every failure raises :class:`~avtrust.errors.AnnotationError` naming the file, the record
index and the key, so a user can fix a malformed annotation file without a traceback.
Shared by the format adapters (MUSIC-AVQA, AVQA, AudioSet) and the official exporters.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from avtrust.errors import AnnotationError

log = logging.getLogger(__name__)


def annotation_error(
    path: str | os.PathLike, index: int, key: str, problem: str
) -> AnnotationError:
    """An :class:`AnnotationError` naming the file, the record index and the offending key."""
    return AnnotationError(f"{path}: record {index}: key {key!r}: {problem}")


def read_text(path: str | os.PathLike) -> str:
    """Read a UTF-8 text file (a leading BOM is tolerated); bad bytes raise AnnotationError."""
    raw = Path(path).read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AnnotationError(
            f"{path}: not valid UTF-8 (byte offset {exc.start}: {raw[exc.start : exc.end]!r})"
        ) from exc


def load_json(path: str | os.PathLike) -> Any:
    """Parse a UTF-8 JSON file; invalid bytes or syntax raise AnnotationError."""
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise AnnotationError(
            f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from exc


def load_json_records(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Load a file whose top level is a JSON list of objects."""
    data = load_json(path)
    if not isinstance(data, list):
        raise AnnotationError(f"{path}: expected a JSON list of records, got {type(data).__name__}")
    for index, record in enumerate(data):
        if not isinstance(record, dict):
            raise annotation_error(
                path, index, "<record>", f"expected an object, got {type(record).__name__}"
            )
    return data


def plain(value: Any) -> Any:
    """numpy scalars/arrays (what DataFrame rows hold) as plain Python values."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


_TYPE_NAMES = {str: "string", int: "integer", float: "number", list: "list", bool: "boolean"}


def require(
    record: Mapping[str, Any],
    key: str,
    kind: type | tuple[type, ...],
    path: str | os.PathLike,
    index: int,
) -> Any:
    """``record[key]`` checked against ``kind`` (bools are never accepted as numbers)."""
    if key not in record:
        raise annotation_error(path, index, key, "missing")
    value = plain(record[key])
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if float in kinds and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        wanted = " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise annotation_error(
            path, index, key, f"expected {wanted}, got {type(value).__name__} {shown}"
        )
    return value


def require_str_list(
    record: Mapping[str, Any],
    key: str,
    path: str | os.PathLike,
    index: int,
    *,
    json_string: bool = False,
) -> list[str]:
    """A list of strings; with ``json_string`` the value may also be a JSON-encoded list."""
    value = require(record, key, (list, tuple, str) if json_string else (list, tuple), path, index)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise annotation_error(path, index, key, f"not a JSON-encoded list: {exc.msg}") from exc
        if not isinstance(value, list):
            raise annotation_error(path, index, key, "JSON-encoded value is not a list")
    items = [plain(item) for item in value]
    for item in items:
        if not isinstance(item, str):
            raise annotation_error(path, index, key, f"list item {item!r} is not a string")
    return items


def dump_json(obj: Any, *, indent: int | None = 1, trailing_newline: bool = True) -> str:
    """Deterministic JSON text: UTF-8 characters kept, key order as given, fixed indent
    (one space by default, as :func:`avtrust.io.dumps_json`)."""
    text = json.dumps(obj, ensure_ascii=False, indent=indent, allow_nan=False)
    return text + "\n" if trailing_newline else text


def records_of(records: Iterable[Mapping[str, Any]] | pd.DataFrame) -> list[Mapping[str, Any]]:
    """Accept a list of dicts or a DataFrame (one record per row, in row order)."""
    if isinstance(records, pd.DataFrame):
        return records.to_dict("records")
    return list(records)


class UniqueRecords:
    """Records keyed by an id (``question_id``, AVQA's ``id``) across one or more files.

    A repeated id whose record is identical is kept once (and logged); one whose record
    differs (another answer, question or video) is an :class:`AnnotationError` naming both
    records, since neither can be taken for the right one.
    """

    def __init__(self, key: str, columns: tuple[str, ...], name: str | None = None):
        self.key = key
        self.name = name or key  # the key as the files spell it
        self.columns = columns
        self._seen: dict[Any, tuple[str, int, tuple]] = {}

    def keep(self, path: str | os.PathLike, index: int, row: tuple) -> bool:
        """True for a new id; False for an identical repeat; raises for a conflicting one."""
        value = row[self.columns.index(self.key)]
        first = self._seen.setdefault(value, (str(path), index, row))
        if first[2] is row:
            return True
        first_path, first_index, first_row = first
        where = f"record {first_index}" + ("" if first_path == str(path) else f" of {first_path}")
        if first_row == row:
            log.info(
                "%s: record %d: %s %r repeats %s identically; kept once",
                path, index, self.name, value, where,
            )  # fmt: skip
            return False
        differs = [
            f"{name} {a!r} vs {b!r}"
            for name, a, b in zip(self.columns, first_row, row, strict=True)
            if a != b
        ]
        raise annotation_error(
            path, index, self.name,
            f"{value!r} is also the id of {where}, which differs ({'; '.join(differs)}); "
            f"keep one of the two records or give one another {self.name}",
        )  # fmt: skip
