"""Does the TD target need the full N-step chain? ``td_sampler="ddpm"`` against DPM-Solver++(2M) in K steps.

Line 3 of Algorithm 1 samples the next action a′ ~ π(·|s′) for the TD target. With ``td_sampler="ddpm"``
that is N ε-network calls per update (at N = 100 most of an update's cost); ``td_sampler="dpm"`` with
``td_sample_steps=K`` visits K of the N trained steps. This script trains DAC4Rec both ways on the built-in
simulator, paired by seed (the same data, the same initial weights), and reports R_cumu of each run and a 95 %
t-interval on the paired difference dpm − ddpm.

Defaults: the studies' quick settings (``dac4rec_lite.presets.table["quick"]["study"]``: its sessions,
updates, batch size, agent sizes, evaluation users and seeds), GRU encoder, but N = 100 (the default agent's N:
at the quick study's N = 10 a 15-step solver saves nothing), and ``--method "DAC4Rec −E"`` (no energy
guidance): the TD sampler acts through the critic on the policy, which −E isolates, and f_ψ's training
(support actions from the N-step chain for 4,096 states) would cost more than the updates themselves.
``--method DAC4Rec`` includes it. Each finished run is appended to ``--table`` (resumable: rerun the same
command to continue), through ``dac4rec_lite.experiments.runner.execute``.

    python benchmarks/td_sampler.py [--n-steps 100 --k 15 --updates U --seeds 0 1 2 3 4 --table PATH]
"""
from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import torch

from dac4rec_lite.evaluation import METRICS, collect_mixture, evaluate
from dac4rec_lite.experiments.methods import STUDY_SETTINGS, build_agent
from dac4rec_lite.experiments.runner import execute

PRESET = "quick"  # the studies' sizes this benchmark trains at (the one preset table: dac4rec_lite.presets)
SIZES = STUDY_SETTINGS[PRESET]

# two-sided 95 % Student-t quantiles by degrees of freedom (no scipy in the kit)
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


@dataclass(frozen=True)
class TDRun:
    method: str
    sampler: str
    k: int
    seed: int
    n_steps: int
    updates: int
    n_episodes: int
    eval_episodes: int

    @property
    def label(self):
        return {"method": self.method, "td_sampler": self.sampler,
                "td_sample_steps": self.k if self.sampler != "ddpm" else self.n_steps,
                "seed": self.seed, "n_steps": self.n_steps, "updates": self.updates}


def train_and_evaluate(run: TDRun) -> dict:
    torch.set_num_threads(1)
    env = gym.make("dac4rec_lite/RecSim-v0")
    data = collect_mixture(env, run.n_episodes, seed=run.seed, progress=False)
    extra = {"td_sampler": run.sampler, "td_sample_steps": run.k} if run.sampler != "ddpm" else {"td_sampler": "ddpm"}
    agent = build_agent(run.method, data.obs_dim, data.action_dim, PRESET, run.seed, "gru",
                        env.unwrapped.obs_layout, n_steps=run.n_steps, **extra)
    start = time.perf_counter()
    agent.fit(data, run.updates, batch_size=SIZES["batch_size"], progress=False)
    trained = time.perf_counter()
    result = evaluate(env, agent, run.eval_episodes, seed=10_000 + run.seed, progress=False)
    return {**run.label, **{m: float(result[m]) for m in METRICS},
            "train_seconds": trained - start, "eval_seconds": time.perf_counter() - trained}


def paired_interval(diff: np.ndarray) -> tuple[float, float, float]:
    """Mean of the paired differences and its 95 % t-interval."""
    n = len(diff)
    mean = float(diff.mean())
    if n < 2:
        return mean, math.nan, math.nan
    half = T975.get(n - 1, 1.96) * float(diff.std(ddof=1)) / math.sqrt(n)
    return mean, mean - half, mean + half


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", default="DAC4Rec −E", help="a studies method with a diffusion TD target")
    parser.add_argument("--n-steps", type=int, default=100)
    parser.add_argument("--k", type=int, default=15, help="steps of the DPM-Solver TD sampler")
    parser.add_argument("--updates", type=int, default=SIZES["train_steps"], help="default: %(default)s")
    parser.add_argument("--episodes", type=int, default=SIZES["n_episodes"],
                        help="logged sessions in the mixture dataset (default: %(default)s)")
    parser.add_argument("--eval-episodes", type=int, default=SIZES["eval_episodes"], help="default: %(default)s")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SIZES["seeds"]), help="default: %(default)s")
    parser.add_argument("--table", default="results/td_sampler/runs.csv")
    args = parser.parse_args()

    runs = [TDRun(args.method, sampler, args.k, seed, args.n_steps, args.updates, args.episodes, args.eval_episodes)
            for seed in args.seeds for sampler in ("ddpm", "dpm")]
    Path(args.table).parent.mkdir(parents=True, exist_ok=True)
    table, failed = execute(runs, train_and_evaluate, table_path=args.table, workers=1)
    if failed:
        print("failed runs:", ", ".join(failed))
    wide = table.pivot(index="seed", columns="td_sampler", values="R_cumu")
    print(f"{args.method}: N={args.n_steps}, dpm K={args.k}, {args.updates} updates, {args.episodes} sessions, "
          f"{args.eval_episodes} evaluation users, GRU encoder, torch threads 1")
    print(table[["td_sampler", "seed", "R_cumu", "CTR", "train_seconds", "eval_seconds"]].to_string(index=False))
    if {"ddpm", "dpm"} <= set(wide.columns):
        wide = wide.dropna()
        diff = (wide["dpm"] - wide["ddpm"]).to_numpy()
        mean, low, high = paired_interval(diff)
        spread = float(np.concatenate([wide["ddpm"], wide["dpm"]]).std(ddof=1))
        seconds = table.groupby("td_sampler")["train_seconds"].mean()
        print(f"R_cumu ddpm {wide['ddpm'].mean():.2f} ± {wide['ddpm'].std(ddof=1):.2f}, "
              f"dpm {wide['dpm'].mean():.2f} ± {wide['dpm'].std(ddof=1):.2f} (mean ± sd over {len(diff)} seeds)")
        print(f"paired difference dpm − ddpm: {mean:+.2f}, 95 % t-interval [{low:+.2f}, {high:+.2f}]; "
              f"spread of R_cumu over runs (sd) {spread:.2f}")
        print(f"training seconds per run: ddpm {seconds.get('ddpm', math.nan):.1f}, dpm {seconds.get('dpm', math.nan):.1f}")


if __name__ == "__main__":
    main()
