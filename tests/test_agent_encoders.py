"""The encoders of an actor-critic agent (agents/encoding.py): the Polyak target encoder used for s′, the
"shared" / "separate" policy encoder, and the awr loss's gradient where â⁰ overshoots the action box."""
import copy

import numpy as np
import pytest
import torch

import dac4rec_lite as dl
from dac4rec_lite.agents.encoding import upgrade_checkpoint

SMALL = dict(n_steps=4, hidden_dim=16, encoder="mlp", seed=0)


def random_batch(obs_dim=3, action_dim=2, n=32, seed=0, terminal=0.0):
    g = torch.Generator().manual_seed(seed)
    return {"observations": torch.randn(n, obs_dim, generator=g), "actions": torch.rand(n, action_dim, generator=g) * 2 - 1,
            "rewards": torch.randn(n, 1, generator=g), "next_observations": torch.randn(n, obs_dim, generator=g),
            "terminals": torch.full((n, 1), terminal)}


AGENTS = [
    pytest.param(lambda **kw: dl.DAC4Rec(3, 2, **SMALL, **kw), id="DAC4Rec"),
    pytest.param(lambda **kw: dl.DDPG(3, 2, diffusion=True, **SMALL, **kw), id="DDPG+Diffusion"),
    pytest.param(lambda **kw: dl.TD3(3, 2, diffusion=True, **SMALL, **kw), id="TD3+Diffusion"),
    pytest.param(lambda **kw: dl.SAC(3, 2, diffusion=True, **SMALL, **kw), id="SAC+Diffusion"),
    pytest.param(lambda **kw: dl.TD3(3, 2, **SMALL, **kw), id="TD3"),
]


@pytest.mark.parametrize("make", AGENTS)
@pytest.mark.parametrize("policy_encoder", ["shared", "separate"])
def test_target_encoder_moves_by_exactly_tau_toward_the_online_encoder(make, policy_encoder):
    """θ′ ← τ θ + (1 − τ) θ′ after one update, θ the online encoder after that update's critic step."""
    agent = make(tau=0.3, policy_encoder=policy_encoder)
    with torch.no_grad():  # start the target away from the online encoder, so the step is visible
        for p in agent.encoders.target_encoder.parameters():
            p.add_(0.5)
    before = [p.detach().clone() for p in agent.encoders.target_encoder.parameters()]
    agent.update(random_batch())
    online = list(agent.encoder.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, online))
    for b, o, t in zip(before, online, agent.encoders.target_encoder.parameters(), strict=True):
        torch.testing.assert_close(t, b + 0.3 * (o.detach() - b), rtol=0, atol=1e-6)
    assert all(not p.requires_grad for p in agent.encoders.target_encoder.parameters())


def test_td_target_encodes_next_observations_with_the_target_encoder():
    """y = r + γ min Q′(f′(s′), a′), a′ from μ_θ′ on f′(s′), f′ the target encoder, not the online one."""
    agent = dl.DAC4Rec(3, 2, **SMALL)
    with torch.no_grad():
        for p in agent.encoder.parameters():
            p.mul_(3.0)  # the online encoder now differs from its target copy
    batch = random_batch()
    state = agent.generator.get_state()
    with torch.no_grad():
        next_state = agent.encoders.target_encoder(batch["next_observations"])
        a = agent.target_policy.sample(next_state, generator=agent.generator)
        expected = batch["rewards"] + agent.config.gamma * agent.target_critic.q_min(next_state, a)
        online_next = agent.encoder(batch["next_observations"])
    assert not torch.allclose(online_next, next_state)
    agent.generator.set_state(state)
    metrics = agent.update_critic(batch)
    assert metrics["target_mean"] == pytest.approx(expected.mean().item(), abs=1e-5)


def test_checkpoints_keep_the_target_encoder_and_older_files_get_a_copy_of_the_online_one(tmp_path):
    agent = dl.DAC4Rec(3, 2, tau=0.5, **SMALL)
    agent.update(random_batch())
    path = tmp_path / "agent.pt"
    agent.save(path)
    loaded = dl.DAC4Rec.load(path)
    for a, b in zip(agent.encoders.target_encoder.parameters(), loaded.encoders.target_encoder.parameters()):
        assert torch.equal(a, b)
    # What a file from before the target encoder holds: no target_encoder weights, no policy_encoder field.
    old = dl.agents.read_checkpoint(path)
    del old["weights"]["target_encoder"], old["config"]["policy_encoder"]
    upgraded = upgrade_checkpoint(old)
    assert upgraded["config"]["policy_encoder"] == "shared"
    for key, value in upgraded["weights"]["encoder"].items():
        assert torch.equal(upgraded["weights"]["target_encoder"][key], value)


def test_awr_loss_has_a_gradient_where_the_approximation_overshoots_the_box():
    """Eq. 19's ‖a − â⁰‖² must pull an overshooting â⁰ back; the box clip belongs to the direct L_q only."""
    agent = dl.DAC4Rec(3, 2, n_steps=10, hidden_dim=16, policy_improvement="awr", q_weight=1.0, seed=0)
    batch = agent.check_batch(random_batch(n=256))
    state, action = batch["observations"], batch["actions"]
    g_state = agent.generator.get_state()
    error, steps, approx = agent.policy.denoise_dataset_action(state, action, agent.generator)
    approx.retain_grad()
    weights = agent.advantage_weights(state, action)
    q_loss = (weights * (action - approx).pow(2).mean(dim=1, keepdim=True)).mean()
    q_loss.backward()
    over = approx.detach().abs() > 1
    assert over.any(), "a fresh ε-network overshoots the box at large i"
    assert (approx.grad[over] != 0).all()
    # The agent's own loss is that formula: same draw, same value, and L_d + λ L_q.
    agent.generator.set_state(g_state)
    loss, metrics = agent.policy_loss(state, action)
    assert metrics["q_loss"] == pytest.approx(q_loss.item(), rel=1e-6)
    assert loss.item() == pytest.approx(error.mean().item() + q_loss.item(), rel=1e-6)
    # while the direct loss clips: no gradient reaches an overshooting coordinate
    direct = dl.DAC4Rec(3, 2, n_steps=10, hidden_dim=16, seed=0)
    boxed = approx.detach().clone().requires_grad_(True)
    direct.direct_q_loss(state, direct.boxed(boxed))[0].backward()
    assert (boxed.grad[over] == 0).all() and (boxed.grad[~over] != 0).any()


@pytest.mark.parametrize("make", AGENTS)
def test_separate_policy_encoder_is_trained_by_the_policy_loss_only(make):
    agent = make(policy_encoder="separate")
    assert agent.policy_encoder is not agent.encoder
    batch = agent.check_batch(random_batch())
    snapshot = lambda m: [p.detach().clone() for p in m.parameters()]
    changed = lambda before, m: any(not torch.equal(a, b) for a, b in zip(before, m.parameters()))
    critic_enc, policy_enc = snapshot(agent.encoder), snapshot(agent.policy_encoder)
    agent.update_critic(batch)
    assert changed(critic_enc, agent.encoder) and not changed(policy_enc, agent.policy_encoder)
    critic_enc = snapshot(agent.encoder)
    (agent.update_policy if isinstance(agent, dl.DAC4Rec) else agent.update_actor)(batch)
    assert changed(policy_enc, agent.policy_encoder) and not changed(critic_enc, agent.encoder)
    # one Adam over the policy and its encoder
    optimised = {id(p) for group in agent.actor_optimizer.param_groups for p in group["params"]}
    assert {id(p) for p in agent.policy_encoder.parameters()} <= optimised


def test_shared_policy_encoder_is_the_critics_and_builds_the_same_networks():
    shared, separate = dl.DAC4Rec(3, 2, **SMALL), dl.DAC4Rec(3, 2, policy_encoder="separate", **SMALL)
    assert shared.policy_encoder is shared.encoder and "policy_encoder" not in shared._modules_to_save()
    for name in ("encoder", "policy", "critic"):  # pairing by seed: only the policy's encoder is added
        for a, b in zip(getattr(shared, name).parameters(), getattr(separate, name).parameters()):
            assert torch.equal(a, b)
    with pytest.raises(ValueError, match="policy_encoder must be one of"):
        dl.DAC4Rec(3, 2, policy_encoder="both")


def test_act_reads_the_policy_encoder_and_ranks_candidates_with_the_critics(tmp_path):
    agent = dl.DAC4Rec(3, 2, policy_encoder="separate", **SMALL)
    agent.update(random_batch())
    obs = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    chosen = agent.act(obs, n_candidates=4, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        repeated = agent.policy_encoder(obs).repeat_interleave(4, 0)
        candidates = agent.policy.sample(repeated, generator=torch.Generator().manual_seed(7))
        q = agent.critic.q_min(agent.encoder(obs).repeat_interleave(4, 0), candidates).reshape(5, 4)
    torch.testing.assert_close(chosen, candidates.reshape(5, 4, 2)[torch.arange(5), q.argmax(1)])
    path = tmp_path / "separate.pt"
    agent.save(path)
    loaded = dl.DAC4Rec.load(path)
    assert loaded.config.policy_encoder == "separate"
    np.testing.assert_array_equal(agent.act(obs.numpy(), generator=torch.Generator().manual_seed(3)),
                                  loaded.act(obs.numpy(), generator=torch.Generator().manual_seed(3)))
    with torch.no_grad():  # the policy's encoder, not the critic's, decides the sample
        for p in agent.policy_encoder.parameters():
            p.add_(1.0)
    assert not np.array_equal(agent.act(obs.numpy(), generator=torch.Generator().manual_seed(3)),
                              loaded.act(obs.numpy(), generator=torch.Generator().manual_seed(3)))


def test_energy_of_a_separate_agent_reads_the_policy_state_and_scores_with_the_critic_state():
    """Supports are drawn from μ on the policy encoder's states and scored by Q on the critic's."""
    agent = dl.DAC4Rec(3, 2, policy_encoder="separate", energy=True, energy_steps=2, n_support=3, energy_states=8, **SMALL)
    obs = torch.randn(8, 3, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        policy_states, critic_states = agent.policy_encoder(obs), agent.encoder(obs)
        supports, q = dl.energy.support_actions(agent.policy, agent.critic, policy_states, 3,
                                                torch.Generator().manual_seed(0), critic_states=critic_states)
        expected = agent.critic.q_min(critic_states.repeat_interleave(3, 0), supports.reshape(-1, 2)).reshape(8, 3)
        again, _ = dl.energy.support_actions(agent.policy, agent.critic, policy_states, 3, torch.Generator().manual_seed(0))
    torch.testing.assert_close(q, expected)
    torch.testing.assert_close(supports, again)  # the draw depends on the policy's states only
    agent.fit_energy(obs, steps=2, progress=False)
    assert agent.energy_updates == 2 and agent.energy_log.attrs["q_scale"] > 0
