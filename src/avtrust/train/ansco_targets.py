"""Ans-CO targets: K completions sampled per training sample from the start policy
(the Step-RR checkpoint), the answer uncertainty u of each sample and its target
response (see :mod:`avtrust.train.ansco` for both definitions).

Run once per stage in the job, before the training processes start
(:func:`avtrust.train.rlcomm.train_stage`); the result is cached in the stage's resume
state as :data:`TARGETS`. Heavy imports (torch, the policy) stay inside the functions:
:mod:`avtrust.train.rlcomm` imports this module when the job script starts.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from avtrust.io import write_json_atomic
from avtrust.train.rewards import is_correct, parse, well_formed

TARGETS = "ansco_targets.json"


def prepare_ansco_targets(spec: dict, log=None) -> list[dict]:
    """Targets and answer uncertainties of every training sample (module docstring of
    :mod:`avtrust.train.ansco`), from K completions sampled from the start policy."""
    import pyarrow.parquet as pq
    import torch

    from avtrust.bench.samples import derive_seed
    from avtrust.scoring.reasoning import v_think
    from avtrust.train.ansco import answer_uncertainty
    from avtrust.train.grpo import MediaCache, media_token_ids
    from avtrust.train.rlcomm import load_start_policy

    cache = Path(spec["state_dir"]) / TARGETS
    if cache.is_file():
        return json.loads(cache.read_text())
    s = spec["settings"]
    policy = load_start_policy(spec)
    media = MediaCache(policy.builder, 8)
    tok = policy.tokenizer
    table = pq.read_table(spec["data"]).to_pylist()
    template = "<a-think>{a}</a-think> <v-think>{v}</v-think> <answer>{ans}</answer>"
    out = []
    from tqdm import tqdm

    for row in tqdm(table, desc="Ans-CO targets", file=sys.stderr):
        key = (row["media_path"], row["prompt"])
        ids = torch.tensor([media.get(key)["prompt_ids"]])
        torch.manual_seed(derive_seed(spec["seed"], "ansco", row["id"]) % 2**63)
        with torch.no_grad():
            gen = policy.model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                **media.batch([key], "cpu"),
                do_sample=True,
                temperature=s["temperature"],
                max_new_tokens=s["max_completion_length"],
                num_return_sequences=s["samples"],
                suppress_tokens=media_token_ids(tok),
            )
        texts = tok.batch_decode(gen[:, ids.shape[1] :], skip_special_tokens=True)
        answers = [parse(t).answer for t in texts]
        u = answer_uncertainty(answers, row["options"])
        good = [
            t.strip()
            for t, a in zip(texts, answers, strict=True)
            if well_formed(t) and is_correct(a, row["answer"], row["options"])
        ]
        if good:
            response, origin = good[0], "sampled"
        else:
            vt = v_think(row["visual_labels"], row["has_video"])
            response = template.format(a=row["reference_a_think"], v=vt, ans=row["answer"])
            origin = "reference"
        out.append(
            {
                "media_path": row["media_path"],
                "prompt": row["prompt"],
                "response": response,
                "uncertainty": u,
                "origin": origin,
            }
        )
    cache.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(cache, out)
    if log:
        n = sum(r["origin"] == "sampled" for r in out)
        log.info("Ans-CO targets: %d sampled, %d reference", n, len(out) - n)
    return out
