"""Small behaviour data sets that live in the package, so notebooks and tests need no downloads."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .dataset import OfflineDataset

__all__ = ["MultimodalBehavior", "CornerBandit"]


def nearest_centre(actions: np.ndarray, centres: np.ndarray, radius: float) -> np.ndarray:
    """Index of the centre each action lies within ``radius`` of, or -1 when it is near none."""
    actions = np.asarray(actions, dtype=np.float64)
    if actions.ndim != 2 or actions.shape[1] != 2:
        raise ValueError(f"actions must have shape (n, 2), got {actions.shape}.")
    distances = np.linalg.norm(actions[:, None, :] - np.asarray(centres)[None], axis=2)
    return np.where(distances.min(axis=1) <= radius, distances.argmin(axis=1), -1)


@dataclass(frozen=True)
class MultimodalBehavior:
    """A 2-D, state-conditioned, multimodal behaviour set: the state says which user this is, and each
    user likes only some of four "item clusters" (modes) at the corners (±0.6, ±0.6) of the action square.

    ======  ====================  ============================
    user    likes modes           a Gaussian policy's mean is
    ======  ====================  ============================
    0       NE, SW                (0, 0) — between the modes
    1       NW, SE                (0, 0) — between the modes
    2       NE, NW, SW, SE        (0, 0) — between the modes
    ======  ====================  ============================

    Each logged action is an even pick among the user's liked modes plus N(0, std²) noise. The state is the
    user's one-hot id (state_dim = 3). A sample is "on" a mode when it lies within ``radius`` of its centre.
    """

    std: float = 0.06
    radius: float = 0.2
    centres: tuple[tuple[float, float], ...] = ((0.6, 0.6), (-0.6, 0.6), (-0.6, -0.6), (0.6, -0.6))
    mode_names: tuple[str, ...] = ("NE", "NW", "SW", "SE")
    likes: tuple[tuple[int, ...], ...] = ((0, 2), (1, 3), (0, 1, 2, 3))

    def __post_init__(self) -> None:
        if not self.std > 0 or not self.radius > 0:
            raise ValueError(f"std and radius must be positive, got std={self.std}, radius={self.radius}.")
        for user, modes in enumerate(self.likes):
            if not modes or any(not 0 <= m < len(self.centres) for m in modes):
                raise ValueError(f"user {user} must like at least one mode among 0..{len(self.centres) - 1}, got {modes}.")

    @property
    def n_users(self) -> int:
        return len(self.likes)

    @property
    def state_dim(self) -> int:
        return self.n_users

    action_dim = 2

    def states_for(self, user: int, n: int) -> np.ndarray:
        """(n, state_dim) float32 one-hot states of one user."""
        if not 0 <= user < self.n_users:
            raise ValueError(f"user must be in 0..{self.n_users - 1}, got {user}.")
        states = np.zeros((n, self.n_users), dtype=np.float32)
        states[:, user] = 1.0
        return states

    def draw(self, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Draw ``n`` logged (state, action) pairs from a numpy generator seeded by ``seed``. Returns ``states``
        (n, 3), ``actions`` (n, 2), both float32 inside [-1, 1], and ``users`` (n,) int."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}.")
        rng = np.random.default_rng(seed)
        users = rng.integers(0, self.n_users, size=n)
        centres = np.asarray(self.centres, dtype=np.float64)
        modes = np.array([self.likes[u][rng.integers(len(self.likes[u]))] for u in users])
        actions = np.clip(centres[modes] + self.std * rng.standard_normal((n, 2)), -1.0, 1.0)
        states = np.eye(self.n_users, dtype=np.float32)[users]
        return states, actions.astype(np.float32), users

    # The old name, kept working: ``draw`` says what it does, where ``.sample`` means other things elsewhere
    # (``OfflineDataset.sample(batch_size, generator)``, ``DiffusionPolicy.sample(state, ...)``).
    sample = draw

    def nearest_mode(self, actions: np.ndarray) -> np.ndarray:
        """Index of the mode each action lies on, or -1 when it is farther than ``radius`` from all."""
        return nearest_centre(actions, np.asarray(self.centres), self.radius)

    def mode_fractions(self, actions: np.ndarray, user: int) -> dict[str, float]:
        """Fraction of ``actions`` on each mode the user likes, and ``"elsewhere"``: the fraction on no
        liked mode (between modes or on a mode this user does not like)."""
        modes = self.nearest_mode(actions)
        liked = self.likes[user]
        fractions = {self.mode_names[m]: float(np.mean(modes == m)) for m in liked}
        fractions["elsewhere"] = float(np.mean(~np.isin(modes, liked)))
        return fractions


@dataclass(frozen=True)
class CornerBandit:
    """Diffusion-QL's 2-D offline bandit, and a contextual variant.

    Behaviour actions come evenly from four blobs centred at (±0.8, ±0.8) with std 0.05 (clipped to
    [-1, 1]²). An action on a blob earns a reward ~ N(m, 0.5²) with m = 3 (NE), 0 (NW), 1.5 (SW), 5 (SE);
    every episode ends after one step (terminal = 1), so Q(s, a) is the expected reward. An action that lands
    on no blob (farther than ``radius`` from every centre) earns 0: nothing in the data says otherwise.

    ``contextual=True``: the observation is a one-hot context c ∈ {0..3} and the reward means are rotated by
    c corners, m_k(c) = m_{(k - c) mod 4}, so the best corner is (3 + c) mod 4: the policy must read the state.
    Otherwise the observation is the constant 1 (obs_dim = 1).
    """

    contextual: bool = False
    std: float = 0.05
    reward_std: float = 0.5
    radius: float = 0.25
    means: tuple[float, ...] = (3.0, 0.0, 1.5, 5.0)
    centres: tuple[tuple[float, float], ...] = ((0.8, 0.8), (-0.8, 0.8), (-0.8, -0.8), (0.8, -0.8))
    blob_names: tuple[str, ...] = ("NE", "NW", "SW", "SE")

    action_dim = 2

    @property
    def obs_dim(self) -> int:
        return len(self.centres) if self.contextual else 1

    def observations(self, context: int, n: int) -> np.ndarray:
        """(n, obs_dim) float32 observations of one context (ignored unless contextual)."""
        if not 0 <= context < len(self.centres):
            raise ValueError(f"context must be in 0..{len(self.centres) - 1}, got {context}.")
        if not self.contextual:
            return np.ones((n, 1), dtype=np.float32)
        obs = np.zeros((n, len(self.centres)), dtype=np.float32)
        obs[:, context] = 1.0
        return obs

    def contexts_of(self, observations: np.ndarray) -> np.ndarray:
        """The context index of each observation row (all 0 for the plain bandit)."""
        observations = np.asarray(observations)
        if observations.ndim != 2 or observations.shape[1] != self.obs_dim:
            raise ValueError(f"observations must have shape (n, {self.obs_dim}), got {observations.shape}.")
        return observations.argmax(axis=1) if self.contextual else np.zeros(len(observations), dtype=int)

    def blob_means(self, context: int) -> np.ndarray:
        """Mean reward of each blob in this context, (4,)."""
        return np.roll(np.asarray(self.means), context if self.contextual else 0)

    def best_blob(self, context: int = 0) -> int:
        return int(np.argmax(self.blob_means(context)))

    def blob_of(self, actions: np.ndarray) -> np.ndarray:
        """Blob index of each action, -1 off all blobs."""
        return nearest_centre(actions, np.asarray(self.centres), self.radius)

    def true_reward(self, observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Expected reward of each (observation, action), (n,): the blob's mean, 0 off the blobs."""
        blobs = self.blob_of(actions)
        contexts = self.contexts_of(observations)
        means = np.stack([self.blob_means(c) for c in range(len(self.centres))])[contexts, np.maximum(blobs, 0)]
        return np.where(blobs >= 0, means, 0.0)

    def dataset(self, n: int = 10_000, seed: int = 0) -> OfflineDataset:
        """``n`` logged one-step episodes from the uniform-over-blobs behaviour policy."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}.")
        rng = np.random.default_rng(seed)
        k = len(self.centres)
        contexts = rng.integers(0, k, size=n) if self.contextual else np.zeros(n, dtype=int)
        blobs = rng.integers(0, k, size=n)
        actions = np.clip(np.asarray(self.centres)[blobs] + self.std * rng.standard_normal((n, 2)), -1.0, 1.0)
        observations = np.eye(k, dtype=np.float32)[contexts] if self.contextual else np.ones((n, 1), np.float32)
        means = np.stack([self.blob_means(c) for c in range(k)])[contexts, blobs]
        rewards = means + self.reward_std * rng.standard_normal(n)
        return OfflineDataset(
            observations=observations,
            actions=actions.astype(np.float32),
            rewards=rewards.astype(np.float32),
            next_observations=observations.copy(),
            terminals=np.ones(n, dtype=np.float32),
        )
