"""The breakdowns the papers discuss: SQL views over predictions, samples and judge
verdicts, and their tables (same cells as the papers' tables: value, 95% Wilson
interval, n).

Views (long form, one row per model, scoring mode and level):

- ``breakdown_category``: accuracy and unparsed share per (bench, task, category) of
  every closed-form task, ``category`` as the sample table holds it (MUSIC-AVQA's
  modality/type, AVQA's question types, the AudioSet tasks' stitch/swap/binding, the
  m1 instrument count);
- ``breakdown_m1_instruments``: m1 accuracy, Yes-rate and unparsed share by the number
  of instruments in view;
- ``breakdown_m1_muted``: the same by the instrument whose sound was muted;
- ``breakdown_m2_sound`` / ``breakdown_m2_snr``: m2 by replacement sound and by its SNR
  (null: soundtrack replaced outright): the judge's A-Acc/V-Acc (0–5 means and
  sum / 5n in %) over the judged descriptions, judge failures, and the keyword audio
  match over all descriptions (the measure that exists without a judge);
- ``breakdown_judge_scores``: how often the judge gave each score 0–5, per part
  (audio, visual), over the judged descriptions; a model whose every judgement failed
  has n = 0 and no shares (not 0 %).

A level the samples do not record (an instrument list missing) is null, shown as
"(unknown)" in the tables; a model without results for a level has no row, shown as
"–" / "n/a" where the tables and plots place one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from avtrust.evaluate.parse import UNPARSED
from avtrust.results.tables import Row, Table, write_table
from avtrust.results.views import Column

PathLike = str | os.PathLike
JUDGE_SCORES = range(6)


@dataclass(frozen=True)
class Breakdown:
    """One breakdown: its view's SQL, the label columns and the number columns.

    ``keys`` maps each label column of the table to the view column it reads; every
    number column ``c`` reads ``fields[c.name]`` (value, n) from the view.
    """

    name: str
    title: str
    sql: str
    keys: dict[str, str]
    columns: list[Column]
    fields: dict[str, tuple[str, str]]


def _in(values: Sequence[str]) -> str:
    return "(" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + ")"


def _closed(level: str, where: str) -> str:
    """Accuracy, Yes-rate and unparsed share of closed-form predictions by ``level``."""
    return (
        f"SELECT p.model, p.mode, p.bench, p.task, {level}, count(*) AS n, "
        "100.0 * count(*) FILTER (WHERE p.correct) / count(*) AS accuracy, "
        "100.0 * count(*) FILTER (WHERE lower(p.parsed) = 'yes') / count(*) AS yes_rate, "
        f"100.0 * count(*) FILTER (WHERE p.status IN {_in(UNPARSED)}) / count(*) AS unparsed "
        "FROM predictions p LEFT JOIN samples s USING (bench, task, id) "
        f"WHERE p.kind <> 'open' AND {where} GROUP BY ALL"
    )


def _m2(level: str) -> str:
    """The judge's scores and the keyword audio match of m2 descriptions by ``level``."""
    return (
        f"SELECT j.model, j.mode, {level}, count(*) AS n, "
        "count(j.a_score) AS judged, avg(j.a_score) AS a_score, avg(j.v_score) AS v_score, "
        "100.0 * sum(j.a_score) / (5 * count(j.a_score)) AS a_acc, "
        "100.0 * sum(j.v_score) / (5 * count(j.v_score)) AS v_acc, "
        "count(*) FILTER (WHERE j.error IS NOT NULL) AS judge_failed, "
        "100.0 * count(*) FILTER (WHERE j.audio_match) / count(*) AS audio_match "
        "FROM judgements j LEFT JOIN samples s "
        "ON s.bench = 'avconfusebench' AND s.task = 'm2' AND s.id = j.id GROUP BY ALL"
    )


JUDGE_SCORES_SQL = (
    "WITH j AS (SELECT model, mode, 'audio' AS part, a_score AS score FROM judgements "
    "UNION ALL SELECT model, mode, 'visual', v_score FROM judgements), "
    "t AS (SELECT model, mode, part, count(score) AS n FROM j GROUP BY ALL) "
    "SELECT t.model, t.mode, t.part, g.score, "
    "CASE WHEN t.n > 0 THEN count(j.score) END AS k, t.n, "
    "CASE WHEN t.n > 0 THEN 100.0 * count(j.score) / t.n END AS share "
    f"FROM t CROSS JOIN range({JUDGE_SCORES.start}, {JUDGE_SCORES.stop}) g(score) "
    "LEFT JOIN j ON j.model = t.model AND j.mode = t.mode AND j.part = t.part "
    "AND j.score = g.score GROUP BY t.model, t.mode, t.part, t.n, g.score"
)
CLOSED_COLUMNS = {
    "Acc": (Column("Acc", "rate"), ("accuracy", "n")),
    "Yes-rate": (Column("Yes-rate", "rate"), ("yes_rate", "n")),
    "unparsed": (Column("unparsed", "unparsed"), ("unparsed", "n")),
}
M2_COLUMNS = [
    (Column("A-Acc", "score"), ("a_score", "judged")),
    (Column("A-Acc %", "score_pct"), ("a_acc", "judged")),
    (Column("V-Acc", "score"), ("v_score", "judged")),
    (Column("V-Acc %", "score_pct"), ("v_acc", "judged")),
    (Column("Audio match %", "rate"), ("audio_match", "n")),
    (Column("Judge failures", "count"), ("judge_failed", "n")),
]


def _closed_breakdown(name, title, sql, keys, names) -> Breakdown:
    picked = [CLOSED_COLUMNS[n] for n in names]
    return Breakdown(name, title, sql, keys, [c for c, _ in picked],
                     {c.name: f for c, f in picked})  # fmt: skip


def _m2_breakdown(name, title, sql, keys) -> Breakdown:
    return Breakdown(name, title, sql, keys, [c for c, _ in M2_COLUMNS],
                     {c.name: f for c, f in M2_COLUMNS})  # fmt: skip


BREAKDOWNS: dict[str, Breakdown] = {
    b.name: b
    for b in [
        _closed_breakdown(
            "breakdown_category",
            "Accuracy per question category (the samples' category)",
            _closed(
                "coalesce(s.category, p.category) AS category",
                "coalesce(s.category, p.category) IS NOT NULL",
            ),  # fmt: skip
            {"task": "task", "category": "category"},
            ["Acc", "unparsed"],
        ),
        _closed_breakdown(
            "breakdown_m1_instruments",
            "AV-ConfuseBench m1 by number of instruments in view (Yes-rate: lower is better)",
            _closed(
                "len(s.instruments) AS instruments", "p.bench = 'avconfusebench' AND p.task = 'm1'"
            ),  # fmt: skip
            {"instruments": "instruments"},
            ["Acc", "Yes-rate", "unparsed"],
        ),
        _closed_breakdown(
            "breakdown_m1_muted",
            "AV-ConfuseBench m1 by muted instrument (Yes-rate: lower is better)",
            _closed(
                "s.muted_instrument AS muted_instrument",
                "p.bench = 'avconfusebench' AND p.task = 'm1'",
            ),  # fmt: skip
            {"muted instrument": "muted_instrument"},
            ["Acc", "Yes-rate", "unparsed"],
        ),
        _m2_breakdown(
            "breakdown_m2_sound",
            "AV-ConfuseBench m2 by replacement sound: judge A-Acc / V-Acc and keyword audio match",
            _m2("coalesce(s.sound_type, j.sound_type) AS sound_type"),
            {"sound type": "sound_type"},
        ),
        _m2_breakdown(
            "breakdown_m2_snr",
            "AV-ConfuseBench m2 by SNR of the new sound (replaced: no original audio left)",
            _m2("coalesce(s.snr_db, j.snr_db) AS snr_db"),
            {"SNR": "snr_db"},
        ),
        Breakdown(
            "breakdown_judge_scores",
            "AV-ConfuseBench m2: distribution of the judge's 0–5 scores",
            JUDGE_SCORES_SQL,
            {"part": "part"},
            [Column(f"score {s}", "rate") for s in JUDGE_SCORES],
            {f"score {s}": ("share", "n") for s in JUDGE_SCORES},
        ),
    ]
}


def view_sql() -> dict[str, str]:
    return {name: b.sql for name, b in BREAKDOWNS.items()}


def _level(view_column: str, value):
    """A level as the tables print it (None stays None: "(unknown)")."""
    if value is None:
        return "replaced" if view_column == "snr_db" else None
    if view_column == "snr_db":
        return f"{float(value):g} dB"
    return str(value)


def _sort_key(view_column: str, value):
    if view_column == "snr_db":  # replaced outright (no original audio) first
        return (value is not None, -float("inf") if value is None else float(value))
    return (value is None, value)


def build_breakdown(con, name: str) -> Table:
    """The table of breakdown ``name``: one row per level, model and mode."""
    b = BREAKDOWNS[name]
    if b.name == "breakdown_judge_scores":
        return _judge_table(con, b)
    cur = con.execute(f"SELECT * FROM {name}")
    names = [d[0] for d in cur.description]
    records = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    records.sort(key=lambda r: (*(_sort_key(v, r[v]) for v in b.keys.values()),
                                r["model"], r["mode"]))  # fmt: skip
    rows = []
    for r in records:
        values = {c.name: r[b.fields[c.name][0]] for c in b.columns}
        counts = {c.name: r[b.fields[c.name][1]] for c in b.columns}
        keys = {k: _level(v, r[v]) for k, v in b.keys.items()}
        rows.append(Row(r["model"], r["mode"], values, counts, keys=keys))
    return Table(name, b.title, b.columns, rows, keys=list(b.keys))


def _judge_table(con, b: Breakdown) -> Table:
    records = con.execute(
        f"SELECT part, model, mode, score, share, n FROM {b.name} ORDER BY part, model, mode, score"
    ).fetchall()
    by_row: dict[tuple, Row] = {}
    for part, model, mode, score, share, n in records:
        row = by_row.setdefault((part, model, mode), Row(model, mode, keys={"part": part}))
        row.values[f"score {score}"] = share
        row.n[f"score {score}"] = n
    notes = [
        "Share of the judged descriptions that got each score; n: judged descriptions "
        "(judge failures are left out); a row of –: every judgement of that model failed."
    ]
    return Table(b.name, b.title, b.columns, list(by_row.values()), notes, list(b.keys))


def export_breakdowns(con, out_dir: PathLike, names: Sequence[str] | None = None) -> list[Path]:
    """Write ``<breakdown>.md``, ``.tex`` and ``.csv``; returns the paths."""
    written = []
    for name in names if names is not None else BREAKDOWNS:
        written += write_table(build_breakdown(con, name), out_dir)
    return written
