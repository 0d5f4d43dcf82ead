"""Notebooks 03–04: the timing helper, the action-approximation figures and the Q-guided training panel show
the core's numbers, and the panel trains only when its button is pressed."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import dac4rec_lite as dl
from dac4rec_lite import viz
from dac4rec_lite.timing import POLICY_UPDATE_METHODS, chain_policy_loss, chain_policy_update, time_policy_updates


def trace(fig, name_start):
    matches = [t for t in fig.data if t.name is not None and t.name.startswith(name_start)]
    assert len(matches) == 1, [t.name for t in fig.data]
    return matches[0]


def xy(t):
    return np.column_stack([np.asarray(t.x, dtype=float), np.asarray(t.y, dtype=float)]).reshape(-1, 2)


def points_by_label(fig, labels, prefix):
    """Reassemble one (n, 2) array from the per-label traces of a cloud figure."""
    out = np.full((len(labels), 2), np.nan)
    for label in np.unique(labels):
        out[labels == label] = xy(trace(fig, f"{prefix} {label}"))
    return out


def seeded(seed):
    return torch.Generator().manual_seed(seed)


def blob_labels(bandit, actions):
    """The figures' label of each action: the blob's name, or "elsewhere" off every blob."""
    return np.array([*bandit.blob_names, viz.ELSEWHERE])[bandit.blob_of(actions)]


# --- timing ------------------------------------------------------------------------------------------------

def test_time_policy_updates_table_and_the_chain_cost_growing_with_n():
    table = time_policy_updates((2, 100), batch_size=64, hidden_dim=32, repeats=2)
    assert list(table.columns) == ["n_steps", "method", "seconds", "eps_calls"]
    assert len(table) == 4
    assert set(table["method"]) == set(POLICY_UPDATE_METHODS)
    assert (table["seconds"] > 0).all()
    # The machine-independent cost (no wall-clock assertion): one ε pass serves L_d and L_q with the
    # approximation; through the chain it is N passes for a⁰ plus one for L_d.
    calls = table.set_index(["n_steps", "method"])["eps_calls"]
    chain, approximation = "through the chain", "action approximation"
    assert calls[(2, approximation)] == calls[(100, approximation)] == 1
    assert calls[(2, chain)] == 3 and calls[(100, chain)] == 101
    with pytest.raises(ValueError, match="n_steps_list"):
        time_policy_updates(())


def test_chain_update_backpropagates_q_through_every_step_and_trains_only_the_policy():
    agent = dl.DAC4Rec(3, 2, n_steps=5, hidden_dim=16, seed=0)
    state = torch.randn(16, 3, generator=seeded(0))
    action = torch.rand(16, 2, generator=seeded(1)) * 2 - 1
    loss = chain_policy_loss(agent, state, action, generator=seeded(2))
    loss.backward()
    grads = [p.grad for p in agent.policy.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    # the Q term alone reaches θ only through the sampled chain
    agent.policy.zero_grad()
    sampled = agent.policy.sample(state, generator=seeded(2))
    (-agent.critic.q_min(state, sampled).mean()).backward()
    assert sum(float(p.grad.abs().sum()) for p in agent.policy.parameters() if p.grad is not None) > 0

    critic_before = [p.detach().clone() for p in agent.critic.parameters()]
    policy_before = [p.detach().clone() for p in agent.policy.parameters()]
    chain_policy_update(agent, {"observations": state, "actions": action}, seeded(3))
    assert all(torch.equal(a, b) for a, b in zip(critic_before, agent.critic.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(policy_before, agent.policy.parameters()))


# --- notebook 03: the action approximation ------------------------------------------------------------------

@pytest.fixture(scope="module")
def bandit_pairs():
    bandit = dl.CornerBandit()
    data = bandit.dataset(200, seed=1).to_dict()
    torch.manual_seed(0)
    policy = dl.DiffusionPolicy(1, 2, dl.VPSchedule(8), hidden_dim=16)
    return bandit, policy, data["observations"], data["actions"]


def test_approximation_figure_shows_approximate_action_at_step_i(bandit_pairs):
    bandit, policy, states, actions = bandit_pairs
    labels = blob_labels(bandit, actions)
    for step in (1, 5, 8):
        fig = viz.approximation_figure(policy, states, actions, step, seed=4, bandit=bandit, n_lines=7)
        with torch.no_grad():
            want = policy.approximate_action(torch.as_tensor(states), torch.as_tensor(actions), generator=seeded(4),
                                             step=step).numpy()
            noisy = policy.schedule.q_sample(torch.as_tensor(actions), step,
                                             torch.randn(actions.shape, generator=seeded(4))).numpy()
        np.testing.assert_allclose(points_by_label(fig, labels, "â⁰ from"), want, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(points_by_label(fig, labels, "a⁰ from"), actions)
        np.testing.assert_allclose(xy(trace(fig, "a<sup>i</sup>")), noisy, rtol=1e-5, atol=1e-6)
        lines = xy(trace(fig, "a<sup>0</sup> → â<sup>0</sup> for 7 pairs"))
        np.testing.assert_allclose(lines[1::3], want[:7], rtol=1e-5, atol=1e-6)  # a⁰, â⁰, gap, ...
        error = np.mean(np.sum((want - actions) ** 2, axis=1))
        assert f"= {error:.4f}" in fig.layout.title.text and f"i = {step} of 8" in fig.layout.title.text
    with pytest.raises(ValueError, match="1..8"):
        viz.approximation_figure(policy, states, actions, 0)


def test_approximation_errors_follow_the_identity_of_eq_14(bandit_pairs):
    _, policy, states, actions = bandit_pairs
    errors = viz.approximation_errors(policy, states, actions, seed=2)
    assert list(errors["step"]) == list(range(1, 9))
    np.testing.assert_allclose(errors["approximation_error"], errors["amplification"] * errors["eps_error"], rtol=1e-4)
    alpha_bar = policy.schedule.alphas_cumprod.numpy()
    np.testing.assert_allclose(errors["amplification"], (1 - alpha_bar) / alpha_bar, rtol=1e-6)
    with torch.no_grad():
        approx = policy.approximate_action(torch.as_tensor(states), torch.as_tensor(actions), generator=seeded(2), step=3)
    assert errors.loc[2, "approximation_error"] == pytest.approx(float(((approx - torch.as_tensor(actions)) ** 2).sum(1).mean()), rel=1e-5)
    spread = float(((actions - actions.mean(0)) ** 2).sum(1).mean())
    np.testing.assert_allclose(errors["mean_guess_error"], spread, rtol=1e-5)
    fig = viz.approximation_error_figure(errors)
    np.testing.assert_allclose(trace(fig, "E‖â⁰").y, errors["approximation_error"])
    np.testing.assert_allclose(trace(fig, "(1 − ᾱ").y, errors["amplification"])


def test_approximation_explorer_follows_its_slider(bandit_pairs):
    bandit, policy, states, actions = bandit_pairs
    labels = blob_labels(bandit, actions)
    explorer = viz.approximation_explorer(policy, states, actions, bandit=bandit, seed=3)
    assert explorer.controls["step"].value == 1 and explorer.controls["step"].max == 8
    explorer.controls["step"].value = 6
    with torch.no_grad():
        want = policy.approximate_action(torch.as_tensor(states), torch.as_tensor(actions), generator=seeded(3), step=6)
    np.testing.assert_allclose(points_by_label(explorer.figure, labels, "â⁰ from"), want.numpy(), rtol=1e-5, atol=1e-6)
    assert "i = 6 of 8" in explorer.figure.layout.title.text
    explorer.controls["play"].value = 2  # ▶ walks i upwards from 1
    assert explorer.controls["step"].value == 3


def test_update_time_figure_draws_the_table():
    timings = pd.DataFrame({"n_steps": [5, 5, 50, 50], "method": list(POLICY_UPDATE_METHODS) * 2,
                            "seconds": [0.01, 0.02, 0.01, 0.2]})
    fig = viz.update_time_figure(timings)
    np.testing.assert_allclose(trace(fig, "through the chain").y, [20.0, 200.0])
    np.testing.assert_allclose(trace(fig, "action approximation").y, [10.0, 10.0])
    ratios = [a.text for a in fig.layout.annotations if "chain ×" in a.text]
    assert ratios == ["<b>chain × 2.0</b>", "<b>chain × 20.0</b>"]


# --- notebook 04: Q-guided training on the corner bandit -------------------------------------------------------

SMALL = dict(n_steps=4, hidden_dim=16, seed=0)


@pytest.fixture(scope="module")
def trained():
    bandit = dl.CornerBandit()
    dataset = bandit.dataset(400, seed=0)
    agent = dl.DAC4Rec(1, 2, q_weight=1.0, **SMALL)
    history = agent.fit(dataset, 15, batch_size=64, progress=False)
    return bandit, dataset, agent, history


def test_training_curves_figure_plots_the_fit_dataframe(trained):
    _, _, agent, history = trained
    fig = viz.training_curves_figure({"direct": history, "again": history}, smooth=4)
    for metric in ("critic_loss", "q_mean", "bc_loss", "q_loss"):
        raw = [t for t in fig.data if t.name == f"direct: {metric}"]
        assert len(raw) == 1
        np.testing.assert_allclose(raw[0].y, history[metric])
    smoothed = [t for t in fig.data if t.name == "direct"]
    np.testing.assert_allclose(smoothed[0].y, history["critic_loss"].rolling(4, min_periods=1).mean())
    assert len([t for t in fig.data if t.name == "again"]) == 4
    with pytest.raises(ValueError, match="no known metric"):
        viz.training_curves_figure(pd.DataFrame({"update": [1], "other": [0.0]}))


def test_critic_heatmap_is_the_critics_q_on_the_grid(trained):
    bandit, _, agent, _ = trained
    fig = viz.bandit_policy_figure(agent, bandit, n=120, seed=5, resolution=11)
    heatmap = [t for t in fig.data if t.type == "heatmap"][0]
    axis = np.asarray(heatmap.x)
    np.testing.assert_allclose(axis, np.linspace(-1.5, 1.5, 11))
    z = np.asarray(heatmap.z)
    for r, c in [(0, 0), (3, 8), (10, 2), (5, 5)]:
        with torch.no_grad():
            q = agent.critic.q_min(torch.ones(1, 1), torch.tensor([[axis[c], axis[r]]], dtype=torch.float32))
        assert z[r, c] == pytest.approx(float(q), rel=1e-5, abs=1e-6)
    samples = agent.act(bandit.observations(0, 120), generator=seeded(5))
    np.testing.assert_allclose(xy(trace(fig, "the policy's actions")), samples, rtol=1e-6)
    labels = blob_labels(bandit, samples)
    for name in bandit.blob_names:
        np.testing.assert_allclose(xy(trace(fig, f"lands on {name}")), samples[labels == name].reshape(-1, 2), rtol=1e-6)
    np.testing.assert_allclose(xy(trace(fig, "lands off the data")), samples[labels == viz.ELSEWHERE].reshape(-1, 2), rtol=1e-6)
    outcome = viz.bandit_outcome_table({"x": agent}, bandit, n=120, seed=5).loc["x"]
    assert f"mean true reward {outcome['mean true reward']:.2f}" in fig.layout.title.text
    assert f"{outcome['% off data']:.0f}% off the data" in fig.layout.title.text


def test_outcome_and_probe_tables_agree_with_the_bandit_and_the_critic(trained):
    bandit, _, agent, _ = trained
    table = viz.bandit_outcome_table({"a": agent}, bandit, n=200, seed=1)
    samples = agent.act(bandit.observations(0, 200), generator=seeded(1))
    blobs = bandit.blob_of(samples)
    row = table.loc["a"]
    assert row["% SE"] == pytest.approx(100 * np.mean(blobs == 3), abs=0.01)
    assert row["% off data"] == pytest.approx(100 * np.mean(blobs == -1), abs=0.01)
    assert row["best blob"] == "SE" and row["% on best"] == row["% SE"]
    assert row[[f"% {n}" for n in bandit.blob_names] + ["% off data"]].sum() == pytest.approx(100, abs=0.05)

    probe = viz.critic_probe_table(agent, bandit)
    assert probe.loc["corner (1, −1)", "on the data?"] == "no" and probe.loc["SE blob centre", "on the data?"] == "yes"
    assert probe.loc["SE blob centre", "true mean reward"] == 5 and probe.loc["corner (1, −1)", "true mean reward"] == 0
    with torch.no_grad():
        q1, q2 = agent.critic(torch.ones(1, 1), torch.tensor([[1.0, -1.0]]))
    assert probe.loc["corner (1, −1)", "min(Q₁, Q₂)"] == pytest.approx(min(float(q1), float(q2)), abs=0.006)
    np.testing.assert_allclose(probe["min(Q₁, Q₂)"], np.minimum(probe["Q₁"], probe["Q₂"]), atol=0.011)


def test_q_training_panel_trains_only_when_the_button_is_pressed(trained):
    bandit, dataset, agent, history = trained
    panel = viz.q_training_panel(bandit, dataset, agent, steps=6, batch_size=32, history=history, n=80, seed=2)
    first = xy(trace(panel.figure, "the policy's actions"))
    np.testing.assert_allclose(first, agent.act(bandit.observations(0, 80), generator=seeded(2)), rtol=1e-6)
    assert panel.agent is agent and panel.history is history

    panel.controls["q_weight"].value = 10.0
    panel.controls["improvement"].value = "awr"
    assert len(panel.trained) == 1 and panel.agent is agent  # moving controls trains nothing
    np.testing.assert_allclose(xy(trace(panel.figure, "the policy's actions")), first)
    assert "press <b>Train</b>" in panel.message.value.replace("Press", "press")

    panel.controls["train"].click()
    new = panel.agent
    assert new is not agent and new.config.q_weight == 10.0 and new.config.policy_improvement == "awr"
    assert new.n_updates == 6 and len(panel.history) == 6
    assert new.config.n_steps == agent.config.n_steps and new.config.hidden_dim == agent.config.hidden_dim
    np.testing.assert_allclose(xy(trace(panel.figure, "the policy's actions")),
                               new.act(bandit.observations(0, 80), generator=seeded(2)), rtol=1e-6)
    assert "awr, λ = 10" in panel.figure.layout.title.text
    assert "Trained in" in panel.message.value

    panel.controls["train"].click()  # same settings again: shown from the cache, not retrained
    assert panel.agent is new and "Already trained" in panel.message.value
    panel.controls["q_weight"].value = 1.0
    panel.controls["improvement"].value = "direct"
    panel.controls["train"].click()
    assert panel.agent is agent


def _values(v):
    """A trace's coordinates as plotly's JSON output carries them: a list, or a typed array {dtype, bdata}."""
    import base64

    if isinstance(v, dict):
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).reshape(v.get("shape", -1))
    return np.asarray(v)


def test_q_training_panel_draws_plain_plotly_output_not_a_figure_widget(monkeypatch):
    """Issue 17: the panel draws a go.Figure into an Output (a FigureWidget can render empty in the browser),
    and the drawing follows the context dropdown."""
    import json

    import plotly.graph_objects as go
    import plotly.io as pio

    def refuse(*args, **kwargs):
        raise AssertionError("the Q-training panel built a go.FigureWidget")

    def shown(panel):
        (output,) = panel.view.outputs
        return pio.from_json(json.dumps(output["data"]["application/vnd.plotly.v1+json"]))

    monkeypatch.setattr(go, "FigureWidget", refuse)
    bandit = dl.CornerBandit(contextual=True)
    agent = dl.DAC4Rec(4, 2, **SMALL)
    panel = viz.q_training_panel(bandit, bandit.dataset(100, seed=0), agent, steps=3, batch_size=32, n=30, seed=0)
    assert type(panel.figure) is go.Figure
    assert "context 0" in shown(panel).layout.title.text
    panel.controls["context"].value = 2
    assert "context 2" in shown(panel).layout.title.text
    shown_actions = trace(shown(panel), "the policy's actions")
    np.testing.assert_allclose(np.column_stack([_values(shown_actions.x), _values(shown_actions.y)]),
                               agent.act(bandit.observations(2, 30), generator=seeded(0)), rtol=1e-6)


def test_q_training_panel_reports_divergence_instead_of_raising():
    bandit = dl.CornerBandit()
    dataset = bandit.dataset(200, seed=0)
    agent = dl.DAC4Rec(1, 2, q_bound=1e-6, **SMALL)  # any |Q| above 1e-6 stops training
    panel = viz.q_training_panel(bandit, dataset, agent, steps=5, batch_size=32, n=40)
    panel.controls["q_weight"].value = 2.0
    panel.controls["train"].click()
    assert "diverged" in panel.message.value and panel.agent is agent
    assert not panel.controls["train"].disabled


def test_contextual_panel_and_figure_follow_the_context():
    bandit = dl.CornerBandit(contextual=True)
    dataset = bandit.dataset(400, seed=0)
    agent = dl.DAC4Rec(4, 2, **SMALL)
    agent.fit(dataset, 5, batch_size=64, progress=False)
    fig = viz.contextual_policy_figure(agent, bandit, n=60, seed=1)
    table = viz.bandit_outcome_table({"a": agent}, bandit, n=60, seed=1)
    titles = [a.text for a in fig.layout.annotations if a.text.startswith("<b>context")]
    assert len(titles) == 4
    for context, title in enumerate(titles):
        row = table.loc[("a", context)]
        assert f"best {row['best blob']}" in title and f"{row['% on best']:.0f}% there" in title
    assert [table.loc[("a", c), "best blob"] for c in range(4)] == ["SE", "NE", "NW", "SW"]

    panel = viz.q_training_panel(bandit, dataset, agent, steps=3, batch_size=32, n=50, seed=0)
    panel.controls["context"].value = 2
    obs = bandit.observations(2, 50)
    np.testing.assert_allclose(xy(trace(panel.figure, "the policy's actions")), agent.act(obs, generator=seeded(0)), rtol=1e-6)
    assert "context 2" in panel.figure.layout.title.text
    heatmap = [t for t in panel.figure.data if t.type == "heatmap"][0]
    _, grid = viz.critic_grid(agent, obs[0])
    np.testing.assert_allclose(np.asarray(heatmap.z), grid, rtol=1e-6)


def test_q_weight_sweep_figure_has_one_panel_per_agent(trained):
    bandit, _, agent, _ = trained
    fig = viz.q_weight_sweep_figure({"λ = 0": agent, "λ = 1": agent}, bandit, n=50)
    titles = [a.text for a in fig.layout.annotations if a.text.startswith("<b>λ")]
    assert len(titles) == 2 and titles[0].split("<br>")[1] == titles[1].split("<br>")[1]
    assert len([t for t in fig.data if t.name == "lands on SE"]) == 2


def test_time_samplers_reports_passes_and_the_metric_of_the_seeded_draw():
    from dac4rec_lite.timing import time_samplers

    policy = dl.DiffusionPolicy(3, 2, dl.VPSchedule(20), hidden_dim=16)
    state = torch.zeros(64, 3)
    table = time_samplers(policy, state, lambda a: float(a[:, 0].mean()), configs=[("ddpm", None), ("dpm", 5)],
                          repeats=1, seed=3)
    assert list(table.columns) == ["sampler", "eps_calls", "seconds", "metric"]
    assert table["eps_calls"].tolist() == [20, 5] and (table["seconds"] > 0).all()
    with torch.no_grad():
        expected = policy.sample(state, generator=seeded(3), sampler="dpm", n_sample_steps=5)[:, 0].mean().item()
    assert table["metric"].iloc[1] == pytest.approx(expected)
    figure = viz.sampler_tradeoff_figure(table, "mean a₀")
    ddpm_metric = next(t for t in figure.data if t.name == "ddpm" and t.xaxis == "x")
    assert list(ddpm_metric.y) == [table["metric"].iloc[0]]
    with pytest.raises(ValueError, match="configs"):
        time_samplers(policy, state, lambda a: 0.0, configs=[])


def test_time_activations_times_every_eps_activation_against_the_matmul():
    """Rows for the matmul and every activation the ε-network accepts, in the network's order (no assertion on
    the times themselves: they belong to the machine)."""
    from dac4rec_lite.timing import time_activations

    table = time_activations(batch_size=64, hidden_dim=32, repeats=2)
    assert list(table.columns) == ["operation", "microseconds", "per_matmul"]
    assert table["operation"].tolist() == ["32×32 matmul", *dl.diffusion.ACTIVATIONS]
    assert table["microseconds"].iloc[0] > 0 and table["per_matmul"].iloc[0] == 1.0
    with pytest.raises(ValueError, match="repeats"):
        time_activations(repeats=0)
