"""Ans-CO on hand numbers: the loss (NLL per sequence, answer-token entropy, sign),
exactness under gradient accumulation, the answer mask on the project's tokenizer and
the target preparation on the tiny Omni thinker."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")

from avtrust.train.ansco import (  # noqa: E402
    AnsCOTrainer,
    ansco_loss,
    answer_span,
    answer_token_mask,
)

# -- the loss on hand numbers -------------------------------------------------------------

LN = math.log


def two_sequences():
    """Vocabulary {0, 1}. Sample 0: one response token, predicted from logits [0, 0]
    (p = 1/2). Sample 1: three response tokens (all token 0), each predicted from
    logits [ln 3, 0] (p = 3/4); its last two are the answer tokens."""
    logits = torch.zeros(2, 5, 2)
    logits[1, :, 0] = LN(3.0)
    labels = torch.full((2, 5), -100)
    labels[0, 4] = 0  # predicted at position 3
    labels[1, 2:5] = 0  # predicted at positions 1, 2, 3
    answer = torch.zeros(2, 5, dtype=torch.bool)
    answer[1, 3:5] = True
    return logits.requires_grad_(), labels, answer


H34 = -(0.75 * LN(0.75) + 0.25 * LN(0.25))  # entropy of (3/4, 1/4)


def test_nll_is_averaged_per_sequence_then_over_the_batch():
    logits, labels, answer = two_sequences()
    loss, stats = ansco_loss(logits, labels, answer, torch.tensor([0.0, 0.0]))
    # paper: (1/T_i)·Σ_t per sequence, then the batch mean: (ln 2 + ln 4/3) / 2 = 0.4904;
    # the token mean over the batch would be (ln 2 + 3·ln 4/3) / 4 = 0.3890
    expected = (LN(2.0) + LN(4 / 3)) / 2
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert stats["nll"].item() == pytest.approx(expected, abs=1e-6)
    assert loss.item() > 0
    total, _ = ansco_loss(logits, labels, answer, torch.tensor([0.0, 0.0]), reduction="sum")
    assert total.item() == pytest.approx(LN(2.0) + LN(4 / 3), abs=1e-6)


def test_entropy_term_on_hand_numbers():
    logits, labels, answer = two_sequences()
    loss, stats = ansco_loss(logits, labels, answer, torch.tensor([0.5, 0.5]))
    # sample 0 has no answer tokens (H̄ = 0), sample 1's two answer tokens have H(3/4)
    expected_term = (0.0 + 0.5 * H34) / 2
    assert stats["entropy_term"].item() == pytest.approx(expected_term, abs=1e-6)
    assert stats["answer_entropy"].item() == pytest.approx(H34, abs=1e-6)
    assert loss.item() == pytest.approx((LN(2.0) + LN(4 / 3)) / 2 + expected_term, abs=1e-6)


def test_descending_the_loss_raises_the_target_and_lowers_answer_entropy():
    logits, labels, answer = two_sequences()
    loss, _ = ansco_loss(logits, labels, answer, torch.tensor([0.0, 0.0]))
    loss.backward()
    # the target token 0's logit must go up under gradient descent (−grad > 0)
    assert logits.grad[0, 3, 0] < 0 and logits.grad[1, 1:4, 0].lt(0).all()
    # sequence mean: sample 0's one token weighs 1/2, each of sample 1's three 1/6
    torch.testing.assert_close(logits.grad[0, 3, 0], torch.tensor(-0.5 * 0.5))
    torch.testing.assert_close(logits.grad[1, 1, 0], torch.tensor(-(1 - 0.75) / 6))
    # entropy only: one gradient step makes the answer distribution sharper
    logits2, labels2, answer2 = two_sequences()
    nll, _ = ansco_loss(logits2, labels2, answer2, torch.tensor([0.0, 0.0]))
    full, _ = ansco_loss(logits2, labels2, answer2, torch.tensor([0.5, 0.5]))
    (full - nll).backward()
    stepped = (logits2 - 0.5 * logits2.grad).detach()
    _, after = ansco_loss(stepped, labels2, answer2, torch.tensor([0.5, 0.5]))
    assert after["answer_entropy"].item() < H34
    # the entropy term touches the answer positions (2, 3) of sample 1 only
    touched = logits2.grad.abs().sum(-1) > 0
    assert touched.nonzero().tolist() == [[1, 2], [1, 3]]


def test_sequences_without_response_tokens_do_not_count():
    logits, labels, answer = two_sequences()
    labels = torch.cat([labels, torch.full((1, 5), -100)])
    logits = torch.cat([logits.detach(), torch.zeros(1, 5, 2)])
    answer = torch.cat([answer, torch.zeros(1, 5, dtype=torch.bool)])
    loss, stats = ansco_loss(logits, labels, answer, torch.zeros(3))
    assert stats["sequences"].item() == 2
    assert loss.item() == pytest.approx((LN(2.0) + LN(4 / 3)) / 2, abs=1e-6)


# -- gradient accumulation: every sequence weighs the same ------------------------------


class ToyLM(torch.nn.Module):
    """Logits from an embedding table: a causal LM without context."""

    def __init__(self, vocab: int = 5):
        super().__init__()
        torch.manual_seed(0)
        self.table = torch.nn.Embedding(vocab, vocab)

    def forward(self, input_ids, attention_mask=None, **_):
        return SimpleNamespace(logits=self.table(input_ids))


# four responses of 1, 4, 2 and 3 tokens (unequal: a mean per micro-batch is not exact)
ROWS = [
    {"ids": [1, 2], "n": 1, "answer": [1], "u": 0.0},
    {"ids": [3, 1, 4, 2, 0], "n": 4, "answer": [3, 4], "u": 0.0},
    {"ids": [2, 2, 3], "n": 2, "answer": [2], "u": 0.9},
    {"ids": [4, 0, 1, 3], "n": 3, "answer": [], "u": 0.0},
]


def collate(rows):
    width = max(len(r["ids"]) for r in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    labels = torch.full((len(rows), width), -100)
    answer = torch.zeros(len(rows), width, dtype=torch.bool)
    for b, r in enumerate(rows):
        n = len(r["ids"])
        ids[b, :n] = torch.tensor(r["ids"])
        labels[b, n - r["n"] : n] = torch.tensor(r["ids"][n - r["n"] :])
        answer[b, r["answer"]] = True
    weight = torch.tensor([0.0 if r["u"] > 0.75 else 0.5 for r in rows])
    return {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "labels": labels,
        "answer_mask": answer,
        "entropy_weight": weight,
    }


def one_step(tmp_path, batch_size: int, grad_accum: int) -> torch.Tensor:
    from datasets import Dataset
    from transformers import TrainingArguments

    model = ToyLM()
    args = TrainingArguments(
        output_dir=str(tmp_path / f"b{batch_size}g{grad_accum}"),
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=grad_accum,
        learning_rate=1.0,
        optim="sgd",
        lr_scheduler_type="constant",
        weight_decay=0.0,
        max_grad_norm=0.0,
        max_steps=1,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        remove_unused_columns=False,
        dataloader_drop_last=False,
        seed=1,
    )
    before = model.table.weight.detach().clone()
    trainer = AnsCOTrainer(
        model=model, args=args, train_dataset=Dataset.from_list(ROWS), data_collator=collate
    )
    trainer.train()
    return model.table.weight.detach() - before


def test_gradient_accumulation_weighs_every_sequence_once(tmp_path):
    # the exact step: −lr·∇ of the mean of L_i over the four sequences
    model = ToyLM()
    batch = collate(ROWS)
    loss, _ = ansco_loss(
        model(batch["input_ids"]).logits,
        batch["labels"],
        batch["answer_mask"],
        batch["entropy_weight"],
    )
    loss.backward()
    exact = -model.table.weight.grad
    whole = one_step(tmp_path, 4, 1)
    torch.testing.assert_close(whole, exact)
    torch.testing.assert_close(one_step(tmp_path, 1, 4), exact)  # four micro-batches
    torch.testing.assert_close(one_step(tmp_path, 3, 2), exact)  # micro-batches of 3 and 1


# -- answer tokens on the project's tokenizer ---------------------------------------------


@pytest.fixture(scope="module")
def tokenizer():
    from avtrust.models.tokenizer import qwen_tokenizer

    return qwen_tokenizer()


@pytest.mark.parametrize(
    "answer",
    ["yes", "a cello and a violin", "Mismatch in audio and video", "two"],
)
def test_answer_mask_is_the_answer_text_exactly(tokenizer, answer):
    text = (
        "<a-think>a violin plays</a-think> <v-think>I see a violin</v-think> "
        f"<answer>{answer}</answer><|im_end|>\n"
    )
    lo = text.index("<answer>") + len("<answer>")  # written out, not answer_span's
    hi = text.index("</answer>")
    assert answer_span(text) == (lo, hi)
    assert text[lo:hi] == answer
    ids = tokenizer(text)["input_ids"]
    mask = answer_token_mask(ids, tokenizer)
    masked = [i for i, m in enumerate(mask) if m]
    assert masked == list(range(masked[0], masked[-1] + 1))
    # the masked tokens decode to the answer itself (plus, where BPE merged across the
    # boundary, tag characters): never the whole tag, never text after </answer>
    decoded = tokenizer.decode([ids[i] for i in masked])
    assert answer in decoded
    assert "<answer>" not in decoded and "</answer>" not in decoded
    assert "<|im_end|>" not in decoded
    # the tokens just outside the run carry tag text
    assert "<answer>"[-1] in tokenizer.decode(ids[: masked[0]])
    assert tokenizer.decode(ids[masked[-1] + 1 :]).lstrip(answer[-1:]).startswith("</")


def test_unclosed_answer_runs_to_the_end_and_missing_answer_is_empty(tokenizer):
    text = "<a-think>x</a-think> <v-think>y</v-think> <answer>a violin"
    assert answer_span(text) == (len(text) - len("a violin"), len(text))
    ids = tokenizer(text)["input_ids"]
    mask = answer_token_mask(ids, tokenizer)
    assert "a violin" in tokenizer.decode([i for i, m in zip(ids, mask, strict=True) if m])
    assert answer_span("<a-think>x</a-think>") is None
    assert not any(answer_token_mask(tokenizer("<a-think>x</a-think>")["input_ids"], tokenizer))


# -- targets ------------------------------------------------------------------------------


def target_row(**over) -> dict:
    row = {
        "id": "s0",
        "media_path": "clip.mp4",
        "prompt": "Is there a violin sound?",
        "answer": "no",
        "options": ["yes", "no"],
        "reference_a_think": "A cello is heard.",
        "visual_labels": ["violin"],
        "has_video": True,
    }
    return {**row, **over}


def fmt(answer: str, a: str = "a cello") -> str:
    return f"<a-think>{a}</a-think> <v-think>a violin</v-think> <answer>{answer}</answer>"


def test_target_is_the_first_correct_well_formed_completion():
    from avtrust.train.ansco_targets import choose_target, reference_response

    texts = [
        fmt("yes"),  # wrong
        "<answer>No</answer>",  # correct but not well-formed
        fmt("No, there is none.", a="first"),  # the target
        fmt("no", a="second"),
    ]
    got = choose_target(texts, target_row())
    assert got == {"response": fmt("No, there is none.", a="first"), "uncertainty": 0.25,
                   "origin": "sampled"}  # fmt: skip
    # three of four name "yes" (u = 1/4), none is correct -> the warm-up response
    ref = choose_target([fmt("yes"), "nothing", fmt("yes."), "<answer>Yes!</answer>"], target_row())
    assert ref["origin"] == "reference" and ref["uncertainty"] == pytest.approx(0.25)
    assert ref["response"] == reference_response(target_row())
    assert ref["response"] == (
        "<a-think>A cello is heard.</a-think> <v-think>The video shows violin.</v-think> "
        "<answer>no</answer>"
    )


@pytest.fixture(scope="module")
def omni_dir(tmp_path_factory):
    from avtrust.models import registry

    out = tmp_path_factory.mktemp("ansco_models") / "omni"
    models = {"omni": {"adapter": "qwen2_5_omni_thinker", "source": "tiny", "location": "x"}}
    registry.prepare(registry.spec_from_config("omni", models), out, seed=3)
    return out


def sampling_settings(**kw):
    """Ans-CO settings sampling K = 3 completions per sample."""
    from avtrust.train.config import AnsCOSettings

    return AnsCOSettings(method="rlcomm_ansco", family="ansco", samples=3, temperature=1.0, **kw)


def test_targets_sampled_in_batches_on_the_stage_device(omni_dir, clips, tmp_path, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from avtrust.models import registry
    from avtrust.train import ansco_targets, job
    from avtrust.train.config import settings_dict

    rows = [
        target_row(id="a", media_path=str(clips["violin"].path)),
        target_row(id="b", media_path=str(clips["audio_only"].path), has_video=False),
        target_row(id="c", media_path=str(clips["cello"].path), prompt="What is heard?"),
    ]
    data = tmp_path / "reference.parquet"
    pq.write_table(pa.Table.from_pylist(rows), data)
    calls, asked = [], []

    def load(spec):
        policy = registry.load(spec["base_dir"], device="cpu")
        generate = policy.model.generate

        def recording(**kw):
            calls.append((kw["input_ids"].shape[0], str(kw["input_ids"].device), kw))
            return generate(**kw)

        policy.model.generate = recording
        return policy

    def resolve(device):
        asked.append(device)
        return "cpu"  # the device this machine has; what matters is who decides

    monkeypatch.setattr(job, "load_start_policy", load)
    monkeypatch.setattr(registry, "resolve_device", resolve)
    spec = {
        "state_dir": str(tmp_path / "state"),
        "inputs": {"data": str(data)},
        "device": "cuda",
        "base_dir": str(omni_dir),
        "settings": settings_dict(sampling_settings(seed=7, batch_size=4, max_completion_length=5)),
    }
    out = ansco_targets.prepare_ansco_targets(spec)
    assert asked[0] == "cuda"  # the stage device decides (registry.load asks for "cpu")
    # two stream kinds -> two generate calls (not one per sample), K rows per sample
    assert sorted(n for n, _, _ in calls) == [3, 6]
    for _, device, kw in calls:
        assert device == "cpu"
        assert all(v.device.type == "cpu" for v in kw.values() if torch.is_tensor(v))
    assert [(r["media_path"], r["prompt"]) for r in out] == [
        (r["media_path"], r["prompt"]) for r in rows
    ]
    for r, row in zip(out, rows, strict=True):
        assert r["uncertainty"] in (0.0, pytest.approx(1 / 3), pytest.approx(2 / 3))
        if r["origin"] == "reference":
            assert r["response"] == ansco_targets.reference_response(row)
    # cached in the resume state: a second call loads no policy
    monkeypatch.setattr(job, "load_start_policy", lambda spec: pytest.fail("reloaded"))
    assert ansco_targets.prepare_ansco_targets(spec) == out


def test_each_sample_gets_its_own_k_completions(omni_dir, clips):
    from avtrust.models import registry
    from avtrust.train.ansco_targets import sample_completions

    policy = registry.load(omni_dir, device="cpu")
    letters = torch.tensor(
        policy.tokenizer.convert_tokens_to_ids(list("abcdefghijklmnopqrstuvwxyz"))
    )

    def echo_length(input_ids, attention_mask, **_):
        # one new token, a letter naming the prompt's length: rows of one sample agree
        new = letters[attention_mask.sum(-1, keepdim=True) % 26]
        return torch.cat([input_ids, new], dim=1)

    policy.model.generate = echo_length
    rows = [
        target_row(id="a", media_path=str(clips["violin"].path)),
        target_row(id="b", media_path=str(clips["cello"].path), prompt="What is heard?"),
        target_row(id="c", media_path=str(clips["audio_only"].path), has_video=False),
    ]
    settings = sampling_settings(batch_size=2, max_completion_length=1)
    texts = sample_completions(policy, rows, settings, seed=1, device="cpu")
    assert [len(t) for t in texts] == [3, 3, 3]
    assert all(len(set(t)) == 1 for t in texts)
    assert texts[0][0] != texts[1][0]


# -- edges found by mutation testing -----------------------------------------------------


def test_answer_span_by_hand():
    assert answer_span("<answer>yes</answer>") == (8, 11)  # a tag at the very start
    assert answer_span("<answer>a</answer> <answer>b</answer>") == (8, 9)  # the first one
    # a closing tag before the opening one does not close it: the rest of the text
    assert answer_span("x</answer><answer>yes") == (18, 21)
    assert answer_span("no tags") is None


def test_token_spans_rebuild_the_text_exactly(tokenizer):
    from avtrust.train.ansco import token_char_spans

    # spaces before punctuation, a special token: decoded as written, nothing cleaned up
    text = "<answer>yes , it is .</answer><|im_end|>"
    ids = tokenizer(text)["input_ids"]
    got, spans = token_char_spans(ids, tokenizer)
    assert got == text
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))
    assert "".join(got[s:e] for s, e in spans) == text


def test_mask_from_spans_skips_empty_tokens():
    from avtrust.train.ansco import mask_from_spans

    # a token that decodes to nothing (a zero-width span) carries no answer character
    assert mask_from_spans([(0, 3), (3, 3), (3, 5), (5, 6)], (2, 5)) == [
        True,
        False,
        True,
        False,
    ]


def test_ansco_loss_rejects_an_unknown_reduction():
    logits, labels, answer = two_sequences()
    with pytest.raises(ValueError, match="^reduction must be 'mean' or 'sum', got 'max'$"):
        ansco_loss(logits, labels, answer, torch.zeros(2), reduction="max")


def test_single_sequence_with_one_answer_token():
    """One sequence, one response token that is the answer: every mean is over one."""
    logits = torch.zeros(1, 3, 2)
    logits[0, 1, 0] = LN(3.0)
    labels = torch.tensor([[-100, -100, 0]])
    answer = torch.tensor([[False, False, True]])
    loss, stats = ansco_loss(logits, labels, answer, [0.5])
    assert loss.item() == pytest.approx(LN(4 / 3) + 0.5 * H34, abs=1e-6)
    assert stats["nll"].item() == pytest.approx(LN(4 / 3), abs=1e-6)
    assert stats["entropy_term"].item() == pytest.approx(0.5 * H34, abs=1e-6)
    assert stats["answer_entropy"].item() == pytest.approx(H34, abs=1e-6)


def test_stats_ignore_sequences_without_response_tokens():
    logits, labels, answer = two_sequences()
    labels = torch.cat([labels, torch.full((1, 5), -100)])
    logits = torch.cat([logits.detach(), torch.zeros(1, 5, 2)])
    answer = torch.cat([answer, torch.zeros(1, 5, dtype=torch.bool)])
    # λ given as float64 (from a pandas column): the loss stays float32
    loss, stats = ansco_loss(logits, labels, answer, torch.tensor([0.5, 0.5, 0.5]).double())
    assert loss.dtype == torch.float32
    assert stats["nll"].item() == pytest.approx((LN(2.0) + LN(4 / 3)) / 2, abs=1e-6)
    assert stats["entropy_term"].item() == pytest.approx(0.5 * H34 / 2, abs=1e-6)
    assert math.isfinite(loss.item())


def test_sequence_count_needs_a_predicted_response_token():
    from avtrust.train.ansco import sequence_count

    labels = torch.tensor([[-100, -100, -100], [-100, -100, 5], [7, -100, -100], [0, 0, 0]])
    # row 2's only label is at position 0, which no position predicts
    assert sequence_count(labels) == 2


def test_integer_uncertainties_still_get_lambda():
    from avtrust.train.ansco import entropy_weights

    w = entropy_weights([0, 1], lam=0.5, threshold=0.75)
    assert w.dtype == torch.float32 and w.tolist() == [0.5, 0.0]


def test_answer_uncertainty_needs_answers():
    from avtrust.train.ansco import answer_uncertainty

    with pytest.raises(ValueError, match="^answer_uncertainty needs at least one sampled answer$"):
        answer_uncertainty([])


class ReversingTokenEncoder:
    """A stand-in for the SequenceEncoder: prompt tokens unlabelled, response tokens
    labelled, rows placed in reverse order, right-padded with -100 labels."""

    def __init__(self, tokenizer):
        self.builder = SimpleNamespace(tokenizer=tokenizer)

    def __call__(self, paths, prompts, responses):
        from avtrust.train.data import Encoded

        seqs = []
        for p, r in zip(prompts, responses, strict=True):
            prompt, response = self.builder.tokenizer(p)["input_ids"], self.builder.tokenizer(r)
            seqs.append((prompt, response["input_ids"]))
        n, width = len(seqs), max(len(a) + len(b) for a, b in seqs)
        ids = torch.zeros(n, width, dtype=torch.long)
        labels = torch.full((n, width), -100)
        for i, (prompt, response) in enumerate(seqs):
            row = n - 1 - i
            ids[row, : len(prompt) + len(response)] = torch.tensor(prompt + response)
            labels[row, len(prompt) : len(prompt) + len(response)] = torch.tensor(response)
        return Encoded({"input_ids": ids, "labels": labels}, [n - 1 - i for i in range(n)])


def test_collator_masks_each_rows_answer_and_gates_lambda(tokenizer):
    from avtrust.train.ansco import AnsCOCollator

    rows = [
        {"media_path": "a.mp4", "prompt": "<answer>not me</answer>", "response": fmt("yes"),
         "uncertainty": 0.0},
        {"media_path": "b.mp4", "prompt": "q", "response": fmt("a cello and a violin"),
         "uncertainty": 0.9},
        {"media_path": "c.mp4", "prompt": "q", "response": "no answer here",
         "uncertainty": 0.5},
    ]  # fmt: skip
    batch = AnsCOCollator(ReversingTokenEncoder(tokenizer), lam=0.5, threshold=0.75)(rows)
    assert set(batch) == {"input_ids", "labels", "answer_mask", "entropy_weight"}
    assert batch["answer_mask"].dtype == torch.bool
    assert batch["answer_mask"].shape == batch["labels"].shape
    # row i sits at batch row 2 − i; its λ too
    assert batch["entropy_weight"].tolist() == [0.5, 0.0, 0.5][::-1]
    for i, r in enumerate(rows):
        b = 2 - i
        mask = batch["answer_mask"][b]
        assert not (mask & (batch["labels"][b] == -100)).any()  # never outside the response
        ids = batch["input_ids"][b][mask].tolist()
        span = answer_span(r["response"])
        if span is None:
            assert not mask.any()
        else:
            decoded = tokenizer.decode(ids)
            assert r["response"][span[0] : span[1]] in decoded and "not me" not in decoded
            assert "<answer>" not in decoded and "</answer>" not in decoded


def make_trainer(tmp_path, model=None, **kwargs):
    from datasets import Dataset
    from transformers import TrainingArguments

    args = TrainingArguments(
        output_dir=str(tmp_path / "t"), use_cpu=True, report_to="none", save_strategy="no",
        disable_tqdm=True, remove_unused_columns=False, **kwargs,
    )  # fmt: skip
    model = model or ToyLM()
    return AnsCOTrainer(model, args, train_dataset=Dataset.from_list(ROWS), data_collator=collate)


def test_trainer_loss_without_a_step_count_is_the_batch_mean(tmp_path):
    trainer = make_trainer(tmp_path)
    trainer._set_signature_columns_if_needed()
    assert trainer._signature_columns == ["media_path", "prompt", "response", "uncertainty"]
    batch = collate(ROWS)
    want, stats = ansco_loss(
        trainer.model(batch["input_ids"]).logits, batch["labels"], batch["answer_mask"],
        batch["entropy_weight"],
    )  # fmt: skip
    loss, out = trainer.compute_loss(trainer.model, dict(batch), return_outputs=True)
    assert loss.item() == pytest.approx(want.item(), abs=1e-6)
    assert out.logits.shape[:2] == batch["input_ids"].shape
    # a one-sequence micro-batch of a one-sequence step: its L_i, not L_i / 2
    one = collate(ROWS[:1])
    alone = trainer.compute_loss(trainer.model, dict(one))
    counted = trainer.compute_loss(trainer.model, dict(one), num_items_in_batch=1)
    assert counted.item() == pytest.approx(alone.item(), abs=1e-6) and alone.item() > 0
    # the logged means: per statistic, over the micro-batches since the last log
    assert set(trainer._stats) == {"nll", "entropy_term", "answer_entropy"}
    assert trainer._stats["nll"][0] == pytest.approx(stats["nll"].item(), abs=1e-6)
    assert len(trainer._stats["nll"]) == 3
    # two processes: Σ L_i / (sequences of the step) × 2, which DDP's average halves again
    trainer.accelerator = SimpleNamespace(num_processes=2)
    step = trainer.compute_loss(trainer.model, dict(batch), num_items_in_batch=8)
    assert step.item() == pytest.approx(want.item() * 4 / 8 * 2, abs=1e-6)


def test_trainer_log_adds_the_means_and_starts_over(tmp_path, monkeypatch):
    from transformers import Trainer

    trainer = make_trainer(tmp_path)
    seen = []
    monkeypatch.setattr(Trainer, "log", lambda self, logs, *a, **k: seen.append((logs, a, k)))
    trainer._stats = {"nll": [1.0, 2.0], "entropy_term": [0.5]}
    trainer.log({"eval_loss": 3.0}, 12.5)  # not a training log: nothing added
    assert seen[-1] == ({"eval_loss": 3.0}, (12.5,), {})
    trainer.log({"loss": 1.0}, 12.5, extra=1)
    assert seen[-1] == ({"loss": 1.0, "nll": 1.5, "entropy_term": 0.5}, (12.5,), {"extra": 1})
    assert trainer._stats == {}
    trainer.compute_loss(trainer.model, collate(ROWS[:1]))  # collects again after a log
    assert len(trainer._stats["nll"]) == 1


def test_step_sequence_count_over_micro_batches_and_processes():
    def fake(world: int):
        return SimpleNamespace(
            args=SimpleNamespace(world_size=world),
            # another process holding 3 sequences
            accelerator=SimpleNamespace(gather=lambda t: torch.stack([t, t.new_tensor(3)])),
        )

    count = AnsCOTrainer._get_num_items_in_batch
    micro = [collate(ROWS[:2]), collate(ROWS[2:])]
    assert count(fake(1), micro, "cpu").item() == 4
    assert count(fake(2), micro, "cpu").item() == 7
    assert count(fake(1), [], "cpu") is None
    assert count(fake(1), [{"input_ids": torch.zeros(1, 2)}], "cpu") is None


def test_everything_stays_on_the_logits_device():
    """λ given as a list (from the collator) and the step's sequence count are put on the
    model's device; the meta device stands in for an accelerator here (mixing it with
    CPU tensors fails as mixing CUDA and CPU tensors does)."""
    logits = torch.zeros(2, 5, 3, device="meta")
    labels = torch.zeros(2, 5, dtype=torch.long, device="meta")
    answer = torch.zeros(2, 5, dtype=torch.bool, device="meta")
    loss, stats = ansco_loss(logits, labels, answer, [0.5, 0.5])
    assert loss.device.type == "meta" and stats["entropy_term"].device.type == "meta"
    fake = SimpleNamespace(args=SimpleNamespace(world_size=1))
    count = AnsCOTrainer._get_num_items_in_batch(fake, [collate(ROWS)], torch.device("meta"))
    assert count.device.type == "meta"
