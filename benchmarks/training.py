"""What does the action approximation buy? One training update, three ways, measured in one run.

  bc          a behaviour-cloning step only (L_d, Eq. 8): the floor of any diffusion-policy update
  dac4rec     DAC4Rec.update with td_sampler="ddpm": critic TD step (next action through the N-step chain, no
              grad) + L_d + λ L_q
              with L_q on the one-step action approximation (Eq. 13–15)
  dac4rec-15  the same update with ``td_sampler="dpm", td_sample_steps=15``: line 3's next actions from
              DPM-Solver++(2M) in 15 ε passes instead of the N-step chain
  chain       a Diffusion-QL-style update: the same critic step, then L_d + λ L_q with L_q backpropagated
              through the whole N-step reverse chain

Prints median seconds per update and the ratios. Then, for every agent the studies train — DAC4Rec (its
default ``td_sampler="auto"``, DPM-Solver in 15 steps at N ≥ 30, and the full ``"ddpm"`` chain), DDPG / TD3 /
SAC plain and +Diffusion, BC, TD3+BC and the Decision Transformer — the fit time per 1,000 updates, each agent built with its defaults at these sizes and
timed through ``agent.fit`` (best of ``--repeats`` fits of ``--updates`` updates, scaled to 1,000), as a ratio
to TD3+BC in the same run. The DT trains on 64 windows of 10 steps per batch, as the studies do. No
assertions: numbers depend on the machine.

    python benchmarks/training.py [--steps 100 --batch 256 --obs-dim 91 --action-dim 27 --repeats 5]
                                  [--updates 20] [--agents DAC4Rec TD3+BC ...] [--device cpu|cuda] [--threads 1]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch

import dac4rec_lite as dl


def random_dataset(n: int, obs_dim: int, action_dim: int, seed: int) -> dl.OfflineDataset:
    rng = np.random.default_rng(seed)
    obs = rng.standard_normal((n, obs_dim)).astype(np.float32)
    return dl.OfflineDataset(
        observations=obs, actions=rng.uniform(-1, 1, (n, action_dim)).astype(np.float32),
        rewards=rng.uniform(0, 1, n).astype(np.float32), next_observations=np.roll(obs, 1, axis=0),
        terminals=(rng.uniform(size=n) < 0.05).astype(np.float32),
    )


# name → (class, extra keyword arguments); every agent gets n_steps where it has a diffusion policy
AGENTS = {
    "DAC4Rec": (dl.DAC4Rec, dict(diffusion=None)),
    "DAC4Rec, td_sampler=ddpm": (dl.DAC4Rec, dict(diffusion=None, td_sampler="ddpm")),
    "DDPG": (dl.DDPG, {}),
    "TD3": (dl.TD3, {}),
    "SAC": (dl.SAC, {}),
    "DDPG+Diffusion": (dl.DDPG, dict(diffusion=True)),
    "TD3+Diffusion": (dl.TD3, dict(diffusion=True)),
    "SAC+Diffusion": (dl.SAC, dict(diffusion=True)),
    "BC": (dl.BehaviorCloning, {}),
    "TD3+BC": (dl.TD3BC, {}),
    "DT": (dl.DecisionTransformer, {}),
}
REFERENCE = "TD3+BC"
WINDOW_BATCH = {"DT": 64}  # windows per batch, as the studies train it


def build(name: str, args: argparse.Namespace):
    cls, extra = AGENTS[name]
    kwargs = {k: v for k, v in extra.items() if k != "diffusion"}
    if "diffusion" in extra:  # a diffusion policy: N steps (DPM's K at most N)
        kwargs["n_steps"] = args.steps
        if "td_sample_steps" in kwargs:
            kwargs["td_sample_steps"] = min(kwargs["td_sample_steps"], args.steps)
        if extra["diffusion"]:
            kwargs["diffusion"] = True
    return cls(args.obs_dim, args.action_dim, seed=args.seed, device=args.device, **kwargs)


def fit_seconds_per_1000(name: str, data: dl.OfflineDataset, args: argparse.Namespace) -> float:
    """Best of ``repeats`` fits of ``updates`` updates (after a 2-update warm-up fit), per 1,000 updates."""
    agent = build(name, args)
    batch = min(WINDOW_BATCH.get(name, args.batch), args.batch)
    agent.fit(data, 2, batch_size=batch, progress=False)
    best = float("inf")
    for _ in range(args.repeats):
        if args.device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        agent.fit(data, args.updates, batch_size=batch, progress=False)
        if args.device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best / args.updates * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100, help="diffusion steps N")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--obs-dim", type=int, default=91)
    parser.add_argument("--action-dim", type=int, default=27)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--updates", type=int, default=20, help="updates per timed fit (scaled to 1,000)")
    parser.add_argument("--agents", nargs="+", default=list(AGENTS), choices=list(AGENTS), metavar="AGENT",
                        help=f"agents of the per-1,000-updates table (default: all: {', '.join(AGENTS)})")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1, as each study run trains; on a busy machine more "
                             "threads can be many times slower)")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.exit(2, "training.py: --device cuda but torch sees no CUDA device.\n")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    data = random_dataset(4096, args.obs_dim, args.action_dim, args.seed)
    agent = dl.DAC4Rec(args.obs_dim, args.action_dim, n_steps=args.steps, seed=args.seed, device=args.device,
                       td_sampler="ddpm")
    fast_agent = dl.DAC4Rec(args.obs_dim, args.action_dim, n_steps=args.steps, seed=args.seed, device=args.device,
                            td_sampler="dpm", td_sample_steps=min(15, args.steps))
    g = torch.Generator(device=device).manual_seed(args.seed)

    def sample():
        return data.sample(args.batch, generator=g, device=device)

    def synced(step):
        def run():
            step()
            if device.type == "cuda":
                torch.cuda.synchronize()
        return run

    def bc_step():
        batch = sample()
        loss = agent.policy.loss(batch["observations"], batch["actions"], generator=g)
        agent.actor_optimizer.zero_grad()
        loss.backward()
        agent.actor_optimizer.step()

    def dac4rec_step():
        agent.update(sample())

    def fast_dac4rec_step():
        fast_agent.update(sample())

    def chain_step():
        batch = agent.check_batch(sample())
        agent.update_critic(batch)
        dl.timing.chain_policy_update(agent, batch, g)  # Q loss backpropagated through all N steps

    bc, ours, fast, chain = (dl.timing.median_seconds(synced(step), args.repeats)
                             for step in (bc_step, dac4rec_step, fast_dac4rec_step, chain_step))
    table = pd.DataFrame(
        {"seconds / update": [bc, ours, fast, chain], "× bc": [1.0, ours / bc, fast / bc, chain / bc]},
        index=["bc (L_d only)", "dac4rec (action approximation)", "dac4rec, td_sampler=dpm 15 steps",
               "chain (Q loss through N steps)"],
    )
    where = f"threads={torch.get_num_threads()}" if device.type == "cpu" else torch.cuda.get_device_name(device)
    print(f"N={args.steps} B={args.batch} obs={args.obs_dim} action={args.action_dim} "
          f"device={device.type} {where} torch={torch.__version__}")
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))
    print(f"chain / dac4rec = {chain / ours:.2f}   chain / dac4rec-15 = {chain / fast:.2f}")

    names = list(dict.fromkeys([*args.agents, REFERENCE] if REFERENCE not in args.agents else args.agents))
    seconds = {name: fit_seconds_per_1000(name, data, args) for name in names}
    fits = pd.DataFrame({"fit seconds / 1,000 updates": seconds,
                         f"× {REFERENCE}": {n: s / seconds[REFERENCE] for n, s in seconds.items()}})
    print(f"\nfit time per 1,000 updates (best of {args.repeats} fits of {args.updates} updates; defaults at "
          f"N={args.steps}, B={args.batch}, DT {WINDOW_BATCH['DT']} windows)")
    print(fits.to_string(float_format=lambda v: f"{v:.2f}"))


if __name__ == "__main__":
    main()
