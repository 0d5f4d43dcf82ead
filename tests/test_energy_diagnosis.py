"""The energy-guidance diagnosis (experiments.energy_diagnosis) at the tiny preset: the measures' closed forms,
the coupling of guided and unguided draws, the rollout being the energy study's own, determinism."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from dac4rec_lite.evaluation import evaluate
from dac4rec_lite.experiments import energy_diagnosis as ed
from dac4rec_lite.experiments.methods import EnergyRun, execute_run, scale_column
from dac4rec_lite.experiments.paired import mean_interval


pytestmark = pytest.mark.usefixtures("no_preset_one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def trained():
    torch.set_num_threads(1)
    env, dataset, agent = ed.train_study_agent("tiny", seed=0)
    return env, dataset, agent, dataset.to_dict()["actions"]


@pytest.fixture(scope="module")
def measured(trained):
    env, _, agent, data_actions = trained
    return {scale: ed.measure_scale(env, agent, data_actions, scale, 20, seed=10_000) for scale in (0.0, 4.0)}


# ----- the measures' closed forms ---------------------------------------------------------------------------
def test_a_page_of_identical_items_has_no_diversity_and_orthogonal_items_have_one():
    features = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    pages = np.array([[0, 0, 0], [0, 1, 2], [0, 3, 3]])
    # third page: cos(0,3) = cos(0,3) = 1/√2, cos(3,3) = 1 → mean over the 6 ordered pairs = (4/√2 + 2)/6
    expected = [0.0, 1.0, 1.0 - (4 / math.sqrt(2) + 2) / 6]
    np.testing.assert_allclose(ed.page_diversity(features, pages), expected, atol=1e-12)
    with pytest.raises(ValueError, match="k >= 2"):
        ed.page_diversity(features, np.array([[0], [1]]))


def test_data_distance_is_zero_on_the_data_and_the_offset_off_it():
    rng = np.random.default_rng(0)
    data = rng.uniform(-1, 1, size=(300, 4))
    np.testing.assert_array_equal(ed.data_distance(data[:50], data), np.zeros(50))
    far = np.full((1, 4), 10.0)
    assert ed.data_distance(far, data)[0] == pytest.approx(np.linalg.norm(data - 10.0, axis=1).min())
    with pytest.raises(ValueError, match="share d"):
        ed.data_distance(data[:, :3], data)


def test_support_radius_of_a_regular_grid_is_its_spacing():
    grid = np.arange(10.0)[:, None] * np.array([[0.5, 0.0]])  # every point's nearest other point is 0.5 away
    assert ed.support_radius(grid) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="two logged actions"):
        ed.support_radius(grid[:1])


def test_return_to_go_is_the_discounted_sum_within_each_episode():
    frame = pd.DataFrame({"episode": [0, 0, 0, 1, 1], "reward": [1.0, 1.0, 1.0, 2.0, 4.0]})
    np.testing.assert_allclose(ed._return_to_go(frame, 0.5), [1.75, 1.5, 1.0, 4.0, 4.0])


def test_spearman_rows_is_one_for_the_same_order_and_minus_one_for_the_reverse():
    x = torch.tensor([[0.1, 0.5, 0.3, 0.9], [3.0, 2.0, 1.0, 0.0]])
    y = torch.tensor([[1.0, 5.0, 3.0, 9.0], [0.0, 1.0, 2.0, 3.0]])
    np.testing.assert_allclose(ed.spearman_rows(x, y).numpy(), [1.0, -1.0])


# ----- the rollout -------------------------------------------------------------------------------------------
def test_unguided_scale_makes_guided_and_unguided_measurements_coincide_exactly(measured):
    row, frame = measured[0.0]
    np.testing.assert_array_equal(frame.attrs["actions"], frame.attrs["unguided"])
    np.testing.assert_array_equal(frame["q"], frame["q_unguided"])
    np.testing.assert_array_equal(frame["data_distance"], frame["data_distance_unguided"])
    assert (frame["q_gain"] == 0).all() and (frame["energy_gain"] == 0).all()
    np.testing.assert_allclose(frame["q_gain_direction"], 0.0, atol=1e-6)  # rescaling by 1 up to rounding
    assert row["q_gain"] == 0 and row["q_gain_page1"] == 0


def test_guided_first_pages_are_coupled_to_the_unguided_ones(measured):
    """Every scale sees the same users' first pages; the unguided twin of a guided draw uses the same noise,
    so at page 1 it is exactly the action the ω = 0 rollout played."""
    _, unguided = measured[0.0]
    _, guided = measured[4.0]
    first = lambda frame, key: frame.attrs[key][frame["step"].to_numpy() == 0]  # noqa: E731
    np.testing.assert_array_equal(first(guided, "observations"), first(unguided, "observations"))
    np.testing.assert_array_equal(first(guided, "unguided"), first(unguided, "actions"))
    assert not np.array_equal(first(guided, "actions"), first(unguided, "actions"))  # guidance moved them


def test_q_of_the_chosen_actions_is_the_critic_called_directly(trained, measured):
    _, _, agent, _ = trained
    _, frame = measured[4.0]
    with torch.no_grad():
        obs = torch.as_tensor(frame.attrs["observations"])
        q1, q2 = agent.critic(agent.encoder(obs), torch.as_tensor(frame.attrs["actions"], dtype=torch.float32))
    np.testing.assert_allclose(frame["q"], torch.min(q1, q2).reshape(-1).double().numpy(), rtol=0, atol=1e-6)


def test_rows_are_placed_in_their_episodes(measured):
    """Each episode has one row per page, numbered 0..L−1, and its rewards add up to its return."""
    row, frame = measured[4.0]
    lengths = frame.groupby("episode")["step"].agg(["size", "max"])
    assert (lengths["max"] == lengths["size"] - 1).all()
    assert frame["reward"].sum() / frame["episode"].nunique() == pytest.approx(row["R_cumu"])
    assert lengths["size"].mean() == pytest.approx(row["Length"])


def test_the_rollout_is_evaluate_at_that_scale(trained, measured):
    env, _, agent, _ = trained
    saved, agent.config.energy_scale = agent.config.energy_scale, 4.0
    try:
        expected = evaluate(env, agent, 20, seed=10_000, progress=False)
    finally:
        agent.config.energy_scale = saved
    row, _ = measured[4.0]
    assert (row["R_cumu"], row["Length"], row["CTR"]) == (expected["R_cumu"], expected["Length"], expected["CTR"])


# ----- the whole diagnosis -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def diagnosed():
    torch.set_num_threads(1)
    return ed.diagnose_seed("tiny", 0, scales=(0.0, 1.0))[0]


def test_the_diagnosis_trains_the_energy_studys_agent(diagnosed):
    study = execute_run(EnergyRun("DAC4Rec", 0, "tiny", log="mixture", scales=(0.0, 1.0)))
    for scale in (0.0, 1.0):
        row = diagnosed[diagnosed["scale"] == scale].iloc[0]
        for metric in ("R_cumu", "Length", "CTR"):
            assert row[metric] == study[scale_column(metric, scale)]


def test_same_seed_gives_the_same_frame(diagnosed):
    again = ed.diagnose_seed("tiny", 0, scales=(0.0, 1.0))[0]
    pd.testing.assert_frame_equal(diagnosed, again)
    assert set(ed.DIAGNOSIS_METRICS) | set(ed.ENERGY_QUALITY_METRICS) <= set(diagnosed.columns)
    quality = diagnosed[list(ed.ENERGY_QUALITY_METRICS)]
    assert (quality.nunique() == 1).all()  # f_ψ's quality is measured once per seed
    assert quality["top1_chance"].iloc[0] == pytest.approx(1 / 16)
    assert quality[["f_rank_corr_i1", "grad_cosine"]].abs().le(1).all().all()


def test_summary_is_paired_differences_against_the_unguided_scale():
    rng = np.random.default_rng(1)
    rows = [{"seed": seed, "scale": scale, **{m: rng.normal() for m in ed.DIAGNOSIS_METRICS},
             **{m: float(seed) for m in ed.ENERGY_QUALITY_METRICS}}
            for seed in range(4) for scale in (0.0, 2.0)]
    runs = pd.DataFrame(rows)
    summary = ed.summarise_diagnosis(runs)
    cell = summary[(summary["metric"] == "R_cumu") & (summary["scale"] == 2.0)].iloc[0]
    pivot = runs.pivot(index="seed", columns="scale", values="R_cumu")
    expected = mean_interval((pivot[2.0] - pivot[0.0]).to_numpy())
    assert (cell["diff"], cell["diff_low"], cell["diff_high"]) == pytest.approx(
        (expected.estimate, expected.low, expected.high))
    baseline = summary[(summary["metric"] == "R_cumu") & (summary["scale"] == 0.0)].iloc[0]
    assert baseline["diff"] == 0 and baseline["verdict"] == "baseline"
    quality = summary[summary["metric"] == "grad_cosine"]
    assert len(quality) == 1 and math.isnan(quality["scale"].iloc[0]) and quality["mean"].iloc[0] == pytest.approx(1.5)


def test_bad_inputs_are_refused_with_a_reason(trained, tmp_path):
    env, _, agent, data_actions = trained
    with pytest.raises(ValueError, match="include 0"):
        ed.diagnose_guidance("tiny", seeds=(0,), scales=(1.0, 2.0), progress=False)
    with pytest.raises(ValueError, match="include 0"):
        ed.diagnose_guidance("tiny", seeds=(0,), scales=(0.0, float("nan")), progress=False)
    with pytest.raises(ValueError, match="at least one seed"):
        ed.diagnose_guidance("tiny", seeds=(), progress=False)
    with pytest.raises(ValueError, match="unknown behaviour log"):
        ed.train_study_agent("tiny", 0, log="everything")
    with pytest.raises(ValueError, match="scale must be"):
        ed.measure_scale(env, agent, data_actions, -1.0, 5, seed=0)
    with pytest.raises(ValueError, match="attrs"):
        ed.save_diagnosis(pd.DataFrame(), tmp_path)


def test_save_writes_the_summary_and_its_runs(tmp_path):
    summary = pd.DataFrame({"metric": ["R_cumu"], "mean": [1.0]})
    summary.attrs["runs"] = pd.DataFrame({"seed": [0], "R_cumu": [1.0]})
    ed.save_diagnosis(summary, tmp_path / "out")
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "out" / "energy_diagnosis.csv"), summary)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "out" / "energy_diagnosis_runs.csv"), summary.attrs["runs"])


def test_load_or_diagnose_reads_what_save_wrote(tmp_path, monkeypatch):
    summary = pd.DataFrame({"metric": ["R_cumu"], "scale": [0.0], "mean": [1.0]})
    summary.attrs["runs"] = pd.DataFrame({"seed": [0], "scale": [0.0], "R_cumu": [1.0]})
    ed.save_diagnosis(summary, tmp_path / "results" / "tiny")
    monkeypatch.chdir(tmp_path)
    loaded = ed.load_or_diagnose("tiny")
    pd.testing.assert_frame_equal(loaded, summary)
    pd.testing.assert_frame_equal(loaded.attrs["runs"], summary.attrs["runs"])
    assert loaded.attrs["source"] == str(tmp_path / "results" / "tiny" / "energy_diagnosis.csv")
    assert loaded.attrs["preset"] == "tiny"
    # nothing saved at full (neither here nor in the repository): the tiny diagnosis is loaded, and says so
    fallen = ed.load_or_diagnose("full", fallback="tiny")
    pd.testing.assert_frame_equal(fallen, summary)
    assert fallen.attrs["preset"] == "tiny" and "nothing saved at full: the tiny preset's diagnosis" in fallen.attrs["source"]
    with pytest.raises(ValueError, match="fallback must be a preset"):
        ed.load_or_diagnose("full", fallback="huge")


def test_diagnosis_interval_reads_one_cell():
    rng = np.random.default_rng(2)
    runs = pd.DataFrame([{"seed": seed, "scale": scale, **{m: rng.normal() for m in ed.DIAGNOSIS_METRICS},
                          **{m: float(seed) for m in ed.ENERGY_QUALITY_METRICS}}
                         for seed in range(3) for scale in (0.0, 1.0)])
    summary = ed.summarise_diagnosis(runs)
    cell = summary[(summary["metric"] == "Length") & (summary["scale"] == 1.0)].iloc[0]
    diff = ed.diagnosis_interval(summary, "Length", 1.0)
    assert (diff.estimate, diff.low, diff.high, diff.n) == (cell["diff"], cell["diff_low"], cell["diff_high"], 3)
    assert ed.diagnosis_interval(summary, "grad_cosine", kind="mean").estimate == pytest.approx(1.0)
    with pytest.raises(ValueError, match="no single row"):
        ed.diagnosis_interval(summary, "Length", 2.0)
    with pytest.raises(ValueError, match="kind"):
        ed.diagnosis_interval(summary, "Length", 1.0, kind="median")
