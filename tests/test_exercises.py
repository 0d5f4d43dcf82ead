"""The exercise checkers: the reference solutions (instructor/solutions.py, outside the package) pass in strict mode,
every typical wrong answer fails with its own diagnosis (written here as a student would write it, independently
of the checkers' catalogue), and an answer that calls the kit's own implementation is refused.

The exercise notebooks run twice (marker ``notebooks``): filled with the solutions (instructor/fill_notebooks.py),
where every check must pass, and blank, where each exercise must end with the friendly "not implemented yet"."""
from __future__ import annotations

import importlib
import importlib.util
import math
import re
from pathlib import Path

import nbformat
import pytest
import torch

import dac4rec_lite as dl
from dac4rec_lite import exercises as ex

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parent.parent
EXERCISE_NOTEBOOKS = sorted((ROOT / "notebooks" / "exercises").glob("*.ipynb"))
NAMES = list(ex.EXERCISES)
IN_PLACE = {"soft_update", "algorithm1_update"}  # judged through what they change, not (only) what they return
RETURNING = [n for n in NAMES if n not in IN_PLACE]


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


S = _load(ROOT / "instructor" / "solutions.py", "instructor_solutions")
FILL = _load(ROOT / "instructor" / "fill_notebooks.py", "instructor_fill_notebooks")


def fails(name: str, fn, reason: str, *phrases: str) -> str:
    """Assert that the check of ``name`` rejects ``fn`` with ``reason`` and a message containing ``phrases``."""
    with pytest.raises(ex.ExerciseFailed) as info:
        getattr(ex, f"check_{name}")(fn, strict=True)
    message = str(info.value)
    assert info.value.reason == reason, f"expected {reason!r}, got {info.value.reason!r}:\n{message}"
    for phrase in phrases:
        assert phrase in message, f"{phrase!r} not in:\n{message}"
    return message


# ----- the contract ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_reference_solution_passes_strict(name, capsys):
    verdict = getattr(ex, f"check_{name}")(getattr(S, name), strict=True)
    assert verdict and verdict.reason == "correct"
    assert f"✓ {name}" in capsys.readouterr().out


CONTRACT = ["q_sample", "reverse_step", "bc_loss", "action_approximation", "td_target", "q_loss", "cep_loss",
            "guided_eps", "select_action", "vp_betas", "elbo_weights", "awr_weight", "soft_update", "algorithm1_update"]


def test_every_contract_checker_exists_and_no_solution_is_exposed():
    assert sorted(NAMES) == sorted(CONTRACT) and len(NAMES) == 14
    assert all(callable(getattr(dl.exercises, f"check_{n}")) for n in CONTRACT)
    assert sorted(n for n in ex.__all__ if n.startswith("check_")) == sorted(f"check_{n}" for n in CONTRACT)
    public = set(ex.__all__) | {n for n in dir(ex) if not n.startswith("_")}
    assert not public & {"solutions", "inject"}, "reference solutions must not be reachable from dl.exercises"
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("dac4rec_lite.exercises.solutions")
    assert not (ROOT / "dac4rec_lite" / "exercises" / "solutions.py").exists()


def test_every_exercise_module_is_under_600_lines():
    for path in (ROOT / "dac4rec_lite" / "exercises").glob("*.py"):
        assert len(path.read_text().splitlines()) < 600, path.name


def test_no_exercise_module_imports_a_private_name():
    for path in (ROOT / "dac4rec_lite" / "exercises").glob("*.py"):
        for line in re.findall(r"^from \S+ import \(?([^)]*?)\)?$", path.read_text(), flags=re.M | re.S):
            assert not re.search(r"(^|[\s,])_\w", line), f"{path.name} imports a private name: {line}"


@pytest.mark.parametrize("name", NAMES)
def test_not_implemented_is_friendly(name, capsys):
    def blank(*args):
        raise NotImplementedError

    verdict = getattr(ex, f"check_{name}")(blank)
    out = capsys.readouterr().out
    assert not verdict and verdict.reason == "not_implemented"
    assert "not implemented yet" in out and "Traceback" not in out
    with pytest.raises(ex.ExerciseFailed, match="not implemented yet"):
        getattr(ex, f"check_{name}")(blank, strict=True)


@pytest.mark.parametrize("name", RETURNING)
def test_non_strict_prints_and_returns_false(name, capsys):
    reference = getattr(S, name)

    def off_by_a_little(*args):
        return reference(*args) * 1.001

    verdict = getattr(ex, f"check_{name}")(off_by_a_little)
    assert not verdict
    assert "not right yet" in capsys.readouterr().out


@pytest.mark.parametrize("name", RETURNING)
def test_exceptions_nan_and_shapes_are_reported_in_words(name):
    reference = getattr(S, name)

    def raises(*args):
        raise KeyError("oops")

    def nan(*args):
        return reference(*args) * float("nan")

    def extra_dim(*args):
        return reference(*args).unsqueeze(0)

    message = fails(name, raises, "error", "raised KeyError", "It happened in your code at line")
    assert "Traceback" not in message
    fails(name, nan, "first_step_infinite" if name == "elbo_weights" else "not_finite",
          "not finite" if name == "elbo_weights" else "returned NaN")
    fails(name, extra_dim, "shape", "Your result has shape")
    fails(name, lambda *args: None, "returned_none", "forget the `return`")
    fails(name, lambda *args: reference(*args).tolist(), "not_a_tensor", "return a torch.Tensor")
    fails(name, lambda *args: reference(*args).double(), "dtype", "float32")


def test_passing_the_result_instead_of_the_function():
    fails("q_sample", 3.0, "not_callable", "Pass the function itself")


def test_a_changed_signature_is_reported():
    def q_sample(a0, i, noise):
        return a0

    fails("q_sample", q_sample, "signature", "q_sample(a0, i, noise, schedule)")


def test_modifying_an_input_in_place_is_reported():
    def q_sample(a0, i, noise, schedule):
        ab = schedule.alphas_cumprod[i - 1].unsqueeze(1)
        noise.mul_((1 - ab).sqrt())
        return ab.sqrt() * a0 + noise

    fails("q_sample", q_sample, "modified_input", "changed one of its input tensors in place")


@pytest.mark.parametrize("name", RETURNING)
def test_never_passes_a_small_perturbation(name):
    """A wrong answer never passes: even a 0.1 % error in one row fails."""
    reference = getattr(S, name)

    def perturbed(*args):
        out = reference(*args)
        if out.dim() == 0:
            return out * 1.001
        bump = torch.zeros_like(out)
        bump[-1] = 1e-3 * out.detach().abs().max() + 1e-3
        return out + bump

    with pytest.raises(ex.ExerciseFailed):
        getattr(ex, f"check_{name}")(perturbed, strict=True)


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


# ----- 4. action_approximation ----------------------------------------------------------------------------

def test_action_approximation_mistakes():
    def approx(eps_model, state, action, i, noise, schedule, *, table="alphas_cumprod", shift=1, sign=-1, true=False):
        ab = getattr(schedule, table)[i - shift].unsqueeze(1)
        a_i = ab.sqrt() * action + (1 - ab).sqrt() * noise
        eps = noise if true else eps_model(state, a_i, i)
        return (a_i + sign * (1 - ab).sqrt() * eps) / ab.sqrt()

    def true_noise(*args):
        return approx(*args, true=True)

    def sign(*args):
        return approx(*args, sign=+1)

    def alpha(*args):
        return approx(*args, table="alphas")

    def zero_based(*args):
        return approx(*args, shift=0)

    def clipped(*args):
        return approx(*args).clamp(-1, 1)

    def detached(*args):
        return approx(*args).detach()

    def no_divide(eps_model, state, action, i, noise, schedule):
        ab = schedule.alphas_cumprod[i - 1].unsqueeze(1)
        a_i = ab.sqrt() * action + (1 - ab).sqrt() * noise
        return a_i - (1 - ab).sqrt() * eps_model(state, a_i, i)

    fails("action_approximation", true_noise, "true_noise", "instead of the network's prediction")
    fails("action_approximation", sign, "eps_sign", "sign of ε_θ is flipped")
    fails("action_approximation", alpha, "alpha_for_alpha_bar", "one-step α_i")
    fails("action_approximation", zero_based, "zero_based", "1-based")
    fails("action_approximation", clipped, "clipped", "Don't clip here")
    fails("action_approximation", detached, "no_grad", "carries no gradient")
    fails("action_approximation", no_divide, "no_divide", "forgot to divide by √ᾱ_i")


# ----- 5. td_target ---------------------------------------------------------------------------------------

def test_td_target_mistakes():
    def target(reward, terminal, next_state, next_action, target_critic, gamma, combine=torch.min, mask=True):
        with torch.no_grad():
            q1, q2 = target_critic(next_state, next_action)
            q = combine(q1, q2)
            return reward + gamma * ((1 - terminal) if mask else 1) * q

    def max_of_twins(*args):
        return target(*args, combine=torch.max)

    def no_mask(*args):
        return target(*args, mask=False)

    def average(*args):
        return target(*args, combine=lambda a, b: (a + b) / 2)

    def not_detached(reward, terminal, next_state, next_action, target_critic, gamma):
        q1, q2 = target_critic(next_state, next_action)
        return reward + gamma * (1 - terminal) * torch.min(q1, q2)

    def inverted(reward, terminal, next_state, next_action, target_critic, gamma):
        with torch.no_grad():
            return reward + gamma * terminal * torch.min(*target_critic(next_state, next_action))

    def squeezed(reward, terminal, next_state, next_action, target_critic, gamma):
        with torch.no_grad():
            return reward.squeeze(1) + gamma * (1 - terminal) * torch.min(*target_critic(next_state, next_action))

    fails("td_target", max_of_twins, "max_of_twins", "min(Q′₁, Q′₂)", "over-estimates")
    fails("td_target", no_mask, "no_terminal_mask", "no (1 − terminal) factor")
    fails("td_target", average, "mean_of_twins", "averaged the twin critics")
    fails("td_target", not_detached, "target_not_detached", "carries a gradient into the target network")
    fails("td_target", inverted, "terminal_mask_inverted", "mask is inverted")
    fails("td_target", squeezed, "shape", "(B, B) square")


# ----- 6. q_loss ------------------------------------------------------------------------------------------

def test_q_loss_mistakes():
    def not_detached(critic, state, a0_hat):
        q = torch.min(*critic(state, a0_hat))
        return -q.mean() / q.abs().mean()

    def max_of_twins(critic, state, a0_hat):
        q = torch.max(*critic(state, a0_hat))
        return -q.mean() / q.abs().mean().detach()

    def wrong_sign(critic, state, a0_hat):
        q = torch.min(*critic(state, a0_hat))
        return q.mean() / q.abs().mean().detach()

    def raw(critic, state, a0_hat):
        return -torch.min(*critic(state, a0_hat)).mean()

    def mean_q(critic, state, a0_hat):
        q = torch.min(*critic(state, a0_hat))
        return -q.mean() / q.mean().detach()

    def detached_action(critic, state, a0_hat):
        q = torch.min(*critic(state, a0_hat.detach()))
        return -q.mean() / q.abs().mean().detach()

    fails("q_loss", not_detached, "normaliser_not_detached", "normaliser mean|Q| is not detached", ".detach()")
    fails("q_loss", max_of_twins, "max_of_twins", "pessimistic")
    fails("q_loss", wrong_sign, "loss_sign", "sign is flipped")
    fails("q_loss", raw, "not_normalised", "not normalised")
    fails("q_loss", mean_q, "normaliser_mean_q", "mean of |Q|, not the mean of Q")
    fails("q_loss", detached_action, "action_detached", "No gradient reaches â^0")


# ----- 7. cep_loss ----------------------------------------------------------------------------------------

def _cep(energy, state, supports, q, i, noise, schedule, beta, *, target_dim=1, model_dim=1, tile=False, noised=True):
    b, k, d = supports.shape
    steps = i.repeat_interleave(k)
    ab = schedule.alphas_cumprod[steps - 1].unsqueeze(1)
    flat = supports.reshape(b * k, d)
    a_i = ab.sqrt() * flat + (1 - ab).sqrt() * noise.reshape(b * k, d) if noised else flat
    states = state.repeat(k, 1) if tile else state.repeat_interleave(k, dim=0)
    f = energy(states, a_i, steps).reshape(b, k)
    return -(torch.softmax(beta * q, dim=target_dim) * torch.log_softmax(f, dim=model_dim)).sum(dim=1).mean()


def test_cep_loss_mistakes():
    fails("cep_loss", lambda *a: _cep(*a, target_dim=0, model_dim=0), "softmax_wrong_axis", "wrong axis", "dim=1")
    fails("cep_loss", lambda *a: _cep(*a, target_dim=0), "softmax_wrong_axis", "wrong axis")
    fails("cep_loss", lambda *a: _cep(*a, tile=True), "states_tiled", "repeat_interleave")
    fails("cep_loss", lambda *a: _cep(*a, noised=False), "clean_supports", "*noised* supports")

    def no_beta(energy, state, supports, q, i, noise, schedule, beta):
        return _cep(energy, state, supports, q, i, noise, schedule, 1.0)

    def swapped(energy, state, supports, q, i, noise, schedule, beta):
        b, k, d = supports.shape
        steps = i.repeat_interleave(k)
        ab = schedule.alphas_cumprod[steps - 1].unsqueeze(1)
        a_i = ab.sqrt() * supports.reshape(b * k, d) + (1 - ab).sqrt() * noise.reshape(b * k, d)
        f = energy(state.repeat_interleave(k, dim=0), a_i, steps).reshape(b, k)
        return -(torch.softmax(f, dim=1) * torch.log_softmax(beta * q, dim=1)).sum(dim=1).mean()

    fails("cep_loss", no_beta, "no_beta", "inverse temperature β is missing")
    fails("cep_loss", swapped, "roles_swapped", "roles are swapped")
    fails("cep_loss", lambda *a: -_cep(*a), "loss_sign", "sign is flipped")


# ----- 8. guided_eps --------------------------------------------------------------------------------------

def _guided(eps_model, energy, state, a_i, i, scale, schedule, *, sign=-1, sqrt=True, mean=False):
    a = a_i.detach().requires_grad_(True)
    f = energy(state, a, i)
    grad = torch.autograd.grad(f.mean() if mean else f.sum(), a)[0]
    ab = schedule.alphas_cumprod[i - 1].unsqueeze(1)
    return eps_model(state, a_i, i) + sign * ((1 - ab).sqrt() if sqrt else 1 - ab) * scale * grad


def test_guided_eps_mistakes():
    fails("guided_eps", lambda *a: _guided(*a, sign=+1), "guidance_sign", "guidance sign is flipped")
    fails("guided_eps", lambda *a: _guided(*a, sqrt=False), "no_sqrt", "square root is missing")
    fails("guided_eps", lambda *a: _guided(*a, mean=True), "gradient_of_mean", "f.sum()")

    def no_factor(eps_model, energy, state, a_i, i, scale, schedule):
        a = a_i.detach().requires_grad_(True)
        return eps_model(state, a_i, i) - scale * torch.autograd.grad(energy(state, a, i).sum(), a)[0]

    def no_scale(eps_model, energy, state, a_i, i, scale, schedule):
        return _guided(eps_model, energy, state, a_i, i, 1.0, schedule)

    def no_leaf(eps_model, energy, state, a_i, i, scale, schedule):
        grad = torch.autograd.grad(energy(state, a_i, i).sum(), a_i)[0]
        return eps_model(state, a_i, i) - (1 - schedule.alphas_cumprod[i - 1].unsqueeze(1)).sqrt() * scale * grad

    fails("guided_eps", no_factor, "no_noise_scale", "factor √(1 − ᾱ_i) is missing")
    fails("guided_eps", no_scale, "scale_ignored", "`scale` is not used")
    fails("guided_eps", no_leaf, "no_requires_grad", "a_i.detach().requires_grad_(True)")


# ----- 9. select_action -----------------------------------------------------------------------------------

def _select(q1, q2, candidates, temperature, generator, *, combine=torch.min, axis=1, argmin=False):
    q = combine(q1, q2)
    if temperature is None:
        choice = q.argmin(dim=1) if argmin else q.argmax(dim=1)
    else:
        choice = torch.multinomial(torch.softmax(q / temperature, dim=axis), 1, generator=generator).squeeze(1)
    return candidates[torch.arange(candidates.shape[0]), choice]


def test_select_action_mistakes():
    fails("select_action", lambda *a: _select(*a, axis=0), "softmax_wrong_axis", "wrong axis", "dim=1")
    fails("select_action", lambda *a: _select(*a, combine=torch.max), "max_of_twins", "min(Q₁, Q₂)")
    fails("select_action", lambda *a: _select(*a, argmin=True), "argmin", "highest Q")

    def multiplied(q1, q2, candidates, temperature, generator):
        t = None if temperature is None else 1 / temperature
        return _select(q1, q2, candidates, t, generator)

    def global_rng(q1, q2, candidates, temperature, generator):
        return _select(q1, q2, candidates, temperature, None)

    def indices(q1, q2, candidates, temperature, generator):
        return torch.min(q1, q2).argmax(dim=1)

    fails("select_action", multiplied, "temperature_multiplied", "Divide by the temperature")
    fails("select_action", global_rng, "generator_ignored", "generator=generator")
    fails("select_action", indices, "shape", "not their indices")


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


def test_elbo_reference_is_what_the_agent_uses():
    """The checker's reference and DAC4Rec(policy_improvement="elbo")'s per-step weights are the same numbers."""
    from dac4rec_lite.exercises.checks_diffusion import elbo_reference

    for n in (5, 10):
        agent = dl.DAC4Rec(3, 2, n_steps=n, hidden_dim=8, policy_improvement="elbo")
        used = getattr(agent, "elbo_weights", None)
        used = used if isinstance(used, torch.Tensor) else agent._elbo_weights
        torch.testing.assert_close(elbo_reference(agent.schedule), used, rtol=1e-5, atol=1e-6)
        assert abs(float(used.mean()) - 1) < 1e-5 and bool(torch.isfinite(used).all())


# ----- 12. awr_weight -------------------------------------------------------------------------------------

def _awr(q1, q2, v, temperature, max_weight, *, combine=torch.min, sign=1, unit="abs", clip="before", norm="mean",
         temp_op="divide"):
    advantage = sign * (combine(q1, q2) - v)
    scale = {"abs": advantage.abs().mean(), "mean": advantage.mean(), "none": 1.0}[unit]
    weights = torch.exp(advantage / (temperature * scale) if temp_op == "divide" else advantage * temperature / scale)
    if clip == "before":
        weights = weights.clamp(max=max_weight)
    weights = {"mean": weights / weights.mean(), "sum": weights / weights.sum(), "none": weights}[norm]
    return weights.clamp(max=max_weight) if clip == "after" else weights


def test_awr_weight_mistakes():
    fails("awr_weight", lambda *a: _awr(*a, combine=torch.max), "max_of_twins", "min(Q₁, Q₂)")
    fails("awr_weight", lambda *a: _awr(*a, combine=lambda x, y: (x + y) / 2), "mean_of_twins", "averaged")
    fails("awr_weight", lambda *a: _awr(*a, combine=lambda x, y: x), "single_critic", "only Q₁")
    fails("awr_weight", lambda *a: _awr(*a, sign=-1), "advantage_sign", "A = Q − V")
    fails("awr_weight", lambda *a: _awr(*a, unit="none"), "temperature_not_scaled", "units of the batch's mean |A|")
    fails("awr_weight", lambda *a: _awr(*a, unit="mean"), "mean_not_abs", "mean of |A|")
    fails("awr_weight", lambda *a: _awr(*a, temp_op="multiply"), "temperature_multiplied", "Divide by the temperature")
    fails("awr_weight", lambda *a: _awr(*a, clip="none"), "no_clip", "Clip the exponential")
    fails("awr_weight", lambda *a: _awr(*a, clip="after"), "clip_after_normalising", "Clip first, then normalise")
    fails("awr_weight", lambda *a: _awr(*a, norm="none"), "not_normalised", "mean 1")
    fails("awr_weight", lambda *a: _awr(*a, norm="sum"), "normalised_to_sum", "not to sum 1")


def test_awr_cases_make_the_twins_cross_and_the_clip_bind():
    """Without crossing twins a single-critic answer could pass; without a binding clip, a missing clip could."""
    clipped = []
    for make in ex.EXERCISES["awr_weight"].cases:
        q1, q2, v, temperature, max_weight = make().args
        assert 0 < float((q1 < q2).float().mean()) < 1
        advantage = torch.min(q1, q2) - v
        clipped.append(bool((torch.exp(advantage / (temperature * advantage.abs().mean())) > max_weight).any()))
    assert any(clipped) and not all(clipped)


# ----- 13. soft_update ------------------------------------------------------------------------------------

def test_soft_update_mistakes():
    def swapped(target, source, tau):
        with torch.no_grad():
            for t, s in zip(target.parameters(), source.parameters()):
                t.copy_((1 - tau) * s + tau * t)

    def hard(target, source, tau):
        target.load_state_dict(source.state_dict())

    def source_moved(target, source, tau):
        with torch.no_grad():
            for t, s in zip(target.parameters(), source.parameters()):
                s.mul_(1 - tau).add_(tau * t)

    def rebinding(target, source, tau):
        for t, s in zip(target.parameters(), source.parameters()):
            t = tau * s + (1 - tau) * t  # noqa: F841 (the mistake: a new tensor bound to the loop name)

    def recorded(target, source, tau):
        for t, s in zip(target.parameters(), source.parameters()):
            t.copy_(tau * s + (1 - tau) * t)

    def into_trainable(target, source, tau):
        target.requires_grad_(True)
        for t, s in zip(target.parameters(), source.parameters()):
            t.mul_(1 - tau).add_(tau * s)

    fails("soft_update", swapped, "tau_swapped", "swapped")
    fails("soft_update", hard, "hard_copy", "copied the online weights")
    fails("soft_update", source_moved, "source_moved", "online network must not change")
    fails("soft_update", rebinding, "not_in_place", "did not change", "only rebinds the name")
    fails("soft_update", recorded, "no_no_grad", "recorded by autograd")
    fails("soft_update", into_trainable, "leaf_in_place", "torch.no_grad()")


def test_soft_update_generic_reports():
    def blank(target, source, tau):
        raise NotImplementedError

    def raises(target, source, tau):
        raise KeyError("oops")

    assert ex.check_soft_update(blank).reason == "not_implemented"
    fails("soft_update", raises, "error", "raised KeyError", "It happened in your code at line")
    fails("soft_update", lambda target, source: None, "signature", "soft_update(target, source, tau)")


# ----- 14. algorithm1_update ------------------------------------------------------------------------------

def _update(agent, batch, *, order=("critic", "policy"), target_critic=True, target_policy=True, next_key="next_observations",
            twins=2, clear=("critic", "policy"), soft="after"):
    """One update as a student writes it, with the mistakes as switches (independent of the checker's variants)."""
    s, a = batch["observations"], batch["actions"]
    losses = {}

    def polyak(target, source, tau):
        with torch.no_grad():
            for t, p in zip(target.parameters(), source.parameters()):
                t.mul_(1 - tau).add_(tau * p)

    def follow(target, source):
        tau = {"after": agent.config.tau, "before": agent.config.tau, "swapped": 1 - agent.config.tau, "hard": 1.0}
        if soft in tau:
            polyak(target, source, tau[soft])

    for half in order:
        if half == "critic":
            with torch.no_grad():
                s2 = batch[next_key]
                a2 = (agent.target_policy if target_policy else agent.policy).sample(s2, generator=agent.generator)
                q1n, q2n = (agent.target_critic if target_critic else agent.critic)(s2, a2)
                y = batch["rewards"] + agent.config.gamma * (1 - batch["terminals"]) * torch.min(q1n, q2n)
            q1, q2 = agent.critic(s, a)
            loss = ((q1 - y) ** 2).mean() + (((q2 - y) ** 2).mean() if twins == 2 else 0)
            optimizer, target, source = agent.critic_optimizer, agent.target_critic, agent.critic
        else:
            loss, _ = agent.policy_loss(s, a)
            optimizer, target, source = agent.actor_optimizer, agent.target_policy, agent.policy
        if soft == "before":
            follow(target, source)
        if half in clear:
            optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if soft != "before":
            follow(target, source)
        losses[half] = loss.detach()
    return torch.stack([losses["critic"], losses["policy"]])


def test_algorithm1_update_written_independently_passes():
    assert ex.check_algorithm1_update(_update, strict=True)


def test_algorithm1_update_mistakes():
    fails("algorithm1_update", lambda ag, b: _update(ag, b, order=("policy", "critic")), "policy_first", "critic's TD step first")
    fails("algorithm1_update", lambda ag, b: _update(ag, b, target_critic=False), "online_critic_in_target",
          "*target* critic")
    fails("algorithm1_update", lambda ag, b: _update(ag, b, target_policy=False), "online_policy_in_target",
          "*target* policy")
    fails("algorithm1_update", lambda ag, b: _update(ag, b, next_key="observations"), "state_for_next_state", "s′")
    fails("algorithm1_update", lambda ag, b: _update(ag, b, twins=1), "one_twin", "Only Q₁ was trained")
    fails("algorithm1_update", lambda ag, b: _update(ag, b, clear=()), "no_zero_grad", "for both optimisers")
    fails("algorithm1_update", lambda ag, b: _update(ag, b, clear=("policy",)), "no_zero_grad", "critic_optimizer.zero_grad()")
    fails("algorithm1_update", lambda ag, b: _update(ag, b, clear=("critic",)), "no_zero_grad", "actor_optimizer.zero_grad()")
    fails("algorithm1_update", lambda ag, b: _update(ag, b, soft="none"), "no_soft_update", "never moved")
    fails("algorithm1_update", lambda ag, b: _update(ag, b, soft="before"), "soft_update_before_step", "before the optimiser")
    fails("algorithm1_update", lambda ag, b: _update(ag, b, soft="swapped"), "tau_swapped", "swapped")
    fails("algorithm1_update", lambda ag, b: _update(ag, b, soft="hard"), "hard_update", "agent.config.tau")


def test_algorithm1_update_generic_reports():
    def blank(agent, batch):
        raise NotImplementedError

    assert ex.check_algorithm1_update(blank).reason == "not_implemented"
    fails("algorithm1_update", lambda agent, batch: None, "returned_none", "forget the `return`")
    fails("algorithm1_update", lambda agent, batch: _update(agent, batch)[0], "shape", "expected (2,)")
    fails("algorithm1_update", lambda agent, batch: _update(agent, batch) * 1.001, "wrong_value", "losses")


def test_algorithm1_cases_bootstrap_and_end():
    """Every batch mixes terminal and non-terminal rows, so the TD target both bootstraps and stops (and the agent's
    all-terminal shortcut, which draws no a′, is never taken)."""
    for make in ex.EXERCISES["algorithm1_update"].cases:
        for batch in make().extra["batches"]:
            assert 0 < float(batch["terminals"].mean()) < 1


# ----- hints --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_hints_reveal_one_at_a_time(name):
    box = ex.hints(name)
    button, shown = box.children
    assert shown.value == ""
    for k in range(1, len(ex.HINTS[name]) + 1):
        button.click()
        assert f"Hint {k}." in shown.value and f"Hint {k + 1}." not in shown.value
    assert button.disabled


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


# The expression that *is* each answer, as a regular expression over the hint text without spaces (any variable
# names): a hint may point at every ingredient, but must not write the formula out.
KEY_EXPRESSIONS = {
    "vp_betas": r"torch\.exp\(-beta_min/n\w*-0\.5\*",
    "q_sample": r"\w+\.sqrt\(\)\*a0\+\(1-\w+\)\.sqrt\(\)\*noise",
    "reverse_step": r"\w+\.sqrt\(\)\*z",
    "bc_loss": r"\(noise-[\w.]+(\([^()]*\))?\)\.pow\(2\)\.mean\(\)",
    "elbo_weights": r"betas/\(2\*\w*\.?alphas\*\(1-",
    "action_approximation": r"\(a_i-\(1-\w+\)\.sqrt\(\)\*",
    "td_target": r"reward\+gamma\*\(1-terminal\)",
    "q_loss": r"-\w+\.mean\(\)/\w+\.abs\(\)\.mean\(\)\.detach\(\)",
    "awr_weight": r"torch\.exp\(\w+/\(temperature\*",
    "soft_update": r"\.copy_\(tau\*|\.lerp_\(\w+,tau\)",
    "algorithm1_update": r"F\.mse_loss\(q1,\w+\)\+F\.mse_loss\(q2",
    "cep_loss": r"softmax\(beta\*q,dim=1\)\*\w*\.?log_softmax|\w+\*torch\.log_softmax\(f,dim=1\)\)\.sum",
    "guided_eps": r"eps-\(1-\w+\)\.sqrt\(\)\*scale\*",
    "select_action": r"candidates\[torch\.arange\(.{1,25}?\),choice\]",
}


@pytest.mark.parametrize("name", NAMES)
def test_no_hint_gives_the_answer_away(name):
    import inspect

    solution = _squash(inspect.getsource(getattr(S, name)))
    assert re.search(KEY_EXPRESSIONS[name], solution), f"the key expression of {name} must match its solution"
    hints = [_squash(h) for h in ex.HINTS[name]]
    assert len(hints) == 3
    for k, hint in enumerate(hints, start=1):
        assert not re.search(KEY_EXPRESSIONS[name], hint), f"hint {k} of {name} contains the answer"
    # nor is the solution's returned expression copied into a hint (setting-up lines, such as calling a network,
    # may be: they are not the answer)
    returns = [_squash(line).removeprefix("return") for line in inspect.getsource(getattr(S, name)).splitlines()
               if line.strip().startswith("return ") and len(line.strip()) > 20]
    for expression in returns:
        assert not any(expression in h for h in hints), f"a hint of {name} copies `{expression}`"


# ----- answers that call the kit's own implementation --------------------------------------------------------

def _kit_q_sample(a0, i, noise, schedule):  # the example of the exercises-v2 issue
    return dl.VPSchedule(schedule.betas.numel()).q_sample(a0, i, noise)


def _kit_reverse_step(a_i, i, eps, z, schedule):
    mean = dl.VPSchedule(schedule.n_steps).reverse_mean(a_i, i, eps)
    return mean + schedule.betas[i - 1].sqrt() * z if i > 1 else mean


def _kit_bc_loss(eps_model, state, action, i, noise, schedule):
    a_i = dl.VPSchedule(schedule.n_steps).q_sample(action, i, noise)  # right numbers, but the kit's q_sample
    return (noise - eps_model(state, a_i, i)).pow(2).mean()


def _kit_action_approximation(eps_model, state, action, i, noise, schedule):
    vp = dl.VPSchedule(schedule.n_steps)
    a_i = vp.q_sample(action, i, noise)
    return vp.predict_a0(a_i, i, eps_model(state, a_i, i))


def _kit_td_target(reward, terminal, next_state, next_action, target_critic, gamma):
    agent = dl.DAC4Rec(next_state.shape[1], next_action.shape[1], n_steps=2, hidden_dim=8)
    agent.target_critic = target_critic
    return agent.td_target(next_state, reward, terminal)


def _kit_q_loss(critic, state, a0_hat):
    agent = dl.DAC4Rec(state.shape[1], a0_hat.shape[1], n_steps=2, hidden_dim=8)
    return agent.direct_q_loss(state, a0_hat, q_fn=lambda s, a: torch.min(*critic(s, a)))[0]


def _kit_awr_weight(q1, q2, v, temperature, max_weight):
    agent = dl.DAC4Rec(2, 2, n_steps=2, hidden_dim=8, policy_improvement="awr")
    return agent.advantage_weights(torch.zeros(q1.shape[0], 2), torch.zeros(q1.shape[0], 2))


def _kit_soft_update(target, source, tau):
    from dac4rec_lite.critics import soft_update as polyak  # an alias is caught too

    polyak(target, source, tau)


def _kit_algorithm1_update(agent, batch):
    metrics = agent.update(batch)
    return torch.tensor([metrics["critic_loss"], metrics["policy_loss"]])


def _kit_halves_algorithm1_update(agent, batch):
    critic, policy = agent.update_critic(batch), agent.update_policy(batch)
    return torch.tensor([critic["critic_loss"], policy["policy_loss"]])


def _kit_cep_loss(energy, state, supports, q, i, noise, schedule, beta):
    from dac4rec_lite.energy import cep_loss

    return cep_loss(energy, state, supports, q, i, noise, dl.VPSchedule(schedule.n_steps), beta)


def _kit_guided_eps(eps_model, energy, state, a_i, i, scale, schedule):
    ab = schedule.alphas_cumprod[i - 1].unsqueeze(1)
    return eps_model(state, a_i, i) - (1 - ab).sqrt() * dl.EnergyGuidance(energy, scale)(state, a_i, i)


def _kit_select_action(q1, q2, candidates, temperature, generator):
    from dac4rec_lite.agents.base import select_candidates

    b, k, d = candidates.shape
    return select_candidates(torch.min(q1, q2).reshape(b * k, 1), candidates.reshape(b * k, d), b, temperature, generator)


KIT_ANSWERS = {
    "vp_betas": (lambda n, lo, hi: dl.VPSchedule(n, lo, hi).betas, "dl.VPSchedule"),
    "q_sample": (_kit_q_sample, "dl.VPSchedule.q_sample"),
    "reverse_step": (_kit_reverse_step, "dl.VPSchedule.reverse_mean"),
    "bc_loss": (_kit_bc_loss, "dl.VPSchedule.q_sample"),
    "elbo_weights": (lambda schedule: dl.DAC4Rec(2, 2, n_steps=schedule.n_steps)._elbo_weights, "dl.DAC4Rec"),
    "action_approximation": (_kit_action_approximation, "dl.VPSchedule.predict_a0"),
    "td_target": (_kit_td_target, "DAC4Rec.td_target"),
    "q_loss": (_kit_q_loss, "direct_q_loss"),
    "awr_weight": (_kit_awr_weight, "DAC4Rec.advantage_weights"),
    "soft_update": (_kit_soft_update, "dl.soft_update"),
    "algorithm1_update": (_kit_algorithm1_update, "DAC4Rec.update"),
    "cep_loss": (_kit_cep_loss, "dl.energy.cep_loss"),
    "guided_eps": (_kit_guided_eps, "dl.EnergyGuidance"),
    "select_action": (_kit_select_action, "select_candidates"),
}


@pytest.mark.parametrize("name", NAMES)
def test_an_answer_calling_the_kit_is_refused(name):
    fn, called = KIT_ANSWERS[name]
    message = fails(name, fn, "calls_kit", "Your answer calls", called, "the kit's own implementation",
                    "Write the formula yourself")
    assert "✓" not in message


def test_the_issue_example_right_numbers_but_refused(capsys):
    """The kit-calling q_sample gives exactly the kit's numbers; it is refused all the same."""
    case = ex.EXERCISES["q_sample"].cases[0]()
    assert torch.equal(_kit_q_sample(*case.args), S.q_sample(*case.args))
    assert not ex.check_q_sample(_kit_q_sample)
    assert "calls dl.VPSchedule.q_sample" in capsys.readouterr().out


def test_calling_either_half_of_the_update_is_refused():
    fails("algorithm1_update", _kit_halves_algorithm1_update, "calls_kit", "DAC4Rec.update_critic",
          "DAC4Rec.update_policy")


def test_the_kit_call_hook_restores_a_previous_profiler():
    import sys

    calls = []

    def profiler(frame, event, arg):
        calls.append(event)

    sys.setprofile(profiler)
    try:
        ex.check_q_sample(S.q_sample)
        assert sys.getprofile() is profiler
    finally:
        sys.setprofile(None)


# ----- the exercise notebooks, run both ways ---------------------------------------------------------------

def test_exercise_notebooks_cover_every_exercise():
    assert EXERCISE_NOTEBOOKS, "no notebooks in notebooks/exercises/"
    sources = "\n".join(c.source for nb in EXERCISE_NOTEBOOKS for c in nbformat.read(nb, 4).cells if c.cell_type == "code")
    for name in NAMES:
        assert f"def {name}(" in sources and f"check_{name}(" in sources and f'hints("{name}")' in sources


@pytest.mark.parametrize("nb_path", EXERCISE_NOTEBOOKS, ids=lambda p: p.name)
def test_exercise_notebook_is_blank_and_says_nothing_of_solutions(nb_path):
    nb = nbformat.read(nb_path, 4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert params and "PRESET" in params[0].source
    bodies = [c.source for c in nb.cells if c.cell_type == "code" and "# YOUR CODE HERE" in c.source]
    assert bodies and all("raise NotImplementedError" in b for b in bodies)
    text = "".join(c.source for c in nb.cells).lower()
    for word in ("solutions", "inject", "instructor", "reference solution"):
        assert word not in text, f"{nb_path.name} mentions {word!r}: solutions stay out of the student notebooks"
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "notebooks are stored clean"


@pytest.mark.parametrize("nb_path", EXERCISE_NOTEBOOKS, ids=lambda p: p.name)
def test_filling_a_notebook_replaces_exactly_its_exercises(nb_path):
    nb = nbformat.read(nb_path, 4)
    filled, names = FILL.fill(nb, S)
    expected = [n for n in NAMES if f"def {n}(" in "".join(c.source for c in nb.cells)]
    assert sorted(names) == sorted(expected)
    code = lambda notebook: "".join(c.source for c in notebook.cells if c.cell_type == "code")  # noqa: E731
    assert "# YOUR CODE HERE" not in code(filled) and "# YOUR CODE HERE" in code(nb)
    assert len(filled.cells) == len(nb.cells)


@pytest.mark.notebooks
@pytest.mark.parametrize("solved", [True, False], ids=["solutions", "blank"])
@pytest.mark.parametrize("nb_path", EXERCISE_NOTEBOOKS, ids=lambda p: p.name)
def test_exercise_notebook_executes(nb_path, solved, tmp_path, monkeypatch):
    import papermill as pm

    monkeypatch.setenv("DAC4REC_PRESET", "tiny")
    source = nb_path
    if solved:
        source = tmp_path / f"filled_{nb_path.name}"
        nbformat.write(FILL.fill(nbformat.read(nb_path, 4), S)[0], source)
    out = tmp_path / nb_path.name
    pm.execute_notebook(str(source), str(out), parameters={"PRESET": "tiny"}, kernel_name="dac4rec-lite",
                        cwd=str(nb_path.parent), execution_timeout=300, progress_bar=False)
    nb = nbformat.read(out, 4)
    texts = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    names = [n for n in NAMES if f"check_{n}(" in "".join(c.source for c in nb.cells)]
    for name in names:
        if solved:
            assert f"✓ {name}" in texts
        else:
            assert f"… {name}" in texts and "not implemented yet" in texts
    assert "Traceback" not in texts


def test_critic_cases_make_the_twins_cross_and_q_take_both_signs():
    """Without this, min(Q1, Q2) would equal one twin everywhere and a single-critic answer could pass."""
    from dac4rec_lite.exercises import checks

    for make in checks.TD_TARGET.cases:
        _, _, next_state, next_action, critic, _ = make().args
        q1, q2 = critic(next_state, next_action)
        assert 0 < float((q1 < q2).float().mean()) < 1
    signs = []
    for make in checks.Q_LOSS.cases:
        critic, state, approx = make().args
        q1, q2 = critic(state, approx)
        assert 0 < float((q1 < q2).float().mean()) < 1
        signs.append(float((torch.min(q1, q2) > 0).float().mean()))
    assert 0 < signs[0] < 1 and signs[1] == 1.0
