"""How long would ``python -m dac4rec_lite study all --preset full`` take? Measured pieces, extrapolated.

A full run is: collect 3,000 logged sessions, fit 20,000 updates (B = 256, N = 100, hidden 256), for energy
methods train f_ψ (supports for 4,096 states from the N-step chain, then 2,000 steps), and evaluate 2,000
fresh users (guided sampling for energy methods). Running each piece at full size is the point of the
estimate, so this script times each piece briefly at the full sizes and scales it:

* collection: 300 sessions, × 10;
* updates: the best of ``--repeats`` fits of ``--updates`` updates, per update × 20,000 (energy methods
  train the same updates as their −E variant: f_ψ is trained after);
* f_ψ: ``fit_energy`` with 1 and 3 steps: the difference is the per-step cost, the rest the supports' cost
  (noisy: a small difference of two large times; f_ψ is a few per cent of an energy run either way);
* evaluation: ``--eval-users`` users, × 2,000 / that (linear in users up to the evaluation batch of 1,000: an
  over-estimate when the measured batch is small, since small batches cost more per user).

Each method of each study is mapped to one measured representative (printed), runs use one torch thread
each (as the studies do) and the total is given serially and on k cores (runs are independent; k cores run k
at a time). Times are the process's CPU seconds (``time.process_time``): with one thread that is the wall time
the piece takes on an idle core, and it does not grow when other work shares the machine (wall time does).

    python benchmarks/study_estimate.py [--updates 5 --repeats 2 --eval-users 100 --cores 2 8 32 128]
"""
from __future__ import annotations

import argparse
import time

import gymnasium as gym
import pandas as pd
import torch

from dac4rec_lite.agents.base import OfflineAgent
from dac4rec_lite.evaluation import collect_mixture, evaluate
from dac4rec_lite.experiments import studies
from dac4rec_lite.experiments.methods import BEHAVIOUR_LOGS, STUDY_SETTINGS, batch_size_for, build_agent

PRESET = "full"
# representative → (method, encoder, overrides); every study's method maps to one of them below
REPRESENTATIVES = {
    "plain actor-critic": ("TD3+BC", None, {}),
    "plain actor-critic, GRU": ("TD3+BC", "gru", {}),
    "diffusion actor-critic": ("SAC+Diffusion", None, {}),
    "DAC4Rec": ("DAC4Rec", None, {}),
    "DAC4Rec, GRU": ("DAC4Rec", "gru", {}),
    "DAC4Rec −A": ("DAC4Rec −A", None, {}),
    "DT": ("DT", None, {}),
}
ENERGY = {"DAC4Rec", "DAC4Rec −A", "DDPG+Energy", "SAC+Energy", "DDPG+Diffusion+Energy", "SAC+Diffusion+Energy"}
DIFFUSION = {"DDPG+Diffusion", "SAC+Diffusion", "DAC4Rec −E", "DDPG+Diffusion+Energy", "SAC+Diffusion+Energy"}


def representative(method: str, encoder: str | None) -> str:
    if method == "DT":
        return "DT"
    if method == "DAC4Rec −A":
        return "DAC4Rec −A"
    if method in ("DAC4Rec", "DAC4Rec −E"):
        return "DAC4Rec, GRU" if encoder else "DAC4Rec"
    if method in DIFFUSION:
        return "diffusion actor-critic"
    return "plain actor-critic, GRU" if encoder else "plain actor-critic"


def study_runs() -> list[tuple[str, str, str | None, int, float]]:
    """(study, method, encoder, n_steps, evaluations) for every run of ``study all`` at full."""
    seeds = STUDY_SETTINGS[PRESET]["seeds"]
    runs = []
    for encoder in ("gru", "sasrec"):
        runs += [("rq1", m, encoder, 100, 1) for m in studies.RQ1_METHODS for _ in seeds]
    # rq2 adds no runs: ``study all`` reads Table 3 from RQ1's GRU runs
    runs += [("rq3", "DAC4Rec", None, n, 1) for n in STUDY_SETTINGS[PRESET]["n_values"] for _ in seeds]
    runs += [("rq4", m, None, 100, 1) for m in studies.RQ4_METHODS for _ in seeds]
    runs += [("rq5", m, None, 100, 1) for m in studies.RQ5_METHODS for _ in seeds]
    runs += [("energy", m, None, 100, len(studies.ENERGY_SCALES)) for _ in BEHAVIOUR_LOGS
             for m in studies.ENERGY_METHODS for _ in seeds]
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--updates", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--eval-users", type=int, default=100)
    parser.add_argument("--cores", type=int, nargs="+", default=[2, 8, 32, 128])
    args = parser.parse_args()
    torch.set_num_threads(1)
    settings = STUDY_SETTINGS[PRESET]
    env = gym.make("dac4rec_lite/RecSim-v0")

    start = time.process_time()
    collect_mixture(env, settings["n_episodes"] // 10, seed=0, progress=False)
    collect = (time.process_time() - start) * 10
    data = collect_mixture(env, 1000, seed=0, progress=False)  # enough transitions to sample batches from

    rows = {}
    for name, (method, encoder, overrides) in REPRESENTATIVES.items():
        agent = build_agent(method, data.obs_dim, data.action_dim, PRESET, 0, encoder, env.unwrapped.obs_layout,
                            **overrides)
        batch = batch_size_for(method, PRESET)
        def fit(dataset, steps, **kwargs):  # the updates only (f_ψ is timed on its own below)
            return (OfflineAgent.fit(agent, dataset, steps, **kwargs) if method in ENERGY
                    else agent.fit(dataset, steps, **kwargs))

        fit(data, 1, batch_size=batch, progress=False)
        best = float("inf")
        for _ in range(args.repeats):
            t0 = time.process_time()
            fit(data, args.updates, batch_size=batch, progress=False)
            best = min(best, time.process_time() - t0)
        per_update = best / args.updates
        energy = 0.0
        if method in ENERGY:
            t0 = time.process_time()
            agent.fit_energy(data, 1, progress=False)
            one = time.process_time() - t0
            t0 = time.process_time()
            agent.fit_energy(data, 3, progress=False)
            per_step = max(0.0, (time.process_time() - t0 - one) / 2)
            energy = one - per_step + per_step * settings["energy_steps"]
        t0 = time.process_time()
        evaluate(env, agent, args.eval_users, seed=10_000, progress=False)
        per_eval = (time.process_time() - t0) * settings["eval_episodes"] / args.eval_users
        rows[name] = {"method": method, "encoder": encoder or "none", "s / update": per_update,
                      "updates (s)": per_update * settings["train_steps"], "f_ψ (s)": energy,
                      "evaluation (s)": per_eval, "collection (s)": collect}
        rows[name]["run (min)"] = (rows[name]["updates (s)"] + energy + per_eval + collect) / 60
        print(f"{name}: {rows[name]['run (min)']:.1f} min per run", flush=True)
    measured = pd.DataFrame(rows).T
    print(f"\nper-run pieces at --preset full (1 torch thread; {args.updates} updates × best of {args.repeats}, "
          f"{args.eval_users} evaluation users, 300 sessions; scaled as the docstring says)")
    print(measured.to_string(float_format=lambda v: f"{v:.3g}"))

    totals = []
    for study, method, encoder, n_steps, evaluations in study_runs():
        r = rows[representative(method, encoder)]
        diffusion_share = n_steps / 100 if method.startswith("DAC4Rec") else 1.0  # rq3: cost ∝ N (upper bound)
        minutes = (r["updates (s)"] * diffusion_share + r["f_ψ (s)"] * diffusion_share
                   + r["evaluation (s)"] * evaluations * diffusion_share + r["collection (s)"]) / 60
        totals.append({"study": study, "minutes": minutes})
    per_study = pd.DataFrame(totals).groupby("study", sort=False)["minutes"].agg(["count", "sum"])
    per_study.columns = ["runs", "serial hours"]
    per_study["serial hours"] /= 60
    print("\nstudy all --preset full, serially (hours):")
    print(per_study.to_string(float_format=lambda v: f"{v:.1f}"))
    total_hours = per_study["serial hours"].sum()
    longest = max(t["minutes"] for t in totals) / 60
    print(f"total: {int(per_study['runs'].sum())} runs, {total_hours:.1f} h serially; on k cores (k runs at a time, "
          f"never less than the longest run, {longest:.1f} h): "
          + ", ".join(f"k={k}: {max(total_hours / k, longest):.1f} h" for k in args.cores))


if __name__ == "__main__":
    main()
