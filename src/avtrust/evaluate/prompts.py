"""The text a model gets with a clip: the question, its options and the answer instruction.

Only the standard library and :mod:`avtrust.evaluate.parse` (imported relatively): the
lmms-eval task export (:mod:`avtrust.bench.lmms_eval`) copies this module, unchanged,
into the task folder next to a copy of ``parse``, so exported tasks ask with the same
words as the workflow's evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence

from .parse import LETTERS, normalise

CHOICE_PROMPT = "Answer with the option's letter from the given choices directly."
LOGLIK_PROMPT = "Answer with the text of one option."
YES_NO_PROMPT = "Answer yes or no."


def task_kind(options: Sequence[str] | None) -> str:
    """``open`` (no options: m2), ``yes_no`` (m1) or ``choice``."""
    if not options:
        return "open"
    if {normalise(o) for o in options} <= {"yes", "no"}:
        return "yes_no"
    return "choice"


def prompt_for(question: str, options: Sequence[str] | None, mode: str = "generate") -> str:
    """The text the model gets with the clip."""
    kind = task_kind(options)
    if kind == "open":
        return question
    if kind == "yes_no":
        return f"{question}\n{YES_NO_PROMPT}"
    if mode == "loglik":
        listed = "\n".join(f"- {o}" for o in options)
        return f"{question}\nOptions:\n{listed}\n{LOGLIK_PROMPT}"
    listed = "\n".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(options))
    return f"{question}\n{listed}\n{CHOICE_PROMPT}"
