"""Export the papers' tables (the SQL views) to Markdown, LaTeX and CSV.

Every number carries its count and, where it is a proportion, its 95% Wilson score
interval (:func:`avtrust.evaluate.metrics.wilson`):

- CSV: per column ``X`` the value, ``X_lo`` / ``X_hi`` (proportions only, in %) and
  ``X_n``; a last column ``source`` names the paper table of a paper row (empty for ours).
- Markdown / LaTeX: ``62.5 [54.1, 70.2]`` (value [95% interval]) and the count, as one
  ``n`` column where every row's cells share it, else ``n=…`` in each cell; 0–5 judge
  means with their count only; counts as ``k of n`` under a ``(count)`` header; the
  task mean ``Avg`` with the number of tasks it averages. Each generate-mode accuracy
  has an ``unparsed %`` column beside it: unparseable replies count as wrong, so a low
  Yes-rate with a high unparsed share is no score.

Paper numbers (``avtrust/data/paper_numbers.yaml``) are shown as labelled reference
rows with mode ``paper``: a row whose ``beside`` names one of our rows (its evaluation
name, or the training method of its run) follows that row, the others come after ours.
Values are printed as the paper writes them. Only numbers copied from the papers
belong in that file; :func:`paper_entries` checks its shape.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from avtrust import data_files
from avtrust.evaluate.metrics import wilson
from avtrust.io import write_text_atomic
from avtrust.results.views import COLUMNS, PROPORTIONS, REFERENCE_ONLY, Column

PathLike = str | os.PathLike
TITLES = {
    "avtrustbench": "AVTrustBench leaderboard: accuracy per task",
    "cavpref": "CAVPref vs. SFT / DPO and ablations: AVTrustBench accuracy per task",
    "rlcomm_main": "RL-CoMM main table: MUSIC-AVQA accuracy per category, and AVQA",
    "avconfusebench": "AV-ConfuseBench: m1 accuracy and Yes-rate, m2 A-Acc / V-Acc",
    "rlcomm_ablation": "RL-CoMM ablation: QA accuracy, m1 and m2",
    "avhbench": "AVHBench hallucination accuracy (paper numbers only: not evaluated here)",
    "cross_benchmark": "Every model on both benchmarks: AVTrustBench Avg, AV-ConfuseBench m1 "
    "and m2, QA accuracy",
}
PAPER_MODE = "paper"


@dataclass
class Row:
    model: str
    mode: str
    values: dict = field(default_factory=dict)  # column -> float (ours) or str (paper)
    n: dict = field(default_factory=dict)  # column -> count
    source: str | None = None  # paper rows: where the numbers are printed
    keys: dict = field(default_factory=dict)  # breakdowns: label column -> level

    @property
    def paper(self) -> bool:
        return self.mode == PAPER_MODE

    def number(self, column: str) -> float | None:
        value = self.values.get(column)
        return None if value is None else float(value)


@dataclass
class Table:
    view: str
    title: str
    columns: list[Column]
    rows: list[Row]
    notes: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)  # label columns before model and mode


def read_view(con, view: str) -> tuple[list[str], list[list]]:
    if view in REFERENCE_ONLY:
        names = [n for c in COLUMNS[view] for n in (c.name, f"{c.name} n")]
        return ["model", "mode", *names], []
    cur = con.execute(f"SELECT * FROM {view}")
    columns = [d[0] for d in cur.description]
    return columns, [list(r) for r in cur.fetchall()]


def interval(column: Column, value, n) -> tuple[float, float] | None:
    """The 95% Wilson interval in % of a proportion cell (None for other kinds)."""
    if column.kind not in PROPORTIONS or value is None or not n:
        return None
    k = min(max(round(float(value) * n / 100), 0), n)
    lo, hi = wilson(k, n)
    return 100 * lo, 100 * hi


def paper_entries(view: str, paper: dict | None = None) -> tuple[list[dict], list[dict]]:
    """The checked paper rows and notes of ``view`` in paper_numbers.yaml."""
    paper = data_files.load("paper_numbers") if paper is None else paper
    spec = (paper.get("tables") or {}).get(view) or {}
    names = {c.name for c in COLUMNS[view]}
    rows = spec.get("rows") or []
    for entry in rows:
        where = f"paper_numbers.yaml: {view} row {entry.get('label')!r}"
        if not entry.get("label") or not entry.get("source"):
            raise ValueError(f"{where} needs a label and a source")
        values, counts = entry.get("values") or {}, entry.get("n") or {}
        unknown = (set(values) | set(counts)) - names
        if unknown:
            raise ValueError(
                f"{where} has columns {sorted(unknown)} that the table lacks "
                f"({', '.join(sorted(names))})"
            )
        if set(counts) - set(values) or (counts and not entry.get("n_source")):
            raise ValueError(f"{where}: an n needs its value and an n_source")
        for column, value in values.items():
            try:
                float(value)
            except (TypeError, ValueError):
                raise ValueError(f"{where}: {column} = {value!r} is not a number") from None
    notes = spec.get("notes") or []
    for note in notes:
        if not note.get("text") or not note.get("source"):
            raise ValueError(f"paper_numbers.yaml: {view} note {note!r} needs text and source")
    return rows, notes


def _beside(entry: dict) -> list[str]:
    beside = entry.get("beside", entry.get("model"))  # ``model``: the file's first layout
    return [beside] if isinstance(beside, str) else list(beside or [])


def with_paper_rows(table: Table, paper: dict | None = None, methods: dict | None = None):
    """``table`` with the paper's rows and notes added (in place; also returned).

    A paper row follows the generate-mode row (else the last row) of the first of our
    models named in its ``beside`` (evaluation name, or training method via ``methods``:
    model → method); unmatched paper rows come after ours.
    """
    paper = data_files.load("paper_numbers") if paper is None else paper
    entries, notes = paper_entries(table.view, paper)
    spec_source = ((paper.get("tables") or {}).get(table.view) or {}).get("source")
    methods = methods or {}
    anchors: dict[int, list[Row]] = {}
    cited: dict[str, list[str]] = {}  # source -> labels, in file order
    for entry in entries:
        row = Row(
            entry["label"],
            PAPER_MODE,
            {k: str(v) for k, v in entry["values"].items()},
            dict(entry.get("n") or {}),
            entry["source"] + (f"; n: {entry['n_source']}" if entry.get("n") else ""),
        )
        cited.setdefault(row.source, []).append(row.model)
        names = _beside(entry)
        matched = [i for i, r in enumerate(table.rows)
                   if r.model in names or methods.get(r.model) in names]  # fmt: skip
        at = len(table.rows)  # no match: after all of ours
        if matched:
            group = [i for i in matched if table.rows[i].model == table.rows[matched[0]].model]
            generated = [i for i in group if table.rows[i].mode != "loglik"]
            at = generated[0] if generated else group[-1]
        anchors.setdefault(at, []).append(row)
    out = []
    for i, row in enumerate(table.rows):
        out.append(row)
        out += anchors.get(i, [])
    out += anchors.get(len(table.rows), [])
    table.rows = out
    if entries:
        table.notes.append(
            f"Rows of mode '{PAPER_MODE}' are the papers' numbers as printed, not results of "
            f"this workflow{' (' + spec_source + ')' if spec_source else ''}: "
            + "; ".join(f"{', '.join(labels)} from {src}" for src, labels in cited.items())
            + "."
        )
    table.notes += [f"{n['text']} ({n['source']})" for n in notes]
    return table


def build_table(con, view: str, paper: dict | None = None) -> Table:
    """The rows of ``view`` (ours and the paper's), its columns and notes."""
    names, raw = read_view(con, view)
    rows = []
    for r in raw:
        record = dict(zip(names, r, strict=True))
        rows.append(
            Row(
                record["model"],
                record["mode"],
                {c.name: record.get(c.name) for c in COLUMNS[view]},
                {c.name: record.get(f"{c.name} n") for c in COLUMNS[view]},
            )
        )
    methods = {}
    if view not in REFERENCE_ONLY:
        methods = dict(con.execute("SELECT model, method FROM runs").fetchall())
    return with_paper_rows(Table(view, TITLES.get(view, view), COLUMNS[view], rows), paper, methods)


def _counted(c: Column) -> bool:
    """Columns whose n is shown as the sample count (shared or per cell)."""
    return c.kind in ("rate", "score", "score_pct")


def shared_n(table: Table) -> bool:
    """Whether one ``n`` per row says it all (every counted cell of a row shares it)."""
    return all(len(_row_ns(row, table)) <= 1 for row in table.rows)


def _row_ns(row: Row, table: Table) -> set[int]:
    return {
        row.n[c.name]
        for c in table.columns
        if _counted(c) and row.values.get(c.name) is not None and row.n.get(c.name)
    }


def header(c: Column, tex: bool = False) -> str:
    if c.kind == "score":
        return f"{c.name} (0{'--' if tex else '–'}5)"
    if c.kind == "count":
        return f"{c.name} (count)"
    if c.kind == "mean":
        return f"{c.name} % (task mean)"
    return c.name if c.name.endswith("%") else f"{c.name} %"


def _num(row: Row, c: Column, value, digits: int) -> str:
    return str(value) if row.paper else f"{float(value):.{digits}f}"


def cell(row: Row, c: Column, per_cell_n: bool, empty: str = "–") -> str:
    """One Markdown/LaTeX cell: value, interval and count as the column's kind wants."""
    value, n = row.values.get(c.name), row.n.get(c.name)
    if value is None or value != value:
        return empty
    if c.kind == "count":
        return f"{_num(row, c, value, 0)} of {n}" if n is not None else _num(row, c, value, 0)
    if c.kind == "mean":
        text = _num(row, c, value, 1)
        return f"{text} ({n} of {c.averages} tasks)" if n is not None else text
    text = _num(row, c, value, 2 if c.kind == "score" else 1)
    if c.kind == "unparsed":
        return text
    ci = interval(c, float(value), n)
    if ci:
        text += f" [{ci[0]:.1f}, {ci[1]:.1f}]"
    if per_cell_n and n:
        text += f" n={n}"
    return text


def _row_n(row: Row, table: Table) -> str:
    ns = _row_ns(row, table)
    return str(ns.pop()) if ns else "–"


def legend(table: Table) -> str:
    kinds = {c.kind for c in table.columns}
    parts = []
    if kinds & {"rate", "unparsed"}:
        parts.append("percentages with their 95% Wilson score interval in brackets")
    parts.append("n: samples behind a cell")
    if "unparsed" in kinds:
        parts.append(
            "'unparsed %': generated replies that could not be parsed, counted as wrong "
            "(a rate beside a high unparsed % is no score; log-likelihood rows always parse)"
        )
    if "score" in kinds:
        parts.append("A-Acc / V-Acc: judge means 0–5 over the judged descriptions (no interval)")
    if "score_pct" in kinds:
        parts.append("A-Acc % / V-Acc %: judge scores' sum / (5 × judged descriptions)")
    if "count" in kinds:
        parts.append("(count): k of n")
    means = [c.name for c in table.columns if c.kind == "mean"]
    if means:
        parts.append(
            f"{', '.join(means)}: mean of the row's AVTrustBench task accuracies (number of "
            "tasks averaged)"
        )
    return "Cells: " + "; ".join(parts) + "; –: no result."


def markdown(table: Table) -> str:
    per_cell = not shared_n(table)
    labels = [*table.keys, "model", "mode"]
    heads = labels + ([] if per_cell else ["n"]) + [header(c) for c in table.columns]
    lines = [f"# {table.title}", "", "| " + " | ".join(heads) + " |"]
    lines.append("|" + "|".join("---" if i < len(labels) else "---:"
                                for i in range(len(heads))) + "|")  # fmt: skip
    for row in table.rows:
        cells = _labels(row, table) + ([] if per_cell else [_row_n(row, table)])
        cells += [cell(row, c, per_cell) for c in table.columns]
        lines.append("| " + " | ".join(cells) + " |")
    if not table.rows:
        lines.append("| " + " | ".join(["(no results)"] + [""] * (len(heads) - 1)) + " |")
    lines += ["", legend(table)] + [f"\n{note}" for note in table.notes]
    return "\n".join(lines) + "\n"


def _labels(row: Row, table: Table) -> list[str]:
    return [_level(row.keys.get(k)) for k in table.keys] + [row.model, row.mode]


def _level(value) -> str:
    return "(unknown)" if value is None else str(value)


def _tex_escape(text: str) -> str:
    for a, b in [("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"),
                 ("#", r"\#"), ("$", r"\$"), ("{", r"\{"), ("}", r"\}"), ("–", "--"),
                 ("Δ", r"$\Delta$"), ("×", r"$\times$")]:  # fmt: skip
        text = text.replace(a, b)
    return text


def latex(table: Table) -> str:
    per_cell = not shared_n(table)
    labels = [*table.keys, "model", "mode"]
    heads = labels + ([] if per_cell else ["n"])
    spec = "l" * len(labels) + "r" * (len(heads) - len(labels) + len(table.columns))
    lines = [
        "\\begin{table}[t]",
        "\\centering",
        f"\\caption{{{_tex_escape(table.title)}}}",
        f"\\begin{{tabular}}{{{spec}}}",
        "\\toprule",
        " & ".join(_tex_escape(h) for h in heads + [header(c, True) for c in table.columns])
        + " \\\\",
        "\\midrule",
    ]
    for row in table.rows:
        cells = _labels(row, table) + ([] if per_cell else [_row_n(row, table)])
        cells += [cell(row, c, per_cell, "--") for c in table.columns]
        lines.append(" & ".join(_tex_escape(x) for x in cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    for note in [legend(table), *table.notes]:
        lines.append(f"\\\\[2pt]{{\\footnotesize {_tex_escape(note)}}}")
    lines.append("\\end{table}")
    return "\n".join(lines) + "\n"


def csv_columns(table: Table) -> list[str]:
    out = [*table.keys, "model", "mode"]
    for c in table.columns:
        out.append(c.name)
        if c.kind in PROPORTIONS:
            out += [f"{c.name}_lo", f"{c.name}_hi"]
        out.append(f"{c.name}_n")
    return out + ["source"]


def csv_text(table: Table) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(csv_columns(table))

    def fmt(v):
        return "" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))

    for row in table.rows:
        out = [*(fmt(row.keys.get(k)) for k in table.keys), row.model, row.mode]
        for c in table.columns:
            value, n = row.values.get(c.name), row.n.get(c.name)
            out.append(fmt(int(value) if c.kind == "count" and not row.paper and value is not None
                           else value))  # fmt: skip
            if c.kind in PROPORTIONS:
                ci = interval(c, value, n)
                out += [fmt(ci[0]), fmt(ci[1])] if ci else ["", ""]
            out.append(fmt(n))
        writer.writerow(out + [row.source or ""])
    return buffer.getvalue()


def export_tables(con, out_dir: PathLike, views: Sequence[str], paper: dict | None = None):
    """Write ``<view>.md``, ``.tex`` and ``.csv`` for each view; returns the paths."""
    written = []
    for view in views:
        written += write_table(build_table(con, view, paper), out_dir)
    return written


def write_table(table: Table, out_dir: PathLike) -> list[Path]:
    """``<view>.md``, ``.tex`` and ``.csv`` of ``table`` in ``out_dir``."""
    out_dir = Path(out_dir)
    return [
        write_text_atomic(out_dir / f"{table.view}.{suffix}", text)
        for suffix, text in (
            ("md", markdown(table)),
            ("tex", latex(table)),
            ("csv", csv_text(table)),
        )  # fmt: skip
    ]
