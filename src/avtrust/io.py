"""Atomic, deterministic file writing shared by every stage.

A file appears under its final name only once it is complete (temp file in the same
directory, then ``os.replace``), so a killed job never leaves a truncated output that
Snakemake or a later stage would accept. JSON and Parquet are written so that the same
content always gives the same bytes.

Scratch files and folders beside an output are named ``.<output name>.[<tag>.]<8 random
characters>[.<suffix>]`` (:func:`scratch_prefix`). A job killed with SIGKILL cannot remove
them; the next write of the same output does (:func:`remove_stale_scratch`), so reruns
after interruptions leave nothing behind. A full disk or an exhausted quota raises
:class:`~avtrust.errors.StorageError` naming the output, with nothing left under its name.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from avtrust.errors import StorageError

# What tempfile puts between prefix and suffix: 8 characters of this alphabet.
_RANDOM = r"[a-z0-9_]{8}"
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_NO_SPACE_TEXT = ("No space left on device", "Disk quota exceeded", "File too large")


def scratch_prefix(path: str | os.PathLike, tag: str = "") -> str:
    """The name prefix of scratch files for output ``path`` (``tag``: a second kind)."""
    return f".{Path(path).name}." + (f"{tag}." if tag else "")


def remove_stale_scratch(path: str | os.PathLike, tag: str = "") -> list[Path]:
    """Delete scratch files/folders an interrupted earlier write of ``path`` left beside it.

    Only names made by ``tempfile`` with :func:`scratch_prefix` (same ``tag``) match, so the
    scratch of other outputs, and of this output's other kinds, is never touched. Call it
    only where no live scratch of the same kind exists (one writer per output: Snakemake
    runs one job per output and locks the working directory).
    """
    path = Path(path)
    pattern = re.compile(re.escape(scratch_prefix(path, tag)) + _RANDOM + r"(\.[A-Za-z0-9]{1,8})?")
    removed = []
    if not path.parent.is_dir():
        return removed
    for entry in path.parent.iterdir():
        if pattern.fullmatch(entry.name):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def mentions_no_space(text: str) -> bool:
    """True if a message (Arrow's, ffmpeg's) says the disk or quota is full."""
    return any(t in text for t in _NO_SPACE_TEXT)


def is_disk_full(exc: BaseException) -> bool:
    """True for an error meaning "no space" (by errno, else by its message)."""
    if isinstance(exc, StorageError):
        return True
    if isinstance(exc, OSError) and exc.errno in _NO_SPACE:
        return True
    return mentions_no_space(str(exc))


def storage_error(path: str | os.PathLike, exc: BaseException) -> StorageError:
    reason = os.strerror(exc.errno) if getattr(exc, "errno", None) in _NO_SPACE else str(exc)
    return StorageError(
        f"{path}: cannot write it: {reason}. Nothing was left under that name; "
        "free space (or raise the quota) and rerun"
    )


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a fresh scratch path beside ``path``; on success rename it to ``path``.

    On any error (or interruption) the scratch file is removed and ``path`` is untouched;
    a full disk becomes a StorageError naming ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_scratch(path)
    fd, tmp = tempfile.mkstemp(prefix=scratch_prefix(path), suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        tmp_path.chmod(0o644)  # mkstemp creates 0600; outputs are shared on clusters
        os.replace(tmp_path, path)
    except StorageError:
        raise
    except OSError as exc:
        if is_disk_full(exc):
            raise storage_error(path, exc) from exc
        raise
    finally:
        tmp_path.unlink(missing_ok=True)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
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
    with atomic_path(path) as tmp:
        # No pandas metadata: it would record the index type of whatever built the table.
        pq.write_table(table.replace_schema_metadata(None), tmp, compression="zstd")
    return path
