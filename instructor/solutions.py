"""Reference solutions of the exercises (instructors only: not part of the installed package, not importable
from ``dac4rec_lite.exercises``), written the way a student would write them: from the tables, the networks and
the agent's public pieces, never by calling the kit's implementation of the same thing (the checkers refuse that).

CI fills every exercise notebook with these (``instructor/fill_notebooks.py``) and runs it, asserting that every
check passes, and tests/test_exercises.py runs every checker on them in strict mode, so they never rot.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "vp_betas", "q_sample", "reverse_step", "bc_loss", "elbo_weights", "action_approximation", "td_target", "q_loss",
    "awr_weight", "soft_update", "algorithm1_update", "cep_loss", "guided_eps", "select_action",
]


def vp_betas(n_steps, beta_min, beta_max):
    """β_i = 1 − exp(−β_min/N − ½(β_max − β_min)(2i − 1)/N²), i = 1..N (Sec. 3.1 with the sign corrected, errata #1)."""
    i = torch.arange(1, n_steps + 1, dtype=torch.float64)
    alphas = torch.exp(-beta_min / n_steps - 0.5 * (beta_max - beta_min) * (2 * i - 1) / n_steps**2)
    return (1 - alphas).float()


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


def elbo_weights(schedule):
    """w_i = β_i / (2 α_i (1 − ᾱ_{i−1})), infinite at i = 1 (ᾱ_0 = 1), where the decoder's weight 1/(2 α_1) is used;
    normalised to mean 1 (Eq. 18, errata #6)."""
    weights = schedule.betas / (2 * schedule.alphas * (1 - schedule.alphas_cumprod_prev))
    weights[0] = 1 / (2 * schedule.alphas[0])  # i = 1: σ_1² = β_1 makes β_1 / (2 α_1 (1 − ᾱ_1)) = 1 / (2 α_1)
    return weights / weights.mean()


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


def awr_weight(q1, q2, v, temperature, max_weight):
    """g = exp(A / (T · mean|A|)), A = min(Q₁, Q₂) − V, clipped at max_weight, then normalised to mean 1."""
    advantage = torch.min(q1, q2) - v
    scale = advantage.abs().mean().clamp(min=1e-6)
    weights = torch.exp(advantage / (temperature * scale)).clamp(max=max_weight)
    return weights / weights.mean()


def soft_update(target, source, tau):
    """θ′ ← τ θ + (1 − τ) θ′ for every weight, in place and outside autograd."""
    with torch.no_grad():
        for t, s in zip(target.parameters(), source.parameters()):
            t.copy_(tau * s + (1 - tau) * t)


def algorithm1_update(agent, batch):
    """One update of Algorithm 1 (step 1) from the agent's public pieces; returns (critic loss, policy loss)."""
    state, action = batch["observations"], batch["actions"]  # line 2 (the identity encoder: observations are states)
    # Lines 3–4: y = r + γ (1 − terminal) min Q′(s′, a′), a′ ~ μ_θ′(·|s′); both twins regress on it (Eq. 20).
    y = agent.td_target(batch["next_observations"], batch["rewards"], batch["terminals"])
    q1, q2 = agent.critic(state, action)
    critic_loss = F.mse_loss(q1, y) + F.mse_loss(q2, y)
    agent.critic_optimizer.zero_grad()
    critic_loss.backward()
    agent.critic_optimizer.step()
    soft_update(agent.target_critic, agent.critic, agent.config.tau)
    # Lines 5–7: one step of θ on L_d + λ L_q against the critic just updated, then the target policy.
    policy_loss, _ = agent.policy_loss(state, action)
    agent.actor_optimizer.zero_grad()
    policy_loss.backward()
    agent.actor_optimizer.step()
    soft_update(agent.target_policy, agent.policy, agent.config.tau)
    return torch.stack([critic_loss, policy_loss]).detach()


def cep_loss(energy, state, supports, q, i, noise, schedule, beta):
    """−mean_s Σ_k softmax_k(κ Q_k) log softmax_k f(s, a_i^k, i), the K supports of each state noised to its step i
    (κ, the inverse temperature, is the argument ``beta``)."""
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
