"""The benchmark scripts run end to end at toy sizes and print the rows and ratios they promise.

They measure speed, so nothing here asserts a time; these tests only keep the scripts from rotting when the
core they time changes (the sampling floor, for one, reads the ε-network's layers by position)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def run(script: str, *args: str) -> str:
    completed = subprocess.run([sys.executable, str(BENCHMARKS / script), *args], capture_output=True, text=True,
                               timeout=600)
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def test_sampling_benchmark_prints_every_row_and_the_ratios():
    out = run("sampling.py", "--batch", "16", "--steps", "5", "--hidden", "32", "--repeats", "1", "--threads", "1",
              "--activations", "relu", "silu", "mish")
    for row in ("ours (relu)", "ours (silu)", "ours (mish)", "floor (the fast path's matmul calls)",
                "bias-free matmuls (stricter floor)", "reference (Diffusion-QL style, Mish)"):
        assert row in out, out
    assert re.search(r"ours \(relu\) / floor = [\d.]+ +ours / bias-free matmuls = [\d.]+ +reference / ours = [\d.]+", out), out


def test_training_benchmark_prints_both_ratios():
    out = run("training.py", "--steps", "5", "--batch", "16", "--obs-dim", "4", "--action-dim", "2", "--repeats", "1")
    assert re.search(r"chain / dac4rec = [\d.]+ +chain / dac4rec-15 = [\d.]+", out), out


@pytest.mark.slow
def test_sampler_quality_benchmark_compares_every_sampler_with_ddpm():
    out = run("sampler_quality.py", "--n-steps", "10", "--steps", "3", "10", "--actions", "64", "--seeds", "2",
              "--updates", "20")
    lines = out.splitlines()
    assert sum(bool(re.search(r"\)\s+ddpm\s+10\s", line)) for line in lines) == 2, out  # one per trained policy
    rows = [line for line in lines if re.search(r"\)\s+(ddpm|ddim|dpm)\s+\d+\s", line)]
    assert len(rows) == 10, out  # per policy: ddpm, then ddim and dpm at 3 and 10 steps
    assert len(re.findall(r"within 2 % of DDPM's mean reward: (?:yes|no) \(largest gap [\d.]+ %\)", out)) == 2, out


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the CPU answer; on a GPU the script runs")
def test_gpu_check_says_no_cuda_and_exits_0_on_a_cpu_machine(tmp_path):
    script = BENCHMARKS.parent / "scripts" / "gpu_check.sh"
    completed = subprocess.run(["bash", str(script), str(tmp_path / "figures.txt")], capture_output=True, text=True,
                               timeout=120, env={**__import__("os").environ, "PYTHON": sys.executable})
    assert completed.returncode == 0, completed.stderr
    assert "no CUDA device" in completed.stdout
    assert not (tmp_path / "figures.txt").exists()  # nothing measured, nothing written


# ------------------------------------------------------------------ benchmarks/study_estimate.py (the runs and sums)
def _study_estimate():
    import importlib.util
    spec = importlib.util.spec_from_file_location("study_estimate", BENCHMARKS / "study_estimate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_study_estimate_counts_the_studies_own_runs(monkeypatch):
    from dac4rec_lite.experiments import studies
    from dac4rec_lite.experiments.methods import BEHAVIOUR_LOGS, STUDY_SETTINGS, EnergyRun

    est = _study_estimate()
    monkeypatch.setenv("DAC4REC_PRESET", "quick")  # the preset asked for wins over the variable
    run_study = studies.run_study
    seeds = STUDY_SETTINGS["standard"]["seeds"]
    runs = est.study_runs("standard", ["rq1-gru", "rq4", "rq5", "energy"])
    assert studies.run_study is run_study  # restored
    by_study = {name: [r for s, r in runs if s == name] for name in ("rq1-gru", "rq4", "rq5", "energy")}
    assert all(r.preset == "standard" for _, r in runs)
    assert [(r.method, r.encoder) for r in by_study["rq1-gru"]] == [(m, "gru") for m in studies.RQ1_METHODS for _ in seeds]
    assert [r.method for r in by_study["rq4"]] == [m for m in studies.RQ4_METHODS for _ in seeds]
    assert [r.method for r in by_study["rq5"]] == [m for m in studies.RQ5_METHODS for _ in seeds]
    energy = by_study["energy"]
    assert len(energy) == len(BEHAVIOUR_LOGS) * len(studies.ENERGY_METHODS) * len(seeds)
    assert all(isinstance(r, EnergyRun) and r.scales == studies.ENERGY_SCALES for r in energy)
    assert {r.log for r in energy} == set(BEHAVIOUR_LOGS)
    assert len(runs) == sum(map(len, by_study.values()))

    # ``all`` is ``study all``: RQ2 reads RQ1's GRU runs, so it adds none; alone it has its own
    everything = est.study_runs("tiny", ["all"])
    assert "rq2" not in {s for s, _ in everything}
    assert {s for s, _ in everything} == {"rq1", "rq3", "rq4", "rq5", "energy"}
    assert [r.overrides for s, r in everything if s == "rq3"] == [(("n_steps", n),) for n in STUDY_SETTINGS["tiny"]["n_values"]
                                                                   for _ in STUDY_SETTINGS["tiny"]["seeds"]]
    alone = est.study_runs("tiny", ["rq2"])
    assert [r.method for _, r in alone] == list(studies.RQ2_METHODS) * len(STUDY_SETTINGS["tiny"]["seeds"])
    with pytest.raises(ValueError, match="unknown study"):
        est.study_runs("tiny", ["rq9"])
    with pytest.raises(ValueError, match="not a preset"):
        est.study_runs("huge", ["rq4"])


def test_makespan_schedules_runs_in_order_on_the_first_free_core():
    est = _study_estimate()
    assert est.makespan([3, 1, 1, 1], 2) == 3          # one core takes the 3, the other the three 1s
    assert est.makespan([1, 1, 1, 3], 2) == 4          # the 3 starts last, on the core free at 1
    assert est.makespan([1, 2, 3, 4], 1) == 10         # one core: the sum
    assert est.makespan([5, 1], 8) == 5                # more cores than runs: the longest
    assert est.makespan([], 2) == 0
    with pytest.raises(ValueError, match="cores"):
        est.makespan([1], 0)


def test_study_estimate_compares_estimate_with_a_run_table(tmp_path):
    import pandas as pd

    est = _study_estimate()
    runs = pd.DataFrame({"run": ["DAC4Rec", "DAC4Rec", "DDPG gru"], "updates (s)": [8.0, 8.0, 1.0],
                         "f_ψ (s)": [2.0, 2.0, 0.0], "evaluation (s)": [3.0, 3.0, 1.0]})
    table = tmp_path / "energy_runs.csv"
    pd.DataFrame({"method": ["DAC4Rec", "DAC4Rec", "DDPG", "SAC"], "encoder": ["none", "none", "gru", "none"],
                  "train_seconds": [15.0, 25.0, 4.0, 1.0], "eval_seconds": [5.0, 7.0, 2.0, 1.0]}).to_csv(table, index=False)
    out = est.compare({"runs": runs}, str(table)).set_index("run")
    assert list(out.index) == ["DAC4Rec", "DDPG gru"]  # SAC was not estimated: left out
    assert out.loc["DAC4Rec", "estimate / measured (train)"] == pytest.approx(10 / 20)
    assert out.loc["DAC4Rec", "estimate / measured (eval)"] == pytest.approx(3 / 6)
    assert out.loc["DDPG gru", "estimate / measured (train)"] == pytest.approx(1 / 4)


def test_study_estimate_prints_every_run_and_the_totals():
    out = run("study_estimate.py", "--preset", "tiny", "--studies", "rq4", "energy", "--updates", "1", "--repeats", "1",
              "--cores", "1", "3")
    for row in ("DAC4Rec −E", "DAC4Rec −A", "DDPG+Diffusion+Energy"):
        assert re.search(rf"{re.escape(row)}\s+\d+\s+\d+\s", out), out
    assert re.search(r"energy\s+DAC4Rec\s+3\s+5\s", out), out  # 3 logs × 1 seed at tiny, 5 guidance scales each
    total = re.search(r"total: (\d+) runs, ([\d.e-]+) h serially; k=1: ([\d.e-]+) h, k=3: ([\d.e-]+) h", out)
    assert total, out
    assert int(total[1]) == 3 + 3 * 2  # rq4: 3 methods; energy: 3 logs × 2 methods; 1 seed at tiny
    assert total[2] == total[3]  # one core: the serial sum
    assert float(total[4]) <= float(total[2])
