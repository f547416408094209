"""The CAVPref objective (and plain DPO as its special case), on summed log-probs.

Notation (DESIGN.md): Δ(y|V,A) = log π(y|V,A,x) − log π_ref(y|V,A,x), s(z) = −log σ(z).
Per sample:

    L_y = s(β_y·[Δ(y_w|V,A) − Δ(y_l|V,A)])       text preference (standard DPO)
    L_V = s(β_V·[Δ(y_w|V,A) − Δ(y_w|V',A)])      same answer, corrupted video
    L_A = s(β_A·[Δ(y_w|V,A) − Δ(y_w|V,A')])      same answer, corrupted audio

and the batch objective is, per term, either the mean or the robust (KL-DRO dual,
worst case over reweightings of the batch) aggregate

    L_R(x; λ) = λ·log mean_i exp(x_i/λ),

which is ≥ the mean (Jensen), tends to the mean as λ → ∞ and to the max as λ → 0:

    L = agg(L_y; λ_y) + agg(η·L_V; λ_V) + agg(γ·L_A; λ_A)

with η, γ per sample (per task). η = γ = 0 and the mean give standard DPO. (The
authors' released snippet takes −λ·log mean exp(−L/λ), the best case, and no
reference model; this is the paper's stated worst-case objective.)

Under data parallelism the batch is the global one: :func:`aggregate` takes the
per-sample losses of this process and a ``gather`` function returning every process's
(detached) values, and returns a surrogate whose value is the global aggregate and
whose gradient — once DDP averages it over processes — is the global aggregate's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def dpo_term(beta, policy_a, ref_a, policy_b, ref_b):
    """s(β·[Δ_a − Δ_b]) per sample: −log σ of the scaled log-ratio margin."""
    margin = (policy_a - ref_a) - (policy_b - ref_b)
    return -F.logsigmoid(beta * margin)


def robust_mean(losses, lam: float):
    """λ·log mean exp(losses/λ), computed stably (logsumexp)."""
    n = losses.shape[0]
    # float64: λ·(logsumexp − log n) cancels digits when λ is large.
    x = losses.double()
    return (lam * (torch.logsumexp(x / lam, dim=0) - math.log(n))).to(losses.dtype)


def aggregate_weights(losses, lam: float | None):
    """d agg / d losses_i: softmax(losses/λ) for the robust aggregate, 1/n for the mean."""
    if lam is None:
        return torch.full_like(losses, 1.0 / losses.shape[0])
    return torch.softmax(losses / lam, dim=0)


def aggregate(
    local,
    lam: float | None,
    gather: Callable | None = None,
    world_size: int = 1,
):
    """Mean (``lam`` None) or robust aggregate of per-sample losses over the global batch.

    ``local``: this process's per-sample losses (with gradient). ``gather``: maps a
    detached local tensor to the concatenation over processes, in rank order, with this
    process's block at ``rank``. Single process: the exact formula.
    """
    if gather is None or world_size == 1:
        return local.mean() if lam is None else robust_mean(local, lam)
    rank_block, everything = gather(local.detach())
    value = everything.mean() if lam is None else robust_mean(everything, lam)
    weights = aggregate_weights(everything, lam)[rank_block]
    # Value: the global aggregate; gradient: DDP averages over processes, hence × world.
    return value.detach() + world_size * (weights * (local - local.detach())).sum()


def _mean_where_on(term, weight) -> float:
    """Mean of a per-sample term over the samples where it counts (weight ≠ 0; 0.0 when
    none does): a sample with weight 0 does not run its corrupted-clip sequence, so its
    value there is a placeholder."""
    on = torch.as_tensor(weight, device=term.device).expand_as(term) != 0
    return float(term.detach()[on].mean()) if bool(on.any()) else 0.0


@dataclass(frozen=True)
class LossSettings:
    """How the terms are combined (from :class:`avtrust.train.config.PreferenceSettings`)."""

    av_terms: bool = True
    robust: bool = True
    lambda_text: float = 1.0
    lambda_video: float = 1.0
    lambda_audio: float = 0.8


def cavpref_loss(
    policy: dict,
    ref: dict,
    beta: dict,
    eta,
    gamma,
    settings: LossSettings,
    gather: Callable | None = None,
    world_size: int = 1,
) -> tuple[torch.Tensor, dict]:
    """The batch loss and per-term metrics.

    ``policy`` / ``ref``: summed log-probs per sample under keys ``chosen``
    (y_w|V,A), ``rejected`` (y_l|V,A) and, with ``av_terms``, ``video`` (y_w|V',A) and
    ``audio`` (y_w|V,A'). ``beta``: per-sample (or scalar) ``text``, ``video``, ``audio``.
    Metrics ``loss_video`` / ``loss_audio`` average L_V / L_A over the samples with
    η ≠ 0 / γ ≠ 0 only.
    """
    l_y = dpo_term(
        beta["text"], policy["chosen"], ref["chosen"], policy["rejected"], ref["rejected"]
    )
    lam = (
        (settings.lambda_text, settings.lambda_video, settings.lambda_audio)
        if settings.robust
        else (None, None, None)
    )
    total = aggregate(l_y, lam[0], gather, world_size)
    margin = (policy["chosen"] - ref["chosen"]) - (policy["rejected"] - ref["rejected"])
    metrics = {
        "loss_text": float(l_y.detach().mean()),
        "accuracy": float((margin.detach() > 0).float().mean()),
        "margin": float(margin.detach().mean()),
    }
    if settings.av_terms:
        l_v = dpo_term(
            beta["video"], policy["chosen"], ref["chosen"], policy["video"], ref["video"]
        )
        l_a = dpo_term(
            beta["audio"], policy["chosen"], ref["chosen"], policy["audio"], ref["audio"]
        )
        total = total + aggregate(eta * l_v, lam[1], gather, world_size)
        total = total + aggregate(gamma * l_a, lam[2], gather, world_size)
        metrics["loss_video"] = _mean_where_on(l_v, eta)
        metrics["loss_audio"] = _mean_where_on(l_a, gamma)
    return total, metrics
