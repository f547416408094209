"""The functions lmms-eval calls for the exported AVTrustBench / AV-ConfuseBench tasks.

:mod:`avtrust.bench.lmms_eval` copies this module, unchanged, with ``parse``,
``prompts`` and ``audio_keywords`` into a package inside the task folder (relative
imports, so the copy needs nothing from avtrust), next to ``settings.json``: the
Hugging Face export folder the task YAMLs read, the abstention wordings and the m2
sound keywords. A task's documents are the rows of that export; each reply is scored
as the workflow scores it:

- multiple choice and yes/no (every task but m2): the reply parsed against the options
  (:class:`~.parse.AnswerParser`), ``accuracy`` (unparseable replies count as wrong),
  ``unparseable`` and, for m1, ``yes_rate``, each in % as in the results database;
- m2 (open descriptions): ``audio_match``, the judge-free audio keyword metric
  (:func:`~.audio_keywords.sound_match`).
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path

from .audio_keywords import sound_match
from .parse import UNPARSED, AnswerParser, is_correct
from .prompts import prompt_for, task_kind

SETTINGS = "settings.json"
AUDIO_RATE = 16_000  # what audio-only clips are decoded to (the Omni models' rate)


@cache
def settings() -> dict:
    path = Path(__file__).with_name(SETTINGS)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; re-export the lmms-eval tasks")
    return json.loads(path.read_text(encoding="utf-8"))


@cache
def parser() -> AnswerParser:
    return AnswerParser(settings()["wording"])


def media_path(doc: dict) -> Path:
    """The clip of ``doc``: its ``media_path`` is relative to the Hugging Face folder
    (``../../media/…``, normalised: models see a plain path)."""
    return Path(os.path.normpath(Path(settings()["hf_folder"]) / doc["media_path"]))


def decode_audio(path: Path) -> dict:
    """Mono float32 samples at AUDIO_RATE, as lmms-eval's audio tasks hand them over."""
    import av  # lmms-eval's own dependency (PyAV)
    import numpy as np

    chunks = []
    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise ValueError(f"{path}: no audio stream")
        resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)
        for frame in container.decode(audio=0):
            chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
        chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    array = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    return {"array": array.astype(np.float32), "sampling_rate": AUDIO_RATE, "path": str(path)}


def doc_to_visual(doc: dict) -> list:
    """A clip with pictures as its path (video models read sound and frames from it);
    an audio-only clip (MVT) as decoded audio."""
    path = media_path(doc)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the clip of {doc['id']} is missing")
    if doc["has_video"]:
        return [str(path)]
    return [decode_audio(path)]


def doc_to_text(doc: dict, lmms_eval_specific_kwargs: dict | None = None) -> str:
    """The workflow's evaluation prompt (:func:`~.prompts.prompt_for`, generate mode),
    worded by the bench's template as the workflow's evaluation words it."""
    template = settings().get("prompts", {}).get(doc["bench"])
    return prompt_for(doc["question"], doc["options"], template=template)


def process_results(doc: dict, results: list[str]) -> dict:
    """The sample's scores (0 or 100 each; their mean is the task's percentage)."""
    reply = results[0] if results else ""
    kind = task_kind(doc["options"])
    if kind == "open":
        keywords = settings()["sound_keywords"]
        if doc["sound_type"] not in keywords:
            raise ValueError(f"{doc['id']}: no keywords for sound type {doc['sound_type']!r}")
        hit = sound_match(
            reply, keywords[doc["sound_type"]], doc.get("instruments") or [], doc.get("snr_db")
        )
        return {"audio_match": 100.0 * hit}
    parsed = parser().parse(reply, doc["options"])
    correct = is_correct(parsed, doc["options"], doc["answer"], doc["answer_index"])
    scores = {"accuracy": 100.0 * correct, "unparseable": 100.0 * (parsed.status in UNPARSED)}
    if doc["task"] == "m1":
        scores["yes_rate"] = 100.0 * ((parsed.answer or "").lower() == "yes")
    return scores
