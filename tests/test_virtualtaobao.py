"""The VirtualTaobao adapter against a fake ``virtualTB`` with the real one's quirks: old gym API (4-value
step, reset returns only the observation), ``done`` a torch bool tensor, the next user drawn inside the step
that ends an episode, and a response (click, pay, page) outside the declared [-1, 1] box."""
from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from dac4rec_lite.envs.virtualtaobao import RESPONSE_SCALE, VirtualTaobao


class FakeVirtualTB:
    """Mimics virtualTB.envs.VirtualTB: 88 one-hot user features + (click 0..29, pay 0..9, page 1..500)."""

    max_page_index = 100

    def __init__(self) -> None:
        self.steps_taken = 0

    def _user(self) -> np.ndarray:
        user = np.zeros(88, dtype=np.float32)
        user[torch.randint(0, 88, (3,)).numpy()] = 1.0
        return user

    @property
    def state(self) -> np.ndarray:
        return np.concatenate((self.cur_user, self.lst_action), axis=-1)

    def reset(self):
        self.total_click, self.total_page = 0, 0
        self.cur_user = self._user()
        self.lst_action = np.zeros(3, dtype=np.float32)
        return self.state

    def step(self, action):
        assert np.asarray(action).shape == (27,)
        self.steps_taken += 1
        click, pay = int(torch.randint(0, 30, ())), int(torch.randint(0, 10, ()))
        page = int(torch.randint(1, 60, ()))
        self.lst_action = np.array([click, pay, page], dtype=np.float32)
        self.total_click += click
        self.total_page += page
        done = torch.tensor(self.total_page > self.max_page_index)
        if done:  # virtualTB's quirk: the next user is drawn before the state is returned
            self.cur_user = self._user()
            self.lst_action = np.zeros(3, dtype=np.float32)
        return self.state, click, done, {"total_click": self.total_click}


@pytest.fixture
def fake_virtualtb(monkeypatch):
    package, envs = types.ModuleType("virtualTB"), types.ModuleType("virtualTB.envs")
    envs.VirtualTB = FakeVirtualTB
    package.envs = envs
    monkeypatch.setitem(sys.modules, "virtualTB", package)
    monkeypatch.setitem(sys.modules, "virtualTB.envs", envs)
    return envs


def test_adapter_speaks_gymnasium_and_scales_the_response(fake_virtualtb):
    env = VirtualTaobao()
    obs, info = env.reset(seed=0)
    assert obs.shape == (92,) and info == {} and obs[-1] == 0.0            # no response yet: valid flag 0
    assert env.obs_layout.obs_dim == 92 and env.obs_layout.profile_dim == 88
    result = env.step(np.zeros(27, dtype=np.float32))
    assert len(result) == 5
    obs, reward, terminated, truncated, info = result
    assert type(terminated) is bool and truncated is False and isinstance(reward, float)
    raw = env.simulator.lst_action
    assert not terminated                                                  # one page (≤ 59) cannot pass 100
    assert np.allclose(obs[88:91], raw / RESPONSE_SCALE) and obs[-1] == 1.0
    assert reward == raw[0]                                                # reward = clicks
    assert env.observation_space.contains(obs)


def test_episode_end_keeps_the_ending_users_profile_and_requires_reset(fake_virtualtb):
    env = VirtualTaobao()
    obs, _ = env.reset(seed=1)
    profile = obs[:88].copy()
    terminated = False
    while not terminated:
        obs, _, terminated, _, info = env.step(env.action_space.sample())
    assert np.array_equal(obs[:88], profile)                 # not the next user virtualTB already drew
    assert info["total_click"] >= 0
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(np.zeros(27))
    obs, _ = env.reset()
    assert obs[-1] == 0.0


def test_seeded_resets_are_reproducible_and_check_env_passes(fake_virtualtb):
    first, _ = VirtualTaobao().reset(seed=5)
    second, _ = VirtualTaobao().reset(seed=5)
    assert np.array_equal(first, second)
    check_env(VirtualTaobao(), skip_render_check=True)


def test_missing_virtualtb_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "virtualTB", None)  # makes the import fail as if not installed
    with pytest.raises(ImportError, match="github.com/eyounx/VirtualTaobao"):
        VirtualTaobao()
