"""Content fingerprints of what a training run reads: its rows, the media they use and
the base model's weights.

The precomputed reference log-probs and the resume state are reused only when these are
unchanged, whatever the paths: rewriting ``pairs.parquet`` in place with another
``chosen``, re-rendering a clip under the same name or saving other weights into the
same model folder gives another fingerprint, while moving the results folder does not.

A file's digest is its size and sha256, computed once per process for a given file
state (path, size, modification time, inode); the rows are hashed with every media path
replaced by that digest.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from avtrust.errors import ConfigError

PathLike = str | os.PathLike
# The row columns that name a clip the model reads (SFT rows use the first only).
MEDIA_COLUMNS = ("media_path", "video_corrupted_path", "audio_corrupted_path")
_BLOCK = 1 << 20


@functools.cache
def _sha256(path: str, size: int, mtime_ns: int, inode: int) -> str:
    # The stat fields are part of the cache key: a file rewritten in place is read again.
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_BLOCK):
            h.update(block)
    return h.hexdigest()


def file_digest(path: PathLike) -> str:
    """``"<size>:<sha256>"`` of a file's bytes."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ConfigError(f"{str(path)!r}: file not found (it was to be fingerprinted)") from None
    if not Path(path).is_file():
        raise ConfigError(f"{str(path)!r} is not a file (it was to be fingerprinted)")
    return f"{st.st_size}:{_sha256(os.path.realpath(path), st.st_size, st.st_mtime_ns, st.st_ino)}"


def text_hash(obj) -> str:
    """sha256 of the canonical JSON of ``obj``."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def rows_fingerprint(rows: Iterable[dict], media_columns: Sequence[str] = MEDIA_COLUMNS) -> str:
    """Hash of the rows in order, each media path in ``media_columns`` replaced by the
    digest of the file it names (empty values are kept as they are)."""
    keyed = []
    for row in rows:
        keyed.append(
            {
                k: (file_digest(v) if k in media_columns and v else v)
                for k, v in row.items()
                if not k.startswith("ref_")  # reference log-probs are derived from the rest
            }
        )
    return text_hash(keyed)


def model_files(model_dir: PathLike) -> Path:
    """The folder holding a prepared model's weights: the model folder, or the user's
    folder that its manifest points to (``source: local``)."""
    from avtrust.models import registry

    model_dir = Path(model_dir)
    if (model_dir / registry.MANIFEST).is_file():
        return registry.weights_path(model_dir, registry.read_manifest(model_dir))
    return model_dir


def model_fingerprint(model_dir: PathLike) -> str:
    """Hash of every file of the model's weights folder (weights, config, tokenizer),
    by relative name and content. Hidden files and folders (download caches with
    timestamps) are left out."""
    root = model_files(model_dir)
    if not root.is_dir():
        raise ConfigError(
            f"{str(model_dir)!r}: model folder not found (it was to be fingerprinted)"
        )
    files = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        files[rel.as_posix()] = file_digest(path)
    if not files:
        raise ConfigError(f"{str(model_dir)!r}: model folder holds no files")
    return text_hash(files)


def module_fingerprint(module) -> str:
    """Hash of a module's state dict (name, dtype, shape, bytes): for a model that was
    not loaded from a folder."""
    import torch

    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        if t.dtype in (torch.bfloat16, torch.float8_e4m3fn, torch.float8_e5m2):
            t = t.float()  # numpy has no such dtypes
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def inputs_fingerprint(inputs: dict) -> str:
    """Hash of a training job's input files by content: a table's rows with their media
    (:func:`rows_fingerprint`), a model folder's files (:func:`model_fingerprint`), any
    other file's bytes; a nested mapping (SFT's tables by task) entry by entry."""

    def content(value):
        if isinstance(value, dict):
            return {k: content(v) for k, v in sorted(value.items())}
        path = Path(value)
        if path.is_dir():
            return model_fingerprint(path)
        if path.suffix == ".parquet" and path.is_file():
            import pyarrow.parquet as pq

            return rows_fingerprint(pq.read_table(path).to_pylist())
        return file_digest(path)

    return text_hash({name: content(value) for name, value in sorted(inputs.items())})
