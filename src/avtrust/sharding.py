"""Which rows a shard job processes: row number modulo the shard count, everywhere
(manipulation, downloads, scoring, evaluation), so the number of jobs depends on the
shard count only and a row's shard never depends on the other rows' content."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

Row = TypeVar("Row")


def shard_rows(rows: Sequence[Row], shard: int, shards: int) -> list[Row]:
    """The rows of shard ``shard`` of ``shards``; ValueError for a shard out of range."""
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} is not in [0, {shards})")
    return list(rows[shard::shards])
