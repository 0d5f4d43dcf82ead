"""Sequence encoders: causality, padding, the layout they read and which loss trains them."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import dac4rec_lite as dl
from dac4rec_lite.encoders import GRUEncoder, SASRecEncoder, make_encoder
from dac4rec_lite.envs import ObsLayout

LAYOUT = ObsLayout(profile_dim=3, window=6, step_dim=5)


def _observations(batch: int = 8, n_valid: int = 6, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    profile = torch.randn(batch, LAYOUT.profile_dim, generator=g)
    steps = torch.randn(batch, LAYOUT.window, LAYOUT.step_dim, generator=g)
    steps[..., -1] = 0.0
    steps[:, LAYOUT.window - n_valid:, -1] = 1.0      # left padding: the newest n_valid steps are real
    steps[:, : LAYOUT.window - n_valid, :-1] = 0.0
    return torch.cat([profile, steps.reshape(batch, -1)], dim=1)


def _set_step(obs: torch.Tensor, position: int, values: torch.Tensor) -> torch.Tensor:
    out = obs.clone()
    start = LAYOUT.profile_dim + position * LAYOUT.step_dim
    out[:, start:start + LAYOUT.step_dim - 1] = values
    return out


def test_layout_split_round_trips():
    obs = _observations(n_valid=4)
    profile, history, valid = LAYOUT.split(obs)
    assert valid[0].tolist() == [False, False, True, True, True, True]
    rebuilt = torch.cat([profile, torch.cat([history, valid[..., None].float()], dim=2).reshape(len(obs), -1)], dim=1)
    torch.testing.assert_close(rebuilt, obs)
    with pytest.raises(ValueError, match="shape"):
        LAYOUT.split(obs[:, :-1])


@pytest.mark.parametrize("position", range(LAYOUT.window - 1))
def test_sasrec_output_at_t_ignores_later_positions(position):
    torch.manual_seed(0)
    encoder = SASRecEncoder(LAYOUT)
    obs = _observations()
    changed = obs
    for later in range(position + 1, LAYOUT.window):
        changed = _set_step(changed, later, torch.randn(len(obs), LAYOUT.step_dim - 1) * 5)
    before, after = encoder.sequence_outputs(obs), encoder.sequence_outputs(changed)
    torch.testing.assert_close(after[:, : position + 1], before[:, : position + 1], rtol=0, atol=1e-6)
    assert (after[:, position + 1:] - before[:, position + 1:]).abs().max() > 1e-3  # later ones do change


@pytest.mark.parametrize("encoder_class", [GRUEncoder, SASRecEncoder])
def test_padding_content_is_ignored(encoder_class):
    torch.manual_seed(0)
    encoder = encoder_class(LAYOUT)
    obs = _observations(n_valid=3)
    garbage = _set_step(_set_step(obs, 0, torch.full((len(obs), 4), 9.0)), 2, torch.full((len(obs), 4), -7.0))
    torch.testing.assert_close(encoder(garbage), encoder(obs), rtol=0, atol=1e-6)


@pytest.mark.parametrize("encoder_class", [GRUEncoder, SASRecEncoder])
def test_state_depends_on_the_newest_page_and_the_profile(encoder_class):
    torch.manual_seed(0)
    encoder = encoder_class(LAYOUT)
    obs = _observations()
    newest = _set_step(obs, LAYOUT.window - 1, torch.randn(len(obs), 4))
    profile = obs.clone()
    profile[:, 0] += 3.0
    assert (encoder(newest) - encoder(obs)).abs().max() > 1e-3
    assert (encoder(profile) - encoder(obs)).abs().max() > 1e-3


def test_make_encoder_needs_a_matching_layout():
    with pytest.raises(ValueError, match="obs_layout"):
        make_encoder("gru", LAYOUT.obs_dim)
    with pytest.raises(ValueError, match="describes"):
        make_encoder("sasrec", LAYOUT.obs_dim + 1, LAYOUT)
    assert make_encoder("gru", LAYOUT.obs_dim, (3, 6, 5)).layout == LAYOUT


@pytest.mark.parametrize("encoder", ["gru", "sasrec"])
def test_sequence_encoders_are_trained_by_the_critic_loss_only(encoder):
    agent = dl.DAC4Rec(LAYOUT.obs_dim, 2, encoder=encoder, obs_layout=LAYOUT, n_steps=5, hidden_dim=32)
    batch = {"observations": _observations(16), "actions": torch.rand(16, 2) * 2 - 1, "rewards": torch.rand(16, 1),
             "next_observations": _observations(16, seed=1), "terminals": torch.zeros(16, 1)}
    before = [p.detach().clone() for p in agent.encoder.parameters()]
    agent.update_policy(batch)
    assert all(torch.equal(a, b) for a, b in zip(before, agent.encoder.parameters()))
    agent.update_critic(batch)
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.encoder.parameters()))


@pytest.mark.parametrize("encoder", ["gru", "sasrec"])
def test_agents_with_sequence_encoders_round_trip(tmp_path, encoder):
    agent = dl.DAC4Rec(LAYOUT.obs_dim, 2, encoder=encoder, obs_layout=LAYOUT, n_steps=5, hidden_dim=32, seed=3)
    agent.save(tmp_path / "agent.pt")
    loaded = dl.DAC4Rec.load(tmp_path / "agent.pt")
    obs = _observations(4).numpy()
    np.testing.assert_array_equal(agent.act(obs, generator=torch.Generator().manual_seed(0)),
                                  loaded.act(obs, generator=torch.Generator().manual_seed(0)))
