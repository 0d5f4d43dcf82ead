"""Energy guidance against the analytic case: behaviour μ = N(0, I), Q(a) = w·a.

Then π* ∝ exp(κQ) μ = N(κw, I), the exact intermediate energy is ℰ_i(a_i) = κ√ᾱ_i w·a_i + const
(the posterior of a⁰ given a_i is N(√ᾱ_i a_i, (1 − ᾱ_i) I)), and its gradient is κ√ᾱ_i w."""
import math

import pytest
import torch

import dac4rec_lite as dl
from helpers import GaussianOracleEps, linear_chain_moments

N_STEPS, KAPPA = 100, 1.0
W = torch.tensor([0.6, -0.5])  # κ‖w‖ = 0.78 ≤ 1


def behaviour_policy():
    schedule = dl.VPSchedule(N_STEPS)
    return dl.DiffusionPolicy(1, 2, schedule, max_action=None, eps_model=GaussianOracleEps(schedule, torch.zeros(2), 1.0))


def linear_critic(state, action):
    return action @ W


def guided_moments(policy, guidance, n=20_000, seed=0):
    with torch.no_grad():
        a = policy.sample(torch.zeros(n, 1), guidance=guidance, generator=torch.Generator().manual_seed(seed))
    return a.mean(0), a.std(0)


def test_oracle_energy_guidance_samples_the_tilted_policy():
    policy = behaviour_policy()
    schedule = policy.schedule

    def exact_energy(state, a_i, i):
        return KAPPA * schedule.alphas_cumprod[i - 1].sqrt() * (a_i @ W) + 0.3  # constants do not matter

    mean, std = guided_moments(policy, dl.EnergyGuidance(exact_energy, scale=1.0))
    assert torch.all((mean - KAPPA * W).abs() < 0.05), mean
    assert torch.all((std - 1).abs() < 0.05), std
    # Tighter: the exact moments of the discrete chain for N(κw, I) data (4 standard errors).
    for d in range(2):
        m, v = linear_chain_moments(N_STEPS, 0.1, 10.0, (KAPPA * W[d]).item(), 1.0)
        assert abs(mean[d].item() - m) < 4 * math.sqrt(v / 20_000)


def test_zero_scale_is_bit_identical_and_bad_energies_raise():
    policy = behaviour_policy()
    energy = dl.EnergyModel(1, 2, policy.schedule, hidden_dim=16)
    state = torch.zeros(16, 1)
    with torch.no_grad():
        plain = policy.sample(state, generator=torch.Generator().manual_seed(4))
        zero = policy.sample(state, guidance=dl.EnergyGuidance(energy, scale=0.0), generator=torch.Generator().manual_seed(4))
        guided = policy.sample(state, guidance=dl.EnergyGuidance(energy, scale=1.0), generator=torch.Generator().manual_seed(4))
    assert torch.equal(plain, zero)
    assert not torch.equal(plain, guided)
    with pytest.raises(ValueError, match="shape"):
        with torch.no_grad():
            policy.sample(state, guidance=dl.EnergyGuidance(lambda s, a, i: a, scale=1.0))
    with pytest.raises(ValueError, match="scale"):
        dl.EnergyGuidance(energy, scale=-1.0)
    with pytest.raises(TypeError, match="callable"):
        dl.EnergyGuidance(3.0)
    with pytest.raises(RuntimeError, match="inference_mode"):
        with torch.inference_mode():
            policy.sample(state, guidance=dl.EnergyGuidance(energy, scale=1.0))


@pytest.mark.parametrize("method", ["cep", "mse"])
def test_trained_energy_guides_to_the_tilted_policy(method):
    torch.manual_seed(0)
    policy = behaviour_policy()
    energy = dl.EnergyModel(1, 2, policy.schedule, hidden_dim=64)
    log = dl.train_energy(energy, policy, linear_critic, torch.zeros(512, 1), steps=800, n_support=16, beta=KAPPA,
                          method=method, batch_size=64, lr=3e-3, seed=0, progress=False)
    assert log["energy_loss"].iloc[-10:].mean() < log["energy_loss"].iloc[:10].mean()
    mean, std = guided_moments(policy, dl.EnergyGuidance(energy, scale=1.0), n=8000)
    assert torch.all((mean - KAPPA * W).abs() < 0.1), (method, mean)
    assert torch.all((std - 1).abs() < 0.1), (method, std)


def test_cep_minimiser_is_the_energy_up_to_a_constant():
    """On fixed supports, the CEP loss is a cross-entropy: it is minimal when softmax(f) = softmax(κQ) over
    the K supports, i.e. f = κQ + c at i → 0. The exact energy scores below a shifted-but-wrong one."""
    from dac4rec_lite.energy import cep_loss

    schedule = dl.VPSchedule(10)
    g = torch.Generator().manual_seed(0)
    supports = torch.randn(32, 8, 2, generator=g)
    q = supports @ W
    steps = torch.ones(32, dtype=torch.long)
    noise = torch.randn(32, 8, 2, generator=g)
    exact = lambda s, a, i: (KAPPA * schedule.alphas_cumprod[i - 1].sqrt() * (a @ W) + 5.0).unsqueeze(1)
    wrong = lambda s, a, i: (2 * KAPPA * (a @ W)).unsqueeze(1)
    args = (torch.zeros(32, 1), supports, q, steps, noise, schedule, KAPPA)
    assert cep_loss(exact, *args) < cep_loss(wrong, *args)


def test_an_energy_that_ignores_the_action_guides_nowhere():
    policy = behaviour_policy()
    state = torch.zeros(8, 1)
    with torch.no_grad():
        plain = policy.sample(state, generator=torch.Generator().manual_seed(1))
        flat = policy.sample(state, guidance=dl.EnergyGuidance(lambda s, a, i: s.sum(1), 1.0),
                             generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(flat, plain)


def test_standardized_q_and_its_cep_targets_do_not_depend_on_the_reward_unit():
    """standardize_q(c·Q + b) = standardize_q(Q) for c > 0 (centred per state, one pooled σ), so the CEP
    loss at a fixed κ is the same for rewards in any unit; raw Q at κ is not."""
    from dac4rec_lite.energy import cep_loss, standardize_q

    g = torch.Generator().manual_seed(0)
    q = torch.randn(6, 5, generator=g) * torch.arange(1, 7).unsqueeze(1)  # states with different spreads
    z, sigma = standardize_q(q)
    torch.testing.assert_close(z.mean(dim=1), torch.zeros(6), atol=1e-6, rtol=0)
    assert z.pow(2).mean().item() == pytest.approx(1.0, rel=1e-5)
    assert sigma == pytest.approx((q - q.mean(1, keepdim=True)).pow(2).mean().sqrt().item(), rel=1e-6)
    for c, b in ((0.01, 3.0), (100.0, -50.0)):
        scaled, scaled_sigma = standardize_q(c * q + b)
        torch.testing.assert_close(scaled, z, atol=1e-4, rtol=1e-4)
        assert scaled_sigma == pytest.approx(c * sigma, rel=1e-4)
    schedule = dl.VPSchedule(10)
    energy = lambda s, a, i: (a * torch.tensor([1.0, -0.5])).sum(1, keepdim=True)
    supports, steps = torch.rand(6, 5, 2, generator=g) * 2 - 1, torch.randint(1, 11, (6,), generator=g)
    noise = torch.randn(6, 5, 2, generator=g)
    loss = lambda qq: cep_loss(energy, torch.zeros(6, 1), supports, qq, steps, noise, schedule, 3.0).item()
    assert loss(standardize_q(100 * q)[0]) == pytest.approx(loss(z), rel=1e-5)
    assert loss(100 * q) != pytest.approx(loss(q), rel=1e-2)  # raw Q: the unit changes the targets
    with pytest.raises(ValueError, match="K >= 2"):
        standardize_q(torch.ones(4, 1))
    flat, flat_sigma = standardize_q(torch.full((3, 4), 7.0))  # every support alike: uniform targets
    assert flat_sigma == 0.0 and torch.equal(flat, torch.zeros(3, 4))


def test_q_min_flat_is_one_value_per_row_and_min_q_is_its_old_name():
    """The critics' ``q_min`` is a (B, 1) column; ``energy.q_min_flat`` is the same min of the twins as (B,),
    for any callable critic (twins, a column or a flat Q); ``energy.min_q`` is the old name of the same function."""
    from dac4rec_lite.energy import min_q, q_min_flat

    critic = dl.TwinQ(3, 2, hidden_dim=8)
    state, action = torch.randn(6, 3), torch.randn(6, 2)
    column = critic.q_min(state, action)
    flat = q_min_flat(critic, state, action)
    q1, q2 = critic(state, action)
    assert column.shape == (6, 1) and flat.shape == (6,)
    assert torch.equal(flat, torch.min(q1, q2).squeeze(1)) and torch.equal(flat, column.squeeze(1))
    assert (flat <= q1.squeeze(1)).all() and (flat <= q2.squeeze(1)).all()
    assert torch.equal(q_min_flat(lambda s, a: a.sum(1, keepdim=True), state, action), action.sum(1))
    assert min_q is q_min_flat
