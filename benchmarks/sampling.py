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

Prints a table of best-of-rounds times, action·steps per second (B × N / seconds) and the ratios ours/floor
and reference/ours. No assertions: the numbers depend on the machine; run it before and after a change.

On ``--device cuda`` every timing synchronises the device, "ours" is the CUDA-graph path that
``DiffusionPolicy.sample`` takes there (one replay per chain; ``samplers.run_sampler``), a second row times
the eager loop, and the floor's matmul calls are replayed from a CUDA graph too, so that the floor is the
matrix products' own cost rather than their launch overhead.

    python benchmarks/sampling.py [--batch 1024 | --batch-sizes 1024 65536] [--state-dim 91 --action-dim 27]
                                  [--steps 100 --repeats 5] [--activations relu silu mish] [--threads 1]
                                  [--device cpu|cuda]
"""
from __future__ import annotations

import argparse
import time

import pandas as pd
import torch
from torch import nn

import dac4rec_lite as dl
from dac4rec_lite.diffusion.samplers import cuda_graphs


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_round_robin(fns: list, repeats: int, device: torch.device = torch.device("cpu")) -> list[float]:
    """Best (minimum) seconds of each function over interleaved rounds. On a shared machine other work only
    ever adds time, so the minimum is the least noisy estimate of a function's own cost; interleaving makes a
    slow spell hit every contender alike. On CUDA each call is timed from a synchronised device to its end."""
    for fn in fns:
        fn()  # warm-up (on CUDA: the first chain runs eagerly,
        fn()  # the second is captured as a graph: the timed calls replay it)
    synchronize(device)
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, record in zip(fns, times):
            synchronize(device)
            start = time.perf_counter()
            fn()
            synchronize(device)
            record.append(time.perf_counter() - start)
    return [min(record) for record in times]


def graphed(fn, device: torch.device):
    """``fn`` replayed from a CUDA graph (captured after a warm-up on a side stream); ``fn`` itself elsewhere."""
    if device.type != "cuda":
        return fn
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        fn()
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()

    def replay(kept=fn) -> None:
        # ``kept`` holds fn's closure, whose buffers the graph writes into. Dropping it freed them, and the next
        # capture's empty_cache() handed them back to the driver: the replay then wrote to unmapped memory (an
        # illegal memory access at B = 65,536 on an H200).
        graph.replay()
    return replay


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
    hidden = [torch.empty(state.shape[0], net.time_in.out_features, device=state.device) for _ in range(2)]
    a = torch.zeros(state.shape[0], policy.action_dim, device=state.device)

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
        freqs = torch.exp(-torch.log(torch.tensor(10000.0)) * torch.arange(half, device=x.device) / (half - 1))
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
        g = torch.Generator(device=state.device).manual_seed(0)
        x = torch.randn(state.shape[0], action_dim, generator=g, device=state.device)
        for k in reversed(range(schedule.n_steps)):
            t = torch.full((state.shape[0],), k, dtype=torch.long, device=state.device)
            eps = net(x, t, state)
            x0 = (x - (1 - ab[t]).sqrt()[:, None] * eps) / ab[t].sqrt()[:, None]
            x0 = x0.clamp(-1, 1)
            mean = c0[t][:, None] * x0 + ci[t][:, None] * x
            noise = torch.randn(x.shape, generator=g, device=state.device)
            mask = (t != 0).float()[:, None]
            x = mean + mask * (0.5 * log_var[t])[:, None].exp() * noise

    return run


def measure(args: argparse.Namespace, batch: int, device: torch.device) -> None:
    torch.manual_seed(args.seed)
    schedule = dl.VPSchedule(args.steps).to(device)
    policies = {name: dl.DiffusionPolicy(args.state_dim, args.action_dim, schedule, hidden_dim=args.hidden,
                                         activation=name).to(device).eval() for name in args.activations}
    naive = NaiveEpsNet(args.state_dim, args.action_dim, args.hidden).to(device).eval()
    state = torch.randn(batch, args.state_dim, device=device)

    def ours(policy: dl.DiffusionPolicy, graphs: bool = True):
        generator = torch.Generator(device=device)  # one generator, reseeded: how an agent samples (act_generator)

        def run():
            with cuda_graphs(graphs):
                return policy.sample(state, generator=generator.manual_seed(0))
        return run

    first = next(iter(policies.values()))
    names = [f"ours ({name})" for name in policies]
    contenders = [ours(policy) for policy in policies.values()]
    if device.type == "cuda":
        names.append(f"ours ({args.activations[0]}), eager loop (no CUDA graph)")
        contenders.append(ours(first, graphs=False))
    names += ["floor (the fast path's matmul calls)", "bias-free matmuls (stricter floor)"]
    if not args.no_reference:
        names.append("reference (Diffusion-QL style, Mish)")
    with torch.inference_mode():  # what sample() itself switches to on this path: like for like
        contenders += [graphed(floor_fn(first, state), device), graphed(floor_fn(first, state, with_bias=False), device)]
        if not args.no_reference:
            contenders.append(reference_fn(schedule, naive, state, args.action_dim))
        seconds = timed_round_robin(contenders, args.repeats, device)
    floor, bare = seconds[len(contenders) - (3 if not args.no_reference else 2):][:2]
    table = pd.DataFrame({"seconds": seconds, "× floor": [t / floor for t in seconds],
                          "action·steps/s": [batch * args.steps / t for t in seconds]}, index=names)
    threads = f"threads={torch.get_num_threads()}" if device.type == "cpu" else torch.cuda.get_device_name(device)
    print(f"B={batch} state={args.state_dim} action={args.action_dim} N={args.steps} hidden={args.hidden} "
          f"device={device.type} {threads} torch={torch.__version__}")
    print(table.to_string(float_format=lambda v: f"{v:.4g}"))
    headline = seconds[0]
    line = (f"ours ({args.activations[0]}) / floor = {headline / floor:.2f}   ours / bias-free matmuls = "
            f"{headline / bare:.2f}")
    if not args.no_reference:
        line += f"   reference / ours = {seconds[-1] / headline:.2f}"
    print(line)
    print(f"ours ({args.activations[0]}): {batch * args.steps / headline / 1e6:.2f} M action·steps/s "
          f"(B={batch}, N={args.steps}, {device.type})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=None, help="several B, one table each")
    parser.add_argument("--state-dim", type=int, default=91)
    parser.add_argument("--action-dim", type=int, default=27)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--activations", nargs="+", default=["relu", "silu"], choices=sorted(dl.diffusion.ACTIVATIONS),
                        help="ε-MLP activations to time; the first is the headline 'ours'")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--no-reference", action="store_true", help="skip the naive Diffusion-QL-style loop")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.exit(2, "sampling.py: --device cuda but torch sees no CUDA device.\n")
    for batch in args.batch_sizes or [args.batch]:
        measure(args, batch, torch.device(args.device))


if __name__ == "__main__":
    main()
