"""RL-CoMM data: reference audio reasoning per training sample, and the warm-up SFT set.

**Reference ``<a-think>``** — RL-CoMM's step-wise reasoning reward compares the policy's
``<a-think>`` with what an audio-only LLM (Qwen2-Audio-7B-Instruct in the paper; the
tiny Qwen2-Audio in the default) says about the same soundtrack. It is written once per
training sample here, not once per RL step: the audio LLM gets the sample's soundtrack,
the question and the ground-truth answer (prompt in ``avtrust/data/scoring.yaml``,
greedy decoding) and its reply is stored with its Qwen3-Embedding vector (unit norm,
embedded with the semantic-similarity instruction
:data:`avtrust.models.embedding.EMBEDDING_INSTRUCTION` or
``scoring.rlcomm.embedding_instruction``, the one the reward embeds the policy's text
with), so the reward only has to embed the policy's text. A sample whose
media has no audio stream (MAT) gets the fixed ``reference.no_audio`` sentence instead.

**Warm-up SFT set** — RL-CoMM starts from a short supervised warm-up on ~100 examples in
the output format ``<a-think>…</a-think> <v-think>…</v-think> <answer>…</answer>``.
Here each example is one of the warm-up questions chosen by
:mod:`avtrust.scoring.rlcomm_questions` (disjoint from the RL questions) with:

- ``<a-think>``: its stored reference audio reasoning;
- ``<v-think>``: "The video shows {labels}." from the labels of the clip (a MUSIC-AVQA
  scene's instruments, an AVQA clip's answers), or the no-video sentence for a clip
  without a video stream;
- ``<answer>``: the ground-truth answer.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from avtrust import data_files
from avtrust.bench.samples import CORE_NAMES, SAMPLE_CORE_FIELDS

REFERENCE_SCHEMA = pa.schema(
    [
        *SAMPLE_CORE_FIELDS,
        ("answer", pa.string()),
        ("prompt", pa.string()),
        ("visual_labels", pa.list_(pa.string())),
        ("reference_a_think", pa.string()),
        ("reference_origin", pa.string()),  # generated | no_audio
        ("reference_model", pa.string()),
        ("reference_embedding", pa.list_(pa.float32())),
        ("role", pa.string()),  # RL-CoMM questions: warmup | rl
    ]
)
WARMUP_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("bench", pa.string()),
        ("task", pa.string()),
        ("media_path", pa.string()),
        ("prompt", pa.string()),
        ("response", pa.string()),
        ("answer", pa.string()),
    ]
)


def policy_prompt(question: str, options: Sequence[str] | None) -> str:
    """The RL-CoMM policy's text prompt: question, options, output-format instruction."""
    cfg = data_files.load("scoring")["rlcomm"]
    lines = [question]
    if options:
        lines.append(cfg["options_line"].format(options=cfg["options_joiner"].join(options)))
    lines.append(cfg["format_instruction"])
    return "\n".join(lines)


def reference_instruction(question: str, answer: str) -> str:
    cfg = data_files.load("scoring")["reference"]
    return cfg["instruction"].format(question=question, answer=answer)


def clean_reply(text: str) -> str:
    """A reply as reference text: the policy's tags and control characters removed,
    whitespace collapsed."""
    for tag in ("<a-think>", "</a-think>", "<v-think>", "</v-think>", "<answer>", "</answer>"):
        text = text.replace(tag, " ")
    text = "".join(" " if unicodedata.category(c)[0] == "C" else c for c in text)
    return " ".join(text.split())


def reference_reasoning(
    samples: list[dict],
    visual_labels: dict[str, list[str]],
    audio_llm,
    embedder,
    *,
    model_name: str,
    max_new_tokens: int,
    batch_size: int,
    instruction: str | None = None,
) -> pa.Table:
    """Reference ``<a-think>`` text and embedding for ``samples`` (rows of the sample
    schema; a ``role`` column, the RL-CoMM questions', is kept);
    ``instruction``: the embedding instruction (None: the embedder's default)."""
    cfg = data_files.load("scoring")["reference"]
    texts: list[str | None] = [None] * len(samples)
    audio_rows = [i for i, s in enumerate(samples) if s["has_audio"]]
    waves = [audio_llm.read(samples[i]["media_path"]) for i in audio_rows]
    instructions = [
        reference_instruction(samples[i]["question"], samples[i]["answer"]) for i in audio_rows
    ]
    replies = audio_llm.generate(
        waves,
        instructions,
        system=cfg["system"],
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
    )
    for i, reply in zip(audio_rows, replies, strict=True):
        texts[i] = clean_reply(reply)
    origin = ["generated" if s["has_audio"] else "no_audio" for s in samples]
    texts = [t if t is not None else cfg["no_audio"] for t in texts]
    kwargs = {} if instruction is None else {"instruction": instruction}
    emb = embedder.embed(texts, batch_size, **kwargs) if texts else np.zeros((0, 0), np.float32)
    rows = []
    for i, s in enumerate(samples):
        rows.append(
            {
                **{name: s[name] for name in CORE_NAMES},
                "answer": s["answer"],
                "prompt": policy_prompt(s["question"], s["options"]),
                "visual_labels": visual_labels.get(s["id"], []),
                "reference_a_think": texts[i],
                "reference_origin": origin[i],
                "reference_model": model_name,
                "reference_embedding": emb[i].astype(np.float32).tolist(),
                "role": s.get("role"),
            }
        )
    return pa.Table.from_pylist(rows, schema=REFERENCE_SCHEMA)


def v_think(labels: Sequence[str], has_video: bool) -> str:
    cfg = data_files.load("scoring")
    if not has_video:
        return cfg["rlcomm"]["v_think_no_video"]
    avsm = cfg["avsm"]
    described = avsm["label_joiner"].join(labels) if labels else avsm["unlabelled"]
    return cfg["rlcomm"]["v_think"].format(labels=described)


def warmup_set(reference: pa.Table) -> pa.Table:
    """The warm-up SFT examples of the reference rows given (see the module docstring)."""
    template = data_files.load("scoring")["rlcomm"]["response"]
    rows = [
        {
            "id": r["id"],
            "bench": r["bench"],
            "task": r["task"],
            "media_path": r["media_path"],
            "prompt": r["prompt"],
            "response": template.format(
                a_think=r["reference_a_think"],
                v_think=v_think(r["visual_labels"], r["has_video"]),
                answer=r["answer"],
            ),
            "answer": r["answer"],
        }
        for r in reference.to_pylist()
    ]
    return pa.Table.from_pylist(rows, schema=WARMUP_SCHEMA)


def rlcomm_tables(shards: Sequence[pa.Table]) -> tuple[pa.Table, pa.Table]:
    """(RL training table, warm-up SFT set) from the reference shards: the roles were
    chosen disjoint (:mod:`avtrust.scoring.rlcomm_questions`); the RL table keeps the
    reference rows (task, id order), the warm-up questions become formatted examples."""
    reference = pa.concat_tables(shards).sort_by([("task", "ascending"), ("id", "ascending")])
    unknown = set(reference["role"].to_pylist()) - {"warmup", "rl"}
    if unknown:
        raise ValueError(f"reference rows with role(s) {sorted(map(str, unknown))}: not warmup/rl")
    warmup = warmup_set(reference.filter(pc.equal(reference["role"], "warmup")))
    return reference.filter(pc.equal(reference["role"], "rl")), warmup
