"""Few-step samplers (DDIM η=0, DPM-Solver++(2M)) on the same trained model: orders of convergence to the
probability-flow ODE's solution, equivalences, guidance, inference-mode fast path and validation."""
import pytest
import torch

import dac4rec_lite as dl
from dac4rec_lite.diffusion import sample_steps
from helpers import GaussianOracleEps


def oracle_policy(n_steps, mean=0.3, std=0.2, max_action=None):
    schedule = dl.VPSchedule(n_steps)
    return dl.DiffusionPolicy(1, 2, schedule, max_action=max_action,
                              eps_model=GaussianOracleEps(schedule, torch.full((2,), mean), std))


def draw(policy, sampler, k, n=2000, seed=0, **kwargs):
    with torch.no_grad():
        return policy.sample(torch.zeros(n, 1), generator=torch.Generator().manual_seed(seed), sampler=sampler,
                             n_sample_steps=k, **kwargs)


def test_sample_steps_are_distinct_decreasing_and_cover_both_ends():
    schedule = dl.VPSchedule(100)
    for k in (1, 2, 5, 10, 15, 50, 100):
        steps = sample_steps(schedule, k)
        assert len(steps) == k and steps[0] == 100
        assert all(a > b for a, b in zip(steps, steps[1:]))
        if k > 1:
            assert steps[-1] == 1
    assert sample_steps(dl.VPSchedule(10), 10) == list(range(10, 0, -1))
    with pytest.raises(ValueError, match="n_sample_steps"):
        sample_steps(schedule, 101)


def test_ddim_is_first_order_and_dpm_solver_second_order():
    """Same a^N, exact ε: both solve the same ODE; the error to a 1000-step solution shrinks ~2× (DDIM) and
    ≥ 3× (DPM-Solver++(2M)) when the number of steps doubles, and DPM is the more accurate at equal steps."""
    policy = oracle_policy(1000)
    reference = draw(policy, "dpm", 1000)
    errors = {s: [(draw(policy, s, k) - reference).abs().max().item() for k in (10, 20, 40)] for s in ("ddim", "dpm")}
    for coarse, fine in zip(errors["ddim"], errors["ddim"][1:]):
        assert 1.7 < coarse / fine < 2.3, errors
    for coarse, fine in zip(errors["dpm"], errors["dpm"][1:]):
        assert coarse / fine > 3.0, errors
    assert all(d < 0.2 * c for d, c in zip(errors["dpm"], errors["ddim"])), errors


def test_first_order_dpm_step_equals_ddim():
    policy = oracle_policy(100)
    torch.testing.assert_close(draw(policy, "dpm", 2), draw(policy, "ddim", 2), atol=1e-6, rtol=0)


def test_few_step_dpm_matches_the_data_distribution():
    """N(0.3, 0.2²) data: 10 DPM steps give std within 3 % and the mean within the prior-mismatch bias
    √ᾱ_N μ ≈ 0.024 (a^N ~ N(0, I) is not exactly the forward marginal N(√ᾱ_N μ, ·))."""
    a = draw(oracle_policy(100), "dpm", 10, n=20_000)
    assert torch.all((a.std(0) / 0.2 - 1).abs() < 0.03), a.std(0)
    assert torch.all((a.mean(0) - 0.3).abs() < 0.03), a.mean(0)


def test_few_step_samplers_are_deterministic_given_the_seed_and_respect_bounds():
    policy = oracle_policy(50, mean=0.9, std=0.3, max_action=1.0)
    for sampler in ("ddim", "dpm"):
        a1, a2, a3 = draw(policy, sampler, 8, seed=1), draw(policy, sampler, 8, seed=1), draw(policy, sampler, 8, seed=2)
        assert torch.equal(a1, a2) and not torch.equal(a1, a3)
        assert a1.abs().max() <= 1.0
        _, trajectory = draw(policy, sampler, 8, seed=1, return_trajectory=True)
        assert trajectory.shape == (9, 2000, 2) and torch.equal(trajectory[-1], a1)


@pytest.mark.parametrize("sampler", ["ddim", "dpm"])
def test_guidance_works_with_few_step_samplers(sampler):
    """The exact energy gradient of the tilted Gaussian (see test_energy.py) shifts the mean to βw."""
    policy = oracle_policy(100, mean=0.0, std=1.0)
    w = torch.tensor([0.6, -0.5])

    def exact_energy(state, a_i, i):
        return policy.schedule.alphas_cumprod[i - 1].sqrt() * (a_i @ w)

    a = draw(policy, sampler, 15, n=20_000, guidance=dl.EnergyGuidance(exact_energy, 1.0))
    # Shifted data N(w, I): the prior mismatch leaves a bias of about √ᾱ_N |w| ≈ 0.05.
    assert torch.all((a.mean(0) - w).abs() < 0.08), a.mean(0)
    unguided = draw(policy, sampler, 15, seed=3)
    zero = draw(policy, sampler, 15, seed=3, guidance=dl.EnergyGuidance(exact_energy, 0.0))
    assert torch.equal(unguided, zero)


def test_inference_mode_fast_path_returns_ordinary_tensors_and_keeps_gradients_when_asked():
    policy = dl.DiffusionPolicy(3, 2, dl.VPSchedule(5), hidden_dim=16)
    state = torch.randn(4, 3)
    with torch.no_grad():
        a = policy.sample(state, generator=torch.Generator().manual_seed(0))
    assert not a.is_inference()
    critic = dl.TwinQ(3, 2, hidden_dim=8)
    critic.q_min(state, a).sum().backward()  # usable as an input to a network being trained
    differentiable = policy.sample(state, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(differentiable.detach(), a)
    differentiable.sum().backward()  # grad mode on: gradients flow through the whole chain
    assert policy.eps_model.action_in.weight.grad is not None


def test_sampler_arguments_are_validated():
    policy = oracle_policy(20)
    with pytest.raises(ValueError, match="sampler must be one of"):
        draw(policy, "euler", 5)
    with pytest.raises(ValueError, match="ddpm sampler visits all N=20"):
        draw(policy, "ddpm", 5)
    with pytest.raises(ValueError, match="only applies to the stochastic ddpm"):
        draw(policy, "ddim", 5, variance="beta")
    assert draw(policy, "ddpm", 20).shape == (2000, 2)  # n_sample_steps = N is allowed for ddpm


@pytest.mark.parametrize("max_action", [1.0, None])
def test_sampling_with_gradients_matches_the_fast_path_and_an_out_of_place_reference(max_action):
    """The DDPM step updates â⁰ in place. With autograd on, samples and gradients must equal a chain written
    out of place from the schedule's own formulas (Eq. 14, the posterior mean, the same noise draws), and the
    samples must equal the gradient-free fast path's."""
    torch.manual_seed(0)
    policy = dl.DiffusionPolicy(3, 2, dl.VPSchedule(8), hidden_dim=16, max_action=max_action)
    state = torch.randn(5, 3)
    with torch.no_grad():
        fast = policy.sample(state, generator=torch.Generator().manual_seed(1))
    sampled = policy.sample(state, generator=torch.Generator().manual_seed(1))

    schedule, g = policy.schedule, torch.Generator().manual_seed(1)
    std = schedule.reverse_variance("posterior").sqrt()
    a = torch.randn(5, 2, generator=g)
    for i in range(schedule.n_steps, 0, -1):
        a0 = schedule.predict_a0(a, i, policy.eps_model(state, a, torch.full((5,), i)))
        if max_action is not None:
            a0 = a0.clamp(-max_action, max_action)
        a = schedule.posterior_mean(a0, a, i)
        if std[i - 1] > 0:
            a = a + std[i - 1] * torch.randn(5, 2, generator=g)

    torch.testing.assert_close(sampled.detach(), fast, atol=1e-6, rtol=0)
    torch.testing.assert_close(sampled, a, atol=1e-5, rtol=1e-5)
    params = list(policy.parameters())
    mine = torch.autograd.grad(sampled.square().sum(), params)
    for grad, reference in zip(mine, torch.autograd.grad(a.square().sum(), params)):
        torch.testing.assert_close(grad, reference, atol=1e-5, rtol=1e-4)
    assert all(grad.abs().sum() > 0 for grad in mine[-2:])  # the output layer's weight and bias get a gradient


def test_a_gradient_free_eps_function_refuses_to_run_with_autograd_on():
    net = dl.EpsilonMLP(3, 2, hidden_dim=8)
    with torch.no_grad():
        epsilon = net.epsilon_fn(torch.zeros(4, 3), 5)
        assert epsilon(torch.zeros(4, 2), 5).shape == (4, 2)
    with pytest.raises(RuntimeError, match="call epsilon_fn again with gradients enabled"):
        epsilon(torch.zeros(4, 2), 5)
