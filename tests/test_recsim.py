"""RecSim-v0: the gymnasium contract, determinism, the user model's maths and the long-term facts the
issue pins (fixed seeds, ≥ 500 episodes each)."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
from gymnasium.utils.env_checker import check_env

import dac4rec_lite as dl
from dac4rec_lite.envs import LongTermExpert, MyopicPolicy, NoisyExpert, RandomPolicy, RecSimConfig, RecSimulator
from dac4rec_lite.evaluation import ctr_by_length, first_pages_ctr, rollout, summarise_episodes

N_EPISODES = 600


@pytest.fixture(scope="module")
def env():
    return gym.make("dac4rec_lite/RecSim-v0")


@pytest.fixture(scope="module")
def scripted_results(env):
    policies = {"random": RandomPolicy(), "myopic": MyopicPolicy(), "expert": LongTermExpert(), "noisy_expert": NoisyExpert()}
    return {name: rollout(env, policy, N_EPISODES, seed=11, progress=False) for name, policy in policies.items()}


# ----- gymnasium contract ----------------------------------------------------------------------------
def test_passes_gymnasium_env_checker(env):
    check_env(env.unwrapped, skip_render_check=True)


def test_registered_id_accepts_config():
    small = gym.make("dac4rec_lite/RecSim-v0", n_items=50, action_dim=4, window=3, profile_dim=2)
    assert small.action_space.shape == (4,)
    assert small.observation_space.shape == (2 + 3 * (2 * 4 + 2),)
    assert small.unwrapped.obs_layout.obs_dim == small.observation_space.shape[0]


def test_reset_with_seed_is_deterministic():
    def trajectory(seed):
        env = gym.make("dac4rec_lite/RecSim-v0")
        obs, _ = env.reset(seed=seed)
        rng = np.random.default_rng(0)
        out = [obs]
        for _ in range(20):
            obs, reward, terminated, truncated, info = env.step(rng.uniform(-1, 1, 16).astype(np.float32))
            out += [obs, np.array([reward, terminated, truncated])]
            if terminated or truncated:
                break
        return out

    first, again, other = trajectory(3), trajectory(3), trajectory(4)
    assert len(first) == len(again) and all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], other[0])


def test_info_reports_clicks_and_ctr(env):
    env.reset(seed=0)
    _, reward, _, _, info = env.step(np.zeros(16, dtype=np.float32))
    assert info["clicks"] == reward and info["ctr"] == pytest.approx(reward / 10)
    assert 0.0 <= info["leave_probability"] <= 1.0 and len(info["items"]) == 10


@pytest.mark.parametrize("action, message", [
    (np.full(16, 1.5, dtype=np.float32), r"\[-1, 1\]"),
    (np.full(16, np.nan, dtype=np.float32), "NaN"),
    (np.zeros(15, dtype=np.float32), "shape"),
])
def test_bad_actions_raise_clear_errors(action, message):
    env = dl.envs.RecSimEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        env.step(action)


def test_step_before_reset_and_after_the_end_raise():
    env = dl.envs.RecSimEnv(max_pages=2, leave_bias=-50.0)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(16, dtype=np.float32))
    env.reset(seed=0)
    env.step(np.zeros(16, dtype=np.float32))
    *_, terminated, truncated, _ = env.step(np.zeros(16, dtype=np.float32))
    assert truncated and not terminated  # the page cap is a timeout, not the user leaving
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(16, dtype=np.float32))


@pytest.mark.parametrize("bad", [dict(n_items=0), dict(page_size=600), dict(drift=1.5), dict(window=0),
                                 dict(leave_bias=float("nan")), dict(profile_dim=-1)])
def test_invalid_config_raises(bad):
    with pytest.raises(ValueError, match="RecSimConfig|page_size"):
        RecSimConfig(**bad)


# ----- the user model's maths ------------------------------------------------------------------------
def test_page_is_the_top_items_by_score_best_first():
    sim = RecSimulator()
    actions = np.random.default_rng(0).uniform(-1, 1, (5, 16))
    expected = np.argsort(-(actions @ sim.item_features.T), axis=1)[:, :10]
    np.testing.assert_array_equal(sim.page(actions), expected)


def test_click_probability_closed_form():
    c = RecSimConfig()
    sim = RecSimulator(c)
    users = sim.new_users(3, np.random.default_rng(1))
    users.fatigue[:] = [0.0, 0.5, 1.0]
    items = sim.page(users.preference)
    v = sim.item_features[items[0]]
    affinity = c.long_term_weight * (v @ users.preference[0]) + c.short_term_weight * (v @ users.interest[0])
    expected = 1 / (1 + np.exp(-(c.click_scale * (affinity - c.click_threshold) - c.fatigue_click_penalty * 0.0)))
    np.testing.assert_allclose(sim.click_probabilities(users, items)[0], expected, rtol=1e-12)
    users.preference[:], users.interest[:] = users.preference[0], users.interest[0]  # one user, three fatigues
    p = sim.click_probabilities(users, np.repeat(items[:1], 3, axis=0))
    assert (p[0] > p[1]).all() and (p[1] > p[2]).all()  # fatigue lowers every click probability


def test_interest_drifts_toward_clicked_items_and_preference_stays():
    c = RecSimConfig(click_threshold=-10.0)  # every shown item is clicked
    sim = RecSimulator(c)
    users = sim.new_users(1, np.random.default_rng(2))
    preference, interest = users.preference.copy(), users.interest.copy()
    action = np.clip(sim.item_features[:1] * 3, -1, 1)
    out = sim.step(users, action, np.random.default_rng(0))
    clicked = sim.item_features[out["items"][0]].mean(axis=0)
    clicked /= np.linalg.norm(clicked)
    expected = (1 - c.drift) * interest[0] + c.drift * clicked
    np.testing.assert_allclose(users.interest[0], expected / np.linalg.norm(expected), atol=1e-9)
    np.testing.assert_array_equal(users.preference, preference)


def test_fatigue_grows_with_repeated_pages_not_with_varied_ones():
    sim = RecSimulator()
    rng = np.random.default_rng(0)
    repeated, varied = sim.new_users(1, rng), sim.new_users(1, rng)
    same = np.clip(sim.item_features[:1] * 3, -1, 1)
    for k in range(6):
        sim.step(repeated, same, rng)
        sim.step(varied, np.clip(sim.item_features[k * 50:k * 50 + 1] * 3, -1, 1), rng)
    assert repeated.fatigue[0] > 1.0
    assert varied.fatigue[0] < 0.3 * repeated.fatigue[0]


def test_leave_probability_rises_with_fatigue_and_falls_with_satisfaction():
    sim = RecSimulator()
    users = sim.new_users(3, np.random.default_rng(0))
    users.fatigue[:] = [0.0, 1.0, 0.0]
    users.satisfaction[:] = [0.2, 0.2, 0.6]
    p = sim.leave_probability(users)
    assert p[1] > p[0] > p[2]


def test_observation_history_summarises_the_last_pages():
    env = dl.envs.RecSimEnv()
    obs, _ = env.reset(seed=5)
    layout = env.obs_layout
    import torch

    profile, history, valid = layout.split(torch.as_tensor(obs)[None])
    assert not valid.any() and float(history.abs().sum()) == 0.0  # empty, left-padded window at the start
    action = np.random.default_rng(0).uniform(-1, 1, 16).astype(np.float32)
    obs, reward, *_, info = env.step(action)
    _, history, valid = layout.split(torch.as_tensor(obs)[None])
    assert valid[0].tolist() == [False] * 4 + [True]  # the newest page sits last
    centroid = env.simulator.item_features[info["items"]].mean(axis=0)
    np.testing.assert_allclose(history[0, -1, :16].numpy(), centroid, atol=1e-6)
    assert history[0, -1, -1].item() == pytest.approx(reward / 10)
    np.testing.assert_allclose(profile[0].numpy(), env.users.profile[0], atol=1e-6)


# ----- the facts the issue pins ------------------------------------------------------------------------
def test_expert_keeps_users_longer_and_earns_more_than_myopic(scripted_results):
    expert = summarise_episodes(scripted_results["expert"]["episodes"], 10)
    myopic = summarise_episodes(scripted_results["myopic"]["episodes"], 10)
    assert expert["Length"] >= 1.5 * myopic["Length"]
    assert expert["R_cumu"] >= 1.3 * myopic["R_cumu"]


def test_myopic_wins_the_first_five_pages(scripted_results):
    assert first_pages_ctr(scripted_results["myopic"]["steps"]) >= first_pages_ctr(scripted_results["expert"]["steps"])


def test_random_earns_at_most_half_of_the_expert(scripted_results):
    random = summarise_episodes(scripted_results["random"]["episodes"], 10)
    expert = summarise_episodes(scripted_results["expert"]["episodes"], 10)
    assert random["R_cumu"] <= 0.5 * expert["R_cumu"]


def test_noisy_expert_lies_between_random_and_expert(scripted_results):
    r = {name: summarise_episodes(res["episodes"], 10)["R_cumu"] for name, res in scripted_results.items()}
    assert r["random"] < r["noisy_expert"] < r["expert"]


# ----- evaluation and collection -------------------------------------------------------------------------
def test_metrics_are_pooled_as_easyrl4rec_computes_them():
    episodes = pd.DataFrame({"return": [10.0, 0.0, 5.0], "length": [10, 1, 4], "clicks": [10, 0, 5]})
    m = summarise_episodes(episodes, page_size=10)
    assert m["R_cumu"] == pytest.approx(5.0)
    assert m["R_avg"] == pytest.approx(15 / 15)       # total reward / total steps, not the mean of ratios
    assert m["Length"] == pytest.approx(5.0)
    assert m["CTR"] == pytest.approx(15 / (10 * 15))


def test_first_pages_ctr_pools_only_the_early_pages():
    steps = pd.DataFrame({"episode": [0, 0, 0, 1, 1], "step": [0, 1, 2, 0, 1], "clicks": [4, 2, 9, 6, 0]})
    assert first_pages_ctr(steps, pages=2, page_size=10) == pytest.approx((4 + 2 + 6 + 0) / (10 * 4))


def test_ctr_by_length_buckets_follow_table_3():
    episodes = pd.DataFrame({"return": [1, 2, 3, 4, 5.0], "length": [5, 11, 20, 25, 40], "clicks": [1, 11, 40, 25, 80]})
    table = ctr_by_length(episodes, page_size=10)
    assert table["length_bucket"].tolist() == ["11-20", "21-30", "31+"]
    assert table["n_episodes"].tolist() == [2, 1, 1]
    np.testing.assert_allclose(table["CTR"], [51 / 310, 25 / 250, 80 / 400])


def test_evaluate_returns_the_documented_fields(env):
    result = dl.evaluate(env, MyopicPolicy(), n_episodes=50, seed=0, progress=False)
    assert {"R_cumu", "R_avg", "Length", "CTR", "episodes", "ctr_by_length"} <= set(result)
    episodes = result["episodes"]
    assert len(episodes) == 50 and (episodes["terminated"] ^ episodes["truncated"]).all()
    assert result["R_cumu"] == pytest.approx(episodes["return"].mean())


def test_evaluate_is_deterministic_for_a_seed(env):
    a = dl.evaluate(env, NoisyExpert(), 100, seed=4, progress=False)
    b = dl.evaluate(env, NoisyExpert(), 100, seed=4, progress=False)
    pd.testing.assert_frame_equal(a["episodes"], b["episodes"])


class _HideSimulator(gym.Wrapper):
    """The same environment without its batched core: forces the one-episode-at-a-time path."""

    @property
    def unwrapped(self):
        return self


def test_sequential_and_batched_rollouts_agree_in_distribution():
    def fixed_direction(obs, users, rng):  # an observation-only policy: both paths can run it
        return np.tile(np.linspace(-1, 1, 16), (len(obs), 1))

    env = gym.make("dac4rec_lite/RecSim-v0")
    batched = summarise_episodes(rollout(env, fixed_direction, 800, seed=1, progress=False)["episodes"], 10)
    sequential = summarise_episodes(rollout(_HideSimulator(env), fixed_direction, 800, seed=2, progress=False)["episodes"])
    # Different random streams, same distribution: the Length means agree within ~4 standard errors.
    assert abs(batched["Length"] - sequential["Length"]) < 0.15 * batched["Length"]
    assert abs(batched["CTR"] - sequential["CTR"]) < 0.15 * batched["CTR"] + 0.01


def test_collect_keeps_episode_boundaries_and_matches_evaluate(env):
    dataset = dl.collect(env, NoisyExpert(), n_episodes=40, seed=9, progress=False)
    d = dataset.to_dict()
    ends = d["terminals"].astype(bool) | d["timeouts"].astype(bool)
    assert ends.sum() == 40 and ends[-1]
    inside = ~ends[:-1]  # within an episode the next observation is the next row's observation
    np.testing.assert_array_equal(d["next_observations"][:-1][inside], d["observations"][1:][inside])
    episodes = dl.evaluate(env, NoisyExpert(), 40, seed=9, progress=False)["episodes"]
    assert d["rewards"].sum() == pytest.approx(episodes["return"].sum())
    assert len(dataset) == episodes["length"].sum()


def test_collect_mixture_has_equal_shares_of_the_three_behaviours(env):
    dataset = dl.collect_mixture(env, n_episodes=30, seed=0, progress=False)
    d = dataset.to_dict()
    assert (d["terminals"] + d["timeouts"]).sum() == 30
    assert np.abs(d["actions"]).max() <= 1.0
    with pytest.raises(ValueError, match="components"):
        dl.collect_mixture(env, 30, components=("oracle",))


def test_bad_episode_counts_and_policies_raise(env):
    with pytest.raises(ValueError, match="n_episodes"):
        dl.evaluate(env, MyopicPolicy(), 0)
    with pytest.raises(TypeError, match="policy"):
        dl.evaluate(env, "expert", 5)


@pytest.mark.parametrize("corrupt, message", [
    (lambda d: d["observations"].__setitem__((3, 0), np.nan), "observations"),
    (lambda d: d["actions"].__setitem__((0, 0), 1.5), "actions"),
    (lambda d: d.__setitem__("rewards", d["rewards"][:-1]), "rewards"),
])
def test_a_corrupted_collected_dataset_is_refused_not_fixed(env, corrupt, message):
    d = dl.collect(env, RandomPolicy(), n_episodes=5, seed=0, progress=False).to_dict()
    corrupt(d)
    with pytest.raises(ValueError, match=message):
        dl.OfflineDataset.from_dict(d)


# ----- architecture: the agents do not need the environments ----------------------------------------------
AGENTS_ALONE = r"""
import importlib, pathlib, sys, types
import gymnasium
root = pathlib.Path(sys.argv[1])
# The top-level package imports everything (envs included, so `import dac4rec_lite` registers the gymnasium
# ids); a bare package object stands in for it, so only what dac4rec_lite.agents itself imports is loaded.
package = types.ModuleType("dac4rec_lite")
package.__path__ = [str(root)]
sys.modules["dac4rec_lite"] = package
ids_before = set(gymnasium.registry)
importlib.import_module("dac4rec_lite.agents")
loaded = sorted(m for m in sys.modules if m.startswith(("dac4rec_lite.envs", "dac4rec_lite.data.logged", "dac4rec_lite.evaluation")))
print(repr((loaded, sorted(set(gymnasium.registry) - ids_before), "dac4rec_lite.observation" in sys.modules)))
"""


def test_importing_the_agents_loads_no_environment_nor_logged_data_loader():
    import ast
    import subprocess
    import sys
    from pathlib import Path

    root = Path(dl.__file__).resolve().parent
    out = subprocess.run([sys.executable, "-c", AGENTS_ALONE, str(root)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    loaded, registered, layout_loaded = ast.literal_eval(out.stdout.strip().splitlines()[-1])
    assert loaded == [] and registered == []
    assert layout_loaded                       # the encoders read the layout from dac4rec_lite.observation
    # the old import paths still name the same class
    from dac4rec_lite.envs.layout import ObsLayout
    assert ObsLayout is dl.ObsLayout is dl.observation.ObsLayout
