"""Training rows and their model inputs.

Rows
    - SFT: the training-split samples of the benchmark tables (``results/score/split.parquet``
      marks them, see :mod:`avtrust.scoring.split`) as (clean clip, question + options,
      ground-truth answer);
    - DPO / CAVPref: the rows of ``results/score/cavpref/pairs.parquet``
      (:mod:`avtrust.scoring.pairs`): clip, question, ``chosen`` y_w, ``rejected`` y_l,
      V' / A' paths, η, γ and the three calibrated β.

Inputs
    :class:`SequenceEncoder` turns a list of (clip, prompt, response) into **one**
    padded batch for one forward pass, even when the clips differ in their streams
    (a CAVPref sample of MAT pairs a silent clip with a restored A+V one). The Omni
    thinker takes one ``use_audio_in_video`` flag per batch, which only steers its 3-D
    rotary position ids; so each stream kind is built by the model's input builder
    (:meth:`avtrust.models.omni.OmniThinker.inputs`'s builder) on its own, its position
    ids are computed with the model's own ``get_rope_index`` and the right flag, and the
    kinds are then merged: token rows padded to one length, audio features, video
    patches and grids concatenated in row order (the order in which the model scatters
    them into the placeholder tokens). Labels score only the response.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pyarrow.parquet as pq

from avtrust.errors import ConfigError
from avtrust.evaluate.prompts import prompt_for
from avtrust.models.decode_cache import DecodeCache, attach
from avtrust.models.media_cache import cache_decoding as cache_decoding  # training's import
from avtrust.models.omni_inputs import group_by_streams

PathLike = str | os.PathLike
PAIR_COLUMNS = (
    "id",
    "task",
    "media_path",
    "question",
    "options",
    "chosen",
    "rejected",
    "video_corrupted_path",
    "audio_corrupted_path",
    "eta",
    "gamma",
    "beta_text",
    "beta_video",
    "beta_audio",
)


def job_builder(policy, spec: dict):
    """The policy's input builder as a training job uses it: each clip decoded once per
    ``spec["media_cache"]`` most recent clips, and read from the job's decode-once cache
    (``spec["decoded"]``, rule decode_training_clips) where that holds it."""
    return with_decode_cache(cache_decoding(policy.builder, spec["media_cache"]), spec)


def with_decode_cache(builder, spec: dict):
    """``builder`` reading the job's decode-once cache (``spec["decoded"]``) where set."""
    if spec.get("decoded"):
        attach(builder, DecodeCache(spec["decoded"]))
    return builder


def question_prompt(
    question: str, options: Sequence[str] | None, template: Mapping[str, str] | None = None
) -> str:
    """The text the policy is trained on: the evaluation's log-likelihood prompt of the
    benchmark (``template``: its parts, None the default wording), so that SFT, DPO and
    CAVPref are evaluated on the prompt they were trained on — their responses are an
    option's text, as that mode scores."""
    return prompt_for(question, options, "loglik", template)


def sft_rows(
    split_path: PathLike,
    tables: dict[str, PathLike],
    tasks: Sequence[str],
    template: Mapping[str, str] | None = None,
) -> list[dict]:
    """Training-split samples of the AVTrustBench tables of ``tasks`` (those with a
    table in ``tables``: {task: path}), as SFT rows worded by ``template``."""
    split = pq.read_table(split_path).to_pylist()
    train = {(r["bench"], r["id"]) for r in split if r["split"] == "train"}
    rows = []
    for task in [t for t in tasks if t in tables]:
        for s in pq.read_table(tables[task]).to_pylist():
            if (s["bench"], s["id"]) in train:
                rows.append(
                    {
                        "id": s["id"],
                        "task": s["task"],
                        "media_path": s["media_path"],
                        "prompt": question_prompt(s["question"], s["options"], template),
                        "response": s["answer"],
                    }
                )
    return rows


def pair_rows(
    pairs_path: PathLike,
    tasks: Sequence[str] | None = None,
    template: Mapping[str, str] | None = None,
) -> list[dict]:
    """Rows of the CAVPref pairs file (restricted to ``tasks`` when given), worded by
    ``template``."""
    table = pq.read_table(pairs_path)
    missing = [c for c in PAIR_COLUMNS if c not in table.column_names]
    if missing:
        raise ConfigError(f"{str(pairs_path)!r}: pairs file lacks column(s) {missing}")
    rows = []
    for r in table.select(list(PAIR_COLUMNS)).to_pylist():
        if tasks and r["task"] not in tasks:
            continue
        r["prompt"] = question_prompt(r.pop("question"), r.pop("options"), template)
        rows.append(r)
    return rows


@dataclass
class Encoded:
    """One merged batch: ``batch`` goes to the model as is; ``rows[i]`` is the batch row
    of the i-th requested sequence."""

    batch: dict
    rows: list[int]


def _pad(t, length: int, value, left: bool):
    import torch

    extra = length - t.shape[-1]
    if extra <= 0:
        return t
    shape = (*t.shape[:-1], extra)
    filler = torch.full(shape, value, dtype=t.dtype, device=t.device)
    return torch.cat([filler, t] if left else [t, filler], dim=-1)


class SequenceEncoder:
    """(clip, prompt, response) triples → one batch with position ids (see module doc).

    ``builder`` is the thinker's input builder (``OmniThinker.builder``), ``rope_index``
    the thinker's ``get_rope_index`` (the base model's, taken before any adapter wraps it).
    """

    def __init__(self, builder, rope_index, *, use_audio_in_video: bool = True):
        self.builder = builder
        self.rope_index = rope_index
        self.use_audio_in_video = use_audio_in_video
        tok = builder.tokenizer
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        self.left = tok.padding_side == "left"

    def group(self, paths: Sequence[PathLike]) -> dict[str, list[int]]:
        # The builder's probe: memoised per clip once cache_decoding() wrapped it.
        return group_by_streams(paths, probe=self.builder.streams)

    def part(self, paths, prompts, responses) -> dict:
        """One stream kind: the builder's batch plus its 3-D position ids."""
        batch = self.builder(
            list(paths), list(prompts), list(responses), use_audio_in_video=self.use_audio_in_video
        )
        fam = batch.get("feature_attention_mask")
        position_ids, _ = self.rope_index(
            batch["input_ids"],
            None,
            batch.get("video_grid_thw"),
            batch["attention_mask"],
            bool(batch["use_audio_in_video"]),
            fam.sum(-1) if fam is not None else None,
            batch.get("video_second_per_grid"),
        )
        batch["position_ids"] = position_ids
        return batch

    def __call__(
        self,
        paths: Sequence[PathLike],
        prompts: Sequence[str],
        responses: Sequence[str],
    ) -> Encoded:
        import torch

        if not (len(paths) == len(prompts) == len(responses)):
            raise ValueError(
                f"{len(paths)} clips, {len(prompts)} prompts, {len(responses)} responses"
            )
        parts, order = [], []
        for indices in self.group(paths).values():
            parts.append(
                self.part(
                    [paths[i] for i in indices],
                    [prompts[i] for i in indices],
                    [responses[i] for i in indices],
                )
            )
            order += indices
        rows = [0] * len(order)
        for row, i in enumerate(order):
            rows[i] = row
        length = max(p["input_ids"].shape[1] for p in parts)
        left = self.left
        batch = {
            "input_ids": torch.cat(
                [_pad(p["input_ids"], length, self.pad_id, left) for p in parts]
            ),
            "attention_mask": torch.cat(
                [_pad(p["attention_mask"], length, 0, left) for p in parts]
            ),
            "labels": torch.cat([_pad(p["labels"], length, -100, left) for p in parts]),
            "position_ids": torch.cat([_pad(p["position_ids"], length, 1, left) for p in parts], 1),
        }
        audio = [p for p in parts if "input_features" in p]
        if audio:
            frames = max(p["input_features"].shape[-1] for p in audio)
            batch["input_features"] = torch.cat(
                [_pad(p["input_features"], frames, 0.0, False) for p in audio]
            )
            batch["feature_attention_mask"] = torch.cat(
                [_pad(p["feature_attention_mask"], frames, 0, False) for p in audio]
            )
        video = [p for p in parts if "pixel_values_videos" in p]
        if video:
            for key in ("pixel_values_videos", "video_grid_thw", "video_second_per_grid"):
                batch[key] = torch.cat([p[key] for p in video])
        # Only the rotary position ids depend on the flag, and they are given.
        batch["use_audio_in_video"] = any(p["use_audio_in_video"] for p in parts)
        return Encoded(batch, rows)


def _base(model):
    """The transformers model under DDP / DeepSpeed and PEFT wrappers."""
    base = getattr(model, "module", model)
    return base.get_base_model() if hasattr(base, "get_base_model") else base


def has_fused_head(model) -> bool:
    """Whether TRL's ``add_fused_lm_head`` patched ``model`` (or the model under a PEFT
    wrapper): its forward then returns per-token log-probabilities on request.

    The patch sets an instance ``forward`` that takes a ``fused_lm_head`` keyword; TRL
    wraps it with ``functools.wraps``, so its name and signature are the model's own and
    only its code object tells it apart.
    """
    forward = vars(_base(model)).get("forward")
    code = getattr(getattr(forward, "__func__", forward), "__code__", None)
    if code is None:
        return False
    return "fused_lm_head" in code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]


def add_fused_head(model):
    """Give ``model`` TRL's fused LM head (no-op when it has one): selected log-probs in
    tiles of tokens × vocabulary, never the (B, L, V) logits. The trainers get it from
    ``DPOTrainer``; this is for code that runs a model outside one."""
    from trl.trainer.utils import add_fused_lm_head

    if not has_fused_head(model):
        add_fused_lm_head(_base(model))
    return model


def full_logits_logps(model, batch: dict):
    """:func:`sequence_logps` through the full logits: a (B, L, V) float32
    log-softmax. For models without a fused head, and as the bench's baseline."""
    import torch

    labels = batch["labels"]
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    logits = model(**inputs, use_cache=False).logits
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    target = labels[:, 1:]
    mask = target != -100
    picked = torch.gather(logp, 2, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked * mask).sum(-1)


def sequence_logps(model, batch: dict):
    """Summed log-probability of each row's response tokens (``labels`` != -100).

    Uses TRL's fused LM head when the model has one (no full logits), else the logits.
    """
    if not has_fused_head(model):
        return full_logits_logps(model, batch)
    labels = batch["labels"]
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    out = model(**inputs, labels=labels, fused_lm_head=True, use_cache=False)
    return out.log_probs.sum(-1)
