"""Does the critic rank actions the way the simulator's users do? GRU against SASRec (docs/backbones.md, "SASRec").

With the SASRec encoder every critic-trained method does poorly while Gaussian BC does not, and DAC4Rec's Q
term (λ L_q, Eq. 19) lifts diffusion BC by about 20 R_cumu with GRU and by nothing with SASRec. The Q term can
only help if ∇ₐQ points toward pages users click, so this script measures, on the states DAC4Rec itself visits:

* at every page, K candidate actions: ``--policy-samples`` draws of the unguided policy (what L_q and f_ψ's
  supports see) and ``--random-samples`` uniform draws in the action box;
* for each, the critic's Q(s, a) = min(Q₁, Q₂) and the simulator's expected click rate of the page it shows
  (``RecSimulator.click_probabilities`` averaged over the page: known exactly, no sampling);
* ``rank_corr``: the Spearman correlation of Q with the expected click rate within each state, averaged over
  states; ``rank_corr_policy``: the same among the policy's own samples only (the direction L_q pushes in);
  ``top1_ctr_gain``: expected click rate of Q's best candidate − the candidates' mean.

The expected click rate is the page's immediate reward rate, not Q's target (which adds the future), so a
critic need not rank by it exactly; a critic whose ranking is unrelated to it cannot teach the policy to click.
Agents are trained exactly as the RQ1 runs of ``--preset`` (same data, seeds and sizes), one torch thread.

    python scripts/critic_quality.py --encoders gru sasrec --seeds 0 1 2 3 4 --out runs/critic_quality_runs.csv

Prints each encoder's means and the paired GRU − SASRec difference with a 95 % t-interval; the run table is
kept in ``--out`` (resumed when the command is rerun).
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import pandas as pd
import torch

from dac4rec_lite.evaluation import collect_mixture, episode_metrics, rollout
from dac4rec_lite.experiments.energy_diagnosis import act_at_scale, critic_q, spearman_rows
from dac4rec_lite.experiments.methods import STUDY_SETTINGS, batch_size_for, build_agent
from dac4rec_lite.experiments.paired import mean_interval
from dac4rec_lite.experiments.runner import execute

METRICS = ("rank_corr", "rank_corr_policy", "top1_ctr_gain", "R_cumu", "CTR")


@dataclass(frozen=True)
class QualityRun:
    encoder: str
    seed: int
    preset: str = "quick"
    policy_samples: int = 8
    random_samples: int = 8
    n_users: int = 200

    @property
    def label(self) -> dict:
        return {"encoder": self.encoder, "seed": self.seed}


def score_candidates(q: np.ndarray, ctr: np.ndarray, n_policy: int) -> dict[str, np.ndarray]:
    """Per state (rows of ``q`` and ``ctr``, (S, K), the first ``n_policy`` columns the policy's samples):
    Spearman of Q with the expected click rate over all K and over the policy's samples, and the expected
    click rate of Q's best candidate minus the candidates' mean."""
    if q.shape != ctr.shape or q.ndim != 2 or not 2 <= n_policy <= q.shape[1]:
        raise ValueError(f"q and ctr must be (S, K) of one shape with 2 <= n_policy <= K; got {q.shape}, "
                         f"{ctr.shape}, n_policy={n_policy}.")
    q_t, ctr_t = torch.from_numpy(q), torch.from_numpy(ctr)
    return {"rank_corr": spearman_rows(q_t, ctr_t).numpy(),
            "rank_corr_policy": spearman_rows(q_t[:, :n_policy], ctr_t[:, :n_policy]).numpy(),
            "top1_ctr_gain": ctr[np.arange(len(q)), q.argmax(axis=1)] - ctr.mean(axis=1)}


class _Scorer:
    """The agent as a scripted policy (obs, users, rng) → actions that, before playing its unguided action,
    scores K candidate actions at every state by the critic and by the simulator."""

    def __init__(self, agent, simulator, run: QualityRun) -> None:
        self.agent, self.simulator, self.run = agent, simulator, run
        self.generator = torch.Generator().manual_seed(20_000 + run.seed)
        self.rng = np.random.default_rng(20_000 + run.seed)
        self.rows: list[dict[str, np.ndarray]] = []

    def __call__(self, obs: np.ndarray, users, rng: np.random.Generator) -> np.ndarray:
        n, run, sim = len(obs), self.run, self.simulator
        # ω = 0, the policy itself: what L_q trains and f_ψ's supports are drawn from
        drawn = [act_at_scale(self.agent, obs, 0.0, self.generator) for _ in range(run.policy_samples)]
        d = drawn[0].shape[1]
        drawn += [self.rng.uniform(-1.0, 1.0, size=(n, d)) for _ in range(run.random_samples)]
        candidates = np.stack(drawn, axis=1)  # (n, K, d)
        k = candidates.shape[1]
        q = critic_q(self.agent, np.repeat(obs, k, axis=0), candidates.reshape(n * k, d)).reshape(n, k)
        ctr = np.stack([sim.click_probabilities(users, sim.page(sim.check_actions(candidates[:, j], n))).mean(axis=1)
                        for j in range(k)], axis=1)
        self.rows.append(score_candidates(q, ctr, run.policy_samples))
        return candidates[:, 0]


def measure(run: QualityRun) -> dict:
    """Train DAC4Rec as RQ1's run for (encoder, seed) and score its critic on its own rollouts."""
    settings = STUDY_SETTINGS[run.preset]
    env = gym.make("dac4rec_lite/RecSim-v0")
    dataset = collect_mixture(env, settings["n_episodes"], seed=run.seed, progress=False)
    agent = build_agent("DAC4Rec", dataset.obs_dim, dataset.action_dim, run.preset, run.seed, run.encoder,
                        env.unwrapped.obs_layout)
    agent.fit(dataset, settings["train_steps"], batch_size=batch_size_for("DAC4Rec", run.preset), progress=False)
    scorer = _Scorer(agent, env.unwrapped.simulator, run)
    result = rollout(env, scorer, run.n_users, 20_000 + run.seed, progress=False)
    pages = {key: np.concatenate([r[key] for r in scorer.rows]) for key in scorer.rows[0]}
    metrics = episode_metrics(result["episodes"])  # of the unguided policy's own rollouts
    return {**run.label, **{key: float(np.mean(v)) for key, v in pages.items()},
            "R_cumu": metrics["R_cumu"], "CTR": metrics["CTR"], "pages": int(len(pages["rank_corr"]))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoders", nargs="+", default=["gru", "sasrec"], choices=["gru", "sasrec", "mlp"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--preset", default="quick", choices=sorted(STUDY_SETTINGS))
    parser.add_argument("--out", default="runs/critic_quality_runs.csv")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    runs = [QualityRun(e, s, args.preset) for e in args.encoders for s in args.seeds]
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    rows, failed = execute(runs, measure, table_path=args.out, workers=args.workers, progress=True)
    if failed:
        print(f"failed runs: {failed}", file=sys.stderr)
        return 1
    pd.set_option("display.width", 200)
    print(rows.groupby("encoder")[[m for m in METRICS if m in rows]].mean().round(4).to_string())
    if {"gru", "sasrec"} <= set(rows["encoder"]):
        wide = {e: rows[rows["encoder"] == e].set_index("seed").sort_index() for e in ("gru", "sasrec")}
        seeds = wide["gru"].index.intersection(wide["sasrec"].index)
        for metric in ("rank_corr", "rank_corr_policy", "top1_ctr_gain"):
            diff = wide["gru"].loc[seeds, metric] - wide["sasrec"].loc[seeds, metric]
            print(f"GRU − SASRec, {metric}: {mean_interval(diff.to_numpy())}; per seed GRU "
                  f"{wide['gru'].loc[seeds, metric].round(3).tolist()}, SASRec {wide['sasrec'].loc[seeds, metric].round(3).tolist()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
