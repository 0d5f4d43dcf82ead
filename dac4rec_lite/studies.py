"""The paper's studies (Sec. 4, RQ1–RQ5) on the built-in simulator, each a function returning a DataFrame.

Every study is a list of *runs* — (method, seed, settings) — and every run does the same thing: collect the
mixture dataset for its seed (``dl.collect_mixture``), train the method on it, evaluate it on fresh users
(``dl.evaluate``). Runs are independent, so they go to ``workers`` processes in parallel (both cores of a
laptop by default). A study's DataFrame has one row per method (and setting) with the mean and standard
deviation over seeds of R_cumu, R_avg, Length and CTR; the individual runs are in ``df.attrs["runs"]``.

========  =====================================================  ==============================
study     what varies                                             paper
========  =====================================================  ==============================
``rq1``   every method × seeds, with GRU and SASRec encoders      Tables 1–2
``rq2``   CTR by interaction-length bucket 11–20 / 21–30 / 31+   Table 3
``rq3``   the number of diffusion steps N ∈ {20, 50, 100, 200}   Fig. 3b
``rq4``   ablations: −E (no energy guidance), −A (no action      Fig. 3c
          approximation: the Q loss backpropagated through the
          reverse chain, as Diffusion-QL does)
``rq5``   DDPG and SAC × {plain, +Diffusion, +Energy, +both}      Table 4
========  =====================================================  ==============================

Presets: ``tiny`` (CI: seconds, numbers meaningless), ``quick`` (a study in ≤ 10 minutes on a 2-core CPU:
small networks, N = 10 unless the study varies N, 1000 updates, 2 seeds), ``full`` (the recipe of
``dac4rec_lite.recipes`` at full size, 5 seeds).
"""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any, Callable

import gymnasium as gym
import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .agents import DDPG, SAC, TD3, TD3BC, BehaviorCloning, DAC4Rec, DecisionTransformer
from .evaluation import collect_mixture, evaluate
from .utils import resolve_preset

__all__ = ["STUDIES", "STUDY_SETTINGS", "METHODS", "Run", "run_study", "rq1", "rq2", "rq3", "rq4", "rq5",
           "summarise_runs", "format_table", "build_agent"]

METRICS = ("R_cumu", "R_avg", "Length", "CTR")

# Sizes per preset. ``agent`` holds the settings every diffusion/actor-critic method shares.
STUDY_SETTINGS: dict[str, dict[str, Any]] = {
    "tiny": dict(seeds=(0,), n_episodes=30, train_steps=8, batch_size=32, eval_episodes=20, energy_steps=5,
                 n_values=(3, 5), agent=dict(n_steps=3, hidden_dim=16, actor_lr=1e-3, critic_lr=1e-3, gamma=0.95)),
    "quick": dict(seeds=(0, 1), n_episodes=400, train_steps=1000, batch_size=256, eval_episodes=300,
                  energy_steps=300, n_values=(20, 50, 100, 200),
                  agent=dict(n_steps=10, hidden_dim=128, actor_lr=1e-3, critic_lr=1e-3, gamma=0.95)),
    "full": dict(seeds=(0, 1, 2, 3, 4), n_episodes=3000, train_steps=20000, batch_size=256, eval_episodes=2000,
                 energy_steps=2000, n_values=(20, 50, 100, 200),
                 agent=dict(n_steps=100, hidden_dim=256, actor_lr=3e-4, critic_lr=3e-4, gamma=0.95)),
}


def _diffusion_kwargs(agent: dict[str, Any], energy_steps: int) -> dict[str, Any]:
    """A diffusion actor with energy guidance. β = 0.3, not the default 3: on the simulator's Q scale (tens of
    clicks) β = 3 made guided sampling collapse onto the critic's errors — TD3+Diffusion fell from 46.5 to
    ~35 R_cumu with energy at β = 3, and rose to 47.9 at β = 0.3 (docs/backbones.md)."""
    return dict(agent, energy_steps=energy_steps, energy_beta=0.3)


def _plain_kwargs(agent: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in agent.items() if k not in ("n_steps",)}


# method name → (class, keyword arguments from the preset's shared settings)
METHODS: dict[str, Callable[[dict[str, Any], int], tuple[type, dict[str, Any]]]] = {
    "BC": lambda a, e: (BehaviorCloning, dict(hidden_dim=a["hidden_dim"], lr=a["actor_lr"])),
    "TD3+BC": lambda a, e: (TD3BC, _plain_kwargs(a)),
    "DT": lambda a, e: (DecisionTransformer, dict(lr=a["actor_lr"])),
    "DDPG": lambda a, e: (DDPG, _plain_kwargs(a)),
    "TD3": lambda a, e: (TD3, _plain_kwargs(a)),
    "SAC": lambda a, e: (SAC, _plain_kwargs(a)),
    "DDPG+Diffusion": lambda a, e: (DDPG, dict(a, diffusion=True)),
    "SAC+Diffusion": lambda a, e: (SAC, dict(a, diffusion=True)),
    "DDPG+Energy": lambda a, e: (DDPG, dict(_plain_kwargs(a), energy=True)),
    "SAC+Energy": lambda a, e: (SAC, dict(_plain_kwargs(a), energy=True)),
    "DDPG+Diffusion+Energy": lambda a, e: (DDPG, dict(_diffusion_kwargs(a, e), diffusion=True, energy=True)),
    "SAC+Diffusion+Energy": lambda a, e: (SAC, dict(_diffusion_kwargs(a, e), diffusion=True, energy=True)),
    "DAC4Rec": lambda a, e: (DAC4Rec, dict(_diffusion_kwargs(a, e), energy=True)),
    "DAC4Rec −E": lambda a, e: (DAC4Rec, dict(a)),
    "DAC4Rec −A": lambda a, e: (DAC4Rec, dict(_diffusion_kwargs(a, e), energy=True, policy_improvement="chain")),
}

RQ1_METHODS = ("BC", "TD3+BC", "DT", "DDPG", "TD3", "SAC", "DDPG+Diffusion", "SAC+Diffusion", "DAC4Rec")
RQ2_METHODS = ("BC", "TD3+BC", "DT", "SAC+Diffusion", "DAC4Rec")
RQ4_METHODS = ("DAC4Rec", "DAC4Rec −E", "DAC4Rec −A")
RQ5_METHODS = ("DDPG", "DDPG+Diffusion", "DDPG+Energy", "DDPG+Diffusion+Energy",
               "SAC", "SAC+Diffusion", "SAC+Energy", "SAC+Diffusion+Energy")


@dataclass(frozen=True)
class Run:
    """One independent training-and-evaluation run of a study."""

    method: str
    seed: int
    preset: str
    encoder: str | None = None
    overrides: tuple[tuple[str, Any], ...] = field(default=())  # extra agent settings, e.g. (("n_steps", 50),)

    @property
    def label(self) -> dict[str, Any]:
        return {"method": self.method, "encoder": self.encoder or "none", **dict(self.overrides), "seed": self.seed}


def build_agent(method: str, obs_dim: int, action_dim: int, preset: str = "quick", seed: int = 0,
                encoder: str | None = None, obs_layout=None, **overrides: Any):
    """The agent a study trains for ``method`` (a key of ``METHODS``) at ``preset``'s sizes."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of: {', '.join(METHODS)}.")
    settings = STUDY_SETTINGS[resolve_preset(preset)]
    cls, kwargs = METHODS[method](settings["agent"], settings["energy_steps"])
    kwargs = dict(kwargs, seed=seed, **overrides)
    if encoder is not None:
        kwargs.update(encoder=encoder, obs_layout=obs_layout)
    return cls(obs_dim, action_dim, **kwargs)


def _execute(run: Run) -> dict[str, Any]:
    """Collect → train → evaluate one run (in a worker process or in this one)."""
    torch.set_num_threads(1)
    settings = STUDY_SETTINGS[run.preset]
    env = gym.make("dac4rec_lite/RecSim-v0")
    dataset = collect_mixture(env, settings["n_episodes"], seed=run.seed, progress=False)
    agent = build_agent(run.method, dataset.obs_dim, dataset.action_dim, run.preset, run.seed, run.encoder,
                        env.unwrapped.obs_layout, **dict(run.overrides))
    agent.fit(dataset, settings["train_steps"], batch_size=settings["batch_size"], progress=False)
    result = evaluate(env, agent, settings["eval_episodes"], seed=10_000 + run.seed, progress=False)
    buckets = result["ctr_by_length"].assign(**run.label)
    return {**run.label, **{m: result[m] for m in METRICS}, "ctr_by_length": buckets}


def run_study(runs: list[Run], workers: int | None = None, progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Execute ``runs`` (in ``workers`` processes; default: 1 for tiny, else up to 2). Returns one row per
    run (the run's labels and R_cumu, R_avg, Length, CTR) and the runs' Table-3 rows (CTR by length)."""
    if not runs:
        raise ValueError("a study needs at least one run.")
    if workers is None:
        workers = 1 if runs[0].preset == "tiny" else max(1, min(2, os.cpu_count() or 1))
    bar = tqdm(total=len(runs), desc="runs", disable=not progress)
    results = []
    if workers == 1:
        for run in runs:
            results.append(_execute(run))
            bar.update()
    else:
        threads = torch.get_num_threads()
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            for result in pool.map(_execute, runs):
                results.append(result)
                bar.update()
        torch.set_num_threads(threads)
    bar.close()
    buckets = pd.concat([r.pop("ctr_by_length") for r in results], ignore_index=True)
    return pd.DataFrame(results), buckets


def summarise_runs(runs: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Mean and standard deviation over seeds (``<metric>_mean``, ``<metric>_std``), one row per ``by`` group,
    in the order the groups first appear; ``attrs["runs"]`` keeps the individual runs."""
    runs = runs.copy()
    runs.attrs = {}
    grouped = runs.groupby(by, sort=False)[list(METRICS)]
    mean, std = grouped.mean(), grouped.std(ddof=0)
    summary = pd.concat({f"{m}_{stat}": frame[m] for m in METRICS for stat, frame in (("mean", mean), ("std", std))}, axis=1)
    summary = summary.reset_index()
    summary.insert(len(by), "n_seeds", grouped.size().to_numpy())
    summary.attrs["runs"] = runs
    return summary


def format_table(summary: pd.DataFrame, metrics: tuple[str, ...] = METRICS, digits: int = 2) -> pd.DataFrame:
    """``mean ± std`` strings, as the paper prints its tables."""
    keys = [c for c in summary.columns if not any(c.startswith(f"{m}_") for m in METRICS) and c != "n_seeds"]
    out = summary[keys].copy()
    out.attrs = {}
    for m in metrics:
        out[m] = [f"{mu:.{digits}f} ± {sd:.{digits}f}" for mu, sd in zip(summary[f"{m}_mean"], summary[f"{m}_std"])]
    return out


def _seeds(preset: str, seeds: tuple[int, ...] | None) -> tuple[int, ...]:
    return tuple(seeds) if seeds else STUDY_SETTINGS[preset]["seeds"]


def rq1(preset: str = "quick", seeds: tuple[int, ...] | None = None, methods: tuple[str, ...] = RQ1_METHODS,
        encoders: tuple[str, ...] = ("gru", "sasrec"), workers: int | None = None, progress: bool = True) -> pd.DataFrame:
    """Tables 1–2: every method × seeds with each sequence encoder; one row per (encoder, method)."""
    preset = resolve_preset(preset)
    runs = [Run(m, s, preset, encoder=e) for e in encoders for m in methods for s in _seeds(preset, seeds)]
    table, buckets = run_study(runs, workers, progress)
    summary = summarise_runs(table, ["encoder", "method"])
    summary.attrs["ctr_by_length"] = buckets
    return summary


def rq2(preset: str = "quick", seeds: tuple[int, ...] | None = None, methods: tuple[str, ...] = RQ2_METHODS,
        encoder: str = "gru", workers: int | None = None, progress: bool = True,
        runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Table 3: pooled CTR per interaction-length bucket (11–20, 21–30, 31+), mean ± std over seeds, one row
    per (method, bucket). Pass ``runs`` (an ``rq1`` result) to reuse its evaluations instead of training."""
    preset = resolve_preset(preset)
    if runs is not None:
        buckets = runs.attrs["ctr_by_length"]
        buckets = buckets[buckets["encoder"] == encoder]
    else:
        _, buckets = run_study([Run(m, s, preset, encoder=encoder) for m in methods for s in _seeds(preset, seeds)],
                               workers, progress)
    grouped = buckets.groupby(["method", "length_bucket"], sort=False)
    return pd.DataFrame({"CTR_mean": grouped["CTR"].mean(), "CTR_std": grouped["CTR"].std(ddof=0),
                         "n_episodes": grouped["n_episodes"].sum()}).reset_index()


def rq3(preset: str = "quick", seeds: tuple[int, ...] | None = None, n_values: tuple[int, ...] | None = None,
        workers: int | None = None, progress: bool = True) -> pd.DataFrame:
    """Fig. 3b: DAC4Rec with N diffusion steps, one row per N."""
    preset = resolve_preset(preset)
    n_values = tuple(n_values or STUDY_SETTINGS[preset]["n_values"])
    runs = [Run("DAC4Rec", s, preset, overrides=(("n_steps", n),)) for n in n_values for s in _seeds(preset, seeds)]
    return summarise_runs(run_study(runs, workers, progress)[0], ["n_steps"])


def rq4(preset: str = "quick", seeds: tuple[int, ...] | None = None, workers: int | None = None,
        progress: bool = True) -> pd.DataFrame:
    """Fig. 3c: DAC4Rec against −E (no energy guidance) and −A (no action approximation)."""
    preset = resolve_preset(preset)
    runs = [Run(m, s, preset) for m in RQ4_METHODS for s in _seeds(preset, seeds)]
    return summarise_runs(run_study(runs, workers, progress)[0], ["method"])


def rq5(preset: str = "quick", seeds: tuple[int, ...] | None = None, workers: int | None = None,
        progress: bool = True) -> pd.DataFrame:
    """Table 4: DDPG and SAC, each plain, +Diffusion, +Energy and +Diffusion+Energy."""
    preset = resolve_preset(preset)
    runs = [Run(m, s, preset) for m in RQ5_METHODS for s in _seeds(preset, seeds)]
    summary = summarise_runs(run_study(runs, workers, progress)[0], ["method"])
    summary.insert(0, "backbone", summary["method"].str.split("+").str[0])
    summary.insert(2, "diffusion", summary["method"].str.contains("Diffusion"))
    summary.insert(3, "energy", summary["method"].str.contains("Energy"))
    return summary


STUDIES: dict[str, Callable[..., pd.DataFrame]] = {"rq1": rq1, "rq2": rq2, "rq3": rq3, "rq4": rq4, "rq5": rq5}
