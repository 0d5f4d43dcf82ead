"""RecSim-v0: a recommendation simulator where long-term user behaviour decides the return.

Modelled on VirtualTaobao (a user-profile observation, a continuous action that weights item features, a
page of items, reward = clicks, users who leave), with its flaw fixed: there the leave time is drawn per user
and ignores the policy, so session length cannot differ between methods. Here leaving depends on how the
user is served, which is the paper's point (Sec. 1, Fig. 1, Table 3).

Symbols follow docs/notation.md (its simulator table; notebook 06 has the full list with every config field).
The user model, per user (all of it hidden from the agent):

* ``preference`` p — a unit vector, the long-term taste; fixed for the session.
* ``interest`` h — the short-term interest, a unit vector that starts near p
  (h₀ = normalise(p + ``initial_interest_noise`` · a uniform random unit vector)) and drifts toward the
  items the user just clicked: ``h ← normalise((1 − drift) h + drift · normalise(mean(clicked items)))``
  (unchanged on a page without clicks).
* ``fatigue`` b — grows when a page looks like the recent pages:
  ``b ← fatigue_decay · b + max(0, cos(page centroid, recent centroid) − fatigue_threshold)`` (no fatigue on
  the first page; the recent centroid is a running average of the pages' directions, halved every page).
* ``satisfaction`` c̄ — an exponential average of the page's click rate:
  ``c̄ ← satisfaction_decay · c̄ + (1 − satisfaction_decay) · clicks / page_size`` (c̄ = 0.5 for a new user).

A page is the ``page_size`` items with the highest score ``v_j · action`` (v_j the feature vector of item j, a
unit vector). Item j is clicked with probability
``σ(click_scale · (long_term_weight · p·v_j + short_term_weight · h·v_j − ζ) − fatigue_click_penalty · b)``
with ζ = ``click_threshold`` the click threshold. After the page the user leaves with probability
``σ(leave_bias + leave_fatigue · b − leave_satisfaction · c̄)``; a session is capped at ``max_pages`` pages (a
timeout, not a terminal). The reward of a page is its number of clicks.

Chasing h (the myopic policy) pays on the first pages, but h then collapses onto what was shown, pages
repeat, fatigue builds and the user leaves. Serving p with variety (the long-term expert) clicks a little
less at first and keeps the user for much longer.

The observation (see :class:`~dac4rec_lite.observation.ObsLayout`) is a noisy, partial view of p (the
profile ``tanh(M p + noise)`` with M a fixed profile_dim × action_dim projection and noise ~ N(0,
profile_noise²) per coordinate, like VirtualTaobao's user attributes) followed by the last ``window`` pages,
each summarised as (page centroid, centroid of the clicked items, click rate, valid flag).
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import gymnasium as gym
import numpy as np

from ..observation import ObsLayout
from .checks import check_action_box, check_integer, check_number

__all__ = ["RecSimConfig", "RecSimulator", "UserBatch", "RecSimEnv", "MEMORY_BUDGET_BYTES"]

# The largest tables a simulator may allocate (checked from the config, before anything is allocated).
MEMORY_BUDGET_BYTES = 2 * 2**30
# Rows of the (users × n_items) score matrix computed at once when a page is chosen.
_SCORE_BLOCK_BYTES = 64 * 2**20


@dataclass(frozen=True)
class RecSimConfig:
    """Everything that defines a simulator; the catalogue is drawn from ``catalogue_seed``, so two
    simulators with equal configs share their items (the dataset and the evaluation see the same world)."""

    n_items: int = 500
    action_dim: int = 16
    page_size: int = 10
    max_pages: int = 100
    window: int = 5
    profile_dim: int = 16
    profile_noise: float = 0.3
    catalogue_seed: int = 0
    initial_interest_noise: float = 0.9
    drift: float = 0.5
    long_term_weight: float = 1.0
    short_term_weight: float = 1.0
    click_threshold: float = 0.9
    click_scale: float = 6.0
    fatigue_decay: float = 0.8
    fatigue_threshold: float = 0.7
    fatigue_click_penalty: float = 2.0
    satisfaction_decay: float = 0.7
    leave_bias: float = -1.0
    leave_fatigue: float = 2.5
    leave_satisfaction: float = 8.0

    def __post_init__(self) -> None:
        owner = "RecSimConfig"
        for name in ("n_items", "action_dim", "page_size", "max_pages", "window"):
            check_integer(owner, name, getattr(self, name), low=1)
        check_integer(owner, "profile_dim", self.profile_dim, low=0)
        check_integer(owner, "catalogue_seed", self.catalogue_seed, low=0)
        if self.page_size > self.n_items:
            raise ValueError(f"{owner}: page_size ({self.page_size}) cannot exceed n_items ({self.n_items}).")
        ranges = {"drift": (0.0, 1.0), "fatigue_decay": (0.0, 1.0), "satisfaction_decay": (0.0, 1.0),
                  "profile_noise": (0.0, None), "initial_interest_noise": (0.0, None), "click_scale": (0.0, None),
                  "fatigue_click_penalty": (0.0, None)}
        for field in fields(self):
            if field.type in ("float", float):
                check_number(owner, field.name, getattr(self, field.name), *ranges.get(field.name, (None, None)))
        if self.table_bytes > MEMORY_BUDGET_BYTES:
            raise ValueError(
                f"{owner}: n_items={self.n_items} with action_dim={self.action_dim} needs "
                f"{self.table_bytes / 2**30:.1f} GiB for the item table (8 bytes × n_items × action_dim), over the "
                f"simulator's memory budget of {MEMORY_BUDGET_BYTES / 2**30:g} GiB. Use fewer items or a smaller "
                f"action_dim (or, on a machine with the memory, raise dac4rec_lite.envs.recsim.MEMORY_BUDGET_BYTES)."
            )

    @property
    def table_bytes(self) -> int:
        """Bytes of the simulator's tables: item features (n_items × d) and profile projection, float64."""
        return 8 * self.action_dim * (self.n_items + self.profile_dim)

    @property
    def layout(self) -> ObsLayout:
        return ObsLayout(profile_dim=self.profile_dim, window=self.window, step_dim=2 * self.action_dim + 2)


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


@dataclass
class UserBatch:
    """The hidden and observable state of B users, updated in place by :meth:`RecSimulator.step`."""

    preference: np.ndarray      # (B, d) unit vectors, long-term taste p
    interest: np.ndarray        # (B, d) unit vectors, short-term interest h
    fatigue: np.ndarray         # (B,) fatigue b
    satisfaction: np.ndarray    # (B,) satisfaction c̄
    profile: np.ndarray         # (B, profile_dim) noisy partial view of the preference, in (-1, 1)
    history: np.ndarray         # (B, window, step_dim) last pages, oldest first
    pages: np.ndarray           # (B,) pages served so far
    recent_centroid: np.ndarray  # (B, d) running mean direction of recent pages (for fatigue)

    def __len__(self) -> int:
        return len(self.fatigue)

    def subset(self, index: np.ndarray) -> UserBatch:
        return UserBatch(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


class RecSimulator:
    """The batched core: a catalogue plus vectorised user dynamics. Everything takes a numpy Generator."""

    def __init__(self, config: RecSimConfig | None = None) -> None:
        if config is not None and not isinstance(config, RecSimConfig):
            raise TypeError(f"config must be a RecSimConfig, got {type(config).__name__}.")
        self.config = config or RecSimConfig()
        c = self.config
        rng = np.random.default_rng(c.catalogue_seed)
        self.item_features = _normalise(rng.standard_normal((c.n_items, c.action_dim)))
        self.profile_projection = rng.standard_normal((c.profile_dim, c.action_dim)) / np.sqrt(c.action_dim)
        self.layout = c.layout

    @property
    def page_size(self) -> int:
        """Items recommended per step (CTR is clicks per recommended item)."""
        return self.config.page_size

    # ----- users --------------------------------------------------------------------------------------
    def new_users(self, n: int, rng: np.random.Generator) -> UserBatch:
        """Draw ``n`` fresh users from the population."""
        c = self.config
        preference = _normalise(rng.standard_normal((n, c.action_dim)))
        interest = _normalise(preference + c.initial_interest_noise * _normalise(rng.standard_normal((n, c.action_dim))))
        profile = np.tanh(preference @ self.profile_projection.T * np.sqrt(c.action_dim)
                          + c.profile_noise * rng.standard_normal((n, c.profile_dim)))
        return UserBatch(
            preference=preference, interest=interest, fatigue=np.zeros(n), satisfaction=np.full(n, 0.5),
            profile=profile, history=np.zeros((n, c.window, self.layout.step_dim)), pages=np.zeros(n, dtype=np.int64),
            recent_centroid=np.zeros((n, c.action_dim)),
        )

    def observe(self, users: UserBatch) -> np.ndarray:
        """(B, obs_dim) float32: profile, then the history window flattened (see ObsLayout)."""
        flat = users.history.reshape(len(users), -1)
        return np.concatenate([users.profile, flat], axis=1).astype(np.float32)

    # ----- one page -----------------------------------------------------------------------------------
    def check_actions(self, actions: np.ndarray, n: int) -> np.ndarray:
        return check_action_box(actions, n, self.config.action_dim, "the simulator")

    def page(self, actions: np.ndarray) -> np.ndarray:
        """(B, page_size) item ids: the items with the highest score ``item_features @ action``, best first
        (scored in blocks of users, so a large catalogue never needs a B × n_items matrix at once)."""
        k = self.config.page_size
        rows = max(1, _SCORE_BLOCK_BYTES // (8 * self.config.n_items))
        pages = []
        for start in range(0, len(actions), rows):
            scores = actions[start:start + rows] @ self.item_features.T
            top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
            order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
            pages.append(np.take_along_axis(top, order, axis=1))
        return np.concatenate(pages) if pages else np.zeros((0, k), dtype=np.int64)

    def click_probabilities(self, users: UserBatch, items: np.ndarray) -> np.ndarray:
        """(B, page_size) click probability of each shown item under the user's current state."""
        c = self.config
        v = self.item_features[items]                                        # (B, k, d)
        affinity = (c.long_term_weight * np.einsum("bkd,bd->bk", v, users.preference)
                    + c.short_term_weight * np.einsum("bkd,bd->bk", v, users.interest))
        logits = c.click_scale * (affinity - c.click_threshold) - c.fatigue_click_penalty * users.fatigue[:, None]
        return _sigmoid(logits)

    def leave_probability(self, users: UserBatch) -> np.ndarray:
        """(B,) probability that each user leaves after the page just served."""
        c = self.config
        return _sigmoid(c.leave_bias + c.leave_fatigue * users.fatigue - c.leave_satisfaction * users.satisfaction)

    def step(self, users: UserBatch, actions: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Serve one page to every user in ``users`` (updated in place). Returns per-user arrays:
        ``actions`` (as checked), ``items`` (B, k), ``clicked`` (B, k) bool, ``clicks``, ``reward`` (= clicks),
        ``ctr``, ``leave_probability``, ``left`` (the user ended the session: a terminal) and ``truncated``
        (the page cap: a timeout)."""
        c = self.config
        n = len(users)
        actions = self.check_actions(actions, n)
        items = self.page(actions)
        v = self.item_features[items]
        p_click = self.click_probabilities(users, items)
        clicked = rng.random(p_click.shape) < p_click
        clicks = clicked.sum(axis=1)

        centroid = v.mean(axis=1)
        any_click = clicks > 0
        clicked_centroid = np.where(any_click[:, None], (v * clicked[..., None]).sum(axis=1) / np.maximum(clicks, 1)[:, None], 0.0)
        # Short-term interest drifts toward what was clicked.
        drifted = _normalise((1 - c.drift) * users.interest + c.drift * _normalise(clicked_centroid + 1e-12))
        users.interest = np.where(any_click[:, None], drifted, users.interest)
        # Fatigue: a page that looks like the recent ones tires the user.
        seen = users.pages > 0
        similarity = np.einsum("bd,bd->b", _normalise(centroid), _normalise(users.recent_centroid))
        users.fatigue = c.fatigue_decay * users.fatigue + np.where(seen, np.maximum(similarity - c.fatigue_threshold, 0.0), 0.0)
        users.recent_centroid = 0.5 * users.recent_centroid + 0.5 * _normalise(centroid)
        users.satisfaction = c.satisfaction_decay * users.satisfaction + (1 - c.satisfaction_decay) * clicks / c.page_size
        # The history window: drop the oldest page, append this one.
        summary = np.concatenate([centroid, clicked_centroid, (clicks / c.page_size)[:, None], np.ones((n, 1))], axis=1)
        users.history = np.concatenate([users.history[:, 1:], summary[:, None, :]], axis=1)
        users.pages = users.pages + 1

        leave_p = self.leave_probability(users)
        left = rng.random(n) < leave_p
        truncated = ~left & (users.pages >= c.max_pages)
        return {"actions": actions, "items": items, "clicked": clicked, "clicks": clicks,
                "reward": clicks.astype(np.float64), "ctr": clicks / c.page_size,
                "leave_probability": leave_p, "left": left, "truncated": truncated}


class RecSimEnv(gym.Env):
    """``gymnasium.make("dac4rec_lite/RecSim-v0", **config)``: one user per episode.

    ``reset(seed=...)`` draws a user (deterministic for a seed); ``step(action)`` serves one page and
    returns reward = clicks; ``terminated`` when the user leaves, ``truncated`` at the page cap. ``info`` has
    ``clicks``, ``ctr``, ``items`` and ``leave_probability``. ``env.unwrapped.simulator`` is the batched
    core (used by :func:`dac4rec_lite.evaluate` to run thousands of users at once; see
    :mod:`dac4rec_lite.evaluation` for the protocol it follows) and
    ``env.unwrapped.users`` the current user's hidden state (scripted experts may read it)."""

    metadata = {"render_modes": []}

    def __init__(self, **config) -> None:
        self.config = RecSimConfig(**config)
        self.simulator = RecSimulator(self.config)
        self.obs_layout = self.simulator.layout
        d = self.config.action_dim
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(d,), dtype=np.float32)
        self.observation_space = gym.spaces.Box(-1.0, 1.0, shape=(self.obs_layout.obs_dim,), dtype=np.float32)
        self.users: UserBatch | None = None
        self._done = False

    @property
    def page_size(self) -> int:
        """Items recommended per step (the page), for CTR."""
        return self.config.page_size

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.users = self.simulator.new_users(1, self.np_random)
        self._done = False
        return self.simulator.observe(self.users)[0], {"pages": 0}

    def step(self, action):
        if self.users is None:
            raise RuntimeError("call reset() before step().")
        if self._done:
            raise RuntimeError("this episode has ended; call reset() to start a new user.")
        out = self.simulator.step(self.users, np.asarray(action)[None], self.np_random)
        self._done = bool(out["left"][0] or out["truncated"][0])
        obs = self.simulator.observe(self.users)[0]
        info = {"clicks": int(out["clicks"][0]), "ctr": float(out["ctr"][0]), "items": out["items"][0],
                "leave_probability": float(out["leave_probability"][0])}
        return obs, float(out["clicks"][0]), bool(out["left"][0]), bool(out["truncated"][0]), info
