"""Baselines: Gaussian behaviour cloning, TD3+BC and the Decision Transformer.

Mechanics (the BC fit, TD3+BC's actor loss, DT's return-to-go windows, causal mask, per-episode context and
the evaluation hook, checkpoints), then (slow) the simulator's quick preset: each baseline beats random by
≥ 20 % of the gap between random and the noisy expert, and the DT conditioned on a higher target return
gets a higher return. Single-threaded, fixed seeds; numbers in ``docs/backbones.md``.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import dac4rec_lite as dl
from helpers import EVAL_EPISODES, EVAL_SEED
from dac4rec_lite.agents.decision_transformer import DecisionTransformerNet

TINY_DT = dict(context_length=3, embed_dim=16, n_layers=1, n_heads=2, seed=0)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def episodes_dataset(n_episodes=40, length=5, seed=0):
    """Episodes of ``length`` steps (the last a terminal), 3-dim observations, 2-dim actions."""
    rng = np.random.default_rng(seed)
    n = n_episodes * length
    obs = rng.standard_normal((n, 3)).astype(np.float32)
    step = np.arange(n) % length
    return dl.OfflineDataset(obs, rng.uniform(-1, 1, (n, 2)).astype(np.float32), rng.uniform(0, 2, n).astype(np.float32),
                             np.roll(obs, -1, axis=0), (step == length - 1).astype(np.float32), episode_starts=step == 0)


# ----- behaviour cloning ---------------------------------------------------------------------------
def test_behavior_cloning_recovers_the_conditional_mean():
    rng = np.random.default_rng(0)
    states = rng.standard_normal((4000, 3)).astype(np.float32)
    mean = 0.8 * np.tanh(states @ np.array([[1.0, -0.5], [0.3, 0.8], [-0.6, 0.2]]))
    actions = np.clip(mean + 0.05 * rng.standard_normal(mean.shape), -1, 1).astype(np.float32)
    data = dl.OfflineDataset(states, actions, np.zeros(4000, np.float32), states, np.ones(4000, np.float32))
    agent = dl.BehaviorCloning(3, 2, hidden_dim=64, lr=3e-3, encoder="mlp", seed=0)
    encoder_before = [p.clone() for p in agent.encoder.parameters()]
    agent.fit(data, 600, batch_size=256, progress=False)
    played = agent.act(states[:500])
    assert np.abs(played - mean[:500]).mean() < 0.05  # measured 0.02
    # No critic: the encoder learns from the BC loss, and there is nothing to rank candidates by.
    assert any(not torch.equal(a, b) for a, b in zip(encoder_before, agent.encoder.parameters()))
    with pytest.raises(ValueError, match="no critic"):
        agent.act(states[:2], n_candidates=4)


# ----- TD3+BC --------------------------------------------------------------------------------------
def test_td3bc_actor_loss_is_normalised_q_plus_behaviour_cloning():
    agent = dl.TD3BC(3, 2, hidden_dim=16, bc_weight=2.5, seed=0)
    g = torch.Generator().manual_seed(0)
    batch = {"observations": torch.randn(8, 3, generator=g), "actions": torch.rand(8, 2, generator=g) * 2 - 1,
             "rewards": torch.randn(8, 1, generator=g), "next_observations": torch.randn(8, 3, generator=g),
             "terminals": torch.zeros(8, 1)}
    with torch.no_grad():
        pi = agent.policy(batch["observations"])
        q = agent.critic(batch["observations"], pi)[0]
        expected = -2.5 / q.abs().mean() * q.mean() + ((pi - batch["actions"]) ** 2).mean()
    metrics = agent.update_actor(agent.check_batch(batch))
    assert metrics["actor_loss"] == pytest.approx(expected.item(), rel=1e-5)
    with pytest.raises(ValueError, match="TD3\\(diffusion=True\\)"):
        dl.TD3BC(3, 2, diffusion=True)


# ----- Decision Transformer ------------------------------------------------------------------------
def test_trajectory_windows_cut_episodes_and_compute_returns_to_go():
    obs = np.arange(5, dtype=np.float32)[:, None].repeat(3, 1)
    data = dl.OfflineDataset(obs, np.zeros((5, 2), np.float32), np.array([1, 2, 3, 4, 5], np.float32), obs,
                             np.array([0, 0, 1, 0, 0], np.float32), timeouts=np.array([0, 0, 0, 0, 1], np.float32))
    windows = dl.TrajectoryWindows(data, context_length=3)
    np.testing.assert_allclose(windows.returns, [6, 9])  # a terminal and a timeout both end an episode
    torch.testing.assert_close(windows._returns_to_go.squeeze(1), torch.tensor([6.0, 5.0, 3.0, 9.0, 5.0]))
    g = torch.Generator().manual_seed(0)
    batch = windows.sample_batch(200, generator=g)
    again = windows.sample(200, generator=torch.Generator().manual_seed(0))  # the name OfflineDataset's also has
    assert all(torch.equal(batch[k], again[k]) for k in batch)
    last = batch["observations"][:, -1, 0].long()  # the row each window ends at
    for row, first in ((0, 0), (2, 0), (4, 3)):
        w = {k: v[last == row][0] for k, v in batch.items()}
        n_real = row - first + 1
        assert w["valid"].tolist() == [False] * (3 - n_real) + [True] * n_real
        assert w["timesteps"][w["valid"]].tolist() == list(range(n_real))
        assert w["observations"][~w["valid"]].abs().sum() == 0  # padding is zeros
        torch.testing.assert_close(w["returns_to_go"][w["valid"], 0], windows._returns_to_go[first:row + 1, 0])


def test_the_transformer_is_causal_and_ignores_padding():
    net = DecisionTransformerNet(3, 2, embed_dim=16, n_layers=2, n_heads=2, dropout=0.0, max_timestep=8, max_action=1.0).eval()
    g = torch.Generator().manual_seed(0)
    states, actions, rtg = torch.randn(4, 5, 3, generator=g), torch.randn(4, 5, 2, generator=g), torch.randn(4, 5, 1, generator=g)
    timesteps, valid = torch.arange(5).repeat(4, 1), torch.ones(4, 5, dtype=torch.bool)
    valid[:2, :2] = False
    with torch.no_grad():
        base = net(states, actions, rtg, timesteps, valid)[0]
        # a_t and everything after step t leave the prediction at s_t unchanged.
        later = states.clone(), actions.clone(), rtg.clone()
        later[0][:, 3:] += 5
        later[1][:, 2:] += 5
        later[2][:, 3:] += 5
        moved = net(*later, timesteps, valid)[0]
        # Garbage on padding changes nothing at the real steps.
        padded = states.clone()
        padded[:2, :2] = 100.0
        garbage = net(padded, actions, rtg, timesteps, valid)[0]
    torch.testing.assert_close(moved[:, :3], base[:, :3])
    assert not torch.allclose(moved[:, 3:], base[:, 3:])
    torch.testing.assert_close(garbage[valid], base[valid])


def test_the_decision_transformer_keeps_a_per_episode_context():
    data = episodes_dataset()
    agent = dl.DecisionTransformer(3, 2, **TINY_DT)
    agent.fit(data, 3, batch_size=8, progress=False)
    assert agent.return_scale == pytest.approx(np.abs(dl.TrajectoryWindows(data, 3).returns).mean())
    obs = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)
    agent.begin_episodes(4, target_return=10.0)
    agent.act(obs)
    with pytest.raises(RuntimeError, match="observe_rewards"):
        agent.act(obs)
    agent.observe_rewards([1.0, 2.0, 3.0, 4.0], done=[False, True, False, False])
    torch.testing.assert_close(agent._return_to_go, torch.tensor([9.0, 7.0, 6.0]))
    assert agent.n_running == 3 and agent._context["valid"].sum(1).tolist() == [1, 1, 1]
    with pytest.raises(ValueError, match="3 episodes are running"):
        agent.act(obs)
    agent.act(obs[[0, 2, 3]])
    assert agent._context["timesteps"][:, -1].tolist() == [1, 1, 1]
    agent.observe_rewards([0.0] * 3, [True] * 3)  # every episode ends
    with pytest.raises(RuntimeError, match="follows act"):
        agent.observe_rewards([0.0] * 3)
    # Every episode ended: the next act() begins len(obs) new ones by itself.
    assert agent.act(obs[:2]).shape == (2, 2) and agent.n_running == 2


class EpisodeSpy:
    """A policy with per-episode memory that records what rollouts tell it."""

    def __init__(self, action_dim):
        self.action_dim, self.events, self.running = action_dim, [], 0

    def begin_episodes(self, n):
        self.events.append(("begin", n))
        self.running = n

    def act(self, obs, generator=None):
        assert len(obs) == self.running, "act() rows must be the running episodes"
        self.events.append(("act", len(obs)))
        return np.zeros((len(obs), self.action_dim))

    def observe_rewards(self, rewards, done):
        assert len(rewards) == len(done) == self.running
        self.events.append(("observe", len(rewards), int(np.sum(done))))
        self.running -= int(np.sum(done))


def test_evaluate_tells_episodic_policies_where_episodes_begin_and_what_each_page_earned():
    env = gym.make("dac4rec_lite/RecSim-v0")
    spy = EpisodeSpy(env.action_space.shape[0])
    result = dl.evaluate(env, spy, 30, seed=0, progress=False)
    assert spy.events[0] == ("begin", 30) and spy.running == 0
    assert sum(e[0] == "act" for e in spy.events) == result["episodes"]["length"].max()
    # One episode at a time through gymnasium's step() (any environment without a batched simulator).
    sequential = EpisodeSpy(env.action_space.shape[0])
    dl.evaluation._sequential_rollout(env, dl.evaluation._as_policy(sequential, 0), 3, 0, False, False)
    assert [e for e in sequential.events if e[0] == "begin"] == [("begin", 1)] * 3 and sequential.running == 0
    traced = EpisodeSpy(env.action_space.shape[0])
    trace = dl.evaluation.trace_episode(env, traced, seed=0)
    assert traced.events[0] == ("begin", 1) and traced.running == 0 and len(trace) == sum(e[0] == "act" for e in traced.events)


# ----- checkpoints ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["BehaviorCloning", "TD3BC", "DecisionTransformer"])
def test_save_load_round_trip(name, tmp_path):
    data = episodes_dataset()
    settings = {"BehaviorCloning": dict(hidden_dim=16, encoder="mlp"), "TD3BC": dict(hidden_dim=16, energy=True),
                "DecisionTransformer": TINY_DT}[name]
    agent = getattr(dl, name)(3, 2, **settings)
    agent.fit(data, 5, batch_size=16, progress=False)
    agent.save(tmp_path / "agent.pt")
    loaded = getattr(dl, name).load(tmp_path / "agent.pt")
    obs = np.random.default_rng(0).standard_normal((6, 3)).astype(np.float32)
    for _ in range(2):  # the DT: two steps of a fresh context each
        np.testing.assert_array_equal(agent.act(obs, generator=torch.Generator().manual_seed(0)),
                                      loaded.act(obs, generator=torch.Generator().manual_seed(0)))
        if name == "DecisionTransformer":
            for a in (agent, loaded):
                a.observe_rewards(np.ones(6), np.zeros(6, bool))
    if name == "DecisionTransformer":
        assert (loaded.target_return, loaded.return_scale) == (agent.target_return, agent.return_scale)


# ----- the simulator (slow) -----------------------------------------------------------------------


def sim_return(env, agent) -> float:
    return dl.evaluate(env, agent, EVAL_EPISODES, EVAL_SEED, progress=False)["R_cumu"]


@pytest.mark.slow
def test_behavior_cloning_and_td3bc_beat_random_on_the_simulator(simulator):
    env, data, bar = simulator
    bc = dl.BehaviorCloning(data.obs_dim, data.action_dim, hidden_dim=128, seed=0)
    bc.fit(data, 500, batch_size=256, progress=False)
    td3bc = dl.TD3BC(data.obs_dim, data.action_dim, hidden_dim=128, actor_lr=1e-3, critic_lr=1e-3, gamma=0.95, seed=0)
    td3bc.fit(data, 1000, batch_size=256, progress=False)
    returns = {"BC": sim_return(env, bc), "TD3+BC": sim_return(env, td3bc)}
    assert min(returns.values()) >= bar, (returns, bar)


@pytest.mark.slow
def test_decision_transformer_beats_random_and_follows_its_target_return(simulator):
    env, data, bar = simulator
    agent = dl.DecisionTransformer(data.obs_dim, data.action_dim, seed=0)
    agent.fit(data, 800, batch_size=64, progress=False)
    high = sim_return(env, agent)  # the default target: the 90th percentile of the logged returns (82)
    agent.target_return = 5.0      # about what a random session earns
    low = sim_return(env, agent)
    assert high >= bar, (high, bar)
    assert high >= low + 10, (high, low)  # measured 32.5 against 8.3
