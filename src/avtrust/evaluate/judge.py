"""AV-ConfuseBench m2: scoring free-text descriptions of a clip whose soundtrack changed.

Two measures per description:

- **the LLM judge** (A-Acc, V-Acc): a judge model — any OpenAI-compatible endpoint
  (``openai_http``) or a local Omni thinker from the registry — gets the prompt of
  ``avtrust/data/judge.yaml`` (question, reference annotation, instruments in view,
  what is really heard, the description) and must reply with exactly one JSON object
  ``{"audio": a, "visual": v}``, integers 0–5. :func:`parse_scores` is strict: extra
  keys, missing keys, floats, out-of-range values, two objects or no object are
  malformed. A malformed reply or a failed request is retried (``retries`` more
  attempts, later attempts sampled at ``retry_temperature``); if every attempt fails the
  sample is recorded with the last error and no scores, and counted as a judge failure.
- **the audio keyword metric** (no judge): :func:`sound_match` is true when the audio
  part of the description names the actual sound type (keywords in the data file) and,
  when the soundtrack was *replaced*, does not claim that an instrument in view is heard.
  With a mixed soundtrack (``snr_db`` set) the instrument is really heard, so naming
  the sound is enough (:mod:`avtrust.evaluate.audio_keywords`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pyarrow as pa

from avtrust import data_files
from avtrust.errors import AvtrustError
from avtrust.evaluate import audio_keywords

JUDGE_SCHEMA = pa.schema(
    [
        ("model", pa.string()),
        ("id", pa.string()),
        ("mode", pa.string()),
        ("sound_type", pa.string()),
        ("snr_db", pa.float64()),
        ("judge", pa.string()),
        ("a_score", pa.int32()),
        ("v_score", pa.int32()),
        ("attempts", pa.int32()),
        ("error", pa.string()),
        ("audio_match", pa.bool_()),
    ]
)
_JSON_OBJECT = re.compile(r"\{[^{}]*\}")
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.I)


class JudgeReplyError(AvtrustError, ValueError):
    """A judge reply that is not exactly {"audio": 0-5, "visual": 0-5}."""


def parse_scores(reply: str) -> tuple[int, int]:
    """(audio, visual) from a judge reply; JudgeReplyError naming what is wrong."""
    text = _FENCE.sub("", (reply or "").strip())
    objects = _JSON_OBJECT.findall(text)
    if len(objects) != 1:
        raise JudgeReplyError(
            f"expected exactly one JSON object in the judge reply, found {len(objects)}: "
            f"{reply[:200]!r}"
        )
    rest = text.replace(objects[0], "", 1).strip()
    if rest:
        raise JudgeReplyError(f"text besides the JSON object in the judge reply: {rest[:100]!r}")
    try:
        scores = json.loads(objects[0])
    except json.JSONDecodeError as exc:
        raise JudgeReplyError(f"invalid JSON in the judge reply: {exc}") from None
    if set(scores) != {"audio", "visual"}:
        raise JudgeReplyError(f"judge reply keys {sorted(scores)}: expected audio and visual")
    out = []
    for key in ("audio", "visual"):
        value = scores[key]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 5:
            raise JudgeReplyError(f"judge score {key} = {value!r}: expected an integer 0-5")
        out.append(value)
    return out[0], out[1]


def join_names(names: Sequence[str]) -> str:
    names = [n for n in names if n]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def judge_messages(sample: dict, response: str) -> list[dict]:
    """Chat messages asking the judge to score ``response`` for an m2 ``sample``."""
    spec = data_files.load("judge")
    sound_names = data_files.load("templates")["avconfusebench"]["m2"]["sound_names"]
    sound = sound_names.get(sample["sound_type"], sample["sound_type"])
    instruments = join_names(list(sample.get("instruments") or []))
    template = spec["heard_replaced"] if sample.get("snr_db") is None else spec["heard_mixed"]
    heard = template.format(sound=sound, instruments=instruments or "the instruments")
    prompt = spec["prompt"].format(
        question=sample["question"],
        reference=sample["answer"],
        instruments=instruments or "none",
        heard=heard,
        response=response,
    )
    return [{"role": "system", "content": spec["system"]}, {"role": "user", "content": prompt}]


@dataclass
class Verdict:
    a_score: int | None
    v_score: int | None
    attempts: int
    error: str | None


def judge_one(
    chat: Callable[[list[dict], float], str],
    messages: list[dict],
    *,
    retries: int = 2,
    retry_temperature: float = 0.7,
    log=None,
) -> Verdict:
    """Ask ``chat(messages, temperature)`` until its reply parses; at most 1 + retries."""
    error = None
    for attempt in range(1 + retries):
        temperature = 0.0 if attempt == 0 else retry_temperature
        try:
            a, v = parse_scores(chat(messages, temperature))
            return Verdict(a, v, attempt + 1, None)
        except AvtrustError as exc:  # malformed reply, or a failed request (ModelError)
            error = str(exc)
            if log:
                log.warning("judge attempt %d failed: %s", attempt + 1, error)
    return Verdict(None, None, 1 + retries, error)


def sound_match(
    description: str, sound_type: str, instruments: Sequence[str], snr_db: float | None
) -> bool:
    """The deterministic audio metric (see the module docstring), with the keywords of
    ``sound_type`` from the data file."""
    keywords = data_files.load("judge")["sound_keywords"]
    if sound_type not in keywords:
        raise ValueError(f"no keywords for sound type {sound_type!r} (data/judge.yaml)")
    return audio_keywords.sound_match(description, keywords[sound_type], instruments, snr_db)


class HttpJudge:
    """A judge behind an OpenAI-compatible endpoint (avtrust.models.http.OpenAIEndpoint)."""

    def __init__(self, endpoint, max_new_tokens: int = 64):
        self.endpoint = endpoint
        self.max_new_tokens = max_new_tokens

    def __call__(self, messages: list[dict], temperature: float) -> str:
        return self.endpoint.chat(messages, max_tokens=self.max_new_tokens, temperature=temperature)


class LocalJudge:
    """A local Omni thinker (zero-shot or trained) as judge: text-only chat generation."""

    def __init__(self, model, max_new_tokens: int = 64, seed: int = 0):
        self.model = model
        self.max_new_tokens = max_new_tokens
        self.seed = seed
        self.calls = 0

    def __call__(self, messages: list[dict], temperature: float) -> str:
        import torch

        system = "\n".join(m["content"] for m in messages if m["role"] == "system")
        user = "\n".join(m["content"] for m in messages if m["role"] == "user")
        text = (
            f"<|im_start|>system\n{system}<|im_end|>\n"
            f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
        )
        tok = self.model.tokenizer
        enc = tok([text], return_tensors="pt").to(self.model.device)
        kwargs = {"max_new_tokens": self.max_new_tokens, "do_sample": temperature > 0}
        if temperature > 0:
            kwargs["temperature"] = temperature
            torch.manual_seed(self.seed + self.calls)
        self.calls += 1
        with torch.inference_mode():
            ids = self.model.model.generate(**enc, **kwargs)
        return tok.decode(ids[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)


def judge_predictions(
    predictions: Sequence[dict],
    samples: dict[str, dict],
    chat: Callable | None,
    *,
    judge_name: str | None,
    retries: int = 2,
    retry_temperature: float = 0.7,
    log=None,
) -> pa.Table:
    """Judge rows (JUDGE_SCHEMA) for the open-ended predictions of one model on m2.

    ``chat`` None: no LLM judge configured; only the audio keyword metric is computed.
    """
    from tqdm import tqdm

    rows = []
    for p in tqdm(predictions, desc="judge", mininterval=5):
        if p["kind"] != "open":
            continue
        sample = samples.get(p["id"])
        if sample is None:
            raise ValueError(f"prediction {p['id']!r} has no m2 sample")
        verdict = Verdict(None, None, 0, None)
        if chat is not None:
            verdict = judge_one(
                chat,
                judge_messages(sample, p["raw"] or ""),
                retries=retries,
                retry_temperature=retry_temperature,
                log=log,
            )
        rows.append(
            {
                "model": p["model"],
                "id": p["id"],
                "mode": p["mode"],
                "sound_type": sample["sound_type"],
                "snr_db": sample.get("snr_db"),
                "judge": judge_name,
                "a_score": verdict.a_score,
                "v_score": verdict.v_score,
                "attempts": verdict.attempts,
                "error": verdict.error,
                "audio_match": sound_match(
                    p["raw"] or "",
                    sample["sound_type"],
                    sample.get("instruments") or [],
                    sample.get("snr_db"),
                ),  # fmt: skip
            }
        )
    return pa.Table.from_pylist(rows, schema=JUDGE_SCHEMA)
