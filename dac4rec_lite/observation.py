"""How a recommendation observation is laid out, so sequence encoders can read the history.

Every environment in the kit returns a flat float32 vector::

    obs = [ profile (profile_dim) | page_{t-W+1} (step_dim) | ... | page_t (step_dim) ]

The history window holds the last ``window`` interactions, oldest first and most recent last. At the start
of an episode the window is left-padded with zeros; the last feature of every history step is a ``valid``
flag (1 for a real interaction, 0 for padding), so a GRU or SASRec encoder can mask the padding.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass

import torch

__all__ = ["ObsLayout"]


@dataclass(frozen=True)
class ObsLayout:
    """Sizes of the observation's parts; ``split`` cuts a batch of observations into them."""

    profile_dim: int
    window: int
    step_dim: int

    def __post_init__(self) -> None:
        for name in ("profile_dim", "window", "step_dim"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise TypeError(f"ObsLayout.{name} must be an integer, got {value!r} ({type(value).__name__}).")
        if self.profile_dim < 0 or self.window < 1 or self.step_dim < 2:
            raise ValueError(
                f"ObsLayout needs profile_dim >= 0, window >= 1 and step_dim >= 2 (features + the valid flag), "
                f"got {self}."
            )

    @property
    def obs_dim(self) -> int:
        return self.profile_dim + self.window * self.step_dim

    def split(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, obs_dim) → profile (B, profile_dim), history (B, window, step_dim - 1), valid mask (B, window)."""
        if obs.dim() != 2 or obs.shape[1] != self.obs_dim:
            raise ValueError(
                f"observations must have shape (batch, {self.obs_dim}) for this layout ({self}), "
                f"got {tuple(obs.shape)}."
            )
        profile = obs[:, : self.profile_dim]
        steps = obs[:, self.profile_dim:].reshape(obs.shape[0], self.window, self.step_dim)
        return profile, steps[..., :-1], steps[..., -1] > 0.5
