"""GRPO on TRL 1.16's ``GRPOTrainer`` with audio and video in both passes.

Stock ``GRPOTrainer`` knows text and images only: ``_tokenize_prompts`` tokenises the
prompt text, generation gets the image fields, and the log-prob pass
(``_get_per_token_logps_and_entropies``, called from ``_compute_loss`` and, when needed,
for the old policy) forwards ``input_ids``/``attention_mask`` plus image fields — audio
features and video patches of a Qwen2.5-Omni thinker would be dropped, so the policy
would be scored on a prompt whose media placeholders have no features (the thinker
raises) or, worse, on text alone. :class:`AVGRPOTrainer` overrides:

- ``_generate_and_score_completions``: records each row's media key (``media_path`` +
  ``prompt``) before TRL's pipeline runs, and returns it with the batch (a list, so
  TRL's shuffle/split keep it aligned with the rows);
- ``_tokenize_prompts``: the prompt ids come from the Omni input builder (chat
  template, placeholders expanded for the clip's audio tokens / video grid /
  audio-in-video interleaving); the decoded media features are cached per key;
- ``_generate_single_turn``: generation per stream kind (a batch shares one
  ``use_audio_in_video`` flag) with the clip features; media placeholder and bos/eos
  tokens are suppressed so that a completion never adds placeholders without features.
  With ``seeded_generation`` each row is sampled alone from a seed derived from (run
  seed, step, row position in the global generation batch), so a run gives the same
  completions on 1 or N processes (reproducible, slower: no batched generation); an
  evaluation pass (the prompts scored before and after training) uses the same seeds
  whenever it runs;
- ``_compute_loss``: makes the batch's media keys visible to the log-prob pass;
- ``_get_per_token_logps_and_entropies``: the full thinker forward with the features
  of every row (grouped by stream kind), log-softmax of the completion positions at
  the sampling temperature, token entropies.

The KL term is off (``beta = 0``: the reasoning reference is a different model, not a
frozen copy of the policy), so no reference model is built. trl is pinned to 1.16.0
because these are private methods.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from trl import GRPOConfig, GRPOTrainer
from trl.models import unwrap_model_for_generation
from trl.trainer.utils import pad

from avtrust.bench.samples import derive_seed
from avtrust.train.ansco import answer_token_mask
from avtrust.train.trl_version import check_trl

MEDIA_TOKENS = (
    "audio_token",
    "video_token",
    "image_token",
    "audio_bos_token",
    "audio_eos_token",
    "vision_bos_token",
    "vision_eos_token",
)
FEATURE_KEYS = (
    "input_features",
    "feature_attention_mask",
    "pixel_values_videos",
    "video_grid_thw",
    "video_second_per_grid",
)


def media_token_ids(tokenizer) -> list[int]:
    ids = []
    for name in MEDIA_TOKENS:
        token = getattr(tokenizer, name, None)
        if token is not None:
            tid = tokenizer.convert_tokens_to_ids(token)
            if tid is not None and tid != tokenizer.unk_token_id:
                ids.append(int(tid))
    return sorted(set(ids))


class MediaCache:
    """Prompt ids and media features per (media path, prompt), built once (LRU)."""

    def __init__(self, builder, max_entries: int = 256):
        self.builder = builder
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str], dict] = OrderedDict()
        self.builds = 0

    def get(self, key: tuple[str, str]) -> dict:
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        path, prompt = key
        batch = self.builder([path], [prompt])
        entry = {
            "kind": self.builder.streams(path).kind,  # the decode cache's probe where attached
            "prompt_ids": batch["input_ids"][0][batch["attention_mask"][0].bool()].tolist(),
            "use_audio_in_video": bool(batch["use_audio_in_video"]),
            "features": {k: batch[k] for k in FEATURE_KEYS if k in batch},
        }
        self.builds += 1
        self._entries[key] = entry
        if len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return entry

    def batch(self, keys: Sequence[tuple[str, str]], device) -> dict:
        """Model keyword arguments with the features of ``keys`` (one stream kind)."""
        entries = [self.get(k) for k in keys]
        kinds = {e["kind"] for e in entries}
        if len(kinds) != 1:
            raise ValueError(f"a media batch mixes stream kinds {sorted(kinds)}")
        out = {"use_audio_in_video": entries[0]["use_audio_in_video"]}
        for name in entries[0]["features"]:
            out[name] = torch.cat([e["features"][name] for e in entries]).to(device)
        return out

    def groups(self, keys: Sequence[tuple[str, str]]) -> dict[str, list[int]]:
        groups: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            groups.setdefault(self.get(key)["kind"], []).append(i)
        return groups


def media_key(row: dict) -> tuple[str, str]:
    return (str(row["media_path"]), str(row["prompt"]))


class AVGRPOTrainer(GRPOTrainer):
    """``GRPOTrainer`` for the Omni thinker with audio/video (see the module docstring).

    ``builder``: the Omni input builder of the policy (``OmniThinker.builder``); the
    dataset rows need ``prompt`` (text) and ``media_path``; other columns reach the
    reward functions.
    """

    def __init__(
        self,
        model,
        reward_funcs,
        args: GRPOConfig,
        *,
        builder,
        media_cache_size: int = 256,
        seeded_generation: bool = False,
        **kwargs,
    ):
        check_trl()
        self.media = MediaCache(builder, media_cache_size)
        self.seeded_generation = seeded_generation
        self._media_keys: list[tuple[str, str]] | None = None
        self._loss_pass = False
        config = args
        suppress = media_token_ids(builder.tokenizer)
        extra = dict(config.generation_kwargs or {})
        extra["suppress_tokens"] = sorted({*extra.get("suppress_tokens", []), *suppress})
        config.generation_kwargs = extra
        if config.beta != 0.0:
            raise ValueError("AVGRPOTrainer runs without the KL term: set beta = 0")
        if config.use_vllm:
            raise ValueError("AVGRPOTrainer generates with transformers (use_vllm = False)")
        super().__init__(
            model, reward_funcs, args=config, processing_class=builder.tokenizer, **kwargs
        )

    # -- generation ---------------------------------------------------------------------

    def _generate_and_score_completions(self, inputs):
        keys = [media_key(x) for x in inputs]
        self._media_keys = keys
        try:
            output = super()._generate_and_score_completions(inputs)
        finally:
            self._media_keys = None
        output["media_keys"] = keys
        return output

    def _tokenize_prompts(self, prompts: list):
        keys = self._require_keys(len(prompts))
        for prompt, key in zip(prompts, keys, strict=True):
            if prompt != key[1]:
                raise RuntimeError("prompt order differs from the media keys of the batch")
        return [self.media.get(k)["prompt_ids"] for k in keys], None, {}

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, **_):
        keys = self._require_keys(len(prompt_ids))
        device = self.accelerator.device
        completions: list[list[int] | None] = [None] * len(prompt_ids)
        eos = torch.tensor(self.eos_token_ids, device=device)
        with (
            unwrap_model_for_generation(
                self.model_wrapped,
                self.accelerator,
                gather_deepspeed3_params=self.args.ds3_gather_for_generation,
                generation_kwargs=self.generation_kwargs,
                gradient_checkpointing_kwargs=self.args.gradient_checkpointing_kwargs,
            ) as unwrapped,
            torch.no_grad(),
        ):
            if self.seeded_generation:
                # One row at a time, each from its own seed (run seed, step, position in
                # the global generation batch): the same completions whatever the number
                # of processes, at the cost of batched generation.
                batches = [[i] for i in range(len(prompt_ids))]
            else:
                batches = list(self.media.groups(keys).values())
            offset = self.accelerator.process_index * len(prompt_ids)
            # Scoring the training prompts before and after training (an evaluation pass)
            # draws the same seeds both times: what differs is the policy alone.
            step = self.state.global_step if self.model.training else "eval"
            for positions in batches:
                if self.seeded_generation:
                    row = derive_seed(self.args.seed, "generate", step, offset + positions[0])
                    torch.manual_seed(row % 2**63)
                ids = [torch.tensor(prompt_ids[i]) for i in positions]
                inputs = {
                    "input_ids": pad(ids, self._tokenizer.pad_token_id, padding_side="left"),
                    "attention_mask": pad(
                        [torch.ones_like(t) for t in ids], 0, padding_side="left"
                    ),
                }
                inputs = {k: v.to(device) for k, v in inputs.items()}
                inputs.update(self.media.batch([keys[i] for i in positions], device))
                out = unwrapped.generate(**inputs, generation_config=self.generation_config)
                new = out[:, inputs["input_ids"].size(1) :]
                for row, i in zip(new, positions, strict=True):
                    hits = torch.isin(row, eos).nonzero()
                    end = int(hits[0]) + 1 if len(hits) else row.numel()
                    completions[i] = row[:end].tolist()
        return completions, None

    # -- log-prob pass ------------------------------------------------------------------

    def _compute_loss(self, model, inputs):
        self._media_keys = list(inputs["media_keys"])
        self._loss_pass = True
        try:
            return super()._compute_loss(model, inputs)
        finally:
            self._media_keys = None
            self._loss_pass = False

    def _get_per_token_logps_and_entropies(
        self,
        model,
        input_ids,
        attention_mask,
        logits_to_keep,
        batch_size=None,
        compute_entropy=False,
        compute_aux_loss=False,
        **_image_fields,
    ):
        keys = self._require_keys(input_ids.size(0))
        batch_size = batch_size or input_ids.size(0)
        order, logps, entropies = [], [], []
        for positions in self.media.groups(keys).values():
            for start in range(0, len(positions), batch_size):
                chunk = positions[start : start + batch_size]
                index = torch.tensor(chunk, device=input_ids.device)
                media = self.media.batch([keys[i] for i in chunk], input_ids.device)
                with self.accelerator.autocast():
                    out = model(
                        input_ids=input_ids[index],
                        attention_mask=attention_mask[index],
                        use_cache=False,
                        **media,
                    )
                lp, ent = completion_logps(
                    out.logits, input_ids[index], logits_to_keep, self.temperature
                )
                order += chunk
                logps.append(lp)
                entropies.append(ent)
        back = torch.argsort(torch.tensor(order, device=input_ids.device))
        logps = torch.cat(logps)[back]
        ent = torch.cat(entropies)[back] if compute_entropy else None
        if compute_entropy and self._loss_pass:
            self._log_answer_entropy(input_ids[:, -logits_to_keep:], attention_mask, ent)
        return logps, ent, None

    def _log_answer_entropy(self, completion_ids, attention_mask, entropies) -> None:
        """Mean entropy over the answer tokens of the batch's completions (all processes)."""
        n = completion_ids.size(1)
        valid = attention_mask[:, -n:].bool()
        mask = torch.zeros_like(valid)
        for b in range(completion_ids.size(0)):
            ids = completion_ids[b][valid[b]].tolist()
            flags = answer_token_mask(ids, self.processing_class)
            mask[b, : len(flags)] = torch.tensor(flags, dtype=torch.bool)
        local = torch.stack([(entropies.detach() * mask).sum(), mask.sum().float()])
        total = self.accelerator.reduce(local, reduction="sum")
        mode = "train" if self.model.training else "eval"
        value = (total[0] / total[1]).item() if total[1] > 0 else float("nan")
        self._metrics[mode]["answer_entropy"].append(value)

    def _require_keys(self, n: int) -> list[tuple[str, str]]:
        if self._media_keys is None or len(self._media_keys) != n:
            raise RuntimeError(
                "AVGRPOTrainer: no media keys for this batch (rows need media_path and prompt)"
            )
        return self._media_keys


def completion_logps(logits, input_ids, logits_to_keep: int, temperature: float = 1.0):
    """Per-token log-probs and entropies of the last ``logits_to_keep`` tokens."""
    scores = logits[:, -logits_to_keep - 1 : -1].float() / temperature
    logp = torch.log_softmax(scores, dim=-1)
    target = input_ids[:, -logits_to_keep:]
    picked = torch.gather(logp, 2, target.unsqueeze(-1)).squeeze(-1)
    entropy = -(logp.exp() * logp).sum(-1)
    return picked, entropy
