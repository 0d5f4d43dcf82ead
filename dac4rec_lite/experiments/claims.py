"""The paper's numbers and claims, checked on the kit's studies with paired intervals.

``paper_table`` holds the paper's VirtualTaobao numbers (Tables 1–4) in the kit's column layout and
``PAPER_PROSE`` what it says about Fig. 3b–c. Each claim is a *contrast* of study cells that should be
positive if the claim holds ("DAC4Rec beats −A": DAC4Rec − (−A) > 0; "approximation matters more than
energy": (DAC4Rec − −A) − (DAC4Rec − −E) > 0). ``check_claims`` evaluates every claim of a study

* on the per-seed runs (``table.attrs["runs"]``), as a paired contrast with a 95 % interval
  (``experiments.paired``): "reproduces", "contradicted" or "not resolved at this budget";
* on the means alone where there are no runs (the paper's tables): "yes" or "no" — the paper's ± is not
  said to be a spread over seeds, so nothing more can be said.

"n/a" marks a claim the table cannot answer (a method, bucket or N it does not have). "Highest of all"
claims compare with the best rival *by mean*; choosing the rival on the same data makes that interval a
little optimistic for the rival, i.e. conservative for the claim. ``compare_claims`` puts the paper's verdict
beside the kit's; ``claims_summary`` counts verdicts per study.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .paired import NOT_RESOLVED, Interval, paired_contrast, variance_ratio_test
from .studies import RQ5_METHODS, STUDIES, bucket_runs, energy_runs_long

__all__ = ["paper_table", "PAPER_PROSE", "PAPER_RQ1_BASELINES", "check_claims", "compare_claims", "claims_summary",
           "VERDICTS"]

VERDICTS = ("reproduces", "contradicted", NOT_RESOLVED, "yes", "no", "n/a")


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
    ``<metric>_std``; the paper's "Ours" is ``DAC4Rec``), or ``None`` for rq3, rq4 and energy, whose figures
    print no numbers (``PAPER_PROSE`` says what they show). rq1: Tables 1–2 (R_cumu, R_avg, Length; no CTR,
    no std for Length); rq2: Table 3; rq5: Table 4 (CTR only). ``attrs["caption"]`` names the source."""
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
# Claims as contrasts of cells.

Cell = Mapping[str, Any]


@dataclass(frozen=True)
class _Contrast:
    """Σ weight · metric(cell) > 0; ``label`` says it in words (e.g. "DAC4Rec − BC")."""

    terms: tuple[tuple[Cell, float], ...]
    label: str


@dataclass(frozen=True)
class _Spread:
    """The spread over seeds at ``large`` is smaller than at ``small``."""

    small: Cell
    large: Cell


@dataclass(frozen=True)
class _Unanswerable:
    reason: str


def _diff(a: Cell, b: Cell, label: str) -> _Contrast:
    return _Contrast(((a, 1.0), (b, -1.0)), label)


def _cell_mean(table: pd.DataFrame, metric: str, cell: Cell, stat: str = "mean") -> float | None:
    rows = table
    for column, value in cell.items():
        if column not in rows.columns:
            return None
        rows = rows[rows[column] == value]
    column = f"{metric}_{stat}"
    if len(rows) != 1 or column not in rows.columns or not np.isfinite(rows[column].iloc[0]):
        return None
    return float(rows[column].iloc[0])


def _best(table: pd.DataFrame, metric: str, target: str, where: Cell, rivals: Sequence[str] | None = None):
    """``target`` minus the best other method by mean (among ``rivals``), within ``where``."""
    rows = table
    for column, value in where.items():
        rows = rows[rows[column] == value]
    if rivals is not None:
        rows = rows[rows["method"].isin([target, *rivals])]
    column = f"{metric}_mean"
    if column not in rows.columns:
        return _Unanswerable(f"no {metric}")
    rows = rows[np.isfinite(rows[column])]
    if target not in set(rows["method"]) or len(rows) < 2:
        return _Unanswerable("not measured")
    rival = rows[rows["method"] != target].sort_values(column).iloc[-1]["method"]
    return _diff({**where, "method": target}, {**where, "method": rival}, f"{target} − {rival} (best rival)")


PAPER_RQ1_BASELINES = ("DDPG", "SAC", "TD3", "DT")  # the baselines of Tables 1–2 that the kit also has


def _rq1_claims(table: pd.DataFrame):
    claims = []
    for encoder in ("gru", "sasrec"):
        label = "GRU" if encoder == "gru" else "SASRec"
        for metric in ("R_cumu", "R_avg"):
            claims.append((f"DAC4Rec has the highest {metric} of DDPG, SAC, TD3, DT ({label})", metric,
                           _best(table, metric, "DAC4Rec", {"encoder": encoder}, PAPER_RQ1_BASELINES)))
        for metric in ("R_cumu", "R_avg"):
            claims.append((f"DAC4Rec has the highest {metric} of all methods ({label})", metric,
                           _best(table, metric, "DAC4Rec", {"encoder": encoder})))
    return claims


def _rq2_claims(table: pd.DataFrame):
    baseline = "DT" if "DT" in set(table["method"]) else "DT4Rec"  # the paper's Table 3 has DT4Rec, the kit DT
    buckets = list(dict.fromkeys(table["length_bucket"]))
    claims = []
    for bucket in buckets:
        claims.append((f"DAC4Rec has a higher CTR than the DT baseline at length {bucket}", "CTR",
                       _diff({"method": "DAC4Rec", "length_bucket": bucket}, {"method": baseline, "length_bucket": bucket},
                             f"DAC4Rec − {baseline} at {bucket}")))
    for bucket in buckets:
        claims.append((f"DAC4Rec has the highest CTR of all methods at length {bucket}", "CTR",
                       _best(table, "CTR", "DAC4Rec", {"length_bucket": bucket})))
    first, last = buckets[0], buckets[-1]
    cell = lambda m, b: {"method": m, "length_bucket": b}  # noqa: E731
    claims.append((f"DAC4Rec's CTR falls less than the DT baseline's from {first} to {last}", "CTR",
                   _Contrast(((cell("DAC4Rec", last), 1.0), (cell("DAC4Rec", first), -1.0),
                              (cell(baseline, last), -1.0), (cell(baseline, first), 1.0)),
                             f"DAC4Rec's change {first}→{last} − {baseline}'s")))
    return claims


def _rq3_claims(table: pd.DataFrame):
    claims = []
    n_values = sorted(int(n) for n in table["n_steps"])
    labelled = table.assign(method=table["n_steps"].map(lambda n: f"N={int(n)}"))
    for metric in ("CTR", "R_cumu"):
        if 100 in n_values and len(n_values) > 1:
            best = _best(labelled, metric, "N=100", {})
            if isinstance(best, _Contrast):  # cells by N, as the runs have them
                best = _Contrast(tuple(({"n_steps": int(c["method"][2:])}, w) for c, w in best.terms), best.label)
        else:
            best = _Unanswerable(f"N = 100 not in this preset's N values {n_values}")
        claims.append(("N = 100 gives the best result", metric, best))
        spread = (_Spread({"n_steps": n_values[0]}, {"n_steps": n_values[-1]}) if len(n_values) > 1
                  else _Unanswerable("one N value"))
        claims.append(("the spread over seeds shrinks as N grows", metric, spread))
    return claims


def _rq4_claims(table: pd.DataFrame):
    full, no_e, no_a = ({"method": m} for m in ("DAC4Rec", "DAC4Rec −E", "DAC4Rec −A"))
    claims = []
    for metric in ("CTR", "R_cumu"):
        claims.append(("action approximation helps: DAC4Rec beats −A", metric, _diff(full, no_a, "DAC4Rec − −A")))
        claims.append(("energy guidance helps (a little): DAC4Rec beats −E", metric, _diff(full, no_e, "DAC4Rec − −E")))
        claims.append(("approximation matters more than energy: gap to −A > gap to −E", metric,
                       _diff(no_e, no_a, "(DAC4Rec − −A) − (DAC4Rec − −E) = −E − −A")))
    return claims


def _rq5_claims(table: pd.DataFrame):
    cell = {m: {"method": m} for m in RQ5_METHODS}
    claims = []
    for metric in ("CTR", "R_cumu"):
        for backbone in ("DDPG", "SAC"):
            for plugin in ("Diffusion", "Energy"):
                name = f"{backbone}+{plugin}"
                claims.append((f"+{plugin} improves {backbone}", metric, _diff(cell[name], cell[backbone], f"{name} − {backbone}")))
            both = f"{backbone}+Diffusion+Energy"
            claims.append((f"{both} is the best {backbone} variant", metric,
                           _best(table, metric, both, {}, [backbone, f"{backbone}+Diffusion", f"{backbone}+Energy"])))
        claims.append(("energy guidance helps SAC more than DDPG", metric,
                       _Contrast(((cell["SAC+Energy"], 1.0), (cell["SAC"], -1.0), (cell["DDPG+Energy"], -1.0),
                                  (cell["DDPG"], 1.0)), "SAC's gain − DDPG's gain")))
    return claims


def _energy_claims(table: pd.DataFrame):
    claims = []
    for metric in ("R_cumu", "CTR"):
        for log, method in dict.fromkeys(zip(table["log"], table["method"])):
            for scale in sorted(s for s in set(table["scale"]) if s > 0):
                where = {"log": log, "method": method}
                claims.append((f"energy guidance at scale {scale:g} helps {method} ({log} log)", metric,
                               _diff({**where, "scale": scale}, {**where, "scale": 0.0}, f"scale {scale:g} − scale 0")))
    return claims


_CLAIMS = {"rq1": _rq1_claims, "rq2": _rq2_claims, "rq3": _rq3_claims, "rq4": _rq4_claims, "rq5": _rq5_claims,
           "energy": _energy_claims}


def _long_runs(name: str, runs: pd.DataFrame) -> pd.DataFrame:
    """The runs with one row per cell and seed: Table 3's buckets and the energy study's scales unfolded."""
    if name == "rq2":
        return bucket_runs(runs)
    if name == "energy":
        return energy_runs_long(runs)
    return runs


def _on_means(table: pd.DataFrame, metric: str, spec) -> dict[str, Any]:
    if isinstance(spec, _Unanswerable):
        return dict(verdict="n/a", evidence=spec.reason)
    if isinstance(spec, _Spread):
        sd = [_cell_mean(table, metric, cell, "std") for cell in (spec.small, spec.large)]
        if None in sd:
            return dict(verdict="n/a", evidence="not measured")
        return dict(verdict="yes" if sd[1] < sd[0] else "no", evidence=f"std {sd[1]:.3g} vs {sd[0]:.3g}")
    means = [_cell_mean(table, metric, cell) for cell, _ in spec.terms]
    if None in means:
        return dict(verdict="n/a", evidence="not measured")
    value = sum(w * m for (_, w), m in zip(spec.terms, means))
    return dict(verdict="yes" if value > 0 else "no", difference=value, evidence=f"{spec.label}: {value:+.3g} (means)")


def _on_runs(runs: pd.DataFrame, metric: str, spec, level: float) -> dict[str, Any]:
    if isinstance(spec, _Unanswerable):
        return dict(verdict="n/a", evidence=spec.reason)
    if metric not in runs.columns:
        return dict(verdict="n/a", evidence=f"no {metric} in the runs")
    if isinstance(spec, _Spread):
        values = [_values(runs, c, metric) for c in (spec.small, spec.large)]
        if min(len(v) for v in values) == 0:
            return dict(verdict="n/a", evidence="not measured")
        verdict, evidence = variance_ratio_test(values[0], values[1], level)
        return dict(verdict=verdict, evidence=evidence + " (one-sided F test)")
    interval: Interval = paired_contrast(runs, spec.terms, metric, level=level)
    if interval.n == 0:
        return dict(verdict="n/a", evidence="not measured")
    return dict(verdict=interval.verdict, difference=interval.estimate, ci_low=interval.low, ci_high=interval.high,
                n_seeds=interval.n, evidence=f"{spec.label}: {interval}")


def _values(runs: pd.DataFrame, cell: Cell, metric: str) -> np.ndarray:
    rows = runs
    for column, value in cell.items():
        if column not in rows.columns:
            return np.empty(0)
        rows = rows[rows[column] == value]
    return rows[metric].to_numpy(dtype=float)


def check_claims(name: str, table: pd.DataFrame, runs: pd.DataFrame | None = None, paired: bool = True,
                 level: float = 0.95) -> pd.DataFrame:
    """The paper's claims for study ``name`` checked on ``table`` (a study's result, saved or fresh, or
    ``paper_table(name)``). With per-seed ``runs`` (default ``table.attrs["runs"]``) and ``paired``, each
    claim is a paired contrast with a ``level`` interval: "reproduces" (interval above 0), "contradicted"
    (below 0) or "not resolved at this budget"; RQ3's spread claim is a one-sided F test. Without runs (the
    paper's tables) the verdict is "yes"/"no" on the means. "n/a": the table cannot answer the claim.
    Columns: ``claim``, ``metric``, ``verdict``, ``difference``, ``ci_low``, ``ci_high``, ``n_seeds``,
    ``evidence``. Claims about RQ3–RQ5 are checked on CTR, the paper's metric there, and on R_cumu, what
    the kit's simulator rewards."""
    if name not in _CLAIMS:
        raise ValueError(f"unknown study {name!r}; choose one of {', '.join(_CLAIMS)}.")
    runs = table.attrs.get("runs") if runs is None else runs
    long = _long_runs(name, runs) if (paired and runs is not None) else None
    rows = []
    for claim, metric, spec in _CLAIMS[name](table):
        found = _on_runs(long, metric, spec, level) if long is not None else _on_means(table, metric, spec)
        rows.append({"claim": claim, "metric": metric, "verdict": found["verdict"],
                     "difference": found.get("difference", np.nan), "ci_low": found.get("ci_low", np.nan),
                     "ci_high": found.get("ci_high", np.nan), "n_seeds": found.get("n_seeds", 0),
                     "evidence": found["evidence"]})
    return pd.DataFrame(rows, columns=["claim", "metric", "verdict", "difference", "ci_low", "ci_high", "n_seeds",
                                       "evidence"])


def compare_claims(name: str, table: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """``check_claims`` on ``table`` beside what the paper reports for the same claims: ``paper`` is the
    verdict on the paper's printed means (``paper_table``), "yes (text)" where the paper states the claim
    about a figure without numbers (Fig. 3b, 3c; CTR), or "not reported" (no R_cumu for RQ3–RQ5, no CTR in
    Tables 1–2, nothing for the kit's energy study). Columns: ``claim``, ``metric``, ``paper``, ``here`` and
    the paired interval behind ``here`` (``difference``, ``ci_low``, ``ci_high``, ``n_seeds``, ``evidence``)."""
    ours = check_claims(name, table, level=level)
    printed = paper_table(name)
    if printed is not None:
        paper = check_claims(name, printed, paired=False).set_index(["claim", "metric"])["verdict"]
        paper = paper.replace("n/a", "not reported")
    else:
        paper = pd.Series("not reported", index=pd.MultiIndex.from_frame(ours[["claim", "metric"]]), dtype=object)
        if name in ("rq3", "rq4"):
            paper[paper.index.get_level_values("metric") == "CTR"] = "yes (text)"
    verdicts = [paper.get((c, m), "not reported") for c, m in zip(ours["claim"], ours["metric"])]
    out = ours.rename(columns={"verdict": "here"})
    out.insert(2, "paper", verdicts)
    return out


def claims_summary(results: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """How many of the paper's claims each study's results settle (``compare_claims``): per study the claims
    checked and how many reproduce, are contradicted, are not resolved at this budget, hold or fail on means
    alone (no runs), or cannot be answered at this preset (n/a). ``preset`` is the preset whose sizes made each
    study's numbers (``attrs["preset"]``, set by ``load_or_run``; empty when unknown): one notebook can hold
    studies of two presets when a ``fallback`` stood in for a missing one."""
    rows = []
    for name, table in results.items():
        here = compare_claims(name, table)["here"]
        rows.append({"study": name, "preset": table.attrs.get("preset", ""), "claims": len(here),
                     **{v: int((here == v).sum()) for v in VERDICTS}})
    return pd.DataFrame(rows)
