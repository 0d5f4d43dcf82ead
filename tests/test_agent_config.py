"""The shared config base (agents/config.py): one validation for every agent's fields, NaN-proof."""
import dataclasses

import numpy as np
import pytest

import dac4rec_lite as dl
from dac4rec_lite.agents.config import ActorCriticFields, AgentConfig, DiffusionFields, EnergyFields

NAN = float("nan")


@pytest.mark.parametrize("cls", [dl.DAC4Rec, dl.DDPG, dl.TD3, dl.SAC])
@pytest.mark.parametrize("kwargs,error,match", [
    (dict(q_weight=NAN), ValueError, "q_weight must be a finite number"),
    (dict(grad_clip=NAN), ValueError, "grad_clip must be a finite number"),
    (dict(energy_scale=float("inf")), ValueError, "energy_scale must be a finite number"),
    (dict(hidden_dim=0), ValueError, "hidden_dim must be >= 1"),
    (dict(hidden_dim="6"), TypeError, "hidden_dim must be an int, got '6'"),
    (dict(actor_lr="1"), TypeError, "actor_lr must be a number"),
    (dict(seed=1.5), TypeError, "seed must be an int"),
    (dict(n_steps=True), TypeError, "n_steps must be an int"),
    (dict(lr_decay=1), TypeError, "lr_decay must be True or False"),
    (dict(gamma=1.0), ValueError, r"gamma must be in \[0, 1\)"),
    (dict(tau=NAN), ValueError, "tau must be a finite number"),
    (dict(max_action=-1.0), ValueError, "max_action must be > 0 or None"),
    (dict(policy_encoder="both"), ValueError, "policy_encoder must be one of"),
])
def test_bad_fields_are_refused_by_name_for_every_actor_critic(cls, kwargs, error, match):
    with pytest.raises(error, match=match):
        cls(3, 2, **{**dict(n_steps=3, hidden_dim=8), **kwargs})


def test_sizes_must_be_positive_ints_and_numpy_ints_are_stored_plain():
    with pytest.raises(ValueError, match="obs_dim must be >= 1"):
        dl.DAC4Rec(0, 2)
    with pytest.raises(TypeError, match="action_dim must be an int"):
        dl.DAC4Rec(3, 2.0)
    agent = dl.DAC4Rec(np.int64(3), 2, n_steps=3, hidden_dim=8, energy_scale=2)
    assert type(agent.config.obs_dim) is int and type(agent.config.energy_scale) is float


def test_agent_configs_are_built_from_the_shared_groups_not_restated():
    """DAC4RecConfig and BackboneConfig share every common field, with the same defaults, from one place."""
    groups = [AgentConfig, ActorCriticFields, DiffusionFields, EnergyFields]
    for config in (dl.DAC4RecConfig, dl.agents.BackboneConfig, dl.agents.TD3Config):
        assert all(issubclass(config, g) for g in groups)
    shared = {f.name: f.default for g in groups for f in dataclasses.fields(g)}
    for config in (dl.DAC4RecConfig, dl.agents.BackboneConfig):
        own = {f.name: f.default for f in dataclasses.fields(config)}
        assert {k: own[k] for k in shared} == shared
    # TD target: DPM-Solver in 15 steps by default when N ≥ 30, the N-step chain below that or when asked
    assert dl.DAC4RecConfig(3, 2).td_sampling == ("dpm", 15) and dl.DAC4RecConfig(3, 2).td_sample_k == 15
    assert dl.DAC4RecConfig(3, 2, n_steps=20).td_sampling == ("ddpm", None)
    assert dl.DAC4RecConfig(3, 2, td_sampler="ddpm").td_sample_k is None
    assert dl.DAC4RecConfig(3, 2, td_sampler="dpm", td_sample_steps=4, n_steps=10).td_sample_k == 4
    with pytest.raises(ValueError, match="beta_max must be > beta_min"):
        dl.DAC4RecConfig(3, 2, beta_min=2.0, beta_max=1.0)


@pytest.mark.parametrize("cls,kwargs,error,match", [
    (dl.BehaviorCloning, dict(lr=NAN), ValueError, "lr must be a finite number"),
    (dl.BehaviorCloning, dict(hidden_dim=-4), ValueError, "hidden_dim must be >= 1"),
    (dl.BehaviorCloning, dict(deterministic="yes"), TypeError, "deterministic must be True or False"),
    (dl.TD3BC, dict(bc_weight=NAN), ValueError, "bc_weight must be a finite number"),
    (dl.DecisionTransformer, dict(seed=1.5), TypeError, "seed must be an int"),
    (dl.DecisionTransformer, dict(dropout=1.0), ValueError, r"dropout must be in \[0, 1\)"),
    (dl.DecisionTransformer, dict(target_return=NAN), ValueError, "target_return must be a finite number"),
    (dl.DecisionTransformer, dict(obs_dim=0), ValueError, "obs_dim must be >= 1"),
])
def test_baseline_configs_share_the_validation(cls, kwargs, error, match):
    args = {**dict(obs_dim=3, action_dim=2), **kwargs}
    with pytest.raises(error, match=match):
        cls(args.pop("obs_dim"), args.pop("action_dim"), **args)
    assert issubclass(cls.Config, AgentConfig)
