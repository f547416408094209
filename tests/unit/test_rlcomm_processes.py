"""RL-CoMM GRPO stage (grpo_acc + an extra reward) on the tiny model: 2 processes
(accelerate launch, gloo) vs 1 process at the same global batch, and a stage killed
after a checkpoint that resumes to the same end.

The tiny random policy never writes the answer format, so r_format and r_acc are 0;
the extra reward (``training_helpers.token_residue``, loaded from the stage's
``extra_rewards`` like a user's own reward) differs between completions, so the
advantages are not all zero and the weights move. (The built-in rewards with non-zero
values: ``test_rlcomm_nonzero_rewards.py``.)
"""

from __future__ import annotations

import json
import signal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from training_helpers import (
    COMPLETIONS_ENV,
    CPU_JOB,
    OMNI,
    RecordingLog,
    checkpoint_outputs,
    kill_after,
    python_path_env,
    recorded_completions,
)

from avtrust.errors import ConfigError
from avtrust.models import registry
from avtrust.train.checkpoint import load_policy
from avtrust.train.curves import read_log
from avtrust.train.fingerprint import model_fingerprint
from avtrust.train.job import make_spec, train_job
from avtrust.train.rlcomm import stage_settings

STEPS = 3
REWARD = "training_helpers:token_residue"


def rlcomm(processes: int, batch_size: int, **grpo) -> dict:
    return {
        **CPU_JOB,
        "threads": 1,
        "processes": processes,
        "policy": "omni",
        "lora": {"enabled": True, "r": 4, "alpha": 8, "dropout": 0.0, "targets": ["q_proj"]},
        "grpo_acc": {
            "learning_rate": 5e-2,
            "max_steps": STEPS,
            "batch_size": batch_size,  # completions per process: the global batch is 4
            "save_steps": 1,
            "group_size": 2,
            "max_completion_length": 4,
            "temperature": 1.0,
            "omega": 0.8,
            "seeded_generation": True,
            "extra_rewards": [REWARD],
            **grpo,
        },
    }


def spec_for(root, omni, data, name, section) -> dict:
    return make_spec(
        job=stage_settings(section, "grpo_acc", 11),
        base_dir=omni,
        inputs={"data": data},
        outputs=checkpoint_outputs(root / name),
        state_dir=root / "state" / name,
    )


@pytest.fixture(scope="module")
def setup(tmp_path_factory, clips):
    """The tiny policy, 4 training samples, and the uninterrupted 1-process run."""
    root = tmp_path_factory.mktemp("rlcomm_procs")
    omni = registry.prepare(registry.spec_from_config("omni", OMNI), root / "omni", seed=3)
    rows = [
        {
            "id": f"s{i}",
            "media_path": str(clips[clip].path),
            "prompt": f"Which instrument is playing? ({i})",
            "answer": clip,
            "options": ["violin", "cello"],
            "reference_embedding": [1.0, 0.0],
        }
        for i, clip in enumerate(["violin", "cello", "cello", "violin"])
    ]
    data = root / "reference.parquet"
    pq.write_table(pa.Table.from_pylist(rows), data)
    with pytest.MonkeyPatch.context() as mp:
        # the launched processes import the extra reward from the tests folder
        mp.setenv("PYTHONPATH", python_path_env())
        mp.setenv(COMPLETIONS_ENV, str(root / "completions" / "one"))
        one = spec_for(root, omni, data, "one", rlcomm(1, 4))
        train_job(one)
        mp.delenv(COMPLETIONS_ENV)
        yield root, omni, data, one


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().float().clone() for k, v in model.state_dict().items()}


def test_two_processes_follow_the_one_process_run(setup, monkeypatch):
    root, omni, data, one = setup
    monkeypatch.setenv(COMPLETIONS_ENV, str(root / "completions" / "two"))
    two = spec_for(root, omni, data, "two", rlcomm(2, 2))
    train_job(two)

    # seeded generation: the same completions for every row and step, and for the four
    # training prompts scored (a group of 2 each) before and after training
    got_one = recorded_completions(root / "completions" / "one")
    got_two = recorded_completions(root / "completions" / "two")
    assert len(got_one) == STEPS * 4 + 2 * 4 * 2 and got_two == got_one
    assert len(list((root / "completions" / "two").glob("*.jsonl"))) == 2  # both ranks scored

    a, b = read_log(root / "one" / "log.jsonl"), read_log(root / "two" / "log.jsonl")
    assert [r["step"] for r in a] == [r["step"] for r in b] == list(range(1, STEPS + 1))
    for ra, rb in zip(a, b, strict=True):
        assert set(ra) == set(rb)
        assert ra["reward_format"] == ra["reward_acc"] == 0.0
        assert ra["reward_mean"] == pytest.approx(ra["reward_token_residue"], abs=1e-6)
        for key in ("loss", "reward_mean", "reward_std", "reward_token_residue", "grad_norm"):
            assert rb[key] == pytest.approx(ra[key], rel=1e-4, abs=1e-5), key
    # the reward differs inside the groups, so there is a gradient
    assert all(r["grad_norm"] > 0 and r["reward_std"] > 0 for r in a)

    ma = json.loads((root / "one" / "metrics.json").read_text())
    mb = json.loads((root / "two" / "metrics.json").read_text())
    assert (ma["processes"], mb["processes"]) == (1, 2) and mb["steps"] == STEPS
    assert ma["start"] == mb["start"] == {"path": str(omni), "sha256": model_fingerprint(omni)}
    # the four training prompts scored by the start and by the trained policy (the same
    # sampling seeds both times), alike with 1 and 2 processes
    for key in ("reward_mean", "reward_token_residue", "reward_acc"):
        for when in ("before", "after"):
            assert mb[f"{key}_{when}"] == pytest.approx(ma[f"{key}_{when}"], rel=1e-5), key
    assert ma["reward_mean_before"] == pytest.approx(ma["reward_token_residue_before"])
    # only rank 0 wrote: the same files as the single-process run, and no state left
    for sub in ("", "model"):
        assert sorted(p.name for p in (root / "two" / sub).iterdir()) == sorted(
            p.name for p in (root / "one" / sub).iterdir()
        )
    assert not (root / "state" / "two").exists()

    # the weights moved, and the same way with 1 and 2 processes
    base = weights(registry.load(omni).model)
    w1 = weights(load_policy(root / "one" / "model", models_root=root).model)
    w2 = weights(load_policy(root / "two" / "model", models_root=root).model)
    assert w1.keys() == w2.keys() == base.keys()
    moved = [k for k in base if not torch.equal(base[k], w1[k])]
    assert moved and all("q_proj" in k for k in moved)
    assert max((w1[k] - base[k]).abs().max().item() for k in moved) > 1e-3
    for k in moved:
        torch.testing.assert_close(w2[k], w1[k], rtol=1e-4, atol=1e-5)


def test_killed_stage_resumes_from_its_last_checkpoint(setup):
    root, omni, data, one = setup
    killed = spec_for(root, omni, data, "killed", rlcomm(1, 4))
    # the same content, so the same run identity; its state lives in another folder
    assert killed["config_hash"] == one["config_hash"]
    code = (
        "import json, sys; from avtrust.train.job import train_job; "
        "train_job(json.loads(sys.argv[1]))"
    )
    marker = root / "state" / "killed" / "checkpoint-1" / "trainer_state.json"
    assert kill_after(code, json.dumps(killed), marker) == -signal.SIGKILL
    assert marker.exists() and not (root / "killed" / "metrics.json").exists()

    log = RecordingLog()
    train_job(killed, log)
    assert any(m.startswith("resume from") and "checkpoint-" in m for m in log.messages)
    a, b = read_log(root / "one" / "log.jsonl"), read_log(root / "killed" / "log.jsonl")
    assert [r["step"] for r in b] == list(range(1, STEPS + 1))
    for ra, rb in zip(a, b, strict=True):
        assert rb.keys() == ra.keys()
        for key in ra:
            assert rb[key] == pytest.approx(ra[key], rel=1e-5, abs=1e-6), key
    ma = json.loads((root / "one" / "metrics.json").read_text())
    mb = json.loads((root / "killed" / "metrics.json").read_text())
    assert mb.pop("config_hash") == ma.pop("config_hash")
    assert mb.keys() == ma.keys() and mb["steps"] == STEPS
    for key, value in ma.items():
        assert mb[key] == (pytest.approx(value, rel=1e-5) if isinstance(value, float) else value)
    assert not (root / "state" / "killed").exists()  # cleaned after success


def test_bad_extra_reward_is_a_config_error(setup):
    root, omni, data, _ = setup
    for ref, message in (
        ("no_colon", "not of the form 'module:function'"),
        ("avtrust_no_such_module:f", "cannot import 'avtrust_no_such_module'"),
        ("training_helpers:no_such_reward", "has no function 'no_such_reward'"),
        ("training_helpers:OMNI", "has no function 'OMNI'"),
    ):
        with pytest.raises(ConfigError, match=message):
            spec_for(root, omni, data, "bad", rlcomm(1, 4, extra_rewards=[ref]))
    assert not (root / "state" / "bad").exists()
