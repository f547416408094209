"""Export the papers' tables (the SQL views) to Markdown, LaTeX and CSV.

Paper numbers (``avtrust/data/paper_numbers.yaml``) are shown beside ours: a paper row
whose ``model`` is the name of one of our rows is inserted right after it, labelled
with the paper's name for the model and mode ``paper``, and the table gets a source
note. Only numbers copied from the papers belong in that file.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path

from avtrust import data_files
from avtrust.io import write_text_atomic

PathLike = str | os.PathLike
TITLES = {
    "avtrustbench": "AVTrustBench leaderboard: accuracy (%) per task",
    "cavpref": "CAVPref vs. SFT / DPO and ablations: AVTrustBench accuracy (%)",
    "rlcomm_main": "RL-CoMM main table: MUSIC-AVQA accuracy (%) per category, and AVQA",
    "avconfusebench": "AV-ConfuseBench: m1 accuracy and Yes-rate (%), m2 A-Acc / V-Acc (0-5 and %)",
    "rlcomm_ablation": "RL-CoMM ablation: QA accuracy, m1 and m2 (%)",
}


def read_view(con, view: str) -> tuple[list[str], list[list]]:
    cur = con.execute(f"SELECT * FROM {view}")
    columns = [d[0] for d in cur.description]
    return columns, [list(r) for r in cur.fetchall()]


def with_paper_rows(
    view: str, columns: list[str], rows: list[list], paper: dict | None = None
) -> tuple[list[list], str | None]:
    """``rows`` with the paper's rows inserted after the matching ones; the source note."""
    paper = data_files.load("paper_numbers") if paper is None else paper
    spec = (paper.get("tables") or {}).get(view) or {}
    by_model: dict[str, list[dict]] = {}
    for entry in spec.get("rows") or []:
        unknown = set(entry.get("values", {})) - set(columns)
        if unknown:
            raise ValueError(
                f"paper_numbers.yaml: {view} row {entry.get('label')!r} has columns "
                f"{sorted(unknown)} that the table lacks ({', '.join(columns)})"
            )
        by_model.setdefault(entry["model"], []).append(entry)
    out, used = [], False
    for row in rows:
        out.append(row)
        if columns[1] == "mode" and row[1] == "loglik":
            continue
        for entry in by_model.pop(row[0], []):
            used = True
            out.append(
                [entry.get("label", f"{row[0]} (paper)"), "paper"]
                + [entry["values"].get(c) for c in columns[2:]]
            )
    note = f"Paper rows: {spec['source']}." if used and spec.get("source") else None
    return out, note


def cell(value, empty: str = "–") -> str:
    if value is None:
        return empty
    if isinstance(value, float):
        return f"{value:.1f}" if value == value else empty
    return str(value)


def markdown(columns: Sequence[str], rows: Sequence[Sequence], title: str, note: str | None):
    lines = [f"# {title}", "", "| " + " | ".join(columns) + " |"]
    lines.append("|" + "|".join("---" if i < 2 else "---:" for i in range(len(columns))) + "|")
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    if not rows:
        lines.append("| " + " | ".join(["(no results)"] + [""] * (len(columns) - 1)) + " |")
    if note:
        lines += ["", note]
    return "\n".join(lines) + "\n"


def _tex_escape(text: str) -> str:
    for a, b in [("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"),
                 ("#", r"\#"), ("$", r"\$"), ("{", r"\{"), ("}", r"\}")]:  # fmt: skip
        text = text.replace(a, b)
    return text


def latex(columns: Sequence[str], rows: Sequence[Sequence], title: str, note: str | None):
    spec = "ll" + "r" * (len(columns) - 2)
    lines = [
        "\\begin{table}[t]",
        "\\centering",
        f"\\caption{{{_tex_escape(title)}}}",
        f"\\begin{{tabular}}{{{spec}}}",
        "\\toprule",
        " & ".join(_tex_escape(c) for c in columns) + " \\\\",
        "\\midrule",
    ]
    lines += [" & ".join(_tex_escape(cell(v, "--")) for v in r) + " \\\\" for r in rows]
    lines += ["\\bottomrule", "\\end{tabular}"]
    if note:
        lines.append(f"\\\\[2pt]{{\\footnotesize {_tex_escape(note)}}}")
    lines.append("\\end{table}")
    return "\n".join(lines) + "\n"


def csv_text(columns: Sequence[str], rows: Sequence[Sequence]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow(["" if v is None else (f"{v:.4f}" if isinstance(v, float) else v)
                         for v in r])  # fmt: skip
    return buffer.getvalue()


def export_tables(con, out_dir: PathLike, views: Sequence[str], paper: dict | None = None):
    """Write ``<view>.md``, ``.tex`` and ``.csv`` for each view; returns the paths."""
    out_dir = Path(out_dir)
    written = []
    for view in views:
        columns, rows = read_view(con, view)
        rows, note = with_paper_rows(view, columns, rows, paper)
        title = TITLES.get(view, view)
        for suffix, text in (
            ("md", markdown(columns, rows, title, note)),
            ("tex", latex(columns, rows, title, note)),
            ("csv", csv_text(columns, rows)),
        ):
            written.append(write_text_atomic(out_dir / f"{view}.{suffix}", text))
    return written
