"""The fetch stage: where each dataset's raw folder ``resources/raw/<dataset>/`` comes from.

One module per ``source`` of ``datasets.<name>`` in the config:

- ``synthetic`` (:mod:`avtrust.datasets.synthetic`): generated here;
- ``local`` (:mod:`.local`): a folder the user already has, linked in;
- ``http`` (:mod:`.http`): files by URL with a pinned sha256, resumable;
- ``youtube`` (:mod:`.youtube`): clips cut from YouTube videos with yt-dlp and ffmpeg;
- ``compose`` (:mod:`avtrust.datasets.compose`): multi-instrument scenes built from the
  solo clips of another dataset.

Every source writes the same layout the format adapters read (``videos/``,
``annotations/``, or one folder per label), so indexing and planning never care where
the data came from. Files are written only under ``resources/`` (the raw folders and
the download cache ``resources/downloads/<dataset>/``); a user's own folders are only
read, never written.

This module holds what the sources share: annotation-file entries of the config
(``{url, sha256, name}`` or ``{path, name}``) and safe file names.
"""

from __future__ import annotations

import os
import re
import shutil
import urllib.parse
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from avtrust.datasets.download import http
from avtrust.errors import DownloadError

# A file name the fetch stage may create: no separators, no leading dot, no '..'.
SAFE_FILE_NAME = re.compile(r"^(?!\.)(?!.*\.\.)[A-Za-z0-9_.+-]{1,200}$")


def safe_relative_path(text: str, what: str) -> Path:
    """``text`` as a relative path whose every part is a SAFE_FILE_NAME, or DownloadError."""
    parts = text.split("/")
    if not text or text.startswith("/") or not all(SAFE_FILE_NAME.match(p) for p in parts):
        raise DownloadError(
            f"{what}: {text!r} is not a safe relative path (parts of letters, digits, "
            "'_', '-', '.', '+'; no leading '/', no '..', no hidden names)"
        )
    return Path(*parts)


def entry_name(entry: Mapping[str, Any]) -> str:
    """The file name an annotation entry gets: ``name``, else the URL's or path's last part."""
    if entry.get("name"):
        return entry["name"]
    if entry.get("url"):
        return urllib.parse.unquote(urllib.parse.urlsplit(entry["url"]).path).rsplit("/", 1)[-1]
    return Path(entry["path"]).name


def place(src: Path, dest: Path) -> Path:
    """Put a copy of ``src`` at ``dest``: a hard link where possible, else a copy."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.unlink(missing_ok=True)
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)
    return dest


def fetch_file(
    entry: Mapping[str, Any], dest: Path, cache_dir: Path, *, what: str, **http_options
) -> Path:
    """Materialise one config entry at ``dest``.

    ``{url, sha256}`` (or ``{url, git_blob_sha1}``) downloads (resumably,
    checksum-checked) into ``cache_dir`` and links from there, so a rerun that rebuilds
    the raw folder downloads nothing;
    ``{path}`` copies a file the user has.
    """
    if entry.get("url"):
        cached = http.download(
            entry["url"],
            cache_dir / dest.name,
            entry.get("sha256"),
            git_blob_sha1=entry.get("git_blob_sha1"),
            **http_options,
        )
        return place(cached, dest)
    src = Path(os.path.expanduser(entry["path"]))
    if not src.is_file():
        raise DownloadError(f"{what}: file {src} does not exist")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.unlink(missing_ok=True)
    shutil.copyfile(src, dest)
    return dest


def fetch_annotations(
    entries: Iterable[Mapping[str, Any]],
    dest_dir: Path,
    cache_dir: Path,
    *,
    what: str,
    **http_options,
) -> list[Path]:
    """Materialise annotation entries as ``dest_dir/<name>``; names must be unique."""
    out, seen = [], set()
    for i, entry in enumerate(entries):
        label = f"{what}[{i}]"
        name = entry_name(entry)
        if not SAFE_FILE_NAME.match(name or ""):
            raise DownloadError(f"{label}: unsafe or empty file name {name!r}; set `name`")
        if name in seen:
            raise DownloadError(f"{label}: two annotation files are named {name!r}; set `name`")
        seen.add(name)
        out.append(fetch_file(entry, dest_dir / name, cache_dir, what=label, **http_options))
    return out


def prepare_http(
    dataset: str, spec: Mapping[str, Any], raw_dir: str | Path, cache_dir: str | Path
) -> list[Path]:
    """``source: http``: every ``files`` entry ``{url, sha256, path}`` at ``<raw>/<path>``.

    Downloads go to ``<cache>/http/<path>`` (resumable, checksum-checked) and are linked
    into the raw folder, so rebuilding it downloads nothing twice.
    """
    raw, cache = Path(raw_dir), Path(cache_dir)
    out, seen = [], set()
    for i, entry in enumerate(spec["files"]):
        what = f"datasets.{dataset}.files[{i}]"
        rel = safe_relative_path(entry["path"], f"{what}.path")
        if rel in seen:
            raise DownloadError(f"{what}.path: {entry['path']!r} is given twice")
        seen.add(rel)
        cached = http.download(entry["url"], cache / "http" / rel, entry["sha256"])
        out.append(place(cached, raw / rel))
    return out
