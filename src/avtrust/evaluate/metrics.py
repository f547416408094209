"""Metrics of one model from its predictions (and m2 judge verdicts), in long form.

One row per (model, bench, task, mode, category, metric): ``category`` is null for the
whole task. Accuracies and rates are percentages.

- ``accuracy``: correct / n over every sample of the task (unparseable replies count
  as wrong); ``unparseable``: the share whose reply could not be parsed (``parse``'s
  ambiguous, unparseable or empty); ``n``: samples.
- per ``category`` (the sample table's category: MUSIC-AVQA ``Audio/Counting``…, AVQA
  question types, m1 instrument counts, m2 sound types): ``accuracy``.
- MUSIC-AVQA question types pooled over modalities, as the RL-CoMM table groups them:
  ``Exist`` (Existential), ``Localis`` (Location), ``Count`` (Counting), ``Comp``
  (Comparative), ``Temp`` (Temporal): the accuracy over all questions of that type.
- m1: ``yes_rate``: the share of replies parsed as "yes" (the hallucinated "I hear it").
- m2 (judge): ``a_score``/``v_score``: the mean 0–5 score over judged descriptions;
  ``a_acc``/``v_acc`` = sum / (5·n) in %, n = judged descriptions; ``judge_failed``:
  descriptions every judge attempt failed on; ``audio_match``: the deterministic audio
  metric in %, over all descriptions.

:func:`wilson` gives the 95% Wilson score interval of a proportion; the tables show it
next to every accuracy and rate (``avtrust.results.tables``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import pyarrow as pa

from avtrust.evaluate.parse import UNPARSED

METRIC_SCHEMA = pa.schema(
    [
        ("model", pa.string()),
        ("bench", pa.string()),
        ("task", pa.string()),
        ("mode", pa.string()),
        ("category", pa.string()),
        ("metric", pa.string()),
        ("value", pa.float64()),
        ("n", pa.int64()),
    ]
)
QTYPE_GROUPS = {
    "Existential": "Exist",
    "Location": "Localis",
    "Counting": "Count",
    "Comparative": "Comp",
    "Temporal": "Temp",
}


Z95 = 1.959963984540054  # the standard normal's 97.5% quantile


def wilson(k: float, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval (lo, hi) of ``k`` successes in ``n`` trials, as
    fractions in [0, 1] (95% for the default ``z``); None when n is 0.

    centre = (p + z²/2n) / (1 + z²/n), half-width = z·sqrt(p(1−p)/n + z²/4n²) / (1 + z²/n)
    with p = k/n. Unlike p ± z·sqrt(p(1−p)/n) it stays inside [0, 1] and is not
    zero-width at 0/n or n/n.
    """
    if not n:
        return None
    if not 0 <= k <= n:
        raise ValueError(f"wilson: {k} successes out of {n}")
    p, z2 = k / n, z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def pct(numerator: float, denominator: int) -> float | None:
    return 100.0 * numerator / denominator if denominator else None


def _row(p: dict, category, metric, value, n) -> dict:
    return {
        "model": p["model"],
        "bench": p["bench"],
        "task": p["task"],
        "mode": p["mode"],
        "category": category,
        "metric": metric,
        "value": None if value is None else float(value),
        "n": n,
    }


def _group(rows: Iterable[dict], key) -> dict:
    out: dict = {}
    for r in rows:
        out.setdefault(key(r), []).append(r)
    return out


def _accuracy_rows(group: Sequence[dict], category) -> list[dict]:
    first, n = group[0], len(group)
    correct = sum(1 for p in group if p["correct"])
    return [_row(first, category, "accuracy", pct(correct, n), n)]


def prediction_metrics(predictions: Sequence[dict]) -> list[dict]:
    """Metric rows of closed-form predictions (multiple choice, yes/no)."""
    out = []
    closed = [p for p in predictions if p["kind"] != "open"]
    for _, group in sorted(_group(closed, lambda p: (p["model"], p["bench"], p["task"],
                                                     p["mode"])).items()):  # fmt: skip
        first, n = group[0], len(group)
        out += _accuracy_rows(group, None)
        unparsed = sum(1 for p in group if p["status"] in UNPARSED)
        out.append(_row(first, None, "unparseable", pct(unparsed, n), n))
        if first["task"] == "m1":
            yes = sum(1 for p in group if (p["parsed"] or "").lower() == "yes")
            out.append(_row(first, None, "yes_rate", pct(yes, n), n))
        by_cat = _group((p for p in group if p["category"]), lambda p: p["category"])
        for category, members in sorted(by_cat.items()):
            out += _accuracy_rows(members, category)
        if first["task"] == "MUSIC-AVQA":
            by_type = _group(
                (p for p in group if (p["category"] or "").split("/")[-1] in QTYPE_GROUPS),
                lambda p: QTYPE_GROUPS[p["category"].split("/")[-1]],
            )
            for name in QTYPE_GROUPS.values():
                if name in by_type:
                    out += _accuracy_rows(by_type[name], name)
    return out


def judge_metrics(verdicts: Sequence[dict], bench: str = "avconfusebench", task: str = "m2"):
    """Metric rows of m2 judge verdicts (rows of avtrust.evaluate.judge.JUDGE_SCHEMA)."""
    out = []
    for (model, mode), group in sorted(_group(verdicts, lambda v: (v["model"], v["mode"])).items()):
        base = {"model": model, "bench": bench, "task": task, "mode": mode}
        judged = [v for v in group if v["a_score"] is not None]
        n = len(judged)
        a_sum = sum(v["a_score"] for v in judged)
        v_sum = sum(v["v_score"] for v in judged)
        values = {
            "a_score": a_sum / n if n else None,
            "v_score": v_sum / n if n else None,
            "a_acc": pct(a_sum, 5 * n),
            "v_acc": pct(v_sum, 5 * n),
        }
        for metric, value in values.items():
            out.append(_row(base, None, metric, value, n))
        failed = sum(1 for v in group if v["error"] is not None)
        out.append(_row(base, None, "judge_failed", failed, len(group)))
        matched = sum(1 for v in group if v["audio_match"])
        out.append(_row(base, None, "audio_match", pct(matched, len(group)), len(group)))
        for sound, members in sorted(_group(group, lambda v: v["sound_type"]).items()):
            hits = sum(1 for v in members if v["audio_match"])
            out.append(_row(base, sound, "audio_match", pct(hits, len(members)), len(members)))
    return out


def model_metrics(predictions: Sequence[dict], verdicts: Sequence[dict] = ()) -> pa.Table:
    """Every metric of one model, sorted, as a METRIC_SCHEMA table."""
    rows = prediction_metrics(predictions) + judge_metrics(verdicts)
    rows.sort(
        key=lambda r: (
            r["model"],
            r["bench"],
            r["task"],
            r["mode"],
            r["category"] or "",
            r["metric"],
        )  # fmt: skip
    )
    return pa.Table.from_pylist(rows, schema=METRIC_SCHEMA)
