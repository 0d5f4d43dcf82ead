"""Saved results: what ``python -m dac4rec_lite study … --out results/<preset>`` wrote, read back; and the
study tables as the paper prints them (``mean ± std`` strings).

``load_saved`` / ``load_or_run`` read ``results/<preset>/<name>.csv`` (and ``<name>_runs.csv``, every run,
which the paired intervals need) or run the study; ``format_table`` / ``format_summary`` print any study
table — the kit's or ``claims.paper_table``'s — as ``mean ± std``.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from ..presets import resolve_preset
from .methods import METRICS, STUDY_SETTINGS
from .studies import STUDIES

__all__ = ["load_saved", "load_or_run", "format_table", "format_summary", "results_folders"]

_STATS = tuple(f"{m}_{s}" for m in METRICS for s in ("mean", "std"))
_EXPECTED_COLUMNS = {
    "rq1": ("encoder", "method", *_STATS),
    "rq2": ("method", "length_bucket", "CTR_mean", "CTR_std", "n_episodes"),
    "rq3": ("n_steps", *_STATS),
    "rq4": ("method", *_STATS),
    "rq5": ("backbone", "method", "diffusion", "energy", *_STATS),
    "energy": ("log", "method", "scale", *_STATS, "R_cumu_diff", "R_cumu_low", "R_cumu_high"),
}


def results_folders(preset: str) -> list[str]:
    """Where ``results/<preset>`` may be: under the working directory, under its parent (a notebook runs in
    ``notebooks/``) and under the repository that holds this package (an editable install)."""
    here = os.getcwd()
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    folders = [os.path.join(base, "results", preset) for base in (here, os.path.dirname(here), package_root)]
    return list(dict.fromkeys(os.path.normpath(f) for f in folders))


def load_saved(name: str, preset: str, folder: str | os.PathLike[str] | None = None) -> pd.DataFrame | None:
    """Study ``name``'s table as the ``study`` command saved it (``<folder>/<name>.csv``), or ``None`` when
    there is none. ``folder`` defaults to the first ``results/<preset>`` found under the working directory,
    its parent, or the repository root; the folder's name is what ties saved results to a preset, so a
    ``tiny`` run never picks up ``results/quick``. ``attrs["source"]`` is the file read; ``attrs["runs"]``
    holds ``<name>_runs.csv`` (every run) when it is there. A file without the study's columns raises
    ``ValueError`` rather than being shown as if it were that study."""
    if name not in STUDIES:
        raise ValueError(f"unknown study {name!r}; choose one of {', '.join(STUDIES)}.")
    preset = resolve_preset(preset) if folder is None else preset
    return _load_saved_in(name, preset, [os.fspath(folder)] if folder is not None else results_folders(preset))


def _load_saved_in(name: str, preset: str, folders: list[str]) -> pd.DataFrame | None:
    """``load_saved`` for a preset taken as given (``DAC4REC_PRESET`` does not apply), in ``folders``."""
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
        table.attrs["preset"] = preset
        runs_path = os.path.join(base, f"{name}_runs.csv")
        if os.path.isfile(runs_path):
            table.attrs["runs"] = pd.read_csv(runs_path)
        return table
    return None


def load_or_run(name: str, preset: str = "quick", rerun: bool = False, folder: str | os.PathLike[str] | None = None,
                fallback: str | None = None, **kwargs: Any) -> pd.DataFrame:
    """The saved table of study ``name`` (``load_saved``) or, when there is none or ``rerun`` is true, a fresh
    run of it at ``preset`` (``kwargs`` go to the study function). ``attrs["source"]`` says which: the file
    read, or ``"ran at preset <preset>"``; ``attrs["preset"]`` is the preset whose sizes made the numbers.
    For ``rq2``, ``runs=`` (an ``rq1`` result) is reused when it carries its run rows (a fresh ``rq1`` does,
    and one loaded with its ``rq1_runs.csv``); otherwise ``rq2`` trains its own runs.

    ``fallback`` (a preset, e.g. ``"quick"``): when nothing is saved at ``preset``, load the study saved at
    ``fallback`` instead of running it — ``results/standard`` holds only RQ1 (GRU), RQ4, RQ5 and the energy
    study, and running RQ3 at ``standard`` takes hours. The fallback's table says so in ``attrs["source"]``
    and carries ``attrs["preset"] == fallback``; with nothing saved there either, the study runs at ``preset``."""
    preset = resolve_preset(preset)
    if fallback is not None and fallback not in STUDY_SETTINGS:
        raise ValueError(f"fallback must be a preset ({', '.join(STUDY_SETTINGS)}) or None; got {fallback!r}.")
    if not rerun:
        saved = load_saved(name, preset, folder)
        if saved is not None:
            return saved
        if fallback is not None and fallback != preset and not (name == "rq2" and _has_buckets(kwargs.get("runs"))):
            saved = _load_saved_in(name, fallback, results_folders(fallback))  # fallback as given: not the env's preset
            if saved is not None:
                saved.attrs["source"] += f" (nothing saved at {preset}: the {fallback} preset's table)"
                return saved
    if name == "rq2" and kwargs.get("runs") is not None and not _has_buckets(kwargs["runs"]):
        kwargs = {k: v for k, v in kwargs.items() if k != "runs"}
    table = STUDIES[name](preset, **kwargs)
    table.attrs.update(source=f"ran at preset {preset}", preset=preset)
    if name == "rq2" and kwargs.get("runs") is not None:   # no training: Table 3's buckets of rq1's evaluations
        rq1 = kwargs["runs"]
        table.attrs.update(source=f"rq1's runs ({rq1.attrs.get('source', 'given')})", preset=rq1.attrs.get("preset", preset))
    return table


def _has_buckets(table: pd.DataFrame | None) -> bool:
    runs = table.attrs.get("runs") if table is not None else None
    return runs is not None and "CTR_11_20" in runs.columns


def format_table(summary: pd.DataFrame, metrics: tuple[str, ...] = METRICS, digits: int = 2) -> pd.DataFrame:
    """``mean ± std`` strings, as the paper prints its tables (label columns kept, other columns dropped)."""
    suffixes = ("_mean", "_std", "_diff", "_low", "_high", "_verdict")
    keys = [c for c in summary.columns if not c.endswith(suffixes) and c != "n_seeds"]
    out = summary[keys].copy()
    out.attrs = {}
    for m in metrics:
        out[m] = [f"{mu:.{digits}f} ± {sd:.{digits}f}" for mu, sd in zip(summary[f"{m}_mean"], summary[f"{m}_std"])]
    return out


def format_summary(table: pd.DataFrame, digits: dict[str, int] | None = None) -> pd.DataFrame:
    """Any study table — the kit's, saved or fresh, or ``paper_table``'s — as ``mean ± std`` strings: every
    ``<metric>_mean`` column present becomes ``<metric>`` (just the mean where the std is missing, as for the
    paper's Length), ``n_seeds`` and ``n_episodes`` are dropped, and a CTR-by-length table (rq2) is turned
    into the paper's Table 3 shape (one row per method, one column per length bucket). The energy table's
    paired differences become ``<metric> vs 0`` strings (``+1.2 [−0.3, +2.7]``). ``digits`` per metric
    defaults to 3 for CTR and 2 otherwise."""
    digits = {"CTR": 3, **(digits or {})}
    metrics = [c[:-5] for c in table.columns if c.endswith("_mean")]
    derived = ("_mean", "_std", "_diff", "_low", "_high", "_verdict")
    out = table[[c for c in table.columns if not c.endswith(derived) and c not in ("n_seeds", "n_episodes")]].copy()
    out.attrs = {}
    for m in metrics:
        d = digits.get(m, 2)
        stds = table[f"{m}_std"] if f"{m}_std" in table.columns else pd.Series(np.nan, index=table.index)
        out[m] = [f"{mu:.{d}f}" + (f" ± {sd:.{d}f}" if np.isfinite(sd) else "") if np.isfinite(mu) else "—"
                  for mu, sd in zip(table[f"{m}_mean"], stds)]
    for m in [c[:-5] for c in table.columns if c.endswith("_diff")]:
        d = digits.get(m, 2)
        verdicts = table[f"{m}_verdict"] if f"{m}_verdict" in table.columns else pd.Series("", index=table.index)
        out[f"{m} vs 0"] = ["baseline" if v == "baseline" else "—" if not np.isfinite(x) else
                            f"{x:+.{d}f}" + (f" [{lo:+.{d}f}, {hi:+.{d}f}]" if np.isfinite(lo) else " (1 seed)")
                            for x, lo, hi, v in zip(table[f"{m}_diff"], table[f"{m}_low"], table[f"{m}_high"], verdicts)]
    if "length_bucket" in out.columns:
        out = out.pivot(index="method", columns="length_bucket", values="CTR")
        out = out.loc[list(dict.fromkeys(table["method"])), list(dict.fromkeys(table["length_bucket"]))]
        out.columns.name = None
        out = out.reset_index()
    return out
