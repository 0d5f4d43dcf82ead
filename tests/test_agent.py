"""DAC4Rec mechanics: the critic against the Bellman solution, TD targets, K-candidate acting,
checkpoints, bad batches and the divergence guard."""
import numpy as np
import pytest
import torch

import dac4rec_lite as dl


class PointMassEps(torch.nn.Module):
    """Exact ε for a policy that always plays μ(s): ε*(x, i) = (x − √ᾱ_i μ(s)) / √(1 − ᾱ_i)."""

    def __init__(self, schedule, actions_by_state):
        super().__init__()
        self.schedule = schedule
        self.register_buffer("table", torch.as_tensor(actions_by_state, dtype=torch.float32).reshape(len(actions_by_state), -1))

    def forward(self, state, a_i, i):
        ab = self.schedule.alphas_cumprod[i - 1].unsqueeze(1)
        mu = state @ self.table  # one-hot states select their action
        return (a_i - ab.sqrt() * mu) / (1 - ab).sqrt()


# A 5-state chain: from s the user moves right with probability (1 + a)/2, else left (clamped at the ends);
# r = 1 + 0.1 s + 0.5 a. Q is then smooth (linear) in a, so an MLP critic can represent it exactly.
N_STATES, GAMMA = 5, 0.8
POLICY = np.array([0.6, -0.4, 0.8, 0.3, -0.7])


def chain_transition(a):
    """P(s′ | s, a) for every s: (n_states, n_states) for one action per state."""
    p = np.zeros((N_STATES, N_STATES))
    for s in range(N_STATES):
        p[s, min(s + 1, N_STATES - 1)] += (1 + a[s]) / 2
        p[s, max(s - 1, 0)] += (1 - a[s]) / 2
    return p


def chain_q_pi(s, a):
    """Q^π from the Bellman linear system V = r_π + γ P_π V, then Q(s, a) = r(s, a) + γ E[V(s′)]."""
    states = np.arange(N_STATES)
    v = np.linalg.solve(np.eye(N_STATES) - GAMMA * chain_transition(POLICY), 1 + 0.1 * states + 0.5 * POLICY)
    right, left = v[np.minimum(s + 1, N_STATES - 1)], v[np.maximum(s - 1, 0)]
    return 1 + 0.1 * s + 0.5 * a + GAMMA * ((1 + a) / 2 * right + (1 - a) / 2 * left)


def chain_dataset(n=20_000, seed=0):
    rng = np.random.default_rng(seed)
    s = rng.integers(0, N_STATES, n)
    a = rng.uniform(-1, 1, n)
    moves_right = rng.uniform(size=n) < (1 + a) / 2
    s_next = np.where(moves_right, np.minimum(s + 1, N_STATES - 1), np.maximum(s - 1, 0))
    eye = np.eye(N_STATES, dtype=np.float32)
    r = 1 + 0.1 * s + 0.5 * a
    return dl.OfflineDataset(eye[s], a[:, None].astype(np.float32), r.astype(np.float32), eye[s_next], np.zeros(n, np.float32))


def test_critic_matches_bellman_solution_for_a_frozen_known_policy():
    agent = dl.DAC4Rec(N_STATES, 1, n_steps=5, gamma=GAMMA, tau=0.05, hidden_dim=64, critic_lr=1e-3, seed=0)
    agent.target_policy = dl.DiffusionPolicy(N_STATES, 1, agent.schedule, eps_model=PointMassEps(agent.schedule, POLICY))
    with torch.no_grad():  # the frozen policy really plays μ(s)
        played = agent.target_policy.sample(torch.eye(N_STATES), generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(played.squeeze(1).numpy(), POLICY, atol=1e-5)
    data = chain_dataset()
    g = torch.Generator().manual_seed(0)
    for _ in range(3000):
        agent.update_critic(data.sample(256, generator=g))
    s, a = np.meshgrid(np.arange(N_STATES), np.linspace(-0.9, 0.9, 7), indexing="ij")
    s, a = s.ravel(), a.ravel()
    with torch.no_grad():
        q = agent.critic.q_min(torch.eye(N_STATES)[s], torch.tensor(a[:, None], dtype=torch.float32)).squeeze(1).numpy()
    expected = chain_q_pi(s, a)
    relative = np.abs(q - expected) / np.abs(expected)
    assert relative.max() <= 0.05, f"worst relative error {relative.max():.3f} (Q {q[relative.argmax()]:.3f} vs {expected[relative.argmax()]:.3f})"


def test_td_target_terminals_stop_bootstrapping_and_timeouts_do_not():
    agent = dl.DAC4Rec(3, 2, n_steps=5, hidden_dim=16, gamma=0.9, seed=0)
    next_state, rewards = torch.randn(4, 3), torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    terminals = torch.tensor([[1.0], [0.0], [1.0], [0.0]])
    agent.generator.manual_seed(5)
    y = agent.td_target(next_state, rewards, terminals)
    with torch.no_grad():
        next_action = agent.target_policy.sample(next_state, generator=torch.Generator().manual_seed(5))
        bootstrap = agent.target_critic.q_min(next_state, next_action)
    torch.testing.assert_close(y, rewards + 0.9 * (1 - terminals) * bootstrap)
    assert y[0].item() == 1.0 and y[2].item() == 3.0
    # A timeout (turn cap) with terminal = 0 is bootstrapped: the batch's timeouts never enter the target.
    batch = {"observations": torch.randn(4, 3), "actions": torch.zeros(4, 2), "rewards": rewards,
             "next_observations": next_state, "terminals": torch.zeros(4, 1), "timeouts": torch.ones(4, 1)}
    agent.generator.manual_seed(5)
    metrics = agent.update_critic(agent.check_batch(batch))
    assert metrics["target_mean"] == pytest.approx((rewards + 0.9 * bootstrap).mean().item(), rel=1e-5)


def test_an_all_terminal_batch_bootstraps_nothing_and_draws_no_next_action():
    """Every row ends its episode (a bandit): y = r, and neither DAC4Rec nor a backbone draws a′ (the shared
    ``nothing_bootstraps`` test): the agent's generator does not move."""
    agents = (dl.DAC4Rec(3, 2, n_steps=5, hidden_dim=16, seed=0), dl.SAC(3, 2, hidden_dim=16, seed=0),
              dl.TD3(3, 2, n_steps=5, hidden_dim=16, diffusion=True, seed=0))
    for agent in agents:
        rewards, before = torch.randn(4, 1), agent.generator.get_state()
        y = agent.td_target(torch.randn(4, 3), rewards, torch.ones(4, 1))
        assert torch.equal(y, rewards) and torch.equal(agent.generator.get_state(), before)
        assert not agent.nothing_bootstraps(torch.tensor([[1.0], [0.0]]))


def test_check_batch_is_public_and_keeps_its_old_name():
    assert dl.OfflineAgent._check_batch is dl.OfflineAgent.check_batch
    agent = dl.DAC4Rec(3, 2, n_steps=5, hidden_dim=16, seed=0)
    with pytest.raises(ValueError, match="missing"):
        agent.check_batch({"observations": torch.zeros(2, 3)})


def test_max_q_backup_takes_max_over_next_actions_then_min_over_twins():
    agent = dl.DAC4Rec(3, 2, n_steps=5, hidden_dim=16, gamma=0.9, max_q_backup=True, n_next_actions=4, seed=0)
    next_state, rewards, terminals = torch.randn(3, 3), torch.zeros(3, 1), torch.zeros(3, 1)
    agent.generator.manual_seed(1)
    y = agent.td_target(next_state, rewards, terminals)
    with torch.no_grad():
        repeated = next_state.repeat_interleave(4, 0)
        actions = agent.target_policy.sample(repeated, generator=torch.Generator().manual_seed(1))
        q1, q2 = agent.target_critic(repeated, actions)
    expected = 0.9 * torch.min(q1.reshape(3, 4).max(1).values, q2.reshape(3, 4).max(1).values).unsqueeze(1)
    torch.testing.assert_close(y, expected)


def test_act_with_candidates_returns_the_best_of_the_repeated_samples():
    agent = dl.DAC4Rec(3, 2, n_steps=5, hidden_dim=16, seed=0)
    obs = torch.randn(6, 3)
    chosen = agent.act(obs, n_candidates=8, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        candidates = agent.policy.sample(obs.repeat_interleave(8, 0), generator=torch.Generator().manual_seed(3))
        q = agent.critic.q_min(obs.repeat_interleave(8, 0), candidates).reshape(6, 8)
    expected = candidates.reshape(6, 8, 2)[torch.arange(6), q.argmax(1)]
    assert torch.equal(chosen, expected)
    # Eq. 21 sampling: a huge temperature picks uniformly, a tiny one picks the argmax.
    cold = agent.act(obs, n_candidates=8, temperature=1e-6, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(cold, expected)


def test_act_keeps_the_kind_and_leading_shape_of_its_input():
    agent = dl.DAC4Rec(3, 2, n_steps=5, hidden_dim=16, seed=0)
    single = agent.act(np.zeros(3, np.float32), generator=torch.Generator().manual_seed(0))
    batch = agent.act(torch.zeros(4, 3), generator=torch.Generator().manual_seed(0))
    assert isinstance(single, np.ndarray) and single.shape == (2,)
    assert isinstance(batch, torch.Tensor) and batch.shape == (4, 2)
    assert np.abs(single).max() <= 1
    with pytest.raises(ValueError, match=r"\(3,\) or \(B, 3\)"):
        agent.act(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="n_candidates"):
        agent.act(np.zeros(3, np.float32), n_candidates=0)
    with pytest.raises(ValueError, match="NaN"):
        agent.act(np.array([0.0, np.nan, 0.0], np.float32))


def test_save_load_round_trip_and_mismatches(tmp_path):
    data = dl.CornerBandit().dataset(500, seed=0)
    agent = dl.DAC4Rec(1, 2, n_steps=5, hidden_dim=16, encoder="mlp", seed=0)
    agent.fit(data, 5, batch_size=32, progress=False)
    path = tmp_path / "agent.pt"
    agent.save(path)
    loaded = dl.DAC4Rec.load(path)
    obs = np.ones((10, 1), np.float32)
    np.testing.assert_array_equal(agent.act(obs, generator=torch.Generator().manual_seed(0)),
                                  loaded.act(obs, generator=torch.Generator().manual_seed(0)))
    assert loaded.n_updates == 5 and loaded.config.encoder == "mlp"
    other = dl.DAC4Rec(1, 2, n_steps=7, hidden_dim=16, seed=0)
    with pytest.raises(ValueError, match="n_steps: checkpoint 5 vs this agent 7"):
        other.load_weights(path)
    # Same shapes, different function: a ReLU ε-network's weights must not load into a SiLU one.
    silu = dl.DAC4Rec(1, 2, n_steps=5, hidden_dim=16, encoder="mlp", eps_activation="silu", seed=0)
    assert silu.policy.eps_model.activation == "silu" and agent.policy.eps_model.activation == "relu"
    with pytest.raises(ValueError, match="eps_activation: checkpoint 'relu' vs this agent 'silu'"):
        silu.load_weights(path)
    # A file written before the field existed was trained with SiLU: it loads as SiLU, and not into ReLU.
    silu.save(tmp_path / "silu.pt")
    old = torch.load(tmp_path / "silu.pt", weights_only=True)
    del old["config"]["eps_activation"]
    torch.save(old, tmp_path / "before_the_field.pt")
    legacy = dl.DAC4Rec.load(tmp_path / "before_the_field.pt")
    assert legacy.config.eps_activation == "silu"
    np.testing.assert_array_equal(silu.act(obs, generator=torch.Generator().manual_seed(0)),
                                  legacy.act(obs, generator=torch.Generator().manual_seed(0)))
    with pytest.raises(ValueError, match="eps_activation: checkpoint 'silu' vs this agent 'relu'"):
        agent.load_weights(tmp_path / "before_the_field.pt")
    torch.save({"something": 1}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="not a dac4rec_lite agent checkpoint"):
        dl.DAC4Rec.load(tmp_path / "foreign.pt")
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable"):
        dl.DAC4Rec.load(tmp_path / "garbage.pt")
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        dl.DAC4Rec.load(tmp_path / "missing.pt")


def good_batch(n=8):
    return {"observations": torch.zeros(n, 3), "actions": torch.zeros(n, 2), "rewards": torch.zeros(n, 1),
            "next_observations": torch.zeros(n, 3), "terminals": torch.zeros(n, 1)}


@pytest.mark.parametrize(
    "corrupt,match",
    [
        (lambda b: b.pop("rewards"), "missing"),
        (lambda b: b.__setitem__("rewards", torch.zeros(8)), r"rewards'\] has shape \(8,\), expected \(8, 1\)"),
        (lambda b: b.__setitem__("actions", torch.zeros(8, 3)), "actions"),
        (lambda b: b["observations"].__setitem__((2, 1), float("nan")), "observations'\\] contains NaN"),
        (lambda b: b.__setitem__("terminals", np.zeros((8, 1))), "torch.Tensor"),
    ],
)
def test_bad_batches_raise(corrupt, match):
    agent = dl.DAC4Rec(3, 2, n_steps=5, hidden_dim=16, seed=0)
    batch = good_batch()
    corrupt(batch)
    with pytest.raises((ValueError, TypeError), match=match):
        agent.update(batch)


def test_divergence_guard_stops_training_with_an_explanation():
    agent = dl.DAC4Rec(3, 2, n_steps=5, hidden_dim=16, seed=0, q_bound=1e-6)
    batch = good_batch()
    batch["rewards"] += 1.0
    with pytest.raises(dl.TrainingDivergedError, match="above the bound"):
        for _ in range(5):
            agent.update(batch)
    broken = dl.DAC4Rec(3, 2, n_steps=5, hidden_dim=16, seed=0)
    with torch.no_grad():
        broken.critic.q1[0].weight.fill_(float("nan"))
    with pytest.raises(dl.TrainingDivergedError, match="became nan"):
        broken.update(good_batch())


def test_encoder_is_trained_by_the_critic_only():
    agent = dl.DAC4Rec(3, 2, n_steps=5, hidden_dim=16, encoder="mlp", seed=0)
    before = [p.clone() for p in agent.encoder.parameters()]
    batch = good_batch()
    batch["rewards"] += 1.0
    agent.update_policy(agent.check_batch(batch))
    assert all(torch.equal(a, b) for a, b in zip(before, agent.encoder.parameters()))
    agent.update_critic(agent.check_batch(batch))
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.encoder.parameters()))


def test_same_seed_same_training():
    data = dl.CornerBandit().dataset(500, seed=0)
    runs = []
    for _ in range(2):
        agent = dl.DAC4Rec(1, 2, n_steps=5, hidden_dim=16, seed=3)
        log = agent.fit(data, 10, batch_size=32, progress=False)
        runs.append((log, agent.act(np.ones((4, 1), np.float32), generator=torch.Generator().manual_seed(0))))
    assert runs[0][0].equals(runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


def test_a_second_fit_trains_again():
    """lr_decay anneals to 0 within one fit(); the next fit() must start again from the configured rates."""
    data = dl.CornerBandit().dataset(500, seed=0)
    agent = dl.DAC4Rec(1, 2, n_steps=5, hidden_dim=16, seed=0)
    agent.fit(data, 5, batch_size=32, progress=False)
    before = [p.clone() for p in agent.policy.parameters()]
    agent.fit(data, 5, batch_size=32, progress=False)
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.policy.parameters()))
    assert agent.actor_optimizer.param_groups[0]["lr"] == 0.0  # annealed again by the end of this fit


def test_custom_encoder_checkpoints_need_the_module_back(tmp_path):
    encoder = dl.MLPEncoder(3, out_dim=8)
    agent = dl.DAC4Rec(3, 2, n_steps=5, hidden_dim=16, encoder=encoder, seed=0)
    path = tmp_path / "custom.pt"
    agent.save(path)
    with pytest.raises(ValueError, match="custom encoder \\(MLPEncoder\\).*encoder=your_encoder"):
        dl.DAC4Rec.load(path)
    loaded = dl.DAC4Rec.load(path, encoder=dl.MLPEncoder(3, out_dim=8))
    obs = np.zeros((4, 3), np.float32)
    np.testing.assert_array_equal(agent.act(obs, generator=torch.Generator().manual_seed(0)),
                                  loaded.act(obs, generator=torch.Generator().manual_seed(0)))


@pytest.mark.parametrize("kwargs,match", [(dict(tau=0.0), "tau"), (dict(tau=1.5), "tau"), (dict(q_bound=0.0), "q_bound"),
                                          (dict(td_sample_steps=3), "td_sampler='ddim' or 'dpm'"),
                                          (dict(act_sampler="dpm", act_sample_steps=50), "1..n_steps=5"),
                                          (dict(eps_activation="gelu"), "eps_activation must be one of")])
def test_bad_agent_config_raises_before_training(kwargs, match):
    with pytest.raises(ValueError, match=match):
        dl.DAC4Rec(3, 2, n_steps=5, hidden_dim=16, **kwargs)


def test_nan_actions_are_refused_and_the_direct_loss_leaves_critic_gradients_alone():
    agent = dl.DAC4Rec(3, 2, n_steps=5, hidden_dim=16, seed=0)
    batch = agent.check_batch(good_batch())
    loss, _ = agent.policy_loss(batch["observations"], batch["actions"])
    loss.backward()
    assert all(p.grad is None for p in agent.critic.parameters())
    assert any(p.grad is not None for p in agent.policy.parameters())
    with torch.no_grad():
        agent.policy.eps_model.body[-1].bias.fill_(float("nan"))
    with pytest.raises(dl.TrainingDivergedError, match="NaN or inf actions"):
        agent.act(np.zeros(3, np.float32))


def test_chain_improvement_backpropagates_q_through_the_whole_reverse_chain():
    """The −A ablation: a⁰ drawn through all N steps with gradients on (N ε calls) plus L_d's one call."""
    from dac4rec_lite.timing import count_eps_calls

    n_steps = 6
    agent = dl.DAC4Rec(3, 2, n_steps=n_steps, hidden_dim=16, policy_improvement="chain", seed=0)
    g = torch.Generator().manual_seed(0)
    batch = {"observations": torch.randn(32, 3, generator=g), "actions": torch.rand(32, 2, generator=g) * 2 - 1,
             "rewards": torch.randn(32, 1, generator=g), "next_observations": torch.randn(32, 3, generator=g),
             "terminals": torch.zeros(32, 1)}
    agent.update_critic(batch)
    before = [p.detach().clone() for p in agent.policy.parameters()]
    assert count_eps_calls(agent, lambda: agent.update_policy(batch)) == n_steps + 1
    # act() samples without gradients (the buffered fast path, which skips the body module): still N calls
    observations = np.zeros((4, 3), np.float32)
    assert count_eps_calls(agent, lambda: agent.act(observations)) == n_steps
    assert count_eps_calls(agent, lambda: agent.act(observations)) == n_steps  # the wrapper was removed
    assert "epsilon_fn" not in vars(agent.policy.eps_model)
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.policy.parameters()))
    # −Q of a chain sample alone reaches the ε-network's weights: the chain is differentiable end to end
    with torch.no_grad():
        state = agent.encoder(batch["observations"])
    agent.policy.zero_grad()
    q_loss, _ = agent.direct_q_loss(state, agent.policy.sample(state, generator=g))
    q_loss.backward()
    assert agent.policy.eps_model.action_in.weight.grad.abs().sum() > 0
