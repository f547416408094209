"""Breakdowns on a hand-made results database (avtrust.results.breakdowns and its plots):
the values, counts and Wilson intervals per level, a missing value apart from 0, the
files written, and an older database brought up to the new sample columns."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from avtrust.bench.samples import SAMPLE_SCHEMA
from avtrust.evaluate.infer import PREDICTION_SCHEMA
from avtrust.evaluate.judge import JUDGE_SCHEMA
from avtrust.evaluate.metrics import model_metrics
from avtrust.io import write_json_atomic, write_parquet_atomic
from avtrust.results import breakdown_plots, db
from avtrust.results.breakdowns import BREAKDOWNS, build_breakdown, export_breakdowns

README = Path(__file__).resolve().parents[2] / "README.md"

# (id, category, instruments, muted) of the m1 samples; m1-4 records no instruments
M1 = [
    ("m1-0", "two", ["violin", "cello"], "violin"),
    ("m1-1", "two", ["violin", "cello"], "cello"),
    ("m1-2", "three", ["violin", "cello", "flute"], "violin"),
    ("m1-3", "three", ["piano", "flute", "cello"], "flute"),
    ("m1-4", None, None, None),
]
# (id, sound, snr) of the m2 samples (snr None: soundtrack replaced)
M2 = [("m2-0", "wind", None), ("m2-1", "wind", 10.0), ("m2-2", "rain", None),
      ("m2-3", "rain", 10.0)]  # fmt: skip
QA = [("q0", "Audio/Counting"), ("q1", "Audio/Counting"), ("q2", "Audio/Counting"),
      ("q3", "Visual/Location"), ("q4", "Visual/Location")]  # fmt: skip


def _samples():
    rows = [{"id": i, "bench": "qa", "task": "MUSIC-AVQA", "category": c, "answer": "two",
             "options": ["two", "three"], "answer_index": 0} for i, c in QA]  # fmt: skip
    rows += [{"id": i, "bench": "avconfusebench", "task": "m1", "category": c, "answer": "no",
              "options": ["yes", "no"], "answer_index": 1, "instruments": ins,
              "muted_instrument": muted} for i, c, ins, muted in M1]  # fmt: skip
    rows += [{"id": i, "bench": "avconfusebench", "task": "m2", "category": s, "answer": "",
              "answer_index": -1, "sound_type": s, "snr_db": snr} for i, s, snr in M2]  # fmt: skip
    return rows


def _pred(model, bench, task, id_, correct, parsed, status="ok", kind="choice", category=None):
    return {"model": model, "bench": bench, "task": task, "id": id_, "mode": "generate",
            "kind": kind, "raw": parsed or "?", "parsed": parsed, "status": status,
            "correct": correct, "category": category}  # fmt: skip


def _predictions(model):
    qa = {"q0": (True, "two", "ok"), "q1": (False, "three", "ok"),
          "q2": (False, None, "unparseable"), "q3": (True, "two", "ok"),
          "q4": (True, "two", "ok")}  # fmt: skip
    rows = [_pred(model, "qa", "MUSIC-AVQA", i, *qa[i], category=c) for i, c in QA]
    m1 = {"m1-0": "yes", "m1-1": "no", "m1-2": "yes", "m1-3": "yes", "m1-4": None}
    for i, category, _, _ in M1:
        if model == "tuned" and i == "m1-1":
            continue  # never evaluated: no cello row for this model (not a 0)
        parsed = m1[i]
        rows.append(_pred(model, "avconfusebench", "m1", i, parsed == "no", parsed,
                          "ok" if parsed else "unparseable", "yes_no", category))  # fmt: skip
    rows += [_pred(model, "avconfusebench", "m2", i, None, None, "open", "open", s)
             for i, s, _ in M2]  # fmt: skip
    return rows


def _verdicts(model):
    # zs: (a, v, audio match) per m2 sample, m2-2's judgement failed; tuned: every one failed
    scores = {"m2-0": (5, 4, True), "m2-1": (3, 2, False), "m2-2": (None, None, True),
              "m2-3": (0, 5, False)}  # fmt: skip
    out = []
    for i, sound, snr in M2:
        a, v, match = scores[i] if model == "zs" else (None, None, False)
        out.append({"model": model, "id": i, "mode": "generate", "sound_type": sound,
                    "snr_db": snr, "judge": "j", "a_score": a, "v_score": v, "attempts": 1,
                    "error": "malformed" if a is None else None, "audio_match": match})  # fmt: skip
    return out


def _full(rows, schema):
    return pa.Table.from_pylist([{f.name: r.get(f.name) for f in schema} for r in rows],
                                schema=schema)  # fmt: skip


def build_db(tmp_path: Path) -> Path:
    files = tmp_path / "files"
    samples = {}
    for bench, task in [("qa", "MUSIC-AVQA"), ("avconfusebench", "m1"), ("avconfusebench", "m2")]:
        rows = [r for r in _samples() if (r["bench"], r["task"]) == (bench, task)]
        path = write_parquet_atomic(files / f"{task}.parquet", _full(rows, SAMPLE_SCHEMA))
        samples[f"{bench}/{task}"] = [path]
    sources = {"samples": samples, "predictions": {}, "judgements": {}, "metrics": {}, "runs": {}}
    for model in ("zs", "tuned"):
        preds, verdicts = _predictions(model), _verdicts(model)
        sources["predictions"][model] = [write_parquet_atomic(
            files / f"{model}.pred.parquet", _full(preds, PREDICTION_SCHEMA))]  # fmt: skip
        sources["judgements"][model] = [write_parquet_atomic(
            files / f"{model}.judge.parquet", _full(verdicts, JUDGE_SCHEMA))]  # fmt: skip
        sources["metrics"][model] = [write_parquet_atomic(
            files / f"{model}.metrics.parquet", model_metrics(preds, verdicts))]  # fmt: skip
        sources["runs"][model] = [write_json_atomic(files / f"{model}.run.json", {
            "model": model, "kind": "zero-shot", "method": None, "base_model": "omni",
            "checkpoint": None, "adapter": "a", "config_hash": "h", "seed": 1, "modes": "generate",
            "evaluated_at": "2025-01-01T00:00:00Z", "n_predictions": len(preds)})]  # fmt: skip
    path = tmp_path / "r.duckdb"
    db.ingest(path, sources)
    return path


@pytest.fixture
def con(tmp_path):
    con = duckdb.connect(str(build_db(tmp_path)), read_only=True)
    yield con
    con.close()


def _rows(con, sql):
    return con.execute(sql).fetchall()


def test_samples_table_keeps_what_the_breakdowns_need(con):
    got = _rows(con, "SELECT id, category, instruments, muted_instrument, sound_type, snr_db "
                     "FROM samples WHERE task IN ('m1', 'm2') ORDER BY id")  # fmt: skip
    assert got[0] == ("m1-0", "two", ["violin", "cello"], "violin", None, None)
    assert got[4] == ("m1-4", None, None, None, None, None)
    assert got[6] == ("m2-1", "wind", None, None, "wind", 10.0)


def test_breakdown_views_hand_computed(con):
    cat = _rows(con, "SELECT task, category, n, round(accuracy, 2), round(unparsed, 2) FROM "
                     "breakdown_category WHERE model = 'zs' ORDER BY ALL")  # fmt: skip
    assert cat == [
        ("MUSIC-AVQA", "Audio/Counting", 3, 33.33, 33.33),  # 1 of 3 right, 1 unparseable
        ("MUSIC-AVQA", "Visual/Location", 2, 100.0, 0.0),
        ("m1", "three", 2, 0.0, 0.0),
        ("m1", "two", 2, 50.0, 0.0),
    ]  # m2 is open-ended: no accuracy; m1-4 has no category
    inst = _rows(con, "SELECT instruments, n, accuracy, yes_rate, unparsed FROM "
                      "breakdown_m1_instruments WHERE model = 'zs' ORDER BY 1")  # fmt: skip
    assert inst == [(2, 2, 50.0, 50.0, 0.0), (3, 2, 0.0, 100.0, 0.0), (None, 1, 0.0, 0.0, 100.0)]
    muted = _rows(con, "SELECT model, muted_instrument, n, yes_rate FROM breakdown_m1_muted "
                       "WHERE muted_instrument IS NOT NULL ORDER BY ALL")  # fmt: skip
    assert muted == [("tuned", "flute", 1, 100.0), ("tuned", "violin", 2, 100.0),
                     ("zs", "cello", 1, 0.0), ("zs", "flute", 1, 100.0),
                     ("zs", "violin", 2, 100.0)]  # fmt: skip
    sound = _rows(con, "SELECT sound_type, n, judged, a_score, a_acc, v_score, v_acc, "
                       "judge_failed, audio_match FROM breakdown_m2_sound WHERE model = 'zs' "
                       "ORDER BY sound_type")  # fmt: skip
    assert sound == [
        ("rain", 2, 1, 0.0, 0.0, 5.0, 100.0, 1, 50.0),  # m2-2's judgement failed
        ("wind", 2, 2, 4.0, 80.0, 3.0, 60.0, 0, 50.0),
    ]
    snr = _rows(con, "SELECT snr_db, n, judged, a_score, a_acc, v_acc, audio_match FROM "
                     "breakdown_m2_snr WHERE model = 'zs' ORDER BY snr_db NULLS FIRST")  # fmt: skip
    assert snr == [(None, 2, 1, 5.0, 100.0, 80.0, 100.0), (10.0, 2, 2, 1.5, 30.0, 70.0, 0.0)]
    # every judgement of tuned failed: no judge numbers, the keyword match still counts
    assert _rows(con, "SELECT judged, a_score, a_acc, audio_match, judge_failed FROM "
                      "breakdown_m2_sound WHERE model = 'tuned' AND sound_type = 'wind'") == [
        (0, None, None, 0.0, 2)
    ]  # fmt: skip
    scores = _rows(con, "SELECT part, score, k, n FROM breakdown_judge_scores "
                        "WHERE model = 'zs' ORDER BY part, score")  # fmt: skip
    assert scores == [("audio", s, int(s in (0, 3, 5)), 3) for s in range(6)] + [
        ("visual", s, int(s in (2, 4, 5)), 3) for s in range(6)
    ]
    assert set(_rows(con, "SELECT k, n, share FROM breakdown_judge_scores "
                          "WHERE model = 'tuned'")) == {(None, 0, None)}  # fmt: skip


def _csv(path):
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_breakdown_tables_have_counts_and_wilson_intervals(con, tmp_path):
    out = tmp_path / "tables"
    written = export_breakdowns(con, out)
    assert sorted(p.name for p in written) == sorted(
        f"{name}.{ext}" for name in BREAKDOWNS for ext in ("md", "tex", "csv")
    )
    md = (out / "breakdown_category.md").read_text()
    assert "| task | category | model | mode | n | Acc % | unparsed % |" in md
    # 1 of 3: Wilson [6.1, 79.2]; 2 of 2: [34.2, 100.0]
    assert "| MUSIC-AVQA | Audio/Counting | zs | generate | 3 | 33.3 [6.1, 79.2] | 33.3 |" in md
    assert "| MUSIC-AVQA | Visual/Location | zs | generate | 2 | 100.0 [34.2, 100.0] | 0.0 |" in md
    rows = _csv(out / "breakdown_m1_muted.csv")
    assert list(rows[0])[:8] == ["muted instrument", "model", "mode", "Acc", "Acc_lo", "Acc_hi",
                                 "Acc_n", "Yes-rate"]  # fmt: skip
    cello = [r for r in rows if r["muted instrument"] == "cello"]
    # a Yes-rate of 0 of 1 is a 0 with its interval; tuned never saw a muted cello: no row
    got = [(r["model"], r["Yes-rate"], r["Yes-rate_lo"], r["Yes-rate_hi"], r["Yes-rate_n"])
           for r in cello]  # fmt: skip
    assert got == [("zs", "0.0000", "0.0000", "79.3451", "1")]  # hi = z²/(1+z²)
    md = (out / "breakdown_m1_instruments.md").read_text()
    assert "| 3 | zs | generate | 2 | 0.0 [0.0, 65.8] | 100.0 [34.2, 100.0] | 0.0 |" in md
    assert "| (unknown) | zs | generate | 1 | 0.0 [0.0, 79.3] | 0.0 [0.0, 79.3] | 100.0 |" in md
    md = (out / "breakdown_m2_snr.md").read_text()
    # judge means over the judged descriptions, keyword match over all of them
    assert ("| replaced | zs | generate | 5.00 n=1 | 100.0 n=1 | 4.00 n=1 | 80.0 n=1 "
            "| 100.0 [34.2, 100.0] n=2 | 1 of 2 |") in md  # fmt: skip
    assert "| 10 dB | tuned | generate | – | – | – | – | 0.0 [0.0, 65.8] n=2 | 2 of 2 |" in md
    assert md.index("| replaced |") < md.index("| 10 dB |")
    scores = {(r["part"], r["model"]): r for r in _csv(out / "breakdown_judge_scores.csv")}
    zs = scores[("audio", "zs")]
    assert (zs["score 0"], zs["score 0_lo"], zs["score 0_hi"], zs["score 0_n"]) == (
        "33.3333", "6.1492", "79.2340", "3")  # fmt: skip
    assert (zs["score 1"], zs["score 1_lo"]) == ("0.0000", "0.0000")  # a real 0
    tuned = scores[("visual", "tuned")]
    assert (tuned["score 1"], tuned["score 1_lo"], tuned["score 1_n"]) == ("", "", "0")  # missing
    tex = (out / "breakdown_m2_sound.tex").read_text()
    assert "\\begin{tabular}{lll" in tex and "rain" in tex


def test_breakdown_plots_are_written_with_na_apart_from_zero(con, tmp_path, monkeypatch):
    saved = {}
    original = breakdown_plots._save

    def keep(fig, path):
        saved[Path(path).name] = fig
        return original(fig, path)

    monkeypatch.setattr(breakdown_plots, "_save", keep)
    out = breakdown_plots.all_plots(con, tmp_path / "plots")
    assert sorted(p.name for p in out) == sorted(breakdown_plots.PLOTS)
    for p in out:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000
    # Yes-rate by muted instrument: zs cello is a real 0, tuned cello was never evaluated
    [ax] = [
        a for a in saved["breakdown_m1.png"].axes if a.get_title().endswith("by muted instrument")
    ]
    labels = [t.get_text() for t in ax.texts]
    assert "0" in labels and "n/a" in labels
    spans = {tuple(round(y, 2) for y in (seg[0][1], seg[1][1]))
             for c in ax.collections for seg in c.get_segments()}  # fmt: skip
    assert (34.24, 100.0) in spans  # violin: 2 of 2 "yes"
    # judge scores: tuned has no judged description: n/a stubs, never 0-high bars
    ax = saved["breakdown_judge_scores.png"].axes[0]
    assert "n/a" in [t.get_text() for t in ax.texts]
    # m2: a judge ran (zs), so its A-Acc / V-Acc are drawn; the keyword match too
    titles = " ".join(a.get_title() for a in saved["breakdown_m2.png"].axes)
    assert "A-Acc" in titles and "V-Acc" in titles and "audio match" in titles


def test_an_older_database_is_rebuilt_with_the_new_sample_columns(tmp_path):
    path = build_db(tmp_path)
    con = duckdb.connect(str(path))
    con.execute("ALTER TABLE samples DROP COLUMN instruments")  # as an older version wrote it
    con.close()
    build_db(tmp_path)  # the same files: only the stale table is re-ingested
    con = duckdb.connect(str(path), read_only=True)
    assert _rows(con, "SELECT instruments FROM samples WHERE id = 'm1-2'") == [
        (["violin", "cello", "flute"],)
    ]
    assert _rows(con, "SELECT count(*) FROM breakdown_m1_instruments WHERE instruments = 3")[0][0]
    con.close()


def test_readme_documents_every_table_and_view(con):
    text = README.read_text(encoding="utf-8")
    start = text.index("### The results database")
    section = text[start : text.index("\n## ", start)]
    names = [r[0] for r in _rows(con, "SELECT table_name FROM information_schema.tables")]
    assert len(names) > 15
    for name in names:
        assert f"`{name}`" in section, name
    for name, (schema, _) in db.TABLES.items():
        # its paragraph, then a table of its columns
        documented = re.search(rf"\*\*`{name}`\*\*[^|]*?\n\n((?:\|[^\n]*\n)+)", section)
        assert documented, name
        for field in schema.names:
            assert f"`{field}`" in documented.group(1), (name, field)
    for name in BREAKDOWNS:
        assert f"`{name}`" in section
    assert build_breakdown(con, "breakdown_m1_muted").keys == ["muted instrument"]
