"""DAC4Rec: Algorithm 1 of the paper, step 1 (diffusion behaviour policy trained with Q guidance).

One ``update`` reads top to bottom like Algorithm 1:

    batch (s, a, r, s′) ~ D                                         line 2
    a′ ~ μ_θ′(· | s′) through the reverse chain (Eq. 7)             line 3
    critic TD loss (Eq. 10 / Eq. 20) with clipped double Q          line 4
    [awr / elbo only: one expectile step of the baseline V(s)]
    a^i from one noising of the dataset action, â⁰ from one ε call  lines 5–6 (Eq. 13–14; erratum: the dataset
                                                                      action, not a chain sample)
    θ ← θ − η ∇θ (L_d + λ L_q)  (Eq. 8 + Eq. 15/18/19)              line 7 (η: learning rate; λ: ``q_weight``)
    soft-update θ′, φ′₁, φ′₂                                         line 7

Erratum: the paper calls Eq. 20 the policy-improvement loss L_q; it is the critic's TD loss L_TD(φ).

What the action approximation does to each step i (worth knowing when choosing λ). At the minimum of
L_d + λ L_q the ε-network shifts â⁰ away from the behaviour's by an amount proportional to
λ (1 − ᾱ_i) / ᾱ_i: about 0.06 λ at i = 1 and 150 λ at i = N = 10 (VP schedule, β_min = 0.1, β_max = 10).
* direct: the large-i shifts are cut by the action box (the sampler clips â⁰), so the blob a sample ends in
  is decided at the middle steps, and the last step keeps a small push along ∇Q. Too small a λ leaves the
  middle steps near the behaviour; too large a λ makes that last push carry samples off the data along the
  critic's extrapolation (into the box corner, off the blobs).
* awr (Eq. 19): ‖a − â⁰‖² = (1 − ᾱ_i)/ᾱ_i · ‖ε − ε_θ‖², so relative to L_d step i is weighted by
  λ g(Q) (1 − ᾱ_i)/ᾱ_i. The large-i rows dominate the gradient and Adam's normaliser, and the small-i
  denoising (the last, sharp step) learns far slower than under pure L_d, so with a large λ many samples end
  off the blobs. elbo (Eq. 18) weighs the steps evenly and does not have this problem.

The measurements behind these remarks (corner bandits, λ sweeps) are in docs/backbones.md, "DAC4Rec".
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from ..critics import TwinQ, ValueNetwork, soft_update
from .actor_critic import ActorCriticAgent
from .config import ActorCriticFields, AgentConfig, DiffusionFields, EnergyFields
from .diffusion_actor import DiffusionActor
from .encoding import AgentEncoders

__all__ = ["DAC4Rec", "DAC4RecConfig", "POLICY_IMPROVEMENTS"]

POLICY_IMPROVEMENTS = ("direct", "elbo", "awr", "chain")


@dataclass
class DAC4RecConfig(EnergyFields, DiffusionFields, ActorCriticFields, AgentConfig):
    """Hyper-parameters of DAC4Rec (plain values, saved beside the weights): the shared fields of
    ``AgentConfig`` and the actor-critic, diffusion and energy groups (``agents/config.py``, validated there),
    plus the policy-improvement options below.

    The network sizes and learning rates default to Diffusion-QL's (hidden 256, 3e-4), meant for long runs.
    Small problems train much faster with a small, fast-learning policy: the corner bandit (2-D actions,
    N = 10) meets its targets in 2000 updates with ``hidden_dim=64, actor_lr=1e-2, critic_lr=1e-3`` and
    batches of 1024 (``tests/test_agent_bandit.py``; docs/backbones.md records the measurements).
    """

    policy_improvement: str = "direct"  # L_q: "direct" (Eq. 15) | "elbo" (Eq. 18) | "awr" (Eq. 19) | "chain" (−A)
    max_q_backup: bool = False       # TD target max over M next actions (then min over the twins)
    n_next_actions: int = 10         # M of the max-Q backup
    awr_temperature: float = 0.3     # T of g(Q) = exp(A / (T · mean|A|)) for awr / elbo (see advantage_weights)
    awr_max_weight: float = 100.0    # clip of exp(advantage / temperature)
    expectile: float = 0.7           # of the value baseline V(s) used by awr / elbo

    def __post_init__(self) -> None:
        super().__post_init__()  # every field: type, finiteness, range (agents/config.py)
        if self.policy_improvement not in POLICY_IMPROVEMENTS:
            raise ValueError(f"policy_improvement must be one of {POLICY_IMPROVEMENTS}, got {self.policy_improvement!r}.")
        self.check_diffusion()


class DAC4Rec(ActorCriticAgent):
    """Diffusion-enhanced actor-critic for offline RL recommendation (Algorithm 1).

    ``DAC4Rec(obs_dim, action_dim, n_steps=100, policy_improvement="direct" | "elbo" | "awr" | "chain", q_weight=1.0,
    gamma=0.99, tau=0.005, encoder=None, energy=False, device="cpu", seed=0, ...)``; every field of
    ``DAC4RecConfig`` is a keyword argument. ``encoder`` may also be an ``nn.Module`` with ``out_dim``.

    Networks: ``encoder`` (observation → state, trained by the critic loss only), the diffusion actor
    ``actor`` (a ``DiffusionActor``: μ_θ ``policy`` and its target μ_θ′ ``target_policy``, the action
    approximation and L_q terms, f_ψ ``energy_model`` with energy=True, guided sampling; the ``diffusion=True``
    backbones DDPG, TD3 and SAC hold the same component), ``critic`` (``TwinQ``) and its target, and ``value``
    V(s) for the ``awr``/``elbo`` advantage. The agent reaches the actor's parts under their old names
    (``agent.policy``, ``agent.schedule``, ``agent.boxed``, …: ``ActorCriticAgent``).
    """

    Config = DAC4RecConfig

    def __init__(self, obs_dim: int, action_dim: int, encoder: str | nn.Module | None = None, **kwargs) -> None:
        self._construct(obs_dim, action_dim, encoder, kwargs)  # config, seed, networks, targets, optimisers (base.py)
        self._reward_scale = 0.0  # running max |r|, for the default Q bound

    def _build_networks(self, state_dim: int) -> None:
        cfg = self.config
        self.actor = DiffusionActor(cfg, state_dim, cfg.action_dim, self.device)  # μ_θ and μ_θ′
        self.critic = TwinQ(state_dim, cfg.action_dim, cfg.hidden_dim, cfg.critic_layer_norm)
        self.value = ValueNetwork(state_dim, cfg.hidden_dim)
        self.actor.build_energy_model()  # f_ψ (energy=True), used by act() only once it has been trained

    def _build_targets(self) -> None:
        self.encoders = AgentEncoders(self.encoder, self.config.policy_encoder, target_policy=True)
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)

    def _build_optimizers(self) -> None:
        cfg = self.config
        self.actor_optimizer = torch.optim.Adam(self._actor_parameters(), lr=cfg.actor_lr)
        self.critic_optimizer = torch.optim.Adam([*self.critic.parameters(), *self.encoder.parameters()], lr=cfg.critic_lr)
        self.value_optimizer = torch.optim.Adam(self.value.parameters(), lr=cfg.critic_lr)

    def _optimizers(self) -> list[torch.optim.Optimizer]:
        used = [self.actor_optimizer, self.critic_optimizer]
        # V(s) only trains for the awr/elbo advantage; a scheduler on an optimiser that never steps warns.
        return [*used, self.value_optimizer] if self.config.policy_improvement in ("elbo", "awr") else used

    def _modules_to_save(self) -> dict[str, nn.Module]:
        modules = {"encoder": self.encoder, "policy": self.policy, "target_policy": self.target_policy,
                   "critic": self.critic, "target_critic": self.target_critic, "value": self.value,
                   **self.encoders.modules_to_save()}
        if self.energy_model is not None:
            modules["energy"] = self.energy_model
        return modules

    @property
    def _elbo_weights(self) -> torch.Tensor:
        """Eq. 18's per-step weights (``DiffusionActor.elbo_weights``, from ``VPSchedule.elbo_weights``)."""
        return self.actor.elbo_weights

    # ----- step 1a: policy evaluation ----------------------------------------------------------------
    @torch.no_grad()
    def td_target(self, next_state: torch.Tensor, rewards: torch.Tensor, terminals: torch.Tensor,
                  next_policy_state: torch.Tensor | None = None) -> torch.Tensor:
        """y = r + γ (1 − terminal) min(Q′₁, Q′₂)(s′, a′),  a′ ~ μ_θ′(· | s′) by the reverse chain (Eq. 7).

        ``next_state`` is s′ as the target critic reads it (the target encoder's output) and
        ``next_policy_state`` as the target policy reads it (default: the same). With ``max_q_backup`` each
        twin takes the max over M next actions before the min (Kumar et al. 2020). A timeout is not a
        terminal: the user did not leave, the log was cut, so the target still bootstraps."""
        cfg = self.config
        if self.nothing_bootstraps(terminals):  # every row ends its episode: y = r, no chain run (actor_critic.py)
            return rewards.clone()
        m = cfg.n_next_actions if cfg.max_q_backup else 1
        repeated = next_state.repeat_interleave(m, dim=0)
        policy_repeated = repeated if next_policy_state is None else next_policy_state.repeat_interleave(m, dim=0)
        next_action = self.sample_next_actions(self.target_policy, policy_repeated)  # line 3
        q1, q2 = self.target_critic(repeated, next_action)
        if m > 1:
            q1 = q1.reshape(-1, m).max(dim=1, keepdim=True).values
            q2 = q2.reshape(-1, m).max(dim=1, keepdim=True).values
        return rewards + cfg.gamma * (1 - terminals) * torch.min(q1, q2)

    def after_critic_step(self) -> None:
        """Line 7 for the critic: soft-update φ′ and the target encoder after each critic step."""
        soft_update(self.target_critic, self.critic, self.config.tau)
        self.encoders.update_critic_target(self.config.tau)  # the target encoder moves with the target critic

    # ----- step 1b: policy improvement ---------------------------------------------------------------
    def update_value(self, state: torch.Tensor, action: torch.Tensor) -> dict[str, float]:
        """One step of V(s), the baseline of the awr/elbo advantage: an ``expectile`` (0.7) of Q over the
        behaviour's actions, regressed on the batch (IQL's estimator, Kostrikov et al. 2022): no chain
        sampling, and it never queries Q off the data."""
        with torch.no_grad():
            q = self.target_critic.q_min(state, action)
        diff = q - self.value(state)
        value_loss = (torch.abs(self.config.expectile - (diff < 0).float()) * diff.pow(2)).mean()
        self._step(self.value_optimizer, value_loss, list(self.value.parameters()))
        return {"value_loss": value_loss.item()}

    @torch.no_grad()
    def advantage_weights(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """g(Q) of Eq. 17–19 for dataset actions, (B, 1): AWR's exp(A / T) with A = min(Q₁,Q₂)(s, a) − V(s).

        * Temperature in units of the batch's mean |A|: exp(A / (T · mean|A|)), so one T works whatever the
          reward scale. T = ``awr_temperature`` = 0.3: an action one mean-|A| above V weighs e^3.3 ≈ 28 times
          one at V.
        * Clipped at ``awr_max_weight`` (100) against a single outlier dominating, as AWR/IQL do.
        * Normalised to mean 1 over the batch, so that λ (``q_weight``) is the weight of L_q against L_d
          whatever T is, as the direct L_q divides Q by mean |Q| (a low T would otherwise also scale λ up
          by orders of magnitude)."""
        cfg = self.config
        advantage = self.target_critic.q_min(state, action) - self.value(state)
        scale = advantage.abs().mean().clamp(min=1e-6)
        weights = torch.exp(advantage / (cfg.awr_temperature * scale)).clamp(max=cfg.awr_max_weight)
        return weights / weights.mean()

    def policy_loss(self, state: torch.Tensor, action: torch.Tensor, critic_state: torch.Tensor | None = None,
                    improvement: str | None = None,
                    generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """L_d(θ) + λ L_q(θ) (Eq. 9, line 7), with L_q chosen by ``policy_improvement``: "direct" (Eq. 15–16,
        â⁰ clipped to the box), "elbo" (Eq. 18), "awr" (Eq. 19) weighed by ``advantage_weights``, or "chain"
        (the −A ablation, Eq. 11). The terms are ``DiffusionActor.loss``'s, with this agent's critic.

        ``state`` is what the policy reads, ``critic_state`` what the critic (and V) read for the same rows
        (default ``state``: they differ only with ``policy_encoder="separate"``). ``improvement`` overrides
        the config's choice for this call and ``generator`` the agent's (``experiments.timing`` times the −A
        "chain" loss this way on the agent it trains)."""
        improvement = self.config.policy_improvement if improvement is None else improvement
        return self.actor.loss(self.critic, state, action, self.generator if generator is None else generator,
                               improvement, critic_state, advantage_weights=self.advantage_weights)

    def chain_q_loss(self, state: torch.Tensor, critic_state: torch.Tensor | None = None,
                     generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The −A ablation's L_q (``DiffusionActor.chain_q_loss``): a⁰ ~ μ_θ(·|s) through the whole reverse
        chain with gradients on (Eq. 11), then the normalised −Q of ``direct``. Returns (L_q, Q)."""
        return self.actor.chain_q_loss(self.critic, state, critic_state,
                                       self.generator if generator is None else generator)

    def update_policy(self, batch: dict[str, torch.Tensor], improvement: str | None = None,
                      generator: torch.Generator | None = None) -> dict[str, float]:
        """Lines 5–7: (awr/elbo: a step of V(s) first), then one step of θ on L_d + λ L_q, then θ′.
        ``improvement`` and ``generator`` as in ``policy_loss``."""
        improvement = self.config.policy_improvement if improvement is None else improvement
        if improvement not in POLICY_IMPROVEMENTS:
            raise ValueError(f"improvement must be one of {POLICY_IMPROVEMENTS}, got {improvement!r}.")
        with torch.no_grad():
            critic_state = self.encoder(batch["observations"])  # the policy does not train the critic's encoder
        state = self.encoders.policy_state(batch["observations"], critic_state)
        uses_value = improvement in ("elbo", "awr")
        metrics = self.update_value(critic_state, batch["actions"]) if uses_value else {}
        loss, policy_metrics = self.policy_loss(state, batch["actions"], critic_state, improvement, generator)
        metrics.update(policy_metrics)
        self._step(self.actor_optimizer, loss, self._actor_parameters())
        soft_update(self.target_policy, self.policy, self.config.tau)
        self.encoders.update_policy_target(self.config.tau)
        return {**metrics, "policy_loss": loss.item()}

    def policy_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """Lines 5–7 of each ``update`` (``ActorCriticAgent.update`` runs the critic step first)."""
        return self.update_policy(batch)

    # ----- acting ----------------------------------------------------------------------------------
    # fit() then fit_energy() (Algorithm 1 step 2) and guidance() (line 15): ActorCriticAgent, from the actor.
    def _act(self, obs: torch.Tensor, n_candidates: int, temperature: float | None,
             generator: torch.Generator | None) -> torch.Tensor:
        """Sample (energy-guided when energy=True, Eq. 24), then, with K > 1 candidates, select by Q (Eq. 21)."""
        state = self.encoder(obs)
        return self.sample_actions(self.encoders.policy_state(obs, state), n_candidates, temperature, generator, state)
