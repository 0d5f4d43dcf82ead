"""Fixtures shared by several test files."""
from __future__ import annotations

import gymnasium as gym
import pytest
import torch

import dac4rec_lite as dl
from helpers import EVAL_EPISODES, EVAL_SEED, SIM_EPISODES


@pytest.fixture
def one_thread():
    """Small networks train fastest on one thread: more only add contention on a 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def no_preset_one_thread(monkeypatch, one_thread):
    """The caller's DAC4REC_PRESET removed (each function's own preset applies) and one torch thread; a test
    module opts in with ``pytestmark = pytest.mark.usefixtures("no_preset_one_thread")``."""
    monkeypatch.delenv("DAC4REC_PRESET", raising=False)
    yield


@pytest.fixture(scope="session")
def simulator():
    """The quick preset's mixture dataset and the bar: random + 20 % of (noisy expert − random)."""
    env = gym.make("dac4rec_lite/RecSim-v0")
    data = dl.collect_mixture(env, SIM_EPISODES, seed=0, progress=False)
    random = dl.evaluate(env, dl.envs.RandomPolicy(), EVAL_EPISODES, EVAL_SEED, progress=False)["R_cumu"]
    expert = dl.evaluate(env, dl.envs.NoisyExpert(), EVAL_EPISODES, EVAL_SEED, progress=False)["R_cumu"]
    return env, data, random + 0.2 * (expert - random)
