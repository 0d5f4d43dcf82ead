"""Baselines without the paper's plug-ins: Gaussian behaviour cloning and TD3+BC.

* ``BehaviorCloning`` — maximum likelihood of the logged actions under a Gaussian policy (``GaussianPolicy``),
  played by its mean. On a mixture of behaviours the mean blends them; what that is worth depends on how the
  behaviours' directions average (on RecSim-v0 a page depends only on the action's direction).
* ``TD3BC`` — TD3+BC (Fujimoto & Gu 2021), the standard minimal offline actor-critic the paper leaves out:
  TD3 whose actor loss is −c Q₁(s, π(s)) + (π(s) − a)², with c = α / mean|Q₁| so the two terms keep their
  balance whatever the reward scale (α = ``bc_weight`` = 2.5).

The Decision Transformer lives in ``decision_transformer.py``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..gaussian import GaussianPolicy
from .backbones import TD3, TD3Config
from .base import OfflineAgent, frozen
from .config import AgentConfig

__all__ = ["BehaviorCloning", "BehaviorCloningConfig", "TD3BC", "TD3BCConfig"]


@dataclass
class BehaviorCloningConfig(AgentConfig):
    """Hyper-parameters of Gaussian behaviour cloning (plain values, saved beside the weights). The shared
    fields (sizes, ``encoder`` — here trained by the BC loss —, ``obs_layout``, ``device``, ``seed``) and the
    validation of every field come from ``AgentConfig`` (agents/config.py)."""

    hidden_dim: int = 256
    max_action: float | None = 1.0
    lr: float = 1e-3
    lr_decay: bool = True            # cosine-decay the learning rate to 0 over each fit()
    grad_clip: float = 5.0
    deterministic: bool = True       # act() plays the mean; False draws from N(m(s), σ(s)²) (clipped to the box)


class BehaviorCloning(OfflineAgent):
    """Gaussian behaviour cloning: minimise −log N(a; m(s), σ(s)²) over the dataset's (s, a) (``GaussianPolicy``).

    ``BehaviorCloning(obs_dim, action_dim, encoder=None, hidden_dim=256, lr=1e-3, ...)``. No critic: the
    encoder is trained by the BC loss, and ``act`` accepts only ``n_candidates=1`` (there is no Q to rank by)."""

    Config = BehaviorCloningConfig

    def __init__(self, obs_dim: int, action_dim: int, encoder: str | nn.Module | None = None, **kwargs) -> None:
        self._construct(obs_dim, action_dim, encoder, kwargs)  # config, seed, encoder, networks, optimiser (base.py)

    def _build_networks(self, state_dim: int) -> None:
        cfg = self.config
        self.policy = GaussianPolicy(state_dim, cfg.action_dim, cfg.hidden_dim, cfg.max_action)

    def _build_optimizers(self) -> None:
        self.optimizer = torch.optim.Adam([*self.policy.parameters(), *self.encoder.parameters()], lr=self.config.lr)

    def _modules_to_save(self) -> dict[str, nn.Module]:
        return {"encoder": self.encoder, "policy": self.policy}

    def _optimizers(self) -> list[torch.optim.Optimizer]:
        return [self.optimizer]

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One step of the negative log-likelihood (per action dimension) of the batch's actions."""
        batch = self.check_batch(batch)
        loss = self.policy.loss(self.encoder(batch["observations"]), batch["actions"])
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip > 0:
            nn.utils.clip_grad_norm_([*self.policy.parameters(), *self.encoder.parameters()], self.config.grad_clip)
        self.optimizer.step()
        self.n_updates += 1
        metrics = {"bc_loss": loss.item()}
        self._guard(metrics, float("inf"))
        return metrics

    def _act(self, obs: torch.Tensor, n_candidates: int, temperature: float | None,
             generator: torch.Generator | None) -> torch.Tensor:
        if n_candidates != 1:
            raise ValueError("BehaviorCloning has no critic to rank candidates by; call act() with n_candidates=1.")
        return self.policy.sample(self.encoder(obs), generator, deterministic=self.config.deterministic)


@dataclass
class TD3BCConfig(TD3Config):
    """TD3's fields plus α of TD3+BC (Fujimoto & Gu 2021)."""

    bc_weight: float = 2.5           # α: c = α / mean|Q₁(s, π(s))| weighs Q against the BC term

    def __post_init__(self) -> None:
        super().__post_init__()  # every field, bc_weight > 0 included (RANGES in agents/config.py)
        if self.diffusion:
            raise ValueError("TD3BC's behaviour term is the squared error to the dataset action; for a diffusion "
                             "actor use TD3(diffusion=True), whose L_d is the behaviour term.")


class TD3BC(TD3):
    """TD3+BC (Fujimoto & Gu 2021): TD3 (twin critics, target smoothing, delayed actor) whose actor loss is

        −c Q₁(s, π(s)) + ‖π(s) − a‖² / d,   c = α / mean_batch |Q₁(s, π(s))|  (detached),  (s, a) ~ D,

    the squared error averaged over action dimensions as in the authors' code (F.mse_loss); the authors call
    c λ, a letter this kit keeps for ``q_weight`` (docs/notation.md). ``energy=True``
    adds Eq. 21 selection at ``act`` as for TD3. The authors also standardise observations; RecSim-v0's
    observations already lie in [−1, 1], so that is left to an encoder.

    ``TD3BC(obs_dim, action_dim, bc_weight=2.5, ...)``; every field of ``TD3BCConfig`` is a keyword argument."""

    Config = TD3BCConfig

    def update_actor(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        with torch.no_grad():
            state = self.encoder(batch["observations"])
        action = self.policy(state)
        with frozen(self.critic):
            q = self.actor_q(state, action)
        weight = self.config.bc_weight / q.abs().mean().detach().clamp(min=1e-6)
        bc_loss = F.mse_loss(action, batch["actions"])
        loss = -weight * q.mean() + bc_loss
        self._step(self.actor_optimizer, loss, list(self.policy.parameters()))
        return {"bc_loss": bc_loss.item(), "actor_loss": loss.item()}
