"""The results database (DuckDB): samples, predictions, judge verdicts, metrics, runs.

The samples keep their measured audio checks (``measured_*``), summarised per task by
the view ``benchmark_checks`` (:mod:`avtrust.results.checks`).

Every data table is filled from per-key files: the sample tables per (bench, task), and
per evaluated model its predictions, judge verdicts, metrics and run record.
:func:`ingest` is incremental: the table ``ingested`` keeps a SHA-256 of each key's
files, and only keys whose files changed are deleted and re-inserted; keys no longer
listed are removed. Adding a model therefore inserts its rows and touches no other
model's (each row keeps the ``seq`` number of the ingest that wrote it).

Snakemake deletes a job's declared outputs before running it, so the workflow keeps the
incrementally updated database in ``results/cache/results.duckdb`` (not an output) and
copies it to ``results/results.duckdb`` after each ingest.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import pyarrow as pa

from avtrust.bench.samples import SAMPLE_SCHEMA
from avtrust.evaluate.infer import PREDICTION_SCHEMA
from avtrust.evaluate.judge import JUDGE_SCHEMA
from avtrust.evaluate.metrics import METRIC_SCHEMA
from avtrust.results.checks import MEASURED

PathLike = str | os.PathLike
RUN_SCHEMA = pa.schema(
    [
        ("model", pa.string()),  # evaluation name (results/predictions/<model>/)
        ("kind", pa.string()),  # zero-shot | checkpoint
        ("method", pa.string()),  # training method of a checkpoint, else null
        ("base_model", pa.string()),  # registry name of the (base) model
        ("checkpoint", pa.string()),  # the checkpoint folder, else null
        ("adapter", pa.string()),
        ("config_hash", pa.string()),
        ("seed", pa.int64()),
        ("modes", pa.string()),
        ("evaluated_at", pa.string()),  # UTC, ISO 8601
        ("n_predictions", pa.int64()),
    ]
)
# What a sample's results are broken down by is kept beside it: ``category`` (question
# type, instrument count, sound type), the instruments in view and the one muted (m1),
# the replacement sound and its SNR (m2; null SNR = soundtrack replaced outright); and
# what the audio checks measured on the manipulated output (avtrust.results.checks).
SAMPLE_COLUMNS = ["bench", "task", "id", "category", "answer", "answer_index", "question",
                  "options", "source_dataset", "instruments", "muted_instrument",
                  "sound_type", "snr_db", *MEASURED]  # fmt: skip
# table -> (schema, key columns)
TABLES = {
    "samples": (pa.schema([SAMPLE_SCHEMA.field(c) for c in SAMPLE_COLUMNS]), ("bench", "task")),
    "predictions": (PREDICTION_SCHEMA, ("model",)),
    "judgements": (JUDGE_SCHEMA, ("model",)),
    "metrics": (METRIC_SCHEMA, ("model",)),
    "runs": (RUN_SCHEMA, ("model",)),
}


def _sql_type(t: pa.DataType) -> str:
    if pa.types.is_list(t):
        return _sql_type(t.value_type) + "[]"
    return {
        pa.string(): "VARCHAR",
        pa.int32(): "INTEGER",
        pa.int64(): "BIGINT",
        pa.float64(): "DOUBLE",
        pa.bool_(): "BOOLEAN",
    }[t]


def connect(path: PathLike):
    import duckdb

    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE IF NOT EXISTS ingested "
        "(tbl VARCHAR, key VARCHAR, digest VARCHAR, seq BIGINT, files BIGINT)"
    )
    for name, (schema, _) in TABLES.items():
        wanted = [(f.name, _sql_type(f.type)) for f in schema] + [("seq", "BIGINT")]
        present = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = ? ORDER BY ordinal_position",
            [name],
        ).fetchall()
        if present and [tuple(c) for c in present] != wanted:
            # a database written by an older version (other columns): rebuild this table
            # from its files on this ingest instead of failing on the first insert
            con.execute(f"DROP TABLE {name} CASCADE")
            con.execute("DELETE FROM ingested WHERE tbl = ?", [name])
        cols = ", ".join(f'"{c}" {t}' for c, t in wanted)
        con.execute(f"CREATE TABLE IF NOT EXISTS {name} ({cols})")
    return con


def digest(paths: Sequence[PathLike]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(Path(p).name.encode() + b"\0")
        h.update(hashlib.sha256(Path(p).read_bytes()).digest())
    return h.hexdigest()


def _read(name: str, paths: Sequence[PathLike]) -> pa.Table:
    import pyarrow.parquet as pq

    schema = TABLES[name][0]
    tables = []
    for p in paths:
        if str(p).endswith(".json"):
            record = json.loads(Path(p).read_text(encoding="utf-8"))
            tables.append(pa.Table.from_pylist([record], schema=schema))
        else:
            tables.append(pq.read_table(p, columns=schema.names).cast(schema))
    return pa.concat_tables(tables) if tables else schema.empty_table()


def ingest(db_path: PathLike, sources: Mapping[str, Mapping[str, Sequence[PathLike]]], log=None):
    """Bring ``db_path`` up to date with ``sources`` (table → key → files); see module.

    A key is ``"bench/task"`` for samples and the model name otherwise. Returns
    {table: [keys re-ingested]}.
    """
    unknown = set(sources) - set(TABLES)
    if unknown:
        raise ValueError(f"unknown result tables {sorted(unknown)} ({', '.join(TABLES)})")
    con = connect(db_path)
    changed: dict[str, list[str]] = {}
    try:
        seq = con.execute("SELECT coalesce(max(seq), 0) + 1 FROM ingested").fetchone()[0]
        con.execute("BEGIN TRANSACTION")
        for name, by_key in sources.items():
            _, key_cols = TABLES[name]
            stored = dict(
                con.execute("SELECT key, digest FROM ingested WHERE tbl = ?", [name]).fetchall()
            )
            for key in sorted(set(stored) - set(by_key)):
                _delete(con, name, key_cols, key)
                con.execute("DELETE FROM ingested WHERE tbl = ? AND key = ?", [name, key])
                changed.setdefault(name, []).append(key)
            for key, paths in sorted(by_key.items()):
                d = digest(paths)
                if stored.get(key) == d:
                    continue
                _delete(con, name, key_cols, key)
                table = _read(name, paths)
                table = table.append_column("seq", pa.array([seq] * table.num_rows, pa.int64()))
                con.register("incoming", table)
                con.execute(f"INSERT INTO {name} SELECT * FROM incoming")
                con.unregister("incoming")
                con.execute("DELETE FROM ingested WHERE tbl = ? AND key = ?", [name, key])
                con.execute(
                    "INSERT INTO ingested VALUES (?, ?, ?, ?, ?)", [name, key, d, seq, len(paths)]
                )
                changed.setdefault(name, []).append(key)
                if log:
                    log.info("%s: ingested %s (%d rows)", name, key, table.num_rows)
        con.execute("COMMIT")
        create_views(con)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return changed


def _delete(con, name: str, key_cols: Sequence[str], key: str) -> None:
    values = key.split("/", len(key_cols) - 1) if len(key_cols) > 1 else [key]
    where = " AND ".join(f'"{c}" = ?' for c in key_cols)
    con.execute(f"DELETE FROM {name} WHERE {where}", values)


def view_definitions() -> dict[str, str]:
    """Every view's SQL by name: the papers' tables, the breakdowns, the checks."""
    from avtrust.results import breakdowns, checks, views

    return {**views.view_sql(), **breakdowns.view_sql(), **checks.view_sql()}


def views_digest() -> str:
    """A digest of :func:`view_definitions`, a parameter of rule results_db: the views are
    stored in the database, so a new or changed view must rerun the ingest (which
    recreates them) before the tables read it."""
    text = json.dumps(view_definitions(), sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def create_views(con) -> None:
    for name, sql in view_definitions().items():
        con.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")


def publish(cache: PathLike, target: PathLike) -> Path:
    """Copy the cached database to ``target`` atomically."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    try:
        shutil.copyfile(cache, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
