"""DiffusionPolicy: the reverse chain of a state-conditioned diffusion model used as a policy (Sec. 3.1).

It owns an ε-network and a schedule and offers the three things an agent needs:
``loss`` (behaviour cloning, Eq. 8), ``sample`` (the reverse chain, Eq. 5/7) and ``approximate_action``
(one-step denoising of a dataset action, Eq. 13–14).
"""
from __future__ import annotations

import torch
from torch import nn

from .._checks import check_finite, check_matrix, check_steps, randint, randn
from .networks import EpsilonMLP
from .samplers import Guidance, run_sampler
from .schedule import VPSchedule

__all__ = ["DiffusionPolicy"]


class DiffusionPolicy(nn.Module):
    """μ_θ(a | s) = N(a^N; 0, I) Π_{i=1}^{N} p_θ(a^{i-1} | a^i, s)   (Eq. 5; erratum: the paper prints Σ for Π).

    Args:
        state_dim, action_dim: sizes of the state the policy is conditioned on and of the action.
        schedule: the ``VPSchedule`` (its N is the number of reverse steps).
        hidden_dim: width of the default ε-MLP (ignored when ``eps_model`` is given).
        max_action: actions live in [-max_action, max_action]; dataset actions outside raise, sampled
            clean-action estimates are clipped to it. ``None`` turns both off (unbounded actions).
        eps_model: any module called as ``eps_model(state, a_i, i)`` returning ε (B, action_dim); replaces
            the default ``EpsilonMLP``.
        activation: activation of the default ε-MLP (see ``networks.py`` for the measured choice).
    """

    def __init__(
        self,
        state_dim: int,
        action_dim: int,
        schedule: VPSchedule,
        hidden_dim: int = 256,
        max_action: float | None = 1.0,
        eps_model: nn.Module | None = None,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        if not isinstance(schedule, VPSchedule):
            raise TypeError(f"schedule must be a VPSchedule, got {type(schedule).__name__}.")
        if max_action is not None and not max_action > 0:
            raise ValueError(f"max_action must be positive or None (no bound), got {max_action}.")
        self.state_dim, self.action_dim = state_dim, action_dim
        self.schedule = schedule
        self.max_action = None if max_action is None else float(max_action)
        self.eps_model = eps_model if eps_model is not None else EpsilonMLP(state_dim, action_dim, hidden_dim, activation=activation)

    @property
    def n_steps(self) -> int:
        return self.schedule.n_steps

    @property
    def device(self) -> torch.device:
        return self.schedule.device

    def _check_state(self, state: torch.Tensor) -> torch.Tensor:
        check_matrix(state, "state", self.state_dim, self.schedule.betas.dtype)
        if state.device != self.device:
            raise ValueError(f"state is on {state.device} but the policy is on {self.device}; use state.to({str(self.device)!r}).")
        return check_finite(state, "state")

    def _check_action(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        check_matrix(action, "action", self.action_dim, self.schedule.betas.dtype)
        if action.shape[0] != state.shape[0]:
            raise ValueError(f"state has {state.shape[0]} rows but action has {action.shape[0]}; pass matching batches.")
        check_finite(action, "action")
        if self.max_action is not None:
            outside = action.abs() > self.max_action
            if bool(outside.any()):
                row = int(outside.any(dim=1).nonzero()[0, 0])
                raise ValueError(
                    f"action has values outside [-{self.max_action}, {self.max_action}] (first bad row: {row}); "
                    "rescale actions into the bound or build the policy with max_action=None."
                )
        return action

    def _random_steps(self, batch: int, generator: torch.Generator | None) -> torch.Tensor:
        """i ~ U{1, ..., N}, one per row."""
        return randint(1, self.n_steps + 1, (batch,), generator, self.device)

    def _noise(self, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        return randn(tuple(like.shape), generator, like.device, like.dtype)

    def denoise_dataset_action(
        self,
        state: torch.Tensor,
        action: torch.Tensor,
        generator: torch.Generator | None = None,
        step: int | torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Noise each dataset action once and call ε_θ once; return what L_d and the action approximation need.

            a^i = √ᾱ_i a + √(1-ᾱ_i) ε                    (Eq. 13, ᾱ where the paper prints α), i ~ U{1..N}
            error_b = ‖ε - ε_θ(a^i, s, i)‖² / action_dim  (the integrand of Eq. 8, per row)
            â^0 = (a^i - √(1-ᾱ_i) ε_θ(a^i, s, i)) / √ᾱ_i  (Eq. 14, differentiable w.r.t. θ)

        ``step`` fixes i (an int or a LongTensor (B,)) instead of drawing it. Random draws: the steps first
        (when drawn), then the noise. Returns ``(error (B,), steps (B,), approx (B, action_dim))``; â^0 is
        not clipped here (callers that want the sampler's box clip it themselves)."""
        self._check_action(self._check_state(state), action)
        batch = state.shape[0]
        steps = self._random_steps(batch, generator) if step is None else check_steps(step, batch, self.n_steps, self.device)
        noise = self._noise(action, generator)
        noisy = self.schedule.q_sample(action, steps, noise)  # Eq. 13
        eps = self.eps_model(state, noisy, steps)
        error = (noise - eps).pow(2).mean(dim=1)
        return error, steps, self.schedule.predict_a0(noisy, steps, eps)  # Eq. 14

    def loss(self, state: torch.Tensor, action: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Behaviour-cloning loss L_d(θ) (Eq. 8, with ᾱ_i where the paper prints α_i):

            E_{i~U{1..N}, ε~N(0,I), (s,a)~D} ‖ε - ε_θ(√ᾱ_i a + √(1-ᾱ_i) ε, s, i)‖²

        averaged over action dimensions too (Eq. 8 divided by action_dim, as Diffusion-QL does), so its
        scale does not grow with the action size."""
        error, _, _ = self.denoise_dataset_action(state, action, generator)
        return error.mean()

    def approximate_action(
        self,
        state: torch.Tensor,
        action: torch.Tensor,
        generator: torch.Generator | None = None,
        step: int | torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Action approximation (Eq. 13–14): noise the dataset action to a step i, denoise it in one ε call.

            a^i = √ᾱ_i a + √(1-ᾱ_i) ε,    â^0 = (a^i - √(1-ᾱ_i) ε_θ(a^i, s, i)) / √ᾱ_i

        i ~ U{1..N} per row unless ``step`` fixes it (an int or a LongTensor (B,)). Differentiable w.r.t. θ,
        so -Q(s, â^0) can train the policy without backpropagating through the N-step chain (Eq. 15–16).
        Returned unclipped (the exact Eq. 14); the agents' diffusion actor clips it to the action box before
        its Q loss (``DiffusionActor.boxed``, ``clip_approximation``), as the sampler clips every â^0."""
        return self.denoise_dataset_action(state, action, generator, step)[2]

    def _eps_fn(self, state: torch.Tensor):
        """ε as a function of (a^i, i) for one batch of states. The default ε-MLP caches its state and time
        projections along the chain (``EpsilonMLP.epsilon_fn``); any other network is called every step."""
        if isinstance(self.eps_model, EpsilonMLP):
            return self.eps_model.epsilon_fn(state, self.n_steps)

        batch = state.shape[0]

        def eps_fn(a_i: torch.Tensor, i: int) -> torch.Tensor:
            return self.eps_model(state, a_i, torch.full((batch,), i, dtype=torch.long, device=self.device))

        return eps_fn

    def sample(
        self,
        state: torch.Tensor,
        guidance: Guidance | None = None,
        generator: torch.Generator | None = None,
        return_trajectory: bool = False,
        variance: str = "posterior",
        sampler: str = "ddpm",
        n_sample_steps: int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Draw one action per state by running the reverse chain i = N, ..., 1 (Eq. 7, corrected).

        Args:
            state: (B, state_dim).
            guidance: an optional score term added at every step (Eq. 24), e.g. ``EnergyGuidance``.
            generator: a ``torch.Generator`` on the policy's device for reproducible draws.
            return_trajectory: also return a tensor (steps+1, B, action_dim): ``[0]`` is a^N, ``[-1]`` is a^0
                (N+1 entries for ddpm, N′+1 for ddim/dpm with ``n_sample_steps`` = N′).
            variance: ``"posterior"`` (β̃_i, default) or ``"beta"`` (β_i, as Sec. 3.1 prints); see
                ``VPSchedule.reverse_variance``. Both add no noise at i = 1. ddpm only.
            sampler: ``"ddpm"`` (the paper's N-step chain), ``"ddim"`` (η = 0) or ``"dpm"``
                (DPM-Solver++(2M)); the last two are deterministic given a^N and take ``n_sample_steps``
                (≤ N) of the trained steps — the same trained network, far fewer ε calls (``samplers.py``).

        Gradients flow if the caller's grad mode is on (backpropagating through the chain, as Diffusion-QL
        does). With grad mode off and no guidance the loop runs under ``torch.inference_mode`` (faster);
        guidance needs autograd for ∇f, so the guided path never uses it."""
        self._check_state(state)
        kwargs = dict(
            state=state, max_action=self.max_action, sampler=sampler, n_sample_steps=n_sample_steps,
            guidance=guidance, generator=generator, variance=variance, return_trajectory=return_trajectory,
        )
        shape = (state.shape[0], self.action_dim)
        guided = guidance is not None and guidance.scale != 0
        if torch.is_grad_enabled() or guided:
            return run_sampler(self._eps_fn(state), self.schedule, shape, **kwargs)
        with torch.inference_mode():
            out = run_sampler(self._eps_fn(state), self.schedule, shape, **kwargs)
        # Inference tensors cannot enter autograd later (e.g. as a critic's input); a copy outside the
        # context is an ordinary tensor.
        return tuple(x.clone() for x in out) if return_trajectory else out.clone()
