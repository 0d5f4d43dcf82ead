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
