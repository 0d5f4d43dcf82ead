"""Why does energy guidance shorten sessions on RecSim-v0? Measurements, not guesses.

The energy study (``studies.energy``) found that guiding DAC4Rec's sampler with ``ω · ∇_a f_ψ`` (Eq. 24)
lowers R_cumu at every scale ω > 0, mostly through Length (users leave sooner), while on the contextual
bandit of notebook 05 the same guidance finds the best blob. Guidance can only be as good as the two
things it trusts, so ``diagnose_guidance`` trains DAC4Rec exactly as the energy study does (the study's
``collect_mixture`` → ``build_agent`` → ``fit``, with f_ψ trained by CEP on K supports scored by the critic,
Sec. 3.3, Eq. 21–25) and then, on the energy study's evaluation users (seed ``10_000 + seed``), measures at
every scale ω:

1. **the critic's belief** — Q(s, a) = min(Q₁, Q₂) of the action played, and of the *coupled unguided*
   action: the action the sampler would have drawn at the same state from the same noise with ω = 0. Their
   difference (``q_gain``) says whether guidance does what Eq. 24 promises (raise Q) at a fixed state; the
   realised discounted return-to-go G_t of the rollout says whether the critic is right about it
   (``q_overestimate`` = Q − G_t). A page depends only on the action's *direction*, so ``q_gain_direction``
   keeps the part of the gain that survives rescaling the guided action to the unguided one's length; the
   rest the critic credits to the action's length (``action_norm``), which the simulator ignores.
2. **f_ψ's quality** (per seed, independent of ω) — on held-out states (a fresh behaviour log) it draws K
   supports from μ_θ as ``train_energy`` does, standardises their Q (``energy.standardize_q``) and asks
   whether f_ψ ranks them as the critic does: the mean within-state Spearman correlation of f_ψ(s, a_i^k, i)
   with the standardised Q at i = 1, ⌈N/2⌉ and N, the share of states whose best support by f_ψ is the
   best by Q (chance: 1/K), and the cosine between ∇_a f_ψ(s, a, 1) and ∇_a Q(s, a): is the guidance
   direction the critic's ascent direction?
3. **what the simulator does with guided pages** (``envs/recsim.py``, symbols of docs/notation.md): fatigue
   b ← m_b b + max(0, cos(v̄_page, v̄_recent) − ζ_b) grows when a page looks like the recent ones, lowers every
   click probability σ(ξ(w_p p·v_j + w_h h·v_j − ζ) − ξ_b b) and raises the leave probability
   σ(χ_0 + χ_b b − χ_c c̄); so per page it records cos(v̄_page, v̄_recent) (``page_repeat``), the fatigue it
   adds (``fatigue_increment``), b and c̄ before the page, the page's expected click rate (the simulator's
   own click probabilities), the item diversity within the page (1 − mean pairwise cosine of its items) and
   where the action points: its cosine with the user's long-term preference p and short-term interest h
   (hidden from the agent).
4. **distance from the data** — the Euclidean distance from the played action to its nearest logged action
   (0 for a logged action), the share of actions farther than the 95th percentile of the logged actions'
   own nearest-neighbour distances (``outside_support``), and the cosine distance to the nearest logged
   direction (a page depends only on the action's direction).

The rollout is ``evaluation.rollout`` itself (the agent wrapped as a scripted policy that records what it
sees), with the agent's generator seeded as ``evaluate`` seeds it, so R_cumu at each ω is the energy
study's number for the same preset and seed. Every per-page quantity is also kept for the first page alone
(``*_page1``): there every scale sees the *same* states, so the comparison has no survivor bias.
"""
from __future__ import annotations

import math
import os
from typing import Sequence

import gymnasium as gym
import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..energy import support_actions, standardize_q
from ..evaluation import collect_mixture, episode_metrics, rollout
from ..io import atomic_write
from ..presets import resolve_preset
from .methods import BEHAVIOUR_LOGS, STUDY_SETTINGS, batch_size_for, build_agent
from .paired import Interval, mean_interval, paired_contrast
from .results import results_folders

__all__ = ["DIAGNOSIS_SCALES", "DIAGNOSIS_METRICS", "ENERGY_QUALITY_METRICS", "train_study_agent",
           "critic_q", "page_diversity", "data_distance", "support_radius", "measure_scale",
           "energy_quality", "diagnose_seed", "diagnose_guidance", "summarise_diagnosis", "save_diagnosis",
           "load_or_diagnose", "diagnosis_interval"]

DIAGNOSIS_SCALES = (0.0, 0.5, 1.0, 2.0, 4.0)
METHOD = "DAC4Rec"
EVAL_SEED_OFFSET = 10_000     # the energy study's evaluation users (methods.execute_run)
HELDOUT_SEED_OFFSET = 20_000  # a fresh behaviour log for f_ψ's held-out states
_BATCH = 1000                 # evaluate's batch of users
_EXACT = "donot_use_mm_for_euclid_dist"  # cdist's matmul shortcut leaves ~1e-8 where the distance is 0

# per-(seed, scale) metrics: rollout metrics, then per-page means (all pages; and *_page1, the first page)
_PAGE_METRICS = ("q", "q_unguided", "q_gain", "q_gain_direction", "energy", "energy_gain", "data_distance",
                 "data_distance_unguided",
                 "outside_support", "data_cosine_distance", "action_norm", "action_vs_preference",
                 "action_vs_interest", "diversity", "expected_ctr")
_LATER_PAGE_METRICS = ("page_repeat", "fatigue_increment", "fatigue", "satisfaction", "interest_vs_preference",
                       "return_to_go", "q_overestimate")
DIAGNOSIS_METRICS = ("R_cumu", "Length", "CTR", *_PAGE_METRICS, *_LATER_PAGE_METRICS,
                     *(f"{m}_page1" for m in _PAGE_METRICS))
ENERGY_QUALITY_METRICS = ("f_rank_corr_i1", "f_rank_corr_mid", "f_rank_corr_N", "f_top1_agreement", "top1_chance",
                          "grad_cosine", "q_scale")


# ----- training: the energy study's run, keeping the agent -------------------------------------------------
def train_study_agent(preset: str, seed: int, log: str = "mixture", device: str = "cpu", progress: bool = False):
    """The energy study's DAC4Rec for (``preset``, ``seed``, behaviour ``log``), trained as
    ``methods.execute_run`` trains an ``EnergyRun`` (same log, same builder, same batch size, f_ψ included).
    Returns (env, dataset, agent)."""
    if log not in BEHAVIOUR_LOGS:
        raise ValueError(f"unknown behaviour log {log!r}; choose among {', '.join(BEHAVIOUR_LOGS)}.")
    settings = STUDY_SETTINGS[preset]
    env = gym.make("dac4rec_lite/RecSim-v0")
    dataset = collect_mixture(env, settings["n_episodes"], seed=seed, components=BEHAVIOUR_LOGS[log], progress=False)
    agent = build_agent(METHOD, dataset.obs_dim, dataset.action_dim, preset, seed, None, env.unwrapped.obs_layout,
                        device=device)
    agent.fit(dataset, settings["train_steps"], batch_size=batch_size_for(METHOD, preset), progress=progress)
    return env, dataset, agent


# ----- the measures ----------------------------------------------------------------------------------------
@torch.no_grad()
def critic_q(agent, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """The critic's Q(s, a) = min(Q₁, Q₂) (what Eq. 21 ranks by and f_ψ's supports are scored with), (B,)."""
    x = torch.as_tensor(obs, dtype=torch.float32, device=agent.device)
    a = torch.as_tensor(actions, dtype=torch.float32, device=agent.device)
    return agent.critic.q_min(agent.encoder(x), a).reshape(-1).double().cpu().numpy()


@torch.no_grad()
def _energy_at(agent, obs: np.ndarray, actions: np.ndarray, step: int = 1) -> np.ndarray:
    """f_ψ(s, a, i) at diffusion step ``i`` (default 1: the clean end of the chain), (B,)."""
    x = torch.as_tensor(obs, dtype=torch.float32, device=agent.device)
    a = torch.as_tensor(actions, dtype=torch.float32, device=agent.device)
    state = agent.encoders.policy_state(x)
    return agent.energy_model(state, a, step).reshape(-1).double().cpu().numpy()


def page_diversity(item_features: np.ndarray, pages: np.ndarray) -> np.ndarray:
    """Item variety within each page: 1 − the mean cosine between distinct positions of the page, (B,).
    0 for a page of identical items; about 1 for items in unrelated directions. ``item_features`` (n, d),
    ``pages`` (B, k) item ids, k ≥ 2."""
    pages = np.asarray(pages)
    if pages.ndim != 2 or pages.shape[1] < 2:
        raise ValueError(f"pages must be (B, k) item ids with k >= 2, got shape {pages.shape}.")
    v = item_features[pages]
    v = v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)
    k = pages.shape[1]
    gram = np.einsum("bkd,bjd->bkj", v, v)
    mean_off_diagonal = (gram.sum(axis=(1, 2)) - np.trace(gram, axis1=1, axis2=2)) / (k * (k - 1))
    return 1.0 - mean_off_diagonal


def data_distance(actions: np.ndarray, data_actions: np.ndarray, block: int = 2048) -> np.ndarray:
    """Euclidean distance from each action (B, d) to its nearest logged action (n, d), (B,); 0 for an action
    that is in the log."""
    a = torch.as_tensor(np.asarray(actions, dtype=np.float64))
    data = torch.as_tensor(np.asarray(data_actions, dtype=np.float64))
    if a.dim() != 2 or data.dim() != 2 or a.shape[1] != data.shape[1] or data.shape[0] == 0:
        raise ValueError(f"actions (B, d) and data_actions (n >= 1, d) must share d; got {tuple(a.shape)} and "
                         f"{tuple(data.shape)}.")
    out = [torch.cdist(a[start:start + block], data, compute_mode=_EXACT).min(dim=1).values
           for start in range(0, a.shape[0], block)]
    return torch.cat(out).numpy() if out else np.zeros(0)


def _cosine_distance(actions: np.ndarray, data_actions: np.ndarray) -> np.ndarray:
    """1 − the largest cosine between each action and a logged action: distance in direction, (B,)."""
    unit = lambda x: x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)  # noqa: E731
    cosines = unit(np.asarray(actions, dtype=np.float64)) @ unit(np.asarray(data_actions, dtype=np.float64)).T
    return 1.0 - cosines.max(axis=1)


def support_radius(data_actions: np.ndarray, quantile: float = 0.95, block: int = 2048) -> float:
    """The ``quantile`` of the logged actions' distances to their nearest *other* logged action: an action
    farther than this from every logged action is outside the data's support."""
    data = torch.as_tensor(np.asarray(data_actions, dtype=np.float64))
    if data.shape[0] < 2:
        raise ValueError("support_radius needs at least two logged actions.")
    nearest = []
    for start in range(0, data.shape[0], block):
        d = torch.cdist(data[start:start + block], data, compute_mode=_EXACT)
        rows = torch.arange(d.shape[0])
        d[rows, start + rows] = math.inf
        nearest.append(d.min(dim=1).values)
    return float(torch.quantile(torch.cat(nearest), quantile))


def act_at_scale(agent, obs: np.ndarray, scale: float, generator: torch.Generator) -> np.ndarray:
    """``agent.act(obs)`` with Eq. 24's guidance scale ω = ``scale`` for this call only (0: the unguided policy),
    as float64; the agent's own ``energy_scale`` is restored afterwards."""
    saved = agent.config.energy_scale
    agent.config.energy_scale = scale
    try:
        return np.asarray(agent.act(obs, generator=generator), dtype=np.float64)
    finally:
        agent.config.energy_scale = saved


class _Recorder:
    """The agent as a scripted policy ``(obs, users, rng) → actions`` that records, per page, what the agent
    played, what it would have played unguided from the same noise, and the user state it played into.
    Its generator is seeded as ``evaluation._as_policy`` seeds an agent's, so the rollout is ``evaluate``'s."""

    def __init__(self, agent, simulator, scale: float, seed: int) -> None:
        self.agent, self.simulator, self.scale = agent, simulator, float(scale)
        self.generator = torch.Generator(device=agent.device).manual_seed(seed)
        self.records: list[dict[str, np.ndarray]] = []

    def __call__(self, obs: np.ndarray, users, rng: np.random.Generator) -> np.ndarray:
        noise_state = self.generator.get_state()
        actions = act_at_scale(self.agent, obs, self.scale, self.generator)
        if self.scale > 0:  # the same draw of noise, unguided (scale 0 skips guidance: Eq. 24 off)
            twin = torch.Generator(device=self.agent.device)
            twin.set_state(noise_state)
            unguided = act_at_scale(self.agent, obs, 0.0, twin)
        else:
            unguided = actions.copy()
        steps = np.unique(users.pages)
        if len(steps) != 1:
            raise RuntimeError("the rollout stepped users out of lockstep; the diagnosis cannot place its rows.")
        sim, c = self.simulator, self.simulator.config
        items = sim.page(sim.check_actions(actions, len(obs)))
        centroid = sim.item_features[items].mean(axis=1)
        unit = lambda x: x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)  # noqa: E731
        repeat = np.einsum("bd,bd->b", unit(centroid), unit(users.recent_centroid))
        seen = users.pages > 0
        self.records.append({
            "step": users.pages.copy(), "observations": obs.copy(), "actions": actions, "unguided": unguided,
            "page_repeat": np.where(seen, repeat, np.nan),
            "fatigue_increment": np.where(seen, np.maximum(repeat - c.fatigue_threshold, 0.0), np.nan),
            "fatigue": users.fatigue.copy(), "satisfaction": users.satisfaction.copy(),
            "interest_vs_preference": np.einsum("bd,bd->b", users.interest, users.preference),
            "action_vs_preference": np.einsum("bd,bd->b", unit(actions), users.preference),
            "action_vs_interest": np.einsum("bd,bd->b", unit(actions), users.interest),
            "diversity": page_diversity(sim.item_features, items),
            "expected_ctr": sim.click_probabilities(users, items).mean(axis=1),
        })
        return actions


def _episode_ids(steps: Sequence[np.ndarray], lengths: np.ndarray, batch_size: int) -> np.ndarray:
    """The episode of every recorded row. ``rollout`` steps a batch of users in lockstep and keeps, in
    episode order, those still active: at step t of a batch the rows are its episodes longer than t."""
    ids, batch = [], -1
    for step in steps:
        t = int(step[0])
        if t == 0:
            batch += 1
        block = np.arange(batch * batch_size, min((batch + 1) * batch_size, len(lengths)))
        active = block[lengths[block] > t]
        if len(active) != len(step):
            raise RuntimeError("the recorded pages do not match the rollout's episodes; the diagnosis cannot place "
                               "its rows.")
        ids.append(active)
    return np.concatenate(ids)


def _return_to_go(frame: pd.DataFrame, gamma: float) -> np.ndarray:
    """G_t = Σ_k γ^k r_{t+k} within each episode (rows sorted by episode, step)."""
    out = np.zeros(len(frame))
    rewards, episodes = frame["reward"].to_numpy(), frame["episode"].to_numpy()
    running, previous = 0.0, None
    for row in range(len(frame) - 1, -1, -1):
        if episodes[row] != previous:
            running, previous = 0.0, episodes[row]
        running = rewards[row] + gamma * running
        out[row] = running
    return out


def measure_scale(env: gym.Env, agent, data_actions: np.ndarray, scale: float, n_episodes: int, seed: int,
                  radius: float | None = None) -> tuple[dict[str, float], pd.DataFrame]:
    """Roll ``agent`` out at guidance scale ``scale`` on ``n_episodes`` users drawn with ``seed`` (the
    ``evaluate`` protocol) and measure every page (see the module docstring). Returns (the run's means: the
    rollout's R_cumu, Length, CTR and the per-page means, all pages and ``*_page1``; the per-page frame, one
    row per page with ``episode``, ``step``, ``reward`` and the measures). The frame's ``attrs`` hold the
    ``observations``, ``actions`` and ``unguided`` arrays in its row order."""
    if not (isinstance(scale, (int, float)) and not isinstance(scale, bool) and math.isfinite(scale) and scale >= 0):
        raise ValueError(f"scale must be a finite number >= 0 (0 = unguided), got {scale!r}.")
    if radius is None:
        radius = support_radius(data_actions)
    recorder = _Recorder(agent, env.unwrapped.simulator, scale, seed)
    result = rollout(env, recorder, n_episodes, seed, batch_size=_BATCH, progress=False)
    episodes = result["episodes"]
    rec = {key: np.concatenate([r[key] for r in recorder.records]) for key in recorder.records[0]}
    observations, actions, unguided = rec.pop("observations"), rec.pop("actions"), rec.pop("unguided")
    frame = pd.DataFrame({"episode": _episode_ids([r["step"] for r in recorder.records],
                                                  episodes["length"].to_numpy(), _BATCH), **rec})
    frame["q"] = critic_q(agent, observations, actions)
    frame["q_unguided"] = critic_q(agent, observations, unguided)
    frame["q_gain"] = frame["q"] - frame["q_unguided"]
    # a page depends only on the action's direction: the gain the critic still sees once the guided action is
    # rescaled to the unguided one's length is the part the simulator can act on
    norms = np.linalg.norm(actions, axis=1, keepdims=True), np.linalg.norm(unguided, axis=1, keepdims=True)
    rescaled = actions * norms[1] / np.maximum(norms[0], 1e-12)
    frame["q_gain_direction"] = critic_q(agent, observations, rescaled) - frame["q_unguided"]
    frame["energy"] = _energy_at(agent, observations, actions)
    frame["energy_gain"] = frame["energy"] - _energy_at(agent, observations, unguided)
    frame["data_distance"] = data_distance(actions, data_actions)
    frame["data_distance_unguided"] = data_distance(unguided, data_actions)
    frame["outside_support"] = (frame["data_distance"] > radius).astype(float)
    frame["data_cosine_distance"] = _cosine_distance(actions, data_actions)
    frame["action_norm"] = np.linalg.norm(actions, axis=1)
    order = np.lexsort((frame["step"].to_numpy(), frame["episode"].to_numpy()))
    frame, observations, actions, unguided = (frame.iloc[order].reset_index(drop=True), observations[order],
                                              actions[order], unguided[order])
    rewards = result["steps"].set_index(["episode", "step"])["reward"]
    frame["reward"] = rewards.loc[list(zip(frame["episode"], frame["step"]))].to_numpy()
    frame["return_to_go"] = _return_to_go(frame, agent.config.gamma)
    frame["q_overestimate"] = frame["q"] - frame["return_to_go"]
    frame.attrs = {"observations": observations, "actions": actions, "unguided": unguided}
    metrics = episode_metrics(episodes)
    row: dict[str, float] = {m: float(metrics[m]) for m in ("R_cumu", "Length", "CTR")}
    row.update({m: float(frame[m].mean()) for m in (*_PAGE_METRICS, *_LATER_PAGE_METRICS)})
    first = frame[frame["step"] == 0]
    row.update({f"{m}_page1": float(first[m].mean()) for m in _PAGE_METRICS})
    return row, frame


def spearman_rows(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Spearman correlation of each row of x with the same row of y, (S,) (ties broken by order)."""
    rank = lambda v: v.argsort(dim=1).argsort(dim=1).double()  # noqa: E731
    rx, ry = rank(x), rank(y)
    rx, ry = rx - rx.mean(dim=1, keepdim=True), ry - ry.mean(dim=1, keepdim=True)
    return (rx * ry).sum(dim=1) / (rx.pow(2).sum(dim=1) * ry.pow(2).sum(dim=1)).sqrt().clamp(min=1e-12)


def energy_quality(agent, observations: np.ndarray, seed: int = 0, n_states: int = 512) -> dict[str, float]:
    """Does f_ψ learn what CEP asks of it (Eq. 21–23)? On ``observations`` (held-out states) draw K supports
    from μ_θ and score them by the critic, as ``train_energy`` does (``support_actions``, then
    ``standardize_q``), and compare f_ψ with the standardised Q within each state: the mean Spearman
    correlation at i = 1, ⌈N/2⌉ and N (supports noised to step i as in training), the share of states where
    f_ψ's best support at i = 1 is Q's best (``f_top1_agreement``; ``top1_chance`` = 1/K), and the mean
    cosine between ∇_a f_ψ(s, a, 1) and ∇_a Q(s, a) at the supports (``grad_cosine``: 1 if the guidance
    direction is the critic's ascent direction). ``q_scale`` is σ of ``standardize_q``. f_ψ is the
    intermediate energy ℰ_i itself (higher is better: the sampler adds +ω ∇ₐf_ψ, Eq. 24), so a learned f_ψ
    correlates *positively* with Q."""
    cfg = agent.config
    generator = torch.Generator(device=agent.device).manual_seed(seed)
    x = torch.as_tensor(observations[:n_states], dtype=torch.float32, device=agent.device)
    with torch.no_grad():
        critic_state = agent.encoder(x)
        policy_state = agent.encoders.policy_state(x, critic_state)
    supports, q = support_actions(agent.policy, agent.critic, policy_state, cfg.n_support, generator,
                                  critic_states=critic_state)
    q_std, sigma = standardize_q(q)
    s, k, d = supports.shape
    rows = policy_state.repeat_interleave(k, dim=0)
    flat = supports.reshape(s * k, d)
    row: dict[str, float] = {}
    schedule = agent.policy.schedule
    for name, step in (("i1", 1), ("mid", math.ceil(schedule.n_steps / 2)), ("N", schedule.n_steps)):
        steps = torch.full((s * k,), step, dtype=torch.long, device=agent.device)
        noise = torch.randn(flat.shape, generator=generator, device=agent.device)
        with torch.no_grad():
            noisy = schedule.q_sample(flat, steps, noise) if step > 1 else flat
            f = agent.energy_model(rows, noisy, steps).reshape(s, k)
        row[f"f_rank_corr_{name}"] = float(spearman_rows(f, q_std).mean())
        if step == 1:
            row["f_top1_agreement"] = float((f.argmax(dim=1) == q_std.argmax(dim=1)).double().mean())
    row["top1_chance"] = 1.0 / k
    a = flat.detach().clone().requires_grad_(True)
    grad_f = torch.autograd.grad(agent.energy_model(rows, a, 1).sum(), a)[0]
    a = flat.detach().clone().requires_grad_(True)
    grad_q = torch.autograd.grad(agent.critic.q_min(critic_state.repeat_interleave(k, dim=0), a).sum(), a)[0]
    row["grad_cosine"] = float(torch.nn.functional.cosine_similarity(grad_f, grad_q, dim=1).mean())
    row["q_scale"] = float(sigma)
    return row


# ----- one seed, many seeds ---------------------------------------------------------------------------------
def diagnose_seed(preset: str, seed: int, scales: Sequence[float] = DIAGNOSIS_SCALES, log: str = "mixture",
                  device: str = "cpu") -> tuple[pd.DataFrame, dict[float, pd.DataFrame]]:
    """Train one energy-study DAC4Rec and measure it at every scale (``measure_scale``) plus f_ψ's quality
    on a held-out log (``energy_quality``). Returns (one row per scale, the per-page frames by scale)."""
    settings = STUDY_SETTINGS[preset]
    env, dataset, agent = train_study_agent(preset, seed, log, device)
    data_actions = dataset.to_dict()["actions"]
    radius = support_radius(data_actions)
    heldout = collect_mixture(env, max(10, settings["eval_episodes"] // 5), seed=HELDOUT_SEED_OFFSET + seed,
                              components=BEHAVIOUR_LOGS[log], progress=False)
    quality = energy_quality(agent, heldout.to_dict()["observations"], seed=seed)
    rows, pages = [], {}
    for scale in scales:
        row, frame = measure_scale(env, agent, data_actions, float(scale), settings["eval_episodes"],
                                   EVAL_SEED_OFFSET + seed, radius)
        rows.append({"log": log, "method": METHOD, "seed": seed, "scale": float(scale), **row, **quality})
        pages[float(scale)] = frame
    return pd.DataFrame(rows), pages


def _check_scales(scales: Sequence[float]) -> tuple[float, ...]:
    scales = tuple(float(s) for s in scales)
    if 0.0 not in scales or any(not (math.isfinite(s) and s >= 0) for s in scales):
        raise ValueError(f"scales must be finite, >= 0 and include 0 (the unguided baseline), got {scales}.")
    return scales


def summarise_diagnosis(runs: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """One row per (metric, scale): the mean over seeds with its ``level`` t-interval (``mean``,
    ``mean_low``, ``mean_high``) and the paired difference against ω = 0 over seeds (``diff``, ``diff_low``,
    ``diff_high``, ``verdict`` for "guidance raises it"; ``experiments.paired``). f_ψ's quality does not
    depend on ω: its metrics have one row each, with ``scale`` NaN and no difference."""
    rows = []
    for metric in DIAGNOSIS_METRICS:
        for scale, part in runs.groupby("scale", sort=True):
            mean = mean_interval(part[metric].dropna().to_numpy(), level)
            diff = paired_contrast(runs, [({"scale": scale}, 1.0), ({"scale": 0.0}, -1.0)], metric, level=level)
            rows.append({"metric": metric, "scale": float(scale), "n_seeds": mean.n, "mean": mean.estimate,
                         "mean_low": mean.low, "mean_high": mean.high, "diff": diff.estimate, "diff_low": diff.low,
                         "diff_high": diff.high, "verdict": "baseline" if scale == 0 else diff.verdict})
    per_seed = runs.drop_duplicates("seed")
    for metric in ENERGY_QUALITY_METRICS:
        mean = mean_interval(per_seed[metric].dropna().to_numpy(), level)
        rows.append({"metric": metric, "scale": math.nan, "n_seeds": mean.n, "mean": mean.estimate,
                     "mean_low": mean.low, "mean_high": mean.high, "diff": math.nan, "diff_low": math.nan,
                     "diff_high": math.nan, "verdict": "per seed"})
    return pd.DataFrame(rows)


def diagnose_guidance(preset: str = "quick", seeds: Sequence[int] = (0, 1, 2, 3, 4),
                      scales: Sequence[float] = DIAGNOSIS_SCALES, log: str = "mixture", progress: bool = True,
                      device: str = "cpu") -> pd.DataFrame:
    """Why does guidance lower the return here? For each seed, train DAC4Rec as the energy study does and
    measure the critic's Q, f_ψ's quality, the simulator's fatigue drivers and the distance from the data at
    every guidance scale ω (see the module docstring). Returns ``summarise_diagnosis`` of the runs, with the
    runs (one row per seed × scale) in ``attrs["runs"]``. Same seed → same numbers."""
    preset = resolve_preset(preset)
    scales = _check_scales(scales)
    seeds = tuple(seeds)
    if not seeds:
        raise ValueError("diagnose_guidance needs at least one seed.")
    parts = []
    for seed in tqdm(seeds, desc="diagnosis (seeds)", disable=not progress):
        parts.append(diagnose_seed(preset, int(seed), scales, log, device)[0])
    runs = pd.concat(parts, ignore_index=True)
    summary = summarise_diagnosis(runs)
    summary.attrs["runs"] = runs
    return summary


def save_diagnosis(summary: pd.DataFrame, folder: str | os.PathLike = "results/quick") -> None:
    """Write ``energy_diagnosis.csv`` (the summary) and ``energy_diagnosis_runs.csv`` (its ``attrs["runs"]``)
    into ``folder``, atomically."""
    if "runs" not in summary.attrs:
        raise ValueError("summary has no attrs['runs']; pass what diagnose_guidance returned.")
    os.makedirs(folder, exist_ok=True)
    atomic_write(os.path.join(folder, "energy_diagnosis.csv"), lambda f: summary.to_csv(f, index=False), mode="w")
    atomic_write(os.path.join(folder, "energy_diagnosis_runs.csv"),
                 lambda f: summary.attrs["runs"].to_csv(f, index=False), mode="w")


def load_or_diagnose(preset: str = "quick", rerun: bool = False, seeds: Sequence[int] | None = None,
                     progress: bool = True, fallback: str | None = None) -> pd.DataFrame:
    """The saved diagnosis (``results/<preset>/energy_diagnosis.csv`` with its ``_runs.csv``, found as
    ``results.load_saved`` finds a study's) or, when there is none or ``rerun``, a fresh ``diagnose_guidance``
    at ``preset`` over ``seeds`` (default: the preset's study seeds). ``fallback`` (a preset): when nothing is
    saved at ``preset``, the diagnosis saved at ``fallback`` is loaded instead of run (as ``results.load_or_run``
    does). ``attrs["source"]`` says which; ``attrs["preset"]`` is the preset whose sizes made the numbers."""
    preset = resolve_preset(preset)
    if fallback is not None and fallback not in STUDY_SETTINGS:
        raise ValueError(f"fallback must be a preset ({', '.join(STUDY_SETTINGS)}) or None; got {fallback!r}.")
    if not rerun:
        for where in dict.fromkeys((preset, fallback or preset)):
            for base in results_folders(where):
                path, runs_path = (os.path.join(base, f"energy_diagnosis{tail}.csv") for tail in ("", "_runs"))
                if os.path.isfile(path) and os.path.isfile(runs_path):
                    summary = pd.read_csv(path)
                    note = "" if where == preset else f" (nothing saved at {preset}: the {where} preset's diagnosis)"
                    summary.attrs = {"runs": pd.read_csv(runs_path), "source": path + note, "preset": where}
                    return summary
    summary = diagnose_guidance(preset, seeds or STUDY_SETTINGS[preset]["seeds"], progress=progress)
    summary.attrs.update(source=f"ran at preset {preset}", preset=preset)
    return summary


def diagnosis_interval(summary: pd.DataFrame, metric: str, scale: float | None = None, kind: str = "diff") -> Interval:
    """One cell of ``summarise_diagnosis``'s table as an ``Interval`` (prints as ``+1.2 [+0.3, +2.1] (5 seeds)``):
    ``kind="diff"``, the paired difference against ω = 0 at ``scale``; ``kind="mean"``, the mean over seeds
    at ``scale`` (``scale=None`` for f_ψ's per-seed metrics)."""
    if kind not in ("diff", "mean"):
        raise ValueError(f"kind must be 'diff' or 'mean', got {kind!r}.")
    rows = summary[summary["metric"] == metric]
    rows = rows[rows["scale"].isna()] if scale is None else rows[np.isclose(rows["scale"], float(scale))]
    if len(rows) != 1:
        have = sorted(summary.loc[summary["metric"] == metric, "scale"].unique())
        raise ValueError(f"the diagnosis has no single row for metric {metric!r} at scale {scale}; "
                         f"its scales for that metric are {have}.")
    row = rows.iloc[0]
    prefix = "diff" if kind == "diff" else "mean"
    return Interval(float(row[prefix]), float(row[f"{prefix}_low"]), float(row[f"{prefix}_high"]), int(row["n_seeds"]))
