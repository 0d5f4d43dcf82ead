"""What turns a logged dataset into a simulated user, following EasyRL4Rec (Yu et al. 2024, the paper's ref. [35]):
a complete reward matrix, a leave rule, a turn cap, and item embeddings for continuous actions.

* **Reward** of recommending item i to user u: ``rewards[u, i]``, the publisher's completed matrix when it
  ships one (Coat's pseudo ground truth), else a matrix-factorisation user model fitted on the training log
  (``user_model.py``), clipped to the reward scale. KuaiRec's fully observed small matrix overrides the
  model where it has a value.
* **Leave rule** at turn t (0-based; the first turn never leaves), for the new item a and the window W_t of
  earlier items of the episode:
  - ``distance`` (Coat, MovieLens, Yahoo): leave if ‖R[:, a] − R[:, j]‖₂ < threshold for some j ∈ W_t, the
    distance between item columns of the reward matrix (over all users);
  - ``category`` (KuaiRec, KuaiRand): leave if some category of a occurs more than ``threshold`` times among
    the categories of the items in W_t.
  The step that triggers leaving still pays its reward and counts in the episode's length.
* **The window.** EasyRL4Rec takes ``W_t = seq[t - k : t]`` of the list ``seq`` of the t earlier items. For
  t < k the start t − k is negative, and Python counts it from the end of the list: the slice starts at
  2t − k (or 0 when that is negative too). With k = 7 the window holds 1, 2, 3, 3, 2, 1 items at t = 1…6,
  not 1…6; from t = k on it holds the last k items. Short windows make early leaving rarer, and the published
  numbers depend on it (Coat, random policy: mean length 12.6 with this window, 11.6 with the exact one), so
  it is the default; ``exact_window=True`` uses ``seq[max(0, t − k) : t]``.
* **Cap**: an episode ends after ``max_turn`` = 30 turns (a timeout, not a leave).
* **Actions**: a vector a ∈ [−1, 1]^d recommends the item whose embedding is nearest by cosine,
  argmax_i ⟨a, e_i⟩ / (‖a‖ ‖e_i‖). The embeddings are the top-d principal directions of the items in the
  reward matrix (SVD of R − mean(R): e_i = (V_d S_d)[i]), multiplied by ONE constant so the largest
  |entry| is 1; cosine ignores that constant, so every e_i is a valid action in [−1, 1]^d that recommends
  item i (unless two items' embeddings point the same way).
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field

import numpy as np
import torch

from .logged import LoggedData
from .user_model import fit_matrix_factorization

__all__ = ["LEAVE_RULES", "LEAVE_KINDS", "LeaveRule", "LoggedWorld", "build_world", "replace_rule", "item_embeddings_from_matrix"]

# EasyRL4Rec's defaults: (kind, leave_threshold, num_leave_compute). MovieLens-100k is not in EasyRL4Rec;
# its threshold is ML-1M's scaled by √(943 / 6040), since distances grow with √(number of users).
LEAVE_RULES: dict[str, tuple[str, float, int]] = {
    "coat": ("distance", 6.0, 7),
    "movielens-1m": ("distance", 75.0, 7),
    "movielens-100k": ("distance", 30.0, 7),
    "yahoo": ("distance", 120.0, 3),
    "kuairec": ("category", 1.0, 9),
    "kuairand": ("category", 0.0, 10),
}
MAX_TURN = 30
LEAVE_KINDS = ("distance", "category")
_DENSE_DISTANCE_LIMIT = 5000  # items; above this, distances are computed per step instead of tabulated


@dataclass(frozen=True)
class LeaveRule:
    """When a simulated user leaves (see the module docstring). ``window`` is k (num_leave_compute)."""

    kind: str
    threshold: float
    window: int
    exact_window: bool = False

    def __post_init__(self) -> None:
        if self.kind not in LEAVE_KINDS:
            raise ValueError(f"leave rule kind must be 'distance' or 'category', got {self.kind!r}.")
        if not isinstance(self.exact_window, (bool, np.bool_)):
            raise ValueError(f"exact_window must be True or False, got {self.exact_window!r}.")
        if isinstance(self.window, bool) or not isinstance(self.window, numbers.Integral) or self.window < 1:
            raise ValueError(f"leave window must be an integer >= 1, got {self.window!r}.")
        if (isinstance(self.threshold, bool) or not isinstance(self.threshold, numbers.Real)
                or not math.isfinite(self.threshold) or self.threshold < 0):
            raise ValueError(f"leave threshold must be a finite number >= 0, got {self.threshold!r} (NaN would mean "
                             f"users never leave).")

    def window_bounds(self, t: int) -> tuple[int, int]:
        """[start, stop) of the window among the t earlier items of the episode, at turn t (0-based)."""
        if t <= 0:
            return 0, 0
        start = t - self.window
        if start < 0 and not self.exact_window:
            start += t  # EasyRL4Rec's seq[t-k:t] on a list of length t: a negative start counts from the end
        return max(start, 0), t


def item_embeddings_from_matrix(rewards: np.ndarray, dim: int, seed: int = 0) -> np.ndarray:
    """Top-``dim`` principal item directions of ``rewards`` (users × items), scaled into [−1, 1].

    e_i = (V_d S_d)[i] from the SVD of R − mean(R) (one global mean, so an item's average reward stays in its
    embedding), each column's sign fixed so its largest entry is positive (deterministic), then divided by
    max |e| (one constant: cosine neighbours are unchanged)."""
    centred = torch.as_tensor(rewards, dtype=torch.float64)
    centred = centred - centred.mean()
    dim = min(dim, *centred.shape)
    if min(centred.shape) <= 2000:
        _, s, vh = torch.linalg.svd(centred, full_matrices=False)
        v, s = vh[:dim].T, s[:dim]
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            _, s, v = torch.svd_lowrank(centred, q=dim + 10, niter=6)
        v, s = v[:, :dim], s[:dim]
    embeddings = (v * s).numpy()
    signs = np.sign(embeddings[np.abs(embeddings).argmax(axis=0), np.arange(dim)])
    embeddings = embeddings * np.where(signs == 0, 1.0, signs)
    return (embeddings / max(np.abs(embeddings).max(), 1e-12)).astype(np.float32)


@dataclass
class LoggedWorld:
    """Everything an environment built from a log needs; built once by ``build_world`` and shared."""

    data: LoggedData
    rewards: np.ndarray              # (n_users, n_items) float32, the complete reward matrix
    rule: LeaveRule
    item_embeddings: np.ndarray      # (n_items, d) float32 in [-1, 1]
    env_users: np.ndarray            # users an episode may start with
    max_turn: int = MAX_TURN
    category_counts: np.ndarray | None = None   # (n_items, n_categories) int16, KuaiRec / KuaiRand
    _squared_distances: np.ndarray | None = field(default=None, repr=False)
    _unit_embeddings: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.rule.kind == "category" and self.category_counts is None:
            raise ValueError(
                f"{self.data.name}: the category leave rule needs item categories, and none were loaded "
                "(KuaiRec: item_categories.csv; KuaiRand: video_features_basic_pure.csv). Put that file beside the "
                "logs, or pass leave_rule='distance' with a leave_threshold."
            )
        if self.rule.kind == "distance" and self.n_items <= _DENSE_DISTANCE_LIMIT and self._squared_distances is None:
            columns = self.rewards.astype(np.float64)
            norms = (columns**2).sum(axis=0)
            gram = columns.T @ columns
            self._squared_distances = np.maximum(norms[:, None] + norms[None, :] - 2 * gram, 0.0).astype(np.float32)
        norms = np.linalg.norm(self.item_embeddings, axis=1, keepdims=True)
        if self._unit_embeddings is None:
            self._unit_embeddings = (self.item_embeddings / np.maximum(norms, 1e-12)).astype(np.float32)

    @property
    def n_users(self) -> int:
        return int(self.rewards.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.rewards.shape[1])

    @property
    def embedding_dim(self) -> int:
        return int(self.item_embeddings.shape[1])

    def normalise(self, reward: np.ndarray | float) -> np.ndarray:
        """Min–max normalised reward, (r − low) / (high − low) on the dataset's reward scale."""
        low, high = self.data.reward_range
        return (np.asarray(reward, dtype=np.float64) - low) / (high - low)

    def squared_distances(self, items: np.ndarray, others: np.ndarray) -> np.ndarray:
        """‖R[:, a] − R[:, b]‖² for items (B,) against others (B, w) → (B, w)."""
        if self._squared_distances is not None:
            return self._squared_distances[items[:, None], others]
        a = self.rewards[:, items].astype(np.float64)                  # (n_users, B)
        b = self.rewards[:, others.reshape(-1)].astype(np.float64)     # (n_users, B·w)
        diff = np.repeat(a, others.shape[1], axis=1) - b
        return (diff**2).sum(axis=0).reshape(others.shape)

    def leaves(self, sequences: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Does each user leave on being shown ``items`` (B,) after ``sequences`` (B, t) of earlier items?"""
        t = sequences.shape[1]
        start, stop = self.rule.window_bounds(t)
        if stop <= start:
            return np.zeros(len(items), dtype=bool)
        window = sequences[:, start:stop]
        if self.rule.kind == "distance":
            return (self.squared_distances(items, window) < self.rule.threshold**2).any(axis=1)
        counts = self.category_counts[window].sum(axis=1)             # (B, n_categories)
        return ((counts > self.rule.threshold) & (self.category_counts[items] > 0)).any(axis=1)

    def items_from_actions(self, actions: np.ndarray, banned: np.ndarray | None = None) -> np.ndarray:
        """The item nearest by cosine to each action (B, d); ``banned`` (B, n_items) bool masks items out."""
        actions = np.asarray(actions, dtype=np.float32)
        if actions.ndim != 2 or actions.shape[1] != self.embedding_dim:
            raise ValueError(f"actions must have shape (B, {self.embedding_dim}), got {actions.shape}.")
        if not np.isfinite(actions).all():
            raise ValueError("actions contain NaN or inf.")
        scores = actions @ self._unit_embeddings.T   # ∝ cosine (the action's norm is the same for every item)
        if banned is not None:
            scores = np.where(banned, -np.inf, scores)
        return scores.argmax(axis=1)


def _category_counts(categories: list[tuple[int, ...]]) -> np.ndarray:
    labels = sorted({c for cats in categories for c in cats})
    column = {c: k for k, c in enumerate(labels)}
    counts = np.zeros((len(categories), len(labels)), dtype=np.int16)
    for item, cats in enumerate(categories):
        for c in cats:
            counts[item, column[c]] += 1  # an item listing a category twice counts twice, as Counter does
    return counts


def build_world(
    data: LoggedData,
    leave_rule: str | None = None,
    leave_threshold: float | None = None,
    leave_window: int | None = None,
    exact_window: bool = False,
    max_turn: int = MAX_TURN,
    embedding_dim: int = 16,
    user_model: dict | None = None,
    seed: int = 0,
    progress: bool = True,
) -> LoggedWorld:
    """Reward matrix, leave rule (EasyRL4Rec's defaults unless overridden) and item embeddings for ``data``.

    ``user_model``: keyword arguments of ``fit_matrix_factorization`` (dim, epochs, lr, …), used only when the
    data has no complete reward matrix."""
    for name, value in (("max_turn", max_turn), ("embedding_dim", embedding_dim)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")
    kind, threshold, window = LEAVE_RULES[data.name]
    rule = LeaveRule(leave_rule or kind, threshold if leave_threshold is None else leave_threshold,
                     window if leave_window is None else leave_window, exact_window)
    low, high = data.reward_range
    if data.reward_matrix is not None:
        rewards = np.clip(data.reward_matrix, low, high).astype(np.float32)
    else:
        model = fit_matrix_factorization(data.train, data.n_users, data.n_items, seed=seed, progress=progress,
                                         **(user_model or {}))
        rewards = model.predict_matrix(low, high)
        if data.observed_rewards is not None:
            users, items, values = data.observed_rewards
            rewards[users, items] = values
    env_users = np.arange(data.n_users) if data.env_users is None else np.asarray(data.env_users)
    categories = _category_counts(data.item_categories) if data.item_categories is not None else None
    embeddings = item_embeddings_from_matrix(rewards, embedding_dim, seed)
    return LoggedWorld(data=data, rewards=rewards, rule=rule, item_embeddings=embeddings, env_users=env_users,
                       max_turn=max_turn, category_counts=categories)


def replace_rule(world: LoggedWorld, **changes) -> LoggedWorld:
    """The same world (reward matrix, embeddings, users) with a changed leave rule: ``kind``, ``threshold``,
    ``window`` or ``exact_window``; the distance table is reused."""
    rule = dataclasses.replace(world.rule, **changes)
    return dataclasses.replace(world, rule=rule, _squared_distances=world._squared_distances,
                               _unit_embeddings=world._unit_embeddings)
