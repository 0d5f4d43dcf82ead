"""Notebook ex01's exercises (q_sample, reverse_step, bc_loss, vp_betas, elbo_weights): every typical wrong
answer, written here as a student would write it (independently of the checkers' catalogue), fails with its own
diagnosis."""
from __future__ import annotations

import math

import torch
from exercise_support import S, fails

import dac4rec_lite as dl

torch.set_num_threads(1)


# ----- 1. q_sample ----------------------------------------------------------------------------------------

def test_q_sample_zero_based():
    def q_sample(a0, i, noise, schedule):
        ab = schedule.alphas_cumprod[i].unsqueeze(1)
        return ab.sqrt() * a0 + (1 - ab).sqrt() * noise

    fails("q_sample", q_sample, "zero_based", "1-based", "alphas_cumprod[i - 1]")


def test_q_sample_zero_based_index_error_at_step_n():
    def q_sample(a0, i, noise, schedule):  # right at steps < N by luck, then out of range at N
        ab = schedule.alphas_cumprod[torch.where(i < schedule.n_steps, i - 1, i)].unsqueeze(1)
        return ab.sqrt() * a0 + (1 - ab).sqrt() * noise

    fails("q_sample", q_sample, "zero_based", "Step N went past the end of a table")


def test_q_sample_alpha_for_alpha_bar():
    def q_sample(a0, i, noise, schedule):
        a = schedule.alphas[i - 1].unsqueeze(1)
        return a.sqrt() * a0 + (1 - a).sqrt() * noise

    fails("q_sample", q_sample, "alpha_for_alpha_bar", "one-step α_i", "errata #3")


def test_q_sample_sqrt_missing():
    def both(a0, i, noise, schedule):
        ab = schedule.alphas_cumprod[i - 1].unsqueeze(1)
        return ab * a0 + (1 - ab) * noise

    def noise_only(a0, i, noise, schedule):
        ab = schedule.alphas_cumprod[i - 1].unsqueeze(1)
        return ab.sqrt() * a0 + (1 - ab) * noise

    fails("q_sample", both, "no_sqrt", "A square root is missing")
    fails("q_sample", noise_only, "no_sqrt", "The noise's coefficient lacks its square root")


def test_q_sample_sign_of_eps():
    def q_sample(a0, i, noise, schedule):
        ab = schedule.alphas_cumprod[i - 1].unsqueeze(1)
        return ab.sqrt() * a0 - (1 - ab).sqrt() * noise

    fails("q_sample", q_sample, "eps_sign", "The noise is subtracted")


def test_q_sample_forgot_the_column():
    def q_sample(a0, i, noise, schedule):
        ab = schedule.alphas_cumprod[i - 1]
        return ab.sqrt() * a0 + (1 - ab).sqrt() * noise

    fails("q_sample", q_sample, "error", "must first become a column")


# ----- 2. reverse_step ------------------------------------------------------------------------------------

def _mean(a_i, i, eps, schedule):
    beta, alpha, ab = schedule.betas[i - 1], schedule.alphas[i - 1], schedule.alphas_cumprod[i - 1]
    return (a_i - beta / (1 - ab).sqrt() * eps) / alpha.sqrt()


def test_reverse_step_noise_at_last_step():
    def reverse_step(a_i, i, eps, z, schedule):
        return _mean(a_i, i, eps, schedule) + schedule.betas[i - 1].sqrt() * z

    fails("reverse_step", reverse_step, "noise_at_last_step", "only for i > 1")


def test_reverse_step_zero_based():
    def reverse_step(a_i, i, eps, z, schedule):
        beta, alpha, ab = schedule.betas[i], schedule.alphas[i], schedule.alphas_cumprod[i]
        mean = (a_i - beta / (1 - ab).sqrt() * eps) / alpha.sqrt()
        return mean + beta.sqrt() * z if i > 1 else mean

    fails("reverse_step", reverse_step, "zero_based", "1-based")


def test_reverse_step_alpha_where_alpha_bar_belongs():
    def reverse_step(a_i, i, eps, z, schedule):
        beta, alpha = schedule.betas[i - 1], schedule.alphas[i - 1]
        mean = (a_i - beta / (1 - alpha).sqrt() * eps) / alpha.sqrt()
        return mean + beta.sqrt() * z if i > 1 else mean

    fails("reverse_step", reverse_step, "alpha_for_alpha_bar", "β_i / √(1 − ᾱ_i)", "one-step α_i")


def test_reverse_step_printed_eq7():
    def reverse_step(a_i, i, eps, z, schedule):
        beta, alpha = schedule.betas[i - 1], schedule.alphas[i - 1]
        mean = a_i / alpha.sqrt() - beta / (alpha * (1 - alpha).sqrt()) * eps
        return mean + beta.sqrt() * z if i > 1 else mean

    fails("reverse_step", reverse_step, "printed_eq7", "Eq. 7's printed noise coefficient")


def test_reverse_step_alpha_bar_in_the_leading_factor():
    def reverse_step(a_i, i, eps, z, schedule):
        beta, ab = schedule.betas[i - 1], schedule.alphas_cumprod[i - 1]
        mean = (a_i - beta / (1 - ab).sqrt() * eps) / ab.sqrt()
        return mean + beta.sqrt() * z if i > 1 else mean

    fails("reverse_step", reverse_step, "alpha_bar_for_alpha", "leading factor is the one-step 1/√α_i")


def test_reverse_step_sign_of_eps():
    def reverse_step(a_i, i, eps, z, schedule):
        beta, alpha, ab = schedule.betas[i - 1], schedule.alphas[i - 1], schedule.alphas_cumprod[i - 1]
        mean = (a_i + beta / (1 - ab).sqrt() * eps) / alpha.sqrt()
        return mean + beta.sqrt() * z if i > 1 else mean

    fails("reverse_step", reverse_step, "eps_sign", "sign of the ε term is flipped")


def test_reverse_step_sqrt_missing():
    def in_the_mean(a_i, i, eps, z, schedule):
        beta, alpha, ab = schedule.betas[i - 1], schedule.alphas[i - 1], schedule.alphas_cumprod[i - 1]
        mean = (a_i - beta / (1 - ab) * eps) / alpha.sqrt()
        return mean + beta.sqrt() * z if i > 1 else mean

    def in_sigma(a_i, i, eps, z, schedule):
        mean = _mean(a_i, i, eps, schedule)
        return mean + schedule.betas[i - 1] * z if i > 1 else mean

    fails("reverse_step", in_the_mean, "no_sqrt", "A square root is missing in the mean")
    fails("reverse_step", in_sigma, "no_sqrt_sigma", "standard deviation is √β_i")


def test_reverse_step_no_noise_and_posterior_variance():
    def no_noise(a_i, i, eps, z, schedule):
        return _mean(a_i, i, eps, schedule)

    def posterior(a_i, i, eps, z, schedule):
        beta, ab, abp = schedule.betas[i - 1], schedule.alphas_cumprod[i - 1], schedule.alphas_cumprod_prev[i - 1]
        return _mean(a_i, i, eps, schedule) + (beta * (1 - abp) / (1 - ab)).sqrt() * z

    fails("reverse_step", no_noise, "no_noise", "You never add the noise")
    fails("reverse_step", posterior, "posterior_variance", "posterior variance", "variance=\"beta\"")


# ----- 3. bc_loss -----------------------------------------------------------------------------------------

def _a_i(action, i, noise, schedule, table="alphas_cumprod", shift=1):
    ab = getattr(schedule, table)[i - shift].unsqueeze(1)
    return ab.sqrt() * action + (1 - ab).sqrt() * noise


def test_bc_loss_mistakes():
    def zero_based(eps_model, state, action, i, noise, schedule):
        return (noise - eps_model(state, _a_i(action, i, noise, schedule, shift=0), i)).pow(2).mean()

    def alpha(eps_model, state, action, i, noise, schedule):
        return (noise - eps_model(state, _a_i(action, i, noise, schedule, "alphas"), i)).pow(2).mean()

    def target_action(eps_model, state, action, i, noise, schedule):
        return (action - eps_model(state, _a_i(action, i, noise, schedule), i)).pow(2).mean()

    def clean_input(eps_model, state, action, i, noise, schedule):
        return (noise - eps_model(state, action, i)).pow(2).mean()

    def summed(eps_model, state, action, i, noise, schedule):
        return (noise - eps_model(state, _a_i(action, i, noise, schedule), i)).pow(2).sum(dim=1).mean()

    def no_grad(eps_model, state, action, i, noise, schedule):
        with torch.no_grad():
            return (noise - eps_model(state, _a_i(action, i, noise, schedule), i)).pow(2).mean()

    def per_row(eps_model, state, action, i, noise, schedule):
        return (noise - eps_model(state, _a_i(action, i, noise, schedule), i)).pow(2).mean(dim=1)

    def state_second(eps_model, state, action, i, noise, schedule):
        return (noise - eps_model(_a_i(action, i, noise, schedule), state, i)).pow(2).mean()

    def network_gets_index(eps_model, state, action, i, noise, schedule):
        return (noise - eps_model(state, _a_i(action, i, noise, schedule), i - 1)).pow(2).mean()

    fails("bc_loss", zero_based, "zero_based", "1-based")
    fails("bc_loss", alpha, "alpha_for_alpha_bar", "one-step α_i")
    fails("bc_loss", target_action, "target_is_action", "not with the clean action")
    fails("bc_loss", clean_input, "clean_input", "must see the noisy action")
    fails("bc_loss", summed, "sum_over_dims", "averages them")
    fails("bc_loss", no_grad, "no_grad", "carries no gradient")
    fails("bc_loss", per_row, "shape", "one loss per row")
    fails("bc_loss", state_second, "network_call", "takes the state first")
    fails("bc_loss", network_gets_index, "network_call", "networks take the 1-based steps i themselves")


# ----- 10. vp_betas ---------------------------------------------------------------------------------------

def _betas(n_steps, beta_min, beta_max, *, sign=-1, start=1, power=2, half=0.5, two_i_minus_one=True):
    betas = []
    for i in range(start, start + n_steps):
        width = (2 * i - 1) if two_i_minus_one else 2 * i
        betas.append(1 - math.exp(sign * beta_min / n_steps - half * (beta_max - beta_min) * width / n_steps**power))
    return torch.tensor(betas)


def test_vp_betas_mistakes():
    fails("vp_betas", lambda *a: _betas(*a, sign=+1), "printed_sign", "sign the paper prints", "errata #1", "β_1 < 0")
    fails("vp_betas", lambda *a: _betas(*a, start=0), "zero_based", "i = 1..N")
    fails("vp_betas", lambda *a: _betas(*a, power=1), "n_not_squared", "divides by N²")
    fails("vp_betas", lambda *a: _betas(*a, half=1.0), "no_half", "factor ½")
    fails("vp_betas", lambda *a: _betas(*a, two_i_minus_one=False), "two_i", "(2i − 1), not 2i")

    def alphas(n_steps, beta_min, beta_max):
        return 1 - _betas(n_steps, beta_min, beta_max)

    def exponent_only(n_steps, beta_min, beta_max):
        i = torch.arange(1, n_steps + 1)
        return beta_min / n_steps + 0.5 * (beta_max - beta_min) * (2 * i - 1) / n_steps**2

    fails("vp_betas", alphas, "returned_alphas", "You returned α_i")
    fails("vp_betas", exponent_only, "no_exp", "1 − exp(−that)")
    fails("vp_betas", lambda *a: _betas(*a).double(), "dtype", "float32")


def test_printed_sign_gives_a_negative_beta_at_the_papers_n():
    """What the printed_sign message claims: with N = 100 the printed β_1 is negative, the corrected one is not."""
    assert float(_betas(100, 0.1, 10.0, sign=+1)[0]) < 0 < float(S.vp_betas(100, 0.1, 10.0)[0])


# ----- 11. elbo_weights -----------------------------------------------------------------------------------

def _elbo(schedule, *, first="decoder", denominator="prev", lead="alphas", norm="mean"):
    prev = schedule.alphas_cumprod_prev if denominator == "prev" else schedule.alphas_cumprod
    weights = schedule.betas / (2 * getattr(schedule, lead) * (1 - prev))
    if first == "decoder":
        weights[0] = 1 / (2 * schedule.alphas[0])
    elif first == "zero":
        weights[0] = 0.0
    elif first == "eps":
        weights = schedule.betas / (2 * getattr(schedule, lead) * (1 - prev + 1e-8))
    elif first == "no_half":
        weights[0] = 1 / schedule.alphas[0]
    return {"mean": weights / weights.mean(), "sum": weights / weights.sum(), "none": weights}[norm]


def test_elbo_weights_mistakes():
    fails("elbo_weights", lambda s: _elbo(s, first="printed"), "first_step_infinite", "ᾱ_0 = 1", "1 / (2 α_1)")
    fails("elbo_weights", lambda s: _elbo(s, first="printed", norm="none"), "first_step_infinite", "divides by zero")
    fails("elbo_weights", lambda s: _elbo(s, first="eps"), "first_step_clamped", "swamps every other weight")
    fails("elbo_weights", lambda s: _elbo(s, first="zero"), "first_step_dropped", "set the i = 1 weight to 0")
    fails("elbo_weights", lambda s: _elbo(s, first="no_half"), "first_step_factor", "1 / (2 α_1)")
    fails("elbo_weights", lambda s: _elbo(s, denominator="current"), "alpha_bar_i_for_prev", "ᾱ_{i−1}")
    fails("elbo_weights", lambda s: _elbo(s, lead="alphas_cumprod"), "alpha_bar_for_alpha", "one-step α_i")
    fails("elbo_weights", lambda s: _elbo(s, norm="none"), "not_normalised", "mean 1")
    fails("elbo_weights", lambda s: _elbo(s, norm="sum"), "normalised_to_sum", "not to sum 1")


def _kit_schedule_with_the_tables(schedule):
    """A dl.VPSchedule carrying exactly the exercise's tables: its elbo_weights() gives the reference's numbers."""
    kit = dl.VPSchedule(schedule.n_steps)
    for name in ("betas", "alphas", "alphas_cumprod", "alphas_cumprod_prev"):
        setattr(kit, name, getattr(schedule, name).clone())
    return kit


def test_elbo_weights_calling_the_kit_is_refused():
    """An answer that calls the core's VPSchedule.elbo_weights is refused, whatever its numbers: even the one
    that rebuilds a schedule from the given tables and so returns exactly the reference's weights."""
    from dac4rec_lite.exercises.checks_diffusion import ELBO_WEIGHTS, elbo_reference

    case = ELBO_WEIGHTS.cases[2]()  # N = 30, β_min = 0.2, β_max = 5: not the default schedule
    right = _kit_schedule_with_the_tables(case.args[0]).elbo_weights()
    torch.testing.assert_close(right, elbo_reference(dl.VPSchedule(*case.extra["schedule"])), rtol=1e-6, atol=1e-7)
    fails("elbo_weights", lambda s: _kit_schedule_with_the_tables(s).elbo_weights(), "calls_kit",
          "Your answer calls dl.VPSchedule.elbo_weights", "the kit's own implementation", "Write the formula yourself")
    fails("elbo_weights", lambda s: dl.VPSchedule(s.n_steps).elbo_weights(), "calls_kit",
          "dl.VPSchedule.elbo_weights", "the kit's own implementation")
    weights_of = dl.VPSchedule.elbo_weights  # an alias is the same code
    fails("elbo_weights", lambda s: weights_of(dl.VPSchedule(s.n_steps)), "calls_kit", "dl.VPSchedule.elbo_weights")
    # The tables passed to the exercise have no such method: calling it is named as the kit call it is.
    fails("elbo_weights", lambda s: s.elbo_weights(), "calls_kit", "Your answer calls schedule.elbo_weights()",
          "the kit's own implementation", "Write the formula yourself")


def test_elbo_reference_is_the_core_in_float64():
    """The reference is VPSchedule.elbo_weights evaluated in float64 on the float32 tables: within float32
    rounding of the core's own float32 result, mean 1, and the schedule passed in is left in float32."""
    from dac4rec_lite.exercises.checks_diffusion import elbo_reference

    for args in ((10, 0.1, 10.0), (5, 0.1, 10.0), (30, 0.2, 5.0), (200, 0.1, 20.0)):
        schedule = dl.VPSchedule(*args)
        ref = elbo_reference(schedule)
        assert ref.dtype == torch.float32 and schedule.betas.dtype == torch.float32
        tables = [t.double() for t in (schedule.betas, schedule.alphas, schedule.alphas_cumprod_prev)]
        betas, alphas, ab_prev = tables
        by_hand = betas / (2 * alphas * (1 - ab_prev))  # i = 1 is inf here and replaced next
        by_hand[0] = 1 / (2 * alphas[0])
        torch.testing.assert_close(ref, (by_hand / by_hand.mean()).float(), rtol=0, atol=0)
        torch.testing.assert_close(ref, schedule.elbo_weights(), rtol=1e-5, atol=1e-6)
        assert abs(float(ref.double().mean()) - 1) < 1e-6


def test_elbo_reference_is_what_the_agent_uses():
    """The checker's reference and DAC4Rec(policy_improvement="elbo")'s per-step weights are the same numbers."""
    from dac4rec_lite.exercises.checks_diffusion import elbo_reference

    for n in (5, 10):
        agent = dl.DAC4Rec(3, 2, n_steps=n, hidden_dim=8, policy_improvement="elbo")
        used = getattr(agent, "elbo_weights", None)
        used = used if isinstance(used, torch.Tensor) else agent._elbo_weights
        torch.testing.assert_close(elbo_reference(agent.schedule), used, rtol=1e-5, atol=1e-6)
        assert abs(float(used.mean()) - 1) < 1e-5 and bool(torch.isfinite(used).all())
