"""The workflow on real-format data from every source: local, http, youtube, compose, import.

One run builds the questions of all 11 tasks from
- MUSIC-AVQA as a ``local`` folder of generated videos with the fixture QA file and solo
  list (tests/data/music_avqa), and AV-ConfuseBench scenes ``compose``d from its solos;
- AVQA as a ``local`` folder with the fixture ``val_qa.json``;
- AudioSet by ``youtube``: the fixture segment CSV and ontology downloaded over ``http``
  with their sha256 from a server on 127.0.0.1, the clips cut by yt-dlp from videos it
  serves (one video id is not served: a recorded failure);
- the m2 sounds by ``http`` (files with pinned sha256).
A second run imports the official benchmark files of tests/data/official.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile
import yaml
from conftest import REPO, run_snakemake
from generated_media import MUSIC_AVQA_VIDEOS, make_clip
from generated_media import SAMPLE_RATE as SR

from avtrust.bench.samples import SAMPLE_SCHEMA
from avtrust.media.probe import probe
from avtrust.media.synthesis import catalog, synthesize_audio

pytestmark = pytest.mark.workflow

DATA = REPO / "tests" / "data"
MUSIC = MUSIC_AVQA_VIDEOS
AVQA = {  # video_name -> the source it shows (the fixture's answers)
    "-HG3Omg_89c_000030": "dog",
    "aB3dE5fG7hI_000012": "bell",
    "Zz9_yX8-wV7_000000": "siren",
    "k2LmN4oP6qR_000045": "engine",
    "S1tU3vW5xY7_000100": "rooster",
    "Qq0Ww1Ee2Rr_000007": "clock",
}
UNSERVED = "-7JR0UZQ2uo"  # in eval_segments.csv, but the server has no video for it
TASKS = {
    "avtrustbench": ["MCIT", "ICIT", "MVIT", "MAIT", "COT-Stitch", "COT-Swap", "CAT", "MAT", "MVT"],
    "avconfusebench": ["m1", "m2"],
}


def clip(path: Path, sources: list[str], seed: int, duration: float = 1.5, fps: int = 4) -> Path:
    return make_clip(path, sources, seed, duration=duration, fps=fps, width=32, height=24)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def base_config() -> dict:
    """The embedded default without its datasets and tasks (sections of other stages kept)."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config.pop("corpus", None)
    config["index"]["workers"] = 2
    config["benchmark"].update(avtrustbench={}, avconfusebench={}, shards=1, workers_per_shard=1)
    return config


@pytest.fixture(scope="module")
def user_data(tmp_path_factory):
    """The folders a user holds: MUSIC-AVQA and AVQA videos, official-release media."""
    root = tmp_path_factory.mktemp("user")
    for i, (vid, sources) in enumerate(MUSIC.items()):
        clip(root / "music" / f"{vid}.mp4", sources, 10 + i)
    for i, (name, source) in enumerate(AVQA.items()):
        clip(root / "avqa" / f"{name}.mp4", [source], 20 + i)
    return root


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The 127.0.0.1 server: AudioSet annotations and videos, environmental sounds."""
    from local_http import Behaviour, LocalServer

    root = tmp_path_factory.mktemp("served")
    long_video = clip(root / "long.mp4", ["dog", "bell"], 3, duration=112.0, fps=2).read_bytes()
    files = {
        "/as/eval_segments.csv": (DATA / "audioset" / "eval_segments.csv").read_bytes(),
        "/as/ontology.json": (DATA / "audioset" / "ontology.json").read_bytes(),
    }
    for line in files["/as/eval_segments.csv"].decode().splitlines():
        ytid = line.split(",")[0]
        if not line.startswith("#") and ytid != UNSERVED:
            files[f"/yt/{ytid}.mp4"] = long_video
    sounds = []
    cat, rng = catalog(), np.random.default_rng(5)
    for name in ("wind", "bird", "rain", "drill", "thunder"):
        path = root / f"{name}.wav"
        soundfile.write(path, synthesize_audio(cat[name], 1.0, SR, rng), SR, subtype="PCM_16")
        files[f"/sounds/{name}.wav"] = path.read_bytes()
        sounds.append((name, sha(files[f"/sounds/{name}.wav"])))
    with LocalServer(Behaviour(files=files)) as server:
        server.sounds = sounds
        yield server


def real_config(user: Path, server) -> dict:
    config = base_config()
    as_files = server.behaviour.files
    config["datasets"] = {
        "music_avqa": {
            "format": "music_avqa",
            "source": "local",
            "path": str(user / "music"),
            "annotations": [
                {"path": str(DATA / "music_avqa" / "avqa-test.json")},
                {"path": str(DATA / "music_avqa" / "MUSIC_solo_videos.json")},
            ],
        },
        "music_avqa_scenes": {
            "format": "music_avqa",
            "source": "compose",
            "from": "music_avqa",
            "scenes": 6,
            "duration_s": 1.0,
            "tile_width": 32,
            "tile_height": 24,
            "fps": 4,
        },
        "avqa": {
            "format": "avqa",
            "source": "local",
            "path": [str(user / "avqa")],
            "annotations": [{"path": str(DATA / "avqa" / "val_qa.json")}],
        },
        "audioset": {
            "format": "audioset",
            "source": "youtube",
            "annotations": [
                {"url": server.url(p), "sha256": sha(as_files[p])}
                for p in ("/as/eval_segments.csv", "/as/ontology.json")
            ],
            "url_template": server.url("/yt/{id}.mp4"),
            "shards": 2,
            "sleep_s": 0,
            "retries": 1,
            "backoff_s": 0,
        },
        "sounds": {
            "format": "folder",
            "source": "http",
            "files": [
                {"url": server.url(f"/sounds/{n}.wav"), "sha256": h, "path": f"{n}/{n}_0.wav"}
                for n, h in server.sounds
            ],
        },
    }
    config["benchmark"]["avtrustbench"] = {
        **{t: {"samples": 4, "dataset": "avqa"} for t in ("MCIT", "ICIT", "MVIT", "MAIT")},
        **{t: {"samples": 3, "dataset": "audioset"} for t in ("COT-Stitch", "COT-Swap", "CAT")},
        **{t: {"samples": 4, "dataset": "music_avqa"} for t in ("MAT", "MVT")},
    }
    config["benchmark"]["avconfusebench"] = {
        "m1": {"samples": 4, "dataset": "music_avqa_scenes", "min_instruments": 2},
        "m2": {
            "samples": 5,
            "dataset": "music_avqa_scenes",
            "sounds": "sounds",
            "sound_types": ["wind", "bird", "rain", "drill", "thunder"],
            "snr_db": [None],
        },
    }
    return config


@pytest.fixture(scope="module")
def real_run(tmp_path_factory, user_data, served):
    workdir = tmp_path_factory.mktemp("real")
    config = workdir.parent / f"{workdir.name}.yaml"
    config.write_text(yaml.safe_dump(real_config(user_data, served), sort_keys=False))
    before = sorted(str(p.relative_to(user_data)) for p in user_data.rglob("*"))
    plans = [f"results/plan/{b}/{t}.parquet" for b, ts in TASKS.items() for t in ts]
    m1 = "results/bench/avconfusebench/m1.parquet"
    proc = run_snakemake(workdir, "--cores", "2", *plans, m1, config=config)
    after = sorted(str(p.relative_to(user_data)) for p in user_data.rglob("*"))
    assert before == after, "the user's folders were written to"
    return workdir, proc


def plan_rows(workdir: Path, bench: str, task: str) -> list[dict]:
    return pq.read_table(workdir / "results" / "plan" / bench / f"{task}.parquet").to_pylist()


def test_every_task_is_planned_from_real_format_data(real_run):
    workdir, _ = real_run
    for bench, tasks in TASKS.items():
        for task in tasks:
            rows = plan_rows(workdir, bench, task)
            assert rows, f"{bench}/{task} planned no sample"
            for r in rows:
                assert all(s for s in r["source_ids"]) and r["question"]
                if r["options"]:
                    assert r["options"][r["answer_index"]] == r["answer"]
    assert {r["source_ids"][0] for r in plan_rows(workdir, "avtrustbench", "MCIT")} <= set(AVQA)
    assert {r["source_ids"][0] for r in plan_rows(workdir, "avtrustbench", "MAT")} <= set(MUSIC)
    downloaded = {
        r["clip_id"]
        for r in pq.read_table(workdir / "results/manifest/audioset.parquet").to_pylist()
    }
    for r in plan_rows(workdir, "avtrustbench", "COT-Stitch"):
        assert set(r["source_ids"]) <= downloaded
    assert {r["sound_type"] for r in plan_rows(workdir, "avconfusebench", "m2")} == {
        "wind",
        "bird",
        "rain",
        "drill",
        "thunder",
    }


@pytest.mark.parametrize(
    ("task", "dataset"),
    [("MVIT", "avqa"), ("MAIT", "avqa"), ("COT-Stitch", "audioset"), ("COT-Swap", "audioset")],
)
def test_pairs_of_real_clips_share_no_label(real_run, task, dataset):
    workdir, _ = real_run
    manifest = pq.read_table(workdir / "results" / "manifest" / f"{dataset}.parquet")
    labels = {r["clip_id"]: set(r["labels"]) for r in manifest.to_pylist()}
    for r in plan_rows(workdir, "avtrustbench", task):
        first, second = (labels[c] for c in r["source_ids"])
        assert first and second and not first & second, r["source_ids"]


def test_missing_and_undownloadable_clips_are_rejects_with_reasons(real_run):
    workdir, _ = real_run
    manifest = workdir / "results" / "manifest"
    music = pq.read_table(manifest / "music_avqa.rejects.parquet").to_pylist()
    assert [(r["clip_id"], r["reason"]) for r in music] == [
        ("00000099", "listed in the annotations but no media file found")
    ]
    assert "00000099" in (workdir / "resources/raw/music_avqa/MISSING.txt").read_text()
    aset = pq.read_table(manifest / "audioset.rejects.parquet").to_pylist()
    assert [r["clip_id"] for r in aset] == [f"{UNSERVED}_000005"]
    assert "download failed: unavailable" in aset[0]["reason"] and "404" in aset[0]["reason"]
    failures = pq.read_table(workdir / "resources/raw/audioset/download_failures.parquet")
    assert failures.column("ytid").to_pylist() == [UNSERVED]
    ok = pq.read_table(manifest / "audioset.parquet").to_pylist()
    assert len(ok) == 8 and all(r["duration"] == pytest.approx(10.0, abs=0.6) for r in ok)
    assert {lab for r in ok for lab in r["labels"]} >= {"Dog", "Bell", "Siren"}


def test_m1_is_built_from_composed_scenes(real_run):
    workdir, _ = real_run
    table = pq.read_table(workdir / "results/bench/avconfusebench/m1.parquet")
    assert table.schema == SAMPLE_SCHEMA and table.num_rows == 4
    scenes = json.loads(
        (workdir / "resources/raw/music_avqa_scenes/annotations/scenes.json").read_text()
    )
    by_id = {s["video_id"]: s for s in scenes}
    for r in table.to_pylist():
        scene = by_id[r["source_ids"][0]]
        assert (
            r["instruments"] == scene["instruments"] and r["muted_instrument"] in r["instruments"]
        )
        assert r["has_audio"] and r["has_video"] and (workdir / r["media_path"]).is_file()


def test_each_fetch_job_logs_and_writes_only_under_the_workflow_folders(real_run):
    workdir, _ = real_run
    assert sorted(p.name for p in workdir.iterdir()) == [
        ".snakemake",
        "logs",
        "resources",
        "results",
    ]
    logs = workdir / "logs" / "fetch"
    for name in ("music_avqa", "avqa", "sounds", "music_avqa_scenes", "audioset"):
        assert (logs / f"{name}.log").is_file()
    assert "1 of 7 clips" in (logs / "music_avqa.log").read_text()
    assert {p.name for p in (logs / "audioset").iterdir()} == {
        "list.log",
        "shard-0.log",
        "shard-1.log",
    }
    # Downloads are cached for reruns; the raw folders link to them.
    assert len(list((workdir / "resources/downloads/audioset/clips").iterdir())) == 8
    assert (workdir / "resources/downloads/sounds/http/wind/wind_0.wav").is_file()


# ----------------------------------------------------------------------------- import


def import_config(user: Path, media: Path) -> dict:
    config = base_config()
    official = DATA / "official"
    config["datasets"] = {"unused": {"format": "folder", "source": "local", "path": str(user)}}
    # no QA dataset in this configuration, so no RL-CoMM training questions either
    config["scoring"]["rlcomm"]["questions"]["datasets"] = []
    trust, confuse = official / "AVTrustBench", official / "AVConfuseBench"

    def entry(path: Path, folder: Path) -> dict:
        return {"json": str(path), "media": str(folder)}

    config["benchmark"]["import"] = {
        "avtrustbench": {
            "MAT": entry(trust / "MAT/music_avqa/instruct_test_MAT.json", user / "music"),
            "MVIT": entry(trust / "MVIT/avqa/instruct_test_MVIT.json", user / "avqa"),
            "COT-Stitch": entry(trust / "COT-Stitch/instruct_test_COT_Stitch.json", media),
        },
        "avconfusebench": {
            "m1": entry(confuse / "avconfusebench_test_m1.json", media),
            "m2": entry(confuse / "avconfusebench_test_m2.json", media),
        },
    }
    return config


@pytest.fixture(scope="module")
def import_run(tmp_path_factory, user_data):
    media = tmp_path_factory.mktemp("official_media")
    clip(media / "--PJHxphWEs_000030.mp4", ["dog"], 40)
    clip(media / "-0RWZT-miFs_000000.mp4", ["bell"], 41)
    for i, instruments in enumerate([["violin", "cello"], ["trumpet", "flute", "cello"]]):
        clip(media / f"00000{i + 1}.mp4", instruments, 42 + i)  # 000003 is missing
    for i, sound in enumerate(["thunderstorm", "bird", "wind"]):
        clip(media / f"combined_00000{i + 1}_{sound}.mp4", ["violin", "cello"], 50 + i)
    workdir = tmp_path_factory.mktemp("imported")
    config = workdir.parent / f"{workdir.name}.yaml"
    config.write_text(yaml.safe_dump(import_config(user_data, media), sort_keys=False))
    targets = [
        *(f"results/bench/avtrustbench/{t}.parquet" for t in ("MAT", "MVIT", "COT-Stitch")),
        *(f"results/bench/avconfusebench/{t}.parquet" for t in ("m1", "m2")),
        "results/bench/official/AVConfuseBench/avconfusebench_test_m1.json",
    ]
    run_snakemake(workdir, "--cores", "2", *targets, config=config)
    return workdir


def bench_rows(workdir, bench, task, rejects=False):
    name = f"{task}.rejects.parquet" if rejects else f"{task}.parquet"
    return pq.read_table(workdir / "results" / "bench" / bench / name).to_pylist()


def test_official_files_become_sample_tables(import_run):
    mat = bench_rows(import_run, "avtrustbench", "MAT")
    assert [r["id"] for r in mat] == ["MAT-000000", "MAT-000001"]
    assert mat[0]["options"] == ["one", "two", "three", "Audio is missing"]
    assert mat[0]["answer"] == "Audio is missing" and mat[1]["answer_index"] == 1
    assert all(r["has_video"] and not r["has_audio"] for r in mat)  # audio stripped
    (missing,) = bench_rows(import_run, "avtrustbench", "MAT", rejects=True)
    assert missing["id"] == "MAT-000002"  # its clip 00000042 is not in the media folder
    (mvit,) = bench_rows(import_run, "avtrustbench", "MVIT")
    assert mvit["source_ids"] == ["-HG3Omg_89c_000030", "aB3dE5fG7hI_000012"]
    assert probe(import_run / mvit["media_path"]).has_audio
    (cot,) = bench_rows(import_run, "avtrustbench", "COT-Stitch")
    assert probe(import_run / cot["media_path"]).duration == pytest.approx(3.0, abs=0.2)
    m1 = bench_rows(import_run, "avconfusebench", "m1")
    assert [r["muted_instrument"] for r in m1] == ["violin", "flute"]
    assert [r["category"] for r in m1] == ["two", "three"]
    assert len(bench_rows(import_run, "avconfusebench", "m1", rejects=True)) == 1  # 000003
    m2 = bench_rows(import_run, "avconfusebench", "m2")
    assert [r["sound_type"] for r in m2] == ["thunder", "bird", "wind"]  # thunderstorm mapped
    assert all(r["answer"].startswith("Based on the video") and r["options"] == [] for r in m2)


def test_imported_m1_exports_back_to_the_official_layout(import_run):
    exported = import_run / "results/bench/official/AVConfuseBench/avconfusebench_test_m1.json"
    original = json.loads(
        (DATA / "official/AVConfuseBench/avconfusebench_test_m1.json").read_text()
    )
    assert json.loads(exported.read_text()) == original[:2]  # 000003 had no video
