"""A gymnasium environment built from a logged dataset by EasyRL4Rec's rules, and the offline buffer cut from
the same log.

``gymnasium.make("dac4rec_lite/Logged-v0", dataset="coat", path=FOLDER, **overrides)``

* An episode is one user (drawn uniformly from the dataset's users at ``reset``) receiving one item per turn.
* Action: a vector in [−1, 1]^d (anything outside the box is refused, as RecSim-v0 does); it recommends the
  item whose embedding (``env.unwrapped.item_embeddings``, (n_items, d)) is nearest by cosine, so an item's
  embedding recommends that item. ``step_item(i)`` recommends item i (an integer id) directly.
  ``no_repeat=True`` skips items already recommended in the episode.
* Reward: ``rewards[user, item]`` of the complete reward matrix, on the dataset's own scale (Coat: rating
  1..5), as EasyRL4Rec reports it. ``info["reward_normalised"]`` holds it min–max normalised. A
  recommendation is a click when its reward reaches ``positive_threshold`` (``info["clicks"]``: 0 or 1).
* End: ``terminated`` when the user leaves by the dataset's leave rule (that step still pays), ``truncated``
  after ``max_turn`` = 30 turns. See ``dac4rec_lite/data/logged_world.py`` for the rules and the window quirk.
* Observation (``env.unwrapped.obs_layout``, an ``ObsLayout``): ``[profile | W history steps]``, oldest first,
  left-padded with zeros; each step is ``[item embedding (d), normalised reward, valid flag]``. The profile is
  empty unless ``user_features=True`` (Coat ships one-hot user features).

``env.unwrapped.simulator`` is the batched core (a :class:`LoggedSimulator`, the same protocol as RecSim-v0's),
which the gymnasium API steps one user at a time and :func:`dac4rec_lite.evaluate` steps thousands at once:
both run the same code. Rollouts and metrics live in :mod:`dac4rec_lite.evaluation`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ..data.dataset import OfflineDataset
from ..data.logged import LoggedData, load_logged
from ..data.logged_world import LEAVE_KINDS, MAX_TURN, LoggedWorld, build_world
from ..observation import ObsLayout
from .checks import check_action_box, check_flag, check_integer, check_number

__all__ = ["LoggedEnv", "LoggedSimulator", "LoggedUsers", "logged_dataset", "register_logged_env", "ENV_ID"]

ENV_ID = "dac4rec_lite/Logged-v0"
# A recommendation counts as a click (for CTR) when its reward reaches this value on the dataset's scale.
POSITIVE_REWARD = {"rating": 4.0, "watch_ratio": 2.0, "is_click": 0.5}
_ENCODE_BLOCK = 65536  # transitions encoded at once by logged_dataset (bounds memory on MovieLens-1M)
SPLITS = ("train", "test")


@dataclass
class LoggedUsers:
    """B simulated users of a logged dataset, updated in place by :meth:`LoggedSimulator.step`."""

    user: np.ndarray      # (B,) user ids
    items: np.ndarray     # (B, max_turn) items recommended so far (the first ``turn`` entries are real)
    rewards: np.ndarray   # (B, max_turn) their rewards, on the dataset's scale
    turn: np.ndarray      # (B,) turns played

    def __len__(self) -> int:
        return len(self.user)

    def subset(self, index: np.ndarray) -> LoggedUsers:
        return LoggedUsers(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


class LoggedSimulator:
    """The batched core of Logged-v0: users drawn from the dataset, one item per turn, EasyRL4Rec's leave rule.

    It follows the rollout protocol of :mod:`dac4rec_lite.evaluation` (``new_users``, ``observe``,
    ``check_actions``, ``step``, ``page_size``); the simulation draws no random numbers after ``new_users``."""

    page_size = 1

    def __init__(self, world: LoggedWorld, layout: ObsLayout, profiles: np.ndarray | None, no_repeat: bool,
                 positive_threshold: float) -> None:
        self.world, self.layout, self.profiles = world, layout, profiles
        self.no_repeat, self.positive_threshold = no_repeat, positive_threshold

    def new_users(self, n: int, rng: np.random.Generator, user: int | None = None) -> LoggedUsers:
        """``n`` users drawn uniformly from the dataset's episode users (or ``n`` copies of ``user``)."""
        users = rng.choice(self.world.env_users, size=n) if user is None else np.full(n, user, dtype=np.int64)
        max_turn = self.world.max_turn
        return LoggedUsers(user=np.asarray(users), items=np.zeros((n, max_turn), dtype=np.int64),
                           rewards=np.zeros((n, max_turn)), turn=np.zeros(n, dtype=np.int64))

    def observe(self, users: LoggedUsers) -> np.ndarray:
        return self.encode(users.user, users.items, users.rewards, users.turn)

    def encode(self, users: np.ndarray, items: np.ndarray, rewards: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Observations (B, obs_dim) of B histories: ``items``/``rewards`` (B, L) hold each history's first
        ``lengths[b]`` steps (rewards on the dataset's scale); the last W of them enter the observation."""
        layout, world = self.layout, self.world
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

    def check_actions(self, actions: Any, n: int) -> np.ndarray:
        """(n, d) action vectors in [−1, 1]^d, or (n,) integer item ids; anything else is refused."""
        actions = np.asarray(actions)
        if actions.ndim == 1 and actions.dtype.kind in "iu":
            if len(actions) != n:
                raise ValueError(f"item ids must have shape ({n},), got {actions.shape}.")
            outside = (actions < 0) | (actions >= self.world.n_items)
            if outside.any():
                raise ValueError(f"item {actions[outside][0]} is not an item id (0..{self.world.n_items - 1}).")
            return actions.astype(np.int64)
        d = self.world.embedding_dim
        if actions.dtype.kind not in "fiu":
            raise TypeError(f"actions must be numbers (n, {d}) or integer item ids (n,), got dtype {actions.dtype}.")
        return check_action_box(actions, n, d, "the environment")

    def banned(self, users: LoggedUsers) -> np.ndarray | None:
        """(B, n_items) bool: the items each user has already been shown, when ``no_repeat`` (else None)."""
        if not self.no_repeat or users.turn.max(initial=0) == 0:
            return None
        banned = np.zeros((len(users), self.world.n_items), dtype=bool)
        rows, cols = np.nonzero(np.arange(self.world.max_turn)[None, :] < users.turn[:, None])
        banned[rows, users.items[rows, cols]] = True
        return banned

    def step(self, users: LoggedUsers, actions: Any, rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
        """Recommend one item to every user in ``users`` (updated in place). Returns per-user arrays:
        ``actions`` (the action vectors; an item id's embedding), ``items``, ``reward`` (dataset scale),
        ``clicks`` (0/1), ``ctr``, ``left`` (a terminal) and ``truncated`` (the turn cap: a timeout)."""
        n, world = len(users), self.world
        if users.turn.max(initial=0) >= world.max_turn:
            raise ValueError(f"these users have had max_turn = {world.max_turn} turns already; start new users.")
        actions = self.check_actions(actions, n)
        if actions.ndim == 1:
            items, actions = actions, world.item_embeddings[actions].astype(np.float64)
        else:
            items = world.items_from_actions(actions, self.banned(users))
        reward = world.rewards[users.user, items].astype(np.float64)
        left = np.zeros(n, dtype=bool)
        for t in np.unique(users.turn):
            rows = np.flatnonzero(users.turn == t)
            left[rows] = world.leaves(users.items[rows, :t], items[rows])
        everyone = np.arange(n)
        users.items[everyone, users.turn], users.rewards[everyone, users.turn] = items, reward
        users.turn = users.turn + 1
        clicks = (reward >= self.positive_threshold).astype(np.int64)
        return {"actions": actions, "items": items, "reward": reward, "clicks": clicks, "ctr": clicks / self.page_size,
                "left": left, "truncated": ~left & (users.turn >= world.max_turn)}


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

    Every number is checked at construction (finite, in range; integers whole), before any file is read.
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
        owner = "Logged-v0"
        window = check_integer(owner, "window", window, low=1)
        for name, flag in (("user_features", user_features), ("no_repeat", no_repeat), ("exact_window", exact_window),
                           ("progress", progress)):
            check_flag(owner, name, flag)
        if leave_rule is not None and leave_rule not in LEAVE_KINDS:
            raise ValueError(f"{owner}: leave_rule must be one of {LEAVE_KINDS} (or None: the dataset's own), "
                             f"got {leave_rule!r}.")
        if positive_threshold is not None:
            positive_threshold = check_number(owner, "positive_threshold", positive_threshold)
        if world is None:
            # checked here too, so a bad number fails before the files are read and a user model is fitted
            check_integer(owner, "max_turn", max_turn, low=1)
            check_integer(owner, "embedding_dim", embedding_dim, low=1)
            check_integer(owner, "seed", seed, low=0)
            if leave_threshold is not None:
                check_number(owner, "leave_threshold", leave_threshold, low=0.0)
            if leave_window is not None:
                check_integer(owner, "leave_window", leave_window, low=1)
            data = data if data is not None else load_logged(dataset, path)
            world = build_world(data, leave_rule=leave_rule, leave_threshold=leave_threshold, leave_window=leave_window,
                                exact_window=exact_window, max_turn=max_turn, embedding_dim=embedding_dim,
                                user_model=user_model, seed=seed, progress=progress)
        elif not isinstance(world, LoggedWorld):
            raise TypeError(f"world must be a LoggedWorld (from build_world), got {type(world).__name__}.")
        self.world = world
        self.no_repeat = bool(no_repeat)
        if self.no_repeat and world.n_items < world.max_turn:
            raise ValueError(f"no_repeat needs at least max_turn = {world.max_turn} items, the data has {world.n_items}.")
        if user_features and world.data.user_features is None:
            raise ValueError(f"{world.data.name} ships no user features; use user_features=False.")
        self.profiles = world.data.user_features if user_features else None
        profile_dim = 0 if self.profiles is None else self.profiles.shape[1]
        self.obs_layout = ObsLayout(profile_dim=profile_dim, window=window, step_dim=world.embedding_dim + 2)
        self.positive_threshold = (POSITIVE_REWARD.get(world.data.reward_name, 0.0) if positive_threshold is None
                                   else positive_threshold)
        self.simulator = LoggedSimulator(world, self.obs_layout, self.profiles, self.no_repeat, self.positive_threshold)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(world.embedding_dim,), dtype=np.float32)
        # every feature is bounded: embeddings in [-1, 1], normalised rewards, valid flags and one-hot profiles in [0, 1]
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(self.obs_layout.obs_dim,), dtype=np.float32)
        self.users: LoggedUsers | None = None
        self._done = True

    # ----- what agents and notebooks read -------------------------------------------------------------
    page_size = LoggedSimulator.page_size

    @property
    def item_embeddings(self) -> np.ndarray:
        """(n_items, d) in [−1, 1]: the action ``item_embeddings[i]`` recommends item i."""
        return self.world.item_embeddings

    @property
    def n_items(self) -> int:
        return self.world.n_items

    def encode(self, users: np.ndarray, items: np.ndarray, rewards: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Observations of B histories (see :meth:`LoggedSimulator.encode`)."""
        return self.simulator.encode(users, items, rewards, lengths)

    # ----- gymnasium API ----------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start an episode with a user drawn uniformly from the dataset's users (``options={"user": u}`` fixes it)."""
        super().reset(seed=seed)
        options = options or {}
        user = None
        if "user" in options:
            user = check_integer(owner="Logged-v0 reset", name="options['user']", value=options["user"], low=0,
                                 high=self.world.n_users - 1)
        self.users = self.simulator.new_users(1, self.np_random, user=user)
        self._done = False
        self._cum_reward, self._clicks = 0.0, 0
        return self.simulator.observe(self.users)[0], {"user": int(self.users.user[0])}

    def step(self, action):
        if self._done:
            raise RuntimeError("the episode has ended: call reset() before step().")
        action = np.asarray(action)
        if action.dtype.kind not in "fiu" or action.size != self.world.embedding_dim:
            raise ValueError(f"the action must be a vector of {self.world.embedding_dim} numbers in [-1, 1], got "
                             f"shape {action.shape} ({action.dtype}); use step_item(i) to recommend item i.")
        return self._play(action.astype(np.float64).reshape(1, -1))

    def step_item(self, item: int):
        """Recommend item ``item`` (an integer id) directly (the same as ``step(item_embeddings[item])``)."""
        if self._done:
            raise RuntimeError("the episode has ended: call reset() before step_item().")
        item = check_integer("Logged-v0 step_item", "item", item, low=0, high=self.world.n_items - 1)
        return self._play(np.array([item], dtype=np.int64))

    def _play(self, action: np.ndarray):
        out = self.simulator.step(self.users, action)
        reward, item, click = float(out["reward"][0]), int(out["items"][0]), int(out["clicks"][0])
        terminated, truncated = bool(out["left"][0]), bool(out["truncated"][0])
        self._done = terminated or truncated
        self._cum_reward += reward
        self._clicks += click
        # clicks / ctr are this step's (one item per page), as RecSim-v0 reports them and dl.evaluate sums them
        info = {"user": int(self.users.user[0]), "item": item, "left": terminated, "turn": int(self.users.turn[0]),
                "reward_normalised": float(self.world.normalise(reward)), "cum_reward": self._cum_reward,
                "clicks": click, "ctr": float(out["ctr"][0]), "total_clicks": self._clicks}
        return self.simulator.observe(self.users)[0], reward, terminated, truncated, info


def register_logged_env() -> None:
    """Register ``dac4rec_lite/Logged-v0`` with gymnasium (idempotent)."""
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point="dac4rec_lite.envs.logged_env:LoggedEnv")


register_logged_env()


# ----- the offline buffer -------------------------------------------------------------------------------
def unwrap_logged(env) -> LoggedEnv:
    """The ``LoggedEnv`` inside ``env`` (a wrapper of one, or one); ``TypeError`` for anything else."""
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
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")
    inner = unwrap_logged(env) if env is not None else LoggedEnv(name, path, **env_kwargs)
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


# Rollouts and metrics moved to dac4rec_lite.evaluation (one protocol for every environment); the old names
# stay importable from here.
_MOVED = ("evaluate_logged", "random_policy_rollout", "episode_metrics", "leave_rule_sweep")


def __getattr__(name: str):
    if name in _MOVED:
        from .. import evaluation
        return getattr(evaluation, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
