"""Reference solutions of the exercises, written the way a student would write them (from the tables and the
networks, not by calling the kit's methods). Kept apart from the notebooks; CI runs the exercise notebooks with
these injected (``INJECT_SOLUTIONS = True``) and every check in strict mode, so they never rot.

Instructors: ``inject(fn, True)`` in a notebook swaps a student's function for the one here.
"""
from __future__ import annotations

import torch

__all__ = [
    "q_sample", "reverse_step", "bc_loss", "action_approximation", "td_target", "q_loss", "cep_loss",
    "guided_eps", "select_action",
]


def q_sample(a0, i, noise, schedule):
    """a^i = √ᾱ_i a^0 + √(1 − ᾱ_i) ε  (Eq. 13, ᾱ where the paper prints α)."""
    alpha_bar = schedule.alphas_cumprod[i - 1].unsqueeze(1)  # step i lives at index i − 1; (B, 1) column
    return alpha_bar.sqrt() * a0 + (1 - alpha_bar).sqrt() * noise


def reverse_step(a_i, i, eps, z, schedule):
    """a^{i−1} = (a^i − β_i / √(1 − ᾱ_i) · ε) / √α_i + √β_i z, and no noise at the last step i = 1 (Eq. 7, corrected)."""
    beta, alpha, alpha_bar = schedule.betas[i - 1], schedule.alphas[i - 1], schedule.alphas_cumprod[i - 1]
    mean = (a_i - beta / (1 - alpha_bar).sqrt() * eps) / alpha.sqrt()
    if i == 1:
        return mean
    return mean + beta.sqrt() * z


def bc_loss(eps_model, state, action, i, noise, schedule):
    """L_d = mean ‖ε − ε_θ(√ᾱ_i a + √(1 − ᾱ_i) ε, s, i)‖², averaged over rows and action dimensions (Eq. 8)."""
    alpha_bar = schedule.alphas_cumprod[i - 1].unsqueeze(1)
    a_i = alpha_bar.sqrt() * action + (1 - alpha_bar).sqrt() * noise
    return (noise - eps_model(state, a_i, i)).pow(2).mean()


def action_approximation(eps_model, state, action, i, noise, schedule):
    """â^0 = (a^i − √(1 − ᾱ_i) ε_θ(a^i, s, i)) / √ᾱ_i with a^i from one noising of the dataset action (Eq. 13–14)."""
    alpha_bar = schedule.alphas_cumprod[i - 1].unsqueeze(1)
    a_i = alpha_bar.sqrt() * action + (1 - alpha_bar).sqrt() * noise
    return (a_i - (1 - alpha_bar).sqrt() * eps_model(state, a_i, i)) / alpha_bar.sqrt()


def td_target(reward, terminal, next_state, next_action, target_critic, gamma):
    """y = r + γ (1 − terminal) min(Q′₁, Q′₂)(s′, a′), a fixed label: no gradient (Eq. 20's target)."""
    with torch.no_grad():
        q1, q2 = target_critic(next_state, next_action)
        return reward + gamma * (1 - terminal) * torch.min(q1, q2)


def q_loss(critic, state, a0_hat):
    """L_q = −mean Q(s, â^0) / mean |Q|, Q = min(Q₁, Q₂), the normaliser detached (Eq. 15 as DAC4Rec scales it)."""
    q1, q2 = critic(state, a0_hat)
    q = torch.min(q1, q2)
    return -q.mean() / q.abs().mean().detach()


def cep_loss(energy, state, supports, q, i, noise, schedule, beta):
    """−mean_s Σ_k softmax_k(β Q_k) log softmax_k f(s, a_i^k, i), the K supports of each state noised to its step i."""
    b, k, d = supports.shape
    steps = i.repeat_interleave(k)  # (B·K,): support k of state b gets state b's step
    alpha_bar = schedule.alphas_cumprod[steps - 1].unsqueeze(1)
    a_i = alpha_bar.sqrt() * supports.reshape(b * k, d) + (1 - alpha_bar).sqrt() * noise.reshape(b * k, d)
    f = energy(state.repeat_interleave(k, dim=0), a_i, steps).reshape(b, k)
    target = torch.softmax(beta * q, dim=1)
    return -(target * torch.log_softmax(f, dim=1)).sum(dim=1).mean()


def guided_eps(eps_model, energy, state, a_i, i, scale, schedule):
    """ε̃ = ε_θ − √(1 − ᾱ_i) · scale · ∇_a f(s, a^i, i)  (Eq. 24 written for ε)."""
    eps = eps_model(state, a_i, i)
    with torch.enable_grad():
        a = a_i.detach().requires_grad_(True)
        grad = torch.autograd.grad(energy(state, a, i).sum(), a)[0]
    alpha_bar = schedule.alphas_cumprod[i - 1].unsqueeze(1)
    return eps - (1 - alpha_bar).sqrt() * scale * grad


def select_action(q1, q2, candidates, temperature, generator):
    """One of K candidates per state by Q = min(Q₁, Q₂): argmax, or a draw from softmax(Q / T) over the K (Eq. 21)."""
    q = torch.min(q1, q2)  # (B, K)
    if temperature is None:
        choice = q.argmax(dim=1)
    else:
        probs = torch.softmax(q / temperature, dim=1)
        choice = torch.multinomial(probs, 1, generator=generator).squeeze(1)
    return candidates[torch.arange(candidates.shape[0]), choice]
