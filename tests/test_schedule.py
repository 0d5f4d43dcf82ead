"""VPSchedule: the corrected closed form, its invariants, the forward process and the posterior."""
import math

import numpy as np
import pytest
import torch

import dac4rec_lite as dl


@pytest.mark.parametrize("n_steps,beta_min,beta_max", [(1, 0.1, 10.0), (5, 0.1, 10.0), (100, 0.1, 10.0), (1000, 0.0, 20.0)])
def test_schedule_matches_corrected_closed_form(n_steps, beta_min, beta_max):
    s = dl.VPSchedule(n_steps, beta_min, beta_max)
    i = np.arange(1, n_steps + 1)
    alphas = np.exp(-beta_min / n_steps - 0.5 * (beta_max - beta_min) * (2 * i - 1) / n_steps**2)
    np.testing.assert_allclose(s.alphas.numpy(), alphas, rtol=1e-6)
    np.testing.assert_allclose(s.betas.numpy(), 1 - alphas, rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(s.alphas_cumprod.numpy(), np.cumprod(alphas), rtol=1e-5)
    # Σ_i (2i-1) = N², so ᾱ_N = exp(-β_min - (β_max-β_min)/2) for every N: the final noise level is N-free.
    assert s.alphas_cumprod[-1].item() == pytest.approx(math.exp(-beta_min - 0.5 * (beta_max - beta_min)), rel=1e-5)
    assert bool(((s.betas > 0) & (s.betas < 1)).all())
    assert bool((s.alphas_cumprod[1:] < s.alphas_cumprod[:-1]).all()), "ᾱ must decrease strictly"
    assert s.alphas_cumprod_prev[0].item() == 1.0


def test_printed_sign_would_give_negative_betas():
    """The erratum itself: with the paper's '+β_min/N', β_1 < 0 for N = 100."""
    n, beta_min, beta_max = 100, 0.1, 10.0
    printed_beta_1 = 1 - math.exp(beta_min / n - 0.5 * (beta_max - beta_min) * 1 / n**2)
    assert printed_beta_1 < 0
    assert dl.VPSchedule(n, beta_min, beta_max).betas[0].item() > 0


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(n_steps=0), "n_steps"),
        (dict(n_steps=2.5), "n_steps"),
        (dict(n_steps=True), "n_steps"),
        (dict(beta_min=-0.1), "beta_min must be >= 0"),
        (dict(beta_min=1.0, beta_max=1.0), "beta_max must be larger"),
        (dict(beta_min=2.0, beta_max=1.0), "beta_max must be larger"),
        (dict(beta_max=float("nan")), "finite"),
        (dict(beta_max=float("inf")), "finite"),
        (dict(n_steps=1, beta_max=1e6), "reach 1"),
    ],
)
def test_bad_schedule_parameters_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        dl.VPSchedule(**kwargs)


def test_q_sample_moments_match_forward_marginal():
    s = dl.VPSchedule(50)
    g = torch.Generator().manual_seed(0)
    n, i = 200_000, 17
    a0 = torch.tensor([[0.7, -0.3]]).expand(n, 2).contiguous()
    x = s.q_sample(a0, i, torch.randn(n, 2, generator=g))
    alpha_bar = s.alphas_cumprod[i - 1].item()
    mean_se = math.sqrt((1 - alpha_bar) / n)
    var_se = (1 - alpha_bar) * math.sqrt(2 / (n - 1))
    assert torch.allclose(x.mean(0), math.sqrt(alpha_bar) * a0[0], atol=4 * mean_se)
    assert torch.allclose(x.var(0), torch.full((2,), 1 - alpha_bar), atol=4 * var_se)


def test_predict_a0_inverts_q_sample_and_reverse_mean_is_posterior_mean():
    s = dl.VPSchedule(30)
    g = torch.Generator().manual_seed(1)
    a0 = torch.rand(64, 3, generator=g) * 2 - 1
    noise = torch.randn(64, 3, generator=g)
    steps = torch.randint(1, 31, (64,), generator=g)
    a_i = s.q_sample(a0, steps, noise)
    torch.testing.assert_close(s.predict_a0(a_i, steps, noise), a0, atol=2e-4, rtol=0)
    eps = torch.randn(64, 3, generator=g)
    torch.testing.assert_close(s.reverse_mean(a_i, steps, eps), s.posterior_mean(s.predict_a0(a_i, steps, eps), a_i, steps), atol=1e-4, rtol=1e-4)


def test_posterior_is_bayes_rule_on_the_forward_chain():
    """q(a^{i-1}|a^i,a^0) ∝ N(a^{i-1}; √ᾱ_{i-1} a0, 1-ᾱ_{i-1}) · N(a^i; √α_i a^{i-1}, β_i): precision-weighted."""
    s = dl.VPSchedule(40)
    a0, a_i = torch.tensor([[0.5]]), torch.tensor([[-1.2]])
    for i in range(2, 41):
        ab_prev, alpha, beta = (s.alphas_cumprod_prev[i - 1].double(), s.alphas[i - 1].double(), s.betas[i - 1].double())
        precision = 1 / (1 - ab_prev) + alpha / beta
        mean = (ab_prev.sqrt() * a0.double() / (1 - ab_prev) + alpha.sqrt() * a_i.double() / beta) / precision
        assert s.posterior_variance[i - 1].item() == pytest.approx((1 / precision).item(), rel=1e-4)
        assert s.posterior_mean(a0, a_i, i).item() == pytest.approx(mean.item(), rel=1e-4, abs=1e-6)
    assert s.posterior_variance[0].item() == 0.0, "no noise at i = 1"
    assert s.posterior_mean(a0, a_i, 1).item() == pytest.approx(0.5, abs=1e-6), "the last step returns a^0"


@pytest.mark.parametrize("bad_i,err,match", [(0, ValueError, "1-based"), (31, ValueError, "outside"),
                                             (torch.tensor([0, 1]), ValueError, "index i-1"),
                                             (torch.tensor([1.0, 2.0]), TypeError, "LongTensor"),
                                             (torch.tensor([1, 2, 3]), ValueError, "shape")])
def test_bad_steps_raise(bad_i, err, match):
    s = dl.VPSchedule(30)
    with pytest.raises(err, match=match):
        s.q_sample(torch.zeros(2, 2), bad_i, torch.zeros(2, 2))


def test_shape_mismatch_is_not_broadcast():
    s = dl.VPSchedule(10)
    with pytest.raises(ValueError, match="shape"):
        s.q_sample(torch.zeros(4, 2), 3, torch.zeros(1, 2))


def test_reverse_variance_kinds():
    s = dl.VPSchedule(10)
    assert s.reverse_variance("beta")[0].item() == 0.0
    torch.testing.assert_close(s.reverse_variance("beta")[1:], s.betas[1:])
    assert bool((s.reverse_variance("posterior")[1:] < s.betas[1:]).all()), "β̃_i < β_i for i > 1"
    with pytest.raises(ValueError, match="posterior"):
        s.reverse_variance("sde")


def test_schedule_moves_with_its_policy():
    s = dl.VPSchedule(10)
    policy = dl.DiffusionPolicy(3, 2, s, hidden_dim=16).to(torch.float64)
    assert policy.schedule.betas.dtype == torch.float64


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (none on CPU-only machines)")
def test_schedule_on_cuda_equals_cpu():
    s = dl.VPSchedule(20)
    cuda = dl.VPSchedule(20).to("cuda")
    assert cuda.device.type == "cuda"
    torch.testing.assert_close(cuda.alphas_cumprod.cpu(), s.alphas_cumprod)


def test_elbo_weights_closed_form_and_first_step():
    """Eq. 18: w_i ∝ β_i / (2 α_i (1 − ᾱ_{i−1})) for i ≥ 2 and 1 / (2 α_1) at i = 1 (errata #6), mean 1."""
    import math
    s = dl.VPSchedule(n_steps=4, beta_min=0.1, beta_max=10.0)
    alphas = [math.exp(-0.1 / 4 - 0.5 * 9.9 * (2 * i - 1) / 16) for i in range(1, 5)]
    bars = [math.prod(alphas[:i]) for i in range(1, 5)]
    raw = [1 / (2 * alphas[0])] + [(1 - alphas[i]) / (2 * alphas[i] * (1 - bars[i - 1])) for i in range(1, 4)]
    expected = torch.tensor([w / (sum(raw) / 4) for w in raw])
    weights = s.elbo_weights()
    assert weights.shape == (4,) and torch.isfinite(weights).all()
    assert torch.allclose(weights, expected, rtol=1e-5)
    assert abs(float(weights.mean()) - 1.0) < 1e-6
    # the printed formula at i = 1 divides by 1 − ᾱ_0 = 0: the kit's weight is the decoder's finite one
    assert float(weights[0]) < float("inf")


def test_dac4rec_uses_the_schedules_elbo_weights():
    import dac4rec_lite as dl
    agent = dl.DAC4Rec(obs_dim=3, action_dim=2, n_steps=6, hidden_dim=16, seed=0)
    assert torch.equal(agent._elbo_weights, agent.schedule.elbo_weights())
