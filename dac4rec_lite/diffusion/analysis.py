"""Closed forms for studying the diffusion maths without training anything (notebooks 01 and 02).

* ``terminal_alpha_bar``: ᾱ_N of the corrected VP schedule, which does not depend on N.
* ``paper_printed_betas``: β_i with the sign the paper prints, to show why it cannot be right.
* ``gaussian_chain_moments`` / ``gaussian_chain_path``: the exact output of the discrete reverse chain when
  the data are N(μ, σ²) and ε is the exact (oracle) noise predictor. The gap between the chain's final
  variance and σ² is the discretisation error of the N-step sampler, free of any training error.
* ``mixture_score``: the exact score ∇ log μ_i(a^i) of a noised Gaussian mixture, the quantity a trained
  ε-network estimates up to the factor −√(1 − ᾱ_i) (the score view of Eq. 8, notebook 02).
"""
from __future__ import annotations

import math

import pandas as pd
import torch

from .schedule import VPSchedule

__all__ = ["terminal_alpha_bar", "paper_printed_betas", "gaussian_chain_path", "gaussian_chain_moments", "mixture_score"]


def terminal_alpha_bar(beta_min: float = 0.1, beta_max: float = 10.0) -> float:
    """ᾱ_N = Π_i α_i = exp(-β_min - (β_max - β_min)/2) for the corrected schedule, for every N.

    The exponents of α_i sum to -β_min - 0.5(β_max-β_min) Σ_i (2i-1)/N² and Σ_{i=1}^{N} (2i-1) = N², so N
    cancels: the schedule is a discretisation of one continuous-time VP SDE, and N only sets how finely it
    is cut. ᾱ_N is the fraction of the clean action's signal power left in a^N (≈ 0.0064 for 0.1 and 10)."""
    return math.exp(-beta_min - 0.5 * (beta_max - beta_min))


def paper_printed_betas(n_steps: int, beta_min: float = 0.1, beta_max: float = 10.0) -> torch.Tensor:
    """β_i exactly as Sec. 3.1 prints it, 1 - exp(+β_min/N - 0.5(β_max-β_min)(2i-1)/N²), in float64.

    Not used anywhere in the kit: it exists to show that the printed sign is a typo. The exponent is
    positive, so α_i > 1 and β_i < 0 (no variance can be negative), for every step with
    2i - 1 < 2 β_min N / (β_max - β_min): none while N < (β_max - β_min)/(2 β_min) (49.5 for the paper's
    0.1 and 10), step 1 from N = 50 on, and more steps as N grows (10 of them at N = 1000). Below that N
    the printed β_i are positive but still not Song et al.'s discretisation (the β_min term has the
    wrong sign, so ᾱ_N = exp(+β_min - (β_max-β_min)/2)); see ``VPSchedule``."""
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
        raise ValueError(f"n_steps must be an integer >= 1, got {n_steps!r}.")
    n = float(n_steps)
    i = torch.arange(1, n_steps + 1, dtype=torch.float64)
    return 1.0 - torch.exp(beta_min / n - 0.5 * (beta_max - beta_min) * (2 * i - 1) / n**2)


def gaussian_chain_path(
    schedule: VPSchedule, mean: float, std: float, variance: str = "posterior"
) -> pd.DataFrame:
    """Mean and variance (per action dimension) of a^i at every step of the reverse chain, exactly.

    Setting: the data are a^0 ~ N(μ, σ²) in each dimension and the sampler uses the exact noise predictor
    for those data (what a perfectly trained ε_θ would learn):

        ε*(a^i, i) = √(1-ᾱ_i) (a^i - √ᾱ_i μ) / (ᾱ_i σ² + 1 - ᾱ_i).

    Then the clean-action estimate â^0 = (a^i - √(1-ᾱ_i) ε*)/√ᾱ_i (Eq. 14) is E[a^0 | a^i], and one reverse
    step a^{i-1} = c0_i â^0 + ci_i a^i + s_i z (the posterior mean, Eq. 7 corrected, plus noise of variance
    s_i² from ``schedule.reverse_variance(variance)``) is affine in a^i: a^{i-1} = A_i a^i + B_i + s_i z.
    Starting from a^N ~ N(0, 1), the moments follow exactly:

        m_{i-1} = A_i m_i + B_i,        v_{i-1} = A_i² v_i + s_i².

    Computed in float64 from the schedule's tables. Clipping to ±max_action is not modelled (it is the chain
    of a ``DiffusionPolicy`` with ``max_action=None``).

    Returns a DataFrame with one row per step i = N, ..., 0 and columns ``step``, ``mean``, ``variance``
    (the chain's) and ``target_mean``, ``target_variance`` (the forward marginal q(a^i): √ᾱ_i μ and
    ᾱ_i σ² + 1 - ᾱ_i; at i = 0 that is μ and σ², what the chain should end at)."""
    if not std > 0:
        raise ValueError(f"std must be positive, got {std}.")
    alpha_bar = schedule.alphas_cumprod.double().tolist()
    coef_a0 = schedule.posterior_mean_coef_a0.double().tolist()
    coef_ai = schedule.posterior_mean_coef_ai.double().tolist()
    noise_var = schedule.reverse_variance(variance).double().tolist()
    var0 = std**2

    m, v = 0.0, 1.0
    rows = [(schedule.n_steps, m, v, math.sqrt(alpha_bar[-1]) * mean, alpha_bar[-1] * var0 + 1 - alpha_bar[-1])]
    for k in range(schedule.n_steps - 1, -1, -1):  # step i = k + 1
        ab = alpha_bar[k]
        denominator = ab * var0 + 1 - ab
        a0_slope = math.sqrt(ab) * var0 / denominator  # â^0 = E[a^0 | a^i] = a0_slope a^i + a0_offset
        a0_offset = (1 - ab) * mean / denominator
        slope = coef_a0[k] * a0_slope + coef_ai[k]
        offset = coef_a0[k] * a0_offset
        m, v = slope * m + offset, slope**2 * v + noise_var[k]
        if k > 0:
            target = (math.sqrt(alpha_bar[k - 1]) * mean, alpha_bar[k - 1] * var0 + 1 - alpha_bar[k - 1])
        else:
            target = (mean, var0)
        rows.append((k, m, v, *target))
    return pd.DataFrame(rows, columns=["step", "mean", "variance", "target_mean", "target_variance"])


def gaussian_chain_moments(
    schedule: VPSchedule, mean: float, std: float, variance: str = "posterior"
) -> tuple[float, float]:
    """(mean, variance) of the final action a^0 of the exact-ε reverse chain for N(μ, σ²) data.

    See ``gaussian_chain_path`` for the derivation. The mean comes out as μ (up to ᾱ_N ≈ 0); the variance
    falls short of σ² when the steps are coarse compared with σ: with the paper's schedule, N = 50 and
    σ = 0.05, the posterior variance β̃_i ends at ≈ 0.0008 instead of 0.0025 and β_i at ≈ 0.0019. Both
    tend to σ² as N grows."""
    last = gaussian_chain_path(schedule, mean, std, variance).iloc[-1]
    return float(last["mean"]), float(last["variance"])


def mixture_score(schedule: VPSchedule, a_i: torch.Tensor, i: int, means: torch.Tensor, std: float,
                  weights: torch.Tensor | None = None) -> torch.Tensor:
    """∇_a log μ_i(a^i) for data a⁰ ~ Σ_k π_k N(m_k, σ² I) noised to step i (Eq. 1), exactly; (B, d).

    Noising each component by q(a^i | a⁰) = N(√ᾱ_i a⁰, (1 − ᾱ_i) I) gives μ_i = Σ_k π_k N(√ᾱ_i m_k, v_i I)
    with v_i = ᾱ_i σ² + 1 − ᾱ_i, so the score is Σ_k r_k(a^i) · (√ᾱ_i m_k − a^i) / v_i with the
    responsibilities r_k ∝ π_k N(a^i; √ᾱ_i m_k, v_i I). The minimiser of Eq. 8 is ε*(a^i) = E[ε | a^i] =
    −√(1 − ᾱ_i) ∇ log μ_i(a^i) (Tweedie's formula): a trained ε_θ estimates this score, rescaled and
    pointing the other way. ``means`` is (K, d); ``weights`` π (K,) default to equal."""
    if isinstance(i, bool) or not isinstance(i, int) or not 1 <= i <= schedule.n_steps:
        raise ValueError(f"i must be an integer step in 1..{schedule.n_steps} (steps are 1-based), got {i!r}.")
    if not (isinstance(std, (int, float)) and math.isfinite(std) and std > 0):
        raise ValueError(f"std must be a finite number > 0, got {std!r}.")
    means = torch.as_tensor(means, dtype=torch.float64)
    a = torch.as_tensor(a_i, dtype=torch.float64)
    if means.ndim != 2 or a.ndim != 2 or a.shape[1] != means.shape[1]:
        raise ValueError(f"a_i must be (B, d) and means (K, d) with the same d, got {tuple(a.shape)} and {tuple(means.shape)}.")
    if not torch.isfinite(a).all():
        raise ValueError("a_i contains NaN or inf.")
    if not torch.isfinite(means).all():
        raise ValueError("means contains NaN or inf.")
    if weights is None:
        weights = torch.full((means.shape[0],), 1.0 / means.shape[0], dtype=torch.float64)
    weights = torch.as_tensor(weights, dtype=torch.float64)
    if weights.shape != (means.shape[0],) or not bool((weights > 0).all()) or not abs(float(weights.sum()) - 1) <= 1e-6:
        raise ValueError(f"weights must be {means.shape[0]} positive numbers summing to 1, got {weights.tolist()}.")
    ab = float(schedule.alphas_cumprod[i - 1])
    v = ab * std**2 + 1 - ab
    centres = math.sqrt(ab) * means  # (K, d)
    diff = centres.unsqueeze(0) - a.unsqueeze(1)  # (B, K, d)
    log_r = torch.log(weights) - diff.pow(2).sum(-1) / (2 * v)
    r = torch.softmax(log_r, dim=1)
    score = (r.unsqueeze(-1) * diff).sum(1) / v
    floating_input = torch.is_tensor(a_i) and a_i.is_floating_point()
    return score.to(a_i.dtype if floating_input else torch.float64)  # the caller's float dtype
