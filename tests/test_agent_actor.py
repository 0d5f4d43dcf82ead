"""The diffusion actor is one component (``agents/diffusion_actor.py``) that DAC4Rec and the ``diffusion=True``
backbones hold as ``agent.actor``: the same class, the same code, reached under the agent's old names."""
import dataclasses

import pytest
import torch

import dac4rec_lite as dl
from dac4rec_lite.agents.actor_critic import ActorCriticAgent
from dac4rec_lite.agents.diffusion_actor import DiffusionActor

TINY = dict(hidden_dim=16, n_steps=5, seed=0)
DIFFUSION_AGENTS = [(dl.DAC4Rec, {}), (dl.DDPG, dict(diffusion=True)), (dl.TD3, dict(diffusion=True)),
                    (dl.SAC, dict(diffusion=True))]


@pytest.mark.parametrize("cls, extra", DIFFUSION_AGENTS, ids=lambda v: getattr(v, "__name__", ""))
def test_every_diffusion_agent_holds_one_diffusion_actor(cls, extra):
    agent = cls(3, 2, energy=True, **extra, **TINY)
    actor = agent.actor
    assert type(actor) is DiffusionActor
    assert DiffusionActor not in cls.__mro__  # held, not mixed in
    assert isinstance(agent, ActorCriticAgent)
    # The agent's old names are the actor's parts, the very same objects.
    assert agent.policy is actor.policy and isinstance(actor.policy, dl.DiffusionPolicy)
    assert agent.target_policy is actor.target_policy
    assert (actor.target_policy is None) == (cls is dl.SAC)  # SAC keeps no target actor
    assert agent.schedule is actor.schedule is actor.policy.schedule
    assert agent.energy_model is actor.energy_model and isinstance(actor.energy_model, dl.EnergyModel)
    assert actor.energy_model.schedule is actor.schedule
    assert actor.config is agent.config  # read at use: a later change of energy_scale takes effect
    saved = agent._modules_to_save()
    assert saved["policy"] is actor.policy and saved["energy"] is actor.energy_model
    if actor.target_policy is not None:
        assert saved["target_policy"] is actor.target_policy


def test_dac4rec_and_the_backbones_share_the_one_implementation():
    """No agent class defines its own copy of an actor piece: each reaches ``DiffusionActor``'s through
    ``ActorCriticAgent``, and the backbones' L_d + λ L_q is the actor's ``loss``."""
    pieces = ("boxed", "direct_q_loss", "sample_next_actions", "fit", "fit_energy", "guidance", "sample_actions")
    for cls in (dl.DAC4Rec, dl.DDPG, dl.TD3, dl.SAC):
        for name in pieces:
            assert getattr(cls, name) is getattr(ActorCriticAgent, name), (cls.__name__, name)
    for name in ("boxed", "direct_q_loss", "chain_q_loss", "loss", "sample_next_actions", "fit_energy",
                 "guidance", "sample_actions", "build_energy_model"):
        assert callable(getattr(DiffusionActor, name)), name


@pytest.mark.parametrize("cls", [dl.DDPG, dl.TD3, dl.SAC])
def test_a_backbones_diffusion_loss_is_the_actors_direct_loss_on_its_actor_q(cls):
    agent = cls(3, 2, diffusion=True, q_weight=2.0, **TINY)
    state, action = torch.randn(16, 3), torch.rand(16, 2) * 2 - 1
    agent.generator.manual_seed(4)
    loss, metrics = agent.diffusion_actor_loss(state, action)
    agent.generator.manual_seed(4)
    error, _, approx = agent.policy.denoise_dataset_action(state, action, agent.generator)
    q = agent.actor_q(state, approx.clamp(-1, 1))  # â⁰ clipped to the box (boxed), Q the backbone's own
    expected = error.mean() + 2.0 * (-q.mean() / q.abs().mean())  # L_d + λ L_q, Eq. 8 + 15–16
    torch.testing.assert_close(loss, expected, rtol=1e-6, atol=1e-6)
    assert set(metrics) == {"bc_loss", "q_approx_mean"}
    assert metrics["q_approx_mean"] == pytest.approx(q.mean().item(), rel=1e-6)


def test_dac4rec_policy_loss_is_the_actors_loss_for_every_improvement():
    """One draw of (i, ε) per call from the agent's generator, the same numbers whichever entry point."""
    for improvement in ("direct", "elbo", "awr", "chain"):
        agent = dl.DAC4Rec(3, 2, policy_improvement=improvement, **TINY)
        state, action = torch.randn(16, 3), torch.rand(16, 2) * 2 - 1
        agent.generator.manual_seed(9)
        loss, metrics = agent.policy_loss(state, action)
        agent.generator.manual_seed(9)
        again, metrics_again = agent.actor.loss(agent.critic, state, action, agent.generator, improvement,
                                                advantage_weights=agent.advantage_weights)
        assert torch.equal(loss, again) and metrics == metrics_again, improvement
    assert torch.equal(agent._elbo_weights, agent.schedule.elbo_weights())


def test_the_actor_refuses_a_config_without_its_field_groups():
    config = dl.agents.BehaviorCloningConfig(3, 2)
    with pytest.raises(TypeError, match="ActorCriticFields.*DiffusionFields.*EnergyFields"):
        DiffusionActor(config, 3, 2)
    agent = dl.DAC4Rec(3, 2, **TINY)
    with pytest.raises(ValueError, match="improvement must be"):
        agent.actor.loss(agent.critic, torch.zeros(2, 3), torch.zeros(2, 2), None, "bogus")
    with pytest.raises(ValueError, match="advantage_weights"):
        agent.actor.loss(agent.critic, torch.zeros(2, 3), torch.zeros(2, 2), None, "awr")


def test_a_plain_backbone_holds_no_diffusion_actor():
    agent = dl.TD3(3, 2, energy=True, hidden_dim=16)
    assert agent.actor is None and agent.energy_model is None and agent.energy_updates == 0
    assert isinstance(agent.policy, dl.agents.backbones.DeterministicActor)
    assert agent.guidance() is None and not hasattr(agent, "schedule")
    with pytest.raises(AttributeError, match="no diffusion actor"):
        agent.energy_model = dl.EnergyModel(3, 2, dl.VPSchedule(5), 8)
    with pytest.raises(RuntimeError, match="energy=True"):
        agent.fit_energy(torch.zeros(4, 3))


def test_unguided_twin_and_energy_scale_change_act_through_the_agent(tmp_path):
    """Setting ``agent.energy_model = None`` (notebook 09's unguided twin) or changing ``config.energy_scale``
    (the energy study) reaches the actor: guidance off gives exactly the unguided draw."""
    data = dl.CornerBandit(contextual=True).dataset(256, seed=0)
    agent = dl.DAC4Rec(data.obs_dim, data.action_dim, energy=True, energy_steps=3, energy_states=32, n_support=4,
                       **TINY)
    agent.fit(data, 2, batch_size=32, progress=False)
    assert agent.energy_updates == 3 and len(agent.energy_log) > 0
    obs = torch.randn(5, data.obs_dim)
    guided = agent.act(obs, generator=torch.Generator().manual_seed(1))
    agent.config.energy_scale = 0.0  # ω = 0: the sampler skips guidance (bit-identical to unguided)
    at_zero = agent.act(obs, generator=torch.Generator().manual_seed(1))
    agent.config.energy_scale = 1.0
    agent.energy_model = None
    unguided = agent.act(obs, generator=torch.Generator().manual_seed(1))
    assert torch.equal(at_zero, unguided) and not torch.equal(guided, unguided)
    assert dataclasses.asdict(agent.config)["energy"] is True
