"""Checking an evaluation prompt template from the config (``evaluation.prompts.<bench>``;
the parts and their fields: :mod:`avtrust.evaluate.prompts`)."""

from __future__ import annotations

import string
from collections.abc import Mapping

from avtrust.errors import ConfigError
from avtrust.evaluate.prompts import DEFAULT_TEMPLATE

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
# The parts the training prompt reads (SFT, DPO, CAVPref answer with an option's text:
# the log-likelihood wording, yes/no questions by theirs).
TRAINING_PARTS = ("yes_no", "loglik", "loglik_option")


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


def training_parts(template: Mapping[str, str] | None, where: str = "template") -> dict:
    """The resolved parts of ``template`` that SFT, DPO and CAVPref train on: what their
    jobs' parameters hold, so that editing the generated-answer wording does not retrain."""
    full = check_template(template, where)
    return {p: full[p] for p in TRAINING_PARTS}


def template_parts(template: Mapping[str, str] | None, open_task: bool) -> dict:
    """The resolved parts an open-ended (or closed) task reads: what its evaluation job's
    parameters hold, so an edit elsewhere in the template does not rerun it."""
    full = check_template(template)
    return {p: full[p] for p in (OPEN_PARTS if open_task else CLOSED_PARTS)}
