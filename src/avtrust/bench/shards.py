"""Executing a shard of a task's plan: run each sample's manipulation, check its output.

Each output's audio is then measured against what its task promises
(:mod:`avtrust.bench.checks`); the measured values travel with the result, and a
broken promise makes the sample a reject.

Samples are assigned to shards by row number (row % shards), so the number of jobs
depends on the shard count only. Within a shard, ffmpeg processes run in a small
thread pool; a failing sample is recorded with its error, never fatal to the shard.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from avtrust.bench.checks import check_output
from avtrust.bench.samples import CHECK_FIELDS
from avtrust.errors import AvtrustError, MediaError, StorageError
from avtrust.media import manipulate
from avtrust.media.probe import probe
from avtrust.sharding import shard_rows

RESULT_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("media_path", pa.string()),
        ("ok", pa.bool_()),
        ("has_audio", pa.bool_()),
        ("has_video", pa.bool_()),
        ("error", pa.string()),
        *CHECK_FIELDS,
    ]
)


# Tasks whose manipulations always re-encode audio (a stem muted, a soundtrack replaced
# or mixed) at `media.sample_rate`; every task may re-encode a stream its output
# container does not take with `media`'s codecs (decided at planning from the manifest).
AUDIO_ENCODING_TASKS = {"avconfusebench": ("m1", "m2")}


def media_settings(bench: str, task: str, media: dict) -> dict:
    """Exactly the ``media`` settings the manipulations of ``task`` read."""
    out = {"video_codec": media["video_codec"], "audio_codec": media["audio_codec"]}
    if task in AUDIO_ENCODING_TASKS.get(bench, ()):
        out["sample_rate"] = media["sample_rate"]
    return out


def run_op(op: str, args: dict, dst: str, media: dict) -> None:
    """Produce ``dst`` by manipulation ``op``; ``none`` uses the source as is.

    ``args["encode"]`` lists the source streams planning found in codecs the output
    container does not take; they are re-encoded with ``media``'s codecs, the rest copied
    (plans without it leave the choice to probing).
    """
    codecs = {"video_codec": media["video_codec"], "audio_codec": media["audio_codec"]}
    if op in ("mute_stem", "replace_soundtrack"):
        audio = {"sample_rate": media["sample_rate"], "audio_codec": media["audio_codec"]}
    encode = args.get("encode")
    if op == "none":
        return
    if op == "verify":  # an imported clip, used as is: it must exist with both streams
        info = probe(args["src"])
        if not (info.has_audio and info.has_video):
            raise MediaError(f"{args['src']}: needs both audio and video streams")
        return
    if op == "strip_audio":
        manipulate.strip_audio(args["src"], dst, encode=encode, codecs=codecs)
    elif op == "strip_video":
        manipulate.strip_video(args["src"], dst, encode=encode, codecs=codecs)
    elif op == "combine":
        manipulate.combine(args["video_src"], args["audio_src"], dst, encode=encode, codecs=codecs)
    elif op == "concat":
        manipulate.concat(
            [args["src1"], args["src2"]], dst, copy=args.get("copy"), codecs=codecs,
            durations=args.get("durations"),
        )  # fmt: skip
    elif op == "swap_stitch":
        manipulate.swap_stitch(
            args["src1"], args["src2"], dst, copy=args.get("copy"), encode=encode, codecs=codecs
        )
    elif op == "mute_stem":
        manipulate.mute_stem(
            args["video_src"], args["stems"], args["muted"], dst, **audio,
            encode=encode, video_codec=codecs["video_codec"],
        )  # fmt: skip
    elif op == "replace_soundtrack":
        manipulate.replace_soundtrack(
            args["video_src"], args["sound_src"], dst, snr_db=args["snr_db"], **audio,
            encode=encode, video_codec=codecs["video_codec"],
        )  # fmt: skip
    else:
        raise ValueError(f"unknown manipulation {op!r}")


# Streams of each manipulation's output. Sources are indexed clips with both streams,
# and outputs are checked by ffmpeg's exit status and a non-empty file (atomic_output),
# so probing every output again would only double the process launches per sample.
OUTPUT_STREAMS = {"strip_audio": (False, True), "strip_video": (True, False)}


def _execute(row: dict, media: dict) -> dict:
    dst = row["media_path"]
    failed = {"id": row["id"], "media_path": dst, "ok": False, "has_audio": None,
              "has_video": None}  # fmt: skip
    try:
        args = json.loads(row["op_args"])
        run_op(row["op"], args, dst, media)
        # Measured after every manipulation: a sample whose audio does not keep the
        # task's promise (stem muted, soundtrack replaced, audio gone) is rejected.
        measured = check_output(row["op"], args, dst)
    except StorageError:
        raise  # a full disk is not the sample's fault: stop the job, keep nothing
    except (AvtrustError, OSError, ValueError) as exc:
        return {**failed, "error": f"{type(exc).__name__}: {exc}"}
    if measured.failure is not None:
        return {**failed, "error": f"check failed: {measured.failure}", **measured.row()}
    has_audio, has_video = OUTPUT_STREAMS.get(row["op"], (True, True))
    return {
        "id": row["id"],
        "media_path": dst,
        "ok": True,
        "has_audio": has_audio,
        "has_video": has_video,
        "error": None,
        **measured.row(),
    }


def run_shard(plan_path: str, shard: int, shards: int, media: dict, workers: int = 1) -> pa.Table:
    """Execute shard ``shard`` of ``shards`` of the plan at ``plan_path``."""
    plan = pq.read_table(plan_path)
    rows = shard_rows(plan.to_pylist(), shard, shards)
    for row in rows:
        if row["op"] != "none":
            Path(row["media_path"]).parent.mkdir(parents=True, exist_ok=True)
    task = rows[0]["task"] if rows else Path(plan_path).stem
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(
            tqdm(
                pool.map(lambda r: _execute(r, media), rows),
                total=len(rows),
                desc=f"{task} shard {shard + 1}/{shards}",
                unit="sample",
            )
        )
    return pa.Table.from_pylist(results, schema=RESULT_SCHEMA)
