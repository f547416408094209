"""Decode once, read everywhere: the model-ready arrays of every clip in sharded files.

Decoding a clip (one ffprobe, one ffmpeg process) costs ~40× what the tiny model needs
to answer about it, and the same clip is decoded again by every evaluated model, every
scoring mode, every training epoch. :func:`build` decodes each clip once per set of
input settings into **safetensors shards** (memory-mapped when read; one file per
``shard_clips`` clips) plus an ``index.parquet``; :class:`DecodeCache` reads them and
:func:`attach` makes an input builder (:mod:`avtrust.models.omni_inputs`) take a clip's
arrays from the cache instead of ffmpeg. The hook sits at the decode boundary (path →
stream kind, 16 kHz audio, sampled frames): what the builder does with the arrays is
unchanged, so cached and decoded inputs are the same tensors.

**Keys.** An entry is keyed by the sha256 of the clip's bytes and of the settings that
decide the arrays (frame rate, resize bounds, frame-count rule, sample rate, the format
version): a clip whose bytes changed, or a model with other settings, misses the cache
and is decoded afresh, never served stale arrays. The path is only a label.

**One source of truth.** :func:`decode_arrays` is the only place that turns a clip into
model arrays (the builders' ``read_clip`` calls it too), with the frame-sampling and
resize rules of :mod:`avtrust.models.media`; :data:`DECODES` counts its calls per clip,
so a benchmark can show that N models decoded each clip once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from avtrust.errors import MediaError
from avtrust.io import atomic_path, write_parquet_atomic
from avtrust.media.probe import ClipInfo
from avtrust.models.media import Streams, read_audio_frames, streams

PathLike = str | os.PathLike
FORMAT = 2  # bump when the stored layout or the decoding itself changes
INDEX = "index.parquet"
SHARDS = "shards"
SHARD_HEADER = "avtrust_decode_cache"
INDEX_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("path", pa.string()),  # a label: lookups go by content
        ("clip_sha256", pa.string()),
        ("settings_sha256", pa.string()),
        ("shard", pa.string()),
        ("kind", pa.string()),
        ("info", pa.string()),  # the clip's probe (ClipInfo as JSON): no ffprobe on a hit
        ("sample_rate", pa.int32()),  # of the audio: what another model's audio may reuse
        ("audio_samples", pa.int64()),
        ("frames", pa.int32()),
        ("height", pa.int32()),
        ("width", pa.int32()),
        ("nbytes", pa.int64()),
    ]
)


# The clip columns of the tables whose clips are cached: benchmark and QA tables,
# training rows (media_path), CAVPref pairs (+ V' and A').
MEDIA_COLUMNS = ("media_path", "video_corrupted_path", "audio_corrupted_path")


def clip_paths(rows: Iterable[dict]) -> list[str]:
    """The distinct clips of ``rows`` (first-seen order) in :data:`MEDIA_COLUMNS`."""
    out = {}
    for row in rows:
        for column in MEDIA_COLUMNS:
            if row.get(column):
                out[str(row[column])] = None
    return list(out)


class Decodes:
    """Calls of :func:`decode_arrays`, per clip path (thread-safe)."""

    def __init__(self):
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()

    def add(self, path: PathLike) -> None:
        with self.lock:
            self.counts[str(path)] += 1

    def total(self) -> int:
        with self.lock:
            return sum(self.counts.values())

    def reset(self) -> None:
        with self.lock:
            self.counts.clear()


DECODES = Decodes()


def decode_arrays(s: Streams, vision, sample_rate: int):
    """(16 kHz mono audio or None, sampled RGB frames or None) of a probed clip, with the
    builder's ``vision`` settings (:class:`avtrust.models.omni_inputs.VisionSettings`)."""
    DECODES.add(s.path)
    return read_audio_frames(s.path, sample_rate, info=s.info, **vision.sampling())


def settings_digest(vision, sample_rate: int) -> str:
    """sha256 of what decides the decoded arrays (normalisation happens after decoding
    and is not part of it)."""
    fields = {"format": FORMAT, "sample_rate": int(sample_rate), **vision.sampling()}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


_DIGESTS: dict[tuple, str] = {}
_DIGESTS_LOCK = threading.Lock()


def file_digest(path: PathLike) -> str:
    """sha256 of a file's bytes, memoised per (path, size, mtime) in this process."""
    st = os.stat(path)
    memo = (os.path.realpath(path), st.st_size, st.st_mtime_ns)
    with _DIGESTS_LOCK:
        if memo in _DIGESTS:
            return _DIGESTS[memo]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    digest = h.hexdigest()
    with _DIGESTS_LOCK:
        _DIGESTS[memo] = digest
    return digest


def entry_key(clip_sha: str, settings_sha: str) -> str:
    return hashlib.sha256(f"{clip_sha}:{settings_sha}".encode()).hexdigest()[:40]


@dataclass
class Decoded:
    """One clip's cached arrays and probe."""

    kind: str
    audio: np.ndarray | None
    frames: np.ndarray | None
    info: ClipInfo


class DecodeCache:
    """Reader of a cache folder written by :func:`build` (``index.parquet`` + shards).

    ``hits``/``misses`` count lookups; a folder without an index is an empty cache."""

    def __init__(self, root: PathLike):
        self.root = Path(root)
        self.entries: dict[str, dict] = {}
        self.soundtracks: dict[str, dict[int, str]] = {}  # clip sha -> {sample rate: key}
        index = self.root / INDEX
        if index.is_file():
            for row in pq.read_table(index).to_pylist():
                self.entries[row["key"]] = row
                if row.get("sample_rate") is not None:
                    rates = self.soundtracks.setdefault(row["clip_sha256"], {})
                    rates[row["sample_rate"]] = row["key"]
        self.handles: dict[str, object] = {}
        self.lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self.entries)

    def _shard(self, name: str):
        from safetensors import safe_open

        with self.lock:
            if name not in self.handles:
                self.handles[name] = safe_open(str(self.root / SHARDS / name), framework="numpy")
            return self.handles[name]

    def entry(self, path: PathLike, vision, sample_rate: int = 16000) -> dict | None:
        """The index row of ``path``'s current bytes under ``vision``'s settings."""
        key = entry_key(file_digest(path), settings_digest(vision, sample_rate))
        return self.entries.get(key)

    def get(self, path: PathLike, settings_sha: str) -> Decoded | None:
        """The arrays of ``path``'s current bytes under ``settings_sha``, or None."""
        key = entry_key(file_digest(path), settings_sha)
        row = self.entries.get(key)
        if row is None:
            with self.lock:
                self.misses += 1
            return None
        shard = self._shard(row["shard"])
        audio = None if row["audio_samples"] is None else shard.get_tensor(f"{key}.audio")
        frames = None if row["frames"] is None else shard.get_tensor(f"{key}.frames")
        with self.lock:
            self.hits += 1
        return Decoded(row["kind"], audio, frames, ClipInfo(**json.loads(row["info"])))

    def soundtrack(self, path: PathLike, sample_rate: int) -> np.ndarray | None:
        """The audio of ``path``'s current bytes at ``sample_rate`` (None: the clip has
        no audio stream), exactly as :func:`avtrust.models.media.read_audio` gives it,
        from an entry of any vision settings (the audio does not depend on them): one
        decoded at ``sample_rate``, or one decoded at the stream's own rate — its
        samples are then ffmpeg's, unresampled, and are resampled as ``read_audio``
        resamples them (the thinker's 16 kHz entries serve CLAP's 48 kHz). Raises
        KeyError where no entry holds it."""
        from avtrust.models.media import resample

        rates = self.soundtracks.get(file_digest(path), {})
        key, rate = rates.get(int(sample_rate)), int(sample_rate)
        if key is None:  # a clip without audio has none at any rate
            native = [
                (k, r)
                for r, k in rates.items()
                if self.entries[k]["audio_samples"] is None
                or json.loads(self.entries[k]["info"]).get("sample_rate") == r
            ]
            key, rate = native[0] if native else (None, None)
        if key is None:
            with self.lock:
                self.misses += 1
            raise KeyError(f"{path} at {sample_rate} Hz")
        row = self.entries[key]
        audio = None
        if row["audio_samples"] is not None:
            audio = self._shard(row["shard"]).get_tensor(f"{key}.audio")
            audio = resample(audio, rate, int(sample_rate))
        with self.lock:
            self.hits += 1
        return audio


def read_soundtrack(cache: DecodeCache | None, path: PathLike, sample_rate: int):
    """``path``'s soundtrack at ``sample_rate`` (None: no audio stream): from ``cache``
    where it holds the clip (:meth:`DecodeCache.soundtrack`), decoded otherwise."""
    from avtrust.models.media import read_audio

    if cache is not None:
        with contextlib.suppress(KeyError):  # not in the cache: decoded below
            return cache.soundtrack(path, sample_rate)
    return read_audio(path, sample_rate)


def media_tokens(entry: dict, factor: int = 28, temporal_patch_size: int = 2) -> float:
    """The tokens an index row's arrays become, roughly: a token per ``factor``² pixels
    of each temporal patch of frames, 25 audio tokens per second of 16 kHz audio."""
    n = (entry["audio_samples"] or 0) / 640
    if entry["frames"]:
        pixels = entry["height"] * entry["width"] / factor**2
        n += math.ceil(entry["frames"] / temporal_patch_size) * pixels
    return n


def attach(builder, cache: DecodeCache, sample_rate: int = 16000):
    """Make ``builder`` read clips (and their probes) from ``cache`` where it holds them,
    and decode the others as before. Idempotent; returns the builder."""
    if getattr(builder, "decode_cache", None) is cache:
        return builder
    settings_sha = settings_digest(builder.vision, sample_rate)
    decode, probe = builder.read_clip, builder.streams

    def read_clip(path):
        hit = cache.get(path, settings_sha)
        if hit is None:
            return decode(path)
        return hit.kind, hit.audio, hit.frames

    def cached_streams(path):
        key = entry_key(file_digest(path), settings_sha)
        row = cache.entries.get(key)
        if row is None:
            return probe(path)
        return Streams(str(path), ClipInfo(**json.loads(row["info"])))

    builder.read_clip, builder.streams, builder.decode_cache = read_clip, cached_streams, cache
    return builder


def _decode_entry(path: str, clip_sha: str, vision, settings_sha: str, sample_rate: int):
    start = time.perf_counter()
    s = streams(path)
    if not (s.has_audio or s.has_video):
        raise MediaError(f"{path}: neither an audio nor a video stream to decode")
    audio, frames = decode_arrays(s, vision, sample_rate)
    tensors = {}
    key = entry_key(clip_sha, settings_sha)
    if audio is not None:
        tensors[f"{key}.audio"] = np.ascontiguousarray(audio, dtype=np.float32)
    if frames is not None:
        tensors[f"{key}.frames"] = np.ascontiguousarray(frames, dtype=np.uint8)
    info = asdict(s.info)
    row = {
        "key": key,
        "path": path,
        "clip_sha256": clip_sha,
        "settings_sha256": settings_sha,
        "kind": s.kind,
        "info": json.dumps(info, sort_keys=True),
        "sample_rate": int(sample_rate),
        "audio_samples": None if audio is None else int(len(audio)),
        "frames": None if frames is None else int(frames.shape[0]),
        "height": None if frames is None else int(frames.shape[1]),
        "width": None if frames is None else int(frames.shape[2]),
        "nbytes": int(sum(t.nbytes for t in tensors.values())),
    }
    # the timing is reported, never stored: a rebuild must give the same bytes
    return row, tensors, time.perf_counter() - start


def _write_shard(root: Path, rows: list[dict], tensors: dict) -> str:
    from safetensors.numpy import save_file

    name = hashlib.sha256("\n".join(sorted(r["key"] for r in rows)).encode()).hexdigest()[:24]
    name = f"shard-{name}.safetensors"
    with atomic_path(root / SHARDS / name) as tmp:
        for r in rows:
            r["shard"] = name
        # the shard describes its own entries: a build finds them even without the index
        # (Snakemake deletes a rule's declared output, the index, before running it again)
        # one metadata key: safetensors writes several in a random (hash map) order
        header = json.dumps({"format": FORMAT, "rows": rows})
        save_file(tensors, str(tmp), metadata={SHARD_HEADER: header})
    return name


def stored_entries(root: PathLike) -> dict[str, dict]:
    """The entries the shards under ``root`` hold (of this format), by key."""
    from safetensors import safe_open

    out = {}
    for f in sorted((Path(root) / SHARDS).glob("shard-*.safetensors")):
        with safe_open(str(f), framework="numpy") as shard:
            header = json.loads((shard.metadata() or {}).get(SHARD_HEADER, "{}"))
        if header.get("format") != FORMAT:
            continue
        for row in header["rows"]:
            out[row["key"]] = {**row, "shard": f.name}
    return out


@dataclass
class BuildReport:
    entries: int
    decoded: int
    reused: int
    seconds: float
    decode_seconds: float
    nbytes: int
    shards: int


@contextlib.contextmanager
def _one_torch_thread():
    """torch on one intra-op thread while the decode workers run: they already take the
    cores (ffmpeg, then each clip's frames resized by torchvision), and on frames this
    small torch's own threads cost more CPU than they save (~13 % of a clip's CPU with
    two workers on 2 cores). The resized bytes do not depend on the thread count
    (tests/unit/test_model_media.py)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def build(
    paths: Iterable[PathLike],
    settings: Sequence,
    root: PathLike,
    *,
    sample_rate: int = 16000,
    shard_clips: int = 256,
    workers: int = 1,
    log=None,
) -> BuildReport:
    """Decode every clip of ``paths`` under every ``settings`` (VisionSettings) into
    ``root``, reusing the entries of an earlier build whose key (content + settings) is
    unchanged. The index lists exactly the entries of this call; shards no entry uses
    any more are deleted. Writes are atomic: an interrupted build leaves the previous
    index (and so the previous cache) intact."""
    if shard_clips < 1:
        raise ValueError(f"shard_clips must be positive, not {shard_clips}")
    start = time.perf_counter()
    root = Path(root)
    old = stored_entries(root)
    unique_settings = {settings_digest(v, sample_rate): v for v in settings}
    wanted: dict[str, tuple] = {}
    for path in dict.fromkeys(str(p) for p in paths):
        if not os.path.isfile(path):
            raise MediaError(f"{path}: no such clip to decode")
        clip_sha = file_digest(path)
        for settings_sha, vision in unique_settings.items():
            key = entry_key(clip_sha, settings_sha)
            wanted.setdefault(key, (path, clip_sha, vision, settings_sha))
    # a key holds the sample rate (settings_digest): an earlier build's row decoded at it
    keep = {k: {**old[k], "sample_rate": sample_rate} for k in wanted if k in old}
    todo = [w for k, w in wanted.items() if k not in keep]
    new_rows: list[dict] = []
    decode_seconds = 0.0

    def run(item):
        return _decode_entry(*item, sample_rate)

    with _one_torch_thread(), ThreadPoolExecutor(max(1, workers)) as pool:
        for s in range(0, len(todo), shard_clips):
            decoded = list(pool.map(run, todo[s : s + shard_clips]))
            rows = [r for r, _, _ in decoded]
            tensors = {k: v for _, t, _ in decoded for k, v in t.items()}
            decode_seconds += sum(seconds for _, _, seconds in decoded)
            _write_shard(root, rows, tensors)
            new_rows += rows
            if log:
                log.info("decoded %d/%d clips", s + len(rows), len(todo))
    rows = [*keep.values(), *new_rows]
    rows.sort(key=lambda r: r["key"])
    write_parquet_atomic(root / INDEX, pa.Table.from_pylist(rows, schema=INDEX_SCHEMA))
    used = {r["shard"] for r in rows}
    shard_dir = root / SHARDS
    if shard_dir.is_dir():
        for f in shard_dir.glob("shard-*.safetensors"):
            if f.name not in used:
                f.unlink()
    return BuildReport(
        entries=len(rows),
        decoded=len(new_rows),
        reused=len(keep),
        seconds=time.perf_counter() - start,
        decode_seconds=decode_seconds,
        nbytes=sum(r["nbytes"] for r in rows),
        shards=len(used),
    )
