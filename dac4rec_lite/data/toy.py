"""Small behaviour data sets that live in the package, so notebooks and tests need no downloads."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MultimodalBehavior"]


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

    def sample(self, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Draw ``n`` logged (state, action) pairs. Returns ``states`` (n, 3), ``actions`` (n, 2), both
        float32 inside [-1, 1], and ``users`` (n,) int."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}.")
        rng = np.random.default_rng(seed)
        users = rng.integers(0, self.n_users, size=n)
        centres = np.asarray(self.centres, dtype=np.float64)
        modes = np.array([self.likes[u][rng.integers(len(self.likes[u]))] for u in users])
        actions = np.clip(centres[modes] + self.std * rng.standard_normal((n, 2)), -1.0, 1.0)
        states = np.eye(self.n_users, dtype=np.float32)[users]
        return states, actions.astype(np.float32), users

    def nearest_mode(self, actions: np.ndarray) -> np.ndarray:
        """Index of the mode each action lies on, or -1 when it is farther than ``radius`` from all."""
        actions = np.asarray(actions, dtype=np.float64)
        if actions.ndim != 2 or actions.shape[1] != 2:
            raise ValueError(f"actions must have shape (n, 2), got {actions.shape}.")
        distances = np.linalg.norm(actions[:, None, :] - np.asarray(self.centres)[None], axis=2)
        nearest = distances.argmin(axis=1)
        return np.where(distances.min(axis=1) <= self.radius, nearest, -1)

    def mode_fractions(self, actions: np.ndarray, user: int) -> dict[str, float]:
        """Fraction of ``actions`` on each mode the user likes, and ``"elsewhere"``: the fraction on no
        liked mode (between modes or on a mode this user does not like)."""
        modes = self.nearest_mode(actions)
        liked = self.likes[user]
        fractions = {self.mode_names[m]: float(np.mean(modes == m)) for m in liked}
        fractions["elsewhere"] = float(np.mean(~np.isin(modes, liked)))
        return fractions
