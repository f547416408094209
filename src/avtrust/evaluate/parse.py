"""Answer parsing: from a model's free text to an option of the question.

Real AVLLM output rarely is the bare option letter the prompt asks for. The parser
accepts, in this order of precedence:

1. the RL-CoMM format: only the text inside ``<answer>…</answer>`` is parsed when the
   tags are there;
2. an option letter: ``"B"``, ``"(B)"``, ``"B."``, ``"B) violin"``, ``"Answer: B"``,
   ``"The correct answer is option (B)."`` (letters beyond the option count are not
   letters of this question);
3. yes/no, when the options are yes/no: a leading ``yes``/``no`` word (``"Yes."``,
   ``"yes, there is…"``, ``"No, I can't hear…"``), else a negated hearing/existence
   phrase (``"there is no violin sound"``, ``"I cannot hear…"``) → no, an affirmative
   one (``"there is a violin sound"``, ``"I can hear…"``) → yes;
4. the text of exactly one option (``"violin"``, ``"It is the violin."``); numbers
   written with digits match number words (``"2"`` = ``"two"``);
5. an abstention phrasing (``"none of the above"``, ``"the audio is missing"``,
   ``"there is a mismatch between the audio and the video"``, the configured wordings of
   ``benchmark.wording``…), mapped to the option carrying that abstention; "none of the
   above" and "irrelevant options" both reject every option, so either phrasing selects
   whichever of the two the options hold;
6. else the output is **unparseable**: it counts as wrong, and separately.

An answer that is recognised but not among the options (an abstention the options do
not offer, ``yes`` to a question whose options are instruments) is ``off_options``:
wrong, but not unparseable. Several different options named at once is ``ambiguous``
(counted as unparseable).

The module imports nothing from the package at import time: the lmms-eval task export
(:mod:`avtrust.bench.lmms_eval`) copies it, unchanged, into the task folder, and passes
every abstention wording explicitly.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

OK, OFF_OPTIONS, AMBIGUOUS, UNPARSEABLE, EMPTY = (
    "ok",
    "off_options",
    "ambiguous",
    "unparseable",
    "empty",
)
# Statuses that count as "could not parse" in the metrics.
UNPARSED = (AMBIGUOUS, UNPARSEABLE, EMPTY)
LETTERS = string.ascii_uppercase

NUMBER_WORDS = {
    "0": "zero", "1": "one", "2": "two", "3": "three", "4": "four", "5": "five",
    "6": "six", "7": "seven", "8": "eight", "9": "nine", "10": "ten",
}  # fmt: skip

# Phrasings of each abstention (regular expressions on normalised text: lower case,
# punctuation → spaces, single spaces). The configured wording is always added.
ABSTENTION_PATTERNS = {
    "none_of_the_above": [
        r"\bnone of the (above|options|choices|answers|given options)\b(?! (are|is) relevant)",
        r"\bnone of (these|them)\b",
        r"\bno (correct|right|valid) (option|answer|choice)\b",
        r"\b(the )?correct (answer|option) is not (listed|among|in|provided|given)\b",
        r"\bnot (listed|among the options|among the choices)\b",
    ],
    "irrelevant_options": [
        r"\birrelevant (options|choices|answers)\b",
        r"\b(options|choices) (are|seem|seems) (all )?(irrelevant|unrelated|not relevant)\b",
        r"\bnone of the (options|choices) (are|is) relevant\b",
        r"\b(options|choices) (do not|don t|does not) (relate|apply|match the question)\b",
    ],
    "mismatch": [
        r"\bmismatch",
        r"\b(audio|sound) and (the )?(video|visual|visuals|image|images) "
        r"(do not|don t|does not|did not) (match|correspond|align|agree)",
        r"\b(audio|sound) (does not|doesn t|do not|don t) (match|correspond to|belong to)\b",
        r"\b(video|visual) (does not|doesn t|do not|don t) match the (audio|sound)\b",
        r"\b(audio|sound) (and|with) (the )?(video|visual|visuals) (are|is) "
        r"(inconsistent|mismatched|unrelated|not consistent|out of sync)\b",
        r"\binconsisten(t|cy) between (the )?(audio|sound) and (the )?(video|visual)",
    ],
    "audio_missing": [
        r"\b(audio|sound|soundtrack|audio track) (is|was) (missing|absent|not available|muted)",
        r"\bmissing (audio|sound)\b",
        r"\bno (audio|sound|soundtrack|audio track) (is |was )?"
        r"(present|available|provided|in the video|at all)\b",
        r"\bthere (is|was) no (audio|sound)\b",
        r"\b(video|clip) (is|was) (silent|muted)\b",
        r"\bsilent (video|clip)\b",
        r"\b(can t|cannot|can not|could not|couldn t) hear anything\b",
        r"\bwithout (any )?(audio|sound)\b",
        r"\bno (audio|sound) (can be|could be|is) heard\b",
    ],
    "visual_missing": [
        r"\b(visual|visuals|video|image|picture|video stream|visual content) "
        r"(is|was|are) (missing|absent|not available|black|blank)",
        r"\bmissing (visual|video|visuals)\b",
        r"\bno (visual|video|visuals|image|picture|visual content)"
        r"( (is|was|are))?( (present|available|provided|at all|shown))?\b",
        r"\bthere (is|was) nothing to see\b",
        r"\b(can t|cannot|can not|could not|couldn t) see anything\b",
        r"\b(black|blank) screen\b",
        r"\bonly (the )?(audio|sound) (is )?(available|provided|present)\b",
    ],
}
# Abstentions that reject every option: either phrasing selects whichever the options hold.
REJECT_OPTIONS = ("none_of_the_above", "irrelevant_options")

_YES_WORDS = {"yes", "yeah", "yep", "yup", "correct", "true", "affirmative", "certainly"}
_NO_WORDS = {"no", "nope", "false", "negative"}
_NEGATIVE = [
    r"\b(there is|there s|there are|there was|i hear|i detect) no\b",
    r"\b(can t|cannot|can not|could not|couldn t|do not|don t|did not|didn t) "
    r"(hear|detect|perceive|identify)\b",
    r"\b(is|are|was|were) not (audible|heard|present|playing|making (any )?sound)\b",
    r"\bnot (audible|heard)\b",
    r"\b(no|without) (\w+ ){0,2}(sound|sounds|audio)\b",
    r"\b(is|are|was) (silent|muted|absent)\b",
    r"\bnot present\b",
]
_POSITIVE = [
    r"\bthere (is|are|was|s) (a|an|the|some)\b",
    r"\bi (can )?(hear|detect)\b",
    r"\b(is|are|was) (audible|heard|present|playing|making (a )?sound)\b",
    r"\bcan be heard\b",
]

_ANSWER_TAG = re.compile(r"<answer>(.*?)(</answer>|$)", re.S | re.I)
_SPECIAL = re.compile(r"<\|[^|>]*\|>|</?s>")
_LETTER_PATTERNS = [
    # the whole reply is a letter: "B", "(B)", "B.", "[B]", "B)"
    r"^\s*[\(\[]?\s*(?P<l>[A-Z])\s*[\)\]]?\s*[.:)]?\s*$",
    # "Answer: B", "The answer is (B)", "correct option is B.", "choice: [C]"
    r"\b(?i:answer|option|choice)s?\s*(?i:is|would be|should be|:|=)?\s*:?\s*"
    r"(?i:option\s*|letter\s*)?[\(\[]?(?P<l>[A-Z])[\)\]]?(?![A-Za-z0-9])",
    # leading "B." / "(B)" / "B)" / "B:" then text
    r"^\s*[\(\[](?P<l>[A-Z])[\)\]]",
    r"^\s*(?P<l>[A-Z])[.):]\s",
    # "I choose B", "I'd pick (C)"
    r"\b(?i:choose|pick|select|go with)\s+[\(\[]?(?P<l>[A-Z])[\)\]]?(?![A-Za-z0-9])",
]
_LETTER_RE = [re.compile(p, re.M) for p in _LETTER_PATTERNS]


@dataclass(frozen=True)
class Parsed:
    """``index`` into the options (None unless status is ok); ``answer`` is the option
    text, ``"yes"``/``"no"``, or the abstention key for off-options abstentions."""

    index: int | None
    answer: str | None
    status: str

    @property
    def unparsed(self) -> bool:
        return self.status in UNPARSED


def normalise(text: str) -> str:
    """Lower case, apostrophes dropped into spaces, punctuation → space, digits → words."""
    text = text.lower().replace("’", "'").replace("'", " ")
    text = re.sub(r"[^\w\s]", " ", text)
    words = [NUMBER_WORDS.get(w, w) for w in text.split()]
    return " ".join(words)


def answer_text(raw: str) -> str:
    """What to parse in ``raw``: special tokens removed; the ``<answer>`` part if tagged."""
    text = _SPECIAL.sub("", raw or "")
    match = _ANSWER_TAG.search(text)
    if match:
        text = match.group(1)
    return text.strip()


def full_wording(wording: dict[str, str] | None = None) -> dict[str, str]:
    """Every abstention wording: ``wording`` itself when it names all of them (as an
    exported copy of this module gets them), else the templates' defaults with
    ``wording`` as overrides."""
    if wording is not None and ABSTENTION_PATTERNS.keys() <= wording.keys():
        return dict(wording)
    from avtrust.bench.samples import wording as default_wording  # the package's data files

    return default_wording(wording)


def abstention_patterns(wording: dict[str, str] | None = None) -> dict[str, list[re.Pattern]]:
    """Compiled abstention phrasings, with the (configured) wordings themselves added."""
    words = full_wording(wording)
    out = {}
    for key, patterns in ABSTENTION_PATTERNS.items():
        extra = [r"\b" + re.escape(normalise(words[key])) + r"\b"] if key in words else []
        out[key] = [re.compile(p) for p in patterns + extra]
    return out


def _letter(text: str, n_options: int) -> int | None:
    for pattern in _LETTER_RE:
        for match in pattern.finditer(text):
            index = LETTERS.index(match.group("l"))
            if index < n_options:
                return index
    return None


def yes_no(text: str) -> str | None:
    """``"yes"``, ``"no"`` or None for a reply to a yes/no question."""
    norm = normalise(text)
    if not norm:
        return None
    first = norm.split()[0]
    if first in _YES_WORDS:
        return "yes"
    if first in _NO_WORDS:
        return "no"
    if any(re.search(p, norm) for p in _NEGATIVE):
        return "no"
    if any(re.search(p, norm) for p in _POSITIVE):
        return "yes"
    words = set(norm.split())
    has_yes, has_no = bool(words & {"yes"}), bool(words & {"no"})
    if has_yes != has_no:
        return "yes" if has_yes else "no"
    return None


def _contains(norm_text: str, norm_option: str) -> bool:
    return bool(norm_option) and re.search(rf"\b{re.escape(norm_option)}\b", norm_text) is not None


def _option_text(norm: str, norm_options: list[str]) -> tuple[int | None, bool]:
    """(index, ambiguous) of the one option the text names."""
    exact = [i for i, o in enumerate(norm_options) if o == norm]
    if exact:
        return exact[0], False
    hits = [i for i, o in enumerate(norm_options) if _contains(norm, o)]
    # An option contained in another named option is not a second answer
    # ("violin" inside "violin then cello").
    hits = [
        i
        for i in hits
        if not any(j != i and _contains(norm_options[j], norm_options[i]) for j in hits)
    ]
    distinct = {norm_options[i] for i in hits}
    if len(distinct) == 1:
        return hits[0], False
    return None, len(distinct) > 1


class AnswerParser:
    """Parses replies to the questions of one run (abstention wordings fixed once)."""

    def __init__(self, wording: dict[str, str] | None = None):
        self.words = full_wording(wording)
        self.patterns = abstention_patterns(self.words)
        self.key_of_text = {normalise(v): k for k, v in self.words.items()}

    def abstention(self, norm: str) -> str | None:
        """The abstention key the normalised text expresses, if any."""
        for key, patterns in self.patterns.items():
            if any(p.search(norm) for p in patterns):
                return key
        return None

    def _abstention_option(self, key: str, norm_options: list[str]) -> int | None:
        keys = [self.key_of_text.get(o) for o in norm_options]
        if key in keys:
            return keys.index(key)
        if key in REJECT_OPTIONS:
            rejecting = [i for i, k in enumerate(keys) if k in REJECT_OPTIONS]
            if len(rejecting) == 1:
                return rejecting[0]
        return None

    def parse(self, raw: str, options: list[str] | None) -> Parsed:
        """Parse ``raw`` against ``options`` (None or empty: a yes/no question)."""
        text = answer_text(raw)
        if not normalise(text):
            return Parsed(None, None, EMPTY)
        options = list(options or [])
        norm_options = [normalise(o) for o in options]
        is_yes_no = not options or set(norm_options) <= {"yes", "no"}
        if options:
            index = _letter(text, len(options))
            if index is not None:
                return Parsed(index, options[index], OK)
        norm = normalise(text)
        if is_yes_no or {"yes", "no"} & set(norm_options):
            answer = yes_no(text)
            if answer is not None and (is_yes_no or norm.split()[0] in ("yes", "no")):
                if not options:
                    return Parsed(None, answer, OK)
                if answer in norm_options:
                    index = norm_options.index(answer)
                    return Parsed(index, options[index], OK)
                return Parsed(None, answer, OFF_OPTIONS)
        index, ambiguous = _option_text(norm, norm_options)
        exact = index is not None and norm_options[index] == norm
        key = self.abstention(norm)
        # A model that spots the manipulation usually says so, then describes what it
        # perceives ("no audio, but I see a violin"): the abstention wins over option
        # text the reply merely mentions.
        if key is not None and not exact:
            abstain = self._abstention_option(key, norm_options)
            if abstain is not None:
                return Parsed(abstain, options[abstain], OK)
        if index is not None:
            return Parsed(index, options[index], OK)
        if key is not None:
            return Parsed(None, key, OFF_OPTIONS)
        if ambiguous:
            return Parsed(None, None, AMBIGUOUS)
        if is_yes_no:
            return Parsed(None, None, UNPARSEABLE)
        answer = yes_no(text) if norm.split()[0] in _YES_WORDS | _NO_WORDS else None
        if answer is not None:
            return Parsed(None, answer, OFF_OPTIONS)
        return Parsed(None, None, UNPARSEABLE)


def is_correct(parsed: Parsed, options: list[str] | None, answer: str, answer_index) -> bool:
    """Whether a parsed reply answers the sample: it picked the answer's option, or, to a
    yes/no question, it said the answer's word without being matched to an option."""
    if parsed.index is not None:
        return parsed.index == answer_index
    yes_no = bool(options) and {normalise(o) for o in options} <= {"yes", "no"}
    return yes_no and parsed.answer is not None and parsed.answer == normalise(answer)
