"""Notebook ex03's exercises (cep_loss, guided_eps, select_action): every typical wrong answer, written here
as a student would write it (independently of the checkers' catalogue), fails with its own diagnosis."""
from __future__ import annotations

import torch
from exercise_support import fails

torch.set_num_threads(1)


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

    fails("cep_loss", no_beta, "no_beta", "The inverse temperature κ (the argument `beta`) is missing")
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
