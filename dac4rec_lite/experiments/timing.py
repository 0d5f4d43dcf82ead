"""What things cost on this machine: a policy update with the action approximation vs through the chain
(``time_policy_updates``), sampling with the N-step chain vs few-step solvers (``time_samplers``), and one
activation pass of the ε-network vs the matmul it follows (``time_activations``).

Two ways to train a diffusion policy with −Q (Eq. 9 with the direct improvement of Eq. 15–16):

  action approximation   DAC4Rec's update (Sec. 3.2): noise the *dataset* action to a random step i and
                         denoise it with one ε call (Eq. 13–14); −Q(s, â⁰) backpropagates through that one
                         call (which the kit's update also uses for L_d), whatever N is.
  through the chain      Diffusion-QL's update, and what Eq. 11 asks for literally: draw a⁰ by running the
                         whole reverse chain a^N → a^0 with gradients on, so ∂a⁰/∂θ runs through N ε calls
                         (N + 1 with L_d's), all kept in memory for the backward pass.

Both include L_d (Eq. 8), the backward pass and the Adam step; neither includes the critic's step, which is
the same for both. ``benchmarks/training.py`` times whole agent updates at recommendation sizes.
"""
from __future__ import annotations

import statistics
import time
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from ..agents.dac4rec import DAC4Rec
from ..diffusion import DiffusionPolicy
from ..diffusion.networks import INPLACE_ACTIVATIONS

__all__ = [
    "POLICY_UPDATE_METHODS", "chain_policy_loss", "chain_policy_update", "count_eps_calls", "median_seconds", "time_policy_updates",
    "time_activations", "time_samplers",
]

POLICY_UPDATE_METHODS = ("action approximation", "through the chain")


def chain_policy_loss(agent: DAC4Rec, state: torch.Tensor, action: torch.Tensor,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """L_d + λ L_q with a⁰ ~ μ_θ(· | s) drawn through the whole reverse chain, gradients on (Eq. 11, 16):
    the loss ``DAC4Rec(policy_improvement="chain")`` (RQ4's −A) trains, computed by the agent itself
    (``DAC4Rec.policy_loss(..., improvement="chain")``): L_d and â⁰ from one noising of the dataset action,
    L_q = −mean Q(s, a⁰) / mean |Q| with the critic frozen, so the two updates differ only in where a⁰ comes from."""
    return agent.policy_loss(state, action, improvement="chain", generator=generator)[0]


def chain_policy_update(agent: DAC4Rec, batch: dict[str, torch.Tensor],
                        generator: torch.Generator | None = None) -> float:
    """One policy step of the −A ablation: ``DAC4Rec.update_policy`` with the "chain" improvement, the very
    update RQ4 trains (encoder frozen, gradient clipping, Adam step, target updates). Returns the loss."""
    return agent.update_policy(batch, improvement="chain", generator=generator)["policy_loss"]


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall-clock seconds of ``fn()`` over ``repeats`` calls, after one warm-up call."""
    fn()  # warm-up: first-call allocations are not what we want to measure
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def count_eps_calls(agent: DAC4Rec, update: Callable[[], object]) -> int:
    """How many batched ε-network passes one call of ``update`` makes, on either path: a hook on the ε-MLP's
    body counts plain forwards and chains run with autograd on; the gradient-free chain
    (``EpsilonMLP.epsilon_fn`` under no_grad) does not call the body module, so its steps are counted by
    wrapping ``epsilon_fn`` for the duration of the call."""
    eps_model = agent.policy.eps_model
    calls = 0

    def hook(*_):
        nonlocal calls
        calls += 1

    original = eps_model.epsilon_fn

    def counting_epsilon_fn(state: torch.Tensor, n_steps: int):
        epsilon = original(state, n_steps)
        if torch.is_grad_enabled():  # this path goes through the body: the hook counts it
            return epsilon

        def counted(a_i: torch.Tensor, i: int) -> torch.Tensor:
            nonlocal calls
            calls += 1
            return epsilon(a_i, i)

        return counted

    handle = eps_model.body.register_forward_hook(hook)
    eps_model.epsilon_fn = counting_epsilon_fn
    try:
        update()
    finally:
        handle.remove()
        del eps_model.epsilon_fn
    return calls


def time_policy_updates(
    n_steps_list: Sequence[int] = (5, 20, 100),
    batch_size: int = 256,
    obs_dim: int = 1,
    action_dim: int = 2,
    hidden_dim: int = 256,
    repeats: int = 5,
    seed: int = 0,
    device: str = "cpu",
) -> pd.DataFrame:
    """Median wall-clock seconds of one policy update, with the action approximation and through the chain,
    for each number of diffusion steps N.

    For each N a fresh ``DAC4Rec(obs_dim, action_dim, n_steps=N, hidden_dim=hidden_dim)`` is trained on one
    fixed random batch: ``agent.update_policy`` (the approximation) and ``chain_policy_update`` each run once
    to warm up, then ``repeats`` times. Returns one row per (N, method) with columns ``n_steps``, ``method``
    (see ``POLICY_UPDATE_METHODS``), ``seconds`` (the median) and ``eps_calls`` (ε-network passes per
    update: 1 with the approximation, N + 1 through the chain — the machine-independent reason for the gap). Times depend on the machine and on its
    load; compare rows of one call only."""
    if not n_steps_list:
        raise ValueError("n_steps_list is empty; pass the numbers of diffusion steps N to time, e.g. (5, 20, 100).")
    if batch_size < 1 or repeats < 1:
        raise ValueError(f"batch_size and repeats must be >= 1, got batch_size={batch_size}, repeats={repeats}.")
    generator = torch.Generator(device=device).manual_seed(seed)
    batch = {
        "observations": torch.randn((batch_size, obs_dim), generator=generator, device=device),
        "actions": torch.rand((batch_size, action_dim), generator=generator, device=device) * 2 - 1,
    }
    rows = []
    for n_steps in n_steps_list:
        agent = DAC4Rec(obs_dim, action_dim, n_steps=int(n_steps), hidden_dim=hidden_dim, device=device, seed=seed)
        updates = (lambda: agent.update_policy(batch), lambda: chain_policy_update(agent, batch, generator))
        for method, update in zip(POLICY_UPDATE_METHODS, updates):
            rows.append({"n_steps": int(n_steps), "method": method, "seconds": median_seconds(update, repeats),
                         "eps_calls": count_eps_calls(agent, update)})
    return pd.DataFrame(rows, columns=["n_steps", "method", "seconds", "eps_calls"])


def time_samplers(
    policy: DiffusionPolicy,
    state: torch.Tensor,
    metric: Callable[[np.ndarray], float],
    configs: Sequence[tuple[str, int | None]] = (("ddpm", None), ("ddim", 5), ("ddim", 10), ("dpm", 5), ("dpm", 10)),
    repeats: int = 3,
    seed: int = 0,
) -> pd.DataFrame:
    """The speed/quality trade-off of the samplers on one trained policy.

    For each (sampler, n_sample_steps) in ``configs``: the median seconds of ``policy.sample(state, ...)``
    under ``torch.no_grad`` over ``repeats`` runs, the number of ε-network passes (N for ddpm, N′ =
    ``n_sample_steps`` otherwise), and ``metric(actions)`` on the actions drawn with
    ``torch.Generator().manual_seed(seed)``. Columns: ``sampler``, ``eps_calls``, ``seconds``, ``metric``."""
    if not configs or repeats < 1:
        raise ValueError("configs must name at least one (sampler, n_sample_steps) and repeats must be >= 1.")
    rows = []
    with torch.no_grad():
        for sampler, k in configs:
            def draw(sampler=sampler, k=k):
                generator = torch.Generator(device=policy.device).manual_seed(seed)
                return policy.sample(state, generator=generator, sampler=sampler, n_sample_steps=k)

            seconds = median_seconds(draw, repeats)
            rows.append({"sampler": sampler, "eps_calls": policy.n_steps if k is None else k, "seconds": seconds,
                         "metric": float(metric(draw().cpu().numpy()))})
    return pd.DataFrame(rows, columns=["sampler", "eps_calls", "seconds", "metric"])


def time_activations(batch_size: int = 1024, hidden_dim: int = 256, repeats: int = 20, seed: int = 0) -> pd.DataFrame:
    """What one activation pass costs next to the layer it follows: the measurement behind the ε-network's
    ReLU (``diffusion/networks.py``).

    Median microseconds of one in-place pass of each ε-network activation over a (batch_size, hidden_dim)
    tensor of N(0, 1) values, and of the (batch_size, hidden_dim) × (hidden_dim, hidden_dim) matmul that
    precedes it in every hidden layer. Each timed activation call first refreshes its buffer from the same
    source (an in-place activation applied to its own output drifts: repeated SiLU sinks into denormals);
    the refresh, timed alone, is subtracted. One ε call makes three passes, a chain N calls. Columns:
    ``operation``, ``microseconds``, ``per_matmul`` (the pass's share of one matmul). Times depend on the
    machine and its load: compare rows of one call only."""
    if batch_size < 1 or hidden_dim < 1 or repeats < 1:
        raise ValueError(f"batch_size, hidden_dim and repeats must be >= 1, got {batch_size}, {hidden_dim}, {repeats}.")
    generator = torch.Generator().manual_seed(seed)
    source = torch.randn((batch_size, hidden_dim), generator=generator)
    weight = torch.randn((hidden_dim, hidden_dim), generator=generator) / hidden_dim**0.5
    buffer, product = torch.empty_like(source), torch.empty_like(source)
    with torch.inference_mode():
        refresh = median_seconds(lambda: buffer.copy_(source), repeats)
        matmul = median_seconds(lambda: torch.mm(source, weight, out=product), repeats)
        rows = [{"operation": f"{hidden_dim}×{hidden_dim} matmul", "microseconds": 1e6 * matmul}]
        for name, activate in INPLACE_ACTIVATIONS.items():
            seconds = median_seconds(lambda activate=activate: activate(buffer.copy_(source)), repeats)
            rows.append({"operation": name, "microseconds": 1e6 * max(seconds - refresh, 0.0)})
    table = pd.DataFrame(rows, columns=["operation", "microseconds"])
    table["per_matmul"] = table["microseconds"] / (1e6 * matmul)
    return table
