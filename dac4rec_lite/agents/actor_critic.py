"""What DAC4Rec and the DDPG/TD3/SAC backbones share as actor-critic agents: one ``update`` with its divergence
guard, one critic TD step through the target encoder, the policy/critic encoder pair (``encoding.py``) and
checkpoints from before the target encoder; and the way to the diffusion actor (``diffusion_actor.py``) that
DAC4Rec and the ``diffusion=True`` backbones hold as ``self.actor``: its parts keep their names on the agent
(``policy``, ``target_policy``, ``schedule``, ``energy_model``, ``boxed``, ``direct_q_loss``, ``fit_energy``, …).

A subclass provides ``td_target(next_state, rewards, terminals, next_policy_state)``, ``policy_step(batch)``
(its actor step and the target updates that go with it) and, where the critic's targets move every critic
step, ``after_critic_step()``; ``policy_delay`` (1, TD3: ``config.policy_delay``) spaces the policy steps.
"""
from __future__ import annotations

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ..diffusion import DiffusionPolicy, VPSchedule
from ..energy import EnergyGuidance, EnergyModel
from .base import OfflineAgent
from .diffusion_actor import DiffusionActor
from .encoding import AgentEncoders, upgrade_checkpoint

__all__ = ["ActorCriticAgent"]


class ActorCriticAgent(OfflineAgent):
    """An agent with a critic (``critic``, ``target_critic``), an actor (``policy``) and ``encoders``.

    The actor is either the diffusion actor component ``actor`` (a ``DiffusionActor``, which owns μ_θ, μ_θ′,
    f_ψ and the action-approximation losses) or, for a plain backbone (``actor`` None), one network set by
    the subclass with ``_set_plain_actor``."""

    encoders: AgentEncoders
    actor: DiffusionActor | None = None  # the diffusion actor component; None for a plain actor network
    _plain_policy: nn.Module | None = None
    _plain_target_policy: nn.Module | None = None
    _reward_scale: float = 0.0  # running max |r| of the batches seen, for the default Q bound

    # ----- the actor's parts, by the names they had on the agent ----------------------------------------
    def _set_plain_actor(self, policy: nn.Module, target_policy: nn.Module | None) -> None:
        """A plain (non-diffusion) actor network and its target (None: no target actor)."""
        self._plain_policy, self._plain_target_policy = policy, target_policy

    @property
    def policy(self) -> nn.Module:
        """The actor's network: μ_θ (``actor.policy``) for a diffusion actor, else the plain actor."""
        return self.actor.policy if self.actor is not None else self._plain_policy

    @policy.setter
    def policy(self, module: nn.Module) -> None:
        if self.actor is not None:
            self.actor.policy = module
        else:
            self._plain_policy = module

    @property
    def target_policy(self) -> nn.Module | None:
        """The target actor μ_θ′ (None where the agent keeps none, as SAC)."""
        return self.actor.target_policy if self.actor is not None else self._plain_target_policy

    @target_policy.setter
    def target_policy(self, module: nn.Module | None) -> None:
        if self.actor is not None:
            self.actor.target_policy = module
        else:
            self._plain_target_policy = module

    @property
    def schedule(self) -> VPSchedule:
        """The VP schedule of the diffusion actor (``actor.schedule``)."""
        if self.actor is None:
            raise AttributeError(f"this {type(self).__name__} has no diffusion actor (build it with diffusion=True).")
        return self.actor.schedule

    @property
    def energy_model(self) -> EnergyModel | None:
        """f_ψ (``actor.energy_model``): None without energy guidance. Setting it to None makes ``act``
        sample μ_θ unguided."""
        return None if self.actor is None else self.actor.energy_model

    @energy_model.setter
    def energy_model(self, model: EnergyModel | None) -> None:
        if self.actor is None:
            if model is not None:
                raise AttributeError(f"this {type(self).__name__} has no diffusion actor to guide; energy=True "
                                     "here means Eq. 21 selection at act().")
            return
        self.actor.energy_model = model

    @property
    def energy_updates(self) -> int:
        """How many f_ψ updates ``fit_energy`` has run (0: f_ψ untrained)."""
        return 0 if self.actor is None else self.actor.energy_updates

    @energy_updates.setter
    def energy_updates(self, value: int) -> None:
        if self.actor is None:
            raise AttributeError(f"this {type(self).__name__} has no diffusion actor (and no f_ψ).")
        self.actor.energy_updates = int(value)

    @property
    def energy_log(self) -> pd.DataFrame:
        """The log of the last ``fit_energy`` (``step``, ``energy_loss``; ``attrs["q_scale"]`` = σ)."""
        log = None if self.actor is None else self.actor.energy_log
        if log is None:
            raise AttributeError("no energy log: f_ψ has not been trained (fit with energy=True, or fit_energy()).")
        return log

    def _extra_state(self) -> dict[str, int]:
        return {"energy_updates": self.energy_updates}

    def _load_extra_state(self, state: dict[str, int]) -> None:
        if self.actor is not None:
            self.actor.energy_updates = int(state.get("energy_updates", 0))

    # ----- the diffusion actor's pieces with this agent's critic and generator ---------------------------
    def boxed(self, approx: torch.Tensor) -> torch.Tensor:
        """â⁰ clipped to the action box before the direct L_q (``DiffusionActor.boxed``)."""
        return self.actor.boxed(approx)

    def direct_q_loss(self, state: torch.Tensor, approx: torch.Tensor,
                      q_fn=None) -> tuple[torch.Tensor, torch.Tensor]:
        """L_q = −Q(s, â⁰) / mean|Q| (Eq. 15–16) with this agent's critic, frozen (``DiffusionActor.direct_q_loss``;
        ``q_fn(state, action)`` → (B, 1), default ``critic.q_min``). Returns (L_q, Q)."""
        return self.actor.direct_q_loss(self.critic, state, approx, q_fn)

    def sample_next_actions(self, policy: DiffusionPolicy, next_state: torch.Tensor) -> torch.Tensor:
        """a′ ~ μ(· | s′) for the TD target (line 3), drawn from the agent's generator
        (``DiffusionActor.sample_next_actions``); ``policy`` is μ_θ′ or, for SAC, μ_θ."""
        return self.actor.sample_next_actions(policy, next_state, self.generator)

    def fit(self, dataset, steps: int, batch_size: int = 256, progress: bool = True, log_every: int = 1) -> pd.DataFrame:
        """``steps`` updates (critic + policy); then, with an energy model, Algorithm 1 step 2:
        ``energy_steps`` updates of f_ψ (``fit_energy``; its log is kept in ``energy_log``)."""
        log = super().fit(dataset, steps, batch_size, progress, log_every)
        if self.energy_model is not None and not log.attrs.get("interrupted"):  # Ctrl-C: stop, do not go on to f_ψ
            self.fit_energy(dataset, progress=progress)
        return log

    def fit_energy(self, dataset, steps: int | None = None, progress: bool = True) -> pd.DataFrame:
        """Algorithm 1 step 2 (lines 9–14): train f_ψ on supports from the trained policy, scored by the critic
        (``DiffusionActor.fit_energy``, with the policy's encoder and, when separate, the critic's)."""
        if self.actor is None:
            raise RuntimeError("this agent was built with energy=False (or without a diffusion policy); build it "
                               "with energy=True to train f_ψ.")
        return self.actor.fit_energy(self.critic, dataset, steps, progress, encoder=self.policy_encoder,
                                     critic_encoder=self.encoder if self.encoders.separate else None)

    def guidance(self) -> EnergyGuidance | None:
        """Line 15: the energy guidance used by ``act`` (None when energy=False)."""
        return None if self.actor is None else self.actor.guidance()

    def sample_actions(self, state: torch.Tensor, n_candidates: int, temperature: float | None,
                       generator: torch.Generator | None, critic_state: torch.Tensor | None = None) -> torch.Tensor:
        """Sample from μ_θ (energy-guided when energy=True, Eq. 24), then, with K > 1 candidates per state,
        select by min Q (Eq. 21) with this agent's critic (``DiffusionActor.sample_actions``)."""
        return self.actor.sample_actions(self.critic, state, n_candidates, temperature, generator, critic_state)

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
        batch = self.check_batch(batch)  # line 2: (s, a, r, s′) ~ D
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

    @staticmethod
    def nothing_bootstraps(terminals: torch.Tensor) -> bool:
        """True when every row of the batch ends its episode (one-step episodes: bandits). Then the TD target
        is y = r, and a subclass's ``td_target`` returns it at once: drawing a′ (line 3; for a diffusion actor
        the reverse chain, the most expensive part of an update) would only be multiplied by 0, and not
        drawing it leaves the agent's generator where it was."""
        return bool((terminals >= 1).all())

    def policy_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        raise NotImplementedError
