"""Encoders map raw observations to the state the policy, critics and energy model see.

Which losses train them: the critic's TD loss only (Eq. 20). The policy's losses (L_d, Eq. 8, and L_q) and
the energy model see detached states, so the state is shaped by what predicts value, and the actor cannot
drag the representation toward whatever makes its own loss small.

Any ``nn.Module`` with an ``out_dim`` attribute mapping (B, obs_dim) to (B, out_dim) plugs in. The sequence
encoders read the observation's history window through its :class:`~dac4rec_lite.observation.ObsLayout`
(``env.unwrapped.obs_layout``): profile first, then the last W pages, oldest first, with a valid flag.

* ``GRUEncoder`` — a GRU over the valid history steps (padding steps leave the hidden state unchanged),
  its last hidden state joined with the profile.
* ``SASRecEncoder`` — SASRec (Kang & McAuley, 2018): causal self-attention over the history window with
  learned positions; position t attends only to positions ≤ t (and never to padding), and the state is the
  output at the most recent position joined with the profile.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ._checks import check_matrix
from .observation import ObsLayout

__all__ = ["IdentityEncoder", "MLPEncoder", "GRUEncoder", "SASRecEncoder", "make_encoder", "ENCODERS"]

ENCODERS = ("identity", "mlp", "gru", "sasrec")


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


class _SequenceEncoder(nn.Module):
    """Shared by GRU and SASRec: split the observation, embed the history, join with the profile."""

    def __init__(self, layout: ObsLayout, out_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.layout, self.obs_dim, self.out_dim = layout, layout.obs_dim, out_dim
        self.step_in = nn.Linear(layout.step_dim - 1, hidden_dim)
        self.head = nn.Sequential(nn.Linear(hidden_dim + layout.profile_dim, out_dim), nn.LayerNorm(out_dim))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        profile, history, valid = self.layout.split(check_matrix(obs, "observation", self.obs_dim))
        summary = self.summarise(self.step_in(history), valid)
        return self.head(torch.cat([summary, profile], dim=1))

    def summarise(self, steps: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class GRUEncoder(_SequenceEncoder):
    """state = LayerNorm(W [GRU(history)_last, profile]); padding steps do not update the GRU state."""

    def __init__(self, layout: ObsLayout, out_dim: int = 64, hidden_dim: int = 64) -> None:
        super().__init__(layout, out_dim, hidden_dim)
        self.cell = nn.GRUCell(hidden_dim, hidden_dim)

    def summarise(self, steps: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        h = steps.new_zeros(steps.shape[0], self.cell.hidden_size)
        for t in range(steps.shape[1]):
            h = torch.where(valid[:, t:t + 1], self.cell(steps[:, t], h), h)
        return h


class SASRecEncoder(_SequenceEncoder):
    """Causal self-attention blocks (pre-LayerNorm, residual) over the history, output at the last position."""

    def __init__(self, layout: ObsLayout, out_dim: int = 64, hidden_dim: int = 64, n_heads: int = 2, n_blocks: int = 2) -> None:
        super().__init__(layout, out_dim, hidden_dim)
        if hidden_dim % n_heads:
            raise ValueError(f"hidden_dim ({hidden_dim}) must be divisible by n_heads ({n_heads}).")
        self.n_heads = n_heads
        self.positions = nn.Parameter(torch.randn(layout.window, hidden_dim) * 0.02)
        self.blocks = nn.ModuleList(
            nn.ModuleDict({"norm1": nn.LayerNorm(hidden_dim), "qkv": nn.Linear(hidden_dim, 3 * hidden_dim),
                           "proj": nn.Linear(hidden_dim, hidden_dim), "norm2": nn.LayerNorm(hidden_dim),
                           "ffn": nn.Sequential(nn.Linear(hidden_dim, hidden_dim), nn.SiLU(), nn.Linear(hidden_dim, hidden_dim))})
            for _ in range(n_blocks))
        self.norm = nn.LayerNorm(hidden_dim)

    def attention_mask(self, valid: torch.Tensor) -> torch.Tensor:
        """(B, W, W) bool: position t may attend to s when s ≤ t and s is a real page (a padding position
        attends to itself only, so its softmax is defined)."""
        w = valid.shape[1]
        causal = torch.ones(w, w, dtype=torch.bool, device=valid.device).tril()
        itself = torch.eye(w, dtype=torch.bool, device=valid.device)
        return causal & (valid[:, None, :] | itself)

    def sequence_outputs(self, obs: torch.Tensor) -> torch.Tensor:
        """(B, W, hidden) outputs at every position (the causality test reads these)."""
        _, history, valid = self.layout.split(check_matrix(obs, "observation", self.obs_dim))
        return self._blocks(self.step_in(history), valid)

    def _blocks(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        b, w, h = x.shape
        x = x + self.positions
        mask = self.attention_mask(valid)[:, None]                                  # (B, 1, W, W)
        for block in self.blocks:
            q, k, v = block["qkv"](block["norm1"](x)).view(b, w, 3, self.n_heads, h // self.n_heads).permute(2, 0, 3, 1, 4)
            scores = (q @ k.transpose(-1, -2)) / math.sqrt(h // self.n_heads)
            attended = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1) @ v
            x = x + block["proj"](attended.transpose(1, 2).reshape(b, w, h))
            x = x + block["ffn"](block["norm2"](x))
        return self.norm(x)

    def summarise(self, steps: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        return self._blocks(steps, valid)[:, -1]


def as_layout(layout: ObsLayout | tuple[int, int, int] | list[int] | None) -> ObsLayout | None:
    """An ObsLayout from itself or its (profile_dim, window, step_dim) triple (how configs store it)."""
    if layout is None or isinstance(layout, ObsLayout):
        return layout
    return ObsLayout(*(int(v) for v in layout))


def make_encoder(spec: str | nn.Module | None, obs_dim: int, layout: ObsLayout | tuple[int, int, int] | None = None) -> nn.Module:
    """``None``/``"identity"`` → IdentityEncoder, ``"mlp"`` → MLPEncoder, ``"gru"``/``"sasrec"`` → a
    sequence encoder over ``layout`` (pass ``obs_layout=env.unwrapped.obs_layout``), a module → itself."""
    if spec is None or spec == "identity":
        return IdentityEncoder(obs_dim)
    if spec == "mlp":
        return MLPEncoder(obs_dim)
    if spec in ("gru", "sasrec"):
        layout = as_layout(layout)
        if layout is None:
            raise ValueError(f"encoder={spec!r} reads the history window: pass obs_layout=env.unwrapped.obs_layout.")
        if layout.obs_dim != obs_dim:
            raise ValueError(f"obs_layout {layout} describes {layout.obs_dim}-dim observations but obs_dim={obs_dim}.")
        return GRUEncoder(layout) if spec == "gru" else SASRecEncoder(layout)
    if isinstance(spec, str) and spec.startswith("custom:"):
        raise ValueError(
            f"this agent was saved with a custom encoder ({spec[7:]}); rebuild that module and pass it: "
            "DAC4Rec.load(path, encoder=your_encoder)."
        )
    if isinstance(spec, nn.Module):
        if not hasattr(spec, "out_dim"):
            raise ValueError("a custom encoder must have an `out_dim` attribute (the size of the state it returns).")
        return spec
    raise ValueError(f"encoder must be None, one of {ENCODERS} or an nn.Module, got {spec!r}.")
