"""How close is `DiffusionPolicy.sample` to the cost of its own matrix products?

Measures, in one run, on the same machine and thread count:
  ours       DiffusionPolicy.sample (N-step DDPM chain, default ε-MLP) under torch.inference_mode, once per
             activation asked for (default: ReLU, the kit's default, and SiLU, to show what the choice costs)
  floor      only the matrix products that the sampler itself performs, as it performs them (addmm with the
             bias, into the same reused buffers): the state projection once, then per step the action-input,
             two hidden and the output layer; no activations, no noise, no sampler arithmetic. A second line
             drops the biases (plain mm): the stricter floor of bare GEMMs.
  reference  a naive Diffusion-QL-style loop: ε-MLP on cat[a, t_emb, s] with Mish, the time MLP recomputed
             for every sample at every step, per-step coefficient gathers, â⁰ clamped to ±1

Prints a table of best-of-rounds times and the ratios ours/floor and reference/ours. No assertions: the numbers
depend on the machine; run it before and after a change.

    python benchmarks/sampling.py [--batch 1024 --state-dim 91 --action-dim 27 --steps 100 --repeats 5]
                                  [--activations relu silu mish] [--threads 1]
"""
from __future__ import annotations

import argparse
import time

import pandas as pd
import torch
from torch import nn

import dac4rec_lite as dl


def timed_round_robin(fns: list, repeats: int) -> list[float]:
    """Best (minimum) seconds of each function over interleaved rounds. On a shared machine other work only
    ever adds time, so the minimum is the least noisy estimate of a function's own cost; interleaving makes a
    slow spell hit every contender alike."""
    for fn in fns:
        fn()  # warm-up
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, record in zip(fns, times):
            start = time.perf_counter()
            fn()
            record.append(time.perf_counter() - start)
    return [min(record) for record in times]


def floor_fn(policy: dl.DiffusionPolicy, state: torch.Tensor, with_bias: bool = True):
    """The matrix products of one N-step chain, exactly as ``EpsilonMLP.epsilon_fn`` issues them: the state
    projection once, then per step the action-input layer (whose BLAS call also adds the tabulated time row),
    two hidden layers and the output layer, written into the same reused buffers. Nothing else: no
    activations, no state add, no noise, no sampler arithmetic. ``with_bias=False`` drops the bias/time rows
    (plain ``mm``): the stricter floor of bare GEMMs."""
    net = policy.eps_model
    layers = [net.action_in, net.body[1], net.body[3], net.body[5]]
    weights = [layer.weight.t() for layer in layers]
    biases = [net.time_in.bias] + [layer.bias for layer in layers[1:]]
    hidden = [torch.empty(state.shape[0], net.time_in.out_features) for _ in range(2)]
    a = torch.zeros(state.shape[0], policy.action_dim)

    def run():
        net.project_state(state)
        for _ in range(policy.n_steps):
            h = a
            for k, (weight, bias) in enumerate(zip(weights, biases)):
                out = hidden[k % 2] if k < len(weights) - 1 else None
                h = torch.addmm(bias, h, weight, out=out) if with_bias else torch.mm(h, weight, out=out)

    return run


class NaiveEpsNet(nn.Module):
    """Diffusion-QL's ε-network shape: cat[x, t_emb, s] → 256 → 256 → 256 → a, Mish everywhere."""

    def __init__(self, state_dim: int, action_dim: int, hidden: int = 256, t_dim: int = 16) -> None:
        super().__init__()
        self.t_dim = t_dim
        self.time_mlp = nn.Sequential(nn.Linear(t_dim, 2 * t_dim), nn.Mish(), nn.Linear(2 * t_dim, t_dim))
        self.mid = nn.Sequential(
            nn.Linear(action_dim + t_dim + state_dim, hidden), nn.Mish(),
            nn.Linear(hidden, hidden), nn.Mish(),
            nn.Linear(hidden, hidden), nn.Mish(),
            nn.Linear(hidden, action_dim),
        )

    def forward(self, x, t, state):
        half = self.t_dim // 2
        freqs = torch.exp(-torch.log(torch.tensor(10000.0)) * torch.arange(half) / (half - 1))
        emb = t.float()[:, None] * freqs[None]
        t_emb = self.time_mlp(torch.cat([emb.sin(), emb.cos()], dim=1))
        return self.mid(torch.cat([x, t_emb, state], dim=1))


def reference_fn(schedule: dl.VPSchedule, net: NaiveEpsNet, state: torch.Tensor, action_dim: int):
    betas, ab = schedule.betas, schedule.alphas_cumprod
    ab_prev = schedule.alphas_cumprod_prev
    c0 = betas * ab_prev.sqrt() / (1 - ab)
    ci = (1 - ab_prev) * (1 - betas).sqrt() / (1 - ab)
    log_var = torch.log((betas * (1 - ab_prev) / (1 - ab)).clamp(min=1e-20))

    def run():
        g = torch.Generator().manual_seed(0)
        x = torch.randn(state.shape[0], action_dim, generator=g)
        for k in reversed(range(schedule.n_steps)):
            t = torch.full((state.shape[0],), k, dtype=torch.long)
            eps = net(x, t, state)
            x0 = (x - (1 - ab[t]).sqrt()[:, None] * eps) / ab[t].sqrt()[:, None]
            x0 = x0.clamp(-1, 1)
            mean = c0[t][:, None] * x0 + ci[t][:, None] * x
            noise = torch.randn(x.shape, generator=g)
            mask = (t != 0).float()[:, None]
            x = mean + mask * (0.5 * log_var[t])[:, None].exp() * noise

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--state-dim", type=int, default=91)
    parser.add_argument("--action-dim", type=int, default=27)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--activations", nargs="+", default=["relu", "silu"], choices=sorted(dl.diffusion.ACTIVATIONS),
                        help="ε-MLP activations to time; the first is the headline 'ours'")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    torch.manual_seed(args.seed)
    schedule = dl.VPSchedule(args.steps)
    policies = {name: dl.DiffusionPolicy(args.state_dim, args.action_dim, schedule, hidden_dim=args.hidden,
                                         activation=name).eval() for name in args.activations}
    naive = NaiveEpsNet(args.state_dim, args.action_dim, args.hidden).eval()
    state = torch.randn(args.batch, args.state_dim)

    def ours(policy: dl.DiffusionPolicy):
        return lambda: policy.sample(state, generator=torch.Generator().manual_seed(0))

    first = next(iter(policies.values()))
    with torch.inference_mode():  # what sample() itself switches to on this path: like for like
        *ours_times, floor, bare, reference = timed_round_robin(
            [ours(policy) for policy in policies.values()]
            + [floor_fn(first, state), floor_fn(first, state, with_bias=False),
               reference_fn(schedule, naive, state, args.action_dim)],
            args.repeats,
        )

    names = [f"ours ({name})" for name in policies] + [
        "floor (the fast path's matmul calls)", "bias-free matmuls (stricter floor)", "reference (Diffusion-QL style, Mish)"]
    seconds = [*ours_times, floor, bare, reference]
    table = pd.DataFrame({"seconds": seconds, "× floor": [t / floor for t in seconds]}, index=names)
    print(f"B={args.batch} state={args.state_dim} action={args.action_dim} N={args.steps} hidden={args.hidden} "
          f"threads={torch.get_num_threads()} torch={torch.__version__}")
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    headline = ours_times[0]
    print(f"ours ({args.activations[0]}) / floor = {headline / floor:.2f}   ours / bias-free matmuls = "
          f"{headline / bare:.2f}   reference / ours = {reference / headline:.2f}")


if __name__ == "__main__":
    main()
