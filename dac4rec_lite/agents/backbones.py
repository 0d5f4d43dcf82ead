"""Offline DDPG, TD3 and SAC, each with the paper's two plug-ins (Sec. 4.7, Table 4).

Every backbone is one actor-critic ``update`` (critic TD step, then an actor step, then the target networks),
read top to bottom as in CleanRL. Two switches change what the actor is and how it acts:

``diffusion=True`` — the actor becomes a ``DiffusionPolicy`` μ_θ trained by action approximation, the
paper's plug-in (Eq. 13–15): the agent holds a ``DiffusionActor`` (``agent.actor``, the component DAC4Rec
holds) and the backbone's actor loss −Q(s, π(s)) is replaced by
L_d + λ L_q with L_q = −Q(s, â⁰) / mean|Q| (λ = ``q_weight``), â⁰ the one-step denoising of the dataset
action. Next actions for the TD target come from the reverse chain.

* DDPG + diffusion: one critic; a′ from the target policy μ_θ′.
* TD3 + diffusion: twin critics; a′ from μ_θ′ plus TD3's clipped smoothing noise; L_q on Q₁; the actor (L_d
  and L_q together) and every target network update every ``policy_delay`` critic steps.
* SAC + diffusion: twin critics; a′ from the current μ_θ (SAC keeps no target actor); L_q on min(Q₁, Q₂).
  SAC's entropy term drops out: the policy that L_q scores is the approximated policy μ̂_θ = N(â⁰, I) of
  Eq. 19, whose entropy ½ d log(2πe) does not depend on θ. So the actor loss E[α_SAC log μ̂ − Q] is −Q plus a
  constant, the soft TD target's −α_SAC log μ̂(a′|s′) is a constant offset of every Q (it changes no action's
  rank), and the temperature α_SAC has nothing to adapt to: no α_SAC is learned. We score μ̂'s mean â⁰, its
  reparameterised draw with the noise set to zero: the noise's scale (std 1, as wide as the action box) is
  fixed, not learned, and would only query the critic far outside the box. What keeps SAC+Diffusion
  stochastic is the diffusion policy itself, sampled by the reverse chain.

``energy=True`` — the paper's energy plug-in, whose target is π*(a|s) ∝ exp(κ Q(s, a)) μ(a|s) (Eq. 21), κ the
inverse temperature (docs/notation.md):

* diffusion actor: f_ψ is trained after the policy (Algorithm 1 step 2) and ``act`` samples by the
  energy-guided reverse chain (Eq. 24) with guidance scale ω = ``energy_scale``, as ``DAC4Rec`` does.
* Gaussian (SAC) or deterministic (DDPG, TD3) actor: there is no chain to guide, so ``act`` applies Eq. 21
  directly to K = ``energy_candidates`` candidates per state — SAC: K draws of its Gaussian; DDPG/TD3: the
  action plus K − 1 Gaussian perturbations of std ``energy_noise`` (clipped to the box) — and draws one
  ∝ exp(κ min Q) with κ = ``energy_beta`` (temperature 1/κ; an explicit ``temperature`` or
  ``n_candidates`` passed to ``act`` overrides them).

Without energy, ``act`` is greedy: DDPG/TD3 play μ(s), SAC plays its mean action, a diffusion actor one draw
of the reverse chain; ``n_candidates`` > 1 then ranks candidates drawn as above by min Q (argmax, or a draw
∝ exp(Q / temperature)).

Offline, plain DDPG/TD3/SAC query the critic on actions the data never shows and follow its extrapolation
error; nothing here corrects that (the paper's Tables 1–2 show them failing). TD3+BC (``baselines.py``) and
the diffusion actor keep the policy near the data.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_matrix, randn
from ..critics import TwinQ, mlp, soft_update
from .actor_critic import ActorCriticAgent
from .base import frozen, select_candidates
from .diffusion_actor import DiffusionActor
from .config import ActorCriticFields, AgentConfig, DiffusionFields, EnergyFields
from .encoding import AgentEncoders

__all__ = [
    "BackboneConfig", "DDPGConfig", "TD3Config", "SACConfig", "DDPG", "TD3", "SAC",
    "DeterministicActor", "TanhGaussianActor", "QNetwork", "LearnedTemperature",
]


# ----- networks ----------------------------------------------------------------------------------------
class DeterministicActor(nn.Module):
    """μ(s) = max_action · tanh(MLP(s)) (DDPG, TD3); unbounded (no tanh) when ``max_action`` is None."""

    def __init__(self, state_dim: int, action_dim: int, hidden_dim: int = 256, max_action: float | None = 1.0) -> None:
        super().__init__()
        self.state_dim, self.action_dim, self.max_action = state_dim, action_dim, max_action
        self.net = mlp(state_dim, action_dim, hidden_dim, n_hidden=2)

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        out = self.net(check_matrix(state, "state", self.state_dim))
        return out if self.max_action is None else self.max_action * torch.tanh(out)


class TanhGaussianActor(nn.Module):
    """SAC's policy: u ~ N(m(s), diag σ(s)²), a = max_action · tanh(u), with the change-of-variables
    log-density log π(a|s) = log N(u) − Σ_j log(max_action (1 − tanh² u_j)) (Haarnoja et al. 2018, App. C).
    Without a bound (``max_action=None``) a = u."""

    LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0

    def __init__(self, state_dim: int, action_dim: int, hidden_dim: int = 256, max_action: float | None = 1.0) -> None:
        super().__init__()
        self.state_dim, self.action_dim, self.max_action = state_dim, action_dim, max_action
        self.net = mlp(state_dim, 2 * action_dim, hidden_dim, n_hidden=2)

    def distribution(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and standard deviation of u, each (B, action_dim)."""
        mean, log_std = self.net(check_matrix(state, "state", self.state_dim)).chunk(2, dim=1)
        return mean, log_std.clamp(self.LOG_STD_MIN, self.LOG_STD_MAX).exp()

    def _squash(self, u: torch.Tensor) -> torch.Tensor:
        return u if self.max_action is None else self.max_action * torch.tanh(u)

    def mean_action(self, state: torch.Tensor) -> torch.Tensor:
        """The deterministic action SAC is evaluated with: the squashed mean."""
        return self._squash(self.distribution(state)[0])

    def rsample_with_log_prob(self, state: torch.Tensor,
                              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised draw a (differentiable w.r.t. the weights, as ``torch.distributions``' ``rsample``)
        and its log-density log π(a|s): (B, d) and (B, 1)."""
        mean, std = self.distribution(state)
        noise = randn(tuple(mean.shape), generator, mean.device, mean.dtype)
        u = mean + std * noise
        log_prob = (-0.5 * noise.pow(2) - std.log() - 0.5 * math.log(2 * math.pi)).sum(dim=1, keepdim=True)
        if self.max_action is not None:
            # log(1 − tanh² u) = 2 (log 2 − u − softplus(−2u)), the numerically stable form.
            log_det = 2 * (math.log(2) - u - F.softplus(-2 * u)) + math.log(self.max_action)
            log_prob = log_prob - log_det.sum(dim=1, keepdim=True)
        return self._squash(u), log_prob


class QNetwork(nn.Module):
    """One critic Q_φ(s, a), (B, 1) (DDPG). ``q_min`` returns the same value, so code written for
    ``TwinQ`` (ranking candidates, energy training) works with it unchanged."""

    def __init__(self, state_dim: int, action_dim: int, hidden_dim: int = 256, layer_norm: bool = False) -> None:
        super().__init__()
        self.state_dim, self.action_dim = state_dim, action_dim
        self.q = mlp(state_dim + action_dim, 1, hidden_dim, layer_norm=layer_norm)

    def forward(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        check_matrix(state, "state", self.state_dim)
        check_matrix(action, "action", self.action_dim)
        if state.shape[0] != action.shape[0]:
            raise ValueError(f"state has {state.shape[0]} rows but action has {action.shape[0]}.")
        return self.q(torch.cat([state, action], dim=1))

    def q_min(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Q(s, a) of shape (B, 1), as ``TwinQ.q_min`` (there is only one critic to take the min over)."""
        return self(state, action)


class LearnedTemperature(nn.Module):
    """SAC's entropy temperature α_SAC = exp(log α_SAC), learned so the policy's entropy tracks a target."""

    def __init__(self, initial: float) -> None:
        super().__init__()
        self.log_alpha = nn.Parameter(torch.tensor(math.log(initial)))

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.exp()


# ----- configs ---------------------------------------------------------------------------------------
@dataclass
class BackboneConfig(EnergyFields, DiffusionFields, ActorCriticFields, AgentConfig):
    """Hyper-parameters shared by DDPG, TD3 and SAC (plain values, saved beside the weights): the groups of
    ``agents/config.py`` (the diffusion fields apply with ``diffusion=True``, the energy fields' f_ψ with a
    diffusion actor) plus the switches and the Eq. 21 selection of a plain actor below."""

    diffusion: bool = False          # actor = DiffusionPolicy trained by action approximation (Eq. 13–15)
    # energy=True without diffusion: Eq. 21 selection among K candidates (energy_beta = κ is then 1/temperature)
    energy_candidates: int = 16      # K candidates per state
    energy_noise: float = 0.1        # std of the K − 1 perturbations of a deterministic action (DDPG, TD3)

    def __post_init__(self) -> None:
        super().__post_init__()  # every field: type, finiteness, range (agents/config.py)
        self.check_diffusion()


@dataclass
class DDPGConfig(BackboneConfig):
    """DDPG (Lillicrap et al. 2016): one critic, a deterministic actor, target networks."""


@dataclass
class TD3Config(BackboneConfig):
    """TD3 (Fujimoto et al. 2018): twin critics, target policy smoothing, delayed actor updates."""

    policy_noise: float = 0.2        # std of the smoothing noise on the target action (× max_action)
    noise_clip: float = 0.5          # the smoothing noise is clipped to ±noise_clip (× max_action)
    policy_delay: int = 2            # critic steps per actor (and target-network) step


@dataclass
class SACConfig(BackboneConfig):
    """SAC (Haarnoja et al. 2018): twin critics, a tanh-Gaussian actor, entropy with a learned temperature."""

    initial_temperature: float = 0.1  # α_SAC at the start
    temperature_lr: float = 3e-4
    target_entropy: float | None = None  # None: −action_dim (Haarnoja et al.'s heuristic)


# ----- the shared actor-critic loop -------------------------------------------------------------------
class _ActorCritic(ActorCriticAgent):
    """What DDPG, TD3 and SAC share: networks, the update loop, targets and acting. A subclass sets
    ``Config`` and ``twin_critics`` and defines ``next_actions`` (the TD target's a′ and entropy bonus),
    ``actor_q`` (the critic value its actor maximises) and, for a non-diffusion actor, ``plain_actor_loss``,
    ``greedy_action`` and ``candidate_actions``. With ``diffusion=True`` the agent holds a ``DiffusionActor``
    as ``actor`` (the component DAC4Rec holds), otherwise one plain actor network."""

    Config: ClassVar[type] = BackboneConfig
    twin_critics: ClassVar[bool] = True
    has_target_policy: ClassVar[bool] = True

    def __init__(self, obs_dim: int, action_dim: int, encoder: str | nn.Module | None = None, **kwargs) -> None:
        self._construct(obs_dim, action_dim, encoder, kwargs)  # config, seed, networks, targets, optimisers (base.py)
        self._reward_scale = 0.0  # running max |r|, for the default Q bound

    def _build_networks(self, state_dim: int) -> None:
        cfg = self.config
        if cfg.diffusion:  # μ_θ (and μ_θ′ unless SAC)
            self.actor = DiffusionActor(cfg, state_dim, cfg.action_dim, self.device, target=self.has_target_policy)
        else:
            policy = self._build_actor(state_dim, cfg.action_dim)
            target = copy.deepcopy(policy).requires_grad_(False) if self.has_target_policy else None
            self._set_plain_actor(policy, target)
        critic_type = TwinQ if self.twin_critics else QNetwork
        self.critic = critic_type(state_dim, cfg.action_dim, cfg.hidden_dim, cfg.critic_layer_norm)
        if cfg.diffusion:  # f_ψ (energy=True); without diffusion, energy=True means Eq. 21 selection at act()
            self.actor.build_energy_model()
        self.entropy_temperature = self._build_temperature()

    def _build_targets(self) -> None:
        self.encoders = AgentEncoders(self.encoder, self.config.policy_encoder, target_policy=self.has_target_policy)
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)

    def _build_optimizers(self) -> None:
        cfg = self.config
        self.actor_optimizer = torch.optim.Adam(self._actor_parameters(), lr=cfg.actor_lr)
        self.critic_optimizer = torch.optim.Adam([*self.critic.parameters(), *self.encoder.parameters()], lr=cfg.critic_lr)
        self.entropy_temperature_optimizer = (None if self.entropy_temperature is None else
                                              torch.optim.Adam(self.entropy_temperature.parameters(), lr=cfg.temperature_lr))

    # ----- pieces a subclass chooses ---------------------------------------------------------------------
    def _build_actor(self, state_dim: int, action_dim: int) -> nn.Module:
        return DeterministicActor(state_dim, action_dim, self.config.hidden_dim, self.config.max_action)

    def _build_temperature(self) -> LearnedTemperature | None:
        return None

    def actor_q(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """The critic value the actor maximises, (B, 1)."""
        raise NotImplementedError

    def next_actions(self, next_state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | float]:
        """a′ for the TD target and the bonus added to Q′(s′, a′) (SAC's −α_SAC log π; 0 otherwise)."""
        raise NotImplementedError

    # ----- checkpoints -----------------------------------------------------------------------------------
    def _modules_to_save(self) -> dict[str, nn.Module]:
        modules = {"encoder": self.encoder, "policy": self.policy, "critic": self.critic, "target_critic": self.target_critic,
                   **self.encoders.modules_to_save()}
        if self.target_policy is not None:
            modules["target_policy"] = self.target_policy
        if self.entropy_temperature is not None:
            modules["temperature"] = self.entropy_temperature
        if self.energy_model is not None:
            modules["energy"] = self.energy_model
        return modules

    def _optimizers(self) -> list[torch.optim.Optimizer]:
        return [self.actor_optimizer, self.critic_optimizer]

    # ----- policy evaluation -----------------------------------------------------------------------------
    @torch.no_grad()
    def td_target(self, next_state: torch.Tensor, rewards: torch.Tensor, terminals: torch.Tensor,
                  next_policy_state: torch.Tensor | None = None) -> torch.Tensor:
        """y = r + γ (1 − terminal) (Q′(s′, a′) + bonus), Q′ the target critic (min of the twins for TD3/SAC).
        ``next_state``: s′ as the target critic reads it; ``next_policy_state``: as the policy drawing a′
        reads it (default the same). A timeout is not a terminal: the log was cut, so the target still bootstraps."""
        if self.nothing_bootstraps(terminals):  # every row ends its episode: y = r, a′ not drawn (actor_critic.py)
            return rewards.clone()
        next_action, bonus = self.next_actions(next_state if next_policy_state is None else next_policy_state)
        return rewards + self.config.gamma * (1 - terminals) * (self.target_critic.q_min(next_state, next_action) + bonus)

    # ----- policy improvement ----------------------------------------------------------------------------
    def plain_actor_loss(self, state: torch.Tensor, critic_state: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """DDPG/TD3: −Q(s, μ(s)) (the deterministic policy gradient); μ reads ``state``, Q ``critic_state``."""
        with frozen(self.critic):
            q = self.actor_q(state if critic_state is None else critic_state, self.policy(state))
        return -q.mean(), {}

    def diffusion_actor_loss(self, state: torch.Tensor, action: torch.Tensor,
                             critic_state: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """L_d + λ L_q with the action approximation (Eq. 8, 13–15): the plug-in that replaces the actor loss,
        DAC4Rec's "direct" loss (``DiffusionActor.loss``) with L_q on ``actor_q`` (DDPG: Q; TD3: Q₁; SAC:
        min(Q₁, Q₂)). Logs ``bc_loss`` and, with λ > 0, ``q_approx_mean`` (the backbones' columns)."""
        loss, metrics = self.actor.loss(self.critic, state, action, self.generator, "direct", critic_state,
                                        q_fn=self.actor_q)
        return loss, {key: metrics[key] for key in ("bc_loss", "q_approx_mean") if key in metrics}

    def update_actor(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One actor step (the critic's encoder is not trained by it: the actor sees detached states, or its
        own encoder with ``policy_encoder="separate"``)."""
        with torch.no_grad():
            critic_state = self.encoder(batch["observations"])
        state = self.encoders.policy_state(batch["observations"], critic_state)
        if self.config.diffusion:
            loss, metrics = self.diffusion_actor_loss(state, batch["actions"], critic_state)
        else:
            loss, metrics = self.plain_actor_loss(state, critic_state)
        self._step(self.actor_optimizer, loss, self._actor_parameters())
        return {**metrics, "actor_loss": loss.item()}

    def update_targets(self) -> None:
        """Polyak-average the target critic(s) and the target encoder and, where there is one, the target
        actor (and its encoder)."""
        soft_update(self.target_critic, self.critic, self.config.tau)
        self.encoders.update_critic_target(self.config.tau)
        if self.target_policy is not None:
            soft_update(self.target_policy, self.policy, self.config.tau)
            self.encoders.update_policy_target(self.config.tau)

    def policy_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """An actor step, then the target updates (every ``policy_delay`` critic steps: 1 except for TD3)."""
        metrics = self.update_actor(batch)
        self.update_targets()
        return metrics

    # ----- acting ----------------------------------------------------------------------------------------
    def greedy_action(self, state: torch.Tensor) -> torch.Tensor:
        """The action played with one candidate and no energy (DDPG/TD3: μ(s))."""
        return self.policy(state)

    def candidate_actions(self, state: torch.Tensor, k: int, generator: torch.Generator | None) -> torch.Tensor:
        """K candidates per state, (B·K, d) grouped state-major: DDPG/TD3 the action itself, then K − 1
        perturbations of std ``energy_noise`` (× max_action) clipped to the box."""
        cfg = self.config
        action = self.policy(state).repeat_interleave(k, dim=0)
        noise = randn(tuple(action.shape), generator, action.device, action.dtype)
        noise = noise * cfg.energy_noise * (cfg.max_action or 1.0)
        noise.view(-1, k, action.shape[1])[:, 0] = 0  # the first candidate of each state is the action itself
        candidates = action + noise
        return candidates if cfg.max_action is None else candidates.clamp(-cfg.max_action, cfg.max_action)

    def _act(self, obs: torch.Tensor, n_candidates: int, temperature: float | None,
             generator: torch.Generator | None) -> torch.Tensor:
        """Diffusion: the (energy-guided) reverse chain, Eq. 21 selection with K > 1. Otherwise greedy, or
        with energy=True (or K > 1) one of K candidates drawn ∝ exp(Q / temperature) (Eq. 21)."""
        cfg = self.config
        critic_state = self.encoder(obs)
        state = self.encoders.policy_state(obs, critic_state)
        if cfg.diffusion:
            return self.sample_actions(state, n_candidates, temperature, generator, critic_state)
        if cfg.energy:
            n_candidates = cfg.energy_candidates if n_candidates == 1 else n_candidates
            temperature = 1.0 / cfg.energy_beta if temperature is None else temperature
        if n_candidates == 1:
            return self.greedy_action(state)
        candidates = self.candidate_actions(state, n_candidates, generator)
        q = self.critic.q_min(critic_state.repeat_interleave(n_candidates, dim=0), candidates)
        return select_candidates(q, candidates, state.shape[0], temperature, generator)


class DDPG(_ActorCritic):
    """Offline DDPG (Lillicrap et al. 2016): y = r + γ Q′(s′, μ′(s′)); actor loss −Q(s, μ(s)).

    ``DDPG(obs_dim, action_dim, diffusion=False, energy=False, ...)``; every field of ``DDPGConfig`` is a
    keyword argument. See the module docstring for what ``diffusion`` and ``energy`` change."""

    Config = DDPGConfig
    twin_critics = False

    def actor_q(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.critic(state, action)

    def next_actions(self, next_state: torch.Tensor) -> tuple[torch.Tensor, float]:
        if self.config.diffusion:
            return self.sample_next_actions(self.target_policy, next_state), 0.0
        return self.target_policy(next_state), 0.0


class TD3(_ActorCritic):
    """Offline TD3 (Fujimoto et al. 2018): twin critics with y = r + γ min(Q′₁, Q′₂)(s′, ã′), target policy
    smoothing ã′ = clip(μ′(s′) + clip(ε, −c, c)), ε ~ N(0, σ²), and the actor (−Q₁(s, μ(s))) and every
    target network updated once per ``policy_delay`` critic steps.

    ``TD3(obs_dim, action_dim, diffusion=False, energy=False, ...)``; every field of ``TD3Config`` is a
    keyword argument. See the module docstring for what ``diffusion`` and ``energy`` change."""

    Config = TD3Config

    @property
    def policy_delay(self) -> int:
        return self.config.policy_delay

    def actor_q(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.critic(state, action)[0]

    def next_actions(self, next_state: torch.Tensor) -> tuple[torch.Tensor, float]:
        cfg = self.config
        if cfg.diffusion:
            action = self.sample_next_actions(self.target_policy, next_state)
        else:
            action = self.target_policy(next_state)
        scale = cfg.max_action or 1.0
        noise = randn(tuple(action.shape), self.generator, action.device, action.dtype)
        noise = (noise * cfg.policy_noise * scale).clamp(-cfg.noise_clip * scale, cfg.noise_clip * scale)
        action = action + noise
        return (action if cfg.max_action is None else action.clamp(-cfg.max_action, cfg.max_action)), 0.0


class SAC(_ActorCritic):
    """Offline SAC (Haarnoja et al. 2018): twin critics with the soft target
    y = r + γ (min(Q′₁, Q′₂)(s′, a′) − α_SAC log π(a′|s′)), a′ ~ π(·|s′); actor loss E[α_SAC log π(a|s) − min Q(s, a)]
    by the reparameterisation trick; α_SAC learned so that the policy's entropy tracks ``target_entropy``
    (loss −log α_SAC · (log π + H̄)). SAC keeps no target actor. Evaluated (act) with its mean action.

    ``SAC(obs_dim, action_dim, diffusion=False, energy=False, ...)``; every field of ``SACConfig`` is a
    keyword argument. With ``diffusion=True`` there is no entropy term and no α_SAC (module docstring)."""

    Config = SACConfig
    has_target_policy = False

    def _build_actor(self, state_dim: int, action_dim: int) -> nn.Module:
        return TanhGaussianActor(state_dim, action_dim, self.config.hidden_dim, self.config.max_action)

    def _build_temperature(self) -> LearnedTemperature | None:
        # The approximated policy N(â⁰, I) of a diffusion actor has a constant entropy: no α_SAC to learn.
        return None if self.config.diffusion else LearnedTemperature(self.config.initial_temperature)

    def _optimizers(self) -> list[torch.optim.Optimizer]:
        extra = [] if self.entropy_temperature_optimizer is None else [self.entropy_temperature_optimizer]
        return [*super()._optimizers(), *extra]

    @property
    def target_entropy(self) -> float:
        cfg = self.config
        return -float(cfg.action_dim) if cfg.target_entropy is None else cfg.target_entropy

    def actor_q(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.critic.q_min(state, action)

    def next_actions(self, next_state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | float]:
        if self.config.diffusion:  # −α_SAC log μ̂ is a constant: no bonus (module docstring)
            return self.sample_next_actions(self.policy, next_state), 0.0
        action, log_prob = self.policy.rsample_with_log_prob(next_state, self.generator)
        return action, -self.entropy_temperature.alpha * log_prob

    def plain_actor_loss(self, state: torch.Tensor, critic_state: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """E[α_SAC log π(a|s) − min Q(s, a)], a = the reparameterised draw; then one step of α_SAC."""
        action, log_prob = self.policy.rsample_with_log_prob(state, self.generator)
        alpha = self.entropy_temperature.alpha.detach()
        with frozen(self.critic):
            q = self.actor_q(state if critic_state is None else critic_state, action)
        loss = (alpha * log_prob - q).mean()
        temperature_loss = -(self.entropy_temperature.log_alpha * (log_prob.detach() + self.target_entropy)).mean()
        self._step(self.entropy_temperature_optimizer, temperature_loss, list(self.entropy_temperature.parameters()))
        return loss, {"alpha": alpha.item(), "entropy": -log_prob.mean().item()}

    def greedy_action(self, state: torch.Tensor) -> torch.Tensor:
        return self.policy.mean_action(state)

    def candidate_actions(self, state: torch.Tensor, k: int, generator: torch.Generator | None) -> torch.Tensor:
        """K draws of SAC's Gaussian per state, (B·K, d) grouped state-major."""
        return self.policy.rsample_with_log_prob(state.repeat_interleave(k, dim=0), generator)[0]
