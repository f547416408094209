"""RL-CoMM rewards (Step-RR) and the GRPO accuracy baseline's rewards.

The policy answers in the format ``<a-think>…</a-think> <v-think>…</v-think>
<answer>…</answer>``. For a completion c of a sample with ground-truth answer y and
reference audio reasoning R (written once per sample by the audio-only LLM in the score
stage, stored with its unit embedding):

- ``r_format`` ∈ {0, 1}: 1 iff the three tag pairs occur exactly once each, in this
  order, with nothing but whitespace around them (contents may be empty);
- ``r_arr`` ∈ {0, 1}: 1 iff the answer is correct **and** cos(e(a-think), e(R)) > ω
  (ω = 0.8 in the paper), with e the Qwen3-Embedding model;
- ``r_avc`` = 1 + I if the answer is correct, I if an answer exists but is wrong, 0 if
  there is no answer (no ``<answer>`` pair, or only whitespace inside it), with
  I = cos(e(a-think), e(v-think)); I = 0 when either think is missing or empty;
- ``r_acc`` ∈ {0, 1} (GRPO baseline): 1 iff the answer is correct.

The step reward is r = r_format + r_arr + r_avc (each a separate TRL reward function,
weights 1, summed by TRL before the group-normalised advantage).

A tag's content is the text between its first opening tag and the first closing tag
after it. An answer is correct iff it equals the ground truth after normalisation
(Unicode NFKC, case-folded, punctuation dropped, whitespace collapsed), or, for a
multiple-choice question, it names exactly one option by its text (as whole words) and
that option is the ground truth: with options violin / cello, ``"The answer is: cello."``
is correct and ``"cello or violin"`` is not. Open-ended answers (AV-ConfuseBench m2)
count as correct only on a normalised exact match; grading them is the judge's job in
the evaluation stage, not a reward's.

Own rewards: a GRPO stage's ``extra_rewards`` (``rlcomm.steprr`` / ``rlcomm.grpo_acc``)
names further TRL reward functions as ``"module:function"`` (:func:`load_reward`); each
must be importable in every training process and be called as
``f(prompts, completions, completion_ids, **columns) -> list[float]``, ``columns`` being
the dataset columns of the rows (``answer``, ``options``, ``media_path``, …). It is added
to the stage's rewards with weight 1 and logged as ``reward_<function name>``.

Cost: the embedding model is loaded once per training job and passed in; each GRPO step
embeds every distinct a-think and v-think of the step's completions in one batched call
(the reference embeddings are precomputed), shared by ``r_arr`` and ``r_avc``.
"""

from __future__ import annotations

import importlib
import re
import string
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

TAGS = ("a-think", "v-think", "answer")
_FORMAT = re.compile(
    r"\s*<a-think>(?P<a>.*?)</a-think>\s*<v-think>(?P<v>.*?)</v-think>\s*"
    r"<answer>(?P<ans>.*?)</answer>\s*",
    re.DOTALL,
)
_PUNCT = str.maketrans({c: " " for c in string.punctuation})
COMPONENTS = ("format", "arr", "avc", "accuracy")


@dataclass(frozen=True)
class Parsed:
    """The parts of one completion (None where the tag pair is missing)."""

    a_think: str | None
    v_think: str | None
    answer: str | None
    well_formed: bool


def tag_content(text: str, tag: str) -> str | None:
    """Text between the first ``<tag>`` and the first ``</tag>`` after it, stripped."""
    start = text.find(f"<{tag}>")
    if start < 0:
        return None
    start += len(tag) + 2
    end = text.find(f"</{tag}>", start)
    if end < 0:
        return None
    return text[start:end].strip()


def well_formed(text: str) -> bool:
    """All three tag pairs, each exactly once, in order, only whitespace around them."""
    if any(text.count(f"<{t}>") != 1 or text.count(f"</{t}>") != 1 for t in TAGS):
        return False
    return _FORMAT.fullmatch(text) is not None


def parse(text: str) -> Parsed:
    answer = tag_content(text, "answer")
    return Parsed(
        a_think=tag_content(text, "a-think"),
        v_think=tag_content(text, "v-think"),
        answer=answer if answer else None,
        well_formed=well_formed(text),
    )


def normalise_answer(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold().translate(_PUNCT)
    return " ".join(text.split())


def answer_choice(answer: str | None, options: Sequence[str] | None = None) -> str | None:
    """What ``answer`` says, as the key that decides correctness (:func:`is_correct`):
    with options, the normalised option it names — the option itself when the answer is
    exactly an option, else the only option it names as whole words (``"No, there is
    none."`` → ``"no"``); None when it names none or several. Without options (open-ended)
    the normalised text. None for no answer (None, empty or only punctuation)."""
    if not answer:
        return None
    got = normalise_answer(answer)
    if not got:
        return None
    if not options:
        return got
    opts = [o for o in map(normalise_answer, options) if o]
    if got in opts:
        return got
    named = {o for o in opts if _names(got, o)}
    return named.pop() if len(named) == 1 else None


def is_correct(answer: str | None, truth: str, options: Sequence[str] | None = None) -> bool:
    """``answer`` matches the ground truth (see the module docstring): its normalised text
    is the truth's, or, with options, :func:`answer_choice` is the truth."""
    if not answer:
        return False
    got, want = normalise_answer(answer), normalise_answer(truth)
    if got == want:
        return True
    return bool(options) and answer_choice(answer, options) == want


def _names(text: str, phrase: str) -> bool:
    return re.search(rf"(?<!\S){re.escape(phrase)}(?!\S)", text) is not None


def _unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


class StepRewards:
    """Scores completions once per batch; ``functions()`` exposes each component as a
    TRL reward function ``f(prompts, completions, completion_ids, **columns)``.

    ``embedder``: anything with ``embed(texts) -> (n, d) array`` (a loaded
    :class:`avtrust.models.embedding.TextEmbedder`); needed only for ``arr``/``avc``.
    ``instruction``: the embedding instruction (``scoring.rlcomm.embedding_instruction``;
    None: the embedder's default, :data:`avtrust.models.embedding.EMBEDDING_INSTRUCTION`,
    the one the reference embeddings were made with by default).
    Columns used: ``answer``, ``options`` (optional), ``reference_embedding``.

    The components of one batch are computed once and shared by the reward functions
    TRL calls one after the other: the last scores are reused only for a call whose
    completions, ground truths, options and reference embeddings are all equal.
    """

    def __init__(
        self,
        embedder=None,
        omega: float = 0.8,
        batch_size: int = 64,
        instruction: str | None = None,
    ):
        if not 0.0 <= omega <= 1.0:
            raise ValueError(f"omega must lie in [0, 1], got {omega}")
        self.embedder = embedder
        self.instruction = instruction
        self.omega = omega
        self.batch_size = batch_size
        self.embed_calls = 0
        self._last_key = None
        self._last: dict[str, np.ndarray] | None = None

    def _embed(self, texts: list[str]) -> dict[str, np.ndarray]:
        unique = list(dict.fromkeys(t for t in texts if t))
        if not unique:
            return {}
        if self.embedder is None:
            raise ValueError("the reasoning rewards (arr, avc) need an embedding model")
        self.embed_calls += 1
        kwargs = {} if self.instruction is None else {"instruction": self.instruction}
        emb = self.embedder.embed(unique, self.batch_size, **kwargs)
        emb = _unit(np.asarray(emb, dtype=np.float64))
        return dict(zip(unique, emb, strict=True))

    def score(
        self,
        completions: Sequence[str],
        answer: Sequence[str],
        reference_embedding: Sequence[Sequence[float]] | None = None,
        options: Sequence[Sequence[str] | None] | None = None,
        *,
        reasoning: bool = True,
    ) -> dict[str, np.ndarray]:
        """Every component for every completion: keys of :data:`COMPONENTS`, plus
        ``sim_reference`` and ``sim_av`` (NaN where undefined)."""
        texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
        key = _score_key(texts, answer, reference_embedding, options, reasoning)
        if key == self._last_key and self._last is not None:
            return self._last
        n = len(texts)
        if len(answer) != n:
            raise ValueError(f"{n} completions but {len(answer)} answers")
        parts = [parse(t) for t in texts]
        opts = options if options is not None else [None] * n
        correct = np.array(
            [is_correct(p.answer, a, o) for p, a, o in zip(parts, answer, opts, strict=True)]
        )
        out = {
            "format": np.array([float(p.well_formed) for p in parts]),
            "accuracy": correct.astype(float),
            "arr": np.zeros(n),
            "avc": np.zeros(n),
            "sim_reference": np.full(n, np.nan),
            "sim_av": np.full(n, np.nan),
        }
        if reasoning:
            if reference_embedding is None:
                raise ValueError("the reasoning rewards need the `reference_embedding` column")
            emb = self._embed([t for p in parts for t in (p.a_think, p.v_think)])
            for i, p in enumerate(parts):
                a, v = emb.get(p.a_think or ""), emb.get(p.v_think or "")
                if a is not None:
                    ref = _unit(np.asarray(reference_embedding[i], dtype=np.float64))
                    out["sim_reference"][i] = float(a @ ref)
                if a is not None and v is not None:
                    out["sim_av"][i] = float(a @ v)
                sim_av = 0.0 if np.isnan(out["sim_av"][i]) else out["sim_av"][i]
                out["arr"][i] = float(correct[i] and out["sim_reference"][i] > self.omega)
                if correct[i]:
                    out["avc"][i] = 1.0 + sim_av
                elif p.answer is not None:
                    out["avc"][i] = sim_av
        self._last_key, self._last = key, out
        return out

    def functions(self, components: Sequence[str]) -> list[Callable]:
        """TRL reward functions named ``r_<component>``, in ``components`` order."""
        reasoning = any(c in ("arr", "avc") for c in components)
        funcs = []
        for component in components:
            if component not in COMPONENTS:
                raise ValueError(f"unknown reward {component!r} ({', '.join(COMPONENTS)})")

            def reward(prompts, completions, completion_ids=None, _c=component, **columns):
                scores = self.score(
                    completions,
                    columns["answer"],
                    columns.get("reference_embedding"),
                    columns.get("options"),
                    reasoning=reasoning,
                )
                if _c == components[0] and callable(columns.get("log_metric")):
                    columns["log_metric"]("accuracy", float(np.mean(scores["accuracy"])))
                return scores[_c].tolist()

            reward.__name__ = "r_acc" if component == "accuracy" else f"r_{component}"
            funcs.append(reward)
        return funcs


def _score_key(texts, answer, reference_embedding, options, reasoning: bool) -> tuple:
    """Everything that decides a batch's scores: the completions, ground truths, options,
    reference embeddings (values, not identity) and whether reasoning is scored."""
    ref = None
    if reference_embedding is not None:
        arr = np.asarray(reference_embedding, dtype=np.float64)
        ref = (arr.shape, arr.tobytes())
    opts = None if options is None else tuple(None if o is None else tuple(o) for o in options)
    return (tuple(texts), tuple(answer), opts, ref, reasoning)


def load_reward(ref: str, where: str = "rlcomm extra_rewards") -> Callable:
    """The reward function named ``"module:function"`` (see the module docstring)."""
    from avtrust.errors import ConfigError

    module, sep, name = str(ref).partition(":")
    if not sep or not module or not name.isidentifier():
        raise ConfigError(f"{where}: {ref!r} is not of the form 'module:function'")
    try:
        found = importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(f"{where}: cannot import {module!r} for {ref!r} ({exc})") from exc
    func = getattr(found, name, None)
    if not callable(func):
        raise ConfigError(f"{where}: {module!r} has no function {name!r} ({ref!r})")
    return func
