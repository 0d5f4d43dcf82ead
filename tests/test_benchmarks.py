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
