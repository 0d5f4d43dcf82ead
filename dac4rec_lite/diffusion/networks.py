"""The ε-network: it only predicts noise. The schedule owns the maths and the sampler owns the loop.

Architecture (Diffusion-QL's, with two changes, both for the speed of the reverse chain):
  ε_θ(s, a^i, i) = MLP(W_a a^i + W_s s + W_t t(i) + b), three hidden layers of ``hidden_dim``.

* The first layer is split into three linear maps (action, state, time) instead of one map of a
  concatenation. This is the same function (a linear map of [a, s, t] is the sum of linear maps of the
  parts) but lets a sampler compute W_s s once per sample and the time term once per step, reusing both
  across the whole reverse chain (``project_state`` / ``project_time`` / ``epsilon_fn``).
* ReLU instead of Mish. An ε call makes three activation passes and an action takes N calls, so on a CPU
  the activation is paid 3N times per chain beside the matrix products: a Mish pass cost more than the
  256×256 matmul it follows, SiLU's a fraction of it, ReLU's the least, and the chain's time over its own
  matmul calls fell with it. ``dl.timing.time_activations`` measures one pass of each on your machine and
  ``benchmarks/sampling.py`` times the chain with each activation in one run; the figures measured on the
  kit's 2-core CPU are in docs/backbones.md ("Measurements behind the module docstrings"). Pass
  ``activation="silu"`` (the kit's default before that measurement) or ``"mish"`` (Diffusion-QL's exact
  network) to compare.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SinusoidalTimeEmbedding", "EpsilonMLP", "ChainEpsilon", "ACTIVATIONS", "INPLACE_ACTIVATIONS"]

ACTIVATIONS: dict[str, type[nn.Module]] = {"silu": nn.SiLU, "mish": nn.Mish, "relu": nn.ReLU, "tanh": nn.Tanh}
# The same activations applied in place, for the gradient-free sampling path (no new 1 MB buffer per layer).
INPLACE_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "silu": lambda x: F.silu(x, inplace=True), "mish": lambda x: F.mish(x, inplace=True),
    "relu": torch.relu_, "tanh": torch.tanh_,
}


def make_activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}.")
    return ACTIVATIONS[name]()


class SinusoidalTimeEmbedding(nn.Module):
    """Transformer-style embedding of the integer step i: [sin(i·c_k), cos(i·c_k)] with frequencies c_k = 10000^(-k/(d/2-1))."""

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        if dim < 4 or dim % 2:
            raise ValueError(f"time embedding dim must be an even number >= 4, got {dim}.")
        half = dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / (half - 1))
        self.register_buffer("freqs", freqs, persistent=False)

    def forward(self, i: torch.Tensor) -> torch.Tensor:
        angles = i.to(self.freqs.dtype).unsqueeze(1) * self.freqs.unsqueeze(0)
        return torch.cat([angles.sin(), angles.cos()], dim=1)


class EpsilonMLP(nn.Module):
    """ε_θ(state, a_i, i) → (B, action_dim). Called as ``eps_model(state, a_i, i)`` like every network here.

    ``out_dim`` (default ``action_dim``) lets the same conditional MLP predict other things of
    (state, a_i, i), such as the scalar intermediate energy f_ψ of Eq. 25 (``EnergyModel``)."""

    def __init__(
        self,
        state_dim: int,
        action_dim: int,
        hidden_dim: int = 256,
        time_dim: int = 16,
        activation: str = "relu",
        out_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.state_dim, self.action_dim = state_dim, action_dim
        self.activation = activation
        self.time_mlp = nn.Sequential(
            SinusoidalTimeEmbedding(time_dim),
            nn.Linear(time_dim, 2 * time_dim),
            make_activation(activation),
            nn.Linear(2 * time_dim, time_dim),
        )
        # First layer W[a; s; t] + b, split by input so that parts can be cached (see module docstring).
        # The bias b lives in time_in, so the tabulated time term carries it for free.
        self.action_in = nn.Linear(action_dim, hidden_dim, bias=False)
        self.state_in = nn.Linear(state_dim, hidden_dim, bias=False)
        self.time_in = nn.Linear(time_dim, hidden_dim)
        self.body = nn.Sequential(
            make_activation(activation),
            nn.Linear(hidden_dim, hidden_dim),
            make_activation(activation),
            nn.Linear(hidden_dim, hidden_dim),
            make_activation(activation),
            nn.Linear(hidden_dim, action_dim if out_dim is None else out_dim),
        )

    def project_state(self, state: torch.Tensor) -> torch.Tensor:
        """W_s s: the state's share of the first layer, (B, hidden). Constant along a reverse chain."""
        return self.state_in(state)

    def project_time(self, i: torch.Tensor) -> torch.Tensor:
        """W_t t(i) + b: the step's share of the first layer, (len(i), hidden). Tabulate it once for all N."""
        return self.time_in(self.time_mlp(i))

    def denoise(self, state_projection: torch.Tensor, a_i: torch.Tensor, time_projection: torch.Tensor) -> torch.Tensor:
        """ε from cached projections; ``time_projection`` is (B, hidden) or (hidden,) for one shared step.

        W_a a + (W_t t + b) is one fused addmm; adding W_s s makes the first layer's pre-activation."""
        first = torch.addmm(time_projection, a_i, self.action_in.weight.t())
        return self.body(first + state_projection)

    def epsilon_fn(self, state: torch.Tensor, n_steps: int) -> Callable[[torch.Tensor, int], torch.Tensor]:
        """ε as a function of (a^i, i) along one reverse chain of ``n_steps`` for a fixed batch of states.

        W_s s is computed once per chain and W_t t(i) + b once per step for all N steps (exact: the first
        layer is linear in each part). Without autograd (sampling under no_grad / inference_mode) the step
        also reads the layers' weights once per chain and writes the hidden layers into two buffers allocated
        once per chain, with every activation in place: per step that is 4 addmm, 1 add and 3 in-place
        activations and no large allocation. The returned ε is a new tensor on every call, and the inputs are
        never written to. The path is fixed when the function is made: call ``epsilon_fn`` in the grad mode
        you will sample in (a gradient-free one called with autograd on raises)."""
        if not torch.is_grad_enabled():
            return ChainEpsilon(self, state, n_steps)
        state_projection = self.project_state(state)
        time_table = self.project_time(torch.arange(1, n_steps + 1, device=state.device))
        return lambda a_i, i: self.denoise(state_projection, a_i, time_table[i - 1])

    def forward(self, state: torch.Tensor, a_i: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        return self.denoise(self.project_state(state), a_i, self.project_time(i))


class ChainEpsilon:
    """The gradient-free ε of ``EpsilonMLP.epsilon_fn``: ``eps(a_i, i)`` along one chain for a fixed ``state``.

    Its cached pieces (W_s s, the time table for all N steps, the transposed weights and the two hidden
    buffers) are made on the first call, so a sampler that only needs the same function for another state
    tensor can ask ``for_state(other)`` without paying for them. That is how a CUDA graph captures the chain
    (``samplers.run_sampler``): it rebuilds ε on a static state buffer inside the capture. ``owner`` is the
    network whose weights the chain reads."""

    def __init__(self, owner: EpsilonMLP, state: torch.Tensor, n_steps: int) -> None:
        self.owner, self.state, self.n_steps = owner, state, n_steps
        self._cache: tuple | None = None

    def for_state(self, state: torch.Tensor) -> "ChainEpsilon":
        """The same ε function of the same network and N for another batch of states."""
        return ChainEpsilon(self.owner, state, self.n_steps)

    def _prepare(self) -> tuple:
        net = self.owner
        state_projection = net.project_state(self.state)
        time_table = net.project_time(torch.arange(1, self.n_steps + 1, device=self.state.device))
        action_weight = net.action_in.weight.t()
        *hidden, (out_bias, out_weight) = [(layer.bias, layer.weight.t()) for layer in net.body if isinstance(layer, nn.Linear)]
        buffers = [torch.empty_like(state_projection) for _ in range(2)]
        return state_projection, time_table, action_weight, hidden, out_bias, out_weight, buffers

    def __call__(self, a_i: torch.Tensor, i: int) -> torch.Tensor:
        if torch.is_grad_enabled():
            raise RuntimeError("this ε function was made without autograd (its cached projections carry no "
                               "gradient); call epsilon_fn again with gradients enabled.")
        if self._cache is None:
            self._cache = self._prepare()
        state_projection, time_table, action_weight, hidden, out_bias, out_weight, buffers = self._cache
        activate = INPLACE_ACTIVATIONS[self.owner.activation]
        h = torch.addmm(time_table[i - 1], a_i, action_weight, out=buffers[0]).add_(state_projection)
        for k, (bias, weight) in enumerate(hidden):
            h = torch.addmm(bias, activate(h), weight, out=buffers[(k + 1) % 2])
        return torch.addmm(out_bias, activate(h), out_weight)
