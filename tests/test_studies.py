"""The paper's studies at the tiny preset, their summaries, the HTML report and the command line."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

import dac4rec_lite as dl
from dac4rec_lite import studies
from dac4rec_lite.cli import main
from dac4rec_lite.viz.studies import write_report

METRIC_COLUMNS = [f"{m}_{s}" for m in ("R_cumu", "R_avg", "Length", "CTR") for s in ("mean", "std")]


@pytest.fixture(autouse=True)
def tiny_and_one_thread(monkeypatch):
    monkeypatch.delenv("DAC4REC_PRESET", raising=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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


def test_cli_train_evaluate_study_end_to_end(tmp_path, capsys):
    out = str(tmp_path)
    assert main(["train", "--method", "DAC4Rec", "--preset", "tiny", "--seeds", "0", "--out", out, "--no-progress"]) == 0
    checkpoint = os.path.join(out, "DAC4Rec-seed0.pt")
    assert os.path.exists(checkpoint) and os.path.exists(os.path.join(out, "DAC4Rec-seed0_log.csv"))
    assert main(["evaluate", checkpoint, "--preset", "tiny", "--episodes", "5", "--out", out, "--no-progress"]) == 0
    evaluation = pd.read_csv(os.path.join(out, "DAC4Rec-seed0_evaluation.csv"))
    assert evaluation[["R_cumu", "R_avg", "Length", "CTR"]].notna().all().all()
    assert main(["study", "rq3", "--preset", "tiny", "--out", out, "--no-progress"]) == 0
    assert pd.read_csv(os.path.join(out, "rq3.csv"))["n_steps"].tolist() == [3, 5]
    assert os.path.exists(os.path.join(out, "rq3_runs.csv")) and os.path.exists(os.path.join(out, "report.html"))


@pytest.mark.parametrize("argv, message", [
    (["study", "rq9"], "invalid choice"),
    (["train", "--seeds", "a,b"], "--seeds takes integers"),
    (["train", "--method", "PPO"], "invalid choice"),
    (["evaluate", "missing.pt"], "no checkpoint at missing.pt"),
    (["train", "--device", "nosuchdevice"], "not available"),
])
def test_cli_bad_arguments_exit_2_with_a_message(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--out", str(tmp_path)] if argv[0] != "study" else argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_python_dash_m_help_runs():
    done = subprocess.run([sys.executable, "-m", "dac4rec_lite", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "train" in done.stdout and "study" in done.stdout


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
    checked = studies.check_claims(name, studies.paper_table(name), noise=False)
    measured = checked[checked["verdict"] != "n/a"]
    assert len(measured) >= 6 and (measured["verdict"] == "yes").all(), measured
    if name == "rq5":  # Table 4 reports CTR only
        assert set(checked.loc[checked["verdict"] == "n/a", "metric"]) == {"R_cumu"}


def _summary(rows: dict[str, tuple[float, float]], seeds: int = 2) -> pd.DataFrame:
    return pd.DataFrame([{"method": m, "n_seeds": seeds, **{f"{k}_{s}": (mu if s == "mean" else sd)
                                                             for k in ("R_cumu", "R_avg", "Length", "CTR")
                                                             for s in ("mean", "std")}}
                         for m, (mu, sd) in rows.items()])


def test_verdicts_say_yes_no_within_noise_or_not_measured():
    table = _summary({"DAC4Rec": (10.0, 0.1), "DAC4Rec −E": (9.95, 0.1), "DAC4Rec −A": (12.0, 0.1)})
    verdicts = studies.check_claims("rq4", table).set_index(["claim", "metric"])["verdict"]
    assert verdicts[("action approximation helps: DAC4Rec beats −A", "CTR")] == "no"
    assert verdicts[("energy guidance helps (a little): DAC4Rec beats −E", "R_cumu")] == "yes (within noise)"
    assert studies.check_claims("rq4", table, noise=False)["verdict"].isin(["yes", "no"]).all()
    missing = studies.check_claims("rq4", table[table["method"] != "DAC4Rec −A"])
    assert (missing.loc[missing["claim"].str.contains("−A"), "verdict"] == "n/a").all()
    rq3 = pd.DataFrame({"n_steps": [20, 100, 200], "n_seeds": 2, **{f"{k}_mean": [1.0, 3.0, 2.0] for k in ("R_cumu", "CTR")},
                        **{f"{k}_std": [0.5, 0.3, 0.1] for k in ("R_cumu", "CTR")}})
    assert (studies.check_claims("rq3", rq3)["verdict"] == "yes").all()
    assert (studies.check_claims("rq3", rq3.iloc[[0, 2]])["verdict"] == ["n/a", "yes", "n/a", "yes"]).all()


def test_compare_claims_puts_the_papers_verdict_beside_ours(rq4_tiny, rq1_tiny):
    rq4 = studies.compare_claims("rq4", rq4_tiny)
    assert list(rq4.columns) == ["claim", "metric", "paper", "here", "evidence"]
    assert set(rq4.loc[rq4["metric"] == "CTR", "paper"]) == {"yes (text)"}
    assert set(rq4.loc[rq4["metric"] == "R_cumu", "paper"]) == {"not reported"}
    rq2 = studies.compare_claims("rq2", studies.rq2("tiny", runs=rq1_tiny))
    assert (rq2["paper"] == "yes").all() and len(rq2) == 7
    counts = studies.claims_summary({"rq4": rq4_tiny, "rq1": rq1_tiny})
    assert counts["study"].tolist() == ["rq4", "rq1"] and counts["claims"].tolist() == [6, 8]
    assert (counts[["yes", "yes (within noise)", "no (within noise)", "no", "n/a"]].sum(axis=1) == counts["claims"]).all()


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
