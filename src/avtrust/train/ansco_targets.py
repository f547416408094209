"""Ans-CO targets: K completions sampled per training sample from the start policy
(the Step-RR checkpoint), the answer uncertainty u of each sample and its target
response (see :mod:`avtrust.train.ansco` for both definitions).

Run once per stage in the job, before the training processes start
(:func:`avtrust.train.job.train_job`); the result is cached in the stage's resume
state as :data:`TARGETS`. Heavy imports (torch, the policy) stay inside the functions:
the job imports this module before the launch.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from avtrust.io import write_json_atomic
from avtrust.train.rewards import is_correct, parse, well_formed

TARGETS = "ansco_targets.json"


def reference_response(row: dict) -> str:
    """The warm-up formatted response of a training sample (reference ``<a-think>``,
    ``<v-think>`` from the labels, ground-truth answer): the same text as the warm-up
    SFT examples (:func:`avtrust.scoring.reasoning.warmup_set`)."""
    from avtrust import data_files
    from avtrust.scoring.reasoning import v_think

    template = data_files.load("scoring")["rlcomm"]["response"]
    return template.format(
        a_think=row["reference_a_think"],
        v_think=v_think(row["visual_labels"], row["has_video"]),
        answer=row["answer"],
    )


def choose_target(texts: Sequence[str], row: dict) -> dict:
    """Target and answer uncertainty of one sample from its K sampled completions:
    u over the options the answers name; the first well-formed completion (in sampling
    order) with the correct answer, else the reference response."""
    from avtrust.train.ansco import answer_uncertainty

    answers = [parse(t).answer for t in texts]
    options = row.get("options")
    u = answer_uncertainty(answers, options)
    for text, answer in zip(texts, answers, strict=True):
        if well_formed(text) and is_correct(answer, row["answer"], options):
            return {"response": text.strip(), "uncertainty": u, "origin": "sampled"}
    return {"response": reference_response(row), "uncertainty": u, "origin": "reference"}


def sample_completions(policy, rows: list[dict], settings, seed: int, device) -> list[list[str]]:
    """K = ``settings.samples`` completions of every row, sampled on ``device``.

    Rows are generated in batches of ``settings.batch_size`` samples of one stream
    kind (the media of a batch share the ``use_audio_in_video`` flag), each sample's
    prompt repeated K times in the batch (left-padded; every row gets its own copy of
    the clip's features, so nothing depends on how ``generate`` expands inputs). The
    generator is seeded per batch from (run seed, the batch's sample ids).
    """
    import torch

    from avtrust.bench.samples import derive_seed
    from avtrust.train.grpo import MediaCache, media_key, media_token_ids

    k, size = settings.samples, max(1, settings.batch_size)
    tok = policy.tokenizer
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    suppress = media_token_ids(tok)
    media = MediaCache(policy.builder, max(8, size))
    keys = [media_key(r) for r in rows]
    out: list[list[str]] = [[] for _ in rows]
    chunks = [
        positions[i : i + size]
        for positions in media.groups(keys).values()
        for i in range(0, len(positions), size)
    ]
    for chunk in tqdm(chunks, desc="Ans-CO targets", unit="batch", file=sys.stderr):
        batch_keys = [keys[i] for i in chunk for _ in range(k)]
        prompts = [media.get(key)["prompt_ids"] for key in batch_keys]
        width = max(len(p) for p in prompts)
        ids = torch.tensor([[pad_id] * (width - len(p)) + p for p in prompts], device=device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)
        torch.manual_seed(derive_seed(seed, "ansco", *(rows[i]["id"] for i in chunk)) % 2**63)
        with torch.no_grad():
            gen = policy.model.generate(
                input_ids=ids,
                attention_mask=mask,
                **media.batch(batch_keys, device),
                do_sample=True,
                temperature=settings.temperature,
                max_new_tokens=settings.max_completion_length,
                suppress_tokens=suppress,
            )
        texts = tok.batch_decode(gen[:, width:], skip_special_tokens=True)
        for j, i in enumerate(chunk):
            out[i] = texts[j * k : (j + 1) * k]
    return out


def prepare_ansco_targets(spec: dict, log=None) -> list[dict]:
    """Targets and answer uncertainties of every training sample (module docstring of
    :mod:`avtrust.train.ansco`), from K completions sampled from the start policy on the
    stage's device (``spec["device"]``); cached in the resume state."""
    import pyarrow.parquet as pq

    from avtrust.models.registry import resolve_device
    from avtrust.train.config import settings_from_dict
    from avtrust.train.data import with_decode_cache
    from avtrust.train.job import load_start_policy

    cache = Path(spec["state_dir"]) / TARGETS
    if cache.is_file():
        return json.loads(cache.read_text())
    table = pq.read_table(spec["inputs"]["data"]).to_pylist()
    device = resolve_device(spec["device"])
    policy = load_start_policy(spec)
    with_decode_cache(policy.builder, spec)  # its own media memo: MediaCache below
    policy.model.to(device).eval()
    settings = settings_from_dict(spec["settings"])
    texts = sample_completions(policy, table, settings, settings.seed, device)
    out = [
        {"media_path": row["media_path"], "prompt": row["prompt"], **choose_target(t, row)}
        for row, t in zip(table, texts, strict=True)
    ]
    cache.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(cache, out)
    if log:
        n = sum(r["origin"] == "sampled" for r in out)
        log.info("Ans-CO targets: %d sampled, %d reference (on %s)", n, len(out) - n, device)
    return out
