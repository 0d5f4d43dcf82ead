"""Energy-guided sampling (Sec. 3.3, Eq. 21–25; Algorithm 1 step 2).

Goal: sample from π*(a | s) ∝ exp(κ Q(s, a)) μ(a | s) (Eq. 21, with an inverse temperature κ: the ``beta``
argument below, ``energy_beta`` of the agents) using the behaviour diffusion policy μ and a learned
*intermediate energy*

    ℰ_i(s, a_i) = log E_{μ_0i(a⁰ | a_i, s)} [exp(κ Q(s, a⁰))]          (Eq. 23; ℰ_0 = κ Q)

whose gradient is exactly what must be added to μ's score at step i (Eq. 24):

    ∇ log π_i(a_i | s) = ∇ log μ_i(a_i | s) + ∇ ℰ_i(s, a_i).

Erratum: Eq. 24 labels the guidance "≈ f_φ", but Eq. 25 trains f_ψ ≈ ℰ_i (a scalar); the guidance is ∇_a f_ψ.

Two ways to train f_ψ, both from K "support" actions a⁰_1..K ~ μ(· | s) per state:

* ``cep`` — contrastive energy prediction (after Lu et al. 2023, the paper's source for this step). Noise all
  K supports to one step i and minimise the cross-entropy −Σ_k softmax_k(κ Q(s, a⁰_k)) · log softmax_k
  f_ψ(s, a_i^k, i), with per-group softmax labels. For finite K its minimiser is *not* ℰ_i + c: each label
  is divided by its own group's Σ_j exp(κ Q_j), and the average of that ratio over the posterior is not
  exp(ℰ_i) up to a constant (K = 2, κ = 1: a region whose clean actions have Q ∈ {0, 10} at 50/50 and one
  with Q = 5 get f_A = f_B, while ℰ_A − ℰ_B ≈ 4.3). The bias shrinks as K grows (the group sum tends to
  K·E[exp(κ Q)]). Lu et al.'s theorem, f = ℰ_i + c(s, i) for every K ≥ 2, holds for the unnormalised
  weights exp(κ Q_k), which have heavier-tailed variance; ``dac4rec_lite.cep_bias`` computes all three
  minimisers on cases where ℰ_i is known (notebook 05).
* ``mse`` — the paper-literal Eq. 25: regress f_ψ(s, a_i, i) on an estimate of ℰ_i(s, a_i). The posterior
  μ_0i(a⁰ | a_i, s) ∝ μ(a⁰ | s) q(a_i | a⁰) is re-weighted from the supports (self-normalised importance
  sampling with weights w_k = q(a_i | a⁰_k) = N(a_i; √ᾱ_i a⁰_k, (1 − ᾱ_i) I)):

      ℰ̂_i(s, a_i) = log Σ_k w_k exp(κ Q_k) − log Σ_k w_k.

  This estimate is biased for finite K: it is the log of a ratio estimator, and E[log X] ≤ log E[X]
  (Jensen), so it is low on average; and when few supports lie near a_i (small i: the posterior is sharp)
  one weight dominates and ℰ̂ collapses to κ Q of that single support. The bias vanishes as K → ∞.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from ._checks import check_matrix, check_steps
from .diffusion import DiffusionPolicy, EpsilonMLP, VPSchedule

__all__ = [
    "EnergyModel", "EnergyGuidance", "train_energy", "support_actions", "importance_energy_estimate",
    "q_min_flat", "min_q",
    "cep_loss", "mse_loss", "standardize_q", "ENERGY_METHODS",
]

ENERGY_METHODS = ("cep", "mse")
EnergyFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
CriticFn = Callable[[torch.Tensor, torch.Tensor], object]


class EnergyModel(nn.Module):
    """f_ψ(state, a_i, i) ≈ ℰ_i(s, a_i) (Eq. 23/25), returning (B, 1). An MLP with a time embedding: the
    conditional MLP of the ε-network with a scalar output, with SiLU rather than the ε-network's ReLU:
    guidance follows ∇_a f_ψ (Eq. 24), and a ReLU network's gradient is piecewise constant in a."""

    def __init__(self, state_dim: int, action_dim: int, schedule: VPSchedule, hidden_dim: int = 256) -> None:
        super().__init__()
        self.state_dim, self.action_dim = state_dim, action_dim
        self.schedule = schedule
        self.net = EpsilonMLP(state_dim, action_dim, hidden_dim, activation="silu", out_dim=1)

    def forward(self, state: torch.Tensor, a_i: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        check_matrix(state, "state", self.state_dim)
        check_matrix(a_i, "a_i", self.action_dim)
        return self.net(state, a_i, check_steps(i, state.shape[0], self.schedule.n_steps, state.device))


class EnergyGuidance:
    """The score term of Eq. 24 for ``DiffusionPolicy.sample(guidance=...)``: ω ∇_a energy(s, a_i, i), with the
    guidance scale ω = ``scale``.

    ``energy`` is an ``EnergyModel`` or any callable ``energy(state, a_i, i)`` returning (B,) or (B, 1).
    The sampler turns the score into ε̃ = ε_θ − ω √(1 − ᾱ_i) ∇_a f. ω = 0 makes the sampler
    skip guidance entirely, so samples are bit-identical to unguided ones for the same generator."""

    def __init__(self, energy: EnergyFn, scale: float = 1.0) -> None:
        if not callable(energy):
            raise TypeError(f"energy must be callable as energy(state, a_i, i), got {type(energy).__name__}.")
        if isinstance(scale, bool) or not isinstance(scale, (int, float, np.integer, np.floating)):
            raise TypeError(f"scale must be a finite number >= 0, got {type(scale).__name__} {scale!r}.")
        if not np.isfinite(scale) or scale < 0:
            raise ValueError(f"scale must be a finite number >= 0, got {scale}.")
        self.energy, self.scale = energy, float(scale)

    def __call__(self, state: torch.Tensor, a_i: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        if torch.is_inference_mode_enabled():
            raise RuntimeError("energy guidance needs gradients: call sample() outside torch.inference_mode().")
        with torch.enable_grad():
            a = a_i.detach().requires_grad_(True)
            value = self.energy(state, a, i)
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"energy must return a torch.Tensor of shape ({a.shape[0]},), got {type(value).__name__}.")
            if value.shape not in ((a.shape[0],), (a.shape[0], 1)):
                raise ValueError(f"energy must return shape ({a.shape[0]},) or ({a.shape[0]}, 1), got {tuple(value.shape)}.")
            gradient = torch.autograd.grad(value.sum(), a, allow_unused=True)[0] if value.requires_grad else None
        finite = torch.isfinite(value).all() if gradient is None else torch.isfinite(value).all() & torch.isfinite(gradient).all()
        if not bool(finite):  # one check per step: NaN guidance would otherwise become NaN actions
            step = int(i.max()) if isinstance(i, torch.Tensor) else i
            raise ValueError(f"the guidance energy returned NaN or inf (value or gradient) at diffusion step {step}: "
                             "its weights are broken or it overflows; retrain it, or sample with scale=0 / no guidance.")
        if gradient is None:  # an energy that does not depend on the action guides nowhere
            return torch.zeros_like(a_i)
        return self.scale * gradient


def q_min_flat(critic: CriticFn, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """min(Q₁, Q₂)(s, a) flattened to shape (B,): one value per row, for the supports' (S, K) table.

    ``critic(state, action)`` returns (q1, q2) (a ``TwinQ``-like critic: the min is taken) or one Q of shape
    (B,) or (B, 1). The critics' own ``q_min`` methods (``TwinQ.q_min``, ``QNetwork.q_min``) return the
    (B, 1) column instead, the shape of rewards and TD targets; this function is for any callable critic."""
    out = critic(state, action)
    q = torch.min(out[0], out[1]) if isinstance(out, tuple) else out
    return q.reshape(state.shape[0])


min_q = q_min_flat  # the old name, kept for outside code (the kit calls q_min_flat): the same function, (B,)


@torch.no_grad()
def support_actions(policy: DiffusionPolicy, critic: CriticFn, states: torch.Tensor, n_support: int,
                    generator: torch.Generator | None = None, batch_size: int = 4096, sampler: str = "dpm",
                    n_sample_steps: int | None = 15,
                    critic_states: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """K actions per state from the behaviour policy and their Q values: (S, K, d) and (S, K).

    Drawn once and cached by ``train_energy`` (sampling is the expensive part: S·K reverse chains), by
    default with DPM-Solver++ in ``n_sample_steps`` = 15 steps (capped at N; ``sampler="ddpm"`` with
    ``n_sample_steps=None`` runs the full chain). ``critic_states`` (S, ·): what the critic reads for the
    same rows when it has its own encoder (an agent with ``policy_encoder="separate"``); default ``states``."""
    if n_sample_steps is not None:
        n_sample_steps = min(n_sample_steps, policy.n_steps)
    rows = states.repeat_interleave(n_support, dim=0)
    critic_rows = rows if critic_states is None else critic_states.repeat_interleave(n_support, dim=0)
    actions, qs = [], []
    for start in range(0, rows.shape[0], batch_size):
        chunk = rows[start:start + batch_size]
        a = policy.sample(chunk, generator=generator, sampler=sampler,
                          n_sample_steps=None if sampler == "ddpm" else n_sample_steps)
        actions.append(a)
        qs.append(q_min_flat(critic, critic_rows[start:start + batch_size], a))
    d = actions[0].shape[1]
    return torch.cat(actions).reshape(-1, n_support, d), torch.cat(qs).reshape(-1, n_support)


def standardize_q(q: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Q of K supports per state (S, K) in unit-free form: centred per state and divided by one scale σ, the
    root-mean within-state variance over all S states. Returns (standardized Q, σ).

    Only differences of Q within a state matter to the targets (softmax and the log-sum-exp of ℰ̂ are
    shift-invariant per state, up to a constant per state that ∇_a never sees), so κ·Q/σ tilts equally hard
    whatever the reward unit: rewards ×100 give the same targets. One pooled σ, not one per state, so a
    state whose supports all score alike (a near-deterministic behaviour) is not sharpened into chasing the
    critic's noise. Where every support scores the same (σ = 0) the standardized Q is 0: uniform targets."""
    if q.dim() != 2 or q.shape[1] < 2:
        raise ValueError(f"q must be (S, K) with K >= 2 supports per state, got {tuple(q.shape)}.")
    centred = q - q.mean(dim=1, keepdim=True)
    sigma = float(centred.pow(2).mean().sqrt())
    if not sigma > 0:
        return torch.zeros_like(q), 0.0
    return centred / sigma, sigma


def cep_loss(energy: EnergyFn, state, supports, q, steps, noise, schedule, beta) -> torch.Tensor:
    """−Σ_k softmax_k(κ Q_k) · log softmax_k f(s, a_i^k, i), averaged over states (CEP).

    ``state`` (B, ·), ``supports`` (B, K, d) and their ``q`` (B, K), ``steps`` (B,) one i per state, ``noise``
    (B, K, d) the noising of every support to step i; ``beta`` multiplies ``q`` as given (``train_energy``
    passes standardized Q for a unit-free κ, see ``standardize_q``)."""
    b, k, d = supports.shape
    steps_rep = steps.repeat_interleave(k)
    noisy = schedule.q_sample(supports.reshape(b * k, d), steps_rep, noise.reshape(b * k, d))
    f = energy(state.repeat_interleave(k, dim=0), noisy, steps_rep).reshape(b, k)
    return -(torch.softmax(beta * q, dim=1) * torch.log_softmax(f, dim=1)).sum(dim=1).mean()


def importance_energy_estimate(a_i: torch.Tensor, supports: torch.Tensor, q: torch.Tensor,
                               alpha_bar: float | torch.Tensor, beta: float) -> torch.Tensor:
    """The MSE target of Eq. 25: ℰ̂_i(a_i) = log Σ_k w_k exp(κ Q_k) − log Σ_k w_k, w_k = N(a_i; √ᾱ_i a⁰_k, (1 − ᾱ_i) I).

    Points ``a_i`` (..., M, d), supports a⁰ (..., K, d) and their Q (..., K); leading dimensions are batches,
    and ``alpha_bar`` is a float or a tensor of those leading dimensions (one ᾱ_i per batch row). Returns
    (..., M). Self-normalised importance sampling of the posterior μ_0i(a⁰ | a_i) from K draws of μ
    (biased low for finite K: see the module docstring)."""
    alpha_bar = torch.as_tensor(alpha_bar, dtype=a_i.dtype, device=a_i.device)
    ab = alpha_bar.reshape(*alpha_bar.shape, 1, 1)  # broadcast over (M, K)
    diff = a_i.unsqueeze(-2) - ab.unsqueeze(-1).sqrt() * supports.unsqueeze(-3)  # (..., M, K, d)
    log_w = -diff.pow(2).sum(-1) / (2 * (1 - ab))  # log w_mk up to a constant shared by all k
    return torch.logsumexp(log_w + beta * q.unsqueeze(-2), dim=-1) - torch.logsumexp(log_w, dim=-1)


def mse_loss(energy: EnergyFn, state, supports, q, steps, noise, schedule, beta) -> torch.Tensor:
    """(f(s, a_i^j, i) − ℰ̂_i(s, a_i^j))², ℰ̂ the self-normalised importance estimate over the K supports
    (arguments as ``cep_loss``)."""
    b, k, d = supports.shape
    steps_rep = steps.repeat_interleave(k)
    noisy = schedule.q_sample(supports.reshape(b * k, d), steps_rep, noise.reshape(b * k, d)).reshape(b, k, d)
    target = importance_energy_estimate(noisy, supports, q, schedule.alphas_cumprod[steps - 1], beta)
    f = energy(state.repeat_interleave(k, dim=0), noisy.reshape(b * k, d), steps_rep).reshape(b, k)
    return (f - target.detach()).pow(2).mean()


def train_energy(
    energy: EnergyModel,
    policy: DiffusionPolicy,
    critic: CriticFn,
    dataset,
    steps: int,
    n_support: int = 16,
    beta: float = 3.0,
    method: str = "cep",
    batch_size: int = 256,
    lr: float = 1e-3,
    n_states: int | None = 4096,
    encoder: Callable[[torch.Tensor], torch.Tensor] | None = None,
    seed: int = 0,
    progress: bool = True,
    support_sampler: str = "dpm",
    support_steps: int | None = 15,
    critic_encoder: Callable[[torch.Tensor], torch.Tensor] | None = None,
    standardize: bool = False,
) -> pd.DataFrame:
    """Train f_ψ (Algorithm 1 step 2) by ``method`` ∈ {"cep", "mse"} (see the module docstring).

    Args:
        energy: the ``EnergyModel`` to train.
        policy: the trained behaviour ``DiffusionPolicy`` μ that provides support actions.
        critic: ``critic(state, action)`` → (q1, q2) (min is used) or a (B,)/(B, 1) tensor of Q.
        dataset: an ``OfflineDataset`` (its observations give the states) or a (S, state_dim) tensor of states.
        steps, batch_size, lr: optimisation (Adam, cosine decay to 0).
        n_support: K supports per state. beta: inverse temperature κ of exp(κ Q) (Eq. 21/23).
        n_states: how many dataset states get supports (a random subset; None = all). S·K reverse chains are
            drawn once; at N = 100, 16 supports × 100k states would take minutes of CPU.
        encoder: maps observations to the states the policy and f_ψ read (the agent's policy encoder);
            identity when None. critic_encoder: maps them to the critic's states, when the critic has its
            own encoder (``policy_encoder="separate"``); ``encoder`` when None.
        support_sampler, support_steps: how supports are drawn (see ``support_actions``).
        standardize: score the supports by κ · Q / σ, Q centred per state and σ its pooled within-state
            standard deviation (``standardize_q``), so that κ is unit-free — what the agents do. False: by
            κ · Q in reward units, the literal Eq. 21.
    Returns a DataFrame with ``step`` and ``energy_loss``; ``attrs["q_scale"]`` holds σ (1.0 unstandardized).
    """
    if method not in ENERGY_METHODS:
        raise ValueError(f"method must be one of {ENERGY_METHODS}, got {method!r}.")
    if n_support < 2:
        raise ValueError(f"n_support must be >= 2 (both methods compare supports), got {n_support}.")
    if not beta > 0 or steps < 1:
        raise ValueError(f"beta must be positive and steps >= 1, got beta={beta}, steps={steps}.")
    device = policy.device
    generator = torch.Generator(device=device).manual_seed(seed)
    if isinstance(dataset, torch.Tensor):
        observations = dataset.to(device)
    else:
        observations = torch.as_tensor(dataset.to_dict()["observations"], device=device)
    if n_states is not None and n_states < observations.shape[0]:
        rows = torch.randperm(observations.shape[0], generator=torch.Generator().manual_seed(seed))[:n_states]
        observations = observations[rows.to(device)]
    with torch.no_grad():
        states = observations if encoder is None else encoder(observations)
        critic_states = None if critic_encoder is None else critic_encoder(observations)
    supports, q = support_actions(policy, critic, states, n_support, generator, sampler=support_sampler,
                                  n_sample_steps=support_steps, critic_states=critic_states)
    q_scale = 1.0
    if standardize:
        q, q_scale = standardize_q(q)
    loss_fn = cep_loss if method == "cep" else mse_loss
    schedule = policy.schedule
    optimizer = torch.optim.Adam(energy.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    records = []
    bar = tqdm(range(1, steps + 1), desc=f"energy ({method})", disable=not progress, leave=False)
    for step in bar:
        rows = torch.randint(0, states.shape[0], (batch_size,), generator=generator, device=device)
        i = torch.randint(1, schedule.n_steps + 1, (batch_size,), generator=generator, device=device)
        noise = torch.randn(supports[rows].shape, generator=generator, device=device)
        loss = loss_fn(energy, states[rows], supports[rows], q[rows], i, noise, schedule, beta)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if step % 10 == 0 or step == steps:
            records.append({"step": step, "energy_loss": loss.item()})
            bar.set_postfix(loss=f"{records[-1]['energy_loss']:.4f}")
    log = pd.DataFrame.from_records(records)
    log.attrs["q_scale"] = q_scale
    return log
