"""CAVPref on the tiny model with 2 processes (accelerate launch, gloo) vs 1 process at
the same global batch, and a run killed after a checkpoint that resumes to the same end."""

from __future__ import annotations

import json
import signal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from training_helpers import CPU_JOB, OMNI, RecordingLog, checkpoint_outputs, kill_after

from avtrust.models import registry
from avtrust.train.config import job_settings
from avtrust.train.curves import read_log
from avtrust.train.job import make_spec, train_job


def training(processes: int, batch_size: int, max_steps: int) -> dict:
    return {
        "model": "omni",
        "methods": ["cavpref"],
        **CPU_JOB,
        "processes": processes,
        "threads": 1,
        "defaults": {
            "learning_rate": 2e-2,
            "max_steps": max_steps,
            "batch_size": batch_size,
            "save_steps": 1,
            "lora": {"enabled": True, "r": 4, "alpha": 8, "targets": ["q_proj", "v_proj"]},
        },
        "cavpref": {"lambda_text": 1.0, "lambda_video": 1.0, "lambda_audio": 0.8},
    }


@pytest.fixture(scope="module")
def setup(tmp_path_factory, clips):
    root = tmp_path_factory.mktemp("procs")
    omni = registry.prepare(registry.spec_from_config("omni", OMNI), root / "omni", seed=3)
    c = {k: str(v.path) for k, v in clips.items()}
    rows = []
    for i, (clip, other) in enumerate([("violin", "cello"), ("cello", "violin")] * 2):
        rows.append(
            {
                "id": f"p{i}",
                "task": ("MVIT", "MAIT")[i % 2],
                "media_path": c[clip],
                "question": f"What is playing ({i})?",
                "options": ["a violin", "a cello", "Mismatch in audio and video"],
                "chosen": "Mismatch in audio and video",
                "rejected": "a violin" if clip == "cello" else "a cello",
                "video_corrupted_path": c[other],
                "audio_corrupted_path": c["piano_wide"],
                "eta": float(i % 2 == 0),
                "gamma": float(i % 2 == 1),
                "beta_text": 0.2 + 0.1 * i,
                "beta_video": 0.5,
                "beta_audio": 0.9 - 0.1 * i,
            }
        )
    pairs = root / "pairs.parquet"
    pq.write_table(pa.Table.from_pylist(rows), pairs)
    return root, omni, pairs


def spec_of(root, name, omni, pairs, cfg) -> dict:
    return make_spec(
        job=job_settings(cfg, "cavpref", 11),
        base_dir=omni,
        inputs={"pairs": pairs},
        outputs=checkpoint_outputs(root / name),
        state_dir=root / "state" / name,
    )


def test_two_processes_follow_the_one_process_loss_trajectory(setup):
    root, omni, pairs = setup
    one = spec_of(root, "one", omni, pairs, training(1, 2, 3))
    two = spec_of(root, "two", omni, pairs, training(2, 1, 3))
    train_job(one)
    train_job(two)
    a, b = read_log(one["outputs"]["jsonl"]), read_log(two["outputs"]["jsonl"])
    assert [r["step"] for r in a] == [r["step"] for r in b] == [1, 2, 3]  # rank 0 logs once
    for ra, rb in zip(a, b, strict=True):
        assert rb["loss"] == pytest.approx(ra["loss"], rel=1e-4, abs=1e-5)
        assert rb["accuracy"] == pytest.approx(ra["accuracy"])
    assert json.loads((root / "two" / "metrics.json").read_text())["processes"] == 2
    # Only rank 0 wrote the outputs: the same files as the single-process run.
    assert sorted(p.name for p in (root / "two").iterdir()) == sorted(
        p.name for p in (root / "one").iterdir()
    )


def test_killed_run_resumes_from_its_last_checkpoint(setup):
    root, omni, pairs = setup
    cfg = training(1, 2, 5)
    plain = spec_of(root, "plain", omni, pairs, cfg)
    train_job(plain)

    killed = spec_of(root, "killed", omni, pairs, cfg)
    code = (
        "import json, sys; from avtrust.train.job import train_job; "
        "train_job(json.loads(sys.argv[1]))"
    )
    marker = root / "state" / "killed" / "checkpoint-2" / "trainer_state.json"
    status = kill_after(code, json.dumps(killed), marker)
    assert marker.exists() and status == -signal.SIGKILL
    assert not (root / "killed" / "metrics.json").exists()

    log = RecordingLog()
    train_job(killed, log)
    assert any(m.startswith("resume from") and "checkpoint-" in m for m in log.messages)
    a = read_log(plain["outputs"]["jsonl"])
    b = read_log(killed["outputs"]["jsonl"])
    assert [r["step"] for r in b] == [1, 2, 3, 4, 5]
    for ra, rb in zip(a, b, strict=True):
        assert rb["loss"] == pytest.approx(ra["loss"], rel=1e-5, abs=1e-6)
    ma = json.loads((root / "plain" / "metrics.json").read_text())
    mb = json.loads((root / "killed" / "metrics.json").read_text())
    assert mb["final_loss"] == pytest.approx(ma["final_loss"], rel=1e-5)
    assert mb["final_accuracy"] == ma["final_accuracy"]
    assert not (root / "state" / "killed").exists()  # cleaned after success
