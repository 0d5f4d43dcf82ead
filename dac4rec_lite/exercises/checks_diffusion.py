"""Exercises 1–5 (notebook ex01_diffusion): the VP schedule, forward noising, the reverse step, the
behaviour-cloning loss and the ELBO weights of Eq. 18.

Every reference calls the core (``VPSchedule``, ``DiffusionPolicy``; the ELBO weights are
``VPSchedule.elbo_weights``, which ``DAC4Rec(policy_improvement="elbo")`` uses: tests/test_exercise_mistakes_diffusion.py
checks the two agree); the mistakes are written the way a student writes them, so that a match is a diagnosis.
"""
from __future__ import annotations

import copy
from typing import Callable

import torch

from ..agents import DAC4Rec
from ..diffusion import DiffusionPolicy, VPSchedule
from .cases import (
    ACTION_DIM, ALPHA_FOR_ALPHA_BAR, BATCH, GRAD_WORDS, NO_GRAD, NO_LAST_STEP, NO_SQRT, N_STEPS, SCHEDULE,
    WITH_ENDS, ZERO_BASED, ScheduleTables, denoise_case, grad_probe, index_error_hint, column_hint, make_steps, noised,
    normal, policy_reference, table_column, tables, uniform,
)
from .harness import Case, Exercise, Mistake

__all__ = ["Q_SAMPLE", "REVERSE_STEP", "BC_LOSS", "VP_BETAS", "ELBO_WEIGHTS"]


# ===== 1. q_sample (Eq. 13) ============================================================================

def _q_sample_case(steps: list[int] | None, batch: int, seed: int, info: str) -> Callable[[], Case]:
    def make() -> Case:
        i = make_steps(steps, batch, seed)
        return Case((uniform((batch, ACTION_DIM), seed), i, normal((batch, ACTION_DIM), seed + 100), tables()),
                    info, {"steps": i})
    return make


def _q_sample_zero_based(a0, i, noise, schedule):
    ab = table_column(schedule, i, shift=0)
    return ab.sqrt() * a0 + (1 - ab).sqrt() * noise


def _q_sample_alpha(a0, i, noise, schedule):
    a = table_column(schedule, i, "alphas")
    return a.sqrt() * a0 + (1 - a).sqrt() * noise


def _q_sample_no_sqrt(a0, i, noise, schedule):
    ab = table_column(schedule, i)
    return ab * a0 + (1 - ab) * noise


def _q_sample_no_sqrt_signal(a0, i, noise, schedule):
    ab = table_column(schedule, i)
    return ab * a0 + (1 - ab).sqrt() * noise


def _q_sample_no_sqrt_noise(a0, i, noise, schedule):
    ab = table_column(schedule, i)
    return ab.sqrt() * a0 + (1 - ab) * noise


def _q_sample_minus(a0, i, noise, schedule):
    ab = table_column(schedule, i)
    return ab.sqrt() * a0 - (1 - ab).sqrt() * noise


def _q_sample_swapped(a0, i, noise, schedule):
    ab = table_column(schedule, i)
    return (1 - ab).sqrt() * a0 + ab.sqrt() * noise


Q_SAMPLE = Exercise(
    name="q_sample", equation="Eq. 13: a^i = √ᾱ_i a^0 + √(1 − ᾱ_i) ε",
    signature="q_sample(a0, i, noise, schedule) -> a_i",
    cases=[
        _q_sample_case(NO_LAST_STEP, BATCH, 0, "7 actions of dim 3, steps 1..9"),
        _q_sample_case(WITH_ENDS, BATCH, 1, "7 actions, steps 1 and N = 10 included"),
        _q_sample_case(None, 64, 2, "64 actions, random steps in 1..10"),
    ],
    reference=lambda case: SCHEDULE.q_sample(case.args[0], case.args[1], case.args[2]),
    expected_shape=lambda case: tuple(case.args[0].shape),
    probe=lambda out, case: {"value": out},
    mistakes=[
        Mistake("zero_based", ZERO_BASED, _q_sample_zero_based),
        Mistake("alpha_for_alpha_bar", ALPHA_FOR_ALPHA_BAR, _q_sample_alpha),
        Mistake("no_sqrt", NO_SQRT, _q_sample_no_sqrt),
        Mistake("no_sqrt", "The signal's coefficient lacks its square root: it is √ᾱ_i, not ᾱ_i. " + NO_SQRT.split(". ", 1)[1],
                _q_sample_no_sqrt_signal),
        Mistake("no_sqrt", "The noise's coefficient lacks its square root: it is √(1 − ᾱ_i), not 1 − ᾱ_i. " + NO_SQRT.split(". ", 1)[1],
                _q_sample_no_sqrt_noise),
        Mistake("eps_sign", "The noise is subtracted; Eq. 13 adds it: a^i = √ᾱ_i a^0 + √(1 − ᾱ_i) ε. (ε and −ε have the "
                "same distribution, but the network is trained to predict the ε that was added, so the sign matters.)",
                _q_sample_minus),
        Mistake("swapped", "The two coefficients are swapped: the clean action gets √ᾱ_i (close to 1 at small i) and the "
                "noise gets √(1 − ᾱ_i).", _q_sample_swapped),
    ],
    shape_hint=column_hint,
    error_hint=index_error_hint,
    field_words={"value": "a^i"},
    forbidden=lambda: [("dl.VPSchedule.q_sample", VPSchedule.q_sample)],
)



# ===== 2. reverse_step (Eq. 7) =========================================================================

def _reverse_case(step: int, seed: int, info: str) -> Callable[[], Case]:
    def make() -> Case:
        return Case((normal((BATCH, ACTION_DIM), seed), step, normal((BATCH, ACTION_DIM), seed + 100),
                     normal((BATCH, ACTION_DIM), seed + 200), tables()), info)
    return make


def _reverse(a_i, i, eps, z, schedule, *, shift=1, coef="ok", lead="alpha", sigma="beta", last_noise=False, sign=-1.0):
    beta, alpha, ab = schedule.betas[i - shift], schedule.alphas[i - shift], schedule.alphas_cumprod[i - shift]
    noise_coef = {"ok": beta / (1 - ab).sqrt(), "alpha": beta / (1 - alpha).sqrt(),
                  "printed": beta / (alpha * (1 - alpha).sqrt()) * alpha.sqrt(), "no_sqrt": beta / (1 - ab)}[coef]
    leading = {"alpha": alpha.sqrt(), "alpha_bar": ab.sqrt(), "no_sqrt": alpha}[lead]
    mean = (a_i + sign * noise_coef * eps) / leading
    if sigma == "none":
        return mean
    variance = {"beta": beta, "posterior": beta * (1 - schedule.alphas_cumprod_prev[i - 1]) / (1 - ab)}[sigma]
    return mean + variance.sqrt() * z if (i > 1 or last_noise) else mean


def _reverse_variant(**kwargs) -> Callable:
    return lambda a_i, i, eps, z, schedule: _reverse(a_i, i, eps, z, schedule, **kwargs)


def _reverse_sigma_no_sqrt(a_i, i, eps, z, schedule):
    mean = _reverse(a_i, i, eps, z, schedule, sigma="none")
    return mean + schedule.betas[i - 1] * z if i > 1 else mean


REVERSE_STEP = Exercise(
    name="reverse_step", equation="Eq. 7: a^{i-1} = (a^i − β_i/√(1 − ᾱ_i) ε_θ) / √α_i + √β_i z, no noise at i = 1",
    signature="reverse_step(a_i, i, eps, z, schedule) -> a_{i-1}",
    cases=[
        _reverse_case(5, 0, "7 actions, step i = 5"),
        _reverse_case(1, 1, "7 actions, the last step i = 1"),
        _reverse_case(N_STEPS, 2, "7 actions, the first step i = N = 10"),
        _reverse_case(2, 3, "7 actions, step i = 2"),
    ],
    reference=lambda case: (SCHEDULE.reverse_mean(case.args[0], case.args[1], case.args[2])
                            + SCHEDULE.reverse_variance("beta")[case.args[1] - 1].sqrt() * case.args[3]),
    expected_shape=lambda case: tuple(case.args[0].shape),
    probe=lambda out, case: {"value": out},
    mistakes=[
        Mistake("noise_at_last_step", "You added noise at the last step i = 1. Eq. 7 adds √β_i z only for i > 1: the "
                "last step returns the mean itself, the clean action a^0 (a final random kick would only blur it).",
                _reverse_variant(last_noise=True)),
        Mistake("zero_based", ZERO_BASED, _reverse_variant(shift=0)),
        Mistake("alpha_for_alpha_bar", "In the noise coefficient β_i / √(1 − ᾱ_i) you used the one-step α_i instead of "
                "the cumulative ᾱ_i (schedule.alphas_cumprod). The paper prints α_i there (Eq. 6, errata #3), but ε was "
                "added with √(1 − ᾱ_i) by Eq. 13, so that is what must be taken away.", _reverse_variant(coef="alpha")),
        Mistake("printed_eq7", "You copied Eq. 7's printed noise coefficient β_i / (α_i √(1 − α_i)). It has two typos "
                "(errata #3 and #4): the correct mean is (a^i − β_i/√(1 − ᾱ_i) · ε) / √α_i.",
                lambda a_i, i, eps, z, schedule: _reverse(a_i, i, eps, z, schedule, coef="printed")),
        Mistake("alpha_bar_for_alpha", "The leading factor is the one-step 1/√α_i (schedule.alphas), not 1/√ᾱ_i: one "
                "reverse step undoes one forward step, which shrank the action by √α_i.", _reverse_variant(lead="alpha_bar")),
        Mistake("eps_sign", "The sign of the ε term is flipped: the step subtracts the predicted noise, "
                "a^i − β_i/√(1 − ᾱ_i) · ε_θ, it does not add it.", _reverse_variant(sign=1.0)),
        Mistake("no_sqrt", "A square root is missing in the mean: it is β_i / √(1 − ᾱ_i) and a division by √α_i.",
                _reverse_variant(coef="no_sqrt")),
        Mistake("no_sqrt", "A square root is missing in the mean: the leading factor is 1/√α_i, not 1/α_i.",
                _reverse_variant(lead="no_sqrt")),
        Mistake("no_sqrt_sigma", "The noise is scaled by β_i; the standard deviation is √β_i (β_i is the variance).",
                _reverse_sigma_no_sqrt),
        Mistake("no_noise", "You never add the noise: for i > 1 the step is the mean plus √β_i · z (z is given to you). "
                "Without it every sample follows the same path and the policy loses its modes.", _reverse_variant(sigma="none")),
        Mistake("posterior_variance", "You used the posterior variance β̃_i = β_i (1 − ᾱ_{i−1}) / (1 − ᾱ_i). That is a valid "
                "choice too (the kit's default sampler uses it), but this exercise asks for Eq. 7's √β_i z (the kit's "
                "variance=\"beta\"), so the numbers differ.", _reverse_variant(sigma="posterior")),
    ],
    error_hint=index_error_hint,
    field_words={"value": "a^{i-1}"},
    forbidden=lambda: [("dl.VPSchedule.reverse_mean", VPSchedule.reverse_mean),
                       ("dl.VPSchedule.posterior_mean", VPSchedule.posterior_mean),
                       ("dl.DiffusionPolicy.sample", DiffusionPolicy.sample)],
)



# ===== 3. bc_loss (Eq. 8) ==============================================================================

def _bc(eps_model, state, action, i, noise, schedule, *, table="alphas_cumprod", shift=1, target="noise",
        clean_input=False, reduce="mean", square=True):
    a_i = action if clean_input else noised(action, i, noise, schedule, table, shift)
    err = ({"noise": noise, "action": action}[target] - eps_model(state, a_i, i))
    err = err.pow(2) if square else err.abs()
    return err.sum(dim=1).mean() if reduce == "sum" else err.mean()


def _bc_variant(**kwargs) -> Callable:
    return lambda *args: _bc(*args, **kwargs)


def _bc_no_grad(*args):
    with torch.no_grad():
        return _bc(*args)


def _bc_shape_hint(shape: tuple[int, ...], case: Case) -> str | None:
    if len(shape) == 1:
        return "You returned one loss per row: average over the batch too, so the loss is a single number (.mean())."
    if len(shape) == 2:
        return "You returned the squared errors themselves: average them over rows and action dimensions (.mean())."
    return None


BC_LOSS = Exercise(
    name="bc_loss", equation="Eq. 8: L_d = mean ‖ε − ε_θ(√ᾱ_i a + √(1 − ᾱ_i) ε, s, i)‖² (mean over action dims)",
    signature="bc_loss(eps_model, state, action, i, noise, schedule) -> scalar",
    cases=[
        denoise_case(NO_LAST_STEP, BATCH, 0, "7 states, steps 1..9"),
        denoise_case(WITH_ENDS, BATCH, 1, "7 states, steps 1 and N = 10 included"),
        denoise_case(None, 32, 2, "32 states, random steps"),
    ],
    reference=lambda case: policy_reference(case)[0].mean(),
    expected_shape=lambda case: (),
    probe=grad_probe,
    mistakes=[
        Mistake("zero_based", ZERO_BASED, _bc_variant(shift=0)),
        Mistake("alpha_for_alpha_bar", "You noised the action with the one-step α_i; Eq. 8's α_i is the paper's typo for "
                "the cumulative ᾱ_i (schedule.alphas_cumprod, errata #3). With α_i the network would never see the "
                "heavily noised actions that sampling starts from.", _bc_variant(table="alphas")),
        Mistake("target_is_action", "The network predicts the noise ε that was added, so the loss compares ε_θ(...) with "
                "`noise`, not with the clean action.", _bc_variant(target="action")),
        Mistake("clean_input", "The network must see the noisy action a^i = √ᾱ_i a + √(1 − ᾱ_i) ε, not the clean "
                "action: from the clean action there is no noise to predict.", _bc_variant(clean_input=True)),
        Mistake("sum_over_dims", "You summed the squared error over the action dimensions. The kit averages them "
                "(Eq. 8 divided by action_dim, as Diffusion-QL does; see docs/errata.md, 'Loss scale'), so the "
                "loss's scale does not grow with the action size: use .mean() over everything.", _bc_variant(reduce="sum")),
        Mistake("not_squared", "The error must be squared, ‖ε − ε_θ‖², not its absolute value.", _bc_variant(square=False)),
        Mistake("no_grad", NO_GRAD, _bc_no_grad),
    ],
    shape_hint=_bc_shape_hint,
    error_hint=index_error_hint,
    field_words=GRAD_WORDS,
    forbidden=lambda: [("dl.DiffusionPolicy.loss", DiffusionPolicy.loss),
                       ("DiffusionPolicy.denoise_dataset_action", getattr(DiffusionPolicy, "denoise_dataset_action", None)),
                       ("dl.VPSchedule.q_sample", VPSchedule.q_sample)],
)


# ===== 4. vp_betas (Sec. 3.1, the sign corrected) =======================================================

def _betas_case(n_steps: int, beta_min: float, beta_max: float, info: str) -> Callable[[], Case]:
    def make() -> Case:
        return Case((n_steps, beta_min, beta_max), info)
    return make


def _betas(n_steps, beta_min, beta_max, *, sign=-1.0, first=1, mid=-1, power=2, half=0.5, exp=True, alphas=False):
    i = torch.arange(first, first + n_steps, dtype=torch.float64)
    x = sign * beta_min / n_steps - half * (beta_max - beta_min) * (2 * i + mid) / n_steps**power
    if not exp:
        return (-x).float()
    alpha = torch.exp(x)
    return (alpha if alphas else 1 - alpha).float()


def _betas_variant(**kwargs) -> Callable:
    return lambda *args: _betas(*args, **kwargs)


VP_BETAS = Exercise(
    name="vp_betas", equation="Sec. 3.1, sign corrected: β_i = 1 − exp(−β_min/N − ½(β_max − β_min)(2i − 1)/N²)",
    signature="vp_betas(n_steps, beta_min, beta_max) -> betas",
    cases=[
        _betas_case(10, 0.1, 10.0, "N = 10, the paper's β_min = 0.1, β_max = 10"),
        _betas_case(100, 0.1, 10.0, "N = 100, the paper's N"),
        _betas_case(7, 0.5, 20.0, "N = 7, β_min = 0.5, β_max = 20"),
    ],
    reference=lambda case: VPSchedule(*case.args).betas,
    expected_shape=lambda case: (case.args[0],),
    probe=lambda out, case: {"value": out},
    mistakes=[
        Mistake("printed_sign", "You copied the sign the paper prints, exp(+β_min/N − …). That is a typo (errata #1): "
                "with N = 100 it makes α_1 > 1, i.e. β_1 < 0, which is not a variance. The discretised VP SDE the paper "
                "cites has −β_min/N.", _betas_variant(sign=1.0)),
        Mistake("zero_based", "Your steps run 0..N − 1. The schedule's steps are i = 1..N (torch.arange(1, N + 1)); "
                "β at index k is step i = k + 1.", _betas_variant(first=0)),
        Mistake("returned_alphas", "You returned α_i = exp(…); the exercise asks for β_i = 1 − α_i.",
                _betas_variant(alphas=True)),
        Mistake("no_exp", "You returned the exponent itself, β_min/N + ½(β_max − β_min)(2i − 1)/N². β_i = 1 − exp(−that): "
                "the two agree only while it is small, and the last steps are not small.", _betas_variant(exp=False)),
        Mistake("n_not_squared", "The second term divides by N², not N: ½(β_max − β_min)(2i − 1)/N².",
                _betas_variant(power=1)),
        Mistake("no_half", "The factor ½ in front of (β_max − β_min)(2i − 1)/N² is missing.", _betas_variant(half=1.0)),
        Mistake("two_i", "Use (2i − 1), not 2i: it is the midpoint of step i's slice [(i − 1)/N, i/N] of the continuous "
                "schedule, integrated.", _betas_variant(mid=0)),
    ],
    field_words={"value": "β_i"},
    forbidden=lambda: [("dl.VPSchedule (its constructor computes the betas)", VPSchedule.__init__)],
)


# ===== 5. elbo_weights (Eq. 18, with the i = 1 case) =====================================================

def _elbo_case(n_steps: int, beta_min: float, beta_max: float, info: str) -> Callable[[], Case]:
    def make() -> Case:
        return Case((ScheduleTables.from_schedule(VPSchedule(n_steps, beta_min, beta_max)),), info,
                    {"schedule": (n_steps, beta_min, beta_max)})
    return make


def elbo_reference(schedule: VPSchedule) -> torch.Tensor:
    """Eq. 18's weights β_i / (2 α_i (1 − ᾱ_{i−1})), with 1/(2 α_1) at i = 1, normalised to mean 1: the core's
    ``VPSchedule.elbo_weights`` (what DAC4Rec's ``elbo`` policy improvement weighs its steps with), evaluated on a
    float64 copy of ``schedule``'s float32 tables and returned in float32, so that the reference carries no
    float32 rounding of its own beyond the final cast (``schedule`` itself is not changed)."""
    return copy.deepcopy(schedule).double().elbo_weights().float()


def _elbo(schedule, *, first="decoder", prev=True, lead="alphas", norm="mean"):
    ab_prev = schedule.alphas_cumprod_prev if prev else schedule.alphas_cumprod
    w = schedule.betas / (2 * getattr(schedule, lead) * (1 - ab_prev).clamp(min=1e-12))
    if first == "decoder":
        w = torch.cat([1 / (2 * schedule.alphas[:1]), w[1:]])
    elif first == "zero":
        w = torch.cat([torch.zeros(1), w[1:]])
    elif first == "no_half":
        w = torch.cat([1 / schedule.alphas[:1], w[1:]])
    return {"mean": w / w.mean(), "sum": w / w.sum(), "none": w}[norm]


def _elbo_variant(**kwargs) -> Callable:
    return lambda schedule: _elbo(schedule, **kwargs)


def _elbo_error(err: BaseException, case: Case) -> tuple[str, str] | None:
    """``schedule.elbo_weights()`` on the tables the exercise passes: the kit's own implementation, refused."""
    if isinstance(err, AttributeError) and "elbo_weights" in str(err):
        return "calls_kit", (
            "your answer calls schedule.elbo_weights(), the kit's own implementation of this exercise (dl.VPSchedule."
            "elbo_weights); the schedule given here holds only its tables (betas, alphas, alphas_cumprod, "
            "alphas_cumprod_prev). Write the formula yourself from those tables: the point is to see every term.")
    return None


def _elbo_nonfinite(out: torch.Tensor, case: Case) -> tuple[str, str] | None:
    return "first_step_infinite", (
        "Your weights are not finite: at i = 1 the printed weight β_1 / (2 α_1 (1 − ᾱ_0)) divides by zero, because "
        "ᾱ_0 = 1 (errata #6; normalising then turns every weight into NaN). That term is the decoder's: with its "
        "variance σ_1² = β_1 the weight is 1 / (2 α_1). Compute the others with the formula, set i = 1 apart.")


ELBO_WEIGHTS = Exercise(
    name="elbo_weights",
    equation="Eq. 18: w_i = β_i / (2 α_i (1 − ᾱ_{i−1})) for i ≥ 2, w_1 = 1 / (2 α_1), normalised to mean 1",
    signature="elbo_weights(schedule) -> weights",
    cases=[
        _elbo_case(10, 0.1, 10.0, "N = 10, β_min = 0.1, β_max = 10"),
        _elbo_case(5, 0.1, 10.0, "N = 5"),
        _elbo_case(30, 0.2, 5.0, "N = 30, β_min = 0.2, β_max = 5"),
    ],
    reference=lambda case: elbo_reference(VPSchedule(*case.extra["schedule"])),
    expected_shape=lambda case: (case.args[0].n_steps,),
    probe=lambda out, case: {"value": out},
    mistakes=[
        Mistake("first_step_clamped", "The weight at i = 1 is huge: clamping 1 − ᾱ_0 = 0 to a tiny number only turns "
                "the infinity into a number that swamps every other weight once normalised. At i = 1 the weight is "
                "the decoder's, 1 / (2 α_1) (errata #6).", _elbo_variant(first="clamped")),
        Mistake("first_step_dropped", "You set the i = 1 weight to 0: the last denoising step would then get no "
                "Q-weighted training at all. Its weight is the decoder's, 1 / (2 α_1).", _elbo_variant(first="zero")),
        Mistake("first_step_factor", "At i = 1 the weight is 1 / (2 α_1): the ½ of the Gaussian's ‖·‖² / (2σ²) is "
                "there as in every other step.", _elbo_variant(first="no_half")),
        Mistake("alpha_bar_i_for_prev", "The denominator has ᾱ_{i−1} (schedule.alphas_cumprod_prev), not ᾱ_i: the "
                "posterior variance β̃_i = β_i (1 − ᾱ_{i−1}) / (1 − ᾱ_i) is what the ELBO divides by.",
                _elbo_variant(prev=False)),
        Mistake("alpha_bar_for_alpha", "The denominator has the one-step α_i (schedule.alphas), not the cumulative "
                "ᾱ_i: it comes from the 1/√α_i of one reverse step (Eq. 6), squared.", _elbo_variant(lead="alphas_cumprod")),
        Mistake("not_normalised", "Normalise the weights to mean 1 (w / w.mean()), as the kit does, so that λ "
                "(q_weight) means the same for every policy improvement.", _elbo_variant(norm="none")),
        Mistake("normalised_to_sum", "Normalise to mean 1 (w / w.mean()), not to sum 1: with sum 1 the weights, and "
                "λ with them, shrink as N grows.", _elbo_variant(norm="sum")),
    ],
    nonfinite_hint=_elbo_nonfinite,
    error_hint=_elbo_error,
    field_words={"value": "weights"},
    forbidden=lambda: [("dl.VPSchedule.elbo_weights", VPSchedule.elbo_weights),
                       ("dl.DAC4Rec (its constructor computes these weights)", DAC4Rec.__init__)],
)
