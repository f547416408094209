"""Resumable, checksum-pinned HTTP downloads (annotation files, small archives).

``download(url, dest, sha256)`` fetches into ``dest.part`` and renames it to ``dest``
only once its sha256 matches the pinned value:

- an interrupted transfer keeps ``dest.part``; the next attempt (in the same call, up to
  ``retries`` times with exponential back-off, or in a later run) asks the server for
  the rest with a ``Range: bytes=<size>-`` request and appends to it. A server that
  ignores the range (status 200) is read again from the start;
- a checksum mismatch is an error, and neither ``dest`` nor ``dest.part`` is left behind;
- a sha256 still set to the placeholder ``TO-BE-FILLED`` downloads the file once, deletes
  it and stops with an error that prints the file's actual sha256 for the user to pin
  (trust on first use is a decision the user makes, not the workflow);
- ``git_blob_sha1`` pins a file of a git repository by its blob id instead (the sha1 of
  ``blob <size>\\0`` + the bytes, what ``git ls-tree`` lists): a repository's listing
  names a large file's blob even where its bytes cannot be had to compute a sha256.

Only ``http://`` and ``https://`` URLs are accepted; nothing is run through a shell.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from avtrust import __version__
from avtrust.errors import DownloadError

PLACEHOLDER = "TO-BE-FILLED"
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
GIT_BLOB_RE = re.compile(r"^[0-9a-f]{40}$")
USER_AGENT = f"avtrust/{__version__} (+https://github.com/; dataset download)"
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
# Server answers worth another attempt: rate limiting and server-side failures.
_TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504}

log = logging.getLogger(__name__)


class _Transient(Exception):
    """A failure that another attempt (resuming from the .part file) may fix."""


def is_placeholder(value: str | None) -> bool:
    """True for a value the config marks as still to be filled in."""
    return value is None or PLACEHOLDER in value


def _hexdigest(digest, path: str | os.PathLike, chunk_bytes: int) -> str:
    """``digest`` updated with a file's bytes, read in chunks."""
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_of(path: str | os.PathLike, chunk_bytes: int = 1 << 20) -> str:
    return _hexdigest(hashlib.sha256(), path, chunk_bytes)


def git_blob_sha1_of(path: str | os.PathLike, chunk_bytes: int = 1 << 20) -> str:
    """The git blob id of a file's bytes (``git hash-object``)."""
    header = f"blob {os.path.getsize(path)}\0".encode()
    return _hexdigest(hashlib.sha1(header, usedforsecurity=False), path, chunk_bytes)


class Pin(NamedTuple):
    """The checksum a download is checked against."""

    name: str  # as error messages say it
    value: str
    digest_of: Callable[[str | os.PathLike], str]


def _pin(url: str, sha256: str | None, git_blob_sha1: str | None) -> Pin | None:
    """The pinned checksum (a git blob id before a sha256), or None if unpinned."""
    if not is_placeholder(git_blob_sha1):
        if not GIT_BLOB_RE.match(git_blob_sha1):
            raise DownloadError(
                f"{url}: git_blob_sha1 {git_blob_sha1!r} is not 40 lower-case hex digits"
            )
        return Pin("git blob sha1", git_blob_sha1, git_blob_sha1_of)
    if not is_placeholder(sha256):
        if not SHA256_RE.match(sha256):
            raise DownloadError(f"{url}: sha256 {sha256!r} is not 64 lower-case hex digits")
        return Pin("sha256", sha256, sha256_of)
    return None


def part_path(dest: str | os.PathLike) -> Path:
    dest = Path(dest)
    return dest.with_name(dest.name + ".part")


def _check_url(url: str) -> None:
    if PLACEHOLDER in url:
        raise DownloadError(
            f"{url}: the URL is a placeholder ({PLACEHOLDER}); put the real address in the config"
        )
    if not url.startswith(("http://", "https://")):
        raise DownloadError(f"{url}: only http:// and https:// URLs can be downloaded")


def _fetch_into(url: str, part: Path, timeout_s: float, chunk_bytes: int) -> None:
    """Fetch ``url`` into ``part``, resuming from its current size; raise _Transient."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout_s)  # scheme checked above
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            # Nothing left to send: the part already holds the whole file (the
            # checksum decides whether it is the right one).
            return
        if exc.code in _TRANSIENT_STATUS:
            raise _Transient(f"HTTP {exc.code} {exc.reason}") from exc
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise _Transient(f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}") from exc
    with response:
        mode = "wb"
        if offset and response.status == 206:
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            if match and int(match.group(1)) == offset:
                mode = "ab"
            else:
                # An unexpected range: start over rather than corrupt the part.
                part.unlink(missing_ok=True)
                raise _Transient(f"server answered range {response.headers.get('Content-Range')!r}")
        elif offset:
            log.info("%s: server ignored the range request; downloading from the start", url)
        length = response.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        received = 0
        try:
            with open(part, mode) as handle:
                while chunk := response.read(chunk_bytes):
                    handle.write(chunk)
                    received += len(chunk)
        except (OSError, http.client.HTTPException) as exc:
            raise _Transient(f"transfer interrupted after {received} bytes: {exc}") from exc
        if expected is not None and received < expected:
            raise _Transient(f"transfer interrupted after {received} of {expected} bytes")


def download(
    url: str,
    dest: str | os.PathLike,
    sha256: str | None,
    *,
    git_blob_sha1: str | None = None,
    retries: int = 3,
    backoff_s: float = 2.0,
    timeout_s: float = 60.0,
    chunk_bytes: int = 1 << 20,
) -> Path:
    """Download ``url`` to ``dest`` and check it against ``sha256`` (or
    ``git_blob_sha1`` when given); return ``dest``.

    A ``dest`` that already has the pinned checksum is kept as is (no request).
    """
    _check_url(url)
    dest = Path(dest)
    pin = _pin(url, sha256, git_blob_sha1)
    if dest.is_file():
        if pin and pin.digest_of(dest) == pin.value:
            log.info("%s: already downloaded, checksum ok", dest)
            return dest
        dest.unlink()  # stale or unverifiable: fetch again
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    for attempt in range(retries + 1):
        try:
            _fetch_into(url, part, timeout_s, chunk_bytes)
            break
        except _Transient as exc:
            if attempt == retries:
                kept = f"; {part.stat().st_size} bytes kept in {part}" if part.exists() else ""
                raise DownloadError(
                    f"{url}: {exc} (gave up after {retries + 1} attempts{kept}; rerun to resume)"
                ) from None
            wait = backoff_s * 2**attempt
            log.warning("%s: %s; retrying in %.1f s (resuming)", url, exc, wait)
            time.sleep(wait)
    if pin is None:
        got = sha256_of(part)
        part.unlink()
        raise DownloadError(
            f"{url}: its sha256 is not pinned in the config (still {PLACEHOLDER!r}). The file "
            f"served now has sha256 {got}; check it is the file you expect, put that value in "
            "the config and rerun."
        )
    got = pin.digest_of(part)
    if got != pin.value:
        part.unlink()
        raise DownloadError(
            f"{url}: checksum mismatch: expected {pin.name} {pin.value}, got {got}; "
            "the partial download was deleted"
        )
    part.chmod(0o644)
    os.replace(part, dest)
    return dest
