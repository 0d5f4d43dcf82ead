"""Studies of energy-guided sampling (Sec. 3.3, Eq. 21–25) on the corner bandit: the numbers notebook 05 shows.

* ``energy_grid`` — f(s, a, i) on a grid of 2-D actions (the heatmaps of the intermediate energy, Eq. 23).
* ``bandit_energy`` — the exact ℰ_i of the corner bandit's behaviour and true reward, a reference for the
  learned f_ψ (the critic replaced by the true reward, the policy by the true behaviour).
* ``guided_sample`` / ``sample_summary`` / ``summary_table`` — draw actions with ``EnergyGuidance`` and say
  where they land (share on the best blob, off every blob, mean true reward).
* ``reward_spread_by_scale`` — the variance-reduction picture: mean reward and its spread over repeated draws
  (seeds) as the guidance scale ω (``scale=``) grows.
* ``importance_energy_estimate`` / ``mse_target_error`` — the paper-literal (MSE, Eq. 25) training target,
  a self-normalised importance estimate of ℰ_i, and how far it is from the exact ℰ_i for K supports.
* ``ExactBehaviourEps`` / ``bandit_guidance_by_scale`` — guidance where it is known to work: the exact
  behaviour (its ε* by Tweedie's formula) guided by the exact energy, reward against ω with paired
  intervals over seeds, in the same layout as the simulator's energy study (notebook 07's contrast).

Symbols follow docs/notation.md: κ is the inverse temperature of the tilt e^{κQ} (the argument ``beta``),
ω the guidance scale (the argument ``scale``).

Everything is seeded: a study with the same arguments returns the same numbers.
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from ..data.toy import CornerBandit
from ..diffusion import DiffusionPolicy, VPSchedule
from ..diffusion.analysis import mixture_score
from ..energy import EnergyGuidance, importance_energy_estimate, q_min_flat
from .paired import paired_contrast

__all__ = [
    "grid_axis", "energy_grid", "bandit_energy", "guided_sample", "sample_summary", "summary_table",
    "reward_spread_by_scale", "q_values", "importance_energy_estimate", "mse_target_error", "ExactBehaviourEps",
    "bandit_guidance_by_scale",
]

EnergyFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def grid_axis(resolution: int = 41, bound: float = 1.5) -> np.ndarray:
    """The coordinates of one side of ``energy_grid``: ``resolution`` points evenly from -bound to bound."""
    if resolution < 2 or not bound > 0:
        raise ValueError(f"resolution must be >= 2 and bound > 0, got resolution={resolution}, bound={bound}.")
    return np.linspace(-bound, bound, resolution)


def _as_state(state: object, device: torch.device | None = None) -> torch.Tensor:
    """One state as a (1, state_dim) float tensor (accepts (state_dim,) or (1, state_dim), numpy or torch)."""
    x = torch.as_tensor(np.asarray(state, dtype=np.float32) if not isinstance(state, torch.Tensor) else state)
    x = x.reshape(1, -1) if x.dim() == 1 else x
    if x.dim() != 2 or x.shape[0] != 1:
        raise ValueError(f"state must be one state, shape (state_dim,) or (1, state_dim), got {tuple(x.shape)}.")
    return x.float() if device is None else x.float().to(device)


def energy_grid(energy: EnergyFn, state: object, i: int, resolution: int = 41, bound: float = 1.5) -> np.ndarray:
    """f(state, a, i) for every action a on a ``resolution`` × ``resolution`` grid of the square [-bound, bound]².

    Returns ``values`` (resolution, resolution) with ``values[r, c]`` = f at a = (axis[c], axis[r]), axis =
    ``grid_axis(resolution, bound)``: rows follow a₂ and columns a₁, the layout of a plotly heatmap's ``z``.
    ``energy`` is an ``EnergyModel`` or any callable ``energy(state, a_i, i)`` returning (B,) or (B, 1)."""
    axis = torch.as_tensor(grid_axis(resolution, bound), dtype=torch.float32)
    device = next(energy.parameters()).device if isinstance(energy, torch.nn.Module) else None
    a2, a1 = torch.meshgrid(axis, axis, indexing="ij")
    actions = torch.stack([a1.reshape(-1), a2.reshape(-1)], dim=1)
    states = _as_state(state, device).expand(actions.shape[0], -1)
    if device is not None:
        actions = actions.to(device)
    steps = torch.full((actions.shape[0],), int(i), dtype=torch.long, device=actions.device)
    with torch.no_grad():
        values = energy(states, actions, steps)
    return values.reshape(resolution, resolution).detach().cpu().numpy()


def bandit_energy(bandit: CornerBandit, schedule: VPSchedule, beta: float) -> EnergyFn:
    """The exact intermediate energy ℰ_i(s, a_i) = log E_{μ_0i(a⁰ | a_i, s)}[exp(κ r(s, a⁰))] (Eq. 23) of the
    corner bandit, with the true behaviour as μ, the true mean reward as Q and κ = ``beta``.

    The behaviour is an even mixture of four Gaussians N(c_k, σ² I), and Q is the blob's mean m_k on blob k
    (the ±1 clip and the tails beyond ``radius`` = 5σ are ignored). Noised to step i, blob k becomes
    N(√ᾱ_i c_k, (ᾱ_i σ² + 1 − ᾱ_i) I), so the posterior over blobs given a_i has weights
    ρ_k(a_i) ∝ N(a_i; √ᾱ_i c_k, (ᾱ_i σ² + 1 − ᾱ_i) I) (the self-normalised importance weights of
    docs/notation.md, with the four blobs as the supports) and

        ℰ_i(s, a_i) = log Σ_k ρ_k(a_i) exp(κ m_k(s)).

    Returns a differentiable callable ``energy(state, a_i, i)`` → (B,) for ``EnergyGuidance`` or ``energy_grid``;
    the state is the bandit's observation (its context, for the contextual bandit)."""
    if not beta > 0:
        raise ValueError(f"beta must be positive, got {beta}.")
    centres = torch.as_tensor(bandit.centres, dtype=torch.float32)
    means = torch.as_tensor(np.stack([bandit.blob_means(c) for c in range(len(bandit.centres))]), dtype=torch.float32)

    def energy(state: torch.Tensor, a_i: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        alpha_bar = schedule.alphas_cumprod.to(a_i.device)[i - 1].unsqueeze(1)  # (B, 1)
        variance = alpha_bar * bandit.std**2 + 1 - alpha_bar
        diff = a_i.unsqueeze(1) - alpha_bar.sqrt().unsqueeze(2) * centres.to(a_i.device)  # (B, K, 2)
        # equal variances for every blob: the Gaussian normalising constants cancel in the softmax
        log_rho = torch.log_softmax(-diff.pow(2).sum(-1) / (2 * variance), dim=1)
        contexts = state.argmax(dim=1) if bandit.contextual else torch.zeros(state.shape[0], dtype=torch.long,
                                                                                 device=state.device)
        return torch.logsumexp(log_rho + beta * means.to(a_i.device)[contexts], dim=1)

    return energy


def guided_sample(policy: DiffusionPolicy, energy: EnergyFn | None, states: torch.Tensor, scale: float = 1.0,
                  seed: int = 0, return_trajectory: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """``policy.sample`` with ``EnergyGuidance(energy, scale)`` — guidance scale ω = ``scale`` — (none when
    ``energy`` is None) and a generator seeded with ``seed``; detached. ω = 0 and ``energy=None`` give the same
    actions (the unguided chain)."""
    guidance = None if energy is None else EnergyGuidance(energy, scale)
    generator = torch.Generator(device=policy.device).manual_seed(seed)
    with torch.no_grad():  # EnergyGuidance switches gradients back on for its own ∇_a f
        out = policy.sample(states, guidance=guidance, generator=generator, return_trajectory=return_trajectory)
    return tuple(x.detach() for x in out) if return_trajectory else out.detach()


def _numpy(x: object) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def sample_summary(bandit: CornerBandit, observations: object, actions: object) -> dict[str, float]:
    """Where actions land: ``best_blob`` (share on the best blob of their context), ``off_blob`` (on no blob),
    one share per blob name, ``mean_reward`` (the true expected reward, 0 off the blobs) and ``reward_std``
    (its spread over single actions)."""
    obs, acts = _numpy(observations), _numpy(actions)
    blobs = bandit.blob_of(acts)
    contexts = bandit.contexts_of(obs)
    best = np.array([bandit.best_blob(c) for c in range(len(bandit.centres))])[contexts]
    rewards = bandit.true_reward(obs, acts)
    summary = {"mean_reward": float(rewards.mean()), "reward_std": float(rewards.std()),
               "best_blob": float(np.mean(blobs == best)), "off_blob": float(np.mean(blobs < 0))}
    summary.update({name: float(np.mean(blobs == k)) for k, name in enumerate(bandit.blob_names)})
    return summary


def summary_table(bandit: CornerBandit, observations: object, actions_by_name: Mapping[str, object]) -> pd.DataFrame:
    """``sample_summary`` for several sets of actions (same observations), one row per name."""
    rows = {name: sample_summary(bandit, observations, actions) for name, actions in actions_by_name.items()}
    return pd.DataFrame.from_dict(rows, orient="index")


def reward_spread_by_scale(
    policy: DiffusionPolicy,
    energy: EnergyFn,
    bandit: CornerBandit,
    scales: Sequence[float] = (0.0, 0.5, 1.0, 2.0, 4.0),
    n_seeds: int = 5,
    n_samples: int = 500,
    context: int = 0,
    seed: int = 0,
    per_seed: bool = False,
) -> pd.DataFrame:
    """How guidance changes the reward of sampled actions and its spread over repeated draws.

    For every scale, draw ``n_samples`` guided actions for one context with each of ``n_seeds`` generators
    (seeds ``seed``, ``seed + 1``, …: the same seeds for every scale, so scale 0 *is* the unguided policy
    drawn with those seeds). Returns one row per scale with

    * ``mean_reward``: the true expected reward averaged over all draws;
    * ``std_of_mean_reward``: the standard deviation over seeds of each draw's mean reward, i.e. how much an
      evaluation with ``n_samples`` actions moves when you only change the random numbers;
    * ``reward_std``: the spread of single actions' rewards (pooled);
    * ``best_blob`` / ``off_blob``: shares of actions on the best blob / on no blob.

    ``per_seed=True`` returns the raw rows (scale, seed, mean_reward, reward_std, best_blob, off_blob, …)."""
    if n_seeds < 2 or n_samples < 1:
        raise ValueError(f"n_seeds must be >= 2 (a spread needs two draws) and n_samples >= 1, "
                         f"got n_seeds={n_seeds}, n_samples={n_samples}.")
    obs = bandit.observations(context, n_samples)
    states = torch.as_tensor(obs, device=policy.device)
    rows = []
    for scale in scales:
        for k in range(n_seeds):
            actions = guided_sample(policy, energy, states, scale=float(scale), seed=seed + k)
            rows.append({"scale": float(scale), "seed": seed + k, **sample_summary(bandit, obs, actions)})
    raw = pd.DataFrame(rows)
    if per_seed:
        return raw
    grouped = raw.groupby("scale", sort=False)
    # pooled variance of single rewards = mean within-draw variance + variance of the draws' means (equal sizes)
    pooled_variance = grouped["reward_std"].apply(lambda s: np.mean(s**2)) + grouped["mean_reward"].var(ddof=0)
    return pd.DataFrame({
        "mean_reward": grouped["mean_reward"].mean(),
        "std_of_mean_reward": grouped["mean_reward"].std(ddof=1),
        "reward_std": np.sqrt(pooled_variance),
        "best_blob": grouped["best_blob"].mean(),
        "off_blob": grouped["off_blob"].mean(),
    }).reset_index()


def q_values(critic: Callable, states: torch.Tensor, actions: torch.Tensor) -> np.ndarray:
    """Q(s, a) as a numpy (B,) array: min of the twins for a ``TwinQ``, else the critic's single output."""
    with torch.no_grad():
        return q_min_flat(critic, states, actions.to(states.device)).cpu().numpy()


def mse_target_error(
    bandit: CornerBandit,
    schedule: VPSchedule,
    beta: float,
    n_supports: Sequence[int] = (2, 4, 16, 64),
    steps: Sequence[int] | None = None,
    n_trials: int = 500,
    seed: int = 0,
) -> pd.DataFrame:
    """How far the MSE target ℰ̂_i is from the exact ℰ_i, on the corner bandit with its true behaviour and reward.

    As ``train_energy`` does, each trial draws K supports a⁰_k from the behaviour, noises each to a_i^k and
    evaluates ℰ̂_i at those K points from the same K supports; ``bandit_energy`` gives the exact ℰ_i there.
    Returns one row per (K, i): ``bias`` = mean(ℰ̂ − ℰ) (Jensen: ≤ 0, it does not average away in a
    regression) and ``rmse`` (bias and noise together). ``steps`` defaults to five steps from 1 to N."""
    n = schedule.n_steps
    steps = sorted({1, max(1, n // 4), max(1, n // 2), max(1, 3 * n // 4), n}) if steps is None else list(steps)
    exact = bandit_energy(bandit, schedule, beta)
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for k in n_supports:
        if k < 1:
            raise ValueError(f"every number of supports must be >= 1, got {k}.")
        for position, i in enumerate(steps):
            logged = bandit.dataset(n_trials * k, seed=seed + 1000 * k + position).to_dict()
            supports = torch.as_tensor(logged["actions"]).reshape(n_trials, k, 2)
            q = torch.as_tensor(bandit.true_reward(logged["observations"], logged["actions"]),
                                dtype=torch.float32).reshape(n_trials, k)
            alpha_bar = float(schedule.alphas_cumprod[i - 1])
            noise = torch.randn(supports.shape, generator=generator)
            noisy = alpha_bar**0.5 * supports + (1 - alpha_bar) ** 0.5 * noise
            estimate = importance_energy_estimate(noisy, supports, q, alpha_bar, beta)
            truth = exact(torch.as_tensor(logged["observations"]), noisy.reshape(-1, 2),
                          torch.full((n_trials * k,), i, dtype=torch.long)).reshape(n_trials, k)
            error = estimate - truth
            rows.append({"K": k, "i": i, "bias": float(error.mean()), "rmse": float(error.pow(2).mean().sqrt())})
    return pd.DataFrame(rows)


class ExactBehaviourEps(torch.nn.Module):
    """The corner bandit's behaviour as an exact ε-model: ε*(a_i) = −√(1 − ᾱ_i) ∇ log μ_i(a_i) (Tweedie's
    formula, with ``diffusion.analysis.mixture_score``), what a perfectly trained ε_θ would predict. Pass it as
    ``DiffusionPolicy(..., eps_model=ExactBehaviourEps(bandit, schedule))``; the blobs' ±1 clip is ignored."""

    def __init__(self, bandit: CornerBandit, schedule: VPSchedule):
        super().__init__()
        self.bandit, self.schedule = bandit, schedule
        self.register_buffer("centres", torch.as_tensor(bandit.centres, dtype=torch.float64))

    def forward(self, state: torch.Tensor, a_i: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        steps = torch.unique(i)
        if steps.numel() != 1:
            raise ValueError("ExactBehaviourEps takes one step for the whole batch (as the samplers call it).")
        step = int(steps.item())
        alpha_bar = float(self.schedule.alphas_cumprod[step - 1])
        score = mixture_score(self.schedule, a_i, step, self.centres, self.bandit.std)
        return -(1.0 - alpha_bar) ** 0.5 * score


def bandit_guidance_by_scale(scales: Sequence[float] = (0.0, 0.5, 1.0, 2.0, 4.0), n_seeds: int = 5,
                             n_samples: int = 500, beta: float = 3.0, n_steps: int = 20, seed: int = 0,
                             level: float = 0.95) -> pd.DataFrame:
    """Energy guidance where the model is exact: the corner bandit's behaviour (``ExactBehaviourEps``) guided
    by its exact intermediate energy (``bandit_energy``, κ = ``beta``), for every guidance scale ω in ``scales``.
    Each seed draws ``n_samples`` actions with the same generator at every ω (ω = 0 is the unguided behaviour),
    so the scales are compared pairwise. One row per scale: ``reward_mean`` (mean over seeds of each draw's mean
    true reward) with its ``level`` interval (``reward_mean_low``, ``reward_mean_high``), ``best_blob``, and
    the paired difference from scale 0 (``reward_diff``, ``reward_low``, ``reward_high``, ``reward_verdict``:
    "reproduces" = guidance raises the reward) — the layout of ``experiments.studies.energy_table`` (with
    ``log`` and ``method`` columns), so ``viz.studies.energy_figure(table, "reward")`` draws it."""
    bandit = CornerBandit()
    schedule = VPSchedule(n_steps)
    policy = DiffusionPolicy(bandit.obs_dim, bandit.action_dim, schedule,
                             eps_model=ExactBehaviourEps(bandit, schedule))
    raw = reward_spread_by_scale(policy, bandit_energy(bandit, schedule, beta), bandit, scales, n_seeds, n_samples,
                                 seed=seed, per_seed=True)
    rows = []
    for scale in dict.fromkeys(float(s) for s in scales):
        mean = paired_contrast(raw, [({"scale": scale}, 1.0)], "mean_reward", level=level)
        diff = paired_contrast(raw, [({"scale": scale}, 1.0), ({"scale": 0.0}, -1.0)], "mean_reward", level=level)
        rows.append({"log": "corner bandit", "method": "exact behaviour + exact energy", "scale": scale,
                     "n_seeds": mean.n, "reward_mean": mean.estimate, "reward_mean_low": mean.low,
                     "reward_mean_high": mean.high, "best_blob": float(raw.loc[raw["scale"] == scale, "best_blob"].mean()),
                     "reward_diff": diff.estimate, "reward_low": diff.low, "reward_high": diff.high,
                     "reward_verdict": "baseline" if scale == 0.0 else diff.verdict})
    table = pd.DataFrame(rows)
    table.attrs["runs"] = raw
    return table
