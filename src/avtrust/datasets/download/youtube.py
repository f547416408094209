"""``source: youtube``: clips cut from YouTube videos (AudioSet, VGGSound-based AVQA).

Three steps, three rules (workflow/rules/fetch.smk):

1. :func:`prepare_list` fetches the annotation files (by URL with a pinned sha256, or
   from a local path) and lists the segments they name (:func:`segments`): AudioSet
   segment CSVs give ``YTID, start_seconds, end_seconds``; AVQA names its clips
   ``<YouTube id>_<start second, 6 digits>`` (VGGSound), each ``clip_s`` (10) seconds long.
2. :func:`download_shard` works through every ``shards``-th segment, one after
   another: yt-dlp (in-process, the Python API) fetches the video, by default only the
   segment (``sections``: yt-dlp's download ranges, cut exactly at the segment's
   bounds), and :func:`avtrust.media.manipulate.trim` cuts it to exactly
   ``[start, end)`` with the configured codecs (ffmpeg, argument lists). Requests are
   spaced by ``sleep_s`` seconds, transfers capped at ``rate_limit`` bytes/s; transient
   failures (rate limiting, server errors, time-outs) are retried ``retries`` times with
   exponential back-off. Unavailable videos (private, removed, 404...) are normal: they
   are recorded, never fatal.
3. :func:`gather` makes the raw folder: ``annotations/``, ``videos/<clip_id>.mp4``
   (links into the download cache) and ``download_failures.parquet``, the failures
   table (clip, YouTube id, segment, kind, reason, attempts); the index stage names the
   download failure of every missing clip in its rejects.

Downloads are cached in ``resources/downloads/<dataset>/clips/`` and survive a failed or
rerun job: a rerun skips clips already cut, and videos found unavailable before
(``failed/<clip_id>.json``) unless ``retry_unavailable`` is set. Clip ids and YouTube ids
are checked before they are used in a path or a URL. Nothing is written outside
``resources/`` (yt-dlp's cache directory is switched off).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from avtrust.datasets import audioset, avqa
from avtrust.datasets.adapters import SAFE_ID
from avtrust.datasets.download import fetch_annotations, place
from avtrust.errors import AvtrustError, DownloadError, MediaError, StorageError
from avtrust.io import write_json_atomic, write_parquet_atomic
from avtrust.media.manipulate import trim
from avtrust.sharding import shard_rows

log = logging.getLogger(__name__)

YOUTUBE_URL = "https://www.youtube.com/watch?v={id}"
YTID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_VGGSOUND_NAME = re.compile(r"^(?P<ytid>.+)_(?P<start>\d{6})$")
FAILURES_FILE = "download_failures.parquet"

SEGMENT_SCHEMA = pa.schema(
    [
        ("clip_id", pa.string()),
        ("ytid", pa.string()),
        ("start_seconds", pa.float64()),
        ("end_seconds", pa.float64()),
    ]
)
STATUS_SCHEMA = pa.schema(
    [
        *SEGMENT_SCHEMA,
        ("ok", pa.bool_()),
        ("path", pa.string()),  # the cut clip in the download cache (ok rows)
        # ok rows: downloaded | cached; failures: unavailable | invalid | unusable | error
        ("kind", pa.string()),
        ("reason", pa.string()),
        ("attempts", pa.int32()),
    ]
)

# yt-dlp messages of videos that will not come back: recorded, not retried.
_UNAVAILABLE = re.compile(
    r"video unavailable|private video|has been removed|no longer available|not available|"
    r"account .* terminated|copyright|HTTP Error 404|HTTP Error 410|unsupported url|"
    r"no video formats|members[- ]only|confirm your age|does not exist|is not a valid URL",
    re.IGNORECASE,
)
# Messages of throttling: retried after a (longer) pause.
_THROTTLED = re.compile(r"HTTP Error 429|too many requests|not a bot|rate[- ]limit", re.IGNORECASE)


@dataclass(frozen=True)
class YoutubeOptions:
    """The ``datasets.<name>`` keys of a ``youtube`` source, with their defaults."""

    url_template: str = YOUTUBE_URL
    clip_s: float = 10.0
    shards: int = 1
    rate_limit: str | None = "4M"
    sleep_s: float = 2.0
    retries: int = 3
    backoff_s: float = 30.0
    ytdlp_format: str = "18/b[height<=?480]/bv*[height<=?480]+ba/b"
    sections: bool = True
    timeout_s: float = 30.0
    retry_unavailable: bool = False
    limit: int | None = None

    @classmethod
    def from_config(cls, spec: Mapping[str, Any]) -> YoutubeOptions:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in spec.items() if k in names})


class _Unavailable(Exception):
    pass


class _Transient(Exception):
    pass


# ----------------------------------------------------------------------------- segments


def _avqa_segments(folder: Path, clip_s: float) -> list[dict]:
    files = sorted(folder.glob("*.json"))
    names = sorted({v for f in files for v in avqa.read_annotations(f)["video_id"]})
    rows = []
    for name in names:
        match = _VGGSOUND_NAME.match(name)
        if match is None:  # kept, so the failures table names it
            rows.append({"clip_id": name, "ytid": "", "start_seconds": 0.0, "end_seconds": 0.0})
            continue
        start = float(int(match.group("start")))
        rows.append(
            {
                "clip_id": name,
                "ytid": match.group("ytid"),
                "start_seconds": start,
                "end_seconds": start + clip_s,
            }
        )
    return rows


def _audioset_segments(folder: Path) -> list[dict]:
    rows: dict[str, dict] = {}
    for csv in sorted(folder.glob("*segments*.csv")):
        frame = audioset.read_segments(csv)
        for clip, ytid, start, end in zip(
            frame["clip_id"],
            frame["ytid"],
            frame["start_seconds"],
            frame["end_seconds"],
            strict=True,
        ):
            rows.setdefault(
                clip,
                {
                    "clip_id": clip,
                    "ytid": ytid,
                    "start_seconds": float(start),
                    "end_seconds": float(end),
                },
            )
    return [rows[c] for c in sorted(rows)]


def segments(fmt: str, annotation_dir: str | Path, clip_s: float = 10.0) -> pa.Table:
    """The YouTube segments the annotation files of ``annotation_dir`` name, by clip id."""
    folder = Path(annotation_dir)
    if fmt == "avqa":
        rows = _avqa_segments(folder, clip_s)
    elif fmt == "audioset":
        rows = _audioset_segments(folder)
    else:
        raise DownloadError(
            f"source youtube serves the formats avqa and audioset, not {fmt!r} "
            "(MUSIC-AVQA videos come from its homepage: use source local)"
        )
    if not rows:
        raise DownloadError(f"no {fmt} annotation files naming clips under {folder}")
    return pa.Table.from_pylist(rows, schema=SEGMENT_SCHEMA)


def prepare_list(
    dataset: str,
    fmt: str,
    spec: Mapping[str, Any],
    annotations_dir: str | Path,
    cache_dir: str | Path,
) -> pa.Table:
    """Fetch the annotation entries into ``annotations_dir``; return their segments."""
    options = YoutubeOptions.from_config(spec)
    fetch_annotations(
        spec["annotations"],
        Path(annotations_dir),
        Path(cache_dir) / "http",
        what=f"datasets.{dataset}.annotations",
    )
    table = segments(fmt, annotations_dir, options.clip_s)
    if options.limit is not None and table.num_rows > options.limit:
        log.info(
            "%s: keeping the first %d of %d segments (limit)",
            dataset,
            options.limit,
            table.num_rows,
        )
        table = table.slice(0, options.limit)
    return table


# ----------------------------------------------------------------------------- download


class _YtdlpLogger:
    """yt-dlp's messages into this module's logger (errors are handled as exceptions)."""

    def debug(self, msg: str) -> None:
        if not msg.startswith("[debug] "):
            log.debug(msg)

    def info(self, msg: str) -> None:
        log.debug(msg)

    def warning(self, msg: str) -> None:
        log.info("yt-dlp: %s", msg)

    def error(self, msg: str) -> None:
        log.debug("yt-dlp: %s", msg)


def _ytdlp_options(options: YoutubeOptions, folder: Path, start: float, end: float) -> dict:
    from yt_dlp.utils import download_range_func, parse_bytes

    opts: dict[str, Any] = {
        "format": options.ytdlp_format,
        "outtmpl": {"default": str(folder / "source.%(ext)s")},
        "logger": _YtdlpLogger(),
        "quiet": True,
        "noprogress": True,
        "noplaylist": True,
        "cachedir": False,  # yt-dlp would otherwise write to ~/.cache
        "overwrites": True,
        "merge_output_format": "mkv",
        "socket_timeout": options.timeout_s,
        "retries": 1,  # the retry loop with back-off is ours
        "fragment_retries": 1,
        "extractor_retries": 1,
    }
    if options.rate_limit:
        opts["ratelimit"] = parse_bytes(str(options.rate_limit))
    if options.sections:
        opts["download_ranges"] = download_range_func(None, [(start, end)])
        opts["force_keyframes_at_cuts"] = True  # cut exactly, not at the previous key frame
    return opts


def fetch_video(url: str, folder: Path, start: float, end: float, options: YoutubeOptions) -> Path:
    """Download ``url`` (or only ``[start, end]`` with ``options.sections``) into ``folder``.

    Raises _Unavailable for videos that will not come back, _Transient otherwise.
    """
    import yt_dlp

    folder.mkdir(parents=True, exist_ok=True)
    try:
        with yt_dlp.YoutubeDL(_ytdlp_options(options, folder, start, end)) as ydl:
            info = ydl.extract_info(url, download=True)
    except yt_dlp.utils.DownloadError as exc:
        message = re.sub(r"^ERROR: ", "", str(exc)).strip()
        if _THROTTLED.search(message):
            raise _Transient(f"throttled: {message}") from None
        if _UNAVAILABLE.search(message):
            raise _Unavailable(message) from None
        raise _Transient(message) from None
    downloads = [Path(d["filepath"]) for d in (info or {}).get("requested_downloads") or []]
    files = [p for p in downloads if p.is_file()] or [
        p for p in sorted(folder.iterdir()) if p.is_file() and p.name.startswith("source.")
    ]
    if not files:
        raise _Transient("yt-dlp reported success but wrote no file")
    return files[0]


def _status(row: Mapping[str, Any], ok: bool, kind: str, reason: str | None = None, **extra):
    return {
        **{k: row[k] for k in SEGMENT_SCHEMA.names},
        "ok": ok,
        "path": extra.get("path"),
        "kind": kind,
        "reason": reason,
        "attempts": extra.get("attempts", 0),
    }


class _Pacer:
    """Keeps ``sleep_s`` seconds between the starts of two requests of this job."""

    def __init__(self, sleep_s: float):
        self.sleep_s, self.last = sleep_s, -math.inf

    def wait(self) -> None:
        pause = self.last + self.sleep_s - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        self.last = time.monotonic()


def _download_one(
    row: Mapping[str, Any],
    cache: Path,
    options: YoutubeOptions,
    media: Mapping[str, Any],
    pacer: _Pacer,
) -> dict:
    clip_id, ytid = row["clip_id"], row["ytid"]
    if not SAFE_ID.match(clip_id):
        return _status(row, False, "invalid", "unsafe clip id (letters, digits, '_', '-', '.')")
    if not YTID_RE.match(ytid or ""):
        return _status(row, False, "invalid", f"not a YouTube id: {ytid!r}")
    start, end = row["start_seconds"], row["end_seconds"]
    if not end > start:
        return _status(row, False, "invalid", f"empty segment {start}..{end}")
    dst = cache / "clips" / f"{clip_id}.mp4"
    if dst.is_file():
        return _status(row, True, "cached", path=str(dst))
    marker = cache / "failed" / f"{clip_id}.json"
    if marker.is_file() and not options.retry_unavailable:
        previous = json.loads(marker.read_text(encoding="utf-8"))
        return _status(row, False, previous["kind"], previous["reason"] + " (recorded earlier)")
    url = options.url_template.replace("{id}", ytid)
    work = cache / "tmp" / clip_id
    reason = ""
    for attempt in range(1, options.retries + 2):
        shutil.rmtree(work, ignore_errors=True)
        pacer.wait()
        try:
            source = fetch_video(url, work, start, end, options)
            trim(
                source,
                dst,
                0.0 if options.sections else start,
                end - start,
                video_codec=media["video_codec"],
                audio_codec=media["audio_codec"],
                sample_rate=media["sample_rate"],
            )
            return _status(row, True, "downloaded", path=str(dst), attempts=attempt)
        except StorageError:
            raise  # a full disk is not the video's fault: stop the job, record nothing
        except _Unavailable as exc:
            write_json_atomic(marker, {"kind": "unavailable", "reason": str(exc)})
            return _status(row, False, "unavailable", str(exc), attempts=attempt)
        except MediaError as exc:  # downloaded but not cuttable (e.g. shorter than the segment)
            reason = f"segment {start}-{end} s not cut: {exc}"
            return _status(row, False, "unusable", reason, attempts=attempt)
        except (_Transient, AvtrustError, OSError) as exc:
            reason = str(exc)
            if attempt <= options.retries:
                wait = options.backoff_s * 2 ** (attempt - 1)
                log.warning("%s: %s; retry %d in %.0f s", clip_id, reason, attempt, wait)
                time.sleep(wait)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return _status(row, False, "error", reason, attempts=options.retries + 1)


def download_shard(
    table: pa.Table,
    shard: int,
    shards: int,
    cache_dir: str | Path,
    options: YoutubeOptions,
    media: Mapping[str, Any],
) -> pa.Table:
    """Download every ``shards``-th segment of ``table`` from ``shard``; never raises for
    a video that fails: it becomes a row with ``ok`` false and the reason."""
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} out of range for {shards} shards")
    rows = shard_rows(table.to_pylist(), shard, shards)
    cache = Path(cache_dir)
    pacer = _Pacer(options.sleep_s)
    out = []
    for row in tqdm(rows, desc=f"youtube shard {shard + 1}/{shards}", unit="clip"):
        status = _download_one(row, cache, options, media, pacer)
        if not status["ok"]:
            log.warning("%s: %s: %s", status["clip_id"], status["kind"], status["reason"])
        out.append(status)
    return pa.Table.from_pylist(out, schema=STATUS_SCHEMA)


# ------------------------------------------------------------------------------- gather


def _link_relative(target: Path, link: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    os.symlink(os.path.relpath(target.resolve(), link.parent.resolve()), link)


def gather(
    annotations_dir: str | Path, status_paths: Iterable[str | Path], raw_dir: str | Path
) -> pa.Table:
    """Make the raw folder from the annotations and the shards' status tables.

    Returns the failures table, also written to ``<raw>/download_failures.parquet``.
    """
    raw = Path(raw_dir)
    for path in sorted(Path(annotations_dir).iterdir()):
        if path.is_file():
            place(path, raw / "annotations" / path.name)
    tables = [pq.read_table(p) for p in status_paths]
    status = pa.concat_tables(tables) if tables else STATUS_SCHEMA.empty_table()
    rows = sorted(status.to_pylist(), key=lambda r: r["clip_id"])
    (raw / "videos").mkdir(parents=True, exist_ok=True)
    for row in rows:
        if row["ok"]:
            _link_relative(Path(row["path"]), raw / "videos" / f"{row['clip_id']}.mp4")
    failures = pa.Table.from_pylist([r for r in rows if not r["ok"]], schema=STATUS_SCHEMA)
    write_parquet_atomic(raw / FAILURES_FILE, failures.drop_columns(["ok", "path"]))
    return failures


def failure_reasons(raw_dir: str | Path) -> dict[str, str]:
    """Clip id -> "kind: reason" from a raw folder's failures table (empty if none)."""
    path = Path(raw_dir) / FAILURES_FILE
    if not path.is_file():
        return {}
    table = pq.read_table(path, columns=["clip_id", "kind", "reason"])
    return {
        c: f"{k}: {r}"
        for c, k, r in zip(
            table["clip_id"].to_pylist(),
            table["kind"].to_pylist(),
            table["reason"].to_pylist(),
            strict=True,
        )
    }
