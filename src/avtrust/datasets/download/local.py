"""``source: local``: a dataset folder the user already has, linked into the workflow.

The raw folder ``resources/raw/<dataset>/`` gets one symbolic link per media file of
the user's folder(s) (``videos/<file>``, or ``<label>/<file>`` for the labelled-folder
format) and a copy of each annotation file (``annotations/<name>``), downloaded first
when it is given by URL. The user's folders are only read.

A missing folder, or one without a single media file, stops the stage with a message
that says where the dataset is distributed. Clips the annotations name but the folder
lacks are counted and reported (log and ``MISSING.txt`` in the raw folder) without
stopping: the index stage lists each of them in ``results/manifest/<dataset>.rejects.parquet``.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avtrust.datasets.adapters import MEDIA_SUFFIXES, list_clips
from avtrust.datasets.download import fetch_annotations
from avtrust.errors import AnnotationError, DownloadError
from avtrust.io import write_text_atomic

log = logging.getLogger(__name__)

# Where each format's media are distributed: printed when they are missing.
WHERE = {
    "music_avqa": (
        "the drive links on the MUSIC-AVQA homepage, https://gewu-lab.github.io/MUSIC-AVQA/ "
        "(raw videos: MUSIC-AVQA-videos-Real and MUSIC-AVQA-videos-Synthetic; the QA files "
        "avqa-{train,val,test}.json are in github.com/GeWu-Lab/MUSIC-AVQA, data/json)"
    ),
    "avqa": (
        "the AVQA homepage, https://mn.cs.tsinghua.edu.cn/avqa (VGGSound clips named "
        "<YouTube id>_<start second>), or set `source: youtube` to cut them from YouTube"
    ),
    "audioset": (
        "YouTube: set `source: youtube` with the segment lists of "
        "https://research.google.com/audioset/download.html"
    ),
    "folder": (
        "any collection of labelled sounds, one subfolder per label "
        "(for AV-ConfuseBench m2: wind/, bird/, rain/, drill/, thunder/)"
    ),
}
EXAMPLES = 10


@dataclass(frozen=True)
class LocalReport:
    """What was linked: media files, clips the annotations name, and those missing."""

    linked: int
    listed: int
    missing: list[str]


def _media_in(folder: Path) -> list[Path]:
    return [
        p
        for p in sorted(folder.iterdir())
        # A symlink that leads nowhere is linked too, so the index says why it is unreadable.
        if (p.is_file() or p.is_symlink())
        and p.suffix.lower() in MEDIA_SUFFIXES
        and not p.name.startswith(".")
    ]


def _link(target: Path, link: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    try:
        target = target.resolve()
    except (RuntimeError, OSError):  # a symlink loop (RuntimeError before Python 3.13)
        target = target.absolute()
    os.symlink(target, link)


def _link_media(fmt: str, folders: list[Path], raw: Path) -> int:
    """Link every media file of ``folders`` into ``raw``; first folder wins a name clash."""
    seen: dict[Path, Path] = {}
    for folder in folders:
        if fmt == "folder":
            pairs = [
                (f, Path(label.name) / f.name)
                for label in sorted(p for p in folder.iterdir() if p.is_dir())
                if not label.name.startswith(".")
                for f in _media_in(label)
            ]
        else:
            pairs = [(f, Path("videos") / f.name) for f in _media_in(folder)]
        for src, rel in pairs:
            if rel in seen:
                log.warning("%s: also in %s; using the latter", src, seen[rel])
                continue
            seen[rel] = src
            _link(src, raw / rel)
    return len(seen)


def _not_a_folder(path: Path) -> str | None:
    """What ``path`` is instead of a folder (a file, a symlink loop, unreadable), or None
    if it is a folder or does not exist (which has its own message)."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "is unreadable (symlink loop)"
        if exc.errno == errno.EACCES:
            return "is unreadable (permission denied)"
        return None
    if stat.S_ISDIR(mode):
        return None
    return "is a file, not a folder" if stat.S_ISREG(mode) else "is not a folder"


def _where(dataset: str, fmt: str) -> str:
    return f"Get the {dataset!r} media ({fmt} format) from {WHERE.get(fmt, 'its distributor')}"


def _name_user_files(message: str, entries: list, copies: list[Path], dataset: str) -> str:
    """``message`` with the user's file (path or URL) and config entry of each copy it names."""
    for i, (entry, copy) in enumerate(zip(entries, copies, strict=True)):
        if str(copy) in message:
            origin = entry.get("path") or entry.get("url")
            message += f" [{copy.name} is datasets.{dataset}.annotations[{i}]: {origin}]"
    return message


def prepare_local(
    dataset: str, fmt: str, spec: Mapping[str, Any], raw_dir: str | Path, cache_dir: str | Path
) -> LocalReport:
    """Fill ``raw_dir`` from the folder(s) of ``spec['path']`` and its annotation entries."""
    raw, cache = Path(raw_dir), Path(cache_dir)
    paths = spec["path"] if isinstance(spec["path"], list) else [spec["path"]]
    folders = [Path(os.path.expanduser(p)) for p in paths]
    for folder in folders:
        problem = _not_a_folder(folder)
        if problem:
            raise DownloadError(
                f"datasets.{dataset}.path: {folder} {problem}; point datasets.{dataset}.path "
                "at the folder that holds the media files"
                + (" (one subfolder per label)." if fmt == "folder" else ".")
            )
    absent = [str(f) for f in folders if not f.is_dir()]
    if absent:
        raise DownloadError(
            f"datasets.{dataset}.path: folder {', '.join(absent)} does not exist. "
            f"{_where(dataset, fmt)}, then point datasets.{dataset}.path at the folder "
            + ("(one subfolder per label)." if fmt == "folder" else "of media files.")
        )
    raw.mkdir(parents=True, exist_ok=True)
    annotations = spec.get("annotations", [])
    copies = fetch_annotations(
        annotations, raw / "annotations", cache / "http", what=f"datasets.{dataset}.annotations"
    )
    linked = _link_media(fmt, folders, raw)
    if linked == 0:
        raise DownloadError(
            f"datasets.{dataset}.path: no media files ({', '.join(MEDIA_SUFFIXES)}) in "
            f"{', '.join(map(str, folders))}"
            + (" (expected one subfolder per label)" if fmt == "folder" else "")
            + f". {_where(dataset, fmt)}."
        )
    try:
        entries = list_clips(fmt, raw)
    except AnnotationError as exc:  # it names the copy; the user needs their own file
        raise AnnotationError(_name_user_files(str(exc), annotations, copies, dataset)) from None
    missing = [e.clip_id for e in entries if e.path is None]
    if missing:
        shown = ", ".join(missing[:EXAMPLES]) + (", ..." if len(missing) > EXAMPLES else "")
        message = (
            f"{dataset}: {len(missing)} of {len(entries)} clips named in the annotations have "
            f"no media file in {', '.join(map(str, folders))} (e.g. {shown}). "
            f"{_where(dataset, fmt)}. The workflow goes on without them; each is listed in "
            f"results/manifest/{dataset}.rejects.parquet."
        )
        log.warning(message)
        write_text_atomic(raw / "MISSING.txt", message + "\n\n" + "\n".join(missing) + "\n")
    log.info("%s: linked %d media files; %d clips listed", dataset, linked, len(entries))
    return LocalReport(linked=linked, listed=len(entries), missing=missing)
