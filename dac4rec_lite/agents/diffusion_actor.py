"""The diffusion actor: the paper's plug-in (Sec. 3.2–3.3), shared by DAC4Rec and every ``diffusion=True`` backbone.

An agent that mixes in :class:`DiffusionActor` gets, from its config:

* ``policy`` μ_θ (a ``DiffusionPolicy`` over the VP ``schedule``) and, with ``energy=True``, the energy model f_ψ;
* ``boxed`` — the action approximation â⁰ (Eq. 13–14, ``DiffusionPolicy.denoise_dataset_action``, lines 5–6)
  clipped to the action box for the direct L_q;
* ``direct_q_loss`` — L_q = −Q(s, â⁰) (Eq. 15–16), scale-free;
* ``fit`` followed by ``fit_energy`` (Algorithm 1 step 2, lines 9–14), ``guidance`` (line 15) and
  ``sample_actions`` (Eq. 24 guided sampling, then Eq. 21 selection among K candidates).

The config must carry ``n_steps, beta_min, beta_max, hidden_dim, eps_activation, max_action, clip_approximation,
act_sampler, act_sample_steps, energy, energy_steps, energy_method, energy_beta, energy_scale, n_support,
energy_states, seed``; the agent provides ``self.critic`` (called as ``critic(state, action)``, returning (q1, q2) or one
(B, 1) Q, with a ``q_min`` method) and ``self.encoder``.
"""
from __future__ import annotations

from typing import Callable

import pandas as pd
import torch

from ..diffusion import DiffusionPolicy, VPSchedule
from ..energy import EnergyGuidance, EnergyModel, train_energy
from .base import frozen, select_candidates

__all__ = ["DiffusionActor"]


class DiffusionActor:
    """Mixin for agents whose actor is a ``DiffusionPolicy`` trained by action approximation (see the module
    docstring). Mix it in before the agent base: ``class Agent(DiffusionActor, ActorCriticAgent)``."""

    policy: DiffusionPolicy
    schedule: VPSchedule
    energy_model: EnergyModel | None
    energy_updates: int

    # ----- networks ------------------------------------------------------------------------------------
    def _build_diffusion_policy(self, state_dim: int, action_dim: int) -> None:
        """μ_θ over the config's VP schedule (call inside the agent's seeded initialisation)."""
        cfg = self.config
        self.schedule = VPSchedule(cfg.n_steps, cfg.beta_min, cfg.beta_max)
        self.policy = DiffusionPolicy(state_dim, action_dim, self.schedule, cfg.hidden_dim, cfg.max_action,
                                      activation=cfg.eps_activation)

    def _build_energy_model(self, state_dim: int, action_dim: int) -> None:
        """f_ψ when the config asks for energy guidance; it guides ``act`` only once trained."""
        cfg = self.config
        self.energy_model = EnergyModel(state_dim, action_dim, self.schedule, cfg.hidden_dim) if cfg.energy else None
        self.energy_updates = 0

    def _extra_state(self) -> dict[str, int]:
        return {"energy_updates": getattr(self, "energy_updates", 0)}

    def _load_extra_state(self, state: dict[str, int]) -> None:
        self.energy_updates = int(state.get("energy_updates", 0))

    # ----- policy improvement by action approximation ----------------------------------------------------
    def boxed(self, approx: torch.Tensor) -> torch.Tensor:
        """â⁰ clipped to the action box before the direct L_q, when ``clip_approximation`` (the default).

        The sampler clips every â⁰ to the box (samplers.py), so this is the action the policy would play from
        a^i. Unclipped, L_q pulls â⁰ far outside: at i = N, (1−ᾱ_N)/ᾱ_N ≈ 150 turns a small ε shift into a
        huge action shift, and −Q keeps pushing along the critic's extrapolation where the sampler's clip
        makes it useless, spending the gradient there instead of at the middle steps that pick the blob.
        Clipped, a row pushed past the box gets no more L_q gradient (only L_d's); EDP (sail-sg/edp) clips â⁰
        the same way. Only for −Q (``direct``): Eq. 19's ‖a − â⁰‖² (``awr``) needs â⁰'s gradient exactly
        where it overshoots, to pull it back (docs/errata.md, Conventions)."""
        cfg = self.config
        if cfg.clip_approximation and cfg.max_action is not None:
            return approx.clamp(-cfg.max_action, cfg.max_action)
        return approx

    def sample_next_actions(self, policy: DiffusionPolicy, next_state: torch.Tensor) -> torch.Tensor:
        """a′ ~ μ(· | s′) by the reverse chain (Eq. 7, Algorithm 1 line 3) for the TD target, with the config's
        ``td_sampler`` (a fast few-step solver when it asks for one); ``policy`` is μ_θ′ or, for SAC, μ_θ."""
        sampler, steps = self.config.td_sampling
        return policy.sample(next_state, generator=self.generator, sampler=sampler, n_sample_steps=steps)

    def direct_q_loss(self, state: torch.Tensor, approx: torch.Tensor,
                      q_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """L_q = −Q(s, â⁰) (Eq. 15–16), the gradient flowing through â⁰ into θ, divided by the batch's mean |Q|
        (detached, as Diffusion-QL and EDP do) so that λ is scale-free: L_d is O(1) whatever the rewards.

        ``q_fn(state, action)`` → (B, 1) picks the critic's value (default ``critic.q_min``). The critic's
        weights are frozen for this call, so the loss writes no critic gradients. Returns (L_q, Q)."""
        with frozen(self.critic):  # the gradient must reach θ through â⁰, not the critic's weights
            q = (q_fn or self.critic.q_min)(state, approx)
        return -q.mean() / q.abs().mean().detach().clamp(min=1e-6), q

    # ----- Algorithm 1 step 2: the energy model (energy=True) --------------------------------------------
    def fit(self, dataset, steps: int, batch_size: int = 256, progress: bool = True, log_every: int = 1) -> pd.DataFrame:
        """``steps`` updates (critic + policy); then, with an energy model, Algorithm 1 step 2:
        ``energy_steps`` updates of f_ψ (``fit_energy``; its log is kept in ``self.energy_log``)."""
        log = super().fit(dataset, steps, batch_size, progress, log_every)
        if self.energy_model is not None and not log.attrs.get("interrupted"):  # Ctrl-C: stop, do not go on to f_ψ
            self.fit_energy(dataset, progress=progress)
        return log

    def fit_energy(self, dataset, steps: int | None = None, progress: bool = True) -> pd.DataFrame:
        """Algorithm 1 step 2 (lines 9–14): train f_ψ on supports from the trained policy, scored by the critic."""
        if self.energy_model is None:
            raise RuntimeError("this agent was built with energy=False (or without a diffusion policy); build it "
                               "with energy=True to train f_ψ.")
        cfg = self.config
        steps = cfg.energy_steps if steps is None else steps
        self.energy_log = train_energy(
            self.energy_model, self.policy, self.critic, dataset, steps, n_support=cfg.n_support, beta=cfg.energy_beta,
            method=cfg.energy_method, n_states=cfg.energy_states, encoder=self.policy_encoder,
            critic_encoder=self.encoder if self.encoders.separate else None,
            seed=cfg.seed + self.energy_updates, progress=progress, standardize=True,
        )
        self.energy_updates += steps
        return self.energy_log

    # ----- acting ------------------------------------------------------------------------------------------
    def guidance(self) -> EnergyGuidance | None:
        """Line 15: the energy guidance used by ``act`` (None when energy=False)."""
        if self.energy_model is None:
            return None
        if self.energy_updates == 0:
            raise RuntimeError("energy=True but f_ψ is untrained: call fit() (or fit_energy()) before act().")
        return EnergyGuidance(self.energy_model, self.config.energy_scale)

    def sample_actions(self, state: torch.Tensor, n_candidates: int, temperature: float | None,
                       generator: torch.Generator | None, critic_state: torch.Tensor | None = None) -> torch.Tensor:
        """Sample from μ_θ (energy-guided when energy=True, Eq. 24), then, with K > 1 candidates per state,
        select by min Q (Eq. 21; argmax when ``temperature`` is None). ``state`` is the policy's state,
        ``critic_state`` the critic's (default ``state``)."""
        cfg = self.config
        repeated = state.repeat_interleave(n_candidates, dim=0)
        candidates = self.policy.sample(
            repeated, guidance=self.guidance(), generator=generator, sampler=cfg.act_sampler,
            n_sample_steps=cfg.act_sample_k)
        if n_candidates == 1:
            return candidates
        critic_repeated = repeated if critic_state is None else critic_state.repeat_interleave(n_candidates, dim=0)
        q = self.critic.q_min(critic_repeated, candidates)
        return select_candidates(q, candidates, state.shape[0], temperature, generator)
