"""DAC4Rec: Algorithm 1 of the paper, step 1 (diffusion behaviour policy trained with Q guidance).

One ``update`` reads top to bottom like Algorithm 1:

    batch (s, a, r, s′) ~ D                                         line 2
    a′ ~ μ_θ′(· | s′) through the reverse chain (Eq. 7)             line 3
    critic TD loss (Eq. 10 / Eq. 20) with clipped double Q          line 4
    â⁰ from one-step denoising of the dataset action (Eq. 13–14)    lines 5–6 (erratum: the dataset action, not a chain sample)
    θ ← θ − η ∇θ (L_d + λ L_q)  (Eq. 8 + Eq. 15/18/19)              line 7 (η: learning rate; λ: ``q_weight``)
    soft-update θ′, φ′₁, φ′₂                                         line 7

Erratum: the paper calls Eq. 20 the policy-improvement loss L_q; it is the critic's TD loss L_TD(φ).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..critics import TwinQ, ValueNetwork, soft_update
from ..diffusion import DiffusionPolicy, VPSchedule
from ..encoders import make_encoder
from .base import OfflineAgent, select_candidates

__all__ = ["DAC4Rec", "DAC4RecConfig", "POLICY_IMPROVEMENTS"]

POLICY_IMPROVEMENTS = ("direct", "elbo", "awr")


@dataclass
class DAC4RecConfig:
    """Hyper-parameters of DAC4Rec (plain values, saved beside the weights)."""

    obs_dim: int
    action_dim: int
    n_steps: int = 100
    policy_improvement: str = "direct"
    q_weight: float = 1.0            # λ in Algorithm 1: weight of L_q against L_d
    gamma: float = 0.99
    tau: float = 0.005               # Polyak rate of every target network
    encoder: str | None = None       # None/"identity" or "mlp" (a custom module is passed to __init__)
    energy: bool = False
    device: str = "cpu"
    seed: int = 0
    beta_min: float = 0.1
    beta_max: float = 10.0
    hidden_dim: int = 256
    max_action: float | None = 1.0
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    grad_clip: float = 5.0           # max global gradient norm of each optimiser step (0 turns it off)
    critic_layer_norm: bool = False  # LayerNorm in the critics: damps Q's growth off the data
    lr_decay: bool = True            # cosine-decay both learning rates to 0 over each fit() (as Diffusion-QL)
    max_q_backup: bool = False       # TD target max over M next actions (then min over the twins)
    n_next_actions: int = 10         # M of the max-Q backup
    awr_temperature: float = 0.3     # in units of the batch's mean |advantage| (see _advantage_weights)
    awr_max_weight: float = 100.0    # clip of exp(advantage / temperature)
    expectile: float = 0.7           # of the value baseline V(s) used by awr / elbo
    q_bound: float | None = None     # |Q| above this stops training; None: 10 · max|r| / (1 − γ)

    def __post_init__(self) -> None:
        if self.policy_improvement not in POLICY_IMPROVEMENTS:
            raise ValueError(f"policy_improvement must be one of {POLICY_IMPROVEMENTS}, got {self.policy_improvement!r}.")
        if not 0 <= self.gamma < 1:
            raise ValueError(f"gamma must be in [0, 1), got {self.gamma}.")
        if self.q_weight < 0:
            raise ValueError(f"q_weight must be >= 0 (0 is pure behaviour cloning), got {self.q_weight}.")
        if not 0 < self.expectile < 1:
            raise ValueError(f"expectile must be in (0, 1), got {self.expectile}.")
        if self.awr_temperature <= 0 or self.awr_max_weight <= 0:
            raise ValueError("awr_temperature and awr_max_weight must be positive.")
        if self.n_next_actions < 1:
            raise ValueError(f"n_next_actions must be >= 1, got {self.n_next_actions}.")


class DAC4Rec(OfflineAgent):
    """Diffusion-enhanced actor-critic for offline RL recommendation (Algorithm 1).

    ``DAC4Rec(obs_dim, action_dim, n_steps=100, policy_improvement="direct" | "elbo" | "awr", q_weight=1.0,
    gamma=0.99, tau=0.005, encoder=None, energy=False, device="cpu", seed=0, ...)``; every field of
    ``DAC4RecConfig`` is a keyword argument. ``encoder`` may also be an ``nn.Module`` with ``out_dim``.

    Networks: ``encoder`` (observation → state, trained by the critic loss only), ``policy`` μ_θ (a
    ``DiffusionPolicy``) and its target μ_θ′, ``critic`` (``TwinQ``) and its target, and ``value`` V(s)
    for the ``awr``/``elbo`` advantage.
    """

    Config = DAC4RecConfig

    def __init__(self, obs_dim: int, action_dim: int, encoder: str | nn.Module | None = None, **kwargs) -> None:
        custom_encoder = encoder if isinstance(encoder, nn.Module) else None
        config = DAC4RecConfig(obs_dim, action_dim, encoder=None if custom_encoder is not None else encoder, **kwargs)
        super().__init__(config)
        if config.energy:
            raise NotImplementedError(
                "energy=True (energy-guided sampling, Algorithm 1 step 2) is not in this version of the kit yet; "
                "build the agent with energy=False."
            )
        with torch.random.fork_rng(devices=[]):  # seeded initialisation that leaves the global RNG alone
            torch.manual_seed(config.seed)
            self.encoder = make_encoder(custom_encoder if custom_encoder is not None else config.encoder, obs_dim)
            state_dim = self.encoder.out_dim
            self.schedule = VPSchedule(config.n_steps, config.beta_min, config.beta_max)
            self.policy = DiffusionPolicy(state_dim, action_dim, self.schedule, config.hidden_dim, config.max_action)
            self.critic = TwinQ(state_dim, action_dim, config.hidden_dim, config.critic_layer_norm)
            self.value = ValueNetwork(state_dim, config.hidden_dim)
        self.target_policy = copy.deepcopy(self.policy).requires_grad_(False)
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        for module in (self.encoder, self.policy, self.critic, self.value, self.target_policy, self.target_critic):
            module.to(self.device)
        self.actor_optimizer = torch.optim.Adam(self.policy.parameters(), lr=config.actor_lr)
        self.critic_optimizer = torch.optim.Adam([*self.critic.parameters(), *self.encoder.parameters()], lr=config.critic_lr)
        self.value_optimizer = torch.optim.Adam(self.value.parameters(), lr=config.critic_lr)
        self._reward_scale = 0.0  # running max |r|, for the default Q bound

        # ELBO weights of Eq. 18, β_i / (2 α_i (1 − ᾱ_{i−1})), infinite at i = 1 because ᾱ_0 = 1 (erratum).
        # That term is the decoder's, whose variance is β̃_1 = 0; using σ_1² = β_1 there (Ho et al.'s choice
        # for the decoder) gives the finite weight 1 / (2 α_1). Normalised to mean 1 over i so that q_weight
        # means the same for every policy improvement.
        s = self.schedule
        weights = s.betas / (2 * s.alphas * (1 - s.alphas_cumprod_prev).clamp(min=1e-12))
        weights[0] = 1 / (2 * s.alphas[0])
        self._elbo_weights = (weights / weights.mean()).to(self.device)

    def _optimizers(self) -> list[torch.optim.Optimizer]:
        return [self.actor_optimizer, self.critic_optimizer, self.value_optimizer]

    def _modules_to_save(self) -> dict[str, nn.Module]:
        return {"encoder": self.encoder, "policy": self.policy, "target_policy": self.target_policy,
                "critic": self.critic, "target_critic": self.target_critic, "value": self.value}

    # ----- step 1a: policy evaluation ----------------------------------------------------------------
    @torch.no_grad()
    def td_target(self, next_state: torch.Tensor, rewards: torch.Tensor, terminals: torch.Tensor) -> torch.Tensor:
        """y = r + γ (1 − terminal) min(Q′₁, Q′₂)(s′, a′),  a′ ~ μ_θ′(· | s′) by the reverse chain (Eq. 7).

        With ``max_q_backup`` each twin takes the max over M next actions before the min (Kumar et al. 2020).
        A timeout is not a terminal: the user did not leave, the log was cut, so the target still bootstraps."""
        cfg = self.config
        m = cfg.n_next_actions if cfg.max_q_backup else 1
        repeated = next_state.repeat_interleave(m, dim=0)
        next_action = self.target_policy.sample(repeated, generator=self.generator)  # line 3
        q1, q2 = self.target_critic(repeated, next_action)
        if m > 1:
            q1 = q1.reshape(-1, m).max(dim=1, keepdim=True).values
            q2 = q2.reshape(-1, m).max(dim=1, keepdim=True).values
        return rewards + cfg.gamma * (1 - terminals) * torch.min(q1, q2)

    def update_critic(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One critic step: the TD loss of Eq. 10 / Eq. 20, both twins regressed on the same target."""
        state = self.encoder(batch["observations"])
        with torch.no_grad():
            next_state = self.encoder(batch["next_observations"])
        target = self.td_target(next_state, batch["rewards"], batch["terminals"])
        q1, q2 = self.critic(state, batch["actions"])
        critic_loss = F.mse_loss(q1, target) + F.mse_loss(q2, target)  # Eq. 20 (a critic loss)
        self._step(self.critic_optimizer, critic_loss, [*self.critic.parameters(), *self.encoder.parameters()])
        soft_update(self.target_critic, self.critic, self.config.tau)
        return {"critic_loss": critic_loss.item(), "q_mean": q1.mean().item(),
                "q_abs_max": torch.max(q1.abs().max(), q2.abs().max()).item(), "target_mean": target.mean().item()}

    # ----- step 1b: policy improvement ---------------------------------------------------------------
    def _advantage_weights(self, state: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, float]:
        """g(Q) = clip(exp(A / (T · mean|A|)), max), A = min(Q₁,Q₂)(s, a) − V(s) on dataset actions.

        V(s) is an expectile (``expectile`` = 0.7) of Q over the behaviour's actions, regressed here on
        the same batch (IQL's estimator, Kostrikov et al. 2022): cheap (no chain sampling) and it never
        queries Q off the data. Dividing A by its batch mean |A| makes the temperature unit-free, so one
        value works whatever the reward scale. Returns the weights (B, 1), detached, and the value loss."""
        with torch.no_grad():
            q = self.target_critic.q_min(state, action)
        value = self.value(state)
        diff = q - value
        value_loss = (torch.abs(self.config.expectile - (diff < 0).float()) * diff.pow(2)).mean()
        self._step(self.value_optimizer, value_loss, list(self.value.parameters()))
        advantage = diff.detach()
        scale = advantage.abs().mean().clamp(min=1e-6)
        weights = torch.exp(advantage / (self.config.awr_temperature * scale)).clamp(max=self.config.awr_max_weight)
        return weights, value_loss.item()

    def policy_loss(self, state: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """L_d(θ) + λ L_q(θ) (Eq. 9, line 7), with L_q chosen by ``policy_improvement``."""
        cfg = self.config
        error, steps = self.policy.noise_prediction_error(state, action, self.generator)
        bc_loss = error.mean()  # Eq. 8
        metrics: dict[str, float] = {"bc_loss": bc_loss.item()}
        if cfg.policy_improvement == "direct":
            approx = self.policy.approximate_action(state, action, self.generator)  # Eq. 13–14
            q = self.critic.q_min(state, approx)
            # Eq. 15–16: −Q(s, â⁰), divided by the batch's mean |Q| (detached) so λ is scale-free: the BC
            # term is O(1) whatever the rewards are, and a raw Q of size 100 would otherwise drown it.
            q_loss = -q.mean() / q.abs().mean().detach().clamp(min=1e-6)
        elif cfg.policy_improvement == "elbo":
            weights, metrics["value_loss"] = self._advantage_weights(state, action)
            # Eq. 18: the ELBO's per-step weight times g(Q) times the ε error of the same draw.
            q_loss = (self._elbo_weights[steps - 1] * weights.squeeze(1) * error).mean()
        else:  # "awr"
            weights, metrics["value_loss"] = self._advantage_weights(state, action)
            approx = self.policy.approximate_action(state, action, self.generator)  # Eq. 13–14
            # Eq. 19: g(Q) ‖a − â⁰‖², the log-likelihood of the approximated policy N(â⁰, I) up to constants.
            q_loss = (weights * (action - approx).pow(2).sum(dim=1, keepdim=True)).mean()
        metrics["q_loss"] = q_loss.item()
        return bc_loss + cfg.q_weight * q_loss, metrics

    def update_policy(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        with torch.no_grad():
            state = self.encoder(batch["observations"])  # the policy does not train the encoder
        loss, metrics = self.policy_loss(state, batch["actions"])
        self._step(self.actor_optimizer, loss, list(self.policy.parameters()))
        soft_update(self.target_policy, self.policy, self.config.tau)
        return {**metrics, "policy_loss": loss.item()}

    def _step(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor, params: list[torch.Tensor]) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip > 0:
            nn.utils.clip_grad_norm_(params, self.config.grad_clip)
        optimizer.step()

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One iteration of Algorithm 1, step 1: critic (lines 3–4), then policy (lines 5–7)."""
        batch = self._check_batch(batch)
        self._reward_scale = max(self._reward_scale, batch["rewards"].abs().max().item())
        metrics = self.update_critic(batch)
        metrics.update(self.update_policy(batch))
        self.n_updates += 1
        bound = self.config.q_bound or 10 * max(self._reward_scale, 1e-3) / (1 - self.config.gamma)
        self._guard(metrics, bound)
        return metrics

    # ----- acting ----------------------------------------------------------------------------------
    def _act(self, obs: torch.Tensor, n_candidates: int, temperature: float | None,
             generator: torch.Generator | None) -> torch.Tensor:
        state = self.encoder(obs)
        if n_candidates == 1:
            return self.policy.sample(state, generator=generator)
        repeated = state.repeat_interleave(n_candidates, dim=0)
        candidates = self.policy.sample(repeated, generator=generator)
        q = self.critic.q_min(repeated, candidates)
        return select_candidates(q, candidates, state.shape[0], temperature, generator)
