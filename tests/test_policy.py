"""DiffusionPolicy: BC loss, the reverse chain against exact linear-Gaussian moments, action approximation,
guidance hook, reproducibility and input validation."""
import copy
import math

import pytest
import torch
from torch import nn

import dac4rec_lite as dl
from helpers import GaussianOracleEps, linear_chain_moments


def oracle_policy(n_steps, mean, std, action_dim=2, max_action=None):
    schedule = dl.VPSchedule(n_steps)
    eps = GaussianOracleEps(schedule, torch.full((action_dim,), mean), std)
    return dl.DiffusionPolicy(1, action_dim, schedule, max_action=max_action, eps_model=eps)


@pytest.mark.parametrize("std", [0.05, 0.2, 1.0])
@pytest.mark.parametrize("variance", ["posterior", "beta"])
def test_sample_matches_exact_moments_of_the_discrete_chain(std, variance):
    """With the oracle ε for N(μ, σ²I) every step is affine, so the chain's output moments are known exactly
    (tests/helpers.py). 4 standard errors on the mean and on the variance, each action dimension."""
    n, n_steps, mean = 40_000, 50, 0.3
    policy = oracle_policy(n_steps, mean, std)
    with torch.no_grad():
        a = policy.sample(torch.zeros(n, 1), generator=torch.Generator().manual_seed(0), variance=variance)
    m, v = linear_chain_moments(n_steps, 0.1, 10.0, mean, std, variance)
    mean_se, var_se = math.sqrt(v / n), v * math.sqrt(2 / (n - 1))
    assert torch.all((a.mean(0) - m).abs() < 4 * mean_se), (a.mean(0), m)
    assert torch.all((a.var(0) - v).abs() < 4 * var_se), (a.var(0), v)


def test_sampling_is_reproducible_and_the_trajectory_is_consistent():
    policy = dl.DiffusionPolicy(3, 2, dl.VPSchedule(8), hidden_dim=32)
    state = torch.randn(5, 3, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        a1, traj = policy.sample(state, generator=torch.Generator().manual_seed(7), return_trajectory=True)
        a2 = policy.sample(state, generator=torch.Generator().manual_seed(7))
        a3 = policy.sample(state, generator=torch.Generator().manual_seed(8))
        assert torch.equal(a1, a2)
        assert not torch.allclose(a1, a3)
        assert traj.shape == (9, 5, 2)
        assert torch.equal(traj[0], torch.randn(5, 2, generator=torch.Generator().manual_seed(7))), "traj[0] = a^N"
        assert torch.equal(traj[-1], a1)
        # The last step (i = 1) adds no noise: a^0 is exactly the clipped one-step estimate from a^1.
        eps = policy.eps_model(state, traj[-2], torch.ones(5, dtype=torch.long))
        expected = policy.schedule.predict_a0(traj[-2], 1, eps).clamp(-1, 1)
        torch.testing.assert_close(traj[-1], expected, atol=1e-5, rtol=1e-5)
    assert a1.abs().max() <= 1.0


@pytest.mark.parametrize("activation", sorted(dl.diffusion.ACTIVATIONS))
def test_cached_projection_path_equals_plain_forward(activation):
    """Caching W_s s and tabulating W_t t(i) is exact: same samples as calling the network every step (the
    no-grad path also runs its activations in place on reused buffers)."""
    torch.manual_seed(0)
    fast = dl.DiffusionPolicy(4, 3, dl.VPSchedule(20), hidden_dim=64, activation=activation)

    class Plain(nn.Module):  # not an EpsilonMLP, so the policy calls it step by step
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, state, a_i, i):
            return self.net(state, a_i, i)

    slow = dl.DiffusionPolicy(4, 3, dl.VPSchedule(20), eps_model=Plain(copy.deepcopy(fast.eps_model)))
    state = torch.randn(16, 4)
    with torch.no_grad():
        a_fast = fast.sample(state, generator=torch.Generator().manual_seed(1))
        a_slow = slow.sample(state, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a_fast, a_slow, atol=1e-5, rtol=1e-5)


def test_loss_reproduces_eq8_and_oracle_reaches_bayes_error():
    # Eq. 8 by hand with the same random draws (steps first, then noise).
    policy = dl.DiffusionPolicy(2, 2, dl.VPSchedule(10), hidden_dim=16)
    state, action = torch.randn(32, 2), torch.rand(32, 2) * 2 - 1
    loss = policy.loss(state, action, generator=torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    steps = torch.randint(1, 11, (32,), generator=g)
    noise = torch.randn(32, 2, generator=g)
    noisy = policy.schedule.q_sample(action, steps, noise)
    manual = (noise - policy.eps_model(state, noisy, steps)).pow(2).mean()
    torch.testing.assert_close(loss, manual)

    # For N(μ, σ²) data the best possible ε has error ᾱσ²/(ᾱσ²+1-ᾱ) per dimension, averaged over i.
    n, std = 100_000, 0.5
    oracle = oracle_policy(10, 0.0, std, max_action=None)
    data = std * torch.randn(n, 2, generator=torch.Generator().manual_seed(6))
    loss = oracle.loss(torch.zeros(n, 1), data, generator=torch.Generator().manual_seed(7)).item()
    ab = oracle.schedule.alphas_cumprod.double()
    bayes = (ab * std**2 / (ab * std**2 + 1 - ab)).mean().item()
    assert loss == pytest.approx(bayes, rel=0.02)


def test_approximate_action_is_the_posterior_mean_under_the_oracle():
    """With the oracle ε, â⁰ (Eq. 14) = E[a0 | a^i] = μ + σ²√ᾱ(a^i − √ᾱμ)/(ᾱσ²+1−ᾱ)."""
    mean, std, step = 0.2, 0.3, 6
    policy = oracle_policy(10, mean, std)
    action = torch.rand(50, 2, generator=torch.Generator().manual_seed(0)) - 0.5
    approx = policy.approximate_action(torch.zeros(50, 1), action, generator=torch.Generator().manual_seed(1), step=step)
    ab = policy.schedule.alphas_cumprod[step - 1]
    noisy = policy.schedule.q_sample(action, step, torch.randn(50, 2, generator=torch.Generator().manual_seed(1)))
    expected = mean + std**2 * ab.sqrt() * (noisy - ab.sqrt() * mean) / (ab * std**2 + 1 - ab)
    torch.testing.assert_close(approx, expected, atol=1e-5, rtol=1e-5)


def test_approximate_action_is_differentiable_and_exact_at_small_noise():
    policy = dl.DiffusionPolicy(3, 2, dl.VPSchedule(100), hidden_dim=32)
    state, action = torch.randn(8, 3), torch.rand(8, 2) - 0.5
    approx = policy.approximate_action(state, action, generator=torch.Generator().manual_seed(0))
    approx.sum().backward()
    assert policy.eps_model.action_in.weight.grad.abs().sum() > 0
    # At i = 1, √(1-ᾱ_1)/√ᾱ_1 ≈ 0.04: even an untrained ε-net barely moves the action.
    near = policy.approximate_action(state, action, generator=torch.Generator().manual_seed(0), step=1)
    assert (near - action).abs().max() < 0.2


def test_guidance_hook_shifts_the_chain_to_the_tilted_target():
    """μ = N(0, I) with its oracle ε, Q(a) = w·a: π* ∝ exp(κQ)μ = N(κw, I), whose noised marginals are
    N(√ᾱ_i κw, I); the exact guidance ∇E_i = κ√ᾱ_i w turns the chain into the oracle chain of N(κw, I)."""

    class ExactEnergyGradient:
        scale = 1.0

        def __init__(self, schedule, target_shift):
            self.schedule, self.shift = schedule, target_shift

        def __call__(self, state, a_i, i):
            return self.schedule.alphas_cumprod[i - 1].sqrt().unsqueeze(1) * self.shift

    n, n_steps, beta = 40_000, 50, 0.8
    w = torch.tensor([0.6, -0.5])
    policy = oracle_policy(n_steps, 0.0, 1.0)
    guidance = ExactEnergyGradient(policy.schedule, beta * w)
    with torch.no_grad():
        a = policy.sample(torch.zeros(n, 1), guidance=guidance, generator=torch.Generator().manual_seed(2))
    for d in range(2):
        m, v = linear_chain_moments(n_steps, 0.1, 10.0, (beta * w[d]).item(), 1.0)
        assert abs(a[:, d].mean().item() - m) < 4 * math.sqrt(v / n)
        assert abs(a[:, d].var().item() - v) < 4 * v * math.sqrt(2 / (n - 1))
    guidance.scale = 0.0
    with torch.no_grad():
        unguided = policy.sample(torch.zeros(8, 1), generator=torch.Generator().manual_seed(3))
        zero_scale = policy.sample(torch.zeros(8, 1), guidance=guidance, generator=torch.Generator().manual_seed(3))
    assert torch.equal(unguided, zero_scale), "scale = 0 must be bit-identical to unguided sampling"


@pytest.mark.parametrize(
    "make_state,err,match",
    [
        (lambda: torch.zeros(3), ValueError, "unsqueeze"),
        (lambda: torch.zeros(2, 4), ValueError, r"\(batch, 3\)"),
        (lambda: [[0.0, 0.0, 0.0]], TypeError, "torch.as_tensor"),
        (lambda: torch.zeros(2, 3, dtype=torch.float64), TypeError, "float32"),
        (lambda: torch.zeros(2, 3, dtype=torch.long), TypeError, "floating-point"),
        (lambda: torch.tensor([[0.0, 0.0, 0.0], [0.0, float("nan"), 0.0]]), ValueError, "first bad row: 1"),
    ],
)
def test_bad_states_raise(make_state, err, match):
    policy = dl.DiffusionPolicy(3, 2, dl.VPSchedule(5), hidden_dim=8)
    with pytest.raises(err, match=match):
        policy.sample(make_state())


def test_bad_actions_raise():
    policy = dl.DiffusionPolicy(3, 2, dl.VPSchedule(5), hidden_dim=8)
    state = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="outside"):
        policy.loss(state, torch.tensor([[0.0, 0.0], [1.5, 0.0]]))
    with pytest.raises(ValueError, match="2 rows but action has 3"):
        policy.loss(state, torch.zeros(3, 2))
    with pytest.raises(ValueError, match="NaN"):
        policy.approximate_action(state, torch.tensor([[0.0, float("inf")], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="variance"):
        policy.sample(state, variance="ddim")
    # max_action=None accepts any finite action.
    free = dl.DiffusionPolicy(3, 2, dl.VPSchedule(5), hidden_dim=8, max_action=None)
    assert torch.isfinite(free.loss(state, torch.full((2, 2), 5.0)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (none on CPU-only machines)")
def test_sampling_on_cuda():
    policy = dl.DiffusionPolicy(3, 2, dl.VPSchedule(10), hidden_dim=16).to("cuda")
    g = torch.Generator(device="cuda").manual_seed(0)
    with torch.no_grad():
        a = policy.sample(torch.zeros(64, 3, device="cuda"), generator=g)
    assert a.device.type == "cuda" and a.abs().max() <= 1
