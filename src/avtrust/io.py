"""Atomic, deterministic file writing shared by every stage.

A file appears under its final name only once it is complete (temp file in the same
directory, then ``os.replace``), so a killed job never leaves a truncated output that
Snakemake or a later stage would accept. JSON and Parquet are written so that the same
content always gives the same bytes.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def dumps_json(obj: Any) -> str:
    """Stable JSON text: UTF-8 characters kept, one-space indent, trailing newline."""
    return json.dumps(obj, ensure_ascii=False, indent=1) + "\n"


def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    return write_text_atomic(path, dumps_json(obj))


def write_parquet_atomic(path: str | os.PathLike, table: pa.Table) -> Path:
    """Write ``table`` as Parquet; the bytes depend only on its schema and rows."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        # No pandas metadata: it would record the index type of whatever built the table.
        pq.write_table(table.replace_schema_metadata(None), tmp, compression="zstd")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
