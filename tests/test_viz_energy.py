"""Notebook 05's studies (dac4rec_lite/guidance_studies.py) and figures: they compute and show the core's numbers.

The exact corner-bandit energy is checked against an independent Monte Carlo estimate, the MSE target against
the one ``train_energy`` regresses on, the grids against point-by-point calls, and every figure against the
study it draws."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import dac4rec_lite as dl
from dac4rec_lite import guidance_studies as gs
from dac4rec_lite.energy import mse_loss
from dac4rec_lite import viz

BANDIT = dl.CornerBandit()


def trace(fig, name_start, type_=None):
    matches = [t for t in fig.data if (t.name or "").startswith(name_start) and (type_ is None or t.type == type_)]
    assert len(matches) >= 1, [t.name for t in fig.data]
    return matches


def xy(t):
    return np.column_stack([np.asarray(t.x, dtype=float), np.asarray(t.y, dtype=float)]).reshape(-1, 2)


def linear_energy(state, a_i, i):
    """f = 2 a₁ − a₂ + i: a known grid layout and gradient (2, −1) at every step."""
    return 2 * a_i[:, 0] - a_i[:, 1] + i.float()


@pytest.fixture(scope="module")
def bc_policy():
    """A small behaviour-cloned diffusion policy on the corner bandit (N = 10): a few seconds of CPU."""
    torch.manual_seed(0)
    logged = BANDIT.dataset(1000, seed=0).to_dict()
    policy = dl.DiffusionPolicy(1, 2, dl.VPSchedule(10), hidden_dim=64)
    dl.train_behavior_cloning(policy, logged["observations"], logged["actions"], steps=250, batch_size=128, lr=3e-3,
                              progress=False)
    return policy


# --- grids and the exact energy -------------------------------------------------------------------------

def test_energy_grid_is_the_energy_evaluated_point_by_point():
    schedule = dl.VPSchedule(8)
    torch.manual_seed(0)
    model = dl.EnergyModel(1, 2, schedule, hidden_dim=16)
    axis = gs.grid_axis(7, 1.2)
    grid = gs.energy_grid(model, [1.0], 3, resolution=7, bound=1.2)
    assert grid.shape == (7, 7)
    with torch.no_grad():
        for r in (0, 2, 6):
            for c in (0, 5):
                a = torch.tensor([[axis[c], axis[r]]], dtype=torch.float32)
                want = model(torch.ones(1, 1), a, torch.tensor([3])).item()
                assert grid[r, c] == pytest.approx(want, abs=1e-5)
    # rows follow a₂, columns a₁ (plotly's z layout)
    lin = gs.energy_grid(linear_energy, torch.ones(1), 2, resolution=5, bound=1.0)
    ax = gs.grid_axis(5, 1.0)
    np.testing.assert_allclose(lin, 2 * ax[None, :] - ax[:, None] + 2, atol=1e-6)
    with pytest.raises(ValueError, match="resolution"):
        gs.grid_axis(1)
    with pytest.raises(ValueError, match="one state"):
        gs.energy_grid(linear_energy, torch.ones(2, 1), 1)


def test_bandit_energy_matches_a_monte_carlo_posterior_average():
    """ℰ_i(a) = log E[exp(κ r(a⁰)) | a_i = a]: estimated from 40k behaviour actions weighted by q(a_i | a⁰)."""
    schedule, beta = dl.VPSchedule(20), 1.0
    exact = gs.bandit_energy(BANDIT, schedule, beta)
    logged = BANDIT.dataset(40_000, seed=3).to_dict()
    supports = torch.as_tensor(logged["actions"])
    q = torch.as_tensor(BANDIT.true_reward(logged["observations"], logged["actions"]), dtype=torch.float32)
    points = torch.tensor([[0.0, 0.0], [0.5, -0.5], [-0.8, 0.8], [1.2, 0.3]])
    for i in (3, 10, 20):
        alpha_bar = float(schedule.alphas_cumprod[i - 1])
        mc = gs.importance_energy_estimate(points, supports, q, alpha_bar, beta)
        got = exact(torch.ones(4, 1), points, torch.full((4,), i))
        np.testing.assert_allclose(got.numpy(), mc.numpy(), atol=0.05)
    # near i = 0 the energy is κ times the reward of the blob a lies on (ℰ_0 = κ Q)
    centres = torch.as_tensor(BANDIT.centres, dtype=torch.float32)
    near_zero = exact(torch.ones(4, 1), centres, torch.ones(4, dtype=torch.long))
    np.testing.assert_allclose(near_zero.numpy(), beta * np.asarray(BANDIT.means), atol=1e-3)


def test_contextual_bandit_energy_follows_the_context():
    bandit = dl.CornerBandit(contextual=True)
    exact = gs.bandit_energy(bandit, dl.VPSchedule(10), 2.0)
    centres = torch.as_tensor(bandit.centres, dtype=torch.float32)
    for context in range(4):
        state = torch.as_tensor(bandit.observations(context, 4))
        values = exact(state, centres, torch.ones(4, dtype=torch.long))
        assert int(values.argmax()) == bandit.best_blob(context)


def test_importance_estimate_is_the_target_train_energy_regresses_on():
    """mse_loss is zero exactly when f returns our ℰ̂ at the same noisy supports."""
    schedule, beta = dl.VPSchedule(10), 2.0
    g = torch.Generator().manual_seed(0)
    b, k = 6, 5
    supports = torch.randn(b, k, 2, generator=g) * 0.5
    q = torch.randn(b, k, generator=g)
    steps = torch.randint(1, 11, (b,), generator=g)
    noise = torch.randn(b, k, 2, generator=g)
    noisy = schedule.q_sample(supports.reshape(b * k, 2), steps.repeat_interleave(k), noise.reshape(b * k, 2))
    noisy = noisy.reshape(b, k, 2)
    ours = torch.stack([
        gs.importance_energy_estimate(noisy[j], supports[j], q[j], float(schedule.alphas_cumprod[steps[j] - 1]), beta)
        for j in range(b)
    ]).reshape(b * k)
    loss = mse_loss(lambda s, a, i: ours.unsqueeze(1), torch.zeros(b, 1), supports, q, steps, noise, schedule, beta)
    assert loss.item() < 1e-8
    batched = gs.importance_energy_estimate(noisy[:2], supports[:2], q[:2], float(schedule.alphas_cumprod[4]), beta)
    single = gs.importance_energy_estimate(noisy[1], supports[1], q[1], float(schedule.alphas_cumprod[4]), beta)
    np.testing.assert_allclose(batched[1].numpy(), single.numpy(), rtol=1e-6)


def test_mse_target_is_biased_low_and_the_bias_shrinks_with_more_supports():
    table = gs.mse_target_error(BANDIT, dl.VPSchedule(20), beta=1.0, n_supports=(2, 64), steps=(1, 10), n_trials=150)
    bias = table.set_index(["K", "i"])["bias"]
    assert abs(bias[(2, 1)]) < 0.02 and abs(bias[(64, 1)]) < 0.02  # at i = 1 the own support dominates: ℰ̂ ≈ κ Q
    assert bias[(2, 10)] < -0.3  # Jensen: E[log X] ≤ log E[X]
    assert bias[(2, 10)] < bias[(64, 10)] <= 0.02
    assert set(table.columns) == {"K", "i", "bias", "rmse"}


# --- sampling studies -------------------------------------------------------------------------------------

def test_sample_summary_counts_blobs_and_rewards():
    actions = np.array([[0.8, -0.8], [0.8, -0.8], [0.8, 0.8], [0.0, 0.0]], dtype=np.float32)
    summary = gs.sample_summary(BANDIT, BANDIT.observations(0, 4), actions)
    assert summary["best_blob"] == 0.5 and summary["off_blob"] == 0.25
    assert summary["SE"] == 0.5 and summary["NE"] == 0.25 and summary["NW"] == 0.0
    assert summary["mean_reward"] == pytest.approx((5 + 5 + 3 + 0) / 4)
    table = gs.summary_table(BANDIT, BANDIT.observations(0, 4), {"a": actions, "b": actions[:1].repeat(4, 0)})
    assert list(table.index) == ["a", "b"] and table.loc["b", "best_blob"] == 1.0


def test_guided_sample_at_scale_zero_is_the_unguided_policy(bc_policy):
    states = torch.ones(64, 1)
    exact = gs.bandit_energy(BANDIT, bc_policy.schedule, 1.0)
    plain = gs.guided_sample(bc_policy, None, states, seed=4)
    assert torch.equal(plain, gs.guided_sample(bc_policy, exact, states, scale=0.0, seed=4))
    assert not torch.equal(plain, gs.guided_sample(bc_policy, exact, states, scale=1.0, seed=4))
    final, trajectory = gs.guided_sample(bc_policy, exact, states, scale=1.0, seed=4, return_trajectory=True)
    assert trajectory.shape == (11, 64, 2) and torch.equal(trajectory[-1], final)


def test_reward_spread_by_scale_reproduces_the_unguided_spread_and_guidance_helps(bc_policy):
    exact = gs.bandit_energy(BANDIT, bc_policy.schedule, 1.0)
    raw = gs.reward_spread_by_scale(bc_policy, exact, BANDIT, scales=(0.0, 2.0), n_seeds=3, n_samples=200,
                                    seed=7, per_seed=True)
    assert len(raw) == 6 and list(raw["seed"][:3]) == [7, 8, 9]
    obs = BANDIT.observations(0, 200)
    for k, seed in enumerate((7, 8, 9)):
        actions = gs.guided_sample(bc_policy, None, torch.as_tensor(obs), seed=seed)
        want = gs.sample_summary(BANDIT, obs, actions)
        assert raw.iloc[k]["mean_reward"] == pytest.approx(want["mean_reward"])
        assert raw.iloc[k]["best_blob"] == pytest.approx(want["best_blob"])
    table = gs.reward_spread_by_scale(bc_policy, exact, BANDIT, scales=(0.0, 2.0), n_seeds=3, n_samples=200, seed=7)
    zero = raw[raw["scale"] == 0.0]
    assert table.loc[0, "std_of_mean_reward"] == pytest.approx(zero["mean_reward"].std(ddof=1))
    assert table.loc[0, "mean_reward"] == pytest.approx(zero["mean_reward"].mean())
    # the pooled per-action std is the std of all 600 rewards together
    pooled = np.concatenate([
        BANDIT.true_reward(obs, gs.guided_sample(bc_policy, None, torch.as_tensor(obs), seed=s).numpy())
        for s in (7, 8, 9)
    ])
    assert table.loc[0, "reward_std"] == pytest.approx(pooled.std(), rel=1e-6)
    assert table.loc[1, "best_blob"] > table.loc[0, "best_blob"] + 0.3
    assert table.loc[1, "mean_reward"] > table.loc[0, "mean_reward"] + 1.0
    with pytest.raises(ValueError, match="n_seeds"):
        gs.reward_spread_by_scale(bc_policy, exact, BANDIT, n_seeds=1)


# --- figures ------------------------------------------------------------------------------------------------

def test_energy_heatmap_shows_the_grid_minus_its_max_and_its_gradient():
    grids = {"lin": gs.energy_grid(linear_energy, [1.0], 1, 9), "flat": np.zeros((9, 9)) + 3.0}
    fig = viz.energy_heatmap_figure(grids, step=1, n_steps=5, bandit=BANDIT)
    heat = trace(fig, "lin", "heatmap")[0]
    np.testing.assert_allclose(np.asarray(heat.z), grids["lin"] - grids["lin"].max(), atol=1e-6)
    np.testing.assert_allclose(heat.x, gs.grid_axis(9))
    np.testing.assert_allclose(heat.y, gs.grid_axis(9))
    flat = trace(fig, "flat", "heatmap")[0]
    assert np.all(np.asarray(flat.z) == 0) and flat.zmin == heat.zmin == pytest.approx(float(np.min(heat.z)))
    assert "max f − min f = 0.00" in fig.layout.annotations[1].text
    lin_arrows, flat_arrows = trace(fig, "∇")
    segments = xy(lin_arrows).reshape(-1, 3, 2)  # (start, tip, gap) per arrow
    directions = segments[:, 1] - segments[:, 0]
    np.testing.assert_allclose(directions[:, 0] / -directions[:, 1], 2.0, rtol=1e-6)  # ∇(2a₁ − a₂) = (2, −1)
    assert np.all(directions[:, 0] > 0)
    flat_segments = xy(flat_arrows).reshape(-1, 3, 2)
    np.testing.assert_allclose(flat_segments[:, 1], flat_segments[:, 0])  # no gradient, no arrow


def test_guided_trajectory_figure_shows_each_chain_at_step_i(bc_policy):
    states = torch.ones(40, 1)
    exact = gs.bandit_energy(BANDIT, bc_policy.schedule, 1.0)
    trajs = {"unguided": gs.guided_sample(bc_policy, None, states, seed=1, return_trajectory=True)[1],
             "guided": gs.guided_sample(bc_policy, exact, states, scale=2.0, seed=1, return_trajectory=True)[1]}
    for step in (10, 3, 0):
        fig = viz.guided_trajectory_figure(trajs, step, BANDIT, n_paths=2)
        for col, (name, traj) in enumerate(trajs.items()):
            suffix = "" if col == 0 else str(col + 1)
            cloud = [t for t in fig.data if t.xaxis == f"x{suffix}" and (t.name or "").startswith("ends on")]
            points = np.concatenate([xy(t) for t in cloud if t.x is not None and len(t.x)])
            want = traj[10 - step].numpy()
            assert len(points) == len(want)
            np.testing.assert_allclose(np.sort(points, axis=0), np.sort(want, axis=0), rtol=1e-6)
    best = np.mean(BANDIT.blob_of(trajs["guided"][-1].numpy()) == 3)
    assert f"{best:.0%} of chains end on SE" in fig.layout.annotations[1].text
    with pytest.raises(ValueError, match="0..10"):
        viz.guided_trajectory_figure(trajs, 11, BANDIT)
    np.testing.assert_allclose(trajs["unguided"][0], trajs["guided"][0])  # same a^N


def test_guidance_scale_figure_draws_shares_and_q_of_the_samples():
    rng = np.random.default_rng(0)
    plain = np.asarray(BANDIT.centres, dtype=np.float32)[rng.integers(0, 4, 100)]
    guided = np.asarray(BANDIT.centres, dtype=np.float32)[np.r_[np.full(90, 3), np.zeros(10, dtype=int)]]
    q = {"unguided": rng.normal(size=100), "guided": rng.normal(size=100) + 4}
    fig = viz.guidance_scale_figure({"unguided": plain, "guided": guided}, q, BANDIT)
    bars = {t.name: t for t in fig.data if t.type == "bar"}
    summary = gs.sample_summary(BANDIT, BANDIT.observations(0, 100), guided)
    np.testing.assert_allclose(bars["guided"].y, [summary[b] for b in BANDIT.blob_names] + [summary["off_blob"]])
    hist = {t.name: t for t in fig.data if t.type == "histogram"}
    np.testing.assert_allclose(hist["guided"].x, q["guided"])
    assert fig.layout.title.text.startswith("guided: 90% on SE")


def test_reward_spread_figure_plots_the_table():
    import pandas as pd

    table = pd.DataFrame({"scale": [0.0, 1.0], "mean_reward": [2.0, 4.5], "std_of_mean_reward": [0.2, 0.05],
                          "best_blob": [0.25, 0.9]})
    fig = viz.reward_spread_figure({"cep": table})
    assert [list(t.y) for t in fig.data] == [[2.0, 4.5], [0.2, 0.05], [0.25, 0.9]]
    assert list(fig.data[0].error_y.array) == [0.2, 0.05]


# --- interactive panels -------------------------------------------------------------------------------------

def test_energy_explorer_recomputes_the_grids_when_the_step_moves():
    schedule = dl.VPSchedule(6)
    exact = gs.bandit_energy(BANDIT, schedule, 1.0)
    explorer = viz.energy_explorer({"exact": exact, "lin": linear_energy}, [1.0], schedule, bandit=BANDIT, resolution=11)
    for step in (1, 5):
        explorer.controls["step"].value = step
        want = gs.energy_grid(exact, [1.0], step, 11)
        heat = trace(explorer.figure, "exact", "heatmap")[0]
        np.testing.assert_allclose(np.asarray(heat.z), want - want.max(), atol=1e-6)
        assert f"step i = {step} of 6" in explorer.figure.layout.title.text
    assert explorer.grids_at(5)["exact"] is explorer.grids_at(5)["exact"]  # cached
    explorer.controls["play"].value = 2  # ▶ walks from N down
    assert explorer.controls["step"].value == 4


def test_guided_trajectory_explorer_uses_one_seed_for_both_panels(bc_policy):
    exact = gs.bandit_energy(BANDIT, bc_policy.schedule, 1.0)
    explorer = viz.guided_trajectory_explorer(bc_policy, exact, BANDIT, scale=2.0, n=30, seed=3)
    plain, guided = explorer.trajectories.values()
    want = gs.guided_sample(bc_policy, exact, torch.ones(30, 1), scale=2.0, seed=3, return_trajectory=True)[1]
    np.testing.assert_allclose(guided, want.numpy())
    np.testing.assert_allclose(plain[0], guided[0])
    explorer.controls["step"].value = 0
    assert "step i = 0" in explorer.figure.layout.title.text


def test_guidance_scale_explorer_follows_scale_and_energy(bc_policy):
    exact = gs.bandit_energy(BANDIT, bc_policy.schedule, 1.0)
    critic = lambda s, a: (a[:, :1] - a[:, 1:], a[:, :1] - a[:, 1:] + 1)  # noqa: E731  a twin-Q-like pair
    explorer = viz.guidance_scale_explorer(bc_policy, {"exact": exact, "lin": linear_energy}, critic, BANDIT, n=50,
                                          seed=2, scale=1.0)
    states = torch.ones(50, 1)
    want = gs.guided_sample(bc_policy, exact, states, scale=1.0, seed=2).numpy()
    np.testing.assert_allclose(explorer.samples_for("exact", 1.0), want)
    hist = [t for t in explorer.figure.data if t.type == "histogram"]
    np.testing.assert_allclose(hist[1].x, want[:, 0] - want[:, 1], rtol=1e-5)  # min of the twins
    explorer.controls["scale"].value = 0.0
    np.testing.assert_allclose(explorer.samples_for("exact", 0.0), explorer.samples_for(None, 0.0))
    bars = [t for t in explorer.figure.data if t.type == "bar"]
    np.testing.assert_allclose(bars[0].y, bars[1].y)  # scale 0: the same samples as unguided
    explorer.controls["energy"].value = "lin"
    explorer.controls["scale"].value = 2.0
    np.testing.assert_allclose(explorer.samples_for("lin", 2.0),
                               gs.guided_sample(bc_policy, linear_energy, states, scale=2.0, seed=2).numpy())
    assert "lin, scale 2" in explorer.figure.layout.title.text
