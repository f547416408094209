"""SQL views of the papers' tables over the ``metrics`` and ``runs`` tables.

One row per (evaluated model, scoring mode); numbers are percentages except the 0–5
judge means ``A-Acc``/``V-Acc``. Averages are the mean of the row's non-null columns.

- ``avtrustbench``: the AVTrustBench leaderboard, accuracy on the 9 tasks + Avg
  (arXiv 2501.02135);
- ``cavpref``: the same columns for zero-shot models and the CAVPref comparison rows
  (SFT, DPO, CAVPref, CAVPref without the robustness term, without L_V/L_A);
- ``rlcomm_main``: the RL-CoMM main table (arXiv 2511.10059): MUSIC-AVQA accuracy per
  question category (modality/type), the pooled types Exist, Localis, Count, Comp,
  Temp, the MUSIC-AVQA overall Avg and AVQA;
- ``avconfusebench``: m1 Acc and Yes-rate, m2 A-Acc/V-Acc (0–5 and %), the
  deterministic audio metric and the judge failures;
- ``rlcomm_ablation``: MUSIC-AVQA Avg, AVQA, m1 Acc/Yes-rate and m2 A-Acc/V-Acc % for
  zero-shot models and the RL-CoMM stages and baselines.
"""

from __future__ import annotations

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
VIEWS = ["avtrustbench", "cavpref", "rlcomm_main", "avconfusebench", "rlcomm_ablation"]


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def col(alias: str, task: str, metric: str = "accuracy", category: str | None = None) -> str:
    cat = "category IS NULL" if category is None else f"category = {_q(category)}"
    return (
        f"max(value) FILTER (WHERE task = {_q(task)} AND metric = {_q(metric)} AND {cat})"
        f' AS "{alias}"'
    )


def _avg(names: list[str]) -> str:
    return "list_avg([" + ", ".join(f'"{n}"' for n in names) + "])"


def _method_order(methods: list[str]) -> str:
    cases = " ".join(f"WHEN {_q(m)} THEN {i + 1}" for i, m in enumerate(methods))
    return f"CASE r.method {cases} ELSE 0 END"


def _selected(view: str, methods: list[str]) -> str:
    listed = ", ".join(_q(m) for m in methods)
    return (
        f"SELECT v.* FROM {view} v JOIN runs r USING (model) "
        f"WHERE r.kind = 'zero-shot' OR r.method IN ({listed}) "
        f"ORDER BY {_method_order(methods)}, v.model, v.mode"
    )


def view_sql() -> dict[str, str]:
    tasks = ", ".join(col(t, t) for t in AVT_TASKS)
    avtrustbench = (
        f"WITH t AS (SELECT model, mode, {tasks} FROM metrics "
        "WHERE bench = 'avtrustbench' GROUP BY model, mode) "
        f'SELECT *, {_avg(AVT_TASKS)} AS "Avg" FROM t ORDER BY model, mode'
    )
    music = ", ".join(col(a, "MUSIC-AVQA", category=c) for a, c in MUSIC_CATEGORIES)
    types = ", ".join(col(t, "MUSIC-AVQA", category=t) for t in MUSIC_TYPES)
    rlcomm_main = (
        f"SELECT model, mode, {music}, {types}, {col('Avg', 'MUSIC-AVQA')}, "
        f"{col('AVQA', 'AVQA')} FROM metrics WHERE bench = 'qa' "
        "GROUP BY model, mode ORDER BY model, mode"
    )
    m1 = f"{col('Acc', 'm1')}, {col('Yes-rate', 'm1', 'yes_rate')}"
    m2 = ", ".join(
        col(alias, "m2", metric)
        for alias, metric in [
            ("A-Acc", "a_score"),
            ("A-Acc %", "a_acc"),
            ("V-Acc", "v_score"),
            ("V-Acc %", "v_acc"),
            ("Audio match %", "audio_match"),
            ("Judge failures", "judge_failed"),
        ]
    )
    avconfusebench = (
        f"WITH a AS (SELECT model, mode, {m1} FROM metrics WHERE task = 'm1' "
        "GROUP BY model, mode), "
        f"b AS (SELECT model, mode, {m2} FROM metrics WHERE task = 'm2' GROUP BY model, mode) "
        "SELECT * FROM a FULL OUTER JOIN b USING (model, mode) ORDER BY model, mode"
    )
    ablation = (
        'SELECT model, mode, q."Avg" AS "MUSIC-AVQA", q."AVQA", c."Acc" AS "m1 Acc", '
        'c."Yes-rate", c."A-Acc %", c."V-Acc %" '
        "FROM rlcomm_main q FULL OUTER JOIN avconfusebench c USING (model, mode)"
    )
    return {
        "avtrustbench": avtrustbench,
        "cavpref": _selected("avtrustbench", CAVPREF_METHODS),
        "rlcomm_main": rlcomm_main,
        "avconfusebench": avconfusebench,
        "rlcomm_ablation_all": ablation,
        "rlcomm_ablation": _selected("rlcomm_ablation_all", RLCOMM_METHODS),
    }
