"""The visual explanations of notebooks 02, 04 and 05 draw the right maths.

On Gaussian data the ε-network is replaced by the exact ε (tests/helpers.py), so the score field must equal
the closed-form score (diffusion.analysis.mixture_score); the energy term must be the autograd gradient of the
energy; the guided score their sum (Eq. 24); ∂Q/∂a must match finite differences of the critic; the training
film must show exactly the samples ``training_snapshots`` recorded."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import dac4rec_lite as dl
from dac4rec_lite import viz
from dac4rec_lite.diffusion.analysis import mixture_score
from dac4rec_lite.experiments import analysis
from dac4rec_lite.guidance_studies import bandit_energy, sample_summary
from helpers import GaussianOracleEps

N = 20
MEAN = torch.tensor([0.3, -0.2])
STD = 0.2
BANDIT = dl.CornerBandit()


def trace(fig, name_start):
    matches = [t for t in fig.data if (t.name or "").startswith(name_start)]
    assert len(matches) >= 1, [t.name for t in fig.data]
    return matches


def arrows(t):
    """(starts, vectors) of an arrow trace: its coordinates come in (start, tip, gap) triples."""
    xy = np.column_stack([np.asarray(t.x, dtype=float), np.asarray(t.y, dtype=float)]).reshape(-1, 3, 2)
    assert np.isnan(xy[:, 2]).all()
    return xy[:, 0], xy[:, 1] - xy[:, 0]


def points(t):
    return np.column_stack([np.asarray(t.x, dtype=float), np.asarray(t.y, dtype=float)]).reshape(-1, 2)


@pytest.fixture(scope="module")
def oracle_policy():
    """A diffusion policy whose ε is exact for data N(MEAN, STD² I) (it ignores the state)."""
    schedule = dl.VPSchedule(N)
    return dl.DiffusionPolicy(3, 2, schedule, eps_model=GaussianOracleEps(schedule, MEAN, STD))


def exact_score(policy, starts, step):
    return mixture_score(policy.schedule, torch.tensor(np.array(starts), dtype=torch.float64), step,
                         MEAN.double().unsqueeze(0), STD).numpy()


# --- notebook 02: the score field --------------------------------------------------------------------------------

def test_score_field_is_minus_eps_over_sqrt_one_minus_alpha_bar(oracle_policy):
    for step in (1, 7, N):
        field = analysis.score_field(oracle_policy, [1.0, 0.0, 0.0], step, resolution=9)
        starts = field[["a1", "a2"]].to_numpy()
        np.testing.assert_allclose(starts[:9, 0], np.linspace(-1.5, 1.5, 9))  # a₁ inner, a₂ outer
        np.testing.assert_allclose(starts[::9, 1], np.linspace(-1.5, 1.5, 9))
        np.testing.assert_allclose(field[["score1", "score2"]].to_numpy(), exact_score(oracle_policy, starts, step),
                                   rtol=1e-4, atol=1e-4)
        alpha_bar = float(oracle_policy.schedule.alphas_cumprod[step - 1])
        np.testing.assert_allclose(field["score1"], -field["eps1"] / np.sqrt(1 - alpha_bar), rtol=1e-12)
        assert field.attrs == {"step": step, "alpha_bar": alpha_bar}
    for bad in (0, N + 1, 2.0, True):
        with pytest.raises(ValueError, match="step must be an int"):
            analysis.score_field(oracle_policy, [1.0, 0.0, 0.0], bad)
    with pytest.raises(ValueError, match="one state"):
        analysis.score_field(oracle_policy, np.zeros((2, 3)), 1)


def test_score_field_figure_arrows_follow_the_exact_score_and_shrink_as_i_goes_to_1(oracle_policy):
    toy = dl.MultimodalBehavior()
    medians = []
    for step in (N, 10, 5, 1):
        fig = viz.score_field_figure(oracle_policy, toy, step, user=0, n=40, seed=2, resolution=9)
        starts, vectors = arrows(trace(fig, "score arrows")[0])
        want = exact_score(oracle_policy, starts, step)
        cosine = np.sum(vectors * want, axis=1) / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(want, axis=1))
        assert cosine.min() > 1 - 1e-6  # every arrow points along ∇ log μ_i
        alpha_bar = float(oracle_policy.schedule.alphas_cumprod[step - 1])
        ratio = np.linalg.norm(vectors, axis=1) / ((1 - alpha_bar) * np.linalg.norm(want, axis=1))
        np.testing.assert_allclose(ratio, ratio[0], rtol=1e-4)  # one drawing scale for every arrow
        if step == N:  # the default scale: the longest arrow at i = N spans one grid cell (3 / 8)
            assert np.linalg.norm(vectors, axis=1).max() == pytest.approx(3 / 8, rel=1e-6)
            scale = ratio[0]
        else:
            assert ratio[0] == pytest.approx(scale, rel=1e-4)  # and the same scale at every step
        medians.append(np.median(np.linalg.norm(vectors, axis=1)))
    assert all(a > b for a, b in zip(medians, medians[1:])), medians  # the arrows shrink as i → 1


def test_score_field_figure_shows_the_chain_at_step_i(oracle_policy):
    toy = dl.MultimodalBehavior()
    with torch.no_grad():
        _, traj = oracle_policy.sample(torch.as_tensor(toy.states_for(1, 30)), generator=torch.Generator().manual_seed(4),
                                       return_trajectory=True)
    fig = viz.score_field_figure(oracle_policy, toy, 6, user=1, n=30, seed=4, resolution=5)
    labels = viz.mode_labels(toy, traj[-1])
    for label in np.unique(labels):
        np.testing.assert_allclose(points(trace(fig, f"ends on {label}")[0]), traj[N - 6][labels == label].numpy(),
                                   rtol=1e-6)
    given = viz.score_field_figure(oracle_policy, toy, 6, user=1, resolution=5, trajectory=traj)
    for label in np.unique(labels):
        np.testing.assert_array_equal(points(trace(given, f"ends on {label}")[0]), points(trace(fig, f"ends on {label}")[0]))
    with pytest.raises(ValueError, match="N \\+ 1"):
        viz.score_field_figure(oracle_policy, toy, 6, trajectory=traj[1:])
    with pytest.raises(ValueError, match="arrow_scale"):
        viz.score_field_figure(oracle_policy, toy, 6, trajectory=traj, arrow_scale=-1.0)


def test_score_field_explorer_follows_its_slider_with_one_scale(oracle_policy):
    toy = dl.MultimodalBehavior()
    explorer = viz.score_field_explorer(oracle_policy, toy, n=20, seed=1, resolution=5)
    assert explorer.controls["step"].value == N
    explorer.controls["step"].value = 3
    static = viz.score_field_figure(oracle_policy, toy, 3, user=0, n=20, seed=1, resolution=5)
    np.testing.assert_allclose(arrows(explorer.figure.data[0])[1], arrows(static.data[0])[1], rtol=1e-6)
    np.testing.assert_allclose(points(trace(explorer.figure, "ends on")[0]), points(trace(static, "ends on")[0]))
    explorer.controls["same_scale"].value = False  # each step rescaled: its longest arrow spans one cell (3 / 4)
    rescaled = arrows(explorer.figure.data[0])[1]
    assert np.linalg.norm(rescaled, axis=1).max() == pytest.approx(0.75, rel=1e-6)
    np.testing.assert_allclose(rescaled, arrows(viz.score_field_figure(oracle_policy, toy, 3, n=20, seed=1, resolution=5,
                                                                         same_scale=False).data[0])[1], rtol=1e-6)


def _shown(explorer):
    """The figure an explorer has on screen: the plotly JSON output of its ``view`` (decoded typed arrays)."""
    import plotly.io as pio

    (output,) = explorer.view.outputs
    assert output["output_type"] == "display_data"
    return pio.from_json(__import__("json").dumps(output["data"]["application/vnd.plotly.v1+json"]))


def test_score_field_explorer_is_drawn_as_plain_plotly_output_and_redrawn_on_every_change(oracle_policy):
    """The panel's figure is plotly output in an ``Output`` (no FigureWidget, whose traces came after the widget
    opened and were lost in the browser: an empty plot), carrying every arrow, and replaced when the slider moves."""
    import plotly.graph_objects as go

    toy = dl.MultimodalBehavior()
    explorer = viz.score_field_explorer(oracle_policy, toy, n=20, seed=1, resolution=5)
    assert not any(isinstance(w, go.FigureWidget) for w in explorer.children)
    shown = _shown(explorer)
    assert len(shown.data) == len(explorer.figure.data) and shown.data[0].name.startswith("score arrows")
    np.testing.assert_allclose(arrows(shown.data[0])[1], arrows(explorer.figure.data[0])[1], rtol=1e-6)
    assert len(arrows(shown.data[0])[0]) == 25
    explorer.controls["step"].value = 3
    after = _shown(explorer)
    assert f"step i = 3 of {N}" in after.layout.title.text
    np.testing.assert_allclose(arrows(after.data[0])[1], arrows(explorer.figure.data[0])[1], rtol=1e-6)
    assert not np.allclose(arrows(after.data[0])[1], arrows(shown.data[0])[1])


def test_an_explorer_given_a_figure_widget_shows_a_plain_copy():
    """Older call sites pass a go.FigureWidget: the explorer keeps a go.Figure copy, closes the widget, and
    copy_into still redraws it; anything else is refused with a clear error."""
    import ipywidgets as widgets
    import plotly.graph_objects as go

    from dac4rec_lite.viz.widgets import Explorer, copy_into

    widget = go.FigureWidget(go.Scatter(x=[0, 1], y=[1, 2], name="a"))
    explorer = Explorer({"n": widgets.IntSlider()}, widget, widgets.HTML())
    assert type(explorer.figure) is go.Figure and widget.comm is None
    assert list(_shown(explorer).data[0].y) == [1, 2]
    copy_into(explorer.figure, go.Figure(go.Scatter(x=[0, 1], y=[3, 5], name="a"), layout=dict(title="new")))
    assert list(_shown(explorer).data[0].y) == [3, 5] and _shown(explorer).layout.title.text == "new"
    with pytest.raises(TypeError, match="plotly go.Figure"):
        Explorer({}, {"data": []}, widgets.HTML())


# --- notebook 05: the guided score as a sum -------------------------------------------------------------------------

def linear_energy(state, a_i, i):
    return 2 * a_i[:, 0] - a_i[:, 1]


def test_guided_score_field_adds_the_energy_gradient(oracle_policy):
    exact = bandit_energy(BANDIT, oracle_policy.schedule, beta=2.0)
    field = analysis.guided_score_field(oracle_policy, exact, [1.0, 0.0, 0.0], 4, scale=1.5, resolution=7)
    a = torch.tensor(field[["a1", "a2"]].to_numpy(), dtype=torch.float32, requires_grad=True)
    steps = torch.full((len(a),), 4)
    (gradient,) = torch.autograd.grad(exact(torch.zeros(len(a), 3), a, steps).sum(), a)
    np.testing.assert_allclose(field[["energy1", "energy2"]].to_numpy(), 1.5 * gradient.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(field["guided1"], field["prior1"] + field["energy1"], rtol=1e-12)
    np.testing.assert_allclose(field["guided2"], field["prior2"] + field["energy2"], rtol=1e-12)
    np.testing.assert_allclose(field[["prior1", "prior2"]].to_numpy(),
                               exact_score(oracle_policy, field[["a1", "a2"]].to_numpy(), 4), rtol=1e-4, atol=1e-4)
    assert field.attrs["scale"] == 1.5
    # scale 0 is the unguided score
    plain = analysis.guided_score_field(oracle_policy, exact, [1.0, 0.0, 0.0], 4, scale=0.0, resolution=7)
    np.testing.assert_allclose(plain["guided1"], plain["prior1"])


def test_score_decomposition_figure_is_prior_plus_energy_on_one_scale(oracle_policy):
    fig = viz.score_decomposition_figure(oracle_policy, linear_energy, [1.0, 0.0, 0.0], 5, scale=0.5, bandit=BANDIT,
                                         resolution=7)
    (s1, prior), (s2, push), (s3, guided) = (arrows(trace(fig, name)[0]) for name in ("∇log μ", "scale·∇f", "∇log π"))
    np.testing.assert_allclose(s1, s2)
    np.testing.assert_allclose(s1, s3)
    np.testing.assert_allclose(prior + push, guided, atol=1e-9)  # the right panel is the sum, tip to tail
    unit = push[0, 0] / (0.5 * 2)  # ∇(2a₁ − a₂) = (2, −1) everywhere, times the scale
    np.testing.assert_allclose(push, unit * np.tile([[1.0, -0.5]], (len(push), 1)), rtol=1e-6)
    want = exact_score(oracle_policy, s1, 5)
    np.testing.assert_allclose(prior, unit * want, rtol=1e-4, atol=1e-6)  # the same length unit in every panel
    longest = max(np.linalg.norm(v, axis=1).max() for v in (prior, push, guided))
    assert longest == pytest.approx(0.9 * 3 / 6, rel=1e-6)
    assert [t.type for t in fig.data].count("heatmap") == 1


def test_score_decomposition_explorer_follows_step_and_scale(oracle_policy):
    explorer = viz.score_decomposition_explorer(oracle_policy, linear_energy, [1.0, 0.0, 0.0], bandit=BANDIT, step=2,
                                                resolution=5)
    explorer.controls["step"].value = 9
    explorer.controls["scale"].value = 0.0  # no push: the guided score is the behaviour's
    static = viz.score_decomposition_figure(oracle_policy, linear_energy, [1.0, 0.0, 0.0], 9, scale=0.0, resolution=5)
    got = {t.name: arrows(t)[1] for t in explorer.figure.data if t.type == "scatter"}
    want = {t.name: arrows(t)[1] for t in static.data if t.type == "scatter"}
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-6)
    np.testing.assert_allclose(got["∇log π<sub>i</sub>"], got["∇log μ<sub>i</sub>"])
    assert np.all(got["scale·∇f"] == 0)


# --- notebook 04: ∂Q/∂a and the training film --------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_agents():
    dataset = BANDIT.dataset(300, seed=0)
    agents = {name: dl.DAC4Rec(1, 2, n_steps=4, hidden_dim=16, seed=0, policy_improvement=name)
              for name in ("direct", "elbo", "awr")}
    return dataset, agents


def test_critic_action_gradient_matches_finite_differences(tiny_agents):
    dataset, agents = tiny_agents
    agent = dl.DAC4Rec(1, 2, n_steps=4, hidden_dim=16, seed=3)
    agent.fit(dataset, 5, batch_size=32, progress=False)
    table = analysis.critic_action_gradient(agent, [1.0], resolution=5)
    axis, q = analysis.critic_grid(agent, [1.0], resolution=5)
    np.testing.assert_allclose(table["q"].to_numpy().reshape(5, 5), q, rtol=1e-6)
    h = 1e-3
    for row in (0, 7, 12, 24):
        a = table.loc[row, ["a1", "a2"]].to_numpy(dtype=np.float64)
        for k, column in enumerate(("dq1", "dq2")):
            step = np.eye(2)[k] * h
            with torch.no_grad():
                up, down = (float(agent.critic.q_min(torch.ones(1, 1), torch.tensor((a + s)[None], dtype=torch.float32)))
                            for s in (step, -step))
            assert table.loc[row, column] == pytest.approx((up - down) / (2 * h), rel=0.02, abs=2e-3)

    fig = viz.q_gradient_figure(agent, BANDIT, resolution=9, arrow_resolution=5, n=30, seed=1)
    heat = [t for t in fig.data if t.type == "heatmap"][0]
    np.testing.assert_allclose(np.asarray(heat.z), analysis.critic_grid(agent, [1.0], resolution=9)[1])
    starts, vectors = arrows(trace(fig, "∂Q/∂a")[0])
    np.testing.assert_allclose(starts, table[["a1", "a2"]].to_numpy())
    gradient = table[["dq1", "dq2"]].to_numpy()
    unit = 0.9 * 0.75 / np.linalg.norm(gradient, axis=1).max()
    np.testing.assert_allclose(vectors, unit * gradient, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(points(trace(fig, "the policy's actions")[0]),
                               agent.act(BANDIT.observations(0, 30), generator=torch.Generator().manual_seed(1)), rtol=1e-6)


def test_training_snapshots_record_act_after_each_update_count(tiny_agents):
    dataset, agents = tiny_agents
    fresh = dl.DAC4Rec(1, 2, n_steps=4, hidden_dim=16, seed=0, policy_improvement="direct")
    before = fresh.act(BANDIT.observations(0, 25), generator=torch.Generator().manual_seed(7))
    snaps = analysis.training_snapshots(agents, dataset, (0, 4, 8), [1.0], n=25, seed=7, batch_size=32)
    assert list(snaps.columns) == ["run", "update", "sample", "a1", "a2"]
    assert len(snaps) == 3 * 3 * 25
    at = snaps.set_index(["run", "update"])
    np.testing.assert_allclose(at.loc[("direct", 0), ["a1", "a2"]].to_numpy(), before, rtol=1e-6)
    for name, agent in agents.items():
        assert agent.n_updates == 8  # trained in place, 4 + 4 updates
        last = agent.act(BANDIT.observations(0, 25), generator=torch.Generator().manual_seed(7))
        np.testing.assert_allclose(at.loc[(name, 8), ["a1", "a2"]].to_numpy(), last, rtol=1e-6)
        assert not np.allclose(at.loc[(name, 0), ["a1", "a2"]].to_numpy(), last)  # the policy moved
    for bad in ((), (4, 4), (5, 2), (-1, 3)):
        with pytest.raises(ValueError, match="increasing"):
            analysis.training_snapshots(agents, dataset, bad, [1.0])


def test_training_animation_figure_frames_are_the_snapshots():
    rng = np.random.default_rng(0)
    snaps = pd.concat([pd.DataFrame({"run": run, "update": update, "sample": np.arange(40),
                                     "a1": rng.uniform(-1, 1, 40), "a2": rng.uniform(-1, 1, 40)})
                       for run in ("direct", "elbo", "awr") for update in (0, 10, 30)], ignore_index=True)
    fig = viz.training_animation_figure(snaps, BANDIT)
    assert [f.name for f in fig.frames] == ["0", "10", "30"]
    assert [s.label for s in fig.layout.sliders[0].steps] == ["0", "10", "30"]
    assert fig.layout.updatemenus[0].buttons[0].method == "animate"
    assert len(fig.data) == 3 * 5  # per panel: one trace per blob and one off the data
    for frame in fig.frames:
        update = int(frame.name)
        assert list(frame.traces) == list(range(15))
        for k, run in enumerate(("direct", "elbo", "awr")):
            want = snaps[(snaps["run"] == run) & (snaps["update"] == update)][["a1", "a2"]].to_numpy()
            labels = np.array([*BANDIT.blob_names, "elsewhere"])[BANDIT.blob_of(want)]
            for j, label in enumerate([*BANDIT.blob_names, "elsewhere"]):
                got = points(frame.data[5 * k + j]) if len(frame.data[5 * k + j].x) else np.zeros((0, 2))
                np.testing.assert_allclose(got, want[labels == label].reshape(-1, 2))
            summary = sample_summary(BANDIT, BANDIT.observations(0, 40), want)
            assert f"{run}: {100 * summary['best_blob']:.0f}% on SE, reward {summary['mean_reward']:.2f}" in \
                frame.layout.title.text
    with pytest.raises(ValueError, match="training_snapshots"):
        viz.training_animation_figure(snaps.drop(columns="a2"), BANDIT)


def test_pipeline_svg_is_well_formed_and_names_every_stage_of_algorithm_1():
    import pathlib
    import xml.etree.ElementTree as ET

    root = ET.parse(pathlib.Path(__file__).parent.parent / "docs" / "algorithm1_pipeline.svg").getroot()
    assert root.tag.endswith("svg") and root.get("viewBox") == "0 0 1120 640"
    texts = " | ".join(t.text or "" for t in root.iter() if t.tag.endswith("text"))
    for stage in ("Offline log", "Critic Q_φ₁, Q_φ₂", "Diffusion policy μ_θ", "Action approximation (Eq. 13–14)",
                  "Energy model f_ψ", "Guided reverse chain", "Select among K candidates", "recommended action"):
        assert stage in texts, stage
    assert all(m in texts for m in ("Eq. 20", "Eq. 8", "Eq. 15/18/19", "Eq. 22–23", "Eq. 24", "Eq. 21"))
