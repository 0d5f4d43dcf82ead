"""The reverse diffusion loop: it only loops. ε comes from a callable, the maths from the schedule.

One DDPM reverse step (Eq. 7, corrected; Sec. 2.2's posterior):

    â^0     = (a^i - √(1-ᾱ_i) ε) / √ᾱ_i               (Eq. 14), clipped to ±max_action if given
    a^{i-1} = c0_i â^0 + ci_i a^i + σ_i z,   z ~ N(0, I), σ_1 = 0

Without clipping, c0_i â^0 + ci_i a^i equals Eq. 7's mean (a^i - β_i/√(1-ᾱ_i) ε)/√α_i exactly. Clipping the
predicted clean action keeps every intermediate estimate inside the action box (Diffusion-QL does the same);
because c0_1 = 1 and ci_1 = 0, the final action is the clipped â^0, so it is always in bounds.

Guidance (Eq. 24): ∇ log π_i = ∇ log μ_i + g_i. Since ε_θ ≈ -√(1-ᾱ_i) ∇ log μ_i, adding the score g_i is
ε̃ = ε_θ - √(1-ᾱ_i) g_i.
"""
from __future__ import annotations

from typing import Callable, Protocol

import torch

from .schedule import VPSchedule

__all__ = ["Guidance", "ddpm_sample"]

EpsFn = Callable[[torch.Tensor, int], torch.Tensor]
"""ε at step i (1-based int) for the current batch of noisy actions a^i."""


class Guidance(Protocol):
    """Anything that adds to the score at each reverse step: ``guidance(state, a_i, i) -> (B, action_dim)``.

    ``scale`` is read so that a zero scale can take the unguided path (bit-identical samples)."""

    scale: float

    def __call__(self, state: torch.Tensor, a_i: torch.Tensor, i: torch.Tensor) -> torch.Tensor: ...


def ddpm_sample(
    eps_fn: EpsFn,
    schedule: VPSchedule,
    shape: tuple[int, int],
    *,
    state: torch.Tensor,
    max_action: float | None,
    guidance: Guidance | None = None,
    generator: torch.Generator | None = None,
    variance: str = "posterior",
    return_trajectory: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Run the N-step reverse chain from a^N ~ N(0, I) to a^0 (Eq. 5, a product of Gaussian steps).

    Random numbers are drawn in a fixed order (a^N first, then one z per step i = N..2), so the same
    ``generator`` seed gives the same actions. Coefficients are read from Python lists made once, so the
    loop does no device-to-host synchronisation.
    """
    device = schedule.device
    n_steps = schedule.n_steps
    coef_a0 = schedule.posterior_mean_coef_a0.tolist()
    coef_ai = schedule.posterior_mean_coef_ai.tolist()
    alpha_bar = schedule.alphas_cumprod.tolist()
    std = schedule.reverse_variance(variance).sqrt().tolist()
    guided = guidance is not None and guidance.scale != 0

    a = torch.randn(shape, generator=generator, device=device, dtype=schedule.betas.dtype)
    trajectory = [a] if return_trajectory else None
    for i in range(n_steps, 0, -1):
        eps = eps_fn(a, i)
        if guided:
            steps = torch.full((shape[0],), i, dtype=torch.long, device=device)
            eps = eps - (1 - alpha_bar[i - 1]) ** 0.5 * guidance(state, a, steps)  # Eq. 24
        a0_hat = (a - (1 - alpha_bar[i - 1]) ** 0.5 * eps) / alpha_bar[i - 1] ** 0.5  # Eq. 14
        if max_action is not None:
            a0_hat = a0_hat.clamp(-max_action, max_action)
        a = coef_a0[i - 1] * a0_hat + coef_ai[i - 1] * a  # posterior mean
        if std[i - 1] > 0:
            a = a + std[i - 1] * torch.randn(shape, generator=generator, device=device, dtype=a.dtype)
        if trajectory is not None:
            trajectory.append(a)
    if trajectory is not None:
        return a, torch.stack(trajectory)
    return a
