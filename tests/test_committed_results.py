"""The study tables committed under results/<preset>/ agree with the run tables saved beside them.

Notebook 07 and the README quote these files, so a summary edited by hand, a run table from another
budget, or a study with too few seeds would mislead every reader. Each committed summary is recomputed
here from its ``<study>_runs.csv`` with the kit's own functions, and the issue-15 standard (≥ 5 seeds per
row at quick and standard) is checked.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dac4rec_lite import studies
from dac4rec_lite.experiments.methods import METRICS, STUDY_SETTINGS
from dac4rec_lite.experiments.studies import energy_table, summarise_runs

ROOT = Path(__file__).resolve().parents[1] / "results"
COMMITTED = sorted((folder.name, path.stem) for folder in ROOT.glob("*") if folder.name in STUDY_SETTINGS
                   for path in folder.glob("*.csv") if path.stem in studies.STUDIES)
GROUPS = {"rq1": ["encoder", "method"], "rq3": ["n_steps"], "rq4": ["method"],
          "rq5": ["method"]}   # rq5 adds backbone, diffusion, energy columns derived from the method name


def test_the_quick_results_are_committed():
    assert {("quick", name) for name in studies.STUDIES} <= set(COMMITTED)


@pytest.mark.parametrize("preset,name", COMMITTED, ids=[f"{p}-{n}" for p, n in COMMITTED])
def test_a_committed_summary_is_its_runs_summarised(preset, name):
    table = studies.load_saved(name, preset, folder=ROOT / preset)
    assert table is not None and "runs" in table.attrs, f"results/{preset}/{name}_runs.csv is missing"
    runs = table.attrs["runs"]
    seeds = set(STUDY_SETTINGS[preset]["seeds"])
    enough = 5 if preset in ("quick", "standard") else 1
    if name == "rq2":                                   # Table 3's buckets of RQ1's GRU evaluations
        assert runs.groupby("method")["seed"].nunique().min() >= enough
        again = studies.rq2(preset, runs=runs)
        np.testing.assert_allclose(again["CTR_mean"], table["CTR_mean"], rtol=1e-9, equal_nan=True)
        assert (again["n_episodes"].to_numpy() == table["n_episodes"].to_numpy()).all()
        return
    assert table["n_seeds"].min() >= enough, f"results/{preset}/{name}.csv has a row with fewer than {enough} seeds"
    assert set(runs["seed"]) == seeds, f"results/{preset}/{name}_runs.csv has seeds {sorted(set(runs['seed']))}"
    if name == "energy":
        again = energy_table(runs)
        checked = [f"{m}_{s}" for m in METRICS for s in ("mean", "std")] + ["R_cumu_diff", "R_cumu_low", "R_cumu_high"]
        assert (again["R_cumu_verdict"].to_numpy() == table["R_cumu_verdict"].to_numpy()).all()
    else:
        again = summarise_runs(runs, GROUPS[name])
        checked = [f"{m}_{s}" for m in METRICS for s in ("mean", "std")]
        label_columns = GROUPS[name]
        pd.testing.assert_frame_equal(again[label_columns].astype(str), table[label_columns].astype(str))
    assert again["n_seeds"].tolist() == table["n_seeds"].tolist()
    np.testing.assert_allclose(again[checked].to_numpy(float), table[checked].to_numpy(float), rtol=1e-9,
                               atol=1e-12, equal_nan=True)
    # every (group) has each of the preset's seeds exactly once: the pairing of the intervals relies on it
    by = ["log", "method"] if name == "energy" else GROUPS[name]
    assert (runs.groupby(by)["seed"].apply(lambda s: sorted(s) == sorted(seeds))).all()


@pytest.mark.parametrize("preset,name", [c for c in COMMITTED if c[1] != "rq2"], ids=lambda c: str(c))
def test_the_claims_of_a_committed_study_are_paired_intervals(preset, name):
    table = studies.load_saved(name, preset, folder=ROOT / preset)
    claims = studies.compare_claims(name, table)
    resolved = claims[claims["here"].isin(["reproduces", "contradicted"])]
    assert len(claims) and set(claims["here"]) <= set(studies.VERDICTS)
    # a resolved verdict is an interval clear of 0 on the side it names
    assert ((resolved["here"] == "reproduces") == (resolved["ci_low"] > 0)).all()
    assert ((resolved["here"] == "contradicted") == (resolved["ci_high"] < 0)).all()
