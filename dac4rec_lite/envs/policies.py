"""Scripted reference policies for RecSim-v0 (and Logged-v0's random-item baseline).

A scripted policy is called as ``policy(obs, users, rng) -> actions``: ``obs`` (B, obs_dim), ``users`` the
simulator's :class:`~dac4rec_lite.envs.recsim.UserBatch` (privileged, hidden state), ``rng`` a numpy
Generator; it returns (B, action_dim) actions in [-1, 1]. Learned agents never see ``users``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .recsim import UserBatch

__all__ = ["RandomPolicy", "MyopicPolicy", "LongTermExpert", "NoisyExpert", "SCRIPTED_POLICIES", "to_action_box",
           "RandomItemPolicy"]


def to_action_box(direction: np.ndarray) -> np.ndarray:
    """Scale each row into [-1, 1]^d keeping its direction (a page depends only on the direction)."""
    return direction / np.maximum(np.abs(direction).max(axis=1, keepdims=True), 1e-12)


class RandomPolicy:
    """Uniform actions in [-1, 1]^d: pages in random directions."""

    name = "random"

    def __call__(self, obs: np.ndarray, users: UserBatch, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(-1.0, 1.0, size=users.preference.shape)


class MyopicPolicy:
    """Chases the current short-term interest h: the best page for the next click, ignoring what it does
    to the user's interest and fatigue."""

    name = "myopic"

    def __call__(self, obs: np.ndarray, users: UserBatch, rng: np.random.Generator) -> np.ndarray:
        return to_action_box(users.interest)


@dataclass
class LongTermExpert:
    """Serves the latent long-term preference p with variety: each page aims at p tilted by ``variety``
    toward a fresh random direction orthogonal to p, so consecutive pages differ and fatigue stays low."""

    variety: float = 1.0
    name: str = "expert"

    def __call__(self, obs: np.ndarray, users: UserBatch, rng: np.random.Generator) -> np.ndarray:
        p = users.preference
        tilt = rng.standard_normal(p.shape)
        tilt -= np.einsum("bd,bd->b", tilt, p)[:, None] * p
        tilt /= np.maximum(np.linalg.norm(tilt, axis=1, keepdims=True), 1e-12)
        return to_action_box(p + self.variety * tilt)


@dataclass
class NoisyExpert:
    """The long-term expert's action plus N(0, noise²) per coordinate, clipped to the action box."""

    noise: float = 0.5
    variety: float = 1.0
    name: str = "noisy_expert"

    def __call__(self, obs: np.ndarray, users: UserBatch, rng: np.random.Generator) -> np.ndarray:
        action = LongTermExpert(self.variety)(obs, users, rng)
        return np.clip(action + self.noise * rng.standard_normal(action.shape), -1.0, 1.0)


SCRIPTED_POLICIES = {"random": RandomPolicy, "myopic": MyopicPolicy, "expert": LongTermExpert, "noisy_expert": NoisyExpert}


class RandomItemPolicy:
    """Logged-v0's uniform-random-item policy (EasyRL4Rec's random baseline): each user gets an item id drawn
    uniformly from the catalogue, or from the items not yet shown when the environment has ``no_repeat``.

    Called as ``policy(obs, users, rng)`` with the users of a :class:`~dac4rec_lite.envs.logged_env.LoggedSimulator`;
    returns (B,) integer item ids, which that simulator accepts in place of action vectors."""

    name = "random_item"

    def __init__(self, simulator) -> None:
        self.simulator = simulator

    def __call__(self, obs: np.ndarray, users, rng: np.random.Generator) -> np.ndarray:
        n_items = self.simulator.world.n_items
        banned = self.simulator.banned(users)
        if banned is None:
            return rng.integers(0, n_items, size=len(users))
        scores = rng.random((len(users), n_items))
        return np.where(banned, -1.0, scores).argmax(axis=1)
