"""The benchmark's measured audio checks reach the results database: the ``samples``
table keeps every ``measured_*`` column, and ``benchmark_checks`` summarises them."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from avtrust.bench.samples import SAMPLE_SCHEMA
from avtrust.io import write_parquet_atomic
from avtrust.results import db
from avtrust.results.checks import MEASURED


def samples_file(tmp_path, bench, task, measured: list[dict]):
    rows = [
        {name: None for name in SAMPLE_SCHEMA.names}
        | {"bench": bench, "task": task, "id": f"{task}-{i:06d}", "answer": "no",
           "question": "q", "options": ["yes", "no"], "source_dataset": "d"}
        | values
        for i, values in enumerate(measured)
    ]  # fmt: skip
    path = tmp_path / f"{bench}.{task}.parquet"
    return str(write_parquet_atomic(path, pa.Table.from_pylist(rows, schema=SAMPLE_SCHEMA)))


def query(path, sql):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture
def database(tmp_path):
    m1 = [{"measured_muted_db": v, "measured_kept_db": k}
          for v, k in [(-80.0, -20.0), (-70.0, -18.0), (-90.0, -25.0)]]  # fmt: skip
    m2 = [{"measured_snr_db": v} for v in (9.8, 10.2, None)]  # replaced outright: no SNR
    mat = [{"measured_audio_streams": 0}, {"measured_audio_streams": 0}]
    swap = [{"measured_donor_similarity": 0.99, "measured_original_similarity": 0.02}]
    path = tmp_path / "r.duckdb"
    db.ingest(path, {"samples": {
        "avconfusebench/m1": [samples_file(tmp_path, "avconfusebench", "m1", m1)],
        "avconfusebench/m2": [samples_file(tmp_path, "avconfusebench", "m2", m2)],
        "avtrustbench/MAT": [samples_file(tmp_path, "avtrustbench", "MAT", mat)],
        "avtrustbench/COT-Swap": [samples_file(tmp_path, "avtrustbench", "COT-Swap", swap)],
    }})  # fmt: skip
    return path


def test_the_samples_table_keeps_every_measured_column(database):
    assert set(MEASURED) == {
        "measured_muted_db", "measured_kept_db", "measured_snr_db",
        "measured_donor_similarity", "measured_original_similarity", "measured_audio_streams",
    }  # fmt: skip
    got = query(database, "SELECT id, measured_muted_db, measured_kept_db FROM samples "
                          "WHERE task = 'm1' ORDER BY id")  # fmt: skip
    assert got == [("m1-000000", -80.0, -20.0), ("m1-000001", -70.0, -18.0),
                   ("m1-000002", -90.0, -25.0)]  # fmt: skip
    types = dict(query(database, "SELECT column_name, data_type FROM information_schema.columns "
                                 "WHERE table_name = 'samples'"))  # fmt: skip
    assert types["measured_audio_streams"] == "INTEGER" and types["measured_snr_db"] == "DOUBLE"


def test_benchmark_checks_summarise_each_measure_per_task(database):
    got = query(database, "SELECT * FROM benchmark_checks")
    assert got == [
        ("avconfusebench", "m1", "measured_kept_db", 3, -25.0, -21.0, -20.0, -18.0),
        ("avconfusebench", "m1", "measured_muted_db", 3, -90.0, -80.0, -80.0, -70.0),
        ("avconfusebench", "m2", "measured_snr_db", 2, 9.8, 10.0, 10.0, 10.2),
        ("avtrustbench", "COT-Swap", "measured_donor_similarity", 1, 0.99, 0.99, 0.99, 0.99),
        ("avtrustbench", "COT-Swap", "measured_original_similarity", 1, 0.02, 0.02, 0.02, 0.02),
        ("avtrustbench", "MAT", "measured_audio_streams", 2, 0.0, 0.0, 0.0, 0.0),
    ]


def test_a_database_from_before_the_checks_is_rebuilt_with_them(tmp_path):
    path = tmp_path / "r.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE samples (bench VARCHAR, task VARCHAR, id VARCHAR, seq BIGINT)")
    con.close()
    m2 = samples_file(tmp_path, "avconfusebench", "m2", [{"measured_snr_db": 5.0}])
    db.ingest(path, {"samples": {"avconfusebench/m2": [m2]}})
    assert query(path, "SELECT measured_snr_db FROM samples") == [(5.0,)]


def test_the_checks_table_is_the_view_as_csv(database, tmp_path):
    from avtrust.results.checks import export_checks

    con = duckdb.connect(str(database), read_only=True)
    try:
        path = export_checks(con, tmp_path / "tables" / "benchmark_checks.csv")
    finally:
        con.close()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == '"bench","task","measure","n","min","mean","median","max"'
    assert len(lines) == 7 and '"avconfusebench","m2","measured_snr_db",2,' in lines[3]
