"""A gymnasium environment built from a logged dataset by EasyRL4Rec's rules, the offline buffer cut from the
same log, and a batched rollout for evaluation.

``gymnasium.make("dac4rec_lite/Logged-v0", dataset="coat", path=FOLDER, **overrides)``

* An episode is one user (drawn uniformly from the dataset's users at ``reset``) receiving one item per turn.
* Action: a vector in [−1, 1]^d; it recommends the item whose embedding (``env.unwrapped.item_embeddings``,
  (n_items, d)) is nearest by cosine, so an item's embedding recommends that item. ``no_repeat=True`` skips
  items already recommended in the episode.
* Reward: ``rewards[user, item]`` of the complete reward matrix, on the dataset's own scale (Coat: rating
  1..5), as EasyRL4Rec reports it. ``info["reward_normalised"]`` holds it min–max normalised.
* End: ``terminated`` when the user leaves by the dataset's leave rule (that step still pays), ``truncated``
  after ``max_turn`` = 30 turns. See ``dac4rec_lite/data/logged_world.py`` for the rules and the window quirk.
* Observation (``env.unwrapped.obs_layout``, an ``ObsLayout``): ``[profile | W history steps]``, oldest first,
  left-padded with zeros; each step is ``[item embedding (d), normalised reward, valid flag]``. The profile is
  empty unless ``user_features=True`` (Coat ships one-hot user features).

Metrics, as EasyRL4Rec reports them: R_cumu (mean return), Length (mean episode length) and
R_avg = R_cumu / Length (a ratio of means, not the mean of per-episode ratios).
"""
from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
import torch
from gymnasium import spaces

from ..data.dataset import OfflineDataset
from ..data.logged import LoggedData, load_logged
from ..data.logged_world import MAX_TURN, LoggedWorld, build_world, replace_rule
from ..observation import ObsLayout

__all__ = ["LoggedEnv", "logged_dataset", "evaluate_logged", "random_policy_rollout", "episode_metrics",
           "leave_rule_sweep", "register_logged_env", "ENV_ID"]

ENV_ID = "dac4rec_lite/Logged-v0"
# A recommendation counts as a click (for CTR) when its reward reaches this value on the dataset's scale.
POSITIVE_REWARD = {"rating": 4.0, "watch_ratio": 2.0, "is_click": 0.5}
_ENCODE_BLOCK = 65536  # transitions encoded at once by logged_dataset (bounds memory on MovieLens-1M)


class LoggedEnv(gym.Env):
    """A simulated user from a logged dataset (EasyRL4Rec's environment, with continuous item actions).

    Args:
        dataset: coat, movielens, kuairec, kuairand or yahoo (ignored when ``world`` or ``data`` is given).
        path: the dataset's folder (default: ``$DAC4REC_DATA``).
        data: a ``LoggedData`` already loaded (skips reading the files).
        world: a ``LoggedWorld`` already built (shares the reward matrix and user model between environments;
            the leave-rule, turn-cap, embedding and user-model arguments are then ignored).
        window: W, the number of history steps in the observation.
        user_features: put the publisher's user features (Coat) in the observation's profile.
        no_repeat: never recommend an item twice in an episode.
        leave_rule, leave_threshold, leave_window, exact_window, max_turn, embedding_dim, user_model, seed,
            progress: passed to ``build_world``.
        positive_threshold: reward at which a recommendation counts as a click (``info["clicks"]``: 0 or 1 for
            the step, as RecSim-v0 reports its page's clicks; ``info["total_clicks"]``: the episode's so far).
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        dataset: str = "coat",
        path: str | os.PathLike[str] | None = None,
        *,
        data: LoggedData | None = None,
        world: LoggedWorld | None = None,
        window: int = 10,
        user_features: bool = False,
        no_repeat: bool = False,
        leave_rule: str | None = None,
        leave_threshold: float | None = None,
        leave_window: int | None = None,
        exact_window: bool = False,
        max_turn: int = MAX_TURN,
        embedding_dim: int = 16,
        user_model: dict | None = None,
        seed: int = 0,
        progress: bool = True,
        positive_threshold: float | None = None,
    ) -> None:
        super().__init__()
        if world is None:
            data = data if data is not None else load_logged(dataset, path)
            world = build_world(data, leave_rule=leave_rule, leave_threshold=leave_threshold, leave_window=leave_window,
                                exact_window=exact_window, max_turn=max_turn, embedding_dim=embedding_dim,
                                user_model=user_model, seed=seed, progress=progress)
        self.world = world
        self.no_repeat = bool(no_repeat)
        if self.no_repeat and world.n_items < world.max_turn:
            raise ValueError(f"no_repeat needs at least max_turn = {world.max_turn} items, the data has {world.n_items}.")
        if user_features and world.data.user_features is None:
            raise ValueError(f"{world.data.name} ships no user features; use user_features=False.")
        self.profiles = world.data.user_features if user_features else None
        profile_dim = 0 if self.profiles is None else self.profiles.shape[1]
        self.obs_layout = ObsLayout(profile_dim=profile_dim, window=int(window), step_dim=world.embedding_dim + 2)
        self.positive_threshold = (POSITIVE_REWARD.get(world.data.reward_name, 0.0) if positive_threshold is None
                                   else float(positive_threshold))
        self.action_space = spaces.Box(-1.0, 1.0, shape=(world.embedding_dim,), dtype=np.float32)
        # every feature is bounded: embeddings in [-1, 1], normalised rewards, valid flags and one-hot profiles in [0, 1]
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(self.obs_layout.obs_dim,), dtype=np.float32)
        self._done = True

    # ----- what agents and notebooks read -------------------------------------------------------------
    @property
    def item_embeddings(self) -> np.ndarray:
        """(n_items, d) in [−1, 1]: the action ``item_embeddings[i]`` recommends item i."""
        return self.world.item_embeddings

    @property
    def n_items(self) -> int:
        return self.world.n_items

    def encode(self, users: np.ndarray, items: np.ndarray, rewards: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Observations (B, obs_dim) of B histories: ``items``/``rewards`` (B, L) hold each history's first
        ``lengths[b]`` steps (rewards on the dataset's scale); the last W of them enter the observation."""
        layout, world = self.obs_layout, self.world
        lengths = np.asarray(lengths)
        positions = lengths[:, None] - layout.window + np.arange(layout.window)[None, :]   # oldest first
        valid = positions >= 0
        rows = np.arange(len(lengths))[:, None]
        if items.shape[1] == 0:
            step_items = np.zeros(positions.shape, dtype=np.int64)
            step_rewards = np.zeros(positions.shape)
        else:
            clipped = np.clip(positions, 0, items.shape[1] - 1)
            step_items, step_rewards = items[rows, clipped], rewards[rows, clipped]
        steps = np.concatenate([
            world.item_embeddings[step_items] * valid[..., None],
            (world.normalise(step_rewards) * valid)[..., None].astype(np.float32),
            valid[..., None].astype(np.float32),
        ], axis=2).reshape(len(lengths), -1)
        if self.profiles is None:
            return steps.astype(np.float32)
        return np.concatenate([self.profiles[users], steps], axis=1).astype(np.float32)

    def _observation(self) -> np.ndarray:
        t = self._turn
        return self.encode(np.array([self._user]), self._items[None, :t], self._rewards[None, :t], np.array([t]))[0]

    # ----- gymnasium API ----------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start an episode with a user drawn uniformly from the dataset's users (``options={"user": u}`` fixes it)."""
        super().reset(seed=seed)
        options = options or {}
        if "user" in options:
            user = int(options["user"])
            if not 0 <= user < self.world.n_users:
                raise ValueError(f"options['user'] = {user} is not a user id (0..{self.world.n_users - 1}).")
        else:
            user = int(self.np_random.choice(self.world.env_users))
        self._user, self._turn, self._done = user, 0, False
        self._items = np.zeros(self.world.max_turn, dtype=np.int64)
        self._rewards = np.zeros(self.world.max_turn, dtype=np.float64)
        self._cum_reward, self._clicks = 0.0, 0
        return self._observation(), {"user": user}

    def step(self, action):
        if self._done:
            raise RuntimeError("the episode has ended: call reset() before step().")
        action = np.asarray(action, dtype=np.float32).reshape(1, -1)
        banned = None
        if self.no_repeat:
            banned = np.zeros((1, self.world.n_items), dtype=bool)
            banned[0, self._items[:self._turn]] = True
        item = int(self.world.items_from_actions(action, banned)[0])
        return self._play(item)

    def step_item(self, item: int):
        """Recommend item ``item`` directly (the same as ``step(item_embeddings[item])``)."""
        if self._done:
            raise RuntimeError("the episode has ended: call reset() before step_item().")
        if not 0 <= int(item) < self.world.n_items:
            raise ValueError(f"item {item} is not an item id (0..{self.world.n_items - 1}).")
        return self._play(int(item))

    def _play(self, item: int):
        t = self._turn
        reward = float(self.world.rewards[self._user, item])
        left = bool(self.world.leaves(self._items[None, :t], np.array([item]))[0])
        self._items[t], self._rewards[t] = item, reward
        self._turn = t + 1
        self._cum_reward += reward
        terminated = left
        truncated = not left and self._turn >= self.world.max_turn
        self._done = terminated or truncated
        click = int(reward >= self.positive_threshold)
        self._clicks += click
        # clicks / ctr are this step's (one item per page), as RecSim-v0 reports them and dl.evaluate sums them
        info = {"user": self._user, "item": item, "left": left, "turn": self._turn,
                "reward_normalised": float(self.world.normalise(reward)), "cum_reward": self._cum_reward,
                "clicks": click, "ctr": float(click), "total_clicks": self._clicks}
        return self._observation(), reward, terminated, truncated, info


def register_logged_env() -> None:
    """Register ``dac4rec_lite/Logged-v0`` with gymnasium (idempotent)."""
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point="dac4rec_lite.envs.logged_env:LoggedEnv")


register_logged_env()


# ----- the offline buffer -------------------------------------------------------------------------------
def _unwrap(env) -> LoggedEnv:
    inner = getattr(env, "unwrapped", env)
    if not isinstance(inner, LoggedEnv):
        raise TypeError(f"expected a LoggedEnv (or a wrapper of one), got {type(inner).__name__}.")
    return inner


def logged_dataset(
    name: str = "coat",
    path: str | os.PathLike[str] | None = None,
    *,
    env: gym.Env | None = None,
    split: str = "train",
    **env_kwargs: Any,
) -> OfflineDataset:
    """The ``OfflineDataset`` cut from a dataset's log, in the observation and action spaces of ``env``.

    Each user's log (ordered by time; Coat: matrix order) is replayed as episodes: at each logged item the
    dataset's leave rule is checked against the episode's earlier items, exactly as the environment would;
    if the user would leave, that transition is terminal and the next logged item starts a new episode. After
    ``max_turn`` items, and at the end of the user's log, the episode is cut (a timeout). Actions are the
    logged items' embeddings, rewards the logged rewards min–max normalised to [0, 1] (the observation's
    reward feature uses the same normalisation).

    Pass ``env`` (a ``LoggedEnv``) to share its world and layout; otherwise one is built from ``name``,
    ``path`` and ``env_kwargs``. ``split``: "train" or "test" (when the dataset ships a test log).
    """
    inner = _unwrap(env) if env is not None else LoggedEnv(name, path, **env_kwargs)
    world = inner.world
    log = world.data.train if split == "train" else world.data.test
    if log is None:
        raise ValueError(f"{world.data.name} ships no {split} log; use split='train'.")
    users_all = log["user"].to_numpy()
    items_all = log["item"].to_numpy()
    rewards_all = log["reward"].to_numpy(dtype=np.float64)
    boundaries = np.flatnonzero(np.diff(users_all)) + 1
    starts, stops = np.r_[0, boundaries], np.r_[boundaries, len(users_all)]
    records = {k: [] for k in ("row", "t", "terminal", "timeout")}
    for start, stop in zip(starts, stops):
        t, first = 0, start  # turn within the episode, and the episode's first row
        for row in range(start, stop):
            left = t > 0 and bool(world.leaves(items_all[None, first:row], items_all[row:row + 1])[0])
            records["row"].append(row)
            records["t"].append(t)
            records["terminal"].append(left)
            records["timeout"].append(not left and (t + 1 >= world.max_turn or row == stop - 1))
            t += 1
            if left or t >= world.max_turn:
                t, first = 0, row + 1
    rows, t = np.asarray(records["row"]), np.asarray(records["t"])
    observations = np.empty((len(rows), inner.obs_layout.obs_dim), dtype=np.float32)
    next_observations = np.empty_like(observations)
    offsets = np.arange(int(t.max()) + 1)
    for block in range(0, len(rows), _ENCODE_BLOCK):
        part = slice(block, block + _ENCODE_BLOCK)
        # the episode of transition k began at row k - t_k; its history is the rows from there on
        history = np.clip(rows[part, None] - t[part, None] + offsets[None, :], 0, len(items_all) - 1)
        users = users_all[rows[part]]
        observations[part] = inner.encode(users, items_all[history], rewards_all[history], t[part])
        next_observations[part] = inner.encode(users, items_all[history], rewards_all[history], t[part] + 1)
    terminals = np.asarray(records["terminal"], dtype=np.float32)
    timeouts = np.asarray(records["timeout"], dtype=np.float32)
    return OfflineDataset.from_dict({
        "observations": observations,
        "actions": world.item_embeddings[items_all[rows]],
        "rewards": world.normalise(rewards_all[rows]).astype(np.float32),
        "next_observations": next_observations,
        "terminals": terminals,
        "timeouts": timeouts,
        "episode_starts": (t == 0).astype(np.float32),
    })


# ----- batched rollouts and metrics -----------------------------------------------------------------------
def episode_metrics(episodes: pd.DataFrame) -> dict[str, float]:
    """EasyRL4Rec's metrics from a per-episode table (columns ``length``, ``return``, ``clicks``):
    R_cumu = mean return, Length = mean length, R_avg = R_cumu / Length (ratio of means), CTR = clicks / turns."""
    r_cumu, length = float(episodes["return"].mean()), float(episodes["length"].mean())
    return {"R_cumu": r_cumu, "Length": length, "R_avg": r_cumu / length,
            "CTR": float(episodes["clicks"].sum() / episodes["length"].sum())}


def _policy_function(agent, generator: torch.Generator) -> Callable[[np.ndarray], np.ndarray]:
    if hasattr(agent, "act"):
        takes_generator = "generator" in inspect.signature(agent.act).parameters
        if takes_generator:
            return lambda obs: np.asarray(agent.act(obs, generator=generator))
        return lambda obs: np.asarray(agent.act(obs))
    if callable(agent):
        return lambda obs: np.asarray(agent(obs))
    raise TypeError(f"agent must have .act(obs) or be callable obs -> actions, got {type(agent).__name__}.")


def _rollout(env: LoggedEnv, choose: Callable[[np.ndarray, np.ndarray, np.ndarray, int], np.ndarray], n_episodes: int,
             rng: np.random.Generator, batch_size: int) -> pd.DataFrame:
    """Run ``n_episodes`` in batches, all episodes of a batch in lockstep (turn t of every live episode at once)."""
    world = env.world
    tables = []
    for first in range(0, n_episodes, batch_size):
        b = min(batch_size, n_episodes - first)
        users = rng.choice(world.env_users, size=b)
        items = np.zeros((b, world.max_turn), dtype=np.int64)
        rewards = np.zeros((b, world.max_turn))
        alive = np.ones(b, dtype=bool)
        length, returns, clicks, left = np.zeros(b, np.int64), np.zeros(b), np.zeros(b, np.int64), np.zeros(b, bool)
        for t in range(world.max_turn):
            live = np.flatnonzero(alive)
            if len(live) == 0:
                break
            chosen = choose(users[live], items[live, :t], rewards[live, :t], t)
            r = world.rewards[users[live], chosen]
            leaving = world.leaves(items[live, :t], chosen)
            items[live, t], rewards[live, t] = chosen, r
            length[live] += 1
            returns[live] += r
            clicks[live] += r >= env.positive_threshold
            left[live] = leaving
            alive[live] = ~leaving
        tables.append(pd.DataFrame({"episode": np.arange(first, first + b), "user": users, "return": returns,
                                    "length": length, "clicks": clicks, "terminated": left, "truncated": ~left,
                                    "ctr": clicks / length}))
    return pd.concat(tables, ignore_index=True)


def _banned(env: LoggedEnv, history: np.ndarray) -> np.ndarray | None:
    if not env.no_repeat or history.shape[1] == 0:
        return None
    banned = np.zeros((len(history), env.world.n_items), dtype=bool)
    np.put_along_axis(banned, history, True, axis=1)
    return banned


def random_policy_rollout(env: gym.Env, n_episodes: int = 5000, seed: int = 0, batch_size: int = 5000) -> dict:
    """A uniform-random-item policy (repeats allowed unless the env has ``no_repeat``), batched in numpy.

    Returns the metrics of ``episode_metrics`` plus ``episodes``, the per-episode table."""
    inner = _unwrap(env)
    rng = np.random.default_rng(seed)

    def choose(users, items, rewards, t):
        banned = _banned(inner, items)
        if banned is None:
            return rng.integers(0, inner.world.n_items, size=len(users))
        scores = rng.random((len(users), inner.world.n_items))
        return np.where(banned, -1.0, scores).argmax(axis=1)

    episodes = _rollout(inner, choose, n_episodes, rng, batch_size)
    return {**episode_metrics(episodes), "episodes": episodes}


def evaluate_logged(env: gym.Env, agent, n_episodes: int = 1000, seed: int = 0, batch_size: int = 1000) -> dict:
    """Evaluate ``agent`` (anything with ``.act(obs_batch)`` or a callable obs (B, obs_dim) → actions (B, d)) on
    a logged environment, all episodes of a batch in lockstep (one ``act`` call per turn for the whole batch).

    Users are drawn with ``numpy.random.default_rng(seed)``; an agent whose ``act`` takes ``generator=`` gets a
    ``torch.Generator`` seeded with ``seed``. Returns R_cumu, Length, R_avg, CTR and the ``episodes`` table."""
    inner = _unwrap(env)
    rng = np.random.default_rng(seed)
    policy = _policy_function(agent, torch.Generator().manual_seed(seed))

    def choose(users, items, rewards, t):
        obs = inner.encode(users, items, rewards, np.full(len(users), t))
        actions = policy(obs)
        return inner.world.items_from_actions(actions.reshape(len(users), -1), _banned(inner, items))

    episodes = _rollout(inner, choose, n_episodes, rng, batch_size)
    return {**episode_metrics(episodes), "episodes": episodes}


def leave_rule_sweep(env: gym.Env, thresholds, n_episodes: int = 2000, seed: int = 0,
                     exact_window: tuple[bool, ...] = (False, True)) -> pd.DataFrame:
    """The uniform-random policy's Length and R_avg for each leave threshold, with EasyRL4Rec's window and the
    exact one: how the leave rule shapes the episodes (the reward matrix and embeddings are shared)."""
    inner = _unwrap(env)
    rows = []
    for exact in exact_window:
        for threshold in thresholds:
            world = replace_rule(inner.world, threshold=float(threshold), exact_window=exact)
            result = random_policy_rollout(LoggedEnv(world=world, no_repeat=inner.no_repeat), n_episodes, seed)
            rows.append({"threshold": float(threshold), "window": "exact" if exact else "EasyRL4Rec seq[t-k:t]",
                         "Length": result["Length"], "R_avg": result["R_avg"], "R_cumu": result["R_cumu"]})
    return pd.DataFrame(rows)
