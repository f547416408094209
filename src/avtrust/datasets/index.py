"""The index stage: probe every clip of a dataset into a manifest and a rejects table.

A clip is rejected, with the reason, when its file is missing, empty, unreadable,
fails to decode, lacks a stream its dataset needs, or has an unsafe id. Rejects never
stop the stage; they are what a user reads to fix their download.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
from tqdm import tqdm

from avtrust.datasets.adapters import SAFE_ID, ClipEntry, list_clips
from avtrust.datasets.download.youtube import failure_reasons
from avtrust.errors import MediaError
from avtrust.media.probe import decodes_cleanly, probe

MANIFEST_SCHEMA = pa.schema(
    [
        ("clip_id", pa.string()),
        ("dataset", pa.string()),
        ("path", pa.string()),
        ("duration", pa.float64()),
        ("has_audio", pa.bool_()),
        ("has_video", pa.bool_()),
        ("fps", pa.float64()),
        ("sample_rate", pa.int32()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("video_codec", pa.string()),
        ("audio_codec", pa.string()),
        ("channels", pa.int32()),
        ("rotation", pa.int32()),
        ("audio_offset", pa.float64()),
        ("labels", pa.list_(pa.string())),
        ("stems", pa.list_(pa.string())),
    ]
)
REJECTS_SCHEMA = pa.schema(
    [
        ("clip_id", pa.string()),
        ("dataset", pa.string()),
        ("path", pa.string()),
        ("reason", pa.string()),
    ]
)


def _printable(text: str) -> str:
    """``text`` as valid UTF-8: bytes of a file name that are not UTF-8 (held by Python
    as surrogate escapes, which Arrow cannot store) are written as ``\\xNN``."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _check(entry: ClipEntry, decode_check: bool) -> tuple[dict | None, str | None]:
    """(manifest row fields, None) for a usable clip, (None, reason) otherwise."""
    if not SAFE_ID.match(entry.clip_id):
        return None, "unsafe clip id (allowed: letters, digits, '_', '-', '.'; no '..')"
    if entry.problem:
        return None, entry.problem
    if entry.path is None:
        return None, "listed in the annotations but no media file found"
    if _printable(str(entry.path)) != str(entry.path):
        return None, "file path is not valid UTF-8"
    try:
        info = probe(entry.path)
    except MediaError as exc:
        return None, str(exc)
    if info.duration <= 0:
        return None, "zero duration"
    if entry.needs_audio and not info.has_audio:
        return None, "no audio stream"
    if entry.needs_video and not info.has_video:
        return None, "no video stream"
    missing_stems = [str(s) for s in entry.stems if not s.is_file()]
    if missing_stems:
        return None, f"missing stem files: {', '.join(missing_stems)}"
    if decode_check:
        error = decodes_cleanly(entry.path)
        if error:
            return None, f"does not decode: {error}"
    return info.as_dict(), None


def index_dataset(
    dataset: str, fmt: str, raw_dir: str, *, decode_check: bool = True, workers: int = 1
) -> tuple[pa.Table, pa.Table]:
    """Probe all clips of ``raw_dir``; return (manifest, rejects) sorted by clip id."""
    entries = list_clips(fmt, raw_dir)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(
            tqdm(
                pool.map(lambda e: _check(e, decode_check), entries),
                total=len(entries),
                desc=f"index {dataset}",
                unit="clip",
            )
        )
    # Clips a download source could not fetch: their rejects say why.
    download_failures = failure_reasons(raw_dir)
    rows, rejects = [], []
    for entry, (info, reason) in zip(entries, results, strict=True):
        path = str(entry.path) if entry.path else ""
        if reason is not None:
            if entry.path is None and entry.clip_id in download_failures:
                reason = f"{reason} (download failed: {download_failures[entry.clip_id]})"
            rejects.append(
                {
                    "clip_id": _printable(entry.clip_id),
                    "dataset": dataset,
                    "path": _printable(path),
                    "reason": _printable(reason),
                }
            )
            continue
        rows.append(
            {
                "clip_id": entry.clip_id,
                "dataset": dataset,
                "path": path,
                "duration": info["duration"],
                "has_audio": info["has_audio"],
                "has_video": info["has_video"],
                "fps": info["fps"],
                "sample_rate": info["sample_rate"],
                "width": info["width"],
                "height": info["height"],
                "video_codec": info["video_codec"],
                "audio_codec": info["audio_codec"],
                "channels": info["channels"],
                "rotation": info["rotation"],
                "audio_offset": info["audio_offset"],
                "labels": list(entry.labels),
                "stems": [str(s) for s in entry.stems],
            }
        )
    return (
        pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA),
        pa.Table.from_pylist(rejects, schema=REJECTS_SCHEMA),
    )
