"""Instruction-tune the tiny Qwen2-Audio to say which instruments (or what) it hears.

The score stage asks the audio LLM, for each RL-CoMM training sample, to describe the
soundtrack in support of the ground-truth answer (system and instruction of
``avtrust/data/scoring.yaml``, :func:`avtrust.scoring.reasoning.reference_instruction`);
its reply becomes the reference ``<a-think>``. With random weights that reply is noise.
Here the model learns, on the pre-training corpus's training clips, to answer both that
reference prompt (a question about the clip asked by the corpus and its right answer)
and a plain listening question with one short sentence naming the instruments that
sound, in a fixed wording and a fixed (alphabetical) order: "I hear a cello and a
violin." (in this natural corpus every instrument of a scene sounds); for the corpus's
AVQA-style event clips, what makes the sound: "I hear a dog.", with the clip's own AVQA
questions in the reference form.

Inputs go through the adapter's own path (:class:`avtrust.models.audio_llm.AudioLLM`:
the video's soundtrack at 16 kHz, the processor's chat template and Whisper features),
so the trained weights see what scoring feeds them. Each clip is decoded and featurised
once by the official ``Qwen2AudioProcessor``; the prompts of later steps reuse its
features and its audio-placeholder expansion. The loss is the model's own token loss on
the response and the closing ``<|im_end|>`` (prompt and padding masked); full
fine-tuning with AdamW, batch order and prompt draws from the seed, so two runs give
identical weights.

Held-out figure: greedy replies (the adapter's :meth:`~avtrust.models.audio_llm.AudioLLM.
generate`) on the corpus's held-out clips, in the reference form and to the plain
question; a reply names the instruments when the set of instrument names found in it
is exactly the clip's.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from avtrust import data_files
from avtrust.bench.samples import derive_seed
from avtrust.pretrain import SectionSettings, corpus
from avtrust.pretrain.clap import clips, listed, with_article
from avtrust.pretrain.thinker import batch_order, loss_summary, optimiser_step, save  # noqa: F401 (save: the stage calls it)

PathLike = str | os.PathLike
# Plain listening questions (no system prompt: the chat template's default one), per
# kind of clip (a music scene, an event clip).
PLAIN_QUESTIONS = {
    "music": (
        "Which instruments do you hear?",
        "What instruments can be heard in this audio?",
        "Listen to the audio. Which instruments are playing?",
    ),
    "event": (
        "What do you hear?",
        "What is making the sound in this audio?",
        "Listen to the audio. What can be heard?",
    ),
}
PLAIN_SHARE = 0.5  # share of the training prompts in the plain form, the rest reference
# The reference form for a clip without a corpus question (answer: its labels joined).
GENERIC_QUESTION = "Which instruments are playing in the video?"
RESPONSE = "I hear {a_list}."
END_TOKEN = "<|im_end|>"
IGNORE = -100  # label of the tokens the loss skips
EXAMPLES = 4  # held-out (truth, reply) pairs kept per form in the summary, spread over the clips


@dataclass(frozen=True)
class AudioLLMSettings(SectionSettings):
    """config ``pretrain.audio_llm``."""

    key = "audio_llm"

    held_out_clips: int = 24
    max_new_tokens: int = 32


def response(instruments: list[str]) -> str:
    """The target reply: every instrument once, alphabetically, with its article."""
    return RESPONSE.format(a_list=listed([with_article(n) for n in sorted(set(instruments))]))


def named_instruments(text: str, vocabulary: list[str]) -> set[str]:
    """The names of ``vocabulary`` that ``text`` mentions (whole words, any case, a plural
    "s" allowed); longer names win where names overlap ("double bass" is not "bass")."""
    names = sorted(set(vocabulary), key=lambda n: (-len(n), n))
    if not names:
        return set()
    pattern = r"\b(" + "|".join(re.escape(n) for n in names) + r")s?\b"
    lower = {n.lower(): n for n in names}
    return {lower[m.group(1).lower()] for m in re.finditer(pattern, text, re.IGNORECASE)}


def names_the_instruments(reply: str, instruments: list[str], vocabulary: list[str]) -> bool:
    return named_instruments(reply, vocabulary) == set(instruments)


def reference_system() -> str:
    return data_files.load("scoring")["reference"]["system"]


def reference_prompt(question: str, answer: str) -> tuple[str, str]:
    """(instruction, system) of the score stage's reference reasoning."""
    from avtrust.scoring.reasoning import reference_instruction

    return reference_instruction(question, answer), reference_system()


def clip_questions(qs: list[dict]) -> dict[str, list[tuple[str, str]]]:
    """media_path -> its (question, right answer) pairs, of :func:`corpus.questions`."""
    out: dict[str, list[tuple[str, str]]] = {}
    for q in qs:
        out.setdefault(q["media_path"], []).append((q["question"], q["options"][q["answer_index"]]))
    return out


def generic_pair(instruments: list[str]) -> tuple[str, str]:
    joiner = data_files.load("scoring")["avsm"]["label_joiner"]
    return GENERIC_QUESTION, joiner.join(sorted(set(instruments)))


def clip_audio(llm, items: list[dict]) -> list[dict]:
    """Each clip's processor outputs, once: its Whisper ``input_features`` and
    ``feature_attention_mask`` and the text its audio placeholder expands to."""
    processor = llm.processor
    out = []
    for it in tqdm(items, desc="audio features", unit="clip"):
        wave = llm.read(it["media_path"])
        if wave is None or len(wave) == 0:
            raise ValueError(f"pre-training the audio LLM: {it['media_path']} has no audio")
        enc = llm.inputs([wave], [PLAIN_QUESTIONS["music"][0]])
        count = int((enc["input_ids"] == processor.audio_token_id).sum())
        out.append(
            {
                "input_features": enc["input_features"][0],
                "feature_attention_mask": enc["feature_attention_mask"][0],
                "replacement": processor.replace_audio_token({"num_audio_tokens": [count]}, 0),
            }
        )
    return out


def prompt_ids(llm, audio: dict, instruction: str, system: str | None) -> list[int]:
    """Token ids of the chat prompt with the clip's audio placeholder expanded, as the
    processor expands it (:meth:`AudioLLM.inputs` gives the same ids)."""
    processor = llm.processor
    text = llm.chat_text(instruction, system)
    (expanded,), _ = processor.get_text_with_replacements(
        [text], audio_replacements=[audio["replacement"]]
    )
    return list(processor.tokenizer(expanded)["input_ids"])


def build_batch(llm, audios: list[dict], prompts: list[list[int]], responses: list[str]) -> dict:
    """Model inputs of (clip audio, prompt ids, response) rows: prompt, response and
    ``<|im_end|>`` padded on the right; labels only on the response and its end."""
    import torch

    tok = llm.processor.tokenizer
    end = tok.convert_tokens_to_ids(END_TOKEN)
    rows, targets = [], []
    for prompt, text in zip(prompts, responses, strict=True):
        answer = [*tok(text)["input_ids"], end]
        rows.append([*prompt, *answer])
        targets.append([IGNORE] * len(prompt) + answer)
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), tok.pad_token_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    for i, (row, target) in enumerate(zip(rows, targets, strict=True)):
        input_ids[i, : len(row)] = torch.tensor(row)
        attention[i, : len(row)] = 1
        labels[i, : len(row)] = torch.tensor(target)
    return {
        "input_ids": input_ids,
        "attention_mask": attention,
        "labels": labels,
        "input_features": torch.stack([a["input_features"] for a in audios]),
        "feature_attention_mask": torch.stack([a["feature_attention_mask"] for a in audios]),
    }


def draw_prompt(
    kind: str, pairs: list[tuple[str, str]], rng: np.random.Generator
) -> tuple[str, str | None]:
    """(instruction, system) of one training row: a plain question about a clip of
    ``kind`` or, the other half of the time, the reference form with one of the clip's
    (question, answer) ``pairs``."""
    if rng.random() < PLAIN_SHARE:
        plain = PLAIN_QUESTIONS[kind]
        return plain[int(rng.integers(len(plain)))], None
    return reference_prompt(*pairs[int(rng.integers(len(pairs)))])


def train(
    llm,
    items: list[dict],
    audios: list[dict],
    pairs: list[list[tuple[str, str]]],
    settings: AudioLLMSettings,
    seed: int,
) -> list[float]:
    """Train ``llm`` (the adapter) in place on ``items`` (clips, with their
    :func:`clip_audio` and reference (question, answer) ``pairs``); returns every step's
    loss."""
    import torch

    if not items:
        raise ValueError("pre-training the audio LLM: no training clips")
    rng = np.random.default_rng(derive_seed(seed, "audio_llm", "prompts"))
    torch.manual_seed(seed % 2**31)
    model = llm.model
    # Whisper's position table stays as it is, as in the real encoder (frozen at build;
    # loading a saved model makes it trainable again)
    model.model.audio_tower.embed_positions.requires_grad_(False)
    optimiser = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad],
        lr=settings.learning_rate,
        weight_decay=settings.weight_decay,
    )
    targets = [response(it["sounds"]) for it in items]
    model.train()
    losses = []
    steps = batch_order(len(items), settings.steps, settings.batch_size, seed)
    progress = tqdm(steps, desc="pre-training the audio LLM", unit="step")
    for step, rows in enumerate(progress):
        prompts = [
            prompt_ids(llm, audios[i], *draw_prompt(items[i]["kind"], pairs[i], rng)) for i in rows
        ]
        batch = build_batch(llm, [audios[i] for i in rows], prompts, [targets[i] for i in rows])
        loss = model(**batch, use_cache=False).loss
        losses.append(optimiser_step(optimiser, model.parameters(), loss, step, settings))
        progress.set_postfix(loss=f"{losses[-1]:.3f}")
    model.eval()
    return losses


def held_out_replies(
    llm,
    items: list[dict],
    pairs: list[list[tuple[str, str]]],
    settings: AudioLLMSettings,
    seed: int,
) -> dict[str, list[str]]:
    """form (``reference``, ``plain``) -> the greedy reply for each of ``items``: the
    reference form with one of the clip's pairs (drawn from ``seed``), the plain form
    with the first plain question of the clip's kind."""
    rng = np.random.default_rng(derive_seed(seed, "audio_llm", "held_out"))
    waves = [llm.read(it["media_path"]) for it in items]
    chosen = [p[int(rng.integers(len(p)))] for p in pairs]
    instructions = [reference_prompt(q, a)[0] for q, a in chosen]
    kwargs = {"max_new_tokens": settings.max_new_tokens}
    return {
        "reference": llm.generate(waves, instructions, system=reference_system(), **kwargs),
        "plain": llm.generate(waves, [PLAIN_QUESTIONS[it["kind"]][0] for it in items], **kwargs),
    }


def held_out_figures(
    items: list[dict], replies: dict[str, list[str]], vocabulary: list[str]
) -> dict:
    """Share of replies (all forms, per form and per kind of clip) that name exactly the
    clip's instruments (an event clip's source); over all replies, the share of named
    instruments that sound (precision) and of sounding instruments named (recall); a few
    (truth, reply) examples per form."""
    hits: dict[str, list[bool]] = {}
    by_kind: dict[str, list[bool]] = {}
    named = right = sounding = 0
    examples = []
    shown = spread(len(items), EXAMPLES)
    for form, texts in replies.items():
        for it, reply in zip(items, texts, strict=True):
            found, truth = named_instruments(reply, vocabulary), set(it["sounds"])
            hits.setdefault(form, []).append(found == truth)
            by_kind.setdefault(it["kind"], []).append(found == truth)
            named += len(found)
            right += len(found & truth)
            sounding += len(truth)
        examples += [
            {"form": form, "truth": response(items[i]["sounds"]), "reply": texts[i]} for i in shown
        ]
    every = [h for v in hits.values() for h in v]
    return {
        "names_instruments": float(np.mean(every)) if every else 0.0,
        "by_form": {form: float(np.mean(v)) for form, v in hits.items()},
        "by_kind": {kind: float(np.mean(v)) for kind, v in sorted(by_kind.items())},
        "precision": right / named if named else 0.0,
        "recall": right / sounding if sounding else 0.0,
        "clips": len(items),
        "examples": examples,
    }


def spread(n: int, count: int) -> list[int]:
    """``count`` indices of ``range(n)`` evenly spread from first to last (all when
    ``count >= n``)."""
    if count >= n:
        return list(range(n))
    if count <= 1:
        return list(range(count))
    return sorted({round(k * (n - 1) / (count - 1)) for k in range(count)})


def corpus_parts(corpus_dir: Path, section: dict, seed: int) -> dict:
    """The corpus's clips, their reference (question, answer) pairs (an event clip's own
    AVQA questions) and the vocabulary of sound names, per part."""
    parts = clips(corpus_dir)
    rounds = section.get("corpus", {}).get("question_rounds", 1)
    out = {"vocabulary": sorted({n for p in parts.values() for it in p for n in it["sounds"]})}
    for part, items in parts.items():
        asked = clip_questions(corpus.questions(corpus_dir, part, seed, rounds))
        out[part] = (
            items,
            [
                it.get("pairs") or asked.get(it["media_path"]) or [generic_pair(it["sounds"])]
                for it in items
            ],
        )
    return out


def train_model(llm, corpus_dir: Path, section: dict, seed: int, log) -> dict:
    """The pretrain stage's entry: train ``llm`` in place on the corpus's training clips;
    returns the summary (losses, held-out share of replies naming the instruments)."""
    settings = AudioLLMSettings.from_config(section["audio_llm"])
    parts = corpus_parts(Path(corpus_dir), section, seed)
    items, pairs = parts["train"]
    held_items, held_pairs = parts["held_out"]
    # spread over the part (music scenes first, then event clips) so both kinds are asked
    keep = spread(len(held_items), settings.held_out_clips)
    held_items, held_pairs = [held_items[i] for i in keep], [held_pairs[i] for i in keep]
    if log:
        log.info("%d training clips, %d held-out clips", len(items), len(held_items))
    audios = clip_audio(llm, items)
    losses = train(llm, items, audios, pairs, settings, seed)
    summary = loss_summary(losses, clips=len(items))
    if held_items:
        replies = held_out_replies(llm, held_items, held_pairs, settings, seed)
        summary["held_out"] = held_out_figures(held_items, replies, parts["vocabulary"])
    return summary
