"""Content fingerprints of a training run (avtrust.train.fingerprint) and the run's
config hash / resume state keyed by them (make_spec, prepare_state)."""

from __future__ import annotations

import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from training_helpers import CPU_JOB

from avtrust.errors import ConfigError
from avtrust.models import registry
from avtrust.train import checkpoint, fingerprint
from avtrust.train.config import job_settings
from avtrust.train.job import make_spec

TRAINING = {
    "model": "omni",
    "methods": ["cavpref"],
    **CPU_JOB,
    "defaults": {"max_steps": 1, "batch_size": 1, "lora": {"enabled": True}},
    "cavpref": {},
}


def write(path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def media(tmp_path):
    return {
        name: write(tmp_path / "media" / f"{name}.mp4", name.encode() * 100)
        for name in ("clip", "video_bad", "audio_bad")
    }


def pair(media, **change) -> dict:
    row = {
        "id": "p0",
        "task": "MVIT",
        "media_path": str(media["clip"]),
        "question": "What is playing?",
        "options": ["a violin", "Mismatch in audio and video"],
        "chosen": "Mismatch in audio and video",
        "rejected": "a violin",
        "video_corrupted_path": str(media["video_bad"]),
        "audio_corrupted_path": str(media["audio_bad"]),
        "eta": 1.0,
        "gamma": 0.0,
        "beta_text": 0.3,
        "beta_video": 0.5,
        "beta_audio": 0.7,
    }
    return {**row, **change}


def test_file_digest_is_size_and_sha256_and_sees_a_rewrite_in_place(tmp_path):
    f = write(tmp_path / "a.bin", b"abc")
    assert fingerprint.file_digest(f) == (
        "3:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    write(tmp_path / "a.bin", b"abd")  # same size, same name, other bytes
    assert fingerprint.file_digest(f).startswith(
        "3:"
    ) and "ba7816bf" not in fingerprint.file_digest(f)
    with pytest.raises(ConfigError, match="missing.mp4.*not found"):
        fingerprint.file_digest(tmp_path / "missing.mp4")


def test_rows_are_keyed_by_their_values_and_the_content_of_their_media(tmp_path, media):
    base = fingerprint.rows_fingerprint([pair(media)])
    assert fingerprint.rows_fingerprint([pair(media)]) == base
    assert fingerprint.rows_fingerprint([pair(media, chosen="a violin")]) != base
    assert fingerprint.rows_fingerprint([pair(media, eta=0.0)]) != base
    # Reference log-probs stored as columns do not change the key of what they came from.
    assert fingerprint.rows_fingerprint([{**pair(media), "ref_chosen": -3.0}]) == base
    # The same bytes under another folder: same key (paths do not count) ...
    moved = tmp_path / "moved"
    shutil.copytree(tmp_path / "media", moved)
    elsewhere = {k: moved / v.name for k, v in media.items()}
    assert fingerprint.rows_fingerprint([pair(elsewhere)]) == base
    # ... another corrupted clip under the same name: another key.
    write(media["video_bad"], b"re-rendered" * 100)
    assert fingerprint.rows_fingerprint([pair(media)]) != base
    with pytest.raises(ConfigError, match="gone.mp4"):
        fingerprint.rows_fingerprint([pair(media, audio_corrupted_path=str(tmp_path / "gone.mp4"))])


def test_model_fingerprint_covers_every_weight_file_and_follows_a_local_manifest(tmp_path):
    model = tmp_path / "model"
    write(model / "model.safetensors", b"w" * 64)
    write(model / "config.json", b"{}")
    base = fingerprint.model_fingerprint(model)
    write(model / ".cache" / "download.lock", b"timestamp")  # hidden: left out
    assert fingerprint.model_fingerprint(model) == base
    write(model / "model.safetensors", b"v" * 64)
    assert fingerprint.model_fingerprint(model) != base
    write(model / "model.safetensors", b"w" * 64)
    write(model / "model-00002-of-00002.safetensors", b"x")
    assert fingerprint.model_fingerprint(model) != base
    # A prepared folder of a local model: the weights are in the folder it points to.
    prepared = tmp_path / "prepared"
    manifest = {"name": "omni", "adapter": "qwen2_5_omni_thinker", "path": str(model)}
    write(prepared / registry.MANIFEST, json.dumps(manifest).encode())
    assert fingerprint.model_fingerprint(prepared) == fingerprint.model_fingerprint(model)
    with pytest.raises(ConfigError, match="nowhere.*model folder not found"):
        fingerprint.model_fingerprint(tmp_path / "nowhere")


def spec(tmp_path, pairs, model_dir):
    return make_spec(
        job=job_settings(TRAINING, "cavpref", seed=1),
        base_dir=model_dir,
        inputs={"pairs": pairs},
        state_dir=tmp_path / "state",
        outputs={"model": tmp_path / "out" / "model"},
    )


def test_run_hash_changes_with_pairs_rewritten_in_place_or_other_weights(tmp_path, media):
    pairs = tmp_path / "pairs.parquet"
    pq.write_table(pa.Table.from_pylist([pair(media)]), pairs)
    model = tmp_path / "model"
    write(model / "model.safetensors", b"w" * 64)
    first = spec(tmp_path, pairs, model)["config_hash"]
    assert spec(tmp_path, pairs, model)["config_hash"] == first
    # State of the first run: a checkpoint to resume from.
    state = tmp_path / "state"
    assert checkpoint.prepare_state(state, first) is None
    write(state / "checkpoint-2" / "trainer_state.json", b"{}")
    assert checkpoint.prepare_state(state, first) == str(state / "checkpoint-2")

    # The same path, another y_w: another hash, and the stale state is discarded.
    pq.write_table(pa.Table.from_pylist([pair(media, chosen="a violin")]), pairs)
    second = spec(tmp_path, pairs, model)["config_hash"]
    assert second != first
    assert checkpoint.prepare_state(state, second) is None
    assert not (state / "checkpoint-2").exists()

    # The same model path, other weights: another hash again.
    write(state / "checkpoint-4" / "trainer_state.json", b"{}")
    write(model / "model.safetensors", b"v" * 64)
    third = spec(tmp_path, pairs, model)["config_hash"]
    assert third not in (first, second)
    assert checkpoint.prepare_state(state, third) is None

    # Moving the inputs keeps the hash: it is the content that counts.
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    shutil.copy2(pairs, moved / "pairs.parquet")
    shutil.copytree(model, moved / "model")
    assert spec(tmp_path, moved / "pairs.parquet", moved / "model")["config_hash"] == third
