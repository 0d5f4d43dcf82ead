"""What DAC4Rec and the DDPG/TD3/SAC backbones share as actor-critic agents: one ``update`` with its divergence
guard, one critic TD step through the target encoder, the policy/critic encoder pair (``encoding.py``) and
checkpoints from before the target encoder.

A subclass provides ``td_target(next_state, rewards, terminals, next_policy_state)``, ``policy_step(batch)``
(its actor step and the target updates that go with it) and, where the critic's targets move every critic
step, ``after_critic_step()``; ``policy_delay`` (1, TD3: ``config.policy_delay``) spaces the policy steps.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import OfflineAgent
from .encoding import AgentEncoders, upgrade_checkpoint

__all__ = ["ActorCriticAgent"]


class ActorCriticAgent(OfflineAgent):
    """An agent with a critic (``critic``, ``target_critic``), an actor (``policy``) and ``encoders``."""

    encoders: AgentEncoders
    _reward_scale: float = 0.0  # running max |r| of the batches seen, for the default Q bound

    @property
    def policy_delay(self) -> int:
        """Critic steps per policy step (TD3 delays its actor)."""
        return 1

    @property
    def policy_encoder(self) -> nn.Module:
        """The encoder the policy (and f_ψ) reads: the critic's (shared) or the policy's own (separate)."""
        return self.encoders.policy_encoder if self.encoders.separate else self.encoder

    def _actor_parameters(self) -> list[nn.Parameter]:
        """What the actor's Adam trains: the policy, and the policy encoder when it is separate."""
        return [*self.policy.parameters(), *self.encoders.policy_parameters()]

    @classmethod
    def _read_checkpoint(cls, path) -> dict:
        """Checkpoints from before the target encoder load with a copy of the online encoder (encoding.py)."""
        return upgrade_checkpoint(super()._read_checkpoint(path))

    # ----- one update ----------------------------------------------------------------------------------
    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One iteration: a critic step (Algorithm 1 lines 3–4), then every ``policy_delay`` steps a policy
        step with its target updates (lines 5–7); stops with ``TrainingDivergedError`` if training diverged."""
        batch = self._check_batch(batch)  # line 2: (s, a, r, s′) ~ D
        self._reward_scale = max(self._reward_scale, batch["rewards"].abs().max().item())
        metrics = self.update_critic(batch)  # lines 3–4: a′ ~ μ′(·|s′), TD step of the critic(s)
        if self.n_updates % self.policy_delay == 0:
            metrics.update(self.policy_step(batch))  # lines 5–7: actor step, soft-update the targets
        self.n_updates += 1
        self._guard(metrics, self.config.q_bound or 10 * max(self._reward_scale, 1e-3) / (1 - self.config.gamma))
        return metrics

    def update_critic(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One TD step of the critic(s) and the critic's encoder (Eq. 10 / Eq. 20): every critic regressed on
        the same target y, whose s′ the target encoder encodes."""
        state = self.encoder(batch["observations"])
        next_state, next_policy_state = self.encoders.next_states(batch["next_observations"])  # target encoders
        target = self.td_target(next_state, batch["rewards"], batch["terminals"], next_policy_state)
        out = self.critic(state, batch["actions"])
        qs = out if isinstance(out, tuple) else (out,)
        critic_loss = sum(F.mse_loss(q, target) for q in qs)  # Eq. 20 (a critic loss)
        self._step(self.critic_optimizer, critic_loss, [*self.critic.parameters(), *self.encoder.parameters()])
        self.after_critic_step()
        return {"critic_loss": critic_loss.item(), "q_mean": qs[0].mean().item(),
                "q_abs_max": max(q.abs().max().item() for q in qs), "target_mean": target.mean().item()}

    def after_critic_step(self) -> None:
        """What follows each critic step (DAC4Rec: φ′ and the target encoder; the backbones move their
        targets with the policy step instead)."""

    def td_target(self, next_state: torch.Tensor, rewards: torch.Tensor, terminals: torch.Tensor,
                  next_policy_state: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def policy_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        raise NotImplementedError
