"""AV-ConfuseBench m2's audio keyword metric, without a judge (standard library only).

:func:`sound_match` is true when the audio part of a description names the actual
sound type (one of its keywords) and, when the soundtrack was *replaced*, does not claim
that an instrument in view is heard. With a mixed soundtrack (``snr_db`` set) the
instrument is really heard, so naming the sound is enough. The keywords per sound type
are ``sound_keywords`` of ``avtrust/data/judge.yaml``
(:func:`avtrust.evaluate.judge.sound_match` reads them). The lmms-eval task export
(:mod:`avtrust.bench.lmms_eval`) copies this module, unchanged, into the task folder.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_NEGATION = re.compile(r"\b(no|not|cannot|can't|can ?not|without|absent|silent|none|neither)\b")


def keyword_pattern(words: Sequence[str]) -> re.Pattern:
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"\b({alternatives})s?\b")


def audio_part(description: str) -> str:
    """The audio half of a description ("Based on the video... Based on the audio...")."""
    text = (description or "").lower()
    for marker in ("based on the audio", "in the audio", "audio:", "i hear", "i can hear"):
        k = text.find(marker)
        if k >= 0:
            return text[k:]
    return text


def sound_match(
    description: str, keywords: Sequence[str], instruments: Sequence[str], snr_db: float | None
) -> bool:
    """Whether ``description`` hears the sound named by ``keywords`` (see the module)."""
    audio = audio_part(description)
    if not keyword_pattern(keywords).search(audio):
        return False
    if snr_db is not None:
        return True
    names = [i.lower() for i in instruments or [] if i]
    for clause in re.split(r"[.;,]| but | and ", audio):
        if any(re.search(rf"\b{re.escape(n)}s?\b", clause) for n in names):
            if not _NEGATION.search(clause):
                return False
    return True
