"""``source: youtube`` for real: yt-dlp (generic extractor) against a local HTTP server.

The server (127.0.0.1, tests/local_http.py) serves generated videos at
``/<YouTube id>.mp4``; the config's ``url_template`` points yt-dlp there instead of
YouTube's watch URL. Everything else is the production path: yt-dlp downloads (the
segment only, or the whole video), ffmpeg cuts the segment exactly, failures become
rows of the failures table, and the index names them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from generated_media import AUDIO_CODEC, MEDIA, SAMPLE_RATE, VIDEO_CODEC
from local_http import Behaviour, LocalServer

from avtrust.datasets import audioset
from avtrust.datasets.download import youtube
from avtrust.datasets.download.youtube import (
    SEGMENT_SCHEMA,
    YoutubeOptions,
    download_shard,
    gather,
    segments,
)
from avtrust.datasets.index import index_dataset
from avtrust.media.ffmpeg import decode_audio, encode_clip
from avtrust.media.probe import probe
from avtrust.media.synthesis import catalog, render_frames, synthesize_audio

DATA = Path(__file__).resolve().parents[1] / "data"
LENGTH_S = 6.0


def long_clip(path: Path, source: str, seed: int) -> bytes:
    """A LENGTH_S clip whose audio is a different source's sound every second.

    Every second sounds different, so a segment cut at the wrong place shows up in the
    comparison of its audio with the source's.
    """
    cat, rng = catalog(), np.random.default_rng(seed)
    names = ["violin", "cello", "flute", "trumpet", "clarinet", "piano"]
    audio = np.concatenate(
        [synthesize_audio(cat[names[i % 6]], 1.0, SAMPLE_RATE, rng) for i in range(int(LENGTH_S))]
    )
    frames = render_frames([cat[source]], LENGTH_S, 4, 32, 24, rng)
    encode_clip(
        path,
        frames,
        audio,
        fps=4,
        sample_rate=SAMPLE_RATE,
        video_codec=VIDEO_CODEC,
        audio_codec=AUDIO_CODEC,
    )
    return path.read_bytes()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    files = {
        "/goodvideo01.mp4": long_clip(root / "a.mp4", "dog", 1),
        "/goodvideo02.mp4": long_clip(root / "b.mp4", "bell", 2),
        "/flakyvideo.mp4": long_clip(root / "c.mp4", "siren", 3),
    }
    with LocalServer(Behaviour(files=files)) as s:
        s.sources = {"goodvideo01": root / "a.mp4"}
        yield s


def segment(ytid, start, end, clip_id=None):
    return {
        "clip_id": clip_id or audioset.clip_id(ytid, start),
        "ytid": ytid,
        "start_seconds": float(start),
        "end_seconds": float(end),
    }


ROWS = [
    segment("goodvideo01", 2.0, 3.5),
    segment("goodvideo02", 0.0, 1.0),
    segment("flakyvideo", 1.0, 2.0),
    segment("privatevid1", 0.0, 1.0),  # 404: unavailable
    segment("bad id;ls", 0.0, 1.0, clip_id="bad_id_000000"),  # not a YouTube id
    segment("goodvideo01", 0.0, 1.0, clip_id="../escape"),  # unsafe clip id
    segment("goodvideo02", 50.0, 51.0),  # past the end of the video
]


def options(server, **kw):
    return YoutubeOptions(
        url_template=server.url("/{id}.mp4"), sleep_s=0.0, backoff_s=0.0, retries=2, **kw
    )


def test_segments_from_the_real_annotation_formats():
    avqa = segments("avqa", DATA / "avqa", clip_s=10).to_pylist()
    assert [r["clip_id"] for r in avqa] == sorted(r["clip_id"] for r in avqa) and len(avqa) == 6
    first = next(r for r in avqa if r["clip_id"] == "-HG3Omg_89c_000030")
    assert (first["ytid"], first["start_seconds"], first["end_seconds"]) == ("-HG3Omg_89c", 30, 40)
    aset = segments("audioset", DATA / "audioset").to_pylist()
    assert len(aset) == 9
    row = next(r for r in aset if r["ytid"] == "1a2b3c4d5e6")
    assert (row["clip_id"], row["start_seconds"], row["end_seconds"]) == (
        "1a2b3c4d5e6_000100",
        100,
        110,
    )


def test_ytdlp_options_rate_limit_sections_and_no_cache(tmp_path):
    opts = youtube._ytdlp_options(YoutubeOptions(rate_limit="4M"), tmp_path, 30.0, 40.0)
    assert opts["ratelimit"] == 4 * 1024 * 1024 and opts["cachedir"] is False
    assert opts["force_keyframes_at_cuts"] is True and "download_ranges" in opts
    whole = youtube._ytdlp_options(YoutubeOptions(sections=False, rate_limit=None), tmp_path, 0, 1)
    assert "download_ranges" not in whole and "ratelimit" not in whole


@pytest.mark.parametrize("sections", [True, False], ids=["segment-only", "whole-video"])
def test_download_shard_records_failures_and_cuts_exact_segments(server, tmp_path, sections):
    server.behaviour.fail["/flakyvideo.mp4"] = 2  # two 503s, then it works
    table = pa.Table.from_pylist(ROWS, schema=SEGMENT_SCHEMA)
    cache = tmp_path / "cache"
    status = download_shard(table, 0, 1, cache, options(server, sections=sections), MEDIA)
    rows = {r["clip_id"]: r for r in status.to_pylist()}
    assert status.schema == youtube.STATUS_SCHEMA and len(rows) == len(ROWS)
    for clip in ("goodvideo01_000002", "goodvideo02_000000", "flakyvideo_000001"):
        assert rows[clip]["ok"] and rows[clip]["kind"] == "downloaded", rows[clip]
        info = probe(rows[clip]["path"])
        assert info.has_audio and info.has_video
        want = ROWS[[r["clip_id"] for r in ROWS].index(clip)]
        assert info.duration == pytest.approx(want["end_seconds"] - want["start_seconds"], abs=0.1)
    assert rows["flakyvideo_000001"]["attempts"] > 1
    assert rows["privatevid1_000000"]["kind"] == "unavailable"
    assert "404" in rows["privatevid1_000000"]["reason"]
    assert (
        rows["bad_id_000000"]["kind"] == "invalid"
        and "YouTube id" in rows["bad_id_000000"]["reason"]
    )
    assert rows["../escape"]["kind"] == "invalid" and "unsafe" in rows["../escape"]["reason"]
    assert not rows["goodvideo02_000050"]["ok"]
    assert not any("bad id" in p or "escape" in p for _, p, _ in server.behaviour.requests)
    assert sorted(p.name for p in (cache / "clips").iterdir()) == [
        "flakyvideo_000001.mp4",
        "goodvideo01_000002.mp4",
        "goodvideo02_000000.mp4",
    ]
    assert not (tmp_path / "escape.mp4").exists() and not any((cache / "tmp").iterdir())

    # The cut is the segment [2.0, 3.5) of the source, not a key frame earlier.
    cut = decode_audio(rows["goodvideo01_000002"]["path"], SAMPLE_RATE)
    source = decode_audio(server.sources["goodvideo01"], SAMPLE_RATE)
    lag = int(np.argmax(np.correlate(source[: 4 * SAMPLE_RATE], cut[: SAMPLE_RATE // 2])))
    assert abs(lag / SAMPLE_RATE - 2.0) < 0.05

    # A rerun downloads nothing again: cut clips are cached, unavailable videos recorded.
    before = len(server.behaviour.requests)
    again = {
        r["clip_id"]: r
        for r in download_shard(table, 0, 1, cache, options(server), MEDIA).to_pylist()
    }
    assert again["goodvideo01_000002"]["kind"] == "cached"
    assert again["privatevid1_000000"]["kind"] == "unavailable"
    assert "recorded earlier" in again["privatevid1_000000"]["reason"]
    new = [p for _, p, _ in server.behaviour.requests[before:]]
    assert "/goodvideo01.mp4" not in new and "/privatevid1.mp4" not in new


def test_shards_split_the_segments(server, tmp_path):
    table = pa.Table.from_pylist(ROWS[:2] + ROWS[3:4], schema=SEGMENT_SCHEMA)
    parts = [
        download_shard(table, k, 2, tmp_path / "cache", options(server), MEDIA) for k in (0, 1)
    ]
    ids = [r["clip_id"] for p in parts for r in p.to_pylist()]
    assert sorted(ids) == sorted(r["clip_id"] for r in table.to_pylist())
    with pytest.raises(ValueError):
        download_shard(table, 2, 2, tmp_path / "cache", options(server), MEDIA)


def test_gather_makes_the_raw_folder_and_the_index_names_failures(server, tmp_path):
    rows = [segment("goodvideo01", 0.0, 1.5), segment("privatevid1", 0.0, 1.0)]
    table = pa.Table.from_pylist(rows, schema=SEGMENT_SCHEMA)
    status = download_shard(table, 0, 1, tmp_path / "cache", options(server), MEDIA)
    shard = tmp_path / "shard0.parquet"
    pq.write_table(status, shard)
    annotations = tmp_path / "annotations"
    audioset.write_segments(
        [
            {
                "ytid": "goodvideo01",
                "start_seconds": 0.0,
                "end_seconds": 1.5,
                "labels": ["/m/0bt9lr"],
            },
            {
                "ytid": "privatevid1",
                "start_seconds": 0.0,
                "end_seconds": 1.0,
                "labels": ["/m/0395lw"],
            },
        ],
        annotations / "eval_segments.csv",
    )
    (annotations / "ontology.json").write_bytes((DATA / "audioset" / "ontology.json").read_bytes())
    raw = tmp_path / "raw"
    failures = gather(annotations, [shard], raw)
    assert failures.column("clip_id").to_pylist() == ["privatevid1_000000"]
    link = raw / "videos" / "goodvideo01_000000.mp4"
    assert link.is_symlink() and not Path(link.readlink()).is_absolute() and link.is_file()
    table = pq.read_table(raw / youtube.FAILURES_FILE).to_pylist()
    assert table[0]["kind"] == "unavailable" and table[0]["ytid"] == "privatevid1"
    manifest, rejects = index_dataset("aset", "audioset", str(raw), decode_check=True)
    assert manifest.column("clip_id").to_pylist() == ["goodvideo01_000000"]
    assert manifest.column("labels").to_pylist() == [["Dog"]]
    (reject,) = rejects.to_pylist()
    assert reject["clip_id"] == "privatevid1_000000"
    assert (
        "no media file found" in reject["reason"]
        and "download failed: unavailable" in reject["reason"]
    )


def test_prepare_list_fetches_annotations_and_applies_the_limit(tmp_path):
    spec = {"annotations": [{"path": str(DATA / "avqa" / "val_qa.json")}], "limit": 4}
    table = youtube.prepare_list("avqa", "avqa", spec, tmp_path / "ann", tmp_path / "cache")
    assert table.num_rows == 4 and (tmp_path / "ann" / "val_qa.json").is_file()
    with pytest.raises(youtube.DownloadError, match="avqa and audioset"):
        youtube.prepare_list("m", "music_avqa", spec, tmp_path / "ann2", tmp_path / "cache")


def test_unparseable_avqa_names_fail_as_invalid(tmp_path):
    record = {"id": 0, "video_name": "no-start-second", "video_id": 1, "question_text": "Q?"}
    record.update(multi_choice=["a", "b"], answer=0, question_relation="Both")
    records = [{**record, "question_type": "Which"}]
    (tmp_path / "val_qa.json").write_text(json.dumps(records))
    table = segments("avqa", tmp_path)
    status = download_shard(table, 0, 1, tmp_path / "cache", YoutubeOptions(sleep_s=0), MEDIA)
    (row,) = status.to_pylist()
    assert row["kind"] == "invalid" and "not a YouTube id" in row["reason"]
