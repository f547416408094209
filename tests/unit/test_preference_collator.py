"""The CAVPref collator's roles without a model: which (clip, response) sequences each
sample runs, which batch row holds each of the four roles (y_w|V,A; y_l|V,A;
y_w|V',A; y_w|V,A'), and the per-sample β, η, γ and reference columns.

A stand-in encoder records the sequences and places them in the merged batch in
reverse order (the real encoder groups them by stream kind, so a sequence's batch row
is generally not its request position): a collator that ignores ``rows`` fails here.
"""

from __future__ import annotations

import pytest
import torch

from avtrust.train.data import Encoded
from avtrust.train.trainers import ROLES, PreferenceCollator


class ReversingEncoder:
    """Batch row of sequence i = n − 1 − i; the batch holds the sequences themselves."""

    def __init__(self):
        self.calls = []

    def __call__(self, paths, prompts, responses):
        seqs = list(zip(paths, prompts, responses, strict=True))
        self.calls.append(seqs)
        n = len(seqs)
        return Encoded({"seqs": seqs[::-1]}, [n - 1 - i for i in range(n)])


def row(i: int, eta: float, gamma: float, refs: bool = True) -> dict:
    out = {
        "media_path": f"av{i}.mp4",
        "video_corrupted_path": f"v'{i}.mp4",
        "audio_corrupted_path": f"a'{i}.mp4",
        "prompt": f"question {i}",
        "chosen": f"yes {i}",
        "rejected": f"no {i}",
        "eta": eta,
        "gamma": gamma,
        "beta_text": 0.1 + i,
        "beta_video": 0.2 + i,
        "beta_audio": 0.3 + i,
    }
    if refs:
        out.update({f"ref_{role}": -(10.0 * i + k) for k, role in enumerate(ROLES)})
    return out


# η, γ of the four samples: both terms, video only, audio only, neither.
WEIGHTS = [(1.0, 1.0), (0.5, 0.0), (0.0, 2.0), (0.0, 0.0)]


def role_sequences(batch) -> list[list[tuple[str, str, str]]]:
    """The (clip, prompt, response) each sample's roles read, through ``index``."""
    seqs = batch["model"]["seqs"]
    return [[seqs[j] for j in sample] for sample in batch["index"].tolist()]


def expected_roles(r: dict) -> list[tuple[str, str, str]]:
    return [
        (r["media_path"], r["prompt"], r["chosen"]),
        (r["media_path"], r["prompt"], r["rejected"]),
        (r["video_corrupted_path"], r["prompt"], r["chosen"]),
        (r["audio_corrupted_path"], r["prompt"], r["chosen"]),
    ]


@pytest.mark.parametrize("skip", [True, False])
def test_each_role_reads_its_own_sequence(skip):
    rows = [row(i, *w) for i, w in enumerate(WEIGHTS)]
    encoder = ReversingEncoder()
    batch = PreferenceCollator(encoder, av_terms=True, skip_unweighted=skip)(rows)
    assert batch["index"].dtype == torch.long and batch["index"].shape == (4, 4)
    got = role_sequences(batch)
    for r, roles in zip(rows, got, strict=True):
        want = expected_roles(r)
        # a skipped corrupted-clip role reads y_w|V,A (its term has weight 0)
        if skip and r["eta"] == 0:
            want[2] = want[0]
        if skip and r["gamma"] == 0:
            want[3] = want[0]
        assert roles == want
    # one encoder call; the skipped sequences are not run at all
    (sent,) = encoder.calls
    assert len(sent) == (4 + 3 + 3 + 2 if skip else 16)
    assert len(set(sent)) == len(sent)


def test_sequences_are_requested_sample_by_sample_in_role_order():
    collator = PreferenceCollator(ReversingEncoder(), av_terms=True)
    r = row(0, 1.0, 1.0)
    assert collator.sequences(r) == [
        ("av0.mp4", "yes 0"),
        ("av0.mp4", "no 0"),
        ("v'0.mp4", "yes 0"),
        ("a'0.mp4", "yes 0"),
    ]
    assert collator.roles_run(r) == [0, 1, 2, 3]
    assert collator.roles_run(row(0, 1.0, 0.0)) == [0, 1, 2, 0]
    assert collator.roles_run(row(0, 0.0, 1.0)) == [0, 1, 0, 2]
    assert collator.roles_run(row(0, 0.0, 0.0)) == [0, 1, 0, 0]
    assert collator.sequences(row(0, 0.0, 1.0))[2] == ("a'0.mp4", "yes 0")
    collator.skip_unweighted = False
    assert collator.roles_run(row(0, 0.0, 0.0)) == [0, 1, 2, 3]
    assert len(collator.sequences(row(0, 0.0, 0.0))) == 4


def test_beta_eta_gamma_and_references_per_sample():
    rows = [row(i, *w) for i, w in enumerate(WEIGHTS)]
    batch = PreferenceCollator(ReversingEncoder(), av_terms=True)(rows)
    assert batch["beta"].dtype == torch.float32
    want_beta = [[0.1 + i, 0.2 + i, 0.3 + i] for i in range(4)]
    assert batch["beta"].tolist() == [pytest.approx(b) for b in want_beta]
    assert batch["eta"].dtype == torch.float32 and batch["gamma"].dtype == torch.float32
    assert batch["eta"].tolist() == [w[0] for w in WEIGHTS]
    assert batch["gamma"].tolist() == [w[1] for w in WEIGHTS]
    # references in ROLES order, one row per sample
    assert batch["ref"].dtype == torch.float32
    assert batch["ref"].tolist() == [[-(10.0 * i + k) for k in range(4)] for i in range(4)]


def test_references_only_when_every_row_has_every_role():
    rows = [row(0, 1.0, 1.0), row(1, 1.0, 1.0)]
    del rows[1]["ref_audio"]
    batch = PreferenceCollator(ReversingEncoder(), av_terms=True)(rows)
    assert "ref" not in batch
    # without the V/A terms only y_w|V,A and y_l|V,A need references
    two = PreferenceCollator(ReversingEncoder(), av_terms=False)(rows)
    assert two["ref"].tolist() == [[0.0, -1.0], [-10.0, -11.0]]


def test_without_av_terms_only_the_text_pair_runs():
    rows = [row(i, *w) for i, w in enumerate(WEIGHTS)]
    encoder = ReversingEncoder()
    collator = PreferenceCollator(encoder, av_terms=False)
    assert collator.roles == ROLES[:2]
    batch = collator(rows)
    assert batch["index"].shape == (4, 2)
    assert role_sequences(batch) == [expected_roles(r)[:2] for r in rows]
    (sent,) = encoder.calls
    assert len(sent) == 8
    assert batch["ref"].shape == (4, 2)
    assert collator.roles_run(row(0, 1.0, 1.0)) == [0, 1]


def test_integer_columns_still_give_float_tensors():
    """A pairs file may store η, γ, β or references as integers (1, 0): the loss needs
    float tensors all the same."""
    ints = {"eta": 1, "gamma": 0, "beta_text": 1, "beta_video": 2, "beta_audio": 3}
    rows = [{**row(i, 1.0, 0.0), **ints, **{f"ref_{k}": -i for k in ROLES}} for i in range(2)]
    batch = PreferenceCollator(ReversingEncoder(), av_terms=True)(rows)
    for key in ("beta", "eta", "gamma", "ref"):
        assert batch[key].dtype == torch.float32, key
    assert batch["beta"].tolist() == [[1.0, 2.0, 3.0]] * 2
    assert batch["eta"].tolist() == [1.0, 1.0] and batch["gamma"].tolist() == [0.0, 0.0]
