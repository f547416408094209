"""``source: http`` and annotation files by URL: pinned, resumable, nothing left on a mismatch.

Every test talks to a server started here on 127.0.0.1 (tests/local_http.py).
"""

from __future__ import annotations

import hashlib
import logging
import subprocess

import pytest
from local_http import Behaviour, LocalServer

from avtrust.datasets.download import fetch_annotations, prepare_http
from avtrust.datasets.download.http import PLACEHOLDER, download, git_blob_sha1_of, part_path
from avtrust.errors import DownloadError

DATA = bytes(range(256)) * 4000  # 1 MB, every byte value
SHA = hashlib.sha256(DATA).hexdigest()
FAST = {"backoff_s": 0.0, "chunk_bytes": 1 << 16}


@pytest.fixture
def server():
    with LocalServer(Behaviour(files={"/data.bin": DATA})) as s:
        yield s


def test_download_checks_and_keeps_the_file(server, tmp_path):
    dest = download(server.url("/data.bin"), tmp_path / "d" / "data.bin", SHA, **FAST)
    assert dest.read_bytes() == DATA and not part_path(dest).exists()
    # Already there with the pinned checksum: no request at all.
    before = len(server.behaviour.requests)
    assert download(server.url("/data.bin"), dest, SHA, **FAST) == dest
    assert len(server.behaviour.requests) == before


def test_download_resumes_a_partial_file_with_a_range_request(server, tmp_path):
    dest = tmp_path / "data.bin"
    part_path(dest).write_bytes(DATA[:300_000])
    download(server.url("/data.bin"), dest, SHA, **FAST)
    assert dest.read_bytes() == DATA
    assert server.behaviour.gets("/data.bin") == ["bytes=300000-"]


def test_an_interrupted_transfer_is_retried_from_where_it_stopped(server, tmp_path):
    server.behaviour.cut_once["/data.bin"] = 123_456
    server.behaviour.fail["/data.bin"] = 1  # and a 503 before that
    dest = download(server.url("/data.bin"), tmp_path / "data.bin", SHA, retries=3, **FAST)
    assert dest.read_bytes() == DATA
    assert server.behaviour.gets("/data.bin") == [None, None, "bytes=123456-"]


def test_a_server_ignoring_ranges_is_read_from_the_start(server, tmp_path):
    server.behaviour.ignore_range.add("/data.bin")
    dest = tmp_path / "data.bin"
    part_path(dest).write_bytes(b"garbage that must not stay in front")
    download(server.url("/data.bin"), dest, SHA, **FAST)
    assert dest.read_bytes() == DATA


def test_giving_up_keeps_the_part_for_the_next_run(server, tmp_path):
    server.behaviour.cut_once["/data.bin"] = 200_000
    server.behaviour.fail["/data.bin"] = 0
    dest = tmp_path / "data.bin"
    with pytest.raises(DownloadError, match="rerun to resume"):
        download(server.url("/data.bin"), dest, SHA, retries=0, **FAST)
    assert part_path(dest).stat().st_size == 200_000 and not dest.exists()
    download(server.url("/data.bin"), dest, SHA, retries=0, **FAST)  # the next run
    assert dest.read_bytes() == DATA


def test_checksum_mismatch_is_an_error_and_leaves_nothing(server, tmp_path):
    dest = tmp_path / "data.bin"
    part_path(dest).write_bytes(DATA[:1000])  # even a resumed part is removed
    with pytest.raises(DownloadError, match="checksum mismatch") as info:
        download(server.url("/data.bin"), dest, "0" * 64, **FAST)
    assert SHA in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_placeholder_checksum_prints_the_hash_to_pin(server, tmp_path):
    with pytest.raises(DownloadError, match=SHA):
        download(server.url("/data.bin"), tmp_path / "data.bin", PLACEHOLDER, **FAST)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DownloadError, match="placeholder"):
        download(f"https://{PLACEHOLDER}/x.json", tmp_path / "x.json", SHA, **FAST)


def test_not_found_and_bad_urls(server, tmp_path):
    with pytest.raises(DownloadError, match="404"):
        download(server.url("/nope.bin"), tmp_path / "n.bin", SHA, **FAST)
    with pytest.raises(DownloadError, match="only http"):
        download("file:///etc/passwd", tmp_path / "p", SHA, **FAST)
    with pytest.raises(DownloadError, match="64 lower-case hex"):
        download(server.url("/data.bin"), tmp_path / "d.bin", "ABC", **FAST)
    assert list(tmp_path.iterdir()) == []


def test_http_source_places_files_and_refuses_unsafe_paths(server, tmp_path):
    spec = {"files": [{"url": server.url("/data.bin"), "sha256": SHA, "path": "wind/gust.wav"}]}
    raw, cache = tmp_path / "raw", tmp_path / "cache"
    (placed,) = prepare_http("sounds", spec, raw, cache)
    assert placed == raw / "wind" / "gust.wav" and placed.read_bytes() == DATA
    assert (cache / "http" / "wind" / "gust.wav").is_file()
    for bad in ("../escape.wav", "/abs.wav", "a/../../b.wav", ".hidden/x.wav", "a;rm -rf.wav"):
        spec = {"files": [{"url": server.url("/data.bin"), "sha256": SHA, "path": bad}]}
        with pytest.raises(DownloadError, match="not a safe relative path"):
            prepare_http("sounds", spec, raw, cache)
    assert not (tmp_path / "escape.wav").exists()


def test_annotation_entries_by_url_and_path(server, tmp_path, caplog):
    local = tmp_path / "mine.json"
    local.write_text("[]")
    entries = [
        {"url": server.url("/data.bin"), "sha256": SHA, "name": "remote.bin"},
        {"path": str(local)},
    ]
    with caplog.at_level(logging.INFO):
        out = fetch_annotations(entries, tmp_path / "ann", tmp_path / "cache", what="x")
    assert [p.name for p in out] == ["remote.bin", "mine.json"]
    assert out[0].read_bytes() == DATA and out[1].read_text() == "[]"
    with pytest.raises(DownloadError, match="does not exist"):
        fetch_annotations(
            [{"path": str(tmp_path / "no.json")}], tmp_path / "a2", tmp_path, what="x"
        )
    with pytest.raises(DownloadError, match="two annotation files"):
        fetch_annotations([{"path": str(local)}] * 2, tmp_path / "a3", tmp_path, what="x")


def test_a_git_blob_id_pins_a_file_as_git_lists_it(server, tmp_path):
    # the id git itself gives the bytes (paper.yaml pins a file of a repository this way)
    (tmp_path / "blob.bin").write_bytes(DATA)
    blob = subprocess.run(
        ["git", "hash-object", str(tmp_path / "blob.bin")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert git_blob_sha1_of(tmp_path / "blob.bin") == blob
    entries = [{"url": server.url("/data.bin"), "git_blob_sha1": blob, "name": "remote.bin"}]
    out = fetch_annotations(entries, tmp_path / "ann", tmp_path / "cache", what="x")
    assert out[0].read_bytes() == DATA
    with pytest.raises(DownloadError, match=f"expected git blob sha1 {'0' * 40}, got {blob}"):
        download(server.url("/data.bin"), tmp_path / "x.bin", None, git_blob_sha1="0" * 40)
    assert not (tmp_path / "x.bin").exists() and not part_path(tmp_path / "x.bin").exists()
    with pytest.raises(DownloadError, match="not 40 lower-case hex"):
        download(server.url("/data.bin"), tmp_path / "x.bin", None, git_blob_sha1="abc")
