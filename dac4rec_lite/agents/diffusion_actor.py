"""The diffusion actor: the paper's plug-in (Sec. 3.2–3.3), one component held as ``agent.actor`` by DAC4Rec and
by every ``diffusion=True`` backbone (DDPG, TD3, SAC).

It owns

* μ_θ (``policy``, a ``DiffusionPolicy`` over the VP ``schedule``) and, for an agent with a target actor, its
  Polyak copy μ_θ′ (``target_policy``; SAC keeps none);
* the policy improvement by action approximation: one noising of the dataset action and one ε call give L_d
  and â⁰ (Eq. 8, 13–14, lines 5–6); ``boxed`` clips â⁰ to the action box; the L_q terms are the direct −Q(s, â⁰)
  (Eq. 15–16, ``direct_q_loss``), the ELBO-weighted one (Eq. 18, ``elbo_weights``), the AWR one (Eq. 19) and
  the −A ablation's chain sample (Eq. 11, ``chain_q_loss``); ``loss`` adds them up as L_d + λ L_q (Eq. 9);
* with ``energy=True``, the energy model f_ψ (``energy_model``), its training (``fit_energy``, Algorithm 1 step 2,
  lines 9–14) and the guidance it gives (``guidance``, line 15);
* sampling: the TD target's a′ (``sample_next_actions``, line 3) and the actions ``act`` plays
  (``sample_actions``: Eq. 24 guided sampling, then Eq. 21 selection among K candidates).

What it needs from the agent comes in as arguments: the critic (``critic(state, action)`` returning (q1, q2) or
one (B, 1) Q, with a ``q_min`` method returning (B, 1)), the generator to draw from, and the encoders. Its
settings are the agent's config, which must carry the diffusion, energy and actor-critic field groups of
``agents/config.py`` (checked when the actor is built). The actor reads the config when it uses a field, so
a field changed after construction (``energy_scale`` between evaluations) takes effect at once.
"""
from __future__ import annotations

import copy
from typing import Callable

import pandas as pd
import torch

from ..diffusion import DiffusionPolicy, VPSchedule
from ..energy import EnergyGuidance, EnergyModel, train_energy
from .base import frozen, select_candidates
from .config import ActorCriticFields, AgentConfig, DiffusionFields, EnergyFields

__all__ = ["DiffusionActor", "DIFFUSION_ACTOR_FIELDS"]

# The config field groups a DiffusionActor reads (DAC4RecConfig and BackboneConfig have all four).
DIFFUSION_ACTOR_FIELDS = (AgentConfig, ActorCriticFields, DiffusionFields, EnergyFields)
QFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class DiffusionActor:
    """μ_θ, its target, L_d + λ L_q by action approximation, f_ψ and (guided) sampling (module docstring).

    Args:
        config: the agent's config; an instance of every group in ``DIFFUSION_ACTOR_FIELDS``
            (``AgentConfig``, ``ActorCriticFields``, ``DiffusionFields``, ``EnergyFields``). Read: ``n_steps,
            beta_min, beta_max, hidden_dim, eps_activation, max_action`` (the networks), ``q_weight,
            clip_approximation`` (the loss), ``td_sampler, td_sample_steps, act_sampler, act_sample_steps``
            (sampling), ``energy, energy_steps, energy_method, energy_beta, energy_scale, n_support,
            energy_states, seed`` (f_ψ).
        state_dim, action_dim: the size of the state the policy reads and of the action.
        device: where the networks live (they are built on the CPU, inside the agent's ``seeded_init``, then
            moved).
        target: keep a target policy μ_θ′ (False for SAC, which draws a′ from μ_θ).

    Built in two steps, because the agent's seed fixes every initial weight in the order they are drawn:
    the constructor draws μ_θ's weights (first), the agent then builds its critics, and
    ``build_energy_model()`` draws f_ψ's last.
    """

    def __init__(self, config: DiffusionFields, state_dim: int, action_dim: int,
                 device: torch.device | str = "cpu", *, target: bool = True) -> None:
        missing = [group.__name__ for group in DIFFUSION_ACTOR_FIELDS if not isinstance(config, group)]
        if missing:
            raise TypeError(f"DiffusionActor needs a config with the field groups {missing} (agents/config.py), "
                            f"got a {type(config).__name__}; use a DAC4RecConfig or a BackboneConfig.")
        self.config = config
        self.state_dim, self.action_dim = state_dim, action_dim
        self.device = torch.device(device)
        self.schedule = VPSchedule(config.n_steps, config.beta_min, config.beta_max)
        self.policy = DiffusionPolicy(state_dim, action_dim, self.schedule, config.hidden_dim, config.max_action,
                                      activation=config.eps_activation).to(self.device)
        self.target_policy = copy.deepcopy(self.policy).requires_grad_(False) if target else None
        # Eq. 18's per-step weights, with the finite i = 1 (decoder) term of errata #6, mean 1 over i.
        self.elbo_weights = self.schedule.elbo_weights()
        self.energy_model: EnergyModel | None = None
        self.energy_updates = 0
        self.energy_log: pd.DataFrame | None = None

    def build_energy_model(self) -> EnergyModel | None:
        """f_ψ over the actor's schedule when the config asks for energy guidance (else None). The agent calls
        this once its critics are built, so f_ψ's initial weights are the last ones its seed draws. f_ψ guides
        ``sample_actions`` only once trained."""
        if self.config.energy:
            self.energy_model = EnergyModel(self.state_dim, self.action_dim, self.schedule,
                                            self.config.hidden_dim).to(self.device)
        return self.energy_model

    # ----- lines 5–7: policy improvement by action approximation ---------------------------------------
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

    def direct_q_loss(self, critic, state: torch.Tensor, approx: torch.Tensor,
                      q_fn: QFn | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """L_q = −Q(s, â⁰) (Eq. 15–16), the gradient flowing through â⁰ into θ, divided by the batch's mean |Q|
        (detached, as Diffusion-QL and EDP do) so that λ is scale-free: L_d is O(1) whatever the rewards.

        ``q_fn(state, action)`` → (B, 1) picks the critic's value (default ``critic.q_min``). The critic's
        weights are frozen for this call, so the loss writes no critic gradients. Returns (L_q, Q (B, 1))."""
        with frozen(critic):  # the gradient must reach θ through â⁰, not the critic's weights
            q = (q_fn or critic.q_min)(state, approx)
        return -q.mean() / q.abs().mean().detach().clamp(min=1e-6), q

    def chain_q_loss(self, critic, state: torch.Tensor, critic_state: torch.Tensor | None = None,
                     generator: torch.Generator | None = None,
                     q_fn: QFn | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The −A ablation's L_q: a⁰ ~ μ_θ(·|s) drawn through the whole reverse chain with gradients on
        (Eq. 11), so ∂a⁰/∂θ runs through N ε calls; then the same normalised −Q as ``direct``. Returns
        (L_q, Q (B, 1))."""
        sampled = self.policy.sample(state, generator=generator)
        return self.direct_q_loss(critic, state if critic_state is None else critic_state, sampled, q_fn)

    def loss(self, critic, state: torch.Tensor, action: torch.Tensor, generator: torch.Generator | None,
             improvement: str = "direct", critic_state: torch.Tensor | None = None, q_fn: QFn | None = None,
             advantage_weights: QFn | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """L_d(θ) + λ L_q(θ) (Eq. 9, line 7), λ = ``q_weight``, with L_q chosen by ``improvement``.

        Random draws: the steps i, then the noise of one noising of the dataset action (lines 5–6,
        ``DiffusionPolicy.denoise_dataset_action``); "chain" then draws its reverse chain.

        * ``"direct"`` — Eq. 15–16: −Q(s, boxed â⁰) / mean |Q| (``direct_q_loss``, Q by ``q_fn``);
        * ``"chain"`` — the −A ablation (Sec. 4.6, Fig. 3c): the same −Q of a chain sample (Eq. 11);
        * ``"elbo"`` — Eq. 18: the ELBO's per-step weight times g(Q) times the ε error of the same draw as L_d;
        * ``"awr"`` — Eq. 19: g(Q) ‖a − â⁰‖², the negative log-likelihood of the approximated policy N(â⁰, I)
          up to constants, averaged over action dimensions like L_d (Eq. 8) so λ means the same for any action
          size. â⁰ unclipped: where it overshoots the box, this is the gradient that pulls it back.

        ``state`` is what the policy reads, ``critic_state`` what the critic reads for the same rows (default
        ``state``); ``advantage_weights(critic_state, action)`` → g(Q) (B, 1), needed by elbo and awr. Returns
        the loss and its metrics: ``bc_loss`` (L_d), ``q_loss`` (L_q; 0 when λ = 0, which skips L_q) and, for
        direct / chain, the mean raw Q (``q_approx_mean`` / ``q_sampled_mean``: the normalised loss is ≈ −1 by
        construction, the raw Q is the curve worth watching)."""
        critic_state = state if critic_state is None else critic_state
        error, steps, approx = self.policy.denoise_dataset_action(state, action, generator)  # lines 5–6 (Eq. 13–14)
        bc_loss = error.mean()  # L_d, Eq. 8
        if self.config.q_weight == 0:  # pure behaviour cloning: no L_q to compute
            return bc_loss, {"bc_loss": bc_loss.item(), "q_loss": 0.0}
        extra: dict[str, float] = {}
        if improvement == "direct":
            q_loss, q = self.direct_q_loss(critic, critic_state, self.boxed(approx), q_fn)
            extra = {"q_approx_mean": q.mean().item()}
        elif improvement == "chain":
            q_loss, q = self.chain_q_loss(critic, state, critic_state, generator, q_fn)
            extra = {"q_sampled_mean": q.mean().item()}
        elif improvement in ("elbo", "awr"):
            if advantage_weights is None:
                raise ValueError(f"improvement={improvement!r} weighs by g(Q): pass advantage_weights(state, action).")
            weights = advantage_weights(critic_state, action)
            if improvement == "elbo":
                q_loss = (self.elbo_weights[steps - 1] * weights.squeeze(1) * error).mean()
            else:
                q_loss = (weights * (action - approx).pow(2).mean(dim=1, keepdim=True)).mean()
        else:
            raise ValueError(f"improvement must be 'direct', 'chain', 'elbo' or 'awr', got {improvement!r}.")
        return bc_loss + self.config.q_weight * q_loss, {"bc_loss": bc_loss.item(), "q_loss": q_loss.item(), **extra}

    # ----- line 3: next actions for the TD target ----------------------------------------------------
    def sample_next_actions(self, policy: DiffusionPolicy, next_state: torch.Tensor,
                            generator: torch.Generator | None) -> torch.Tensor:
        """a′ ~ μ(· | s′) by the reverse chain (Eq. 7, Algorithm 1 line 3) for the TD target, with the config's
        ``td_sampler`` (a fast few-step solver when it asks for one); ``policy`` is μ_θ′ or, for SAC, μ_θ."""
        sampler, steps = self.config.td_sampling
        return policy.sample(next_state, generator=generator, sampler=sampler, n_sample_steps=steps)

    # ----- Algorithm 1 step 2: the energy model (energy=True) --------------------------------------------
    def fit_energy(self, critic, dataset, steps: int | None = None, progress: bool = True,
                   encoder: Callable[[torch.Tensor], torch.Tensor] | None = None,
                   critic_encoder: Callable[[torch.Tensor], torch.Tensor] | None = None) -> pd.DataFrame:
        """Algorithm 1 step 2 (lines 9–14): ``steps`` (default ``energy_steps``) updates of f_ψ on supports
        from the trained policy, scored by ``critic`` with the tilt e^{κQ/σ}, κ = ``energy_beta`` (``train_energy``
        with ``standardize=True``). ``encoder`` maps observations to the policy's states, ``critic_encoder`` to
        the critic's when it has its own. The log is kept in ``energy_log``; the seed moves on with every fit."""
        if self.energy_model is None:
            raise RuntimeError("this agent was built with energy=False (or without a diffusion policy); build it "
                               "with energy=True to train f_ψ.")
        cfg = self.config
        steps = cfg.energy_steps if steps is None else steps
        self.energy_log = train_energy(
            self.energy_model, self.policy, critic, dataset, steps, n_support=cfg.n_support, beta=cfg.energy_beta,
            method=cfg.energy_method, n_states=cfg.energy_states, encoder=encoder, critic_encoder=critic_encoder,
            seed=cfg.seed + self.energy_updates, progress=progress, standardize=True,
        )
        self.energy_updates += steps
        return self.energy_log

    # ----- acting ------------------------------------------------------------------------------------------
    def guidance(self) -> EnergyGuidance | None:
        """Line 15: the energy guidance ω ∇_a f_ψ used when acting, ω = ``energy_scale`` (None when there is
        no f_ψ)."""
        if self.energy_model is None:
            return None
        if self.energy_updates == 0:
            raise RuntimeError("energy=True but f_ψ is untrained: call fit() (or fit_energy()) before act().")
        return EnergyGuidance(self.energy_model, self.config.energy_scale)

    def sample_actions(self, critic, state: torch.Tensor, n_candidates: int, temperature: float | None,
                       generator: torch.Generator | None, critic_state: torch.Tensor | None = None) -> torch.Tensor:
        """Sample from μ_θ (energy-guided when there is a trained f_ψ, Eq. 24), then, with K > 1 candidates per
        state, select by ``critic.q_min`` (Eq. 21; argmax when ``temperature`` is None, else a draw
        ∝ exp(Q / temperature)). ``state`` is the policy's state, ``critic_state`` the critic's (default
        ``state``). Returns (B, action_dim)."""
        cfg = self.config
        repeated = state.repeat_interleave(n_candidates, dim=0)
        candidates = self.policy.sample(
            repeated, guidance=self.guidance(), generator=generator, sampler=cfg.act_sampler,
            n_sample_steps=cfg.act_sample_k)
        if n_candidates == 1:
            return candidates
        critic_repeated = repeated if critic_state is None else critic_state.repeat_interleave(n_candidates, dim=0)
        q = critic.q_min(critic_repeated, candidates)
        return select_candidates(q, candidates, state.shape[0], temperature, generator)
