"""RL-CoMM stages with a policy that writes the answer format, so that every reward
component, the embedding call and the Ans-CO entropy term run with non-zero values.

The tiny random policy never writes ``<a-think>…</a-think> <v-think>…</v-think>
<answer>…</answer>``, so in the other training tests r_format, r_arr and r_avc are all
0, the completions' thinks are never embedded and Ans-CO always falls back to the
reference response. Here the *generation* is scripted: the Step-RR trainer's
``_generate_single_turn`` returns the token ids of chosen tagged texts, and the Ans-CO
target sampler's ``generate`` appends them to the prompts. Everything after generation
is the real path of an in-process training job (:func:`avtrust.train.job.train_job`):
decoding, the rewards with the tiny Qwen3-Embedding model of ``config/config.yaml``,
the group-normalised advantages, the log-probs and loss of the tiny Omni thinker with
its clip features, the optimiser step, the Ans-CO targets, uncertainties, λ gates and
entropy term.

Why scripted and not a warmed-up policy: teaching the 2-layer tiny thinker to write
~70-token tagged texts takes many SFT steps, and sampling from it at temperature 1
would still give a random mix of well-formed and broken completions; the assertions
below need *known* completions — correct and wrong answers, a-thinks equal to and far
from the reference, a missing answer, tags out of order — to check each reward against
its definition, and the same ones on every run.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import yaml
from training_helpers import CPU_JOB, checkpoint_outputs

from avtrust.models import registry
from avtrust.models.embedding import TextEmbedder
from avtrust.train import job
from avtrust.train.ansco import AnsCOCollator
from avtrust.train.ansco_targets import TARGETS
from avtrust.train.checkpoint import load_policy
from avtrust.train.curves import read_log
from avtrust.train.data import SequenceEncoder
from avtrust.train.grpo import AVGRPOTrainer, MediaCache, completion_logps
from avtrust.train.job import make_spec, train_job
from avtrust.train.rewards import StepRewards, tag_content
from avtrust.train.rlcomm import stage_settings

OMEGA = 0.8
OPTIONS = ["violin", "cello"]
# Per sample: the clip, the ground truth, the reference audio reasoning (the audio-only
# LLM's <a-think>, embedded once as in the score stage) and what the video shows.
SAMPLES = {
    "violin": {
        "prompt": "Which instrument is playing? (first clip)",
        "reference": "A bright bowed string tone, high and sustained.",
        "v_think": "A violin is bowed on the left of the frame.",
    },
    "cello": {
        "prompt": "Which instrument is playing? (second clip)",
        "reference": "A deep bowed string tone, low and warm.",
        "v_think": "A cello stands upright and is bowed.",
    },
}


def tagged(a: str, v: str, answer: str) -> str:
    return f"<a-think>{a}</a-think> <v-think>{v}</v-think> <answer>{answer}</answer>"


def step_completions(truth: str) -> list[dict]:
    """One GRPO group of sample ``truth``: texts with the format and correctness they
    were written to have (an a-think either the reference itself, cos = 1, or one word,
    far from it)."""
    ref, v = SAMPLES[truth]["reference"], SAMPLES[truth]["v_think"]
    wrong = next(o for o in OPTIONS if o != truth)
    return [
        {"text": tagged(ref, v, truth), "format": 1, "correct": True},
        {"text": tagged(ref, v, wrong), "format": 1, "correct": False},
        # correct by the option it names, but the audio reasoning is not the reference's
        {"text": tagged(wrong, v, f"The answer is: {truth}."), "format": 1, "correct": True},
        # tags out of order: no format reward, the other rewards still apply
        {
            "text": f"<answer>{truth}</answer> <a-think>{ref}</a-think> <v-think>{v}</v-think>",
            "format": 0,
            "correct": True,
        },
        # no answer at all
        {"text": f"<a-think>{ref}</a-think> <v-think>{v}</v-think>", "format": 0, "correct": False},
        # an answer naming both options is no answer to a multiple choice, but it exists
        {"text": tagged(ref, wrong, f"{truth} or {wrong}"), "format": 1, "correct": False},
    ]


GROUP = len(step_completions("violin"))


def rlcomm_section(keep_state: bool = False) -> dict:
    grpo = {
        "learning_rate": 5e-2,
        "max_steps": 2,
        "batch_size": GROUP * len(SAMPLES),  # both samples' groups in every step
        "save_steps": 1,
        "group_size": GROUP,
        "max_completion_length": 96,
        "temperature": 1.0,
        "omega": OMEGA,
    }
    return {
        **CPU_JOB,
        "threads": 1,
        "processes": 1,  # in place: the scripted generation replaces the trainer's own
        "keep_state": keep_state,
        "policy": "omni",
        "lora": {"enabled": True, "r": 4, "alpha": 8, "dropout": 0.0, "targets": ["q_proj"]},
        "steprr": grpo,
        "ansco": {
            "learning_rate": 1e-3,
            "max_steps": 2,
            "batch_size": len(SAMPLES),  # the first step's batch holds both samples
            "save_steps": 1,
            "samples": len(ansco_completions("violin")),
            "max_completion_length": 96,
            "temperature": 1.0,
            "lam": 0.5,
            "u_threshold": 0.75,
        },
    }


def encode(tokenizer, text: str) -> list[int]:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids, skip_special_tokens=True) == text  # the text survives
    return ids


@pytest.fixture(scope="module")
def world(tmp_path_factory, clips):
    """The tiny policy and the embedder of the embedded default, and the training rows
    with each sample's reference embedding made by that embedder."""
    root = tmp_path_factory.mktemp("nonzero_rewards")
    config = yaml.safe_load((Path(__file__).parents[2] / "config" / "config.yaml").read_text())
    models = config["models"]
    omni = registry.prepare(registry.spec_from_config("omni", models), root / "omni", seed=3)
    embedder_dir = registry.prepare(
        registry.spec_from_config("embedder", models), root / "embedder", seed=4
    )
    embedder = registry.load(embedder_dir)
    refs = embedder.embed([s["reference"] for s in SAMPLES.values()])
    rows = [
        {
            "id": f"s{i}",
            "media_path": str(clips[truth].path),
            "prompt": sample["prompt"],
            "answer": truth,
            "options": OPTIONS,
            "reference_a_think": sample["reference"],
            "reference_embedding": refs[i].tolist(),
            "visual_labels": [truth],
            "has_video": True,
        }
        for i, (truth, sample) in enumerate(SAMPLES.items())
    ]
    data = root / "reference.parquet"
    pq.write_table(pa.Table.from_pylist(rows), data)
    return root, omni, embedder_dir, embedder, data


# -- Step-RR --------------------------------------------------------------------------


def scripted_generation(tokenizer, calls: list):
    """``AVGRPOTrainer._generate_single_turn`` writing, for the k-th row of a sample in
    the generation batch, the k-th text of its group (ending with the eos token, as a
    finished sampled completion does)."""
    by_prompt = {s["prompt"]: truth for truth, s in SAMPLES.items()}

    def generate(self, prompt_ids, images, multimodal_fields, num_generations, **_):
        keys = self._require_keys(len(prompt_ids))
        seen: dict[str, int] = {}
        out = []
        for key, ids in zip(keys, prompt_ids, strict=True):
            assert ids == self.media.get(key)["prompt_ids"]  # the clip's prompt
            prompt = key[1]
            truth = by_prompt[prompt]
            k = seen.get(truth, 0)
            seen[truth] = k + 1
            text = step_completions(truth)[k]["text"]
            out.append(encode(tokenizer, text) + [tokenizer.eos_token_id])
        assert sorted(seen.values()) == [num_generations] * len(SAMPLES)
        calls.append(len(prompt_ids))
        return out, None

    return generate


@pytest.fixture(scope="module")
def steprr(world):
    """The Step-RR stage trained on the scripted completions, recording every batch the
    rewards scored and every embedding call."""
    root, omni, embedder_dir, _, data = world
    tokenizer = registry.load(omni).tokenizer
    scored, embedded, generated = [], [], []
    score, embed = StepRewards.score, TextEmbedder.embed

    def recording_score(self, completions, answer, *args, **kwargs):
        out = score(self, completions, answer, *args, **kwargs)
        scored.append(([str(c) for c in completions], list(answer), out))
        return out

    def recording_embed(self, texts, *args, **kwargs):
        embedded.append(list(texts))
        return embed(self, texts, *args, **kwargs)

    spec = make_spec(
        job=stage_settings(rlcomm_section(), "rlcomm_steprr", 11),
        base_dir=omni,
        inputs={"data": data, "embedder": embedder_dir},
        outputs=checkpoint_outputs(root / "steprr"),
        state_dir=root / "state" / "steprr",
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            AVGRPOTrainer, "_generate_single_turn", scripted_generation(tokenizer, generated)
        )
        mp.setattr(StepRewards, "score", recording_score)
        mp.setattr(TextEmbedder, "embed", recording_embed)
        train_job(spec)
    return spec, scored, embedded, generated


def expected_rewards(embedder, completions: list[dict], truth: str) -> dict[str, np.ndarray]:
    """Each component from its definition, the cosines recomputed with the embedder."""
    ref = embedder.embed([SAMPLES[truth]["reference"]])[0].astype(np.float64)
    out = {k: [] for k in ("format", "arr", "avc", "sim_reference", "sim_av")}
    for c in completions:
        a, v = (tag_content(c["text"], t) for t in ("a-think", "v-think"))
        ea, ev = embedder.embed([a, v]).astype(np.float64)
        sim_ref, sim_av = float(ea @ ref), float(ea @ ev)
        has_answer = tag_content(c["text"], "answer") is not None
        out["format"].append(float(c["format"]))
        out["arr"].append(float(c["correct"] and sim_ref > OMEGA))
        out["avc"].append(1.0 + sim_av if c["correct"] else sim_av if has_answer else 0.0)
        out["sim_reference"].append(sim_ref)
        out["sim_av"].append(sim_av)
    return {k: np.array(v) for k, v in out.items()}


def test_steprr_rewards_follow_their_definitions(world, steprr):
    _, _, _, embedder, _ = world
    spec, scored, embedded, generated = steprr
    # every training step's batch, and the training prompts scored before and after
    # training (one evaluation batch each: both samples' groups)
    steps = spec["settings"]["max_steps"] + 2
    assert generated == [GROUP * len(SAMPLES)] * steps
    # the three reward functions of a step share one scoring of its batch ...
    assert len(scored) == 3 * steps
    for i in range(0, len(scored), 3):
        assert scored[i][2] is scored[i + 1][2] is scored[i + 2][2]
    # ... and one batched embedding call with every distinct think of the step (a step
    # whose batch is the last one's, in the same order, reuses its scores)
    batches = {(tuple(texts), tuple(answers)) for texts, answers, _ in scored}
    assert len(embedded) == len(batches) >= 1
    thinks = {
        tag_content(c["text"], tag)
        for truth in SAMPLES
        for c in step_completions(truth)
        for tag in ("a-think", "v-think")
    }
    assert all(thinks <= set(call) and len(call) == len(set(call)) for call in embedded)

    for texts, answers, got in scored[::3]:
        assert len(texts) == GROUP * len(SAMPLES)
        for truth in SAMPLES:
            rows = [i for i, a in enumerate(answers) if a == truth]
            completions = step_completions(truth)
            assert sorted(texts[i] for i in rows) == sorted(c["text"] for c in completions)
            order = [[c["text"] for c in completions].index(texts[i]) for i in rows]
            want = expected_rewards(embedder, [completions[k] for k in order], truth)
            for key, values in want.items():
                np.testing.assert_allclose(got[key][rows], values, atol=1e-5, err_msg=key)
            # the construction reaches both sides of every case
            correct = np.array([completions[k]["correct"] for k in order])
            assert set(want["format"]) == {0.0, 1.0}
            assert (want["sim_reference"][correct] <= OMEGA).any()  # correct, far: no r_arr
            assert (want["sim_reference"][~correct] > OMEGA).any()  # close, wrong: no r_arr
            assert want["arr"].sum() > 0 and (want["avc"] != 0).any()


def test_steprr_logs_non_zero_rewards_and_moves_the_policy(world, steprr):
    root, omni, _, embedder, _ = world
    spec, _, _, _ = steprr
    want = [expected_rewards(embedder, step_completions(t), t) for t in SAMPLES]
    means = {k: float(np.mean(np.concatenate([w[k] for w in want]))) for k in want[0]}
    total = np.concatenate([w["format"] + w["arr"] + w["avc"] for w in want])
    log = read_log(root / "steprr" / "log.jsonl")
    assert [r["step"] for r in log] == list(range(1, spec["settings"]["max_steps"] + 1))
    for row in log:
        assert row["reward_format"] == pytest.approx(means["format"], abs=1e-5) and row[
            "reward_format"
        ] == pytest.approx(4 / 6)
        assert row["reward_arr"] == pytest.approx(means["arr"], abs=1e-5) and row["reward_arr"] > 0
        assert row["reward_avc"] == pytest.approx(means["avc"], abs=1e-5) and row["reward_avc"] != 0
        assert row["reward_mean"] == pytest.approx(total.mean(), abs=1e-5)
        # the completions of a group differ in reward: non-zero advantages, a gradient
        assert row["reward_std"] > 0.1
        assert row["grad_norm"] > 0
        # GRPO's loss before the update (ratio 1) is −mean(advantage): 0 for advantages
        # normalised within each group; the gradient is not 0, and points uphill (below)
        assert row["loss"] == pytest.approx(0.0, abs=1e-6)
    metrics = json.loads((root / "steprr" / "metrics.json").read_text())
    assert metrics["final_reward_arr"] == pytest.approx(means["arr"], abs=1e-5)
    # the training prompts scored before and after training: the scripted completions do
    # not depend on the policy, so both are the definitions' means
    for when in ("before", "after"):
        assert metrics[f"reward_mean_{when}"] == pytest.approx(total.mean(), abs=1e-5)
        for key in ("format", "arr", "avc"):
            assert metrics[f"reward_{key}_{when}"] == pytest.approx(means[key], abs=1e-5)

    base = registry.load(omni)
    trained = load_policy(root / "steprr" / "model", models_root=root)
    before, after = base.model.state_dict(), trained.model.state_dict()
    moved = [k for k in before if not torch.equal(before[k], after[k])]
    assert moved and all("q_proj" in k for k in moved)

    # the update raised the advantage-weighted log-probs GRPO ascends: completions
    # rewarded above their group's mean became likelier, those below less likely
    media = MediaCache(base.builder)
    gain = 0.0
    for truth, w in zip(SAMPLES, want, strict=True):
        rewards = w["format"] + w["arr"] + w["avc"]
        advantages = (rewards - rewards.mean()) / (rewards.std(ddof=1) + 1e-4)
        key = (str(clips_path(world, truth)), SAMPLES[truth]["prompt"])
        for c, adv in zip(step_completions(truth), advantages, strict=True):
            ids = encode(base.tokenizer, c["text"]) + [base.tokenizer.eos_token_id]
            change = mean_logp(trained, media, key, ids) - mean_logp(base, media, key, ids)
            gain += adv * change
    assert gain > 0


def clips_path(world, truth: str) -> str:
    data = world[-1]
    return next(r["media_path"] for r in pq.read_table(data).to_pylist() if r["answer"] == truth)


def mean_logp(policy, media: MediaCache, key: tuple[str, str], completion: list[int]) -> float:
    """Mean token log-prob of ``completion`` after the clip's prompt, scored as the
    trainer scores it (one forward with the clip's features)."""
    ids = torch.tensor([media.get(key)["prompt_ids"] + completion])
    policy.model.eval()
    with torch.no_grad():
        out = policy.model(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            use_cache=False,
            **media.batch([key], "cpu"),
        )
    logps, _ = completion_logps(out.logits, ids, len(completion))
    return logps.mean().item()


# -- Ans-CO ---------------------------------------------------------------------------


def ansco_completions(truth: str) -> list[str]:
    """K sampled completions of sample ``truth``: the violin sample agrees with itself
    (five of six name violin: u = 1/6, λ > 0); the cello sample's six answers are all
    different outcomes (u = 5/6 > 0.75, λ = 0)."""
    ref, v = SAMPLES[truth]["reference"], SAMPLES[truth]["v_think"]
    if truth == "violin":
        return [
            "<answer>violin</answer>",  # correct, not well-formed: not a target
            tagged(ref, v, "cello"),
            tagged(ref, v, "The answer is violin."),  # the target
            tagged(ref, v, "violin"),
            tagged("a high tone", v, "Violin!"),
            tagged(ref, "a bow", "violin"),
        ]
    return [
        tagged(ref, v, "cello"),  # the target
        tagged(ref, v, "violin"),
        tagged(ref, v, "a drum"),
        tagged(ref, v, "violin or cello"),
        f"<a-think>{ref}</a-think> <v-think>{v}</v-think>",
        "",
    ]


TARGET = {"violin": ansco_completions("violin")[2], "cello": ansco_completions("cello")[0]}
UNCERTAINTY = {"violin": 1 / 6, "cello": 5 / 6}
LAMBDA = {"violin": 0.5, "cello": 0.0}


@pytest.fixture(scope="module")
def ansco(world, steprr):
    """The Ans-CO stage from the Step-RR checkpoint, its K completions per sample
    scripted (resume state kept, to read the prepared targets)."""
    root, omni, _, _, data = world
    spec = make_spec(
        job=stage_settings(rlcomm_section(keep_state=True), "rlcomm_ansco", 11),
        base_dir=omni,
        init_dir=root / "steprr" / "model",
        inputs={"data": data},
        outputs=checkpoint_outputs(root / "ansco"),
        state_dir=root / "state" / "ansco",
    )
    load = job.load_start_policy
    calls = []

    def scripted_policy(spec):
        policy = load(spec)
        tok = policy.tokenizer

        def generate(input_ids, attention_mask, max_new_tokens, **_):
            seen: dict[str, int] = {}
            rows = []
            for ids, mask in zip(input_ids, attention_mask, strict=True):
                prompt = tok.decode(ids[mask.bool()], skip_special_tokens=True)
                truth = next(t for t, s in SAMPLES.items() if s["prompt"] in prompt)
                k = seen.get(truth, 0)
                seen[truth] = k + 1
                new = encode(tok, ansco_completions(truth)[k]) + [tok.eos_token_id]
                assert len(new) <= max_new_tokens
                rows.append(new)
            calls.append(dict(seen))
            width = max(map(len, rows))
            new = torch.tensor([r + [tok.pad_token_id] * (width - len(r)) for r in rows])
            return torch.cat([input_ids, new], dim=1)

        policy.model.generate = generate
        return policy

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(job, "load_start_policy", scripted_policy)
        train_job(spec)
    return spec, calls


def test_ansco_targets_are_sampled_and_gated_by_uncertainty(world, ansco):
    root, _, _, _, _ = world
    spec, calls = ansco
    k = spec["settings"]["samples"]
    assert calls == [{t: k for t in SAMPLES}]  # K completions of each sample, one batch
    targets = json.loads((root / "state" / "ansco" / TARGETS).read_text())
    for row, truth in zip(targets, SAMPLES, strict=True):
        assert row["origin"] == "sampled"
        assert row["response"] == TARGET[truth]
        assert row["uncertainty"] == pytest.approx(UNCERTAINTY[truth])
    metrics = json.loads((root / "ansco" / "metrics.json").read_text())
    assert (metrics["samples"], metrics["gated_samples"]) == (2, 1)
    assert metrics["start"]["path"] == str(root / "steprr" / "model")


def test_ansco_entropy_term_is_the_gated_answer_entropy(world, ansco):
    """The first logged step (before any update) recomputed from the start policy:
    NLL per target sequence, the mean entropy of the next-token distributions over each
    target's answer tokens, weighted by λ_i (0 for the uncertain sample)."""
    root, _, _, _, _ = world
    spec, _ = ansco
    policy = load_policy(root / "steprr" / "model", models_root=root)
    encoder = SequenceEncoder(policy.builder, policy.model.get_rope_index)
    settings = spec["settings"]
    rows = [
        {
            "media_path": r["media_path"],
            "prompt": r["prompt"],
            "response": TARGET[r["answer"]],
            "uncertainty": UNCERTAINTY[r["answer"]],
        }
        for r in pq.read_table(spec["inputs"]["data"]).to_pylist()
    ]
    batch = AnsCOCollator(encoder, settings["lam"], settings["u_threshold"])(rows)
    labels, mask = batch.pop("labels"), batch.pop("answer_mask")
    batch.pop("entropy_weight")
    policy.model.eval()
    with torch.no_grad():
        logp = torch.log_softmax(policy.model(**batch).logits.float(), -1)
    tok = policy.tokenizer
    nll, term = [], []
    for b, row in enumerate(rows):
        truth = next(t for t in SAMPLES if TARGET[t] == row["response"])
        where = (labels[b] != -100).nonzero().squeeze(-1)
        picked = logp[b, where - 1].gather(1, labels[b, where, None]).squeeze(1)
        nll.append(-picked.mean().item())
        answer = mask[b].nonzero().squeeze(-1)
        assert tok.decode(batch["input_ids"][b, answer]) in ("The answer is violin.", "cello")
        dist = logp[b, answer - 1]
        entropy = -(dist.exp() * dist).sum(-1).mean().item()
        assert entropy > 0
        term.append(LAMBDA[truth] * entropy)
    first = read_log(root / "ansco" / "log.jsonl")[0]
    assert first["step"] == 1
    assert first["entropy_term"] == pytest.approx(np.mean(term), rel=1e-4)
    assert first["entropy_term"] > 0
    assert first["nll"] == pytest.approx(np.mean(nll), rel=1e-4)
    assert first["loss"] == pytest.approx(first["nll"] + first["entropy_term"], rel=1e-4)
