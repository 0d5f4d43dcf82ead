"""The user model that completes a logged dataset's reward matrix when the publisher ships none.

A biased matrix factorisation (Koren et al. 2009), fitted in torch on the training log:

    r̂(u, i) = μ + b_u + b_i + p_u · q_i,     minimise  mean (r − r̂)² + λ (‖p_u‖² + ‖q_i‖² + b_u² + b_i²)

over the logged (u, i, r) triples, by Adam on shuffled minibatches (seeded, with a progress bar). The
predictions, clipped to the reward scale, are the environment's rewards for every user–item pair: the role
DeepFM plays in EasyRL4Rec for MovieLens and KuaiRand.
"""
from __future__ import annotations

import math
import numbers

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

__all__ = ["MatrixFactorization", "fit_matrix_factorization"]


class MatrixFactorization(nn.Module):
    """r̂(u, i) = μ + b_u + b_i + p_u · q_i."""

    def __init__(self, n_users: int, n_items: int, dim: int = 32, mean: float = 0.0, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.user_factors = nn.Parameter(0.1 * torch.randn(n_users, dim, generator=generator))
        self.item_factors = nn.Parameter(0.1 * torch.randn(n_items, dim, generator=generator))
        self.user_bias = nn.Parameter(torch.zeros(n_users))
        self.item_bias = nn.Parameter(torch.zeros(n_items))
        self.register_buffer("mean", torch.tensor(float(mean)))

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        dot = (self.user_factors[users] * self.item_factors[items]).sum(dim=1)
        return self.mean + self.user_bias[users] + self.item_bias[items] + dot

    @torch.no_grad()
    def predict_matrix(self, low: float | None = None, high: float | None = None, chunk: int = 4096) -> np.ndarray:
        """All (n_users, n_items) predictions as float32, clipped to [low, high] when given."""
        rows = []
        for start in range(0, self.user_factors.shape[0], chunk):
            p, b = self.user_factors[start:start + chunk], self.user_bias[start:start + chunk]
            block = self.mean + b[:, None] + self.item_bias[None, :] + p @ self.item_factors.T
            if low is not None or high is not None:
                block = block.clamp(min=low, max=high)
            rows.append(block.float().cpu().numpy())
        return np.concatenate(rows)


def fit_matrix_factorization(
    log: pd.DataFrame,
    n_users: int,
    n_items: int,
    dim: int = 32,
    epochs: int = 30,
    batch_size: int = 1024,
    lr: float = 0.01,
    weight_decay: float = 0.05,
    seed: int = 0,
    progress: bool = True,
) -> MatrixFactorization:
    """Fit ``MatrixFactorization`` on the ``user, item, reward`` columns of ``log``; same seed, same model."""
    if len(log) == 0:
        raise ValueError("the log is empty: the user model needs at least one (user, item, reward) row.")
    for name, value, low in (("dim", dim, 1), ("epochs", epochs, 1), ("batch_size", batch_size, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            raise ValueError(f"user model: {name} must be an integer >= {low}, got {value!r}.")
    for name, value, positive in (("lr", lr, True), ("weight_decay", weight_decay, False)):
        if (isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value)
                or value < 0 or (positive and value == 0)):
            raise ValueError(f"user model: {name} must be a finite number {'> 0' if positive else '>= 0'}, got {value!r}.")
    users = torch.tensor(log["user"].to_numpy(), dtype=torch.long)
    items = torch.tensor(log["item"].to_numpy(), dtype=torch.long)
    rewards = torch.tensor(log["reward"].to_numpy(), dtype=torch.float32)
    model = MatrixFactorization(n_users, n_items, dim, mean=float(rewards.mean()), seed=seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    n = len(rewards)
    bar = tqdm(range(epochs), desc="user model (matrix factorisation)", disable=not progress, leave=False)
    for _ in bar:
        order = torch.randperm(n, generator=generator)
        total = 0.0
        for start in range(0, n, batch_size):
            rows = order[start:start + batch_size]
            u, i = users[rows], items[rows]
            error = rewards[rows] - model(u, i)
            penalty = (model.user_factors[u].pow(2).sum(1) + model.item_factors[i].pow(2).sum(1)
                       + model.user_bias[u].pow(2) + model.item_bias[i].pow(2))
            loss = error.pow(2).mean() + weight_decay * penalty.mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += error.pow(2).sum().item()
        bar.set_postfix(train_rmse=f"{(total / n) ** 0.5:.3f}")
    model.eval()
    return model
