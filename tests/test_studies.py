"""The paper's studies at the tiny preset, their summaries, the HTML report and the command line."""
from __future__ import annotations

import os
import re

import numpy as np
import pandas as pd
import pytest
import torch

import dac4rec_lite as dl
from dac4rec_lite import studies
from dac4rec_lite.viz.studies import write_report

METRIC_COLUMNS = [f"{m}_{s}" for m in ("R_cumu", "R_avg", "Length", "CTR") for s in ("mean", "std")]


pytestmark = pytest.mark.usefixtures("no_preset_one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def rq1_tiny():
    return studies.rq1("tiny", methods=("BC", "DT", "DAC4Rec"), progress=False)


def test_summarise_runs_is_mean_and_population_std_over_seeds():
    runs = pd.DataFrame({"method": ["a", "a", "b"], "seed": [0, 1, 0], "R_cumu": [1.0, 3.0, 5.0],
                         "R_avg": [1.0, 1.0, 2.0], "Length": [2.0, 4.0, 6.0], "CTR": [0.1, 0.3, 0.5]})
    summary = studies.summarise_runs(runs, ["method"])
    assert summary["method"].tolist() == ["a", "b"] and summary["n_seeds"].tolist() == [2, 1]
    np.testing.assert_allclose(summary["R_cumu_mean"], [2.0, 5.0])
    np.testing.assert_allclose(summary["R_cumu_std"], [1.0, 0.0])
    assert studies.format_table(summary)["Length"].tolist() == ["3.00 ± 1.00", "6.00 ± 0.00"]
    assert summary.attrs["runs"]["R_cumu"].tolist() == [1.0, 3.0, 5.0]


def test_rq1_has_a_row_per_encoder_and_method(rq1_tiny):
    assert list(rq1_tiny.columns) == ["encoder", "method", "n_seeds", *METRIC_COLUMNS]
    assert rq1_tiny[["encoder", "method"]].values.tolist() == [
        [e, m] for e in ("gru", "sasrec") for m in ("BC", "DT", "DAC4Rec")]
    assert (rq1_tiny["Length_mean"] >= 1).all() and rq1_tiny["CTR_mean"].between(0, 1).all()


def test_rq2_reuses_rq1_or_trains_its_own(rq1_tiny):
    reused = studies.rq2("tiny", runs=rq1_tiny)
    assert list(reused.columns) == ["method", "length_bucket", "CTR_mean", "CTR_std", "n_episodes"]
    assert reused["length_bucket"].unique().tolist() == ["11-20", "21-30", "31+"]
    assert set(reused["method"]) == {"BC", "DT", "DAC4Rec"}
    fresh = studies.rq2("tiny", methods=("BC",), progress=False)
    assert fresh["method"].unique().tolist() == ["BC"] and len(fresh) == 3


def test_rq3_varies_n():
    table = studies.rq3("tiny", progress=False)
    assert table["n_steps"].tolist() == list(studies.STUDY_SETTINGS["tiny"]["n_values"])
    assert list(table.columns) == ["n_steps", "n_seeds", *METRIC_COLUMNS]


def test_rq4_ablations():
    table = studies.rq4("tiny", progress=False)
    assert table["method"].tolist() == ["DAC4Rec", "DAC4Rec −E", "DAC4Rec −A"]


def test_rq5_backbones_times_plugins():
    table = studies.rq5("tiny", progress=False)
    assert len(table) == 8
    assert table[["backbone", "diffusion", "energy"]].values.tolist() == [
        [b, d, e] for b in ("DDPG", "SAC") for d, e in ((False, False), (True, False), (False, True), (True, True))]


def test_build_agent_rejects_unknown_methods():
    with pytest.raises(ValueError, match="unknown method"):
        studies.build_agent("PPO", 4, 2, "tiny")


def test_report_is_one_self_contained_file(tmp_path, rq1_tiny):
    path = write_report({"rq1": rq1_tiny, "rq2": studies.rq2("tiny", runs=rq1_tiny)}, tmp_path / "report.html")
    text = open(path, encoding="utf-8").read()
    assert text.count('class="plotly-graph-div"') == 2       # both figures embedded
    assert not re.search(r"<script[^>]+src=", text)  # nothing fetched when opened
    assert text.count("window.Plotly") >= 1 and len(text) > 1_000_000  # the plotly.js bundle itself, inline once
    assert "DAC4Rec" in text and "±" in text


# --- saved results, the paper's numbers and its claims (notebook 07) ---------------------------------------

from dac4rec_lite.viz import studies as study_viz  # noqa: E402


@pytest.fixture(scope="module")
def rq4_tiny():
    return studies.rq4("tiny", progress=False)


def test_load_saved_finds_results_of_its_preset_only(tmp_path, monkeypatch, rq4_tiny):
    folder = tmp_path / "results" / "tiny"
    folder.mkdir(parents=True)
    rq4_tiny.to_csv(folder / "rq4.csv", index=False)
    rq4_tiny.attrs["runs"].to_csv(folder / "rq4_runs.csv", index=False)
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")                    # a notebook runs one level below the root
    loaded = studies.load_saved("rq4", "tiny")
    assert loaded["method"].tolist() == rq4_tiny["method"].tolist()
    np.testing.assert_allclose(loaded["R_cumu_mean"], rq4_tiny["R_cumu_mean"])
    assert loaded.attrs["source"] == str(folder / "rq4.csv") and len(loaded.attrs["runs"]) == len(rq4_tiny.attrs["runs"])
    quick = studies.load_saved("rq4", "quick")                    # results/tiny is never read as results/quick
    assert quick is None or os.path.join("results", "quick") in quick.attrs["source"]
    assert studies.load_saved("rq3", "tiny") is None              # nothing saved for rq3
    assert studies.load_saved("rq4", "quick", folder=folder) is not None   # an explicit folder is taken as given
    monkeypatch.setenv("DAC4REC_PRESET", "tiny")                  # the notebooks' override applies here too
    assert studies.load_saved("rq4", "quick") is not None


def test_load_saved_rejects_a_file_that_is_not_the_study(tmp_path):
    pd.DataFrame({"method": ["DAC4Rec"], "R_cumu": [1.0]}).to_csv(tmp_path / "rq4.csv", index=False)
    with pytest.raises(ValueError, match="not a saved rq4 table"):
        studies.load_saved("rq4", "tiny", folder=tmp_path)
    with pytest.raises(ValueError, match="unknown study"):
        studies.load_saved("rq9", "tiny", folder=tmp_path)


def test_load_or_run_prefers_saved_results_unless_told_to_rerun(tmp_path, rq4_tiny, rq1_tiny):
    rq4_tiny.to_csv(tmp_path / "rq4.csv", index=False)
    assert studies.load_or_run("rq4", "tiny", folder=tmp_path).attrs["source"] == str(tmp_path / "rq4.csv")
    fresh = studies.load_or_run("rq4", "tiny", rerun=True, folder=tmp_path, progress=False)
    assert fresh.attrs["source"] == "ran at preset tiny" and "runs" in fresh.attrs
    reused = studies.load_or_run("rq2", "tiny", folder=tmp_path, runs=rq1_tiny)        # rq1 run here: reused
    assert set(reused["method"]) == {"BC", "DT", "DAC4Rec"}
    rq1_tiny.to_csv(tmp_path / "rq1.csv", index=False)
    loaded_rq1 = studies.load_saved("rq1", "tiny", folder=tmp_path)                    # no CTR-by-length table
    own = studies.load_or_run("rq2", "tiny", folder=tmp_path, runs=loaded_rq1, methods=("BC",), progress=False)
    assert own["method"].unique().tolist() == ["BC"]


def test_load_or_run_falls_back_to_another_presets_saved_table(tmp_path, monkeypatch, rq4_tiny, rq1_tiny):
    folder = tmp_path / "results" / "tiny"
    folder.mkdir(parents=True)
    rq4_tiny.to_csv(folder / "rq4.csv", index=False)
    rq4_tiny.attrs["runs"].to_csv(folder / "rq4_runs.csv", index=False)
    rq1_tiny.to_csv(folder / "rq1.csv", index=False)
    rq1_tiny.attrs["runs"].to_csv(folder / "rq1_runs.csv", index=False)
    monkeypatch.chdir(tmp_path)
    # nothing saved at full: the tiny table is loaded instead of a run at full, and says where it came from
    fallen = studies.load_or_run("rq4", "full", fallback="tiny")
    np.testing.assert_allclose(fallen["R_cumu_mean"], rq4_tiny["R_cumu_mean"])
    assert fallen.attrs["preset"] == "tiny" and "nothing saved at full: the tiny preset's table" in fallen.attrs["source"]
    assert studies.load_or_run("rq4", "tiny", fallback="full").attrs["preset"] == "tiny"   # saved at the preset wins
    # rq2 from rq1's runs costs no training: computed from them, labelled with their preset, never the fallback's
    rq1 = studies.load_or_run("rq1", "full", fallback="tiny")
    rq2 = studies.load_or_run("rq2", "full", fallback="tiny", runs=rq1)
    assert rq2.attrs["preset"] == "tiny" and rq2.attrs["source"].startswith("rq1's runs")
    assert studies.claims_summary({"rq4": fallen, "rq2": rq2})["preset"].tolist() == ["tiny", "tiny"]
    with pytest.raises(ValueError, match="fallback must be a preset"):
        studies.load_or_run("rq4", "full", fallback="huge")
    # notebook 07 run with DAC4REC_PRESET=full: the environment picks the preset, never the fallback
    monkeypatch.setenv("DAC4REC_PRESET", "full")
    monkeypatch.setitem(studies.STUDIES, "rq4", lambda *a, **k: pytest.fail("ran rq4 instead of loading tiny's"))
    from_env = studies.load_or_run("rq4", "quick", fallback="tiny")
    assert from_env.attrs["preset"] == "tiny" and "nothing saved at full" in from_env.attrs["source"]


def test_paper_tables_hold_the_transcribed_numbers():
    rq1 = studies.paper_table("rq1").set_index(["encoder", "method"])
    assert rq1.loc[("gru", "DAC4Rec"), "R_cumu_mean"] == 81.5261 and rq1.loc[("sasrec", "TD3"), "R_avg_mean"] == 6.0442
    assert len(rq1) == 16 and rq1["Length_std"].isna().all()
    # the paper's R_avg is its R_cumu / Length, to the rounding of the printed Length: a transcription check
    np.testing.assert_allclose(rq1["R_cumu_mean"] / rq1["Length_mean"], rq1["R_avg_mean"], rtol=2e-3)
    rq2 = studies.paper_table("rq2").set_index(["method", "length_bucket"])
    assert rq2.loc[("DAC4Rec", "31+"), "CTR_mean"] == 0.702 and rq2.loc[("DT4Rec", "21-30"), "CTR_std"] == 0.044
    rq5 = studies.paper_table("rq5").set_index("method")
    assert rq5.loc["SAC+Diffusion+Energy", "CTR_mean"] == 0.8455 and rq5.loc["DDPG", "CTR_std"] == 0.0625
    assert rq5.index.tolist() == list(studies.RQ5_METHODS)
    assert studies.paper_table("rq3") is None and "N = 100" in studies.PAPER_PROSE["rq3"]
    assert "paper (VirtualTaobao)" in studies.paper_table("rq1").attrs["caption"]


@pytest.mark.parametrize("name", ["rq1", "rq2", "rq5"])
def test_every_claim_holds_on_the_papers_own_numbers(name):
    checked = studies.check_claims(name, studies.paper_table(name))
    measured = checked[checked["verdict"] != "n/a"]
    assert len(measured) >= 6 and (measured["verdict"] == "yes").all(), measured
    if name == "rq5":  # Table 4 reports CTR only
        assert set(checked.loc[checked["verdict"] == "n/a", "metric"]) == {"R_cumu"}


def _summary(rows: dict[str, tuple[float, float]], seeds: int = 2) -> pd.DataFrame:
    return pd.DataFrame([{"method": m, "n_seeds": seeds, **{f"{k}_{s}": (mu if s == "mean" else sd)
                                                             for k in ("R_cumu", "R_avg", "Length", "CTR")
                                                             for s in ("mean", "std")}}
                         for m, (mu, sd) in rows.items()])


def _runs(rows: dict[str, list[float]], metric_shift: float = 0.0) -> pd.DataFrame:
    """Per-seed runs: method → R_cumu per seed (CTR = R_cumu / 100 + metric_shift)."""
    return pd.DataFrame([{"method": m, "encoder": "none", "seed": s, "R_cumu": v, "R_avg": v / 10, "Length": 10.0,
                          "CTR": v / 100 + metric_shift} for m, values in rows.items() for s, v in enumerate(values)])


def test_claims_are_paired_intervals_on_the_runs():
    seed_effect = np.array([0.0, 5.0, -3.0, 8.0, 1.0])          # moves every method together: pairing removes it
    runs = _runs({"DAC4Rec": list(10 + seed_effect + [0.1, -0.1, 0.05, 0.0, -0.05]),
                  "DAC4Rec −E": list(10 + seed_effect + [0.3, -0.4, 0.2, -0.1, 0.0]),
                  "DAC4Rec −A": list(12 + seed_effect)})
    table = studies.summarise_runs(runs, ["method"])
    checked = studies.check_claims("rq4", table).set_index(["claim", "metric"])
    approx = checked.loc[("action approximation helps: DAC4Rec beats −A", "R_cumu")]
    assert approx["verdict"] == "contradicted" and approx["n_seeds"] == 5
    np.testing.assert_allclose(approx["difference"], -2.0)            # mean of the per-seed differences
    d = np.array([0.1, -0.1, 0.05, 0.0, -0.05]) - 2.0
    half = 2.776445105 * d.std(ddof=1) / np.sqrt(5)                   # t(0.975, 4) · sd / √n, by hand
    np.testing.assert_allclose([approx["ci_low"], approx["ci_high"]], [d.mean() - half, d.mean() + half])
    energy = checked.loc[("energy guidance helps (a little): DAC4Rec beats −E", "R_cumu")]
    assert energy["verdict"] == "not resolved at this budget" and energy["ci_low"] < 0 < energy["ci_high"]
    gap = checked.loc[("approximation matters more than energy: gap to −A > gap to −E", "R_cumu")]
    assert gap["verdict"] == "contradicted"                           # −E − −A ≈ −2
    # unpaired, the seed effect (sd ≈ 4.3) would swamp the 2-point gap: the paired interval is far narrower
    assert approx["ci_high"] - approx["ci_low"] < 0.5 < 2 * 4.3 / np.sqrt(5)
    missing = studies.check_claims("rq4", table[table["method"] != "DAC4Rec −A"], runs=runs[runs["method"] != "DAC4Rec −A"])
    assert (missing.loc[missing["claim"].str.contains("−A"), "verdict"] == "n/a").all()
    means_only = studies.check_claims("rq4", table, paired=False)
    assert means_only["verdict"].isin(["yes", "no"]).all() and means_only["n_seeds"].eq(0).all()


def test_one_seed_never_resolves_a_claim():
    runs = _runs({"DAC4Rec": [10.0], "DAC4Rec −E": [1.0], "DAC4Rec −A": [1.0]})
    checked = studies.check_claims("rq4", studies.summarise_runs(runs, ["method"]))
    assert (checked["verdict"] == "not resolved at this budget").all()
    assert checked["evidence"].str.contains("1 seed: no interval").all()


def test_rq3_claims_best_n_and_an_f_test_of_the_spread():
    rng = np.random.default_rng(0)
    rows = [{"n_steps": n, "seed": s, "R_cumu": centre + spread * z, "CTR": (centre + spread * z) / 100}
            for n, centre, spread in ((20, 1.0, 3.0), (100, 9.0, 0.5), (200, 3.0, 0.05))
            for s, z in enumerate(rng.standard_normal(6))]
    runs = pd.DataFrame(rows)
    table = studies.summarise_runs(runs, ["n_steps"], metrics=("R_cumu", "CTR"))
    checked = studies.check_claims("rq3", table).set_index(["claim", "metric"])["verdict"]
    assert checked[("N = 100 gives the best result", "R_cumu")] == "reproduces"
    assert checked[("the spread over seeds shrinks as N grows", "R_cumu")] == "reproduces"   # 3 vs 0.05: F ≫ 5.05
    flat = studies.check_claims("rq3", table.iloc[[0, 2]]).set_index(["claim", "metric"])["verdict"]
    assert flat[("N = 100 gives the best result", "CTR")] == "n/a"


def test_compare_claims_puts_the_papers_verdict_beside_ours(rq4_tiny, rq1_tiny):
    rq4 = studies.compare_claims("rq4", rq4_tiny)
    assert list(rq4.columns) == ["claim", "metric", "paper", "here", "difference", "ci_low", "ci_high", "n_seeds",
                                 "evidence"]
    assert set(rq4.loc[rq4["metric"] == "CTR", "paper"]) == {"yes (text)"}
    assert set(rq4.loc[rq4["metric"] == "R_cumu", "paper"]) == {"not reported"}
    assert set(rq4["here"]) <= set(studies.VERDICTS)
    rq2 = studies.compare_claims("rq2", studies.rq2("tiny", runs=rq1_tiny))
    assert (rq2["paper"] == "yes").all() and len(rq2) == 7
    counts = studies.claims_summary({"rq4": rq4_tiny, "rq1": rq1_tiny})
    assert counts["study"].tolist() == ["rq4", "rq1"] and counts["claims"].tolist() == [6, 8]
    assert (counts[list(studies.VERDICTS)].sum(axis=1) == counts["claims"]).all()


def test_format_summary_reads_kit_and_paper_tables_alike(rq1_tiny):
    paper = studies.format_summary(studies.paper_table("rq1"))
    assert list(paper.columns) == ["encoder", "method", "R_cumu", "R_avg", "Length"]
    assert paper["R_cumu"].iloc[0] == "74.65 ± 24.22" and paper["Length"].iloc[0] == "13.22"
    ours = studies.format_summary(rq1_tiny)
    assert list(ours.columns) == ["encoder", "method", "R_cumu", "R_avg", "Length", "CTR"]
    assert ours["CTR"].str.match(r"^\d\.\d{3} ± \d\.\d{3}$").all()
    table3 = studies.format_summary(studies.paper_table("rq2"))
    assert table3.columns.tolist() == ["method", "11-20", "21-30", "31+"] and table3.iloc[-1, 1] == "0.803 ± 0.029"


def test_beside_figure_and_explorer_show_both_panels(rq1_tiny):
    paper = studies.paper_table("rq1")
    fig = study_viz.beside_figure(rq1_tiny, paper, "R_cumu", color="encoder")
    assert [a.text for a in fig.layout.annotations] == [study_viz.HERE_TITLE, study_viz.PAPER_TITLE]
    assert len(fig.data) == 4 and fig.data[0].marker.color == fig.data[2].marker.color   # gru: same colour both sides
    assert sum(t.showlegend for t in fig.data) == 2
    missing = study_viz.beside_figure(rq1_tiny, paper, "CTR", color="encoder")            # Tables 1–2 have no CTR
    assert len(missing.data) == 2 and "CTR: not reported" in [a.text for a in missing.layout.annotations]
    scaled = study_viz.beside_figure(rq1_tiny, paper, "R_cumu", color="encoder", scale=True)
    assert max(max(t.y) for t in scaled.data[2:]) == pytest.approx(1.0)
    explorer = study_viz.comparison_explorer(rq1_tiny, paper, color="encoder")
    explorer.controls["metric"].value = "CTR"
    assert len(explorer.figure.data) == 2
    explorer.controls["metric"].value = "R_avg"
    explorer.controls["scale"].value = True
    assert len(explorer.figure.data) == 4 and max(max(t.y) for t in explorer.figure.data[2:]) == pytest.approx(1.0)
    assert "CTR: not reported" not in [a.text for a in explorer.figure.layout.annotations]


def test_side_by_side_shows_each_table_under_its_caption():
    shown = study_viz.side_by_side({"here": pd.DataFrame({"a": [1]}), "paper (VirtualTaobao)": pd.DataFrame({"b": [2]})})
    assert shown.data.count("<table") == 2 and "paper (VirtualTaobao)" in shown.data


def test_load_agent_reads_the_class_from_the_checkpoint(tmp_path):
    agent = dl.BehaviorCloning(4, 2, hidden_dim=8, seed=1)
    agent.save(tmp_path / "bc.pt")
    loaded = dl.agents.load_agent(tmp_path / "bc.pt")
    assert type(loaded) is dl.BehaviorCloning
    obs = np.zeros((3, 4), dtype=np.float32)
    np.testing.assert_array_equal(loaded.act(obs), agent.act(obs))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable"):
        dl.agents.load_agent(tmp_path / "junk.pt")


# --- one preset table (issue 18) ---------------------------------------------------------------------------

def test_one_preset_table_feeds_recipes_studies_and_utils(monkeypatch):
    from dac4rec_lite import presets, recipes

    assert dl.presets is presets and dl.PRESETS == presets.PRESETS == ("tiny", "quick", "standard", "full")
    for preset in presets.PRESETS:
        assert studies.STUDY_SETTINGS[preset] is presets.table[preset]["study"]
        assert recipes.RECSIM_RECIPES[preset] is presets.table[preset]["recipe"]
        assert set(presets.table[preset]) == set(presets.USES)
    # the two uses of one preset differ by name, not by accident: quick's recipe trains one method longer
    quick = presets.table["quick"]
    assert (quick["recipe"]["n_episodes"], quick["recipe"]["agent"]["n_steps"], quick["recipe"]["train_steps"]) == (600, 20, 2000)
    assert (quick["study"]["n_episodes"], quick["study"]["agent"]["n_steps"], quick["study"]["train_steps"]) == (400, 10, 1000)
    assert quick["study"]["seeds"] == (0, 1, 2, 3, 4)
    # standard lies between quick and full in every size that sets the cost
    for use in presets.USES:
        for key in ("n_episodes", "train_steps", "eval_episodes"):
            sizes = [presets.table[p][use][key] for p in ("quick", "standard", "full")]
            assert sizes[0] < sizes[1] < sizes[2], (use, key, sizes)
    copy = presets.settings("quick", "study")
    copy["agent"]["n_steps"] = 999
    assert presets.table["quick"]["study"]["agent"]["n_steps"] == 10
    with pytest.raises(ValueError, match="use='bogus'"):
        presets.settings("quick", "bogus")


def test_preset_precedence_explicit_then_environment_then_default(monkeypatch):
    from dac4rec_lite.presets import resolve_preset

    assert resolve_preset("quick") == "quick"
    monkeypatch.setenv("DAC4REC_PRESET", "tiny")
    assert resolve_preset("quick") == "tiny"                     # the variable overrides a notebook's default
    assert resolve_preset("standard", explicit=True) == "standard"  # an explicit --preset wins over it
    monkeypatch.setenv("DAC4REC_PRESET", "bogus")
    with pytest.raises(ValueError, match="DAC4REC_PRESET='bogus' is not a preset"):
        resolve_preset("quick")
    assert resolve_preset("full", explicit=True) == "full"       # a broken variable does not matter then
    monkeypatch.delenv("DAC4REC_PRESET")
    with pytest.raises(ValueError, match="PRESET='huge'"):
        resolve_preset("huge")
    with pytest.raises(TypeError, match="string"):
        resolve_preset(3)


# --- paired differences (issue 15) -------------------------------------------------------------------------

from dac4rec_lite.experiments import paired  # noqa: E402


@pytest.mark.parametrize("df, expected", [(1, 12.706205), (2, 4.302653), (4, 2.776445), (9, 2.262157),
                                          (29, 2.045230), (1000, 1.962339)])
def test_t_quantile_matches_the_printed_table(df, expected):
    assert paired.t_quantile(0.975, df) == pytest.approx(expected, abs=1e-6)
    assert paired.t_quantile(0.025, df) == pytest.approx(-expected, abs=1e-6)


def test_f_quantile_matches_the_printed_table():
    assert paired.f_quantile(0.95, 4, 4) == pytest.approx(6.388233, abs=1e-5)
    assert paired.f_quantile(0.95, 1, 10) == pytest.approx(4.964603, abs=1e-5)
    assert paired.f_quantile(0.99, 3, 20) == pytest.approx(4.938193, abs=1e-5)
    with pytest.raises(ValueError, match="probability"):
        paired.t_quantile(1.0, 3)
    with pytest.raises(ValueError, match="df"):
        paired.t_quantile(0.9, float("nan"))


def test_interval_covers_the_true_mean_95_percent_of_the_time():
    rng = np.random.default_rng(7)
    hits = sum(interval.low <= 0.0 <= interval.high
               for interval in (paired.mean_interval(rng.normal(0.0, 2.0, 5)) for _ in range(4000)))
    assert abs(hits / 4000 - 0.95) < 0.012                       # binomial sd of the share ≈ 0.0034


def test_paired_differences_use_only_shared_seeds():
    runs = pd.DataFrame({"method": ["A"] * 4 + ["B"] * 3, "seed": [0, 1, 2, 3, 0, 1, 2],
                         "R_cumu": [5.0, 7.0, 9.0, 100.0, 4.0, 5.0, 6.0]})
    out = paired.paired_differences(runs, "A", "B", "R_cumu")
    assert out["n_pairs"] == 3 and out["difference"] == pytest.approx(2.0)   # seed 3 has no B: left out
    half = 4.302653 * np.std([1.0, 2.0, 3.0], ddof=1) / np.sqrt(3)
    assert (out["ci_low"], out["ci_high"]) == pytest.approx((2.0 - half, 2.0 + half), abs=1e-5)
    assert out["verdict"] == "not resolved at this budget"        # half-width 2.48 > 2: the interval holds 0
    with pytest.raises(ValueError, match="no column"):
        paired.paired_differences(runs, "A", "B", "CTR")


def test_verdict_follows_the_interval():
    assert paired.Interval(1.0, 0.2, 1.8, 5).verdict == "reproduces"
    assert paired.Interval(-1.0, -1.8, -0.2, 5).verdict == "contradicted"
    assert paired.Interval(0.5, -0.3, 1.3, 5).verdict == "not resolved at this budget"
    assert paired.Interval(3.0, -np.inf, np.inf, 1).verdict == "not resolved at this budget"
    with pytest.raises(ValueError, match="NaN"):
        paired.mean_interval([1.0, np.nan])


# --- flat run rows, the runner, the energy study ------------------------------------------------------------

def test_run_rows_are_flat_and_buckets_add_up(rq1_tiny):
    runs = rq1_tiny.attrs["runs"]
    assert all(np.isscalar(v) for v in runs.iloc[0].to_numpy())
    for key in ("11_20", "21_30", "31plus"):
        pooled = runs[f"clicks_{key}"] / runs[f"shown_{key}"]
        np.testing.assert_allclose(runs[f"CTR_{key}"].dropna(), pooled.dropna())
    in_buckets = runs[[f"episodes_{k}" for k in ("11_20", "21_30", "31plus")]].sum(axis=1)
    assert (in_buckets <= studies.STUDY_SETTINGS["tiny"]["eval_episodes"]).all()
    table3 = studies.rq2("tiny", runs=rq1_tiny)
    dac = table3[(table3["method"] == "DAC4Rec") & (table3["length_bucket"] == "11-20")]
    gru = runs[(runs["encoder"] == "gru") & (runs["method"] == "DAC4Rec")]
    assert dac["n_episodes"].item() == gru["episodes_11_20"].sum()


def test_saved_rq1_with_its_runs_feeds_rq2_without_training(tmp_path, rq1_tiny):
    rq1_tiny.to_csv(tmp_path / "rq1.csv", index=False)
    rq1_tiny.attrs["runs"].to_csv(tmp_path / "rq1_runs.csv", index=False)
    loaded = studies.load_saved("rq1", "tiny", folder=tmp_path)
    reused = studies.load_or_run("rq2", "tiny", folder=tmp_path / "none", runs=loaded)
    pd.testing.assert_frame_equal(reused, studies.rq2("tiny", runs=rq1_tiny), check_dtype=False)


def test_study_resumes_from_its_run_table(tmp_path):
    path = tmp_path / "rq4_runs.csv"
    first = studies.rq4("tiny", progress=False, table_path=str(path))
    saved = pd.read_csv(path)
    assert len(saved) == 3 and set(saved["method"]) == set(studies.RQ4_METHODS)
    saved.loc[0, "R_cumu"] = 1234.0                              # a resumed study reads the table, not the runs
    saved.to_csv(path, index=False)
    again = studies.rq4("tiny", progress=False, table_path=str(path))
    assert again.loc[0, "R_cumu_mean"] == 1234.0 and first.loc[0, "R_cumu_mean"] != 1234.0


def _energy_rows() -> pd.DataFrame:
    rows = []
    for seed, base in enumerate([10.0, 14.0, 8.0]):
        row = {"log": "mixture", "method": "DAC4Rec", "encoder": "none", "seed": seed}
        for scale, gain in ((0.0, 0.0), (1.0, 1.0 + 0.1 * seed), (4.0, -3.0)):
            row.update({f"R_cumu@{scale:g}": base + gain, f"R_avg@{scale:g}": 1.0, f"Length@{scale:g}": 10.0,
                        f"CTR@{scale:g}": (base + gain) / 100})
        rows.append(row)
    return pd.DataFrame(rows)


def test_energy_table_pairs_each_scale_with_the_unguided_agent():
    table = studies.energy_table(_energy_rows()).set_index("scale")
    assert table.index.tolist() == [0.0, 1.0, 4.0] and (table["n_seeds"] == 3).all()
    np.testing.assert_allclose(table["R_cumu_mean"], [32 / 3, 32 / 3 + 1.1, 32 / 3 - 3])
    assert table.loc[0.0, "R_cumu_verdict"] == "baseline"
    one = table.loc[1.0]
    half = 4.302653 * np.std([1.0, 1.1, 1.2], ddof=1) / np.sqrt(3)
    assert one["R_cumu_diff"] == pytest.approx(1.1) and one["R_cumu_low"] == pytest.approx(1.1 - half, abs=1e-5)
    assert one["R_cumu_verdict"] == "reproduces" and table.loc[4.0, "R_cumu_verdict"] == "contradicted"
    long = studies.energy_runs_long(_energy_rows())
    assert len(long) == 9 and long.columns.tolist()[:5] == ["log", "method", "encoder", "scale", "seed"]
    answer = studies.energy_summary(table.reset_index()).iloc[0]
    assert (answer["raises"], answer["lowers"], answer["unresolved"], answer["answer"]) == (1, 1, 0, "mixed")
    assert answer["best_scale"] == 1.0 and answer["best_diff"] == pytest.approx(1.1)
    claims = studies.check_claims("energy", table.reset_index())
    assert claims["claim"].str.contains("scale 1 helps DAC4Rec").any() and len(claims) == 4


def test_energy_study_trains_once_and_evaluates_every_scale(tmp_path):
    table = studies.energy("tiny", logs=("expert + random",), methods=("DAC4Rec",), scales=(0.0, 2.0), progress=False,
                           table_path=str(tmp_path / "energy_runs.csv"))
    assert table[["log", "method", "scale"]].values.tolist() == [["expert + random", "DAC4Rec", 0.0],
                                                                 ["expert + random", "DAC4Rec", 2.0]]
    runs = pd.read_csv(tmp_path / "energy_runs.csv")
    assert len(runs) == 1 and {"R_cumu@0", "R_cumu@2"} <= set(runs.columns)   # one trained agent, two scales
    with pytest.raises(ValueError, match="include 0"):
        studies.energy("tiny", scales=(1.0, 2.0))
    with pytest.raises(ValueError, match="unknown behaviour log"):
        studies.energy("tiny", logs=("bogus",))


def test_energy_figure_and_summary_show_the_intervals(tmp_path):
    table = studies.energy_table(_energy_rows())
    shown = studies.format_summary(table)
    assert shown["R_cumu vs 0"].tolist()[0] == "baseline" and shown["R_cumu vs 0"].tolist()[2] == "-3.00 [-3.00, -3.00]"
    fig = study_viz.energy_figure(table)
    top, bottom = fig.data[0], fig.data[1]
    np.testing.assert_allclose(top.y, table["R_cumu_mean"])
    np.testing.assert_allclose(np.asarray(top.y) + np.asarray(top.error_y.array), table["R_cumu_mean_high"])
    np.testing.assert_allclose(np.asarray(bottom.y) - np.asarray(bottom.error_y.arrayminus), table["R_cumu_low"])
    text = open(write_report({"energy": table}, tmp_path / "r.html"), encoding="utf-8").read()
    assert "guidance scale" in text and "baseline" in text


def test_bandit_contrast_guidance_with_exact_models_reaches_the_best_blob():
    from dac4rec_lite.experiments.guidance import bandit_guidance_by_scale

    table = bandit_guidance_by_scale(scales=(0.0, 2.0), n_seeds=3, n_samples=200, n_steps=10).set_index("scale")
    # unguided, the exact behaviour puts a quarter of its actions on each blob (mean reward (3+0+1.5+5)/4)
    assert table.loc[0.0, "best_blob"] == pytest.approx(0.25, abs=0.06)
    assert table.loc[0.0, "reward_mean"] == pytest.approx(2.375, abs=0.35)
    assert table.loc[2.0, "best_blob"] > 0.95 and table.loc[2.0, "reward_verdict"] == "reproduces"
    assert table.loc[2.0, "reward_low"] > 2.0
    fig = study_viz.energy_figure(table.reset_index(), "reward")                     # drawn like the energy study
    np.testing.assert_allclose(fig.data[0].y, table["reward_mean"])


def test_choose_falls_back_to_the_largest_listed_preset_below():
    from dac4rec_lite.presets import choose

    sizes = {"tiny": 1, "quick": 2, "full": 4}
    assert [choose(sizes, p) for p in ("tiny", "quick", "standard", "full")] == [1, 2, 2, 4]
    assert choose({**sizes, "standard": 3}, "standard") == 3
    with pytest.raises(ValueError, match="no entry for 'tiny'"):
        choose({"quick": 2}, "tiny")
    with pytest.raises(ValueError, match="not presets"):
        choose({"huge": 9}, "quick")
    with pytest.raises(ValueError, match="not a preset"):
        choose(sizes, "bogus")
