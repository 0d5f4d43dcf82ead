"""Roll policies out in an environment: collect offline datasets and evaluate agents. One rollout protocol
for every environment and one definition of each metric; the environments only simulate.

Three kinds of policy are accepted everywhere (one adaptor, ``_as_policy``):

* a learned agent (anything with ``act(obs)`` taking a (B, obs_dim) numpy batch; it gets a
  ``torch.Generator`` seeded with the rollout's seed when its ``act`` takes ``generator=``), which sees only
  observations;
* a scripted policy called as ``policy(obs, users, rng)`` (:mod:`dac4rec_lite.envs.policies`), which may
  also read the simulator's hidden user state (the "privileged" experts);
* a plain function ``policy(obs) -> actions``.

An agent with per-episode memory (``DecisionTransformer``) also has ``begin_episodes(n)`` and
``observe_rewards(rewards, done)``: rollouts call the first before an episode batch's first step and the
second after every step, with the rewards and done flags of the rows that just acted (in ``act``'s order).

**The rollout protocol.** An environment whose ``unwrapped.simulator`` is a batched core (RecSim-v0's
``RecSimulator``, Logged-v0's ``LoggedSimulator``) runs all episodes of a batch side by side in numpy, which
evaluates thousands of users in seconds. The core provides ``new_users(n, rng)`` (a user batch with ``len``
and ``subset(index)``), ``observe(users)`` → (B, obs_dim), ``step(users, actions, rng)`` → per-user arrays
``actions``, ``reward``, ``clicks``, ``left`` (terminal) and ``truncated`` (timeout), and ``page_size``, the
items recommended per step. The gymnasium ``step`` of both environments steps the same core for one user.
Any other gymnasium environment is stepped one episode at a time (``reset(seed=seed + episode)``); it
reports ``info["clicks"]`` and declares ``page_size`` for CTR (else CTR is NaN).

**Metrics** (as EasyRL4Rec computes them, paper Sec. 4.1), all from :func:`episode_metrics`:

* ``R_cumu`` — mean return per trajectory;
* ``R_avg`` — total reward / total steps (a pooled ratio, = R_cumu / Length; not a mean of per-episode ratios);
* ``Length`` — mean number of steps per trajectory;
* ``CTR`` — clicks per recommended item, pooled: total clicks / total items recommended. A RecSim-v0 step
  recommends a page of 10 (CTR = clicks / (10 · pages)), a Logged-v0 step one item (CTR = clicks / turns).
"""
from __future__ import annotations

import inspect
import numbers
from typing import Any, Callable, Mapping

import gymnasium as gym
import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .data.dataset import OfflineDataset
from .data.logged_world import replace_rule
from .envs.logged_env import LoggedEnv, unwrap_logged
from .envs.policies import SCRIPTED_POLICIES, RandomItemPolicy
from .envs.recsim import RecSimulator

__all__ = ["collect", "collect_mixture", "evaluate", "evaluate_logged", "random_policy_rollout", "trace_episode",
           "session_traces", "rollout", "episode_metrics", "summarise_episodes", "metrics_table", "first_pages_ctr",
           "ctr_by_length", "leave_rule_sweep", "LENGTH_BUCKETS", "METRICS"]

LENGTH_BUCKETS = ((11, 20), (21, 30), (31, None))  # the paper's Table 3 interaction-length buckets
METRICS = ("R_cumu", "R_avg", "Length", "CTR")  # what episode_metrics returns, in the paper's column order

ScriptedPolicy = Callable[[np.ndarray, Any, np.random.Generator], np.ndarray]


def _positional_arity(fn: Callable) -> int:
    """3 for ``fn(obs, users, rng)``, 1 for ``fn(obs)``."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without a signature: assume the scripted convention
        return 3
    for arity in (3, 1):
        try:
            signature.bind(*range(arity))
            return arity
        except TypeError:
            continue
    raise TypeError(f"a policy function is called as policy(obs) or policy(obs, users, rng); {fn!r} takes neither.")


def _as_policy(policy: Any, seed: int) -> ScriptedPolicy:
    """One calling convention for every kind of policy: ``(obs, users, rng) -> actions``."""
    if hasattr(policy, "act"):
        generator = torch.Generator(device=getattr(policy, "device", "cpu")).manual_seed(seed)
        parameters = inspect.signature(policy.act).parameters
        takes_generator = "generator" in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())
        kwargs = {"generator": generator} if takes_generator else {}

        def agent_policy(obs: np.ndarray, users: Any, rng: np.random.Generator) -> np.ndarray:
            return np.asarray(policy.act(obs, **kwargs), dtype=np.float64)

        episodic = hasattr(policy, "begin_episodes") and hasattr(policy, "observe_rewards")
        agent_policy.episodic = policy if episodic else None  # told where episodes begin and what each step earned
        return agent_policy
    if callable(policy):
        if _positional_arity(policy) == 3:
            return policy
        return lambda obs, users, rng: np.asarray(policy(obs))
    raise TypeError(
        f"policy must be an agent with .act(obs), a scripted policy callable as policy(obs, users, rng) or a "
        f"function policy(obs), got {type(policy).__name__}."
    )


def _check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")


def _check_episodes(n_episodes: int) -> None:
    _check_count("n_episodes", n_episodes)


def _check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")


def _page_size(env: gym.Env) -> int | None:
    """Items the environment recommends per step, if it declares ``page_size`` (on it or under its wrappers)."""
    try:
        return env.get_wrapper_attr("page_size")
    except AttributeError:
        return getattr(env.unwrapped, "page_size", None)


def rollout(env: gym.Env, policy: Any, n_episodes: int, seed: int = 0, record: bool = False,
            batch_size: int = 1000, progress: bool = True) -> dict[str, Any]:
    """Run ``n_episodes`` episodes; return ``episodes`` (a DataFrame, one row per episode: ``policy``,
    ``episode``, ``return``, ``length``, ``clicks``, ``shown`` (items recommended), ``terminated``,
    ``truncated``, ``ctr``, and ``user`` on Logged-v0), ``steps`` (a DataFrame, one row per step: ``episode``,
    ``step``, ``reward``, ``clicks``, ``shown``) and, with ``record=True``, ``transitions`` (a dict of arrays in
    episode order, ready for :class:`OfflineDataset`)."""
    _check_episodes(n_episodes)
    _check_seed(seed)
    _check_count("batch_size", batch_size)
    if not isinstance(env, gym.Env):
        raise TypeError(f"env must be a gymnasium environment, got {type(env).__name__}.")
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
    page_size = simulator.page_size
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
            out = simulator.step(current, act(obs, current, rng), rng)
            for field in vars(current):
                getattr(users, field)[active] = getattr(current, field)
            reward = out["reward"]
            step_rows.append(pd.DataFrame({"episode": first + active, "step": lengths[active], "reward": reward,
                                           "clicks": out["clicks"], "shown": page_size}))
            if record:
                chunks.append({"episode": first + active, "step": lengths[active], "observations": obs,
                               "actions": out["actions"].astype(np.float32), "rewards": reward,
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
        table = {"episode": first + np.arange(n)}
        if hasattr(users, "user"):
            table["user"] = users.user
        table.update({"return": returns, "length": lengths, "clicks": clicks, "shown": page_size * lengths,
                      "terminated": terminated, "truncated": truncated})
        episode_rows.append(pd.DataFrame(table))
    bar.close()
    episodes = pd.concat(episode_rows, ignore_index=True)
    episodes["ctr"] = episodes["clicks"] / episodes["shown"]
    steps = pd.concat(step_rows, ignore_index=True).sort_values(["episode", "step"], kind="stable", ignore_index=True)
    result = {"episodes": episodes, "steps": steps}
    if record:
        result["transitions"] = _in_episode_order(chunks)
    return result


def _in_episode_order(chunks: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenate per-step chunks and reorder them so each episode's transitions are contiguous."""
    merged = {key: np.concatenate([c[key] for c in chunks]) for key in chunks[0]}
    order = np.lexsort((merged.pop("step"), merged.pop("episode")))
    return {key: value[order] for key, value in merged.items()}


def _sequential_rollout(env: gym.Env, act: ScriptedPolicy, n_episodes: int, seed: int, record: bool,
                        progress: bool) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    page_size = _page_size(env)
    shown = np.nan if page_size is None else page_size
    episode_rows, step_rows, transitions = [], [], []
    for episode in tqdm(range(n_episodes), desc="episodes", disable=not progress, leave=False):
        obs, _ = env.reset(seed=seed + episode)
        episodic = getattr(act, "episodic", None)
        if episodic is not None:
            episodic.begin_episodes(1)
        total, length, clicks, done = 0.0, 0, 0, False
        terminated = truncated = False
        while not done:
            action = np.asarray(act(np.asarray(obs, dtype=np.float32)[None], None, rng))[0]
            next_obs, reward, terminated, truncated, info = env.step(action)
            step_clicks = info.get("clicks", np.nan)
            step_rows.append((episode, length, float(reward), step_clicks, shown))
            if record:
                transitions.append((obs, action, reward, next_obs, terminated, truncated))
            total += float(reward)
            clicks += step_clicks
            length += 1
            obs, done = next_obs, terminated or truncated
            if episodic is not None:
                episodic.observe_rewards(np.array([float(reward)]), np.array([done]))
        episode_rows.append({"episode": episode, "return": total, "length": length, "clicks": clicks,
                             "shown": shown * length, "terminated": terminated, "truncated": truncated})
    episodes = pd.DataFrame(episode_rows)
    episodes["ctr"] = episodes["clicks"] / episodes["shown"]
    result = {"episodes": episodes,
              "steps": pd.DataFrame(step_rows, columns=["episode", "step", "reward", "clicks", "shown"])}
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


def _items_shown(table: pd.DataFrame, page_size: int | None, per: str) -> pd.Series:
    if "shown" in table.columns:
        return table["shown"]
    if page_size is None:
        raise ValueError("CTR needs the items recommended: a 'shown' column (rollout tables have one) or page_size.")
    return page_size * (table["length"] if per == "episode" else pd.Series(1, index=table.index))


def episode_metrics(episodes: pd.DataFrame, page_size: int | None = None) -> dict[str, float]:
    """R_cumu, R_avg, Length and CTR (see the module docstring) from a per-episode table with ``return``,
    ``length``, ``clicks`` and ``shown`` (items recommended); ``page_size`` stands in for a missing ``shown``."""
    steps = episodes["length"].sum()
    ctr = episodes["clicks"].sum() / _items_shown(episodes, page_size, "episode").sum()
    return {"R_cumu": float(episodes["return"].mean()), "R_avg": float(episodes["return"].sum() / steps),
            "Length": float(episodes["length"].mean()), "CTR": float(ctr)}


summarise_episodes = episode_metrics  # the name this function had in earlier versions


def first_pages_ctr(steps: pd.DataFrame, pages: int = 5, page_size: int | None = None) -> float:
    """Pooled CTR of every session's first ``pages`` pages, from a rollout's per-step table (``step`` is
    0-based; ``shown``, or ``page_size`` for a table without it): where short-term greed shows — the myopic
    policy wins here and loses the session."""
    _check_count("pages", pages)
    early = steps[steps["step"] < pages]
    return float(early["clicks"].sum() / _items_shown(early, page_size, "step").sum())


def ctr_by_length(episodes: pd.DataFrame, page_size: int | None = None,
                  buckets: tuple[tuple[int, int | None], ...] = LENGTH_BUCKETS) -> pd.DataFrame:
    """Pooled CTR of the episodes whose length falls in each bucket (the paper's Table 3); episodes shorter
    than the first bucket are left out, as in the paper. ``n_episodes`` says how many fell in each."""
    rows = []
    for low, high in buckets:
        inside = (episodes["length"] >= low) & (episodes["length"] <= (high if high is not None else np.inf))
        chosen = episodes[inside]
        label = f"{low}-{high}" if high is not None else f"{low}+"
        ctr = episode_metrics(chosen, page_size)["CTR"] if len(chosen) else float("nan")
        rows.append({"length_bucket": label, "CTR": ctr, "n_episodes": int(len(chosen))})
    return pd.DataFrame(rows)


def evaluate(env: gym.Env, agent: Any, n_episodes: int = 1000, seed: int = 0, progress: bool = True,
             batch_size: int = 1000) -> dict[str, Any]:
    """Evaluate an agent (or scripted policy, or function obs → actions) on ``n_episodes`` fresh users.

    Returns ``R_cumu``, ``R_avg``, ``Length``, ``CTR`` (floats, see the module docstring), ``episodes``
    (one row per episode) and ``ctr_by_length`` (the paper's Table 3 buckets)."""
    result = rollout(env, agent, n_episodes, seed, batch_size=batch_size, progress=progress)
    metrics: dict[str, Any] = episode_metrics(result["episodes"])
    metrics["episodes"] = result["episodes"]
    metrics["ctr_by_length"] = ctr_by_length(result["episodes"])
    return metrics


def metrics_table(results: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """One row per policy with R_cumu, R_avg, Length and CTR, from a dict of :func:`evaluate` results keyed by
    the policy's name (notebook 06 shows it as ``dl.viz.metrics_table``)."""
    return pd.DataFrame({name: {k: r[k] for k in METRICS} for name, r in results.items()}).T


def evaluate_logged(env: gym.Env, agent: Any, n_episodes: int = 1000, seed: int = 0, batch_size: int = 1000,
                    progress: bool = False) -> dict[str, Any]:
    """:func:`evaluate` on a Logged-v0 environment (a ``TypeError`` for any other): users are drawn with
    ``numpy.random.default_rng(seed)``, all episodes of a batch step in lockstep (one ``act`` call per turn)."""
    return evaluate(unwrap_logged(env), agent, n_episodes, seed, progress=progress, batch_size=batch_size)


def random_policy_rollout(env: gym.Env, n_episodes: int = 5000, seed: int = 0, batch_size: int = 5000,
                          progress: bool = False) -> dict[str, Any]:
    """Logged-v0's uniform-random-item policy (``RandomItemPolicy``: repeats allowed unless the environment has
    ``no_repeat``). Returns the metrics of :func:`episode_metrics` plus ``episodes``, the per-episode table."""
    inner = unwrap_logged(env)
    episodes = rollout(inner, RandomItemPolicy(inner.simulator), n_episodes, seed, batch_size=batch_size,
                       progress=progress)["episodes"]
    return {**episode_metrics(episodes), "episodes": episodes}


def leave_rule_sweep(env: gym.Env, thresholds, n_episodes: int = 2000, seed: int = 0,
                     exact_window: tuple[bool, ...] = (False, True)) -> pd.DataFrame:
    """The uniform-random policy's Length and R_avg for each leave threshold, with EasyRL4Rec's window and the
    exact one: how the leave rule shapes the episodes (the reward matrix and embeddings are shared)."""
    inner = unwrap_logged(env)
    rows = []
    for exact in exact_window:
        for threshold in thresholds:
            world = replace_rule(inner.world, threshold=threshold, exact_window=exact)
            result = random_policy_rollout(LoggedEnv(world=world, no_repeat=inner.no_repeat), n_episodes, seed)
            rows.append({"threshold": float(threshold), "window": "exact" if exact else "EasyRL4Rec seq[t-k:t]",
                         "Length": result["Length"], "R_avg": result["R_avg"], "R_cumu": result["R_cumu"]})
    return pd.DataFrame(rows)


MIXTURE_COMPONENTS = ("myopic", "noisy_expert", "random")


def collect_mixture(env: gym.Env, n_episodes: int, seed: int = 0,
                    components: tuple[str, ...] = MIXTURE_COMPONENTS, progress: bool = True) -> OfflineDataset:
    """The default offline dataset: equal shares of episodes from the myopic, noisy-expert and random
    scripted policies — multimodal and sub-optimal, the regime the paper targets. Each session is logged by
    one policy, as when logs come from several past systems. Each preset's number of sessions is in the one
    preset table, ``dac4rec_lite.presets``."""
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
    ``interest_vs_preference`` (cos(h, p): how far the short-term interest has drifted from the long-term
    taste), ``action_vs_preference`` (cos(action, p)), the page's ``items`` and ``left``/``truncated``.
    The same ``seed`` gives the same user for every policy, so policies can be compared on one person."""
    simulator = getattr(env.unwrapped, "simulator", None)
    if not isinstance(simulator, RecSimulator):
        raise ValueError("trace_episode needs RecSim-v0 (it reads the simulator's hidden user state).")
    _check_seed(seed)
    if max_pages is not None:
        _check_count("max_pages", max_pages)
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


def session_traces(env: gym.Env, policies: Mapping[str, Any], seed: int = 0) -> dict[str, pd.DataFrame]:
    """One :func:`trace_episode` per policy (``{name: policy}``), all on the same user (same ``seed``): what
    notebook 06's session figure and explorer draw (``dl.viz.session_traces``)."""
    return {name: trace_episode(env, policy, seed) for name, policy in policies.items()}
