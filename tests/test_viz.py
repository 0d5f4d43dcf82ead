"""The notebook figures and panels show the core's numbers, and the panels follow their controls.

Also the exact Gaussian-chain moments (diffusion/analysis.py) that notebook 02's discretisation figure uses,
checked against the independent oracle in tests/helpers.py and against Monte Carlo sampling."""
from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

import dac4rec_lite as dl
from dac4rec_lite import viz
from dac4rec_lite.diffusion.analysis import (
    gaussian_chain_moments,
    gaussian_chain_path,
    paper_printed_betas,
    terminal_alpha_bar,
)
from helpers import GaussianOracleEps, linear_chain_moments


def trace(fig, name_start):
    matches = [t for t in fig.data if t.name.startswith(name_start)]
    assert len(matches) == 1, [t.name for t in fig.data]
    return matches[0]


def alpha_bar(*schedule_args):
    return dl.VPSchedule(*schedule_args).alphas_cumprod.numpy()


def xy(t):
    return np.column_stack([np.asarray(t.x, dtype=float), np.asarray(t.y, dtype=float)]).reshape(-1, 2)


@pytest.fixture(scope="module")
def toy_data():
    toy = dl.MultimodalBehavior()
    _, actions, users = toy.draw(300, seed=1)
    return toy, actions, users


def points_by_label(fig, labels, prefix):
    """Reassemble one (n, 2) array from the per-label traces of a cloud figure."""
    out = np.full((len(labels), 2), np.nan)
    for label in np.unique(labels):
        out[labels == label] = xy(trace(fig, f"{prefix} {label}"))
    return out


# --- schedule ---------------------------------------------------------------------------------------------

def test_schedule_figure_plots_the_schedule_tables():
    schedule = dl.VPSchedule(40, 0.1, 10.0)
    fig = viz.schedule_figure(schedule)
    np.testing.assert_allclose(trace(fig, "ᾱ").y, schedule.alphas_cumprod.numpy(), rtol=1e-6)
    np.testing.assert_allclose(trace(fig, "β<sub>i</sub> (corrected)").y, schedule.betas.numpy(), rtol=1e-6)
    np.testing.assert_allclose(trace(fig, "√ᾱ").y, schedule.alphas_cumprod.sqrt().numpy(), rtol=1e-5)
    np.testing.assert_allclose(trace(fig, "α<sub>i</sub> (one step").y, schedule.alphas.numpy(), rtol=1e-6)
    printed = trace(fig, "β<sub>i</sub> as printed").y
    np.testing.assert_allclose(printed, paper_printed_betas(40).numpy())
    # N = 40 < (β_max-β_min)/(2β_min) = 49.5: the printed β_1 is positive, just wrong
    assert 0 < printed[0] < schedule.betas[0]
    assert list(trace(fig, "ᾱ").x) == list(range(1, 41))  # 1-based steps


def test_printed_sign_gives_negative_betas_and_corrected_alpha_bar_is_independent_of_n():
    for n in (50, 100, 1000):
        assert paper_printed_betas(n)[0] < 0
    for n in (10, 50, 100, 1000):
        assert float(dl.VPSchedule(n).alphas_cumprod[-1]) == pytest.approx(terminal_alpha_bar(), rel=1e-4)
    assert terminal_alpha_bar(0.1, 10.0) == pytest.approx(math.exp(-5.05))
    assert int((paper_printed_betas(1000) < 0).sum()) == 10  # 2i - 1 < 2 β_min N / (β_max - β_min)


def test_schedule_explorer_follows_its_sliders():
    explorer = viz.schedule_explorer()
    explorer.controls["n_steps"].value = 12
    np.testing.assert_allclose(trace(explorer.figure, "ᾱ").y, dl.VPSchedule(12).alphas_cumprod.numpy(), rtol=1e-6)
    explorer.controls["beta_max"].value = 4.0
    expected = dl.VPSchedule(12, 0.1, 4.0)
    np.testing.assert_allclose(trace(explorer.figure, "β<sub>i</sub> (corr").y, expected.betas.numpy(), rtol=1e-6)
    assert "β<sub>max</sub> = 4" in explorer.figure.layout.title.text
    assert f"{terminal_alpha_bar(0.1, 4.0):.5f}" in explorer.message.value


def _values(v):
    """A trace's coordinates as plotly's JSON output carries them: a list, or a typed array {dtype, bdata}."""
    import base64

    if isinstance(v, dict):
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).reshape(v.get("shape", -1))
    return np.asarray(v)


def _shown(explorer):
    """The figure an explorer has on screen: the plotly JSON output of its ``view``."""
    import json

    import plotly.io as pio

    (output,) = explorer.view.outputs
    return pio.from_json(json.dumps(output["data"]["application/vnd.plotly.v1+json"]))


def test_schedule_explorer_draws_plain_plotly_output_not_a_figure_widget(monkeypatch):
    """Issue 17: a FigureWidget can render empty in the browser, so the panel builds a go.Figure and draws it
    into an Output; the drawing follows the sliders."""
    import plotly.graph_objects as go

    def refuse(*args, **kwargs):
        raise AssertionError("the schedule panel built a go.FigureWidget")

    monkeypatch.setattr(go, "FigureWidget", refuse)
    explorer = viz.schedule_explorer()
    assert type(explorer.figure) is go.Figure
    np.testing.assert_allclose(_values(trace(_shown(explorer), "ᾱ").y), dl.VPSchedule(50).alphas_cumprod.numpy(), rtol=1e-6)
    explorer.controls["n_steps"].value = 12
    np.testing.assert_allclose(_values(trace(_shown(explorer), "ᾱ").y), dl.VPSchedule(12).alphas_cumprod.numpy(), rtol=1e-6)


def test_invalid_schedule_shows_the_error_instead_of_raising():
    explorer = viz.schedule_explorer()
    before = np.asarray(trace(explorer.figure, "ᾱ").y)
    explorer.controls["beta_min"].value = 3.0
    explorer.controls["beta_max"].value = 2.0  # β_max ≤ β_min: VPSchedule raises ValueError
    assert "beta_max must be larger than beta_min" in explorer.message.value
    assert "Not a valid schedule" in explorer.message.value
    np.testing.assert_allclose(trace(explorer.figure, "ᾱ").y, alpha_bar(50, 3.0, 10.0), rtol=1e-6)
    assert not np.allclose(before, trace(explorer.figure, "ᾱ").y)
    explorer.controls["beta_max"].value = 8.0
    assert "Not a valid schedule" not in explorer.message.value
    np.testing.assert_allclose(trace(explorer.figure, "ᾱ").y, alpha_bar(50, 3.0, 8.0), rtol=1e-6)


# --- forward process -------------------------------------------------------------------------------------

def test_noising_figure_shows_q_sample_with_the_seeded_noise(toy_data):
    toy, actions, _ = toy_data
    schedule = dl.VPSchedule(30)
    labels = viz.mode_labels(toy, actions)
    noise = torch.randn((len(actions), 2), generator=torch.Generator().manual_seed(7))
    expected = schedule.q_sample(torch.as_tensor(actions), 9, noise).numpy()
    fig = viz.noising_figure(actions, schedule, 9, seed=7, toy=toy)
    np.testing.assert_allclose(points_by_label(fig, labels, "from"), expected, rtol=1e-6, atol=1e-6)
    clean = viz.noising_figure(actions, schedule, 0, seed=7, toy=toy)
    np.testing.assert_allclose(points_by_label(clean, labels, "from"), actions)
    layout = fig.layout
    assert tuple(layout.xaxis.range) == viz.ACTION_RANGE and tuple(layout.yaxis.range) == viz.ACTION_RANGE
    with pytest.raises(ValueError, match="0..30"):
        viz.noising_figure(actions, schedule, 31)


def test_noising_explorer_moves_points_when_the_slider_moves(toy_data):
    toy, actions, _ = toy_data
    schedule = dl.VPSchedule(30)
    labels = viz.mode_labels(toy, actions)
    explorer = viz.noising_explorer(actions, schedule, seed=3, toy=toy)
    np.testing.assert_allclose(points_by_label(explorer.figure, labels, "from"), actions)
    explorer.controls["step"].value = 22
    noise = viz.fixed_noise(len(actions), 2, seed=3)
    expected = schedule.q_sample(torch.as_tensor(actions), 22, noise).numpy()
    np.testing.assert_allclose(points_by_label(explorer.figure, labels, "from"), expected, rtol=1e-6, atol=1e-6)
    assert "i = 22" in explorer.figure.layout.title.text
    explorer.controls["play"].value = 5  # ▶ walks the slider from 0 upwards
    assert explorer.controls["step"].value == 5


def test_terminal_noise_figure_reports_alpha_bar_and_memory(toy_data):
    toy, actions, _ = toy_data
    fig = viz.terminal_noise_figure(actions, [dl.VPSchedule(50, 0.1, 1.0), dl.VPSchedule(50)], toy=toy)
    titles = [a.text for a in fig.layout.annotations if "ᾱ" in a.text]
    assert "ᾱ<sub>N</sub> = 0.577" in titles[0] and "ᾱ<sub>N</sub> = 0.006" in titles[1]
    remembered = [int(t.split("<br>")[1].split("%")[0]) for t in titles]
    assert all("in own quadrant" in t for t in titles)
    assert remembered[0] > 45 and remembered[1] < 35  # chance is 25%


# --- reverse chain ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_policy():
    torch.manual_seed(0)
    return dl.DiffusionPolicy(3, 2, dl.VPSchedule(6), hidden_dim=16)


def test_trajectory_figure_shows_the_chain_at_step_i(toy_data, small_policy):
    toy = toy_data[0]
    with torch.no_grad():
        _, traj = small_policy.sample(torch.as_tensor(toy.states_for(1, 50)), generator=torch.Generator().manual_seed(0),
                                      return_trajectory=True)
    labels = viz.mode_labels(toy, traj[-1])
    for step in (6, 2, 0):
        fig = viz.trajectory_figure(traj, step, toy=toy, user=1, n_paths=3)
        np.testing.assert_allclose(points_by_label(fig, labels, "ends on"), traj[6 - step].numpy(), rtol=1e-6)
        paths = xy(trace(fig, "paths of 3 chains"))
        assert np.isnan(paths).any(axis=1).sum() == 3  # three paths separated by gaps
        assert len(paths) == 3 * (6 - step + 2)
        np.testing.assert_allclose(xy(trace(fig, "where those chains are now")), traj[6 - step, :3].numpy(), rtol=1e-6)
    with pytest.raises(ValueError):
        viz.trajectory_figure(traj, 7)


def test_trajectory_explorer_follows_dropdown_and_slider(toy_data, small_policy):
    toy = toy_data[0]
    explorer = viz.trajectory_explorer(small_policy, toy, n=40, seed=5, user=0)

    def expected(user, step):
        with torch.no_grad():
            _, traj = small_policy.sample(torch.as_tensor(toy.states_for(user, 40)),
                                          generator=torch.Generator().manual_seed(5), return_trajectory=True)
        return traj[6 - step].numpy(), viz.mode_labels(toy, traj[-1])

    cloud, labels = expected(0, 6)
    np.testing.assert_allclose(points_by_label(explorer.figure, labels, "ends on"), cloud, rtol=1e-6)
    explorer.controls["step"].value = 1
    cloud, labels = expected(0, 1)
    np.testing.assert_allclose(points_by_label(explorer.figure, labels, "ends on"), cloud, rtol=1e-6)
    explorer.controls["user"].value = 2
    cloud, labels = expected(2, 1)
    np.testing.assert_allclose(points_by_label(explorer.figure, labels, "ends on"), cloud, rtol=1e-6)
    assert "user 2" in explorer.figure.layout.title.text
    explorer.controls["play"].value = 4  # ▶ runs the chain: i = N - 4
    assert explorer.controls["step"].value == 2


def test_policy_comparison_and_mode_table_agree_with_mode_fractions(toy_data):
    toy, actions, users = toy_data
    rng = np.random.default_rng(0)
    spread = rng.uniform(-1, 1, size=(200, 2)).astype(np.float32)
    fig = viz.policy_comparison_figure(actions[users == 0], spread, toy, user=0, data_actions=actions[users == 0])
    titles = [a.text for a in fig.layout.annotations if "on liked modes" in a.text]
    assert len(titles) == 3
    on_liked = 1 - toy.mode_fractions(spread, 0)["elsewhere"]
    assert titles[2] == f"<b>Gaussian policy</b><br>{on_liked:.0%} on liked modes"
    for axis in ("xaxis", "xaxis2", "xaxis3", "yaxis3"):
        assert tuple(fig.layout[axis].range) == viz.ACTION_RANGE

    table = viz.mode_fraction_table(toy, {"a": {0: spread, 1: spread}, "b": {0: actions[users == 0]}})
    assert list(table.columns) == ["NE", "NW", "SW", "SE", "elsewhere"]
    assert table.loc[("a", 1), "NW"] == pytest.approx(100 * toy.mode_fractions(spread, 1)["NW"], abs=0.05)
    assert np.isnan(table.loc[("a", 0), "NW"])  # user 0 does not like NW
    assert table.loc[("b", 0), "elsewhere"] < 2


def test_loss_figure_draws_each_run_raw_and_smoothed():
    import pandas as pd

    history = pd.DataFrame({"step": np.arange(10, 110, 10), "loss": np.linspace(1, 0.1, 10)})
    fig = viz.loss_figure({"diffusion": history, "gaussian": history}, smooth=3)
    assert len(fig.data) == 4
    np.testing.assert_allclose(fig.data[1].y, history["loss"].rolling(3, min_periods=1).mean())


# --- exact Gaussian chain ----------------------------------------------------------------------------------

@pytest.mark.parametrize("variance", ["posterior", "beta"])
@pytest.mark.parametrize("n_steps", [1, 2, 5, 50, 200])
def test_gaussian_chain_moments_match_the_independent_oracle(n_steps, variance):
    got = gaussian_chain_moments(dl.VPSchedule(n_steps), 0.3, 0.05, variance)
    want = linear_chain_moments(n_steps, 0.1, 10.0, 0.3, 0.05, variance)
    assert got[0] == pytest.approx(want[0], rel=1e-5)
    assert got[1] == pytest.approx(want[1], rel=1e-4)


def test_gaussian_chain_moments_quoted_numbers():
    schedule = dl.VPSchedule(50)
    assert gaussian_chain_moments(schedule, 0.0, 0.05)[1] == pytest.approx(0.0008, abs=5e-5)
    assert gaussian_chain_moments(schedule, 0.0, 0.05, "beta")[1] == pytest.approx(0.0019, abs=5e-5)
    ratios = [math.sqrt(gaussian_chain_moments(dl.VPSchedule(n), 0.6, 0.06)[1]) / 0.06 for n in (5, 50, 1000)]
    assert ratios[0] < ratios[1] < ratios[2] < 1  # more steps, less shrinkage


def test_gaussian_chain_path_starts_at_noise_and_ends_at_the_moments():
    schedule = dl.VPSchedule(8)
    path = gaussian_chain_path(schedule, 0.4, 0.1)
    assert list(path["step"]) == list(range(8, -1, -1))
    assert (path.iloc[0]["mean"], path.iloc[0]["variance"]) == (0.0, 1.0)
    assert (path.iloc[-1]["mean"], path.iloc[-1]["variance"]) == gaussian_chain_moments(schedule, 0.4, 0.1)
    assert path.iloc[-1]["target_variance"] == pytest.approx(0.01)
    alpha_bar = float(schedule.alphas_cumprod[3])  # step 4
    row = path[path["step"] == 4].iloc[0]
    assert row["target_variance"] == pytest.approx(alpha_bar * 0.01 + 1 - alpha_bar, rel=1e-6)


@pytest.mark.parametrize("variance", ["posterior", "beta"])
def test_gaussian_chain_moments_match_monte_carlo_sampling(variance):
    schedule = dl.VPSchedule(10)
    mean, std, n = 0.3, 0.2, 40000
    oracle = GaussianOracleEps(schedule, torch.tensor([mean]), std)
    policy = dl.DiffusionPolicy(1, 1, schedule, eps_model=oracle, max_action=None)
    with torch.no_grad():
        samples = policy.sample(torch.zeros(n, 1), generator=torch.Generator().manual_seed(0), variance=variance)
    want_mean, want_var = gaussian_chain_moments(schedule, mean, std, variance)
    assert float(samples.mean()) == pytest.approx(want_mean, abs=4 * math.sqrt(want_var / n))
    assert float(samples.var()) == pytest.approx(want_var, rel=4 * math.sqrt(2 / n))


def test_discretisation_figure_plots_exact_std_ratios():
    fig = viz.discretisation_figure(n_steps_list=(5, 50), stds=(0.06,), path_n_steps=20)
    posterior = trace(fig, "σ = 0.06, β̃")
    want = [math.sqrt(gaussian_chain_moments(dl.VPSchedule(n), 0.6, 0.06)[1]) / 0.06 for n in (5, 50)]
    np.testing.assert_allclose(posterior.y, want, rtol=1e-9)
    along = trace(fig, "along the chain, β̃")
    path = gaussian_chain_path(dl.VPSchedule(20), 0.6, 0.06)
    np.testing.assert_allclose(along.y, np.sqrt(path["variance"] / path["target_variance"]), rtol=1e-9)
    assert along.y[0] == pytest.approx(1 / math.sqrt(path.iloc[0]["target_variance"]))


def test_the_core_does_not_import_viz():
    code = "import sys, dac4rec_lite; print('dac4rec_lite.viz' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_viz_modules_import_no_private_names_and_stay_small():
    """No module of viz (nor the analysis it draws) imports another module's _private names; none is over
    600 lines; ``__all__`` is assigned once per module."""
    import ast
    import pathlib

    root = pathlib.Path(dl.__file__).parent
    for path in [*sorted((root / "viz").glob("*.py")), root / "experiments" / "analysis.py"]:
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                private = [a.name for a in node.names if a.name.startswith("_") and a.name != "__future__"]
                assert not private, f"{path.name} imports private {private} from {node.module}"
        assert len(source.splitlines()) <= 600, path.name
        assigns = [n for n in tree.body if isinstance(n, (ast.Assign, ast.AugAssign))
                   and any(getattr(t, "id", None) == "__all__" for t in getattr(n, "targets", [getattr(n, "target", None)]))]
        assert len(assigns) == (1 if path.name != "__init__.py" or "__all__" in source else 0), path.name
