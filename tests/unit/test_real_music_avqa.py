"""Real MUSIC-AVQA: a local folder of videos, composed AV-ConfuseBench scenes, questions.

The user's folder holds generated solo videos named like the release's (``00000001.mp4``);
the annotations are the fixture files of tests/data/music_avqa in the real formats (QA
JSON and a MUSIC-style solo list). The chain is the workflow's: fetch (local) -> index ->
compose -> index -> plan (MAT, MVT, m1, m2) -> manipulate (m1).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from generated_media import MEDIA, MUSIC_AVQA_VIDEOS, SAMPLE_RATE, make_clip

from avtrust.bench.avconfusebench import m1_question
from avtrust.bench.plan import plan_task
from avtrust.bench.shards import run_shard
from avtrust.datasets.adapters import list_clips
from avtrust.datasets.compose import ComposeOptions, level_stems, plan_scenes, solo_pool
from avtrust.datasets.compose import compose as compose_scenes
from avtrust.datasets.download.local import prepare_local
from avtrust.datasets.index import MANIFEST_SCHEMA, index_dataset
from avtrust.errors import DownloadError, MediaError
from avtrust.io import write_parquet_atomic
from avtrust.media.ffmpeg import decode_audio, decode_audio_segment, decode_frames
from avtrust.media.probe import probe
from avtrust.media.synthesis import catalog

DATA = Path(__file__).resolve().parents[1] / "data"
VIDEOS = MUSIC_AVQA_VIDEOS
SPEC = {
    "path": None,
    "annotations": [
        {"path": str(DATA / "music_avqa" / "avqa-test.json")},
        {"path": str(DATA / "music_avqa" / "MUSIC_solo_videos.json")},
    ],
}
SCENES = {
    "scenes": 4,
    "instruments_per_scene": [2, 3],
    "duration_s": 1.0,
    "tile_width": 32,
    "tile_height": 24,
    "fps": 4,
}


def ncorr(a: np.ndarray, b: np.ndarray) -> float:
    n = min(len(a), len(b))
    a, b = a[:n].astype(np.float64), b[:n].astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


@pytest.fixture(scope="module")
def user_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("MUSIC-AVQA-videos-Real")
    for i, (vid, sources) in enumerate(VIDEOS.items()):
        make_clip(folder / f"{vid}.mp4", sources, 100 + i)
    (folder / "notes.txt").write_text("not a video")
    (folder / ".00000007.mp4").write_bytes(b"hidden, ignored")
    return folder


@pytest.fixture(scope="module")
def chain(user_folder, tmp_path_factory):
    """The workflow's chain in-process; returns its folders and files."""
    root = tmp_path_factory.mktemp("work")
    raw = root / "resources" / "raw" / "music_avqa"
    spec = {**SPEC, "path": str(user_folder)}
    cache = root / "resources" / "downloads" / "music_avqa"
    report = prepare_local("music_avqa", "music_avqa", spec, raw, cache)
    manifest, rejects = index_dataset("music_avqa", "music_avqa", str(raw), decode_check=True)
    manifests = {"music_avqa": root / "results" / "manifest" / "music_avqa.parquet"}
    write_parquet_atomic(manifests["music_avqa"], manifest)
    scenes_raw = root / "resources" / "raw" / "scenes"
    scenes = compose_scenes("scenes", manifests["music_avqa"], scenes_raw, SCENES, MEDIA, 7)
    scene_manifest, scene_rejects = index_dataset("scenes", "music_avqa", str(scenes_raw))
    manifests["scenes"] = root / "results" / "manifest" / "scenes.parquet"
    write_parquet_atomic(manifests["scenes"], scene_manifest)
    return {
        "root": root,
        "raw": raw,
        "report": report,
        "manifest": manifest,
        "rejects": rejects,
        "scenes_raw": scenes_raw,
        "scenes": scenes,
        "scene_manifest": scene_manifest,
        "scene_rejects": scene_rejects,
        "manifests": {k: str(v) for k, v in manifests.items()},
    }


def test_missing_folder_says_where_to_get_the_videos(tmp_path):
    raw, cache = tmp_path / "raw", tmp_path / "cache"
    with pytest.raises(DownloadError) as info:
        prepare_local(
            "music_avqa", "music_avqa", {**SPEC, "path": str(tmp_path / "no")}, raw, cache
        )
    message = str(info.value)
    assert "does not exist" in message and "gewu-lab.github.io/MUSIC-AVQA" in message
    assert "datasets.music_avqa.path" in message
    assert not raw.exists()
    (tmp_path / "empty").mkdir()
    empty = {**SPEC, "path": str(tmp_path / "empty")}
    with pytest.raises(DownloadError, match="no media files.*MUSIC-AVQA"):
        prepare_local("music_avqa", "music_avqa", empty, raw, cache)


def test_local_links_videos_and_counts_the_missing(chain, user_folder, caplog):
    report, raw = chain["report"], chain["raw"]
    assert report.linked == 6 and report.missing == ["00000099"] and report.listed == 7
    for vid in VIDEOS:
        link = raw / "videos" / f"{vid}.mp4"
        assert link.is_symlink() and link.resolve() == (user_folder / f"{vid}.mp4").resolve()
    assert sorted(p.name for p in (raw / "annotations").iterdir()) == [
        "MUSIC_solo_videos.json",
        "avqa-test.json",
    ]
    missing = (raw / "MISSING.txt").read_text()
    assert "1 of 7 clips" in missing and "00000099" in missing and "gewu-lab" in missing
    # The user's folder is only read.
    assert sorted(p.name for p in user_folder.iterdir()) == sorted(
        [f"{v}.mp4" for v in VIDEOS] + ["notes.txt", ".00000007.mp4"]
    )


def test_index_labels_solos_and_rejects_the_missing_clip(chain):
    rows = {r["clip_id"]: r for r in chain["manifest"].to_pylist()}
    assert set(rows) == set(VIDEOS)
    assert rows["00000001"]["labels"] == ["violin"] and rows["00000006"]["labels"] == []
    (reject,) = chain["rejects"].to_pylist()
    assert reject["clip_id"] == "00000099"
    assert reject["reason"] == "listed in the annotations but no media file found"


def test_solo_pool_and_scene_plans_are_seeded(tmp_path):
    pool = solo_pool_from(
        [("a", "violin", 5.0), ("b", "cello", 5.0), ("c", "flute", 0.5), ("d", "violin", 3.0)],
        tmp_path,
    )
    assert {k: [s.clip_id for s in v] for k, v in pool.items()} == {
        "cello": ["b"],
        "violin": ["a", "d"],
    }  # the 0.5 s flute is too short
    options = ComposeOptions(scenes=6, instruments_per_scene=(2, 3), duration_s=2.0)
    plans = plan_scenes(pool, options, 7, "x")
    assert plans == plan_scenes(pool, options, 7, "x") != plan_scenes(pool, options, 8, "x")
    for plan in plans:
        assert len(plan.instruments) == 2 == len(set(plan.instruments))  # only 2 usable
        assert plan.duration_s == 2.0
        for solo, offset in zip(plan.solos, plan.offsets, strict=True):
            assert 0 <= offset <= solo.duration - plan.duration_s
    with pytest.raises(MediaError, match="need solos of that many"):
        plan_scenes({"violin": pool["violin"]}, options, 7, "x")


def solo_pool_from(rows, folder: Path):
    """The solo pool of a manifest with (clip, instrument, duration) rows."""
    table = pa.Table.from_pylist(
        [
            {
                "clip_id": clip,
                "dataset": "d",
                "path": f"{clip}.mp4",
                "duration": duration,
                "has_audio": True,
                "has_video": True,
                "labels": [label],
                "stems": [],
            }
            for clip, label, duration in rows
        ],
        schema=MANIFEST_SCHEMA,
    )
    pq.write_table(table, folder / "m.parquet")
    return solo_pool(folder / "m.parquet")


def test_level_stems_equal_rms_and_no_clipping():
    rng = np.random.default_rng(0)
    stems, gains = level_stems([0.9 * rng.standard_normal(1000), 0.01 * rng.standard_normal(1000)])
    rms = [np.sqrt(np.mean(s.astype(np.float64) ** 2)) for s in stems]
    assert rms[0] == pytest.approx(rms[1], rel=1e-5)
    assert np.max(np.abs(np.sum(stems, axis=0))) <= 0.9 + 1e-6
    with pytest.raises(MediaError, match="silent"):
        level_stems([np.zeros(10), np.ones(10)])


def test_composed_scenes_have_exact_stems_and_tiles(chain):
    raw, scenes = chain["scenes_raw"], chain["scenes"]
    assert [s["video_id"] for s in scenes] == [f"scene_{i:06d}" for i in range(4)]
    on_disk = json.loads((raw / "annotations" / "scenes.json").read_text())
    assert on_disk == scenes
    colours = {
        name: np.array(catalog()[name].color) for name in ("violin", "cello", "flute", "trumpet")
    }
    solos = {r["clip_id"]: r for r in chain["manifest"].to_pylist()}
    for scene in scenes:
        k = len(scene["instruments"])
        assert 2 <= k <= 3 and len(set(scene["instruments"])) == k
        assert [solos[s]["labels"] for s in scene["sources"]] == [[i] for i in scene["instruments"]]
        video = raw / "videos" / f"{scene['video_id']}.mp4"
        info = probe(video)
        assert (info.width, info.height, info.fps) == (32 * k, 24, 4.0)
        assert info.duration == pytest.approx(1.0, abs=0.15)
        # The soundtrack is the sum of the stems; each stem is its solo's segment.
        stems = [decode_audio(raw / s, SAMPLE_RATE) for s in scene["stems"]]
        assert ncorr(decode_audio(video, SAMPLE_RATE), np.sum(stems, axis=0)) > 0.98
        for stem, source, offset in zip(stems, scene["sources"], scene["offsets"], strict=True):
            original = decode_audio_segment(solos[source]["path"], offset, 1.0, SAMPLE_RATE)
            assert ncorr(stem, original) > 0.98
        # Tile j shows instrument j's colour, and no other instrument's.
        frames = decode_frames(video, 32 * k, 24).astype(int)
        for j, name in enumerate(scene["instruments"]):
            tile = frames[:, :, 32 * j : 32 * (j + 1)]
            for other, colour in colours.items():
                near = (np.abs(tile - colour).max(axis=-1) < 40).mean()
                assert (near > 0.01) if other == name else (near < 0.005), (scene, j, other, near)
    # Scenes index cleanly, with instruments as labels and one stem each.
    assert chain["scene_rejects"].num_rows == 0
    entries = {e.clip_id: e for e in list_clips("music_avqa", raw)}
    for scene in scenes:
        assert entries[scene["video_id"]].labels == scene["instruments"]
        assert len(entries[scene["video_id"]].stems) == len(scene["instruments"])


def config(**tasks):
    return {
        "seed": 7,
        "datasets": {
            "music_avqa": {"format": "music_avqa", "source": "local"},
            "scenes": {"format": "music_avqa", "source": "compose", "from": "music_avqa"},
            "sounds": {"format": "folder", "source": "local"},
        },
        "benchmark": {"avtrustbench": {}, "avconfusebench": {}, **tasks},
    }


@pytest.mark.parametrize("task", ["MAT", "MVT"])
def test_missing_modality_questions_from_the_real_qa_file(chain, task):
    cfg = config(avtrustbench={task: {"samples": 6, "dataset": "music_avqa"}})
    plan = plan_task(
        "avtrustbench", task, cfg, chain["manifests"], {"music_avqa": str(chain["raw"])}
    )
    rows = plan.to_pylist()
    assert len(rows) == 6
    questions = {
        "How many musical instruments were heard throughout the video?",
        "Is the violin in the video always playing?",
        "How many types of musical instruments appeared in the entire video?",
        "Is this sound from the instrument in the video?",
        "Where is the flute?",
        "Which is the musical instrument that sounds at the same time as the trumpet?",
        "How many instruments are sounding in the video?",
        "What kind of musical instrument is on the left?",
        "Is the violin more rhythmic than the cello?",
        "Where is the first sounding instrument?",
    }
    for r in rows:
        assert r["question"] in questions and r["source_ids"][0] in VIDEOS
        assert r["answer"] == ("Audio is missing" if task == "MAT" else "Visual is missing")
        assert r["category"].split("/")[0] in ("Audio", "Visual", "Audio-Visual")


def test_m1_from_composed_scenes_mutes_exactly_one_stem(chain):
    cfg = config(avconfusebench={"m1": {"samples": 4, "dataset": "scenes", "min_instruments": 2}})
    plan = plan_task(
        "avconfusebench", "m1", cfg, chain["manifests"], {"scenes": str(chain["scenes_raw"])}
    )
    plan = plan.set_column(
        plan.schema.get_field_index("media_path"),
        "media_path",
        [[str(chain["root"] / p) for p in plan.column("media_path").to_pylist()]],
    )
    plan_path = chain["root"] / "m1.plan.parquet"
    write_parquet_atomic(plan_path, plan)
    results = run_shard(str(plan_path), 0, 1, MEDIA).to_pylist()
    assert all(r["ok"] for r in results), results
    scenes = {s["video_id"]: s for s in chain["scenes"]}
    for row, result in zip(plan.to_pylist(), results, strict=True):
        scene = scenes[row["source_ids"][0]]
        assert row["instruments"] == scene["instruments"] and row["answer"] == "no"
        assert row["question"] == m1_question(row["muted_instrument"])
        muted = scene["instruments"].index(row["muted_instrument"])
        stems = [decode_audio(chain["scenes_raw"] / s, SAMPLE_RATE) for s in scene["stems"]]
        kept = np.sum([s for i, s in enumerate(stems) if i != muted], axis=0)
        out = decode_audio(result["media_path"], SAMPLE_RATE)
        assert ncorr(out, kept) > 0.98 and abs(ncorr(out, stems[muted])) < 0.3


def test_unreadable_solo_leaves_its_scene_out(chain, tmp_path, caplog):
    table = pq.read_table(chain["manifests"]["music_avqa"])
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    clips, paths = table["clip_id"].to_pylist(), table["path"].to_pylist()
    paths = [str(broken) if c == "00000003" else p for c, p in zip(clips, paths, strict=True)]
    manifest = tmp_path / "m.parquet"
    write_parquet_atomic(
        manifest, table.set_column(table.schema.get_field_index("path"), "path", [paths])
    )
    spec = {**SCENES, "scenes": 6}
    with caplog.at_level(logging.WARNING):
        scenes = compose_scenes("scenes", manifest, tmp_path / "raw", spec, MEDIA, 7)
    plans = plan_scenes(solo_pool(manifest), ComposeOptions.from_config(spec), 7, "scenes")
    with_flute = {p.video_id for p in plans if "flute" in p.instruments}
    kept = {s["video_id"] for s in scenes}
    assert with_flute and not with_flute & kept and kept == {p.video_id for p in plans} - with_flute
    assert "left out" in caplog.text
