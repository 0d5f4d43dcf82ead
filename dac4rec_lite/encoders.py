"""Encoders map raw observations to the state the policy, critics and energy model see.

The encoder is trained by the critic's TD loss only (the policy sees detached states), so the state is
shaped by what predicts value. Sequence encoders (GRU, SASRec) plug in through the same interface: any
``nn.Module`` with an ``out_dim`` attribute mapping (B, obs_dim) to (B, out_dim)."""
from __future__ import annotations

import torch
from torch import nn

from ._checks import check_matrix

__all__ = ["IdentityEncoder", "MLPEncoder", "make_encoder"]


class IdentityEncoder(nn.Module):
    """state = observation (no parameters)."""

    def __init__(self, obs_dim: int) -> None:
        super().__init__()
        self.obs_dim = self.out_dim = obs_dim

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return check_matrix(obs, "observation", self.obs_dim)


class MLPEncoder(nn.Module):
    """state = LayerNorm(MLP(observation)), a small learned projection."""

    def __init__(self, obs_dim: int, out_dim: int = 64, hidden_dim: int = 128) -> None:
        super().__init__()
        self.obs_dim, self.out_dim = obs_dim, out_dim
        self.net = nn.Sequential(nn.Linear(obs_dim, hidden_dim), nn.SiLU(), nn.Linear(hidden_dim, out_dim), nn.LayerNorm(out_dim))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(check_matrix(obs, "observation", self.obs_dim))


def make_encoder(spec: str | nn.Module | None, obs_dim: int) -> nn.Module:
    """``None``/``"identity"`` → IdentityEncoder, ``"mlp"`` → MLPEncoder, a module → itself."""
    if spec is None or spec == "identity":
        return IdentityEncoder(obs_dim)
    if spec == "mlp":
        return MLPEncoder(obs_dim)
    if isinstance(spec, str) and spec.startswith("custom:"):
        raise ValueError(
            f"this agent was saved with a custom encoder ({spec[7:]}); rebuild that module and pass it: "
            "DAC4Rec.load(path, encoder=your_encoder)."
        )
    if isinstance(spec, nn.Module):
        if not hasattr(spec, "out_dim"):
            raise ValueError("a custom encoder must have an `out_dim` attribute (the size of the state it returns).")
        return spec
    raise ValueError(f"encoder must be None, 'identity', 'mlp' or an nn.Module, got {spec!r}.")
