"""SFT, DPO and CAVPref trainers with an audio-visual input path.

- :class:`SFTTrainer`: ``transformers.Trainer`` on (clip, question, answer) batches;
  the thinker's own token-level loss over the response.
- :class:`CAVPrefTrainer`: TRL's ``DPOTrainer`` (pinned ``trl==1.16.0``; it has no
  ``concatenated_forward``, so :meth:`compute_loss` is overridden) with

  * one forward per batch over all sequences of its samples — y_w|V,A; y_l|V,A and,
    with the V/A terms, y_w|V',A where η ≠ 0 and y_w|V,A' where γ ≠ 0 — merged by
    :class:`avtrust.train.data.SequenceEncoder`, so the audio features and video
    patches of every sequence reach the model;
  * selected log-probs through TRL's fused LM head (added by ``DPOTrainer``), never the
    (B, L, V) logits;
  * reference log-probs computed once, before training, in one pass with the LoRA
    adapter disabled (or, without LoRA, the untrained policy itself), stored per sample
    as dataset columns and cached in the resume state under a content key (the rows,
    the clips they use, the base model's files, the roles, the precision:
    :mod:`avtrust.train.fingerprint`);
  * the loss of :func:`avtrust.train.losses.cavpref_loss` with per-sample calibrated
    β and η/γ from the pairs file.

  Plain DPO is the same trainer with a fixed β, without the V/A terms and without the
  robust aggregate (two sequences per sample).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import torch
from accelerate.utils import gather_object
from torch.utils.data import DataLoader
from tqdm import tqdm
from transformers import Trainer
from trl import DPOTrainer

from avtrust.train.data import SequenceEncoder, sequence_logps
from avtrust.train.losses import LossSettings, cavpref_loss
from avtrust.train.trl_version import check_trl

ROLES = ("chosen", "rejected", "video", "audio")
REFERENCE_CACHE = "reference_logps.json"


class SFTCollator:
    """Rows {media_path, prompt, response} → one merged batch with response labels."""

    def __init__(self, encoder: SequenceEncoder):
        self.encoder = encoder

    def encode(self, rows: list[dict]):
        """The encoder's result (merged batch and each row's place in it)."""
        return self.encoder(
            [r["media_path"] for r in rows],
            [r["prompt"] for r in rows],
            [r["response"] for r in rows],
        )

    def __call__(self, rows: list[dict]) -> dict:
        return self.encode(rows).batch


class PreferenceCollator:
    """Pair rows → {"model": merged batch, "index": (B, K) rows of each sample's K
    sequences in :data:`ROLES` order, "beta": (B, 3), "eta", "gamma", "ref" (B, K)}.

    A sample whose η is 0 (γ is 0) does not run y_w|V',A (y_w|V,A'): its L_V (L_A) has
    weight 0 in the loss, so its "video" ("audio") column points at the y_w|V,A row
    instead. The term is then s(0) = log 2 times 0, and the loss and its gradient are
    those of running the sequence.
    """

    def __init__(self, encoder: SequenceEncoder, av_terms: bool, skip_unweighted: bool = True):
        self.encoder = encoder
        self.roles = ROLES if av_terms else ROLES[:2]
        self.skip_unweighted = skip_unweighted

    def _runs(self, row: dict, weight: str) -> bool:
        return not self.skip_unweighted or row[weight] != 0

    def sequences(self, row: dict) -> list[tuple[str, str]]:
        """The (clip, response) pairs this sample runs, in :data:`ROLES` order, without
        the corrupted-clip sequences whose term has weight 0."""
        seqs = [(row["media_path"], row["chosen"]), (row["media_path"], row["rejected"])]
        if len(self.roles) == 4:
            if self._runs(row, "eta"):
                seqs.append((row["video_corrupted_path"], row["chosen"]))
            if self._runs(row, "gamma"):
                seqs.append((row["audio_corrupted_path"], row["chosen"]))
        return seqs

    def roles_run(self, row: dict) -> list[int]:
        """For each role, which of :meth:`sequences` holds it (a skipped corrupted-clip
        sequence: y_w|V,A's, index 0)."""
        if len(self.roles) == 2:
            return [0, 1]
        video = 2 if self._runs(row, "eta") else 0
        audio = (3 if video else 2) if self._runs(row, "gamma") else 0
        return [0, 1, video, audio]

    def __call__(self, rows: list[dict]) -> dict:
        paths, prompts, responses, starts = [], [], [], []
        for r in rows:
            starts.append(len(paths))
            for path, response in self.sequences(r):
                paths.append(path)
                prompts.append(r["prompt"])
                responses.append(response)
        enc = self.encoder(paths, prompts, responses)
        index = [
            [enc.rows[start + j] for j in self.roles_run(r)]
            for start, r in zip(starts, rows, strict=True)
        ]
        out = {
            "model": enc.batch,
            "index": torch.tensor(index, dtype=torch.long).view(len(rows), len(self.roles)),
            "beta": torch.tensor(
                [[r["beta_text"], r["beta_video"], r["beta_audio"]] for r in rows],
                dtype=torch.float32,
            ),
            "eta": torch.tensor([r["eta"] for r in rows], dtype=torch.float32),
            "gamma": torch.tensor([r["gamma"] for r in rows], dtype=torch.float32),
        }
        if all(f"ref_{role}" in r for r in rows for role in self.roles):
            out["ref"] = torch.tensor(
                [[r[f"ref_{role}"] for role in self.roles] for r in rows], dtype=torch.float32
            )
        return out


class SFTTrainer(Trainer):
    """The thinker's language-model loss on the response tokens of merged AV batches."""

    def _set_signature_columns_if_needed(self):
        self._signature_columns = ["media_path", "prompt", "response"]


def _unwrap_peft(model):
    model = getattr(model, "module", model)
    return model if hasattr(model, "disable_adapter") else None


class CAVPrefTrainer(DPOTrainer):
    """DPO and CAVPref on merged audio-visual batches (see the module docstring)."""

    def __init__(
        self,
        *args,
        loss_settings: LossSettings,
        fixed_beta: float | None,
        collator: PreferenceCollator,
        state_dir: str | os.PathLike | None = None,
        **kwargs,
    ):
        check_trl()
        self.loss_settings = loss_settings
        self.fixed_beta = fixed_beta
        self.collator = collator
        self.state_dir = Path(state_dir) if state_dir else None
        self.reference_passes = 0
        super().__init__(*args, data_collator=collator, **kwargs)

    # The rows are not tokenised up front: the collator builds the AV batches.
    def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
        return dataset

    def _set_signature_columns_if_needed(self):
        self._signature_columns = None

    def reference_key(self, dataset) -> str:
        """Content key of the reference log-probs: the rows with the clips they use, the
        base model's weights, the roles run and the precision they run in (computed on
        the main process, shared with the others)."""
        from accelerate.utils import broadcast_object_list

        from avtrust.train import fingerprint

        key = [None]
        if self.accelerator.is_main_process:
            peft_model = _unwrap_peft(self.model)
            base = (
                peft_model.get_base_model()
                if peft_model
                else getattr(self.model, "module", self.model)
            )
            folder = getattr(base, "name_or_path", "") or ""
            model = (
                fingerprint.model_fingerprint(folder)
                if folder and Path(folder).is_dir()
                else fingerprint.module_fingerprint(base)
            )
            key[0] = fingerprint.text_hash(
                {
                    "rows": fingerprint.rows_fingerprint(dataset.to_list()),
                    "model": model,
                    "roles": list(self.collator.roles),
                    "precision": [bool(self.args.bf16), bool(self.args.fp16)],
                }
            )
        if self.accelerator.num_processes > 1:
            broadcast_object_list(key, from_process=0)
        return key[0]

    def _cached_reference(self, ids: list[str], key: str) -> dict | None:
        if self.state_dir is None or not (self.state_dir / REFERENCE_CACHE).is_file():
            return None
        cached = json.loads((self.state_dir / REFERENCE_CACHE).read_text())
        if cached.get("key") != key:
            return None
        values = cached["logps"]
        return values if all(i in values for i in ids) else None

    def reference_logps(self, dataset, batch_size: int) -> torch.Tensor:
        """(N, K) reference log-probs of every row, in dataset order: one pass."""
        loader = self.accelerator.prepare(
            DataLoader(
                dataset,
                batch_size=batch_size,
                collate_fn=self.collator,
                shuffle=False,
                num_workers=self.args.dataloader_num_workers,
            )
        )
        if self.ref_model is None and self.is_deepspeed_enabled:
            from trl.models.utils import prepare_deepspeed

            if self._precompute_engine is None:
                self._precompute_engine = prepare_deepspeed(self.model, self.accelerator)
            model = self._precompute_engine
        else:
            model = self.ref_model or self.model
        peft_model = _unwrap_peft(self.model) if self.ref_model is None else None
        adapter_off = peft_model.disable_adapter() if peft_model else contextlib.nullcontext()
        rows = []
        was_training = model.training
        model.eval()
        with torch.no_grad(), adapter_off:
            for batch in tqdm(loader, desc="reference log-probs", unit="batch"):
                # autocast around the model only: the collator's feature extraction (numpy
                # at its end) must not run in bf16, which CPU autocast would give it
                with self.accelerator.autocast():
                    logps = sequence_logps(model, batch["model"])[batch["index"]]
                rows.append(self.accelerator.gather_for_metrics(logps.float()).cpu())
        model.train(was_training)
        self.reference_passes += 1
        return torch.cat(rows)

    def _precompute_ref_logps(self, dataset, name, batch_size):
        ids = list(dataset["id"])
        key = self.reference_key(dataset)
        cached = self._cached_reference(ids, key)
        if cached is None:
            values = self.reference_logps(dataset, batch_size).tolist()
            cached = dict(zip(ids, values, strict=True))
            if self.state_dir is not None and self.accelerator.is_main_process:
                from avtrust.io import write_json_atomic

                write_json_atomic(
                    self.state_dir / REFERENCE_CACHE,
                    {"key": key, "roles": list(self.collator.roles), "logps": cached},
                )
            self.accelerator.wait_for_everyone()
        for k, role in enumerate(self.collator.roles):
            column = f"ref_{role}"
            if column in dataset.column_names:
                dataset = dataset.remove_columns(column)
            dataset = dataset.add_column(column, [float(cached[i][k]) for i in ids])
        return dataset

    def _gather(self, t: torch.Tensor):
        parts = gather_object([t.detach().float().cpu().tolist()])
        sizes = [len(p) for p in parts]
        rank = self.accelerator.process_index
        start = sum(sizes[:rank])
        everything = torch.tensor([x for p in parts for x in p], dtype=t.dtype, device=t.device)
        return slice(start, start + sizes[rank]), everything

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if "ref" not in inputs:
            raise RuntimeError("reference log-probs missing: they are precomputed before training")
        logps = sequence_logps(model, inputs["model"])[inputs["index"]]
        ref = inputs["ref"].to(logps.dtype)
        roles = self.collator.roles
        policy = {r: logps[:, k] for k, r in enumerate(roles)}
        reference = {r: ref[:, k] for k, r in enumerate(roles)}
        if self.fixed_beta is None:
            beta = {
                "text": inputs["beta"][:, 0],
                "video": inputs["beta"][:, 1],
                "audio": inputs["beta"][:, 2],
            }
        else:
            beta = dict.fromkeys(("text", "video", "audio"), self.fixed_beta)
        world = self.accelerator.num_processes
        loss, metrics = cavpref_loss(
            policy,
            reference,
            beta,
            inputs["eta"],
            inputs["gamma"],
            self.loss_settings,
            gather=self._gather if world > 1 else None,
            world_size=world,
        )
        mode = "train" if self.model.training else "eval"
        values = torch.tensor(list(metrics.values()), device=logps.device)
        values = self.accelerator.reduce(values, reduction="mean") if world > 1 else values
        for key, value in zip(metrics, values.tolist(), strict=True):
            self._metrics[mode][key].append(value)
        return (loss, {"logps": logps}) if return_outputs else loss
