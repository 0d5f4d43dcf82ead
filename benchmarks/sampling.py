"""How close is `DiffusionPolicy.sample` to the cost of its own matrix products?

Measures, in one run, on the same machine and thread count:
  ours       DiffusionPolicy.sample (N-step DDPM chain, default ε-MLP) under torch.inference_mode
  floor      only the matrix products that the sampler itself performs: the state projection once, then per
             step the action-input layer, two hidden layers and the output layer (no activations, no noise)
  reference  a naive Diffusion-QL-style loop: ε-MLP on cat[a, t_emb, s] with Mish, the time MLP recomputed
             for every sample at every step, per-step coefficient gathers, â⁰ clamped to ±1

Prints a table of best-of-rounds times and the ratios ours/floor and reference/ours. No assertions: the numbers
depend on the machine; run it before and after a change.

    python benchmarks/sampling.py [--batch 1024 --state-dim 91 --action-dim 27 --steps 100 --repeats 5]
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


def floor_fn(policy: dl.DiffusionPolicy, state: torch.Tensor):
    net = policy.eps_model
    layers = [net.action_in, net.body[1], net.body[3], net.body[5]]
    weights = [layer.weight.t().contiguous() for layer in layers]
    state_weight = net.state_in.weight.t().contiguous()
    x0 = torch.zeros(state.shape[0], policy.action_dim)

    def run():
        state @ state_weight
        for _ in range(policy.n_steps):
            h = x0
            for w in weights:
                h = h @ w

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
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    torch.manual_seed(args.seed)
    schedule = dl.VPSchedule(args.steps)
    policy = dl.DiffusionPolicy(args.state_dim, args.action_dim, schedule, hidden_dim=args.hidden).eval()
    naive = NaiveEpsNet(args.state_dim, args.action_dim, args.hidden).eval()
    state = torch.randn(args.batch, args.state_dim)

    with torch.no_grad():  # sample() itself switches to inference mode on this path
        ours, floor, reference = timed_round_robin([
            lambda: policy.sample(state, generator=torch.Generator().manual_seed(0)),
            floor_fn(policy, state),
            reference_fn(schedule, naive, state, args.action_dim),
        ], args.repeats)

    table = pd.DataFrame(
        {
            "seconds": [ours, floor, reference],
            "× floor": [ours / floor, 1.0, reference / floor],
        },
        index=["ours (DiffusionPolicy.sample)", "floor (bare matmuls)", "reference (Diffusion-QL style)"],
    )
    print(f"B={args.batch} state={args.state_dim} action={args.action_dim} N={args.steps} hidden={args.hidden} "
          f"threads={torch.get_num_threads()} torch={torch.__version__}")
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    print(f"ours / floor = {ours / floor:.2f}   reference / ours = {reference / ours:.2f}")


if __name__ == "__main__":
    main()
