"""What does the action approximation buy? One training update, three ways, measured in one run.

  bc          a behaviour-cloning step only (L_d, Eq. 8): the floor of any diffusion-policy update
  dac4rec     DAC4Rec.update: critic TD step (next action through the N-step chain, no grad) + L_d + λ L_q
              with L_q on the one-step action approximation (Eq. 13–15)
  dac4rec-15  the same update with ``td_sampler="dpm", td_sample_steps=15``: line 3's next actions from
              DPM-Solver++(2M) in 15 ε passes instead of the N-step chain
  chain       a Diffusion-QL-style update: the same critic step, then L_d + λ L_q with L_q backpropagated
              through the whole N-step reverse chain

Prints median seconds per update and the ratios. No assertions: numbers depend on the machine.

    python benchmarks/training.py [--steps 100 --batch 256 --obs-dim 91 --action-dim 27 --repeats 5]
"""
from __future__ import annotations

import argparse

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100, help="diffusion steps N")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--obs-dim", type=int, default=91)
    parser.add_argument("--action-dim", type=int, default=27)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    data = random_dataset(4096, args.obs_dim, args.action_dim, args.seed)
    agent = dl.DAC4Rec(args.obs_dim, args.action_dim, n_steps=args.steps, seed=args.seed)
    fast_agent = dl.DAC4Rec(args.obs_dim, args.action_dim, n_steps=args.steps, seed=args.seed,
                            td_sampler="dpm", td_sample_steps=min(15, args.steps))
    g = torch.Generator().manual_seed(args.seed)

    def bc_step():
        batch = data.sample(args.batch, generator=g)
        loss = agent.policy.loss(batch["observations"], batch["actions"], generator=g)
        agent.actor_optimizer.zero_grad()
        loss.backward()
        agent.actor_optimizer.step()

    def dac4rec_step():
        agent.update(data.sample(args.batch, generator=g))

    def fast_dac4rec_step():
        fast_agent.update(data.sample(args.batch, generator=g))

    def chain_step():
        batch = agent._check_batch(data.sample(args.batch, generator=g))
        agent.update_critic(batch)
        dl.timing.chain_policy_update(agent, batch, g)  # Q loss backpropagated through all N steps

    bc, ours, fast, chain = (dl.timing.median_seconds(step, args.repeats) for step in (bc_step, dac4rec_step, fast_dac4rec_step, chain_step))
    table = pd.DataFrame(
        {"seconds / update": [bc, ours, fast, chain], "× bc": [1.0, ours / bc, fast / bc, chain / bc]},
        index=["bc (L_d only)", "dac4rec (action approximation)", "dac4rec, td_sampler=dpm 15 steps",
               "chain (Q loss through N steps)"],
    )
    print(f"N={args.steps} B={args.batch} obs={args.obs_dim} action={args.action_dim} "
          f"threads={torch.get_num_threads()} torch={torch.__version__}")
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))
    print(f"chain / dac4rec = {chain / ours:.2f}   chain / dac4rec-15 = {chain / fast:.2f}")


if __name__ == "__main__":
    main()
