"""A state-conditioned Gaussian policy: the classic unimodal baseline a diffusion policy is compared with."""
from __future__ import annotations

import math

import torch
from torch import nn

from ._checks import check_finite, check_matrix, randn

__all__ = ["GaussianPolicy"]


class GaussianPolicy(nn.Module):
    """π(a | s) = N(m(s), diag σ(s)²), m and log σ from one MLP, trained by maximum likelihood.

    With a fixed σ, maximum likelihood is least squares (the "MSE policy"): m(s) → E[a | s]. On multimodal
    behaviour that mean lies between the modes, where the data has no actions at all — the failure a
    diffusion policy avoids (notebook 02). ``max_action`` bounds the mean through tanh; samples are clipped
    to the same box so they are valid actions."""

    LOG_STD_MIN, LOG_STD_MAX = -5.0, 1.0

    def __init__(self, state_dim: int, action_dim: int, hidden_dim: int = 256, max_action: float | None = 1.0) -> None:
        super().__init__()
        self.state_dim, self.action_dim = state_dim, action_dim
        self.max_action = None if max_action is None else float(max_action)
        self.net = nn.Sequential(
            nn.Linear(state_dim, hidden_dim), nn.SiLU(),
            nn.Linear(hidden_dim, hidden_dim), nn.SiLU(),
            nn.Linear(hidden_dim, 2 * action_dim),
        )

    def distribution(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and standard deviation, each (B, action_dim)."""
        check_finite(check_matrix(state, "state", self.state_dim), "state")
        mean, log_std = self.net(state).chunk(2, dim=1)
        if self.max_action is not None:
            mean = self.max_action * torch.tanh(mean)
        return mean, log_std.clamp(self.LOG_STD_MIN, self.LOG_STD_MAX).exp()

    def loss(self, state: torch.Tensor, action: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Negative log-likelihood per action dimension, averaged over the batch (``generator`` unused:
        the loss is deterministic; it is accepted so every policy trains through the same loop)."""
        check_finite(check_matrix(action, "action", self.action_dim), "action")
        mean, std = self.distribution(state)
        nll = 0.5 * ((action - mean) / std).pow(2) + std.log() + 0.5 * math.log(2 * math.pi)
        return nll.mean()

    def sample(self, state: torch.Tensor, generator: torch.Generator | None = None, deterministic: bool = False) -> torch.Tensor:
        """One action per state: the mean when ``deterministic``, else mean + σ·z (clipped to the box)."""
        mean, std = self.distribution(state)
        if deterministic:
            return mean
        action = mean + std * randn(tuple(mean.shape), generator, mean.device, mean.dtype)
        return action if self.max_action is None else action.clamp(-self.max_action, self.max_action)
