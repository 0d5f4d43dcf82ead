"""The encoders of an actor-critic agent: the critic's, its Polyak target, and the policy's.

* ``encoder`` maps observations to the critic's state and is trained by the critic's TD loss only (Eq. 20).
* ``target_encoder`` is its Polyak copy, updated with the target critic (θ′ ← τ θ + (1 − τ) θ′): the TD
  target encodes s′ with it, so Q′(s′, a′) is a slow-moving target with a learned encoder too (with the
  online encoder, every critic step would also move the target it regresses on).
* ``policy_encoder`` is what the policy (and the energy model, which guides the policy's chain) reads:
  - ``"shared"``: the critic's ``encoder``, seen detached, so the policy's losses never train it;
  - ``"separate"``: an encoder of the same kind (a copy of the critic's at initialisation) trained by the
    policy's own loss L_d + λ L_q, in one Adam with the policy. The critic keeps its TD-trained encoder. With
    a target policy it has its own Polyak copy, ``target_policy_encoder``, for the TD target's a′ ~ μ_θ′(s′).
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from ..critics import soft_update

__all__ = ["AgentEncoders", "POLICY_ENCODERS", "upgrade_checkpoint"]

POLICY_ENCODERS = ("shared", "separate")


def upgrade_checkpoint(checkpoint: dict) -> dict:
    """A checkpoint written before the target encoder and ``policy_encoder`` existed, made loadable (in place):
    such an agent shared one encoder and bootstrapped from it, so its policy encoder is "shared" and its
    target encoder starts as a copy of the online one."""
    checkpoint["config"].setdefault("policy_encoder", "shared")
    weights = checkpoint["weights"]
    if "target_encoder" not in weights and "encoder" in weights:
        weights["target_encoder"] = weights["encoder"]
    return checkpoint


class AgentEncoders(nn.Module):
    """The critic's encoder, its target copy and the policy's encoder (see the module docstring).

    ``AgentEncoders(encoder, policy_encoder="shared", target_policy=True)``: ``target_policy`` says whether
    the agent keeps a target policy (SAC does not: its a′ comes from the current policy)."""

    def __init__(self, encoder: nn.Module, policy_encoder: str = "shared", target_policy: bool = True) -> None:
        super().__init__()
        if policy_encoder not in POLICY_ENCODERS:
            raise ValueError(f"policy_encoder must be one of {POLICY_ENCODERS}, got {policy_encoder!r}.")
        self.mode, self.has_target_policy = policy_encoder, target_policy
        self.encoder = encoder
        self.target_encoder = copy.deepcopy(encoder).requires_grad_(False)
        self.separate = policy_encoder == "separate"
        # Copies, not fresh draws: building them consumes no random numbers, so every other network of a
        # "separate" agent starts from the same weights as the "shared" agent of the same seed.
        self.policy_encoder = copy.deepcopy(encoder) if self.separate else None
        self.target_policy_encoder = (copy.deepcopy(encoder).requires_grad_(False)
                                      if self.separate and target_policy else None)

    @property
    def out_dim(self) -> int:
        return self.encoder.out_dim

    def critic_state(self, obs: torch.Tensor) -> torch.Tensor:
        """The critic's state (with gradients: the TD loss trains ``encoder``)."""
        return self.encoder(obs)

    def policy_state(self, obs: torch.Tensor, critic_state: torch.Tensor | None = None) -> torch.Tensor:
        """The policy's state: the detached critic state when shared (pass it to save a pass), else the
        separate encoder's output with gradients (the policy loss trains it)."""
        if self.separate:
            return self.policy_encoder(obs)
        if critic_state is None:
            with torch.no_grad():
                critic_state = self.encoder(obs)
        return critic_state.detach()

    @torch.no_grad()
    def next_states(self, next_obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """s′ for the TD target: (target critic's state, the state its a′ is drawn from).

        The second is the target policy encoder's (the target encoder's when shared) or, without a target
        policy (SAC), the current policy encoder's."""
        critic_next = self.target_encoder(next_obs)
        if not self.separate:
            return critic_next, (critic_next if self.has_target_policy else self.encoder(next_obs))
        policy_encoder = self.target_policy_encoder if self.has_target_policy else self.policy_encoder
        return critic_next, policy_encoder(next_obs)

    def critic_parameters(self) -> list[nn.Parameter]:
        return list(self.encoder.parameters())

    def policy_parameters(self) -> list[nn.Parameter]:
        """The policy encoder's weights, trained with the policy (none when shared)."""
        return list(self.policy_encoder.parameters()) if self.separate else []

    def update_critic_target(self, tau: float) -> None:
        """θ′_enc ← τ θ_enc + (1 − τ) θ′_enc, beside the target critic's update."""
        soft_update(self.target_encoder, self.encoder, tau)

    def update_policy_target(self, tau: float) -> None:
        """The target policy encoder's Polyak step, beside the target policy's (separate only)."""
        if self.target_policy_encoder is not None:
            soft_update(self.target_policy_encoder, self.policy_encoder, tau)

    def modules_to_save(self) -> dict[str, nn.Module]:
        """Checkpoint entries: ``encoder`` (under its old name), ``target_encoder`` and the policy's."""
        modules = {"encoder": self.encoder, "target_encoder": self.target_encoder}
        if self.separate:
            modules["policy_encoder"] = self.policy_encoder
            if self.target_policy_encoder is not None:
                modules["target_policy_encoder"] = self.target_policy_encoder
        return modules
