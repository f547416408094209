"""Inference over one shard of a benchmark task: batched, resumable, both scoring modes.

A shard's samples are ordered by stream kind (audio+video, audio only, video only) so
every batch holds clips the model takes in one call, then cut into batches of
``batch_size``. Two scoring modes:

- ``generate``: greedy text, parsed by :mod:`avtrust.evaluate.parse`;
- ``loglik``: the summed (or per-token mean) log-likelihood of every option as the
  response, all options of all samples of a batch in **one** forward pass; the argmax
  is the answer. Open-ended tasks (m2) have no options and are generated only.

**Resuming.** Each finished batch is written atomically to
``<state_dir>/batch-<n>.parquet`` next to ``fingerprint.json`` (a hash of the model,
the sample ids in order and every setting that changes a prediction). A restarted shard
reuses the batches whose fingerprint matches and computes only the rest; a changed
setting discards the state. The state folder is *not* a declared output: the shard's
Parquet appears only once all batches are done, so a killed job never leaves a partial
result that a later stage could take for a complete one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from avtrust.evaluate.parse import OK, AnswerParser, Parsed, is_correct
from avtrust.evaluate.prompt_template import check_template
from avtrust.evaluate.prompts import (  # noqa: F401 (the prompt's constants, re-exported)
    CHOICE_PROMPT,
    LOGLIK_PROMPT,
    YES_NO_PROMPT,
    prompt_for,
    task_kind,
)
from avtrust.io import write_json_atomic, write_parquet_atomic
from avtrust.models.decode_cache import DecodeCache, attach, media_tokens
from avtrust.models.media_cache import cache_decoding, warm

PathLike = str | os.PathLike
MODES = ("generate", "loglik")
OPEN = "open"  # status of open-ended replies (m2): judged later, never parsed

PREDICTION_SCHEMA = pa.schema(
    [
        ("model", pa.string()),
        ("bench", pa.string()),
        ("task", pa.string()),
        ("id", pa.string()),
        ("category", pa.string()),
        ("mode", pa.string()),  # generate | loglik
        ("kind", pa.string()),  # choice | yes_no | open
        ("prompt", pa.string()),
        ("raw", pa.string()),  # generated text; for loglik the chosen option
        ("parsed", pa.string()),  # option text, yes/no, abstention key, or null
        ("parsed_index", pa.int32()),
        ("status", pa.string()),  # parse status (avtrust.evaluate.parse)
        ("answer", pa.string()),
        ("correct", pa.bool_()),  # null for open-ended answers (judged later)
        ("option_logprobs", pa.list_(pa.float64())),
        ("option_tokens", pa.list_(pa.int32())),
        ("seconds", pa.float64()),  # this sample's share of its batch's wall time
        ("batch", pa.int32()),
        ("shard", pa.int32()),
    ]
)


def stream_kind(row: dict) -> str:
    return ("a" if row.get("has_audio") else "") + ("v" if row.get("has_video") else "")


def batches(
    rows: Sequence[dict], batch_size: int, length: Callable[[dict], float] | None = None
) -> list[list[int]]:
    """Row positions grouped by stream kind (first-seen order), cut into batches; with a
    ``length`` (row → its sequence length, estimated), each group is ordered by length
    first (stable), so a batch holds sequences of similar length and pads little."""
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(stream_kind(row), []).append(i)
    out = []
    for positions in groups.values():
        if length is not None:
            positions = sorted(positions, key=lambda i: length(rows[i]))
        out += [positions[s : s + batch_size] for s in range(0, len(positions), batch_size)]
    return out


@dataclass
class Settings:
    """Everything besides the model and the samples that changes a prediction."""

    modes: tuple[str, ...] = ("generate",)
    batch_size: int = 4
    max_new_tokens: int = 16
    max_new_tokens_open: int = 64
    loglik_norm: str = "sum"  # sum | mean (per response token)
    wording: dict | None = None
    # The benchmark's prompt template, the parts its task reads (avtrust.evaluate.prompts);
    # None: the default wording.
    prompt: dict | None = None

    def __post_init__(self):
        unknown = [m for m in self.modes if m not in MODES]
        if unknown or not self.modes:
            raise ValueError(f"scoring modes {list(self.modes)}: expected some of {MODES}")
        if self.loglik_norm not in ("sum", "mean"):
            raise ValueError(f"loglik_norm {self.loglik_norm!r}: expected sum or mean")
        check_template(self.prompt, "evaluation prompt")

    def as_dict(self) -> dict:
        return {
            "modes": list(self.modes),
            "batch_size": self.batch_size,
            "max_new_tokens": self.max_new_tokens,
            "max_new_tokens_open": self.max_new_tokens_open,
            "loglik_norm": self.loglik_norm,
            "wording": dict(sorted((self.wording or {}).items())),
            # resolved, so that no template and the default one are the same run
            "prompt": check_template(self.prompt, "evaluation prompt"),
        }


def modes_setting(mode: str) -> tuple[str, ...]:
    """``evaluation.mode`` (generate | loglik | both) → the modes to run."""
    return {"generate": ("generate",), "loglik": ("loglik",), "both": MODES}[mode]


class Predictor:
    """What inference needs from a model: batched generation and option log-likelihoods.

    Wraps an :class:`avtrust.models.omni.OmniThinker` (zero-shot or a trained policy) or
    an :class:`avtrust.models.http.OpenAIEndpoint` (generation only, one request per
    sample). Any object with these two methods can stand in (tests, other adapters).
    """

    def __init__(self, model, *, threads: int = 1, cache: int = 64, decoded=None):
        self.model = model
        self.supports_loglik = hasattr(model, "sequence_logprobs")
        self.builder = builder = getattr(model, "builder", None)
        self.decoded = None
        if builder is not None:
            if decoded is not None:
                # ``decoded``: a decode cache (or its folder): clips it holds are read
                # from its shards, not decoded (avtrust.models.decode_cache)
                self.decoded = decoded if isinstance(decoded, DecodeCache) else DecodeCache(decoded)
                attach(builder, self.decoded)
            # Each clip is probed, decoded and featurised once (shared by both scoring
            # modes of a batch), the clips of a batch decoded by ``threads`` ffmpeg
            # processes at a time; the memo holds the running batch and the one
            # prefetched (see run_shard). (OmniThinker.generate pads prompts on the left.)
            cache_decoding(builder, 2 * max(cache, 1))
            builder.workers = max(int(threads), 1)

    def length(self, path: str, prompt: str) -> float:
        """A sequence's length in tokens, estimated: the prompt's characters / 4, plus
        the clip's video and audio tokens where the decode cache knows its arrays."""
        n = len(prompt) / 4
        entry = self.decoded.entry(path, self.builder.vision) if self.decoded else None
        if entry is not None:
            n += media_tokens(entry)
        return n

    def prefetch(self, paths: Sequence[str]) -> None:
        """Decode (or read from the decode cache) and featurise ``paths`` into the
        builder's memo, so that the batch's own call finds them ready."""
        if self.builder is not None:
            warm(self.builder, paths)

    def generate(self, paths: list[str], prompts: list[str], max_new_tokens: int) -> list[str]:
        if self.supports_loglik:  # OmniThinker: one batched call (the batch is homogeneous)
            return self.model.generate(
                paths, prompts, max_new_tokens=max_new_tokens, batch_size=max(len(paths), 1)
            )
        return self.model.generate(paths, prompts, max_new_tokens=max_new_tokens)

    def option_logprobs(
        self, paths: list[str], prompts: list[str], options: list[list[str]]
    ) -> tuple[list[list[float]], list[list[int]]]:
        """Summed log-prob and token count of every option of every sample, one forward
        (the builder decodes each clip once and repeats its tensors per option)."""
        import torch

        flat_paths, flat_prompts, flat_responses = [], [], []
        for path, prompt, opts in zip(paths, prompts, options, strict=True):
            for option in opts:
                flat_paths.append(path)
                flat_prompts.append(prompt)
                flat_responses.append(option)
        batch = self.model.inputs(flat_paths, flat_prompts, flat_responses)
        with torch.inference_mode():
            logp = self.model.sequence_logprobs(batch).float().cpu().tolist()
        # Response tokens = labelled positions (the shifted targets of sequence_logprobs).
        counts = (batch["labels"][:, 1:] != -100).sum(-1).cpu().tolist()
        out_lp, out_n, k = [], [], 0
        for opts in options:
            out_lp.append(logp[k : k + len(opts)])
            out_n.append([int(c) for c in counts[k : k + len(opts)]])
            k += len(opts)
        return out_lp, out_n


def fingerprint(
    model_id: str, rows: Sequence[dict], settings: Settings, plan: list[list[int]] | None = None
) -> str:
    """The state's identity; ``plan`` (the batches' row positions) too, because a batch's
    file holds the rows of its plan position, and the order by length can change (a
    decode cache added or dropped)."""
    payload = {
        "plan": plan,
        "model": model_id,
        "ids": [r["id"] for r in rows],
        "questions": [r["question"] for r in rows],
        "options": [list(r["options"] or []) for r in rows],
        "settings": settings.as_dict(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _prepare_state(state_dir: Path, digest: str, log=None) -> None:
    marker = state_dir / "fingerprint.json"
    if marker.is_file():
        if json.loads(marker.read_text()).get("fingerprint") == digest:
            return
        if log:
            log.info("settings or samples changed: discarding the state in %s", state_dir)
        shutil.rmtree(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(marker, {"fingerprint": digest})


def _choose(lps: list[float], counts: list[int], norm: str) -> int:
    scores = [lp / max(n, 1) for lp, n in zip(lps, counts, strict=True)] if norm == "mean" else lps
    return max(range(len(scores)), key=lambda i: (scores[i], -i))


def predict_batch(
    predictor: Predictor,
    rows: Sequence[dict],
    settings: Settings,
    parser: AnswerParser,
    root: Path,
    meta: dict,
) -> list[dict]:
    """Prediction rows (both modes where asked) for one homogeneous batch."""
    paths = [str(root / r["media_path"]) for r in rows]
    out: list[dict] = []

    def record(row, mode, prompt, raw, parsed, lps=None, counts=None, seconds=0.0):
        kind = task_kind(row["options"])
        correct = None
        if kind != "open":
            correct = is_correct(parsed, row["options"], row["answer"], row["answer_index"])
        out.append(
            {
                **meta,
                "bench": row["bench"],
                "task": row["task"],
                "id": row["id"],
                "category": row.get("category"),
                "mode": mode,
                "kind": kind,
                "prompt": prompt,
                "raw": raw,
                "parsed": parsed.answer,
                "parsed_index": parsed.index,
                "status": parsed.status,
                "answer": row["answer"],
                "correct": correct,
                "option_logprobs": lps,
                "option_tokens": counts,
                "seconds": seconds,
            }
        )

    if "generate" in settings.modes:
        for kind_open in (False, True):
            idx = [
                i for i, r in enumerate(rows) if (task_kind(r["options"]) == "open") == kind_open
            ]
            if not idx:
                continue
            prompts = [
                prompt_for(rows[i]["question"], rows[i]["options"], template=settings.prompt)
                for i in idx
            ]
            start = time.perf_counter()
            texts = predictor.generate(
                [paths[i] for i in idx],
                prompts,
                settings.max_new_tokens_open if kind_open else settings.max_new_tokens,
            )
            share = (time.perf_counter() - start) / len(idx)
            for i, prompt, text in zip(idx, prompts, texts, strict=True):
                if kind_open:  # descriptions are judged (avtrust.evaluate.judge), not parsed
                    parsed = Parsed(None, None, OPEN)
                else:
                    parsed = parser.parse(text, rows[i]["options"])
                record(rows[i], "generate", prompt, text, parsed, seconds=share)
    if "loglik" in settings.modes and predictor.supports_loglik:
        idx = [i for i, r in enumerate(rows) if task_kind(r["options"]) != "open"]
        if idx:
            prompts = [
                prompt_for(rows[i]["question"], rows[i]["options"], "loglik", settings.prompt)
                for i in idx
            ]
            options = [list(rows[i]["options"]) for i in idx]
            start = time.perf_counter()
            lps, counts = predictor.option_logprobs([paths[i] for i in idx], prompts, options)
            share = (time.perf_counter() - start) / len(idx)
            for j, i in enumerate(idx):
                best = _choose(lps[j], counts[j], settings.loglik_norm)
                parsed = Parsed(best, options[j][best], OK)
                record(rows[i], "loglik", prompts[j], options[j][best], parsed, lps[j],
                       counts[j], share)  # fmt: skip
    return out


class Prefetcher:
    """Loads the clips of the coming batches on a worker thread while the model runs:
    :meth:`next` waits for the current batch's clips (loaded while the previous batch
    ran) and starts loading the next one's. A predictor without ``prefetch`` loads
    nothing ahead. A failed load is left to the batch itself, which then raises it."""

    def __init__(self, predictor, batches: list[list[str]]):
        from concurrent.futures import ThreadPoolExecutor

        self.load = getattr(predictor, "prefetch", None)
        self.batches = batches
        self.position = 0
        self.pool = ThreadPoolExecutor(1) if self.load and batches else None
        self.pending = self._submit(0)

    def _submit(self, b):
        if self.pool is None or b >= len(self.batches):
            return None
        return self.pool.submit(self.load, self.batches[b])

    def next(self) -> None:
        if self.pending is not None:
            self.pending.exception()  # wait; the batch's own call reports a failure
        self.position += 1
        self.pending = self._submit(self.position)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


def run_shard(
    predictor: Predictor,
    rows: Sequence[dict],
    settings: Settings,
    *,
    model_id: str,
    state_dir: PathLike,
    root: PathLike = ".",
    shard: int = 0,
    log=None,
    progress: Callable | None = None,
) -> pa.Table:
    """Predictions for ``rows``; finished batches are kept in ``state_dir`` (see module)."""
    from tqdm import tqdm

    state_dir = Path(state_dir)
    parser = AnswerParser(settings.wording)
    if "loglik" in settings.modes and not predictor.supports_loglik and log:
        log.warning("model %s cannot score log-likelihoods: generation only", model_id)
    estimate = getattr(predictor, "length", None)
    length = None
    if estimate is not None:

        def length(row):
            return estimate(str(Path(root) / row["media_path"]), prompt_for(row["question"],
                            row["options"]))  # fmt: skip

    plan = batches(rows, settings.batch_size, length)
    _prepare_state(state_dir, fingerprint(model_id, rows, settings, plan), log)
    parts = [state_dir / f"batch-{b:05d}.parquet" for b in range(len(plan))]
    todo = [b for b in range(len(plan)) if not parts[b].is_file()]
    loader = Prefetcher(predictor, [[str(Path(root) / rows[i]["media_path"]) for i in plan[b]]
                                    for b in todo])  # fmt: skip
    tables, reused = [], 0
    try:
        for b, positions in enumerate(tqdm(plan, desc=f"{model_id} shard {shard}",
                                           mininterval=5)):  # fmt: skip
            part = parts[b]
            if part.is_file():
                tables.append(pq.read_table(part))
                reused += 1
                continue
            loader.next()  # this batch's clips are ready; the next batch's start loading
            meta = {"model": model_id, "batch": b, "shard": shard}
            out = predict_batch(predictor, [rows[i] for i in positions], settings, parser,
                                Path(root), meta)  # fmt: skip
            table = pa.Table.from_pylist(out, schema=PREDICTION_SCHEMA)
            write_parquet_atomic(part, table)
            tables.append(table)
            if progress:
                progress(b)
    finally:
        loader.close()
    if log:
        log.info("%d batches (%d reused from an interrupted run)", len(plan), reused)
    if not tables:
        return PREDICTION_SCHEMA.empty_table()
    table = pa.concat_tables(tables)
    order = sorted(
        range(table.num_rows),
        key=lambda k: (table["id"][k].as_py(), table["mode"][k].as_py()),
    )
    return table.take(order)


def merge_shards(paths: Sequence[PathLike]) -> pa.Table:
    """The shards of a task as one table, ordered by sample id and mode."""
    tables = [pq.read_table(p) for p in paths]
    table = pa.concat_tables(tables) if tables else PREDICTION_SCHEMA.empty_table()
    table = table.cast(PREDICTION_SCHEMA)
    return table.sort_by([("id", "ascending"), ("mode", "ascending")])
