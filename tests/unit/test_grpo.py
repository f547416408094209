"""AVGRPOTrainer on the tiny Omni thinker: media reach both passes, and the update
moves the policy toward higher reward."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from generated_media import AUDIO_CODEC, SAMPLE_RATE, VIDEO_CODEC  # noqa: E402

from avtrust.media.ffmpeg import encode_clip  # noqa: E402
from avtrust.models import registry  # noqa: E402
from avtrust.train.grpo import AVGRPOTrainer  # noqa: E402

PROMPT = "Is there a violin sound?"


@pytest.fixture(scope="module")
def omni_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("grpo_models") / "omni"
    models = {"omni": {"adapter": "qwen2_5_omni_thinker", "source": "tiny", "location": "x"}}
    registry.prepare(registry.spec_from_config("omni", models), out, seed=3)
    return out


@pytest.fixture(scope="module")
def same_video_clips(clips, tmp_path_factory):
    """The violin clip's video with its own audio, and with loud white noise."""
    root = tmp_path_factory.mktemp("swapped")
    paths = []
    own = clips["violin"].audio
    noise = np.random.default_rng(0).uniform(-0.9, 0.9, own.shape).astype(np.float32)
    for name, audio in (("own", own), ("other", noise)):
        path = root / f"{name}.mp4"
        encode_clip(
            path,
            clips["violin"].frames,
            audio,
            fps=8,
            sample_rate=SAMPLE_RATE,
            video_codec=VIDEO_CODEC,
            audio_codec=AUDIO_CODEC,
        )
        paths.append(str(path))
    return paths


def trainer_for(omni_dir, tmp_path, rows, reward, **config):
    from datasets import Dataset
    from trl import GRPOConfig

    policy = registry.load(omni_dir)
    settings = {
        "output_dir": str(tmp_path / "state"),
        "per_device_train_batch_size": 4,
        "num_generations": 2,
        "max_completion_length": 4,
        "max_steps": 1,
        "logging_steps": 1,
        "report_to": "none",
        "use_cpu": True,
        "beta": 0.0,
        "save_strategy": "no",
        "seed": 5,
        "disable_tqdm": True,
        "bf16": False,
        **config,
    }
    return AVGRPOTrainer(
        policy.model,
        [reward],
        GRPOConfig(**settings),
        train_dataset=Dataset.from_list(rows),
        builder=policy.builder,
    )


def zero_reward(prompts, completions, completion_ids, **_):
    return [0.0] * len(prompts)


def test_log_probs_see_the_audio(omni_dir, same_video_clips, tmp_path):
    rows = [{"prompt": PROMPT, "media_path": p, "answer": "no"} for p in same_video_clips]
    trainer = trainer_for(omni_dir, tmp_path, rows, zero_reward)
    keys = [(p, PROMPT) for p in same_video_clips]
    prompts = [trainer.media.get(k)["prompt_ids"] for k in keys]
    assert prompts[0] == prompts[1]  # same text, same placeholder layout
    completion = trainer.processing_class("<answer>yes</answer>")["input_ids"]
    ids = torch.tensor([prompts[0] + completion] * 3)
    mask = torch.ones_like(ids)
    trainer._media_keys = [keys[0], keys[1], keys[0]]
    with torch.no_grad():
        logps, ent, _ = trainer._get_per_token_logps_and_entropies(
            trainer.model, ids, mask, len(completion), batch_size=2, compute_entropy=True
        )
    assert logps.shape == ent.shape == (3, len(completion))
    torch.testing.assert_close(logps[0], logps[2])  # same media, same log-probs
    assert (logps[0] - logps[1]).abs().max() > 1e-4  # only the audio differs
    # ... and through the same model call the wrapper's own scoring uses
    batch = trainer.media.batch([keys[1]], "cpu")
    with torch.no_grad():
        out = trainer.model(input_ids=ids[:1], attention_mask=mask[:1], **batch)
    direct = torch.log_softmax(out.logits[0, -len(completion) - 1 : -1].float(), -1)
    direct = direct.gather(1, ids[0, -len(completion) :, None]).squeeze(1)
    torch.testing.assert_close(logps[1], direct)


def test_a_training_step_uses_the_media_in_generation_and_loss(omni_dir, clips, tmp_path):
    rows = [
        {"prompt": PROMPT, "media_path": str(clips["violin"].path), "answer": "no"},
        {"prompt": "What is heard?", "media_path": str(clips["audio_only"].path), "answer": "a"},
    ]
    seen = []

    def reward(prompts, completions, completion_ids, media_path, **_):
        seen.extend(media_path)
        return [float(len(c)) for c in completion_ids]

    trainer = trainer_for(omni_dir, tmp_path, rows, reward, max_steps=2)
    trainer.train()
    logs = [e for e in trainer.state.log_history if "reward" in e]
    assert len(logs) == 2 and all("rewards/reward/mean" in e for e in logs)
    assert sorted(set(seen)) == sorted(r["media_path"] for r in rows)
    # each clip decoded once for prompts, generation and both log-prob passes
    assert trainer.media.builds == 2


def test_policy_gradient_raises_the_rewarded_completion(omni_dir, clips, tmp_path):
    """Toy problem: one-token completions sampled from the policy's two most likely first
    tokens (top_k = 2); the second one is always rewarded 1, the first 0. A few GRPO
    steps must raise the probability of the rewarded token relative to the other."""
    rows = [{"prompt": PROMPT, "media_path": str(clips["violin"].path), "answer": "no"}]
    chosen = {}

    def reward(prompts, completions, completion_ids, **_):
        return [float(ids[0] == chosen["good"]) for ids in completion_ids]

    trainer = trainer_for(
        omni_dir,
        tmp_path,
        rows,
        reward,
        max_completion_length=1,
        num_generations=8,
        per_device_train_batch_size=8,
        max_steps=4,
        learning_rate=1e-2,
        top_k=2,
    )
    key = (rows[0]["media_path"], PROMPT)

    def first_token_probs():
        ids = torch.tensor([trainer.media.get(key)["prompt_ids"]])
        with torch.no_grad():
            out = trainer.model(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                **trainer.media.batch([key], "cpu"),
            )
        logits = out.logits[0, -1].float()
        logits[trainer.generation_config.suppress_tokens] = -float("inf")
        return torch.softmax(logits, -1)

    probs = first_token_probs()
    top, second = torch.topk(probs, 2).indices.tolist()
    chosen["good"] = second
    before = probs[second] / (probs[top] + probs[second])
    trainer.train()
    probs = first_token_probs()
    after = probs[second] / (probs[top] + probs[second])
    rewards = [e["reward"] for e in trainer.state.log_history if "reward" in e]
    assert after > before + 0.1, (before, after, rewards)
    assert rewards[-1] >= rewards[0]
