"""Roll policies out in an environment: collect offline datasets and evaluate agents.

Two kinds of policy are accepted everywhere:

* a learned agent (anything with ``act(obs, generator=...)`` taking a (B, obs_dim) numpy batch), which
  sees only observations;
* a scripted policy from :mod:`dac4rec_lite.envs.policies`, called as ``policy(obs, users, rng)``, which may
  also read the simulator's hidden user state (the "privileged" experts).

An agent with per-episode memory (``DecisionTransformer``) also has ``begin_episodes(n)`` and
``observe_rewards(rewards, done)``: rollouts call the first before an episode batch's first page and the
second after every page, with the rewards and done flags of the rows that just acted (in ``act``'s order).

On RecSim-v0 (any env whose ``unwrapped`` has a batched ``simulator``) all episodes run side by side in
numpy batches, which evaluates thousands of users in seconds. Other gymnasium environments are stepped one
episode at a time; they must report ``info["clicks"]`` (and optionally ``info["ctr"]``) for CTR.

Metrics (as EasyRL4Rec computes them, paper Sec. 4.1):

* ``R_cumu`` — mean return per trajectory;
* ``R_avg`` — total reward / total steps (a pooled ratio, not a mean of per-episode ratios);
* ``Length`` — mean number of steps (pages) per trajectory;
* ``CTR`` — total clicks / (page_size · total steps), pooled.
"""
from __future__ import annotations

from typing import Any, Callable

import gymnasium as gym
import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .data.dataset import OfflineDataset

__all__ = ["collect", "collect_mixture", "evaluate", "trace_episode", "rollout", "summarise_episodes", "first_pages_ctr", "ctr_by_length", "LENGTH_BUCKETS"]

LENGTH_BUCKETS = ((11, 20), (21, 30), (31, None))  # the paper's Table 3 interaction-length buckets

ScriptedPolicy = Callable[[np.ndarray, Any, np.random.Generator], np.ndarray]


def _as_policy(policy: Any, seed: int) -> ScriptedPolicy:
    """One calling convention for agents and scripted policies: ``(obs, users, rng) -> actions``."""
    if hasattr(policy, "act"):
        generator = torch.Generator(device=getattr(policy, "device", "cpu")).manual_seed(seed)

        def agent_policy(obs: np.ndarray, users: Any, rng: np.random.Generator) -> np.ndarray:
            return np.asarray(policy.act(obs, generator=generator), dtype=np.float64)

        episodic = hasattr(policy, "begin_episodes") and hasattr(policy, "observe_rewards")
        agent_policy.episodic = policy if episodic else None  # told where episodes begin and what each page earned
        return agent_policy
    if callable(policy):
        return policy
    raise TypeError(
        f"policy must be an agent with .act(obs) or a scripted policy callable as policy(obs, users, rng), "
        f"got {type(policy).__name__}."
    )


def _check_episodes(n_episodes: int) -> None:
    if isinstance(n_episodes, bool) or not isinstance(n_episodes, (int, np.integer)) or n_episodes < 1:
        raise ValueError(f"n_episodes must be a positive integer, got {n_episodes!r}.")


def rollout(env: gym.Env, policy: Any, n_episodes: int, seed: int = 0, record: bool = False,
            batch_size: int = 1000, progress: bool = True) -> dict[str, Any]:
    """Run ``n_episodes`` episodes; return ``episodes`` (a DataFrame, one row per episode: ``return``,
    ``length``, ``clicks``, ``terminated``, ``truncated``, ``policy``), ``steps`` (a DataFrame, one row per
    step: ``episode``, ``step``, ``reward``, ``clicks``) and, with ``record=True``, ``transitions`` (a dict of
    arrays in episode order, ready for :class:`OfflineDataset`)."""
    _check_episodes(n_episodes)
    act = _as_policy(policy, seed)
    simulator = getattr(env.unwrapped, "simulator", None)
    name = getattr(policy, "name", type(policy).__name__)
    if simulator is not None:
        result = _batched_rollout(simulator, act, n_episodes, seed, record, batch_size, progress)
    else:
        result = _sequential_rollout(env, act, n_episodes, seed, record, progress)
    result["episodes"].insert(0, "policy", name)
    return result


def _batched_rollout(simulator, act: ScriptedPolicy, n_episodes: int, seed: int, record: bool,
                     batch_size: int, progress: bool) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    page_size = simulator.config.page_size
    episode_rows, step_rows, chunks = [], [], []
    bar = tqdm(total=n_episodes, desc="episodes", disable=not progress, leave=False)
    for first in range(0, n_episodes, batch_size):
        n = min(batch_size, n_episodes - first)
        users = simulator.new_users(n, rng)
        active = np.arange(n)
        episodic = getattr(act, "episodic", None)
        if episodic is not None:
            episodic.begin_episodes(n)
        returns, lengths, clicks = np.zeros(n), np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
        terminated, truncated = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
        while len(active):
            current = users.subset(active)
            obs = simulator.observe(current)
            actions = simulator.check_actions(act(obs, current, rng), len(active))
            out = simulator.step(current, actions, rng)
            for field in vars(current):
                getattr(users, field)[active] = getattr(current, field)
            reward = out["clicks"].astype(np.float64)
            step_rows.append(pd.DataFrame({"episode": first + active, "step": lengths[active], "reward": reward,
                                           "clicks": out["clicks"]}))
            if record:
                chunks.append({"episode": first + active, "step": lengths[active], "observations": obs,
                               "actions": actions.astype(np.float32), "rewards": reward,
                               "next_observations": simulator.observe(current),
                               "terminals": out["left"], "timeouts": out["truncated"]})
            returns[active] += reward
            lengths[active] += 1
            clicks[active] += out["clicks"]
            terminated[active] |= out["left"]
            truncated[active] |= out["truncated"]
            done = out["left"] | out["truncated"]
            if episodic is not None:
                episodic.observe_rewards(reward, done)
            bar.update(int(done.sum()))
            active = active[~done]
        episode_rows.append(pd.DataFrame({"episode": first + np.arange(n), "return": returns, "length": lengths,
                                          "clicks": clicks, "terminated": terminated, "truncated": truncated}))
    bar.close()
    episodes = pd.concat(episode_rows, ignore_index=True)
    episodes["ctr"] = episodes["clicks"] / (page_size * episodes["length"])
    steps = pd.concat(step_rows, ignore_index=True).sort_values(["episode", "step"], kind="stable", ignore_index=True)
    result = {"episodes": episodes, "steps": steps}
    if record:
        result["transitions"] = _in_episode_order(chunks)
    return result


def _in_episode_order(chunks: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenate per-page chunks and reorder them so each episode's transitions are contiguous."""
    merged = {key: np.concatenate([c[key] for c in chunks]) for key in chunks[0]}
    order = np.lexsort((merged.pop("step"), merged.pop("episode")))
    return {key: value[order] for key, value in merged.items()}


def _sequential_rollout(env: gym.Env, act: ScriptedPolicy, n_episodes: int, seed: int, record: bool,
                        progress: bool) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    episode_rows, step_rows, transitions = [], [], []
    for episode in tqdm(range(n_episodes), desc="episodes", disable=not progress, leave=False):
        obs, _ = env.reset(seed=seed + episode)
        episodic = getattr(act, "episodic", None)
        if episodic is not None:
            episodic.begin_episodes(1)
        total, length, clicks, ctr_sum, done = 0.0, 0, 0, 0.0, False
        terminated = truncated = False
        while not done:
            action = np.asarray(act(np.asarray(obs, dtype=np.float32)[None], None, rng))[0]
            next_obs, reward, terminated, truncated, info = env.step(action)
            step_clicks = info.get("clicks", np.nan)
            step_rows.append((episode, length, float(reward), step_clicks))
            if record:
                transitions.append((obs, action, reward, next_obs, terminated, truncated))
            total += float(reward)
            clicks += step_clicks if np.isfinite(step_clicks) else 0
            ctr_sum += info.get("ctr", np.nan)
            length += 1
            obs, done = next_obs, terminated or truncated
            if episodic is not None:
                episodic.observe_rewards(np.array([float(reward)]), np.array([done]))
        episode_rows.append({"episode": episode, "return": total, "length": length, "clicks": clicks,
                             "terminated": terminated, "truncated": truncated, "ctr": ctr_sum / length})
    result = {"episodes": pd.DataFrame(episode_rows),
              "steps": pd.DataFrame(step_rows, columns=["episode", "step", "reward", "clicks"])}
    if record:
        keys = ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")
        result["transitions"] = {key: np.asarray([t[k] for t in transitions]) for k, key in enumerate(keys)}
    return result


def collect(env: gym.Env, policy: Any, n_episodes: int, seed: int = 0, progress: bool = True) -> OfflineDataset:
    """Roll ``policy`` out for ``n_episodes`` and keep every transition as an :class:`OfflineDataset`, episode
    by episode: a user leaving is a terminal, the page cap a timeout, and ``episode_starts`` marks each
    trajectory's first page (so the boundaries survive)."""
    return _dataset(rollout(env, policy, n_episodes, seed, record=True, progress=progress)["transitions"])


def _dataset(transitions: dict[str, np.ndarray]) -> OfflineDataset:
    ends = transitions["terminals"].astype(bool) | transitions["timeouts"].astype(bool)
    return OfflineDataset(**transitions, episode_starts=np.r_[True, ends[:-1]])


def summarise_episodes(episodes: pd.DataFrame, page_size: int | None = None) -> dict[str, float]:
    """R_cumu, R_avg, Length and CTR from a per-episode table (``return``, ``length``, ``clicks``)."""
    steps = episodes["length"].sum()
    ctr = episodes["clicks"].sum() / (page_size * steps) if page_size else float((episodes["ctr"] * episodes["length"]).sum() / steps)
    return {"R_cumu": float(episodes["return"].mean()), "R_avg": float(episodes["return"].sum() / steps),
            "Length": float(episodes["length"].mean()), "CTR": float(ctr)}


def first_pages_ctr(steps: pd.DataFrame, pages: int = 5, page_size: int = 10) -> float:
    """Pooled CTR of every session's first ``pages`` pages, from a rollout's per-step table (``step`` is
    0-based): where short-term greed shows — the myopic policy wins here and loses the session."""
    early = steps[steps["step"] < pages]
    return float(early["clicks"].sum() / (page_size * len(early)))


def ctr_by_length(episodes: pd.DataFrame, page_size: int | None = None,
                  buckets: tuple[tuple[int, int | None], ...] = LENGTH_BUCKETS) -> pd.DataFrame:
    """Pooled CTR of the episodes whose length falls in each bucket (the paper's Table 3); episodes shorter
    than the first bucket are left out, as in the paper. ``n_episodes`` says how many fell in each."""
    rows = []
    for low, high in buckets:
        inside = (episodes["length"] >= low) & (episodes["length"] <= (high if high is not None else np.inf))
        chosen = episodes[inside]
        label = f"{low}-{high}" if high is not None else f"{low}+"
        ctr = summarise_episodes(chosen, page_size)["CTR"] if len(chosen) else float("nan")
        rows.append({"length_bucket": label, "CTR": ctr, "n_episodes": int(len(chosen))})
    return pd.DataFrame(rows)


def evaluate(env: gym.Env, agent: Any, n_episodes: int = 1000, seed: int = 0, progress: bool = True) -> dict[str, Any]:
    """Evaluate an agent (or scripted policy) on ``n_episodes`` fresh users.

    Returns ``R_cumu``, ``R_avg``, ``Length``, ``CTR`` (floats, see the module docstring), ``episodes``
    (one row per episode) and ``ctr_by_length`` (the paper's Table 3 buckets)."""
    result = rollout(env, agent, n_episodes, seed, progress=progress)
    page_size = getattr(getattr(env.unwrapped, "config", None), "page_size", None)
    metrics: dict[str, Any] = summarise_episodes(result["episodes"], page_size)
    metrics["episodes"] = result["episodes"]
    metrics["ctr_by_length"] = ctr_by_length(result["episodes"], page_size)
    return metrics


MIXTURE_COMPONENTS = ("myopic", "noisy_expert", "random")


def collect_mixture(env: gym.Env, n_episodes: int, seed: int = 0,
                    components: tuple[str, ...] = MIXTURE_COMPONENTS, progress: bool = True) -> OfflineDataset:
    """The default offline dataset: equal shares of episodes from the myopic, noisy-expert and random
    scripted policies — multimodal and sub-optimal, the regime the paper targets. Each session is logged by
    one policy, as when logs come from several past systems. The presets' sizes are in
    ``dac4rec_lite.recipes`` (tiny 60, quick 600, full 3000 sessions; ≈ 13 pages each, so quick ≈ 7.6k
    transitions)."""
    from .envs.policies import SCRIPTED_POLICIES

    _check_episodes(n_episodes)
    unknown = [name for name in components if name not in SCRIPTED_POLICIES]
    if unknown or not components:
        raise ValueError(f"components must be names among {sorted(SCRIPTED_POLICIES)}, got {components!r}.")
    shares = np.diff(np.linspace(0, n_episodes, len(components) + 1).round().astype(int))
    parts = [rollout(env, SCRIPTED_POLICIES[name](), int(count), seed + 7919 * k, record=True, progress=progress)["transitions"]
             for k, (name, count) in enumerate(zip(components, shares)) if count > 0]
    return _dataset({key: np.concatenate([part[key] for part in parts]) for key in parts[0]})


def trace_episode(env: gym.Env, policy: Any, seed: int = 0, max_pages: int | None = None) -> pd.DataFrame:
    """Follow one RecSim-v0 user page by page under ``policy`` and record what the agent cannot see: one row
    per page with ``page``, ``clicks``, ``ctr``, ``fatigue``, ``satisfaction``, ``leave_probability``,
    ``interest_vs_preference`` (cos(s, p): how far the short-term interest has drifted from the long-term
    taste), ``action_vs_preference`` (cos(action, p)), the page's ``items`` and ``left``/``truncated``.
    The same ``seed`` gives the same user for every policy, so policies can be compared on one person."""
    simulator = getattr(env.unwrapped, "simulator", None)
    if simulator is None:
        raise ValueError("trace_episode needs RecSim-v0 (it reads the simulator's hidden user state).")
    act = _as_policy(policy, seed)
    user_rng, rng = np.random.default_rng([seed, 0]), np.random.default_rng([seed, 1])
    users = simulator.new_users(1, user_rng)
    rows = []
    limit = max_pages or simulator.config.max_pages
    episodic = getattr(act, "episodic", None)
    if episodic is not None:
        episodic.begin_episodes(1)
    for page in range(1, limit + 1):
        actions = simulator.check_actions(act(simulator.observe(users), users, rng), 1)
        out = simulator.step(users, actions, rng)
        if episodic is not None:
            episodic.observe_rewards(out["clicks"].astype(np.float64), out["left"] | out["truncated"])
        p = users.preference[0]
        rows.append({"page": page, "clicks": int(out["clicks"][0]), "ctr": float(out["ctr"][0]),
                     "fatigue": float(users.fatigue[0]), "satisfaction": float(users.satisfaction[0]),
                     "leave_probability": float(out["leave_probability"][0]),
                     "interest_vs_preference": float(users.interest[0] @ p),
                     "action_vs_preference": float(actions[0] @ p / max(np.linalg.norm(actions[0]), 1e-12)),
                     "items": out["items"][0].tolist(), "left": bool(out["left"][0]),
                     "truncated": bool(out["truncated"][0])})
        if out["left"][0] or out["truncated"][0]:
            break
    return pd.DataFrame(rows)
