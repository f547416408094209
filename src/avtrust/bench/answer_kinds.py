"""Answer kinds: multiple-choice distractors of the same kind as the answer.

A distractor of another kind than the answer ("violin" offered for "How many instruments
are sounding?") can be ruled out by type alone, so every option list built from open
answers (MUSIC-AVQA's QA set, MAT/MVT, and the generated options of AVTrustBench tasks
built from MUSIC-AVQA questions) draws its distractors through :class:`Distractors`.

Kinds (:func:`kind_of`, case-insensitive):

- ``yes_no``: yes, no.
- ``number``: number words (zero … ten, "more than ten") and digits ("3").
- ``side``: left, right, middle.
- ``place``: indoor, outdoor.
- ``temporal``: simultaneously.
- ``instrument``: MUSIC-AVQA's 22 instruments and those of the synthetic catalogue
  (spaces and underscores alike: "acoustic guitar" is ``acoustic_guitar``).
- ``event``: anything else (AVQA/AudioSet sound sources and events, order and binding
  statements). ``instrument`` and ``event`` fit each other (:data:`RELATED`): AVQA's
  "what is making the sound" options name instruments and animals alike, and an
  instrument question may be answered by a non-instrument ("none").

Distractors come first from the other answers of the same kind in the data (numbers
only in the answer's spelling, words or digits). When those are fewer than asked for,
the kind's closed vocabulary tops them up (:data:`VOCABULARY`); when even that is too
small, fewer distractors are returned and the option list is shorter: a yes/no question
gets the other one only (2 options; MAT/MVT: 3 with the abstention), side questions at
most the two other sides, indoor/outdoor the other one. ``event`` has no closed
vocabulary.

Companion kinds: MUSIC-AVQA's "Which <Object> makes the sound <FL>?" is answered
"simultaneously" or with a side (left, right, middle). Where the answers of one question
template include both kinds, its distractors are drawn from both, so "simultaneously"
neither stands out as the only non-side option nor is missing when it is the answer.
The template of a question is its ``question_content`` (slots unfilled) where the
dataset has one, else its text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import cache

import numpy as np

from avtrust import data_files

YES_NO = ("yes", "no")
NUMBER_WORDS = "zero one two three four five six seven eight nine ten".split() + ["more than ten"]
DIGITS = tuple(str(i) for i in range(11))
SIDES = ("left", "middle", "right")
PLACES = ("indoor", "outdoor")
TEMPORAL = ("simultaneously",)
# MUSIC-AVQA's instrument answers (its 42-word answer vocabulary minus the rest above).
MUSIC_AVQA_INSTRUMENTS = (
    "accordion acoustic_guitar bagpipe banjo bassoon cello clarinet congas drum "
    "electric_bass erhu flute guzheng piano pipa saxophone suona trumpet tuba ukulele "
    "violin xylophone"
).split()

KINDS = ("yes_no", "number", "side", "place", "temporal", "instrument", "event")
# Kinds that answer the same question templates (see module docstring).
COMPANIONS: dict[str, frozenset[str]] = {
    "temporal": frozenset({"side"}),
    "side": frozenset({"temporal"}),
}
# Kinds that fit each other everywhere (see module docstring).
RELATED: dict[str, tuple[str, ...]] = {
    "instrument": ("instrument", "event"),
    "event": ("event", "instrument"),
}
_WORDS = {
    **dict.fromkeys(YES_NO, "yes_no"),
    **dict.fromkeys(NUMBER_WORDS, "number"),
    **dict.fromkeys(SIDES, "side"),
    **dict.fromkeys(PLACES, "place"),
    **dict.fromkeys(TEMPORAL, "temporal"),
}


def _normal(text: str) -> str:
    return re.sub(r"[\s_]+", "_", text.strip().lower())


@cache
def instruments() -> tuple[str, ...]:
    """The instrument vocabulary: MUSIC-AVQA's and the synthetic catalogue's, sorted."""
    catalogue = data_files.load("sources")["instruments"]
    return tuple(sorted({*MUSIC_AVQA_INSTRUMENTS, *map(_normal, catalogue)}))


@cache
def kind_of(answer: str) -> str:
    """The kind of an answer or option (see module docstring)."""
    text = " ".join(answer.strip().lower().split())
    if text in _WORDS:
        return _WORDS[text]
    if text.isdigit():
        return "number"
    if _normal(text) in instruments():
        return "instrument"
    return "event"


def related(kinds: Iterable[str]) -> frozenset[str]:
    """``kinds`` with the kinds that fit them (:data:`RELATED`)."""
    return frozenset(r for k in kinds for r in RELATED.get(k, (k,)))


def fits(option: str, kinds: Iterable[str]) -> bool:
    """Whether ``option`` is of one of ``kinds`` or of a kind related to one."""
    return kind_of(option) in related(kinds)


def vocabulary(kind: str, answer: str = "") -> tuple[str, ...]:
    """The closed vocabulary of ``kind``; numbers in ``answer``'s spelling. ``event``: ()."""
    if kind == "number":
        return DIGITS if answer.strip().isdigit() else tuple(NUMBER_WORDS)
    return {
        "yes_no": YES_NO,
        "side": SIDES,
        "place": PLACES,
        "temporal": TEMPORAL,
        "instrument": instruments(),
    }.get(kind, ())


def _style(answer: str) -> str:
    return "digits" if answer.strip().isdigit() else "words"


class Distractors:
    """Same-kind distractors for the answers of one dataset.

    ``answers`` are all the dataset's answers (duplicates welcome), ``templates`` the
    question template of each (for companion kinds; None: no companions). A draw takes
    ``n`` candidates with ``rng.permutation`` over a sorted candidate list, so it is
    deterministic for a seeded generator.
    """

    def __init__(self, answers: Iterable[str], templates: Iterable[str] | None = None):
        answers = list(answers)
        distinct: dict[str, str] = {}  # lower-case -> first spelling, sorted below
        for a in sorted(answers):
            distinct.setdefault(" ".join(a.strip().lower().split()), a)
        self._by_kind: dict[str, list[str]] = {}
        for a in sorted(distinct.values()):
            self._by_kind.setdefault(kind_of(a), []).append(a)
        self._template_kinds: dict[str, set[str]] = {}
        if templates is not None:
            for a, t in zip(answers, templates, strict=True):
                self._template_kinds.setdefault(t, set()).add(kind_of(a))
        self._cache: dict[tuple, list[str]] = {}

    def kinds_for(self, answer: str, template: str | None = None) -> frozenset[str]:
        """The kinds a question's options may have: its answer's, plus a companion kind
        that other answers of the same template have."""
        kind = kind_of(answer)
        seen = self._template_kinds.get(template, set()) if template is not None else set()
        return frozenset({kind} | (COMPANIONS.get(kind, frozenset()) & seen))

    def candidates(
        self, answer: str, n: int, template: str | None = None, exclude: Sequence[str] = ()
    ) -> list[str]:
        """The sorted candidate distractors (see module docstring for the top-up rule)."""
        kinds = self.kinds_for(answer, template)
        key = (kinds, answer.strip().lower(), n, tuple(sorted(x.lower() for x in exclude)))
        if key not in self._cache:
            banned = {answer.strip().lower(), *(x.strip().lower() for x in exclude)}
            style = _style(answer)

            def usable(values: Iterable[str]) -> list[str]:
                return [
                    v
                    for v in values
                    if v.strip().lower() not in banned
                    and (kind_of(v) != "number" or _style(v) == style)
                ]

            found = usable(a for k in sorted(related(kinds)) for a in self._by_kind.get(k, ()))
            if len(found) < n:
                have = {v.strip().lower() for v in found}
                extra = [
                    v
                    for k in sorted(kinds)
                    for v in vocabulary(k, answer)
                    if v.lower() not in have and (k != "number" or _style(v) == style)
                ]
                found = found + usable(extra)
            self._cache[key] = found
        return self._cache[key]

    def draw(
        self,
        answer: str,
        n: int,
        rng: np.random.Generator,
        template: str | None = None,
        exclude: Sequence[str] = (),
    ) -> list[str]:
        """Up to ``n`` distinct distractors of the answer's kind, in random order."""
        pool = self.candidates(answer, n, template, exclude)
        return [pool[j] for j in rng.permutation(len(pool))[:n].tolist()]
