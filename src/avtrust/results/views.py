"""SQL views of the papers' tables over the ``metrics`` and ``runs`` tables.

One row per (evaluated model, scoring mode). Every number column ``X`` comes with its
count ``"X n"`` (the samples, judged descriptions or tasks behind it). Each column's
kind (:class:`Column`) says what the number is, so the tables can label it and give a
95% Wilson interval where it is a proportion:

- ``rate``: a percentage of ``n`` samples (accuracy, Yes-rate, audio match);
- ``unparsed``: the percentage of a task's ``n`` generated replies that could not be
  parsed (they count as wrong, so a 0 % Yes-rate with 100 % unparsed is no score);
- ``score``: a 0–5 judge mean over ``n`` judged descriptions (``A-Acc``/``V-Acc``);
  ``score_pct``: the same as sum / (5n) in %;
- ``count``: a count out of ``n`` (``Judge failures``);
- ``mean``: the mean of the row's non-null task accuracies; its ``n`` is the number of
  tasks averaged (``Avg`` of the AVTrustBench tables).

Views:

- ``avtrustbench``: the AVTrustBench leaderboard, accuracy on the 9 tasks + Avg
  (arXiv 2501.02135);
- ``cavpref``: the same columns for zero-shot models and the CAVPref comparison rows
  (SFT, DPO, CAVPref, CAVPref without the robustness term, without L_V/L_A);
- ``rlcomm_main``: the RL-CoMM main table (arXiv 2511.10059): MUSIC-AVQA accuracy per
  question category (modality/type), the pooled types Exist, Localis, Count, Comp,
  Temp, the MUSIC-AVQA overall Avg and AVQA;
- ``avconfusebench``: m1 Acc and Yes-rate, m2 A-Acc/V-Acc (0–5 and %), the
  deterministic audio metric and the judge failures;
- ``rlcomm_ablation``: MUSIC-AVQA Avg, AVQA, m1 Acc/Yes-rate and m2 A-Acc/V-Acc for
  zero-shot models and the RL-CoMM stages and baselines;
- ``cross_benchmark``: every evaluated model on both benchmarks, a table neither paper
  printed (each evaluates its own methods on its own benchmark): AVTrustBench Avg, m1
  Acc/Yes-rate, m2 A-Acc %/V-Acc %/audio match, MUSIC-AVQA Avg and AVQA. Its cells are
  the other views' cells, so a number means the same in every table; a benchmark a model
  was not evaluated on is NULL.

``avhbench`` (RL-CoMM's AVHBench table) is a reference-only table: the workflow does
not evaluate AVHBench, so it has no SQL view and shows only the paper's rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from avtrust.bench.samples import BENCHES

AVT_TASKS = BENCHES["avtrustbench"]
MUSIC_CATEGORIES = [
    ("A Count", "Audio/Counting"),
    ("A Comp", "Audio/Comparative"),
    ("V Count", "Visual/Counting"),
    ("V Localis", "Visual/Location"),
    ("AV Exist", "Audio-Visual/Existential"),
    ("AV Localis", "Audio-Visual/Location"),
    ("AV Count", "Audio-Visual/Counting"),
    ("AV Comp", "Audio-Visual/Comparative"),
    ("AV Temp", "Audio-Visual/Temporal"),
]
MUSIC_TYPES = ["Exist", "Localis", "Count", "Comp", "Temp"]
CAVPREF_METHODS = ["sft", "dpo", "cavpref", "cavpref_no_robust", "cavpref_no_av"]
RLCOMM_METHODS = ["rlcomm_warmup", "grpo_acc", "rlcomm_steprr", "rlcomm_ansco"]
VIEWS = ["avtrustbench", "cavpref", "rlcomm_main", "avconfusebench", "rlcomm_ablation", "avhbench",
         "cross_benchmark"]  # fmt: skip
REFERENCE_ONLY = {"avhbench"}  # tables of paper numbers only (no SQL view)
OURS_ONLY = {"cross_benchmark"}  # tables no paper printed (no paper rows)
KINDS = ("rate", "unparsed", "score", "score_pct", "count", "mean")
PROPORTIONS = ("rate", "unparsed")  # kinds with a Wilson interval


@dataclass(frozen=True)
class Column:
    """One number column of a table: its name, kind and where its value comes from."""

    name: str
    kind: str = "rate"
    task: str | None = None
    metric: str = "accuracy"
    category: str | None = None
    averages: int = 0  # ``mean`` columns: the task columns it averages (at most)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"column {self.name!r}: kind {self.kind!r} not in {KINDS}")


def _unparsed(task: str, name: str | None = None) -> Column:
    return Column(f"{name or task} unparsed", "unparsed", task, "unparseable")


def _avt_columns() -> list[Column]:
    out = []
    for t in AVT_TASKS:
        out += [Column(t, "rate", t), _unparsed(t)]
    return out + [Column("Avg", "mean", averages=len(AVT_TASKS))]


MAIN_COLUMNS = (
    [Column(a, "rate", "MUSIC-AVQA", category=c) for a, c in MUSIC_CATEGORIES]
    + [Column(t, "rate", "MUSIC-AVQA", category=t) for t in MUSIC_TYPES]
    + [Column("Avg", "rate", "MUSIC-AVQA"), _unparsed("MUSIC-AVQA"), Column("AVQA", "rate", "AVQA"),
       _unparsed("AVQA")]
)  # fmt: skip
M1_COLUMNS = [
    Column("Acc", "rate", "m1"),
    Column("Yes-rate", "rate", "m1", "yes_rate"),
    _unparsed("m1"),
]
M2_COLUMNS = [
    Column("A-Acc", "score", "m2", "a_score"),
    Column("A-Acc %", "score_pct", "m2", "a_acc"),
    Column("V-Acc", "score", "m2", "v_score"),
    Column("V-Acc %", "score_pct", "m2", "v_acc"),
    Column("Audio match %", "rate", "m2", "audio_match"),
    Column("Judge failures", "count", "m2", "judge_failed"),
]
# rlcomm_ablation: (name, source view alias, source column)
ABLATION = [
    ("MUSIC-AVQA", "q", "Avg"),
    ("MUSIC-AVQA unparsed", "q", "MUSIC-AVQA unparsed"),
    ("AVQA", "q", "AVQA"),
    ("AVQA unparsed", "q", "AVQA unparsed"),
    ("m1 Acc", "c", "Acc"),
    ("Yes-rate", "c", "Yes-rate"),
    ("m1 unparsed", "c", "m1 unparsed"),
    ("A-Acc", "c", "A-Acc"),
    ("V-Acc", "c", "V-Acc"),
    ("A-Acc %", "c", "A-Acc %"),
    ("V-Acc %", "c", "V-Acc %"),
]
# cross_benchmark: (name, source view alias, source column); t: avtrustbench
CROSS = [
    ("AVTrustBench Avg", "t", "Avg"),
    ("m1 Acc", "c", "Acc"),
    ("Yes-rate", "c", "Yes-rate"),
    ("m1 unparsed", "c", "m1 unparsed"),
    ("A-Acc %", "c", "A-Acc %"),
    ("V-Acc %", "c", "V-Acc %"),
    ("Audio match %", "c", "Audio match %"),
    ("MUSIC-AVQA", "q", "Avg"),
    ("MUSIC-AVQA unparsed", "q", "MUSIC-AVQA unparsed"),
    ("AVQA", "q", "AVQA"),
    ("AVQA unparsed", "q", "AVQA unparsed"),
]
_SOURCE = {
    "t": {c.name: c for c in _avt_columns()},
    "q": {c.name: c for c in MAIN_COLUMNS},
    "c": {c.name: c for c in M1_COLUMNS + M2_COLUMNS},
}


def _picked_columns(spec: list[tuple[str, str, str]]) -> list[Column]:
    """The columns of a view that picks other views' columns (kind and averages kept)."""
    return [replace(_SOURCE[v][src], name=name) for name, v, src in spec]


AVHBENCH_COLUMNS = [
    Column("Audio-driven V-Halluc. Acc"),
    Column("Video-driven A-Halluc. Acc"),
    Column("AV Matching Acc"),
]
COLUMNS: dict[str, list[Column]] = {
    "avtrustbench": _avt_columns(),
    "cavpref": _avt_columns(),
    "rlcomm_main": MAIN_COLUMNS,
    "avconfusebench": M1_COLUMNS + M2_COLUMNS,
    "rlcomm_ablation": _picked_columns(ABLATION),
    "avhbench": AVHBENCH_COLUMNS,
    "cross_benchmark": _picked_columns(CROSS),
}


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _id(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def col(alias: str, task: str, metric: str = "accuracy", category: str | None = None,
        field: str = "value") -> str:  # fmt: skip
    """One cell of a pivot over ``metrics``: ``field`` (value or n) of one metric."""
    cat = "category IS NULL" if category is None else f"category = {_q(category)}"
    return (
        f"max({field}) FILTER (WHERE task = {_q(task)} AND metric = {_q(metric)} AND {cat})"
        f" AS {_id(alias)}"
    )


def _cells(columns: list[Column]) -> str:
    out = []
    for c in columns:
        if c.task is None:
            continue
        out.append(col(c.name, c.task, c.metric, c.category))
        out.append(col(f"{c.name} n", c.task, c.metric, c.category, "n"))
    return ", ".join(out)


def _avg(names: list[str]) -> str:
    return "list_avg([" + ", ".join(_id(n) for n in names) + "])"


def _method_order(methods: list[str]) -> str:
    """Zero-shot rows first, then ``methods`` in their order, then any other method."""
    cases = " ".join(f"WHEN r.method = {_q(m)} THEN {i + 1}" for i, m in enumerate(methods))
    return f"CASE WHEN r.method IS NULL THEN 0 {cases} ELSE {len(methods) + 1} END"


def _selected(view: str, methods: list[str], variants_of: tuple[str, ...] = ()) -> str:
    """``view``'s zero-shot rows and those of ``methods``, and of any user-declared
    variant of a family in ``variants_of`` (a method named ``<family>_<variant>``, as
    training names them)."""
    listed = ", ".join(_q(m) for m in methods)
    variants = "".join(f" OR r.method LIKE {_q(f + '!_%')} ESCAPE '!'" for f in variants_of)
    return (
        f"SELECT v.* FROM {view} v JOIN runs r USING (model) "
        f"WHERE r.kind = 'zero-shot' OR r.method IN ({listed}){variants} "
        f"ORDER BY {_method_order(methods)}, v.model, v.mode"
    )


def _picked(spec: list[tuple[str, str, str]]) -> str:
    """The select list of ``spec``'s columns and their counts from the aliased views."""
    return ", ".join(
        f"{v}.{_id(src + suffix)} AS {_id(name + suffix)}"
        for name, v, src in spec
        for suffix in ("", " n")
    )


def view_sql() -> dict[str, str]:
    tasks = [_id(t) for t in AVT_TASKS]
    avtrustbench = (
        f"WITH t AS (SELECT model, mode, {_cells(COLUMNS['avtrustbench'])} FROM metrics "
        "WHERE bench = 'avtrustbench' GROUP BY model, mode) "
        f'SELECT *, {_avg(AVT_TASKS)} AS "Avg", list_count([{", ".join(tasks)}]) AS "Avg n" '
        "FROM t ORDER BY model, mode"
    )
    rlcomm_main = (
        f"SELECT model, mode, {_cells(MAIN_COLUMNS)} FROM metrics WHERE bench = 'qa' "
        "GROUP BY model, mode ORDER BY model, mode"
    )
    avconfusebench = (
        f"WITH a AS (SELECT model, mode, {_cells(M1_COLUMNS)} FROM metrics WHERE task = 'm1' "
        "GROUP BY model, mode), "
        f"b AS (SELECT model, mode, {_cells(M2_COLUMNS)} FROM metrics WHERE task = 'm2' "
        "GROUP BY model, mode) "
        "SELECT * FROM a FULL OUTER JOIN b USING (model, mode) ORDER BY model, mode"
    )
    ablation = (
        f"SELECT model, mode, {_picked(ABLATION)} "
        "FROM rlcomm_main q FULL OUTER JOIN avconfusebench c USING (model, mode)"
    )
    # zero-shot rows first, then the CAVPref methods and the RL-CoMM ones in paper order
    cross = (
        f"WITH v AS (SELECT model, mode, {_picked(CROSS)} FROM avtrustbench t "
        "FULL OUTER JOIN avconfusebench c USING (model, mode) "
        "FULL OUTER JOIN rlcomm_main q USING (model, mode)) "
        "SELECT v.* FROM v LEFT JOIN runs r USING (model) "
        f"ORDER BY {_method_order(CAVPREF_METHODS + RLCOMM_METHODS)}, v.model, v.mode"
    )
    return {
        "avtrustbench": avtrustbench,
        "cavpref": _selected("avtrustbench", CAVPREF_METHODS, ("sft", "dpo", "cavpref")),
        "rlcomm_main": rlcomm_main,
        "avconfusebench": avconfusebench,
        "rlcomm_ablation_all": ablation,
        "rlcomm_ablation": _selected("rlcomm_ablation_all", RLCOMM_METHODS),
        "cross_benchmark": cross,
    }
