"""Metric maths on hand-made predictions, the DuckDB views on a fixture database, and
incremental aggregation (avtrust.evaluate.metrics, avtrust.results)."""

from __future__ import annotations

import csv as csv_module
import os
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from avtrust.evaluate.infer import PREDICTION_SCHEMA
from avtrust.evaluate.judge import JUDGE_SCHEMA
from avtrust.evaluate.metrics import model_metrics
from avtrust.io import write_json_atomic, write_parquet_atomic
from avtrust.results import db
from avtrust.results.tables import csv_text, export_tables, markdown, with_paper_rows


def pred(model, bench, task, i, correct, *, mode="generate", category=None, parsed=None,
         status="ok", kind="choice"):  # fmt: skip
    return {"model": model, "bench": bench, "task": task, "id": f"{task}-{i}",
            "category": category, "mode": mode, "kind": kind, "raw": parsed or "x",
            "parsed": parsed, "status": status, "correct": correct}  # fmt: skip


def predictions(model, shift=0):
    rows = []
    # MCIT: 3 of 4 right, one unparseable; MAT: 1 of 2 right
    for i, ok in enumerate([True, True, True, False]):
        rows.append(pred(model, "avtrustbench", "MCIT", i, ok,
                         status="ok" if ok else "unparseable"))  # fmt: skip
    rows += [
        pred(model, "avtrustbench", "MAT", 0, True),
        pred(model, "avtrustbench", "MAT", 1, shift == 0),
    ]
    # m1: answers no, no, yes, unparseable -> acc 50, yes-rate 25
    for i, (parsed, status) in enumerate(
        [("no", "ok"), ("no", "ok"), ("yes", "ok"), (None, "unparseable")]
    ):
        rows.append(pred(model, "avconfusebench", "m1", i, parsed == "no", parsed=parsed,
                         status=status, kind="yes_no"))  # fmt: skip
    # MUSIC-AVQA: AV Existential 2/2, Audio Counting 0/1, AV Counting 1/1 -> Count pooled 50
    for i, (cat, ok) in enumerate(
        [
            ("Audio-Visual/Existential", True),
            ("Audio-Visual/Existential", True),
            ("Audio/Counting", False),
            ("Audio-Visual/Counting", True),
        ]
    ):
        rows.append(pred(model, "qa", "MUSIC-AVQA", i, ok, category=cat))
    rows += [pred(model, "qa", "AVQA", 0, True), pred(model, "qa", "AVQA", 1, False)]
    rows.append(pred(model, "avtrustbench", "MCIT", 0, False, mode="loglik"))
    return rows


def verdicts(model):
    base = {"model": model, "mode": "generate", "judge": "j", "attempts": 1, "snr_db": None}
    return [
        {**base, "id": "a", "sound_type": "wind", "a_score": 5, "v_score": 4, "error": None,
         "audio_match": True},
        {**base, "id": "b", "sound_type": "rain", "a_score": 1, "v_score": 2, "error": None,
         "audio_match": False},
        {**base, "id": "c", "sound_type": "rain", "a_score": None, "v_score": None, "attempts": 3,
         "error": "malformed", "audio_match": True},
    ]  # fmt: skip


def metric(table, task, name, category=None, mode="generate"):
    for r in table.to_pylist():
        if (r["task"], r["metric"], r["category"], r["mode"]) == (task, name, category, mode):
            return r["value"], r["n"]
    raise KeyError((task, name, category))


def test_metric_maths():
    t = model_metrics(predictions("m"), verdicts("m"))
    assert metric(t, "MCIT", "accuracy") == (75.0, 4)
    assert metric(t, "MCIT", "unparseable") == (25.0, 4)
    assert metric(t, "MCIT", "accuracy", mode="loglik") == (0.0, 1)
    assert metric(t, "m1", "accuracy") == (50.0, 4)
    assert metric(t, "m1", "yes_rate") == (25.0, 4)
    assert metric(t, "MUSIC-AVQA", "accuracy") == (75.0, 4)
    assert metric(t, "MUSIC-AVQA", "accuracy", "Exist") == (100.0, 2)
    assert metric(t, "MUSIC-AVQA", "accuracy", "Count") == (50.0, 2)
    assert metric(t, "MUSIC-AVQA", "accuracy", "Audio/Counting") == (0.0, 1)
    # m2: judged 2 of 3: A mean 3.0, A% = 6/(5*2) = 60; V mean 3.0, V% 60; 1 failure
    assert metric(t, "m2", "a_score") == (3.0, 2)
    assert metric(t, "m2", "a_acc") == (60.0, 2)
    assert metric(t, "m2", "v_acc") == (60.0, 2)
    assert metric(t, "m2", "judge_failed") == (1.0, 3)
    assert metric(t, "m2", "audio_match")[0] == pytest.approx(200 / 3)
    assert metric(t, "m2", "audio_match", "rain") == (50.0, 2)


def write_model(tmp_path, model, shift=0, method=None, benches=None):
    """A model's files; ``benches``: only those benchmarks' predictions (default all)."""
    folder = tmp_path / "files"
    preds = [r for r in predictions(model, shift) if benches is None or r["bench"] in benches]
    judged = verdicts(model) if benches is None or "avconfusebench" in benches else []
    full = [{f.name: r.get(f.name) for f in PREDICTION_SCHEMA} for r in preds]
    p = write_parquet_atomic(
        folder / f"{model}.pred.parquet", pa.Table.from_pylist(full, schema=PREDICTION_SCHEMA)
    )
    v = write_parquet_atomic(
        folder / f"{model}.judge.parquet",
        pa.Table.from_pylist(judged, schema=JUDGE_SCHEMA),
    )
    m = write_parquet_atomic(folder / f"{model}.metrics.parquet", model_metrics(preds, judged))
    r = write_json_atomic(folder / f"{model}.run.json", {
        "model": model, "kind": "checkpoint" if method else "zero-shot", "method": method,
        "base_model": "omni", "checkpoint": None, "adapter": "qwen2_5_omni_thinker",
        "config_hash": "abc", "seed": 1, "modes": "both", "evaluated_at": "2025-01-01T00:00:00Z",
        "n_predictions": len(full)})  # fmt: skip
    return {"predictions": [p], "judgements": [v], "metrics": [m], "runs": [r]}


def sources(files_by_model):
    out = {}
    for model, files in files_by_model.items():
        for table, paths in files.items():
            out.setdefault(table, {})[model] = paths
    return out


def two_model_db(tmp_path, zero_shot: str, trained: str, method: str):
    """A read-only connection to the database of a zero-shot and a trained model."""
    path = tmp_path / "r.duckdb"
    models = {zero_shot: write_model(tmp_path, zero_shot),
              trained: write_model(tmp_path, trained, 1, method)}  # fmt: skip
    db.ingest(path, sources(models))
    return duckdb.connect(str(path), read_only=True)


def rows(path, sql):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_views_on_a_fixture_database(tmp_path):
    path = tmp_path / "r.duckdb"
    db.ingest(
        path,
        sources(
            {
                "zs": write_model(tmp_path, "zs"),
                "cavpref": write_model(tmp_path, "cavpref", 1, "cavpref"),
            }
        ),
    )
    avt = rows(path, 'SELECT model, mode, "MCIT", "MAT", "CAT", "Avg" FROM avtrustbench')
    assert avt == [
        ("cavpref", "generate", 75.0, 50.0, None, 62.5),
        ("cavpref", "loglik", 0.0, None, None, 0.0),
        ("zs", "generate", 75.0, 100.0, None, 87.5),
        ("zs", "loglik", 0.0, None, None, 0.0),
    ]
    # cavpref table: zero-shot rows first, then the methods in paper order
    assert [r[:2] for r in rows(path, "SELECT model, mode FROM cavpref")] == [
        ("zs", "generate"),
        ("zs", "loglik"),
        ("cavpref", "generate"),
        ("cavpref", "loglik"),
    ]
    main = rows(
        path,
        'SELECT model, "AV Exist", "A Count", "Exist", "Count", "Avg", "AVQA" '
        "FROM rlcomm_main WHERE mode = 'generate'",
    )
    assert main == [
        ("cavpref", 100.0, 0.0, 100.0, 50.0, 75.0, 50.0),
        ("zs", 100.0, 0.0, 100.0, 50.0, 75.0, 50.0),
    ]
    conf = rows(
        path,
        'SELECT model, mode, "Acc", "Yes-rate", "A-Acc", "A-Acc %", "V-Acc %", "Judge failures" '
        "FROM avconfusebench WHERE model = 'zs'",
    )
    assert conf == [("zs", "generate", 50.0, 25.0, 3.0, 60.0, 60.0, 1.0)]
    ab = rows(
        path,
        'SELECT model, "MUSIC-AVQA", "AVQA", "m1 Acc", "Yes-rate", "A-Acc %" '
        "FROM rlcomm_ablation WHERE mode = 'generate'",
    )
    assert ab == [("zs", 75.0, 50.0, 50.0, 25.0, 60.0)]  # cavpref is not an RL-CoMM row
    con = duckdb.connect(str(path), read_only=True)
    written = export_tables(con, tmp_path / "tables", ["avtrustbench", "avconfusebench"])
    con.close()
    assert len(written) == 6
    md = (tmp_path / "tables" / "avtrustbench.md").read_text()
    # value [95% Wilson interval] n; unparsed % beside each accuracy; Avg with its task count
    assert (
        "| zs | generate | 75.0 [30.1, 95.4] n=4 | 25.0 | – | – | – | – | – | – | – | – | – | – "
        "| – | – | 100.0 [34.2, 100.0] n=2 | 0.0 | – | – | 87.5 (2 of 9 tasks) |" in md
    )
    assert "| MCIT % | MCIT unparsed % |" in md and "Wilson" in md
    csv = (tmp_path / "tables" / "avtrustbench.csv").read_text().splitlines()
    assert csv[0].startswith("model,mode,MCIT,MCIT_lo,MCIT_hi,MCIT_n,MCIT unparsed,")
    assert csv[0].endswith(",Avg,Avg_n,source")
    zs = dict(zip(csv[0].split(","), csv[3].split(","), strict=True))
    assert (zs["model"], zs["MCIT"], zs["MCIT_n"], zs["MCIT unparsed"]) == ("zs", "75.0000", "4",
                                                                           "25.0000")  # fmt: skip
    assert (zs["MCIT_lo"], zs["MCIT_hi"]) == ("30.0642", "95.4413")  # Wilson 3/4
    assert (zs["MAT"], zs["MAT_lo"], zs["MAT_hi"]) == ("100.0000", "34.2380", "100.0000")
    assert (zs["Avg"], zs["Avg_n"], zs["ICIT"], zs["ICIT_lo"]) == ("87.5000", "2", "", "")
    tex = (tmp_path / "tables" / "avtrustbench.tex").read_text()
    assert "\\begin{tabular}{ll" + "r" * 19 + "}" in tex and "30.1, 95.4" in tex
    # counts are counts: judge failures k of n, never under a % header
    md = (tmp_path / "tables" / "avconfusebench.md").read_text()
    assert "| Judge failures (count) |" in md and "| 1 of 3 |" in md
    assert "| A-Acc (0–5) |" in md and "| 3.00 n=2 |" in md
    conf = dict(zip(*[r.split(",") for r in
                      (tmp_path / "tables" / "avconfusebench.csv").read_text().splitlines()[:2]],
                    strict=True))  # fmt: skip
    assert (conf["Judge failures"], conf["Judge failures_n"], conf["A-Acc"]) == ("1", "3", "3.0000")
    assert "A-Acc_lo" not in conf  # a 0-5 mean is no proportion: no Wilson interval


# cross_benchmark column -> (view, column) it must repeat: written out here, not read
# from views.CROSS, so a wrong source in the view fails the test
CROSS_SOURCES = {
    "AVTrustBench Avg": ("avtrustbench", "Avg"),
    "m1 Acc": ("avconfusebench", "Acc"),
    "Yes-rate": ("avconfusebench", "Yes-rate"),
    "m1 unparsed": ("avconfusebench", "m1 unparsed"),
    "A-Acc %": ("avconfusebench", "A-Acc %"),
    "V-Acc %": ("avconfusebench", "V-Acc %"),
    "Audio match %": ("avconfusebench", "Audio match %"),
    "MUSIC-AVQA": ("rlcomm_main", "Avg"),
    "MUSIC-AVQA unparsed": ("rlcomm_main", "MUSIC-AVQA unparsed"),
    "AVQA": ("rlcomm_main", "AVQA"),
    "AVQA unparsed": ("rlcomm_main", "AVQA unparsed"),
}


def test_the_cavpref_table_lists_a_users_own_variants_after_the_built_in_methods(tmp_path):
    """A method trained by name (``training.cavpref_fixed_beta``, ``training.dpo_beta05``)
    is a row of the CAVPref table, after the paper's methods; an RL-CoMM stage is not."""
    path = tmp_path / "r.duckdb"
    trained = {"fixed": "cavpref_fixed_beta", "cavpref": "cavpref", "beta05": "dpo_beta05",
               "dpo": "dpo", "grpo": "grpo_acc", "other": "cavprefx"}  # fmt: skip
    models = {"zs": write_model(tmp_path, "zs", 0, None, ["avtrustbench"])}
    for model, method in trained.items():
        models[model] = write_model(tmp_path, model, 1, method, ["avtrustbench"])
    db.ingest(path, sources(models))
    listed = [r[0] for r in rows(path, "SELECT model FROM cavpref WHERE mode = 'generate'")]
    assert listed == ["zs", "dpo", "cavpref", "beta05", "fixed"]


def test_cross_benchmark_repeats_the_tables_and_leaves_unevaluated_cells_empty(tmp_path):
    path = tmp_path / "r.duckdb"
    models = {
        "zs": write_model(tmp_path, "zs"),
        # the papers' subsets: CAVPref on AVTrustBench, RL-CoMM on the others
        "cavpref": write_model(tmp_path, "cavpref", 1, "cavpref", ["avtrustbench"]),
        "rlcomm": write_model(tmp_path, "rlcomm", 1, "rlcomm_ansco", ["avconfusebench", "qa"]),
    }
    db.ingest(path, sources(models))
    names = [n for c in CROSS_SOURCES for n in (c, f"{c} n")]
    sql = f"SELECT model, mode, {', '.join(map(_quoted, names))} FROM cross_benchmark"
    cross = {(r[0], r[1]): dict(zip(names, r[2:], strict=True)) for r in rows(path, sql)}
    # zero-shot rows first, then the methods in paper order (CAVPref's, then RL-CoMM's)
    order = [r[:2] for r in rows(path, "SELECT model, mode FROM cross_benchmark")]
    assert order == [("zs", "generate"), ("zs", "loglik"), ("cavpref", "generate"),
                     ("cavpref", "loglik"), ("rlcomm", "generate")]  # fmt: skip
    for column, (view, source) in CROSS_SOURCES.items():
        for suffix in ("", " n"):
            sql = f"SELECT model, mode, {_quoted(source + suffix)} FROM {view}"
            theirs = {(m, mode): v for m, mode, v in rows(path, sql)}
            for key, row in cross.items():
                assert row[column + suffix] == theirs.get(key), (key, column + suffix)
    zs, cavpref, rlcomm = (cross[m, "generate"] for m in ("zs", "cavpref", "rlcomm"))
    assert (zs["AVTrustBench Avg"], zs["AVTrustBench Avg n"], zs["Yes-rate"]) == (87.5, 2, 25.0)
    assert (zs["MUSIC-AVQA"], zs["AVQA"]) == (75.0, 50.0)
    assert zs["Audio match %"] == pytest.approx(200 / 3)
    assert cavpref["AVTrustBench Avg"] == 62.5 and rlcomm["Yes-rate"] == 25.0
    # not evaluated is NULL, never 0
    assert all(cavpref[c] is None for c in CROSS_SOURCES if c != "AVTrustBench Avg")
    assert rlcomm["AVTrustBench Avg"] is None and rlcomm["AVTrustBench Avg n"] is None
    con = duckdb.connect(str(path), read_only=True)
    try:
        export_tables(con, tmp_path / "tables", ["cross_benchmark"])
    finally:
        con.close()
    md = (tmp_path / "tables" / "cross_benchmark.md").read_text()
    assert "| cavpref | generate | 62.5 (2 of 9 tasks) | – | – |" in md
    assert "| rlcomm | generate | – | 50.0 [15.0, 85.0] n=4 | 25.0 [4.6, 69.9] n=4 |" in md
    table = list(csv_module.DictReader((tmp_path / "tables" / "cross_benchmark.csv").open()))
    by_row = {(r["model"], r["mode"]): r for r in table}
    assert by_row["rlcomm", "generate"]["AVTrustBench Avg"] == ""
    assert by_row["cavpref", "generate"]["Yes-rate"] == ""
    assert by_row["zs", "generate"]["Yes-rate_n"] == "4"


def test_a_new_or_changed_view_changes_the_results_db_parameter(monkeypatch):
    """The views are stored in the database: rule results_db's ``views`` parameter is
    their digest, so a run finished before a view changed recreates them."""
    from avtrust.results import views

    before, sql = db.views_digest(), views.view_sql()
    assert db.views_digest() == before  # stable between calls (and so between runs)
    monkeypatch.setattr(views, "view_sql", lambda: {**sql, "cross_benchmark": "SELECT 1"})
    assert db.views_digest() != before


def _quoted(name):
    return '"' + name + '"'


def test_adding_a_model_changes_only_its_rows(tmp_path):
    path = tmp_path / "r.duckdb"
    a = write_model(tmp_path, "a")
    assert db.ingest(path, sources({"a": a}))["metrics"] == ["a"]
    before = rows(path, "SELECT * FROM metrics WHERE model = 'a' ORDER BY ALL")
    changed = db.ingest(path, sources({"a": a, "b": write_model(tmp_path, "b", 1)}))
    assert changed == {"predictions": ["b"], "judgements": ["b"], "metrics": ["b"], "runs": ["b"]}
    assert rows(path, "SELECT * FROM metrics WHERE model = 'a' ORDER BY ALL") == before
    assert {r[0] for r in rows(path, "SELECT DISTINCT seq FROM metrics WHERE model = 'a'")} == {1}
    assert {r[0] for r in rows(path, "SELECT DISTINCT seq FROM metrics WHERE model = 'b'")} == {2}
    # nothing changed: nothing re-ingested; a model dropped from the config: its rows go
    assert db.ingest(path, sources({"a": a, "b": write_model(tmp_path, "b", 1)})) == {}
    assert db.ingest(path, sources({"b": write_model(tmp_path, "b", 1)}))["metrics"] == ["a"]
    assert rows(path, "SELECT DISTINCT model FROM predictions") == [("b",)]


def _table(rows, view="avtrustbench"):
    from avtrust.results.tables import Row, Table
    from avtrust.results.views import COLUMNS

    return Table(view, view, COLUMNS[view], [Row(*r) for r in rows])


def test_paper_rows_are_shown_beside_matching_rows():
    ours = [
        ("omni", "generate", {"MCIT": 10.0}, {"MCIT": 10}),
        ("omni", "loglik", {"MCIT": 20.0}, {"MCIT": 10}),
        ("tuned", "generate", {"MCIT": 1.0}, {"MCIT": 10}),
    ]
    entries = [
        {"beside": "omni", "label": "Omni (paper)", "source": "Table 1", "values": {"MCIT": 42.0}},
        {"beside": ["cavpref"], "label": "CAVPref (paper)", "source": "Table 3",
         "values": {"MCIT": "50.10"}, "n": {"MCIT": 100}, "n_source": "Sec. 4"},
        {"label": "Other (paper)", "source": "Table 1", "values": {"MAT": 7}},
    ]  # fmt: skip
    notes = [{"text": "Up to 1%", "source": "abstract"}]
    paper = {"tables": {"avtrustbench": {"source": "arXiv", "rows": entries, "notes": notes}}}
    table = with_paper_rows(_table(ours), paper, methods={"tuned": "cavpref"})
    assert [(r.model, r.mode) for r in table.rows] == [
        ("omni", "generate"),
        ("Omni (paper)", "paper"),  # after the generate row of the model it names
        ("omni", "loglik"),
        ("tuned", "generate"),
        ("CAVPref (paper)", "paper"),  # matched through the run's training method
        ("Other (paper)", "paper"),  # no row of ours: after them
    ]
    assert table.rows[4].values == {"MCIT": "50.10"}  # printed as the paper writes it
    text = markdown(table)
    assert "| CAVPref (paper) | paper | 100 | 50.10 [40.4, 59.6] |" in text  # n per row
    assert "Table 3; n: Sec. 4" in text and "Up to 1% (abstract)" in text
    assert "Table 3; n: Sec. 4" in csv_text(table).splitlines()[5]
    # without rows of ours the paper rows still show
    alone = with_paper_rows(_table([]), paper)
    assert [r.model for r in alone.rows] == ["Omni (paper)", "CAVPref (paper)", "Other (paper)"]
    for bad, match in [
        ({"label": "x", "source": "s", "values": {"Bogus": 1}}, "Bogus"),
        ({"label": "x", "values": {"MCIT": 1}}, "source"),
        ({"label": "x", "source": "s", "values": {"MCIT": "n/a"}}, "not a number"),
        ({"label": "x", "source": "s", "values": {"MCIT": 1}, "n": {"MCIT": 3}}, "n_source"),
    ]:
        with pytest.raises(ValueError, match=match):
            with_paper_rows(_table(ours), {"tables": {"avtrustbench": {"rows": [bad]}}})


def test_unparsed_replies_are_visible_not_a_perfect_yes_rate():
    """A model whose every m1 reply is unparseable: Yes-rate 0 beside unparsed 100 %."""
    rows = [pred("m", "avconfusebench", "m1", i, False, parsed=None, status="unparseable",
                 kind="yes_no") for i in range(10)]  # fmt: skip
    t = model_metrics(rows)
    assert metric(t, "m1", "yes_rate") == (0.0, 10)
    assert metric(t, "m1", "unparseable") == (100.0, 10)
    record = {"Acc": 0.0, "Yes-rate": 0.0, "m1 unparsed": 100.0}
    table = _table([("m", "generate", record, dict.fromkeys(record, 10))], "avconfusebench")
    text = markdown(table)
    assert "| Acc % | Yes-rate % | m1 unparsed % |" in text
    assert "| m | generate | 10 | 0.0 [0.0, 27.8] | 0.0 [0.0, 27.8] | 100.0 |" in text


PAPERS = Path(os.environ.get("AVTRUST_PAPERS", "/work/shared/papers"))


def _shipped():
    from avtrust import data_files

    return data_files.load("paper_numbers")["tables"]


def _paper_row(view, label_start):
    [row] = [r for r in _shipped()[view]["rows"] if r["label"].startswith(label_start)]
    return row["values"]


def test_shipped_paper_numbers_name_their_sources_and_fit_the_tables():
    from avtrust.results.tables import paper_entries
    from avtrust.results.views import OURS_ONLY, VIEWS

    tables = _shipped()
    assert set(tables) == set(VIEWS) - OURS_ONLY
    for view, spec in tables.items():
        assert spec["source"] and "arXiv" in spec["source"]
        rows, notes = paper_entries(view, {"tables": tables})  # labels, sources, columns
        for entry in rows:
            assert entry["label"] and "paper" in entry["label"] and entry["source"]
            assert all(isinstance(v, str) for v in entry["values"].values()), entry["label"]
        for note in notes:
            assert note["source"]
    # the papers' main tables are there, in full
    assert len(tables["rlcomm_main"]["rows"]) == 6 and len(tables["avhbench"]["rows"]) == 4
    assert all(len(r["values"]) == 7 for r in tables["rlcomm_main"]["rows"])


def test_shipped_paper_numbers_agree_with_each_other():
    """Typos show up as disagreements between the tables that print one number twice."""
    for view, acc in (("avconfusebench", "Acc"), ("rlcomm_ablation", "m1 Acc")):
        for row in _shipped()[view]["rows"]:
            v = row["values"]
            if acc in v and "Yes-rate" in v:  # m1: every answer is yes or no
                assert float(v[acc]) + float(v["Yes-rate"]) == pytest.approx(100), row["label"]
    for name in ("", " + SFT", " + GRPO", " + RL-CoMM"):
        main = _paper_row("rlcomm_main", f"Qwen2.5-Omni-3B{name} (")
        confuse = _paper_row("avconfusebench", f"Qwen2.5-Omni-3B{name} (")
        ablation = _paper_row("rlcomm_ablation", f"Qwen2.5-Omni-3B{name} (")
        assert (ablation["MUSIC-AVQA"], ablation["AVQA"]) == (main["Avg"], main["AVQA"])
        assert ablation["m1 Acc"] == confuse["Acc"]
        for key in ("Yes-rate", "A-Acc", "V-Acc"):
            assert ablation.get(key) == confuse.get(key)
    base, best = (
        _paper_row("rlcomm_main", "Qwen2.5-Omni-3B ("),
        _paper_row("rlcomm_main", "Qwen2.5-Omni-3B + RL-CoMM"),
    )
    [delta] = _shipped()["rlcomm_main"]["notes"]
    for column in ("Exist", "Localis", "Count", "Comp", "Temp", "Avg", "AVQA"):
        diff = float(best[column]) - float(base[column])
        assert f"{column} +{diff:.2f}" in " ".join(delta["text"].split())


@pytest.mark.skipif(not PAPERS.is_dir(), reason="the papers' texts are not on this machine")
def test_shipped_paper_numbers_are_printed_in_the_papers():
    text = " ".join(p.read_text(encoding="utf-8") for p in PAPERS.glob("*.txt"))
    for view, spec in _shipped().items():
        for row in spec["rows"]:
            for column, value in row["values"].items():
                assert value in text, (view, row["label"], column, value)


def test_tables_show_the_paper_rows(tmp_path):
    from avtrust.results.views import VIEWS

    con = two_model_db(tmp_path, "omni", "rlcomm", "rlcomm_ansco")
    export_tables(con, tmp_path / "tables", VIEWS)
    con.close()
    for view, spec in _shipped().items():
        md = (tmp_path / "tables" / f"{view}.md").read_text()
        with (tmp_path / "tables" / f"{view}.csv").open(newline="") as f:
            table = list(csv_module.DictReader(f))
        paper = {r["model"]: r for r in table if r["mode"] == "paper"}
        for entry in spec["rows"]:
            assert f"| {entry['label']} | paper |" in md
            assert paper[entry["label"]]["source"].startswith(entry["source"])
            for column, value in entry["values"].items():
                assert paper[entry["label"]][column] == value
        for note in spec.get("notes") or []:
            assert " ".join(note["text"].split()) in " ".join(md.split())
    main = list(csv_module.DictReader((tmp_path / "tables" / "rlcomm_main.csv").open()))
    order = [(r["model"], r["mode"]) for r in main]
    # the paper's base model after our zero-shot row, RL-CoMM after ours (its method)
    assert order[order.index(("omni", "generate")) + 1][0].startswith("Qwen2.5-Omni-3B (paper")
    assert order[order.index(("rlcomm", "generate")) + 1][0].startswith(
        "Qwen2.5-Omni-3B + RL-CoMM (paper"
    )
    confuse = (tmp_path / "tables" / "avconfusebench.md").read_text()
    assert "| 8.22 [3.8, 16.8] n=73 |" in confuse  # Wilson interval of 6/73
