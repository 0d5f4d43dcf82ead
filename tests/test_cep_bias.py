"""The minimisers of the energy-training losses against the known ℰ (dac4rec_lite.cep_bias, notebook 05)."""
from __future__ import annotations

import math

import pytest
import torch

import dac4rec_lite as dl
from dac4rec_lite.cep_bias import discrete_energy, discrete_energy_optimum, gaussian_energy_bias

# The example: cell A holds clean actions with Q = 0 or Q = 10 (50/50), cell B only Q = 5.
CELLS = [(0.5, [(0.0, 0.5), (10.0, 0.5)]), (0.5, [(5.0, 1.0)])]
GAP = math.log(0.5 + 0.5 * math.exp(10.0)) - 5.0  # ℰ_A − ℰ_B at κ = 1, ≈ 4.31


def test_discrete_energy_is_the_log_mean_exp_of_each_cell():
    energy = discrete_energy(CELLS, beta=1.0)
    assert energy[0].item() == pytest.approx(math.log(0.5 + 0.5 * math.exp(10.0)), abs=1e-12)
    assert energy[1].item() == pytest.approx(5.0, abs=1e-12)
    assert (energy[0] - energy[1]).item() == pytest.approx(4.3069, abs=1e-4)


def test_cep_with_softmax_labels_is_blind_to_the_gap_at_k2():
    # Every mixed group has expected label ½ for each support, so the optimum has f_A = f_B.
    f = discrete_energy_optimum(CELLS, beta=1.0, n_supports=2, loss="cep")
    assert (f[0] - f[1]).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_cep_with_unnormalised_weights_is_exact_for_every_k(k):
    f = discrete_energy_optimum(CELLS, beta=1.0, n_supports=k, loss="cep_unnormalised")
    assert (f[0] - f[1]).item() == pytest.approx(GAP, abs=1e-6)


def test_mse_optimum_matches_its_closed_form_at_k2():
    # A point in A: the other support is in A with probability ½ (ℰ̂ = log mean of the two exp(Q)), else ℰ̂ is
    # its own Q; a point in B always gets ℰ̂ = 5.
    pair = 0.25 * 0.0 + 0.25 * 10.0 + 0.5 * math.log((1 + math.exp(10.0)) / 2)
    f_a = 0.5 * 5.0 + 0.5 * pair
    f = discrete_energy_optimum(CELLS, beta=1.0, n_supports=2, loss="mse")
    assert (f[0] - f[1]).item() == pytest.approx(f_a - 5.0, abs=1e-9)


@pytest.mark.parametrize("loss", ["cep", "mse"])
def test_biased_losses_approach_the_gap_as_k_grows(loss):
    gaps = [(lambda f: (f[0] - f[1]).item())(discrete_energy_optimum(CELLS, 1.0, k, loss)) for k in (2, 3, 4, 8)]
    assert all(a < b for a, b in zip(gaps, gaps[1:])), gaps
    assert all(g < GAP - 0.5 for g in gaps), gaps  # still short of ℰ_A − ℰ_B at K = 8


def test_gaussian_case_unnormalised_is_unbiased_and_softmax_cep_is_not():
    schedule = dl.VPSchedule(20)
    table = gaussian_energy_bias(schedule, steps=[10], beta=1.0, slope=1.0, n_supports=(2, 16), n_groups=3000, seed=0)
    ratio = table.set_index(["K", "loss"])["ratio"]
    exact = 1.0 * math.sqrt(float(schedule.alphas_cumprod[9]))
    assert table["exact_slope"].iloc[0] == pytest.approx(exact, rel=1e-12)
    # Monte-Carlo tolerance: 3000 groups with exp(a) weights; over seeds 0..3 the error was at most 0.041.
    assert ratio[(2, "cep_unnormalised")] == pytest.approx(1.0, abs=0.08)
    assert ratio[(16, "cep_unnormalised")] == pytest.approx(1.0, abs=0.08)
    assert ratio[(2, "cep")] < 0.88  # softmax labels: guidance too weak with two supports (0.80–0.82 over seeds)
    assert ratio[(2, "cep")] < ratio[(16, "cep")] < 0.98
    assert ratio[(2, "mse")] < 0.98  # Eq. 25's self-normalised target is biased low (0.92–0.97 over seeds)


def test_same_seed_same_table():
    schedule = dl.VPSchedule(10)
    # Bit for bit, repeated: LAPACK's threaded lstsq once made the mse row differ by an ulp between two calls.
    a = gaussian_energy_bias(schedule, steps=[5], n_supports=(2,), n_groups=200, seed=3)
    for _ in range(20):
        b = gaussian_energy_bias(schedule, steps=[5], n_supports=(2,), n_groups=200, seed=3)
        assert a.equals(b), (a, b)


@pytest.mark.parametrize("kwargs, match", [
    (dict(beta=0.0), "beta"), (dict(beta=float("nan")), "beta"), (dict(n_supports=1), "K must"),
    (dict(loss="infonce"), "loss must"),
])
def test_discrete_bad_input(kwargs, match):
    args = dict(cells=CELLS, beta=1.0, n_supports=2, loss="cep") | kwargs
    with pytest.raises(ValueError, match=match):
        discrete_energy_optimum(**args)


def test_discrete_bad_cells():
    with pytest.raises(ValueError, match="sum to 1"):
        discrete_energy(CELLS[:1] + [(0.4, [(5.0, 1.0)])], 1.0)
    with pytest.raises(ValueError, match="P\\(q \\| cell\\) must sum to 1"):
        discrete_energy([(0.5, [(0.0, 0.5)]), (0.5, [(5.0, 1.0)])], 1.0)
    with pytest.raises(ValueError, match="at least 2 cells"):
        discrete_energy([(1.0, [(0.0, 1.0)])], 1.0)
    with pytest.raises(ValueError, match="tuples"):
        discrete_energy_optimum(CELLS, 1.0, n_supports=20)


@pytest.mark.parametrize("kwargs, match", [
    (dict(steps=[0]), "steps"), (dict(steps=[11]), "steps"), (dict(slope=0.0), "slope"),
    (dict(n_supports=()), "empty"), (dict(n_groups=5), "n_groups"), (dict(beta=-1.0), "beta"),
])
def test_gaussian_bad_input(kwargs, match):
    args = dict(schedule=dl.VPSchedule(10), steps=[5], n_groups=50) | kwargs
    with pytest.raises(ValueError, match=match):
        gaussian_energy_bias(**args)
