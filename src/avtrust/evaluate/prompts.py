"""The evaluation prompt: the text around each question that the model gets with the clip.

One template per benchmark (``evaluation.prompts.<bench>`` in the config: avtrustbench,
avconfusebench, qa), in parts by the kind of question, each a Python format string:

==================  ====================================  ==========================
part                used for                              fields
==================  ====================================  ==========================
``choice``          multiple choice, generated answer     ``{question}``, ``{options}``
``option``          one line of ``choice``'s options      ``{letter}``, ``{option}``
``yes_no``          yes/no questions (m1)                 ``{question}``
``loglik``          multiple choice, option likelihood    ``{question}``, ``{options}``
``loglik_option``   one line of ``loglik``'s options      ``{option}`` (``{letter}``)
``open``            open descriptions (m2)                ``{question}``
==================  ====================================  ==========================

``{options}`` is the option lines joined by newlines; ``{letter}`` is A, B, C, … (the
answer parser reads letters, so lettering may be reformatted — "(A)", "A:" — but not
renamed). A literal brace is written doubled (``{{``). A part left out keeps
:data:`DEFAULT_TEMPLATE`, this project's wording since the first evaluation, so results
do not change unless a template does. The resolved template is part of the evaluation
job's parameters and of its resume fingerprint, so editing it reruns exactly the
predictions it words (and what is built from them). A template from the config is
checked by :mod:`avtrust.evaluate.prompt_template`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

# Relative and standard-library imports only: the lmms-eval task export
# (avtrust.bench.lmms_eval) copies this module, unchanged, next to a copy of ``parse``.
from .parse import LETTERS, normalise

CHOICE_PROMPT = "Answer with the option's letter from the given choices directly."
LOGLIK_PROMPT = "Answer with the text of one option."
YES_NO_PROMPT = "Answer yes or no."
# A question that already says how to answer: the released AV-ConfuseBench m1 questions
# end "Your answer can only be 'yes' or 'no'", and get no second instruction.
ANSWERS_YES_OR_NO = re.compile(r"\byes\W{0,2}\s+or\s+\W{0,2}no\b", re.IGNORECASE)

DEFAULT_TEMPLATE = {
    "choice": "{question}\n{options}\n" + CHOICE_PROMPT,
    "option": "{letter}. {option}",
    "yes_no": "{question}\n" + YES_NO_PROMPT,
    "loglik": "{question}\nOptions:\n{options}\n" + LOGLIK_PROMPT,
    "loglik_option": "- {option}",
    "open": "{question}",
}


def task_kind(options: Sequence[str] | None) -> str:
    """``open`` (no options: m2), ``yes_no`` (m1) or ``choice``."""
    if not options:
        return "open"
    if {normalise(o) for o in options} <= {"yes", "no"}:
        return "yes_no"
    return "choice"


def prompt_for(
    question: str,
    options: Sequence[str] | None,
    mode: str = "generate",
    template: Mapping[str, str] | None = None,
) -> str:
    """The text the model gets with the clip, worded by ``template`` (None: the default)."""
    t = {**DEFAULT_TEMPLATE, **(template or {})}
    kind = task_kind(options)
    if kind in ("open", "yes_no"):
        text = t[kind].format(question=question)
        suffix = "\n" + YES_NO_PROMPT
        if kind == "yes_no" and ANSWERS_YES_OR_NO.search(question) and text.endswith(suffix):
            return text[: -len(suffix)]
        return text
    part = "loglik" if mode == "loglik" else "choice"
    line = t["loglik_option" if mode == "loglik" else "option"]
    listed = "\n".join(line.format(letter=LETTERS[i], option=o) for i, o in enumerate(options))
    return t[part].format(question=question, options=listed)
