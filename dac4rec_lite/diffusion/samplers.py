"""Reverse-diffusion samplers: they only loop. ε comes from a callable, the maths from the schedule.

``ddpm`` — the paper's N-step ancestral sampler (Eq. 7, corrected; Sec. 2.2's posterior):

    â^0     = (a^i - √(1-ᾱ_i) ε) / √ᾱ_i               (Eq. 14), clipped to ±max_action if given
    a^{i-1} = c0_i â^0 + ci_i a^i + σ_i z,   z ~ N(0, I), σ_1 = 0

  Without clipping, c0_i â^0 + ci_i a^i equals Eq. 7's mean (a^i - β_i/√(1-ᾱ_i) ε)/√α_i exactly. Clipping the
  predicted clean action keeps every intermediate estimate inside the action box (Diffusion-QL does the
  same); because c0_1 = 1 and ci_1 = 0, the final action is the clipped â^0, so it is always in bounds.

``ddim`` — DDIM without added noise (Song et al. 2021) on a subsequence of N′ of the N trained steps: deterministic,
  a^s = √ᾱ_s â^0 + √(1-ᾱ_s) ε̂ (ε̂ re-derived from the clipped â^0), and a^0 = â^0 at the end.

``dpm`` — DPM-Solver++(2M) (Lu et al. 2022), a second-order multistep solver of the probability-flow ODE
  in the data-prediction form, on the same subsequence: with the log-SNR ℓ = log(√ᾱ / √(1-ᾱ)) and the step
  Δℓ = ℓ_s − ℓ_t (Lu et al.'s h; h is the simulator's short-term interest in this kit),
      a^s = (σ_s/σ_t) a^t − √ᾱ_s (e^{−Δℓ} − 1) D,   D = (1 + 1/(2r)) â^0_t − 1/(2r) â^0_prev,  r = Δℓ_prev / Δℓ
  with σ = √(1-ᾱ) the noise level (first order on the first step; the last step to a^0 returns the last â^0,
  "lower-order final").

Both few-step samplers reuse the ε-network trained for N steps unchanged: they only visit fewer of its steps.

Guidance (Eq. 24): ∇ log π_i = ∇ log μ_i + g_i. Since ε_θ ≈ −√(1−ᾱ_i) ∇ log μ_i, adding the score g_i is
ε̃ = ε_θ − √(1−ᾱ_i) g_i. Every sampler applies it the same way.

CUDA graphs. On a GPU an unguided, gradient-free chain is hundreds of tiny kernels (4 matmuls and a few
element-wise ops per step), so launching them costs more than running them at small batches. There,
``run_sampler`` captures the whole chain — the draw of a^N, every step and its noise — once per (network,
batch shape, sampler, steps, generator) as a CUDA graph the second time it is asked for (a chain drawn once,
e.g. with a fresh generator per call, stays eager: a capture costs more than one eager chain) and replays it:
one launch per chain. The noise comes from the
same generator in the same order (the generator is registered with the graph, so a replay advances it exactly
as the eager loop would), so the samples are the eager path's for the same generator state. Guided sampling,
trajectories, autograd, CPU tensors, CPU generators (their numbers cannot be drawn inside a graph) and ε
functions that are not an ``EpsilonMLP`` chain take the eager loop. ``cuda_graphs(False)`` turns the graph
path off (to compare, or to count ε calls).
"""
from __future__ import annotations

import math
import warnings
import weakref
from collections import OrderedDict
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Protocol

import torch

from .._checks import randn
from .schedule import VPSchedule

__all__ = ["Guidance", "SAMPLERS", "sample_steps", "run_sampler", "ddpm_sample", "ddim_sample", "dpm_solver_sample",
           "cuda_graphs", "cuda_graph_count"]

SAMPLERS = ("ddpm", "ddim", "dpm")

EpsFn = Callable[[torch.Tensor, int], torch.Tensor]
"""ε at step i (1-based int) for the current batch of noisy actions a^i. It may reuse buffers of its own
but returns a tensor that nothing else writes to. The samplers never write to a^i or ε; the only tensor they
modify in place is the â^0 they have just allocated (the DDPM step turns it into a^{i-1}), so every
trajectory entry stays as it was appended."""


class Guidance(Protocol):
    """Anything that adds to the score at each reverse step: ``guidance(state, a_i, i) -> (B, action_dim)``.

    ``scale`` is read so that a zero scale can take the unguided path (bit-identical samples)."""

    scale: float

    def __call__(self, state: torch.Tensor, a_i: torch.Tensor, i: torch.Tensor) -> torch.Tensor: ...


def sample_steps(schedule: VPSchedule, n_sample_steps: int) -> list[int]:
    """N′ of the N trained steps, from N down to 1, evenly spaced in log-SNR ℓ_i = log(√ᾱ_i / √(1−ᾱ_i)).

    Even spacing in ℓ is what DPM-Solver's error analysis asks for (each step covers the same change of
    noise level in the ODE's natural variable); even spacing in i would leave one huge last step near i = 1,
    where ℓ changes fastest. Targets are rounded to the nearest trained step, kept strictly decreasing,
    so exactly N′ distinct steps are returned."""
    n = schedule.n_steps
    if isinstance(n_sample_steps, bool) or not isinstance(n_sample_steps, int) or not 1 <= n_sample_steps <= n:
        raise ValueError(f"n_sample_steps must be an int in 1..{n} (the trained N), got {n_sample_steps!r}.")
    if n_sample_steps == 1:
        return [n]
    ab = schedule.alphas_cumprod.double().cpu()
    lam = 0.5 * torch.log(ab / (1 - ab))  # increasing as i decreases
    targets = torch.linspace(float(lam[-1]), float(lam[0]), n_sample_steps)
    steps: list[int] = []
    for k, target in enumerate(targets.tolist()):
        remaining = n_sample_steps - k - 1
        upper = n if not steps else steps[-1] - 1  # strictly decreasing
        lower = 1 + remaining  # leave room for the steps still to pick
        nearest = int(torch.argmin((lam - target).abs())) + 1
        steps.append(min(max(nearest, lower), upper))
    return steps


class _Stepper:
    """Shared per-step work: ε (guided if asked), then the clipped clean-action estimate â^0."""

    def __init__(self, eps_fn: EpsFn, schedule: VPSchedule, state: torch.Tensor, max_action: float | None,
                 guidance: Guidance | None, variance: str = "posterior") -> None:
        self.eps_fn, self.state, self.max_action = eps_fn, state, max_action
        self.guidance = guidance if guidance is not None and guidance.scale != 0 else None
        # Python floats, read from the device once here: no syncs in the loop (and none inside a graph capture)
        self.alpha_bar = schedule.alphas_cumprod.tolist()
        self.coef_a0 = schedule.posterior_mean_coef_a0.tolist()
        self.coef_ai = schedule.posterior_mean_coef_ai.tolist()
        self.variance, self.std = variance, schedule.reverse_variance(variance).sqrt().tolist()
        self.device = schedule.device

    def rebind(self, eps_fn: EpsFn, state: torch.Tensor) -> "_Stepper":
        """The same stepper (coefficients, bound, guidance) for another ε function and state."""
        other = object.__new__(_Stepper)
        other.__dict__.update(self.__dict__, eps_fn=eps_fn, state=state)
        return other

    def eps_and_a0(self, a: torch.Tensor, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        ab = self.alpha_bar[i - 1]
        eps = self.eps_fn(a, i)
        if self.guidance is not None:
            steps = torch.full((a.shape[0],), i, dtype=torch.long, device=self.device)
            eps = eps - math.sqrt(1 - ab) * self.guidance(self.state, a, steps)  # Eq. 24
        a0 = torch.add(a, eps, alpha=-math.sqrt(1 - ab)).mul_(1 / math.sqrt(ab))  # Eq. 14
        if self.max_action is not None:
            a0 = a0.clamp(-self.max_action, self.max_action)
        return eps, a0


def ddpm_sample(schedule: VPSchedule, a: torch.Tensor, stepper: _Stepper, *,
                generator: torch.Generator | None, variance: str, trajectory: list | None) -> torch.Tensor:
    """The N-step ancestral chain (Eq. 5/7). One z is drawn per step i = N..2, after a^N."""
    coef_a0, coef_ai = stepper.coef_a0, stepper.coef_ai
    std = stepper.std if variance == stepper.variance else schedule.reverse_variance(variance).sqrt().tolist()
    for i in range(schedule.n_steps, 0, -1):
        _, a0 = stepper.eps_and_a0(a, i)
        a = a0.mul_(coef_a0[i - 1]).add_(a, alpha=coef_ai[i - 1])  # posterior mean (â^0 is not needed after)
        if std[i - 1] > 0:
            a.add_(randn(tuple(a.shape), generator, a.device, a.dtype), alpha=std[i - 1])
        if trajectory is not None:
            trajectory.append(a)
    return a


def ddim_sample(schedule: VPSchedule, a: torch.Tensor, stepper: _Stepper, steps: list[int],
                trajectory: list | None) -> torch.Tensor:
    """Deterministic DDIM (η = 0) through the given trained steps, then to a^0."""
    ab = stepper.alpha_bar
    for k, i in enumerate(steps):
        eps, a0 = stepper.eps_and_a0(a, i)
        if stepper.max_action is not None:  # keep ε consistent with the clipped â^0
            eps = (a - math.sqrt(ab[i - 1]) * a0) / math.sqrt(1 - ab[i - 1])
        if k + 1 < len(steps):
            s = steps[k + 1]
            a = math.sqrt(ab[s - 1]) * a0 + math.sqrt(1 - ab[s - 1]) * eps
        else:
            a = a0
        if trajectory is not None:
            trajectory.append(a)
    return a


def dpm_solver_sample(schedule: VPSchedule, a: torch.Tensor, stepper: _Stepper, steps: list[int],
                      trajectory: list | None) -> torch.Tensor:
    """DPM-Solver++(2M) through the given trained steps, then to a^0 (see the module docstring)."""
    ab = stepper.alpha_bar
    lam = [0.5 * math.log(ab[i - 1] / (1 - ab[i - 1])) for i in steps]
    previous_a0, previous_h = None, None
    for k, i in enumerate(steps):
        _, a0 = stepper.eps_and_a0(a, i)
        if k + 1 < len(steps):
            s = steps[k + 1]
            h = lam[k + 1] - lam[k]  # Δℓ, this step in log-SNR (the module docstring)
            if previous_a0 is None:
                d = a0
            else:
                r = previous_h / h  # r = Δℓ_prev / Δℓ
                d = (1 + 1 / (2 * r)) * a0 - (1 / (2 * r)) * previous_a0
            sigma_ratio = math.sqrt((1 - ab[s - 1]) / (1 - ab[i - 1]))
            a = sigma_ratio * a - math.sqrt(ab[s - 1]) * math.expm1(-h) * d
            previous_a0, previous_h = a0, h
        else:
            a = a0
        if trajectory is not None:
            trajectory.append(a)
    return a


def run_sampler(
    eps_fn: EpsFn,
    schedule: VPSchedule,
    shape: tuple[int, int],
    *,
    state: torch.Tensor,
    max_action: float | None,
    sampler: str = "ddpm",
    n_sample_steps: int | None = None,
    guidance: Guidance | None = None,
    generator: torch.Generator | None = None,
    variance: str = "posterior",
    return_trajectory: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Draw a^N ~ N(0, I) from ``generator`` and integrate it to a^0 with the chosen sampler.

    ``ddpm`` visits all N steps (``n_sample_steps`` must be None or N); ``ddim``/``dpm`` visit
    ``n_sample_steps`` of them (default: all N). The trajectory holds a^N and then the state after each step
    (N+1 entries for ddpm, N′+1 for the few-step samplers)."""
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}.")
    if sampler == "ddpm" and n_sample_steps not in (None, schedule.n_steps):
        raise ValueError(
            f"the ddpm sampler visits all N={schedule.n_steps} trained steps; for fewer steps use "
            f"sampler='ddim' or 'dpm' with n_sample_steps={n_sample_steps}."
        )
    if sampler != "ddpm" and variance != "posterior":
        raise ValueError(f"variance={variance!r} only applies to the stochastic ddpm sampler; {sampler} adds no noise.")
    stepper = _Stepper(eps_fn, schedule, state, max_action, guidance, variance)
    steps = None if sampler == "ddpm" else sample_steps(schedule, schedule.n_steps if n_sample_steps is None else n_sample_steps)

    def chain(stepper: _Stepper, generator: torch.Generator | None, trajectory: list | None) -> torch.Tensor:
        a = randn(shape, generator, schedule.device, schedule.betas.dtype)
        if trajectory is not None:
            trajectory.append(a)
        if steps is None:
            return ddpm_sample(schedule, a, stepper, generator=generator, variance=variance, trajectory=trajectory)
        solver = ddim_sample if sampler == "ddim" else dpm_solver_sample
        return solver(schedule, a, stepper, steps, trajectory)

    if return_trajectory:
        trajectory: list = []
        a = chain(stepper, generator, trajectory)
        return a, torch.stack(trajectory)
    if _graphable(eps_fn, stepper, generator, state):
        key = (tuple(shape), schedule.betas.dtype, sampler, None if steps is None else tuple(steps), variance,
               max_action, tuple(stepper.alpha_bar))
        return _replay(eps_fn, stepper, generator, state, key, chain)
    return chain(stepper, generator, None)


# ------------------------------------------------------------------------------------------------ CUDA graphs
_GRAPHS_ON = True
_MAX_GRAPHS = 8  # per ε-network; the least recently used graph (and its memory pool) goes first
_GRAPHS: "weakref.WeakKeyDictionary[Any, OrderedDict]" = weakref.WeakKeyDictionary()
_SEEN: "weakref.WeakKeyDictionary[Any, OrderedDict]" = weakref.WeakKeyDictionary()  # chains run once so far
_NOT_CAPTURABLE, _UNSEEN = object(), object()


@contextmanager
def cuda_graphs(enabled: bool) -> Iterator[None]:
    """Turn the CUDA-graph path of ``run_sampler`` on or off inside a ``with`` block (it is on by default)."""
    global _GRAPHS_ON
    previous, _GRAPHS_ON = _GRAPHS_ON, bool(enabled)
    try:
        yield
    finally:
        _GRAPHS_ON = previous


def cuda_graph_count(eps_model: Any) -> int:
    """How many captured chains ``eps_model`` holds (0 on CPU: graphs are only made on CUDA)."""
    return sum(isinstance(entry, _ChainGraph) for entry in _GRAPHS.get(eps_model, {}).values())


def _graphable(eps_fn: EpsFn, stepper: _Stepper, generator: torch.Generator | None, state: torch.Tensor) -> bool:
    return (_GRAPHS_ON and stepper.device.type == "cuda" and state.is_cuda and stepper.guidance is None
            and not torch.is_grad_enabled() and hasattr(eps_fn, "for_state") and hasattr(eps_fn, "owner")
            and (generator is None or generator.device.type == "cuda")
            and not torch.cuda.is_current_stream_capturing())


class _ChainGraph:
    """One captured chain: copy the states into ``state``, replay, read ``out``."""

    def __init__(self, graph: Any, state: torch.Tensor, out: torch.Tensor, generator: torch.Generator | None):
        self.graph, self.state, self.out, self.generator = graph, state, out, generator


def _replay(eps_fn: Any, stepper: _Stepper, generator: torch.Generator | None, state: torch.Tensor,
            key: tuple, chain: Callable) -> torch.Tensor:
    """Run ``chain`` through the cached CUDA graph for ``key``: eagerly the first time it is asked for with this
    generator (only noted in ``_SEEN``, at most 8 per network), captured the second time, replayed after that."""
    owner = eps_fn.owner
    weights = tuple(t.data_ptr() for t in (*owner.parameters(), *owner.buffers()))  # read where they were at capture
    key = (*key, tuple(state.shape), state.dtype, state.device, eps_fn.n_steps, weights,
           torch.is_inference_mode_enabled(), None if generator is None else id(generator))
    graphs = _GRAPHS.setdefault(owner, OrderedDict())
    entry = graphs.get(key)
    if entry is None:
        seen = _SEEN.setdefault(owner, OrderedDict())
        if seen.pop(key, _UNSEEN) is not generator:  # a first use (the generator is None for the default one)
            seen[key] = generator  # held, so that its id cannot be reused by another generator meanwhile
            while len(seen) > _MAX_GRAPHS:
                seen.popitem(last=False)
            return chain(stepper, generator, None)
        entry = graphs[key] = _capture(eps_fn, stepper, generator, state, chain)
        while len(graphs) > _MAX_GRAPHS:
            graphs.popitem(last=False)
    graphs.move_to_end(key)
    if entry is _NOT_CAPTURABLE:  # e.g. an old torch: the eager loop, as before
        return chain(stepper, generator, None)
    entry.state.copy_(state)
    entry.graph.replay()
    return entry.out.clone()


def _capture(eps_fn: Any, stepper: _Stepper, generator: torch.Generator | None, state: torch.Tensor,
             chain: Callable) -> Any:
    """Warm up on a side stream with a scratch generator (cuBLAS and the allocator settle; the caller's
    generator is not touched), then capture the chain on a static copy of ``state``."""
    device = state.device
    graph = torch.cuda.CUDAGraph()
    if generator is not None:
        if not hasattr(graph, "register_generator_state"):
            warnings.warn("this torch cannot draw a user generator's numbers inside a CUDA graph; sampling with the "
                          "eager loop (pass generator=None to use the default generator in a graph).",
                          RuntimeWarning, stacklevel=4)
            return _NOT_CAPTURABLE
        graph.register_generator_state(generator)
    static_state = state.clone()
    with torch.cuda.device(device):
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            scratch = torch.Generator(device=device).manual_seed(0)
            chain(stepper.rebind(eps_fn.for_state(static_state), static_state), scratch, None)
        torch.cuda.current_stream().wait_stream(side)
        captured = stepper.rebind(eps_fn.for_state(static_state), static_state)
        try:
            with torch.cuda.graph(graph):
                out = chain(captured, generator, None)
        except RuntimeError as error:
            warnings.warn(f"could not capture the sampling chain as a CUDA graph ({error}); sampling with the eager "
                          "loop instead (same samples, more kernel launches).", RuntimeWarning, stacklevel=4)
            return _NOT_CAPTURABLE
    return _ChainGraph(graph, static_state, out, generator)
