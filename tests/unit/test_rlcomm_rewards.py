"""RL-CoMM rewards, answer-token masks and the Ans-CO loss on hand-written cases.

The embedding model here is built for the test: every text maps to a chosen unit
vector, so each cosine similarity is known exactly.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from avtrust.train.ansco import (
    ansco_loss,
    answer_span,
    answer_token_mask,
    answer_uncertainty,
    entropy_weights,
    mask_from_spans,
)
from avtrust.train.rewards import StepRewards, answer_choice, is_correct, parse, well_formed

REF = np.array([1.0, 0.0, 0.0])


def unit(angle_cos: float) -> list[float]:
    """A unit vector whose cosine with REF (and with e1) is ``angle_cos``."""
    return [angle_cos, math.sqrt(1 - angle_cos**2), 0.0]


class TableEmbedder:
    """Embeds by table look-up; counts calls and texts."""

    def __init__(self, table: dict[str, list[float]]):
        self.table = table
        self.calls: list[list[str]] = []

    def embed(self, texts, batch_size=64):
        self.calls.append(list(texts))
        return np.array([self.table[t] for t in texts], dtype=np.float32)


def completion(a="close", v="saw e1", ans="yes") -> str:
    return f"<a-think>{a}</a-think> <v-think>{v}</v-think> <answer>{ans}</answer>"


TABLE = {
    "close": unit(0.9),  # cos 0.9 with the reference and with "saw e1"
    "far": unit(0.5),
    "saw e1": [1.0, 0.0, 0.0],
    "saw e3": [0.0, 0.0, 1.0],
    "x": [0.0, 1.0, 0.0],
    "y": [0.0, 1.0, 0.0],
}


def score(completions, answers, options=None, omega=0.8):
    rewards = StepRewards(TableEmbedder(TABLE), omega=omega)
    refs = [REF.tolist()] * len(completions)
    return rewards.score(completions, answers, refs, options), rewards


@pytest.mark.parametrize(
    "text, ok",
    [
        (completion(), True),
        ("  " + completion() + "\n", True),
        (completion(ans=""), True),  # format only: an empty answer is still well-formed
        ("<a-think>x</a-think> <answer>yes</answer>", False),  # v-think missing
        ("<v-think>x</v-think> <a-think>y</a-think> <answer>yes</answer>", False),  # order
        ("<a-think>x</a-think> <v-think>y</v-think> <answer>yes", False),  # unclosed
        (completion() + " <answer>no</answer>", False),  # answer twice
        ("Sure! " + completion(), False),  # text outside the tags
        ("yes", False),
    ],
)
def test_format_reward(text, ok):
    assert well_formed(text) is ok
    out, _ = score([text], ["yes"])
    assert out["format"][0] == float(ok)


def test_answers_correct_wrong_and_empty():
    assert parse(completion(ans="  ")).answer is None
    assert is_correct("Yes.", "yes")
    assert is_correct("The answer is: cello.", "cello", ["violin", "cello"])
    assert not is_correct("cello or violin", "cello", ["violin", "cello"])
    assert not is_correct("cellos", "cello", ["violin", "cello"])
    assert not is_correct(None, "yes")
    out, _ = score(
        [completion(ans="yes"), completion(ans="no"), completion(ans=""), "no tags"],
        ["yes"] * 4,
    )
    assert out["accuracy"].tolist() == [1.0, 0.0, 0.0, 0.0]


def test_reasoning_reward_threshold_omega():
    texts = [
        completion(a="close", v="saw e1", ans="yes"),  # correct, sim 0.9 > 0.8
        completion(a="far", v="saw e1", ans="yes"),  # correct, sim 0.5
        completion(a="close", v="saw e1", ans="no"),  # wrong answer
        "<v-think>saw e1</v-think> <answer>yes</answer>",  # no a-think
    ]
    out, _ = score(texts, ["yes"] * 4)
    assert out["arr"].tolist() == [1.0, 0.0, 0.0, 0.0]
    np.testing.assert_allclose(out["sim_reference"][:3], [0.9, 0.5, 0.9], atol=1e-6)
    assert np.isnan(out["sim_reference"][3])
    # ω above 0.9: the close a-think no longer passes; the threshold is strict.
    assert score(texts, ["yes"] * 4, omega=0.95)[0]["arr"].tolist() == [0.0] * 4
    assert score(texts[:1], ["yes"], omega=0.9)[0]["arr"].tolist() == [0.0]


def test_av_consistency_reward_cases():
    texts = [
        completion(a="close", v="saw e1", ans="yes"),  # correct: 1 + I, I = 0.9
        completion(a="close", v="saw e1", ans="no"),  # wrong: I = 0.9
        completion(a="close", v="saw e3", ans="no"),  # wrong, orthogonal: I = 0
        completion(a="close", v="saw e1", ans=""),  # no answer: 0
        "<a-think>close</a-think> <answer>yes</answer>",  # correct, no v-think: 1 + 0
    ]
    out, _ = score(texts, ["yes"] * 5)
    np.testing.assert_allclose(out["avc"], [1.9, 0.9, 0.0, 0.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(
        out["format"] + out["arr"] + out["avc"], [3.9, 1.9, 1.0, 1.0, 2.0], atol=1e-6
    )


def test_one_batched_embedding_call_shared_by_the_components():
    texts = [completion(a="close", v="saw e1"), completion(a="close", v="saw e3")] * 3
    rewards = StepRewards(TableEmbedder(TABLE), omega=0.8)
    refs = [REF.tolist()] * len(texts)
    funcs = rewards.functions(["format", "arr", "avc"])
    assert [f.__name__ for f in funcs] == ["r_format", "r_arr", "r_avc"]
    values = [
        f(
            prompts=["p"] * 6,
            completions=texts,
            completion_ids=None,
            answer=["yes"] * 6,
            reference_embedding=refs,
        )
        for f in funcs
    ]
    assert values[1] == [1.0] * 6 and len(values[2]) == 6
    calls = rewards.embedder.calls
    assert len(calls) == 1 and sorted(calls[0]) == ["close", "saw e1", "saw e3"]


def test_accuracy_baseline_needs_no_embedder():
    acc = StepRewards(None).functions(["format", "accuracy"])
    assert [f.__name__ for f in acc] == ["r_format", "r_acc"]
    got = acc[1](
        prompts=["p", "p"],
        completions=[completion(ans="yes"), completion(ans="no")],
        answer=["yes", "yes"],
    )
    assert got == [1.0, 0.0]
    with pytest.raises(ValueError, match="need an embedding model"):
        StepRewards(None).score([completion()], ["yes"], [REF.tolist()])
    with pytest.raises(ValueError, match="unknown reward 'kl'"):
        StepRewards(None).functions(["kl"])


# -- answer tokens and Ans-CO ---------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer():
    from avtrust.models.tokenizer import qwen_tokenizer

    return qwen_tokenizer()


@pytest.mark.parametrize(
    "text",
    [
        completion(ans="yes"),
        completion(ans="a cello and a violin"),
        "<a-think>x</a-think><v-think>y</v-think>"
        "<answer>Mismatch in audio and video</answer><|im_end|>",
    ],
)
def test_answer_mask_covers_exactly_the_answer(tokenizer, text):
    enc = tokenizer(text, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    mask = answer_token_mask(ids, tokenizer)
    lo, hi = answer_span(text)
    # independent check through the tokenizer's own offsets: a token is an answer token
    # iff it carries a character of the answer
    assert mask == [s < hi and e > lo for s, e in offsets]
    masked = [i for i, m in enumerate(mask) if m]
    assert masked == list(range(masked[0], masked[-1] + 1))  # one contiguous run
    assert offsets[masked[0]][0] <= lo and offsets[masked[-1]][1] >= hi
    masked_text = tokenizer.decode([ids[i] for i in masked])
    assert text[lo:hi] in masked_text
    # nothing but the answer and, where BPE merged them, characters of the tags
    assert set(masked_text.replace(text[lo:hi], "", 1)) <= set("<>/answer")
    # spans built by hand
    assert mask_from_spans([(0, 2), (2, 5), (5, 9)], (3, 5)) == [False, True, False]
    assert mask_from_spans([(0, 2), (2, 2)], None) == [False, False]


def test_no_answer_tag_no_answer_tokens(tokenizer):
    ids = tokenizer("<a-think>x</a-think> nothing else")["input_ids"]
    assert not any(answer_token_mask(ids, tokenizer))


def test_answer_uncertainty():
    assert answer_uncertainty(["yes"] * 6) == 0.0
    assert answer_uncertainty(["Yes", "yes.", "no", "no", "no", "no"]) == pytest.approx(1 / 3)
    assert answer_uncertainty(["a", "b", "c", "d", "e", "f"]) == pytest.approx(5 / 6)
    # completions without an answer never agree with each other
    assert answer_uncertainty([None] * 6) == pytest.approx(5 / 6)
    assert answer_uncertainty([None, None, None, None, "a", "a"]) == pytest.approx(2 / 3)


YES_NO = ["yes", "no"]
REWORDED_NO = [
    "No",
    "no.",
    "No, there is no violin.",
    "The answer is no",
    "NO!",
    "no I cannot hear it",
]


def test_uncertainty_counts_options_not_wordings():
    # six rewordings of "no" name one option: they all agree
    assert answer_uncertainty(REWORDED_NO, YES_NO) == 0.0
    assert all(is_correct(a, "no", YES_NO) for a in REWORDED_NO)
    # compared as normalised free text only "No", "no." and "NO!" would agree: u = 1/2
    assert answer_uncertainty(REWORDED_NO) == pytest.approx(1 / 2)
    # the same mapping as correctness: an answer naming two options maps to none
    assert answer_choice("cello or violin", ["violin", "cello"]) is None
    assert answer_choice("It is the cello.", ["violin", "cello"]) == "cello"
    assert answer_choice("  ", YES_NO) is None and answer_choice("piano", YES_NO) is None
    opts = ["violin", "cello", "piano", "flute", "drum", "guitar"]
    # K = 6, no two agree: u = 5/6 > 0.75 -> lambda = 0
    spread = ["the violin", "Cello.", "a piano", "flute!", "drum", "It's a guitar"]
    u = answer_uncertainty(spread, opts)
    assert u == pytest.approx(5 / 6)
    assert entropy_weights([u], lam=0.5, threshold=0.75).tolist() == [0.0]
    # answers naming no option, or several, never agree with each other
    assert answer_uncertainty(["cello or violin"] * 6, opts) == pytest.approx(5 / 6)
    assert answer_uncertainty(["no idea"] * 3 + ["cello"] * 3, opts) == pytest.approx(1 / 2)
    # 4 of 6 agree on "cello" through different wordings: u = 1/3
    mixed = ["cello", "The cello.", "a cello playing", "CELLO", "violin", None]
    assert answer_uncertainty(mixed, opts) == pytest.approx(1 / 3)


def test_uncertainty_gate():
    w = entropy_weights([0.0, 0.5, 0.75, 0.76, 0.9], lam=0.5, threshold=0.75)
    assert w.tolist() == [0.5, 0.5, 0.5, 0.0, 0.0]


def test_entropy_term_acts_on_answer_tokens_only():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    b, t, v = 2, 6, 11
    logits = torch.randn(b, t, v, requires_grad=True)
    labels = torch.randint(0, v, (b, t))
    labels[:, :2] = -100  # prompt
    answer = torch.zeros(b, t, dtype=torch.bool)
    answer[0, 3:5] = True  # sample 0: tokens 3, 4 are the answer; sample 1: none
    loss, stats = ansco_loss(logits, labels, answer, torch.tensor([0.5, 0.5]))
    nll_only, _ = ansco_loss(logits, labels, answer, torch.tensor([0.0, 0.0]))
    logp = torch.log_softmax(logits.detach(), -1)
    ent = -(logp.exp() * logp).sum(-1)
    # token t is predicted at position t - 1: the answer tokens 3, 4 from positions 2, 3
    expected = 0.5 * ent[0, 2:4].mean() / 2  # mean over the batch of λ_i·H̄_i
    torch.testing.assert_close(loss - nll_only, expected)
    torch.testing.assert_close(stats["answer_entropy"], ent[0, 2:4].mean())
    (loss - nll_only).backward()
    grad = logits.grad.abs().sum(-1)
    assert torch.all(grad[0, 2:4] > 0)
    outside = torch.ones_like(grad, dtype=torch.bool)
    outside[0, 2:4] = False
    assert torch.all(grad[outside] == 0)  # zero outside the answer
    # the u gate: λ = 0 for the sample removes its entropy term entirely
    gated, _ = ansco_loss(logits, labels, answer, entropy_weights([0.9, 0.1], 0.5, 0.75))
    torch.testing.assert_close(gated, nll_only)


def test_scores_reused_only_for_the_same_inputs():
    rewards = StepRewards(TableEmbedder(TABLE), omega=0.8)
    texts = [completion(a="close", v="saw e1", ans="cello")]
    first = rewards.score(texts, ["cello"], [REF.tolist()], [["violin", "cello"]])
    assert first["arr"].tolist() == [1.0]
    assert rewards.score(texts, ["cello"], [REF.tolist()], [["violin", "cello"]]) is first
    # same texts and answers, another reference: cos 0 with "close"'s vector -> no r_arr
    other = rewards.score(texts, ["cello"], [[0.0, 0.0, 1.0]], [["violin", "cello"]])
    assert other["arr"].tolist() == [0.0]
    assert other["sim_reference"][0] == pytest.approx(0.0, abs=1e-6)
    # same texts, reference and truth, no options: "It is the cello" is not "cello"
    named = [completion(a="close", v="saw e1", ans="It is the cello")]
    assert rewards.score(named, ["cello"], [REF.tolist()], [["violin", "cello"]])[
        "accuracy"
    ].tolist() == [1.0]
    assert rewards.score(named, ["cello"], [REF.tolist()], None)["accuracy"].tolist() == [0.0]
    # another ground truth with the same texts
    assert rewards.score(texts, ["violin"], [REF.tolist()], None)["accuracy"].tolist() == [0.0]


# -- edges of the parsing and of the reward functions -----------------------------------


def test_tag_content_takes_the_first_pair_in_order():
    from avtrust.train.rewards import tag_content

    assert tag_content("<answer>a</answer> <answer>b</answer>", "answer") == "a"
    # a closing tag before the opening one does not close it
    assert tag_content("</answer> <answer>yes", "answer") is None
    assert tag_content("<answer> yes </answer>", "answer") == "yes"
    assert tag_content("<v-think>seen</v-think>", "a-think") is None


def test_a_second_closing_tag_is_not_well_formed():
    # the pattern alone would read "a</answer>" as the answer
    text = "<a-think>x</a-think><v-think>y</v-think><answer>a</answer></answer>"
    assert not well_formed(text)


class RecordingEmbedder(TableEmbedder):
    """Records the batch size and instruction of each call; ``drop`` rows go missing."""

    def __init__(self, table, drop: int = 0):
        super().__init__(table)
        self.drop = drop
        self.kwargs: list[dict] = []

    def embed(self, texts, batch_size=64, **kwargs):
        self.kwargs.append({"batch_size": batch_size, **kwargs})
        out = super().embed(texts, batch_size)
        return out[: len(out) - self.drop]


def test_embedder_gets_the_batch_size_and_instruction():
    texts = [completion(a="close", v="saw e1")]
    plain = StepRewards(RecordingEmbedder(TABLE), batch_size=7)
    plain.score(texts, ["yes"], [REF.tolist()])
    assert plain.embedder.kwargs == [{"batch_size": 7}]  # the embedder's own instruction
    told = StepRewards(RecordingEmbedder(TABLE), instruction="Compare the reasoning")
    told.score(texts, ["yes"], [REF.tolist()])
    assert told.embedder.kwargs == [{"batch_size": 64, "instruction": "Compare the reasoning"}]
    assert told.embed_calls == 1
    told.score(texts, ["no"], [REF.tolist()])  # another batch: another call
    assert told.embed_calls == 2
    with pytest.raises(ValueError):  # an embedder returning fewer rows than texts
        StepRewards(RecordingEmbedder(TABLE, drop=1)).score(texts, ["yes"], [REF.tolist()])


def test_omega_bounds_and_the_strict_threshold():
    for omega in (0.0, 1.0):
        StepRewards(None, omega=omega)
    for omega in (-0.1, 1.5):
        with pytest.raises(ValueError, match=rf"^omega must lie in \[0, 1\], got {omega}$"):
            StepRewards(None, omega=omega)
    # cos = 1 exactly with ω = 1: not above the threshold
    out, _ = score([completion(a="saw e1", v="saw e1")], ["yes"], omega=1.0)
    assert out["sim_reference"][0] == 1.0 and out["arr"].tolist() == [0.0]


def test_embeddings_are_normalised_before_the_cosine():
    rewards = StepRewards(TableEmbedder({**TABLE, "long": [1.8, 0.0, 0.0], "zero": [0.0] * 3}))
    texts = [completion(a="long", v="saw e1"), completion(a="zero", v="saw e1")]
    # references of norm 0.5 and 2: the cosine, not the dot product
    out = rewards.score(texts, ["yes", "yes"], [[0.3, 0.4, 0.0], [0.0, 0.0, 2.0]])
    np.testing.assert_allclose(out["sim_reference"], [0.6, 0.0], atol=1e-6)
    np.testing.assert_allclose(out["sim_av"], [1.0, 0.0], atol=1e-6)
    zero_ref = rewards.score(texts[:1], ["yes"], [[0.0, 0.0, 0.0]])
    assert zero_ref["sim_reference"].tolist() == [0.0]  # no NaN from a zero vector


def test_reward_functions_pass_options_and_log_accuracy_once():
    logged = []
    funcs = StepRewards(TableEmbedder(TABLE)).functions(["format", "accuracy"])
    columns = {
        "answer": ["cello", "cello"],
        "options": [["violin", "cello"], ["violin", "cello"]],
        "log_metric": lambda name, value: logged.append((name, value)),
    }
    texts = [completion(ans="It is the cello"), completion(ans="the violin")]
    assert funcs[0](["p", "p"], texts, None, **columns) == [1.0, 1.0]
    assert logged == [("accuracy", 0.5)]  # by the first function TRL calls
    assert funcs[1](["p", "p"], texts, None, **columns) == [1.0, 0.0]  # names the option
    assert logged == [("accuracy", 0.5)]  # and by that one only


@pytest.mark.parametrize("component", ["arr", "avc"])
def test_either_reasoning_reward_alone_scores_the_reasoning(component):
    (func,) = StepRewards(TableEmbedder(TABLE)).functions([component])
    got = func(["p"], [completion(a="close", v="saw e1")], None, answer=["yes"],
               reference_embedding=[REF.tolist()])  # fmt: skip
    assert got == pytest.approx([1.0] if component == "arr" else [1.9])


def test_score_errors_name_the_problem():
    rewards = StepRewards(TableEmbedder(TABLE))
    with pytest.raises(ValueError, match="^2 completions but 1 answers$"):
        rewards.score([completion(), completion()], ["yes"], [REF.tolist()] * 2)
    with pytest.raises(
        ValueError, match="^the reasoning rewards need the `reference_embedding` column$"
    ):
        rewards.score([completion()], ["yes"], None)
    with pytest.raises(ValueError, match=r"^the reasoning rewards \(arr, avc\) need an embedding"):
        StepRewards(None).score([completion()], ["yes"], [REF.tolist()])
    with pytest.raises(ValueError, match=r"^unknown reward 'kl' \(format, arr, avc, accuracy\)$"):
        rewards.functions(["kl"])
    with pytest.raises(ValueError):  # options for one completion of two
        rewards.score([completion(), completion()], ["yes"] * 2, [REF.tolist()] * 2, [None])


def test_conversational_completions_score_the_last_message():
    chat = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "<answer>no</answer>"},
        {"role": "assistant", "content": completion(ans="yes")},
    ]
    out, _ = score([chat], ["yes"])
    assert out["format"].tolist() == [1.0] and out["accuracy"].tolist() == [1.0]


def test_cached_scores_depend_on_options_and_on_reasoning():
    rewards = StepRewards(TableEmbedder(TABLE))
    texts = [completion(a="close", v="saw e1", ans="It is the cello")] * 2
    refs = [REF.tolist()] * 2
    mixed = rewards.score(texts, ["cello"] * 2, refs, [None, ["violin", "cello"]])
    assert mixed["accuracy"].tolist() == [0.0, 1.0]
    other = rewards.score(texts, ["cello"] * 2, refs, [["violin", "piano"]] * 2)
    assert other["accuracy"].tolist() == [0.0, 0.0]
    same = rewards.score(texts, ["cello"] * 2, refs, [["violin", "cello"]] * 2)
    assert same["accuracy"].tolist() == [1.0, 1.0]
    plain = rewards.score(texts, ["cello"] * 2, refs, [["violin", "cello"]] * 2, reasoning=False)
    assert plain["arr"].tolist() == [0.0, 0.0]
    full = rewards.score(texts, ["cello"] * 2, refs, [["violin", "cello"]] * 2, reasoning=True)
    assert full["arr"].tolist() == [1.0, 1.0]


def test_load_reward_finds_the_function_or_says_why_not():
    from avtrust.errors import ConfigError
    from avtrust.train.rewards import load_reward

    assert load_reward("avtrust.train.rewards:parse") is parse
    where = "rlcomm.steprr extra_rewards"
    for ref in ("avtrust.train.rewards", ":parse", "avtrust.train.rewards:", "a:b:parse"):
        with pytest.raises(ConfigError, match=rf"^{where}: '{ref}' is not of the form"):
            load_reward(ref, where)
    with pytest.raises(
        ConfigError, match=r"^rlcomm extra_rewards: cannot import 'avtrust\.nowhere' for "
        r"'avtrust\.nowhere:f' \(No module named 'avtrust\.nowhere'\)$",
    ):  # fmt: skip
        load_reward("avtrust.nowhere:f")
    for name in ("nothing", "TAGS"):  # missing, and not callable
        with pytest.raises(
            ConfigError,
            match=rf"^rlcomm extra_rewards: 'avtrust\.train\.rewards' has no function '{name}' "
            rf"\('avtrust\.train\.rewards:{name}'\)$",
        ):
            load_reward(f"avtrust.train.rewards:{name}")


def test_a_missing_think_never_borrows_another_completions_embedding():
    rewards = StepRewards(TableEmbedder({**TABLE, "XXXX": [1.0, 0.0, 0.0]}))
    texts = [
        completion(a="XXXX", v="XXXX"),  # placeholder-like texts are ordinary thinks
        "<answer>yes</answer>",  # no think at all
        "<a-think>close</a-think> <answer>yes</answer>",  # no v-think
    ]
    out = rewards.score(texts, ["yes"] * 3, [REF.tolist()] * 3)
    assert out["sim_reference"][0] == pytest.approx(1.0) and np.isnan(out["sim_reference"][1])
    assert np.isnan(out["sim_av"][1]) and np.isnan(out["sim_av"][2])
    assert out["avc"].tolist() == pytest.approx([2.0, 1.0, 1.0])


def test_prompt_rewards_read_the_start_and_last_evaluations():
    """metrics.json's before/after figures: the trainer's evaluation at step 0 and its
    last one, under the log.jsonl names; a resumed run whose log starts after step 0
    reports no start; off, nothing."""
    from types import SimpleNamespace

    from avtrust.train.config import GRPOSettings
    from avtrust.train.rlcomm import prompt_rewards

    def evaluation(step, mean, fmt):
        return {
            "eval_loss": 0.0,
            "eval_reward": mean,
            "eval_reward_std": 0.3,
            "eval_rewards/r_format/mean": fmt,
            "eval_rewards/r_format/std": 0.1,
            "eval_completions/mean_length": 12.0,
            "step": step,
        }

    history = [evaluation(0, 0.2, 0.1), {"loss": 0.0, "step": 1}, evaluation(3, 0.7, 0.9)]
    settings = GRPOSettings(method="grpo_acc", family="grpo", seed=1)
    trainer = SimpleNamespace(state=SimpleNamespace(log_history=history))
    assert prompt_rewards(trainer, settings) == {
        "reward_mean_before": 0.2,
        "reward_format_before": 0.1,
        "reward_mean_after": 0.7,
        "reward_format_after": 0.9,
    }
    trainer.state.log_history = history[1:]  # resumed after the start's scoring was lost
    assert prompt_rewards(trainer, settings) == {
        "reward_mean_after": 0.7,
        "reward_format_after": 0.9,
    }
    off = GRPOSettings(method="grpo_acc", family="grpo", seed=1, reward_before_after=False)
    assert prompt_rewards(trainer, off) == {}
