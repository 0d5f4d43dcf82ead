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

Beside the studies (notebook 07): ``load_saved`` / ``load_or_run`` read what ``python -m dac4rec_lite study``
saved under ``results/<preset>/`` (or run the study); ``paper_table`` holds the paper's VirtualTaobao numbers
(Tables 1–4) in the same layout and ``PAPER_PROSE`` what it says about Fig. 3b–c; ``check_claims`` /
``compare_claims`` / ``claims_summary`` test the paper's claims on any such table; ``format_summary`` prints
any of them as ``mean ± std``.
"""
from __future__ import annotations

import os
import time
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

__all__ = ["STUDIES", "STUDY_SETTINGS", "METHODS", "METHOD_BATCH_SIZE", "batch_size_for", "Run", "run_study", "rq1", "rq2", "rq3", "rq4", "rq5",
           "summarise_runs", "format_table", "build_agent", "load_saved", "load_or_run", "paper_table", "PAPER_PROSE",
           "check_claims", "compare_claims", "claims_summary", "format_summary"]

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

# The Decision Transformer samples windows of K = 10 steps: 64 windows (640 transitions) per batch, the DT
# paper's batch size. With 256 windows it cost 6–10× any other method (163 s of RQ1's 25-s-per-run budget).
METHOD_BATCH_SIZE = {"DT": 64}


def batch_size_for(method: str, preset: str) -> int:
    """The batch size a study trains ``method`` with at ``preset``."""
    return min(METHOD_BATCH_SIZE.get(method, 10**9), STUDY_SETTINGS[preset]["batch_size"])


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
    start = time.perf_counter()
    agent.fit(dataset, settings["train_steps"], batch_size=batch_size_for(run.method, run.preset), progress=False)
    trained = time.perf_counter()
    result = evaluate(env, agent, settings["eval_episodes"], seed=10_000 + run.seed, progress=False)
    buckets = result["ctr_by_length"].assign(**run.label)
    timing = {"train_seconds": trained - start, "eval_seconds": time.perf_counter() - trained}
    return {**run.label, **{m: result[m] for m in METRICS}, **timing, "ctr_by_length": buckets}


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


def format_summary(table: pd.DataFrame, digits: dict[str, int] | None = None) -> pd.DataFrame:
    """Any study table — the kit's, saved or fresh, or ``paper_table``'s — as ``mean ± std`` strings: every
    ``<metric>_mean`` column present becomes ``<metric>`` (just the mean where the std is missing, as for the
    paper's Length), ``n_seeds`` and ``n_episodes`` are dropped, and a CTR-by-length table (rq2) is turned
    into the paper's Table 3 shape (one row per method, one column per length bucket). ``digits`` per metric
    defaults to 3 for CTR and 2 otherwise."""
    digits = {"CTR": 3, **(digits or {})}
    metrics = [c[:-5] for c in table.columns if c.endswith("_mean")]
    out = table[[c for c in table.columns if not c.endswith(("_mean", "_std")) and c not in ("n_seeds", "n_episodes")]].copy()
    out.attrs = {}
    for m in metrics:
        d = digits.get(m, 2)
        stds = table[f"{m}_std"] if f"{m}_std" in table.columns else pd.Series(np.nan, index=table.index)
        out[m] = [f"{mu:.{d}f}" + (f" ± {sd:.{d}f}" if np.isfinite(sd) else "") if np.isfinite(mu) else "—"
                  for mu, sd in zip(table[f"{m}_mean"], stds)]
    if "length_bucket" in out.columns:
        out = out.pivot(index="method", columns="length_bucket", values="CTR")
        out = out.loc[list(dict.fromkeys(table["method"])), list(dict.fromkeys(table["length_bucket"]))]
        out.columns.name = None
        out = out.reset_index()
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


# ---------------------------------------------------------------------------------------------------------
# Saved results: what ``python -m dac4rec_lite study … --out results/<preset>`` wrote.

_EXPECTED_COLUMNS = {
    "rq1": ("encoder", "method", *(f"{m}_{s}" for m in METRICS for s in ("mean", "std"))),
    "rq2": ("method", "length_bucket", "CTR_mean", "CTR_std", "n_episodes"),
    "rq3": ("n_steps", *(f"{m}_{s}" for m in METRICS for s in ("mean", "std"))),
    "rq4": ("method", *(f"{m}_{s}" for m in METRICS for s in ("mean", "std"))),
    "rq5": ("backbone", "method", "diffusion", "energy", *(f"{m}_{s}" for m in METRICS for s in ("mean", "std"))),
}


def _results_folders(preset: str) -> list[str]:
    """Where ``results/<preset>`` may be: under the working directory, under its parent (a notebook runs in
    ``notebooks/``) and under the repository that holds this package (an editable install)."""
    here = os.getcwd()
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    folders = [os.path.join(base, "results", preset) for base in (here, os.path.dirname(here), package_root)]
    return list(dict.fromkeys(os.path.normpath(f) for f in folders))


def load_saved(name: str, preset: str, folder: str | os.PathLike[str] | None = None) -> pd.DataFrame | None:
    """Study ``name``'s table as the ``study`` command saved it (``<folder>/<name>.csv``), or ``None`` when
    there is none. ``folder`` defaults to the first ``results/<preset>`` found under the working directory,
    its parent, or the repository root; the folder's name is what ties saved results to a preset, so a
    ``tiny`` run never picks up ``results/quick``. ``attrs["source"]`` is the file read; ``attrs["runs"]``
    holds ``<name>_runs.csv`` (every seed) when it is there. A file without the study's columns raises
    ``ValueError`` rather than being shown as if it were that study."""
    if name not in STUDIES:
        raise ValueError(f"unknown study {name!r}; choose one of {', '.join(STUDIES)}.")
    preset = resolve_preset(preset) if folder is None else preset
    folders = [os.fspath(folder)] if folder is not None else _results_folders(preset)
    for base in folders:
        path = os.path.join(base, f"{name}.csv")
        if not os.path.isfile(path):
            continue
        table = pd.read_csv(path)
        missing = [c for c in _EXPECTED_COLUMNS[name] if c not in table.columns]
        if missing:
            raise ValueError(f"{path} is not a saved {name} table (no column {', '.join(missing)}); "
                             f"re-run `python -m dac4rec_lite study {name} --preset {preset} --out {base}`.")
        table.attrs["source"] = path
        runs_path = os.path.join(base, f"{name}_runs.csv")
        if os.path.isfile(runs_path):
            table.attrs["runs"] = pd.read_csv(runs_path)
        return table
    return None


def load_or_run(name: str, preset: str = "quick", rerun: bool = False, folder: str | os.PathLike[str] | None = None,
                **kwargs: Any) -> pd.DataFrame:
    """The saved table of study ``name`` (``load_saved``) or, when there is none or ``rerun`` is true, a fresh
    run of it at ``preset`` (``kwargs`` go to the study function). ``attrs["source"]`` says which: the file
    read, or ``"ran at preset <preset>"``. For ``rq2``, ``runs=`` (an ``rq1`` result) is reused only when it
    carries its CTR-by-length table — a fresh ``rq1`` does, one loaded from CSV does not, and then ``rq2``
    trains its own runs."""
    preset = resolve_preset(preset)
    if not rerun:
        saved = load_saved(name, preset, folder)
        if saved is not None:
            return saved
    if name == "rq2" and kwargs.get("runs") is not None and "ctr_by_length" not in kwargs["runs"].attrs:
        kwargs = {k: v for k, v in kwargs.items() if k != "runs"}
    table = STUDIES[name](preset, **kwargs)
    table.attrs["source"] = f"ran at preset {preset}"
    return table


# ---------------------------------------------------------------------------------------------------------
# What the paper reports (VirtualTaobao, the paper's online simulator), transcribed from its Section 4;
# "lines" below are line numbers in the plain-text version of the paper the kit was built from.

def _paper_rq1() -> pd.DataFrame:
    # Tables 1 (GRU) and 2 (SASRec), column "VirtualTB": R_cumu ± std, R_avg ± std, Length (no std printed).
    gru = {  # paper text lines 379–386
        "DDPG": (74.6534, 24.22, 5.6470, 1.83, 13.22), "SAC": (72.3142, 22.89, 5.2063, 1.65, 13.89),
        "TD3": (75.2452, 22.42, 6.0432, 1.80, 12.45), "DT": (78.8762, 23.99, 5.9706, 1.83, 13.20),
        "DT4Rec": (76.6781, 22.53, 5.5243, 1.62, 13.88), "CDT4Rec": (79.7825, 22.54, 5.6516, 1.59, 14.12),
        "EDT4Rec": (79.9812, 21.42, 5.7211, 1.53, 13.98), "DAC4Rec": (81.5261, 21.29, 6.1529, 1.61, 13.25)}
    sasrec = {  # paper text lines 402–409
        "DDPG": (74.6534, 24.22, 5.6474, 1.83, 13.22), "SAC": (73.4271, 21.92, 5.5125, 1.65, 13.32),
        "TD3": (75.2452, 22.42, 6.0442, 1.80, 12.45), "DT": (78.8762, 23.99, 5.9753, 1.83, 13.20),
        "DT4Rec": (76.7871, 22.47, 5.4420, 1.59, 14.11), "CDT4Rec": (79.2101, 22.31, 5.6498, 1.59, 14.02),
        "EDT4Rec": (79.6651, 20.44, 5.6741, 1.46, 14.04), "DAC4Rec": (81.5261, 21.29, 6.1532, 1.61, 13.25)}
    rows = [{"encoder": encoder, "method": method, "R_cumu_mean": r, "R_cumu_std": r_sd, "R_avg_mean": a,
             "R_avg_std": a_sd, "Length_mean": length, "Length_std": float("nan")}
            for encoder, table in (("gru", gru), ("sasrec", sasrec)) for method, (r, r_sd, a, a_sd, length) in table.items()]
    return pd.DataFrame(rows)


def _paper_rq2() -> pd.DataFrame:
    # Table 3 (paper text lines 442–445): Avg. CTR ± std per interaction-length bucket.
    table = {"DT4Rec": ((0.721, 0.023), (0.602, 0.044), (0.545, 0.028)),
             "CDT4Rec": ((0.752, 0.043), (0.623, 0.041), (0.564, 0.039)),
             "EDT4Rec": ((0.741, 0.050), (0.625, 0.037), (0.587, 0.042)),
             "DAC4Rec": ((0.803, 0.029), (0.724, 0.030), (0.702, 0.022))}
    return pd.DataFrame([{"method": method, "length_bucket": bucket, "CTR_mean": mean, "CTR_std": std,
                          "n_episodes": float("nan")}
                         for method, cells in table.items() for bucket, (mean, std) in zip(("11-20", "21-30", "31+"), cells)])


def _paper_rq5() -> pd.DataFrame:
    # Table 4 (paper text lines 468–475): Avg. CTR ± std.
    table = {"DDPG": (0.7877, 0.0625), "DDPG+Diffusion": (0.8665, 0.0453), "DDPG+Energy": (0.7928, 0.0538),
             "DDPG+Diffusion+Energy": (0.8771, 0.0248), "SAC": (0.6824, 0.0787), "SAC+Diffusion": (0.7927, 0.0656),
             "SAC+Energy": (0.7424, 0.0431), "SAC+Diffusion+Energy": (0.8455, 0.0398)}
    return pd.DataFrame([{"backbone": m.split("+")[0], "method": m, "diffusion": "Diffusion" in m, "energy": "Energy" in m,
                          "policy": "deterministic" if m.startswith("DDPG") else "stochastic", "CTR_mean": mean,
                          "CTR_std": std} for m, (mean, std) in table.items()])


# Fig. 3b and 3c are plots without printed numbers; the paper's text says what they show.
PAPER_PROSE = {
    "rq3": "Fig. 3b plots DAC4Rec's average CTR over 100,000 timesteps on VirtualTaobao for N ∈ {20, 50, 100, 200}, "
           "with no numbers printed (Fig. 3 caption). Sec. 4.5: \"as N increases, the performance "
           "becomes progressively more stable, with a noticeable reduction in variance\"; \"N = 100 achieves the best "
           "overall performance\"; \"While N = 200 shows slightly higher stability, its gains in performance are "
           "marginal compared to N = 100\".",
    "rq4": "Fig. 3c plots the average CTR over 100,000 timesteps of DAC4Rec, DAC4Rec-E (no energy guidance) and "
           "DAC4Rec-A (no action approximation), with no numbers printed (Fig. 3 caption). Sec. 4.6: "
           "\"action approximation significantly contributes to the final performance\"; \"energy guidance "
           "shows limited improvement, aligning with its design purpose to enhance stochastic policies rather than "
           "deterministic ones like TD3\".",
}


def paper_table(name: str) -> pd.DataFrame | None:
    """The paper's numbers for study ``name`` on VirtualTaobao, in the kit's column layout (``<metric>_mean``,
    ``<metric>_std``; the paper's "Ours" is ``DAC4Rec``), or ``None`` for rq3 and rq4, whose figures print
    no numbers (``PAPER_PROSE`` says what they show). rq1: Tables 1–2 (R_cumu, R_avg, Length; no CTR, no
    std for Length); rq2: Table 3; rq5: Table 4 (CTR only). ``attrs["caption"]`` names the source."""
    builders = {"rq1": (_paper_rq1, "Tables 1 (GRU) and 2 (SASRec), VirtualTB column"),
                "rq2": (_paper_rq2, "Table 3, Avg. CTR by interaction length"),
                "rq5": (_paper_rq5, "Table 4, Avg. CTR")}
    if name not in STUDIES:
        raise ValueError(f"unknown study {name!r}; choose one of {', '.join(STUDIES)}.")
    if name not in builders:
        return None
    build, caption = builders[name]
    table = build()
    table.attrs["caption"] = f"paper (VirtualTaobao): {caption}"
    return table


# ---------------------------------------------------------------------------------------------------------
# The paper's claims, checked on any table in the kit's layout (the paper's own numbers included).

@dataclass(frozen=True)
class _Cell:
    """One number with its spread over seeds, for a verdict's evidence."""

    label: str
    mean: float
    std: float

    def __str__(self) -> str:
        return f"{self.label} {self.mean:.3g}" + (f" ± {self.std:.2g}" if np.isfinite(self.std) else "")


def _cell(table: pd.DataFrame, metric: str, label: str, **where: Any) -> _Cell | None:
    rows = table
    for column, value in where.items():
        if column not in rows.columns:
            return None
        rows = rows[rows[column] == value]
    if len(rows) != 1 or f"{metric}_mean" not in rows.columns or not np.isfinite(rows[f"{metric}_mean"].iloc[0]):
        return None
    std = rows[f"{metric}_std"].iloc[0] if f"{metric}_std" in rows.columns else float("nan")
    return _Cell(label, float(rows[f"{metric}_mean"].iloc[0]), float(std))


def _greater(a: _Cell | None, b: _Cell | None) -> tuple[bool | None, str, bool]:
    """Is a > b; the evidence; and whether the gap is within the seeds' noise (√(sd_a² + sd_b²))."""
    if a is None or b is None:
        return None, "not measured", False
    noise = float(np.hypot(a.std, b.std)) if np.isfinite(a.std) and np.isfinite(b.std) else 0.0
    return a.mean > b.mean, f"{a} vs {b}", abs(a.mean - b.mean) < noise


def _verdict(holds: bool | None, within_noise: bool) -> str:
    if holds is None:
        return "n/a"
    return ("yes" if holds else "no") + (" (within noise)" if within_noise else "")


def _best_claims(table: pd.DataFrame, metric: str, method: str, where: dict[str, Any]) -> tuple[bool | None, str, bool]:
    rows = table
    for column, value in where.items():
        rows = rows[rows[column] == value]
    rows = rows[np.isfinite(rows[f"{metric}_mean"])] if f"{metric}_mean" in rows.columns else rows.iloc[:0]
    if method not in set(rows["method"]) or len(rows) < 2:
        return None, "not measured", False
    target = _cell(rows, metric, method, method=method)
    rival_row = rows[rows["method"] != method].sort_values(f"{metric}_mean").iloc[-1]
    return _greater(target, _cell(rows, metric, rival_row["method"], method=rival_row["method"]))


def _gap(a: _Cell | None, b: _Cell | None, label: str) -> _Cell | None:
    if a is None or b is None:
        return None
    return _Cell(label, a.mean - b.mean, float(np.hypot(a.std, b.std)))


PAPER_RQ1_BASELINES = ("DDPG", "SAC", "TD3", "DT")  # the baselines of Tables 1–2 that the kit also has


def _rq1_claims(table: pd.DataFrame) -> list[tuple[str, str, tuple[bool | None, str, bool]]]:
    claims = []
    for encoder in ("gru", "sasrec"):
        label = "GRU" if encoder == "gru" else "SASRec"
        of_paper = table[table["method"].isin(("DAC4Rec", *PAPER_RQ1_BASELINES))]
        for metric in ("R_cumu", "R_avg"):
            claims.append((f"DAC4Rec has the highest {metric} of DDPG, SAC, TD3, DT ({label})", metric,
                           _best_claims(of_paper, metric, "DAC4Rec", {"encoder": encoder})))
        for metric in ("R_cumu", "R_avg"):
            claims.append((f"DAC4Rec has the highest {metric} of all methods ({label})", metric,
                           _best_claims(table, metric, "DAC4Rec", {"encoder": encoder})))
    return claims


def _rq2_claims(table: pd.DataFrame) -> list[tuple[str, str, tuple[bool | None, str, bool]]]:
    baseline = "DT" if "DT" in set(table["method"]) else "DT4Rec"  # the paper's Table 3 has DT4Rec, the kit DT
    buckets = list(dict.fromkeys(table["length_bucket"]))
    claims = []
    for bucket in buckets:
        claims.append((f"DAC4Rec has a higher CTR than the DT baseline at length {bucket}", "CTR",
                       _greater(_cell(table, "CTR", "DAC4Rec", method="DAC4Rec", length_bucket=bucket),
                                _cell(table, "CTR", baseline, method=baseline, length_bucket=bucket))))
    for bucket in buckets:
        claims.append((f"DAC4Rec has the highest CTR of all methods at length {bucket}", "CTR",
                       _best_claims(table, "CTR", "DAC4Rec", {"length_bucket": bucket})))
    first, last = buckets[0], buckets[-1]
    drops = {m: _gap(_cell(table, "CTR", m, method=m, length_bucket=last),
                     _cell(table, "CTR", m, method=m, length_bucket=first), f"{m} {last} − {first}")
             for m in ("DAC4Rec", baseline)}
    claims.append((f"DAC4Rec's CTR falls less than the DT baseline's from {first} to {last}", "CTR",
                   _greater(drops["DAC4Rec"], drops[baseline])))
    return claims


def _rq3_claims(table: pd.DataFrame) -> list[tuple[str, str, tuple[bool | None, str, bool]]]:
    claims = []
    n_values = sorted(int(n) for n in table["n_steps"])
    for metric in ("CTR", "R_cumu"):
        if 100 in n_values and len(n_values) > 1:
            labelled = table.assign(method=table["n_steps"].map(lambda n: f"N={int(n)}"))
            holds = _best_claims(labelled, metric, "N=100", {})
        else:
            holds = (None, f"N = 100 not in this preset's N values {n_values}", False)
        claims.append(("N = 100 gives the best result", metric, holds))
        if len(n_values) > 1:
            small = _cell(table, metric, f"N={n_values[0]}", n_steps=n_values[0])
            large = _cell(table, metric, f"N={n_values[-1]}", n_steps=n_values[-1])
            seeds = int(table["n_seeds"].min()) if "n_seeds" in table.columns else 0
            if seeds < 2:
                holds = (None, f"{seeds} seed: no spread to compare", False)
            else:
                holds = (large.std < small.std, f"std {large.std:.2g} at N={n_values[-1]} vs {small.std:.2g} at "
                                                f"N={n_values[0]} ({seeds} seeds)", False)
        else:
            holds = (None, "one N value", False)
        claims.append(("the spread over seeds shrinks as N grows", metric, holds))
    return claims


def _rq4_claims(table: pd.DataFrame) -> list[tuple[str, str, tuple[bool | None, str, bool]]]:
    claims = []
    for metric in ("CTR", "R_cumu"):
        full = _cell(table, metric, "DAC4Rec", method="DAC4Rec")
        no_energy = _cell(table, metric, "−E", method="DAC4Rec −E")
        no_approx = _cell(table, metric, "−A", method="DAC4Rec −A")
        claims.append(("action approximation helps: DAC4Rec beats −A", metric, _greater(full, no_approx)))
        claims.append(("energy guidance helps (a little): DAC4Rec beats −E", metric, _greater(full, no_energy)))
        claims.append(("approximation matters more than energy: gap to −A > gap to −E", metric,
                       _greater(_gap(full, no_approx, "gap to −A"), _gap(full, no_energy, "gap to −E"))))
    return claims


def _rq5_claims(table: pd.DataFrame) -> list[tuple[str, str, tuple[bool | None, str, bool]]]:
    claims = []
    for metric in ("CTR", "R_cumu"):
        cells = {m: _cell(table, metric, m, method=m) for m in RQ5_METHODS}
        for backbone in ("DDPG", "SAC"):
            plain = cells[backbone]
            for plugin in ("Diffusion", "Energy"):
                claims.append((f"+{plugin} improves {backbone}", metric, _greater(cells[f"{backbone}+{plugin}"], plain)))
            both = f"{backbone}+Diffusion+Energy"
            rivals = table[table["method"].isin([backbone, f"{backbone}+Diffusion", f"{backbone}+Energy", both])]
            claims.append((f"{both} is the best {backbone} variant", metric, _best_claims(rivals, metric, both, {})))
        claims.append(("energy guidance helps SAC more than DDPG", metric,
                       _greater(_gap(cells["SAC+Energy"], cells["SAC"], "SAC gain"),
                                _gap(cells["DDPG+Energy"], cells["DDPG"], "DDPG gain"))))
    return claims


_CLAIMS = {"rq1": _rq1_claims, "rq2": _rq2_claims, "rq3": _rq3_claims, "rq4": _rq4_claims, "rq5": _rq5_claims}


def check_claims(name: str, table: pd.DataFrame, noise: bool = True) -> pd.DataFrame:
    """The paper's claims for study ``name`` checked on ``table`` (a study's result, saved or fresh, or
    ``paper_table(name)``). One row per claim and metric: ``claim``, ``metric``, ``verdict`` ("yes", "no",
    either with "(within noise)" when ``noise`` and the gap is smaller than √(sd₁² + sd₂²) of the seeds, or
    "n/a" when the table cannot answer it — a method, bucket or N it does not have, or one seed where a
    spread is needed) and ``evidence`` (the numbers compared). Claims about RQ3–RQ5 are checked on CTR, the
    paper's metric there, and on R_cumu, what the kit's simulator rewards. The DT baseline of RQ2 is the
    kit's DT, or DT4Rec in the paper's Table 3."""
    if name not in _CLAIMS:
        raise ValueError(f"unknown study {name!r}; choose one of {', '.join(_CLAIMS)}.")
    rows = [{"claim": claim, "metric": metric, "verdict": _verdict(holds, noisy and noise), "evidence": evidence}
            for claim, metric, (holds, evidence, noisy) in _CLAIMS[name](table)]
    return pd.DataFrame(rows, columns=["claim", "metric", "verdict", "evidence"])


def compare_claims(name: str, table: pd.DataFrame) -> pd.DataFrame:
    """``check_claims`` on ``table`` beside what the paper reports for the same claims: ``paper`` is the
    verdict on the paper's printed numbers (``paper_table``; its ± is not said to be a spread over seeds, so
    no noise test), "yes (text)" where the paper states the claim about a figure without numbers (Fig. 3b,
    3c; CTR), or "not reported" (the paper gives no R_cumu for RQ3–RQ5, no CTR in Tables 1–2). Columns:
    ``claim``, ``metric``, ``paper``, ``here``, ``evidence`` (here)."""
    ours = check_claims(name, table)
    printed = paper_table(name)
    if printed is not None:
        paper = check_claims(name, printed, noise=False).set_index(["claim", "metric"])["verdict"]
        paper = paper.replace("n/a", "not reported")
    else:
        paper = pd.Series("not reported", index=pd.MultiIndex.from_frame(ours[["claim", "metric"]]))
        paper[paper.index.get_level_values("metric") == "CTR"] = "yes (text)"
    verdicts = [paper.get((c, m), "not reported") for c, m in zip(ours["claim"], ours["metric"])]
    return pd.DataFrame({"claim": ours["claim"], "metric": ours["metric"], "paper": verdicts,
                         "here": ours["verdict"], "evidence": ours["evidence"]})


def claims_summary(results: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """How many of the paper's claims hold in ``results`` (study name → table), one row per study: the
    claims checked (``compare_claims``), and how many hold here beyond the seeds' noise, hold within it,
    fail within it, fail beyond it, or cannot be answered at this preset (n/a)."""
    rows = []
    for name, table in results.items():
        here = compare_claims(name, table)["here"]
        rows.append({"study": name, "claims": len(here), "yes": int((here == "yes").sum()),
                     "yes (within noise)": int((here == "yes (within noise)").sum()),
                     "no (within noise)": int((here == "no (within noise)").sum()),
                     "no": int((here == "no").sum()), "n/a": int((here == "n/a").sum())})
    return pd.DataFrame(rows)
