"""Paired differences with 95 % intervals: how the kit decides whether a comparison is resolved.

Methods in a study share seeds: seed s logs the same behaviour dataset for every method and evaluates every
method on the same fresh users (``10_000 + s``). So the right comparison of methods A and B is *paired*:
the per-seed differences d_s = x_A,s − x_B,s, their mean d̄ and a Student-t interval

    d̄ ± t_{0.975, n−1} · sd(d) / √n        (n shared seeds, sd with n − 1 degrees of freedom)

which is narrower than comparing two means when seeds move both methods together. More generally a
*contrast* Σ_k w_k x_k,s over cells k (a gap of gaps, e.g. "the gain from energy is larger for SAC than for
DDPG") gets the same interval. A claim "A beats B" **reproduces** when the interval lies above 0, is
**contradicted** when it lies below 0, and is **not resolved at this budget** when it holds 0 (or fewer
than two seeds give no interval at all).

Student's t and Fisher's F quantiles come from the regularised incomplete beta function (a continued
fraction, Numerical Recipes §6.4), so nothing beyond the standard library is needed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["REPRODUCES", "CONTRADICTED", "NOT_RESOLVED", "Interval", "t_quantile", "f_quantile", "mean_interval",
           "paired_contrast", "paired_differences", "variance_ratio_test"]

REPRODUCES, CONTRADICTED, NOT_RESOLVED = "reproduces", "contradicted", "not resolved at this budget"


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b), 0 ≤ x ≤ 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def _check_probability(p: float) -> None:
    if not (isinstance(p, (int, float)) and 0.0 < p < 1.0):
        raise ValueError(f"p must be a probability strictly between 0 and 1, got {p!r}.")


def _bisect(cdf, p: float, low: float, high: float) -> float:
    while cdf(high) < p:
        high *= 2.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        if cdf(mid) < p:
            low = mid
        else:
            high = mid
        if high - low < 1e-12 * max(1.0, abs(mid)):
            break
    return 0.5 * (low + high)


def t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t with ``df`` > 0 degrees of freedom (e.g. t_quantile(0.975, 4) = 2.776)."""
    _check_probability(p)
    if not (isinstance(df, (int, float)) and df > 0 and math.isfinite(df)):
        raise ValueError(f"df must be a finite positive number, got {df!r}.")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    # P(T ≤ t) = 1 − ½ I_{df/(df+t²)}(df/2, ½) for t ≥ 0
    return _bisect(lambda t: 1.0 - 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t)), p, 0.0, 1.0)


def f_quantile(p: float, d1: float, d2: float) -> float:
    """The p-quantile of Fisher's F(d1, d2) (e.g. f_quantile(0.95, 4, 4) = 6.388)."""
    _check_probability(p)
    if not all(isinstance(d, (int, float)) and d > 0 and math.isfinite(d) for d in (d1, d2)):
        raise ValueError(f"degrees of freedom must be finite positive numbers, got {d1!r}, {d2!r}.")
    # P(F ≤ f) = I_{d1 f/(d1 f + d2)}(d1/2, d2/2)
    return _bisect(lambda f: _betainc(d1 / 2.0, d2 / 2.0, d1 * f / (d1 * f + d2)), p, 0.0, 1.0)


@dataclass(frozen=True)
class Interval:
    """A mean with its two-sided interval over ``n`` paired seeds; ``low``/``high`` are ±inf below 2 seeds."""

    estimate: float
    low: float
    high: float
    n: int
    level: float = 0.95

    @property
    def verdict(self) -> str:
        """For the claim "the contrast is > 0"."""
        if self.n >= 2 and self.low > 0:
            return REPRODUCES
        if self.n >= 2 and self.high < 0:
            return CONTRADICTED
        return NOT_RESOLVED

    def __str__(self) -> str:
        if not np.isfinite(self.estimate):
            return "no shared seeds"
        if self.n < 2:
            return f"{self.estimate:+.3g} (1 seed: no interval)"
        return f"{self.estimate:+.3g} [{self.low:+.3g}, {self.high:+.3g}] ({self.n} seeds)"


def mean_interval(values: Sequence[float] | np.ndarray, level: float = 0.95) -> Interval:
    """The mean of ``values`` with its Student-t interval at ``level`` (NaN values are refused: drop them
    first, saying why)."""
    x = np.asarray(values, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"values must be one-dimensional, got shape {x.shape}.")
    if not np.isfinite(x).all():
        raise ValueError("values contain NaN or inf; drop the seeds that have no value first.")
    n = len(x)
    if n == 0:
        return Interval(math.nan, -math.inf, math.inf, 0, level)
    mean = float(x.mean())
    if n < 2:
        return Interval(mean, -math.inf, math.inf, n, level)
    half = t_quantile(0.5 + level / 2.0, n - 1) * float(x.std(ddof=1)) / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n, level)


def _select(runs: pd.DataFrame, cell: Mapping[str, Any]) -> pd.DataFrame:
    rows = runs
    for column, value in cell.items():
        if column not in rows.columns:
            return rows.iloc[:0]
        rows = rows[rows[column] == value]
    return rows


def paired_contrast(runs: pd.DataFrame, weights: Sequence[tuple[Mapping[str, Any], float]], metric: str,
                    pair_on: str = "seed", level: float = 0.95) -> Interval:
    """The contrast Σ_k w_k · metric(cell_k) per shared ``pair_on`` value, and its interval.

    ``weights`` is a list of (cell, weight); a cell is a dict of column values selecting one row per seed of
    ``runs`` (e.g. ``{"method": "DAC4Rec", "encoder": "gru"}``). Only seeds present, with a finite value, in
    every cell are used. A cell with two rows for one seed raises ``ValueError`` (the cell is ambiguous)."""
    if metric not in runs.columns:
        raise ValueError(f"runs have no column {metric!r}; columns are {', '.join(map(str, runs.columns))}.")
    series = []
    for cell, weight in weights:
        rows = _select(runs, cell)
        if rows[pair_on].duplicated().any():
            raise ValueError(f"cell {dict(cell)} has several rows for one {pair_on}; add the column that tells them apart.")
        series.append(weight * rows.set_index(pair_on)[metric].astype(float))
    joined = pd.concat(series, axis=1, join="inner").dropna()
    return mean_interval(joined.sum(axis=1).to_numpy(), level)


def paired_differences(runs: pd.DataFrame, a: Any, b: Any, metric: str = "R_cumu", column: str = "method",
                       where: Mapping[str, Any] | None = None, pair_on: str = "seed", level: float = 0.95) -> dict[str, Any]:
    """Mean paired difference ``a − b`` of ``metric`` over the seeds both have, with its ``level`` interval.

    ``a`` and ``b`` are values of ``column`` (default: method names); ``where`` narrows both (e.g.
    ``{"encoder": "gru"}``). Returns ``a``, ``b``, ``metric``, ``n_pairs``, ``difference``, ``ci_low``,
    ``ci_high`` and ``verdict`` for the claim "a > b": "reproduces" (interval above 0), "contradicted" (below
    0) or "not resolved at this budget"."""
    where = dict(where or {})
    interval = paired_contrast(runs, [({**where, column: a}, 1.0), ({**where, column: b}, -1.0)], metric,
                               pair_on, level)
    return {"a": a, "b": b, "metric": metric, "n_pairs": interval.n, "difference": interval.estimate,
            "ci_low": interval.low, "ci_high": interval.high, "verdict": interval.verdict}


def variance_ratio_test(small: Sequence[float], large: Sequence[float], level: float = 0.95) -> tuple[str, str]:
    """Is the spread of ``large`` smaller than that of ``small``? A one-sided F test of s²_small / s²_large
    at ``level`` (both ways): the verdict ("reproduces", "contradicted", "not resolved at this budget") and
    the evidence."""
    x, y = np.asarray(small, float), np.asarray(large, float)
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    if len(x) < 2 or len(y) < 2:
        return NOT_RESOLVED, f"{min(len(x), len(y))} seed(s): no spread to compare"
    vx, vy = float(x.var(ddof=1)), float(y.var(ddof=1))
    evidence = f"sd {math.sqrt(vy):.3g} vs {math.sqrt(vx):.3g} ({len(y)} and {len(x)} seeds)"
    if vy > 0 and vx / vy > f_quantile(level, len(x) - 1, len(y) - 1):
        return REPRODUCES, evidence
    if vx > 0 and vy / vx > f_quantile(level, len(y) - 1, len(x) - 1):
        return CONTRADICTED, evidence
    if vx == vy == 0:
        return NOT_RESOLVED, evidence + "; both spreads are zero"
    return NOT_RESOLVED, evidence
