"""The exact score of a noised Gaussian mixture (diffusion.analysis.mixture_score, notebook 02's score view)."""
from __future__ import annotations

import math

import pytest
import torch

import dac4rec_lite as dl
from dac4rec_lite.diffusion.analysis import mixture_score

SCHEDULE = dl.VPSchedule(20)
MEANS = torch.tensor([[0.6, 0.6], [-0.6, -0.6], [0.6, -0.6]], dtype=torch.float64)
WEIGHTS = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)


def log_density(a, i, std):
    ab = float(SCHEDULE.alphas_cumprod[i - 1])
    v = ab * std**2 + 1 - ab
    comps = torch.distributions.MultivariateNormal(math.sqrt(ab) * MEANS, covariance_matrix=v * torch.eye(2, dtype=torch.float64))
    return torch.logsumexp(torch.log(WEIGHTS) + comps.log_prob(a.unsqueeze(1)), dim=1)


@pytest.mark.parametrize("i", [1, 7, 20])
def test_score_is_the_gradient_of_the_noised_mixture_log_density(i):
    a = torch.randn(64, 2, generator=torch.Generator().manual_seed(i), dtype=torch.float64).requires_grad_(True)
    (grad,) = torch.autograd.grad(log_density(a, i, 0.1).sum(), a)
    assert torch.allclose(mixture_score(SCHEDULE, a.detach(), i, MEANS, 0.1, WEIGHTS), grad, atol=1e-10)


def test_one_component_closed_form():
    a = torch.tensor([[0.3, -1.0]], dtype=torch.float64)
    ab = float(SCHEDULE.alphas_cumprod[4])
    expected = (math.sqrt(ab) * torch.tensor([[0.5, 0.5]], dtype=torch.float64) - a) / (ab * 0.04 + 1 - ab)
    got = mixture_score(SCHEDULE, a, 5, torch.tensor([[0.5, 0.5]]), 0.2)
    assert torch.allclose(got, expected, atol=1e-12)


def test_tweedie_eps_star_is_the_posterior_mean_of_the_noise():
    # E[ε | a^i] estimated by binning Monte-Carlo draws must match −√(1 − ᾱ_i) · score (1-D, two modes).
    g = torch.Generator().manual_seed(0)
    i, std, n = 8, 0.1, 400_000
    means = torch.tensor([[-0.6], [0.6]], dtype=torch.float64)
    a0 = means[torch.randint(0, 2, (n,), generator=g)] + std * torch.randn(n, 1, generator=g, dtype=torch.float64)
    eps = torch.randn(n, 1, generator=g, dtype=torch.float64)
    ab = float(SCHEDULE.alphas_cumprod[i - 1])
    a_i = math.sqrt(ab) * a0 + math.sqrt(1 - ab) * eps
    for centre in (-0.5, 0.0, 0.4):
        near = (a_i[:, 0] - centre).abs() < 0.01
        mc = eps[near].mean().item()
        exact = -math.sqrt(1 - ab) * mixture_score(SCHEDULE, torch.tensor([[centre]], dtype=torch.float64), i, means, std).item()
        assert mc == pytest.approx(exact, abs=0.04), centre  # ≈ 3000 draws per bin: standard error ≈ 0.015


@pytest.mark.parametrize("kwargs, match", [
    (dict(i=0), "1-based"), (dict(i=21), "1-based"), (dict(std=0.0), "std"), (dict(std=float("nan")), "std"),
    (dict(a_i=torch.zeros(3, 3)), "same d"), (dict(a_i=torch.full((2, 2), float("nan"))), "NaN"),
    (dict(weights=torch.tensor([0.5, 0.5, 0.5])), "summing to 1"),
    (dict(weights=torch.full((MEANS.shape[0],), float("nan"))), "summing to 1"),
    (dict(means=torch.full(MEANS.shape, float("nan"))), "means contains NaN"),
])
def test_bad_input(kwargs, match):
    args = dict(schedule=SCHEDULE, a_i=torch.zeros(2, 2), i=3, means=MEANS, std=0.1, weights=WEIGHTS) | kwargs
    with pytest.raises(ValueError, match=match):
        mixture_score(**args)
