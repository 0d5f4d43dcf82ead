"""Critics: twin Q-networks (clipped double Q), a state-value network, and Polyak averaging."""
from __future__ import annotations

import torch
from torch import nn

from ._checks import check_matrix

__all__ = ["TwinQ", "ValueNetwork", "soft_update", "mlp"]


def mlp(in_dim: int, out_dim: int, hidden_dim: int, n_hidden: int = 3, layer_norm: bool = False) -> nn.Sequential:
    """in → hidden (× n_hidden, SiLU) → out."""
    layers: list[nn.Module] = []
    width = in_dim
    for _ in range(n_hidden):
        layers += [nn.Linear(width, hidden_dim), nn.LayerNorm(hidden_dim), nn.SiLU()] if layer_norm else [nn.Linear(width, hidden_dim), nn.SiLU()]
        width = hidden_dim
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


class TwinQ(nn.Module):
    """Two independent critics Q_φ1, Q_φ2 (Algorithm 1's inputs). ``critic(state, action) -> (q1, q2)``,
    each (B, 1). Taking min(q1, q2) in targets counters the over-estimation a single max-seeking critic
    has (Fujimoto et al. 2018), which offline is worse: nothing corrects an over-valued unseen action."""

    def __init__(self, state_dim: int, action_dim: int, hidden_dim: int = 256, layer_norm: bool = False) -> None:
        super().__init__()
        self.state_dim, self.action_dim = state_dim, action_dim
        self.q1 = mlp(state_dim + action_dim, 1, hidden_dim, layer_norm=layer_norm)
        self.q2 = mlp(state_dim + action_dim, 1, hidden_dim, layer_norm=layer_norm)

    def forward(self, state: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_matrix(state, "state", self.state_dim)
        check_matrix(action, "action", self.action_dim)
        if state.shape[0] != action.shape[0]:
            raise ValueError(f"state has {state.shape[0]} rows but action has {action.shape[0]}.")
        x = torch.cat([state, action], dim=1)
        return self.q1(x), self.q2(x)

    def q_min(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """min(Q1, Q2) of shape (B, 1), a column like ``rewards``: the conservative value used for targets and
        for ranking candidates (``energy.q_min_flat`` gives the same values flattened to (B,))."""
        q1, q2 = self(state, action)
        return torch.min(q1, q2)


class ValueNetwork(nn.Module):
    """V_ψ(s), (B, 1): used by the ``awr`` and ``elbo`` policy improvements as the advantage baseline."""

    def __init__(self, state_dim: int, hidden_dim: int = 256) -> None:
        super().__init__()
        self.state_dim = state_dim
        self.net = mlp(state_dim, 1, hidden_dim)

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        return self.net(check_matrix(state, "state", self.state_dim))


@torch.no_grad()
def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """Polyak averaging θ' ← τ θ + (1 − τ) θ' (Algorithm 1, "update target networks")."""
    if not 0 < tau <= 1:
        raise ValueError(f"tau must be in (0, 1], got {tau}.")
    for t, s in zip(target.parameters(), source.parameters(), strict=True):
        t.lerp_(s, tau)
