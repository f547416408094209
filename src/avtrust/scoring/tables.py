"""Reading what the score stage works on: training samples and clip labels."""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow.parquet as pq


def train_split(split_path: str) -> set[tuple[str, str]]:
    """(bench, id) of every training sample."""
    table = pq.read_table(split_path)
    return {
        (b, i)
        for b, i, s in zip(
            table["bench"].to_pylist(),
            table["id"].to_pylist(),
            table["split"].to_pylist(),
            strict=True,
        )
        if s == "train"
    }


def training_rows(sample_paths: Iterable[str], split_path: str) -> list[dict]:
    """The training samples of the benchmark tables ``sample_paths``, in table order."""
    train = train_split(split_path)
    rows = []
    for path in sample_paths:
        rows += [r for r in pq.read_table(path).to_pylist() if (r["bench"], r["id"]) in train]
    return rows


def manifest_records(path: str) -> dict[str, dict]:
    """A manifest as {clip_id: row}."""
    return {r["clip_id"]: r for r in pq.read_table(path).to_pylist()}


def clip_labels(manifest_paths: Iterable[str]) -> dict[str, dict[str, list[str]]]:
    """{dataset: {clip_id: labels}} from manifests."""
    out: dict[str, dict[str, list[str]]] = {}
    for path in manifest_paths:
        for r in pq.read_table(path, columns=["clip_id", "dataset", "labels"]).to_pylist():
            out.setdefault(r["dataset"], {})[r["clip_id"]] = list(r["labels"] or [])
    return out
