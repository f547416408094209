"""Answer-centred confidence optimisation (Ans-CO), the last RL-CoMM stage.

Loss of one target response o of sample i (teacher-forced after the prompt and media),
as in the paper:

    L_i = −(1/T_i)·Σ_t log π(o_t | o_<t, x)  +  λ_i·(1/|N_i|)·Σ_{t∈N_i} H_t

- the NLL is averaged over the T_i response tokens of **this** sequence (every
  response token counts once, a long response does not outweigh a short one);
- N_i are sample i's **answer tokens**, the tokens carrying the text between
  ``<answer>`` and ``</answer>`` (the paper's t > T_prompt+think; the tag tokens
  themselves are fixed by the format, so they are left out), H_t the entropy of the
  next-token distribution that predicts token t; the term is 0 for a response
  without answer tokens, and no other token is touched by it;
- λ_i = λ (0.5 in the paper), or 0 when the sample's answer uncertainty u_i exceeds
  the threshold (0.75).

The loss of a batch is the mean of L_i over its sequences (those with at least one
response token). Under gradient accumulation and over several processes
:class:`AnsCOTrainer` keeps that exact: it sums L_i and divides by the number of
sequences of the whole optimizer step (all micro-batches, all processes; passed by the
Trainer as ``num_items_in_batch``), so micro-batches of unequal sizes weigh each
sequence once, not each micro-batch once.

**Answer uncertainty u** (the paper does not spell it out; defined here): the policy
(the Step-RR checkpoint) samples K completions per training sample (K = the GRPO group
size, 6), each completion's answer is mapped to the option it names by
:func:`avtrust.train.rewards.answer_choice` — the mapping that decides correctness in
:func:`~avtrust.train.rewards.is_correct`, so ``"No."``, ``"no, there is none"`` and
``"The answer is no"`` are one answer — and u = 1 − (count of the most frequent
option) / K. A completion with no answer, or one that names no option or several,
counts as its own outcome: it never agrees with another. Open-ended questions (no
options) compare the normalised answer texts. u = 0 when all K agree; with K = 6,
u > 0.75 means no two completions give the same answer (u = 5/6). Why this one: it
measures the disagreement of the model's *final answers* over its own reasoning paths
(what Ans-CO is about), reuses the sampled completions that also provide the targets,
and is 1 − "max prob over sampled answers", which reads directly against the 0.75
threshold. Pushing the entropy of the answer tokens down on a sample the model is that
unsure about would only make it confidently wrong, hence λ = 0 there.

**Targets**: per sample, the first sampled completion (in sampling order) that is
well-formed with the correct answer; when none is, the warm-up formatted response
(reference ``<a-think>``, the ``<v-think>`` from the labels, the ground-truth answer).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch

from avtrust.train.rewards import answer_choice
from avtrust.train.trainers import SFTCollator, SFTTrainer

COLUMNS = ["media_path", "prompt", "response", "uncertainty"]


def answer_span(text: str) -> tuple[int, int] | None:
    """Character span of the answer: after the first ``<answer>``, up to the first
    ``</answer>`` after it (the whole rest of the text when it is not closed)."""
    start = text.find("<answer>")
    if start < 0:
        return None
    start += len("<answer>")
    end = text.find("</answer>", start)
    return start, len(text) if end < 0 else end


def token_char_spans(token_ids: Sequence[int], tokenizer) -> tuple[str, list[tuple[int, int]]]:
    """The decoded text of ``token_ids`` and each token's character span in it (by
    incremental decoding, so merges across the tag boundaries are exact)."""
    spans, prev = [], 0
    ids = list(token_ids)
    for i in range(len(ids)):
        cur = len(
            tokenizer.decode(
                ids[: i + 1], skip_special_tokens=False, clean_up_tokenization_spaces=False
            )
        )
        spans.append((prev, cur))
        prev = cur
    text = tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    return text, spans


def mask_from_spans(spans: Sequence[tuple[int, int]], span: tuple[int, int] | None) -> list[bool]:
    """True for tokens carrying at least one character of ``span``."""
    if span is None:
        return [False] * len(spans)
    lo, hi = span
    return [s < hi and e > lo and e > s for s, e in spans]


def answer_token_mask(token_ids: Sequence[int], tokenizer) -> list[bool]:
    """Answer tokens of a response given as token ids (see :func:`mask_from_spans`)."""
    text, spans = token_char_spans(token_ids, tokenizer)
    return mask_from_spans(spans, answer_span(text))


def answer_uncertainty(
    answers: Sequence[str | None], options: Sequence[str] | None = None
) -> float:
    """u = 1 − (count of the most frequent option) / K over K sampled answers, each
    mapped to the option it names (:func:`avtrust.train.rewards.answer_choice`); an
    answer that maps to nothing (None, no option, several) is a distinct outcome."""
    if not answers:
        raise ValueError("answer_uncertainty needs at least one sampled answer")
    keys = [answer_choice(a, options) for a in answers]
    counts = Counter(k for k in keys if k is not None)
    top = max(counts.values(), default=0)
    return 1.0 - max(top, 1) / len(answers)


def entropy_weights(uncertainty, lam: float, threshold: float):
    """λ_i: ``lam`` where u_i ≤ threshold, 0 where u_i > threshold (tensor in, out)."""
    u = torch.as_tensor(uncertainty, dtype=torch.float32)
    return torch.where(u > threshold, torch.zeros_like(u), torch.full_like(u, lam))


def ansco_loss(logits, labels, answer_mask, weights, *, reduction: str = "mean"):
    """Ans-CO loss of one batch (see the module docstring).

    ``logits`` (B, T, V) from the model on ``input_ids``; ``labels`` (B, T) = the input
    ids on response tokens, -100 elsewhere; ``answer_mask`` (B, T) bool, True on the
    answer tokens of ``input_ids`` (a subset of the labelled ones); ``weights`` (B,) the
    λ_i. Position t predicts token t + 1, so both masks are shifted by one.

    ``reduction``: ``"mean"`` over the sequences with at least one response token, or
    ``"sum"`` of their L_i. Returns ``(loss, stats)`` with stats (detached, means over
    those sequences) ``nll`` (mean_i NLL_i), ``entropy_term`` (mean_i λ_i·H̄_i),
    ``answer_entropy`` (mean over all answer tokens of the batch) and ``sequences``.
    """
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    target = labels[:, 1:]
    valid = target != -100
    amask = answer_mask[:, 1:].bool() & valid
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    picked = torch.gather(logp, 2, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    tokens = valid.sum(-1)
    nll = -(picked * valid).sum(-1) / tokens.clamp(min=1)  # (B,): 1/T_i per sequence
    ent = -(logp.exp() * logp).sum(-1)
    answer_ent = (ent * amask).sum(-1) / amask.sum(-1).clamp(min=1)  # (B,), 0 if none
    w = torch.as_tensor(weights, dtype=ent.dtype, device=ent.device)
    has = (tokens > 0).to(ent.dtype)
    per_sample = (nll + w * answer_ent) * has
    n = has.sum()
    total = per_sample.sum()
    loss = total if reduction == "sum" else total / n.clamp(min=1)
    stats = {
        "nll": ((nll * has).sum() / n.clamp(min=1)).detach(),
        "entropy_term": ((w * answer_ent * has).sum() / n.clamp(min=1)).detach(),
        "answer_entropy": ((ent * amask).sum() / amask.sum().clamp(min=1)).detach(),
        "sequences": n.detach(),
    }
    return loss, stats


def sequence_count(labels) -> int:
    """Sequences of a batch with at least one response token (what :func:`ansco_loss`
    averages over)."""
    return int((labels[:, 1:] != -100).any(-1).sum())


class AnsCOCollator:
    """SFT batches plus ``answer_mask`` (answer tokens of each response) and λ_i."""

    def __init__(self, encoder, lam: float, threshold: float):
        self.sft = SFTCollator(encoder)
        self.encoder = encoder
        self.lam = lam
        self.threshold = threshold

    def __call__(self, rows: list[dict]) -> dict:
        enc = self.sft.encode(rows)
        batch = enc.batch
        tok = self.encoder.builder.tokenizer
        mask = torch.zeros_like(batch["labels"], dtype=torch.bool)
        for b in range(mask.shape[0]):
            where = (batch["labels"][b] != -100).nonzero().squeeze(-1)
            flags = answer_token_mask(batch["labels"][b, where].tolist(), tok)
            mask[b, where] = torch.tensor(flags, dtype=torch.bool)
        u = [0.0] * len(rows)
        for i, r in enumerate(rows):
            u[enc.rows[i]] = r["uncertainty"]
        batch["answer_mask"] = mask
        batch["entropy_weight"] = entropy_weights(u, self.lam, self.threshold)
        return batch


class AnsCOTrainer(SFTTrainer):
    """NLL + λ_i·mean answer-token entropy (:func:`ansco_loss`) on the
    :class:`AnsCOCollator` batches; logs ``nll``, ``entropy_term`` and
    ``answer_entropy`` (means over the micro-batches since the last log).

    Exact under gradient accumulation and data parallelism: ``num_items_in_batch`` is
    the number of sequences of the optimizer step over all micro-batches and processes
    (:meth:`_get_num_items_in_batch`), each micro-batch returns Σ L_i /
    ``num_items_in_batch`` × processes (DDP and DeepSpeed average the gradients over the
    processes), and the Trainer does not divide it again (``loss_is_scaled_for_ga``).
    """

    loss_is_scaled_for_ga = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._stats: dict[str, list[float]] = {}

    def _set_signature_columns_if_needed(self):
        self._signature_columns = list(COLUMNS)

    def _get_num_items_in_batch(self, batch_samples: list, device):
        if not batch_samples or "labels" not in batch_samples[0]:
            return None
        count = torch.tensor(sum(sequence_count(b["labels"]) for b in batch_samples), device=device)
        if self.args.world_size > 1:
            count = self.accelerator.gather(count).sum()
        return count

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs.pop("labels")
        mask = inputs.pop("answer_mask")
        weights = inputs.pop("entropy_weight")
        out = model(**inputs)
        total, stats = ansco_loss(out.logits, labels, mask, weights, reduction="sum")
        if num_items_in_batch is None:
            # no step-wide count (a batch on its own): the mean over its sequences
            loss = total / stats["sequences"].clamp(min=1)
        else:
            items = torch.as_tensor(num_items_in_batch, device=total.device, dtype=total.dtype)
            loss = total / items.clamp(min=1) * self.accelerator.num_processes
        for k, v in stats.items():
            if k != "sequences":
                self._stats.setdefault(k, []).append(float(v))
        return (loss, out) if return_outputs else loss

    def log(self, logs, *args, **kwargs):
        if "loss" in logs:
            for k, v in self._stats.items():
                logs[k] = float(np.mean(v)) if v else float("nan")
            self._stats = {}
        super().log(logs, *args, **kwargs)
