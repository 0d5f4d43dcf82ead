"""The paper's studies (Sec. 4, RQ1–RQ5) and the energy study on the built-in simulator, each a function
returning a DataFrame.

Every study is a list of *runs* — (method, seed, settings) — and every run does the same thing: collect a
behaviour log for its seed (``dl.collect_mixture``), train the method on it, evaluate it on fresh users
(``dl.evaluate``): ``experiments.methods.execute_run``. Runs are independent, so ``experiments.runner``
fans them out (local processes by default, or a Ray cluster with ``backend="ray"``), appends each finished
row to the study's run table (``table_path``, resumed when rerun) and retries a failed run once. A study's
DataFrame has one row per method (and setting) with the mean and standard deviation over seeds of R_cumu,
R_avg, Length and CTR; the individual runs are in ``df.attrs["runs"]``, from which
``experiments.paired`` computes paired differences with 95 % intervals.

==========  =====================================================  ==============================
study       what varies                                             paper
==========  =====================================================  ==============================
``rq1``     every method × seeds, with GRU and SASRec encoders      Tables 1–2
``rq2``     CTR by interaction-length bucket 11–20 / 21–30 / 31+   Table 3
``rq3``     the number of diffusion steps N ∈ {20, 50, 100, 200}   Fig. 3b
``rq4``     ablations: −E (no energy guidance), −A (no action      Fig. 3c
            approximation: the Q loss backpropagated through the
            reverse chain, as Diffusion-QL does)
``rq5``     DDPG and SAC × {plain, +Diffusion, +Energy, +both}      Table 4
``energy``  the guidance scale (0 … 4) × the behaviour log, for     (the kit's question: when does
            DAC4Rec and DDPG+Diffusion+Energy                        guidance help here?)
==========  =====================================================  ==============================

Sizes per preset are ``dac4rec_lite.presets.table[preset]["study"]`` (``STUDY_SETTINGS``).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import pandas as pd

from ..evaluation import LENGTH_BUCKETS
from ..presets import resolve_preset
from .methods import (BEHAVIOUR_LOGS, METRICS, STUDY_SETTINGS, EnergyRun, Run, bucket_key, execute_run,
                      scale_column)
from .paired import mean_interval, paired_contrast

__all__ = ["STUDIES", "RQ1_METHODS", "RQ2_METHODS", "RQ4_METHODS", "RQ5_METHODS", "ENERGY_METHODS",
           "ENERGY_SCALES", "run_study", "summarise_runs", "bucket_runs", "energy_runs_long", "energy_table", "energy_summary",
           "rq1", "rq2", "rq3", "rq4", "rq5", "energy"]

RQ1_METHODS = ("BC", "TD3+BC", "DT", "DDPG", "TD3", "SAC", "DDPG+Diffusion", "SAC+Diffusion", "DAC4Rec")
RQ2_METHODS = ("BC", "TD3+BC", "DT", "SAC+Diffusion", "DAC4Rec")
RQ4_METHODS = ("DAC4Rec", "DAC4Rec −E", "DAC4Rec −A")
RQ5_METHODS = ("DDPG", "DDPG+Diffusion", "DDPG+Energy", "DDPG+Diffusion+Energy",
               "SAC", "SAC+Diffusion", "SAC+Energy", "SAC+Diffusion+Energy")
ENERGY_METHODS = ("DAC4Rec", "DDPG+Diffusion+Energy")
ENERGY_SCALES = (0.0, 0.5, 1.0, 2.0, 4.0)


def run_study(runs: Sequence[Run], workers: int | None = None, progress: bool = True, *,
              table_path: str | None = None, backend: str = "local", address: str | None = None,
              threads_per_run: int = 1, num_gpus: float = 0.0) -> pd.DataFrame:
    """Execute ``runs`` with ``experiments.runner.execute`` (``workers`` local processes, default 1 at tiny
    and up to 2 otherwise; or Ray). With ``table_path`` the run table is resumed and appended to. Returns
    one flat row per finished run; ``attrs["failed"]`` names the runs that failed twice (the others go on).
    Raises ``RuntimeError`` when no run finished."""
    from .runner import execute  # the runner imports Ray only for backend="ray"

    runs = list(runs)
    if not runs:
        raise ValueError("a study needs at least one run.")
    if workers is None and backend == "local":
        workers = 1 if runs[0].preset == "tiny" else None
    table, failed = execute(runs, execute_run, table_path=table_path, backend=backend, address=address,
                            workers=workers, threads_per_run=threads_per_run, num_gpus=num_gpus, progress=progress)
    if table.empty:
        raise RuntimeError(f"every run of the study failed ({'; '.join(failed)}); see the messages above.")
    table.attrs = {"failed": list(failed)}
    return table


def summarise_runs(runs: pd.DataFrame, by: list[str], metrics: Sequence[str] = METRICS) -> pd.DataFrame:
    """Mean and standard deviation over seeds (``<metric>_mean``, ``<metric>_std``), one row per ``by`` group,
    in the order the groups first appear; ``attrs["runs"]`` keeps the individual runs."""
    runs = runs.copy()
    failed = runs.attrs.get("failed", [])
    runs.attrs = {}
    grouped = runs.groupby(by, sort=False)[list(metrics)]
    mean, std = grouped.mean(), grouped.std(ddof=0)
    summary = pd.concat({f"{m}_{stat}": frame[m] for m in metrics for stat, frame in (("mean", mean), ("std", std))}, axis=1)
    summary = summary.reset_index()
    summary.insert(len(by), "n_seeds", grouped.size().to_numpy())
    summary.attrs["runs"] = runs
    if failed:
        summary.attrs["failed"] = failed
    return summary


def _seeds(preset: str, seeds: Sequence[int] | None) -> tuple[int, ...]:
    return tuple(seeds) if seeds else STUDY_SETTINGS[preset]["seeds"]


def _execution(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments a study passes on to ``run_study``."""
    allowed = ("table_path", "backend", "address", "threads_per_run", "num_gpus")
    unknown = [k for k in kwargs if k not in allowed]
    if unknown:
        raise TypeError(f"unexpected argument(s) {', '.join(unknown)}; a study also takes {', '.join(allowed)}.")
    return kwargs


def rq1(preset: str = "quick", seeds: Sequence[int] | None = None, methods: Sequence[str] = RQ1_METHODS,
        encoders: Sequence[str] = ("gru", "sasrec"), workers: int | None = None, progress: bool = True,
        device: str = "cpu", **execution: Any) -> pd.DataFrame:
    """Tables 1–2: every method × seeds with each sequence encoder; one row per (encoder, method)."""
    preset = resolve_preset(preset)
    runs = [Run(m, s, preset, encoder=e, device=device) for e in encoders for m in methods for s in _seeds(preset, seeds)]
    return summarise_runs(run_study(runs, workers, progress, **_execution(execution)), ["encoder", "method"])


def bucket_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Flat run rows (``CTR_11_20``, ``episodes_11_20``, … columns) as one row per run and length bucket:
    the run's label columns, ``length_bucket``, ``CTR``, ``n_episodes``, ``clicks``, ``shown``."""
    labels = [c for c in ("log", "method", "encoder", "seed") if c in runs.columns]
    parts = []
    for low, high in LENGTH_BUCKETS:
        bucket = f"{low}-{high}" if high is not None else f"{low}+"
        key = bucket_key(bucket)
        missing = [f"{stat}_{key}" for stat in ("CTR", "episodes") if f"{stat}_{key}" not in runs.columns]
        if missing:
            raise ValueError(f"these runs have no CTR-by-length columns ({', '.join(missing)}); they were saved by an "
                             "older kit: rerun the study.")
        part = runs[labels].assign(length_bucket=bucket, CTR=runs[f"CTR_{key}"], n_episodes=runs[f"episodes_{key}"])
        for stat in ("clicks", "shown"):
            if f"{stat}_{key}" in runs.columns:
                part[stat] = runs[f"{stat}_{key}"]
        parts.append(part)
    order = {m: i for i, m in enumerate(dict.fromkeys(runs["method"]))}
    long = pd.concat(parts, ignore_index=True)
    return long.sort_values(["method", "seed"], key=lambda c: c.map(order) if c.name == "method" else c,
                            kind="stable", ignore_index=True)


def rq2(preset: str = "quick", seeds: Sequence[int] | None = None, methods: Sequence[str] = RQ2_METHODS,
        encoder: str = "gru", workers: int | None = None, progress: bool = True,
        runs: pd.DataFrame | None = None, device: str = "cpu", **execution: Any) -> pd.DataFrame:
    """Table 3: CTR per interaction-length bucket (11–20, 21–30, 31+), mean ± std over seeds, one row per
    (method, bucket); ``n_episodes`` sums the evaluation sessions in the bucket over seeds. Pass ``runs`` (an
    ``rq1`` result, fresh or loaded with its run table) to reuse its evaluations instead of training.
    ``attrs["runs"]`` holds the flat run rows used."""
    preset = resolve_preset(preset)
    if runs is not None:
        flat = runs.attrs["runs"] if "runs" in runs.attrs else runs
        flat = flat[flat["encoder"] == encoder].reset_index(drop=True)
    else:
        flat = run_study([Run(m, s, preset, encoder=encoder, device=device) for m in methods
                          for s in _seeds(preset, seeds)], workers, progress, **_execution(execution))
    buckets = bucket_runs(flat)
    grouped = buckets.groupby(["method", "length_bucket"], sort=False)
    table = pd.DataFrame({"CTR_mean": grouped["CTR"].mean(), "CTR_std": grouped["CTR"].std(ddof=0),
                          "n_episodes": grouped["n_episodes"].sum()}).reset_index()
    table.attrs["runs"] = flat
    return table


def rq3(preset: str = "quick", seeds: Sequence[int] | None = None, n_values: Sequence[int] | None = None,
        workers: int | None = None, progress: bool = True, device: str = "cpu", **execution: Any) -> pd.DataFrame:
    """Fig. 3b: DAC4Rec with N diffusion steps, one row per N."""
    preset = resolve_preset(preset)
    n_values = tuple(n_values or STUDY_SETTINGS[preset]["n_values"])
    runs = [Run("DAC4Rec", s, preset, overrides=(("n_steps", n),), device=device) for n in n_values
            for s in _seeds(preset, seeds)]
    return summarise_runs(run_study(runs, workers, progress, **_execution(execution)), ["n_steps"])


def rq4(preset: str = "quick", seeds: Sequence[int] | None = None, workers: int | None = None,
        progress: bool = True, device: str = "cpu", **execution: Any) -> pd.DataFrame:
    """Fig. 3c: DAC4Rec against −E (no energy guidance) and −A (no action approximation)."""
    preset = resolve_preset(preset)
    runs = [Run(m, s, preset, device=device) for m in RQ4_METHODS for s in _seeds(preset, seeds)]
    return summarise_runs(run_study(runs, workers, progress, **_execution(execution)), ["method"])


def rq5(preset: str = "quick", seeds: Sequence[int] | None = None, workers: int | None = None,
        progress: bool = True, device: str = "cpu", **execution: Any) -> pd.DataFrame:
    """Table 4: DDPG and SAC, each plain, +Diffusion, +Energy and +Diffusion+Energy."""
    preset = resolve_preset(preset)
    runs = [Run(m, s, preset, device=device) for m in RQ5_METHODS for s in _seeds(preset, seeds)]
    summary = summarise_runs(run_study(runs, workers, progress, **_execution(execution)), ["method"])
    summary.insert(0, "backbone", summary["method"].str.split("+").str[0])
    summary.insert(2, "diffusion", summary["method"].str.contains("Diffusion"))
    summary.insert(3, "energy", summary["method"].str.contains("Energy"))
    return summary


def energy_runs_long(runs: pd.DataFrame, scales: Sequence[float] | None = None) -> pd.DataFrame:
    """The energy study's flat rows (one per trained agent, ``R_cumu@0.5``-style columns) as one row per
    (agent, scale): ``log``, ``method``, ``encoder``, ``seed``, ``scale`` and the metrics."""
    if scales is None:
        scales = sorted({float(c.split("@", 1)[1]) for c in runs.columns if c.startswith("R_cumu@")})
    labels = [c for c in ("log", "method", "encoder", "seed") if c in runs.columns]
    parts = []
    for scale in scales:
        columns = {scale_column(m, scale): m for m in METRICS}
        missing = [c for c in columns if c not in runs.columns]
        if missing:
            raise ValueError(f"these energy runs were not evaluated at scale {scale:g} (no {', '.join(missing)}).")
        part = runs[labels + list(columns)].rename(columns=columns).assign(scale=float(scale))
        parts.append(part.assign(_row=range(len(runs))))
    long = pd.concat(parts, ignore_index=True).sort_values(["_row", "scale"], kind="stable", ignore_index=True)
    return long[labels[:-1] + ["scale", "seed", *METRICS]]


def energy_table(runs: pd.DataFrame, baseline: float = 0.0, metrics: Sequence[str] = ("R_cumu", "CTR"),
                 level: float = 0.95) -> pd.DataFrame:
    """Return against guidance scale from the energy study's flat rows: one row per (log, method, scale)
    with the mean and std over seeds of every metric and, per metric in ``metrics``, the mean's ``level``
    interval over seeds (``<metric>_mean_low``, ``<metric>_mean_high``) and the paired difference
    against ``baseline`` (the unguided scale 0; the same agent and users, so the pairing removes both
    training and user noise): ``<metric>_diff``, ``<metric>_low``, ``<metric>_high``, ``<metric>_verdict``
    ("reproduces" = guidance raises it, "contradicted" = lowers it, or "not resolved at this budget")."""
    long = energy_runs_long(runs)
    summary = summarise_runs(long, ["log", "method", "scale"])
    for metric in metrics:
        means = [mean_interval(part[metric].dropna().to_numpy(), level)
                 for _, part in long.groupby(["log", "method", "scale"], sort=False)]
        summary[f"{metric}_mean_low"] = [m.low for m in means]
        summary[f"{metric}_mean_high"] = [m.high for m in means]
        cells = []
        for log, method, scale in summary[["log", "method", "scale"]].itertuples(index=False):
            where = {"log": log, "method": method}
            cells.append(paired_contrast(long, [({**where, "scale": scale}, 1.0), ({**where, "scale": baseline}, -1.0)],
                                         metric, level=level))
        summary[f"{metric}_diff"] = [c.estimate for c in cells]
        summary[f"{metric}_low"] = [c.low for c in cells]
        summary[f"{metric}_high"] = [c.high for c in cells]
        summary[f"{metric}_verdict"] = [c.verdict if s != baseline else "baseline"
                                        for c, s in zip(cells, summary["scale"])]
    summary.attrs["runs"] = runs
    return summary


def energy_summary(table: pd.DataFrame, metric: str = "R_cumu") -> pd.DataFrame:
    """The energy study's answer per (log, method), from ``energy_table`` (or any table in its layout): how
    many guided scales raise ``metric`` over scale 0 (paired interval above 0), lower it (below 0) or leave it
    unresolved; the scale with the largest mean difference (``best_scale``) with its difference and interval;
    and ``answer``: "helps" (some scale raises it, none lowers it), "hurts" (the reverse), "mixed" (both) or
    "not resolved at this budget" (no scale's interval excludes 0)."""
    rows = []
    for (log, method), part in table.groupby(["log", "method"], sort=False):
        guided = part[part[f"{metric}_verdict"] != "baseline"]
        if guided.empty:
            raise ValueError(f"the {log} / {method} rows have no guided scale (only the baseline).")
        verdicts = guided[f"{metric}_verdict"]
        raises, lowers = int((verdicts == "reproduces").sum()), int((verdicts == "contradicted").sum())
        best = guided.loc[guided[f"{metric}_diff"].idxmax()]
        answer = ("mixed" if raises and lowers else "helps" if raises else "hurts" if lowers
                  else "not resolved at this budget")
        rows.append({"log": log, "method": method, "n_seeds": int(part["n_seeds"].min()), "n_scales": len(guided),
                     "raises": raises, "lowers": lowers, "unresolved": len(guided) - raises - lowers,
                     "best_scale": float(best["scale"]), "best_diff": float(best[f"{metric}_diff"]),
                     "best_low": float(best[f"{metric}_low"]), "best_high": float(best[f"{metric}_high"]),
                     "answer": answer})
    return pd.DataFrame(rows)


def energy(preset: str = "quick", seeds: Sequence[int] | None = None, methods: Sequence[str] = ENERGY_METHODS,
           logs: Sequence[str] = tuple(BEHAVIOUR_LOGS), scales: Sequence[float] = ENERGY_SCALES,
           workers: int | None = None, progress: bool = True, device: str = "cpu", **execution: Any) -> pd.DataFrame:
    """When does energy guidance help on the simulator? Each (log, method, seed) trains once with energy
    guidance (f_ψ included) and is evaluated on the same users at every guidance scale in ``scales`` (0 =
    unguided, Eq. 24 off): ``energy_table`` of the runs, one row per (log, method, scale), with paired
    differences against scale 0. ``logs`` are keys of ``BEHAVIOUR_LOGS``."""
    preset = resolve_preset(preset)
    unknown = [log for log in logs if log not in BEHAVIOUR_LOGS]
    if unknown:
        raise ValueError(f"unknown behaviour log(s) {unknown}; choose among {', '.join(BEHAVIOUR_LOGS)}.")
    scales = tuple(float(s) for s in scales)
    if 0.0 not in scales or any(not s >= 0 for s in scales):
        raise ValueError(f"scales must be ≥ 0 and include 0 (the unguided baseline), got {scales}.")
    runs = [EnergyRun(m, s, preset, device=device, log=log, scales=scales) for log in logs for m in methods
            for s in _seeds(preset, seeds)]
    flat = run_study(runs, workers, progress, **_execution(execution))
    table = energy_table(flat)
    if flat.attrs.get("failed"):
        table.attrs["failed"] = flat.attrs["failed"]
    return table


STUDIES: dict[str, Callable[..., pd.DataFrame]] = {"rq1": rq1, "rq2": rq2, "rq3": rq3, "rq4": rq4, "rq5": rq5,
                                                   "energy": energy}
