"""The variance-preserving (VP) noise schedule: all of the diffusion maths, none of the networks.

Paper, Sec. 3.1 (schedule), Eq. 1/13 (forward noising), Eq. 14 (action approximation) and the DDPM posterior
of Sec. 2.2 (the reverse step). Steps are 1-based as in the paper: step i lives at index i-1 of every table.

Erratum (schedule sign). The paper prints ``β_i = 1 - exp(β_min/N - 0.5(β_max-β_min)(2i-1)/N²)``. With the
plus sign, α_1 = exp(β_min/N - 0.5(β_max-β_min)/N²) > 1 whenever N > (β_max-β_min)/(2β_min) (49.5 for the
paper's values, so for its N = 100), making β_1 < 0: not a variance; for smaller N the printed β_i are
positive but wrong. The discretised VP SDE of
Song et al. (the paper's reference [31]) has ``α_i = exp(-β_min/N - 0.5(β_max-β_min)(2i-1)/N²)``, which is
what we implement: then ᾱ_N = exp(-β_min - (β_max-β_min)/2) ≈ 0.006 for the paper's β_min=0.1, β_max=10,
whatever N is.

Erratum (α vs ᾱ). Eq. 6–8 and 12–14 write α_i where the cumulative product ᾱ_i = Π_{k≤i} α_k is meant; the
forward marginal (Eq. 1) and everything derived from it use ᾱ_i.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .._checks import check_steps

__all__ = ["VPSchedule"]


class VPSchedule(nn.Module):
    """The corrected VP schedule and the closed forms built on it.

    Attributes (1-D float32 tensors of length N; index k holds step i = k + 1):
        betas, alphas, alphas_cumprod, alphas_cumprod_prev (ᾱ_{i-1}, with ᾱ_0 = 1),
        posterior_variance (β̃_i = β_i (1-ᾱ_{i-1}) / (1-ᾱ_i); β̃_1 = 0),
        posterior_mean_coef_a0, posterior_mean_coef_ai (the two weights of the posterior mean).

    It is an ``nn.Module`` with non-persistent buffers so that ``policy.to(device)`` moves it too;
    ``.to(device)`` returns the schedule itself, now on that device.
    """

    def __init__(self, n_steps: int = 100, beta_min: float = 0.1, beta_max: float = 10.0) -> None:
        super().__init__()
        if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
            raise ValueError(f"n_steps must be an integer >= 1 (the number N of diffusion steps), got {n_steps!r}.")
        if not (math.isfinite(beta_min) and math.isfinite(beta_max)):
            raise ValueError(f"beta_min and beta_max must be finite numbers, got {beta_min!r} and {beta_max!r}.")
        if beta_min < 0:
            raise ValueError(f"beta_min must be >= 0 (it is a noise rate), got {beta_min}. The paper uses 0.1.")
        if beta_max <= beta_min:
            raise ValueError(
                f"beta_max must be larger than beta_min (noise grows with i), got beta_min={beta_min}, "
                f"beta_max={beta_max}. The paper uses beta_min=0.1, beta_max=10."
            )
        self.n_steps = n_steps
        self.beta_min = float(beta_min)
        self.beta_max = float(beta_max)

        # Computed in float64, stored in float32: ᾱ is a product of up to N factors.
        n = float(n_steps)
        i = torch.arange(1, n_steps + 1, dtype=torch.float64)
        alphas = torch.exp(-beta_min / n - 0.5 * (beta_max - beta_min) * (2 * i - 1) / n**2)  # sign fixed
        betas = 1.0 - alphas
        if not bool(((betas > 0) & (betas < 1)).all()):
            raise ValueError(
                f"beta_max={beta_max} with n_steps={n_steps} makes some β_i reach 1 (α_i underflows): "
                "use a smaller beta_max or more steps."
            )
        alphas_cumprod = torch.cumprod(alphas, dim=0)
        alphas_cumprod_prev = torch.cat([torch.ones(1, dtype=torch.float64), alphas_cumprod[:-1]])
        tables = {
            "betas": betas,
            "alphas": alphas,
            "alphas_cumprod": alphas_cumprod,
            "alphas_cumprod_prev": alphas_cumprod_prev,
            # q(a^{i-1} | a^i, a^0) = N(c0 a^0 + ci a^i, β̃_i I)  (DDPM posterior, Sec. 2.2)
            "posterior_variance": betas * (1 - alphas_cumprod_prev) / (1 - alphas_cumprod),
            "posterior_mean_coef_a0": betas * alphas_cumprod_prev.sqrt() / (1 - alphas_cumprod),
            "posterior_mean_coef_ai": (1 - alphas_cumprod_prev) * alphas.sqrt() / (1 - alphas_cumprod),
        }
        for name, table in tables.items():
            self.register_buffer(name, table.float(), persistent=False)

    def extra_repr(self) -> str:
        return f"n_steps={self.n_steps}, beta_min={self.beta_min}, beta_max={self.beta_max}"

    @property
    def device(self) -> torch.device:
        return self.betas.device

    def _at(self, table: torch.Tensor, i: object, like: torch.Tensor) -> torch.Tensor:
        """table[i-1] as a (B, 1) column to scale the rows of ``like`` (B, d)."""
        steps = check_steps(i, like.shape[0], self.n_steps, like.device)
        return table[steps - 1].unsqueeze(1)

    @staticmethod
    def _same_shape(x: torch.Tensor, y: torch.Tensor, x_name: str, y_name: str) -> None:
        if x.dim() != 2 or x.shape != y.shape:
            raise ValueError(
                f"{x_name} and {y_name} must both have shape (batch, action_dim); got {tuple(x.shape)} and "
                f"{tuple(y.shape)}."
            )

    def q_sample(self, a0: torch.Tensor, i: object, noise: torch.Tensor) -> torch.Tensor:
        """Noise clean actions to step i in one jump (Eq. 1/13, with ᾱ_i where the paper prints α_i):

            a^i = √ᾱ_i · a^0 + √(1 - ᾱ_i) · ε
        """
        self._same_shape(a0, noise, "a0", "noise")
        alpha_bar = self._at(self.alphas_cumprod, i, a0)
        return alpha_bar.sqrt() * a0 + (1 - alpha_bar).sqrt() * noise

    def predict_a0(self, a_i: torch.Tensor, i: object, eps: torch.Tensor) -> torch.Tensor:
        """Invert Eq. 13 for a^0 given the noise (Eq. 14, with ᾱ_i where the paper prints α_i):

            â^0 = (a^i - √(1 - ᾱ_i) · ε) / √ᾱ_i
        """
        self._same_shape(a_i, eps, "a_i", "eps")
        alpha_bar = self._at(self.alphas_cumprod, i, a_i)
        return (a_i - (1 - alpha_bar).sqrt() * eps) / alpha_bar.sqrt()

    def posterior_mean(self, a0: torch.Tensor, a_i: torch.Tensor, i: object) -> torch.Tensor:
        """Mean of q(a^{i-1} | a^i, a^0) = c0_i a^0 + ci_i a^i (DDPM posterior)."""
        self._same_shape(a0, a_i, "a0", "a_i")
        return self._at(self.posterior_mean_coef_a0, i, a0) * a0 + self._at(self.posterior_mean_coef_ai, i, a_i) * a_i

    def reverse_mean(self, a_i: torch.Tensor, i: object, eps: torch.Tensor) -> torch.Tensor:
        """The reverse-step mean in ε form (Eq. 3/6, corrected):

            μ = (a^i - β_i / √(1 - ᾱ_i) · ε) / √α_i

        Erratum: Eq. 6 prints √(1-α_i) and Eq. 7 prints β_i / (α_i √(1-α_i)); the correct noise
        coefficient of Eq. 7 is β_i / (√α_i · √(1-ᾱ_i)). This equals ``posterior_mean(predict_a0(a_i, i, eps), a_i, i)``.
        """
        self._same_shape(a_i, eps, "a_i", "eps")
        beta = self._at(self.betas, i, a_i)
        alpha = self._at(self.alphas, i, a_i)
        alpha_bar = self._at(self.alphas_cumprod, i, a_i)
        return (a_i - beta / (1 - alpha_bar).sqrt() * eps) / alpha.sqrt()

    def elbo_weights(self) -> torch.Tensor:
        """Eq. 18's per-step weights w_i, normalised to mean 1 over i = 1…N (length N).

        For i ≥ 2, w_i = β_i / (2 α_i (1 − ᾱ_{i−1})): the KL term of the ELBO between the Gaussian posterior
        and a reverse step with variance σ_i² = β_i (Ho et al. 2020's "simple" weighting drops these). Erratum
        (docs/errata.md #6): at i = 1 the printed formula divides by zero, because ᾱ_0 = 1. That term is the
        decoder's, whose posterior variance β̃_1 is 0; with σ_1² = β_1 (Ho et al.'s decoder) its weight is the
        finite 1 / (2 α_1). The mean-1 normalisation is the kit's convention (docs/errata.md "Conventions"): it
        keeps ``q_weight`` meaning the same whatever the policy improvement.
        """
        weights = self.betas / (2 * self.alphas * (1 - self.alphas_cumprod_prev).clamp(min=1e-12))
        weights[0] = 1 / (2 * self.alphas[0])
        return weights / weights.mean()

    def reverse_variance(self, kind: str = "posterior") -> torch.Tensor:
        """Variance of each reverse step, per step (length N).

        ``"posterior"`` (our default): β̃_i = β_i (1-ᾱ_{i-1})/(1-ᾱ_i), the variance of the true posterior
        (Sec. 2.2); it is exactly 0 at i = 1, which is the paper's "no noise at the last step".
        ``"beta"``: β_i, what Sec. 3.1 writes (Σ_θ = β_i I), with the i = 1 noise switched off as Eq. 7 says.
        Erratum: Sec. 2.2 and Sec. 3.1 disagree; both are valid DDPM choices (Ho et al. 2020 report similar
        samples); the posterior one is the exact variance when a^0 is known and is what Diffusion-QL uses.
        """
        if kind == "posterior":
            return self.posterior_variance
        if kind == "beta":
            return torch.cat([torch.zeros_like(self.betas[:1]), self.betas[1:]])
        raise ValueError(f"variance must be 'posterior' or 'beta', got {kind!r}.")
