"""Do few-step samplers keep the quality of the N-step chain? Speed and reward against steps, in one run.

Trains DAC4Rec on the corner bandit at N = 100 (Diffusion-QL's 2-D bandit: four blobs paying 3, 0, 1.5 and 5)
twice: once with the Q term (``q_weight`` 5: the policy concentrates on the best blob) and once as pure
behaviour cloning (``q_weight`` 0: four modes, where coarse steps smear actions between the blobs). For each
policy it samples ``--actions`` actions with the N-step DDPM chain and with DDIM (η = 0) and DPM-Solver++(2M)
at each of ``--steps`` steps, over ``--seeds`` sampling seeds, and prints per sampler and step count: the ε
calls, the median seconds per draw, the mean true reward (averaged over seeds) and its ratio to DDPM's.
Ends with the issue's check, per policy: DDIM/DPM at 10–15 steps within 2 % of N = 100 DDPM's mean reward.
Measured (seed 0, 1 thread): the Q-guided policy passes (largest gap 1.2 %; one chain 0.078 s, 15 DPM steps
0.011 s); the four-mode BC policy is harder: DPM within 2.6 % at 10 steps and 1.2 % at 15, DDIM 6.8 % and 3.3 %
(first order: it smears actions between the blobs).

No assertions (``tests/test_agent_energy.py`` pins the 15-step case); numbers depend on the seed and the
machine.

    python benchmarks/sampler_quality.py [--steps 5 10 15 20 --actions 4000 --seeds 3 --updates 2000]
"""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import torch

import dac4rec_lite as dl
from dac4rec_lite.timing import time_samplers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, nargs="+", default=[5, 10, 15, 20], help="few-step sampler step counts")
    parser.add_argument("--n-steps", type=int, default=100, help="trained diffusion steps N")
    parser.add_argument("--actions", type=int, default=4000, help="actions drawn per sampler and seed")
    parser.add_argument("--seeds", type=int, default=3, help="sampling seeds averaged over")
    parser.add_argument("--updates", type=int, default=2000, help="training updates per agent")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (small networks: 1 is fastest)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    bandit = dl.CornerBandit()
    data = bandit.dataset(10_000, seed=args.seed)
    observations = bandit.observations(0, args.actions)
    state = torch.as_tensor(observations)
    configs = [("ddpm", None)] + [(s, k) for s in ("ddim", "dpm") for k in args.steps if k <= args.n_steps]
    tables = []
    for name, q_weight in (("Q-guided (q_weight 5)", 5.0), ("behaviour cloning (q_weight 0)", 0.0)):
        agent = dl.DAC4Rec(1, 2, n_steps=args.n_steps, q_weight=q_weight, hidden_dim=64, actor_lr=1e-2,
                           critic_lr=1e-3, seed=args.seed)
        agent.fit(data, args.updates, batch_size=1024, progress=False)
        runs = [time_samplers(agent.policy, state, lambda a: bandit.true_reward(observations, a).mean(),
                              configs=configs, repeats=3, seed=seed) for seed in range(args.seeds)]
        table = runs[0][["sampler", "eps_calls"]].copy()
        table["seconds"] = np.median([run["seconds"] for run in runs], axis=0)
        table["mean reward"] = np.mean([run["metric"] for run in runs], axis=0)
        table["× ddpm reward"] = table["mean reward"] / table["mean reward"].iloc[0]
        table.insert(0, "policy", name)
        tables.append(table)
    result = pd.concat(tables, ignore_index=True)

    print(f"corner bandit, N={args.n_steps}, {args.actions} actions × {args.seeds} seeds, "
          f"threads={torch.get_num_threads()} torch={torch.__version__}")
    print(result.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    for name, table in result.groupby("policy", sort=False):
        target = table[(table["sampler"] != "ddpm") & table["eps_calls"].between(10, 15)]
        if len(target):
            worst = (target["× ddpm reward"] - 1).abs().max()
            verdict = "yes" if worst <= 0.02 else "no"
            print(f"{name}: DDIM/DPM at 10–15 steps within 2 % of DDPM's mean reward: {verdict} "
                  f"(largest gap {100 * worst:.2f} %)")


if __name__ == "__main__":
    main()
