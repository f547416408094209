"""The CAVPref objective on hand-computed numbers (avtrust.train.losses)."""

from __future__ import annotations

import math

import pytest
import torch

from avtrust.train.losses import (
    LossSettings,
    aggregate,
    cavpref_loss,
    dpo_term,
    robust_mean,
)


def s(z: float) -> float:
    """−log σ(z) by hand."""
    return math.log1p(math.exp(-z))


# Two samples. Sample 0: Δ(y_w|V,A) = 1, Δ(y_l|V,A) = −1, Δ(y_w|V',A) = −0.5,
# Δ(y_w|V,A') = 0.5. Sample 1: Δw = 0, Δl = 0.4, ΔV' = 0.2, ΔA' = −0.6.
POLICY = {
    "chosen": torch.tensor([-10.0, -5.0]),
    "rejected": torch.tensor([-12.0, -6.6]),
    "video": torch.tensor([-9.5, -4.8]),
    "audio": torch.tensor([-8.5, -6.6]),
}
REF = {
    "chosen": torch.tensor([-11.0, -5.0]),
    "rejected": torch.tensor([-11.0, -7.0]),
    "video": torch.tensor([-9.0, -5.0]),
    "audio": torch.tensor([-9.0, -6.0]),
}
BETA = {
    "text": torch.tensor([0.5, 0.2]),
    "video": torch.tensor([1.0, 0.1]),
    "audio": torch.tensor([0.3, 0.7]),
}


def hand_terms():
    l_y = [s(0.5 * (1 - -1)), s(0.2 * (0 - 0.4))]
    l_v = [s(1.0 * (1 - -0.5)), s(0.1 * (0 - 0.2))]
    l_a = [s(0.3 * (1 - 0.5)), s(0.7 * (0 - -0.6))]
    return l_y, l_v, l_a


def test_dpo_term_matches_hand_computation():
    l_y, l_v, l_a = hand_terms()
    got = dpo_term(
        BETA["text"], POLICY["chosen"], REF["chosen"], POLICY["rejected"], REF["rejected"]
    )
    assert got.tolist() == pytest.approx(l_y, abs=1e-6)
    assert got[0].item() == pytest.approx(0.3132617, abs=1e-6)  # log(1 + e^-1)
    got_v = dpo_term(BETA["video"], POLICY["chosen"], REF["chosen"], POLICY["video"], REF["video"])
    assert got_v.tolist() == pytest.approx(l_v, abs=1e-6)


def test_total_without_robustness_is_the_weighted_mean():
    l_y, l_v, l_a = hand_terms()
    eta, gamma = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    loss, metrics = cavpref_loss(
        POLICY, REF, BETA, eta, gamma, LossSettings(av_terms=True, robust=False)
    )
    expected = sum(l_y) / 2 + (l_v[0] * 1 + l_v[1] * 0) / 2 + (l_a[0] * 0 + l_a[1] * 1) / 2
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert metrics["accuracy"] == 0.5  # sample 0 prefers y_w, sample 1 y_l
    # Per-term metrics average over the samples whose term counts (η, γ ≠ 0).
    assert metrics["loss_video"] == pytest.approx(l_v[0], abs=1e-6)
    assert metrics["loss_audio"] == pytest.approx(l_a[1], abs=1e-6)


def test_eta_gamma_switch_terms_per_task():
    l_y, l_v, l_a = hand_terms()
    settings = LossSettings(av_terms=True, robust=False)
    zero = torch.zeros(2)
    base, _ = cavpref_loss(POLICY, REF, BETA, zero, zero, settings)
    assert base.item() == pytest.approx(sum(l_y) / 2, abs=1e-6)
    # Only sample 1's task has η = 1 (e.g. MVIT): only its L_V enters.
    video_only, _ = cavpref_loss(POLICY, REF, BETA, torch.tensor([0.0, 1.0]), zero, settings)
    assert video_only.item() - base.item() == pytest.approx(l_v[1] / 2, abs=1e-6)
    audio_only, _ = cavpref_loss(POLICY, REF, BETA, zero, torch.tensor([1.0, 0.0]), settings)
    assert audio_only.item() - base.item() == pytest.approx(l_a[0] / 2, abs=1e-6)


def test_reduces_to_standard_dpo_when_eta_gamma_zero_and_lambda_large():
    zero = torch.zeros(2)
    beta = dict.fromkeys(("text", "video", "audio"), 0.1)
    settings = LossSettings(
        av_terms=True, robust=True, lambda_text=1e6, lambda_video=1e6, lambda_audio=1e6
    )
    policy = {k: v.double() for k, v in POLICY.items()}  # λ = 1e6 needs float64
    ref = {k: v.double() for k, v in REF.items()}
    loss, _ = cavpref_loss(policy, ref, beta, zero.double(), zero.double(), settings)
    # Standard DPO (sigmoid loss) by hand: mean of −log σ(β·(Δw − Δl)).
    dpo = (s(0.1 * 2.0) + s(0.1 * -0.4)) / 2
    assert loss.item() == pytest.approx(dpo, abs=1e-5)
    plain, _ = cavpref_loss(
        POLICY, REF, beta, zero, zero, LossSettings(av_terms=False, robust=False)
    )
    assert plain.item() == pytest.approx(dpo, abs=1e-6)


def test_robust_aggregate_bounds_and_limits():
    x = torch.tensor([0.2, 1.5, 0.7, 3.0], dtype=torch.float64)
    mean, top = x.mean().item(), x.max().item()
    for lam in (0.05, 0.5, 1.0, 5.0, 50.0):
        assert robust_mean(x, lam).item() >= mean - 1e-6  # worst case ≥ average
        assert robust_mean(x, lam).item() <= top + 1e-6
    # λ → ∞: the mean; λ → 0: the max (hand: λ·log mean exp(x/λ)).
    assert robust_mean(x, 1e5).item() == pytest.approx(mean, abs=1e-3)
    assert robust_mean(x, 1e-3).item() == pytest.approx(top, abs=1e-2)
    lam = 1.0
    hand = lam * math.log(sum(math.exp(v / lam) for v in x.tolist()) / 4)
    assert robust_mean(x, lam).item() == pytest.approx(hand, abs=1e-6)
    # Monotone in λ: a smaller λ weighs the worst samples more.
    values = [robust_mean(x, lam).item() for lam in (0.1, 0.3, 1.0, 3.0, 10.0)]
    assert values == sorted(values, reverse=True)


def test_robust_total_is_at_least_the_mean_total():
    eta, gamma = torch.tensor([1.0, 1.0]), torch.tensor([1.0, 0.0])
    robust, _ = cavpref_loss(POLICY, REF, BETA, eta, gamma, LossSettings(robust=True))
    mean, _ = cavpref_loss(POLICY, REF, BETA, eta, gamma, LossSettings(robust=False))
    assert robust.item() > mean.item()


def test_per_sample_beta_is_used():
    """β from the pairs file is applied sample by sample, not averaged."""
    settings = LossSettings(av_terms=False, robust=False)
    zero = torch.zeros(2)
    per_sample, _ = cavpref_loss(POLICY, REF, BETA, zero, zero, settings)
    swapped = {**BETA, "text": BETA["text"].flip(0)}
    other, _ = cavpref_loss(POLICY, REF, swapped, zero, zero, settings)
    assert per_sample.item() == pytest.approx((s(0.5 * 2) + s(0.2 * -0.4)) / 2, abs=1e-6)
    assert other.item() == pytest.approx((s(0.2 * 2) + s(0.5 * -0.4)) / 2, abs=1e-6)


def test_data_parallel_surrogate_matches_global_gradient():
    """Two 'processes' holding halves of a batch: the surrogate's value is the global
    aggregate, and the DDP average of their gradients is the global gradient."""
    full = torch.tensor([0.3, 2.0, 1.1, 0.6], requires_grad=True)
    for lam in (None, 0.7):
        ref_value = aggregate(full, lam)
        (ref_grad,) = torch.autograd.grad(ref_value, full)
        grads, values = [], []
        for rank in (0, 1):
            local = full.detach()[2 * rank : 2 * rank + 2].clone().requires_grad_(True)

            def gather(t, rank=rank):
                return slice(2 * rank, 2 * rank + 2), full.detach()

            value = aggregate(local, lam, gather, world_size=2)
            (g,) = torch.autograd.grad(value, local)
            grads.append(g)
            values.append(value.item())
        assert values[0] == pytest.approx(ref_value.item()) and values[1] == pytest.approx(
            values[0]
        )
        # DDP averages parameter gradients; here each rank's block belongs to it alone,
        # so the averaged gradient of the block is g_rank / world_size.
        assert torch.allclose(torch.cat(grads) / 2, ref_grad, atol=1e-6)


def test_per_sample_video_and_audio_beta_reach_their_terms():
    """β_V weighs L_V and β_A weighs L_A, sample by sample (not β_text, not swapped)."""
    settings = LossSettings(av_terms=True, robust=False)
    one = torch.ones(2)
    _, base = cavpref_loss(POLICY, REF, BETA, one, one, settings)
    _, l_v, l_a = hand_terms()
    assert base["loss_video"] == pytest.approx(sum(l_v) / 2, abs=1e-6)
    assert base["loss_audio"] == pytest.approx(sum(l_a) / 2, abs=1e-6)
    flipped_video = {**BETA, "video": BETA["video"].flip(0)}
    _, got = cavpref_loss(POLICY, REF, flipped_video, one, one, settings)
    want = (s(0.1 * (1 - -0.5)) + s(1.0 * (0 - 0.2))) / 2
    assert got["loss_video"] == pytest.approx(want, abs=1e-6)
    assert got["loss_audio"] == pytest.approx(base["loss_audio"], abs=1e-7)
    flipped_audio = {**BETA, "audio": BETA["audio"].flip(0)}
    _, got = cavpref_loss(POLICY, REF, flipped_audio, one, one, settings)
    want = (s(0.7 * (1 - 0.5)) + s(0.3 * (0 - -0.6))) / 2
    assert got["loss_audio"] == pytest.approx(want, abs=1e-6)
    assert got["loss_video"] == pytest.approx(base["loss_video"], abs=1e-7)


def robust_by_hand(values, lam: float) -> float:
    """λ·log mean exp(x/λ) in plain Python."""
    return lam * math.log(sum(math.exp(v / lam) for v in values) / len(values))


ETA = torch.tensor([1.0, 0.5])
GAMMA = torch.tensor([0.0, 2.0])
# three different λ: a term aggregated with another term's λ (or the mean) is seen
ROBUST = LossSettings(av_terms=True, robust=True, lambda_text=0.5, lambda_video=2.0,
                      lambda_audio=0.25)  # fmt: skip


def robust_total_by_hand() -> float:
    l_y, l_v, l_a = hand_terms()
    return (
        robust_by_hand(l_y, 0.5)
        + robust_by_hand([e * v for e, v in zip(ETA.tolist(), l_v, strict=True)], 2.0)
        + robust_by_hand([g * a for g, a in zip(GAMMA.tolist(), l_a, strict=True)], 0.25)
    )


def test_robust_total_uses_each_terms_own_lambda():
    loss, _ = cavpref_loss(POLICY, REF, BETA, ETA, GAMMA, ROBUST)
    assert loss.item() == pytest.approx(robust_total_by_hand(), abs=1e-5)
    assert loss.dtype == torch.float32


def test_robust_mean_keeps_the_input_dtype():
    x = torch.tensor([0.2, 1.5], dtype=torch.float32)
    assert robust_mean(x, 0.7).dtype == torch.float32  # computed in float64 internally


def test_metrics_on_hand_numbers():
    l_y, l_v, l_a = hand_terms()
    _, metrics = cavpref_loss(POLICY, REF, BETA, ETA, GAMMA, ROBUST)
    assert set(metrics) == {"loss_text", "accuracy", "margin", "loss_video", "loss_audio"}
    assert metrics["loss_text"] == pytest.approx(sum(l_y) / 2, abs=1e-6)
    # margins Δw − Δl: sample 0: 1 − (−1) = 2, sample 1: 0 − 0.4 = −0.4
    assert metrics["margin"] == pytest.approx((2.0 - 0.4) / 2, abs=1e-6)
    assert metrics["accuracy"] == 0.5
    # γ = 0 on sample 0: loss_audio is sample 1's L_A alone (not weighted by γ)
    assert metrics["loss_audio"] == pytest.approx(l_a[1], abs=1e-6)
    assert metrics["loss_video"] == pytest.approx(sum(l_v) / 2, abs=1e-6)
    # a term that counts nowhere (η = 0 everywhere) logs 0.0, not NaN
    _, none = cavpref_loss(POLICY, REF, BETA, torch.zeros(2), GAMMA, ROBUST)
    assert none["loss_video"] == 0.0


def test_accuracy_counts_strictly_positive_margins():
    """Margins 0.5, 0 and −1: only the first sample prefers y_w (a tie does not)."""
    policy = {"chosen": torch.tensor([0.5, 0.0, 0.0]), "rejected": torch.zeros(3)}
    policy["rejected"][2] = 1.0
    ref = {"chosen": torch.zeros(3), "rejected": torch.zeros(3)}
    _, metrics = cavpref_loss(
        policy, ref, {"text": 0.1}, None, None, LossSettings(av_terms=False, robust=False)
    )
    assert metrics["accuracy"] == pytest.approx(1 / 3)
    assert metrics["margin"] == pytest.approx(-0.5 / 3, abs=1e-6)


def test_data_parallel_cavpref_loss_matches_the_single_process_loss():
    """Two processes holding one sample each: every rank's loss is the global robust
    loss, and the DDP average of their gradients is the global gradient."""
    roles = ("chosen", "rejected", "video", "audio")

    def leaves(rows):
        return {k: POLICY[k][rows].clone().requires_grad_(True) for k in roles}

    whole = leaves(slice(0, 2))
    loss, _ = cavpref_loss(whole, REF, BETA, ETA, GAMMA, ROBUST)
    want = torch.autograd.grad(loss, [whole[k] for k in roles])
    # the per-sample terms over the whole batch, in the order cavpref_loss aggregates them
    l_y = dpo_term(BETA["text"], POLICY["chosen"], REF["chosen"], POLICY["rejected"],
                   REF["rejected"])  # fmt: skip
    l_v = dpo_term(BETA["video"], POLICY["chosen"], REF["chosen"], POLICY["video"], REF["video"])
    l_a = dpo_term(BETA["audio"], POLICY["chosen"], REF["chosen"], POLICY["audio"], REF["audio"])
    terms = [l_y, ETA * l_v, GAMMA * l_a]
    for rank in (0, 1):
        block = slice(rank, rank + 1)
        calls = []

        def gather(t, block=block, calls=calls):
            # this process's values come from the argument, the other's from "the wire"
            everything = terms[len(calls)].detach().clone()
            everything[block] = t
            calls.append(t)
            return block, everything

        mine = leaves(block)
        local, _ = cavpref_loss(
            mine,
            {k: v[block] for k, v in REF.items()},
            {k: v[block] for k, v in BETA.items()},
            ETA[block],
            GAMMA[block],
            ROBUST,
            gather=gather,
            world_size=2,
        )
        assert len(calls) == 3
        assert local.item() == pytest.approx(loss.item(), abs=1e-5)
        got = torch.autograd.grad(local, [mine[k] for k in roles])
        for g, w in zip(got, want, strict=True):
            torch.testing.assert_close(g / 2, w[block], rtol=1e-5, atol=1e-6)


def test_a_gather_over_one_process_changes_nothing():
    """A one-process gather (the process's own values): value and gradient are those of
    the plain aggregate."""
    x = torch.tensor([0.3, 2.0, 1.1], requires_grad=True)
    for lam in (None, 0.7):
        plain = aggregate(x, lam)
        (want,) = torch.autograd.grad(plain, x)
        same = aggregate(x, lam, lambda t: (slice(0, 3), t))
        (got,) = torch.autograd.grad(same, x)
        assert same.item() == pytest.approx(plain.item(), abs=1e-6)
        torch.testing.assert_close(got, want)
    policy = {k: v.clone().requires_grad_(True) for k, v in POLICY.items()}
    plain, _ = cavpref_loss(policy, REF, BETA, ETA, GAMMA, ROBUST)
    want = torch.autograd.grad(plain, list(policy.values()))
    same, _ = cavpref_loss(policy, REF, BETA, ETA, GAMMA, ROBUST, gather=lambda t: (slice(0, 2), t))
    got = torch.autograd.grad(same, list(policy.values()))
    assert same.item() == pytest.approx(plain.item(), abs=1e-6)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w)
