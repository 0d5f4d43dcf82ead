"""The numbers behind the notebook figures of 02–05: tables and fields computed from trained objects.

``dac4rec_lite.viz`` only draws; what it draws is computed here (and ``dl.viz`` re-exports the table
functions so that notebooks can keep calling ``dl.viz.<name>``).

* Where actions land on the corner bandit: ``bandit_samples``, ``bandit_outcome`` (one set of actions, built
  on ``experiments.guidance.sample_summary``), ``bandit_outcome_table`` (several agents), and on the 2-D toy
  ``mode_fraction_table``.
* What the critic believes: ``critic_grid`` (min(Q₁, Q₂) on a grid of actions), ``critic_action_gradient``
  (∂Q/∂a on that grid, by autograd: the direction the Q term of Eq. 15 pushes actions) and
  ``critic_probe_table`` (Q at a few actions beside the true reward).
* The one-step action approximation (Eq. 13–14): ``approximation_pairs`` (a⁰, a^i, â⁰ at one step) and
  ``approximation_errors`` (its error at every step).
* Score fields on a grid of a^i: ``score_field`` (∇ log μ_i = −ε_θ / √(1 − ᾱ_i), Eq. 14's noise prediction
  read as a score) and ``guided_score_field`` (the three terms of Eq. 24: ∇ log μ_i + scale·∇f = ∇ log π_i).
* Training as a film: ``training_snapshots`` (the policy's samples after a few update counts, from the
  agent's public ``fit`` and ``act``).

Grids share one layout: ``grid_points(resolution, bound)`` lists the actions row by row (a₂ outer, a₁ inner),
so ``values.reshape(resolution, resolution)[r, c]`` is the value at a = (axis[c], axis[r]), the layout of a
plotly heatmap's ``z``.
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from ..data.toy import CornerBandit, MultimodalBehavior
from ..diffusion.policy import DiffusionPolicy
from ..energy import EnergyGuidance
from .guidance import grid_axis, sample_summary

__all__ = [
    "ELSEWHERE", "grid_points", "bandit_samples", "bandit_outcome", "bandit_outcome_table", "mode_fraction_table",
    "critic_grid", "critic_action_gradient", "critic_probe_table", "approximation_pairs", "approximation_errors",
    "score_field",
    "guided_score_field", "training_snapshots",
]

ELSEWHERE = "elsewhere"


def _numpy(x: object) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _tensor(x: object, device: torch.device) -> torch.Tensor:
    return torch.tensor(np.array(_numpy(x), dtype=np.float32), device=device)  # a copy: callers may pass read-only views


def _seeded(device: torch.device, seed: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def _one_state(state: object, device: torch.device) -> torch.Tensor:
    """One state or observation as (1, dim); refuses a batch (a field is drawn for one state)."""
    x = _tensor(state, device)
    x = x.reshape(1, -1) if x.dim() <= 1 else x
    if x.dim() != 2 or x.shape[0] != 1:
        raise ValueError(f"expected one state, shape (dim,) or (1, dim), got {tuple(x.shape)}.")
    return x


def _step(step: object, n_steps: int) -> int:
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or not 1 <= step <= n_steps:
        raise ValueError(f"step must be an int in 1..{n_steps} (a noised step: i = 0 is the clean action), got {step!r}.")
    return int(step)


def grid_points(resolution: int = 15, bound: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """``(axis, points)``: the axis ``grid_axis(resolution, bound)`` and the resolution² actions of the grid
    as (resolution², 2), a₂ outer and a₁ inner (``points[r * resolution + c] = (axis[c], axis[r])``)."""
    axis = grid_axis(resolution, bound)
    a2, a1 = np.meshgrid(axis, axis, indexing="ij")
    return axis, np.stack([a1.reshape(-1), a2.reshape(-1)], axis=1)


# --- where actions land ------------------------------------------------------------------------------------

def bandit_samples(agent, bandit: CornerBandit, context: int = 0, n: int = 500, seed: int = 0) -> np.ndarray:
    """``agent.act`` for ``n`` copies of the context's observation, drawn with ``torch.Generator().manual_seed(seed)``.

    Lives in ``dac4rec_lite.experiments.analysis``; ``dl.viz.bandit_samples`` is the same function, kept for the notebooks."""
    return agent.act(bandit.observations(context, n), generator=_seeded(agent.device, seed))


def bandit_outcome(bandit: CornerBandit, actions: object, context: int = 0) -> dict[str, object]:
    """Where one set of actions for ``context`` lands, in percent: ``sample_summary`` renamed for tables —
    "mean true reward", "best blob" (its name), "% on best", "% <blob>" for each blob and "% off data"."""
    acts = _numpy(actions)
    summary = sample_summary(bandit, bandit.observations(context, len(acts)), acts)
    row: dict[str, object] = {"mean true reward": summary["mean_reward"],
                              "best blob": bandit.blob_names[bandit.best_blob(context)],
                              "% on best": 100 * summary["best_blob"]}
    row.update({f"% {name}": 100 * summary[name] for name in bandit.blob_names})
    row["% off data"] = 100 * summary["off_blob"]
    return row


def bandit_outcome_table(agents: Mapping[str, object], bandit: CornerBandit, n: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Where each agent's actions land: one row per (run, context) with the mean true reward of ``n`` samples,
    the share on the context's best blob, on each blob and off every blob (percent). The data's own numbers,
    for comparison, are the behaviour's: 25% per blob and the mean of the four blob means.

    Lives in ``dac4rec_lite.experiments.analysis``; ``dl.viz.bandit_outcome_table`` is the same function, kept for the notebooks."""
    contexts = range(len(bandit.centres)) if bandit.contextual else [0]
    rows = [{"run": name, "context": context,
             **bandit_outcome(bandit, bandit_samples(agent, bandit, context, n, seed), context)}
            for name, agent in agents.items() for context in contexts]
    table = pd.DataFrame(rows).set_index(["run", "context"] if bandit.contextual else ["run"])
    if not bandit.contextual:
        table = table.drop(columns="context")
    return table.round(2)


def mode_fraction_table(toy: MultimodalBehavior, actions_by_policy: Mapping[str, Mapping[int, object]]) -> pd.DataFrame:
    """Percent of each policy's actions on each liked mode and elsewhere, one row per (policy, user).

    ``actions_by_policy`` maps a policy name to {user: actions (n, 2)}. Modes the user does not like are
    left empty (an action there counts as "elsewhere").

    Lives in ``dac4rec_lite.experiments.analysis``; ``dl.viz.mode_fraction_table`` is the same function, kept for the notebooks."""
    rows = []
    for policy, per_user in actions_by_policy.items():
        for user, actions in per_user.items():
            fractions = toy.mode_fractions(_numpy(actions), user)
            rows.append({"policy": policy, "user": user, **{k: 100 * v for k, v in fractions.items()}})
    table = pd.DataFrame(rows).set_index(["policy", "user"])
    return table[[*[m for m in toy.mode_names if m in table.columns], ELSEWHERE]].round(1)


# --- what the critic believes --------------------------------------------------------------------------------

def critic_grid(agent, observation: object, resolution: int = 41, bound: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """min(Q₁, Q₂)(s, a) of ``agent.critic`` for one observation and every action a on a ``resolution`` ×
    ``resolution`` grid of [-bound, bound]². Returns ``(axis, values)``: ``values[r, c]`` is Q at
    a = (axis[c], axis[r]) (rows follow a₂, columns a₁: the layout of a plotly heatmap's ``z``).

    Lives in ``dac4rec_lite.experiments.analysis``; ``dl.viz.critic_grid`` is the same function, kept for the notebooks."""
    axis, points = grid_points(resolution, bound)
    actions = _tensor(points, agent.device)
    with torch.no_grad():
        state = agent.encoder(_one_state(observation, agent.device))
        q = agent.critic.q_min(state.expand(len(actions), -1), actions)
    return axis, q.reshape(resolution, resolution).cpu().numpy()


def critic_action_gradient(agent, observation: object, resolution: int = 11, bound: float = 1.5) -> pd.DataFrame:
    """∂ min(Q₁, Q₂)(s, a) / ∂a by autograd at every action of the grid (``grid_points``): the direction in
    which the Q term of the policy loss (−Q(s, â⁰) in Eq. 15) pushes the policy's actions. One row per grid
    point with ``a1, a2, q, dq1, dq2``."""
    _, points = grid_points(resolution, bound)
    actions = _tensor(points, agent.device).requires_grad_(True)
    with torch.no_grad():
        state = agent.encoder(_one_state(observation, agent.device)).expand(len(points), -1)
    with torch.enable_grad():
        q = agent.critic.q_min(state, actions).reshape(-1)
        (gradient,) = torch.autograd.grad(q.sum(), actions)
    dq = gradient.cpu().numpy()
    return pd.DataFrame({"a1": points[:, 0], "a2": points[:, 1], "q": q.detach().cpu().numpy(),
                         "dq1": dq[:, 0], "dq2": dq[:, 1]})


def critic_probe_table(agent, bandit: CornerBandit, points: Mapping[str, tuple[float, float]] | None = None,
                       context: int = 0) -> pd.DataFrame:
    """What the critic says at a few actions, next to the truth: Q₁, Q₂, min(Q₁, Q₂) and the bandit's true
    mean reward, and whether the action is on the data (within ``bandit.radius`` of a blob). By default the
    four blob centres, the box corner (1, −1) just beyond the SE blob, the centre (0, 0) and (1, 1).

    Lives in ``dac4rec_lite.experiments.analysis``; ``dl.viz.critic_probe_table`` is the same function, kept for the notebooks."""
    if points is None:
        points = {f"{name} blob centre": tuple(c) for name, c in zip(bandit.blob_names, bandit.centres)}
        points.update({"corner (1, −1)": (1.0, -1.0), "centre (0, 0)": (0.0, 0.0), "corner (1, 1)": (1.0, 1.0)})
    actions = np.asarray(list(points.values()), dtype=np.float32)
    obs = bandit.observations(context, len(actions))
    with torch.no_grad():
        state = agent.encoder(_tensor(obs, agent.device))
        q1, q2 = agent.critic(state, _tensor(actions, agent.device))
    q1, q2 = q1.squeeze(1).cpu().numpy(), q2.squeeze(1).cpu().numpy()
    q_min = np.minimum(q1, q2)
    truth = bandit.true_reward(obs, actions)
    return pd.DataFrame({
        "action": [f"({a[0]:g}, {a[1]:g})" for a in actions],
        "on the data?": np.where(bandit.blob_of(actions) >= 0, "yes", "no"),
        "true mean reward": truth, "Q₁": q1, "Q₂": q2, "min(Q₁, Q₂)": q_min, "min(Q₁, Q₂) − truth": q_min - truth,
    }, index=pd.Index(list(points), name="point")).round(2)


# --- the action approximation --------------------------------------------------------------------------------

def approximation_pairs(policy: DiffusionPolicy, states: object, actions: object, step: int,
                        seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(a⁰, ε, a^i, â⁰)`` on the CPU for a batch of dataset pairs (s, a⁰) at step i (Eq. 13–14): a^i =
    √ᾱ_i a⁰ + √(1 − ᾱ_i) ε with ε drawn from ``torch.Generator().manual_seed(seed)``, and â⁰ =
    ``policy.approximate_action(s, a⁰, generator=<same seed>, step=i)``, which draws that same ε. The same seed
    gives the same ε at every step, so each pair moves along its own path as i changes."""
    step = _step(step, policy.n_steps)
    s, a0 = _tensor(states, policy.device), _tensor(actions, policy.device)
    with torch.no_grad():
        noise = torch.randn(a0.shape, generator=_seeded(policy.device, seed), device=policy.device)
        noisy = policy.schedule.q_sample(a0, step, noise)
        approx = policy.approximate_action(s, a0, generator=_seeded(policy.device, seed), step=step)
    return a0.cpu(), noise.cpu(), noisy.cpu(), approx.cpu()


def approximation_errors(policy: DiffusionPolicy, states: object, actions: object, seed: int = 0) -> pd.DataFrame:
    """How good is the one-step approximation at each step i? One row per i = 1..N, all on the same ε (from
    ``seed``), averaged over the rows of (states, actions):

    * ``approximation_error`` E‖â⁰ − a⁰‖² with â⁰ from ``policy.approximate_action(..., step=i)``;
    * ``eps_error`` E‖ε_θ(s, a^i, i) − ε‖², the network's error in guessing the noise;
    * ``amplification`` (1 − ᾱ_i) / ᾱ_i: Eq. 14 gives â⁰ − a⁰ = −√((1 − ᾱ_i)/ᾱ_i) (ε_θ − ε), so
      approximation_error = amplification × eps_error exactly;
    * ``mean_guess_error`` E‖a⁰ − mean(a⁰)‖², the error of answering the data's mean for every action
      (the same in every row): an approximation worse than that has forgotten a⁰.
    Columns also ``step`` and ``alpha_bar``.

    Lives in ``dac4rec_lite.experiments.analysis``; ``dl.viz.approximation_errors`` is the same function, kept for the notebooks."""
    s = _tensor(states, policy.device)
    rows = []
    with torch.no_grad():
        for i in range(1, policy.n_steps + 1):
            a0, noise, noisy, approx = approximation_pairs(policy, states, actions, i, seed)
            steps = torch.full((len(a0),), i, dtype=torch.long, device=policy.device)
            eps = policy.eps_model(s, noisy.to(policy.device), steps).cpu()
            mean_guess = float(((a0 - a0.mean(dim=0)) ** 2).sum(dim=1).mean())
            alpha_bar = float(policy.schedule.alphas_cumprod[i - 1])
            rows.append({
                "step": i, "alpha_bar": alpha_bar,
                "approximation_error": float(((approx - a0) ** 2).sum(dim=1).mean()),
                "eps_error": float(((eps - noise) ** 2).sum(dim=1).mean()),
                "amplification": (1 - alpha_bar) / alpha_bar,
                "mean_guess_error": mean_guess,
            })
    return pd.DataFrame(rows)


# --- score fields ----------------------------------------------------------------------------------------------

def score_field(policy: DiffusionPolicy, state: object, step: int, resolution: int = 15,
                bound: float = 1.5) -> pd.DataFrame:
    """The learned score of the noised behaviour μ_i at every action of the grid (``grid_points``), for one
    state: ε_θ(s, a, i) and ∇ log μ_i(a) = −ε_θ / √(1 − ᾱ_i) (Eq. 1/13: a^i = √ᾱ_i a⁰ + √(1 − ᾱ_i) ε, whose
    score is −E[ε | a^i] / √(1 − ᾱ_i)). One row per grid point with ``a1, a2, eps1, eps2, score1, score2``;
    ``attrs`` hold ``step`` and ``alpha_bar``."""
    step = _step(step, policy.n_steps)
    _, points = grid_points(resolution, bound)
    actions = _tensor(points, policy.device)
    alpha_bar = float(policy.schedule.alphas_cumprod[step - 1])
    steps = torch.full((len(points),), step, dtype=torch.long, device=policy.device)
    with torch.no_grad():
        states = _one_state(state, policy.device).expand(len(points), -1)
        eps = policy.eps_model(states, actions, steps).cpu().double().numpy()
    score = -eps / np.sqrt(1 - alpha_bar)
    table = pd.DataFrame({"a1": points[:, 0], "a2": points[:, 1], "eps1": eps[:, 0], "eps2": eps[:, 1],
                          "score1": score[:, 0], "score2": score[:, 1]})
    table.attrs.update(step=step, alpha_bar=alpha_bar)
    return table


def guided_score_field(policy: DiffusionPolicy, energy: Callable, state: object, step: int, scale: float = 1.0,
                       resolution: int = 15, bound: float = 1.5) -> pd.DataFrame:
    """The three terms of energy-guided sampling (Eq. 24) at every action of the grid, for one state:
    ``prior`` ∇ log μ_i = −ε_θ / √(1 − ᾱ_i) (``score_field``), ``energy`` scale·∇_a f(s, a, i) (what
    ``EnergyGuidance(energy, scale)`` adds to the score) and ``guided`` ∇ log π_i = prior + energy, the score
    the sampler follows (ε̃ = ε_θ − √(1 − ᾱ_i)·scale·∇f). One row per grid point with ``a1, a2, f`` and
    ``prior1, prior2, energy1, energy2, guided1, guided2``; ``attrs`` hold ``step``, ``alpha_bar``, ``scale``."""
    prior = score_field(policy, state, step, resolution, bound)
    actions = _tensor(prior[["a1", "a2"]].to_numpy(), policy.device)
    states = _one_state(state, policy.device).expand(len(actions), -1)
    steps = torch.full((len(actions),), prior.attrs["step"], dtype=torch.long, device=policy.device)
    push = EnergyGuidance(energy, scale)(states, actions, steps).detach().cpu().double().numpy()
    with torch.no_grad():
        f = energy(states, actions, steps).reshape(-1).cpu().double().numpy()
    table = pd.DataFrame({"a1": prior["a1"], "a2": prior["a2"], "f": f,
                          "prior1": prior["score1"], "prior2": prior["score2"],
                          "energy1": push[:, 0], "energy2": push[:, 1],
                          "guided1": prior["score1"] + push[:, 0], "guided2": prior["score2"] + push[:, 1]})
    table.attrs.update(prior.attrs, scale=float(scale))
    return table


# --- training as a film ----------------------------------------------------------------------------------------

def training_snapshots(agents: Mapping[str, object], dataset, updates: Sequence[int], observation: object,
                       n: int = 200, seed: int = 0, batch_size: int = 256) -> pd.DataFrame:
    """The policy's samples as training goes on: for each agent, ``agent.fit`` up to each update count in
    ``updates`` (increasing; 0 = before training) and, at each, ``n`` actions of ``agent.act`` for copies of
    ``observation``, always drawn with ``torch.Generator().manual_seed(seed)`` (so a point moves only because
    the policy changed). The agents are trained in place. Returns one row per action with ``run, update,
    sample, a1, a2``."""
    counts = [int(u) for u in updates]
    if not counts or any(b <= a for a, b in zip(counts, counts[1:])) or counts[0] < 0:
        raise ValueError(f"updates must be a non-empty increasing sequence of counts >= 0, got {list(updates)}.")
    obs = np.repeat(np.asarray(_numpy(observation), dtype=np.float32).reshape(1, -1), n, axis=0)
    frames = []
    for name, agent in agents.items():
        done = 0
        for count in counts:
            if count > done:
                agent.fit(dataset, count - done, batch_size=batch_size, progress=False)
                done = count
            actions = _numpy(agent.act(obs, generator=_seeded(agent.device, seed)))
            frames.append(pd.DataFrame({"run": name, "update": count, "sample": np.arange(n),
                                        "a1": actions[:, 0], "a2": actions[:, 1]}))
    return pd.concat(frames, ignore_index=True)
