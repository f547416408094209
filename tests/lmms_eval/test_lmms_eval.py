"""The lmms-eval task export, checked with lmms-eval 0.7.3 itself.

lmms-eval runs in its own virtual environment (``.venv-lmms/``, made by
``scripts/setup_lmms_eval.sh``, which ``.ci/run`` calls first). The test exports every
task of both benchmarks from a Hugging Face export with real clips, loads each through
lmms-eval's TaskManager, evaluates four tasks (multiple choice, audio-only, m1, m2)
with a model registered for the test (tests/lmms_eval/side_run.py), and compares
lmms-eval's scores with the workflow's own metrics on the same replies.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from avtrust import data_files
from avtrust.bench.export import export_hf
from avtrust.bench.lmms_eval import export_lmms_eval, task_name
from avtrust.bench.samples import BENCHES, SAMPLE_SCHEMA, wording
from avtrust.evaluate.judge import sound_match
from avtrust.evaluate.metrics import prediction_metrics
from avtrust.evaluate.parse import AnswerParser, is_correct
from avtrust.evaluate.prompts import prompt_for

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".venv-lmms"
SETUP = REPO / "scripts" / "setup_lmms_eval.sh"
SIDE_RUN = Path(__file__).with_name("side_run.py")
SAMPLES = 6  # per task, all in the test split
LIMIT = 5  # samples lmms-eval evaluates per task
RUN = ["MCIT", "MVT", "m1", "m2"]
WORDING = {"irrelevant_options": "Nothing here fits the clip"}  # a configured override


def lmms_python() -> Path:
    """The side environment's Python; created once (a few minutes), then reused."""
    python = VENV / "bin" / "python"
    if not (VENV / ".lmms-eval-0.7.3").exists():
        proc = subprocess.run(["bash", str(SETUP)], capture_output=True, text=True)
        if proc.returncode != 0:
            reason = f"lmms-eval 0.7.3 could not be installed: {(proc.stdout + proc.stderr)[-800:]}"
            if os.environ.get("AVTRUST_REQUIRE_LMMS"):  # .ci/run installed it already
                pytest.fail(reason)
            pytest.skip(reason)
    return python


def row(bench: str, task: str, i: int, media: str, has_video: bool) -> dict:
    open_ended = task == "m2"
    yes_no = task == "m1"
    options = None if open_ended else ["yes", "no"] if yes_no else None
    if options is None and not open_ended:
        options = ["a violin", "a cello", "a flute", WORDING["irrelevant_options"]]
    answer_index = None if open_ended else i % len(options)
    return {
        "id": f"{task}-{i}",
        "bench": bench,
        "task": task,
        "source_dataset": "music_avqa",
        "source_ids": [f"clip{i}"],
        "media_path": media,
        "has_audio": True,
        "has_video": has_video,
        "question": "Describe the video and the audio." if open_ended else "What is playing?",
        "options": options,
        "answer": None if open_ended else options[answer_index],
        "answer_index": answer_index,
        "category": "Audio-Visual",
        "seed": 7,
        "instruments": ["violin", "cello"],
        "muted_instrument": "violin" if bench == "avconfusebench" else None,
        "sound_type": ("wind", "bird", "rain")[i % 3] if open_ended else None,
        "snr_db": 10.0 if open_ended and i % 2 else None,
    }


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A workflow folder with both benchmarks' tasks (real clips: an audio-visual mp4,
    an audio-only m4a for MVT), their Hugging Face export and the lmms-eval tasks."""
    root = tmp_path_factory.mktemp("lmms")
    media = root / "results" / "media"
    media.mkdir(parents=True)
    av_clip, audio_clip = media / "clip.mp4", media / "audio.m4a"
    ffmpeg(
        *("-f", "lavfi", "-i", "testsrc=size=64x48:rate=8:duration=1"),
        *("-f", "lavfi", "-i", "sine=frequency=440:duration=1"),
        *("-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(av_clip)),
    )
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=220:duration=1.5", "-c:a", "aac", str(audio_clip))
    files, split = {}, []
    for bench, tasks in BENCHES.items():
        for task in tasks:
            clip = audio_clip if task == "MVT" else av_clip
            rows = [row(bench, task, i, str(clip), task != "MVT") for i in range(SAMPLES)]
            path = root / "bench" / f"{task}.parquet"
            path.parent.mkdir(exist_ok=True)
            pq.write_table(pa.Table.from_pylist(rows, schema=SAMPLE_SCHEMA), path)
            files[task] = str(path)
            split += [{"id": r["id"], "bench": bench, "task": task, "split": "test"} for r in rows]
    pq.write_table(pa.Table.from_pylist(split), root / "split.parquet")
    hf = root / "results" / "bench" / "hf"
    export_hf(files, str(hf), {}, str(root / "statistics.csv"), str(root / "split.parquet"))
    names = export_lmms_eval(
        str(hf),
        str(root / "results" / "bench" / "lmms_eval"),
        BENCHES,
        wording(WORDING),
        data_files.load("judge")["sound_keywords"],
        max_new_tokens=16,
        max_new_tokens_open=48,
    )
    return root, hf, names


@pytest.fixture(scope="module")
def lmms_run(exported):
    root, _, _ = exported
    python = lmms_python()
    out = root / "lmms.json"
    run = [task_name("avtrustbench" if t != "m1" and t != "m2" else "avconfusebench", t)
           for t in RUN]  # fmt: skip
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1",
           "HF_HOME": str(root / "hf_home"), "PYTHONPATH": ""}  # fmt: skip
    proc = subprocess.run(
        [str(python), str(SIDE_RUN), str(root / "results/bench/lmms_eval"), str(out), str(LIMIT),
         *run],  # fmt: skip
        capture_output=True, text=True, env=env, cwd=root,
    )  # fmt: skip
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    return json.loads(out.read_text())


def test_every_task_loads_through_the_task_manager(exported, lmms_run):
    _, _, names = exported
    assert len(names) == sum(len(t) for t in BENCHES.values())
    assert set(names) | set(BENCHES) <= set(lmms_run["all_tasks"])
    for name in names:
        assert lmms_run["loaded"][name] == SAMPLES, name
    for bench, tasks in BENCHES.items():  # the groups hold their benchmark's tasks
        assert lmms_run["loaded"][bench] == {task_name(bench, t): SAMPLES for t in tasks}


def project_metrics(hf: Path, task: str, samples: list[dict]) -> dict[str, float]:
    """The workflow's metrics (avtrust.evaluate) on the replies lmms-eval recorded."""
    docs = {r["id"]: r for r in pq.read_table(hf / f"data/{task}/test.parquet").to_pylist()}
    if task == "m2":
        keywords = [
            sound_match(s["reply"], docs[s["id"]]["sound_type"], docs[s["id"]]["instruments"],
                        docs[s["id"]]["snr_db"])
            for s in samples
        ]  # fmt: skip
        return {"audio_match": 100.0 * sum(keywords) / len(keywords)}
    parser = AnswerParser(WORDING)
    predictions = []
    for s in samples:
        doc = docs[s["id"]]
        parsed = parser.parse(s["reply"], doc["options"])
        predictions.append(
            {"model": "m", "bench": doc["bench"], "task": task, "mode": "generate",
             "kind": "choice", "category": None, "status": parsed.status,
             "parsed": parsed.answer,
             "correct": is_correct(parsed, doc["options"], doc["answer"], doc["answer_index"])}
        )  # fmt: skip
    return {r["metric"]: r["value"] for r in prediction_metrics(predictions)}


@pytest.mark.parametrize("task", RUN)
def test_lmms_eval_scores_are_the_workflows_metrics(exported, lmms_run, task):
    _, hf, _ = exported
    bench = next(b for b, ts in BENCHES.items() if task in ts)
    name = task_name(bench, task)
    samples = lmms_run["samples"][name]
    assert sorted(s["doc_id"] for s in samples) == list(range(LIMIT))
    expected = project_metrics(hf, task, samples)
    scores = lmms_run["results"][name]
    metrics = {"m2": ["audio_match"], "m1": ["accuracy", "unparseable", "yes_rate"]}
    for metric in metrics.get(task, ["accuracy", "unparseable"]):
        assert scores[f"{metric},none"] == pytest.approx(expected[metric]), metric
    # the rotation of replies gives every task a score strictly between 0 and 100
    assert 0 < expected[metrics.get(task, ["accuracy"])[0]] < 100


def test_the_model_gets_every_clip(exported, lmms_run):
    clips = {c["id"]: c for c in lmms_run["clips"]}
    root, _, _ = exported
    assert clips["MCIT-0"]["path"] == str(root / "results" / "media" / "clip.mp4")
    assert clips["MVT-0"]["audio_seconds"] == pytest.approx(1.5, abs=0.1)  # decoded audio


def test_the_model_is_asked_as_the_workflow_asks(exported, lmms_run):
    _, hf, _ = exported
    for asked in lmms_run["prompts"]:
        task = asked["id"].rsplit("-", 1)[0]
        rows = pq.read_table(hf / f"data/{task}/test.parquet").to_pylist()
        doc = next(r for r in rows if r["id"] == asked["id"])
        assert asked["prompt"] == prompt_for(doc["question"], doc["options"])
        assert asked["max_new_tokens"] == (48 if task == "m2" else 16)
    assert {a["id"].rsplit("-", 1)[0] for a in lmms_run["prompts"]} == set(RUN)
