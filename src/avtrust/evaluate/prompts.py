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
predictions it words (and what is built from them).
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence

from avtrust.errors import ConfigError
from avtrust.evaluate.parse import LETTERS, normalise

CHOICE_PROMPT = "Answer with the option's letter from the given choices directly."
LOGLIK_PROMPT = "Answer with the text of one option."
YES_NO_PROMPT = "Answer yes or no."

DEFAULT_TEMPLATE = {
    "choice": "{question}\n{options}\n" + CHOICE_PROMPT,
    "option": "{letter}. {option}",
    "yes_no": "{question}\n" + YES_NO_PROMPT,
    "loglik": "{question}\nOptions:\n{options}\n" + LOGLIK_PROMPT,
    "loglik_option": "- {option}",
    "open": "{question}",
}
# part -> (fields it must use, fields it may use)
FIELDS = {
    "choice": ({"question", "options"}, set()),
    "option": ({"option"}, {"letter"}),
    "yes_no": ({"question"}, set()),
    "loglik": ({"question", "options"}, set()),
    "loglik_option": ({"option"}, {"letter"}),
    "open": ({"question"}, set()),
}
# The parts a task reads: an open-ended task only ``open``, a closed one the rest.
OPEN_PARTS = ("open",)
CLOSED_PARTS = ("choice", "option", "yes_no", "loglik", "loglik_option")


def task_kind(options: Sequence[str] | None) -> str:
    """``open`` (no options: m2), ``yes_no`` (m1) or ``choice``."""
    if not options:
        return "open"
    if {normalise(o) for o in options} <= {"yes", "no"}:
        return "yes_no"
    return "choice"


def _fields(text: str, where: str) -> set[str]:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError as exc:  # a lone brace
        raise ConfigError(f"{where}: {exc} (write a literal brace doubled: {{{{ }}}})") from exc


def check_template(template: Mapping[str, str] | None, where: str = "template") -> dict:
    """``template`` with :data:`DEFAULT_TEMPLATE` for the parts it leaves out; a
    ConfigError naming ``where.<part>`` for an unknown part or a field it must not use
    or must use."""
    template = dict(template or {})
    unknown = sorted(set(template) - set(DEFAULT_TEMPLATE))
    if unknown:
        raise ConfigError(f"{where}: unknown part(s) {unknown} (parts: {', '.join(FIELDS)})")
    for part, text in template.items():
        if not isinstance(text, str):
            raise ConfigError(f"{where}.{part}: expected a string, got {text!r}")
        used = _fields(text, f"{where}.{part}")
        need, may = FIELDS[part]
        if used - need - may or need - used:
            raise ConfigError(
                f"{where}.{part}: uses {{{'}, {'.join(sorted(used))}}}; it must use "
                f"{', '.join('{' + f + '}' for f in sorted(need))}"
                + (f" and may use {', '.join('{' + f + '}' for f in sorted(may))}" if may else "")
            )
    return {**DEFAULT_TEMPLATE, **template}


def template_parts(template: Mapping[str, str] | None, open_task: bool) -> dict:
    """The resolved parts an open-ended (or closed) task reads: what its evaluation job's
    parameters hold, so an edit elsewhere in the template does not rerun it."""
    full = check_template(template)
    return {p: full[p] for p in (OPEN_PARTS if open_task else CLOSED_PARTS)}


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
        return t[kind].format(question=question)
    part = "loglik" if mode == "loglik" else "choice"
    line = t["loglik_option" if mode == "loglik" else "option"]
    listed = "\n".join(line.format(letter=LETTERS[i], option=o) for i, o in enumerate(options))
    return t[part].format(question=question, options=listed)
